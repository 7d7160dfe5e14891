"""The Metrics base: evaluate() by name with aliases, aggregation over items, accumulation, pickling."""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from .._naming import suggest
from ..errors import BatchkitAttributeError, BatchkitTypeError, BatchkitValueError

__all__ = ['AGGREGATIONS', 'Metrics', 'UnknownMetricError', 'infmean', 'infsum']


class UnknownMetricError(BatchkitValueError, BatchkitAttributeError):
    """A metric name (or aggregation) that the metrics class does not define.

    Also an AttributeError: BatchFlow looked metric names up with getattr, so `except AttributeError` still works.
    """


def infmean(values: Any, axis: int | None = 0) -> Any:
    """The mean along `axis` skipping infinite and NaN values; `inf` where no value is finite (as BatchFlow).

    >>> float(infmean(np.array([1.0, np.inf, np.nan, 3.0])))
    2.0
    """
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    count = finite.sum(axis=axis)
    # np.divide with `where` never warns; the `out` default is what a mean of nothing finite gives.
    return np.divide(total, count, out=np.full(np.shape(total), np.inf), where=count > 0)


def infsum(values: Any, axis: int | None = 0) -> Any:
    """The sum along `axis` skipping infinite and NaN values (counts stay integers).

    >>> int(infsum(np.array([1, 2, 3])))
    6
    """
    values = np.asarray(values)
    if values.dtype.kind in 'iub':
        return values.sum(axis=axis)
    return np.where(np.isfinite(values), values, 0.0).sum(axis=axis)


AGGREGATIONS: dict[str, Callable[..., Any]] = {'mean': infmean, 'sum': infsum}


# NOTE [ Metrics values and aggregation ]
# Every metric method returns an array whose FIRST axis runs over what `agg` aggregates: the items (images,
# sequences) for classification and segmentation, the outputs for multi-output regression. `evaluate` then
# reduces that axis with `agg` ('mean' skips inf and NaN, as BatchFlow's infmean), or keeps it with agg=None.
# Inputs without such an axis (a plain vector of labels) are held as one item, `_single = True`, and the
# leading axis of length 1 is dropped from every result whatever `agg`, so they get scalars and
# (num_classes,) arrays, and counts stay integers.
# 0-d results come back as Python scalars (BatchFlow returned `.item()`).


class Metrics:
    """Base of the metrics classes: evaluate by name, aggregate, accumulate with `+` / `append`, pickle.

    Subclasses list their metric methods in `METRICS` and the other names in `ALIASES`, keep only the statistics
    they need to evaluate (never the raw inputs, so they are cheap to ship back from workers), and implement
    `_merge(other)` (in place) and `_merge_key()` (the settings two objects must share to be merged).

    >>> from batchkit.metrics import ClassificationMetrics
    >>> m = ClassificationMetrics(np.array([0, 1, 1]), np.array([0, 1, 0]), fmt='labels', num_classes=2)
    >>> m.evaluate(['accuracy', 'recall'])
    {'accuracy': 0.6666666666666666, 'recall': 0.5}
    """

    METRICS: ClassVar[tuple[str, ...]] = ()
    ALIASES: ClassVar[dict[str, str]] = {}

    _single: bool = False

    # ---- names -------------------------------------------------------------------------------------------
    @classmethod
    def metric_names(cls) -> list[str]:
        """All the names `evaluate` accepts: canonical names and aliases."""
        return sorted({*cls.METRICS, *cls.ALIASES})

    @classmethod
    def resolve(cls, name: str) -> str:
        """The canonical name of a metric name or alias; an UnknownMetricError with "did you mean" otherwise."""
        if not isinstance(name, str):
            raise BatchkitTypeError(f"Expected a metric name as a str. Received: {name!r} of type "
                                    f"{type(name).__name__}. Pass a name such as 'accuracy' or a list of names.")
        if name in cls.ALIASES:
            return cls.ALIASES[name]
        if name in cls.METRICS:
            return name
        raise UnknownMetricError(f"Expected a metric name of {cls.__name__}. Received: {name!r}."
                                 + suggest(name, cls.metric_names()))

    def __getattr__(self, name: str) -> Any:
        # Aliases as attributes (m.sensitivity(...)) as in BatchFlow. Only class data is read here, so a
        # half-built object (during unpickling or copying) cannot recurse.
        aliases = type(self).ALIASES
        if name in aliases:
            return getattr(self, aliases[name])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ---- evaluation ----------------------------------------------------------------------------------------
    def evaluate(self, metrics: str | Sequence[str], agg: str | None = 'mean', *args: Any, **kwargs: Any) -> Any:
        """Evaluate one metric (a value) or several (a dict keyed by the names as given).

        Args:
            metrics: a metric name or alias, or a list of them.
            agg: 'mean' (skipping inf and NaN), 'sum', or None for one value per item.
            *args: passed to every metric method (e.g. `label` for classification).
            **kwargs: passed to every metric method (e.g. `multiclass`, `when_zero`).

        Returns:
            The value (a Python scalar or an array), or a dict name -> value for a list of names.

        Raises:
            UnknownMetricError: an unknown metric name or aggregation (with a "did you mean").
        """
        single = isinstance(metrics, str) or not isinstance(metrics, Iterable)
        names = [metrics] if single else list(metrics)
        methods = {name: self._metric_method(self.resolve(name)) for name in names}   # all checked up front
        self._agg_function(agg)
        result = {name: self._aggregate(method(*args, **kwargs), agg) for name, method in methods.items()}
        return result[metrics] if single else result

    def _metric_method(self, canonical: str) -> Callable[..., Any]:
        """The callable computing the metric `canonical` (a subclass maps names that are properties)."""
        return getattr(self, canonical)

    @staticmethod
    def _agg_function(agg: str | None) -> Callable[..., Any] | None:
        if agg is None:
            return None
        if isinstance(agg, str) and agg in AGGREGATIONS:
            return AGGREGATIONS[agg]
        raise UnknownMetricError(f"Expected `agg` to be one of {sorted(AGGREGATIONS)} or None. Received: "
                                 f"agg={agg!r}." + (suggest(agg, AGGREGATIONS) if isinstance(agg, str) else ''))

    def _aggregate(self, value: Any, agg: str | None) -> Any:
        """Reduce the leading axis of `value` with `agg` (see NOTE [ Metrics values and aggregation ])."""
        value = np.asarray(value)
        function = self._agg_function(agg)
        if value.ndim > 0:
            if self._single:
                value = value[0]       # one item: nothing to aggregate, and counts stay integers
            elif function is not None:
                value = np.asarray(function(value, axis=0))
        return value.item() if value.ndim == 0 else value

    # ---- accumulation --------------------------------------------------------------------------------------
    def _merge_key(self) -> tuple:
        """The settings two metrics objects must share to be merged (e.g. the number of classes)."""
        return ()

    def _merge(self, other: Metrics) -> None:
        """Fold the statistics of `other` into `self` in place."""
        raise NotImplementedError(f'{type(self).__name__} does not implement _merge')

    def _check_mergeable(self, other: Any) -> None:
        if type(other) is not type(self):
            raise BatchkitTypeError(f"Expected a {type(self).__name__} to merge with a {type(self).__name__}. "
                                    f"Received: {type(other).__name__}. Gather the same metrics class in "
                                    f"every batch.")
        if other._merge_key() != self._merge_key():
            raise BatchkitValueError(f"Expected metrics with the same settings to merge. Received: "
                                     f"{self._merge_key()} and {other._merge_key()}. Gather every batch with "
                                     f"the same num_classes / skip_bg / settings.")

    def append(self, other: Metrics) -> Metrics:
        """Merge the statistics of `other` into this object (in place); returns self.

        >>> from batchkit.metrics import ClassificationMetrics
        >>> m = ClassificationMetrics(np.array([0, 1]), np.array([0, 1]), fmt='labels', num_classes=2)
        >>> m.append(ClassificationMetrics(np.array([1]), np.array([0]), fmt='labels', num_classes=2))
        ... # doctest: +ELLIPSIS
        <batchkit.metrics.classification.ClassificationMetrics ...>
        >>> m.evaluate('accuracy')
        0.6666666666666666
        """
        self._check_mergeable(other)
        self._merge(other)
        return self

    def update(self, other: Metrics) -> Metrics:
        """The same as `append` (BatchFlow's name for merging)."""
        return self.append(other)

    def copy(self) -> Metrics:
        """An independent copy (the statistics arrays are copied)."""
        return copy.deepcopy(self)

    # No __iadd__: `total += m` builds a new object as `+` does, so the batch object `total` started from is
    # never changed behind the user's back; `append` is the explicit in-place merge.
    def __add__(self, other: Any) -> Metrics:
        if other is None:
            return self.copy()
        if not isinstance(other, Metrics):
            return NotImplemented
        return self.copy().append(other)

    def __radd__(self, other: Any) -> Metrics:
        # sum(list_of_metrics) starts from 0
        if other is None or (isinstance(other, int) and other == 0):
            return self.copy()
        return NotImplemented

    # ---- pickling ------------------------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        # Only plain statistics travel; subclasses list transient attributes in `_transient`.
        return {k: v for k, v in self.__dict__.items() if k not in self._transient}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    _transient: ClassVar[frozenset[str]] = frozenset()
