"""PipelineModels: the models a pipeline declares, builds, imports, shares with children and resets."""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import signals
from .._naming import suggest
from ..errors import (
    BatchkitError,
    BatchkitTypeError,
    BatchkitValueError,
    ModelError,
    UnknownNameError,
)
from ..models.store import ModelEntry, ModelStore
from .atomic_save import atomic_save, save_path

__all__ = ['ModelDeclaration', 'PipelineModels', 'model_method', 'parse_model_args']

MODES = ('static', 'dynamic')


@dataclass(frozen=True, eq=False)
class ModelDeclaration:
    """How a pipeline model is made: `cls(config=...)`, a batch-class @model (cls None), or an import (source)."""
    name: str
    cls: Any
    mode: str
    config: Any = None
    source: Any = None           # the pipeline an imported model comes from


def parse_model_args(args: tuple, kwargs: dict) -> ModelDeclaration:
    """Tell `(name, cls, mode, config)`, `(mode, cls, name, config)` and friends apart by type and value."""
    kwargs = dict(kwargs)
    kwargs.pop('replace', None)              # a declaring option, read by PipelineModels.declare's caller
    name, cls, mode = kwargs.pop('name', None), kwargs.pop('model_class', None), kwargs.pop('mode', None)
    config = kwargs.pop('config', None)
    if kwargs:
        raise BatchkitTypeError(f"Expected init_model(name, cls, mode, config). Received unknown keywords "
                                f"{sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, str) and arg in MODES and mode is None:
            mode = arg
        elif isinstance(arg, str) and name is None:
            name = arg
        elif callable(arg) and not isinstance(arg, str) and cls is None:
            cls = arg
        elif (arg is None or isinstance(arg, dict)) and config is None:
            config = arg
        else:
            close = difflib.get_close_matches(arg, MODES, n=1) if isinstance(arg, str) else []
            hint = f" Did you mean {close[0]!r}?" if close else ''
            raise BatchkitTypeError(f"Expected init_model arguments: a name (str), a model class, a mode "
                                    f"{MODES} and a config dict. Received: {arg!r:.60} that fits none of the slots "
                                    f"left.{hint}")
    if mode is not None and mode not in MODES:
        raise BatchkitValueError(f"Expected mode to be one of {MODES}. Received: mode={mode!r}")
    if name is None:
        if cls is None:
            raise BatchkitTypeError(f"Expected a model name or class, e.g. init_model('name', ModelClass, 'static'). "
                                    f"Received: neither, in {args!r:.80}.")
        name = cls.__name__
    return ModelDeclaration(name, cls, mode or 'dynamic', config)


class PipelineModels:
    """The declarations and built models of one pipeline (see API.md section 4 for the sharing rules)."""

    def __init__(self) -> None:
        self.decls: dict[str, ModelDeclaration] = {}
        self.store = ModelStore()

    def copy(self) -> 'PipelineModels':
        new = PipelineModels()
        new.decls, new.store = dict(self.decls), self.store.copy()
        return new

    def child(self) -> 'PipelineModels':
        """For `template << dataset`: static and imported models are shared, dynamic ones are the child's own."""
        new = PipelineModels()
        new.decls = dict(self.decls)
        new.store = self.store.copy(keep=lambda entry: entry.mode == 'static')
        return new

    def merge(self, other: 'PipelineModels') -> None:
        """`p1 + p2`: the models of both. A name both declare must be the very same declaration (the one model
        of a pipeline both were chained from, or one side imports it from the other); two different models under
        one name are an error. The left side's declaration is kept."""
        for name, decl in other.decls.items():
            mine = self.decls.get(name)
            if mine is not None and _origin(name, mine) is not _origin(name, decl):
                raise ModelError(f"Expected the pipelines added with `+` to declare each model name once. Received: "
                                 f"model '{name}' declared by both ({_describe(mine)} on the left, {_describe(decl)} "
                                 f"on the right). Rename one of them, or declare it in one pipeline only and use "
                                 f"import_model({name!r}, pipeline) in the other.")
            self.decls.setdefault(name, decl)
        for entry in other.store:
            if entry.name not in self.store:
                self.store.put(entry)

    # --- declaring and building --------------------------------------------------------------------------------
    def declare(self, pipeline: Any, decl: ModelDeclaration, replace: bool = False) -> None:
        """Add `decl`; a name already declared is an error unless `replace` (then the old model is dropped)."""
        if not isinstance(replace, (bool, np.bool_)):
            raise BatchkitTypeError(f"Expected `replace` to be a bool. Received: replace={replace!r}")
        old = self.decls.get(decl.name)
        if old is not None and not replace:
            raise ModelError(f"Expected init_model to declare a new model name. Received: '{decl.name}', already "
                             f"declared in this pipeline ({_describe(old)}). Pick another name, or pass "
                             f"init_model({decl.name!r}, ..., replace=True) to replace that model.")
        self.decls[decl.name] = decl
        self.store.pop(decl.name)
        if decl.mode == 'static' and decl.source is None and decl.cls is not None:
            self.store.put(self._create(pipeline, decl, None))

    def _create(self, pipeline: Any, decl: ModelDeclaration, batch: Any) -> ModelEntry:
        from .expressions import evaluate
        try:
            config = evaluate(decl.config, batch, pipeline)
        except Exception as exc:
            if batch is None and _needs_batch(decl.config):
                raise ModelError(f"Expected the config of {decl.mode} model '{decl.name}' to need no batch, as it is "
                                 f"created before any batch. Received: a config with batch expressions (B, F, R, I): "
                                 f"{type(exc).__name__}: {exc} Declare it with mode='dynamic' to configure it from "
                                 "the first batch.") from exc
            if isinstance(exc, BatchkitError) and len(exc.args) == 1:
                raise type(exc)(f"In the config of model '{decl.name}': {exc}") from exc
            raise ModelError(f"Expected the config of model '{decl.name}' to evaluate. Received: "
                             f"{type(exc).__name__}: {exc}") from exc
        load = config.get('load') if isinstance(config, dict) else None
        path = load.get('path') if isinstance(load, dict) else None
        if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
            raise ModelError(f"Expected model '{decl.name}' to load from an existing path. Received: {path!r}, "
                             "which does not exist. Save the model there first (save_model), or fix the path.")
        try:
            model = decl.cls(config=config)
        except Exception as exc:
            raise ModelError(f"Expected model '{decl.name}' ({getattr(decl.cls, '__name__', decl.cls)}) to be "
                             f"created. Received: {type(exc).__name__}: {exc}") from exc
        if signals.model_built.receivers:
            signals.model_built.send(pipeline, name=decl.name, model=model, mode=decl.mode)
        return ModelEntry(decl.name, model, decl.mode, origin=decl)

    def get(self, pipeline: Any, name: str, batch: Any = None) -> ModelEntry:
        """The entry of model `name`: built (a dynamic one once, on first request) or, for an import, the source's."""
        entry = self.store.get(name)
        if entry is not None:
            return entry
        decl = self.decls.get(name)
        if decl is not None and decl.source is not None:
            # Not cached: the source's current model (after its reset or load_model) is the very same object.
            return decl.source.models.get(decl.source, name, batch)
        if decl is not None and decl.cls is not None:
            if decl.mode == 'dynamic' and batch is None:
                raise ModelError(f"Expected a batch to build dynamic model '{name}'. Received: a request before the "
                                 "first batch. Dynamic models are built when the first batch reaches them: run the "
                                 "pipeline first, or declare the model with mode='static'.")
            return self.store.get_or_build(name, lambda: self._create(pipeline, decl, batch))
        cls = pipeline.batch_class
        if cls is not None and name in cls.models:
            spec = cls.models[name]
            if spec.mode == 'static':
                return cls._class_models.get(name)
            cls.class_model(name, batch=batch, config=pipeline.config.get(name), store=self.store)
            return self.store.get(name)
        known = self.known_names(pipeline)
        raise UnknownNameError(f"Expected the name of a model of this pipeline. Received: {name!r}, which is "
                               f"neither initialized nor a @model of the batch class.{suggest(name, known)} "
                               f"Add init_model({name!r}, ModelClass, mode, config) before using it.")

    def known_names(self, pipeline: Any) -> list[str]:
        cls = pipeline.batch_class
        return [*self.decls, *self.store.names(), *(cls.models if cls is not None else ())]

    def knows(self, pipeline: Any, name: str) -> bool:
        """True if `name` is declared, built, or (or may become, for a template) a @model of the batch class."""
        if name in self.decls or name in self.store:
            return True
        cls = pipeline.batch_class
        return cls is None or name in cls.models

    def reset(self, pipeline: Any) -> None:
        """Drop every built model (imports aside) and rebuild the static ones now (run(..., reset='models'))."""
        for entry in self.store:
            decl = self.decls.get(entry.name)
            if decl is None or decl.source is None:
                self.store.pop(entry.name)
        for decl in self.decls.values():
            if decl.mode == 'static' and decl.source is None and decl.cls is not None:
                self.store.put(self._create(pipeline, decl, None))

    def _built_entries(self) -> list[ModelEntry]:
        """The built models this pipeline uses: its own, and the built ones it imports (each object once)."""
        entries = {id(entry.model): entry for entry in self.store}
        for decl in self.decls.values():
            if decl.source is not None:
                for entry in decl.source.models._built_entries():
                    if entry.name == decl.name:
                        entries.setdefault(id(entry.model), entry)
        return list(entries.values())

    def on_run_end(self) -> None:
        """At the end of a run, call `on_run_end()` of each built model it used, imported ones included
        (framework models checkpoint and write their summaries)."""
        for entry in self._built_entries():
            hook = getattr(entry.model, 'on_run_end', None)
            if callable(hook):
                with entry.lock:
                    hook()

    # --- imperative save / load --------------------------------------------------------------------------------
    def save_now(self, pipeline: Any, name: str, *args: Any, **kwargs: Any) -> None:
        """`model.save(*args, **kwargs)`, atomic when it gets a path (NOTE [ Atomic saves ] in atomic_save.py)."""
        entry = self.get(pipeline, name)
        save = model_method(entry, 'save')
        with entry.lock:
            if save_path(args, kwargs) is None:
                save(*args, **kwargs)
            else:
                atomic_save(save, args, kwargs, f"model '{name}'")

    def load_now(self, pipeline: Any, *args: Any, batch: Any = None, **kwargs: Any) -> ModelEntry:
        """Create model (name, cls, mode) with `build=False` and `load=kwargs`, replacing any model of that name."""
        config = kwargs.pop('config', None)
        decl = parse_model_args(args, {'config': {**(config or {}), 'build': False, 'load': kwargs}})
        self.decls[decl.name] = decl
        old = self.store.get(decl.name)
        entry = self._create(pipeline, decl, batch)
        if old is not None:
            entry.lock = old.lock          # same lock: concurrent users of the old model stay serialized
        return self.store.put(entry)


def _origin(name: str, decl: ModelDeclaration) -> ModelDeclaration:
    """The declaration an import of `name` comes from, through imports of imports."""
    seen = set()
    while decl.source is not None and id(decl) not in seen:
        seen.add(id(decl))
        decl = decl.source.models.decls.get(name, decl)
    return decl


def _describe(decl: ModelDeclaration) -> str:
    if decl.source is not None:
        return 'imported from another pipeline'
    what = 'a @model of the batch class' if decl.cls is None else getattr(decl.cls, '__name__', repr(decl.cls))
    return f'{what}, {decl.mode}'


def _needs_batch(config: Any) -> bool:
    from .expressions import B, F, I, R, iter_expressions
    return any(isinstance(e, (B, F, R, I)) for e in iter_expressions(config))


def model_method(entry: ModelEntry, *names: str) -> Any:
    """The first of `names` the model implements (BaseModel's placeholders do not count)."""
    from ..models.base import BaseModel
    for name in names:
        fn = getattr(entry.model, name, None)
        if callable(fn) and not (isinstance(entry.model, BaseModel)
                                 and getattr(type(entry.model), name, None) is getattr(BaseModel, name, None)):
            return fn
    raise BatchkitTypeError(f"Expected model '{entry.name}' ({type(entry.model).__name__}) to have a method "
                            f"{' or '.join(repr(n) for n in names)}. Received: a model without it.")



