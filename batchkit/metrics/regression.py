"""RegressionMetrics: error statistics of one or several outputs, merged exactly across batches."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from .._naming import suggest
from ..errors import BatchkitTypeError
from ._inputs import MetricsInputError
from .base import Metrics

__all__ = ['REGRESSION_ALIASES', 'RegressionMetrics']

REGRESSION_ALIASES = {
    'mae': 'mean_absolute_error', 'mse': 'mean_squared_error', 'rmse': 'root_mean_squared_error',
    'r2': 'r2_score', 'acc': 'accuracy', 'mape': 'mean_absolute_percentage_error',
    'explained_variance': 'explained_variance_ratio', 'explained_variance_score': 'explained_variance_ratio',
    'medae': 'median_absolute_error',
}

_EPS = np.finfo(np.float64).eps     # scikit-learn's floor for |target| in mape

# NOTE [ Exact regression accumulation ]
# A RegressionMetrics keeps, per output, weighted sums that add across batches (weight, |error|, error**2,
# |error| / |target|), the weighted mean and centered sum of squares of the targets and of the errors (merged
# with Chan's parallel formula, which stays accurate where sum(t**2) - sum(t)**2 / W would cancel), and the
# absolute errors themselves: the median and `accuracy` within a `gap` chosen at evaluate time need all of
# them. So metrics gathered batch by batch equal metrics computed once, up to rounding. As in BatchFlow, the
# median, the max error and the accuracy are unweighted. Merging builds new arrays, so copies may share them.


def _as_samples(values: Any, multi: bool, what: str) -> np.ndarray:
    """Inputs as a float array (n_samples, n_outputs); a ragged list of batches (BatchFlow's mode='a') is
    concatenated."""
    if values is None:
        raise MetricsInputError(f"Expected {what} to be an array of numbers (or a list of batches). Received: "
                                f"None.")
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise MetricsInputError(f"Expected {what} to be a numeric array or a list of batches. Received: "
                                    f"{type(values).__name__} {values!r:.60}.") from None
        parts = [_as_samples(part, multi, what) for part in values]
        if len({part.shape[1] for part in parts}) > 1:
            raise MetricsInputError(f"Expected every batch of {what} to have the same number of outputs. "
                                    f"Received: {sorted({part.shape[1] for part in parts})}.") from None
        return np.concatenate(parts, axis=0)
    if not np.isfinite(array).all():        # as sklearn: a NaN (a None in a list, too) would make every metric NaN
        raise MetricsInputError(f"Expected {what} to hold finite numbers. Received: NaN or inf values (a None in a "
                                f"list reads as NaN) in {what} of shape {array.shape}. Drop or replace them before "
                                f"computing metrics.")
    if not multi:
        return array.reshape(-1, 1)
    if array.ndim == 0:
        raise MetricsInputError(f"Expected {what} of shape (n_samples, n_outputs) or (n_outputs,) with multi=True. "
                                f"Received: a scalar. Use multi=False for one output.")
    if array.ndim == 1:
        return array.reshape(1, -1)          # one sample of several outputs (BatchFlow's rule)
    return array.reshape(-1, array.shape[-1])


def _centered(values: np.ndarray, weights: np.ndarray, total: float) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and weighted sum of squared deviations of each column."""
    if total > 0:
        mean = (weights @ values) / total
    else:
        mean = np.zeros(values.shape[1])
    return mean, weights @ (values - mean) ** 2


def _merge_centered(a: tuple, b: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Chan's formula: (weight, mean, m2) of two sample sets -> (mean, m2) of their union."""
    (wa, mean_a, m2_a), (wb, mean_b, m2_b) = a, b
    total = wa + wb
    if total == 0:
        return mean_a, m2_a + m2_b
    delta = mean_b - mean_a
    return mean_a + delta * (wb / total), m2_a + m2_b + delta ** 2 * (wa * wb / total)


def _ratio_score(numer: np.ndarray, denom: np.ndarray) -> np.ndarray:
    """1 - numer / denom with scikit-learn's rule for constant targets: 1 when numer is 0 too, else 0."""
    out = np.where(numer == 0, 1.0, 0.0)
    ratio = np.divide(numer, denom, out=np.zeros_like(out), where=denom != 0)
    return np.where(denom != 0, 1.0 - ratio, out)


class RegressionMetrics(Metrics):
    """Metrics of a regression: mae, mse, rmse, r2, explained variance, median and max absolute error, mape and
    the share of samples within a `gap`, for one or several outputs.

    Args:
        targets: true values, shape (n_samples,) (or anything, flattened, with multi=False), or
            (n_samples, n_outputs) with multi=True; a list of such batches is concatenated.
        predictions: predicted values, the same shape.
        weights: sample weights of shape (n_samples,) (used by every metric but the median, the max error and
            `accuracy`, as in BatchFlow).
        multi: whether the last axis holds several outputs.

    `evaluate(names, agg='mean')` averages over outputs; `agg=None` gives one value per output (multi=True).
    `accuracy(gap=3)` is the share of samples with `|prediction - target| < gap`; pass `gap` to `evaluate`.
    r2 and explained variance of constant targets follow scikit-learn: 1 for a perfect fit, else 0.
    Objects add up (`m1 + m2`, `append`, a pipeline's `V('m', mode='u')`): see NOTE [ Exact regression
    accumulation ].

    Raises:
        MetricsInputError: shapes that do not fit, empty or None inputs, or weights that are not numbers, of
            the wrong length, negative or NaN.

    >>> m = RegressionMetrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 2.0]))
    >>> m.evaluate(['mae', 'max_error'])
    {'mae': 0.5, 'max_error': 1.0}
    >>> (m + RegressionMetrics(np.array([4.0]), np.array([4.0]))).evaluate('accuracy', gap=0.6)
    0.75
    """

    METRICS: ClassVar[tuple[str, ...]] = (
        'mean_absolute_error', 'mean_squared_error', 'root_mean_squared_error', 'r2_score',
        'explained_variance_ratio', 'median_absolute_error', 'max_error', 'mean_absolute_percentage_error',
        'accuracy')
    ALIASES: ClassVar[dict[str, str]] = REGRESSION_ALIASES

    def __init__(self, targets: Any, predictions: Any, weights: Any = None, multi: bool = False) -> None:
        self.multi = bool(multi)
        self._single = not self.multi
        targets = _as_samples(targets, self.multi, 'targets')
        predictions = _as_samples(predictions, self.multi, 'predictions')
        if targets.shape != predictions.shape:
            raise MetricsInputError(f"Expected targets and predictions of the same shape. Received: targets of "
                                    f"shape {np.shape(targets)} and predictions of shape {np.shape(predictions)} "
                                    f"(as (n_samples, n_outputs), multi={self.multi}).")
        if targets.shape[0] == 0:
            raise MetricsInputError("Expected at least one sample. Received: empty targets and predictions.")
        n_samples = targets.shape[0]
        if weights is None:
            weights = np.ones(n_samples)
        else:
            try:
                weights = np.asarray(weights, dtype=float).ravel()
            except (TypeError, ValueError):
                raise MetricsInputError(f"Expected `weights` to be an array of numbers, one per sample. Received: "
                                        f"{type(weights).__name__} {weights!r:.60}. Pass numeric sample weights "
                                        f"of shape ({n_samples},), or weights=None.") from None
            if weights.shape != (n_samples,):
                raise MetricsInputError(f"Expected one weight per sample, shape ({n_samples},). Received: weights "
                                        f"of shape {np.shape(weights)}.")
            if not np.all(weights >= 0):       # also catches NaN, at no extra cost
                raise MetricsInputError("Expected non-negative sample weights. Received: a negative or NaN "
                                        "weight. Pass weights >= 0.")
        errors = predictions - targets
        absolute = np.abs(errors)
        self.n_outputs = targets.shape[1]
        self._weight = float(weights.sum())
        self._sums = {'abs': weights @ absolute, 'sq': weights @ errors ** 2,
                      'ape': weights @ (absolute / np.maximum(np.abs(targets), _EPS))}
        self._targets = _centered(targets, weights, self._weight)
        self._errors = _centered(errors, weights, self._weight)
        self._max = absolute.max(axis=0)
        self._chunks: list[np.ndarray] = [absolute]      # never modified: copies share them

    # ---- statistics ----------------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """The number of samples held (over every batch merged)."""
        return sum(len(chunk) for chunk in self._chunks)

    @property
    def _absolute(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks, axis=0)]
        return self._chunks[0]

    def _mean_of(self, total: np.ndarray) -> np.ndarray:
        return total / self._weight if self._weight > 0 else np.full(self.n_outputs, np.nan)

    @staticmethod
    def _check_options(options: dict) -> None:
        for name, value in options.items():
            if name != 'gap':
                raise BatchkitTypeError(f"Expected the regression option `gap`. Received: {name}={value!r}."
                                        + suggest(name, ['gap']))

    # ---- metrics: each returns one value per output (NOTE [ Metrics values and aggregation ]) -----------------
    def mean_absolute_error(self, **options: Any) -> np.ndarray:
        """The weighted mean of |prediction - target|."""
        self._check_options(options)
        return self._mean_of(self._sums['abs'])

    def mean_squared_error(self, **options: Any) -> np.ndarray:
        """The weighted mean of (prediction - target) ** 2."""
        self._check_options(options)
        return self._mean_of(self._sums['sq'])

    def root_mean_squared_error(self, **options: Any) -> np.ndarray:
        """The square root of the mean squared error."""
        return np.sqrt(self.mean_squared_error(**options))

    def mean_absolute_percentage_error(self, **options: Any) -> np.ndarray:
        """The weighted mean of |prediction - target| / max(|target|, eps), a share (not percent), as sklearn."""
        self._check_options(options)
        return self._mean_of(self._sums['ape'])

    def r2_score(self, **options: Any) -> np.ndarray:
        """1 - sum of squared errors / sum of squared deviations of the targets from their mean (weighted)."""
        self._check_options(options)
        return _ratio_score(self._sums['sq'], self._targets[1])

    def explained_variance_ratio(self, **options: Any) -> np.ndarray:
        """1 - variance of the errors / variance of the targets (weighted)."""
        self._check_options(options)
        return _ratio_score(self._errors[1], self._targets[1])

    def median_absolute_error(self, **options: Any) -> np.ndarray:
        """The median of |prediction - target| (unweighted)."""
        self._check_options(options)
        return np.median(self._absolute, axis=0)

    def max_error(self, **options: Any) -> np.ndarray:
        """The largest |prediction - target|."""
        self._check_options(options)
        return self._max

    def accuracy(self, gap: float = 3, **options: Any) -> np.ndarray:
        """The share of samples with |prediction - target| < gap (unweighted; BatchFlow's default gap=3)."""
        self._check_options(options)
        if isinstance(gap, bool) or not isinstance(gap, (int, float, np.number)):
            raise BatchkitTypeError(f"Expected `gap` to be a number. Received: gap={gap!r}.")
        absolute = self._absolute
        return (absolute < gap).sum(axis=0) / absolute.shape[0]

    # ---- accumulation --------------------------------------------------------------------------------------
    def _merge_key(self) -> tuple:
        return ('multi', self.multi, 'n_outputs', self.n_outputs)

    def _merge(self, other: Any) -> None:     # a RegressionMetrics: checked by append
        mine, theirs = (self._weight, *self._targets), (other._weight, *other._targets)
        self._targets = _merge_centered(mine, theirs)
        self._errors = _merge_centered((self._weight, *self._errors), (other._weight, *other._errors))
        self._weight += other._weight
        self._sums = {key: value + other._sums[key] for key, value in self._sums.items()}
        self._max = np.maximum(self._max, other._max)
        self._chunks = [*self._chunks, *other._chunks]

    def copy(self) -> RegressionMetrics:
        """A copy sharing the (never modified) arrays."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._chunks = list(self._chunks)
        return new

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state['_chunks'] = [self._absolute]
        return state

    def __repr__(self) -> str:
        return (f'<{type(self).__module__}.{type(self).__name__} {self.n_samples} samples, '
                f'{self.n_outputs} output{"s" if self.n_outputs > 1 else ""}>')
