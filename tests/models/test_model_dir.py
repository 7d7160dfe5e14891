"""model_dir machinery: options, atomic checkpoints under SIGKILL, rotation, fingerprint, source copy, summaries."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from batchkit import BatchkitError, BatchkitValueError, signals
from batchkit.errors import ModelError
from batchkit.models import model_dir as md_module
from batchkit.models.model_dir import ModelDir, parse_options

PAYLOAD = 200_000


def write_payload(step: int):
    """A checkpoint writer: two files whose content depends on `step`, the second a digest of the first."""
    def write(tmp: str) -> None:
        data = (str(step).encode() * PAYLOAD)[:PAYLOAD]
        with open(os.path.join(tmp, 'weights.bin'), 'wb') as f:
            f.write(data)
        with open(os.path.join(tmp, 'digest'), 'w') as f:
            f.write(hashlib.sha256(data).hexdigest())
    return write


def check_complete(path: str, step: int) -> None:
    with open(os.path.join(path, 'weights.bin'), 'rb') as f:
        data = f.read()
    with open(os.path.join(path, 'digest')) as f:
        digest = f.read()
    assert data == (str(step).encode() * PAYLOAD)[:PAYLOAD] and digest == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize('config, message', [
    ({'save_checkpoints_steps': 10, 'save_checkpoints_secs': 5}, 'at most one of'),
    ({'save_checkpoints_steps': 0}, r'save_checkpoints_steps.*positive int.*Received: save_checkpoints_steps=0'),
    ({'save_checkpoints_secs': -1}, 'positive number'),
    ({'keep_checkpoint_max': 0}, r'keep_checkpoint_max.*Received: keep_checkpoint_max=0'),
    ({'keep_checkpoint_max': None}, 'keep_checkpoint_max'),
    ({'save_summary_steps': 2.5}, 'save_summary_steps'),
    ({'seed': -3}, r'non-negative int.*seed=-3'),
    ({'seed': True}, 'seed'),
    ({'model_dir': 3}, r'model_dir.*path'),
    ({'warm_start_from': ['a']}, 'warm_start_from'),
    ({'export_format': 1}, 'export_format'),
])
def test_bad_options_raise_clear_errors(config, message):
    with pytest.raises(BatchkitError, match=message) as info:
        parse_options(config, owner="KerasModel 'm'")
    assert isinstance(info.value, (ValueError, TypeError))


def test_an_export_format_the_model_cannot_write_is_refused_with_the_ones_it_can():
    assert parse_options({'export_format': 'onnx'}, export_formats=('tf_saved_model', 'onnx')).export_format == 'onnx'
    with pytest.raises(BatchkitValueError, match=r"to be one of \['tf_saved_model', 'onnx'\] or None\. "
                                                r"Received: export_format='onx'"):
        parse_options({'export_format': 'onx'}, owner="KerasModel 'm'", export_formats=('tf_saved_model', 'onnx'))


def test_defaults_follow_the_estimator():
    opts = parse_options({})
    assert (opts.model_dir, opts.keep_checkpoint_max, opts.save_summary_steps) == (None, 5, 100)
    assert opts.save_checkpoints_secs == 600 and opts.save_checkpoints_steps is None
    assert parse_options({'save_checkpoints_steps': 7}).save_checkpoints_secs is None


def test_policy_by_steps_and_by_secs(tmp_path):
    md = ModelDir(parse_options({'model_dir': str(tmp_path), 'save_checkpoints_steps': 3}))
    assert [s for s in range(1, 10) if md.due(s) and md.save(s, write_payload(s))] == [3, 6, 9]
    md = ModelDir(parse_options({'model_dir': str(tmp_path / 'b'), 'save_checkpoints_secs': 0.2}))
    assert not md.due(1)
    time.sleep(0.25)
    assert md.due(2)
    md.save(2, write_payload(2))
    assert not md.due(3)


def test_rotation_keeps_the_newest_and_latest_resumes(tmp_path):
    md = ModelDir(parse_options({'model_dir': str(tmp_path), 'keep_checkpoint_max': 3}))
    for step in range(10, 80, 10):
        md.save(step, write_payload(step))
    assert [c.step for c in md.checkpoints()] == [50, 60, 70]
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith('ckpt-')) == ['ckpt-50', 'ckpt-60', 'ckpt-70']
    again = ModelDir(parse_options({'model_dir': str(tmp_path)}))
    assert again.latest().step == 70
    check_complete(again.latest().path, 70)
    assert ModelDir.find(str(tmp_path)).step == 70 and ModelDir.find(again.latest().path).step == 70
    assert ModelDir.find(str(tmp_path / 'nothing')) is None


def test_a_failing_writer_leaves_the_previous_checkpoint(tmp_path):
    md = ModelDir(parse_options({'model_dir': str(tmp_path)}))
    md.save(1, write_payload(1))

    def broken(tmp):
        write_payload(2)(tmp)
        raise OSError('disk full')
    with pytest.raises(OSError, match='disk full'):
        md.save(2, broken)
    assert md.latest().step == 1
    assert [p for p in os.listdir(tmp_path) if p.startswith('.tmp-')] == []


CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_model_dir import write_payload
    from batchkit.models.model_dir import ModelDir, parse_options
    md = ModelDir(parse_options({{'model_dir': {path!r}, 'keep_checkpoint_max': 2}}))
    step = md.latest().step if md.latest() else 0
    while True:
        step += 1
        md.save(step, write_payload(step))
        print(step, flush=True)
""")


def _child(tmp_path, env=None):
    code = CHILD.format(tests=os.path.dirname(__file__), path=str(tmp_path))
    return subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def test_sigkill_while_the_checkpoint_is_being_written_keeps_the_previous_one(tmp_path):
    # The test-only pause holds the process after the new checkpoint's files are written, before they go in place.
    ModelDir(parse_options({'model_dir': str(tmp_path)})).save(1, write_payload(1))
    proc = _child(tmp_path, {md_module.PAUSE_ENV: '60'})
    paused = tmp_path / '.paused'
    deadline = time.monotonic() + 60
    while not paused.exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    os.remove(paused)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert [p for p in os.listdir(tmp_path) if p.startswith('.tmp-')], 'the kill left a half-written checkpoint'
    md = ModelDir(parse_options({'model_dir': str(tmp_path)}))
    assert md.latest().step == 1        # step 2 was being written: step 1 is still the latest, complete
    check_complete(md.latest().path, 1)
    md.save(2, write_payload(2))        # the next save clears the dead process's leftovers
    assert [p for p in os.listdir(tmp_path) if p.startswith('.tmp-')] == []
    check_complete(md.latest().path, 2)


def test_sigkill_at_random_points_of_a_save_loop_always_leaves_a_loadable_checkpoint(tmp_path):
    rng = random.Random(0)
    last = 0
    for _ in range(8):
        proc = _child(tmp_path)
        first = proc.stdout.readline()          # it has saved at least once in this life
        assert first, 'the child died before saving'
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        latest = ModelDir(parse_options({'model_dir': str(tmp_path)})).latest()
        assert latest.step >= int(first) > last
        check_complete(latest.path, latest.step)
        last = latest.step


def test_fingerprint_refuses_another_models_checkpoints(tmp_path):
    md = ModelDir(parse_options({'model_dir': str(tmp_path)}))
    md.claim({'model': 'a.Net', 'layers': [[4, 8]]})
    md.claim({'model': 'b.Other'})      # no checkpoints yet: the directory changes hands
    md.save(5, write_payload(5))
    ModelDir(parse_options({'model_dir': str(tmp_path)})).claim({'model': 'b.Other'})
    with pytest.raises(ModelError, match=r"Expected model_dir .* checkpoints of .*a.Net.* Received: .*b.Other"):
        ModelDir(parse_options({'model_dir': str(tmp_path)})).claim({'model': 'a.Net', 'layers': [[4, 8]]})
    assert json.loads((tmp_path / 'fingerprint.json').read_text()) == {'model': 'b.Other'}


def test_the_defining_file_is_copied_byte_for_byte(tmp_path):
    md = ModelDir(parse_options({'model_dir': str(tmp_path)}))
    md.claim({'model': 'x'}, source=write_payload)
    copied = tmp_path / 'source' / os.path.basename(__file__)
    with open(__file__, 'rb') as f:
        assert copied.read_bytes() == f.read()
    assert md.copy_source(len) is None


def test_model_dir_none_is_a_temporary_directory_removed_at_exit():
    code = ("from batchkit.models.model_dir import ModelDir, parse_options\n"
            "md = ModelDir(parse_options({}))\n"
            "md.save(1, lambda tmp: open(tmp + '/f', 'w').close())\n"
            "print(md.path)\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out and 'batchkit-model-' in out and not os.path.exists(out)


def test_checkpoint_saved_signal_carries_name_path_and_step(tmp_path):
    got = []
    owner = object()
    receiver = signals.checkpoint_saved.connect(lambda sender, **kw: got.append((sender, kw)), weak=False)
    try:
        md = ModelDir(parse_options({'model_dir': str(tmp_path)}), owner=owner, name='net')
        cp = md.save(3, write_payload(3))
    finally:
        signals.checkpoint_saved.disconnect(receiver)
    assert got == [(owner, {'name': 'net', 'path': cp.path, 'step': 3})]


@pytest.mark.tf
def test_summaries_are_readable_with_summary_iterator(tmp_path):
    import tensorflow as tf
    md = ModelDir(parse_options({'model_dir': str(tmp_path), 'save_summary_steps': 5}))
    for step in range(1, 16):
        md.summarize(step, {'loss': float(step), 'accuracy': 0.5})
    md.summarize(15, {'loss': 1.0}, subdir='eval', force=True)
    md.close()

    def read(pattern):
        values = {}
        for path in glob.glob(pattern):
            for event in tf.compat.v1.train.summary_iterator(path):
                for v in event.summary.value:
                    values.setdefault(v.tag, {})[event.step] = float(tf.make_ndarray(v.tensor))
        return values
    train = read(str(tmp_path / 'events.out.tfevents.*'))
    assert train['loss'] == {5: 3.0, 10: 8.0, 15: 13.0}     # the mean over the steps since the last summary
    assert train['accuracy'] == {5: 0.5, 10: 0.5, 15: 0.5}
    assert set(train['steps_per_sec']) == {10, 15} and all(v > 0 for v in train['steps_per_sec'].values())
    assert read(str(tmp_path / 'eval' / 'events.out.tfevents.*')) == {'loss': {15: 1.0}}


def test_save_with_replace_rewrites_the_checkpoint_of_the_same_step(tmp_path):
    md = ModelDir(parse_options({'model_dir': str(tmp_path), 'save_checkpoints_steps': 10}), name='m')
    first = md.save(3, write_payload(3))
    assert md.save(3, write_payload(4)) == first              # without replace: the existing one
    check_complete(first.path, 3)
    second = md.save(3, write_payload(4), replace=True)
    third = md.save(3, write_payload(5), replace=True)
    assert [c.step for c in md.checkpoints()] == [3] and md.latest() == third != second != first
    check_complete(third.path, 5)
    assert sorted(e for e in os.listdir(tmp_path) if e.startswith('ckpt-')) == [os.path.basename(third.path)]
    assert ModelDir.find(str(tmp_path)) == third and ModelDir.find(third.path) == third
    md.save(7, write_payload(7))
    assert [c.step for c in md.checkpoints()] == [3, 7]


@pytest.mark.parametrize('where', ['file', 'file/sub'])
def test_a_model_dir_that_is_a_file_is_refused_at_construction(tmp_path, where):
    (tmp_path / 'file').write_text('not a directory')
    path = str(tmp_path / where)
    with pytest.raises(ModelError, match=r"`model_dir` of m to be a directory.*Received: model_dir=") as info:
        ModelDir(parse_options({'model_dir': path}), name='m')
    assert repr(path) in str(info.value)


def test_a_file_in_place_of_model_dir_after_construction_is_a_model_error(tmp_path):
    md = ModelDir(parse_options({'model_dir': str(tmp_path / 'later')}), name='m')
    (tmp_path / 'later').write_text('x')
    with pytest.raises(ModelError, match='to be a directory'):
        md.path
