"""The 'wfdb' load format: one PhysioNet WFDB record (a .hea header and its signal files) per batch item.

NOTE [ Signal layout of wfdb records ]
Each item's signal is `(n_channels, n_samples)` float64 in physical units, channels first as cardio laid ECGs out
(`wfdb` itself gives `(n_samples, n_channels)`). Records of one batch with the same shape are stacked into one
`(n_items, n_channels, n_samples)` array; records of different lengths (real ECG recordings vary from seconds to
minutes) give a 1-D object array of the per-item arrays. `batch.signal[i]` is item i's `(n_channels, n_samples)`
array in both layouts, so per-item code (cropping, resampling) works either way. `meta` is a 1-D object array of
one dict per item: `fs`, `sig_len`, `n_sig`, `sig_name`, `units`, `comments`, `base_time`, `base_date`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._naming import suggest
from .._optional import import_optional
from ..errors import BatchkitKeyError, BatchkitValueError, MissingFileError

if TYPE_CHECKING:
    from .array import ArrayBatch

__all__ = ['WFDB_COMPONENTS', 'load_wfdb']

WFDB_COMPONENTS = ('signal', 'meta')
_META_FIELDS = ('fs', 'sig_len', 'n_sig', 'sig_name', 'units', 'comments', 'base_time', 'base_date')


def _names(batch: ArrayBatch, names: Sequence[str] | None) -> list[str]:
    if names is None:        # the declared components wfdb can fill, or both
        declared = [n for n in batch.component_names if n in WFDB_COMPONENTS]
        return declared or list(WFDB_COMPONENTS)
    unknown = [n for n in names if n not in WFDB_COMPONENTS]
    if unknown:
        raise BatchkitKeyError(f"Expected components among {list(WFDB_COMPONENTS)} for fmt='wfdb'. Received: "
                               f"{unknown}.{suggest(unknown[0], WFDB_COMPONENTS)} Load other components (e.g. "
                               "labels from a csv file) with a second load(...).")
    return list(names)


def _record_names(batch: ArrayBatch, src: Any) -> list[str]:
    """The record name (path without extension) of each item: from a FilesIndex, or `{src}/{id}`."""
    if src is None:
        get = getattr(batch.index, 'get_fullpath', None)
        if get is None:
            raise BatchkitValueError(
                "Expected a dataset over a FilesIndex of wfdb headers (FilesIndex(path='dir/*.hea', no_ext=True)) "
                f"or `src`, the directory of the records. Received: src=None with a {type(batch.index).__name__}.")
        paths = [get(i) for i in batch.indices]
        return [os.path.splitext(p)[0] if os.path.splitext(p)[1] in ('.hea', '.dat', '.mat') else p for p in paths]
    if not isinstance(src, (str, os.PathLike)) or not os.path.isdir(src):
        raise BatchkitValueError(f"Expected `src` to be the directory of the wfdb records (or None over a "
                                 f"FilesIndex). Received: src={src!r:.80}.")
    return [os.path.join(os.fspath(src), str(i)) for i in batch.indices]


def _meta(record: Any) -> dict:
    return {field: getattr(record, field, None) for field in _META_FIELDS}


def _stack(signals: list[np.ndarray]) -> np.ndarray:
    """One array when every item has the same shape, else an object array of items (NOTE [ Signal layout ... ])."""
    if signals and all(s.shape == signals[0].shape for s in signals):
        return np.stack(signals)
    out = np.empty(len(signals), dtype=object)
    for i, s in enumerate(signals):      # item by item: numpy would try to broadcast a list of arrays
        out[i] = s
    return out


def load_wfdb(batch: ArrayBatch, src: Any, names: Sequence[str] | None) -> dict[str, np.ndarray]:
    """Read one wfdb record per item into `signal` and/or `meta` (see NOTE [ Signal layout of wfdb records ]).

    Args:
        batch: the batch to read for.
        src: None over a FilesIndex (ids from header files), or the directory holding `{id}.hea` records.
        names: the components to fill, among 'signal' and 'meta' (default: those the batch declares, or both).

    Raises:
        MissingFileError: an item's header file does not exist.

    >>> batch.load(fmt='wfdb', components=['signal', 'meta'])    # doctest: +SKIP
    """
    wfdb = import_optional('wfdb', extra='notebooks')
    names = _names(batch, names)
    signals, metas = [], []
    for record_name in _record_names(batch, src):
        header = record_name + '.hea'
        if not os.path.isfile(header):
            raise MissingFileError(f"Expected the wfdb header {header!r}. Received: no such file. Write records with "
                                   "wfdb.wrsamp(...), or check the FilesIndex pattern.")
        record = wfdb.rdrecord(record_name, physical=True)
        if 'signal' in names:
            signals.append(np.ascontiguousarray(record.p_signal.T))
        metas.append(_meta(record))
    out: dict[str, np.ndarray] = {}
    if 'signal' in names:
        out['signal'] = _stack(signals)
    if 'meta' in names:
        out['meta'] = np.empty(len(metas), dtype=object)
        for i, m in enumerate(metas):
            out['meta'][i] = m
    return out
