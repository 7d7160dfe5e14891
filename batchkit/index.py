"""DatasetIndex, FilesIndex and BatchPlan: which items form each batch (epochs, shuffle, drop_last, n_iters)."""
from __future__ import annotations

import copy
import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .errors import BatchkitKeyError, BatchkitTypeError, BatchkitValueError

__all__ = ['DEFAULT', 'BatchPlan', 'DatasetIndex', 'FilesIndex', 'NextBatch', 'make_rng', 'next_plan', 'shuffle_key']


class _Default:
    """Marks an argument the caller did not give (so an explicit None can mean something else)."""

    def __repr__(self) -> str:
        return 'DEFAULT'


DEFAULT: Any = _Default()


def make_rng(shuffle: Any) -> np.random.Generator | None:
    """A Generator for `shuffle` (True, an int seed or a Generator), or None for no shuffling."""
    if shuffle is False or shuffle is None:
        return None
    if shuffle is True or shuffle is np.True_:
        return np.random.default_rng()
    if shuffle is np.False_:
        return None
    if isinstance(shuffle, (int, np.integer)):
        if shuffle < 0:
            raise BatchkitValueError(f"Expected `shuffle` seed to be a non-negative int. Received: shuffle={shuffle}")
        return np.random.default_rng(int(shuffle))
    if isinstance(shuffle, np.random.Generator):
        return shuffle
    raise BatchkitTypeError(
        "Expected `shuffle` to be False, True, an int seed or a numpy.random.Generator. "
        f"Received: shuffle={shuffle!r} of type {type(shuffle).__name__}")


def shuffle_key(shuffle: Any) -> tuple:
    """A hashable key, equal for equal `shuffle` arguments: a numpy int seed equals the same int, a Generator itself."""
    if shuffle is None or isinstance(shuffle, (bool, np.bool_)):
        return ('flag', bool(shuffle))
    if isinstance(shuffle, (int, np.integer)):
        return ('seed', int(shuffle))
    return ('object', id(shuffle))


def _check_positive_int(name: str, value: Any, expected: str = 'a positive int') -> int:
    """`value` as an int (a Python or numpy int, not a bool) >= 1; `expected` words the error messages."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise BatchkitTypeError(
            f"Expected `{name}` to be {expected}. Received: {name}={value!r} of type {type(value).__name__}")
    if value < 1:
        raise BatchkitValueError(f"Expected `{name}` to be {expected}. Received: {name}={value}")
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    """`value` as a bool (a Python or numpy bool; not an int, a str or None)."""
    if not isinstance(value, (bool, np.bool_)):
        raise BatchkitTypeError(f"Expected `{name}` to be True or False. Received: {name}={value!r:.60} of type "
                                f"{type(value).__name__}")
    return bool(value)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


_REAL_TYPES = (int, float, np.integer, np.floating)


def _is_real(value: Any) -> bool:
    """True for a Python or numpy int or float, False for a bool (True is not a share of 1)."""
    return isinstance(value, _REAL_TYPES) and not isinstance(value, (bool, np.bool_))


class BatchPlan:
    """The sequence of batches of one run: validated arguments, the batch count and the positions.

    Iterating yields `(epoch, last_in_epoch, positions)` where `positions` index the items of the index
    the plan was made for. Batches never mix epochs: each epoch yields the same batch sizes.

    >>> [p.tolist() for _, _, p in BatchPlan(10, 3)]
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    """

    def __init__(self, size: int, batch_size: int, n_epochs: Any = DEFAULT, n_iters: int | None = None,
                 shuffle: Any = False, drop_last: bool = False) -> None:
        self.batch_size = _check_positive_int('batch_size', batch_size)
        _check_bool('drop_last', drop_last)
        if size == 0:
            raise BatchkitValueError("Expected a dataset with at least one item. Received: an empty index.")
        if n_iters is not None and n_epochs is not DEFAULT and n_epochs is not None:
            raise BatchkitValueError(
                "Expected either `n_epochs` or `n_iters`, not both. "
                f"Received: n_epochs={n_epochs}, n_iters={n_iters}. Pass only one of them.")
        if n_iters is None and n_epochs is None:
            raise BatchkitValueError(
                "Expected `n_epochs` or `n_iters` to be set. Received: n_epochs=None and n_iters=None, "
                "which would never stop. Pass n_epochs=1 (the default) or n_iters=N.")
        self.n_iters = None if n_iters is None else _check_positive_int('n_iters', n_iters)
        self.n_epochs = None if self.n_iters is not None else (
            1 if n_epochs is DEFAULT else _check_positive_int('n_epochs', n_epochs))
        if drop_last and self.batch_size > size:
            raise BatchkitValueError(
                f"Expected `batch_size` <= the dataset size ({size}) with drop_last=True. "
                f"Received: batch_size={batch_size}, which would yield no batch. Lower batch_size or set drop_last=False.")
        self.size = int(size)
        self.drop_last = bool(drop_last)
        self.rng = make_rng(shuffle)
        n_full, rest = divmod(self.size, self.batch_size)
        self.batches_per_epoch = n_full + (1 if rest and not self.drop_last else 0)

    @classmethod
    def forever(cls, size: int, batch_size: int, **kwargs: Any) -> 'BatchPlan':
        """A plan that cycles through epochs without end (for `next_batch`)."""
        plan = cls(size, batch_size, n_iters=1, **kwargs)
        plan.n_iters = None
        return plan

    def __len__(self) -> int:
        if self.n_iters is not None:
            return self.n_iters
        if self.n_epochs is None:
            raise BatchkitValueError("Expected a plan with an end. Received: a plan that cycles forever.")
        return self.n_epochs * self.batches_per_epoch

    def __iter__(self) -> Iterator[tuple[int, bool, np.ndarray]]:
        size, bs, rng = self.size, self.batch_size, self.rng
        stops = range(bs, bs * self.batches_per_epoch + 1, bs) if self.drop_last else None
        left = self.n_iters if self.n_iters is not None else (self.n_epochs or 0) * self.batches_per_epoch
        forever = self.n_iters is None and self.n_epochs is None
        ordered = np.arange(size)
        epoch = 0
        while forever or left > 0:
            order = ordered if rng is None else rng.permutation(size)
            last = self.batches_per_epoch - 1
            for i in range(self.batches_per_epoch):
                if not forever:
                    if left == 0:
                        return
                    left -= 1
                start = i * bs
                yield epoch, i == last, order[start:start + bs] if stops is None else order[start:stops[i]]
            epoch += 1


def next_plan(size: int, batch_size: int, n_epochs: Any = None, n_iters: int | None = None, shuffle: Any = False,
              drop_last: bool = False) -> BatchPlan:
    """The plan of `next_batch`: cycles forever unless `n_epochs` or `n_iters` is given (then it ends like a run)."""
    if n_epochs is None and n_iters is None:
        return BatchPlan.forever(size, batch_size, shuffle=shuffle, drop_last=drop_last)
    return BatchPlan(size, batch_size, n_epochs, n_iters, shuffle, drop_last)


class NextBatch:
    """The stored generator behind `next_batch` of an index, a dataset and a pipeline.

    The same key continues the stored generator; another key closes it and starts a new one. When a finite
    generator ends, StopIteration is raised and the next call starts over.
    """

    def __init__(self) -> None:
        self._key: Any = None
        self._batches: Iterator | None = None

    def next(self, key: Any, start: Any) -> Any:
        """The next item of the generator stored for `key`; `start()` makes one when there is none for it."""
        if self._batches is None or self._key != key:
            if self._batches is not None and hasattr(self._batches, 'close'):
                self._batches.close()
            self._key, self._batches = key, None
            self._batches = start()       # bad arguments raise here, leaving nothing stored
        try:
            return next(self._batches)
        except StopIteration:
            self._key, self._batches = None, None
            raise


class DatasetIndex:
    """The ids of a dataset's items, and where they sit in the root dataset's arrays.

    >>> DatasetIndex(5).indices
    array([0, 1, 2, 3, 4])
    """

    def __init__(self, index: Any) -> None:
        if isinstance(index, DatasetIndex):
            self._indices, self._root_pos, self._pos_of = index._indices, index._root_pos, None
            return
        self._indices = self._build_ids(index)
        self._root_pos: np.ndarray | None = None     # None: positions are 0..n-1 in the root data
        self._pos_of: dict | None = None

    @staticmethod
    def _build_ids(index: Any) -> np.ndarray:
        if isinstance(index, (bool, np.bool_)):
            raise BatchkitTypeError(f"Expected an int size or an array of ids. Received: {index!r}")
        if isinstance(index, (int, np.integer)):
            if index < 1:
                raise BatchkitValueError(f"Expected a positive dataset size (an empty index has no batch to give). "
                                         f"Received: {index}")
            return np.arange(int(index))
        if isinstance(index, (str, bytes)) or not isinstance(index, (Sequence, np.ndarray, range)):
            raise BatchkitTypeError(
                f"Expected an int size or a 1-D list/array of ids. Received: {type(index).__name__} {index!r:.80}")
        try:
            ids = np.asarray(index)
        except ValueError:            # numpy cannot make one array of nested lists of unequal lengths
            raise BatchkitValueError(
                f"Expected a 1-D list/array of ids. Received: a nested list of unequal lengths {index!r:.80}. "
                "Pass one id per item, e.g. [1, 2, 3] or ['a', 'b', 'c'].") from None
        if len(ids) == 0:
            raise BatchkitValueError("Expected at least one id. Received: an empty list of ids. "
                                     "An empty index has no batch to give; pass the ids of the dataset's items.")
        if ids.ndim != 1:
            raise BatchkitValueError(f"Expected a 1-D array of ids. Received: an array of shape {ids.shape}")
        try:
            values, counts = np.unique(ids, return_counts=True)
        except TypeError:             # an object array of ids that cannot be ordered: 1 and 'a', or None
            kinds = sorted({type(i).__name__ for i in ids.tolist()})
            raise BatchkitTypeError(
                f"Expected ids of one sortable type (all ints or all strs). Received: ids of types {kinds}, "
                f"e.g. {ids[:5].tolist()!r:.80}. Convert them to one type, e.g. [str(i) for i in ids].") from None
        if len(values) != len(ids):
            raise BatchkitValueError(
                f"Expected unique ids. Received: duplicates such as {values[counts > 1][:5].tolist()}")
        return ids

    @classmethod
    def _subset_of(cls, parent: 'DatasetIndex', positions: np.ndarray) -> 'DatasetIndex':
        """A subset of `parent` at `positions`, skipping validation (ids of a valid index are valid)."""
        sub = object.__new__(parent.__class__)      # the hot path: one per batch, so no copy.copy
        state = sub.__dict__
        state.update(parent.__dict__)
        state['_indices'] = parent._indices[positions]
        state['_root_pos'] = positions if parent._root_pos is None else parent._root_pos[positions]
        state['_pos_of'] = None
        state.pop('_next_batch', None)              # a subset has its own next_batch
        return sub

    def as_root(self) -> 'DatasetIndex':
        """This index as the root of new data: positions count from 0 in its own order."""
        if self._root_pos is None:
            return self
        root = copy.copy(self)
        root._root_pos = None
        return root

    @property
    def indices(self) -> np.ndarray:
        """The ids of the items, a numpy array."""
        return self._indices

    @property
    def root_positions(self) -> np.ndarray:
        """Positions of the items in the data of the root dataset (the one the arrays were given for)."""
        return np.arange(len(self._indices)) if self._root_pos is None else self._root_pos

    def __len__(self) -> int:
        return len(self._indices)

    def __iter__(self) -> Iterator:
        return iter(self._indices)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({len(self)} items: {self._indices[:5].tolist()}{"..." if len(self) > 5 else ""})'

    def _pos_map(self) -> dict:
        if self._pos_of is None:
            self._pos_of = {k: i for i, k in enumerate(self._indices.tolist())}
        return self._pos_of

    def get_pos(self, ids: Any) -> np.ndarray:
        """Positions (in this index) of the given ids."""
        self._pos_map()
        expected = "Expected an id or a 1-D list/array of ids of this index (hashable scalars: ints or strs)."
        try:
            flat = np.asarray(ids)
        except ValueError:            # nested lists of unequal lengths
            flat = None
        if flat is None or flat.ndim > 1:
            raise BatchkitTypeError(f"{expected} Received: a nested list/array {ids!r:.80}. "
                                    "Pass a flat list of ids, e.g. [1, 2].")
        single = flat.ndim == 0
        try:
            pos = [self._pos_of[i] for i in np.atleast_1d(flat).tolist()]
        except KeyError as e:
            raise BatchkitKeyError(f"Expected ids of this index. Received: unknown id {e.args[0]!r}") from None
        except TypeError:             # an unhashable id, such as a list or a dict inside an object array
            bad = next((i for i in np.atleast_1d(flat).tolist() if not _hashable(i)), ids)
            raise BatchkitTypeError(f"{expected} Received: an id {bad!r:.60} of type {type(bad).__name__}.") from None
        return np.asarray(pos[0] if single else pos)

    def create_subset(self, positions: Any) -> 'DatasetIndex':
        """A subset of this index: the items at `positions` (positions in this index, not ids)."""
        pos = np.asarray(positions)
        if pos.dtype == bool or not (pos.size == 0 or np.issubdtype(pos.dtype, np.integer)) or pos.ndim != 1:
            raise BatchkitTypeError(
                f"Expected `positions` to be a 1-D list/array of int positions in this index (0 to {len(self) - 1}). "
                f"Received: {positions!r:.80}. To select by id, use subset_by_ids(ids).")
        if pos.size and (pos.min() < -len(self) or pos.max() >= len(self)):
            raise BatchkitValueError(
                f"Expected positions from 0 to {len(self) - 1} (the index has {len(self)} items). "
                f"Received: {pos[(pos < -len(self)) | (pos >= len(self))][:5].tolist()}.")
        return self._subset_of(self, pos.astype(np.intp))

    def subset_by_ids(self, ids: Iterable) -> 'DatasetIndex':
        """A subset of this index: the items with the given ids."""
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable) or \
                isinstance(ids, np.ndarray) and ids.ndim == 0:
            raise BatchkitTypeError(
                f"Expected `ids` to be a list/array of ids of this index. Received: ids={ids!r:.80} of type "
                f"{type(ids).__name__}. For one item pass a list: subset_by_ids([{ids!r:.40}]).")
        return self.create_subset(self.get_pos(list(ids)))

    def split_positions(self, shares: Any = 0.8, shuffle: Any = False) -> list[np.ndarray]:
        """Positions of each part: the first share, then the next, and the rest after the last given share."""
        expected = "Expected `shares` to be a float or a list of 1-3 non-negative floats"
        if isinstance(shares, np.ndarray) and shares.ndim == 0:
            shares = shares[()]
        if _is_real(shares):
            shares = [shares]
        elif isinstance(shares, (list, tuple, np.ndarray)):
            shares = list(shares)
        else:
            raise BatchkitTypeError(f"{expected}, e.g. 0.8 or [0.7, 0.2]. Received: shares={shares!r:.80} of type "
                                    f"{type(shares).__name__}.")
        wrong = [s for s in shares if not _is_real(s)]
        if wrong:
            raise BatchkitTypeError(f"{expected}, e.g. 0.8 or [0.7, 0.2]. Received: shares={shares!r:.80} with "
                                    f"{wrong[0]!r:.40} of type {type(wrong[0]).__name__}.")
        shares = [float(s) for s in shares]     # numpy scalars too, so messages and arithmetic are plain floats
        if not 1 <= len(shares) <= 3 or any(not s >= 0 for s in shares):     # `not >=` also catches NaN
            raise BatchkitValueError(f"{expected}. Received: shares={shares!r}")
        # float32 shares that sum to 1 are off by ~1e-7 (0.3f + 0.2f + 0.5f = 1.0000000149): count them as 1
        tol = 1e-6
        total = sum(shares)
        if total > 1 + tol:
            raise BatchkitValueError(f"Expected `shares` to sum to <= 1. Received: {shares} (sum {total:.3f})")
        if len(shares) < 3 and total < 1 - tol:
            shares.append(1 - total)
        rng = make_rng(shuffle)
        n = len(self)
        order = np.arange(n) if rng is None else rng.permutation(n)
        bounds = np.round(np.cumsum([0, *shares]) * n).astype(int).clip(0, n)
        if sum(shares) >= 1 - tol:
            bounds[-1] = n                          # shares summing to 1 use every item
        sizes = np.diff(bounds).tolist()
        if 0 in sizes:
            raise BatchkitValueError(
                f"Expected every part of the split to hold at least one item. Received: shares={shares} of {n} "
                f"items, which give parts of sizes {sizes}. Use a larger dataset or shares that give each part an item.")
        return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def gen_batch(self, batch_size: int, n_epochs: Any = DEFAULT, n_iters: int | None = None, shuffle: Any = False,
                  drop_last: bool = False) -> Iterator['DatasetIndex']:
        """Yield index subsets, one a batch (see BatchPlan for the rules); bad arguments raise at the call."""
        plan = BatchPlan(len(self), batch_size, n_epochs, n_iters, shuffle, drop_last)
        return (self._subset_of(self, positions) for _, _, positions in plan)

    def next_batch(self, batch_size: int, shuffle: Any = False, n_epochs: Any = None, drop_last: bool = False,
                   n_iters: int | None = None) -> 'DatasetIndex':
        """The next index subset of a stored generator; cycles forever unless `n_epochs`/`n_iters` is given.

        The same rules as `Dataset.next_batch`: other arguments start a new generator; when a finite one ends,
        StopIteration is raised and the next call starts over.

        >>> ix = DatasetIndex(5)
        >>> ix.next_batch(2).indices, ix.next_batch(2).indices, ix.next_batch(2).indices, ix.next_batch(2).indices
        (array([0, 1]), array([2, 3]), array([4]), array([0, 1]))
        """
        stored = self.__dict__.get('_next_batch')
        if stored is None:
            stored = self.__dict__['_next_batch'] = NextBatch()
        key = (batch_size, shuffle_key(shuffle), n_epochs, drop_last, n_iters)

        def start() -> Iterator['DatasetIndex']:
            plan = next_plan(len(self), batch_size, n_epochs, n_iters, shuffle, drop_last)
            return (self._subset_of(self, positions) for _, _, positions in plan)
        return stored.next(key, start)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop('_next_batch', None)              # a generator does not travel (nor copy)
        return state


class FilesIndex(DatasetIndex):
    """An index of files found by glob patterns; ids are file names (without extension if `no_ext`).

    >>> fx = FilesIndex(path='data/*.npz', no_ext=True)   # doctest: +SKIP
    >>> fx.get_fullpath(fx.indices[0])                     # doctest: +SKIP
    'data/0001.npz'
    """

    def __init__(self, index: Any = None, *, path: str | Sequence[str] | None = None, no_ext: bool = False,
                 dirs: bool = False, sort: bool = True) -> None:
        if isinstance(index, FilesIndex):
            super().__init__(index)
            self._paths = index._paths
            return
        if path is None:
            raise BatchkitValueError("Expected `path`: a glob pattern or a list of them. Received: path=None")
        for flag, value in (('no_ext', no_ext), ('dirs', dirs), ('sort', sort)):
            _check_bool(flag, value)
        if isinstance(path, (str, os.PathLike)):
            patterns = [path]
        elif isinstance(path, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in path):
            patterns = list(path)
        else:
            raise BatchkitTypeError("Expected `path` to be a glob pattern (str or os.PathLike) or a list of them. "
                                    f"Received: path={path!r:.80} of type {type(path).__name__}.")
        if not patterns:
            raise BatchkitValueError("Expected `path` to hold at least one glob pattern. Received: path=[]. "
                                     "Pass a pattern such as 'data/*.npz'.")
        paths: dict[str, str] = {}
        for pattern in patterns:
            found = [p for p in glob.glob(os.fspath(pattern)) if os.path.isdir(p) == bool(dirs)]
            if not found:
                kind = 'directory' if dirs else 'file'
                raise BatchkitValueError(f"Expected the pattern {pattern!r} to match at least one {kind}. Received: no match.")
            for full in found:
                name = os.path.basename(os.path.normpath(full))
                key = os.path.splitext(name)[0] if no_ext else name
                if key in paths and paths[key] != full:
                    raise BatchkitValueError(
                        f"Expected unique file ids. Received: {key!r} from both {paths[key]!r} and {full!r}. "
                        "Use no_ext=False or patterns that do not overlap.")
                paths[key] = full
        ids = sorted(paths) if sort else list(paths)
        super().__init__(np.array(ids))
        self._paths = paths

    def __getstate__(self) -> dict:
        # A batch's index travels to worker processes: send the paths of its own files, not the whole dataset's.
        state = super().__getstate__()
        state['_paths'] = {key: self._paths[key] for key in map(str, self._indices.tolist())}
        state['_pos_of'] = None
        return state

    def get_fullpath(self, id_: Any) -> str:
        """The path of the file of item `id_`."""
        try:
            return self._paths[str(id_)]
        except KeyError:
            raise BatchkitKeyError(f"Expected an id of this FilesIndex. Received: {id_!r}") from None
