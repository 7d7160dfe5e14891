"""@inbatch_parallel execution: one call per item in a loop, in threads, or in worker processes."""
from __future__ import annotations

import atexit
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from .._shipping import check_call_picklable, check_picklable
from .._system import CPUS
from ..errors import BatchkitTypeError, WorkerDiedError

__all__ = ['ParallelSpec', 'make_parallel_driver', 'mark_worker_process', 'shared_process_pool']


@dataclass(frozen=True)
class ParallelSpec:
    fn: Callable                       # the per-item method: fn(batch, item, *args, **kwargs)
    init: str | Callable
    post: str | Callable | None
    target: str
    n_workers: int | None


def _per_call_items(batch: Any, init: str | Callable) -> list:
    if init == 'indices':
        items = batch.indices.tolist()
    elif isinstance(init, str):
        items = getattr(batch, init)()
    else:
        items = init(batch)
    if not isinstance(items, (list, tuple)):
        items = list(items)
    return list(items)


def _post(batch: Any, post: str | Callable | None, results: list) -> Any:
    if post is None:
        return batch
    out = getattr(batch, post)(results) if isinstance(post, str) else post(batch, results)
    return batch if out is None else out


def _wait_in_order(futures: list[Future]) -> list:
    """Results in submission order; on the first error cancel what has not started and re-raise it."""
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        raise


def make_parallel_driver(spec: ParallelSpec) -> Callable:
    """The function an @inbatch_parallel action really runs: driver(batch, *args, **kwargs)."""
    fn, target = spec.fn, spec.target

    def driver(batch: Any, *args: Any, **kwargs: Any) -> Any:
        items = _per_call_items(batch, spec.init)
        if target == 'for' or len(items) <= 1 or (target == 'processes' and _IN_WORKER.is_set()):
            results = [fn(batch, item, *args, **kwargs) for item in items]
        elif target == 'threads':
            workers = min(len(items), spec.n_workers or CPUS)
            with ThreadPoolExecutor(workers, thread_name_prefix='batchkit-inbatch') as pool:
                results = _wait_in_order([pool.submit(fn, batch, item, *args, **kwargs) for item in items])
        else:
            results = _run_in_processes(spec, batch, items, args, kwargs)
        return _post(batch, spec.post, results)

    driver.__name__ = fn.__name__
    driver.__qualname__ = getattr(fn, '__qualname__', fn.__name__)
    return driver


# --- processes ---------------------------------------------------------------------------------------------
# NOTE [ No pools in workers ]
# A process that already runs batch heads for a prefetch or Dask engine (see remote.RemoteHead) runs
# target='processes' calls in a loop: the engine's pool already uses every core, and a pool started from a
# pool worker would multiply the processes (and can hang on start-up).
_IN_WORKER = threading.Event()


def mark_worker_process() -> None:
    """Called in engine worker processes: @inbatch_parallel(target='processes') runs its calls in a loop there."""
    _IN_WORKER.set()


_pool_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def shared_process_pool() -> ProcessPoolExecutor:
    """A process pool kept for the life of the program (spawned once: starting processes is slow)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(CPUS, mp_context=multiprocessing.get_context('spawn'))
        return _pool


def _discard_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(_discard_pool)


def _run_chunk(batch: Any, name: str, items: list, args: tuple, kwargs: dict) -> list:
    fn = type(batch).actions[name].parallel.fn
    return [fn(batch, item, *args, **kwargs) for item in items]


def _run_in_processes(spec: ParallelSpec, batch: Any, items: list, args: tuple, kwargs: dict) -> list:
    name = spec.fn.__name__
    what = f"@inbatch_parallel action '{name}'"
    check_call_picklable(spec.fn, args, kwargs, what, skip=2)       # fn(self, item, *args, **kwargs)
    check_picklable({'items from init': items}, what)
    if type(batch).actions.get(name) is None:
        raise BatchkitTypeError(f"Expected '{name}' to be an action of {type(batch).__name__} to run it in processes.")
    pool = shared_process_pool()
    n = min(len(items), spec.n_workers or CPUS)
    chunks = [items[i::n] for i in range(n)]
    batch.gather()
    try:
        futures = [pool.submit(_run_chunk, batch, name, chunk, args, kwargs) for chunk in chunks]
        parts = _wait_in_order(futures)
    except BrokenProcessPool as exc:
        _discard_pool()
        raise WorkerDiedError(
            f"Expected the worker processes of @inbatch_parallel action '{name}' to finish. Received: a worker "
            "process died abruptly (killed, os._exit or out of memory). The pool was discarded; a new one "
            "starts on the next call.") from exc
    results: list = [None] * len(items)
    for i, part in enumerate(parts):
        results[i::n] = part
    return results
