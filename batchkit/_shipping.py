"""Checks that work sent to other processes pickles, naming the argument that does not."""
from __future__ import annotations

import ast
import functools
import inspect
import os
import pickle
import sys
from collections.abc import Callable
from typing import Any

from .errors import BatchkitRuntimeError, BatchkitTypeError

__all__ = ['check_call_picklable', 'check_main_guard', 'check_picklable', 'pickles']

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


def _is_main_guard(node: ast.AST) -> bool:
    test = getattr(node, 'test', None)
    if not isinstance(node, ast.If) or not isinstance(test, ast.Compare) or len(test.comparators) != 1:
        return False
    sides = {type(side).__name__: side for side in (test.left, test.comparators[0])}
    name, const = sides.get('Name'), sides.get('Constant')
    return name is not None and const is not None and name.id == '__name__' and const.value == '__main__'


@functools.lru_cache(maxsize=8)
def _guarded_lines(path: str, mtime: float) -> tuple[tuple[int, int], ...] | None:
    """The line spans of the script's top-level `if __name__ == '__main__':` blocks (None: unreadable)."""
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return None
    return tuple((node.lineno, node.end_lineno or node.lineno) for node in tree.body if _is_main_guard(node))


def check_main_guard(what: str) -> None:
    """Raise BatchkitRuntimeError when a script starts worker processes from its unguarded top level.

    Spawned workers import the main script again; a pool started by its top-level code would start again
    in each of them, and they die while starting. The error names the guard instead of a dead worker.
    """
    main = sys.modules.get('__main__')
    path = getattr(main, '__file__', None)
    if main is None or not path or not os.path.isfile(path):
        return                    # interactive, Jupyter, python -c: nothing is imported again
    frame, lineno = sys._getframe(1), None
    while frame is not None:
        if frame.f_globals is vars(main) and frame.f_code.co_name == '<module>':
            lineno = frame.f_lineno
        frame = frame.f_back
    if lineno is None:
        return                    # not called from the script's top level (a thread, an imported module)
    spans = _guarded_lines(path, os.path.getmtime(path))
    if spans is None or any(start <= lineno <= end for start, end in spans):
        return
    raise BatchkitRuntimeError(
        f"Expected {what} to start from inside an `if __name__ == '__main__':` block of the script. Received: a "
        f"call from the top level of {os.path.basename(path)} (line {lineno}). Worker processes import the script "
        "again and would run it again. Move the run under `if __name__ == '__main__':`, or use target='threads'.")
