"""The result-shape table: every metric x format x axis x agg x multiclass x skip_bg."""
from __future__ import annotations

import numpy as np
import pytest
from metrics_reference import COUNTS, scores_for

from batchkit.metrics import ClassificationMetrics, SegmentationMetricsByPixels

N_ITEMS = 3


def _inputs(kind: str) -> tuple[tuple, dict, int, bool]:
    """(targets, predictions), kwargs, num_classes, whether the inputs are vectors."""
    rng = np.random.default_rng(7)
    if kind == 'labels vector':
        t, p = rng.integers(0, 4, 30), rng.integers(0, 4, 30)
        return (t, p), dict(fmt='labels', num_classes=4), 4, True
    if kind == 'labels images':
        t, p = rng.integers(0, 4, (N_ITEMS, 5, 6)), rng.integers(0, 4, (N_ITEMS, 5, 6))
        return (t, p), dict(fmt='labels', num_classes=4), 4, False
    if kind == 'binary proba vector':
        t, p = rng.integers(0, 2, 30), rng.integers(0, 2, 30)
        return (scores_for(t, 2, 'proba', None, rng), scores_for(p, 2, 'proba', None, rng)), {}, 2, True
    if kind == 'binary logits images':
        t, p = rng.integers(0, 2, (N_ITEMS, 5, 6)), rng.integers(0, 2, (N_ITEMS, 5, 6))
        return ((scores_for(t, 2, 'logits', None, rng), scores_for(p, 2, 'logits', None, rng)),
                dict(fmt='logits'), 2, False)
    if kind == 'binary labels vector':
        t, p = rng.integers(0, 2, 30), rng.integers(0, 2, 30)
        return (t, p), dict(fmt='labels'), 2, True
    if kind == 'binary one-hot images':
        t, p = rng.integers(0, 2, (N_ITEMS, 5)), rng.integers(0, 2, (N_ITEMS, 5))
        return ((scores_for(t, 2, 'proba', -1, rng), scores_for(p, 2, 'proba', -1, rng)), dict(axis=-1), 2,
                False)
    if kind == 'proba channels-last images':
        t, p = rng.integers(0, 4, (N_ITEMS, 5, 6)), rng.integers(0, 4, (N_ITEMS, 5, 6))
        return ((scores_for(t, 4, 'proba', -1, rng), scores_for(p, 4, 'proba', -1, rng)), dict(axis=-1), 4,
                False)
    if kind == 'logits channels-first images':
        t, p = rng.integers(0, 4, (N_ITEMS, 5, 6)), rng.integers(0, 4, (N_ITEMS, 5, 6))
        return ((scores_for(t, 4, 'logits', 1, rng), scores_for(p, 4, 'logits', 1, rng)),
                dict(fmt='logits', axis=1), 4, False)
    if kind == 'proba one-hot vector':
        t, p = rng.integers(0, 3, 30), rng.integers(0, 3, 30)
        return (scores_for(t, 3, 'proba', 1, rng), scores_for(p, 3, 'proba', 1, rng)), dict(axis=1), 3, True
    if kind == 'label targets, proba channels-first':
        t, p = rng.integers(0, 3, (N_ITEMS, 5, 6)), rng.integers(0, 3, (N_ITEMS, 5, 6))
        return (t, scores_for(p, 3, 'proba', 1, rng)), dict(axis=1), 3, False
    raise AssertionError(kind)


KINDS = ['labels vector', 'labels images', 'binary proba vector', 'binary logits images', 'binary labels vector',
         'binary one-hot images', 'proba channels-last images', 'logits channels-first images',
         'proba one-hot vector', 'label targets, proba channels-first']


def expected_shape(name: str, num_classes: int, vector: bool, agg: str | None, multiclass: str | None,
                   skip_bg: bool) -> tuple[int, ...]:
    """The documented table: a value per item is () with class averaging (or a two-class task, its positive
    class), (k,) without, k the classes reported; counts per class; (n_items,) in front for images, agg=None."""
    canonical = ClassificationMetrics.resolve(name)
    k = num_classes - int(skip_bg)
    if canonical == 'confusion_matrix':
        per_item = (num_classes, num_classes)
    elif canonical == 'total_population':
        per_item = ()
    elif canonical == 'accuracy':
        per_item = (k,) if multiclass is None else ()
    elif num_classes == 2:
        per_item = (k,) if multiclass is None else ()
    elif canonical in COUNTS:
        per_item = (k,)
    else:
        per_item = (k,) if multiclass is None else ()
    return per_item if vector or agg is not None else (N_ITEMS, *per_item)


@pytest.mark.parametrize('cls', [ClassificationMetrics, SegmentationMetricsByPixels])
@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('name', ClassificationMetrics.metric_names())
def test_result_shapes(cls: type, kind: str, name: str) -> None:
    (targets, predictions), kwargs, num_classes, vector = _inputs(kind)
    for skip_bg in (False, True):
        m = cls(targets, predictions, skip_bg=skip_bg, **kwargs)
        for agg in ('mean', None):
            for multiclass in (None, 'micro', 'macro'):
                value = m.evaluate(name, agg=agg, multiclass=multiclass)
                shape = expected_shape(name, num_classes, vector, agg, multiclass, skip_bg)
                where = f'{name} agg={agg} multiclass={multiclass} skip_bg={skip_bg}'
                if shape == ():
                    assert isinstance(value, (int, float)), f'{where}: {type(value)}'
                else:
                    assert isinstance(value, np.ndarray) and value.shape == shape, f'{where}: {np.shape(value)}'
                assert not np.isnan(value).any(), where


def test_counts_of_vectors_stay_integers() -> None:
    (t, p), kwargs, _, _ = _inputs('labels vector')
    m = ClassificationMetrics(t, p, **kwargs)
    for name in (*COUNTS, 'total_population', 'confusion_matrix'):
        assert np.asarray(m.evaluate(name)).dtype.kind == 'i', name
    assert isinstance(m.evaluate('total_population'), int)


def test_agg_sum_adds_the_counts_of_the_items() -> None:
    (t, p), kwargs, _, _ = _inputs('labels images')
    m = ClassificationMetrics(t, p, **kwargs)
    np.testing.assert_array_equal(m.evaluate('confusion_matrix', agg='sum'), m.confusion_matrix)
    assert m.evaluate('total_population', agg='sum') == t.size
    np.testing.assert_allclose(m.evaluate('true_positive'), m.evaluate('true_positive', agg='sum') / N_ITEMS)
