"""Batch classes for the parallel tests: importable, because worker processes (spawned, or Dask's) need them.

Counters are module globals guarded by one lock; they count only what happens in this process (threads).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np

from batchkit import ArrayBatch, Dataset, SkipBatch, StopPipeline, action, inbatch_parallel

_LOCK = threading.Lock()
COUNTERS: dict[str, int] = {}


def reset_counters() -> None:
    with _LOCK:
        COUNTERS.clear()


def _enter(name: str) -> None:
    with _LOCK:
        now = COUNTERS.get(name, 0) + 1
        COUNTERS[name] = now
        COUNTERS[name + '.max'] = max(COUNTERS.get(name + '.max', 0), now)
        COUNTERS[name + '.total'] = COUNTERS.get(name + '.total', 0) + 1


def _leave(name: str) -> None:
    with _LOCK:
        COUNTERS[name] -= 1


def _occupy(name: str, delay: float) -> None:
    """Count an entry into `name` (the most at once, and in all), stay `delay` seconds, count the exit."""
    _enter(name)
    try:
        time.sleep(delay)
    finally:
        _leave(name)


def counter(name: str) -> int:
    with _LOCK:
        return COUNTERS.get(name, 0)


def boom_in_head(value: int) -> None:
    """The function whose name the traceback tests look for."""
    raise ValueError(f'boom at item {value}')


def boom_in_item(value: int) -> None:
    raise ValueError(f'item boom {value}')


class Arrival:
    """An action argument that counts, in the process that unpickles it, how many times it arrived there."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __reduce__(self) -> tuple:
        return _arrived, (self.key,)


class CountedArray(np.ndarray):
    """An array that counts (under 'array arrivals') each time it is unpickled in this process."""

    def __reduce__(self) -> tuple:
        return _counted_array, (np.asarray(self),)


def _counted_array(values: np.ndarray) -> CountedArray:
    with _LOCK:
        COUNTERS['array arrivals'] = COUNTERS.get('array arrivals', 0) + 1
    return values.view(CountedArray)


def _arrived(key: str) -> Arrival:
    with _LOCK:
        COUNTERS[key] = COUNTERS.get(key, 0) + 1
    return Arrival(key)


class WorkBatch(ArrayBatch):
    """Items carry x = their id; the actions sleep, count, fail or die on demand."""

    components = ('x',)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        with _LOCK:
            COUNTERS['created'] = COUNTERS.get('created', 0) + 1

    @action
    def sleepy(self, max_ms: float = 5.0) -> 'WorkBatch':
        """A head that works for a varying time, so that batches finish out of order."""
        rng = np.random.default_rng(int(self.indices[0]) * 7919 + 1)   # not batch.random: leave that stream alone
        time.sleep(rng.uniform(0, max_ms) / 1000)
        self.x = self.x * 2
        return self

    @action
    def track(self, delay: float = 0.005) -> 'WorkBatch':
        """Counts the heads running at once ('active', 'active.max')."""
        _enter('active')
        try:
            time.sleep(delay)
        finally:
            _leave('active')
        return self

    @action
    def fail_at(self, item: int, how: str = 'raise') -> 'WorkBatch':
        """Raise (or skip, stop, exit, kill) when the batch holds `item`."""
        if item in self.indices.tolist():
            if how == 'raise':
                boom_in_head(item)
            elif how == 'skip':
                raise SkipBatch
            elif how == 'stop':
                raise StopPipeline
            elif how == 'exit':
                os._exit(3)
            elif how == 'kill':
                os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(30)
        return self

    @action(ordered=True)
    def fail_in_tail(self, item: int) -> 'WorkBatch':
        if item in self.indices.tolist():
            boom_in_head(item)
        return self

    @action
    def noisy(self, noise: np.ndarray) -> 'WorkBatch':
        """x + the R(...) argument + a draw from batch.random inside the action."""
        self.x = self.x + noise + self.random.normal(size=len(self))
        return self

    @action(ordered=True)
    def noisy_tail(self) -> 'WorkBatch':
        """Draws again from batch.random on the consuming side: must go on with the stream the head used."""
        self.tail_draw = self.random.integers(0, 2 ** 31, size=2)
        return self

    @action
    def where(self) -> 'WorkBatch':
        """Records the thread the head ran in."""
        self.head_thread = threading.current_thread().name
        return self

    @action
    def switch_interval(self) -> 'WorkBatch':
        """Records the interpreter's switch interval while the head runs."""
        self.interval = sys.getswitchinterval()
        return self

    @action
    def where_run(self, nap_ms: float = 0.0, nap_from: int = 0) -> 'WorkBatch':
        """Records the process and thread that ran the head; naps `nap_ms` from item `nap_from` on."""
        if self.indices[0] >= nap_from:
            time.sleep(nap_ms / 1000)
        self.pid, self.thread = os.getpid(), threading.get_ident()
        return self

    @action
    def keep_lock(self) -> 'WorkBatch':
        """Puts an object that cannot be pickled into the batch."""
        self.lock = threading.Lock()
        return self

    @action
    def record_pid(self) -> 'WorkBatch':
        """Records the process that ran this action."""
        self.pid = os.getpid()
        return self

    @action
    def arrivals(self, arrival: Arrival) -> 'WorkBatch':
        """Records the process and how many times `arrival` reached it so far."""
        self.pid, self.arrived = os.getpid(), counter(arrival.key)
        return self

    @action
    def double_in_place(self) -> 'WorkBatch':
        self.x *= 2
        return self

    @action
    def reshape_in_place(self) -> 'WorkBatch':
        self.x.shape = (1, -1)                 # the same object and bytes, another shape
        return self

    @action
    def take(self, value: object) -> 'WorkBatch':
        self.taken = value
        return self

    # --- locks ----------------------------------------------------------------------------------------------
    @action(use_lock=True)
    def locked(self, delay: float = 0.0) -> 'WorkBatch':
        _occupy('locked', delay)
        return self

    @action(use_lock='shared')
    def shared_a(self, delay: float = 0.0) -> 'WorkBatch':
        _occupy('shared', delay)
        return self

    @action(use_lock='shared')
    def shared_b(self, delay: float = 0.0) -> 'WorkBatch':
        _occupy('shared', delay)
        return self

    @action(use_lock='shared')
    def shared_reentrant(self) -> 'WorkBatch':
        """Holds 'shared' and calls another action taking the same lock: must not deadlock."""
        return self.shared_a()

    @action(use_lock=True)
    def locked_fail_at(self, item: int) -> 'WorkBatch':
        _enter('locked_fail')
        try:
            if item in self.indices.tolist():
                boom_in_head(item)
        finally:
            _leave('locked_fail')
        return self

    @action(use_lock='slow', lock_timeout=0.2)
    def slow_locked(self, hold: float = 1.0) -> 'WorkBatch':
        time.sleep(hold)
        return self

    # --- in-batch parallel ------------------------------------------------------------------------------------
    @inbatch_parallel(init='indices', post='_collect', target='threads')
    def square_threads(self, item: int, fail_on: int = -1) -> int:
        return self._square(item, fail_on)

    @inbatch_parallel(init='indices', post='_collect', target='for')
    def square_for(self, item: int, fail_on: int = -1) -> int:
        return self._square(item, fail_on)

    @inbatch_parallel(init='indices', post='_collect', target='processes', n_workers=2)
    def square_processes(self, item: int, fail_on: int = -1) -> int:
        return self._square(item, fail_on)

    @inbatch_parallel(init='_pairs', post='_collect', target='threads')
    def pair_sum(self, pair: tuple, offset: int = 0) -> int:
        return pair[0] + pair[1] + offset

    @inbatch_parallel(init='indices', target='processes', n_workers=2)
    def apply_processes(self, item: int, fn: object = None) -> None:
        return None

    @inbatch_parallel(init='indices', target='processes', n_workers=2)
    def die_processes(self, item: int, at: int = 0) -> None:
        if item == at:
            os._exit(3)

    def _square(self, item: int, fail_on: int) -> int:
        if item == fail_on:
            boom_in_item(item)
        return int(item) ** 2

    def _pairs(self) -> list:
        return [(int(i), int(i) * 10) for i in self.indices]

    def _collect(self, results: list) -> 'WorkBatch':
        self.results = list(results)
        return self


def python_work(item: int, rounds: int) -> int:
    total = 0
    for k in range(rounds):
        total = (total + item * k) % 1000003
    return total


def work_dataset(n: int) -> Dataset:
    return Dataset(n, batch_class=WorkBatch, preloaded={'x': np.arange(n, dtype=np.float64)})


def V_plus_one():  # noqa: N802 - reads as the expression it returns
    """V('n') + 1, for pipelines that count their batches."""
    from batchkit import V
    return V('n') + 1



_actor_runs: list = []


def break_actor_runs() -> None:
    """On a worker: HeadActor.run fails past batchkit's own error handling (a fault for Dask to report)."""
    from batchkit.pipeline.dask_engine import HeadActor

    async def failing_run(self, shipped: bytes):
        raise RuntimeError('injected actor failure')
    _actor_runs.append(HeadActor.run)
    HeadActor.run = failing_run


def mend_actor_runs() -> None:
    """On a worker: HeadActor.run as it was before break_actor_runs."""
    from batchkit.pipeline.dask_engine import HeadActor
    HeadActor.run = _actor_runs.pop()
