"""Read one small .npy file fast: the per-item files of `load(fmt='npy')`.

NOTE [ Small npy files ]
A dataset of one small .npy file per item spends most of np.load's time in Python: opening the file twice and
parsing its header with a literal evaluator, about 100 us per file here. The files of one dataset share one header,
so the layout it gives is kept by its bytes, and each file is then one read and a frombuffer (about 20 us).
Whatever this path does not know as plain (another format version, object arrays, a short file) goes to np.load,
so its errors and its results stay np.load's.
"""
from __future__ import annotations

import io

import numpy as np

__all__ = ['read_npy']

_MAGIC = b'\x93NUMPY\x01'          # format version 1.x: a 2-byte little-endian header length at bytes 8-9
_Layout = tuple[np.dtype, tuple, str, int, int]    # dtype, shape, order, data offset, item count
_LAYOUTS: dict[bytes, _Layout] = {}
_LAYOUTS_SIZE = 64


def _layout(header: bytes) -> _Layout | None:
    """The layout a version 1 header describes, or None when np.load must read the file (object arrays)."""
    layout = _LAYOUTS.get(header)
    if layout is None:
        fp = io.BytesIO(header)
        np.lib.format.read_magic(fp)
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fp)
        if dtype.hasobject:
            return None
        if len(_LAYOUTS) >= _LAYOUTS_SIZE:
            _LAYOUTS.clear()
        count = 1
        for n in shape:
            count *= n
        layout = _LAYOUTS[header] = (dtype, shape, 'F' if fortran_order else 'C', len(header), count)
    return layout


def read_npy(path: str) -> np.ndarray:
    """The array in .npy file `path`, as np.load gives it (read-only when read on the fast path).

    OSError from opening the file propagates, for the caller to explain.
    """
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 10 or data[:7] != _MAGIC:
        return np.load(path)
    layout = _layout(data[:10 + int.from_bytes(data[8:10], 'little')])
    if layout is None:
        return np.load(path)
    dtype, shape, order, offset, count = layout
    if len(data) - offset != count * dtype.itemsize:
        return np.load(path)
    return np.frombuffer(data, dtype, count, offset).reshape(shape, order=order)
