"""Engines that run the head of the ops ahead of the consumer: threads, processes, any Executor, Dask.

NOTE [ Head and tail ]
Ops are split once per run. The head is the longest prefix of ops that touch no shared state: no model, no
variable read or write (V, M), nothing marked `ordered`; for other processes also no `use_lock` action (a lock
cannot span processes). The head of each batch runs in a worker, up to `prefetch` batches ahead; the tail runs on
the consuming side in batch order. So with prefetch, models and variables see the batches in the same order as
without it, and a seeded run gives the same results for any engine (each batch's generator depends only on the
run's seed and the batch's position, see Batch.random).
The engines whose workers are other processes are in remote.py (NOTE [ Shipping ]) and dask_engine.py.
"""
from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .._shipping import check_call_picklable
from .._system import CPUS
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
from .pace import (
    CLEAR_WIN,
    FIRST_STRETCH,
    INLINE_ROUND,
    INLINE_WIN,
    Probe,
    Watch,
    gaps_of,
    next_stretch,
    pace,
)

__all__ = ['SKIPPED', 'STOPPED', 'Done', 'Engine', 'engine_kind', 'make_engine', 'make_recipe', 'run_ops', 'run_recipe',
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


def _run_now(head: Callable, batch: Any) -> Done:
    """The head run here and now (an error is kept, to be raised at the batch's turn as a worker's would)."""
    try:
        return Done(head(batch))
    except Exception as exc:
        return Done(error=exc)


def _pool_round(window: int) -> int:
    """The batches in one timed round of a pool with `window` (NOTE [ Adaptive threads ])."""
    return 2 * window + 6


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
        self.settled: tuple[str, int, int] | Probe | None = None    # where an earlier run of the pipeline left off
        self.remember: Callable[[tuple | Probe], None] | None = None  # keeps it for the pipeline's next run
        self._single: Executor | None = None
        self.broken = False               # a worker died: the pool lost work of other batches too
        self.handed = 0                   # batches the adaptive rounds and stretches of this run handed out

    def _died(self, error: WorkerDiedError) -> WorkerDiedError:
        """Mark the engine broken: its WorkerDiedError stops the run even under ignore_exceptions."""
        self.broken = True
        return error

    def submit(self, head: Callable, batch: Any, executor: Executor | None = None) -> Future:
        if isinstance(batch, Done):
            return batch          # settled before shipping (see split_head): nothing for a worker to do
        try:
            return (executor or self.executor).submit(head, batch)
        except BrokenProcessPool as exc:
            raise self._died(_worker_died(exc)) from exc

    def ordered(self, head: Callable, jobs: Iterable[tuple[Any, Any]],
                total: int | None = None) -> Iterator[tuple[Any, Future]]:
        """(meta, future of the head's result) for every job, in job order (NOTE [ Window ]); `total`: the number of
        jobs, when known."""
        pending: deque[tuple[Any, Future]] = deque()
        jobs = iter(jobs)
        try:
            if not self.adaptive:
                yield from self._pooled(head, jobs, pending)
                return
            if not isinstance(self.settled, tuple):
                probe = self.settled or Probe()
                mode = yield from self._probe(head, jobs, pending, probe)
                if mode is None:                  # the jobs ran out during the probe: the next run goes on with it
                    if self.remember is not None:
                        self.remember(probe)
                    yield from self._pooled(head, jobs, pending)
                    return
                left = stretch = FIRST_STRETCH
            else:
                mode, left, stretch = self.settled
            while True:
                self._keep(mode, left, stretch)
                watch = Watch(self._span(mode))
                done = yield from self._stretch(mode, head, jobs, pending, left, watch)
                self.handed += done
                if done < left and not watch.slowed:
                    self._keep(mode, left - done, stretch)    # the jobs ran out: the next run goes on from here
                    return
                if total is not None and total - self.handed < self._check_batches(mode) <= total:
                    # The run ends before the check would: cut off, it would tell nothing and cost a pool's start.
                    # The rest goes in this mode, and the next run starts with the check.
                    yield from self._rest(mode, head, jobs, pending)
                    self._keep(mode, 0, stretch)
                    return
                mode, close, cost = yield from self._recheck(mode, head, jobs, pending, gaps_of(list(watch.stamps)))
                left = stretch = next_stretch(stretch, close, watch.slowed, cost)
        finally:
            for _, future in pending:
                future.cancel()
            pending.clear()

    def _keep(self, mode: str, left: int, stretch: int) -> None:
        """For the pipeline's next run with the same options: its mode, the batches left before the next check,
        and the stretch they are part of."""
        if self.remember is not None:
            self.remember((mode, left, stretch))

    def _stretch(self, mode: str, head: Callable, jobs: Iterator, pending: deque, limit: int,
                 watch: 'Watch') -> Iterator[tuple[Any, Future]]:
        """Up to `limit` batches in `mode`, stamped into `watch` as each is handed out, ended early if `watch`
        sees the pace slow down; return how many there were."""
        count = 0
        if mode == 'inline':
            stamps = watch.stamps
            for meta, batch in itertools.islice(jobs, limit):
                stamps.append(time.perf_counter())
                count += 1
                yield meta, _run_now(head, batch)
                del batch
                if watch.check():
                    break
            return count
        for item in self._pooled(head, jobs, pending, limit=limit, stamps=watch.stamps, stop=watch.check,
                                 **self._workers(mode)):
            count += 1
            yield item
        return count

    def _rest(self, mode: str, head: Callable, jobs: Iterator, pending: deque) -> Iterator[tuple[Any, Future]]:
        """Every job left, in `mode`, untimed."""
        if mode != 'inline':
            yield from self._pooled(head, jobs, pending, **self._workers(mode))
            return
        for meta, batch in jobs:
            yield meta, _run_now(head, batch)
            del batch

    def _recheck(self, mode: str, head: Callable, jobs: Iterator, pending: deque,
                 gaps: list[float]) -> Iterator[tuple[Any, Future]]:
        """Time a round of the rival mode (the pool, or inline when in the pool), then one of the current mode, and
        one more of the rival when the first was faster but not clearly; return the mode to go on in, whether the
        two were close (the rival faster, not clearly), and what the rival rounds cost when the mode is kept: their
        time beyond what that mode needs for as many batches, in its batches. The rival wins if its best round is
        clearly faster than both the current mode's round and `gaps`, its latest before the check (NOTE [ Adaptive
        threads ])."""
        rival, win = ('pool', CLEAR_WIN) if mode == 'inline' else ('inline', INLINE_WIN)
        first: list[float] = []
        again: list[float] = []
        second: list[float] = []
        start = time.perf_counter()
        rival_batches = yield from self._timed_round(rival, head, jobs, pending, first)
        rival_time = time.perf_counter() - start
        yield from self._timed_round(mode, head, jobs, pending, again)
        if len(first) < 3 or len(gaps) < 3:
            return mode, False, 0.0
        span = self._span(mode)
        current = min(pace(gaps, span), pace(again, span)) if len(again) >= 3 else pace(gaps, span)
        ratio = pace(first, self._span(rival)) / current
        if win < ratio < 1:
            start = time.perf_counter()
            rival_batches += yield from self._timed_round(rival, head, jobs, pending, second)
            rival_time += time.perf_counter() - start
            if len(second) >= 3:
                ratio = min(ratio, pace(second, self._span(rival)) / current)
        if ratio <= win:
            return rival, False, 0.0
        return mode, win < ratio < 1, max(0.0, rival_time / current - rival_batches)

    def _timed_round(self, mode: str, head: Callable, jobs: Iterator, pending: deque,
                     steps: list) -> Iterator[tuple[Any, Future]]:
        """One timed round of `mode`, its time per batch added to `steps`; return how many batches it handed out."""
        if mode == 'inline':
            count = yield from self._timed_inline(head, jobs, steps)
        else:
            count = yield from self._timed_pool(head, jobs, pending, steps, **self._workers(mode))
        self.handed += count
        return count

    def _round_batches(self, mode: str) -> int:
        """The batches in one timed round of `mode`: a pool's fill, drain and steady gaps, or inline's."""
        return INLINE_ROUND if mode == 'inline' else _pool_round(self._workers(mode).get('window', self.window))

    def _check_batches(self, mode: str) -> int:
        """The batches a check from `mode` takes: a round of its rival, then one of its own."""
        return self._round_batches('pool' if mode == 'inline' else 'inline') + self._round_batches(mode)

    def _span(self, mode: str) -> int:
        """The gaps over which a mode's workers hand batches out in one burst (see pace.pace)."""
        return {'pool': self.window, 'one thread': 2}.get(mode, 1)

    def _workers(self, mode: str) -> dict:
        """The executor and window of a mode with workers: the pool's (None: the defaults), or one thread's."""
        return {'executor': self._one_thread(), 'window': 2} if mode == 'one thread' else {}

    def _one_thread(self) -> Executor:
        if self._single is None:
            self._single = ThreadPoolExecutor(1, thread_name_prefix='batchkit-prefetch-one')
        return self._single

    def _pooled(self, head: Callable, jobs: Iterator, pending: deque, limit: int | None = None,
                stamps: list | deque | None = None, executor: Executor | None = None,
                window: int | None = None, stop: Callable[[], bool] | None = None) -> Iterator[tuple[Any, Future]]:
        window = window or self.window
        for meta, batch in (jobs if limit is None else itertools.islice(jobs, limit)):
            pending.append((meta, self.submit(head, batch, executor)))
            del batch
            if len(pending) >= window:
                if stamps is not None:
                    stamps.append(time.perf_counter())
                yield pending.popleft()
                if stop is not None and stop():
                    break
        while pending:
            yield pending.popleft()

    def _timed_pool(self, head: Callable, jobs: Iterator, pending: deque, steps: list,
                    executor: Executor | None = None, window: int | None = None) -> Iterator[tuple[Any, Future]]:
        """Batches through a pool, adding its time per batch to `steps` (NOTE [ Adaptive threads ]); return how many
        it handed out."""
        window = window or self.window
        stamps: list[float] = []
        count = 0
        for item in self._pooled(head, jobs, pending, limit=_pool_round(window), stamps=stamps, executor=executor,
                                 window=window):
            count += 1
            yield item
        steps += gaps_of(stamps[1:])
        return count

    def _timed_inline(self, head: Callable, jobs: Iterator, steps: list) -> Iterator[tuple[Any, Future]]:
        """Batches run here, adding their time per batch to `steps`, the first left out (NOTE [ Adaptive threads ]);
        return how many it handed out."""
        stamps: list[float] = []
        for meta, batch in itertools.islice(jobs, INLINE_ROUND):
            stamps.append(time.perf_counter())
            yield meta, _run_now(head, batch)
            del batch
        stamps.append(time.perf_counter())
        steps += gaps_of(stamps)[1:]
        return len(stamps) - 1

    def _probe(self, head: Callable, jobs: Iterator, pending: deque, probe: Probe) -> Iterator[tuple[Any, Future]]:
        """Time batches through the pool and inline, in turns, from where `probe` left off; return the mode to go
        on in: 'pool', 'one thread' or 'inline' (None when the jobs ran out first).

        NOTE [ Adaptive threads ]
        Threads help only when heads do enough work that releases the GIL (numpy on big arrays, I/O), or when one
        thread's head overlaps the consumer's own work (a training step). Handing a batch to a worker thread and
        back costs GIL-holding work and thread hand-offs, and light heads (small numpy ops) fight over the GIL, so
        such a run is slower with prefetch than without. A run on threads therefore starts with rounds of
        `2 * window + 6` batches through the pool then 9 inline, timing the consumer's steady pace: the time
        between batches handed out, its own work included, the pool's fill and drain left out, and the first
        inline batch too (right after a pool it took 4-5 times as long as the next ones on W: 800 against 170 us,
        which made inline look 8% slower than it is, and a pool 8% slower than inline was kept). On a loaded
        machine another process takes the core for a few ms now and then, in any round, so a pace is the mean gap
        with each gap capped at 4 times the lower quartile of the time per batch (over `window` gaps for a pool,
        whose workers hand batches out in bursts): a round's plain mean picked the wrong mode about one run in two
        under load.
        A lower quartile resisted stalls too, but it judged the pool by its bursts: on workload W it kept a pool
        that then ran the whole run 10-20% slower than inline. One round decides only when the pool is clearly
        faster (at most `CLEAR_WIN` of inline's time per batch); else a second round of each is timed, and the pool
        is kept if its best round is at least 5% faster than inline's best. A pool that loses one round is not
        dropped on it: a pool's first round, cold or at a busy moment, ran np.sort heads at 1,251 us a batch, 1.4
        times inline, and the run went inline, where the pool is 1.7 times faster (480 against 870 us). A second
        round costs a light run about 3 ms, once per pipeline.
        When the pool loses and has more than one thread, fewer workers are tried: one thread, one batch ahead
        ('one thread'), kept only if clearly faster than inline (at most `CLEAR_WIN` of its time per batch): on W
        one thread is about 10% slower than inline, and a 5% margin let the noise of one round choose it.
        A probe sees a few milliseconds of the run, and a shared machine can be much slower for a while: a pool
        probed then lost to inline on two np.sort per batch, where it is 1.6x faster. So the run checks again:
        after `FIRST_STRETCH` batches in the chosen mode, then after stretches 4 times longer, up to
        `LONGEST_STRETCH` (a check then costs about 1% of the batches), one round of the rival is timed against
        the current mode's latest `RECHECK_GAPS` gaps and a round of the current mode after it. From inline the
        rival is the pool, which must be clearly faster (`CLEAR_WIN`); from the pool or one thread it is inline,
        which needs only to be 5% faster (`INLINE_WIN`): inline costs no hand-off and is the safe way, and a mode
        that really gains from workers gains by far more than the noise. A rival faster but not clearly gets a
        second round, judged by its best, and the two modes are then close: the next stretch is `FIRST_STRETCH`
        long again instead of growing. On np.sort heads at busy moments one pool round measured 0.81 of inline,
        against 0.55 when quiet, and the run stayed inline for 1,024 batches, a whole benchmark run.
        A rival that loses by far costs more than 1%: on W a pool round took 5-12 ms for 12 batches, 2.5 to 5 times
        inline's time, so a check every 1,024 batches (about 150 ms) took 3-6% of the run, and W ran at 0.91-0.97
        of prefetch=0. So the stretch after a check is also long enough for the rival rounds' extra time (beyond
        what the mode kept needs for as many batches) to be about `CHECK_SHARE` of it, up to `COSTLY_STRETCH`
        (pace.next_stretch). A rival that loses narrowly costs little and keeps the checks coming at 1,024.
        The pipeline keeps, per batch size and prefetch, the mode its run settled in and how far that run got
        towards its next check, and its next such run goes on from there without a probe: the runs of a pipeline
        are timed as one long run, so a loop that runs a pipeline once per epoch pays for one probe, and runs
        shorter than a stretch are checked too. A check that the end of the run would cut off (fewer batches left
        than its two rounds take, in a run that could hold them) waits for the start of the next run: cut off, it
        told nothing, cost a pool's start and put the next check 1,024 batches away; in 30-batch runs of W that was
        about one check in four. The probe itself goes on across runs the same way (pace.Probe):
        runs of fewer batches than it takes (an evaluation of 10 to 40 batches) each started it afresh, spent
        most of their batches in its pool rounds, and on W ran 1.7 to 2 times slower than prefetch=0, run after
        run. Now each run times the rounds it has batches for, and a few runs later the probe decides. Runs too
        short for any round (a pool round needs about 6 batches) paid 170 us each to start and stop the pool:
        after `SHORT_RUNS` of them the probe settles inline, and the checks time the pool later. Within a
        stretch the run watches its own pace (free: the stamps
        are taken anyway): when it falls to `SLOWDOWN` times slower than at the stretch's start (a pool whose
        second core the host took away ran 2.6 times slower than when it was chosen, and slower than inline), the
        check comes as soon as `RECHECK_GAPS` more gaps are timed, and the stretch after it is as long as the one
        it cut short. Those fresh gaps, not the ones the slowdown was seen in: a look every 64 batches sees gaps
        from both sides of the change, whose capped mean (4.7 ms) hid that the pool had become 3.5 times slower
        than inline (16.5 ms against 4.7 ms), and the pool was kept. Whatever the mode, every batch is processed
        and handed out in order, with the same errors; only the speed differs.
        """
        single_worker = getattr(self.executor, '_max_workers', 1) == 1
        timed = False
        while True:
            mode, decided = probe.next_step(single_worker)
            if decided:
                return mode
            steps: list[float] = []
            yield from self._timed_round(mode, head, jobs, pending, steps)
            if len(steps) < 3:    # the run is over (or nearly): the round is timed again in the next run
                probe.short_runs += not timed
                return None
            probe.paces[mode].append(pace(steps, self._span(mode)))
            timed = True

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
            if self._single is not None:
                self._single.shutdown(wait=True, cancel_futures=True)
            if self.owned:
                self.executor.shutdown(wait=True, cancel_futures=True)
        finally:
            if self.closer is not None:
                self.closer()


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
        from .dask_engine import DaskEngine, open_dask_client
        client, closer = open_dask_client(address)
        return DaskEngine(client, window, closer=closer)
    if kind is None:
        return None
    if kind == 'local':
        if executor is not None:
            return Engine(executor, window, owned=False)
        return Engine(ThreadPoolExecutor(min(prefetch, CPUS), thread_name_prefix='batchkit-prefetch'),
                      window, owned=True, adaptive=True)
    from .remote import RemoteEngine
    if executor is not None:
        if type(executor).__module__.startswith('distributed'):
            from .dask_engine import DaskEngine, dask_client_of
            client = dask_client_of(executor)
            if client is not None:
                return DaskEngine(client, window)
        return RemoteEngine(executor, window, owned=False)
    return RemoteEngine(None, window, owned=True, workers=prefetch)


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

