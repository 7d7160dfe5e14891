"""Benchmark: a batchkit pipeline against a hand-written numpy loop, and the per-action cost of chaining.

(1) Workload, on a ``Dataset.from_arrays(images=X)`` of N x 784 float32 (an ArrayBatch subclass), batch size 128,
    one epoch, shuffle off, three actions:

        x / 255,  then  x * 2 - 1,  then reverse a random half of the 28 x 28 images along their second axis
        (the half chosen with ``batch.random``)

    against the same work written as a numpy loop: the same gather (``X[positions]``) and the same ops, with one
    generator for the whole loop (batchkit makes one per batch, seeded by the run seed and the batch's position;
    that cost is part of what is measured). The two alternate ``--repeats`` times; the best of each is reported with the ratio
    numpy_time / batchkit_time (target >= 0.8).

(2) Overhead: the per-batch time of 0, 1, 5 and 20 chained no-op actions on a small dataset (128 * 2000
    items), and the marginal cost of one action per batch (target <= 5 us).

The exit code is 0 whatever the results (PASS/FAIL is printed).

    python benchmarks/bench_pipeline.py            # 100,000 x 784, 5 repeats
    python benchmarks/bench_pipeline.py --quick    # 20,000 items, 3 repeats, smaller overhead runs
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

from batchkit import ArrayBatch, Dataset, action
from batchkit.batch.base import batch_rng

RATIO_TARGET = 0.8
PER_ACTION_TARGET_US = 5.0
SEED = 7
SIDE = 28


class ImagesBatch(ArrayBatch):
    """The benchmark's batch class: a single component of flat 784-pixel images."""
    components = ('images',)

    @action
    def scale(self) -> 'ImagesBatch':
        self.images = self.images / 255
        return self

    @action
    def shift(self) -> 'ImagesBatch':
        self.images = self.images * 2 - 1
        return self

    @action
    def flip_half(self) -> 'ImagesBatch':
        self.images = flip_random_half(self.images, self.random)
        return self

    @action
    def noop(self) -> 'ImagesBatch':
        return self


def flip_random_half(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Reverse half of the images (chosen by `rng`) along the second axis of each 28 x 28 image, in place."""
    images = x.reshape(len(x), SIDE, SIDE)
    chosen = rng.choice(len(x), len(x) // 2, replace=False)
    images[chosen] = images[chosen, :, ::-1]
    return x


def run_batchkit(pipeline, batch_size: int) -> tuple[float, int]:
    start = time.perf_counter()
    pipeline.run(batch_size, n_epochs=1, shuffle=False, seed=SEED)
    return time.perf_counter() - start, -(-len(pipeline.dataset) // batch_size)


def run_numpy(X: np.ndarray, batch_size: int) -> tuple[float, int]:
    n_batches = 0
    start = time.perf_counter()
    order = np.arange(len(X))
    rng = np.random.default_rng(SEED)            # one generator for the loop: what a hand-written loop does
    for i in range(0, len(X), batch_size):
        x = X[order[i:i + batch_size]]
        x = x / 255
        x = x * 2 - 1
        x = flip_random_half(x, rng)
        n_batches += 1
    return time.perf_counter() - start, n_batches


def run_numpy_seeded(X: np.ndarray, batch_size: int) -> tuple[float, int]:
    """The numpy loop with batchkit's reproducibility: a generator per batch, seeded by (run seed, position)."""
    n_batches = 0
    start = time.perf_counter()
    order = np.arange(len(X))
    for pos, i in enumerate(range(0, len(X), batch_size)):
        x = X[order[i:i + batch_size]]
        x = x / 255
        x = x * 2 - 1
        x = flip_random_half(x, batch_rng(SEED, pos))
        n_batches += 1
    return time.perf_counter() - start, n_batches


def check_same_result(ds: Dataset, X: np.ndarray, batch_size: int) -> None:
    """Both sides compute the same thing (so the comparison is fair)."""
    p = ds.p.scale().shift().flip_half()
    for pos, batch in enumerate(p.gen_batch(batch_size, n_epochs=1, shuffle=False, seed=SEED)):
        x = X[np.arange(pos * batch_size, min((pos + 1) * batch_size, len(X)))]
        expected = flip_random_half(x / 255 * 2 - 1, batch_rng(SEED, pos))
        if not np.allclose(batch.images, expected):
            raise SystemExit(f'batch {pos}: batchkit and numpy results differ; the benchmark would be unfair')
        if pos == 2:
            break


def workload(n_items: int, batch_size: int, repeats: int) -> None:
    X = np.random.default_rng(0).random((n_items, SIDE * SIDE), dtype=np.float32)
    ds = Dataset.from_arrays(batch_class=ImagesBatch, images=X)
    check_same_result(ds, X, batch_size)
    pipeline = ds.p.scale().shift().flip_half()

    run_batchkit(pipeline, batch_size)          # warm-up, untimed
    run_numpy(X, batch_size)
    run_numpy_seeded(X, batch_size)
    bk_times, np_times, seeded_times = [], [], []
    n_batches = 0
    for _ in range(repeats):
        t, n_batches = run_batchkit(pipeline, batch_size)
        bk_times.append(t)
        t, _ = run_numpy(X, batch_size)
        np_times.append(t)
        t, _ = run_numpy_seeded(X, batch_size)
        seeded_times.append(t)
    bk, npy, seeded = min(bk_times), min(np_times), min(seeded_times)
    ratio = npy / bk
    print(f'(1) workload: {n_items} x {SIDE * SIDE} float32, batch_size={batch_size}, 1 epoch, shuffle off, '
          f'{n_batches} batches, best of {repeats} (alternating)')
    print(f'    batchkit pipeline : {bk / n_batches * 1e6:8.1f} us/batch  (runs: {", ".join(f"{t:.3f}" for t in bk_times)} s)')
    print(f'    numpy loop        : {npy / n_batches * 1e6:8.1f} us/batch  (runs: {", ".join(f"{t:.3f}" for t in np_times)} s)')
    print(f'    numpy loop, a generator per batch (batchkit\'s reproducibility) : {seeded / n_batches * 1e6:8.1f} us/batch  '
          f'(ratio to batchkit {seeded / bk:.3f}, for information)')
    print(f'    ratio numpy_time/batchkit_time = {ratio:.3f} (target >= {RATIO_TARGET}) -> '
          f'{"PASS" if ratio >= RATIO_TARGET else "FAIL"}')


# --- (2) per-action overhead ---------------------------------------------------------------------------------
def overhead(n_batches: int, repeats: int) -> None:
    batch_size = 128
    X = np.zeros((batch_size * n_batches, 1), dtype=np.float32)
    ds = Dataset.from_arrays(batch_class=ImagesBatch, images=X)
    counts = (0, 1, 5, 20)
    pipelines = {}
    for k in counts:
        p = ds.p
        for _ in range(k):
            p = p.noop()
        pipelines[k] = p
    best = {k: float('inf') for k in counts}
    for k in counts:                             # warm-up
        pipelines[k].run(batch_size, n_epochs=1)
    for _ in range(repeats):
        for k in counts:
            start = time.perf_counter()
            pipelines[k].run(batch_size, n_epochs=1)
            best[k] = min(best[k], time.perf_counter() - start)
    per_batch = {k: best[k] / n_batches * 1e6 for k in counts}
    slope = (per_batch[20] - per_batch[0]) / 20
    print(f'(2) overhead: {batch_size * n_batches} items, batch_size={batch_size}, {n_batches} batches, '
          f'best of {repeats}')
    for k in counts:
        print(f'    {k:2d} no-op actions : {per_batch[k]:8.2f} us/batch')
    print(f'    marginal cost = {slope:.2f} us per action per batch (target <= {PER_ACTION_TARGET_US}) -> '
          f'{"PASS" if slope <= PER_ACTION_TARGET_US else "FAIL"}')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='a smaller, faster run (20,000 items, 3 repeats)')
    parser.add_argument('--n-items', type=int, default=None, help='workload dataset size (default 100000)')
    parser.add_argument('--batch-size', type=int, default=128, help='workload batch size (default 128)')
    parser.add_argument('--repeats', type=int, default=None, help='timed runs of each side (default 5, quick 3)')
    args = parser.parse_args(argv)
    n_items = args.n_items or (20_000 if args.quick else 100_000)
    repeats = args.repeats or (3 if args.quick else 5)
    print(f'batchkit pipeline benchmark; python {platform.python_version()}, numpy {np.__version__}, '
          f'{platform.machine()}')
    workload(n_items, args.batch_size, repeats)
    overhead(500 if args.quick else 2000, repeats)
    return 0


if __name__ == '__main__':
    sys.exit(main())
