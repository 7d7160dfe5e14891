"""Benchmark: batchkit.metrics against scikit-learn on the same data, in the same run.

  (a) a 10-class confusion matrix and macro precision / recall / f1 over 10 million labels:
      ClassificationMetrics(...).evaluate([...], multiclass='macro') vs sklearn confusion_matrix +
      precision_recall_fscore_support(average='macro');
  (b) per-pixel metrics of 256 images of 256 x 256 with 5 classes (macro jaccard and f1 per image, then the
      mean): SegmentationMetricsByPixels vs sklearn jaccard_score / f1_score image by image;
  (c) accumulation: 1,000 batch metrics merged with `+` (what a pipeline's V('m', mode='u') does), then
      evaluated; the cost per batch is reported.

Targets: (a) and (b) at least 5x faster than scikit-learn; (c) under 1 ms per batch. Each timing is the best of
``--repeats``. The exit code is 0 either way: the figures are printed, for a shared machine to be read as such.

    python benchmarks/bench_metrics.py
    python benchmarks/bench_metrics.py --labels 1000000 --images 32 --repeats 1
"""
from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
from sklearn import metrics as skm

from batchkit.metrics import ClassificationMetrics, SegmentationMetricsByPixels

SPEEDUP_TARGET = 5.0
MERGE_TARGET_MS = 1.0


def best(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def bench_classification(n: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 10, n), rng.integers(0, 10, n)

    def ours():
        m = ClassificationMetrics(y, p, fmt='labels', num_classes=10)
        return m.confusion_matrix, m.evaluate(['precision', 'recall', 'f1_score'], multiclass='macro')

    def theirs():
        cm = skm.confusion_matrix(y, p, labels=range(10))
        return cm, skm.precision_recall_fscore_support(y, p, labels=range(10), average='macro')[:3]

    t_ours, (cm, got) = best(ours, repeats)
    t_sk, (cm_sk, want) = best(theirs, repeats)
    assert np.array_equal(cm, cm_sk.T), 'confusion matrices differ'
    assert np.allclose([got['precision'], got['recall'], got['f1_score']], want), (got, want)
    ratio = t_sk / t_ours
    print(f'(a) 10 classes, {n:,} labels: batchkit {t_ours * 1e3:8.1f} ms   sklearn {t_sk * 1e3:8.1f} ms   '
          f'speedup {ratio:6.1f}x  (target >= {SPEEDUP_TARGET:g}x)')
    return ratio


def bench_segmentation(n_images: int, size: int, repeats: int) -> float:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, (n_images, size, size))
    p = np.where(rng.random(y.shape) < 0.3, rng.integers(0, 5, y.shape), y)

    def ours():
        m = SegmentationMetricsByPixels(y, p, fmt='labels', num_classes=5)
        return m.evaluate(['jaccard', 'f1_score'], agg=None, multiclass='macro')

    def theirs():
        labels = list(range(5))
        jac = [skm.jaccard_score(t.ravel(), q.ravel(), labels=labels, average='macro') for t, q in zip(y, p)]
        f1 = [skm.f1_score(t.ravel(), q.ravel(), labels=labels, average='macro') for t, q in zip(y, p)]
        return np.array(jac), np.array(f1)

    t_ours, got = best(ours, repeats)
    t_sk, (jac, f1) = best(theirs, repeats)
    assert np.allclose(got['jaccard'], jac) and np.allclose(got['f1_score'], f1), 'segmentation metrics differ'
    ratio = t_sk / t_ours
    print(f'(b) {n_images} images {size}x{size}, 5 classes: batchkit {t_ours * 1e3:8.1f} ms   sklearn '
          f'{t_sk * 1e3:8.1f} ms   speedup {ratio:6.1f}x  (target >= {SPEEDUP_TARGET:g}x)')
    return ratio


def bench_accumulation(n_batches: int, repeats: int) -> float:
    rng = np.random.default_rng(2)
    batches = [ClassificationMetrics(rng.integers(0, 10, (8, 32, 32)), rng.integers(0, 10, (8, 32, 32)),
                                     fmt='labels', num_classes=10) for _ in range(n_batches)]

    def gather():
        total = None
        for m in batches:
            total = m if total is None else total + m
        return total.evaluate(['accuracy', 'f1_score'])

    elapsed, _ = best(gather, repeats)
    per_batch_ms = elapsed / n_batches * 1e3
    print(f'(c) {n_batches:,} batches merged with + and evaluated: {per_batch_ms:.3f} ms per batch  '
          f'(target < {MERGE_TARGET_MS:g} ms)')
    return per_batch_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--labels', type=int, default=10_000_000)
    parser.add_argument('--images', type=int, default=256)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--batches', type=int, default=1000)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    print(f'python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}')
    a = bench_classification(args.labels, args.repeats)
    b = bench_segmentation(args.images, args.size, args.repeats)
    c = bench_accumulation(args.batches, args.repeats)
    met = a >= SPEEDUP_TARGET and b >= SPEEDUP_TARGET and c < MERGE_TARGET_MS
    print('all targets met' if met else 'some targets missed (see above)')


if __name__ == '__main__':
    main()
