"""The pipeline, prefetch and loading workloads of benchmarks/compare.py, each side by side over the same data."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from batchkit import Dataset, FilesIndex
from _compare_common import (BATCH, N_CHECK, SEED, SIDE, ImagesBatch, Result, check_equal, check_light, drain, first,
                             flip_random_half, images, sort_twice, spans, tf_or_reason, time_sides,
                             torch_loader, torch_or_reason)

__all__ = ['SIDES', 'loading_workload', 'npy_files', 'pipeline_workload', 'prefetch_workload']

SIDES = ('batchkit', 'numpy', 'tf.data', 'torch', 'batchflow')


def pipeline_workload(n: int, repeats: int, sides=SIDES, bf=None) -> Result:
    X = images(n)
    p = Dataset.from_arrays(batch_class=ImagesBatch, images=X).p.scale().shift().flip_half()
    runs, result = {}, {}
    gen = lambda: p.gen_batch(BATCH, n_epochs=1, shuffle=False, seed=SEED)  # noqa: E731
    check_light('batchkit', X, [b.images for b in first(gen())])
    runs['batchkit'] = lambda: p.run(BATCH, n_epochs=1, shuffle=False, seed=SEED)

    def numpy_loop(seed: int = SEED):
        rng = np.random.default_rng(seed)
        for s in spans(n):
            yield flip_random_half(X[s] / 255 * 2 - 1, rng)
    check_light('numpy', X, first(numpy_loop()))
    runs['numpy'] = lambda: drain(numpy_loop())

    tf = tf_or_reason()
    if isinstance(tf, str):
        result['tf.data'] = tf
    else:
        def tf_ops(x):
            x = x / 255 * 2 - 1
            k = tf.shape(x)[0]
            chosen = tf.random.shuffle(tf.range(k))[:k // 2]
            mask = tf.scatter_nd(chosen[:, None], tf.ones_like(chosen, tf.bool), [k])
            x = tf.reshape(x, [-1, SIDE, SIDE])
            return tf.where(mask[:, None, None], tf.reverse(x, axis=[2]), x)
        tds = tf.data.Dataset.from_tensor_slices(X).batch(BATCH).map(tf_ops)
        check_light('tf.data', X, first(tds))
        runs['tf.data'] = lambda: drain(tds)

    torch = torch_or_reason()
    if isinstance(torch, str):
        result['torch'] = torch
    else:
        gen_t = torch.Generator().manual_seed(SEED)

        def torch_ops(x):
            x = torch.from_numpy(x) / 255 * 2 - 1
            chosen = torch.randperm(len(x), generator=gen_t)[:len(x) // 2]
            x = x.view(-1, SIDE, SIDE)
            x[chosen] = x[chosen].flip(2)
            return x
        loader = torch_loader(torch, X, torch_ops)
        check_light('torch', X, first(loader))
        runs['torch'] = lambda: drain(loader)
    result.update(time_sides({k: v for k, v in runs.items() if k in sides}, repeats))
    if 'batchflow' in sides:
        result['batchflow'] = bf.run('pipeline', X=X, repeats=repeats,
                                     check=lambda outs: check_light('batchflow', X, outs))
    return result


def prefetch_workload(n: int, repeats: int, sides=SIDES, bf=None) -> Result:
    X = images(n)
    ref = [sort_twice(X[s]) for s in spans(n)[:N_CHECK]]
    p = Dataset.from_arrays(batch_class=ImagesBatch, images=X).p.sort_twice()
    runs, result = {}, {}
    check_equal('prefetch', 'batchkit', ref, [b.images for b in first(p.gen_batch(BATCH, n_epochs=1, prefetch=2))])
    runs['batchkit'] = lambda: p.run(BATCH, n_epochs=1, prefetch=2)

    def numpy_loop():
        with ThreadPoolExecutor(2) as pool:     # the hand-written equivalent of two batches ahead
            yield from pool.map(lambda s: sort_twice(X[s]), spans(n))
    check_equal('prefetch', 'numpy', ref, first(numpy_loop()))
    runs['numpy'] = lambda: drain(numpy_loop())

    tf = tf_or_reason()
    if isinstance(tf, str):
        result['tf.data'] = tf
    else:
        def tf_sort(x):
            out = tf.numpy_function(sort_twice, [x], tf.float32, stateful=False)
            return tf.ensure_shape(out, x.shape)
        tds = tf.data.Dataset.from_tensor_slices(X).batch(BATCH).map(tf_sort, num_parallel_calls=2).prefetch(2)
        check_equal('prefetch', 'tf.data', ref, first(tds))
        runs['tf.data'] = lambda: drain(tds)

    torch = torch_or_reason()
    if isinstance(torch, str):
        result['torch'] = torch
    else:
        loader = torch_loader(torch, X, lambda x: torch.from_numpy(sort_twice(x)), workers=2)
        check_equal('prefetch', 'torch', ref, first(loader))
        runs['torch'] = lambda: drain(loader)
    result.update(time_sides({k: v for k, v in runs.items() if k in sides}, repeats))
    if 'batchflow' in sides:
        result['batchflow'] = bf.run('prefetch', X=X, repeats=repeats, prefetch=2,
                                     check=lambda outs: check_equal('prefetch', 'batchflow', ref, outs))
    return result


def npy_files(n: int, cache_dir: str) -> tuple[str, np.ndarray]:
    """A directory of `n` .npy files of 784 float32 (written once, reused), and the array they hold."""
    X = images(n)
    folder = os.path.join(cache_dir, f'npy-{n}')
    if not os.path.exists(os.path.join(folder, 'complete')):
        os.makedirs(folder, exist_ok=True)
        for i in range(n):
            np.save(os.path.join(folder, f'{i:06d}.npy'), X[i])
        open(os.path.join(folder, 'complete'), 'w').close()
    return folder, X


def loading_workload(n: int, repeats: int, cache_dir: str, sides=SIDES, bf=None) -> Result:
    folder, X = npy_files(n, cache_dir)
    paths = [os.path.join(folder, f'{i:06d}.npy') for i in range(n)]
    ref = [X[s] for s in spans(n)[:N_CHECK]]
    ds = Dataset(FilesIndex(path=os.path.join(folder, '*.npy'), no_ext=True), batch_class=ImagesBatch)
    p = ds.p.load(fmt='npy')
    runs, result = {}, {}
    check_equal('loading', 'batchkit', ref, [b.images for b in first(p.gen_batch(BATCH, n_epochs=1, prefetch=2))])
    runs['batchkit'] = lambda: p.run(BATCH, n_epochs=1, prefetch=2)

    def numpy_loop():
        for s in spans(n):
            yield np.stack([np.load(f) for f in paths[s]])
    check_equal('loading', 'numpy', ref, first(numpy_loop()))
    runs['numpy'] = lambda: drain(numpy_loop())

    tf = tf_or_reason()
    if isinstance(tf, str):
        result['tf.data'] = tf
    else:
        header = os.path.getsize(paths[0]) - X.shape[1] * 4     # .npy header bytes before the raw float32 data

        def tf_read(path):
            raw = tf.strings.substr(tf.io.read_file(path), header, X.shape[1] * 4)
            return tf.reshape(tf.io.decode_raw(raw, tf.float32), [X.shape[1]])
        tds = (tf.data.Dataset.from_tensor_slices(paths).map(tf_read, num_parallel_calls=2)
               .batch(BATCH).prefetch(2))
        check_equal('loading', 'tf.data', ref, first(tds))
        runs['tf.data'] = lambda: drain(tds)

    torch = torch_or_reason()
    if isinstance(torch, str):
        result['torch'] = torch
    else:
        from torch.utils.data import DataLoader
        loader = DataLoader(_Files(paths), batch_size=BATCH, num_workers=2)
        check_equal('loading', 'torch', ref, first(loader))
        runs['torch'] = lambda: drain(loader)
    result.update(time_sides({k: v for k, v in runs.items() if k in sides}, repeats))
    if 'batchflow' in sides:
        result['batchflow'] = bf.run('loading', dir=folder, repeats=repeats, prefetch=2,
                                     check=lambda outs: check_equal('loading', 'batchflow', ref, outs))
    return result


class _Files:
    """A torch Dataset of .npy files, one item per file (the usual way)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.load(self.paths[i])

