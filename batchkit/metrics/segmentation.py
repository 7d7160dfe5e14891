"""SegmentationMetricsByPixels: classification metrics of every pixel, computed per image."""
from __future__ import annotations

from .classification import ClassificationMetrics

__all__ = ['SegmentationMetricsByPixels']


class SegmentationMetricsByPixels(ClassificationMetrics):
    """Pixel-wise segmentation metrics: a confusion matrix per image, rates per image, then `agg` over images.

    The arguments are ClassificationMetrics' (`targets, predictions, fmt='proba', num_classes=None, axis=None,
    threshold=0.5, skip_bg=False`); masks are `(n_images, ...)`, with the class axis anywhere for one-hot
    probabilities / logits (`axis=1` channels-first, `axis=-1` channels-last). For 100 images of 10 classes:

    - `evaluate('jaccard', agg=None, multiclass=None)`: shape (100, 10), per image and class;
    - `evaluate('jaccard', agg='mean', multiclass=None)`: shape (10,), per class, averaged over images;
    - `evaluate('jaccard', agg=None, multiclass='macro')`: shape (100,), per image, averaged over classes;
    - `evaluate('jaccard')`: one value, over classes then images (classes absent from an image's target and
      prediction are inf, and the means skip them).

    >>> import numpy as np
    >>> masks = np.array([[[0, 1], [1, 1]], [[0, 0], [2, 2]]])
    >>> m = SegmentationMetricsByPixels(masks, masks, fmt='labels', num_classes=3)
    >>> m.evaluate('iou', agg=None).tolist()
    [1.0, 1.0]
    """
