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
the batch's state (its own gathered rows; the class travels once with the head, see NOTE [ Classes by value ])
and a recipe: (action name, args, kwargs)
triples with run constants (C, D) folded in. It looks each action up in the batch class's registry.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .._shipping import check_call_picklable, check_main_guard, pickles
from ..decorators import invoke_action
from ..errors import (
    BatchkitTypeError,
    BatchkitValueError,
    SkipBatch,
    StopPipeline,
    WorkerDiedError,
)
from .expressions import evaluate
from .ops import adopt

__all__ = ['SKIPPED', 'STOPPED', 'Done', 'Engine', 'RemoteEngine', 'RemoteHead', 'engine_kind', 'make_engine', 'make_recipe',
           'run_ops', 'run_recipe', 'split_head', 'unpack']


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


PROBE_ROUNDS = 2            # NOTE [ Adaptive threads ]


class Done:
    """A finished head, run here and now: the little of Future that the runner uses, without its lock."""

    __slots__ = ('value', 'error')

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value, self.error = value, error

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    def cancel(self) -> bool:
        return False


def _steps(stamps: list[float], span: int) -> list[float]:
    """Time per batch over each run of `span` consecutive batches (NOTE [ Adaptive threads ])."""
    return [(stamps[i + span] - stamps[i]) / span for i in range(len(stamps) - span)]


def _low_quartile(values: list[float]) -> float:
    return sorted(values)[len(values) // 4]


def _run_now(head: Callable, batch: Any) -> Done:
    """The head run here and now (an error is kept, to be raised at the batch's turn as a worker's would)."""
    try:
        return Done(head(batch))
    except Exception as exc:
        return Done(error=exc)


def _worker_died(exc: BaseException) -> WorkerDiedError:
    return WorkerDiedError("Expected the worker processes to finish their batches. Received: a worker process died "
                           "abruptly (killed, os._exit or out of memory). The run was stopped.")


class Engine:
    """Runs the head of each batch, at most `window` batches ahead, and hands out futures in batch order.

    NOTE [ Window ]
    `window` counts the batches submitted and not yet handed to the consumer. With `prefetch=N` the window is
    N + 1: while the consumer waits for batch k, batches k+1 .. k+N are submitted, so N heads keep working while
    batch k's head finishes, at most N batches are made ahead of the consumer (bounded memory), and a pool of
    N workers runs at most N heads at once. An executor given with prefetch=0 works one batch ahead.
    """

    remote = False

    def __init__(self, executor: Executor, window: int, owned: bool, closer: Callable[[], None] | None = None,
                 adaptive: bool = False) -> None:
        self.executor, self.window, self.owned, self.closer = executor, window, owned, closer
        self.adaptive = adaptive          # NOTE [ Adaptive threads ]
        self.chose_inline: bool | None = None
        self.broken = False               # a worker died: the pool lost work of other batches too

    def _died(self, error: WorkerDiedError) -> WorkerDiedError:
        """Mark the engine broken: its WorkerDiedError stops the run even under ignore_exceptions."""
        self.broken = True
        return error

    def submit(self, head: Callable, batch: Any) -> Future:
        if isinstance(batch, Done):
            return batch          # settled before shipping (see split_head): nothing for a worker to do
        try:
            return self.executor.submit(head, batch)
        except BrokenProcessPool as exc:
            raise self._died(_worker_died(exc)) from exc

    def ordered(self, head: Callable, jobs: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Future]]:
        """(meta, future of the head's result) for every job, in job order (NOTE [ Window ])."""
        pending: deque[tuple[Any, Future]] = deque()
        jobs = iter(jobs)
        try:
            if self.adaptive and (yield from self._probe(head, jobs, pending)):
                for meta, batch in jobs:
                    yield meta, _run_now(head, batch)
                    del batch
            else:
                yield from self._pooled(head, jobs, pending)
        finally:
            for _, future in pending:
                future.cancel()
            pending.clear()

    def _pooled(self, head: Callable, jobs: Iterator, pending: deque, limit: int | None = None,
                stamps: list | None = None) -> Iterator[tuple[Any, Future]]:
        for meta, batch in (jobs if limit is None else itertools.islice(jobs, limit)):
            pending.append((meta, self.submit(head, batch)))
            del batch
            if len(pending) >= self.window:
                if stamps is not None:
                    stamps.append(time.perf_counter())
                yield pending.popleft()
        while pending:
            yield pending.popleft()

    def _probe(self, head: Callable, jobs: Iterator, pending: deque) -> Iterator[tuple[Any, Future]]:
        """Time batches through the pool and inline, in turns; return True to go on inline.

        NOTE [ Adaptive threads ]
        Threads help only when heads do enough work that releases the GIL (numpy on big arrays, I/O). Handing a
        batch to a worker thread and back costs GIL-holding work and thread hand-offs, and light heads (small
        numpy ops) fight over the GIL, so such a run is slower with prefetch than without. A run on threads
        therefore starts with `PROBE_ROUNDS` rounds of `2 * window + 6` batches through the pool then 8 inline,
        timing the consumer's steady pace (time between batches handed out, its own work included, the pool's
        fill and drain left out). The pace of each mode is the lower quartile, over both rounds, of the time per
        batch (inline: each gap; pool: each run of `window` gaps, as workers hand batches out in bursts). On a
        loaded machine another process takes the core for a few ms now and then, in any round: a round's mean
        then picked the wrong mode about one run in two, while a quartile ignores such stalls. It keeps the
        pool only if its pace is at least 5% faster than inline. Inline, every batch is still processed and
        handed out in order, with the same errors; only the speed differs.
        """
        pool_steps: list[float] = []
        inline_steps: list[float] = []
        for _ in range(PROBE_ROUNDS):
            stamps: list[float] = []
            yield from self._pooled(head, jobs, pending, limit=2 * self.window + 6, stamps=stamps)
            pool_steps += _steps(stamps[1:], self.window)
            stamps = []
            for meta, batch in itertools.islice(jobs, 8):
                stamps.append(time.perf_counter())
                yield meta, _run_now(head, batch)
                del batch
            stamps.append(time.perf_counter())
            inline_steps += _steps(stamps, 1)
        if len(pool_steps) < 3 or len(inline_steps) < 3:
            return False          # the run is over (or nearly): nothing to decide
        pool_pace, inline_pace = _low_quartile(pool_steps), _low_quartile(inline_steps)
        self.chose_inline = pool_pace * 1.05 > inline_pace
        return self.chose_inline

    def result(self, future: Future) -> Any:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise self._died(_worker_died(exc)) from exc
        except Exception as exc:
            if type(exc).__name__ == 'KilledWorker':
                raise self._died(WorkerDiedError(
                    f"Expected the Dask workers to finish their batches. Received: {exc}")) from exc
            raise

    def close(self) -> None:
        try:
            if self.owned:
                self.executor.shutdown(wait=True, cancel_futures=True)
        finally:
            if self.closer is not None:
                self.closer()


class RemoteEngine(Engine):
    """An engine whose workers live in other processes: they get a recipe instead of ops (NOTE [ Shipping ])."""

    remote = True

    def submit(self, head: Callable, batch: Any) -> Future:
        # The batch's state travels, not the batch: its class goes once with the head (NOTE [ Classes by value ]).
        return super().submit(head, batch if isinstance(batch, Done) else batch.__getstate__())


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


class RemoteHead:
    """A picklable callable running a recipe on a batch's state in a worker process.

    It returns the batch's state with its generator: `Batch.__getstate__` drops the generator, and the tail must
    go on drawing from the same stream the head drew from, as it does in-process (NOTE [ Shipping ]).

    NOTE [ Classes by value ]
    Dask (cloudpickle) pickles a class defined in `__main__` by value, and a worker of a Jupyter kernel cannot
    import the kernel's `__main__` at all. So the class travels once, with the head (by value, with cloudpickle,
    when it lives in `__main__`), and each batch travels as its state (`__getstate__`), rebuilt in the worker
    with that class and back here with the consumer's own class. A worker unpickles a head once (cached by the
    run's token), not once per batch. The class's registries and model store are not in its __dict__ (see
    NOTE [ Registries ] in batch/base.py), so no lock travels.
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
        return self._run(batch)

    def _run(self, batch: Any) -> Any:
        batch = run_recipe(batch, self.recipe)
        if batch is SKIPPED or batch is STOPPED:
            return batch
        # Pickled here, not by the executor, so that an attribute that cannot travel back is named.
        try:
            return pickle.dumps((batch.__getstate__(), batch._random), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise _unpicklable_batch(batch, exc) from exc


def unpack(shipped: bytes, batch_class: type) -> Any:
    """A batch back from a worker, rebuilt with this process's class."""
    state, rng = pickle.loads(shipped)
    batch = batch_class.__new__(batch_class)
    batch.__setstate__(state)
    batch._random = rng
    return batch


def _unpicklable_batch(batch: Any, exc: Exception) -> BatchkitTypeError:
    names = [name for name, value in batch.__getstate__().items() if not pickles(value)]
    return BatchkitTypeError(
        f"Expected the batch to pickle, to send it back from the worker process. Received: attribute(s) {names} "
        f"that cannot be pickled ({type(exc).__name__}: {exc}). Keep such objects out of the batch (use a pipeline "
        "variable or a model) or run with target='threads'.")


def _spawn_pool(n: int) -> ProcessPoolExecutor:
    # 'spawn': forking a process that runs threads (or TensorFlow) can deadlock the child.
    check_main_guard("a run with target='processes'")
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context('spawn'))


def engine_kind(prefetch: int, target: str, executor: Executor | None, engine: str | None,
                address: str | None = None) -> str | None:
    """'local' (threads in this process), 'remote' (other processes) or None (no engine: run inline).

    Checks the options, so that a wrong one fails before any batch.
    """
    if engine is not None:
        if engine != 'dask':
            raise BatchkitValueError(f"Expected engine='dask' or None. Received: engine={engine!r}")
        if executor is not None:
            raise BatchkitValueError("Expected either engine='dask' or executor=, not both. Received: both. "
                                     "Pass executor=client.get_executor() alone, or engine='dask', address=... alone.")
        return 'remote'
    if address is not None:
        raise BatchkitValueError(f"Expected address= only with engine='dask'. Received: address={address!r} with "
                                 "engine=None. Add engine='dask'.")
    if executor is not None and target != 'threads':
        raise BatchkitValueError(f"Expected target= or executor=, not both: the executor decides where heads run. "
                                 f"Received: target={target!r} with executor={type(executor).__name__}.")
    if executor is not None:
        if not isinstance(executor, Executor):
            raise BatchkitTypeError(f"Expected `executor` to be a concurrent.futures.Executor. "
                                    f"Received: {type(executor).__name__}")
        return 'local' if isinstance(executor, ThreadPoolExecutor) else 'remote'
    if target not in ('threads', 'processes'):
        raise BatchkitValueError(f"Expected target='threads' or 'processes'. Received: target={target!r}")
    if not prefetch:
        return None
    return 'local' if target == 'threads' else 'remote'


def make_engine(prefetch: int, target: str, executor: Executor | None, engine: str | None,
                address: str | None) -> Engine | None:
    """The engine for the run's options, or None to run every op inline (prefetch=0)."""
    kind = engine_kind(prefetch, target, executor, engine, address)
    window = max(prefetch, 1) + 1
    if engine is not None:
        from .dask_engine import open_dask_executor
        dask_executor, closer = open_dask_executor(address)
        return RemoteEngine(dask_executor, window, owned=False, closer=closer)
    if executor is not None:
        return (Engine if kind == 'local' else RemoteEngine)(executor, window, owned=False)
    if kind is None:
        return None
    if kind == 'local':
        return Engine(ThreadPoolExecutor(min(prefetch, os.cpu_count() or 1), thread_name_prefix='batchkit-prefetch'), window, owned=True,
                      adaptive=True)
    return RemoteEngine(_spawn_pool(prefetch), window, owned=True)


def split_head(ops: list, remote: bool) -> tuple[list, list, list]:
    """(lead, head, tail) of `ops` (see NOTE [ Head and tail ]).

    For workers in other processes, the lead is the leading run of ops that need no order but cannot be shipped
    (`init_model`, `import_model`, `use_lock` actions): they run here, on each batch before it is sent, so a chain
    that starts with `init_model` still ships its preprocessing. In-process workers run them in the head.
    """
    lead: list = []
    if remote:
        while len(lead) < len(ops) and not ops[len(lead)].ordered and ops[len(lead)].recipe is None:
            lead.append(ops[len(lead)])
    rest = ops[len(lead):]
    for i, op in enumerate(rest):
        if op.ordered or (remote and op.recipe is None):
            return lead, rest[:i], rest[i:]
    return lead, list(rest), []


def make_recipe(head: list, batch_class: type) -> tuple:
    """The picklable form of the head ops; raises an error naming any argument that does not pickle."""
    recipe = tuple(op.recipe for op in head)
    for name, args, kwargs in recipe:
        spec = batch_class.actions[name]
        fn, skip = (spec.parallel.fn, 2) if spec.parallel is not None else (spec.fn, 1)
        if spec.model is not None:
            skip += 1
        check_call_picklable(fn, args, kwargs, f"action '{name}' (to run it in worker processes)", skip=skip)
    return recipe

