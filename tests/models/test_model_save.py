"""Atomic model saves: a save killed or failing mid-write leaves the previous one loadable; temp names keep suffixes."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import numpy_models as nm
from batchkit import Dataset

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# A process that saves model weights twice: the first save completes, the second writes half the file, says so
# on stdout and sleeps, to be killed right there by the test.
KILLED_SAVE = textwrap.dedent('''
    import os, sys, time, io
    sys.path[:0] = [{root!r}, {here!r}]
    import numpy as np
    import numpy_models as nm
    from batchkit import Dataset

    class SlowSaver(nm.LinearRegression):
        def save(self, path):
            buffer = io.BytesIO()
            np.savez(buffer, w=self.w, b=self.b, steps=self.steps)
            data = buffer.getvalue()
            with open(path, 'wb') as f:
                f.write(data[:len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
                if self.w[0] == 2.0:          # the second save: stop halfway and wait for the kill
                    print('half written', flush=True)
                    time.sleep(60)
                f.write(data[len(data) // 2:])

    x, y = nm.make_regression(20, seed=0)
    p = Dataset(20, batch_class=nm.RegBatch, preloaded={{'images': x, 'labels': y}}).p
    p = p.init_model('m', SlowSaver, 'static', config={{'n_features': x.shape[1]}})
    model = p.get_model_by_name('m')
    save = {save}
    model.w[:] = 1.0
    save({path!r})
    print('first saved', flush=True)
    model.w[:] = 2.0
    save({path!r})
''')


def _kill_mid_save(path: Path, save: str) -> list[str]:
    script = KILLED_SAVE.format(root=str(ROOT), here=str(HERE), path=str(path), save=save)
    proc = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == 'half written':
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    assert lines == ['first saved', 'half written'], lines
    assert proc.returncode == -signal.SIGKILL
    return lines


def _weights(path: Path) -> list[float]:
    # Read from memory: np.load of a corrupt file would leave it open (an unraisable warning, an error here).
    with np.load(io.BytesIO(path.read_bytes())) as data:
        return data['w'].tolist()


def test_sigkill_mid_save_model_now_leaves_the_previous_file_loadable(tmp_path: Path) -> None:
    path = tmp_path / 'weights.npz'
    _kill_mid_save(path, "lambda path: p.save_model_now('m', path)")
    assert _weights(path) == [1.0] * nm.N_FEATURES
    strays = [name for name in os.listdir(tmp_path) if name != 'weights.npz']
    assert all(name.startswith('.saving-') and name.endswith('-weights.npz') for name in strays), strays


def test_sigkill_mid_direct_save_does_corrupt_the_file(tmp_path: Path) -> None:
    """The fault the pipeline guards against is real: the same kill during the model's own save corrupts it."""
    path = tmp_path / 'weights.npz'
    _kill_mid_save(path, 'model.save')
    with pytest.raises(Exception):
        _weights(path)


def test_sigkill_mid_save_model_step_leaves_the_previous_file_loadable(tmp_path: Path) -> None:
    path = tmp_path / 'weights.npz'
    _kill_mid_save(path, "lambda path: p.after.save_model('m', path=path).run(10, n_iters=1)")
    assert _weights(path) == [1.0] * nm.N_FEATURES


# --- in-process: temporary names, failures, directories ---------------------------------------------------------
class Recorder(nm.LinearRegression):
    """Saves like LinearRegression and remembers the paths it was given."""
    seen: list = []

    def save(self, path: str) -> None:
        Recorder.seen.append(path)
        with open(path, 'wb') as f:            # a file object: np.savez adds no .npz
            np.savez(f, w=self.w, b=self.b, steps=self.steps)


class FailingSave(nm.LinearRegression):
    def save(self, path: str) -> None:
        with open(path, 'wb') as f:
            f.write(b'partial')
        raise OSError('disk full')


class DirSaver(nm.LinearRegression):
    """Saves into a directory, like Keras' SavedModel export."""

    def save(self, path: str) -> None:
        os.makedirs(path)
        np.save(os.path.join(path, 'w.npy'), self.w)

    def load(self, path: str) -> None:
        self.w = np.load(os.path.join(path, 'w.npy'))


def _pipeline(cls: type):
    x, y = nm.make_regression(20, seed=0)
    ds = Dataset(20, batch_class=nm.RegBatch, preloaded={'images': x, 'labels': y})
    return ds.p.init_model('m', cls, 'static', config={'n_features': x.shape[1]})


@pytest.mark.parametrize('name', ['model.keras', 'model.weights.h5', 'weights.npz'])
def test_the_temporary_name_sits_next_to_the_target_and_keeps_its_suffixes(tmp_path: Path, name: str) -> None:
    Recorder.seen = []
    p = _pipeline(Recorder)
    p.save_model_now('m', path=str(tmp_path / name))
    (given,) = Recorder.seen
    assert os.path.dirname(given) == str(tmp_path) and given != str(tmp_path / name)
    assert os.path.basename(given).endswith(name)             # Keras checks `.keras` / `.weights.h5`
    assert os.listdir(tmp_path) == [name]                      # renamed into place, nothing left behind


def test_a_save_that_adds_an_extension_is_followed(tmp_path: Path) -> None:
    p = _pipeline(nm.LinearRegression)
    p.save_model_now('m', str(tmp_path / 'weights'))           # np.savez adds .npz
    assert os.listdir(tmp_path) == ['weights.npz']
    with np.load(tmp_path / 'weights.npz') as data:
        assert len(data['w']) == nm.N_FEATURES


def test_a_failing_save_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / 'weights.npz'
    _pipeline(nm.LinearRegression).save_model_now('m', str(path))
    before = path.read_bytes()
    p = _pipeline(FailingSave)
    with pytest.raises(OSError, match='disk full'):
        p.save_model_now('m', str(path))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ['weights.npz']


def test_a_directory_save_replaces_the_previous_directory(tmp_path: Path) -> None:
    path = tmp_path / 'export'
    p = _pipeline(DirSaver)
    model = p.get_model_by_name('m')
    model.w = np.full(3, 1.0)
    p.save_model_now('m', str(path))
    model.w = np.full(3, 2.0)
    p.save_model_now('m', str(path))
    assert np.load(path / 'w.npy').tolist() == [2.0] * 3
    assert os.listdir(tmp_path) == ['export'] and os.listdir(path) == ['w.npy']


def test_a_save_that_writes_elsewhere_is_an_error(tmp_path: Path) -> None:
    class Elsewhere(nm.LinearRegression):
        def save(self, path: str) -> None:
            np.save(str(tmp_path / 'mine.npy'), self.w)
    with pytest.raises(Exception, match='Expected the save of model .m. to write to the path it was given'):
        _pipeline(Elsewhere).save_model_now('m', str(tmp_path / 'w.npy'))
