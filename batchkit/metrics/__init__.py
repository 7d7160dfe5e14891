"""Metrics that accumulate across batches: classification, segmentation, regression (BatchFlow-compatible)."""
from __future__ import annotations

from .base import AGGREGATIONS, Metrics, UnknownMetricError, infmean, infsum

__all__ = [
    'AGGREGATIONS', 'Metrics', 'UnknownMetricError', 'infmean', 'infsum',
]
