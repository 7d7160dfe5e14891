"""Benchmark: training a Keras MLP through a batchkit pipeline, a plain train_on_batch loop and fit on tf.data.

Workload: an MLP 784-128-10 (relu, logits, Adam 1e-3, sparse categorical cross-entropy), one epoch of
N x 784 synthetic float32 pixels in [0, 255) (default 100,000; labels from a fixed random linear map, so the
task is learnable), batch size 128, shuffle off, the last batch partial. Three sides, alternating in one process,
each run twice: without preprocessing and with the three steps of ``bench_pipeline.py`` done per batch (x / 255,
then x * 2 - 1, then reverse a random half of the 28 x 28 images along their second axis):

  (a) plain: a hand-written loop, ``X[i:i + 128]`` then (the numpy ops) then ``model.train_on_batch(x, y)``;
  (b) batchkit: ``init_model('net', KerasModel, 'static', ...)``, (the three actions), ``train_model('net', ...)``,
      ``run(128, n_epochs=1, prefetch=2)``: the actions run in prefetch threads, the training step in order;
  (c) fit: ``model.fit`` on ``tf.data.Dataset.from_tensor_slices(...).batch(128)`` (+ ``map`` of the same ops in
      TensorFlow, parallel, when preprocessing) ``.prefetch(AUTOTUNE)``.

Fairness: one model is built (seeded), and every side gets a copy of its weights and the same fresh optimizer
state before every run; models are traced in an untimed warm-up round. All sides flip the same images: the
half of batch ``pos`` is drawn with ``batch_rng(SEED, pos)``, batchkit's per-batch generator (for tf.data the
choice is precomputed, outside the timing, as a mask: tf.data is spared that cost). After the warm-up round the
final weights of the sides are compared: the benchmark stops if they did not train the same thing. batchkit's
KerasModel runs with ``save_summary_steps=None`` (the other sides write no TensorBoard either); its model_dir is
a temporary directory, the end-of-run checkpoint is written in the warm-up run and its cost printed apart (the
timed runs end at that same step, so they write none).

Targets, printed as ratios of times: without preprocessing, plain / batchkit >= 0.95; with it, batchkit faster
than the plain loop and than fit on tf.data (ratios > 1). Also printed: the per-batch framework overhead of a
train step through batchkit (the pipeline and KerasModel.train) over a bare ``train_on_batch``, in microseconds.
Each time is the best of ``--repeats``; the process CPU time per batch is printed beside it (less sensitive to
other load on a shared machine, but it counts the prefetch threads' work too, so it cannot show overlap).
The exit code is 0 whatever the results (PASS/FAIL is printed).

    python benchmarks/bench_training.py            # 100,000 items, 5 repeats
    python benchmarks/bench_training.py --quick    # 20,000 items, 2 repeats
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_pipeline import SIDE, ImagesBatch, flip_random_half  # noqa: E402

from batchkit import B, Dataset  # noqa: E402
from batchkit.batch.base import batch_rng  # noqa: E402
from batchkit.models import KerasModel  # noqa: E402
from batchkit.pipeline import prefetch as _prefetch  # noqa: E402

__all__ = ['TrainBatch', 'main', 'run_benchmark']

SEED = 7
N_CLASSES = 10
HIDDEN = 128
BATCH_SIZE = 128
PLAIN_TARGET = 0.95
SIDES = ('plain', 'batchkit', 'fit')
WEIGHT_TOLERANCE = 1e-3


class TrainBatch(ImagesBatch):
    """bench_pipeline's batch class (scale, shift, flip_half actions) with labels as a second component."""
    components = ('images', 'labels')


# --- data and models -----------------------------------------------------------------------------------------------
def make_data(n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """N x 784 float32 pixels in [0, 255) and int32 labels from a fixed random linear map of the centered pixels."""
    rng = np.random.default_rng(0)
    x = rng.random((n_items, SIDE * SIDE), dtype=np.float32) * np.float32(255)
    w = rng.normal(size=(SIDE * SIDE, N_CLASSES)).astype(np.float32)
    return x, np.argmax((x / 255 - 0.5) @ w, axis=1).astype(np.int32)


def build_model() -> Any:
    """A compiled MLP 784-128-10 with its optimizer's variables created (so its state can be reset)."""
    model = keras.Sequential([keras.Input((SIDE * SIDE,)), keras.layers.Dense(HIDDEN, activation='relu'),
                              keras.layers.Dense(N_CLASSES)], name='mlp')
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.optimizer.build(model.trainable_variables)
    return model


class Start:
    """The initial state every run starts from: the reference weights and a fresh optimizer's variables."""

    def __init__(self) -> None:
        keras.utils.set_random_seed(SEED)
        reference = build_model()
        self.weights = reference.get_weights()
        self.optimizer = [v.numpy() for v in reference.optimizer.variables]

    def apply(self, model: Any) -> Any:
        model.set_weights(self.weights)
        for var, value in zip(model.optimizer.variables, self.optimizer):
            var.assign(value)
        return model


def flip_masks(n_items: int, batch_size: int) -> np.ndarray:
    """Per item: flipped or not, as batchkit's generator of each batch chooses (for the tf.data side)."""
    mask = np.zeros(n_items, bool)
    for pos, start in enumerate(range(0, n_items, batch_size)):
        size = min(batch_size, n_items - start)
        mask[start + batch_rng(SEED, pos).choice(size, size // 2, replace=False)] = True
    return mask


PROBES: list[str] = []          # per prefetching run: the mode it started in (NOTE [ Adaptive threads ])


def _record_mode(stretch: Any) -> Any:
    """Engine._stretch, unchanged, with each run's first mode recorded (for the report: prefetch kept its threads
    or not)."""
    def recorded(self: Any, mode: str, *args: Any) -> Any:
        if not getattr(self, '_bench_recorded', False):
            self._bench_recorded = True
            PROBES.append(mode)
        return (yield from stretch(self, mode, *args))
    return recorded


_prefetch.Engine._stretch = _record_mode(_prefetch.Engine._stretch)


# --- the sides -----------------------------------------------------------------------------------------------------
def run_plain(model: Any, x_all: np.ndarray, y_all: np.ndarray, preprocess: bool, batch_size: int) -> float:
    start = time.perf_counter()
    for pos, i in enumerate(range(0, len(x_all), batch_size)):
        x, y = x_all[i:i + batch_size], y_all[i:i + batch_size]
        if preprocess:
            x = x / 255
            x = x * 2 - 1
            x = flip_random_half(x, batch_rng(SEED, pos))
        model.train_on_batch(x, y)
    return time.perf_counter() - start


def make_pipeline(ds: Dataset, model: Any, preprocess: bool) -> Any:
    config = {'model': model, 'save_summary_steps': None}
    p = ds.p.init_model('net', KerasModel, 'static', config)
    if preprocess:
        p = p.scale().shift().flip_half()
    return p.train_model('net', B('images'), B('labels'))


def run_batchkit(pipeline: Any, preprocess: bool, batch_size: int) -> float:
    start = time.perf_counter()
    pipeline.run(batch_size, n_epochs=1, shuffle=False, seed=SEED, prefetch=2)
    return time.perf_counter() - start


def make_tf_data(x_all: np.ndarray, y_all: np.ndarray, preprocess: bool, batch_size: int) -> Any:
    if not preprocess:
        return tf.data.Dataset.from_tensor_slices((x_all, y_all)).batch(batch_size).prefetch(tf.data.AUTOTUNE)

    @tf.autograph.experimental.do_not_convert        # plain TF ops: no need for autograph to read this file
    def prep(x: Any, y: Any, flip: Any) -> tuple[Any, Any]:
        x = x / 255
        x = x * 2 - 1
        images = tf.reshape(x, (-1, SIDE, SIDE))
        images = tf.where(flip[:, None, None], tf.reverse(images, axis=[2]), images)
        return tf.reshape(images, (-1, SIDE * SIDE)), y
    data = tf.data.Dataset.from_tensor_slices((x_all, y_all, flip_masks(len(x_all), batch_size)))
    return data.batch(batch_size).map(prep, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def run_fit(model: Any, data: Any) -> float:
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - start


# --- the benchmark -------------------------------------------------------------------------------------------------
class Bench:
    """The six (side, preprocessing) configurations on one data set, each with its own model, from one start."""

    def __init__(self, n_items: int, batch_size: int = BATCH_SIZE) -> None:
        self.batch_size = batch_size
        self.x, self.y = make_data(n_items)
        self.n_batches = -(-n_items // batch_size)
        self.start = Start()
        ds = Dataset.from_arrays(batch_class=TrainBatch, images=self.x, labels=self.y)
        self.models = {(side, prep): build_model() for side in SIDES for prep in (False, True)}
        self.pipelines = {prep: make_pipeline(ds, self.models['batchkit', prep], prep) for prep in (False, True)}
        self.nets = {prep: self.pipelines[prep].get_model_by_name('net') for prep in (False, True)}
        self.tf_data = {prep: make_tf_data(self.x, self.y, prep, batch_size) for prep in (False, True)}
        self.cpu: dict = {}

    def run(self, side: str, prep: bool) -> float:
        """One epoch of a side from the common start; its wall time (its CPU time goes to `self.cpu`)."""
        cpu = time.process_time()
        wall = self._run(side, prep)
        self.cpu.setdefault((side, prep), []).append(time.process_time() - cpu)
        return wall

    def _run(self, side: str, prep: bool) -> float:
        model = self.start.apply(self.models[side, prep])
        if side == 'plain':
            return run_plain(model, self.x, self.y, prep, self.batch_size)
        if side == 'batchkit':
            return run_batchkit(self.pipelines[prep], prep, self.batch_size)
        return run_fit(model, self.tf_data[prep])

    def check_same_training(self) -> dict[bool, float]:
        """After a run of each, every side's weights agree (same start, same data); the largest difference."""
        diffs = {}
        for prep in (False, True):
            weights = {side: self.models[side, prep].get_weights() for side in SIDES}
            steps = {side: int(self.models[side, prep].optimizer.iterations.numpy()) for side in SIDES}
            if len(set(steps.values())) != 1 or steps['plain'] != self.n_batches:
                raise SystemExit(f'preprocess={prep}: the sides made different numbers of steps {steps} (expected '
                                 f'{self.n_batches}); the benchmark would be unfair')
            moved = max(float(np.abs(a - b).max()) for a, b in zip(weights['plain'], self.start.weights))
            diff = max(float(np.abs(a - b).max()) for side in SIDES[1:]
                       for a, b in zip(weights['plain'], weights[side]))
            if moved == 0 or diff > WEIGHT_TOLERANCE:
                raise SystemExit(f'preprocess={prep}: the sides trained different things (weights differ by up to '
                                 f'{diff:.2e}, moved by {moved:.2e}); the benchmark would be unfair')
            diffs[prep] = diff
        return diffs

    def overhead(self, n_steps: int, repeats: int) -> dict[str, float]:
        """Per-step microseconds of a bare train_on_batch, KerasModel.train, and the full pipeline path."""
        x, y = self.x[:self.batch_size], self.y[:self.batch_size]
        model, net = self.models['plain', False], self.nets[False]
        best = {'bare': float('inf'), 'keras_model': float('inf')}
        for _ in range(repeats):
            for name, step in (('bare', model.train_on_batch), ('keras_model', net.train)):
                start = time.perf_counter()
                for _ in range(n_steps):
                    step(x, y)
                best[name] = min(best[name], (time.perf_counter() - start) / n_steps * 1e6)
        return best

    def checkpoint_ms(self) -> float:
        net = self.nets[False]
        start = time.perf_counter()
        net.model_dir.save(net.step + 10 ** 6, lambda tmp: net.model.save(os.path.join(tmp, 'model.keras')))
        return (time.perf_counter() - start) * 1e3


def run_benchmark(n_items: int, repeats: int, overhead_steps: int = 300, out: Any = print) -> dict:
    """Warm up (and check the sides train alike), then time each side `repeats` times, alternating; the figures."""
    bench = Bench(n_items)
    for prep in (False, True):
        for side in SIDES:
            bench.run(side, prep)
    diffs = bench.check_same_training()
    bench.cpu.clear()
    PROBES.clear()
    times: dict = {(side, prep): [] for side in SIDES for prep in (False, True)}
    for _ in range(repeats):
        for prep in (False, True):
            for side in SIDES:
                times[side, prep].append(bench.run(side, prep))
    best = {key: min(ts) for key, ts in times.items()}
    over = bench.overhead(overhead_steps, repeats)
    n = bench.n_batches
    per_batch = {key: t / n * 1e6 for key, t in best.items()}
    ratios = {'plain/batchkit': best['plain', False] / best['batchkit', False],
              'plain/batchkit prep': best['plain', True] / best['batchkit', True],
              'fit/batchkit prep': best['fit', True] / best['batchkit', True],
              'fit/batchkit': best['fit', False] / best['batchkit', False]}
    cpu_us = {key: min(ts) / n * 1e6 for key, ts in bench.cpu.items()}
    result = {'times': times, 'cpu_us': cpu_us, 'best': best, 'per_batch_us': per_batch, 'ratios': ratios,
              'weight_diff': diffs, 'probes': list(PROBES),
              'overhead_us': {**over, 'pipeline': per_batch['batchkit', False] - per_batch['plain', False]},
              'checkpoint_ms': bench.checkpoint_ms(), 'n_batches': n}
    report(result, n_items, repeats, out)
    return result


def report(r: dict, n_items: int, repeats: int, out: Any) -> None:
    n = r['n_batches']
    out(f'workload: MLP 784-{HIDDEN}-{N_CLASSES}, {n_items} x {SIDE * SIDE} float32, batch_size={BATCH_SIZE}, '
        f'1 epoch, {n} batches, best of {repeats} (alternating); the sides\' weights agree to '
        f'{max(r["weight_diff"].values()):.1e} after the warm-up epoch')
    for prep in (False, True):
        out(f'  {"with" if prep else "without"} preprocessing (x/255, x*2-1, flip a random half):')
        for side in SIDES:
            runs = ', '.join(f'{t:.3f}' for t in r['times'][side, prep])
            out(f'    {side:9s}: {r["per_batch_us"][side, prep]:8.1f} us/batch  (runs: {runs} s; process CPU '
                f'{r["cpu_us"][side, prep]:7.1f} us/batch, all threads)')
    ratios = r['ratios']
    checks = [('without preprocessing: plain_time / batchkit_time', ratios['plain/batchkit'], PLAIN_TARGET),
              ('with preprocessing:    plain_time / batchkit_time', ratios['plain/batchkit prep'], 1.0),
              ('with preprocessing:    fit_time   / batchkit_time', ratios['fit/batchkit prep'], 1.0)]
    for name, value, target in checks:
        op, ok = ('>=', value >= target) if target != 1.0 else ('>', value > target)
        out(f'  {name} = {value:.3f} (target {op} {target}) -> {"PASS" if ok else "FAIL"}')
    out(f'  without preprocessing: fit_time / batchkit_time = {ratios["fit/batchkit"]:.3f} (for information)')
    modes = ', '.join(f'{mode} {r["probes"].count(mode)}' for mode in sorted(set(r['probes'])))
    out(f'  batchkit with preprocessing: the modes prefetch started in, in {len(r["probes"])} timed runs: {modes} '
        f'(NOTE [ Adaptive threads ] in pipeline/prefetch.py)')
    o = r['overhead_us']
    out(f'overhead per train step: bare train_on_batch {o["bare"]:.1f} us, KerasModel.train {o["keras_model"]:.1f} us '
        f'({o["keras_model"] - o["bare"]:+.1f} us); the whole batchkit path over the plain loop, from the epochs '
        f'above: {o["pipeline"]:+.1f} us per batch')
    out(f'end-of-run checkpoint (written once per run that trained since the last one): {r["checkpoint_ms"]:.1f} ms')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='a smaller, faster run (20,000 items, 2 repeats)')
    parser.add_argument('--n-items', type=int, default=None, help='dataset size (default 100000)')
    parser.add_argument('--repeats', type=int, default=None, help='timed runs of each side (default 5, quick 2)')
    args = parser.parse_args(argv)
    n_items = args.n_items or (20_000 if args.quick else 100_000)
    repeats = args.repeats or (2 if args.quick else 5)
    print(f'batchkit training benchmark; python {platform.python_version()}, numpy {np.__version__}, tensorflow '
          f'{tf.__version__}, keras {keras.__version__}, {platform.machine()}, {os.cpu_count()} cores (shared)')
    run_benchmark(n_items, repeats)
    return 0


if __name__ == '__main__':
    sys.exit(main())
