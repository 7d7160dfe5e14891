"""Faults under prefetch: errors reach the caller at their batch's turn, workers stop, nothing hangs."""
from __future__ import annotations

import logging
import time
import traceback

import pytest

from batchkit import BatchkitError
from batchkit.errors import WorkerDiedError

import workbatches as wb
from parallel_support import run_with_timeout

TARGETS = ['threads', 'processes']


def _collect(gen, into: list) -> None:
    for batch in gen:
        into.append(batch.indices.tolist())


@pytest.mark.parametrize('target', TARGETS)
@pytest.mark.parametrize('where', ['head', 'tail'])
def test_an_exception_reaches_the_caller_at_its_batch_turn_with_its_traceback(target, where, baseline):
    p = wb.work_dataset(40).p.sleepy(3)
    p = p.fail_at(item=17) if where == 'head' else p.fail_in_tail(item=17)
    yielded: list = []
    with pytest.raises(ValueError, match='boom at item 17') as info:
        run_with_timeout(lambda: _collect(p.gen_batch(2, prefetch=4, target=target), yielded))
    assert yielded == [[2 * k, 2 * k + 1] for k in range(8)]      # batches before #8 (items 16, 17), none after
    text = ''.join(traceback.format_exception(info.value))
    assert 'boom_in_head' in text
    assert ('fail_at' if where == 'head' else 'fail_in_tail') in text
    baseline.check()


@pytest.mark.parametrize('target', TARGETS)
def test_run_raises_the_error_too(target, baseline):
    p = wb.work_dataset(30).p.fail_at(item=0)
    with pytest.raises(ValueError, match='boom at item 0'):
        run_with_timeout(lambda: p.run(3, prefetch=2, target=target))
    baseline.check()


@pytest.mark.parametrize('target', TARGETS)
def test_ignore_exceptions_drops_exactly_the_failing_batches_and_logs_each(target, caplog, baseline):
    bad = [3, 10, 17, 29]
    p = wb.work_dataset(30).p.sleepy(2)
    for item in bad[:3]:
        p = p.fail_at(item=item)
    p = p.fail_in_tail(item=bad[3])
    yielded: list = []
    with caplog.at_level(logging.WARNING, logger='batchkit'):
        run_with_timeout(lambda: _collect(p.gen_batch(1, prefetch=3, target=target, ignore_exceptions=True), yielded))
    assert yielded == [[i] for i in range(30) if i not in bad]
    dropped = [r for r in caplog.records if r.name == 'batchkit' and 'dropped' in r.getMessage()]
    assert len(dropped) == len(bad)
    for record, item in zip(dropped, bad):
        assert f'batch #{item + 1} ' in record.getMessage()
        assert f'boom at item {item}' in record.getMessage()
        assert record.exc_info is not None
    baseline.check()


@pytest.mark.parametrize('how', ['exit', 'kill'])
def test_a_worker_process_that_dies_gives_worker_died_error_quickly(how, baseline):
    p = wb.work_dataset(40).p.sleepy(2).fail_at(item=9, how=how)
    yielded: list = []
    start = time.monotonic()
    with pytest.raises(WorkerDiedError, match='died') as info:
        run_with_timeout(lambda: _collect(p.gen_batch(1, prefetch=3, target='processes'), yielded))
    assert time.monotonic() - start < 30
    assert isinstance(info.value, BatchkitError)
    assert yielded == [[i] for i in range(len(yielded))] and len(yielded) <= 9
    baseline.check()


@pytest.mark.parametrize('target', TARGETS)
def test_closing_a_generator_early_shuts_the_workers_down(target, baseline):
    gen = wb.work_dataset(200).p.sleepy(5).gen_batch(1, prefetch=4, target=target)
    got = [next(gen).indices.tolist() for _ in range(3)]
    assert got == [[0], [1], [2]]
    run_with_timeout(gen.close, 30)
    baseline.check()
    assert wb.counter('created') <= 3 + 4


@pytest.mark.parametrize('target', TARGETS)
def test_keyboard_interrupt_in_the_consumer_loop_shuts_everything_down(target, baseline):
    def consume() -> None:
        for k, _ in enumerate(wb.work_dataset(200).p.sleepy(5).gen_batch(1, prefetch=4, target=target)):
            if k == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_with_timeout(consume, 30)
    baseline.check()


@pytest.mark.parametrize('target', TARGETS)
def test_skip_batch_under_prefetch_drops_only_that_batch(target, baseline):
    p = wb.work_dataset(30).p.sleepy(2).fail_at(item=4, how='skip').fail_at(item=21, how='skip')
    yielded: list = []
    run_with_timeout(lambda: _collect(p.gen_batch(1, prefetch=4, target=target), yielded))
    assert yielded == [[i] for i in range(30) if i not in (4, 21)]
    baseline.check()


@pytest.mark.parametrize('target', TARGETS)
def test_stop_pipeline_under_prefetch_ends_the_run_cleanly(target, baseline):
    p = (wb.work_dataset(60).p.sleepy(2).fail_at(item=12, how='stop')
         .init_variable('n', 0).update('n', wb.V_plus_one()))
    yielded: list = []
    run_with_timeout(lambda: _collect(p.gen_batch(2, prefetch=4, target=target), yielded))
    assert yielded == [[2 * k, 2 * k + 1] for k in range(6)]
    assert p.get_variable('n') == 6
    baseline.check()
