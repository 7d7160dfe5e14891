"""gather_metrics: metrics gathered over a run (sequential, prefetch threads, worker processes) equal one-shot
metrics on all the data; names, arguments and targets checked when chained; batchkit.metrics loads lazily."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from batchkit import B, BatchkitTypeError, Dataset, V
from batchkit.errors import UnknownNameError
from batchkit.metrics import (
    ClassificationMetrics,
    RegressionMetrics,
    SegmentationMetricsByInstances,
    SegmentationMetricsByPixels,
)

sys.path.insert(0, str(Path(__file__).parents[1] / 'metrics'))    # metrics_batches: importable by workers
from metrics_batches import ScoredBatch  # noqa: E402

RNG = np.random.default_rng(11)
Y, P = RNG.integers(0, 4, (45, 6, 5)), RNG.integers(0, 4, (45, 6, 5))
T, Q = RNG.normal(size=(45, 2)), RNG.normal(size=(45, 2))

CASES = {
    'classification': (dict(fmt='labels', num_classes=4), ClassificationMetrics, ['accuracy', 'recall', 'f1_score']),
    'segmentation': (dict(fmt='labels', num_classes=4), SegmentationMetricsByPixels, ['jaccard', 'precision']),
    'instance': (dict(fmt='labels', num_classes=4, iot=0.4), SegmentationMetricsByInstances, ['recall', 'dice']),
    'regression': (dict(multi=True), RegressionMetrics, ['mae', 'r2', 'median_absolute_error', 'max_error']),
}


def _pipeline(name: str):
    kwargs, _, _ = CASES[name]
    if name == 'regression':
        return Dataset.from_arrays(y=T, p=Q).p.gather_metrics(name, targets=B('y'), predictions=B('p'), **kwargs)
    return Dataset.from_arrays(y=Y, p=P).p.gather_metrics(name, targets=B('y'), predictions=B('p'), **kwargs)


def _assert_same(got, want, names) -> None:
    for agg in ('mean', None):
        a, b = got.evaluate(names, agg=agg), want.evaluate(names, agg=agg)
        for name in names:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-12, err_msg=f'{name} agg={agg}')


@pytest.mark.parametrize('prefetch', [0, 2])
@pytest.mark.parametrize('name', sorted(CASES))
def test_a_run_gathers_what_one_shot_metrics_give(name: str, prefetch: int) -> None:
    kwargs, cls, names = CASES[name]
    for _ in range(5 if prefetch else 1):               # prefetch: several runs, each in batch order
        pipeline = _pipeline(name)
        pipeline.run(batch_size=4, prefetch=prefetch, shuffle=False)
        gathered = pipeline.get_variable('m')
        assert type(gathered) is cls
        want = cls(T, Q, **kwargs) if name == 'regression' else cls(Y, P, **kwargs)
        _assert_same(gathered, want, names)             # agg=None: per-item values in the order of the data


def test_a_metrics_class_and_a_named_target_are_accepted() -> None:
    pipeline = (Dataset.from_arrays(y=T[:, 0], p=Q[:, 0]).p
                .init_variable('reg')
                .gather_metrics(RegressionMetrics, B('y'), B('p'), save_to=V('reg', mode='u')))
    pipeline.run(batch_size=10)
    _assert_same(pipeline.get_variable('reg'), RegressionMetrics(T[:, 0], Q[:, 0]), ['mse', 'accuracy'])


@pytest.mark.slow
def test_metrics_of_batches_from_worker_processes() -> None:
    pipeline = (Dataset.from_arrays(ScoredBatch, y=Y, p=P).p
                .score(num_classes=4)                           # runs in the worker processes
                .gather_metrics('segmentation', targets=B('y'), predictions=B('p'), fmt='labels', num_classes=4))
    pipeline.run(batch_size=6, prefetch=2, target='processes')
    _assert_same(pipeline.get_variable('m'), SegmentationMetricsByPixels(Y, P, fmt='labels', num_classes=4),
                 ['jaccard', 'accuracy'])


@pytest.mark.parametrize('chain, error, message', [
    (lambda p: p.gather_metrics('clasification', targets=B('y'), predictions=B('p')), UnknownNameError,
     "Did you mean 'classification'"),
    (lambda p: p.gather_metrics(dict, targets=B('y'), predictions=B('p')), BatchkitTypeError, 'Metrics'),
    (lambda p: p.gather_metrics('regression', targets=B('y'), predictions=B('p'), num_classes=3),
     BatchkitTypeError, 'num_classes'),
    (lambda p: p.gather_metrics('classification', targets=B('y')), BatchkitTypeError, 'predictions'),
    (lambda p: p.gather_metrics('classification', targets=B('y'), predictions=B('p'), save_to=3),
     BatchkitTypeError, 'save_to'),
    (lambda p: p.gather_metrics('classification', targets=B('y'), predictions=B('p'), mode='x'),
     BatchkitTypeError, "mode='x'"),
])
def test_bad_steps_fail_when_chained(chain, error, message) -> None:
    pipeline = Dataset.from_arrays(y=Y, p=P).p
    with pytest.raises((error, ValueError), match=message):
        chain(pipeline)


def test_importing_batchkit_does_not_import_the_metrics() -> None:
    code = ('import sys, batchkit; from batchkit import Dataset; '
            'assert "batchkit.metrics" not in sys.modules, "imported"; '
            'Dataset.from_arrays(y=[1, 0]).p.gather_metrics("classification", targets=[1], predictions=[1]); '
            'assert "batchkit.metrics" in sys.modules')
    subprocess.run([sys.executable, '-c', code], check=True)


def test_the_step_runs_in_the_tail_under_prefetch() -> None:
    from batchkit.pipeline.builtins import BUILTINS
    from batchkit.pipeline.prefetch import split_head
    pipeline = Dataset.from_arrays(y=Y, p=P).p
    op = BUILTINS['gather_metrics'].compile(pipeline, 'classification', targets=B('y'), predictions=B('p'),
                                            fmt='labels', num_classes=4)
    for remote in (False, True):
        lead, head, tail = split_head([op], remote=remote)
        assert (lead, head, tail) == ([], [], [op])

