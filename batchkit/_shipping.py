"""Checks that work sent to other processes pickles, naming the argument that does not."""
from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable
from typing import Any

from .errors import BatchkitTypeError

__all__ = ['check_call_picklable', 'check_picklable', 'pickles']

_HINT = "Use a module-level function instead of a lambda or closure, or run with target='threads'."


def _pickling_error(obj: Any) -> Exception | None:
    try:
        pickle.dumps(obj)
        return None
    except Exception as exc:  # noqa: BLE001 - any pickling failure is what we look for
        return exc


def pickles(obj: Any) -> bool:
    """True when `obj` can be sent to another process."""
    return _pickling_error(obj) is None


def _first_unpicklable(obj: Any, path: str) -> tuple[str, BaseException] | None:
    exc = _pickling_error(obj)
    if exc is None:
        return None
    failure = (path, exc)
    if isinstance(obj, dict):
        children = ((f'{path}[{k!r}]', v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        children = ((f'{path}[{i}]', v) for i, v in enumerate(obj))
    else:
        return failure
    for child_path, child in children:
        found = _first_unpicklable(child, child_path)
        if found is not None:
            return found
    return failure


def _raise(what: str, path: str, exc: BaseException) -> None:
    raise BatchkitTypeError(
        f"Expected the arguments of {what} to pickle, to send them to worker processes. Received: {path} "
        f"cannot be pickled ({type(exc).__name__}: {exc}). {_HINT}") from exc


def check_picklable(obj: Any, what: str) -> None:
    """Raise BatchkitTypeError naming the part of `obj` that cannot be sent to another process."""
    found = _first_unpicklable(obj, 'arguments')
    if found is not None:
        _raise(what, *found)


def _param_names(fn: Callable | None, skip: int) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())[skip:]
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def check_call_picklable(fn: Callable | None, args: tuple, kwargs: dict, what: str, skip: int = 1) -> None:
    """Like check_picklable for the arguments of a call `fn(<skip leading arguments>, *args, **kwargs)`:
    the error names the parameter (`argument 'fn'`, or `argument #2` when `fn` has no name for it)."""
    names = _param_names(fn, skip)
    labelled = [(f"argument {names[i]!r}" if i < len(names) else f"positional argument #{i + 1}", value)
                for i, value in enumerate(args)]
    labelled += [(f"argument {key!r}", value) for key, value in kwargs.items()]
    for label, value in labelled:
        found = _first_unpicklable(value, label)
        if found is not None:
            _raise(what, *found)
