"""Inputs for the metrics tests in every format, and a reference for the metrics built on scikit-learn."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn import metrics as skm

FORMATS = ('labels', 'proba', 'logits')


def scores_for(labels: np.ndarray, num_classes: int, fmt: str, axis: int | None, rng: np.random.Generator,
               threshold: float = 0.5) -> np.ndarray:
    """An array in `fmt` whose labels are `labels`: one-hot scores along `axis` (argmax = label), or the
    positive-class score for axis=None (>= threshold exactly for label 1), kept away from the ties."""
    if fmt == 'labels':
        return labels.copy()
    if axis is None:
        low = rng.uniform(0, threshold - 0.01, labels.shape)
        high = rng.uniform(threshold + 0.01, 1, labels.shape)
        proba = np.where(labels == 1, high, low)
        return proba if fmt == 'proba' else np.log(proba / (1 - proba))
    proba = rng.uniform(0.0, 0.4, labels.shape + (num_classes,))
    np.put_along_axis(proba, labels[..., None], rng.uniform(0.5, 1.0, labels.shape + (1,)), axis=-1)
    proba = proba / proba.sum(axis=-1, keepdims=True)
    values = proba if fmt == 'proba' else np.log(proba)
    return np.moveaxis(values, -1, axis)


def random_labels(rng: np.random.Generator, shape: tuple[int, ...], num_classes: int) -> np.ndarray:
    return rng.integers(0, num_classes, shape)


def _div(numer: float, denom: float, when_zero: tuple[float, float]) -> float:
    if denom == 0:
        return float(when_zero[0] if numer > 0 else when_zero[1])
    return np.nan if np.isinf(numer) and np.isinf(denom) else numer / denom


def reference_per_class(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """Per-class metrics of one item from scikit-learn's one-vs-all counts, BatchFlow's when_zero rule by hand."""
    t, p = targets.ravel(), predictions.ravel()
    labels = list(range(num_classes))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')        # sklearn warns about classes absent from both: we compare anyway
        mcm = skm.multilabel_confusion_matrix(t, p, labels=labels)
        recall = skm.recall_score(t, p, labels=labels, average=None, zero_division=1)
        precision = skm.precision_score(t, p, labels=labels, average=None, zero_division=1)
        f1 = skm.f1_score(t, p, labels=labels, average=None, zero_division=np.nan)
        jaccard = skm.jaccard_score(t, p, labels=labels, average=None, zero_division=0)
    tn, fp, fn, tp = (mcm[:, i // 2, i % 2].astype(float) for i in range(4))
    n = float(t.size)
    out: dict[str, list[float]] = {k: [] for k in (
        'true_positive_rate', 'false_positive_rate', 'false_negative_rate', 'true_negative_rate', 'prevalence',
        'positive_predictive_value', 'false_discovery_rate', 'false_omission_rate', 'negative_predictive_value',
        'positive_likelihood_ratio', 'negative_likelihood_ratio', 'diagnostics_odds_ratio', 'accuracy')}
    for c in labels:
        cp, cn, pp, pn = tp[c] + fn[c], fp[c] + tn[c], tp[c] + fp[c], fn[c] + tn[c]
        tpr, fpr = _div(tp[c], cp, (0, 1)), _div(fp[c], cn, (1, 0))
        fnr, tnr = _div(fn[c], cp, (1, 0)), _div(tn[c], cn, (0, 1))
        plr, nlr = _div(tpr, fpr, (np.inf, 0)), _div(fnr, tnr, (np.inf, 0))
        for key, value in (('true_positive_rate', tpr), ('false_positive_rate', fpr), ('false_negative_rate', fnr),
                           ('true_negative_rate', tnr), ('prevalence', _div(cp, n, (0, 0))),
                           ('positive_predictive_value', _div(tp[c], pp, (0, 1))),
                           ('false_discovery_rate', _div(fp[c], pp, (1, 0))),
                           ('false_omission_rate', _div(fn[c], pn, (1, 0))),
                           ('negative_predictive_value', _div(tn[c], pn, (0, 1))),
                           ('positive_likelihood_ratio', plr), ('negative_likelihood_ratio', nlr),
                           ('diagnostics_odds_ratio', _div(plr, nlr, (np.inf, 0))),
                           ('accuracy', _div(tp[c] + tn[c], n, (0, 1)))):
            out[key].append(value)
    result = {k: np.array(v) for k, v in out.items()}
    # scikit-learn's own rates where it has them (zero_division=1 is BatchFlow's b=1 for these two)
    result['true_positive_rate'], result['positive_predictive_value'] = recall, precision
    result['f1_score'] = np.where(np.isnan(f1), np.inf, f1)        # absent from targets and predictions: inf
    result['jaccard'] = np.where(tp + fp + fn == 0, np.inf, jaccard)       # its zero_division has no NaN
    result.update(true_positive=tp, false_positive=fp, true_negative=tn, false_negative=fn,
                  condition_positive=tp + fn, condition_negative=fp + tn, prediction_positive=tp + fp,
                  prediction_negative=fn + tn)
    return result


def finite_mean(values: Any, axis: int = 0) -> Any:
    """The mean of the finite values (inf where there are none), written independently of batchkit.infmean."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        finite = values[np.isfinite(values)]
        return float(finite.mean()) if finite.size else np.inf
    moved = np.moveaxis(values, axis, 0)
    return np.array([finite_mean(moved[:, j]) for j in range(moved.shape[1])])


RATES = ('true_positive_rate', 'false_positive_rate', 'false_negative_rate', 'true_negative_rate', 'prevalence',
         'positive_predictive_value', 'false_discovery_rate', 'false_omission_rate', 'negative_predictive_value',
         'positive_likelihood_ratio', 'negative_likelihood_ratio', 'diagnostics_odds_ratio', 'f1_score', 'jaccard')
COUNTS = ('true_positive', 'false_positive', 'true_negative', 'false_negative', 'condition_positive',
          'condition_negative', 'prediction_positive', 'prediction_negative')
