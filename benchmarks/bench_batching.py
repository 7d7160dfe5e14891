"""Benchmark: batchkit's batch generation against a hand-written numpy loop over the same shuffled order.

Builds a `Dataset.from_arrays(images=X, labels=y)` of float32 images and times, in the same run,

  (a) batchkit: ``for b in ds.gen_batch(128, n_epochs=1, shuffle=42): b.images; b.labels``
  (b) numpy:    ``perm = default_rng(42).permutation(n); for i in range(0, n, 128): X[perm[i:i+128]]; ...``

Each is repeated ``--repeats`` times, alternating, and the best time of each is reported. The target is
batchkit/numpy >= 0.8 (items/s). The exit code is 0 either way.

    python benchmarks/bench_batching.py                  # 100,000 x 784
    python benchmarks/bench_batching.py --n-items 10000 --repeats 3
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

from batchkit import Dataset

TARGET = 0.8


def run_batchkit(ds: Dataset, batch_size: int, seed: int) -> tuple[float, int]:
    n_batches = 0
    start = time.perf_counter()
    for b in ds.gen_batch(batch_size, n_epochs=1, shuffle=seed):
        b.images
        b.labels
        n_batches += 1
    return time.perf_counter() - start, n_batches


def run_numpy(X: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> tuple[float, int]:
    n = len(X)
    n_batches = 0
    start = time.perf_counter()
    perm = np.random.default_rng(seed).permutation(n)
    for i in range(0, n, batch_size):
        idx = perm[i:i + batch_size]
        X[idx]
        y[idx]
        n_batches += 1
    return time.perf_counter() - start, n_batches


def check_same_order(ds: Dataset, X: np.ndarray, batch_size: int, seed: int) -> None:
    """Both loops visit the same items in the same order (so the comparison is fair)."""
    perm = np.random.default_rng(seed).permutation(len(X))
    for k, b in enumerate(ds.gen_batch(batch_size, n_epochs=1, shuffle=seed)):
        expected = perm[k * batch_size:(k + 1) * batch_size]
        if not np.array_equal(b.indices, expected) or not np.array_equal(b.images, X[expected]):
            raise SystemExit(f'batch {k}: batchkit and numpy orders differ; the benchmark would be unfair')
        if k == 2:
            break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--n-items', type=int, default=100_000, help='dataset size (default 100000)')
    parser.add_argument('--n-features', type=int, default=784, help='features per item (default 784)')
    parser.add_argument('--batch-size', type=int, default=128, help='batch size (default 128)')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs of each loop (default 5)')
    parser.add_argument('--seed', type=int, default=42, help='shuffle seed (default 42)')
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.random((args.n_items, args.n_features), dtype=np.float32)
    y = rng.integers(0, 10, size=args.n_items)
    ds = Dataset.from_arrays(images=X, labels=y)
    check_same_order(ds, X, args.batch_size, args.seed)

    # one untimed warm-up of each, then alternate so both see the same machine state
    run_batchkit(ds, args.batch_size, args.seed)
    run_numpy(X, y, args.batch_size, args.seed)
    bk_times, np_times = [], []
    n_batches = 0
    for _ in range(args.repeats):
        t, n_batches = run_batchkit(ds, args.batch_size, args.seed)
        bk_times.append(t)
        t, _ = run_numpy(X, y, args.batch_size, args.seed)
        np_times.append(t)

    bk, npy = min(bk_times), min(np_times)
    n = args.n_items
    ratio = (n / bk) / (n / npy)
    print(f'batchkit batching benchmark: {n} x {args.n_features} float32, batch_size={args.batch_size}, '
          f'shuffle={args.seed}, {n_batches} batches, best of {args.repeats} (alternating)')
    print(f'python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}')
    print(f'  batchkit gen_batch : {n / bk:12,.0f} items/s  {bk / n_batches * 1e6:8.1f} us/batch  '
          f'(runs: {", ".join(f"{t:.3f}" for t in bk_times)} s)')
    print(f'  numpy loop         : {n / npy:12,.0f} items/s  {npy / n_batches * 1e6:8.1f} us/batch  '
          f'(runs: {", ".join(f"{t:.3f}" for t in np_times)} s)')
    print(f'  ratio batchkit/numpy = {ratio:.3f} (target >= {TARGET}) -> {"PASS" if ratio >= TARGET else "FAIL"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
