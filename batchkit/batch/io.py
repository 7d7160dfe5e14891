"""Load and dump ArrayBatch components: npz, npy and csv files, one per dataset or one per item, and in-memory arrays."""
from __future__ import annotations

import collections
import contextlib
import csv
import io
import os
import tempfile
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._naming import suggest
from ..errors import (
    BatchkitKeyError,
    BatchkitTypeError,
    BatchkitValueError,
    MissingFileError,
)
from .npy_reader import NpzReader, read_npy

if TYPE_CHECKING:
    from .array import ArrayBatch

__all__ = ['DUMP_FORMATS', 'LOAD_FORMATS', 'dump', 'load']

LOAD_FORMATS = ('npz', 'npy', 'csv', 'array', 'wfdb')
DUMP_FORMATS = ('npz', 'npy', 'csv')

_CSV_CACHE: collections.OrderedDict[tuple, '_CsvTable'] = collections.OrderedDict()
_CSV_CACHE_SIZE = 8
_CSV_CACHE_LOCK = threading.Lock()
_CSV_WRITE_LOCK = threading.Lock()     # one owner for appends: concurrent batches must not interleave lines


# --- helpers ------------------------------------------------------------------------------------------------
def _as_list(components: str | Sequence[str] | None) -> list[str] | None:
    if components is None:
        return None
    names = [components] if isinstance(components, str) else list(components)
    if not names or not all(isinstance(n, str) for n in names):
        raise BatchkitTypeError(f"Expected `components` to be a name or a non-empty list of names. "
                                f"Received: components={components!r}")
    return names


def _default_components(batch: ArrayBatch, available: Sequence[str], where: str) -> list[str]:
    """The batch's components found in `available`, or all of `available` when the batch names none."""
    declared = batch.component_names
    if not declared:
        return list(available)
    present = [n for n in declared if n in available]
    if not present:
        raise BatchkitKeyError(f"Expected {where} to hold at least one of the components {list(declared)}. "
                               f"Received: {sorted(available)}. Pass components=[...] to choose what to load.")
    return present


def _close(name: str, options: Sequence[str]) -> str:
    """' Did you mean ...?' when a close name exists (the message lists all options already)."""
    hint = suggest(name, options)
    return hint if hint.startswith(' Did') else ''


def _one_component(batch: ArrayBatch, components: list[str] | None, fmt: str) -> str:
    if components is None:
        if not batch.component_names:
            raise BatchkitValueError(f"Expected components='name' for fmt={fmt!r}: the batch declares no components. "
                                     "Received: components=None.")
        return batch.component_names[0]
    if len(components) != 1:
        raise BatchkitValueError(f"Expected exactly one component for fmt={fmt!r} (a file holds one array). "
                                 f"Received: components={components}. Load or dump them one at a time.")
    return components[0]


def _path(path: Any, arg: str = 'src') -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise BatchkitTypeError(f"Expected `{arg}` to be a path. Received: {type(path).__name__} {path!r:.80}")
    return os.fspath(path)


def _check_file(path: Any) -> str:
    path = _path(path)
    if not os.path.isfile(path):
        raise MissingFileError(f"Expected an existing file. Received: {path!r}, which does not exist. "
                               "Check the path (relative paths start from the current directory).")
    return path


def _take_rows(array: Any, positions: np.ndarray, path: str, name: str) -> np.ndarray:
    """The rows of whole-dataset `array` at the batch's root positions."""
    n = len(array)
    if len(positions) and positions.max() >= n:
        raise BatchkitValueError(
            f"Expected '{name}' in {path!r} to hold one row per dataset item (at least {positions.max() + 1}). "
            f"Received: {n} rows. Save whole-dataset arrays, or load one file per item (src=None over a FilesIndex).")
    return np.asarray(array[positions])     # a plain array (not a memmap view into the file)


def _item_paths(batch: ArrayBatch, src: Any, fmt: str) -> list[str]:
    """One file per item: from a FilesIndex (src=None) or `{src}/{id}.{fmt}` in a directory."""
    if src is None:
        get = getattr(batch.index, 'get_fullpath', None)
        if get is None:
            raise BatchkitValueError(
                f"Expected `src` (a {fmt} file or directory) or a dataset over a FilesIndex. Received: src=None "
                f"with a {type(batch.index).__name__}. Pass src='data.{fmt}'.")
        return [get(i) for i in batch.indices]
    return [os.path.join(os.fspath(src), f'{i}.{fmt}') for i in batch.indices]


def _per_item(src: Any) -> bool:
    """True when `src` asks for one file per item: None (a FilesIndex) or a directory."""
    return src is None or os.path.isdir(_path(src))


class _Stacker:
    """Stacks per-item arrays into one array per component as they are read, so a batch never holds its items twice."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items
        self.out: dict[str, np.ndarray] = {}
        self.first: dict[str, str] = {}

    def put(self, i: int, name: str, arr: np.ndarray, path: str) -> None:
        out = self.out.get(name)
        if out is None:
            self.out[name] = out = np.empty((self.n_items, *arr.shape), arr.dtype)
            self.first[name] = path
        elif arr.shape != out.shape[1:]:
            raise BatchkitValueError(f"Expected '{name}' of the same shape in every file to stack them. Received: "
                                     f"{out.shape[1:]} in {self.first[name]!r} but {arr.shape} in {path!r}.")
        elif arr.dtype != out.dtype:
            self.out[name] = out = out.astype(np.result_type(out.dtype, arr.dtype))
        out[i] = arr


# --- load ---------------------------------------------------------------------------------------------------
def _load_npz(batch: ArrayBatch, src: Any, names: list[str] | None) -> dict[str, np.ndarray]:
    if _per_item(src):
        paths = _item_paths(batch, src, 'npz')
        stacker = _Stacker(len(paths))
        for i, path in enumerate(paths):
            with _open_npz(path) as f:
                names = names or _default_components(batch, f.files, repr(path))
                for n in names:
                    stacker.put(i, n, _npz_get(f, n, path), path)
        return stacker.out
    path = _check_file(src)
    with np.load(path) as f:
        names = names or _default_components(batch, f.files, repr(path))
        positions = batch.index.root_positions
        return {n: _take_rows(_npz_get(f, n, path), positions, path, n) for n in names}


def _read_item_file(read: Callable[[str], Any], path: str) -> Any:
    """`read(path)`, with a clear error for a path that is no file; any other OSError is the OS's own."""
    try:
        return read(path)
    except OSError:
        _check_file(path)
        raise


def _open_npz(path: str) -> NpzReader:
    try:
        return _read_item_file(NpzReader, path)
    except zipfile.BadZipFile:
        raise BatchkitValueError(f"Expected an npz file (a zip archive of .npy arrays, as np.savez writes). "
                                 f"Received: {path!r}, which is not a zip archive. Use fmt='npy' for .npy files."
                                 ) from None


def _npz_get(f: Any, name: str, path: str) -> np.ndarray:
    if name not in f.files:
        raise BatchkitKeyError(f"Expected component '{name}' in {path!r}. Received: a file with {sorted(f.files)}."
                               f"{_close(name, f.files)} Pass components=[...] naming arrays of the file.")
    return f[name]


def _load_npy(batch: ArrayBatch, src: Any, names: list[str] | None) -> dict[str, np.ndarray]:
    name = _one_component(batch, names, 'npy')
    if _per_item(src):
        paths = _item_paths(batch, src, 'npy')
        stacker = _Stacker(len(paths))
        for i, path in enumerate(paths):
            stacker.put(i, name, _read_item_file(read_npy, path), path)
        return stacker.out
    path = _check_file(src)
    # mmap: many batches over one big file read only their rows, never the whole file
    return {name: _take_rows(np.load(path, mmap_mode='r'), batch.index.root_positions, path, name)}


class _CsvTable:
    """A parsed csv file: raw string columns, converted lazily and kept (parsed once for all batches)."""

    def __init__(self, path: str) -> None:
        with open(path, newline='') as f:
            rows = [r for r in csv.reader(f) if r]      # blank lines are not items
        if not rows:
            raise BatchkitValueError(f"Expected a csv file with a header row. Received: {path!r} is empty.")
        self.path, self.header = path, rows[0]
        self.raw = {h: [r[j] if j < len(r) else '' for r in rows[1:]] for j, h in enumerate(self.header)}
        self.converted: dict[str, np.ndarray] = {}
        self.row_of: dict[str, dict[str, int]] = {}

    def column(self, name: str) -> np.ndarray:
        if name not in self.raw:
            raise BatchkitKeyError(f"Expected column '{name}' in {self.path!r}. Received: columns {self.header}."
                                   f"{_close(name, self.header)} Pass components=[...] naming columns of the file.")
        if name not in self.converted:
            self.converted[name] = _parse_column(self.raw[name])
        return self.converted[name]

    def rows_of(self, ids: np.ndarray, index_col: str) -> np.ndarray:
        if index_col not in self.row_of:
            keys = self.raw[index_col] if index_col in self.raw else self.column(index_col)   # column() raises
            if len(set(keys)) != len(keys):
                raise BatchkitValueError(f"Expected unique values in index_col '{index_col}' of {self.path!r}. "
                                         "Received: duplicates. Pick a column that identifies each row.")
            self.row_of[index_col] = {k: i for i, k in enumerate(keys)}
        lookup = self.row_of[index_col]
        missing = [str(i) for i in ids.tolist() if str(i) not in lookup]
        if missing:
            raise BatchkitKeyError(f"Expected every batch id in column '{index_col}' of {self.path!r}. "
                                   f"Received: no row for ids {missing[:5]}. Ids are compared as strings.")
        return np.array([lookup[str(i)] for i in ids.tolist()], dtype=np.intp)


def _parse_column(values: list[str]) -> np.ndarray:
    for kind in (int, float):      # ints stay ints (labels), then floats, else the strings themselves
        try:
            return np.array([kind(v) for v in values], dtype=kind)
        except (ValueError, OverflowError):
            continue
    return np.array(values, dtype=str)


def _csv_table(path: str) -> _CsvTable:
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)     # a rewritten file is parsed again
    with _CSV_CACHE_LOCK:
        table = _CSV_CACHE.get(key)
        if table is None:
            table = _CSV_CACHE[key] = _CsvTable(path)
            while len(_CSV_CACHE) > _CSV_CACHE_SIZE:
                _CSV_CACHE.popitem(last=False)
        _CSV_CACHE.move_to_end(key)
        return table


def _load_csv(batch: ArrayBatch, src: Any, names: list[str] | None, index_col: str | None = None
              ) -> dict[str, np.ndarray]:
    if src is None or _per_item(src):
        raise BatchkitValueError(f"Expected `src` to be a csv file for fmt='csv' (one file, one row per dataset item). "
                                 f"Received: src={src!r}. Pass src='table.csv', or read one file per item with "
                                 f"fmt='npz' or 'npy'.")
    path = _check_file(src)
    table = _csv_table(path)
    with _CSV_CACHE_LOCK:      # lazy conversion mutates the shared table
        if names is None:
            available = [h for h in table.header if h != index_col]
            names = _default_components(batch, available, repr(path))
        if index_col is None:
            positions = batch.index.root_positions
            return {n: _take_rows(table.column(n), positions, path, n) for n in names}
        rows = table.rows_of(batch.indices, index_col)
        return {n: table.column(n)[rows] for n in names}


def _load_array(batch: ArrayBatch, src: Any, names: list[str] | None) -> dict[str, np.ndarray]:
    if isinstance(src, Mapping):
        names = names or _default_components(batch, list(src), 'the dict')
        missing = [n for n in names if n not in src]
        if missing:
            raise BatchkitKeyError(f"Expected components {missing} in the dict. Received: keys {list(src)}.")
        data = {n: src[n] for n in names}
    elif isinstance(src, (tuple, list)):
        names = names or list(batch.component_names)
        if len(names) != len(src):
            raise BatchkitValueError(f"Expected one array per component {names}. Received: {len(src)} arrays. "
                                     "Pass components=[...] in the order of the arrays.")
        data = dict(zip(names, src))
    elif src is not None:
        data = {_one_component(batch, names, 'array'): src}
    else:
        raise BatchkitValueError("Expected `src` data for fmt='array': an array, a tuple of arrays or a dict. "
                                 "Received: src=None.")
    positions = batch.index.root_positions
    return {n: _take_rows(np.asarray(a), positions, 'the given data', n) for n, a in data.items()}


def _load_wfdb(batch: ArrayBatch, src: Any, names: list[str] | None) -> dict[str, np.ndarray]:
    from .wfdb_format import load_wfdb      # wfdb is optional: imported only when the format is used
    return load_wfdb(batch, src, names)


_LOADERS: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    'npz': _load_npz, 'npy': _load_npy, 'csv': _load_csv, 'array': _load_array, 'wfdb': _load_wfdb}


def load(batch: ArrayBatch, src: Any, fmt: str = 'npz', components: str | Sequence[str] | None = None,
         **kwargs: Any) -> ArrayBatch:
    """Fill the batch's components from `src` (see `ArrayBatch.load`) and return the batch.

    Raises:
        MissingFileError: a file does not exist. BatchkitKeyError: a component or column is not in a file.

    >>> batch = load(batch, 'data.npz', 'npz', ['images', 'labels'])   # doctest: +SKIP
    """
    loader = _LOADERS.get(fmt)
    if loader is None:
        raise BatchkitValueError(f"Expected `fmt` to be one of {list(LOAD_FORMATS)}. Received: fmt={fmt!r}."
                                 f"{suggest(str(fmt), LOAD_FORMATS)}")
    extra = set(kwargs) - ({'index_col'} if fmt == 'csv' else set())
    if extra:      # say which option is unknown rather than a bare TypeError from the loader
        raise BatchkitTypeError(f"Expected no options other than index_col (fmt='csv'). Received: {sorted(extra)} "
                                f"with fmt={fmt!r}.")
    for name, value in loader(batch, src, _as_list(components), **kwargs).items():
        setattr(batch, name, value)
    return batch


# --- dump ---------------------------------------------------------------------------------------------------
def _dump_components(batch: ArrayBatch, names: list[str] | None, for_csv: bool = False) -> dict[str, Any]:
    """Default: every declared component with a value, plus loaded arrays with one row per item."""
    if names is None:
        names = [n for n in batch.component_names if getattr(batch, n) is not None]
        names += [k for k, v in vars(batch).items() if not k.startswith('_') and k not in names
                  and isinstance(v, np.ndarray) and v.ndim and len(v) == len(batch)]
        if not names:
            raise BatchkitValueError("Expected a component to dump. Received: a batch with none set. "
                                     "Load or set components first, or pass components=[...].")
    values = {n: getattr(batch, n) for n in names}
    for n, v in values.items():
        if v is None or len(v) != len(batch):
            raise BatchkitValueError(f"Expected component '{n}' to hold one row per batch item ({len(batch)}). "
                                     f"Received: {'None' if v is None else f'{len(v)} rows'}.")
        if not for_csv and np.asarray(v).dtype.hasobject:     # load reads without pickle, so never write pickles
            raise BatchkitValueError(f"Expected a numeric or string component to dump. Received: '{n}' of dtype "
                                     "object. Convert it with np.asarray(..., dtype=...) or use fmt='csv'.")
    return values


def _file_name(id_: Any, ext: str) -> str:
    name = str(id_)
    if not name or name in ('.', '..') or os.sep in name or (os.altsep and os.altsep in name):
        raise BatchkitValueError(f"Expected item ids usable as file names. Received: id {name!r}.")
    return f'{name}.{ext}'


def _write_atomic(dst: str, name: str, write: Callable[[Any], None]) -> None:
    """Write into a hidden temp file of `dst`, then rename: readers never see a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=dst, prefix=f'.{name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
        os.replace(tmp, os.path.join(dst, name))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _write_npz(f: Any, arrays: dict[str, np.ndarray]) -> None:
    # np.savez's own layout, written by hand so that a component may be called 'file' or 'allow_pickle'
    with zipfile.ZipFile(f, mode='w', compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            with zf.open(f'{key}.npy', 'w', force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def _write_csv(dst: str, batch: ArrayBatch, values: dict[str, Any]) -> None:
    columns = {n: np.asarray(v) for n, v in values.items()}
    for n, v in columns.items():
        if v.ndim != 1:
            raise BatchkitValueError(f"Expected one value per item in component '{n}' for fmt='csv'. "
                                     f"Received: an array of shape {v.shape}. Dump it with fmt='npz'.")
    header = ['id', *columns]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerows(zip(batch.indices.tolist(), *(v.tolist() for v in columns.values())))
    with _CSV_WRITE_LOCK:
        new = not os.path.exists(dst) or os.path.getsize(dst) == 0
        if not new:
            with open(dst, newline='') as f:
                found = next(csv.reader(f), [])
            if found != header:
                raise BatchkitValueError(f"Expected {dst!r} to have the columns {header} to append to. "
                                         f"Received: {found}. Use another file or the same components.")
        with open(dst, 'a', newline='') as f:
            if new:
                csv.writer(f, lineterminator='\n').writerow(header)
            f.write(buf.getvalue())      # one write of whole lines


def _make_dirs(directory: str, dst: str) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise BatchkitValueError(f"Expected `dst` under a directory that can be created or written to. Received: "
                                 f"dst={dst!r}: {exc.strerror} ({type(exc).__name__}) at {exc.filename!r}. "
                                 "Pass a path whose parents are directories you can write to.") from exc


def dump(batch: ArrayBatch, dst: Any, fmt: str = 'npz', components: str | Sequence[str] | None = None,
         **kwargs: Any) -> ArrayBatch:
    """Write the batch: one `{id}.npz` / `{id}.npy` per item into directory `dst`, or rows appended to csv `dst`.

    >>> dump(batch, 'out', 'npz')      # out/<id>.npz, readable via FilesIndex(path='out/*.npz', no_ext=True)  # doctest: +SKIP
    """
    if fmt not in DUMP_FORMATS:
        raise BatchkitValueError(f"Expected `fmt` to be one of {list(DUMP_FORMATS)}. Received: fmt={fmt!r}."
                                 f"{suggest(str(fmt), DUMP_FORMATS)}")
    if kwargs:
        raise BatchkitTypeError(f"Expected no extra arguments for dump. Received: {sorted(kwargs)}.")
    dst, names = _path(dst, 'dst'), _as_list(components)
    if fmt == 'npy':
        names = [_one_component(batch, names if names is not None else list(_dump_components(batch, None)), 'npy')]
    values = _dump_components(batch, names, for_csv=fmt == "csv")
    if fmt == 'csv':
        if os.path.isdir(dst):
            example = os.path.join(dst, 'items.csv')
            raise BatchkitValueError(f"Expected `dst` to be a csv file to append rows to (fmt='csv'). Received: "
                                     f"{dst!r}, a directory. Pass a file path such as {example!r}.")
        _make_dirs(os.path.dirname(dst) or '.', dst)
        _write_csv(dst, batch, values)
        return batch
    if os.path.exists(dst) and not os.path.isdir(dst):
        raise BatchkitValueError(f"Expected `dst` to be a directory for one {fmt} file per item (fmt={fmt!r}). "
                                 f"Received: {dst!r}, an existing file. Pass a directory, or fmt='csv' to append "
                                 "rows to a file.")
    _make_dirs(dst, dst)
    for i, id_ in enumerate(batch.indices.tolist()):
        item = {n: np.asarray(v[i]) for n, v in values.items()}
        if fmt == 'npz':
            _write_atomic(dst, _file_name(id_, 'npz'), lambda f, item=item: _write_npz(f, item))
        else:
            _write_atomic(dst, _file_name(id_, 'npy'), lambda f, a=item[names[0]]: np.save(f, a, allow_pickle=False))
    return batch
