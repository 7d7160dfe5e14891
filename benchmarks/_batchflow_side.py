"""The BatchFlow side of benchmarks/compare.py, run by BatchFlow's own interpreter; prints its timings as JSON.

Run as ``python _batchflow_side.py <workload> --json '{...}'`` by compare.py, in the virtual environment where
compare.py installed ``batchflow`` (0.10) and pandas. It imports neither batchkit nor compare.py: the workloads are
written again here the BatchFlow way, and compare.py checks the first batches this side writes to ``--check``
(an .npz) against its own reference, so a difference between the two definitions shows up as a failed check.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

__all__ = ['main']

SIDE = 28
N_CHECK = 3


def flip_random_half(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    images = x.reshape(len(x), SIDE, SIDE)
    chosen = rng.choice(len(x), len(x) // 2, replace=False)
    images[chosen] = images[chosen, :, ::-1]
    return x


def _batch_classes():
    from batchflow import Batch, action

    class LightBatch(Batch):
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
            self.images = np.sort(np.sort(self.images, axis=1), axis=0)
            return self

        @action
        def load_npy(self):
            self.images = np.stack([np.load(self.index.get_fullpath(ix)) for ix in self.indices])
            return self

        @action
        def train_step(self, model, y):
            model.train_on_batch(self.images, y[self.indices])
            return self

    return LightBatch


def _timed(make_pipeline, batch_size: int, repeats: int, prefetch: int, check: str | None) -> dict:
    """Warm up, save the first batches for compare.py's check, then the best of `repeats` one-epoch runs."""
    kw = {'n_epochs': 1, 'shuffle': False, 'drop_last': False, 'prefetch': prefetch}
    if check:
        # Without prefetch (the same computation): a prefetching generator stopped early, by a break or by
        # n_iters, can leave BatchFlow's producer thread blocked on its full queue, and the process never exits.
        first = [np.asarray(batch.images) for batch in
                 make_pipeline().gen_batch(batch_size, **dict(kw, n_epochs=None, prefetch=0), n_iters=N_CHECK)]
        np.savez(check, *first)
    times = []
    make_pipeline().run(batch_size, **kw)                 # warm-up, untimed
    for _ in range(repeats):
        pipeline = make_pipeline()
        start = time.perf_counter()
        pipeline.run(batch_size, **kw)
        times.append(time.perf_counter() - start)
    return {'best': min(times), 'times': times}


def run(workload: str, cfg: dict) -> dict:
    from batchflow import Dataset, FilesIndex

    LightBatch = _batch_classes()
    batch_size, repeats, check = cfg['batch_size'], cfg['repeats'], cfg.get('check')
    if workload in ('pipeline', 'prefetch'):
        X = np.load(cfg['data'])
        ds = Dataset(len(X), batch_class=LightBatch, preloaded=(X,))
        if workload == 'pipeline':
            return _timed(lambda: ds.p.scale().shift().flip_half(), batch_size, repeats, 0, check)
        return _timed(lambda: ds.p.sort_twice(), batch_size, repeats, cfg['prefetch'], check)
    if workload == 'loading':
        index = FilesIndex(path=os.path.join(cfg['dir'], '*.npy'), no_ext=True, sort=True)
        ds = Dataset(index, batch_class=LightBatch)
        return _timed(lambda: ds.p.load_npy(), batch_size, repeats, cfg['prefetch'], check)
    if workload == 'training':
        # Keras and TensorFlow come from the main environment (same numpy), appended after BatchFlow's own packages.
        sys.path.append(cfg['site_packages'])
        import keras
        X, y = np.load(cfg['data']), np.load(cfg['labels'])
        model = keras.saving.load_model(cfg['model'])
        ds = Dataset(len(X), batch_class=LightBatch, preloaded=(X,))
        if check:   # a fresh copy of the initial model, three steps: compare.py compares the weights
            fresh = keras.saving.load_model(cfg['model'])
            ds.p.train_step(fresh, y).run(batch_size, n_iters=N_CHECK, shuffle=False)
            np.savez(check, *fresh.get_weights())
        # prefetch=0: BatchFlow's prefetch runs actions in threads, and unlocked train_on_batch loses steps
        return _timed(lambda: ds.p.train_step(model, y), batch_size, repeats, 0, None)
    raise SystemExit(f'unknown workload {workload!r}')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('workload', choices=('pipeline', 'prefetch', 'loading', 'training'))
    parser.add_argument('--json', required=True, help='the workload configuration')
    args = parser.parse_args(argv)
    import batchflow
    result = run(args.workload, json.loads(args.json))
    result['version'] = batchflow.__version__
    print('RESULT ' + json.dumps(result), flush=True)
    sys.stderr.flush()
    # BatchFlow 0.10's prefetch can leave a non-daemon producer thread blocked on its queue after a run, which
    # keeps the interpreter from exiting: the results are out, so leave without waiting for it.
    os._exit(0)


if __name__ == '__main__':
    sys.exit(main())
