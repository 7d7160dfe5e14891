"""@action, @model and @inbatch_parallel: they mark functions; BatchMeta collects the marks."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import wrapt

from .errors import BatchkitTypeError, BatchkitValueError
from .index import _check_bool, _check_positive_int

__all__ = ['ActionSpec', 'ModelSpec', 'action', 'describe_call', 'describe_params', 'inbatch_parallel', 'invoke_action',
           'model']

MODEL_MODES = ('static', 'dynamic')
PARALLEL_TARGETS = ('threads', 'for', 'processes')
_SPEC_ATTR = '__batchkit_spec__'


@dataclass(frozen=True)
class ActionSpec:
    """What `@action` records about a method."""
    name: str
    fn: Callable                     # the undecorated function: fn(batch, *args, **kwargs)
    model: str | None = None         # a model whose descriptor is passed after self
    use_lock: bool | str | None = None
    lock_timeout: float | None = None
    ordered: bool = False            # must run in batch order, on the consuming side (see prefetch.py)
    parallel: Any = None             # a batch.parallel.ParallelSpec for @inbatch_parallel methods

    @property
    def lock_key(self) -> tuple[str, str] | None:
        if not self.use_lock:
            return None
        if isinstance(self.use_lock, str):
            return ('named', self.use_lock)
        return ('action', self.name)

    @property
    def is_plain(self) -> bool:
        """True when calling `fn` directly is all an invocation does (the runner's fast path)."""
        return self.model is None and not self.use_lock and self.parallel is None


@dataclass(frozen=True)
class ModelSpec:
    """What `@model` records about a model definition method."""
    name: str
    mode: str
    fn: Callable


def spec_of(obj: Any) -> ActionSpec | ModelSpec | None:
    """The ActionSpec/ModelSpec marked on `obj`, if any."""
    spec = getattr(obj, _SPEC_ATTR, None) if isinstance(obj, wrapt.FunctionWrapper) else None
    return spec if isinstance(spec, (ActionSpec, ModelSpec)) else None


def describe_params(params: Any) -> str:
    """Parameters as a user writes them: names and defaults, no annotations (they are strings here)."""
    shown = []
    for p in params:
        text = ('*' if p.kind is p.VAR_POSITIONAL else '**' if p.kind is p.VAR_KEYWORD else '') + p.name
        shown.append(text if p.default is p.empty else f'{text}={p.default!r}')
    return ', '.join(shown)


def describe_call(name: str, args: tuple, kwargs: Any) -> str:
    """The call as the user wrote it: `name(1, 'a', key=2)`."""
    parts = [f'{a!r:.40}' for a in args] + [f'{k}={v!r:.40}' for k, v in dict(kwargs).items()]
    return f"{name}({', '.join(parts)})"


def invoke_action(spec: ActionSpec, batch: Any, args: tuple, kwargs: dict) -> Any:
    """Run an action on a batch: inject the model descriptor, hold the lock, return the batch."""
    if spec.model is not None:
        args = (batch.get_model_by_name(spec.model), *args)
    if spec.use_lock:
        with batch.locks.hold(spec.lock_key, spec.lock_timeout, what=f"the lock of action '{spec.name}'"):
            result = spec.fn(batch, *args, **kwargs)
    else:
        result = spec.fn(batch, *args, **kwargs)
    return batch if result is None else result


def _mark(fn: Callable, spec: ActionSpec | ModelSpec, wrapper: Callable) -> wrapt.FunctionWrapper:
    proxy = wrapt.FunctionWrapper(fn, wrapper)
    setattr(proxy, _SPEC_ATTR, spec)   # stored on the function itself: a mark, not a rewrite
    return proxy


def _check_lock_options(use_lock: Any, lock_timeout: Any) -> None:
    if use_lock is not None and not isinstance(use_lock, (bool, str)):
        raise BatchkitTypeError(
            f"Expected `use_lock` to be True, False or a lock name (str). Received: use_lock={use_lock!r}")
    if lock_timeout is not None and (isinstance(lock_timeout, (bool, np.bool_))
                                     or not isinstance(lock_timeout, (int, float, np.integer, np.floating))):
        raise BatchkitTypeError(f"Expected `lock_timeout` to be a positive number of seconds or None. "
                                f"Received: lock_timeout={lock_timeout!r} of type {type(lock_timeout).__name__}")
    if lock_timeout is not None and lock_timeout <= 0:
        raise BatchkitValueError(
            f"Expected `lock_timeout` to be a positive number of seconds or None. Received: lock_timeout={lock_timeout!r}")


def action(fn: Callable | None = None, /, *, model: str | None = None, use_lock: bool | str | None = None,
           lock_timeout: float | None = None, ordered: bool = False) -> Any:
    """Mark a batch method as an action that pipelines can chain.

    Args:
        model: name of a `@model` whose descriptor is passed as the first argument after self.
        use_lock: True for a lock of this action, a str for a lock shared by every action naming it.
        lock_timeout: seconds to wait for the lock before raising LockTimeoutError (None waits forever).
        ordered: run in batch order on the consuming side under prefetch (for actions with side effects).

    >>> class MyBatch(Batch):
    ...     @action
    ...     def double(self):
    ...         self.x = self.x * 2
    ...         return self
    """
    if fn is None:
        return functools.partial(action, model=model, use_lock=use_lock, lock_timeout=lock_timeout, ordered=ordered)
    if not callable(fn):
        raise BatchkitTypeError(f"Expected @action to decorate a function. Received: {fn!r}")
    if model is not None and not isinstance(model, str):
        raise BatchkitTypeError(f"Expected `model` to be a model name (str). Received: model={model!r}")
    _check_lock_options(use_lock, lock_timeout)
    _check_bool('ordered', ordered)
    spec = ActionSpec(fn.__name__, fn, model, use_lock, lock_timeout, bool(ordered) or model is not None)
    return _mark(fn, spec, _action_wrapper(spec))


def _action_wrapper(spec: ActionSpec) -> Callable:
    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        if instance is None:
            raise BatchkitTypeError(
                f"Expected action '{spec.name}' to be called on a batch. Received: a call through the class "
                f"with no batch. Call it as batch.{spec.name}(...) or chain it in a pipeline.")
        return invoke_action(spec, instance, args, kwargs)
    return wrapper


def model(fn: Callable | None = None, /, *, mode: str = 'static') -> Any:
    """Mark a batch-class method as a model definition returning a model descriptor (any object).

    A static definition takes no arguments and is compiled once, when its class is created. A dynamic one
    receives the first batch that requests it (and `config=`, the pipeline config under its name).
    Definitions are never called by the user: actions receive the descriptor via `@action(model=name)`.
    """
    if fn is None:
        return functools.partial(model, mode=mode)
    if mode not in MODEL_MODES:
        raise BatchkitValueError(f"Expected `mode` to be one of {MODEL_MODES}. Received: mode={mode!r}")
    if not callable(fn):
        raise BatchkitTypeError(f"Expected @model to decorate a function. Received: {fn!r}")
    spec = ModelSpec(fn.__name__, mode, fn)

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        raise BatchkitTypeError(
            f"Expected model definition '{spec.name}' to be used by batchkit only: it is never called directly. "
            f"Received: a direct call. "
            f"Use @action(model='{spec.name}') to get its descriptor as an action argument, "
            f"or batch.get_model_by_name('{spec.name}') inside an action.")
    return _mark(fn, spec, wrapper)


def inbatch_parallel(init: str | Callable = 'indices', post: str | Callable | None = None, target: str = 'threads',
                     n_workers: int | None = None, **action_options: Any) -> Callable:
    """Make an action out of a per-item method: it runs once per item, in threads, in a loop or in processes.

    Args:
        init: 'indices' (one call per item id), or a method name / callable returning the list of per-call
            arguments; each element is passed as the first argument after self.
        post: a method name or callable receiving the list of results and returning the batch; without it
            results are ignored and the batch is returned.
        target: 'threads', 'for' (sequential) or 'processes' (the method runs on a copy of the batch in
            worker processes; only its return values come back, through `post`).
        n_workers: the number of threads or processes (default: the number of CPUs).
        action_options: passed to @action (use_lock, lock_timeout, ordered, model).
    """
    from .batch.parallel import ParallelSpec, make_parallel_driver

    if target not in PARALLEL_TARGETS:
        raise BatchkitValueError(f"Expected `target` to be one of {PARALLEL_TARGETS}. Received: target={target!r}")
    if n_workers is not None:
        n_workers = _check_positive_int('n_workers', n_workers, 'a positive int or None')
    _check_lock_options(action_options.get('use_lock'), action_options.get('lock_timeout'))
    _check_bool('ordered', action_options.get('ordered', False))

    def decorate(fn: Callable) -> wrapt.FunctionWrapper:
        parallel = ParallelSpec(fn, init, post, target, n_workers)
        spec = ActionSpec(fn.__name__, make_parallel_driver(parallel), action_options.get('model'),
                          action_options.get('use_lock'), action_options.get('lock_timeout'),
                          bool(action_options.get('ordered')) or action_options.get('model') is not None, parallel)
        return _mark(fn, spec, _action_wrapper(spec))
    return decorate
