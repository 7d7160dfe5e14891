"""Steps (what a chain records) and ops (what a run executes per batch, compiled once per run)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..decorators import ActionSpec, invoke_action
from ..errors import ActionError
from .expressions import M, V, evaluate, fold, has_expressions, iter_expressions

__all__ = ['ActionOp', 'BuiltinOp', 'Op', 'Step', 'TimedOp', 'save_to']


@dataclass(frozen=True, eq=False)
class Step:
    """One call recorded by a chain: `name(*args, **kwargs)`, resolved to an action or a built-in at run start."""
    name: str
    args: tuple
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def _touches_shared_state(*objs: Any) -> bool:
    return any(isinstance(e, (V, M)) for obj in objs for e in iter_expressions(obj))


class Op:
    """A compiled step: `op(batch, pipeline) -> batch`.

    `ordered` ops run in batch order on the consuming side under prefetch; `recipe` is the picklable
    (action name, args, kwargs) that lets an op run in another process, or None if it cannot.
    """
    name: str = ''
    ordered: bool = True
    recipe: tuple | None = None

    def __call__(self, batch: Any, pipeline: Any) -> Any:
        raise NotImplementedError


def adopt(result: Any, batch: Any, what: str) -> Any:
    """The batch an op hands on: `batch` when the callee returned None or itself, else the new batch, attached."""
    if result is None or result is batch:
        return batch
    from ..batch.base import Batch
    if not isinstance(result, Batch):
        raise ActionError(f"Expected {what} to return a batch (self or a new one) or None. "
                          f"Received: {type(result).__name__} {result!r:.60}. End the action with `return self`.")
    if result._run_info is None:
        result._attach(batch.pipeline, batch._run_info, batch._pos, batch._locks)
    return result


class ActionOp(Op):
    """A batch-class action with its arguments (named expressions evaluated per batch)."""

    def __init__(self, spec: ActionSpec, cls: type, args: tuple, kwargs: dict, pipeline: Any) -> None:
        self.name, self.spec, self.cls = spec.name, spec, cls
        self.fn, self.plain = spec.fn, spec.is_plain          # the fast path, looked up once per run
        self.args, self.kwargs = fold(args, pipeline), fold(kwargs, pipeline)
        self.dynamic = has_expressions(self.args) or has_expressions(self.kwargs)
        self.ordered = spec.ordered or _touches_shared_state(self.args, self.kwargs)
        self.recipe = None if (self.ordered or spec.use_lock) else (self.name, self.args, self.kwargs)

    def __call__(self, batch: Any, pipeline: Any) -> Any:
        if self.dynamic:
            args, kwargs = evaluate(self.args, batch, pipeline), evaluate(self.kwargs, batch, pipeline)
        else:
            args, kwargs = self.args, self.kwargs
        if type(batch) is self.cls:
            result = self.fn(batch, *args, **kwargs) if self.plain else invoke_action(self.spec, batch, args, kwargs)
        else:
            result = invoke_action(type(batch).actions[self.name], batch, args, kwargs)
        if result is batch or result is None:
            return batch
        return adopt(result, batch, f"action '{self.name}'")


class BuiltinOp(Op):
    """A built-in pipeline step: `fn(batch, pipeline) -> batch | None`."""

    def __init__(self, name: str, fn: Callable[[Any, Any], Any], ordered: bool = True) -> None:
        self.name, self.fn, self.ordered = name, fn, ordered

    def __call__(self, batch: Any, pipeline: Any) -> Any:
        return adopt(self.fn(batch, pipeline), batch, f"pipeline step '{self.name}'")


class TimedOp(Op):
    """An op that records its call count and time into a shared table (run(..., profile=True))."""

    def __init__(self, op: Op, table: dict, lock: threading.Lock, label: str) -> None:
        self.op, self.table, self.lock, self.label = op, table, lock, label
        self.name, self.ordered, self.recipe = op.name, op.ordered, op.recipe

    def __call__(self, batch: Any, pipeline: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.op(batch, pipeline)
        finally:
            elapsed = time.perf_counter() - start
            with self.lock:
                row = self.table.setdefault(self.label, [0, 0.0])
                row[0] += 1
                row[1] += elapsed


def save_to(targets: Any, value: Any, batch: Any, pipeline: Any, mode: str = 'w') -> None:
    """Store `value` into one target or, for a list/tuple of targets, each item of `value` into each target.

    A target is B('component'), V('variable'[, mode=...]) or a name: a component if the batch has it,
    else a variable. The mode inside V wins over `mode`.
    """
    from .variables import normalize_mode
    if isinstance(targets, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(targets):
            from ..errors import BatchkitValueError
            got = f'{type(value).__name__} of length {len(value)}' if isinstance(value, (list, tuple)) else type(value).__name__
            raise BatchkitValueError(f"Expected {len(targets)} values for the {len(targets)} targets of save_to. "
                                     f"Received: {got}. Return one value per target.")
        for target, item in zip(targets, value):
            save_to(target, item, batch, pipeline, mode)
        return
    if isinstance(targets, str):
        if batch is not None and targets in batch.component_names:
            from .expressions import B
            targets = B(targets)
        else:
            targets = V(targets)
    own_mode = getattr(targets, 'mode', None)
    if not hasattr(targets, 'set'):
        from ..errors import BatchkitTypeError
        raise BatchkitTypeError(f"Expected save_to to be B('name'), V('name'), a name or a list of them. "
                                f"Received: {targets!r}")
    targets.set(value, batch, pipeline, normalize_mode(own_mode or mode))
