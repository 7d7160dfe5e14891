"""Built-in pipeline steps: each has an optional chain-time effect and compiles to an op for a run."""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import BatchkitTypeError
from .expressions import evaluate, fold
from .ops import BuiltinOp, Op, save_to
from .ops import save_to as store_result   # for steps whose `save_to` argument shadows the function

__all__ = ['BUILTINS', 'Builtin', 'check_save', 'register_builtin', 'store_result']


@dataclass(frozen=True)
class Builtin:
    name: str
    compile: Callable[..., Op | None]                  # compile(pipeline, *args, **kwargs) at run start
    on_chain: Callable[..., None] | None = None         # on_chain(pipeline, *args, **kwargs) when chained


BUILTINS: dict[str, Builtin] = {}


def register_builtin(name: str, on_chain: Callable[..., None] | None = None) -> Callable:
    def decorate(compile_fn: Callable[..., Op | None]) -> Callable[..., Op | None]:
        BUILTINS[name] = Builtin(name, compile_fn, on_chain)
        return compile_fn
    return decorate


# --- variables ----------------------------------------------------------------------------------------------
def _declare(pipeline: Any, name: str, default: Any = None, init_on_each_run: Any = None) -> None:
    pipeline.variables.declare(name, default, init_on_each_run)


def _declare_many(pipeline: Any, *names: Any) -> None:
    if len(names) == 1 and isinstance(names[0], dict):
        for name, default in names[0].items():
            pipeline.variables.declare(name, default)
        return
    flat = names[0] if len(names) == 1 and isinstance(names[0], (list, tuple)) else names
    for name in flat:
        pipeline.variables.declare(name, None)


@register_builtin('init_variable', on_chain=_declare)
def _compile_init_variable(pipeline: Any, name: str, default: Any = None, init_on_each_run: Any = None) -> None:
    return None          # declared when chained; fresh values are made at each run start


@register_builtin('init_variables', on_chain=_declare_many)
def _compile_init_variables(pipeline: Any, *names: Any) -> None:
    return None


def _check_target(target: Any) -> None:
    """Fail when chained, not mid-run, on a save target that is not B('name'), V('name'), a name or a list of them."""
    from .expressions import B, V
    targets = target if isinstance(target, (list, tuple)) else [target]
    for item in targets:
        if not (isinstance(item, (B, V, str)) and (not isinstance(item, B) or item.name is not None)):
            raise BatchkitTypeError(f"Expected save_to to be B('name'), V('name'), a name or a list of them. "
                                    f"Received: {item!r:.60}")


def check_save(target: Any, mode: str, append_to: Any = None) -> None:
    """Fail when chained on a save target or an update mode that would only fail mid-run."""
    from .variables import normalize_mode
    normalize_mode(mode)
    if target is not None and append_to is not None:
        raise BatchkitTypeError(f"Expected one target: save_to= or the older append_to=. Received: "
                                f"save_to={target!r} and append_to={append_to!r}. Pass save_to=..., mode='a' "
                                "to append.")
    for each in (target, append_to):
        if each is not None:
            _check_target(each)


def save_target(save_to: Any, mode: str, append_to: Any) -> tuple[Any, str]:
    """The target and mode of a step given `save_to=`/`mode=` or the seed-era `append_to=` (mode 'a')."""
    return (append_to, 'a') if append_to is not None else (save_to, mode)


def _check_update(pipeline: Any, target: Any, value: Any, mode: str = 'w') -> None:
    check_save(target, mode)


@register_builtin('update', on_chain=_check_update)
def _compile_update(pipeline: Any, target: Any, value: Any, mode: str = 'w') -> Op:
    value = fold(value, pipeline)

    def update(batch: Any, pipe: Any) -> None:
        with pipe.variables.transaction():     # read and write under one lock: NOTE [ Atomic updates ]
            save_to(target, evaluate(value, batch, pipe), batch, pipe, mode)
    return BuiltinOp('update', update)


def _check_call(pipeline: Any, fn: Callable, *args: Any, save_to: Any = None, mode: str = 'w', append_to: Any = None,
                **kwargs: Any) -> None:
    if not callable(fn):
        raise BatchkitTypeError(f"Expected call(fn, ...) to get a callable. Received: {type(fn).__name__} {fn!r:.60}")
    check_save(save_to, mode, append_to)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):       # a builtin or a callable Python cannot introspect: nothing to check
        return
    try:
        signature.bind(None, *args, **kwargs)
    except TypeError as exc:
        name = getattr(fn, '__qualname__', type(fn).__name__)
        raise BatchkitTypeError(f"Expected call(fn, *args, **kwargs) to fit fn{signature}, which receives the batch "
                                f"first, then the arguments. Received: {name}: {exc}. Give fn a first parameter "
                                "for the batch and pass the arguments it takes.") from None


@register_builtin('call', on_chain=_check_call)
def _compile_call(pipeline: Any, fn: Callable, *args: Any, save_to: Any = None, mode: str = 'w',
                  append_to: Any = None, **kwargs: Any) -> Op:
    # fn and the targets were checked when chained (_check_call)
    args, kwargs = fold(args, pipeline), fold(kwargs, pipeline)
    target, mode = save_target(save_to, mode, append_to)
    from ..batch.base import Batch
    from .expressions import V, iter_expressions
    # A call that reads variables and saves its result reads and writes under one lock (NOTE [ Atomic updates ]).
    atomic = target is not None and any(isinstance(e, V) for e in iter_expressions((args, kwargs)))

    def call(batch: Any, pipe: Any) -> Any:
        result = fn(batch, *evaluate(args, batch, pipe), **evaluate(kwargs, batch, pipe))
        if target is not None:
            store_result(target, result, batch, pipe, mode)
            return batch
        return result if isinstance(result, Batch) else batch

    def atomic_call(batch: Any, pipe: Any) -> Any:
        with pipe.variables.transaction():
            return call(batch, pipe)
    return BuiltinOp(f'call({getattr(fn, "__name__", "fn")})', atomic_call if atomic else call)
