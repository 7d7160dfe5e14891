"""ClassificationMetrics: per-item confusion matrices and every rate derived from them, as BatchFlow's."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from .._naming import suggest
from ..errors import BatchkitTypeError, BatchkitValueError
from ._inputs import confusion_per_item, to_item_labels
from .base import Metrics, UnknownMetricError, infmean

__all__ = ['METRICS_ALIASES', 'ClassificationMetrics']

METRICS_ALIASES = {
    'sensitivity': 'true_positive_rate', 'recall': 'true_positive_rate', 'tpr': 'true_positive_rate',
    'fallout': 'false_positive_rate', 'fpr': 'false_positive_rate',
    'miss_rate': 'false_negative_rate', 'fnr': 'false_negative_rate',
    'specificity': 'true_negative_rate', 'tnr': 'true_negative_rate',
    'prv': 'prevalence', 'acc': 'accuracy',
    'precision': 'positive_predictive_value', 'ppv': 'positive_predictive_value',
    'fdr': 'false_discovery_rate', 'for': 'false_omission_rate', 'npv': 'negative_predictive_value',
    'plr': 'positive_likelihood_ratio', 'nlr': 'negative_likelihood_ratio', 'dor': 'diagnostics_odds_ratio',
    'dice': 'f1_score', 'f1s': 'f1_score', 'iou': 'jaccard', 'jac': 'jaccard',
}

_COUNTS = ('true_positive', 'false_positive', 'true_negative', 'false_negative', 'condition_positive',
           'condition_negative', 'prediction_positive', 'prediction_negative')

# name -> (numerator, denominator, default when_zero): numerator / denominator per class, `when_zero[0]` where
# the denominator is 0 and the numerator is not, `when_zero[1]` where both are 0 (BatchFlow's rule).
_RATES: dict[str, tuple[str, str, tuple[float, float]]] = {
    'true_positive_rate': ('true_positive', 'condition_positive', (0, 1)),
    'false_positive_rate': ('false_positive', 'condition_negative', (1, 0)),
    'false_negative_rate': ('false_negative', 'condition_positive', (1, 0)),
    'true_negative_rate': ('true_negative', 'condition_negative', (0, 1)),
    'prevalence': ('condition_positive', 'total', (0, 0)),
    'positive_predictive_value': ('true_positive', 'prediction_positive', (0, 1)),
    'false_discovery_rate': ('false_positive', 'prediction_positive', (1, 0)),
    'false_omission_rate': ('false_negative', 'prediction_negative', (1, 0)),
    'negative_predictive_value': ('true_negative', 'prediction_negative', (0, 1)),
    'positive_likelihood_ratio': ('true_positive_rate', 'false_positive_rate', (np.inf, 0)),
    'negative_likelihood_ratio': ('false_negative_rate', 'true_negative_rate', (np.inf, 0)),
    'diagnostics_odds_ratio': ('positive_likelihood_ratio', 'negative_likelihood_ratio', (np.inf, 0)),
    # 2 tp / (cp + pp) and tp / (cp + pp - tp): a class absent from targets and predictions is inf, which
    # class and item means skip (BatchFlow's current rule).
    'f1_score': ('twice_true_positive', 'condition_or_prediction', (0, np.inf)),
    'jaccard': ('true_positive', 'union', (0, np.inf)),
    'accuracy': ('correct', 'total', (0, 1)),
}

_MULTICLASS = {None: None, 'micro': 'micro', 'macro': 'macro', 'mean': 'macro'}


def _divide(numer: np.ndarray, denom: np.ndarray, when_zero: tuple[float, float]) -> np.ndarray:
    """numer / denom, with BatchFlow's when_zero rule where denom == 0; never a numpy warning."""
    numer, denom = np.asarray(numer, dtype=float), np.asarray(denom, dtype=float)
    out = np.where(numer > 0, float(when_zero[0]), float(when_zero[1]))
    with np.errstate(invalid='ignore'):        # inf / inf of two ratios is NaN, which the means skip
        return np.divide(numer, denom, out=out, where=denom != 0)


class ClassificationMetrics(Metrics):
    """Metrics of a classification: confusion matrices per item, and rates, counts, ratios derived from them.

    Args:
        targets: ground truth: labels, probabilities or logits (the same format as `predictions`), or labels
            while `predictions` are probabilities / logits (one dimension fewer, `axis` pointing at the missing
            one).
        predictions: predicted labels, probabilities or logits.
        fmt: 'labels', 'proba' or 'logits'.
        num_classes: the number of classes (for labels; taken from the class axis otherwise; 2 by default).
        axis: the class axis of one-hot probabilities / logits (any position). None with 'proba' / 'logits':
            a two-class task with the positive class's score, `>= threshold` (logits through a sigmoid).
        threshold: the probability level of the positive class for axis=None.
        skip_bg: leave class 0 (the background) out of the class selection.

    Vectors are one sample per entry; for multi-dimensional inputs the first dimension is the item (an image,
    a sequence) and metrics are computed per item, then aggregated over items by `agg` in `evaluate`.

    Results (see docs/metrics.md): a scalar for vectors with class averaging (`multiclass` 'macro' / 'micro',
    or a two-class task, which reports the positive class 1), `(num_classes,)` without (`multiclass=None`;
    one value per class, one-vs-all; class 0 left out with skip_bg); `(n_items,)` and `(n_items, num_classes)`
    per item with `agg=None`. Counts are always per class. `confusion_matrix` is `[predicted, target]`.

    Raises:
        MetricsInputError: (a BatchkitValueError) shapes that do not fit, proba / logits without `axis` for
            more than two classes, labels outside `num_classes`, an unknown `fmt`, None or ragged (not
            rectangular) inputs, NaN scores (and inf scores but +-inf logits).

    >>> m = ClassificationMetrics(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 2]), fmt='labels', num_classes=3)
    >>> m.evaluate('recall', multiclass=None).tolist()
    [1.0, 0.0, 1.0]
    >>> m.evaluate(['accuracy', 'precision'], multiclass='micro')
    {'accuracy': 0.75, 'precision': 0.75}
    """

    METRICS: ClassVar[tuple[str, ...]] = (*_COUNTS, 'total_population', 'confusion_matrix', *_RATES)
    ALIASES: ClassVar[dict[str, str]] = METRICS_ALIASES

    def __init__(self, targets: Any, predictions: Any, fmt: str = 'proba', num_classes: int | None = None,
                 axis: int | None = None, threshold: float = 0.5, skip_bg: bool = False) -> None:
        targets, predictions, self.num_classes, self._single = to_item_labels(
            targets, predictions, fmt, num_classes, axis, threshold)
        self.skip_bg = bool(skip_bg)
        if self.skip_bg and self.num_classes < 2:
            raise BatchkitValueError(f"Expected at least 2 classes with skip_bg=True. Received: "
                                     f"num_classes={self.num_classes}.")
        # Chunks of per-item confusion matrices, never modified in place: `+` shares them, so accumulating
        # a run costs one list append per batch (NOTE [ Metrics values and aggregation ] in base.py).
        self._chunks: list[np.ndarray] = [confusion_per_item(targets, predictions, self.num_classes)]

    # ---- statistics ----------------------------------------------------------------------------------------
    @property
    def _confusion(self) -> np.ndarray:
        """The per-item confusion matrices (n_items, C, C), [item, predicted, target]."""
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks, axis=0)]
        return self._chunks[0]

    @property
    def confusion_matrix(self) -> np.ndarray:
        """The confusion matrix over all items, `[predicted, target]` as in BatchFlow (sklearn's transposed)."""
        return self._confusion.sum(axis=0)

    @property
    def n_items(self) -> int:
        """The number of items held (1 for vector inputs, however many batches were accumulated)."""
        return int(self._confusion.shape[0])

    def _per_class(self, name: str) -> np.ndarray:
        """Count `name` per item and class, shape (n_items, C)."""
        cm = self._confusion
        if name == 'true_positive':
            return np.diagonal(cm, axis1=1, axis2=2)
        if name == 'prediction_positive':
            return cm.sum(axis=2)
        if name == 'condition_positive':
            return cm.sum(axis=1)
        total = cm.sum(axis=(1, 2))[:, None]
        if name == 'total':
            return np.broadcast_to(total, cm.shape[:2])
        tp, pp, cp = self._per_class('true_positive'), self._per_class('prediction_positive'), \
            self._per_class('condition_positive')
        counts = {
            'false_positive': lambda: pp - tp, 'false_negative': lambda: cp - tp,
            'condition_negative': lambda: total - cp, 'prediction_negative': lambda: total - pp,
            'true_negative': lambda: total - cp - pp + tp, 'twice_true_positive': lambda: 2 * tp,
            'condition_or_prediction': lambda: cp + pp, 'union': lambda: cp + pp - tp,
        }
        return counts[name]()

    def _selection(self, label: Any, multiclass: str | None) -> tuple[list[int], bool]:
        """The classes to report and whether the result has no class axis (one class asked or two-class)."""
        if label is not None:
            labels = [label] if np.isscalar(label) else list(label)
            for one in labels:
                if isinstance(one, bool) or not isinstance(one, (int, np.integer)) or not 0 <= one < self.num_classes:
                    raise BatchkitValueError(f"Expected `label` to be class indices in [0, {self.num_classes - 1}]"
                                             f". Received: label={label!r}.")
            return [int(one) for one in labels], np.isscalar(label)
        if self.num_classes == 2 and multiclass is not None:
            return [1], True
        return list(range(1 if self.skip_bg else 0, self.num_classes)), False

    @staticmethod
    def _check_options(multiclass: Any, when_zero: Any, kwargs: dict) -> str | None:
        if kwargs:
            name = next(iter(kwargs))
            raise BatchkitTypeError(f"Expected the options label, multiclass, when_zero. Received: {name}="
                                    f"{kwargs[name]!r}." + suggest(name, ['label', 'multiclass', 'when_zero']))
        if not isinstance(multiclass, (str, type(None))) or multiclass not in _MULTICLASS:
            raise UnknownMetricError(f"Expected `multiclass` to be None, 'micro' or 'macro'. Received: "
                                     f"multiclass={multiclass!r}."
                                     + (suggest(multiclass, ['micro', 'macro']) if isinstance(multiclass, str) else ''))
        if when_zero is not None and not (
                isinstance(when_zero, Sequence) and len(when_zero) == 2
                and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in when_zero)):
            raise BatchkitTypeError(f"Expected `when_zero` to be a pair of numbers (a, b): a where the "
                                    f"denominator is 0, b where the numerator is 0 too. Received: "
                                    f"when_zero={when_zero!r}.")
        return _MULTICLASS[multiclass]

    # ---- counts --------------------------------------------------------------------------------------------
    def _count(self, name: str, label: Any = None, multiclass: str | None = 'macro', when_zero: Any = None,
               **kwargs: Any) -> np.ndarray:
        multiclass = self._check_options(multiclass, when_zero, kwargs)
        labels, scalar = self._selection(label, multiclass)
        values = self._per_class(name)[:, labels]
        return values[:, 0] if scalar else values

    def total_population(self, label: Any = None, multiclass: str | None = 'macro', when_zero: Any = None,
                         **kwargs: Any) -> np.ndarray:
        """The number of samples (pixels) per item."""
        self._check_options(multiclass, when_zero, kwargs)
        return self._confusion.sum(axis=(1, 2))

    def _confusion_matrices(self, label: Any = None, multiclass: str | None = 'macro', when_zero: Any = None,
                            **kwargs: Any) -> np.ndarray:
        self._check_options(multiclass, when_zero, kwargs)
        return self._confusion

    def _metric_method(self, canonical: str) -> Callable[..., Any]:
        # `confusion_matrix` is a property (BatchFlow's); evaluate('confusion_matrix') aggregates the per-item ones
        return self._confusion_matrices if canonical == 'confusion_matrix' else getattr(self, canonical)

    # ---- rates ---------------------------------------------------------------------------------------------
    def _rate_per_class(self, name: str) -> np.ndarray:
        """Rate (or count) `name` per item and class with its default when_zero, shape (n_items, C)."""
        if name not in _RATES:
            return self._per_class(name)
        numer, denom, when_zero = _RATES[name]
        return _divide(self._rate_per_class(numer), self._rate_per_class(denom), when_zero)

    def _rate(self, name: str, label: Any = None, multiclass: str | None = 'macro', when_zero: Any = None,
              **kwargs: Any) -> np.ndarray:
        multiclass = self._check_options(multiclass, when_zero, kwargs)
        numer_name, denom_name, default = _RATES[name]
        when_zero = default if when_zero is None else when_zero
        labels, scalar = self._selection(label, multiclass)
        numer = self._rate_per_class(numer_name)[:, labels]
        denom = self._rate_per_class(denom_name)[:, labels]
        if scalar:
            return _divide(numer[:, 0], denom[:, 0], when_zero)
        if multiclass is None:
            return _divide(numer, denom, when_zero)
        if multiclass == 'micro':
            return _divide(numer.sum(axis=1), denom.sum(axis=1), when_zero)
        return infmean(_divide(numer, denom, when_zero), axis=1)

    def accuracy(self, label: Any = None, multiclass: str | None = 'macro', when_zero: Any = None,
                 **kwargs: Any) -> np.ndarray:
        """The share of correct samples (of the selected classes, without class 0 with skip_bg) per item;
        with multiclass=None, one-vs-all accuracy (tp + tn) / total per class."""
        multiclass = self._check_options(multiclass, when_zero, kwargs)
        when_zero = _RATES['accuracy'][2] if when_zero is None else when_zero
        if multiclass is None or label is not None:
            labels, scalar = self._selection(label, None)
            correct = (self._per_class('true_positive') + self._per_class('true_negative'))[:, labels]
            value = _divide(correct, self._per_class('total')[:, labels], when_zero)
            return value[:, 0] if scalar else value
        labels, _ = self._selection(None, None)
        correct = self._per_class('true_positive')[:, labels].sum(axis=1)
        return _divide(correct, self._confusion.sum(axis=(1, 2)), when_zero)

    # ---- accumulation --------------------------------------------------------------------------------------
    def _merge_key(self) -> tuple:
        return ('num_classes', self.num_classes, 'skip_bg', self.skip_bg,
                'items' if not self._single else 'vector')

    def _merge(self, other: Metrics) -> None:
        if self._single:
            # one sample set: add the counts, so batch after batch equals all the data at once
            self._chunks = [self._confusion + other._confusion]
        else:
            # per-item statistics: the items of every batch, in order
            self._chunks = [*self._chunks, *other._chunks]

    def copy(self) -> ClassificationMetrics:
        """A copy sharing the (never modified) confusion arrays."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._chunks = list(self._chunks)
        return new

    def free(self) -> None:
        """Nothing to free: only the confusion matrices are kept (BatchFlow's API)."""

    def __getitem__(self, item: Any) -> ClassificationMetrics:
        """The metrics of some items (an index, a slice, an index array), as a new object."""
        new = self.copy()
        chunk = self._confusion[item]
        new._chunks = [chunk if chunk.ndim == 3 else chunk[None]]
        return new

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state['_chunks'] = [self._confusion]
        return state

    def __repr__(self) -> str:
        shape = 'vector' if self._single else f'{self.n_items} items'
        return f'<{type(self).__module__}.{type(self).__name__} {shape}, num_classes={self.num_classes}>'


def _make_count(name: str) -> Callable[..., np.ndarray]:
    def count(self: ClassificationMetrics, label: Any = None, multiclass: str | None = 'macro',
              when_zero: Any = None, **kwargs: Any) -> np.ndarray:
        return self._count(name, label, multiclass, when_zero, **kwargs)
    count.__name__ = count.__qualname__ = name
    count.__doc__ = f"{name.replace('_', ' ').capitalize()} per class (the positive class for two classes)."
    return count


def _make_rate(name: str) -> Callable[..., np.ndarray]:
    numer, denom, default = _RATES[name]

    def rate(self: ClassificationMetrics, label: Any = None, multiclass: str | None = 'macro',
             when_zero: Any = None, **kwargs: Any) -> np.ndarray:
        return self._rate(name, label, multiclass, when_zero, **kwargs)
    rate.__name__ = rate.__qualname__ = name
    rate.__doc__ = (f"{numer} / {denom} per class, averaged by `multiclass`; when_zero={default} by default "
                    f"(a: denominator 0, b: numerator 0 too).")
    return rate


for _name in _COUNTS:
    setattr(ClassificationMetrics, _name, _make_count(_name))
for _name in _RATES:
    if _name != 'accuracy':
        setattr(ClassificationMetrics, _name, _make_rate(_name))
del _name
