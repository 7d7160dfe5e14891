"""Dask: run the parallel head of each batch on the workers of a Dask cluster, one actor per worker.

NOTE [ Dask actors ]
Sending each batch as a Dask task costs the scheduler and the client about 6 ms of CPU on this process per batch
(measured on 2 cores with 30 ms pure-Python heads: the workers then got only 1.2-1.5x). And the scheduler hands a
task to a worker when it is submitted, so with a few batches in flight the next one may wait behind a busy worker
while another worker is idle, and the consumer, who takes batches in order, waits for it. So a run puts one actor
per worker, built with the run's head (the head and a class defined in `__main__` travel once per worker, not once
per batch), and calls it directly (about 1.5 ms here; the batch's state goes pickled, as Dask's serializer takes
about 0.6 ms longer for the dict). The engine decides which worker gets the next batch: the one with the fewest
calls in flight per thread, the least recently given one among equals; at most one call running and one waiting
per worker thread (a waiting call starts as soon as the one before it ends: on busy cores the round trip to this
process takes 2-5 ms), and at most `window` batches submitted and not yet handed to the consumer (NOTE [ Window ]
in prefetch.py). The workers are the ones the cluster has when the run starts.

NOTE [ Direct calls ]
Dask's default client calls an actor through the scheduler (`direct_to_workers` unset: a client outside the
cluster's network may not reach the workers), and the scheduler of a `LocalCluster` lives in the client's own
process: every call was pickled, sent and received twice here, 2.4-3.1 ms of this process's CPU per batch against
1.5 ms when called directly. So a run calls each worker's actor directly (Dask's `actor_execute` call, which is
what the actor handle itself sends) when the client allows it: always with `direct_to_workers=True`, never with
`False`, and when unset, if the worker answers a direct `identity` call within `_PROBE_TIMEOUT` (a worker that
did not is not tried again by this process).

NOTE [ GIL turns on workers ]
A Dask worker runs a head in its thread pool while its event loop thread sends the results back and takes the next
calls in. A pure-Python head holds the GIL, and a thread that waits for the GIL gets it only after the switch
interval (5 ms by default), once per step of a send (each system call gives the GIL up and takes it again). So a
result that is ready waited 9-12 ms in one call of ten (90th percentile, 30 ms heads on 2 cores), the consumer,
who takes batches in order, waited with it, and the other worker ran dry. On a worker with one thread there is
nothing to run beside the head, so a short head runs in the event loop thread itself (Dask's
`separate_thread=False` way of calling an actor): its result is sent as soon as it is made, and the next call is
read from the socket right after. That took 2.5 ms of worker CPU less per batch and made 30 ms heads on 2 cores
9-15% faster in A/B runs. The first head of a run goes to the thread pool and is timed; a head that takes longer
than `_LOOP_HEAD_LIMIT` sends the later ones back there, so the event loop (heartbeats, other clients) is never
held for long. Heads in the thread pool (of such a worker, or of a worker with several threads) run with a switch
interval of 0.5 ms (the 90th percentile fell to 4.3 ms, and runs took 3-10% less time in noisy A/B runs); it is
put back when the last of them ends.
"""
from __future__ import annotations

import asyncio
import pickle
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import Any

from .._optional import import_optional
from ..errors import BatchkitRuntimeError, WorkerDiedError
from .prefetch import Done, Engine
from .remote import RemoteHead, Sent

__all__ = ['DaskEngine', 'HeadActor', 'ShortGilTurns', 'dask_client_of', 'open_dask_client']

_WAIT_FOR_WORKERS = 60.0          # seconds a run waits for a cluster with no worker yet
_QUEUED_PER_THREAD = 2            # calls in flight per worker thread: one running, one waiting (NOTE [ Dask actors ])
_SHORT_SWITCH_INTERVAL = 0.0005   # seconds, while heads run in a worker's threads (NOTE [ GIL turns on workers ])
_PROBE_TIMEOUT = 5.0              # seconds a run waits to learn whether it can reach a worker (NOTE [ Direct calls ])
_UNREACHABLE: set[str] = set()    # worker addresses this process could not reach directly
_LOOP_HEAD_LIMIT = 0.25           # seconds: a head as short runs in a 1-thread worker's event loop (same NOTE)


class ShortGilTurns:
    """A context in which the interpreter's switch interval is short; the first to enter sets it, the last to leave
    puts the previous value back (heads on several threads of one worker overlap)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._inside = 0
        self._saved = 0.0

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self.interval, self._saved))
            self._inside += 1

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                sys.setswitchinterval(self._saved)


_short_gil_turns = ShortGilTurns(_SHORT_SWITCH_INTERVAL)     # per process: each worker imports this module


def open_dask_client(address: str | None) -> tuple[Any, Callable[[], None]]:
    """A Dask client of the cluster at `address` (a new local cluster if None) and a function closing it."""
    distributed = import_optional('distributed', extra='dask')
    if address is None:
        cluster = distributed.LocalCluster(processes=True, dashboard_address=None)
        client = distributed.Client(cluster, direct_to_workers=True)     # its workers are reachable: no proxy hop

        def close() -> None:
            client.close()
            cluster.close()
        return client, close
    client = distributed.Client(address)
    return client, client.close


def dask_client_of(executor: Executor) -> Any:
    """The Dask client behind `executor` when it is `client.get_executor()`, else None."""
    if type(executor).__name__ == 'ClientExecutor' and type(executor).__module__.startswith('distributed'):
        return getattr(executor, '_client', None)
    return None


class HeadActor:
    """A Dask actor holding one run's head on one worker; each call runs it on one batch's state.

    The call returns (True, the head's result) or (False, the head's exception), so that an error of the head
    is told apart from a lost worker. The head runs in the worker's own thread pool, as its tasks do, so a
    worker with several threads runs as many heads at once; on a worker with one thread, short heads run in its
    event loop thread (NOTE [ GIL turns on workers ]).
    """

    def __init__(self, head: RemoteHead) -> None:
        self.head = head
        self.in_loop = False          # the first head runs in the thread pool, and is timed there

    async def run(self, shipped: bytes) -> tuple[bool, Any]:
        from distributed import get_worker
        worker = get_worker()
        try:
            if self.in_loop:
                return True, self._timed(shipped, worker.state.nthreads)
            loop = asyncio.get_running_loop()
            return True, await loop.run_in_executor(worker.executor, self._in_thread, shipped, worker.state.nthreads)
        except Exception as exc:
            return False, exc

    def _in_thread(self, shipped: bytes, nthreads: int) -> Any:
        with _short_gil_turns:
            return self._timed(shipped, nthreads)

    def _timed(self, shipped: bytes, nthreads: int) -> Any:
        start = time.perf_counter()
        try:
            return self.head(pickle.loads(shipped))
        finally:
            self.in_loop = nthreads == 1 and time.perf_counter() - start <= _LOOP_HEAD_LIMIT


def _lost(exc: BaseException) -> WorkerDiedError:
    return WorkerDiedError(f"Expected the Dask workers to finish their batches. Received: a call to a worker's "
                           f"batchkit actor failed ({type(exc).__name__}: {exc}): the worker was lost, or failed "
                           f"past batchkit's own error handling. The run was stopped.")


class DaskEngine(Engine):
    """Heads on the workers of a Dask cluster through actors (NOTE [ Dask actors ])."""

    remote = True

    def __init__(self, client: Any, window: int, closer: Callable[[], None] | None = None) -> None:
        super().__init__(executor=None, window=window, owned=False, closer=closer)
        self.client = client
        self._actor_futures: list = []

    def _workers(self) -> dict[str, int]:
        deadline = time.monotonic() + _WAIT_FOR_WORKERS
        while True:
            workers = self.client.nthreads()
            if workers:
                return workers
            if time.monotonic() > deadline:
                raise BatchkitRuntimeError(
                    f"Expected the Dask cluster to have workers. Received: none after {_WAIT_FOR_WORKERS:.0f} s "
                    f"(scheduler {self.client.scheduler.address}). Start workers, or run with engine=None.")
            time.sleep(0.1)

    def _start(self, head: RemoteHead) -> list[tuple[Any, int]]:
        """One actor per worker, each built with the head: [(a function calling it, threads)]."""
        workers = self._workers()
        self._actor_futures = [self.client.submit(HeadActor, head, actor=True, workers=[address],
                                                  allow_other_workers=False, pure=False)
                               for address in workers]
        actors = self.client.gather(self._actor_futures)
        return [(self._direct_caller(actor, address) if self._reachable(address) else actor.run, threads)
                for actor, (address, threads) in zip(actors, workers.items())]

    def _reachable(self, address: str) -> bool:
        """Whether this process may call the worker directly (NOTE [ Direct calls ])."""
        if self.client.direct_to_workers is False or address in _UNREACHABLE:
            return False
        if self.client.direct_to_workers:
            return True

        async def probe() -> bool:
            try:
                await asyncio.wait_for(self.client.rpc(address).identity(), _PROBE_TIMEOUT)
                return True
            except (OSError, asyncio.TimeoutError):
                return False
        if self.client.sync(probe):
            return True
        _UNREACHABLE.add(address)
        return False

    def _direct_caller(self, actor: Any, address: str) -> Callable[[bytes], Any]:
        """A function giving the awaitable of a direct call of the actor's `run` (NOTE [ Direct calls ])."""
        from distributed.protocol import to_serialize
        rpc, key = self.client.rpc, actor.key

        async def run(shipped: bytes) -> tuple[bool, Any]:
            reply = await rpc(address).actor_execute(function='run', actor=key, args=[to_serialize(shipped)],
                                                     kwargs={})
            if reply['status'] != 'OK':       # the worker is alive, but calling the actor failed there
                raise reply['exception']
            return reply['result']
        return run

    def _call(self, run: Callable[[bytes], Any], shipped: bytes) -> Future:
        """A concurrent Future of an actor's run on a batch's pickled state, set from the client's event loop."""
        future: Future = Future()
        try:
            call = run(shipped)
        except Exception as exc:         # "Worker holding Actor was lost"
            self.broken = True
            future.set_exception(_lost(exc))
            return future

        async def relay() -> None:
            try:
                ok, value = await call
            except Exception as exc:
                self.broken = True
                future.set_exception(_lost(exc))
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        self.client.loop.add_callback(relay)
        return future

    def ordered(self, head: Callable, jobs: Iterable[tuple[Any, Any]],
                total: int | None = None) -> Iterator[tuple[Any, Any]]:
        """(meta, future) for every job in job order; each future is done when handed out (`total` is not used)."""
        actors = self._start(head)
        pending: deque[tuple[Any, Any, int]] = deque()     # (meta, future, actor number or -1 for a Done)
        last_call = [0] * len(actors)                       # when each actor was last given a batch
        jobs, more, calls = iter(jobs), True, 0
        while True:
            while more and len(pending) < self.window:
                busy = [0] * len(actors)
                for _, future, k in pending:
                    if k >= 0 and not future.done():
                        busy[k] += 1
                k = min(range(len(actors)), key=lambda i: (busy[i] / actors[i][1], last_call[i]))
                if busy[k] >= _QUEUED_PER_THREAD * actors[k][1]:
                    break                  # every worker thread has a batch running and one waiting
                job = next(jobs, None)
                if job is None:
                    more = False
                    break
                meta, batch = job
                if isinstance(batch, Done):
                    pending.append((meta, batch, -1))
                else:
                    calls += 1
                    last_call[k] = calls
                    state = batch.__getstate__()
                    shipped = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
                    pending.append((meta, Sent(self._call(actors[k][0], shipped), state, type(batch)), k))
                del job, batch
            if not pending:
                return
            meta, future, k = pending[0]
            if k >= 0 and not future.done():
                wait([f.future for _, f, k in pending if k >= 0 and not f.done()], return_when=FIRST_COMPLETED)
                continue
            pending.popleft()
            yield meta, future

    def close(self) -> None:
        try:
            for future in self._actor_futures:
                future.release()       # the workers drop the actors (a call still running ends first)
            self._actor_futures = []
        finally:
            if self.closer is not None:
                self.closer()
