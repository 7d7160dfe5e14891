"""use_lock under prefetch threads: never overlaps, always released, re-entrant, with an optional timeout."""
from __future__ import annotations

import threading
import traceback

import pytest

from batchkit import BatchkitError
from batchkit.errors import LockTimeoutError
from batchkit.locks import LockRegistry

import workbatches as wb
from parallel_support import run_with_timeout


def _count(gen) -> int:
    return sum(1 for _ in gen)


def test_a_lock_per_action_never_overlaps_over_300_batches(baseline):
    p = wb.work_dataset(300).p.track(delay=0.001).locked(delay=0.0005)
    assert run_with_timeout(lambda: _count(p.gen_batch(1, prefetch=8))) == 300
    assert wb.counter('active.max') > 1             # the heads ran concurrently ...
    assert wb.counter('locked.max') == 1            # ... but never two inside the locked action
    assert wb.counter('locked.total') == 300
    baseline.check()


def test_a_named_lock_is_shared_by_the_actions_naming_it(baseline):
    p = wb.work_dataset(300).p.shared_a(delay=0.0003).track(delay=0.001).shared_b(delay=0.0003)
    assert run_with_timeout(lambda: _count(p.gen_batch(1, prefetch=8))) == 300
    assert wb.counter('shared.max') == 1
    assert wb.counter('shared.total') == 600
    baseline.check()


def test_a_lock_is_released_when_the_action_raises(caplog, baseline):
    p = wb.work_dataset(300).p.track(delay=0.001).locked_fail_at(item=5).locked_fail_at(item=150)
    n = run_with_timeout(lambda: _count(p.gen_batch(1, prefetch=8, ignore_exceptions=True)))
    assert n == 298
    assert wb.counter('locked_fail.max') == 1
    assert wb.counter('locked_fail.total') == 300 + 299       # the second action skips batch 5
    assert len([r for r in caplog.records if 'dropped' in r.getMessage()]) == 2
    baseline.check()


def test_a_lock_is_reentrant_for_an_action_calling_another_with_the_same_name(baseline):
    p = wb.work_dataset(100).p.track(delay=0.0005).shared_reentrant()
    assert run_with_timeout(lambda: _count(p.gen_batch(1, prefetch=4)), 30) == 100
    assert wb.counter('shared.total') == 100
    assert wb.counter('shared.max') == 1
    baseline.check()


def test_lock_timeout_raises_a_clear_error_instead_of_waiting_forever(baseline):
    p = wb.work_dataset(4).p.slow_locked(hold=1.0)
    with pytest.raises(LockTimeoutError, match=r"lock of action 'slow_locked' within lock_timeout=0.2") as info:
        run_with_timeout(lambda: _count(p.gen_batch(1, prefetch=2)), 30)
    assert isinstance(info.value, BatchkitError) and isinstance(info.value, TimeoutError)
    assert 'slow_locked' in ''.join(traceback.format_exception(info.value))
    baseline.check()


def test_use_lock_actions_run_on_the_consuming_side_for_processes(baseline):
    p = wb.work_dataset(60).p.sleepy(1).locked().shared_a()
    assert run_with_timeout(lambda: _count(p.gen_batch(2, prefetch=2, target='processes'))) == 30
    assert wb.counter('locked.total') == 30 and wb.counter('shared.total') == 30
    baseline.check()


def test_lock_registry_gives_one_lock_per_key_under_concurrent_first_use():
    for _ in range(50):
        registry = LockRegistry()
        barrier = threading.Barrier(8)
        got = []

        def grab() -> None:
            barrier.wait()
            got.append(registry.get('k'))
        threads = [threading.Thread(target=grab) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(lock) for lock in got}) == 1
        assert len(registry) == 1


def test_lock_registry_hold_times_out_and_releases():
    registry = LockRegistry()
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with registry.hold('k'):
            held.set()
            release.wait(10)
    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    with pytest.raises(LockTimeoutError, match='lock_timeout=0.05'):
        with registry.hold('k', timeout=0.05):
            pass
    release.set()
    t.join()
    with registry.hold('k', timeout=1):
        with registry.hold('k', timeout=1):      # re-entrant
            pass
    with pytest.raises(RuntimeError):
        with registry.hold('k'):
            raise RuntimeError('inside')
    assert registry.get('k').acquire(blocking=False)   # released after the error
