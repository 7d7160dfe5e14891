"""SegmentationMetricsByInstances against a per-instance loop over scipy's components; labelling, merging, errors."""
from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from batchkit import BatchkitTypeError, BatchkitValueError
from batchkit.metrics import SegmentationMetricsByInstances
from batchkit.metrics.instances import _label_numpy, label_components


def reference_counts(t: np.ndarray, p: np.ndarray, num_classes: int, iot: float, skip_bg: bool) -> np.ndarray:
    """BatchFlow's rule, written as loops over items, classes and instances."""
    counts = np.zeros((len(t), num_classes, 3), dtype=int)
    for i in range(len(t)):
        for k in range(1 if skip_bg else 0, num_classes):
            ids, n = ndimage.label(t[i] == k)
            for j in range(1, n + 1):
                share = np.mean(p[i][ids == j] == k)
                counts[i, k, 0 if share >= iot else 2] += 1
            ids, n = ndimage.label(p[i] == k)
            for j in range(1, n + 1):
                pred, targ = np.sum(ids == j), np.sum(t[i][ids == j] == k)
                counts[i, k, 1] += targ == 0 or pred / targ < iot
    return counts


@st.composite
def masks(draw: st.DrawFn) -> tuple:
    num_classes = draw(st.integers(2, 4))
    shape = draw(st.sampled_from([(3, 12), (2, 9, 11), (2, 4, 5, 6)]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    t = rng.integers(0, num_classes, shape)
    noise = rng.random(shape) < draw(st.sampled_from([0.0, 0.2, 0.6]))
    p = np.where(noise, rng.integers(0, num_classes, shape), t)
    return t, p, num_classes


@settings(max_examples=40, deadline=None)
@given(data=masks(), iot=st.sampled_from([0.3, 0.5, 1.0]), skip_bg=st.booleans())
def test_counts_equal_a_loop_over_instances(data: tuple, iot: float, skip_bg: bool) -> None:
    t, p, num_classes = data
    m = SegmentationMetricsByInstances(t, p, fmt='labels', num_classes=num_classes, skip_bg=skip_bg, iot=iot)
    want = reference_counts(t, p, num_classes, iot, skip_bg)
    np.testing.assert_array_equal(m._confusion, want)
    classes = list(range(1 if skip_bg else 0, num_classes))
    got = m.evaluate(['true_positive', 'false_positive', 'false_negative'], agg=None, multiclass=None)
    for column, name in enumerate(['true_positive', 'false_positive', 'false_negative']):
        np.testing.assert_array_equal(got[name], want[:, classes, column])
    tp, fp, fn = (want[:, classes, c] for c in range(3))
    rates = m.evaluate(['recall', 'precision'], agg=None, multiclass=None)
    found, claimed = tp + fn > 0, tp + fp > 0
    np.testing.assert_allclose(rates['recall'][found], (tp / np.maximum(tp + fn, 1))[found])
    np.testing.assert_allclose(rates['precision'][claimed], (tp / np.maximum(tp + fp, 1))[claimed])


@settings(max_examples=30, deadline=None)
@given(data=masks())
def test_the_numpy_labelling_makes_the_same_components_as_scipy(data: tuple) -> None:
    t, _, num_classes = data
    classes = list(range(1, num_classes))
    a, b = label_components(t, classes).ravel(), _label_numpy(t, classes).ravel()
    assert ((a == 0) == (b == 0)).all()
    pairs = set(zip(a.tolist(), b.tolist()))
    assert len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))      # one-to-one: the same partition


def test_detection_needs_the_share_iot() -> None:
    t = np.zeros((1, 1, 10), dtype=int)
    t[0, 0, :4] = 1                      # one instance of 4 pixels
    p = np.zeros_like(t)
    p[0, 0, :2] = 1                      # half of it found
    p[0, 0, 8] = 1                       # and a false instance
    for iot, tp in ((0.5, 1), (0.6, 0)):
        m = SegmentationMetricsByInstances(t, p, fmt='labels', iot=iot)
        assert m.evaluate(['true_positive', 'false_negative', 'false_positive'], agg='sum') == \
            {'true_positive': tp, 'false_negative': 1 - tp, 'false_positive': 1}


def test_channels_first_probabilities_and_accumulation() -> None:
    rng = np.random.default_rng(5)
    t, p = rng.integers(0, 3, (6, 8, 8)), rng.integers(0, 3, (6, 8, 8))
    proba = np.moveaxis(np.eye(3)[p], -1, 1)           # (6, 3, 8, 8)
    whole = SegmentationMetricsByInstances(t, proba, axis=1)
    labels = SegmentationMetricsByInstances(t, p, fmt='labels', num_classes=3)
    np.testing.assert_array_equal(whole._confusion, labels._confusion)
    gathered = sum(SegmentationMetricsByInstances(t[a:a + 2], proba[a:a + 2], axis=1) for a in range(0, 6, 2))
    gathered = pickle.loads(pickle.dumps(gathered))
    names = ['recall', 'precision', 'f1_score', 'jaccard', 'accuracy', 'true_positive']
    for agg in ('mean', None):
        for multiclass in (None, 'micro', 'macro'):
            a, b = gathered.evaluate(names, agg=agg, multiclass=multiclass), whole.evaluate(names, agg=agg,
                                                                                         multiclass=multiclass)
            for name in names:
                np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.parametrize('name', ['specificity', 'true_negative', 'npv', 'fpr'])
def test_metrics_needing_true_negatives_raise(name: str) -> None:
    m = SegmentationMetricsByInstances(np.ones((1, 3, 3), int), np.ones((1, 3, 3), int), fmt='labels')
    with pytest.raises(BatchkitValueError, match='instances do not have'):
        m.evaluate(name)


def test_bad_settings_raise() -> None:
    with pytest.raises(BatchkitValueError, match='iot'):
        SegmentationMetricsByInstances(np.ones((1, 3)), np.ones((1, 3)), iot=0)
    for iot in (1.5, float('nan'), -0.5):
        with pytest.raises(BatchkitValueError, match=r'`iot` to be a number in \(0, 1\]'):
            SegmentationMetricsByInstances(np.ones((1, 3)), np.ones((1, 3)), iot=iot)
    for iot in ('a', '0.5', None, True):
        with pytest.raises(BatchkitTypeError, match=r'`iot` to be a number in \(0, 1\].*Received: iot='):
            SegmentationMetricsByInstances(np.ones((1, 3)), np.ones((1, 3)), iot=iot)
    assert SegmentationMetricsByInstances(np.ones((1, 3), int), np.ones((1, 3), int), fmt='labels', iot=1).iot == 1
    a = SegmentationMetricsByInstances(np.ones((1, 3), int), np.ones((1, 3), int), fmt='labels', iot=0.5)
    b = SegmentationMetricsByInstances(np.ones((1, 3), int), np.ones((1, 3), int), fmt='labels', iot=0.7)
    with pytest.raises(BatchkitValueError, match='same settings'):
        a + b


def test_the_docstring_examples_run() -> None:
    import doctest

    import batchkit.metrics.instances as module
    assert doctest.testmod(module).failed == 0


def test_without_scipy_the_own_labelling_gives_the_same_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    t, p = rng.integers(0, 3, (4, 10, 12)), rng.integers(0, 3, (4, 10, 12))
    want = SegmentationMetricsByInstances(t, p, fmt='labels', num_classes=3)._confusion
    monkeypatch.setitem(sys.modules, 'scipy', None)          # `from scipy import ndimage` now fails
    with pytest.raises(ImportError):
        from scipy import ndimage  # noqa: F401
    got = SegmentationMetricsByInstances(t, p, fmt='labels', num_classes=3)._confusion
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, reference_counts(t, p, 3, 0.5, True))
