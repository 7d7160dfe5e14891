"""The demo's outputs: the per-class metrics table, the loss log and curve, the SavedModel export check."""
from __future__ import annotations

import csv
import os
import shutil
from typing import Any

import numpy as np

__all__ = ['check_export', 'metrics_table', 'plot_losses', 'update_loss_log']

LOSS_LOG = 'losses.csv'


def metrics_table(metrics: Any) -> tuple[str, float]:
    """A per-class table (precision, recall, f1) with the overall accuracy; the text and the accuracy."""
    per_class = metrics.evaluate(['precision', 'recall', 'f1_score'], multiclass=None)
    accuracy = float(metrics.evaluate('accuracy'))
    matrix = np.asarray(metrics.confusion_matrix)          # [predicted, target], per item if 3-d
    support = matrix.reshape(-1, *matrix.shape[-2:]).sum(axis=(0, 1))
    lines = [f"{'class':>5}  {'precision':>9}  {'recall':>6}  {'f1':>6}  {'support':>7}"]
    for k in range(len(per_class['precision'])):
        precision, recall, f1 = (per_class[name][k] for name in ('precision', 'recall', 'f1_score'))
        lines.append(f"{k:>5}  {precision:>9.3f}  {recall:>6.3f}  {f1:>6.3f}  {int(support[k]):>7}")
    lines.append(f"accuracy: {accuracy:.4f}")
    return '\n'.join(lines), accuracy


def update_loss_log(model_dir: str, resumed_at: int, history: list[dict]) -> list[tuple[int, float]]:
    """Append this run's (step, loss) to `<model_dir>/losses.csv`; the whole log.

    Rows after `resumed_at` come from a run that ended before its next checkpoint: the restored model never
    took those steps, so they are dropped and retaken.
    """
    path = os.path.join(model_dir, LOSS_LOG)
    rows: list[tuple[int, float]] = []
    if os.path.exists(path):
        with open(path, newline='') as f:
            rows = [(int(r['step']), float(r['loss'])) for r in csv.DictReader(f) if int(r['step']) <= resumed_at]
    rows += [(int(h['step']), float(h['loss'])) for h in history]
    tmp = path + '.tmp'
    with open(tmp, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['step', 'loss'])
        writer.writerows(rows)
    os.replace(tmp, path)
    return rows


def plot_losses(rows: list[tuple[int, float]], path: str, steps_per_epoch: int) -> str:
    """Draw the training loss per step (and its per-epoch mean) into a PNG at `path`."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    steps = np.array([r[0] for r in rows])
    losses = np.array([r[1] for r in rows])
    fig, ax = plt.subplots(figsize=(7, 4))
    try:
        ax.plot(steps, losses, lw=0.8, alpha=0.5, label='batch loss')
        if len(rows) >= steps_per_epoch:
            epochs = (steps - 1) // steps_per_epoch
            means = [losses[epochs == e].mean() for e in np.unique(epochs)]
            ax.plot((np.unique(epochs) + 1) * steps_per_epoch, means, 'o-', label='epoch mean')
        ax.set(xlabel='step', ylabel='loss', yscale='log', title='batchkit demo: training loss')
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def check_export(model: Any, path: str, x: np.ndarray, expected: np.ndarray) -> tuple[bool, float]:
    """Export `model` as a SavedModel at `path`, reload it with tf.saved_model.load, compare its outputs on x.

    Returns:
        Whether the reloaded model gives the same predicted classes and probabilities within 1e-4, and the
        largest absolute difference.
    """
    import tensorflow as tf
    if os.path.isdir(path):        # a previous run's export: replaced, not merged
        shutil.rmtree(path)
    model.export(path)
    served = tf.saved_model.load(path)
    got = np.asarray(served.serve(tf.constant(x)))
    diff = float(np.max(np.abs(got - expected)))
    same = bool(np.array_equal(got.argmax(-1), expected.argmax(-1)) and diff < 1e-4)
    return same, diff
