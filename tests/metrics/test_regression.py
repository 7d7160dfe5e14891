"""RegressionMetrics against scikit-learn on random data; exact accumulation across batches; names, errors."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from batchkit import BatchkitError, BatchkitTypeError
from batchkit.metrics import MetricsInputError, RegressionMetrics, UnknownMetricError

NAMES = sorted(RegressionMetrics.METRICS)

# name -> (sklearn function, whether it takes sample weights)
SKLEARN = {
    'mean_absolute_error': (skm.mean_absolute_error, True),
    'mean_squared_error': (skm.mean_squared_error, True),
    'root_mean_squared_error': (skm.root_mean_squared_error, True),
    'r2_score': (skm.r2_score, True),
    'explained_variance_ratio': (skm.explained_variance_score, True),
    'mean_absolute_percentage_error': (skm.mean_absolute_percentage_error, True),
    'median_absolute_error': (skm.median_absolute_error, False),
}


def _max_error(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.array([skm.max_error(t[:, j], p[:, j]) for j in range(t.shape[1])])


def _accuracy(t: np.ndarray, p: np.ndarray, gap: float) -> np.ndarray:
    return np.mean(np.abs(p - t) < gap, axis=0)     # BatchFlow's definition: strictly inside the gap


@st.composite
def regression_data(draw: st.DrawFn) -> tuple:
    n = draw(st.integers(2, 60))
    outputs = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    scale, shift = draw(st.sampled_from([1e-3, 1.0, 1e3])), draw(st.sampled_from([0.0, 5.0, -1e4]))
    t = shift + scale * rng.normal(size=(n, outputs))
    if draw(st.booleans()):
        t = np.round(t)                              # ties for the median and exact zeros for mape
    p = t + scale * rng.normal(size=(n, outputs)) * draw(st.sampled_from([0.0, 0.1, 1.0, 10.0]))
    weights = rng.random(n) + 0.05 if draw(st.booleans()) else None
    return t, p, weights


@settings(max_examples=60, deadline=None)
@given(data=regression_data(), gap=st.sampled_from([0.5, 1.0, 3.0]))
def test_every_metric_equals_sklearn(data: tuple, gap: float) -> None:
    t, p, weights = data
    outputs = t.shape[1]
    multi = RegressionMetrics(t, p, weights=weights, multi=True)
    raw = multi.evaluate(NAMES, agg=None, gap=gap)
    means = multi.evaluate(NAMES, agg='mean', gap=gap)
    for name, (fn, weighted) in SKLEARN.items():
        kwargs = {'sample_weight': weights} if weighted else {}
        if not weighted and weights is not None:
            continue                                  # the median is unweighted, as in BatchFlow
        want = fn(t, p, multioutput='raw_values', **kwargs)
        if name in ('r2_score', 'explained_variance_ratio'):
            # constant targets are a rounding-error case here (sklearn divides by ~1e-24): tested separately
            varied = np.ptp(t, axis=0) > 0
            want, got = want[varied], raw[name][varied]
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9, err_msg=name)
            continue
        np.testing.assert_allclose(raw[name], want, rtol=1e-7, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(means[name], np.mean(want), rtol=1e-7, atol=1e-9, err_msg=name)
        assert np.shape(raw[name]) == (outputs,) and np.ndim(means[name]) == 0
    np.testing.assert_allclose(raw['max_error'], _max_error(t, p))
    np.testing.assert_allclose(raw['accuracy'], _accuracy(t, p, gap))
    # one output: scalars whatever agg, equal to sklearn's single-output functions
    single = RegressionMetrics(t[:, 0], p[:, 0], weights=weights)
    for agg in ('mean', None):
        values = single.evaluate(NAMES, agg=agg, gap=gap)
        for name in NAMES:
            assert isinstance(values[name], float), (name, agg)
            np.testing.assert_allclose(values[name], raw[name][0], rtol=1e-9, atol=1e-12, err_msg=name)


def test_median_max_error_and_accuracy_ignore_weights() -> None:
    t, p = np.array([0.0, 0.0, 0.0]), np.array([1.0, 2.0, 10.0])
    m = RegressionMetrics(t, p, weights=[100.0, 1.0, 1.0])
    assert m.evaluate(['medae', 'max_error']) == {'medae': 2.0, 'max_error': 10.0}
    assert m.evaluate('accuracy', gap=2) == pytest.approx(1 / 3)
    assert m.evaluate('mae') == pytest.approx((100 + 2 + 10) / 102)


def test_constant_targets_follow_sklearn_without_warnings() -> None:
    t = np.ones((5, 2))
    p = np.stack([np.ones(5), np.arange(5.0)], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        m = RegressionMetrics(t, p, multi=True)
        for name in ('r2_score', 'explained_variance_ratio'):
            want = SKLEARN[name][0](t, p, multioutput='raw_values')
            np.testing.assert_array_equal(m.evaluate(name, agg=None), want)
        # zero weights everywhere: NaN, never a warning
        assert np.isnan(RegressionMetrics([1.0, 2.0], [1.0, 3.0], weights=[0, 0]).evaluate('mae'))


def _cuts(draw: st.DrawFn, n: int) -> list[int]:
    return [0, *sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=6)))), n]


@settings(max_examples=40, deadline=None)
@given(data=regression_data(), st_data=st.data())
def test_batches_add_up_to_all_at_once(data: tuple, st_data: st.DataObject) -> None:
    t, p, weights = data
    cuts = _cuts(st_data.draw, len(t))
    for multi in (True, False):
        tt, pp = (t, p) if multi else (t[:, 0], p[:, 0])
        whole = RegressionMetrics(tt, pp, weights=weights, multi=multi)
        parts = [RegressionMetrics(tt[a:b], pp[a:b], None if weights is None else weights[a:b], multi)
                 for a, b in zip(cuts, cuts[1:])]
        added = sum(parts)
        appended = parts[0].copy()
        for part in parts[1:]:
            assert appended.append(part) is appended
        shipped = pickle.loads(pickle.dumps(added))
        for gathered in (added, appended, shipped):
            assert gathered.n_samples == len(tt)
            for agg in ('mean', None):
                got, want = gathered.evaluate(NAMES, agg=agg), whole.evaluate(NAMES, agg=agg)
                for name in NAMES:
                    np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_adding_leaves_both_operands_unchanged() -> None:
    a, b = RegressionMetrics([1.0, 2.0], [1.0, 4.0]), RegressionMetrics([0.0], [10.0])
    total = a + b
    assert (a.evaluate('max_error'), b.evaluate('max_error'), total.evaluate('max_error')) == (2.0, 10.0, 10.0)
    assert (a.n_samples, b.n_samples, total.n_samples) == (2, 1, 3)
    assert (None + a).evaluate('medae') == a.evaluate('medae')


def test_a_list_of_batches_is_concatenated_as_in_batchflow() -> None:
    batches_t, batches_p = [np.array([1.0, 2.0, 3.0]), np.array([4.0])], [np.array([1.0, 2.0, 5.0]), np.array([3.0])]
    m = RegressionMetrics(batches_t, batches_p)
    assert m.n_samples == 4 and m.evaluate('mae') == pytest.approx(0.75)
    multi = RegressionMetrics([np.zeros((2, 3)), np.ones((1, 3))], [np.zeros((2, 3)), np.zeros((1, 3))], multi=True)
    assert multi.n_samples == 3 and multi.evaluate('mae', agg=None).tolist() == [1 / 3] * 3
    one = RegressionMetrics([1.0, 2.0], [2.0, 2.0], multi=True)      # a 1-d input with multi=True is one sample
    assert (one.n_samples, one.n_outputs) == (1, 2)


def test_aliases_and_attribute_access() -> None:
    m = RegressionMetrics(np.arange(5.0), np.arange(5.0) + 0.5)
    short = m.evaluate(['mae', 'mse', 'rmse', 'r2', 'acc', 'mape', 'explained_variance', 'medae'])
    long = m.evaluate(['mean_absolute_error', 'mean_squared_error', 'root_mean_squared_error', 'r2_score',
                       'accuracy', 'mean_absolute_percentage_error', 'explained_variance_ratio',
                       'median_absolute_error'])
    assert list(short.values()) == list(long.values())
    assert float(m.r2()[0]) == m.evaluate('r2_score')
    assert m.evaluate('accuracy', gap=0.5) == 0.0 and m.evaluate('accuracy') == 1.0


@pytest.mark.parametrize('make, error, message', [
    (lambda: RegressionMetrics(np.zeros(3), np.zeros(4)), MetricsInputError, r'same shape.*\(3, 1\).*\(4, 1\)'),
    (lambda: RegressionMetrics(np.zeros((3, 2)), np.zeros((3, 3)), multi=True), MetricsInputError, 'same shape'),
    (lambda: RegressionMetrics(np.zeros(0), np.zeros(0)), MetricsInputError, 'at least one sample'),
    (lambda: RegressionMetrics(np.zeros(3), np.zeros(3), weights=[1, 2]), MetricsInputError, r'shape \(3,\)'),
    (lambda: RegressionMetrics(np.zeros(2), np.zeros(2), weights=[1, -1]), MetricsInputError, 'non-negative'),
    (lambda: RegressionMetrics(1.0, 2.0, multi=True), MetricsInputError, 'multi=False'),
    (lambda: RegressionMetrics([[1.0], [1.0, 2.0]], [[1.0], [1.0, 2.0]], multi=True), MetricsInputError,
     'same number of outputs'),
    (lambda: RegressionMetrics(['a', 'b'], [1, 2]), MetricsInputError, 'numeric'),
    (lambda: RegressionMetrics([1, 2], [1, 2], weights=['a', 'b']), MetricsInputError,
     r'`weights`.*numbers.*Received: list.*weights=None'),
    (lambda: RegressionMetrics([1, 2], [1, 2], weights=[1, np.nan]), MetricsInputError, 'NaN'),
    (lambda: RegressionMetrics(None, None), MetricsInputError, r'targets.*array of numbers.*Received: None'),
    (lambda: RegressionMetrics([1, None], [1, 2]), MetricsInputError, r'targets to hold finite numbers.*None'),
    (lambda: RegressionMetrics([1, 2], [np.nan, 2]), MetricsInputError, r'predictions to hold finite numbers'),
    (lambda: RegressionMetrics([[1.0], [np.inf]], [[1.0], [2.0]]), MetricsInputError, r'targets.*NaN or inf'),
    (lambda: RegressionMetrics([1.0], None), MetricsInputError, r'predictions.*Received: None'),
    (lambda: RegressionMetrics([1.0], [1.0]).evaluate('mean_absolut_error'), UnknownMetricError,
     "Did you mean 'mean_absolute_error'"),
    (lambda: RegressionMetrics([1.0], [1.0]).evaluate('mae', gpa=1), BatchkitTypeError, "Did you mean 'gap'"),
    (lambda: RegressionMetrics([1.0], [1.0]).evaluate('acc', gap='3'), BatchkitTypeError, 'number'),
    (lambda: RegressionMetrics([1.0], [1.0]) + RegressionMetrics([[1.0, 2]], [[1.0, 2]], multi=True),
     BatchkitError, 'same settings'),
])
def test_bad_inputs_raise_errors_that_say_what_to_do(make, error, message) -> None:
    with pytest.raises(error, match=message):
        make()


def test_the_docstring_examples_run() -> None:
    import doctest

    import batchkit.metrics.regression as module
    assert doctest.testmod(module).failed == 0
