"""SegmentationMetricsByInstances: detection counts of connected components (instances) per image and class."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BatchkitTypeError, BatchkitValueError
from ._inputs import MetricsInputError, to_item_labels
from .classification import ClassificationMetrics, _divide

__all__ = ['SegmentationMetricsByInstances', 'label_components']

# NOTE [ Instance counts ]
# Instances are the connected components (face neighbours, as scipy.ndimage.label's default) of each class in
# each item. A target instance is a true positive when the share of its pixels predicted as its class reaches
# `iot`, else a false negative; a predicted instance is a false positive when no target pixel of its class lies
# in it (BatchFlow's rule: `targ == 0 or pred / targ < iot`; the second part only matters for iot > 1,
# which is rejected: no target instance could be detected).
# Counts are kept as (n_items, num_classes, 3) = [tp, fp, fn]; true negatives do not exist for instances, so
# the metrics that need them raise. Class 0 (the background) has instances only with skip_bg=False.
_NEEDS_NEGATIVES = ('true_negative', 'condition_negative', 'prediction_negative')


def _edges(shape: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs of flat indices of face neighbours within each item (axis 0 is the item: never linked)."""
    index = np.arange(int(np.prod(shape))).reshape(shape)
    pairs = []
    for axis in range(1, len(shape)):
        lo = index.take(range(shape[axis] - 1), axis=axis).ravel()
        pairs.append((lo, lo + int(np.prod(shape[axis + 1:]))))
    return pairs


def label_components(labels: np.ndarray, classes: list[int]) -> np.ndarray:
    """Ids of the connected components of each class in `classes` per item (axis 0), 0 elsewhere; ids are
    unique over items and classes. Uses scipy.ndimage.label when installed, else a vectorized union-find.

    >>> label_components(np.array([[1, 1, 0, 1]]), [1]).tolist()
    [[1, 1, 0, 2]]
    """
    try:
        from scipy import ndimage
    except ImportError:          # scipy is optional: see _label_numpy
        return _label_numpy(labels, classes)
    structure = np.zeros((3,) * labels.ndim, dtype=bool)
    structure[(1,) * labels.ndim] = True
    for axis in range(1, labels.ndim):                  # face neighbours, none across items
        where = [1] * labels.ndim
        for offset in (0, 2):
            where[axis] = offset
            structure[tuple(where)] = True
    out, total = np.zeros(labels.shape, dtype=np.intp), 0
    for k in classes:                                   # a loop over classes, never over items
        ids, count = ndimage.label(labels == k, structure=structure)
        out += np.where(ids > 0, ids + total, 0)
        total += count
    return out


def _label_numpy(labels: np.ndarray, classes: list[int]) -> np.ndarray:
    """label_components without scipy: union-find over neighbour pairs of the same class, hooking the larger root
    under the smaller one and jumping pointers until every pair shares a root."""
    flat = labels.ravel()
    keep = np.isin(flat, classes)
    parent = np.arange(flat.size)
    pairs = _edges(labels.shape)
    u = np.concatenate([a for a, _ in pairs]) if pairs else np.zeros(0, dtype=np.intp)
    v = np.concatenate([b for _, b in pairs]) if pairs else np.zeros(0, dtype=np.intp)
    same = keep[u] & (flat[u] == flat[v])
    u, v = u[same], v[same]
    while True:
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            break
        np.minimum.at(parent, np.maximum(pu, pv)[differ], np.minimum(pu, pv)[differ])
        while True:                                     # parent[x] <= x always: this ends at the roots
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    roots = np.where(keep, parent, -1)
    _, ids = np.unique(roots, return_inverse=True)
    ids = ids.reshape(-1) + (0 if (~keep).any() else 1)      # -1 (not an instance) took id 0 if present
    ids = np.where(keep, ids, 0)
    return ids.reshape(labels.shape)


def _instance_counts(targets: np.ndarray, predictions: np.ndarray, num_classes: int, classes: list[int],
                     iot: float) -> np.ndarray:
    """[tp, fp, fn] per item and class, shape (n_items, num_classes, 3) (NOTE [ Instance counts ])."""
    n_items = targets.shape[0]
    item = np.broadcast_to(np.arange(n_items).reshape((-1,) + (1,) * (targets.ndim - 1)), targets.shape).ravel()
    counts = np.zeros((n_items, num_classes, 3), dtype=np.intp)
    for ids, own, other, column in ((label_components(targets, classes), targets, predictions, 0),
                                    (label_components(predictions, classes), predictions, targets, 1)):
        ids, own, other = ids.ravel(), own.ravel(), other.ravel()
        mask = ids > 0
        n = int(ids.max()) + 1 if mask.any() else 1
        size = np.bincount(ids[mask], minlength=n)
        hits = np.bincount(ids[mask], weights=(own == other)[mask], minlength=n)
        where = np.zeros((n, 2), dtype=np.intp)
        where[ids[mask]] = np.stack([item[mask], own[mask]], axis=1)   # every pixel of an instance agrees
        found = size[1:] > 0
        share_hit, size, (it, cls) = hits[1:][found], size[1:][found], where[1:][found].T
        if column == 0:                  # target instances: detected or missed
            detected = share_hit >= iot * size
            np.add.at(counts, (it, cls, 0), detected)
            np.add.at(counts, (it, cls, 2), ~detected)
        else:                            # predicted instances: false when they meet no target of their class
            false = (share_hit == 0) | (size < iot * share_hit)
            np.add.at(counts, (it, cls, 1), false)
    return counts


class SegmentationMetricsByInstances(ClassificationMetrics):
    """Instance-wise segmentation metrics: detected, missed and false instances per image and class.

    Args:
        targets, predictions, fmt, num_classes, axis, threshold: as ClassificationMetrics (masks of shape
            (n_items, ...), one-hot along `axis` for proba / logits).
        skip_bg: leave class 0 out (the background has no instances); False counts its components too.
        iot: the share of a target instance's pixels that must be predicted as its class for it to be detected,
            a number in (0, 1].

    Counts (true_positive, false_positive, false_negative, condition_positive = target instances,
    prediction_positive = tp + fp, total_population = tp + fp + fn) and the rates built from them (recall,
    precision, f1_score, jaccard, accuracy = tp / total, ...) have ClassificationMetrics' shapes and options;
    metrics that need true negatives raise (see NOTE [ Instance counts ]). Objects add up across batches.

    >>> t = np.array([[[1, 1, 0, 0], [0, 0, 0, 1]]])
    >>> p = np.array([[[1, 0, 0, 0], [0, 0, 1, 0]]])
    >>> m = SegmentationMetricsByInstances(t, p, fmt='labels', num_classes=2)
    >>> m.evaluate(['true_positive', 'false_negative', 'false_positive'], agg='sum')
    {'true_positive': 1, 'false_negative': 1, 'false_positive': 1}
    >>> m.evaluate('recall')
    0.5
    """

    def __init__(self, targets: Any, predictions: Any, fmt: str = 'proba', num_classes: int | None = None,
                 axis: int | None = None, skip_bg: bool = True, threshold: float = 0.5, iot: float = 0.5) -> None:
        targets, predictions, self.num_classes, self._single = to_item_labels(
            targets, predictions, fmt, num_classes, axis, threshold)
        if isinstance(iot, bool) or not isinstance(iot, (int, float, np.number)):
            raise BatchkitTypeError(f"Expected `iot` to be a number in (0, 1], the share of a target instance "
                                    f"that must be predicted, such as 0.5. Received: iot={iot!r} of type "
                                    f"{type(iot).__name__}.")
        self.skip_bg, self.iot = bool(skip_bg), float(iot)
        if not 0 < self.iot <= 1:
            raise MetricsInputError(f"Expected `iot` to be a number in (0, 1], the share of a target instance "
                                    f"that must be predicted, such as 0.5. Received: iot={iot!r}. Above 1 no "
                                    f"instance could ever be detected.")
        classes = list(range(1 if self.skip_bg else 0, self.num_classes))
        self._chunks = [_instance_counts(targets, predictions, self.num_classes, classes, self.iot)]

    @property
    def confusion_matrix(self) -> np.ndarray:
        """Instance counts per class over all items, shape (num_classes, 3): [tp, fp, fn]."""
        return self._confusion.sum(axis=0)

    def _per_class(self, name: str) -> np.ndarray:
        counts = self._confusion
        tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
        if name in _NEEDS_NEGATIVES:
            raise BatchkitValueError(f"Expected a metric defined for instances. Received: one that needs "
                                     f"{name}, which instances do not have. Use recall, precision, f1_score, "
                                     f"jaccard or the tp / fp / fn counts.")
        return {'true_positive': tp, 'false_positive': fp, 'false_negative': fn, 'condition_positive': tp + fn,
                'prediction_positive': tp + fp, 'total': tp + fp + fn, 'twice_true_positive': 2 * tp,
                'condition_or_prediction': 2 * tp + fp + fn, 'union': tp + fp + fn}[name]

    def total_population(self, label: Any = None, multiclass: str | None = 'macro', when_zero: Any = None,
                         **kwargs: Any) -> np.ndarray:
        """tp + fp + fn per item, over the classes."""
        self._check_options(multiclass, when_zero, kwargs)
        return self._confusion.sum(axis=(1, 2))

    def accuracy(self, label: Any = None, multiclass: str | None = 'macro', when_zero: Any = None,
                 **kwargs: Any) -> np.ndarray:
        """tp / (tp + fp + fn) per item over the classes (BatchFlow's), or per class with multiclass=None."""
        multiclass = self._check_options(multiclass, when_zero, kwargs)
        when_zero = (0, 1) if when_zero is None else when_zero
        if multiclass is None or label is not None:
            labels, scalar = self._selection(label, None)
            value = _divide(self._per_class('true_positive')[:, labels], self._per_class('total')[:, labels],
                            when_zero)
            return value[:, 0] if scalar else value
        return _divide(self._per_class('true_positive').sum(axis=1), self._confusion.sum(axis=(1, 2)), when_zero)

    def _merge_key(self) -> tuple:
        return (*super()._merge_key(), 'iot', self.iot)
