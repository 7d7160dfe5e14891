"""Metrics gathered batch by batch (+, append, sum, a pipeline's mode='u', from threads and processes) equal
metrics computed once on all the data; metrics objects pickle."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_batches import ScoredBatch
from metrics_reference import FORMATS, scores_for

from batchkit import B, Dataset, F, V
from batchkit.metrics import ClassificationMetrics, SegmentationMetricsByPixels

NAMES = sorted(ClassificationMetrics.METRICS)


def assert_same_metrics(got: ClassificationMetrics, want: ClassificationMetrics, aggs=('mean', None)) -> None:
    for agg in aggs:
        for multiclass in (None, 'micro', 'macro'):
            a = got.evaluate(NAMES, agg=agg, multiclass=multiclass)
            b = want.evaluate(NAMES, agg=agg, multiclass=multiclass)
            for name in NAMES:
                np.testing.assert_allclose(a[name], b[name], rtol=1e-12, err_msg=f'{name} {agg} {multiclass}')


def _splits(draw: st.DrawFn, n: int) -> list[int]:
    return sorted(set(draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=5))) - {n})


@settings(max_examples=40)
@given(data=st.data())
def test_vectors_in_batches_add_up_to_all_at_once(data: st.DataObject) -> None:
    num_classes = data.draw(st.integers(2, 5))
    fmt = data.draw(st.sampled_from(FORMATS))
    axis = None if fmt == 'labels' or (num_classes == 2 and data.draw(st.booleans())) else 1
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    n = data.draw(st.integers(2, 80))
    t, p = rng.integers(0, num_classes, n), rng.integers(0, num_classes, n)
    t, p = scores_for(t, num_classes, fmt, axis, rng), scores_for(p, num_classes, fmt, axis, rng)
    kwargs = dict(fmt=fmt, num_classes=num_classes, axis=axis, skip_bg=data.draw(st.booleans()))
    if axis is not None:
        del kwargs['num_classes']
    whole = ClassificationMetrics(t, p, **kwargs)
    cuts = [0, *_splits(data.draw, n), n]
    parts = [ClassificationMetrics(t[a:b], p[a:b], **kwargs) for a, b in zip(cuts, cuts[1:])]
    assert_same_metrics(sum(parts), whole)
    added = parts[0]
    for part in parts[1:]:
        added = added + part
    assert_same_metrics(added, whole)
    appended = parts[0].copy()
    for part in parts[1:]:
        assert appended.append(part) is appended
    assert_same_metrics(appended, whole)
    assert_same_metrics(pickle.loads(pickle.dumps(appended)), whole)


@settings(max_examples=30)
@given(data=st.data())
def test_images_in_batches_concatenate_their_items(data: st.DataObject) -> None:
    num_classes = data.draw(st.integers(2, 5))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    n = data.draw(st.integers(2, 12))
    masks = rng.integers(0, num_classes, (n, 4, 5))
    preds = scores_for(rng.integers(0, num_classes, (n, 4, 5)), num_classes, 'proba', 1, rng)  # channels-first
    whole = SegmentationMetricsByPixels(masks, preds, axis=1, skip_bg=True)
    cuts = [0, *_splits(data.draw, n), n]
    parts = [SegmentationMetricsByPixels(masks[a:b], preds[a:b], axis=1, skip_bg=True)
             for a, b in zip(cuts, cuts[1:])]
    total = sum(parts)
    assert total.n_items == n
    assert_same_metrics(total, whole)           # agg=None: the items of every batch, in order
    np.testing.assert_array_equal(total.confusion_matrix, whole.confusion_matrix)
    assert_same_metrics(total[cuts[0]:cuts[1]], parts[0])


def test_adding_leaves_the_operands_alone(rng: np.random.Generator) -> None:
    a = ClassificationMetrics(rng.integers(0, 3, (2, 10)), rng.integers(0, 3, (2, 10)), fmt='labels', num_classes=3)
    b = ClassificationMetrics(rng.integers(0, 3, (3, 10)), rng.integers(0, 3, (3, 10)), fmt='labels', num_classes=3)
    before_a, before_b = a.evaluate('dice', agg=None), b.evaluate('dice', agg=None)
    c = a + b
    alias = c
    c += b                                  # a new object, as with +
    assert alias.n_items == 5 and c is not alias
    c.append(a)
    assert (a.n_items, b.n_items, c.n_items) == (2, 3, 10)
    np.testing.assert_array_equal(a.evaluate('dice', agg=None), before_a)
    np.testing.assert_array_equal(b.evaluate('dice', agg=None), before_b)
    np.testing.assert_array_equal(c.evaluate('dice', agg=None)[:5], np.r_[before_a, before_b])
    v = ClassificationMetrics(np.array([0, 1]), np.array([1, 1]), fmt='labels')
    w = v + v
    assert (v.evaluate('total_population'), w.evaluate('total_population')) == (2, 4)
    assert (None + v).evaluate('total_population') == 2     # a variable that starts as None


def _labelled(n: int = 57, num_classes: int = 4, item: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.integers(0, num_classes, (n, *item)), rng.integers(0, num_classes, (n, *item))


@pytest.mark.parametrize('prefetch', [0, 4])
@pytest.mark.parametrize('item', [(), (3, 4)])
def test_a_pipeline_gathers_with_mode_u(prefetch: int, item: tuple[int, ...]) -> None:
    y, p = _labelled(item=item)
    pipeline = (Dataset.from_arrays(y=y, p=p).p
                .init_variable('m')
                .update(V('m', mode='u'), F(ClassificationMetrics)(B('y'), B('p'), fmt='labels', num_classes=4)))
    pipeline.run(batch_size=8, prefetch=prefetch)
    gathered = pipeline.get_variable('m')
    assert gathered.n_items == (1 if item == () else len(y))
    assert_same_metrics(gathered, ClassificationMetrics(y, p, fmt='labels', num_classes=4))


@pytest.mark.slow
def test_metrics_computed_in_worker_processes_travel_back_and_add_up() -> None:
    y, p = _labelled(n=40, item=(5,))
    pipeline = (Dataset.from_arrays(ScoredBatch, y=y, p=p).p
                .score(num_classes=4)
                .init_variable('m')
                .update(V('m', mode='u'), B('metrics')))
    pipeline.run(batch_size=6, prefetch=2, target='processes')
    assert_same_metrics(pipeline.get_variable('m'), ClassificationMetrics(y, p, fmt='labels', num_classes=4))
