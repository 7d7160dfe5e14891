"""The digits data: scikit-learn's 8x8 `load_digits` (shipped with scikit-learn, nothing is downloaded)."""
from __future__ import annotations

import numpy as np

from batchkit import Dataset

from .batch import DigitsBatch

__all__ = ['NUM_CLASSES', 'load']

NUM_CLASSES = 10


def load(test_share: float = 0.2, seed: int = 0) -> Dataset:
    """The digits as a Dataset of DigitsBatch, split into `.train` and `.test`.

    Images are float32 of shape (8, 8, 1) scaled to [0, 1] (the raw pixels are 0..16); labels are int64.

    >>> ds = load()                                          # doctest: +SKIP
    >>> len(ds.train), len(ds.test)                          # doctest: +SKIP
    (1438, 359)
    """
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target.astype(np.int64)
    ds = Dataset(len(images), batch_class=DigitsBatch, preloaded={'images': images, 'labels': labels})
    ds.split(1 - test_share, shuffle=seed)
    return ds
