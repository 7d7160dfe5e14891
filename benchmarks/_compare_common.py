"""Helpers shared by the workloads of benchmarks/compare.py: data, batch classes, same-result checks, timing."""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from batchkit import ArrayBatch, action
from bench_pipeline import flip_random_half   # the workload bench_pipeline.py measures

__all__ = ['BATCH', 'CheckError', 'ImagesBatch', 'N_CHECK', 'Result', 'SEED', 'SIDE', 'check_equal', 'check_light',
           'drain', 'first', 'flip_random_half', 'images', 'sort_twice', 'spans', 'tf_or_reason',
           'time_sides', 'torch_loader', 'torch_or_reason']

SIDE, BATCH, SEED, N_CHECK = 28, 128, 7, 3
Result = dict  # side -> seconds (float) or the reason it did not run (str)


class CheckError(AssertionError):
    """A side computes something else than the reference: its timing would not be comparable."""


class ImagesBatch(ArrayBatch):
    components = ('images',)

    @action
    def scale(self):
        self.images = self.images / 255
        return self

    @action
    def shift(self):
        self.images = self.images * 2 - 1
        return self

    @action
    def flip_half(self):
        self.images = flip_random_half(self.images, self.random)
        return self

    @action
    def sort_twice(self):
        self.images = sort_twice(self.images)
        return self


def sort_twice(x: np.ndarray) -> np.ndarray:
    return np.sort(np.sort(x, axis=1), axis=0)


def images(n: int) -> np.ndarray:
    return np.random.default_rng(0).random((n, SIDE * SIDE), dtype=np.float32)


def spans(n: int) -> list[slice]:
    return [slice(i, min(i + BATCH, n)) for i in range(0, n, BATCH)]


def _np(x: Any) -> np.ndarray:
    return x.numpy() if hasattr(x, 'numpy') else np.asarray(x)


# --- the same-result checks ----------------------------------------------------------------------------------
def check_light(side: str, X: np.ndarray, outs: list) -> None:
    """Each image is x / 255 * 2 - 1, reversed along its second axis for exactly half of each batch."""
    for pos, out in enumerate(outs):
        out = _np(out).reshape(-1, SIDE, SIDE)
        ref = (X[spans(len(X))[pos]] / 255 * 2 - 1).reshape(-1, SIDE, SIDE)
        same = np.isclose(out, ref, atol=1e-6).all(axis=(1, 2))
        flipped = np.isclose(out, ref[:, :, ::-1], atol=1e-6).all(axis=(1, 2))
        if out.shape != ref.shape or not (same | flipped).all() or flipped.sum() != len(ref) // 2:
            raise CheckError(f'pipeline: {side} batch {pos} is not the reference (x/255*2-1, half reversed)')


def check_equal(workload: str, side: str, ref: list, outs: list, atol: float = 0.0) -> None:
    if len(outs) != len(ref) or not all(np.allclose(_np(o), r, atol=atol, rtol=0) for o, r in zip(outs, ref)):
        raise CheckError(f'{workload}: the first batches of {side} differ from the reference')


def first(iterable, n: int = N_CHECK) -> list:
    out = []
    for item in iterable:
        out.append(item)
        if len(out) == n:
            break
    return out


# --- timing --------------------------------------------------------------------------------------------------
def time_sides(runs: dict[str, Callable[[], None]], repeats: int) -> Result:
    """Warm each side up, then alternate them `repeats` times; the best time of each (or why it failed)."""
    best: Result = {}
    for side, fn in runs.items():
        try:
            fn()
            best[side] = float('inf')
        except Exception as exc:  # noqa: BLE001 - a peer that fails is reported, not fatal
            best[side] = f'failed: {type(exc).__name__}: {exc}'[:120]
    for _ in range(repeats):
        for side, fn in runs.items():
            if isinstance(best[side], float):
                start = time.perf_counter()
                fn()
                best[side] = min(best[side], time.perf_counter() - start)
    return best


def drain(iterable) -> None:
    for _ in iterable:
        pass


def torch_or_reason() -> Any:
    try:
        import torch
        # One intra-op thread, as DataLoader workers use: torch's OpenMP pool on 128 x 784 elementwise ops only
        # contends with the other sides (and spins badly when the cores are busy).
        torch.set_num_threads(1)
        return torch
    except ImportError as exc:
        return f'torch not installed ({exc})'


def tf_or_reason() -> Any:
    try:
        import tensorflow as tf
        return tf
    except ImportError as exc:
        return f'tensorflow not installed ({exc})'


class _Rows:
    """A torch Dataset over whole batches: `dataset[list_of_positions]` (used with a BatchSampler)."""

    def __init__(self, X: np.ndarray, fn: Callable[[np.ndarray], Any]) -> None:
        self.X, self.fn = X, fn

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, positions: list[int]) -> Any:
        return self.fn(self.X[positions])


def torch_loader(torch: Any, X: np.ndarray, fn: Callable, workers: int = 0) -> Any:
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler
    sampler = BatchSampler(SequentialSampler(range(len(X))), BATCH, drop_last=False)
    return DataLoader(_Rows(X, fn), batch_size=None, sampler=sampler, num_workers=workers)


