"""benchmarks/bench_training.py runs end to end on a few hundred items, and its fairness check can fail."""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.tf]
import tensorflow  # noqa: E402,F401
import keras  # noqa: E402,F401

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / 'benchmarks' / 'bench_training.py'


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('bench_training', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs_every_side_and_prints_its_ratios(bench):
    lines: list[str] = []
    result = bench.run_benchmark(300, repeats=1, overhead_steps=3, out=lines.append)
    assert result['n_batches'] == 3                                  # 128 + 128 + a partial 44
    assert set(result['best']) == {(side, prep) for side in bench.SIDES for prep in (False, True)}
    assert all(t > 0 for t in result['best'].values())
    assert set(result['ratios']) == {'plain/batchkit', 'plain/batchkit prep', 'fit/batchkit prep', 'fit/batchkit'}
    assert max(result['weight_diff'].values()) <= bench.WEIGHT_TOLERANCE
    text = '\n'.join(lines)
    assert text.count('-> PASS') + text.count('-> FAIL') == 3
    assert 'us/batch' in text and 'overhead per train step' in text and 'modes prefetch started in' in text
    assert set(result['probes']) <= {'pool', 'one thread', 'inline'}


def test_every_side_sees_the_same_batches_and_trains_the_same_model(bench):
    b = bench.Bench(300)
    for prep in (False, True):
        for side in bench.SIDES:
            b.run(side, prep)
    assert b.check_same_training()[True] <= bench.WEIGHT_TOLERANCE
    # the tf.data side flips exactly the images that batchkit's per-batch generators flip
    masks = bench.flip_masks(300, 128)
    assert masks.sum() == 64 + 64 + 22
    batch = next(b.pipelines[True].gen_batch(128, n_epochs=1, shuffle=False, seed=bench.SEED))
    flipped = b.x[:128].reshape(128, 28, 28)[:, :, ::-1].reshape(128, -1) / 255 * 2 - 1
    np.testing.assert_allclose(batch.images[masks[:128]], flipped[masks[:128]], rtol=1e-6)


def test_the_check_stops_the_benchmark_when_a_side_trains_something_else(bench):
    b = bench.Bench(300)
    for prep in (False, True):
        for side in bench.SIDES:
            b.run(side, prep)
    model = b.models['fit', True]
    model.set_weights([w + 0.01 for w in model.get_weights()])
    with pytest.raises(SystemExit, match='trained different things'):
        b.check_same_training()
