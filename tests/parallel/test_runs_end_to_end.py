"""Whole runs under prefetch: exact counts, order, interrupts, dead workers, lock timeouts, run options, engines.

Batch classes here run in spawned worker processes: tests/parallel/conftest.py puts this directory on PYTHONPATH,
so a worker imports them from this module by its name.
"""
from __future__ import annotations

import copyreg
import importlib.util
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from batchkit import B, BatchkitTypeError, BatchkitValueError, V, action
from batchkit.errors import LockTimeoutError, WorkerDiedError

import workbatches as wb
from parallel_support import run_with_timeout, wait_until, worker_children
from test_random import assert_same, outputs

TARGETS = ['threads', 'processes']
_SEEN_LOCK = threading.Lock()
SEEN: list = []          # what the ordered action saw, in this (the consuming) process


class AuditBatch(wb.WorkBatch):
    """WorkBatch with an ordered recorder, a tail action raising KeyboardInterrupt and a lock with a timeout."""

    @action(ordered=True)
    def record(self) -> 'AuditBatch':
        with _SEEN_LOCK:
            SEEN.append(self.indices.tolist())
        return self

    @action(ordered=True)
    def interrupt_at(self, item: int) -> 'AuditBatch':
        if item in self.indices.tolist():
            raise KeyboardInterrupt
        return self

    @action
    def interrupt_in_head(self, item: int) -> 'AuditBatch':
        if item in self.indices.tolist():
            raise KeyboardInterrupt
        return self

    @action(use_lock='audit', lock_timeout=5.0)
    def timed_locked(self, delay: float = 0.0) -> 'AuditBatch':
        wb._occupy('timed', delay)
        return self


def audit_dataset(n: int):
    from batchkit import Dataset
    return Dataset(n, batch_class=AuditBatch, preloaded={'x': np.arange(n, dtype=np.float64)})


# --- (b) exact counts for threads and processes ----------------------------------------------------------------
@pytest.mark.parametrize('target', TARGETS)
def test_a_variable_incremented_over_500_batches_ends_at_500(target, baseline):
    p = (wb.work_dataset(500).p
         .init_variable('n', 0)
         .init_variable('ids', default=list)
         .sleepy(max_ms=1)
         .update('n', wb.V_plus_one())
         .update(V('ids', mode='e'), B('indices')))
    run_with_timeout(lambda: p.run(1, prefetch=8, target=target), 120)
    assert p.get_variable('n') == 500
    assert [int(i) for i in p.get_variable('ids')] == list(range(500))
    baseline.check()


# --- (m) a user-marked ordered action sees the batches in order ------------------------------------------------------
@pytest.mark.parametrize('prefetch, target', [(8, 'threads'), (3, 'processes')])
def test_an_ordered_action_sees_the_batches_in_the_order_of_a_run_without_prefetch(prefetch, target):
    SEEN.clear()
    audit_dataset(120).p.sleepy(max_ms=4).record().run(3, n_epochs=2, shuffle=9)
    expected = list(SEEN)
    SEEN.clear()
    run_with_timeout(lambda: audit_dataset(120).p.sleepy(max_ms=4).record()
                     .run(3, n_epochs=2, shuffle=9, prefetch=prefetch, target=target))
    assert len(expected) == 80
    assert SEEN == expected


# --- (f) KeyboardInterrupt from inside an action ---------------------------------------------------------------------
@pytest.mark.parametrize('target', TARGETS)
def test_keyboard_interrupt_from_a_tail_action_stops_the_run_and_its_workers(target, baseline):
    yielded: list = []

    def consume() -> None:
        for batch in audit_dataset(200).p.sleepy(5).interrupt_at(item=6).gen_batch(1, prefetch=4, target=target):
            yielded.append(batch.indices.tolist())

    with pytest.raises(KeyboardInterrupt):
        run_with_timeout(consume, 60)
    assert yielded == [[i] for i in range(6)]
    baseline.check()


def test_keyboard_interrupt_from_a_head_action_in_a_prefetch_thread_stops_the_run(baseline):
    def consume() -> None:
        for _ in audit_dataset(200).p.sleepy(5).interrupt_in_head(item=30).gen_batch(1, prefetch=4):
            pass

    with pytest.raises(KeyboardInterrupt):
        run_with_timeout(consume, 60)
    baseline.check()


# --- (d) ignore_exceptions does not hide a dead worker ----------------------------------------------------------------
@pytest.mark.parametrize('n', [12, 40], ids=['dies-near-the-end', 'dies-mid-run'])
def test_a_dead_worker_process_is_not_ignored_by_ignore_exceptions(n, caplog, baseline):
    """The broken pool loses the in-flight batches of other items too: the run must stop with WorkerDiedError,
    not drop them silently (before the fix a death near the end finished the run with innocent batches gone)."""
    p = wb.work_dataset(n).p.sleepy(2).fail_at(item=9, how='exit')
    yielded: list = []

    def consume() -> None:
        for batch in p.gen_batch(1, prefetch=3, target='processes', ignore_exceptions=True):
            yielded.append(int(batch.indices[0]))

    with pytest.raises(WorkerDiedError, match='died'):
        run_with_timeout(consume, 60)
    assert yielded == list(range(len(yielded))) and len(yielded) <= 9
    assert not [r for r in caplog.records if 'dropped' in r.getMessage()]
    baseline.check()


# --- (g) use_lock with lock_timeout under prefetch -------------------------------------------------------------------
@pytest.mark.parametrize('prefetch, target', [(8, 'threads'), (2, 'processes')])
def test_a_lock_with_a_timeout_that_is_never_reached_serializes_and_never_raises(prefetch, target, baseline):
    p = audit_dataset(200).p.track(delay=0.001).timed_locked(delay=0.0005)
    n = run_with_timeout(lambda: sum(1 for _ in p.gen_batch(1, prefetch=prefetch, target=target)), 120)
    assert n == 200
    assert wb.counter('timed.total') == 200 and wb.counter('timed.max') == 1
    if target == 'threads':
        assert wb.counter('active.max') > 1          # heads overlapped, the locked action never did
    baseline.check()


def test_a_lock_timeout_under_prefetch_is_dropped_with_its_batch_under_ignore_exceptions(caplog, baseline):
    """The timed-out batch is dropped and logged as LockTimeoutError; the run goes on and ends."""
    p = wb.work_dataset(6).p.slow_locked(hold=0.5)
    batches = run_with_timeout(lambda: list(p.gen_batch(1, prefetch=2, ignore_exceptions=True)), 60)
    dropped = [r for r in caplog.records if 'dropped' in r.getMessage()]
    assert dropped and all('LockTimeoutError' in r.getMessage() for r in dropped)
    assert len(batches) + len(dropped) == 6
    baseline.check()


# --- (l) bad run options fail before any batch -----------------------------------------------------------------------
BAD_OPTIONS = [
    ({'prefetch': -1}, BatchkitValueError, r"`prefetch`.*prefetch=-1"),
    ({'prefetch': '2'}, BatchkitTypeError, r"`prefetch`.*non-negative int.*prefetch='2'"),
    ({'prefetch': 2.0}, BatchkitTypeError, r"prefetch=2.0"),
    ({'prefetch': True}, BatchkitTypeError, r"prefetch=True"),
    ({'prefetch': 2, 'target': 'gpu'}, BatchkitValueError, r"target='threads' or 'processes'.*target='gpu'"),
    ({'target': 'gpu'}, BatchkitValueError, r"target='gpu'"),
    ({'prefetch': 2, 'engine': 'ray'}, BatchkitValueError, r"engine='dask' or None.*engine='ray'"),
    ({'executor': object()}, BatchkitTypeError, r"concurrent.futures.Executor.*Received: object"),
    ({'prefetch': 2, 'executr': None}, BatchkitTypeError, r"'executr'.*Did you mean 'executor'"),
    ({'prefetch': 2, 'seed': 'abc'}, BatchkitTypeError, r"`seed`.*non-negative int or None.*seed='abc'"),
    ({'prefetch': 2, 'seed': 1.5}, BatchkitTypeError, r"`seed`.*seed=1.5"),
    ({'prefetch': 2, 'seed': -1}, BatchkitValueError, r"`seed`.*seed=-1"),
    ({'prefetch': 2, 'ignore_exceptions': 'no'}, BatchkitTypeError, r"`ignore_exceptions` to be True or False.*='no' of type str"),
]


@pytest.mark.parametrize('how', ['run', 'gen_batch'])
@pytest.mark.parametrize('options, exc, regex', BAD_OPTIONS, ids=[repr(o) for o, *_ in BAD_OPTIONS])
def test_bad_run_options_fail_clearly_before_any_batch(options, exc, regex, how):
    wb.reset_counters()
    ran_before = []
    p = wb.work_dataset(10).p.before.call(lambda b: ran_before.append(1)).sleepy(1)
    with pytest.raises(exc, match=regex):
        getattr(p, how)(2, **options)
    assert wb.counter('created') == 0 and ran_before == []


# --- (m) a chain whose first step is ordered has no head: nothing is shipped --------------------------------------------
@pytest.mark.parametrize('target', TARGETS)
def test_a_run_without_a_head_starts_no_workers_and_gives_the_same_batches(target, baseline):
    """Before the fix every batch went to a spawned process and back with nothing to do there (75x slower)."""
    def chain():
        return audit_dataset(60).p.record().sleepy(1)
    SEEN.clear()
    expected = [b.x.tolist() for b in chain().gen_batch(4, shuffle=2)]
    SEEN.clear()
    got = []
    for batch in chain().gen_batch(4, shuffle=2, prefetch=4, target=target):
        assert worker_children() <= baseline.children
        assert threading.active_count() <= baseline.threads
        got.append(batch.x.tolist())
    assert got == expected and len(SEEN) == 15


# --- (m) executor= a ProcessPoolExecutor of the caller's ---------------------------------------------------------------
def test_a_given_process_pool_runs_the_heads_gives_the_same_results_and_is_not_shut_down():
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('spawn')) as pool:
        assert_same(outputs(shuffle=7, prefetch=2, executor=pool), outputs(shuffle=7))
        p = (wb.work_dataset(40).p.init_variable('seen', default=list).sleepy(2)
             .update(V('seen', mode='e'), B('x')))
        run_with_timeout(lambda: p.run(3, executor=pool, prefetch=2, shuffle=1))
        expected = (wb.work_dataset(40).p.init_variable('seen', default=list).sleepy(2)
                    .update(V('seen', mode='e'), B('x')).run(3, shuffle=1).get_variable('seen'))
        assert np.array_equal(p.get_variable('seen'), expected)
        assert pool.submit(int, '7').result() == 7          # still usable: the run does not own it


# --- (m) engine='dask' without an address starts (and closes) its own LocalCluster ------------------------------------
@pytest.mark.distributed
@pytest.mark.skipif(importlib.util.find_spec('distributed') is None, reason='needs distributed')
def test_engine_dask_without_an_address_starts_a_local_cluster_and_closes_it():
    saved = dict(copyreg.dispatch_table)      # see tests/parallel/test_dask.py: distributed changes exception pickling
    children = worker_children()
    try:
        got = outputs(seed=5, engine='dask', prefetch=2)
        assert_same(got, outputs(seed=5))
    finally:
        copyreg.dispatch_table.clear()
        copyreg.dispatch_table.update(saved)
    assert wait_until(lambda: worker_children() <= children, 30)     # its cluster's processes are gone
