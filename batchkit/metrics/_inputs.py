"""Classification inputs to per-item label arrays, checked, and their per-item confusion matrices."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BatchkitTypeError, BatchkitValueError

__all__ = ['FORMATS', 'MetricsInputError', 'confusion_per_item', 'to_item_labels']

FORMATS = ('labels', 'proba', 'logits')


class MetricsInputError(BatchkitValueError):
    """Targets / predictions that do not fit together or with the metrics settings."""


def _shapes(targets: np.ndarray, predictions: np.ndarray) -> str:
    return f'targets.shape={targets.shape}, predictions.shape={predictions.shape}'


def _as_array(values: Any, what: str) -> np.ndarray:
    """`values` as an array; None and ragged nested lists (which np.asarray rejects) are MetricsInputErrors."""
    if values is None:
        raise MetricsInputError(f"Expected {what} to be an array of labels or scores. Received: None.")
    try:
        return np.asarray(values)
    except (TypeError, ValueError):
        raise MetricsInputError(
            f"Expected {what} to be an array of one shape (n_items, ...) or (n,). Received: a ragged "
            f"{type(values).__name__} (items of different lengths), which does not form an array. Pad the items "
            f"to one shape, or build one metrics object per item (with a leading item axis, e.g. "
            f"np.asarray(item)[None]) and add them with `+`.") from None


def _check_scores(values: np.ndarray, fmt: str, what: str) -> None:
    """Scores must be numbers, and float scores finite (+-inf logits are allowed: sigmoid gives 0 or 1); one
    np.isfinite / np.isnan pass over float arrays only, nothing for integer and bool arrays."""
    kind = values.dtype.kind
    if kind == 'f':
        bad = np.isnan(values).any() if fmt == 'logits' else not np.isfinite(values).all()
        if bad:
            allowed = 'NaN' if fmt == 'logits' else 'NaN or inf'
            raise MetricsInputError(f"Expected {what} to hold finite scores with fmt={fmt!r}. Received: {allowed} "
                                    f"values in {what} (shape {values.shape}, dtype {values.dtype}). Drop or "
                                    f"replace them (e.g. np.nan_to_num) before computing metrics.")
    elif kind not in 'biu':
        raise MetricsInputError(f"Expected {what} to be a numeric array with fmt={fmt!r}. Received: dtype "
                                f"{values.dtype} (shape {values.shape}).")


def _binarize(values: np.ndarray, fmt: str, threshold: float) -> np.ndarray:
    """Positive-class probabilities or logits -> 0/1 labels: `sigmoid(x) >= threshold` for logits."""
    if fmt == 'logits':
        # Compare with the threshold's logit instead of computing a sigmoid: exp() of large logits overflows.
        if threshold <= 0:
            return np.ones(values.shape, dtype=np.int8)
        if threshold >= 1:
            return np.isposinf(values).astype(np.int8)
        return (values >= np.log(threshold / (1 - threshold))).astype(np.int8)
    return (values >= threshold).astype(np.int8)


def _check_labels(labels: np.ndarray, num_classes: int, what: str, fix: str) -> np.ndarray:
    """Integer labels in [0, num_classes) as intp; a MetricsInputError otherwise."""
    if labels.dtype == bool:
        labels = labels.astype(np.int8)
    if labels.dtype.kind == 'f':
        if labels.size and not np.all(np.isfinite(labels) & (labels == np.round(labels))):
            if not np.isfinite(labels).all():
                raise MetricsInputError(f"Expected {what} to hold integer class labels with fmt='labels'. "
                                        f"Received: NaN or inf values in {what} (shape {labels.shape}). Drop or "
                                        f"replace them before computing metrics.")
            raise MetricsInputError(f"Expected {what} to hold integer class labels with fmt='labels'. Received: "
                                    f"non-integer values of dtype {labels.dtype} (shape {labels.shape}). Pass "
                                    f"fmt='proba' or fmt='logits' for scores, with `axis` for one-hot arrays.")
    elif labels.dtype.kind not in 'iu':
        raise MetricsInputError(f"Expected {what} to be a numeric array. Received: dtype {labels.dtype} "
                                f"(shape {labels.shape}).")
    if labels.size:
        low, high = labels.min(), labels.max()
        if low < 0 or high >= num_classes:
            raise MetricsInputError(f"Expected {what} labels in [0, {num_classes - 1}] for num_classes="
                                    f"{num_classes}. Received: labels from {low:g} to {high:g} (shape "
                                    f"{labels.shape}). {fix}")
    return labels.astype(np.intp, copy=False)


def to_item_labels(targets: Any, predictions: Any, fmt: str, num_classes: int | None, axis: int | None,
                   threshold: float) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Targets and predictions as intp label arrays of shape (n_items, ...), the number of classes, and
    whether the inputs were plain vectors (held as one item).

    See ClassificationMetrics for the rules; every inconsistency is a MetricsInputError naming the shapes.
    """
    if fmt not in FORMATS:
        raise MetricsInputError(f"Expected `fmt` to be one of {list(FORMATS)}. Received: fmt={fmt!r}.")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
        raise BatchkitTypeError(f"Expected `threshold` to be a number. Received: threshold={threshold!r}.")
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
                                    or num_classes < 2):
        raise MetricsInputError(f"Expected `num_classes` to be an int >= 2 or None. Received: "
                                f"num_classes={num_classes!r}.")
    targets, predictions = _as_array(targets, 'targets'), _as_array(predictions, 'predictions')
    shapes = _shapes(targets, predictions)
    if predictions.ndim == 0 or targets.ndim == 0:
        raise MetricsInputError(f"Expected targets and predictions to be arrays with at least 1 dimension. "
                                f"Received: {shapes}. Wrap single values in a list.")

    if axis is not None:
        if fmt == 'labels':
            raise MetricsInputError(f"Expected axis=None with fmt='labels' (labels have no class axis). Received: "
                                    f"axis={axis}, {shapes}. Pass fmt='proba' or fmt='logits' for one-hot "
                                    f"scores, or num_classes with label arrays.")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not (
                -predictions.ndim <= axis < predictions.ndim):
            raise MetricsInputError(f"Expected `axis` to be a class axis of predictions, an int in "
                                    f"[{-predictions.ndim}, {predictions.ndim - 1}]. Received: axis={axis!r}, "
                                    f"{shapes}.")
        axis = int(axis) % predictions.ndim
        if predictions.ndim == 1:
            raise MetricsInputError(f"Expected predictions with a class axis and at least one more axis when "
                                    f"`axis` is given. Received: axis={axis}, {shapes}. Use axis=None for "
                                    f"positive-class scores of shape (n,).")
        classes = predictions.shape[axis]
        if num_classes is not None and num_classes != classes:
            raise MetricsInputError(f"Expected num_classes to match the size of the class axis. Received: "
                                    f"num_classes={num_classes}, axis={axis}, {shapes}. Omit num_classes or "
                                    f"fix the axis.")
        if classes < 2:
            raise MetricsInputError(f"Expected at least 2 classes along axis={axis}. Received: {shapes}.")
        num_classes = classes
    else:
        num_classes = 2 if num_classes is None else int(num_classes)
        if fmt != 'labels' and num_classes > 2:
            raise MetricsInputError(f"Expected `axis` (the class axis) with fmt={fmt!r} for num_classes="
                                    f"{num_classes} > 2. Received: axis=None, {shapes}. Pass the class axis, "
                                    f"e.g. axis=-1 for channels-last or axis=1 for channels-first.")

    if fmt == 'labels':
        if targets.shape != predictions.shape:
            raise MetricsInputError(f"Expected targets and predictions of the same shape with fmt='labels'. "
                                    f"Received: {shapes}.")
        fix = "Pass the right num_classes (with fmt='labels' it defaults to 2)."
        targets = _check_labels(targets, num_classes, 'targets', fix)
        predictions = _check_labels(predictions, num_classes, 'predictions', fix)
    elif axis is None:
        if targets.shape != predictions.shape:
            raise MetricsInputError(f"Expected targets and predictions of the same shape with fmt={fmt!r} and "
                                    f"axis=None (positive-class scores). Received: {shapes}. For one-hot "
                                    f"predictions, pass their class `axis`.")
        _check_scores(targets, fmt, 'targets')
        _check_scores(predictions, fmt, 'predictions')
        targets, predictions = _binarize(targets, fmt, threshold), _binarize(predictions, fmt, threshold)
    else:
        _check_scores(predictions, fmt, 'predictions')
        if targets.ndim == predictions.ndim:
            _check_scores(targets, fmt, 'targets')
            if targets.shape != predictions.shape:
                raise MetricsInputError(f"Expected targets and predictions of the same shape (both one-hot "
                                        f"along axis={axis}) or targets without the class axis (labels). "
                                        f"Received: {shapes}.")
            targets = targets.argmax(axis=axis)
        elif targets.ndim == predictions.ndim - 1:
            expected = predictions.shape[:axis] + predictions.shape[axis + 1:]
            if targets.shape != expected:
                raise MetricsInputError(f"Expected label targets of shape {expected} (predictions without the "
                                        f"class axis {axis}). Received: {shapes}.")
            targets = _check_labels(targets, num_classes, 'targets',
                                    'Label targets must index the class axis of predictions.')
        else:
            raise MetricsInputError(f"Expected targets with the same shape as predictions, or one dimension "
                                    f"fewer (labels, without the class axis {axis}). Received: {shapes}.")
        predictions = predictions.argmax(axis=axis)

    single = targets.ndim == 1
    if single:
        targets, predictions = targets.reshape(1, -1), predictions.reshape(1, -1)
    return targets.astype(np.intp, copy=False), predictions.astype(np.intp, copy=False), num_classes, single


def confusion_per_item(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrices of shape (n_items, num_classes, num_classes), [item, predicted, target] (BatchFlow's
    layout), from one np.bincount over `item * C * C + predicted * C + target`.

    >>> confusion_per_item(np.array([[0, 1, 1]]), np.array([[0, 1, 0]]), 2)[0].tolist()
    [[1, 1], [0, 1]]
    """
    n_items, per_item = targets.shape[0], int(np.prod(targets.shape[1:]))
    flat = predictions.reshape(n_items, per_item) * num_classes + targets.reshape(n_items, per_item)
    if n_items > 1:
        flat = flat + (np.arange(n_items, dtype=np.intp) * (num_classes * num_classes))[:, None]
    counts = np.bincount(flat.ravel(), minlength=n_items * num_classes * num_classes)
    return counts.reshape(n_items, num_classes, num_classes)
