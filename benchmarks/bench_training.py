"""Benchmark: Keras training through batchkit against a plain train_on_batch loop and model.fit on tf.data.

An MLP 784-128-10 trains one epoch of N x 784 synthetic float32 (N = 100,000), batch 128, in one run,
alternating the variants:
  (a) a plain Keras `train_on_batch` loop over the same batches;
  (b) batchkit: `train_model` of a `KerasModel` in a pipeline with prefetch=2;
  (c) `model.fit` on a `tf.data` pipeline (prefetch AUTOTUNE);
each without and with the three-step preprocessing done per batch (x / 255, x * 2 - 1, flip a random half of
the 28 x 28 images): numpy in (a) and (b), TensorFlow ops in a `map` in (c).
Targets, printed as ratios (speed = 1 / time): batchkit >= 0.95 of the plain loop without preprocessing, and faster
than the plain loop and than fit on tf.data with it (prefetch hides the preprocessing behind the training step).
The per-batch framework overhead of a batchkit train step against a bare `train_on_batch` is printed in us.
Each timing is the best of --repeats alternating runs; every model starts from the same seeded weights and its
train function is traced before the clock starts. The exit code is 0 either way.

    python benchmarks/bench_training.py           # full size (a few minutes on 2 cores)
    python benchmarks/bench_training.py --quick   # 10,000 items, one repeat
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import keras
import tensorflow as tf
from batchkit import ArrayBatch, B, Dataset, action
from batchkit.models import KerasModel

SIDE, N_CLASSES, BATCH = 28, 10, 128


class ImageBatch(ArrayBatch):
    components = ('images', 'labels')

    @action
    def scale(self):
        self.images = self.images / np.float32(255)
        return self

    @action
    def shift(self):
        self.images = self.images * np.float32(2) - np.float32(1)
        return self

    @action
    def flip_half(self):
        self.images = flip_random_half(self.images, np.random.default_rng(self.indices[0]))
        return self


def flip_random_half(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    images = x.reshape(len(x), SIDE, SIDE)
    chosen = rng.choice(len(x), len(x) // 2, replace=False)
    images[chosen] = images[chosen, :, ::-1]
    return images.reshape(len(x), SIDE * SIDE)


def preprocess(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return flip_random_half(x / np.float32(255) * np.float32(2) - np.float32(1), rng)


def tf_preprocess(x: tf.Tensor, y: tf.Tensor) -> tuple:
    x = x / 255.0 * 2.0 - 1.0
    images = tf.reshape(x, (-1, SIDE, SIDE))
    flip = tf.random.uniform((tf.shape(images)[0], 1, 1)) < 0.5
    return tf.reshape(tf.where(flip, tf.reverse(images, axis=[2]), images), (-1, SIDE * SIDE)), y


def mlp() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((SIDE * SIDE,)), keras.layers.Dense(128, activation='relu'),
                              keras.layers.Dense(N_CLASSES)])
    model.compile(optimizer='adam', loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def plain(x: np.ndarray, y: np.ndarray, prep: bool) -> float:
    model = mlp()
    model.train_on_batch(x[:BATCH], y[:BATCH])
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for i in range(0, len(x) - BATCH + 1, BATCH):
        xb = x[i:i + BATCH]
        model.train_on_batch(preprocess(xb, rng) if prep else xb, y[i:i + BATCH])
    return time.perf_counter() - start


def batchkit_run(x: np.ndarray, y: np.ndarray, prep: bool) -> float:
    ds = Dataset(len(x), batch_class=ImageBatch, preloaded={'images': x, 'labels': y})
    p = ds.p.init_model('net', KerasModel, 'static', {'model': mlp()})
    p.get_model_by_name('net').train(x[:BATCH], y[:BATCH])
    if prep:
        p = p.scale().shift().flip_half()
    p = p.train_model('net', B('images'), B('labels'))
    start = time.perf_counter()
    p.run(BATCH, n_epochs=1, drop_last=True, prefetch=2)
    return time.perf_counter() - start


def fit_run(x: np.ndarray, y: np.ndarray, prep: bool) -> float:
    model = mlp()
    model.train_on_batch(x[:BATCH], y[:BATCH])
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH, drop_remainder=True)
    if prep:
        data = data.map(tf_preprocess, num_parallel_calls=tf.data.AUTOTUNE)
    data = data.prefetch(tf.data.AUTOTUNE)
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='10,000 items, one repeat')
    parser.add_argument('--repeats', type=int, default=None)
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    repeats = args.repeats or (1 if args.quick else 2)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(n, SIDE * SIDE)).astype('float32')
    y = rng.integers(0, N_CLASSES, size=n)
    variants = {(name, prep): fn for name, fn in (('plain', plain), ('batchkit', batchkit_run), ('fit', fit_run))
                for prep in (False, True)}
    best = {key: float('inf') for key in variants}
    for _ in range(repeats):
        for key, fn in variants.items():
            best[key] = min(best[key], fn(x, y, key[1]))
    n_batches = n // BATCH
    print(f"{n} x {SIDE * SIDE} float32, batch {BATCH}, {n_batches} batches, best of {repeats}")
    for (name, prep), seconds in best.items():
        print(f"  {name:9s} {'with' if prep else 'without':7s} preprocessing: {seconds:7.2f} s")
    ratio = best['plain', False] / best['batchkit', False]
    print(f"batchkit / plain, without preprocessing: {ratio:.3f}x  (target >= 0.95)")
    print(f"batchkit / plain, with preprocessing:    {best['plain', True] / best['batchkit', True]:.3f}x  "
          f"(target > 1)")
    print(f"batchkit / fit on tf.data, with preprocessing: {best['fit', True] / best['batchkit', True]:.3f}x  "
          f"(target > 1)")
    overhead = (best['batchkit', False] - best['plain', False]) / n_batches * 1e6
    print(f"per-batch overhead of a batchkit train step over a bare train_on_batch: {overhead:.0f} us")


if __name__ == '__main__':
    main()
