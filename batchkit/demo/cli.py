"""`python -m batchkit.demo`: the command line, and the run from data to report."""
from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Sequence

__all__ = ['build_parser', 'main']

DEFAULT_MODEL_DIR = os.path.join('results', 'demo')


def build_parser() -> argparse.ArgumentParser:
    """The demo's options."""
    parser = argparse.ArgumentParser(
        prog='python -m batchkit.demo',
        description="Train a small CNN on scikit-learn's 8x8 digits through a batchkit pipeline (random shift "
                    "and rotation, a dynamic KerasModel, prefetch, a progress bar with the loss), evaluate it on "
                    "the test split, export a SavedModel and draw the loss curve; everything goes to --model-dir.",
        epilog="Resuming: a model_dir that holds checkpoints is resumed, not started over. --epochs is the TOTAL "
               "number of epochs: a resumed run trains only the steps still missing to reach it (nothing when "
               "they are all done), then evaluates, exports and plots again. Raise --epochs to train more; "
               "delete the model_dir (or give another one) to start over.")
    parser.add_argument('--epochs', type=_positive, default=40, help='total epochs to train (default: 40)')
    parser.add_argument('--batch-size', type=_positive, default=64, help='images per batch (default: 64)')
    parser.add_argument('--model-dir', default=DEFAULT_MODEL_DIR,
                        help=f'checkpoints, TensorBoard logs, export, plot (default: {DEFAULT_MODEL_DIR})')
    parser.add_argument('--prefetch', type=_non_negative, default=2,
                        help='batches augmented ahead on threads (default: 2)')
    parser.add_argument('--seed', type=_non_negative, default=0,
                        help='seed of the split, weights and draws (default: 0)')
    parser.add_argument('--min-accuracy', type=float, default=0.97,
                        help='exit with status 1 if the test accuracy is lower (default: 0.97)')
    parser.add_argument('--no-bar', action='store_true', help='no progress bar')
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, received {text!r}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative int, received {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; 0 when the export check passes and the accuracy reaches --min-accuracy, else 1.

    >>> main(['--epochs', '1', '--model-dir', '/tmp/demo', '--min-accuracy', '0'])   # doctest: +SKIP
    0
    """
    args = build_parser().parse_args(argv)
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')        # TensorFlow's start-up chatter
    started = time.perf_counter()
    from batchkit import V
    from batchkit.models.model_dir import ModelDir

    from . import data, report, train

    ds = data.load(seed=args.seed)
    steps_per_epoch = math.ceil(len(ds.train) / args.batch_size)
    target = args.epochs * steps_per_epoch
    found = ModelDir.find(args.model_dir)
    start = found.step if found is not None else 0
    if start:
        print(f"resuming from step {start} in {args.model_dir} (epoch {start / steps_per_epoch:.1f} of {args.epochs})")
    else:
        print(f"starting from scratch in {args.model_dir}")
    print(f"digits: {len(ds.train)} train / {len(ds.test)} test images of {ds.train.preloaded['images'].shape[1:]}")

    config = train.model_config(args.model_dir, args.seed, steps_per_epoch)
    trainer = train.train_pipeline(ds.train, config)
    remaining = max(0, target - start)
    if remaining:
        print(f"training {remaining} steps ({remaining / steps_per_epoch:.1f} epochs of {steps_per_epoch} steps), "
              f"prefetch={args.prefetch}")
        bar = False if args.no_bar else {'desc': 'train', 'postfix': V('stats'), 'mininterval': 0.5}
        trainer = trainer.run(args.batch_size, n_iters=remaining, shuffle=args.seed + start, drop_last=False,
                              prefetch=args.prefetch, seed=args.seed + start, bar=bar)
    else:
        print(f"nothing to train: {start} steps already reach {args.epochs} epochs (raise --epochs to train more)")

    metrics, proba = train.evaluate(ds.test, trainer, args.batch_size)
    net = trainer.get_model_by_name(train.MODEL)
    print(f"model at step {net.step}")
    table, accuracy = report.metrics_table(metrics)
    print(table)

    history = net.history['train']
    rows = report.update_loss_log(net.model_dir.path, start, history)
    png = report.plot_losses(rows, os.path.join(net.model_dir.path, 'loss.png'), steps_per_epoch)
    export_dir = os.path.join(net.model_dir.path, 'export')
    same, diff = report.check_export(net, export_dir, ds.test.preloaded['images'][ds.test.indices], proba)
    print(f"export check: SavedModel in {export_dir} reloaded with tf.saved_model.load: "
          f"{'same predictions' if same else 'DIFFERENT predictions'} as in memory (max |diff| {diff:.2e})")
    print(f"loss curve: {png}")
    print(f"TensorBoard: tensorboard --logdir {net.model_dir.path}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    net.model_dir.close()
    if accuracy < args.min_accuracy:
        print(f"FAILED: test accuracy {accuracy:.4f} is below --min-accuracy {args.min_accuracy}")
    return 0 if same and accuracy >= args.min_accuracy else 1
