"""Checks that work sent to other processes pickles, naming the argument that does not."""
from __future__ import annotations

import pickle
from typing import Any

from .errors import BatchkitTypeError

__all__ = ['check_picklable']


def _first_unpicklable(obj: Any, path: str) -> tuple[str, BaseException] | None:
    try:
        pickle.dumps(obj)
        return None
    except Exception as exc:  # noqa: BLE001 - any pickling failure is what we look for
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


def check_picklable(obj: Any, what: str) -> None:
    """Raise BatchkitTypeError naming the part of `obj` that cannot be sent to another process."""
    found = _first_unpicklable(obj, 'arguments')
    if found is None:
        return
    path, exc = found
    raise BatchkitTypeError(
        f"Expected the arguments of {what} to pickle, to send them to worker processes. Received: {path} "
        f"cannot be pickled ({type(exc).__name__}: {exc}). Use a module-level function instead of a lambda or "
        "closure, or run with target='threads'.") from exc
