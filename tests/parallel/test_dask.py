"""The Dask engine on a real two-process LocalCluster: same results as a local run, errors reach the caller."""
from __future__ import annotations

import contextlib
import copyreg
import importlib.util
import os
import socket
import sys
import threading
import time
import traceback
import uuid

import numpy as np
import pytest

from batchkit import B, BatchkitTypeError, V
from batchkit.errors import WorkerDiedError

import workbatches as wb
from parallel_support import HERE, run_with_timeout, wait_until
from test_random import assert_same, outputs

pytestmark = [pytest.mark.distributed,
              pytest.mark.skipif(importlib.util.find_spec('distributed') is None, reason='needs distributed')]


@pytest.fixture(scope='module')
def cluster():
    """Started once for the module (it takes seconds). Workers find `workbatches` through PYTHONPATH (set by
    conftest before the cluster starts, so restarted workers have it too) and through sys.path.

    Importing distributed installs tblib's exception pickling for every exception class of the process; it is
    imported here, not at collection, and the pickling table is put back afterwards, so that the other test
    modules see the standard pickling.
    """
    saved = dict(copyreg.dispatch_table)
    import dask
    import distributed
    # A killed worker fails its task at once (KilledWorker) instead of the task being retried elsewhere.
    with dask.config.set({'distributed.scheduler.allowed-failures': 0}):
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           dashboard_address=None)
    client = distributed.Client(cluster)
    client.run(sys.path.insert, 0, HERE)
    try:
        yield cluster, client
    finally:
        client.close()
        cluster.close()
        copyreg.dispatch_table.clear()
        copyreg.dispatch_table.update(saved)


def _ordering_pipeline():
    return (wb.work_dataset(60).p
            .init_variable('seen', default=list)
            .sleepy(max_ms=3)
            .update(V('seen', mode='a'), B('x')))


def test_executor_gives_the_same_results_as_a_local_run(cluster):
    _, client = cluster
    expected = _ordering_pipeline().run(7, shuffle=4).get_variable('seen')
    p = _ordering_pipeline()
    run_with_timeout(lambda: p.run(7, shuffle=4, prefetch=3, executor=client.get_executor()))
    got = p.get_variable('seen')
    assert len(got) == len(expected) == 9
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_seeded_randomness_is_the_same_on_dask(cluster):
    _, client = cluster
    assert_same(outputs(shuffle=7, prefetch=4, executor=client.get_executor()), outputs(shuffle=7))


def test_short_form_engine_dask_with_an_address(cluster):
    dask_cluster, _ = cluster
    threads = threading.active_count()
    got = outputs(seed=3, engine='dask', address=dask_cluster.scheduler_address)
    assert_same(got, outputs(seed=3))
    assert wait_until(lambda: threading.active_count() <= threads + 1)   # its client is closed


def test_an_exception_in_a_dask_worker_reaches_the_caller(cluster):
    _, client = cluster
    p = wb.work_dataset(30).p.sleepy(2).fail_at(item=11)
    yielded = []

    def consume() -> None:
        for b in p.gen_batch(2, prefetch=3, executor=client.get_executor()):
            yielded.append(b.indices.tolist())

    with pytest.raises(ValueError, match='boom at item 11') as info:
        run_with_timeout(consume)
    assert yielded == [[2 * k, 2 * k + 1] for k in range(5)]
    assert 'boom_in_head' in ''.join(traceback.format_exception(info.value))


def test_ignore_exceptions_on_dask(cluster, caplog):
    _, client = cluster
    p = wb.work_dataset(20).p.fail_at(item=3).fail_at(item=12)
    batches = run_with_timeout(lambda: list(p.gen_batch(1, prefetch=2, executor=client.get_executor(),
                                                        ignore_exceptions=True)))
    assert [b.indices[0] for b in batches] == [i for i in range(20) if i not in (3, 12)]
    assert len([r for r in caplog.records if 'dropped' in r.getMessage()]) == 2


def test_skip_and_stop_on_dask(cluster):
    _, client = cluster
    p = wb.work_dataset(20).p.fail_at(item=2, how='skip').fail_at(item=9, how='stop')
    batches = run_with_timeout(lambda: list(p.gen_batch(1, prefetch=2, executor=client.get_executor())))
    assert [b.indices[0] for b in batches] == [0, 1, 3, 4, 5, 6, 7, 8]


def test_an_unpicklable_argument_fails_before_any_batch_on_dask(cluster):
    _, client = cluster
    wb.reset_counters()
    with pytest.raises(BatchkitTypeError, match=r"argument 'value'"):
        wb.work_dataset(10).p.take(lambda: 1).gen_batch(2, executor=client.get_executor())
    assert wb.counter('created') == 0


def test_closing_a_dask_run_early_cancels_what_is_left(cluster):
    _, client = cluster
    gen = wb.work_dataset(100).p.sleepy(20).gen_batch(1, prefetch=4, executor=client.get_executor())
    assert next(gen).indices.tolist() == [0]
    run_with_timeout(gen.close, 30)
    assert wait_until(lambda: not client.processing() or not any(client.processing().values()), 10)


def test_the_head_reaches_each_dask_worker_once_and_both_workers_work(cluster):
    _, client = cluster
    key = f'arrived-{uuid.uuid4().hex}'
    p = wb.work_dataset(60).p.sleepy(4).arrivals(wb.Arrival(key))
    batches = run_with_timeout(lambda: list(p.gen_batch(2, prefetch=3, executor=client.get_executor())))
    assert [b.indices.tolist() for b in batches] == [[2 * k, 2 * k + 1] for k in range(30)]
    assert [b.arrived for b in batches] == [1] * 30        # once per worker, not once per batch
    assert len({b.pid for b in batches}) == 2


@pytest.mark.parametrize('prefetch', [1, 3])
def test_a_slow_consumer_has_at_most_prefetch_batches_made_ahead_on_dask(cluster, prefetch):
    _, client = cluster
    wb.reset_counters()
    ahead = []
    for k, batch in enumerate(wb.work_dataset(30).p.sleepy(1).gen_batch(1, prefetch=prefetch,
                                                                         executor=client.get_executor())):
        threading.Event().wait(0.03)                # the workers catch up meanwhile
        ahead.append(wb.counter('created') - (k + 1))
        assert batch.indices.tolist() == [k]
    assert max(ahead) == prefetch                   # the window was full, and never more than full
    assert wb.counter('created') == 30


def test_only_what_the_head_changed_comes_back_from_dask(cluster):
    from batchkit import Dataset
    _, client = cluster
    ds = Dataset(40, batch_class=wb.WorkBatch, preloaded={'x': np.arange(40.).view(wb.CountedArray)})
    for action, arrivals, factor in (('where', 0, 1), ('double_in_place', 20, 2)):
        wb.reset_counters()
        batches = run_with_timeout(lambda: list(getattr(ds.p, action)().gen_batch(2, prefetch=2,
                                                                                  executor=client.get_executor())))
        assert wb.counter('array arrivals') == arrivals
        assert np.array_equal(np.concatenate([b.x for b in batches]), np.arange(40) * factor)


@contextlib.contextmanager
def loop_head_limit(client, seconds: float):
    """The workers' `_LOOP_HEAD_LIMIT` set for a test, then put back."""
    from batchkit.pipeline import dask_engine
    client.run(setattr, dask_engine, '_LOOP_HEAD_LIMIT', seconds)
    try:
        yield
    finally:
        client.run(setattr, dask_engine, '_LOOP_HEAD_LIMIT', dask_engine._LOOP_HEAD_LIMIT)


def loop_threads(client) -> dict[int, int]:
    """{worker pid: its event loop thread}: `client.run` calls a plain function in the worker's event loop."""
    return dict(client.run(lambda: (os.getpid(), threading.get_ident())).values())


def heads_in_pool(batches, loop_of: dict[int, int]) -> dict[int, list[int]]:
    """{worker pid: the numbers, among that worker's batches in order, of those whose head ran off its loop}."""
    out: dict[int, list[int]] = {pid: [] for pid in loop_of}
    seen = dict.fromkeys(loop_of, 0)
    for batch in batches:
        if batch.thread != loop_of[batch.pid]:
            out[batch.pid].append(seen[batch.pid])
        seen[batch.pid] += 1
    return out


def test_short_heads_on_a_one_thread_worker_run_in_its_event_loop_after_the_first(cluster):
    _, client = cluster
    loop_of = loop_threads(client)
    p = wb.work_dataset(80).p.where_run(nap_ms=1)
    for _ in range(5):
        batches = run_with_timeout(lambda: list(p.gen_batch(2, prefetch=2, executor=client.get_executor())))
        assert [b.indices.tolist() for b in batches] == [[2 * k, 2 * k + 1] for k in range(40)]
        off_loop = heads_in_pool(batches, loop_of)
        # The first head is timed in the thread pool; the one sent before it ended waited there too.
        assert all(numbers and numbers == list(range(len(numbers))) and len(numbers) <= 2
                   for numbers in off_loop.values()), off_loop


def test_a_head_slower_than_the_limit_goes_back_to_the_thread_pool(cluster):
    _, client = cluster
    loop_of = loop_threads(client)
    p = wb.work_dataset(60).p.where_run(nap_ms=60, nap_from=20)
    with loop_head_limit(client, 0.03):
        batches = run_with_timeout(lambda: list(p.gen_batch(2, prefetch=2, executor=client.get_executor())))
    assert [b.indices.tolist() for b in batches] == [[2 * k, 2 * k + 1] for k in range(30)]
    for pid, numbers in heads_in_pool(batches, loop_of).items():
        mine = [b.indices[0] for b in batches if b.pid == pid]
        first_slow = next(n for n, item in enumerate(mine) if item >= 20)
        # the first slow head ran in the loop; the calls made before it ended (at most two) may follow it there
        assert set(range(first_slow + 3, len(mine))) <= set(numbers), (pid, mine, numbers)


def test_heads_in_a_dask_workers_threads_run_with_a_short_switch_interval_put_back_after(cluster):
    from batchkit.pipeline.dask_engine import _SHORT_SWITCH_INTERVAL
    _, client = cluster
    before = client.run(sys.getswitchinterval)
    p = wb.work_dataset(40).p.sleepy(2).switch_interval()
    with loop_head_limit(client, -1.0):                # every head in the thread pool
        for _ in range(3):
            batches = run_with_timeout(lambda: list(p.gen_batch(2, prefetch=2, executor=client.get_executor())))
            assert [b.interval for b in batches] == [_SHORT_SWITCH_INTERVAL] * 20
            assert client.run(sys.getswitchinterval) == before      # NOTE [ GIL turns on workers ]


def test_heads_on_a_worker_with_two_threads_stay_in_its_thread_pool():
    import distributed
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=2, dashboard_address=':0') as two, \
            distributed.Client(two) as client:
        client.run(sys.path.insert, 0, HERE)
        loop_of = loop_threads(client)
        p = wb.work_dataset(60).p.where_run(nap_ms=2)
        batches = run_with_timeout(lambda: list(p.gen_batch(2, prefetch=4, executor=client.get_executor())))
        assert [b.indices.tolist() for b in batches] == [[2 * k, 2 * k + 1] for k in range(30)]
        assert heads_in_pool(batches, loop_of) == {pid: list(range(30)) for pid in loop_of}
        assert len({b.thread for b in batches}) == 2          # both threads ran heads


@contextlib.contextmanager
def counted_proxy_calls(dask_cluster):
    """[n]: how many messages the (in-process) scheduler relayed to a worker for a client meanwhile."""
    handlers = dask_cluster.scheduler.handlers
    relay, count = handlers['proxy'], [0]

    def counting(**msg):
        count[0] += 1
        return relay(**msg)
    handlers['proxy'] = counting
    try:
        yield count
    finally:
        handlers['proxy'] = relay


def test_heads_are_called_directly_unless_the_client_says_direct_to_workers_false(cluster):
    import distributed
    dask_cluster, client = cluster
    p = wb.work_dataset(40).p.where_run()
    assert client.direct_to_workers is None                   # Dask's default: through the scheduler
    with counted_proxy_calls(dask_cluster) as relayed:
        batches = run_with_timeout(lambda: list(p.gen_batch(2, prefetch=2, executor=client.get_executor())))
    assert len(batches) == 20 and relayed == [0]               # NOTE [ Direct calls ]
    with distributed.Client(dask_cluster, direct_to_workers=False) as proxied, \
            counted_proxy_calls(dask_cluster) as relayed:
        batches = run_with_timeout(lambda: list(p.gen_batch(2, prefetch=2, executor=proxied.get_executor())))
    assert [b.indices.tolist() for b in batches] == [[2 * k, 2 * k + 1] for k in range(20)]
    assert relayed == [20]


def test_a_worker_that_cannot_be_reached_directly_is_called_through_the_scheduler(cluster):
    from batchkit.pipeline.dask_engine import _UNREACHABLE, DaskEngine
    _, client = cluster
    engine = DaskEngine(client, window=2)
    nowhere = 'tcp://127.0.0.1:9'                             # the discard port: nothing listens
    assert engine._reachable(client.scheduler_info()['workers'].popitem()[0])
    start = time.monotonic()
    assert not engine._reachable(nowhere) and nowhere in _UNREACHABLE
    assert time.monotonic() - start < 10
    assert not engine._reachable(nowhere)                    # not tried again


def test_a_worker_address_that_accepts_but_never_answers_is_given_up_after_the_probe_timeout(cluster, monkeypatch):
    from batchkit.pipeline import dask_engine
    _, client = cluster
    monkeypatch.setattr(dask_engine, '_PROBE_TIMEOUT', 0.5)
    monkeypatch.setattr(dask_engine, '_UNREACHABLE', set())
    with socket.create_server(('127.0.0.1', 0)) as silent:      # the kernel accepts; nobody ever replies
        silent_address = f'tcp://127.0.0.1:{silent.getsockname()[1]}'
        start = time.monotonic()
        assert not dask_engine.DaskEngine(client, window=2)._reachable(silent_address)
        took = time.monotonic() - start
    assert 0.4 < took < 5, took
    assert dask_engine._UNREACHABLE == {silent_address}


@contextlib.contextmanager
def failing_actors(client):
    """Every worker's HeadActor.run raising an error of its own, then put back."""
    client.run(wb.break_actor_runs)
    try:
        yield
    finally:
        client.run(wb.mend_actor_runs)


@pytest.mark.parametrize('direct', [None, False], ids=['direct call', 'through the scheduler'])
def test_an_actor_call_that_fails_on_the_worker_stops_the_run_with_the_workers_error(cluster, direct):
    import distributed
    dask_cluster, main_client = cluster
    p = wb.work_dataset(20).p.where_run()
    with distributed.Client(dask_cluster, direct_to_workers=direct) as client, failing_actors(client), \
            counted_proxy_calls(dask_cluster) as relayed:
        with pytest.raises(WorkerDiedError, match='injected actor failure'):
            run_with_timeout(lambda: list(p.gen_batch(2, prefetch=2, executor=client.get_executor())))
    assert (relayed[0] > 0) == (direct is False)
    # the actors are put back: the next run goes through
    batches = run_with_timeout(lambda: list(p.gen_batch(2, prefetch=2, executor=main_client.get_executor())))
    assert [b.indices.tolist() for b in batches] == [[2 * k, 2 * k + 1] for k in range(10)]


def test_short_gil_turns_overlapping_in_many_threads_put_the_interval_back_exactly():
    from batchkit.pipeline.dask_engine import ShortGilTurns
    before = sys.getswitchinterval()
    turns = ShortGilTurns(before / 10)
    seen, start = [], threading.Barrier(8)

    def head() -> None:
        start.wait()
        for _ in range(300):
            with turns:
                time.sleep(0)                       # another thread enters or leaves meanwhile
                seen.append(sys.getswitchinterval())
    threads = [threading.Thread(target=head) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 2400 and set(seen) == {before / 10}
    assert sys.getswitchinterval() == before


def test_a_killed_dask_worker_gives_worker_died_error(cluster):
    """Last in the module: the nanny restarts the killed worker for the tests that may follow."""
    _, client = cluster
    p = wb.work_dataset(20).p.fail_at(item=4, how='kill')
    with pytest.raises(WorkerDiedError, match='Dask workers'):
        run_with_timeout(lambda: p.run(1, prefetch=2, executor=client.get_executor()), 60)
    client.wait_for_workers(2, timeout=60)


def test_a_missing_file_error_in_a_dask_worker_reaches_the_caller(cluster, tmp_path):
    from batchkit import Dataset, FilesIndex
    from batchkit.errors import MissingFileError
    _, client = cluster
    for i in range(4):
        np.savez(tmp_path / f'{i}.npz', x=np.full(3, i, dtype=np.float32))
    ds = Dataset(FilesIndex(path=str(tmp_path / '*.npz'), no_ext=True), batch_class=wb.WorkBatch)
    os.remove(tmp_path / '2.npz')
    with pytest.raises(MissingFileError):
        run_with_timeout(lambda: ds.p.load(fmt='npz').run(1, prefetch=2, executor=client.get_executor()))
