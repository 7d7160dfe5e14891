"""Metrics that accumulate across batches: classification, segmentation, regression (BatchFlow-compatible)."""
from __future__ import annotations

from ._inputs import MetricsInputError
from .base import AGGREGATIONS, Metrics, UnknownMetricError, infmean, infsum
from .classification import METRICS_ALIASES, ClassificationMetrics
from .instances import SegmentationMetricsByInstances
from .regression import REGRESSION_ALIASES, RegressionMetrics
from .segmentation import SegmentationMetricsByPixels

__all__ = [
    'AGGREGATIONS', 'ClassificationMetrics', 'METRICS_ALIASES', 'Metrics', 'MetricsInputError',
    'REGRESSION_ALIASES', 'RegressionMetrics', 'SegmentationMetricsByInstances', 'SegmentationMetricsByPixels',
    'UnknownMetricError', 'infmean', 'infsum',
]
