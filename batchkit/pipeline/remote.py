"""Heads in other processes: what travels to a worker process and back, and the engine over such an executor.

NOTE [ Shipping ]
A worker process cannot receive the decorated actions (wrapt wrappers do not pickle) nor the pipeline. It gets
the head once (RemoteHead: the recipe, (action name, args, kwargs) triples with run constants (C, D) folded in,
and the batch class, see NOTE [ Classes by value ]), and for each batch the batch's state: its own gathered rows,
never the dataset. It looks each action up in the batch class's registry. It sends back only what the head
changed (NOTE [ Changed components ]).
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

import numpy as np

from .._shipping import check_main_guard, pickles
from ..errors import BatchkitTypeError
from ..index import DatasetIndex
from .prefetch import SKIPPED, STOPPED, Done, Engine, run_recipe

__all__ = ['RemoteEngine', 'RemoteHead', 'Sent', 'rebuild']

_HEADS: dict[str, 'RemoteHead'] = {}        # in a worker: the heads unpickled so far, by token


def _class_blob(batch_class: type) -> bytes | None:
    """The class pickled by value when a worker process cannot import it (NOTE [ Classes by value ])."""
    if batch_class.__module__ != '__main__':
        return None
    try:
        import cloudpickle
    except ImportError:           # a script's __main__ is imported again by spawned workers: by reference works
        return None
    return cloudpickle.dumps(batch_class)


def _installed_head(token: str, recipe: tuple, batch_class: type | None, blob: bytes | None) -> 'RemoteHead':
    head = _HEADS.get(token)
    if head is None:
        if len(_HEADS) > 16:
            _HEADS.clear()        # heads of finished runs
        head = _HEADS[token] = RemoteHead.__new__(RemoteHead)
        head.recipe, head.batch_class = recipe, batch_class if blob is None else pickle.loads(blob)
        head.token, head._blob = token, blob
    return head


def _install(head: 'RemoteHead') -> None:
    """A pool's initializer: the head arrives once per worker process (unpickling it installs it)."""


def _run_installed(token: str, state: dict) -> Any:
    return _HEADS[token](state)


# NOTE [ Changed components ]
# A worker sends back only the entries of the batch's state the head changed; the consumer takes the others from
# the state it sent. An entry is unchanged when the head left the very object it received in place and that object
# cannot have been changed in place: None, numbers, strings, an index (its items never change), or a
# numeric array whose shape, dtype and bytes are the same as on arrival (a copy is kept while the head runs).
# Anything else (a list, a dict, an object array, a new object) goes back.
_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, DatasetIndex)


def _fingerprint(array: np.ndarray) -> tuple:
    # The shape and dtype too: `a.shape = ...` changes an array in place and keeps its bytes.
    return array.shape, array.dtype.str, array.tobytes()


def _snapshot(state: dict) -> dict[str, tuple]:
    return {key: _fingerprint(value) for key, value in state.items()
            if isinstance(value, np.ndarray) and not value.dtype.hasobject}


def _unchanged(value: Any, sent: Any, snapshot: tuple | None) -> bool:
    if value is not sent:
        return False
    if isinstance(value, _IMMUTABLE):
        return True
    return snapshot is not None and _fingerprint(value) == snapshot


class RemoteHead:
    """A picklable callable running a recipe on a batch's state in a worker process.

    It returns (changed entries of the state, names of the entries to keep from the sent state, the batch's
    generator), pickled: `Batch.__getstate__` drops the generator, and the tail must go on drawing from the
    stream the head drew from, as it does in-process (NOTE [ Shipping ]).

    NOTE [ Classes by value ]
    Dask (cloudpickle) pickles a class defined in `__main__` by value, and a worker of a Jupyter kernel cannot
    import the kernel's `__main__` at all. So the class travels with the head (by value, with cloudpickle, when it
    lives in `__main__`), and each batch travels as its state (`__getstate__`), rebuilt in the worker with that
    class and back here with the consumer's own class. A worker unpickles a head once (cached by the run's token),
    not once per batch. The class's registries and model store are not in its __dict__ (see NOTE [ Registries ] in
    batch/base.py), so no lock travels.
    """

    def __init__(self, recipe: tuple, batch_class: type) -> None:
        self.recipe, self.batch_class = recipe, batch_class
        self.token = os.urandom(16).hex()
        self._blob = _class_blob(batch_class)

    def __reduce__(self) -> tuple:
        return _installed_head, (self.token, self.recipe, None if self._blob else self.batch_class, self._blob)

    def __call__(self, state: dict) -> Any:
        from ..batch.parallel import mark_worker_process
        mark_worker_process()                  # NOTE [ No pools in workers ] in batch/parallel.py
        batch = self.batch_class.__new__(self.batch_class)
        batch.__setstate__(state)
        snapshot = _snapshot(state)
        batch = run_recipe(batch, self.recipe)
        if batch is SKIPPED or batch is STOPPED:
            return batch
        out = batch.__getstate__()
        changed = {key: value for key, value in out.items()
                   if key not in state or not _unchanged(value, state[key], snapshot.get(key))}
        kept = [key for key in out if key not in changed]
        # Pickled here, not by the executor, so that an attribute that cannot travel back is named.
        try:
            return pickle.dumps((changed, kept, batch._random), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise _unpicklable_batch(batch, exc) from exc


def rebuild(shipped: bytes, sent: dict, batch_class: type) -> Any:
    """A batch back from a worker, rebuilt with this process's class from what it sent and what came back."""
    changed, kept, rng = pickle.loads(shipped)
    state = {key: sent[key] for key in kept}
    state.update(changed)
    batch = batch_class.__new__(batch_class)
    batch.__setstate__(state)
    batch._random = rng
    return batch


class Sent:
    """A batch's state sent to a worker and the future of what comes back: `result()` is the rebuilt batch."""

    __slots__ = ('future', 'state', 'batch_class')

    def __init__(self, future: Future, state: dict, batch_class: type) -> None:
        self.future, self.state, self.batch_class = future, state, batch_class

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> Any:
        shipped = self.future.result()
        if shipped is SKIPPED or shipped is STOPPED:
            return shipped
        return rebuild(shipped, self.state, self.batch_class)

    def cancel(self) -> bool:
        return self.future.cancel()


def _unpicklable_batch(batch: Any, exc: Exception) -> BatchkitTypeError:
    names = [name for name, value in batch.__getstate__().items() if not pickles(value)]
    return BatchkitTypeError(
        f"Expected the batch to pickle, to send it back from the worker process. Received: attribute(s) {names} "
        f"that cannot be pickled ({type(exc).__name__}: {exc}). Keep such objects out of the batch (use a pipeline "
        "variable or a model) or run with target='threads'.")


class RemoteEngine(Engine):
    """An engine whose workers live in other processes: they get a recipe instead of ops (NOTE [ Shipping ]).

    With `executor=None` it owns a pool of `workers` spawned processes, started when the run's head is known so
    that the head reaches each process once, with the pool's initializer.
    """

    remote = True

    def __init__(self, executor: Executor | None, window: int, owned: bool, closer: Callable[[], None] | None = None,
                 workers: int = 0) -> None:
        if executor is None:
            # 'spawn': forking a process that runs threads (or TensorFlow) can deadlock the child.
            check_main_guard("a run with target='processes'")
        super().__init__(executor, window, owned, closer)
        self.workers = workers

    def ordered(self, head: Callable, jobs: Iterable[tuple[Any, Any]],
                total: int | None = None) -> Iterator[tuple[Any, Any]]:
        if self.executor is None:
            self.executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context('spawn'),
                                                initializer=_install, initargs=(head,))
            head = functools.partial(_run_installed, head.token)
        return super().ordered(head, jobs, total)

    def submit(self, head: Callable, batch: Any, executor: Executor | None = None) -> Any:
        if isinstance(batch, Done):
            return batch          # settled before shipping (see split_head): nothing for a worker to do
        state = batch.__getstate__()
        # The batch's state travels, not the batch: its class goes with the head (NOTE [ Classes by value ]).
        return Sent(super().submit(head, state, executor), state, type(batch))

    def close(self) -> None:
        if self.executor is None:
            self.owned = False    # no batch came: no pool was started
        super().close()
