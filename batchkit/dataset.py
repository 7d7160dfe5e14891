"""Dataset: an index, a batch class and preloaded data; splits and batch generation."""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import BatchkitTypeError, BatchkitValueError
from .index import DEFAULT, BatchPlan, DatasetIndex, NextBatch, next_plan, shuffle_key

if TYPE_CHECKING:
    from .batch.base import Batch
    from .pipeline.pipeline import Pipeline

__all__ = ['Dataset']

_CV_NAME = re.compile(r'cv\d+')      # the attributes cv_split sets: cv0, cv1, ...


class Dataset:
    """Items to be processed in batches of `batch_class`.

    Args:
        index: an int size, an array of ids, or a DatasetIndex / FilesIndex.
        batch_class: the Batch subclass every batch is made of.
        preloaded: data for all items (e.g. {'images': X, 'labels': y}), cut to each batch by the batch class.

    >>> ds = Dataset.from_arrays(images=np.zeros((10, 4)), labels=np.arange(10))
    >>> [len(b) for b in ds.gen_batch(3)]
    [3, 3, 3, 1]
    """

    def __init__(self, index: Any, batch_class: type | None = None, preloaded: Any = None, **kwargs: Any) -> None:
        from .batch.base import Batch

        batch_class = Batch if batch_class is None else batch_class
        if not (isinstance(batch_class, type) and issubclass(batch_class, Batch)):
            raise BatchkitTypeError(f"Expected `batch_class` to be a Batch subclass. Received: {batch_class!r}")
        self.index = index.as_root() if isinstance(index, DatasetIndex) else DatasetIndex(index)
        self.batch_class = batch_class
        preloaded = _normalize_preloaded(preloaded, batch_class)
        if isinstance(preloaded, dict) and preloaded and not set(preloaded) & set(batch_class.components or ()):
            ids = self.index._pos_map()
            if all(isinstance(k, (int, str, np.integer)) and k in ids for k in preloaded):
                raise BatchkitValueError(
                    "Expected `preloaded` keyed by component name, each value holding one row per item, e.g. "
                    f"{{'images': X}}. Received: a dict keyed by item ids {list(preloaded)[:5]}. Stack the rows: "
                    "{'name': np.stack([d[i] for i in ids])}.")
        if isinstance(preloaded, dict) and batch_class.components is not None:
            _check_preloaded_keys(preloaded, batch_class)
        self.preloaded = preloaded
        if preloaded is not None:
            batch_class.check_preloaded(preloaded, len(self.index))
        self.kwargs = kwargs
        self.train: Dataset | None = None
        self.test: Dataset | None = None
        self.validation: Dataset | None = None
        self._next_batch: NextBatch | None = None

    @classmethod
    def from_arrays(cls, batch_class: type | None = None, **arrays: Any) -> 'Dataset':
        """A dataset whose batches carry the given arrays as components (ArrayBatch unless `batch_class`)."""
        from .batch.array import ArrayBatch

        if not arrays:
            raise BatchkitValueError("Expected at least one array, e.g. from_arrays(images=X). Received: none.")
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        scalars = {k: v.item() for k, v in arrays.items() if v.ndim == 0}
        if scalars:
            raise BatchkitTypeError(
                f"Expected each array to hold one row per item (an array or a list). Received: scalars "
                f"{', '.join(f'{k}={v!r:.40}' for k, v in scalars.items())}. Pass e.g. {next(iter(scalars))}=[...], "
                "or np.full(n, value) for the same value on every item.")
        sizes = {k: len(v) for k, v in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise BatchkitValueError(f"Expected arrays of the same length. Received lengths {sizes}")
        return cls(next(iter(sizes.values())), batch_class=batch_class or ArrayBatch, preloaded=arrays)

    # --- structure -----------------------------------------------------------------------------------------
    @property
    def indices(self) -> np.ndarray:
        """The ids of the dataset's items, a numpy array."""
        return self.index.indices

    @property
    def size(self) -> int:
        """The number of items (also `len(dataset)`)."""
        return len(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({len(self)} items, batch_class={self.batch_class.__name__})'

    def create_subset(self, index: DatasetIndex) -> 'Dataset':
        """A dataset over the items of `index` (ids of this dataset) sharing the batch class and the preloaded data.

        Items are found by id, so `create_subset(DatasetIndex(['c']))` holds the row of item 'c'.
        """
        if not isinstance(index, DatasetIndex):
            raise BatchkitTypeError(f"Expected `index` to be a DatasetIndex of ids of this dataset. "
                                    f"Received: {type(index).__name__} {index!r:.80}. Wrap ids as DatasetIndex(ids).")
        missing = [i for i in index.indices.tolist() if i not in self.index._pos_map()]
        if missing:
            raise BatchkitValueError(f"Expected ids of this dataset's items. Received: ids {missing[:5]} "
                                     f"({len(missing)} in all) that it does not have.")
        return self._subset(self.index.subset_by_ids(index.indices))

    def _subset(self, index: DatasetIndex) -> 'Dataset':
        sub = type(self).__new__(type(self))
        sub.__dict__.update(self.__dict__)
        sub.index = index
        sub.train = sub.test = sub.validation = None
        sub._next_batch = None
        for name in [n for n in sub.__dict__ if _CV_NAME.fullmatch(n)]:
            del sub.__dict__[name]          # the folds of the whole dataset hold items outside this subset
        return sub

    def split(self, shares: Any = 0.8, shuffle: Any = False) -> None:
        """Set `train`, `test` (and `validation`): the first share, the next, then the rest.

        >>> ds = Dataset(10); ds.split(0.8)
        >>> len(ds.train), len(ds.test)
        (8, 2)
        """
        parts = [self._subset(self.index.create_subset(p)) for p in self.index.split_positions(shares, shuffle)]
        self.train, self.test = parts[0], parts[1] if len(parts) > 1 else None
        self.validation = parts[2] if len(parts) > 2 else None

    def cv_split(self, n_splits: int = 5, shuffle: Any = False) -> None:
        """Set `cv0` ... `cv{n_splits-1}`, each with `train` and `test` (fold k is the test set of cv k)."""
        expected = f"Expected `n_splits` to be an int from 2 to the dataset size ({len(self)})."
        if isinstance(n_splits, (bool, np.bool_)) or not isinstance(n_splits, (int, np.integer)):
            raise BatchkitTypeError(f"{expected} Received: {n_splits!r} of type {type(n_splits).__name__}")
        if not 2 <= n_splits <= len(self):
            raise BatchkitValueError(f"{expected} Received: {n_splits!r}")
        from .index import make_rng

        n_splits = int(n_splits)
        rng = make_rng(shuffle)
        order = np.arange(len(self)) if rng is None else rng.permutation(len(self))
        folds = np.array_split(order, n_splits)
        for name in [name for name in self.__dict__ if _CV_NAME.fullmatch(name)]:
            del self.__dict__[name]             # folds of an earlier cv_split
        for k in range(n_splits):
            fold = self._subset(self.index)
            fold.train = self._subset(self.index.create_subset(np.concatenate(folds[:k] + folds[k + 1:])))
            fold.test = self._subset(self.index.create_subset(folds[k]))
            setattr(self, f'cv{k}', fold)

    # --- batches -------------------------------------------------------------------------------------------
    def create_batch(self, index: DatasetIndex, **kwargs: Any) -> 'Batch':
        """A batch of this dataset's batch class over `index` (a subset of this dataset's index)."""
        return self.batch_class(index, preloaded=self.preloaded, dataset=self, **kwargs)

    def gen_batch(self, batch_size: int, n_epochs: Any = DEFAULT, n_iters: int | None = None, shuffle: Any = False,
                  drop_last: bool = False) -> Iterator['Batch']:
        """Yield batches; `n_epochs=1` unless `n_iters` is given (see BatchPlan for the rules)."""
        plan = BatchPlan(len(self), batch_size, n_epochs, n_iters, shuffle, drop_last)
        return self._gen_from_plan(plan)

    def _gen_from_plan(self, plan: BatchPlan) -> Iterator['Batch']:
        subset = DatasetIndex._subset_of
        for _, _, positions in plan:
            yield self.batch_class(subset(self.index, positions), preloaded=self.preloaded, dataset=self)

    def next_batch(self, batch_size: int, shuffle: Any = False, n_epochs: Any = None, drop_last: bool = False,
                   n_iters: int | None = None) -> 'Batch':
        """The next batch of a stored generator; cycles forever unless `n_epochs`/`n_iters` is given.

        Calling it with other arguments starts a new generator. When a finite one ends, StopIteration is raised.
        """
        key = (batch_size, shuffle_key(shuffle), n_epochs, drop_last, n_iters)
        if self._next_batch is None:
            self._next_batch = NextBatch()
        return self._next_batch.next(key, lambda: self._gen_from_plan(
            next_plan(len(self), batch_size, n_epochs, n_iters, shuffle, drop_last)))

    # --- pipelines -----------------------------------------------------------------------------------------
    @property
    def p(self) -> 'Pipeline':
        """A new empty pipeline over this dataset."""
        return self.pipeline()

    def pipeline(self, config: dict | None = None) -> 'Pipeline':
        """A new empty pipeline over this dataset, with `config` (`dataset.p` is `dataset.pipeline()`)."""
        from .pipeline.pipeline import Pipeline

        return Pipeline(dataset=self, config=config)


def _check_preloaded_keys(preloaded: dict, batch_class: type) -> None:
    """Raise if `preloaded` has keys that are not components of `batch_class` (no batch would ever read them)."""
    components = tuple(batch_class.components)
    unknown = [k for k in preloaded if k not in components]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), components, n=1) if isinstance(key, str) else []
        if close:
            hints.append(f'{close[0]!r} for {key!r}')
    fix = f" Did you mean {', '.join(hints)}?" if hints else \
        f" Rename the keys to components, or add them to {batch_class.__name__}.components."
    raise BatchkitValueError(
        f"Expected `preloaded` keys to be components of {batch_class.__name__}: {components}. "
        f"Received: unknown key(s) {unknown!r:.120}.{fix}")


def _normalize_preloaded(preloaded: Any, batch_class: type) -> Any:
    """`preloaded` as a dict or tuple of whole-dataset data: a DataFrame by column, a bare array for one component."""
    if preloaded is None or isinstance(preloaded, (dict, tuple, list)) or hasattr(preloaded, 'keys') and \
            hasattr(preloaded, '__getitem__') and not type(preloaded).__module__.startswith('pandas'):
        return preloaded
    # pandas is never imported here: a DataFrame is recognized by its module and its columns
    if type(preloaded).__module__.startswith('pandas') and hasattr(preloaded, 'columns'):
        return {str(c): preloaded[c].to_numpy() for c in preloaded.columns}
    components = batch_class.components
    if isinstance(preloaded, np.ndarray):
        if components is not None and len(components) == 1:
            return {components[0]: preloaded}
        raise BatchkitValueError(
            f"Expected a bare array as `preloaded` only for a batch class with one component. Received: an array "
            f"for {batch_class.__name__} with components {components}. Pass a dict such as {{'images': X}}.")
    raise BatchkitTypeError(
        "Expected `preloaded` to be a dict of arrays, a tuple of arrays (one per component), a pandas DataFrame "
        f"or an array (for a one-component class). Received: {type(preloaded).__name__} {preloaded!r:.60}")
