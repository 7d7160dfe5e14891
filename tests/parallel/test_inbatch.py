"""@inbatch_parallel: per-item calls in a loop, in threads and in processes, with the same error guarantees."""
from __future__ import annotations

import threading
import traceback

import pytest

from batchkit import BatchkitTypeError
from batchkit.errors import WorkerDiedError

import workbatches as wb
from parallel_support import Baseline, run_with_timeout

TARGETS = ['for', 'threads', 'processes']


@pytest.fixture
def baseline() -> Baseline:
    """The processes target keeps one pool for the program (spawning is slow): start it before the baseline."""
    batch = next(wb.work_dataset(4).gen_batch(4))
    assert batch.square_processes().results == [0, 1, 4, 9]
    wb.reset_counters()
    return Baseline()


@pytest.mark.parametrize('target', TARGETS)
def test_each_item_is_processed_and_post_gets_the_results_in_item_order(target, baseline):
    p = getattr(wb.work_dataset(40).p, f'square_{target}')()
    batches = run_with_timeout(lambda: list(p.gen_batch(7, shuffle=5)))
    assert sum(len(b) for b in batches) == 40
    for b in batches:
        assert b.results == [i * i for i in b.indices.tolist()]
    baseline.check()


@pytest.mark.parametrize('target', ['for', 'threads'])
def test_inbatch_parallel_under_prefetch_threads(target, baseline):
    p = getattr(wb.work_dataset(200).p.sleepy(1), f'square_{target}')()
    batches = run_with_timeout(lambda: list(p.gen_batch(4, prefetch=4)))
    assert [r for b in batches for r in b.results] == [i * i for i in range(200)]
    baseline.check()


def test_inbatch_processes_inside_prefetch_processes():
    p = wb.work_dataset(24).p.sleepy(1).square_processes()
    batches = run_with_timeout(lambda: list(p.gen_batch(6, prefetch=2, target='processes')))
    assert [r for b in batches for r in b.results] == [i * i for i in range(24)]


def test_init_method_and_arguments_reach_each_call():
    batch = next(wb.work_dataset(6).p.pair_sum(offset=1).gen_batch(3))
    assert batch.results == [0 + 0 + 1, 1 + 10 + 1, 2 + 20 + 1]


@pytest.mark.parametrize('target', TARGETS)
@pytest.mark.parametrize('prefetch', [0, 2])
def test_an_item_error_reaches_the_caller_for_each_target(target, prefetch, baseline):
    p = getattr(wb.work_dataset(30).p, f'square_{target}')(fail_on=13)
    yielded: list = []

    def consume() -> None:
        for b in p.gen_batch(5, prefetch=prefetch):
            yielded.append(b.results)

    with pytest.raises(ValueError, match='item boom 13') as info:
        run_with_timeout(consume)
    assert len(yielded) == 2
    assert 'boom_in_item' in ''.join(traceback.format_exception(info.value))
    baseline.check()


@pytest.mark.parametrize('target', TARGETS)
def test_an_item_error_is_dropped_with_its_batch_under_ignore_exceptions(target, caplog):
    p = getattr(wb.work_dataset(30).p, f'square_{target}')(fail_on=13)
    batches = run_with_timeout(lambda: list(p.gen_batch(5, prefetch=2, ignore_exceptions=True)))
    assert [b.indices[0] for b in batches] == [0, 5, 15, 20, 25]
    assert len([r for r in caplog.records if 'dropped' in r.getMessage()]) == 1


@pytest.mark.parametrize('how', ['keyword', 'positional'])
@pytest.mark.parametrize('bad', [lambda x: x, threading.Lock()], ids=['lambda', 'lock'])
def test_processes_target_with_an_unpicklable_argument_names_it(how, bad):
    p = wb.work_dataset(6).p
    p = p.apply_processes(fn=bad) if how == 'keyword' else p.apply_processes(bad)
    with pytest.raises(BatchkitTypeError, match=r"@inbatch_parallel action 'apply_processes'.*argument 'fn'"):
        p.run(3)
    batch = next(wb.work_dataset(6).gen_batch(3))
    with pytest.raises(BatchkitTypeError, match=r"argument 'fn'"):
        batch.apply_processes(fn=bad)


def test_a_dying_inbatch_worker_gives_worker_died_error_and_the_next_call_works():
    batch = next(wb.work_dataset(8).gen_batch(4))
    with pytest.raises(WorkerDiedError, match='died'):
        run_with_timeout(lambda: batch.die_processes(at=2), 60)
    batch = next(wb.work_dataset(8).gen_batch(4))
    assert run_with_timeout(lambda: batch.square_processes().results, 60) == [0, 1, 4, 9]


def test_threads_target_leaves_no_thread_behind(baseline):
    for _ in range(30):
        next(wb.work_dataset(8).p.square_threads().gen_batch(8))
    baseline.check()
