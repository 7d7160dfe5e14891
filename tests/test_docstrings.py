"""Every public function, class and method of batchkit's public API has a docstring of its own.

The API reference (mkdocs + mkdocstrings) is rendered from these docstrings, so a public name without one is a
hole in the documentation. Walked: `batchkit.__all__`, `batchkit.models.__all__` and `batchkit.metrics.__all__`
(those two when importable), and for each public class every public method, classmethod, staticmethod and
property defined in a batchkit class of its MRO (inherited ones are checked where they are defined).
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import types
from typing import Any, Iterator

import pytest

import batchkit


def _public_modules() -> list[types.ModuleType]:
    modules = [batchkit]
    for name in ('batchkit.models', 'batchkit.metrics'):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:       # not built yet / an optional dependency is missing
            continue
    return modules


def _exported(module: types.ModuleType) -> Iterator[tuple[str, Any]]:
    for name in module.__all__:
        try:
            yield f'{module.__name__}.{name}', getattr(module, name)
        except ImportError:       # a framework model without its framework (e.g. KerasModel without TensorFlow)
            continue


def _ours(obj: Any) -> bool:
    return (getattr(obj, '__module__', None) or '').split('.')[0] == 'batchkit'


def _own_doc(obj: Any) -> str | None:
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        return obj.__doc__ if obj.fget is None else obj.fget.__doc__
    doc = getattr(obj, '__doc__', None)
    return doc if isinstance(doc, str) and doc.strip() else None


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """Public callables and properties defined in the batchkit classes of `cls`'s MRO (each once, where defined)."""
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for name in dir(cls):
        if name.startswith('_') or name in fields:
            continue
        for klass in cls.__mro__:
            if name in vars(klass):
                owner, value = klass, vars(klass)[name]
                break
        else:
            continue
        if not _ours(owner):
            continue
        if isinstance(value, (classmethod, staticmethod, property)) or inspect.isfunction(value) or \
                (callable(value) and not isinstance(value, type) and hasattr(value, '__wrapped__')):
            yield f'{owner.__module__}.{owner.__qualname__}.{name}', value


def missing_docstrings() -> list[str]:
    missing, seen = [], set()
    for module in _public_modules():
        if not _own_doc(module):
            missing.append(module.__name__)
        for qualname, obj in _exported(module):
            if isinstance(obj, types.ModuleType):
                if not _own_doc(obj):
                    missing.append(qualname)
                continue
            if not (inspect.isclass(obj) or callable(obj)) or not _ours(obj):
                continue
            if not _own_doc(obj):
                missing.append(qualname)
            if inspect.isclass(obj):
                for member, value in _members(obj):
                    if member not in seen and not _own_doc(value):
                        missing.append(member)
                    seen.add(member)
    return sorted(set(missing))


def test_every_public_name_has_a_docstring() -> None:
    missing = missing_docstrings()
    assert not missing, 'public names without a docstring:\n  ' + '\n  '.join(missing)


def test_the_walk_sees_methods_and_catches_a_missing_docstring(monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk reaches methods of exported classes, so an undocumented one would fail the test above."""
    def undocumented(self: Any) -> None:
        pass
    undocumented.__module__ = 'batchkit.dataset'
    monkeypatch.setattr(batchkit.Dataset, 'brand_new_method', undocumented, raising=False)
    assert 'batchkit.dataset.Dataset.brand_new_method' in missing_docstrings()
    names = {member for member, _ in _members(batchkit.Pipeline)}
    assert {'batchkit.pipeline.pipeline.Pipeline.run', 'batchkit.pipeline.pipeline.Pipeline.gen_batch'} <= names


def test_run_docstring_lists_every_run_option() -> None:
    from batchkit.pipeline.runner import RunOptions

    internal = {'forever', 'resets'}          # filled in by batchkit, not options a user passes
    options = [f.name for f in dataclasses.fields(RunOptions) if f.name not in internal and not f.name.startswith('_')]
    doc = batchkit.Pipeline.run.__doc__ or ''
    absent = [name for name in [*options, 'lazy'] if not re.search(rf'\b{name}\b', doc)]
    assert not absent, f'Pipeline.run docstring does not mention the run options {absent}'
