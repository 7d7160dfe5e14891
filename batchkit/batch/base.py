"""Batch and BatchMeta: a batch of items, its components, and the registries of actions and models."""
from __future__ import annotations

import functools
import inspect
import types
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from .._naming import suggest
from ..decorators import ActionSpec, ModelSpec, spec_of
from ..errors import (
    BatchkitAttributeError,
    BatchkitValueError,
    ModelError,
    UnknownNameError,
)
from ..index import DatasetIndex
from ..locks import LockRegistry
from ..models.store import ModelEntry, ModelStore

__all__ = ['Batch', 'BatchMeta', 'RunInfo', 'batch_rng']

_STANDALONE_LOCKS = LockRegistry()    # locks of batches that are not part of a pipeline run

# NOTE [ Registries ]
# A class's actions, models and class-level model store (with its locks) live here, keyed by the class, not in
# the class's __dict__: Dask and Jupyter pickle classes defined in `__main__` by value, class attributes
# included, and a lock cannot travel. The other side rebuilds the class attribute by attribute; setting a
# marked method drops the registries, which are then collected again (static models compiled anew) there.
_REGISTRIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Registry(NamedTuple):
    actions: Mapping[str, ActionSpec]
    models: Mapping[str, ModelSpec]
    store: ModelStore


_MARKS = '__batchkit_marks__'


def _remark(cls: type, marks: Mapping[str, Any]) -> None:
    """Mark again the methods of a class rebuilt from a pickle by value (see BatchMeta.__init__)."""
    from ..decorators import _action_wrapper, _mark, model
    for attr, spec in marks.items():
        fn = spec.parallel.fn if isinstance(spec, ActionSpec) and spec.parallel is not None else spec.fn
        value = vars(cls).get(attr)
        if spec_of(value) is not None or getattr(value, '__code__', None) != fn.__code__:
            continue          # marked already, or not the method the mark was made for
        marked = _mark(value, spec, _action_wrapper(spec)) if isinstance(spec, ActionSpec) else model(value, mode=spec.mode)
        type.__setattr__(cls, attr, marked)


def _forget(cls: type) -> None:
    _REGISTRIES.pop(cls, None)
    for sub in cls.__subclasses__():
        _forget(sub)


@dataclass(frozen=True)
class RunInfo:
    """What a batch knows of the run it belongs to; small and picklable, so it travels with the batch."""
    seed: int | None
    n_batches: int | None


class _RunKey(ISeedSequence):
    """A run's Philox key, given to Philox as its seed sequence.

    Philox(key=...) also draws fresh OS entropy for a seed sequence it then ignores; handing the key over as
    the seed sequence gives the very same stream at a third of the cost, which matters once per batch.
    """

    def __init__(self, seed: int) -> None:
        self.key = np.random.SeedSequence(seed).generate_state(2, np.uint64)

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray:
        return self.key if np.dtype(dtype) == np.uint64 else self.key.view(np.uint32)


_run_key = functools.lru_cache(maxsize=64)(_RunKey)


def batch_rng(seed: int, position: int) -> np.random.Generator:
    """The generator of batch `position` in a run seeded with `seed`.

    Philox is counter-based: the run's seed gives the key, the batch position the top word of the counter, so
    every batch has its own stream (2**192 draws apart) and building one is cheap.
    """
    return np.random.Generator(np.random.Philox(_run_key(seed), counter=[0, 0, 0, position]))


class BatchMeta(type):
    """Collects @action and @model methods into read-only registries when a batch class is created.

    It never renames or rewrites methods. Static models are compiled here, once per defining class.
    """

    def __init__(cls, name: str, bases: tuple, namespace: dict) -> None:
        super().__init__(name, bases, namespace)
        _REGISTRIES[cls] = cls._batchkit_collect()
        # The marks of this class body, picklable: a class pickled by value (cloudpickle) loses the wrappers
        # that carry them (they pickle as plain functions); setting this attribute on the other side re-marks.
        type.__setattr__(cls, _MARKS, {attr: spec for attr, value in namespace.items()
                                       if (spec := spec_of(value)) is not None})

    def _batchkit_collect(cls) -> '_Registry':
        """The registries of `cls`, from the marks on its class body and its bases' (NOTE [ Registries ])."""
        actions: dict[str, ActionSpec] = {}
        models: dict[str, ModelSpec] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                spec = spec_of(value)
                if isinstance(spec, ActionSpec):
                    actions[attr] = spec
                    models.pop(attr, None)
                elif isinstance(spec, ModelSpec):
                    models[attr] = spec
                    actions.pop(attr, None)
                elif attr in actions or attr in models:     # a plain attribute shadows an inherited mark
                    actions.pop(attr, None)
                    models.pop(attr, None)
        for spec in actions.values():
            if spec.model is not None and spec.model not in models:
                raise UnknownNameError(
                    f"Expected @action(model=...) of '{cls.__name__}.{spec.name}' to name a @model of the class. "
                    f"Received: model={spec.model!r}.{suggest(spec.model, models)}")
        return _Registry(types.MappingProxyType(actions), types.MappingProxyType(models),
                         cls._compile_static_models(models, cls.__bases__))

    def _batchkit_registry(cls) -> '_Registry':
        registry = _REGISTRIES.get(cls)
        if registry is None:
            registry = _REGISTRIES[cls] = cls._batchkit_collect()
        return registry

    @property
    def actions(cls) -> Mapping[str, ActionSpec]:
        """The @action methods of the class and its bases, by name (read-only)."""
        return cls._batchkit_registry().actions

    @property
    def models(cls) -> Mapping[str, ModelSpec]:
        """The @model methods of the class and its bases, by name (read-only)."""
        return cls._batchkit_registry().models

    @property
    def _class_models(cls) -> ModelStore:
        return cls._batchkit_registry().store

    def __setattr__(cls, name: str, value: Any) -> None:
        if name in ('actions', 'models', '_class_models'):
            raise BatchkitAttributeError(
                f"Expected {cls.__name__}.{name} to stay as collected from the class body. Received: an assignment. "
                "Decorate methods with @action / @model instead.")
        super().__setattr__(name, value)
        marks = vars(cls).get(_MARKS)
        remarked = bool(marks) and (name == _MARKS or name in marks)
        if remarked:
            _remark(cls, marks)
        if remarked or spec_of(value) is not None or name in cls.actions or name in cls.models:
            _forget(cls)          # a class rebuilt attribute by attribute (cloudpickle): collect again

    def _compile_static_models(cls, models: Mapping[str, ModelSpec], bases: tuple) -> ModelStore:
        inherited = {}
        for base in bases:
            store = base._class_models if isinstance(base, BatchMeta) else None
            for entry in store or ():
                inherited.setdefault(entry.name, entry)
        store = ModelStore()
        for name, spec in models.items():
            if spec.mode != 'static':
                continue
            entry = inherited.get(name)
            if entry is not None and entry.origin is spec:
                store.put(entry)
                continue
            try:
                descriptor = spec.fn()
            except Exception as exc:
                raise ModelError(f"Expected static model '{cls.__name__}.{name}' to compile when its class is "
                                 f"created. Received: {type(exc).__name__}: {exc}. A static model takes no "
                                 "arguments and uses no outside state; use mode='dynamic' to build from a batch.") from exc
            store.put(ModelEntry(name, descriptor, 'static', origin=spec))
            from ..signals import model_built
            model_built.send(cls, name=name, model=descriptor, mode='static')
        return store


class Batch(metaclass=BatchMeta):
    """A batch of dataset items: its index, its components and the actions that process it.

    Components listed in `components` are read from `preloaded` data on first access, cut to the batch's
    items, and kept: reading twice gives the same object and in-place edits persist.

    >>> b = Batch(DatasetIndex(3), preloaded={'x': [10, 20, 30]})
    >>> b.x
    [10, 20, 30]
    """

    components: Sequence[str] | None = None
    actions: Mapping[str, ActionSpec]
    models: Mapping[str, ModelSpec]

    def __init__(self, index: Any, preloaded: Any = None, pipeline: Any = None, *, dataset: Any = None) -> None:
        self._index = index if isinstance(index, DatasetIndex) else DatasetIndex(index)
        self._preloaded = preloaded
        self.pipeline = pipeline
        self._dataset = dataset
        self._run_info: RunInfo | None = None
        self._pos = 0                   # the batch's number in its run, from 0
        self._locks: LockRegistry | None = None
        self._random: np.random.Generator | None = None

    # --- index ---------------------------------------------------------------------------------------------
    @property
    def index(self) -> DatasetIndex:
        """The batch's index: the ids of its items and their positions in the dataset."""
        return self._index

    @property
    def indices(self) -> np.ndarray:
        """The ids of the batch's items, a numpy array."""
        return self._index.indices

    @property
    def size(self) -> int:
        """The number of items in the batch (also `len(batch)`)."""
        return len(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({len(self)} items)'

    # --- components ----------------------------------------------------------------------------------------
    @property
    def component_names(self) -> tuple[str, ...]:
        """Declared components, or the keys of the preloaded data when the class declares none."""
        if self.components is not None:
            return tuple(self.components)
        data = self._preloaded
        if type(data) is dict or isinstance(data, Mapping):
            return tuple(data)
        return ()

    @classmethod
    def check_preloaded(cls, preloaded: Any, size: int) -> None:
        """Raise early if `preloaded` does not fit `size` items and the declared components."""
        if isinstance(preloaded, Mapping):
            items = preloaded.items()
        elif isinstance(preloaded, (tuple, list)) and cls.components is not None:
            if len(preloaded) != len(cls.components):
                raise BatchkitValueError(
                    f"Expected preloaded data for the {len(cls.components)} components {tuple(cls.components)}. "
                    f"Received: a {type(preloaded).__name__} of {len(preloaded)} items.")
            items = zip(cls.components, preloaded)
        else:
            return
        for name, value in items:
            if value is not None and hasattr(value, '__len__') and len(value) != size:
                raise BatchkitValueError(
                    f"Expected preloaded component '{name}' to have one entry per dataset item ({size}). "
                    f"Received: {len(value)} entries.")

    def _preloaded_source(self, name: str) -> Any:
        data = self._preloaded
        if type(data) is dict or isinstance(data, Mapping):
            return data.get(name)
        if isinstance(data, (tuple, list)) and self.components is not None and name in self.components:
            return data[list(self.components).index(name)]
        return None

    def _cut(self, source: Any, positions: np.ndarray) -> Any:
        """The rows of `source` (whole-dataset data) at `positions`."""
        if source is None:
            return None
        if isinstance(source, np.ndarray):
            return source[positions]
        if isinstance(source, (list, tuple)):
            return [source[i] for i in positions.tolist()]
        return source[positions]

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: the first read of a component gathers and keeps it.
        if name.startswith('_'):
            raise AttributeError(name)
        if name in self.component_names:
            value = self._cut(self._preloaded_source(name), self._index.root_positions)
            self.__dict__[name] = value
            return value
        known = sorted({*self.component_names, *(k for k in dir(self) if not k.startswith('_'))})
        raise BatchkitAttributeError(
            f"Expected a component, action or attribute of {type(self).__name__}. Received: {name!r}."
            f"{suggest(name, known)} Public names: {', '.join(known)}.")

    def gather(self) -> 'Batch':
        """Read every preloaded component now (before shipping the batch to another process)."""
        for name in self.component_names:
            getattr(self, name)
        return self

    # --- run context ---------------------------------------------------------------------------------------
    @property
    def random(self) -> np.random.Generator:
        """The batch's own generator, derived from the run's seed and the batch's number in the run."""
        if self._random is None:
            seed = None if self._run_info is None else self._run_info.seed
            self._random = np.random.default_rng() if seed is None else batch_rng(seed, self._pos)
        return self._random

    @property
    def locks(self) -> LockRegistry:
        """The locks of the run the batch belongs to (`use_lock` actions take theirs here)."""
        return _STANDALONE_LOCKS if self._locks is None else self._locks

    def _attach(self, pipeline: Any, run_info: RunInfo, position: int, locks: LockRegistry) -> 'Batch':
        self.pipeline, self._run_info, self._pos, self._locks = pipeline, run_info, position, locks
        return self

    def __getstate__(self) -> dict:
        # Ship only what the batch needs: its own rows, not the whole dataset, pipeline or locks.
        self.gather()
        state = dict(self.__dict__)
        state.update(_preloaded=None, pipeline=None, _dataset=None, _locks=None, _random=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    # --- models --------------------------------------------------------------------------------------------
    def get_model_by_name(self, name: str) -> Any:
        """The model (descriptor) called `name`: the pipeline's models first, then the class's @model ones."""
        if self.pipeline is not None:
            return self.pipeline.get_model_by_name(name, batch=self)
        return type(self).class_model(name, batch=self)

    @classmethod
    def class_model(cls, name: str, batch: 'Batch | None' = None, config: Any = None,
                    store: ModelStore | None = None) -> Any:
        """The descriptor of the class's @model `name`; dynamic ones are built from `batch` into `store`."""
        spec = cls.models.get(name)
        if spec is None:
            raise UnknownNameError(
                f"Expected the name of a model. Received: {name!r}, which is not a @model of {cls.__name__} "
                f"nor a model of the pipeline.{suggest(name, cls.models)}")
        if spec.mode == 'static':
            return cls._class_models.get(name).model
        if batch is None:
            raise ModelError(f"Expected a batch to build dynamic model '{name}'. Received: none. "
                             "Dynamic models are built when the first batch requests them.")
        store = cls._class_models if store is None else store
        return store.get_or_build(name, lambda: _build_dynamic(cls, spec, batch, config)).model


def _build_dynamic(cls: type, spec: ModelSpec, batch: Batch, config: Any) -> ModelEntry:
    takes_config = 'config' in inspect.signature(spec.fn).parameters
    try:
        descriptor = spec.fn(batch, config=config) if takes_config else spec.fn(batch)
    except Exception as exc:
        raise ModelError(f"Expected dynamic model '{cls.__name__}.{spec.name}' to build. "
                         f"Received: {type(exc).__name__}: {exc}") from exc
    from ..signals import model_built
    sender = batch.pipeline if batch.pipeline is not None else cls
    if model_built.receivers:
        model_built.send(sender, name=spec.name, model=descriptor, mode='dynamic')
    return ModelEntry(spec.name, descriptor, 'dynamic', origin=spec)
