"""Benchmark: prefetch against no prefetch on this machine, measured side by side in one run.

  (1) numpy that releases the GIL: two np.sort of each 128 x 784 float32 batch, threads, prefetch=2 vs 0
      (target >= 1.7x);
  (2) pure-Python actions of about 30 ms per batch, target='processes', prefetch=2 vs 0 (target >= 1.6x);
  (2d) the same on a 2-worker Dask LocalCluster (worker processes, started before the timing), prefetch=2 with
      executor=client.get_executor() vs prefetch=0 (target >= 1.7x);
  (3) workload W: 100,000 x 784 float32, batch 128, three light numpy actions (x / 255, x * 2 - 1, reverse a
      random half of the images), prefetch=2 vs 0: must not be slower (>= 0.95x);
  (3s) W's actions in 40 runs of 30 batches each (as an evaluation pass run once per epoch, shorter than the
      threads' probe), prefetch=2 vs 0: must not be slower either (>= 0.95x);
  (4) memory: 2,000 .npz files of 784 x 128 float32 over a FilesIndex, load(fmt='npz'), batch size 8,
      prefetch=4: peak RSS above the RSS before the run must stay within 8 batches' bytes.

Each timing is the best of --repeats alternating runs. The exit code is 0 either way.

    python benchmarks/bench_prefetch.py           # full sizes
    python benchmarks/bench_prefetch.py --quick   # smaller sizes, a few seconds
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc

import numpy as np
import psutil

from batchkit import ArrayBatch, Dataset, FilesIndex, action

# Worker processes import the batch classes of this file by its module name.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class SortBatch(ArrayBatch):
    components = ('images',)

    @action
    def sort(self):
        self.images = np.sort(self.images, axis=1)
        return self

    @action
    def sort_columns(self):
        self.images = np.sort(self.images, axis=0)
        return self


class PyBatch(ArrayBatch):
    components = ('values',)

    @action
    def python_work(self, rounds: int = 400):
        self.out = python_rows(self.values, rounds)
        return self


def python_rows(values: np.ndarray, rounds: int) -> list:
    out = []
    for v in values.tolist():
        total = 0
        for k in range(rounds):
            total = (total + int(v) * k) % 1000003
        out.append(total)
    return out


class LightBatch(ArrayBatch):
    components = ('images', 'labels')

    @action
    def scale(self):
        self.images = self.images / 255.
        return self

    @action
    def center(self):
        self.images = self.images * 2 - 1
        return self

    @action
    def random_flip(self):
        flip = self.random.random(len(self)) < 0.5
        self.images[flip] = self.images[flip, ::-1]
        return self


def best_time(fn, repeats: int) -> float:
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def compare(name: str, make_run, repeats: int, target: float) -> float:
    """Alternate prefetch=0 and prefetch=2 runs; report the best time of each and their ratio, and return it."""
    t0, t2 = float('inf'), float('inf')
    make_run(0)(), make_run(2)()           # warm up (process pools start inside the timed run anyway)
    for _ in range(repeats):
        t0 = min(t0, best_time(make_run(0), 1))
        t2 = min(t2, best_time(make_run(2), 1))
    ratio = t0 / t2
    status = 'ok' if ratio >= target else 'MISSED'
    shown = math.floor(ratio * 100) / 100      # rounded down: 0.949 printed as 0.95 next to MISSED misled
    print(f'{name:<48} prefetch=0 {t0:7.3f} s   prefetch=2 {t2:7.3f} s   speed-up {shown:5.2f}x '
          f'(target >= {target}x) {status}', flush=True)
    return ratio


def bench_sort(n_items: int, repeats: int) -> None:
    X = np.random.default_rng(0).random((n_items, 784), dtype=np.float32)
    ds = Dataset(n_items, batch_class=SortBatch, preloaded={'images': X})
    p = ds.p.sort().sort_columns()

    def make_run(prefetch):
        return lambda: p.run(128, n_epochs=1, prefetch=prefetch)
    ratio = compare(f'(1) two np.sort of 128 x 784, {n_items} items, threads', make_run, repeats, 1.7)
    _sort_ceiling(X, repeats, ratio)


def _sort_ceiling(X: np.ndarray, repeats: int, ratio: float) -> None:
    """The same sorts without batchkit, in a loop and on 2 plain threads: what this machine allows right now."""
    from concurrent.futures import ThreadPoolExecutor
    blocks = [np.arange(i, min(i + 128, len(X))) for i in range(0, len(X), 128)]

    def work(block) -> None:
        np.sort(np.sort(X[block], axis=1), axis=0)       # nothing kept, as in the pipeline's run
    with ThreadPoolExecutor(2) as pool:
        t_loop = t_pool = float('inf')
        for _ in range(repeats):
            t_loop = min(t_loop, best_time(lambda: [work(b) for b in blocks], 1))
            t_pool = min(t_pool, best_time(lambda: list(pool.map(work, blocks)), 1))
    print(f'    the same sorts without batchkit: loop {t_loop:7.3f} s, 2 plain threads {t_pool:7.3f} s, '
          f'{t_loop / t_pool:5.2f}x (the ceiling of (1) on this machine now; (1) reached '
          f'{ratio * t_pool / t_loop:.2f} of it)', flush=True)


def _rounds_for(ms: float) -> int:
    """The `rounds` of python_work that take about `ms` per batch of 128 here."""
    values = np.arange(128)
    once = min(best_time(lambda: python_rows(values, 400), 1) for _ in range(5))     # the best of 5: noise only adds
    return max(1, int(400 * ms / 1000 / once))


def bench_python(n_batches: int, repeats: int) -> float:
    """Part (2); return the ceiling of (2) and (2d) measured after it."""
    n_items = 128 * n_batches
    ds = Dataset(n_items, batch_class=PyBatch, preloaded={'values': np.arange(n_items)})
    rounds = _rounds_for(30)
    p = ds.p.python_work(rounds=rounds)

    def make_run(prefetch):
        return lambda: p.run(128, n_epochs=1, prefetch=prefetch, target='processes')
    ratio = compare(f'(2) pure Python ~30 ms/batch, {n_batches} batches, processes', make_run, repeats, 1.6)
    return _python_ceiling(n_batches, rounds, repeats, ratio)


def _python_ceiling(n_batches: int, rounds: int, repeats: int, ratio: float) -> float:
    """The same work without batchkit (up to 200 batches), in a loop and on 2 processes started beforehand: what
    this machine allows right now."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    blocks = [np.arange(i * 128, (i + 1) * 128) for i in range(min(n_batches, 200))]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('spawn')) as pool:
        list(pool.map(python_rows, blocks[:4], [rounds] * 4))          # started and warm
        t_loop = t_pool = float('inf')
        for _ in range(repeats):
            t_loop = min(t_loop, best_time(lambda: [python_rows(b, rounds) for b in blocks], 1))
            t_pool = min(t_pool, best_time(lambda: list(pool.map(python_rows, blocks, [rounds] * len(blocks))), 1))
    print(f'    the same work without batchkit: loop {t_loop:7.3f} s, 2 processes {t_pool:7.3f} s, '
          f'{t_loop / t_pool:5.2f}x (the ceiling of (2) and (2d) on this machine now; (2) reached '
          f'{ratio * t_pool / t_loop:.2f} of it)', flush=True)
    return t_loop / t_pool


def bench_dask(n_batches: int, repeats: int, ceiling: float) -> None:
    import distributed
    n_items = 128 * n_batches
    ds = Dataset(n_items, batch_class=PyBatch, preloaded={'values': np.arange(n_items)})
    p = ds.p.python_work(rounds=_rounds_for(30))
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=':0')
    with cluster, distributed.Client(cluster) as client:
        def make_run(prefetch):
            if prefetch == 0:
                return lambda: p.run(128, n_epochs=1)
            return lambda: p.run(128, n_epochs=1, prefetch=prefetch, executor=client.get_executor())
        ratio = compare(f'(2d) pure Python ~30 ms/batch, {n_batches} batches, Dask 2 workers', make_run, repeats, 1.7)
    print(f'    (2d) reached {ratio / ceiling:.2f} of the ceiling measured after (2)', flush=True)


def bench_light(n_items: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_items, 784)).astype(np.float32)
    ds = Dataset(n_items, batch_class=LightBatch, preloaded={'images': images, 'labels': rng.integers(0, 10, n_items)})
    p = ds.p.scale().center().random_flip()

    def make_run(prefetch):
        return lambda: p.run(128, n_epochs=1, shuffle=1, prefetch=prefetch)
    compare(f'(3) W: light numpy, {n_items} x 784, threads', make_run, repeats, 0.95)


def bench_light_short(n_batches: int, n_runs: int, repeats: int) -> None:
    """W's actions in short runs, as an evaluation pass run once per epoch: runs shorter than the probe."""
    rng = np.random.default_rng(1)
    n_items = 128 * n_batches
    images = rng.integers(0, 256, size=(n_items, 784)).astype(np.float32)
    ds = Dataset(n_items, batch_class=LightBatch, preloaded={'images': images, 'labels': rng.integers(0, 10, n_items)})
    p = ds.p.scale().center().random_flip()

    def make_run(prefetch):
        return lambda: [p.run(128, n_epochs=1, shuffle=1, prefetch=prefetch) for _ in range(n_runs)]
    compare(f'(3s) W in {n_runs} runs of {n_batches} batches, threads', make_run, repeats, 0.95)


def _peak_above(run, measure) -> tuple[float, float]:
    """(peak of `measure()` above its value before `run()`, seconds), sampled every 2 ms in a thread."""
    before = measure()
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], measure())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        run()
    finally:
        stop.set()
        sampler.join()
    return peak[0] - before, time.perf_counter() - start


def bench_memory(n_files: int) -> None:
    tmp = tempfile.mkdtemp(prefix='batchkit-bench-')
    try:
        item = np.random.default_rng(0).random((784, 128), dtype=np.float32)
        for i in range(n_files):
            np.savez(os.path.join(tmp, f'{i:05d}.npz'), images=item)
        ds = Dataset(FilesIndex(path=os.path.join(tmp, '*.npz'), no_ext=True), batch_class=SortBatch)
        batch_bytes = 8 * item.nbytes
        n_batches = [0]

        def run() -> None:
            for batch in ds.p.load(fmt='npz').gen_batch(8, n_epochs=1, prefetch=4):
                assert batch.images.shape == (8, 784, 128)
                n_batches[0] += 1

        proc = psutil.Process()
        above, elapsed = _peak_above(run, lambda: proc.memory_info().rss)
        # A second run under tracemalloc: what batchkit keeps alive; RSS adds what the allocator keeps cached.
        tracemalloc.start()
        try:
            run()
            live = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        status = 'ok' if above <= 8 * batch_bytes else 'MISSED'
        print(f'(4) memory, {n_files} npz files, {n_batches[0] // 2} batches of 8, prefetch=4: peak RSS - RSS before = '
              f'{above / 2 ** 20:6.1f} MiB = {above / batch_bytes:4.1f} batches (target <= 8 batches = '
              f'{8 * batch_bytes / 2 ** 20:.1f} MiB) {status}; {n_batches[0] // 2 * 8 / elapsed:,.0f} items/s\n'
              f'    allocated and alive at the peak (tracemalloc, a second run): {live / batch_bytes:4.1f} batches',
              flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='smaller sizes')
    parser.add_argument('--repeats', type=int, default=None)
    parser.add_argument('--skip-memory', action='store_true', help='leave out part (4)')
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 3)
    print(f'python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs', flush=True)
    if not args.skip_memory:
        bench_memory(400 if args.quick else 2_000)      # first: before the other parts churn the allocator
    bench_sort(20_000 if args.quick else 100_000, repeats)
    bench_light(20_000 if args.quick else 100_000, repeats)
    bench_light_short(30, 10 if args.quick else 40, repeats)
    ceiling = bench_python(40 if args.quick else 782, repeats)      # 782 batches of 128: 100,000 items
    bench_dask(40 if args.quick else 782, repeats, ceiling)


if __name__ == '__main__':
    main()
