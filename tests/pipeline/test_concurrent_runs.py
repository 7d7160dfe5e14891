"""Two runs of one pipeline at the same time (two threads): every variable update lands, exact counts."""
from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from batchkit import B, Dataset, F, V

N_BATCHES = 250
N_THREADS = 2
ROUNDS = 20


@pytest.fixture(autouse=True)
def switch_often() -> Iterator[None]:
    """Switch threads every microsecond, so a read and a write that are not under one lock do interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def run_together(pipeline: Any, **options: Any) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(N_THREADS)

    def work() -> None:
        try:
            start.wait()
            pipeline.run(1, n_iters=N_BATCHES, **options)
        except BaseException as exc:       # re-raised in the test's thread
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(N_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize('prefetch', [0, 2])
def test_read_modify_write_update_loses_no_increment(ds: Dataset, prefetch: int) -> None:
    p = ds.p.init_variable('n', 0).add(1).update(V('n'), V('n') + 1)
    for _ in range(ROUNDS):
        p.set_variable('n', 0)
        run_together(p, prefetch=prefetch)
        assert p.get_variable('n') == N_THREADS * N_BATCHES


def test_update_reading_a_variable_by_name_in_a_function(ds: Dataset) -> None:
    p = ds.p.init_variable('n', 0).update('n', F(lambda batch: batch.pipeline.get_variable('n') + 1))
    for _ in range(ROUNDS):
        p.set_variable('n', 0)
        run_together(p)
        assert p.get_variable('n') == N_THREADS * N_BATCHES


@pytest.mark.parametrize('mode, initial, value, expected', [
    ('a', [], B('size'), [1] * N_THREADS * N_BATCHES),
    ('e', [], B('indices'), None),
    ('u', 0, B('size'), N_THREADS * N_BATCHES),
])
def test_save_modes_lose_nothing(ds: Dataset, mode: str, initial: Any, value: Any, expected: Any) -> None:
    p = ds.p.init_variable('out', None).update(V('out', mode=mode), value)
    for _ in range(ROUNDS):
        p.set_variable('out', type(initial)(initial) if isinstance(initial, list) else initial)
        run_together(p)
        out = p.get_variable('out')
        if mode == 'e':
            assert len(out) == N_THREADS * N_BATCHES
            assert sorted(np.asarray(out).tolist()) == sorted(list(range(10)) * (N_THREADS * N_BATCHES // 10))
        else:
            assert out == expected


def test_model_step_saving_to_a_variable_loses_nothing(ds: Dataset, model_class: type) -> None:
    p = (ds.p.init_variable('losses', default=None)
         .init_model('m', model_class, 'static')
         .train_model('m', x=B('labels'), save_to=V('losses', mode='a')))
    for _ in range(ROUNDS):
        p.set_variable('losses', [])
        run_together(p)
        losses = p.get_variable('losses')
        assert len(losses) == N_THREADS * N_BATCHES
        assert sum(losses) == N_THREADS * N_BATCHES / 10 * sum(range(0, 100, 10))
    assert p.get_model_by_name('m').calls == ROUNDS * N_THREADS * N_BATCHES


def test_a_call_that_reads_a_variable_and_saves_to_it_loses_no_increment(ds: Dataset) -> None:
    def increment(batch: Any, n: int) -> int:
        sum(range(50))                                 # some work between the read and the write
        return n + 1
    p = ds.p.init_variable('n', 0).call(increment, V('n'), save_to=V('n'))
    for _ in range(ROUNDS):
        p.set_variable('n', 0)
        run_together(p)
        assert p.get_variable('n') == N_THREADS * N_BATCHES
