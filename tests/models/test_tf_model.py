"""TFModel: an Estimator model_fn trained, evaluated and served batch by batch, with its model_dir."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from types import SimpleNamespace

import numpy as np
import pytest

import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

import tf_support as ts  # noqa: E402
from batchkit import BatchkitError, signals  # noqa: E402
from batchkit.errors import ModelError  # noqa: E402
from batchkit.models import EstimatorSpec, ModeKeys, TFModel  # noqa: E402

pytestmark = pytest.mark.tf
HERE = os.path.dirname(os.path.abspath(__file__))
X, Y = ts.make_blobs(320, seed=0)
XT, YT = ts.make_blobs(200, seed=1)
PARAMS = {'hidden': 16, 'learning_rate': 0.05}


def make(model_dir=None, fn=ts.classifier_fn, params=PARAMS, **options):
    return TFModel({'model_fn': fn, 'params': params, 'model_dir': model_dir, **options})


def train(model, n_steps, start=0, batch=32):
    losses = []
    for i in range(start, start + n_steps):
        j = i % (len(X) // batch) * batch
        losses.append(model.train({'x': X[j:j + batch]}, Y[j:j + batch]))
    return losses


def weights(model):
    variables = model.graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
    return dict(zip([v.op.name for v in variables], model.session.run(variables)))


# --- the three modes ----------------------------------------------------------------------------------------
def test_train_eval_predict_share_one_graph_and_learn(tmp_path):
    model = make(tmp_path)
    losses = train(model, 60)
    assert all(isinstance(loss, float) for loss in losses)
    assert np.mean(losses[-5:]) < 0.2 * np.mean(losses[:5])
    assert model.step == 60
    result = model.test({'x': XT}, YT)
    assert set(result) == {'loss', 'accuracy'} and result['accuracy'] > 0.9
    predictions = model.predict({'x': XT})
    assert predictions['classes'].dtype == np.int32 and predictions['probabilities'].shape == (200, ts.N_CLASSES)
    assert np.mean(predictions['classes'] == YT) == pytest.approx(result['accuracy'])
    assert model.step == 60                                    # eval and predict take no optimizer step
    assert len({op.graph for op in (model.global_step, *model._modes['train']['fetches'].values())}) == 1


def test_eval_metrics_accumulate_until_reset(tmp_path):
    model = make(tmp_path)
    train(model, 40)
    half = [model.test({'x': XT[i:i + 50]}, YT[i:i + 50])['accuracy'] for i in range(0, 200, 50)]
    whole = np.mean(model.predict({'x': XT})['classes'] == YT)
    assert half[-1] == pytest.approx(whole)                   # the update ops accumulated over the four batches
    wrong = model.test({'x': XT[:50]}, (YT[:50] + 1) % ts.N_CLASSES)['accuracy']
    assert wrong < half[-1]                                   # still accumulating: 200 right-ish + 50 wrong
    model.reset_metrics()
    assert model.test({'x': XT[:50]}, (YT[:50] + 1) % ts.N_CLASSES)['accuracy'] < 0.1


def test_array_features_and_attribute_params(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype('float32')
    y = x @ np.array([[1.0], [-2.0], [0.5]], 'float32')
    model = make(tmp_path, fn=ts.regression_fn, params=SimpleNamespace(learning_rate=0.2))
    losses = [model.train(x, y) for _ in range(50)]
    assert losses[-1] < 1e-3 * losses[0]
    assert isinstance(model.predict(x), np.ndarray) and model.predict(x).shape == (64, 1)


def test_keras_layers_created_once_are_shared_across_modes(tmp_path):
    params = {'hidden': keras.layers.Dense(16, activation='relu'), 'head': keras.layers.Dense(ts.N_CLASSES)}
    model = make(tmp_path, fn=ts.keras_layers_fn, params=params)
    before = model.predict({'x': XT})
    train(model, 40)
    after = model.predict({'x': XT})                          # PREDICT built first, sees TRAIN's updates
    assert not np.allclose(before, after) and np.mean(after.argmax(-1) == YT) > 0.9


def test_keras_layers_created_inside_model_fn_are_refused(tmp_path):
    model = make(tmp_path, fn=ts.keras_inside_fn)
    train(model, 2)
    with pytest.raises(BatchkitError, match=r"share its variables across modes.*Create Keras layers once"):
        model.predict({'x': XT})


def test_keras_train_on_batch_still_works_after_tfmodel(tmp_path):
    model = make(tmp_path)
    train(model, 3)
    model.predict({'x': XT})
    assert tf.executing_eagerly()
    net = keras.Sequential([keras.Input((ts.N_FEATURES,)), keras.layers.Dense(ts.N_CLASSES)])
    net.compile('adam', 'sparse_categorical_crossentropy')
    loss = net.train_on_batch(X[:32], Y[:32])
    assert isinstance(float(np.asarray(loss)), float) and np.isfinite(loss)


# --- errors ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(('fn', 'call', 'message'), [
    (ts.no_spec_fn, 'train', r"TFModel\(no_spec_fn\) to return a batchkit.models.EstimatorSpec.*Received: dict"),
    (ts.no_train_op_fn, 'train', r"TFModel\(no_train_op_fn\) in mode 'train' to have `train_op`.*Received: train_op=None"),
    (ts.classifier_fn, 'shape', r"features\['x'\] of TFModel\(classifier_fn\) to have shape \(None, 6\).*Received: shape "
                                r"\(4, 5\)"),
    (ts.classifier_fn, 'keys', r"features of TFModel\(classifier_fn\) to be a dict with keys \['x'\].*Received: \['y'\]"),
])
def test_errors_name_the_model_expected_and_received(tmp_path, fn, call, message):
    model = make(tmp_path, fn=fn)
    with pytest.raises(BatchkitError, match=message):
        if call == 'train':
            model.train({'x': X[:4]}, Y[:4])
        else:
            model.train({'x': X[:4]}, Y[:4])
            bad = {'x': X[:4, :5]} if call == 'shape' else {'y': X[:4]}
            model.train(bad, Y[:4])


def test_a_model_dir_of_another_model_is_refused(tmp_path):
    model = make(tmp_path)
    train(model, 2)
    model.save()
    with pytest.raises(BatchkitError, match=r"hold checkpoints of .*regression_fn.*Received: a directory with checkpoints of .*classifier_fn.*another model_dir"):
        make(tmp_path, fn=ts.regression_fn, params=SimpleNamespace(learning_rate=0.1))


@pytest.mark.parametrize('option', ['save_checkpoints_steps', 'keep_checkpoint_max', 'save_summary_steps'])
def test_bad_options(tmp_path, option):
    with pytest.raises(ValueError, match=rf"`{option}`.*positive.*Received: {option}=0"):
        make(tmp_path, **{option: 0})


# --- checkpoints ----------------------------------------------------------------------------------------------
def test_resume_continues_the_step_and_the_adam_slots(tmp_path):
    first = make(tmp_path, save_checkpoints_steps=1000)
    train(first, 25)
    first.save()
    saved = weights(first)
    assert any('Adam' in name for name in saved)
    second = make(tmp_path)
    assert second.step == 25
    second.predict({'x': XT[:4]})                            # PREDICT first: TRAIN's slots come later
    train(second, 1, start=25)
    train(first, 1, start=25)
    a, b = weights(first), weights(second)
    assert set(a) == set(b) and a['global_step'] == b['global_step'] == 26
    for name in a:                                            # one identical step from identical state
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_checkpoints_every_n_steps_keep_the_last_k_and_signal(tmp_path):
    seen = []
    receiver = lambda sender, **kw: seen.append((kw['step'], kw['path']))  # noqa: E731
    signals.checkpoint_saved.connect(receiver, weak=False)
    try:
        model = make(tmp_path, save_checkpoints_steps=5, keep_checkpoint_max=2)
        train(model, 23)
        model.close()
    finally:
        signals.checkpoint_saved.disconnect(receiver)
    assert [s for s, _ in seen] == [5, 10, 15, 20, 23]
    assert all(path == os.path.join(str(tmp_path), f'ckpt-{s}') for s, path in seen)
    assert sorted(f for f in os.listdir(tmp_path) if f.startswith('ckpt-')) == ['ckpt-20', 'ckpt-23']
    assert sorted(os.listdir(tmp_path / 'ckpt-23')) == ['model.ckpt.data-00000-of-00001', 'model.ckpt.index']
    assert make(tmp_path).step == 23


def test_checkpoints_by_seconds(tmp_path):
    model = make(tmp_path, save_checkpoints_secs=1e-6)
    train(model, 3)
    assert sorted(f for f in os.listdir(tmp_path) if f.startswith('ckpt-')) == ['ckpt-1', 'ckpt-2', 'ckpt-3']


KILL_SCRIPT = textwrap.dedent('''
    import os, signal, sys
    sys.path.insert(0, {here!r})
    import tf_support as ts
    from batchkit.models import TFModel
    X, Y = ts.make_blobs(64)
    model = TFModel({{'model_fn': ts.classifier_fn, 'params': {{'hidden': 16, 'learning_rate': 0.05}},
                     'model_dir': {model_dir!r}, 'save_checkpoints_steps': 10}})
    replace = os.replace
    def dying_replace(src, dst):
        if os.path.basename(dst) == 'ckpt-20' and {when!r} == 'before':
            os.kill(os.getpid(), signal.SIGKILL)              # the Saver files written, not yet moved in place
        replace(src, dst)
        if os.path.basename(dst) == 'ckpt-20' and {when!r} == 'after':
            os.kill(os.getpid(), signal.SIGKILL)              # moved in place, the index not yet updated
    os.replace = dying_replace
    for i in range(25):
        model.train({{'x': X[:32]}}, Y[:32])
''')


@pytest.mark.slow
@pytest.mark.parametrize('when', ['before', 'after'])
def test_sigkill_mid_checkpoint_leaves_the_previous_one_loadable(tmp_path, when):
    script = KILL_SCRIPT.format(here=HERE, model_dir=str(tmp_path), when=when)
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    leftover = [f for f in os.listdir(tmp_path) if f.startswith('.tmp-') and f.endswith('ckpt-20') or f == 'ckpt-20']
    assert leftover, os.listdir(tmp_path)                     # it really died mid-save
    model = make(tmp_path)
    assert model.step == 10
    assert model.test({'x': XT}, YT)['loss'] < 1.0            # the weights of step 10, not the initial ones
    train(model, 1)
    model.save()
    assert sorted(f for f in os.listdir(tmp_path) if 'ckpt-' in f) == ['ckpt-10', 'ckpt-11']   # leftovers gone


# --- seed, warm start, summaries, export, source ----------------------------------------------------------------
def test_seed_gives_identical_weights(tmp_path):
    runs = []
    for i, seed in enumerate((7, 7, 8)):
        model = make(tmp_path / str(i), seed=seed)
        train(model, 5)
        runs.append(weights(model))
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not np.array_equal(runs[0]['model/w1'], runs[2]['model/w1'])


def test_warm_start_only_without_own_checkpoints(tmp_path):
    source = make(tmp_path / 'source', seed=1)
    train(source, 30)
    source.save()
    warm = make(tmp_path / 'warm', seed=2, warm_start_from=str(tmp_path / 'source'))
    assert warm.step == 0
    assert warm.test({'x': XT}, YT)['accuracy'] > 0.9          # trained weights, not the seed-2 ones
    np.testing.assert_array_equal(weights(warm)['model/w1'], weights(source)['model/w1'])
    train(warm, 3)
    warm.save()
    own = weights(warm)
    again = make(tmp_path / 'warm', warm_start_from=str(tmp_path / 'source'))
    assert again.step == 3
    again.predict({'x': XT[:2]})
    np.testing.assert_array_equal(weights(again)['model/w1'], own['model/w1'])


def test_summaries_are_readable_with_summary_iterator(tmp_path):
    model = make(tmp_path, save_summary_steps=4)
    losses = train(model, 13)
    model.test({'x': XT}, YT)
    model.close()
    scalars: dict = {}
    for root, _, files in os.walk(tmp_path):
        for name in files:
            if name.startswith('events.out.tfevents'):
                for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                    for value in event.summary.value:
                        tag = os.path.relpath(os.path.join(root, value.tag), tmp_path)
                        scalars.setdefault(tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    assert [s for s, _ in scalars['loss']] == [4, 8, 12, 13]        # 13: the last, partial window, at close
    assert scalars['loss'][-1][1] == pytest.approx(losses[-1], rel=1e-5)
    assert [s for s, _ in scalars['steps_per_sec']] == [8, 12, 13] and all(v > 0 for _, v in scalars['steps_per_sec'])
    assert scalars['eval/accuracy'][0][0] == 13 and 0 <= scalars['eval/accuracy'][0][1] <= 1
    assert [s for s, _ in scalars['eval/loss']] == [13]


@pytest.mark.parametrize('fn', [ts.classifier_fn, ts.regression_fn])
def test_export_serves_the_same_predictions(tmp_path, fn):
    if fn is ts.classifier_fn:
        model, features = make(tmp_path / 'dir'), {'x': XT[:16]}
        train(model, 10)
    else:
        model, features = make(tmp_path / 'dir', fn=fn, params=SimpleNamespace(learning_rate=0.1)), XT[:16, :3]
    expected = model.predict(features)
    path = model.export(str(tmp_path / 'export'))
    serve = tf.saved_model.load(path).signatures['serving_default']
    inputs = features if isinstance(features, dict) else {'features': features}
    got = {k: v.numpy() for k, v in serve(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
    if isinstance(expected, dict):
        assert set(got) == set(expected)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-6)
    else:
        np.testing.assert_allclose(got['y'], expected, rtol=1e-6)   # named by export_outputs


def test_model_fn_module_is_copied_byte_for_byte(tmp_path):
    make(tmp_path)
    with open(ts.__file__, 'rb') as a, open(tmp_path / 'source' / 'tf_support.py', 'rb') as b:
        assert a.read() == b.read()


def test_model_dir_none_is_a_temporary_directory_removed_at_exit():
    script = textwrap.dedent(f'''
        import sys; sys.path.insert(0, {HERE!r})
        import tf_support as ts
        from batchkit.models import TFModel
        m = TFModel({{'model_fn': ts.classifier_fn, 'params': {{'hidden': 4, 'learning_rate': 0.1}}}})
        X, Y = ts.make_blobs(8)
        m.train({{'x': X}}, Y); m.save()
        print(m.model_dir.path)
    ''')
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=300)
    path = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0 and path and not os.path.exists(path), proc.stderr[-2000:]


# --- threads --------------------------------------------------------------------------------------------------
def test_eight_threads_of_100_locked_train_calls_take_800_steps(tmp_path):
    model, lock = make(tmp_path, save_checkpoints_steps=10 ** 6), threading.Lock()
    train(model, 1)
    errors = []

    def worker(k):
        try:
            for i in range(100):
                j = (k * 100 + i) % 10 * 32
                with lock:
                    model.train({'x': X[j:j + 32]}, Y[j:j + 32])
        except Exception as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and model.step == 801


def test_estimator_spec_and_mode_keys_need_no_tensorflow():
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from batchkit.models import EstimatorSpec, ModeKeys\n"
            "print(EstimatorSpec(ModeKeys.TRAIN, loss=1, train_op=2).check('m').mode)")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == 'train', proc.stderr[-1000:]
    assert EstimatorSpec(ModeKeys.EVAL, None, 1.0).loss == 1.0     # tf.estimator's positional order


def test_save_to_a_path_and_load_with_build_false(tmp_path):
    model = make(tmp_path / 'a')
    train(model, 12)
    model.save(str(tmp_path / 'saved'))
    assert sorted(os.listdir(tmp_path / 'saved')) == ['model.ckpt.data-00000-of-00001', 'model.ckpt.index']
    other = TFModel({'model_fn': ts.classifier_fn, 'params': PARAMS, 'model_dir': str(tmp_path / 'b'),
                     'build': False, 'load': {'path': str(tmp_path / 'saved')}})
    assert other.step == 12
    np.testing.assert_allclose(other.predict({'x': XT})['probabilities'], model.predict({'x': XT})['probabilities'],
                               rtol=1e-6)


def test_tfmodel_in_a_pipeline_under_prefetch_takes_one_step_per_batch(tmp_path):
    from batchkit import ArrayBatch, B, Dataset, F, V

    class Points(ArrayBatch):
        components = ('images', 'labels')
    ds = Dataset(len(X), batch_class=Points, preloaded={'images': X, 'labels': Y})
    p = (ds.p.init_model('clf', TFModel, 'static', config={'model_fn': ts.classifier_fn, 'params': PARAMS,
                                                          'model_dir': str(tmp_path), 'save_checkpoints_steps': 50})
         .init_variable('loss', default=list)
         .train_model('clf', F(lambda b: {'x': b.images}), B('labels'), save_to=V('loss', mode='a')))
    p.run(8, n_epochs=2, prefetch=4)
    model = p.get_model_by_name('clf')
    assert model.step == len(p.get_variable('loss')) == 80
    assert model.model_dir.dir.latest().step == 80                 # the end-of-run checkpoint (on_run_end)


def test_each_evaluation_run_starts_its_eval_metrics_from_zero(tmp_path):
    from batchkit import ArrayBatch, B, Dataset, F, V

    class Points(ArrayBatch):
        components = ('images', 'labels')
    model = make(tmp_path)
    train(model, 40)
    features = F(lambda b: {'x': b.images})
    wrong = Dataset(len(XT), batch_class=Points, preloaded={'images': XT, 'labels': (YT + 1) % ts.N_CLASSES})
    right = Dataset(len(XT), batch_class=Points, preloaded={'images': XT, 'labels': YT})

    def evaluate(ds):
        p = (ds.p.init_model('clf', lambda config: model, 'static').init_variable('result')
             .test_model('clf', features, B('labels'), save_to=V('result')))
        p.run(50, prefetch=2)
        return p.get_variable('result')['accuracy']
    expected = np.mean(model.predict({'x': XT})['classes'] == YT)
    assert evaluate(wrong) < 0.1
    assert evaluate(right) == pytest.approx(expected)       # not the mean over both runs (about 0.5)
    assert evaluate(right) == pytest.approx(expected)       # nor over two runs of its own
    assert model.step == 40
    # a run without test_model (training, here) leaves an evaluation in progress alone
    model.reset_metrics()
    first = model.test({'x': XT[:100]}, YT[:100])['accuracy']
    trainer = (right.p.init_model('clf', lambda config: model, 'static')
               .train_model('clf', features, B('labels')))
    trainer.run(50, n_iters=1)
    assert model.step == 41
    both = model.test({'x': XT[100:]}, (YT[100:] + 1) % ts.N_CLASSES)['accuracy']
    assert both == pytest.approx(first / 2, abs=0.05)       # 100 right-ish and 100 wrong: still accumulating


def test_without_tensorflow_the_import_error_gives_the_pip_command():
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "try:\n    from batchkit.models import TFModel\n"
            "except ImportError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert "pip install 'batchkit[tf]'" in proc.stdout, proc.stderr[-1000:]


@pytest.mark.parametrize(('call', 'message'), [
    (lambda m: m.train({'x': X[:4]}, None), r"Expected labels for TFModel\(classifier_fn\) in mode 'train'"),
    (lambda m: m.test({'x': X[:4]}, None), r"Expected labels for TFModel\(classifier_fn\) in mode 'eval'"),
    (lambda m: m.train({'x': X[:4]}, {'y': Y[:4]}), r"labels of TFModel\(classifier_fn\) to have shape \(None,\)"
                                                    r".*Received: a dict with keys \['y'\]"),
    (lambda m: m.export('nowhere'), r"to have seen a batch before export"),
    (lambda m: TFModel({**m.config, 'export_format': 'onnx'}),          # refused when made, not at export
     r"`export_format` of TFModel\(classifier_fn\) to be one of \['tf_saved_model', 'saved_model'\] or None\. "
     r"Received: export_format='onnx'"),
])
def test_more_call_errors(tmp_path, call, message):
    model = make(tmp_path)
    if 'dict' in message:
        train(model, 1)
    with pytest.raises(BatchkitError, match=message):
        call(model)


def test_a_run_that_only_evaluates_writes_no_checkpoint(tmp_path):
    model = make(tmp_path)
    model.test({'x': XT}, YT)                                  # builds TRAIN too (NOTE [ Names of optimizer state ])
    model.on_run_end()
    assert model.model_dir.dir.latest() is None
    train(model, 2)
    model.on_run_end()
    model.on_run_end()
    assert [c.step for c in model.model_dir.dir.checkpoints()] == [2]


# --- resume, step and summary defects -------------------------------------------------------------------------
RX = np.random.default_rng(3).normal(size=(64, 4)).astype('float32')
RY = (RX @ np.array([[1.0], [-2.0], [0.5], [3.0]], 'float32')).astype('float32')


def train_regression(model, n_steps):
    return [model.train(RX[i % 4 * 16:(i % 4 + 1) * 16], RY[i % 4 * 16:(i % 4 + 1) * 16]) for i in range(n_steps)]


@pytest.mark.parametrize('params, message', [
    ({'h': 16}, r"model/w1: checkpoint \(4, 8\) vs graph \(4, 16\); model/w2: checkpoint \(8, 1\) vs graph "
                r"\(16, 1\)"),
    ({'h': 8, 'first': 'w3'}, r"model/w3: not in checkpoint, graph \(4, 8\)"),
])
@pytest.mark.parametrize('first_call', ['train', 'predict'])
def test_resuming_from_a_checkpoint_that_does_not_fit_the_graph_is_an_error(tmp_path, params, message, first_call):
    old = make(tmp_path / 'm', fn=ts.sized_fn, params={'h': 8})
    train_regression(old, 50)
    old.on_run_end()
    new = make(tmp_path / 'm', fn=ts.sized_fn, params=params)
    assert new.step == 50
    call = (lambda: train_regression(new, 1)) if first_call == 'train' else (lambda: new.predict(RX[:2]))
    for _ in range(2):                                         # a retry does not train fresh variables either
        with pytest.raises(ModelError, match=message) as info:
            call()
    text = str(info.value)
    assert str(tmp_path / 'm') in text and 'new model_dir' in text and 'warm_start_from' in text
    assert new.step == 50


def test_warm_start_still_restores_the_variables_that_fit(tmp_path):
    old = make(tmp_path / 'm', fn=ts.sized_fn, params={'h': 8})
    train_regression(old, 5)
    old.on_run_end()
    warm = make(tmp_path / 'w', fn=ts.sized_fn, params={'h': 8, 'first': 'w3'}, warm_start_from=str(tmp_path / 'm'))
    train_regression(warm, 1)                                  # w3 is new, w2 is warm started: no error
    assert warm.step == 1


def test_a_train_op_that_does_not_advance_the_step_loses_no_training(tmp_path, caplog):
    caplog.set_level('WARNING', logger='batchkit')
    model = make(tmp_path, fn=ts.no_global_step_fn, params={})
    train_regression(model, 3)
    model.on_run_end()
    train_regression(model, 30)
    model.on_run_end()
    assert model.step == 0
    assert [c.step for c in model.model_dir.dir.checkpoints()] == [0]
    assert [e for e in os.listdir(tmp_path) if e.startswith('ckpt-')] == [os.path.basename(
        model.model_dir.dir.latest().path)]                   # the replaced checkpoint is gone
    again = make(tmp_path, fn=ts.no_global_step_fn, params={})
    np.testing.assert_array_equal(again.predict(RX), model.predict(RX))   # the state after 33 steps, not 3
    warned = [r for r in caplog.records if 'advance the global step' in r.getMessage()]
    assert len(warned) == 1 and warned[0].name == 'batchkit'
    assert 'global_step=tf.compat.v1.train.get_or_create_global_step()' in warned[0].getMessage()


def test_a_train_op_that_advances_the_step_gives_no_warning(tmp_path, caplog):
    caplog.set_level('WARNING', logger='batchkit')
    model = make(tmp_path, fn=ts.sized_fn, params={'h': 4})
    train_regression(model, 3)
    model.on_run_end()
    assert not [r for r in caplog.records if 'advance the global step' in r.getMessage()]


def read_scalars(logdir):
    scalars: dict = {}
    for name in sorted(os.listdir(logdir)):
        if name.startswith('events.out.tfevents'):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(logdir, name)):
                for value in event.summary.value:
                    scalars.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return scalars


def test_one_eval_summary_per_evaluation_holds_the_mean_loss_and_final_metrics(tmp_path):
    model = make(tmp_path)
    train(model, 5)
    results = [model.test({'x': XT[i:i + 50]}, YT[i:i + 50]) for i in range(0, 200, 50)]
    assert len({r['loss'] for r in results}) > 1
    assert not os.path.isdir(tmp_path / 'eval') or not read_scalars(tmp_path / 'eval')   # nothing per test() call
    model.on_run_end()
    scalars = read_scalars(tmp_path / 'eval')
    assert [s for s, _ in scalars['loss']] == [5]
    assert scalars['loss'][0][1] == pytest.approx(np.mean([r['loss'] for r in results]), rel=1e-6)
    assert scalars['accuracy'] == [(5, pytest.approx(results[-1]['accuracy'], rel=1e-6))]
    model.on_run_end()                                         # no test() since: no second summary
    model.reset_metrics()
    second = model.test({'x': XT[:50]}, YT[:50])
    model.close()
    scalars = read_scalars(tmp_path / 'eval')
    assert [v for _, v in scalars['loss']] == [pytest.approx(scalars['loss'][0][1]), pytest.approx(second['loss'])]


def test_a_model_dir_that_is_a_file_is_an_error(tmp_path):
    path = tmp_path / 'file'
    path.write_text('x')
    with pytest.raises(ModelError, match=r"`model_dir`.*directory.*Received: model_dir='.*file'"):
        make(str(path))
