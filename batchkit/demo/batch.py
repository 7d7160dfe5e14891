"""DigitsBatch: the digits' batch class, with random shift and rotation augmentation actions."""
from __future__ import annotations

from typing import Any

import numpy as np

from batchkit import ArrayBatch, action

__all__ = ['DigitsBatch']


class DigitsBatch(ArrayBatch):
    """Images (n, 8, 8, 1) in [0, 1] and their labels; augmentation actions draw one parameter per image.

    >>> from batchkit import B, R
    >>> p = ds.p.shift(R('integers', -1, 2, size=(B('size'), 2)))   # doctest: +SKIP
    """

    components = ('images', 'labels')

    @action
    def shift(self, offsets: Any) -> 'DigitsBatch':
        """Shift each image by whole pixels, `offsets` (n, 2) of (rows, columns), filling with zeros."""
        offsets = np.asarray(offsets, dtype=int).reshape(len(self), 2)
        out = np.zeros_like(self.images)
        h, w = self.images.shape[1:3]
        for i, (dy, dx) in enumerate(offsets):
            # the part of the image that stays inside after the shift
            src_y, dst_y = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
            src_x, dst_x = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
            out[i, dst_y, dst_x] = self.images[i, src_y, src_x]
        self.images = out
        return self

    @action
    def rotate(self, angles: Any) -> 'DigitsBatch':
        """Rotate each image about its centre by `angles` (n,) degrees (bilinear, zeros outside)."""
        from scipy import ndimage      # scipy comes with scikit-learn, which the demo needs anyway
        angles = np.broadcast_to(np.asarray(angles, dtype=float), (len(self),))
        images = self.images
        out = np.empty_like(images)
        for i, angle in enumerate(angles):
            out[i, ..., 0] = ndimage.rotate(images[i, ..., 0], angle, reshape=False, order=1, mode='constant')
        self.images = np.clip(out, 0.0, 1.0)
        return self
