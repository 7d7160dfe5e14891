"""KerasModel: real training in pipelines, the model_dir workflow, locks, errors, save/load/export."""
from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.tf

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_support as ks  # noqa: E402
from batchkit import B, BatchkitError, V, signals  # noqa: E402
from batchkit.errors import ModelError  # noqa: E402
from batchkit.models import KerasModel  # noqa: E402
from batchkit.models import model_dir as md_module  # noqa: E402


def steps(model: KerasModel) -> int:
    return int(model.optimizer.iterations.numpy())


# --- training ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('mode, config', [
    ('static', ks.compiled_config()),
    ('dynamic', ks.compiled_config(input_shape=B('images').shape[1:])),   # the shape comes from the first batch
])
def test_trains_through_a_prefetching_pipeline(tmp_path, mode, config):
    saved = []
    receiver = signals.checkpoint_saved.connect(lambda sender, **kw: saved.append(kw['step']), weak=False)
    config = {**config, 'model_dir': str(tmp_path), 'save_checkpoints_steps': 40,
              'optimizer': keras.optimizers.Adam(0.02)}
    try:
        p = (ks.dataset().p.init_model('net', KerasModel, mode, config)
             .init_variable('loss', default=list)
             .train_model('net', B('images'), B('labels'), save_to=V('loss', mode='a'))
             .run(16, n_epochs=6, shuffle=1, prefetch=2))
    finally:
        signals.checkpoint_saved.disconnect(receiver)
    losses = [r['loss'] for r in p.v('loss')]
    net = p.get_model_by_name('net')
    assert len(losses) == 96 == steps(net)
    assert np.mean(losses[-16:]) < 0.5 * np.mean(losses[:16])
    x, y = ks.separable(200, seed=5)
    assert ((net.predict(x) > 0.5) == y).mean() > 0.9
    assert saved == [40, 80, 96]                          # every 40 steps, and at the end of the run
    assert [c.step for c in net.model_dir.checkpoints()] == [40, 80, 96]


def test_train_and_test_return_floats_predict_numpy_and_history_keeps_every_batch():
    x, y = ks.separable(32)
    bare = KerasModel({'model': ks.mlp, 'loss': 'mse'})
    assert isinstance(bare.train(x, y), float) and isinstance(bare.test(x, y), float)
    net = KerasModel(ks.compiled_config())
    out = net.train_on_batch(x, y)
    assert set(out) == {'loss', 'accuracy'} and all(type(v) is float for v in out.values())
    assert set(net.test_on_batch(x, y)) == {'loss', 'accuracy'}
    pred = net.predict_on_batch(x)
    assert isinstance(pred, np.ndarray) and pred.shape == (32, 1)
    net.train(x, y)
    assert [h['step'] for h in net.history['train']] == [1, 2] and len(net.history['test']) == 1
    assert 'mlp' in net.summary() and 'dense' in net.summary()


def test_a_subclass_builds_its_compiled_model_and_its_file_is_copied(tmp_path):
    net = ks.SubclassedNet({'model_dir': str(tmp_path)})
    net.train(*ks.separable(16))
    with open(ks.__file__, 'rb') as f:
        assert (tmp_path / 'source' / 'keras_support.py').read_bytes() == f.read()
    assert 'SubclassedNet' in (tmp_path / 'fingerprint.json').read_text()


# --- errors --------------------------------------------------------------------------------------------------------
def test_a_model_that_is_not_compiled_is_refused():
    with pytest.raises(ModelError, match=r"Expected the Keras model .* to be compiled. Received: model 'mlp'"):
        KerasModel({'model': ks.mlp})


@pytest.mark.parametrize('x_shape, y_shape, message', [
    ((8, 5), (8, 1), r"Expected x of KerasModel 'KerasModel' \(Keras model 'mlp'\) to have shape \(None, 4\)\. "
                     r"Received: x with shape \(8, 5\)"),
    ((8,), (8, 1), r"shape \(None, 4\)\. Received: x with shape \(8,\)"),
    ((8, 4), (6, 1), r"Expected y .* as many items as x \(8\)\. Received: y with shape \(6, 1\)"),
])
def test_shapes_the_model_cannot_take_are_named(x_shape, y_shape, message):
    net = KerasModel(ks.compiled_config())
    with pytest.raises(BatchkitError, match=message):
        net.train(np.zeros(x_shape, 'float32'), np.zeros(y_shape, 'float32'))
    assert steps(net) == 0


@pytest.mark.parametrize('method', ['train', 'test', 'predict'])
def test_a_string_instead_of_data_is_named(method):
    net = KerasModel(ks.compiled_config())
    args = ('images',) if method == 'predict' else ('images', np.zeros((8, 1), 'float32'))
    with pytest.raises(BatchkitError, match=r"Expected x of KerasModel .* to be an array .*Received: str 'images'"):
        getattr(net, method)(*args)
    if method != 'predict':
        with pytest.raises(TypeError, match=r"Expected y of KerasModel .*Received: bytes b'labels'"):
            getattr(net, method)(np.zeros((8, 4), 'float32'), b'labels')
    assert steps(net) == 0


def test_a_builder_that_takes_no_argument_is_called_without_the_config():
    def build():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    seen = []

    def build_from(config):
        seen.append(config['units'])
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(config['units'])])
    x = np.ones((8, 4), 'float32')
    net = KerasModel({'model': build, 'loss': 'mse'})
    assert isinstance(net.train(x, np.zeros((8, 1), 'float32')), float) and steps(net) == 1
    other = KerasModel({'model': build_from, 'loss': 'mse', 'units': 3})
    assert seen == [3] and other.predict(x).shape == (8, 3)


@pytest.mark.parametrize('method', ['train', 'test'])
def test_missing_targets_are_named_before_keras_sees_them(method):
    net = KerasModel(ks.compiled_config())
    with pytest.raises(BatchkitError, match=rf"Expected y for {method} of KerasModel .*compiled with loss "
                                            r"'binary_crossentropy'. Received: y=None"):
        getattr(net, method)(np.zeros((8, 4), 'float32'))
    assert steps(net) == 0


def test_a_model_whose_losses_need_no_targets_trains_without_y():
    class OwnLoss(keras.layers.Layer):
        def call(self, inputs):
            self.add_loss(keras.ops.mean(inputs ** 2))
            return inputs
    inputs = keras.Input((4,))
    model = keras.Model(inputs, OwnLoss()(keras.layers.Dense(2)(inputs)))
    model.compile(optimizer='adam')
    net = KerasModel({'model': model})
    assert isinstance(net.train(np.ones((8, 4), 'float32')), float) and steps(net) == 1


def test_an_export_format_keras_does_not_know_is_refused_when_the_model_is_made():
    with pytest.raises(BatchkitError, match=r"export_format.*to be one of \['tf_saved_model', 'onnx', .*Received: "
                                            r"export_format='savedmodel'"):
        KerasModel(ks.compiled_config(export_format='savedmodel'))


def test_a_model_dir_with_another_models_checkpoints_is_refused(tmp_path):
    KerasModel(ks.compiled_config(model_dir=str(tmp_path))).save_checkpoint()
    other = {'model': lambda config: keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), 'loss': 'mse'}
    with pytest.raises(ModelError, match=r'holds? checkpoints|with checkpoints of'):
        KerasModel({**other, 'model_dir': str(tmp_path)})


def test_without_tensorflow_the_import_gives_the_pip_command():
    code = ("import sys\nsys.modules['tensorflow'] = None\nsys.modules['keras'] = None\n"
            "import batchkit.models\n"
            "try:\n    from batchkit.models import KerasModel\nexcept ImportError as e:\n    print(repr(e))\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert "MissingDependencyError" in out and "pip install 'batchkit[tf]'" in out


# --- files ---------------------------------------------------------------------------------------------------------
def test_save_and_load_keep_the_optimizer_so_training_continues(tmp_path):
    x, y = ks.separable(64)
    net = KerasModel(ks.compiled_config())
    for _ in range(5):
        net.train(x, y)
    net.save(tmp_path / 'net.keras')
    with pytest.raises(BatchkitError, match=r"ending in '\.keras'"):
        net.save(tmp_path / 'net.h5')
    loaded = KerasModel(ks.compiled_config(load={'path': str(tmp_path / 'net.keras')}))
    assert steps(loaded) == 5
    for a, b in zip(loaded.optimizer.variables, net.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    net.train(x, y)
    loaded.train(x, y)
    assert steps(loaded) == 6
    np.testing.assert_allclose(loaded.predict(x), net.predict(x), rtol=1e-5, atol=1e-6)


def test_export_writes_a_saved_model_that_serves_the_same_predictions(tmp_path):
    net = KerasModel(ks.compiled_config())
    x, y = ks.separable(32)
    net.train(x, y)
    served = tf.saved_model.load(net.export(str(tmp_path / 'export')))
    np.testing.assert_allclose(served.serve(x).numpy(), net.predict(x), rtol=1e-5, atol=1e-6)


def test_seed_makes_two_runs_give_identical_weights():
    x, y = ks.separable(64)

    def run(seed):
        net = KerasModel(ks.compiled_config(seed=seed))
        for _ in range(5):
            net.train(x, y)
        return net.model.get_weights()
    first, second, other = run(7), run(7), run(8)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_resume_continues_the_step_counter_and_the_optimizer_state(tmp_path):
    x, y = ks.separable(64)
    net = KerasModel(ks.compiled_config(model_dir=str(tmp_path)))
    for _ in range(7):
        net.train(x, y)
    net.on_run_end()
    again = KerasModel(ks.compiled_config(model_dir=str(tmp_path)))
    assert steps(again) == 7
    for a, b in zip(again.optimizer.variables, net.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    again.train(x, y)
    net.train(x, y)
    np.testing.assert_allclose(again.predict(x), net.predict(x), rtol=1e-5, atol=1e-6)


def test_warm_start_only_when_model_dir_has_no_checkpoint(tmp_path):
    x, y = ks.separable(64)
    source = KerasModel(ks.compiled_config(model_dir=str(tmp_path / 'a'), seed=1))
    for _ in range(3):
        source.train(x, y)
    source.on_run_end()
    warm = KerasModel(ks.compiled_config(model_dir=str(tmp_path / 'b'), seed=2, warm_start_from=str(tmp_path / 'a')))
    assert steps(warm) == 0                                   # weights only: a fresh optimizer
    np.testing.assert_array_equal(warm.predict(x), source.predict(x))
    for _ in range(2):
        warm.train(x, y)
    warm.on_run_end()
    resumed = KerasModel(ks.compiled_config(model_dir=str(tmp_path / 'b'), warm_start_from=str(tmp_path / 'a')))
    assert steps(resumed) == 2                                # its own checkpoint wins
    np.testing.assert_array_equal(resumed.predict(x), warm.predict(x))
    with pytest.raises(ModelError, match='warm_start_from'):
        KerasModel(ks.compiled_config(warm_start_from=str(tmp_path / 'nothing')))


def test_tensorboard_scalars_every_save_summary_steps(tmp_path):
    x, y = ks.separable(32)
    net = KerasModel(ks.compiled_config(model_dir=str(tmp_path), save_summary_steps=3))
    for _ in range(9):
        net.train(x, y)
    net.test(x, y)
    net.on_run_end()
    net.model_dir.close()
    tags = {}
    for path in glob.glob(str(tmp_path / 'events.*')) + glob.glob(str(tmp_path / 'eval' / 'events.*')):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                tags.setdefault((os.path.basename(os.path.dirname(path)), v.tag), set()).add(event.step)
    train = os.path.basename(str(tmp_path))
    assert tags[(train, 'loss')] == tags[(train, 'accuracy')] == {3, 6, 9}
    assert tags[(train, 'steps_per_sec')] == {6, 9}
    assert tags[('eval', 'loss')] == {9}


# --- crash and resume ----------------------------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import keras_support as ks
    from batchkit.models import KerasModel
    net = KerasModel(ks.compiled_config(model_dir={path!r}, save_checkpoints_steps=5))
    x, y = ks.separable(64)
    while True:
        net.train(x, y)
""")


@pytest.mark.slow
def test_killed_mid_checkpoint_a_new_model_resumes_from_the_previous_one(tmp_path):
    code = CHILD.format(tests=os.path.dirname(__file__), path=str(tmp_path))
    env = {k: v for k, v in os.environ.items() if k != md_module.PAUSE_ENV}
    deadline = time.monotonic() + 120

    def wait_for(path, proc):
        while not path.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    # First life: train until a checkpoint exists, then SIGKILL wherever it is.
    proc = subprocess.Popen([sys.executable, '-c', code], env=env)
    wait_for(tmp_path / 'checkpoint.json', proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = KerasModel(ks.compiled_config(model_dir=str(tmp_path))).model_dir.latest().step
    # Second life: it resumes, and the test-only pause holds its next checkpoint write, where SIGKILL lands.
    proc = subprocess.Popen([sys.executable, '-c', code], env={**env, md_module.PAUSE_ENV: '60'})
    wait_for(tmp_path / '.paused', proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p for p in os.listdir(tmp_path) if p.startswith('.tmp-')]       # a half-written checkpoint was left
    net = KerasModel(ks.compiled_config(model_dir=str(tmp_path)))
    assert before >= 5 and net.model_dir.latest().step == before
    assert steps(net) == before
    net.train(*ks.separable(64))
    assert steps(net) == before + 1


# --- threads -------------------------------------------------------------------------------------------------------
def test_eight_threads_times_100_train_calls_make_exactly_800_steps():
    net = KerasModel(ks.compiled_config())
    x, y = ks.separable(8)
    net.train(x, y)                           # traces the train function once
    errors = []

    def work():
        try:
            for _ in range(100):
                net.train(x, y)
        except BaseException as exc:          # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert steps(net) == 801
    assert [h['step'] for h in net.history['train']] == list(range(1, 802))


@pytest.mark.parametrize('use_lock', [True, False])
def test_the_lock_is_what_keeps_each_train_call_on_its_own_step(use_lock):
    # A deterministic interleaving: two threads, each held right after its optimizer step until the other one
    # has stepped too (or the timeout passed). Unlocked, both then read the same step: one step is counted twice,
    # one never (its checkpoint and summary are missed); on a busy machine the optimizer itself may also lose one of
    # the two steps (both then read step 1). With the lock the second thread cannot step in between, so each wait
    # runs out: short there; long unlocked, where the first step (tracing) may be slow on a busy machine.
    net = KerasModel(ks.compiled_config(use_lock=use_lock))
    x, y = ks.separable(8)
    net.test(x, y)
    barrier = threading.Barrier(2, timeout=2 if use_lock else 120)
    real = net.model.train_on_batch

    def held(*args, **kwargs):
        out = real(*args, **kwargs)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return out
    net.model.train_on_batch = held
    threads = [threading.Thread(target=net.train, args=(x, y)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorded = sorted(h['step'] for h in net.history['train'])
    if use_lock:
        assert steps(net) == 2 and recorded == [1, 2]
    else:
        assert recorded == [steps(net)] * 2 and steps(net) in (1, 2)


def test_steps_counted_by_train_follow_the_optimizer_across_runs_loads_and_outside_training(tmp_path):
    # train counts its steps instead of reading the optimizer each batch (NOTE [ Counted steps ] in keras.py)
    x, y = ks.separable(32)
    p = (ks.dataset(64).p.init_model('net', KerasModel, 'static', ks.compiled_config())
         .train_model('net', B('images'), B('labels')))
    p.run(16, n_epochs=1)
    net = p.get_model_by_name('net')
    net.model.fit(x, y, batch_size=16, epochs=1, verbose=0)          # 2 steps outside train, between runs
    p.run(16, n_epochs=1)
    assert [h['step'] for h in net.history['train']] == [1, 2, 3, 4, 7, 8, 9, 10] and net.step == 10
    net.save(tmp_path / 'm.keras')
    net.train(x, y)
    net.load(tmp_path / 'm.keras')                                    # back to step 10
    net.train(x, y)
    assert net.history['train'][-1]['step'] == 11 == net.step


# --- regressions ---------------------------------------------------------------------------------------------------
def test_resume_with_a_plain_function_loss_restores_step_optimizer_and_predictions(tmp_path):
    x, y = ks.separable(64)
    cfg = {'model': ks.mlp, 'loss': ks.mae_loss, 'model_dir': str(tmp_path), 'save_summary_steps': None}
    net = KerasModel(cfg)
    for _ in range(4):
        net.train(x, y)
    net.on_run_end()
    again = KerasModel(cfg)
    assert steps(again) == 4 == again.step
    assert len(again.optimizer.variables) == len(net.optimizer.variables) > 2
    for a, b in zip(again.optimizer.variables, net.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(again.predict(x), net.predict(x))
    again.train(x, y)
    net.train(x, y)
    assert again.history['train'][-1]['step'] == 5
    np.testing.assert_allclose(again.predict(x), net.predict(x), rtol=1e-5, atol=1e-6)


def test_resume_restores_into_the_users_model_object(tmp_path):
    x, y = ks.separable(64)
    net = KerasModel({'model': ks.mlp(), 'loss': ks.mae_loss, 'model_dir': str(tmp_path)})
    for _ in range(3):
        net.train(x, y)
    net.on_run_end()
    mine = ks.mlp()
    again = KerasModel({'model': mine, 'loss': ks.mae_loss, 'model_dir': str(tmp_path)})
    assert again.model is mine and steps(again) == 3 == int(mine.optimizer.iterations.numpy())
    np.testing.assert_array_equal(mine.predict_on_batch(x), net.predict(x))


def test_resume_with_another_optimizer_than_the_checkpoints_is_refused(tmp_path):
    x, y = ks.separable(32)
    net = KerasModel(ks.compiled_config(model_dir=str(tmp_path)))
    net.train(x, y)
    net.on_run_end()
    with pytest.raises(ModelError, match=r"to hold the state of .*optimizer \(SGD\)"):
        KerasModel(ks.compiled_config(model_dir=str(tmp_path), optimizer='sgd'))


def test_load_with_build_false_finds_the_configs_loss_function(tmp_path):
    x, y = ks.separable(32)
    net = KerasModel({'model': ks.mlp, 'loss': ks.mae_loss})
    net.train(x, y)
    net.save(tmp_path / 'net.keras')
    loaded = KerasModel({'build': False, 'loss': ks.mae_loss, 'load': {'path': str(tmp_path / 'net.keras')}})
    assert steps(loaded) == 1
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))


def test_load_with_build_false_takes_custom_objects_and_names_them_when_missing(tmp_path):
    x, y = ks.separable(32)
    net = KerasModel({'model': ks.mlp, 'loss': ks.mae_loss})
    net.train(x, y)
    net.save(tmp_path / 'net.keras')
    load = {'path': str(tmp_path / 'net.keras')}
    loaded = KerasModel({'build': False, 'custom_objects': {'mae_loss': ks.mae_loss}, 'load': load})
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    with pytest.raises(ModelError, match=r"load the Keras model file .*net\.keras.*config\['custom_objects'\]"):
        KerasModel({'build': False, 'load': load})


def test_save_into_a_missing_folder_names_the_users_path(tmp_path):
    net = KerasModel(ks.compiled_config())
    target = tmp_path / 'nodir' / 'x.keras'
    with pytest.raises(ModelError, match=r"Expected the folder of '.*nodir/x\.keras' to exist .* does not exist"):
        net.save(target)
    assert not (tmp_path / 'nodir').exists() and os.listdir(tmp_path) == []


def test_the_last_partial_summary_window_is_written_at_run_end(tmp_path):
    x, y = ks.separable(32)
    net = KerasModel(ks.compiled_config(model_dir=str(tmp_path), save_summary_steps=2))
    for _ in range(7):
        net.train(x, y)
    net.on_run_end()
    net.on_run_end()                                     # nothing pending: nothing more written
    net.model_dir.close()
    written = {}
    for path in glob.glob(str(tmp_path / 'events.*')):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                written.setdefault(v.tag, []).append((event.step, float(tf.make_ndarray(v.tensor))))
    assert [s for s, _ in written['loss']] == [2, 4, 6, 7]
    assert written['loss'][-1][1] == pytest.approx(net.history['train'][-1]['loss'], rel=1e-6)


def test_a_compiled_model_with_compile_options_in_the_config_is_refused():
    model = ks.mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss='mae')
    with pytest.raises(ModelError, match=r"Expected either a compiled Keras model or config \['loss', 'optimizer'\]"
                                         r" .* Received: both, model 'mlp' already compiled \(optimizer SGD"):
        KerasModel({'model': model, 'loss': 'mse', 'optimizer': 'adam'})
    assert isinstance(KerasModel({'model': model}).optimizer, keras.optimizers.SGD)


@pytest.mark.parametrize('config, message', [
    ({'loss': 'msee'}, r"config\['loss'\] .* Received: 'msee', which Keras does not know"),
    ({'loss': 'mse', 'optimizer': 'adamm'}, r"config\['optimizer'\] .* Received: 'adamm', which Keras does not know"),
])
def test_unknown_loss_or_optimizer_names_fail_at_construction(config, message):
    with pytest.raises(ModelError, match=message):
        KerasModel({'model': ks.mlp, **config})
