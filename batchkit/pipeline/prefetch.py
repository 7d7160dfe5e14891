"""Engines that run the head of the ops ahead of the consumer: threads, processes, any Executor, Dask.

NOTE [ Head and tail ]
Ops are split once per run. The head is the longest prefix of ops that touch no shared state: no model, no
variable read or write (V, M), nothing marked `ordered`; for other processes also no `use_lock` action (a lock
cannot span processes). The head of each batch runs in a worker, up to `prefetch` batches ahead; the tail runs on
the consuming side in batch order. So with prefetch, models and variables see the batches in the same order as
without it, and a seeded run gives the same results for any engine (each batch's generator depends only on the
run's seed and the batch's position, see Batch.random).

NOTE [ Shipping ]
A worker process cannot receive the decorated actions (wrapt wrappers do not pickle) nor the pipeline. It gets
the batch (its own gathered rows; the class travels by import path) and a recipe: (action name, args, kwargs)
triples with run constants (C, D) folded in. It looks each action up in the batch class's registry.
"""
from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

from .._shipping import check_picklable
from ..decorators import invoke_action
from ..errors import BatchkitValueError, SkipBatch, StopPipeline, WorkerDiedError
from .expressions import evaluate
from .ops import adopt

__all__ = ['SKIPPED', 'STOPPED', 'Engine', 'RemoteEngine', 'make_engine', 'make_recipe', 'run_ops', 'run_recipe',
           'split_head']


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> str:
        return self.name          # pickles as a reference to the module-level instance

    def __repr__(self) -> str:
        return self.name


SKIPPED = _Marker('SKIPPED')
STOPPED = _Marker('STOPPED')


def run_ops(ops: list, batch: Any, pipeline: Any) -> Any:
    """Apply `ops` in turn; SkipBatch/StopPipeline become the SKIPPED/STOPPED markers."""
    try:
        for op in ops:
            batch = op(batch, pipeline)
    except SkipBatch:
        return SKIPPED
    except StopPipeline:
        return STOPPED
    return batch


def run_recipe(batch: Any, recipe: tuple) -> Any:
    """The head of one batch in another process: look the actions up by name and run them."""
    try:
        for name, args, kwargs in recipe:
            spec = type(batch).actions[name]
            result = invoke_action(spec, batch, evaluate(args, batch, None), evaluate(kwargs, batch, None))
            batch = adopt(result, batch, f"action '{name}'")
    except SkipBatch:
        return SKIPPED
    except StopPipeline:
        return STOPPED
    return batch


class Engine:
    """Runs the head of each batch, at most `window` batches ahead, and hands out futures in batch order."""

    remote = False

    def __init__(self, executor: Executor, window: int, owned: bool, closer: Callable[[], None] | None = None) -> None:
        self.executor, self.window, self.owned, self.closer = executor, window, owned, closer

    def submit(self, head: Callable, batch: Any) -> Future:
        return self.executor.submit(head, batch)

    def ordered(self, head: Callable, jobs: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Future]]:
        pending: deque[tuple[Any, Future]] = deque()
        try:
            for meta, batch in jobs:
                pending.append((meta, self.submit(head, batch)))
                if len(pending) >= self.window:
                    yield pending.popleft()
            while pending:
                yield pending.popleft()
        finally:
            for _, future in pending:
                future.cancel()

    def result(self, future: Future) -> Any:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise WorkerDiedError("Expected the worker processes to finish their batches. Received: a worker "
                                  "process died abruptly (killed, os._exit or out of memory).") from exc
        except Exception as exc:
            if type(exc).__name__ == 'KilledWorker':
                raise WorkerDiedError(f"Expected the Dask workers to finish their batches. Received: {exc}") from exc
            raise

    def close(self) -> None:
        if self.owned:
            self.executor.shutdown(wait=True, cancel_futures=True)
        if self.closer is not None:
            self.closer()


class RemoteEngine(Engine):
    """An engine whose workers live in other processes: they get a recipe instead of ops (NOTE [ Shipping ])."""

    remote = True


def _spawn_pool(n: int) -> ProcessPoolExecutor:
    # 'spawn': forking a process that runs threads (or TensorFlow) can deadlock the child.
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context('spawn'))


def make_engine(prefetch: int, target: str, executor: Executor | None, engine: str | None,
                address: str | None) -> Engine | None:
    """The engine for the run's options, or None to run every op inline (prefetch=0)."""
    window = prefetch if prefetch else 2
    if engine is not None:
        if engine != 'dask':
            raise BatchkitValueError(f"Expected engine='dask' or None. Received: engine={engine!r}")
        from .dask_engine import open_dask_executor
        dask_executor, closer = open_dask_executor(address)
        return RemoteEngine(dask_executor, window, owned=False, closer=closer)
    if executor is not None:
        if isinstance(executor, ThreadPoolExecutor):
            return Engine(executor, window, owned=False)
        return RemoteEngine(executor, window, owned=False)
    if not prefetch:
        return None
    if target == 'threads':
        return Engine(ThreadPoolExecutor(prefetch, thread_name_prefix='batchkit-prefetch'), window, owned=True)
    if target == 'processes':
        return RemoteEngine(_spawn_pool(prefetch), window, owned=True)
    raise BatchkitValueError(f"Expected target='threads' or 'processes'. Received: target={target!r}")


def split_head(ops: list, remote: bool) -> tuple[list, list]:
    """The head (see NOTE [ Head and tail ]) and the tail of `ops`."""
    for i, op in enumerate(ops):
        if op.ordered or (remote and op.recipe is None):
            return ops[:i], ops[i:]
    return list(ops), []


def make_recipe(head: list) -> tuple:
    """The picklable form of the head ops; raises an error naming any argument that does not pickle."""
    recipe = tuple(op.recipe for op in head)
    for name, args, kwargs in recipe:
        check_picklable({'args': args, 'kwargs': kwargs}, f"action '{name}'")
    return recipe

