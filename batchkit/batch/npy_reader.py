"""Read small .npy and .npz files fast: the per-item files of `load(fmt='npy')` and `load(fmt='npz')`.

NOTE [ Small npy files ]
A dataset of one small .npy file per item spends most of np.load's time in Python: reading through Python file
objects and parsing each header with a literal evaluator, about 100 us per file here. The files of one dataset share one header,
so the layout it gives is kept by its bytes, and each file is then one read and a frombuffer (about 15 us).
An .npz file is a zip of .npy files; its members are read the same way (about 130 us a file of two arrays, against
about 400 us through np.load, most of what is left being zipfile's own work).
Whatever this path does not know as plain (another format version, object arrays, a short file) goes to np.load's
own reader, so its errors and its results stay np.load's.
"""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np

__all__ = ['NpzReader', 'read_npy']

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


def _plain_array(data: bytes) -> np.ndarray | None:
    """The array the bytes of a .npy file hold (read-only), or None when np.load's reader must read them."""
    if len(data) < 10 or data[:7] != _MAGIC:
        return None
    layout = _layout(data[:10 + int.from_bytes(data[8:10], 'little')])
    if layout is None:
        return None
    dtype, shape, order, offset, count = layout
    if len(data) - offset != count * dtype.itemsize:
        return None
    return np.frombuffer(data, dtype, count, offset).reshape(shape, order=order)


def read_npy(path: str) -> np.ndarray:
    """The array in .npy file `path`, as np.load gives it (read-only when read on the fast path).

    OSError from opening the file propagates, for the caller to explain.
    """
    fd = os.open(path, os.O_RDONLY)     # os-level calls: a third less time per small file than open().read()
    try:
        data = os.read(fd, os.fstat(fd).st_size)     # a short read fails the length check and goes to np.load
    finally:
        os.close(fd)
    array = _plain_array(data)
    return np.load(path) if array is None else array


class NpzReader:
    """The arrays of an .npz file by name, as np.load's NpzFile gives them (`files`, `reader[name]`, a context
    manager), read on the fast path where it can (read-only arrays then).

    Raises zipfile.BadZipFile for a file that is no zip archive, for the caller to explain.
    """

    def __init__(self, path: str) -> None:
        self._zip = zipfile.ZipFile(path)
        self._members = {n[:-4] if n.endswith('.npy') else n: n for n in self._zip.namelist()}
        self.files = list(self._members)

    def __getitem__(self, name: str) -> np.ndarray:
        data = self._zip.read(self._members[name])
        array = _plain_array(data)
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False) if array is None else array

    def close(self) -> None:
        """Close the archive."""
        self._zip.close()

    def __enter__(self) -> 'NpzReader':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
