"""The demo: its command line, its augmentation actions, and a whole run into a model_dir, resumed."""
from __future__ import annotations

import csv
import glob
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from batchkit import B, Dataset, R
from batchkit.demo import build_parser, main
from batchkit.demo.batch import DigitsBatch


def test_help_lists_every_option_and_says_what_a_resumed_run_does():
    out = subprocess.run([sys.executable, '-m', 'batchkit.demo', '--help'], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    for option in ('--epochs', '--batch-size', '--model-dir', '--prefetch', '--seed'):
        assert option in out
    assert 'TOTAL' in out and 'resumed' in out
    with pytest.raises(SystemExit):
        build_parser().parse_args(['--epochs', '0'])


def _batch(images: np.ndarray) -> DigitsBatch:
    ds = Dataset(len(images), batch_class=DigitsBatch,
                 preloaded={'images': images, 'labels': np.zeros(len(images), np.int64)})
    return ds.next_batch(len(images))


def test_shift_moves_each_image_by_its_own_offset_and_fills_zeros():
    images = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8, 1) + 1
    shifted = _batch(images.copy()).shift([[1, 0], [0, -2]]).images
    assert np.array_equal(shifted[0, 1:], images[0, :-1]) and not shifted[0, 0].any()
    assert np.array_equal(shifted[1, :, :-2], images[1, :, 2:]) and not shifted[1, :, -2:].any()


def test_rotate_turns_each_image_by_its_own_angle():
    rng = np.random.default_rng(0)
    images = rng.random((2, 8, 8, 1)).astype(np.float32)
    rotated = _batch(images.copy()).rotate([0.0, 90.0]).images
    np.testing.assert_allclose(rotated[0], images[0], atol=1e-6)
    np.testing.assert_allclose(rotated[1, ..., 0], np.rot90(images[1, ..., 0]), atol=1e-5)


def test_augmentation_draws_through_R_are_per_image_and_seeded():
    images = np.random.default_rng(1).random((32, 8, 8, 1)).astype(np.float32)
    ds = Dataset(32, batch_class=DigitsBatch, preloaded={'images': images, 'labels': np.zeros(32, np.int64)})
    p = ds.p.shift(R('integers', -1, 2, size=(B('size'), 2))).rotate(R('uniform', -12, 12, size=B('size')))
    first = [b.images for b in p.gen_batch(16, n_epochs=1, seed=3)]
    again = [b.images for b in p.gen_batch(16, n_epochs=1, seed=3)]
    other = [b.images for b in p.gen_batch(16, n_epochs=1, seed=4)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    changed = [not np.allclose(first[0][i], images[i]) for i in range(16)]
    assert sum(changed) >= 14                     # every image gets its own draw, not one for the batch


def _run(capsys, *args: str, bar: bool = False) -> tuple[int, str]:
    code = main(['--batch-size', '128', *([] if bar else ['--no-bar']), *args])
    captured = capsys.readouterr()
    if bar:                                        # tqdm writes to stderr: the bar shows the last batch's loss
        assert re.search(r'train: 100%.*12/12.*loss=[\d.]+', captured.err), captured.err
    return code, captured.out


@pytest.mark.slow
@pytest.mark.tf
def test_a_run_writes_every_artifact_and_a_second_run_resumes(tmp_path, capsys):
    model_dir = str(tmp_path / 'demo')
    steps = 12                                    # ceil(1438 / 128) steps per epoch
    code, out = _run(capsys, '--epochs', '1', '--model-dir', model_dir, '--min-accuracy', '1.01', bar=True)
    assert code == 1 and 'FAILED: test accuracy' in out           # an accuracy below the bar fails the command
    assert f'starting from scratch in {model_dir}' in out and f'model at step {steps}' in out
    table = re.search(r'class\s+precision\s+recall\s+f1\s+support\n((?:\s+\d.*\n){10})accuracy: ([\d.]+)', out)
    assert table is not None, out
    assert sum(int(line.split()[-1]) for line in table.group(1).splitlines()) == 359   # every test image
    assert 0.3 < float(table.group(2)) <= 1.0
    assert re.search(r'export check: .* same predictions as in memory', out)

    assert os.path.isfile(os.path.join(model_dir, f'ckpt-{steps}', 'model.keras'))
    assert glob.glob(os.path.join(model_dir, 'events.out.tfevents.*'))
    assert glob.glob(os.path.join(model_dir, 'eval', 'events.out.tfevents.*'))
    assert os.path.isfile(os.path.join(model_dir, 'export', 'saved_model.pb'))
    assert os.path.isfile(os.path.join(model_dir, 'source', 'model.py'))
    with open(os.path.join(model_dir, 'loss.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'

    code, out = _run(capsys, '--epochs', '2', '--model-dir', model_dir, '--min-accuracy', '0')
    assert code == 0
    assert f'resuming from step {steps} in {model_dir}' in out and f'training {steps} steps' in out
    assert f'model at step {2 * steps}' in out
    assert os.path.isfile(os.path.join(model_dir, f'ckpt-{2 * steps}', 'model.keras'))
    with open(os.path.join(model_dir, 'losses.csv'), newline='') as f:
        assert [int(r['step']) for r in csv.DictReader(f)] == list(range(1, 2 * steps + 1))

    code, out = _run(capsys, '--epochs', '2', '--model-dir', model_dir, '--min-accuracy', '0')
    assert code == 0 and f'resuming from step {2 * steps}' in out and 'nothing to train' in out
    assert f'model at step {2 * steps}' in out


@pytest.mark.slow
@pytest.mark.tf
def test_the_export_check_reports_predictions_that_differ(tmp_path):
    import keras

    from batchkit.demo.report import check_export
    from batchkit.models import KerasModel
    net = KerasModel({'model': keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation='softmax')]),
                      'loss': 'sparse_categorical_crossentropy'})
    x = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    proba = net.predict(x)
    assert check_export(net, str(tmp_path / 'a'), x, proba)[0] is True
    same, diff = check_export(net, str(tmp_path / 'b'), x, proba[:, ::-1])
    assert same is False and diff > 0
