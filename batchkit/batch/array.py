"""ArrayBatch: a batch whose components are numpy arrays, with load and dump actions."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..decorators import action
from .base import Batch

__all__ = ['ArrayBatch']


def _as_rows(source: Any) -> np.ndarray:
    """An array with one row per item; items of different shapes (signals of different lengths) as objects."""
    try:
        return np.asarray(source)
    except ValueError:                 # inhomogeneous shapes
        rows = np.empty(len(source), dtype=object)
        for i, item in enumerate(source):
            rows[i] = item
        return rows


class ArrayBatch(Batch):
    """A batch of numpy-array components, gathered once per batch from the dataset's preloaded arrays.

    >>> ds = Dataset.from_arrays(images=np.zeros((10, 28, 28)), labels=np.arange(10))   # doctest: +SKIP
    >>> batch = ds.next_batch(4)                                                          # doctest: +SKIP
    >>> batch.images.shape                                                                # doctest: +SKIP
    (4, 28, 28)
    """

    def _cut(self, source: Any, positions: np.ndarray) -> Any:
        if source is None:
            return None
        if not isinstance(source, np.ndarray):
            source = _as_rows(source)
        # take, not source[positions]: it releases the GIL, so prefetch threads gather in parallel.
        return source.take(positions, axis=0)

    @action
    def load(self, src: Any = None, fmt: str = 'npz', components: str | Sequence[str] | None = None,
             **kwargs: Any) -> 'ArrayBatch':
        """Load components: from whole-dataset data (`src` a file or an array), or one file per item.

        Args:
            src: a file (npz, npy, csv) or data ('array': an array, a tuple of arrays or a dict) holding one
                row per dataset item; the batch takes the rows of its items. None over a FilesIndex: one
                file per item.
            fmt: 'npz', 'npy', 'csv', 'array', or 'wfdb' (one WFDB record per item into `signal` and `meta`).
            components: the component(s) to fill (default: all declared components, or the npz keys).
        """
        from . import io
        return io.load(self, src, fmt, components, **kwargs)

    @action
    def dump(self, dst: str, fmt: str = 'npz', components: str | Sequence[str] | None = None,
             **kwargs: Any) -> 'ArrayBatch':
        """Write one file per item into the directory `dst`, named by the item's id (readable via FilesIndex)."""
        from . import io
        return io.dump(self, dst, fmt, components, **kwargs)
