"""ClassificationMetrics against scikit-learn, in every format and axis position; names, when_zero, errors."""
from __future__ import annotations

import pickle
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_reference import COUNTS, FORMATS, RATES, finite_mean, reference_per_class, scores_for
from sklearn import metrics as skm

from batchkit import BatchkitError, BatchkitTypeError, BatchkitValueError
from batchkit.metrics import (
    METRICS_ALIASES,
    ClassificationMetrics,
    MetricsInputError,
    SegmentationMetricsByPixels,
    UnknownMetricError,
)

# Micro averages sum numerators and denominators over the classes (BatchFlow's rule, ratios included).
MICRO = {
    'false_positive_rate': ('false_positive', 'condition_negative', (1, 0)),
    'false_negative_rate': ('false_negative', 'condition_positive', (1, 0)),
    'true_negative_rate': ('true_negative', 'condition_negative', (0, 1)),
    'prevalence': ('condition_positive', None, (0, 0)),
    'false_discovery_rate': ('false_positive', 'prediction_positive', (1, 0)),
    'false_omission_rate': ('false_negative', 'prediction_negative', (1, 0)),
    'negative_predictive_value': ('true_negative', 'prediction_negative', (0, 1)),
    'positive_likelihood_ratio': ('true_positive_rate', 'false_positive_rate', (np.inf, 0)),
    'negative_likelihood_ratio': ('false_negative_rate', 'true_negative_rate', (np.inf, 0)),
    'diagnostics_odds_ratio': ('positive_likelihood_ratio', 'negative_likelihood_ratio', (np.inf, 0)),
}


def _div(n: float, d: float, when_zero: tuple[float, float]) -> float:
    if d == 0:
        return float(when_zero[0] if n > 0 else when_zero[1])
    return np.nan if np.isinf(n) and np.isinf(d) else n / d


def _sklearn_micro(name: str, t: np.ndarray, p: np.ndarray, labels: list[int]) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if name == 'true_positive_rate':
            return skm.recall_score(t, p, labels=labels, average='micro', zero_division=1)
        if name == 'positive_predictive_value':
            return skm.precision_score(t, p, labels=labels, average='micro', zero_division=1)
        if name == 'f1_score':
            value = skm.f1_score(t, p, labels=labels, average='micro', zero_division=np.nan)
            return np.inf if np.isnan(value) else value
        union = np.isin(t, labels) | np.isin(p, labels)
        return skm.jaccard_score(t, p, labels=labels, average='micro', zero_division=0) if union.any() else np.inf


def expected(name: str, ref: dict, t: np.ndarray, p: np.ndarray, num_classes: int, skip_bg: bool,
             multiclass: str | None) -> np.ndarray | float:
    """The value of one item from the scikit-learn reference, by the documented selection and averaging."""
    selected = list(range(1 if skip_bg else 0, num_classes))
    if name == 'accuracy' and multiclass is not None:
        if skip_bg:
            return float(np.isin(t, selected)[t == p].sum() / t.size) if t.size else 1.0
        return skm.accuracy_score(t, p)
    if num_classes == 2 and multiclass is not None:
        return ref[name][1]
    if multiclass is None or name in COUNTS:
        return ref[name][selected]
    if multiclass == 'macro':
        return finite_mean(ref[name][selected])
    if name in MICRO:
        numer, denom, when_zero = MICRO[name]
        d = float(t.size) * len(selected) if denom is None else ref[denom][selected].sum()
        return _div(ref[numer][selected].sum(), d, when_zero)
    return _sklearn_micro(name, t, p, selected)


@st.composite
def cases(draw: st.DrawFn) -> dict:
    """A random task: classes, shape (vector or items), format, class axis, targets as labels or scores."""
    num_classes = draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    if draw(st.booleans()):
        shape = (draw(st.integers(1, 50)),)
    else:
        shape = (draw(st.integers(1, 4)), *draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    fmt = draw(st.sampled_from(FORMATS))
    axis = None
    if fmt != 'labels' and (num_classes > 2 or draw(st.booleans())):
        ndim = len(shape) + 1
        axis = draw(st.integers(-ndim, ndim - 1))
    threshold = draw(st.floats(0.1, 0.9)) if fmt != 'labels' and axis is None else 0.5
    # classes skewed at random, so some are missing from an item now and then
    weights = rng.dirichlet(np.full(num_classes, 0.7))
    targets = rng.choice(num_classes, size=shape, p=weights)
    predictions = np.where(rng.random(shape) < 0.5, targets, rng.choice(num_classes, size=shape, p=weights))
    labels_targets = axis is not None and draw(st.booleans())
    return dict(
        num_classes=num_classes, shape=shape, fmt=fmt, axis=axis, threshold=threshold,
        skip_bg=draw(st.booleans()), labels=(targets, predictions),
        targets=targets if labels_targets else scores_for(targets, num_classes, fmt, axis, rng, threshold),
        predictions=scores_for(predictions, num_classes, fmt, axis, rng, threshold),
        pass_num_classes=fmt == 'labels' or draw(st.booleans()))


@settings(max_examples=60)
@given(case=cases())
def test_every_metric_matches_scikit_learn(case: dict) -> None:
    c = case['num_classes']
    m = ClassificationMetrics(case['targets'], case['predictions'], case['fmt'],
                              c if case['pass_num_classes'] else None, case['axis'], case['threshold'],
                              case['skip_bg'])
    assert m.num_classes == c
    targets, predictions = case['labels']
    vector = targets.ndim == 1
    items = [(targets, predictions)] if vector else list(zip(targets.reshape(len(targets), -1),
                                                                predictions.reshape(len(targets), -1)))
    refs = [reference_per_class(t, p, c) for t, p in items]
    for name in (*RATES, *COUNTS, 'accuracy'):
        for multiclass in (None, 'micro', 'macro'):
            per_item = np.array([expected(name, ref, t, p, c, case['skip_bg'], multiclass)
                                 for ref, (t, p) in zip(refs, items)], dtype=float)
            got = m.evaluate(name, agg=None, multiclass=multiclass)
            want = per_item[0] if vector else per_item
            np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=f'{name} multiclass={multiclass} agg=None')
            got = m.evaluate(name, multiclass=multiclass)
            want = per_item[0] if vector else finite_mean(per_item)
            np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=f'{name} multiclass={multiclass} agg=mean')
    cm = sum(skm.confusion_matrix(t, p, labels=list(range(c))) for t, p in items)
    np.testing.assert_array_equal(m.confusion_matrix, cm.T)      # BatchFlow's [predicted, target]


def test_macro_averages_equal_scikit_learns_on_many_samples(rng: np.random.Generator) -> None:
    t, p = rng.integers(0, 7, 20_000), rng.integers(0, 7, 20_000)
    m = ClassificationMetrics(t, p, fmt='labels', num_classes=7)
    for ours, theirs in (('recall', skm.recall_score), ('precision', skm.precision_score),
                         ('f1_score', skm.f1_score), ('jaccard', skm.jaccard_score)):
        for average in ('macro', 'micro'):
            assert m.evaluate(ours, multiclass=average) == pytest.approx(theirs(t, p, average=average), rel=1e-12)
        np.testing.assert_allclose(m.evaluate(ours, multiclass=None), theirs(t, p, average=None), rtol=1e-12)
    assert m.evaluate('accuracy') == pytest.approx(skm.accuracy_score(t, p), rel=1e-12)
    np.testing.assert_array_equal(m.confusion_matrix.T, skm.confusion_matrix(t, p))


@pytest.mark.parametrize('fmt', ['proba', 'logits'])
def test_binary_scores_report_the_positive_class_as_scikit_learn(fmt: str, rng: np.random.Generator) -> None:
    t, p = rng.integers(0, 2, 5000), rng.integers(0, 2, 5000)
    m = ClassificationMetrics(scores_for(t, 2, fmt, None, rng, 0.3), scores_for(p, 2, fmt, None, rng, 0.3),
                              fmt, threshold=0.3)
    assert m.evaluate('sensitivity') == pytest.approx(skm.recall_score(t, p))
    assert m.evaluate('precision') == pytest.approx(skm.precision_score(t, p))
    assert m.evaluate('f1_score') == pytest.approx(skm.f1_score(t, p))
    assert m.evaluate('iou') == pytest.approx(skm.jaccard_score(t, p))
    assert m.evaluate('accuracy') == pytest.approx(skm.accuracy_score(t, p))
    plr, nlr = skm.class_likelihood_ratios(t, p)
    assert m.evaluate('plr') == pytest.approx(plr)
    assert m.evaluate('nlr') == pytest.approx(nlr)
    assert m.evaluate('dor') == pytest.approx(plr / nlr)
    tn, fp, fn, tp = skm.confusion_matrix(t, p).ravel()
    assert (m.evaluate('true_positive'), m.evaluate('false_positive'), m.evaluate('true_negative'),
            m.evaluate('false_negative')) == (tp, fp, tn, fn)
    assert isinstance(m.evaluate('true_positive'), int)
    np.testing.assert_allclose(m.evaluate('recall', multiclass=None), skm.recall_score(t, p, average=None))


def test_logits_far_out_threshold_without_overflow() -> None:
    logits = np.array([-1e308, -800.0, 0.0, 800.0, 1e308, -np.inf, np.inf])
    targets = np.array([-5, -5, 5, 5, 5, -5, 5])         # targets are logits too (the same fmt)
    m = ClassificationMetrics(targets, logits, fmt='logits', threshold=0.5)
    assert m.evaluate('accuracy') == 1.0
    m = ClassificationMetrics(np.full(7, 10.0), logits, fmt='logits', threshold=0.99)   # logit(0.99) = 4.6
    assert m.evaluate('true_positive') == 3
    assert ClassificationMetrics(logits, logits, fmt='logits', threshold=1.0).evaluate('true_positive') == 1
    assert ClassificationMetrics(logits, logits, fmt='logits', threshold=0.0).evaluate('true_positive') == 7


def test_channels_first_and_channels_last_give_the_same_metrics(rng: np.random.Generator) -> None:
    masks = rng.integers(0, 4, (3, 6, 5))
    preds = rng.integers(0, 4, (3, 6, 5))
    last = scores_for(preds, 4, 'proba', -1, rng)
    first = np.moveaxis(last, -1, 1)
    names = ['dice', 'jaccard', 'accuracy', 'specificity']
    want = SegmentationMetricsByPixels(masks, preds, fmt='labels', num_classes=4).evaluate(names, agg=None)
    for m in (SegmentationMetricsByPixels(masks, last, axis=-1), SegmentationMetricsByPixels(masks, first, axis=1),
              SegmentationMetricsByPixels(np.moveaxis(scores_for(masks, 4, 'logits', -1, rng), -1, 1),
                                          np.log(first), fmt='logits', axis=1)):
        got = m.evaluate(names, agg=None)
        for name in names:
            np.testing.assert_allclose(got[name], want[name])


def test_aliases_are_the_same_metrics_and_attributes(rng: np.random.Generator) -> None:
    t, p = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    m = ClassificationMetrics(t, p, fmt='labels', num_classes=3)
    expected_aliases = {
        'sensitivity': 'true_positive_rate', 'recall': 'true_positive_rate', 'tpr': 'true_positive_rate',
        'fallout': 'false_positive_rate', 'fpr': 'false_positive_rate', 'miss_rate': 'false_negative_rate',
        'fnr': 'false_negative_rate', 'specificity': 'true_negative_rate', 'tnr': 'true_negative_rate',
        'prv': 'prevalence', 'acc': 'accuracy', 'precision': 'positive_predictive_value',
        'ppv': 'positive_predictive_value', 'fdr': 'false_discovery_rate', 'for': 'false_omission_rate',
        'npv': 'negative_predictive_value', 'plr': 'positive_likelihood_ratio', 'nlr': 'negative_likelihood_ratio',
        'dor': 'diagnostics_odds_ratio', 'dice': 'f1_score', 'f1s': 'f1_score', 'iou': 'jaccard', 'jac': 'jaccard'}
    assert expected_aliases == METRICS_ALIASES
    every = m.evaluate(list(expected_aliases) + list(set(expected_aliases.values())), multiclass=None)
    for alias, name in expected_aliases.items():
        np.testing.assert_array_equal(every[alias], every[name])
        if alias != 'for':
            np.testing.assert_array_equal(getattr(m, alias)(multiclass=None), getattr(m, name)(multiclass=None))
    assert list(every)[:3] == ['sensitivity', 'recall', 'tpr']               # keys are the names as given
    assert m.evaluate('total_population') == 200
    np.testing.assert_array_equal(m.evaluate('confusion_matrix'), m.confusion_matrix)


def test_label_selects_classes(rng: np.random.Generator) -> None:
    t, p = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    m = ClassificationMetrics(t, p, fmt='labels', num_classes=4)
    per_class = m.evaluate('recall', multiclass=None)
    assert m.evaluate('recall', label=2) == per_class[2]
    np.testing.assert_array_equal(m.evaluate('recall', label=[3, 0], multiclass=None), per_class[[3, 0]])
    assert m.true_positive(1) == ((t == 1) & (p == 1)).sum()


# ---- the zero-denominator rule ---------------------------------------------------------------------------
def test_when_zero_defaults_follow_batchflow() -> None:
    # class 2 is in neither targets nor predictions; class 1 is predicted but never a target
    m = ClassificationMetrics(np.array([0, 0, 0, 0]), np.array([0, 1, 0, 0]), fmt='labels', num_classes=3)
    per_class = m.evaluate(['sensitivity', 'miss_rate', 'precision', 'fdr', 'f1_score', 'jaccard', 'plr'],
                           multiclass=None)
    assert per_class['sensitivity'][[1, 2]].tolist() == [1.0, 1.0]      # no samples: b = 1
    assert per_class['miss_rate'][[1, 2]].tolist() == [0.0, 0.0]        # b = 0
    assert per_class['precision'].tolist() == [1.0, 0.0, 1.0]           # class 2 never predicted: b = 1
    assert per_class['fdr'].tolist() == [0.0, 1.0, 0.0]
    assert per_class['f1_score'][2] == np.inf and per_class['jaccard'][2] == np.inf
    assert per_class['plr'][0] == np.inf            # tpr 0.75 > 0 over fpr 0: a = inf
    assert m.evaluate('f1_score') == pytest.approx(np.mean([6 / 7, 0.0]))   # the mean skips class 2's inf


def test_when_zero_is_overridable_per_call() -> None:
    m = ClassificationMetrics(np.array([0, 0, 0, 0]), np.array([0, 1, 0, 0]), fmt='labels', num_classes=3)
    assert m.evaluate('recall', multiclass=None, when_zero=(5, 7)).tolist() == [0.75, 7.0, 7.0]
    assert m.evaluate('plr', multiclass=None, when_zero=(-1, -2))[0] == -1.0
    assert m.evaluate('f1_score', multiclass=None, when_zero=(0, 0)).tolist() == [0.75 * 8 / 7, 0.0, 0.0]
    assert m.evaluate('recall', when_zero=(5, 7)) == pytest.approx((0.75 + 7 + 7) / 3)
    assert m.evaluate('recall', when_zero=(0, np.nan)) == 0.75            # the macro mean skips NaN


def test_means_skip_inf_and_nan_and_all_non_finite_is_inf() -> None:
    # image 0 is background only, predicted right: its foreground dice is inf and the item mean skips it
    t = np.array([[0, 0, 0, 0], [0, 1, 1, 0]])
    p = np.array([[0, 0, 0, 0], [0, 1, 0, 0]])
    m = SegmentationMetricsByPixels(t, p, fmt='labels', num_classes=2, skip_bg=True)
    assert m.evaluate('dice', agg=None).tolist() == [np.inf, pytest.approx(2 / 3)]
    assert m.evaluate('dice') == pytest.approx(2 / 3)
    assert m[0:1].evaluate('dice') == np.inf
    assert m.evaluate('recall', when_zero=(0, np.nan)) == 0.5


def test_degenerate_inputs_never_warn() -> None:
    for t, p in ((np.zeros(0, int), np.zeros(0, int)), (np.zeros((3, 0), int), np.zeros((3, 0), int)),
                 (np.zeros((0, 4), int), np.zeros((0, 4), int)), (np.ones(5, int), np.ones(5, int))):
        m = ClassificationMetrics(t, p, fmt='labels', num_classes=3)
        for multiclass in (None, 'micro', 'macro'):
            for agg in ('mean', None):
                values = m.evaluate(sorted(m.metric_names()), agg=agg, multiclass=multiclass)
                assert len(values) == len(m.metric_names())


# ---- errors ----------------------------------------------------------------------------------------------
Y3 = np.array([0, 1, 2])
P = np.random.default_rng(0).random((4, 3))


@pytest.mark.parametrize('args, kwargs, error, message', [
    ((Y3, np.array([0, 1])), dict(fmt='labels', num_classes=3), MetricsInputError,
     r'same shape.*targets.shape=\(3,\), predictions.shape=\(2,\)'),
    ((P, P), dict(num_classes=3), MetricsInputError, r'Expected `axis`.*num_classes=3 > 2.*\(4, 3\)'),
    ((Y3, Y3), dict(fmt='logits', num_classes=4), MetricsInputError, r'Expected `axis`'),
    ((Y3, Y3), dict(fmt='labels'), MetricsInputError, r'labels in \[0, 1\].*from 0 to 2.*shape \(3,\)'),
    ((Y3, np.array([0, 1, 3])), dict(fmt='labels', num_classes=3), MetricsInputError,
     r'predictions labels in \[0, 2\].*from 0 to 3'),
    ((np.array([0, -1, 2]), Y3), dict(fmt='labels', num_classes=3), MetricsInputError, r'targets labels.*-1'),
    ((np.array([0, 0.5, 1]), Y3), dict(fmt='labels', num_classes=3), MetricsInputError, r'integer class labels'),
    ((np.array(['a', 'b', 'c']), Y3), dict(fmt='labels', num_classes=3), MetricsInputError, r'numeric'),
    ((Y3, Y3), dict(fmt='probs'), MetricsInputError, r"fmt.*Received: fmt='probs'"),
    ((np.array([0, 1, 2, 0]), P), dict(axis=2), MetricsInputError, r'axis.*\[-2, 1\].*axis=2'),
    ((Y3, Y3), dict(fmt='labels', axis=0), MetricsInputError, r"axis=None with fmt='labels'"),
    ((P, P), dict(axis=1, num_classes=5), MetricsInputError, r'num_classes=5, axis=1.*\(4, 3\)'),
    ((np.array([0, 1, 2]), P), dict(axis=1), MetricsInputError, r'label targets of shape \(4,\).*\(3,\)'),
    ((np.array([0, 1, 2, 5]), P), dict(axis=1), MetricsInputError, r'targets labels in \[0, 2\].*to 5'),
    ((np.zeros((4, 3, 2)), P), dict(axis=1), MetricsInputError, r'one dimension fewer.*\(4, 3, 2\).*\(4, 3\)'),
    ((np.zeros((2, 3)), P), dict(axis=1), MetricsInputError, r'same shape.*\(2, 3\).*\(4, 3\)'),
    ((np.array(1), np.array(1)), dict(fmt='labels'), MetricsInputError, r'at least 1 dimension.*\(\)'),
    ((Y3, Y3), dict(fmt='labels', num_classes=1), MetricsInputError, r'num_classes.*>= 2.*num_classes=1'),
    ((P[:, :1], P[:, :1]), dict(axis=1), MetricsInputError, r'at least 2 classes'),
    ((Y3, Y3), dict(fmt='proba', threshold='0.5'), BatchkitTypeError, r'threshold'),
    (([[0, 1], [1]], [[0, 1], [1]]), dict(fmt='labels'), MetricsInputError,
     r'targets to be an array of one shape.*ragged list.*Pad the items'),
    (([[0, 1], [1, 0]], [[0.2, 0.9], [0.4]]), {}, MetricsInputError, r'predictions.*ragged'),
    ((None, Y3), dict(fmt='labels'), MetricsInputError, r'targets.*Received: None'),
    ((np.array([0, 1, 1, 0]), np.full(4, np.nan)), {}, MetricsInputError,
     r"predictions to hold finite scores with fmt='proba'.*NaN or inf values in predictions"),
    ((np.array([0, 1, np.inf, 0]), np.full(4, 0.5)), {}, MetricsInputError, r'NaN or inf values in targets'),
    ((np.array([0, 1, 1, 0]), np.array([0.0, np.nan, 1, 2])), dict(fmt='logits'), MetricsInputError,
     r"predictions to hold finite scores with fmt='logits'.*NaN values in predictions"),
    ((np.array([0, 1, 2, 0]), np.where(P == P.max(), np.nan, P)), dict(axis=1), MetricsInputError,
     r'NaN or inf values in predictions.*\(4, 3\)'),
    ((np.where(P == P.max(), np.nan, P), P), dict(axis=1), MetricsInputError, r'NaN or inf values in targets'),
    ((np.array([0, np.nan, 1]), Y3), dict(fmt='labels', num_classes=3), MetricsInputError,
     r'NaN or inf values in targets'),
    ((np.array([None, 0.5, 1], dtype=object), np.full(3, 0.5)), {}, MetricsInputError, r'numeric.*object'),
])
def test_bad_inputs_raise_value_errors_naming_the_shapes(args: tuple, kwargs: dict, error: type,
                                                         message: str) -> None:
    with pytest.raises(error, match=message) as info:
        ClassificationMetrics(*args, **kwargs)
    assert isinstance(info.value, BatchkitError)
    assert isinstance(info.value, ValueError) or isinstance(info.value, TypeError)


@pytest.mark.parametrize('call, error, message', [
    (lambda m: m.evaluate('sensitivty'), UnknownMetricError, r"'sensitivty'.*Did you mean 'sensitivity'"),
    (lambda m: m.evaluate(['accuracy', 'f1']), UnknownMetricError, r"'f1'.*Did you mean 'f1s'"),
    (lambda m: m.evaluate('accuracy', agg='men'), UnknownMetricError, r"agg='men'.*Did you mean 'mean'"),
    (lambda m: m.evaluate('recall', multiclass='macr'), UnknownMetricError, r"multiclass='macr'.*'macro'"),
    (lambda m: m.evaluate('recall', when_zero=1), BatchkitTypeError, r'pair of numbers.*when_zero=1'),
    (lambda m: m.evaluate('recall', multclass=None), BatchkitTypeError, r"multclass.*Did you mean 'multiclass'"),
    (lambda m: m.evaluate('recall', label=3), BatchkitValueError, r'label.*\[0, 2\].*label=3'),
    (lambda m: m.evaluate(3), BatchkitTypeError, r'metric name as a str'),
    (lambda m: m + ClassificationMetrics(Y3, Y3, fmt='labels', num_classes=4), BatchkitValueError,
     r'same settings.*3.*4'),
    (lambda m: m + ClassificationMetrics(Y3[None], Y3[None], fmt='labels', num_classes=3), BatchkitValueError,
     r"'vector'.*'items'"),
    (lambda m: m.append(SegmentationMetricsByPixels(Y3, Y3, fmt='labels', num_classes=3)), BatchkitTypeError,
     r'ClassificationMetrics.*Received: SegmentationMetricsByPixels'),
])
def test_bad_evaluation_calls_raise_batchkit_errors(call, error: type, message: str) -> None:
    m = ClassificationMetrics(Y3, Y3, fmt='labels', num_classes=3)
    with pytest.raises(error, match=message):
        call(m)


def test_unknown_metric_is_also_an_attribute_error_as_batchflows_getattr() -> None:
    m = ClassificationMetrics(Y3, Y3, fmt='labels', num_classes=3)
    with pytest.raises(AttributeError):
        m.evaluate('nonsense')
    with pytest.raises(AttributeError, match='no attribute'):
        m.nonsense  # noqa: B018


def test_pickles_with_its_statistics_only(rng: np.random.Generator) -> None:
    t, p = rng.integers(0, 3, (4, 100)), rng.integers(0, 3, (4, 100))
    m = ClassificationMetrics(t, p, fmt='labels', num_classes=3)
    m = m + m
    back = pickle.loads(pickle.dumps(m))
    assert type(back) is ClassificationMetrics and back.n_items == 8
    np.testing.assert_array_equal(back.evaluate('dice', agg=None), m.evaluate('dice', agg=None))
    assert len(pickle.dumps(m)) < t.nbytes          # the raw inputs are not kept
    assert not hasattr(back, 'targets') or back.targets is None


def test_importing_metrics_imports_no_tensorflow_nor_sklearn() -> None:
    code = ('import sys, batchkit.metrics; '
            'bad = [m for m in ("tensorflow", "keras", "torch", "sklearn", "scipy") if m in sys.modules]; '
            'assert not bad, bad')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_positional_arguments_in_batchflow_order(rng: np.random.Generator) -> None:
    scores = scores_for(rng.integers(0, 3, (2, 5)), 3, 'proba', 1, rng)
    m = ClassificationMetrics(scores, scores, 'proba', None, 1, 0.5, True)
    assert (m.num_classes, m.skip_bg) == (3, True)
    assert m.evaluate('recall', multiclass=None).shape == (2,)
    assert re.search(r'2 items, num_classes=3', repr(m))


@pytest.mark.parametrize('module', ['base', 'classification', 'segmentation', '_inputs'])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib
    mod = importlib.import_module(f'batchkit.metrics.{module}')
    result = doctest.testmod(mod, extraglobs={'np': np}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
