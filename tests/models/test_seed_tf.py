"""The TensorFlow examples of seeds 000 (TF1 graphs in @model descriptors) and 004 (the Estimator workflow)."""
from __future__ import annotations

import datetime
import os
import shutil
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import tensorflow as tf  # noqa: E402

import tf_support as ts  # noqa: E402
from batchkit import ArrayBatch, B, Dataset, F, V, action, model  # noqa: E402
from batchkit.models import TFModel  # noqa: E402

pytestmark = pytest.mark.tf
BUILDS = {'static': 0, 'dynamic': 0}
_BUILDS_LOCK = threading.Lock()


def _count(mode):
    with _BUILDS_LOCK:
        BUILDS[mode] += 1


# --- seed 000: TensorFlow 1 graphs in @model descriptors -----------------------------------------------------
class TFBatch(ArrayBatch):
    """Seed 000's batch class, its graphs each in a tf.Graph and session of their own (eager stays on)."""
    components = ('images', 'labels')

    @model(mode='static')
    def basic_model():
        _count('static')
        with tf.Graph().as_default() as graph:
            input_data = tf.compat.v1.placeholder('float', [None, ts.N_FEATURES])
            target = tf.compat.v1.placeholder('float', [None])
            w = tf.compat.v1.get_variable('w', [ts.N_FEATURES, 1], initializer=tf.compat.v1.zeros_initializer())
            model_output = tf.matmul(input_data, w)[:, 0]
            cost = tf.reduce_mean(tf.square(target - model_output))
            step = tf.compat.v1.train.get_or_create_global_step()
            optimizer = tf.compat.v1.train.AdamOptimizer(0.1).minimize(cost, global_step=step)
            session = tf.compat.v1.Session(graph=graph)
            session.run(tf.compat.v1.global_variables_initializer())
        return [(input_data, target), (optimizer, cost, step), session]

    @model(mode='dynamic')
    def advanced_model(self):
        _count('dynamic')
        with tf.Graph().as_default():
            input_data = tf.compat.v1.placeholder('float', (None,) + self.images.shape[1:])
            target = tf.compat.v1.placeholder('float', [None])
            w = tf.compat.v1.get_variable('w', self.images.shape[1:] + (1,))
            cost = tf.reduce_mean(tf.square(target - tf.matmul(input_data, w)[:, 0]))
            steps = tf.compat.v1.train.get_or_create_global_step()
            optimizer = tf.compat.v1.train.AdamOptimizer(0.1).minimize(cost, global_step=steps)
            session = tf.compat.v1.Session()
            session.run(tf.compat.v1.global_variables_initializer())
        return dict(session=session, input_data=input_data, target=target, train_step=optimizer, cost=cost,
                    steps=steps)

    @action(model='basic_model', use_lock='basic_model_lock')
    def train_it(self, model_spec):
        (input_images, input_labels), (optimizer, cost, _), session = model_spec
        _, self.loss = session.run([optimizer, cost], feed_dict={input_images: self.images,
                                                                 input_labels: self.labels})
        return self

    @action(model='basic_model', use_lock="some_model_lock")
    def train_with_session(self, model_spec):
        # seed 000's parallel-training example: the session comes from a pipeline variable
        input_images, input_labels = model_spec[0]
        optimizer, cost, _ = model_spec[1]
        session = self.pipeline.get_variable("session")
        _, loss = session.run([optimizer, cost], feed_dict={input_images: self.images, input_labels: self.labels})
        return self

    @action(model='advanced_model', use_lock='advanced_model_lock')
    def train_advanced(self, model_spec):
        _, self.loss = model_spec['session'].run([model_spec['train_step'], model_spec['cost']], feed_dict={
            model_spec['input_data']: self.images, model_spec['target']: self.labels})
        return self


def _regression(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, ts.N_FEATURES)).astype('float32')
    return x, (x @ np.arange(1, ts.N_FEATURES + 1, dtype='float32')).astype('float32')


@pytest.fixture
def tf_ds():
    x, y = _regression(400, seed=0)
    return Dataset(len(x), batch_class=TFBatch, preloaded={'images': x, 'labels': y})


def test_static_tf1_graph_trains_under_prefetch_with_use_lock(tf_ds):
    assert BUILDS['static'] == 1                             # built when the class was created
    p = tf_ds.p.init_variable('loss', default=list).train_it().update(V('loss', mode='a'), B('loss'))
    p.run(10, n_epochs=5, prefetch=4)
    _, (_, _, step), session = TFBatch.class_model('basic_model')
    assert session.run(step) == 200                          # every batch one optimizer step, none lost
    losses = p.get_variable('loss')
    assert np.mean(losses[-5:]) < 0.05 * np.mean(losses[:5])
    assert BUILDS['static'] == 1 and tf.executing_eagerly()


def test_session_from_a_pipeline_variable_under_prefetch(tf_ds):
    _, (_, _, step), session = TFBatch.class_model('basic_model')
    before = session.run(step)
    p = tf_ds.p.init_variable("session", session).train_with_session()
    p.run(20, n_epochs=3, prefetch=4)
    assert session.run(step) - before == 60


def test_dynamic_tf1_graph_built_once_from_the_first_batch_under_prefetch(tf_ds):
    before = BUILDS['dynamic']
    p = tf_ds.p.train_advanced()
    p.run(8, n_epochs=4, prefetch=4)
    spec = p.get_model_by_name('advanced_model')
    assert BUILDS['dynamic'] == before + 1
    assert spec['input_data'].shape.as_list() == [None, ts.N_FEATURES]
    assert spec['session'].run(spec['steps']) == 200


# --- seed 004: the Estimator workflow -----------------------------------------------------------------------
# Seed 004's code/model.py, adapted only in its imports (tf.estimator -> batchkit.models.estimator, tf.contrib ->
# stand-ins from tf_support) and TF1 spellings (tf.metrics / tf.train -> tf.compat.v1.*). The seed's model_fn
# template is filled in (its `...`) with a one-layer regression to make it runnable.
SEED_MODEL_PY = textwrap.dedent('''
    import tensorflow as tf
    from batchkit.models import estimator
    from batchkit.models.estimator import EstimatorSpec
    from tf_support import contrib


    def load_estimator(model_fn=None, model_dir=None, config=None, params=None):
        return estimator.Estimator(model_fn=model_fn, model_dir=model_dir, config=config, params=params)


    def template_model_fn(features, labels, mode, params):
        # 1. Define model structure
        w = tf.compat.v1.get_variable('w', (features['x'].shape[-1], 1))
        output_var = tf.matmul(features['x'], w)[:, 0]
        output = tf.cast(output_var, tf.float64)
        predictions = {'output_str': output_var}   # the seed's last line uses it outside the PREDICT branch

        # 2. Generate predictions
        if mode == estimator.ModeKeys.PREDICT:
            predictions = {'output_str': output_var} # alter this dictionary for your model
            return estimator.EstimatorSpec(mode=mode, predictions=predictions)

        # 3. Define the loss functions
        loss = tf.reduce_mean(tf.square(output_var - labels))

        # 3.1 Additional metrics for monitoring
        eval_metric_ops = {"rmse": tf.compat.v1.metrics.root_mean_squared_error(
              tf.cast(labels, tf.float64), output)}

        # 4. Define optimizer
        optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate=params['learning_rate'])
        train_op = optimizer.minimize(loss=loss, global_step=tf.compat.v1.train.get_global_step())

        # 5. Return training/evaluation EstimatorSpec
        return EstimatorSpec(mode, predictions, loss, train_op, eval_metric_ops)


    def model_fn(features, labels, mode, params):
        # 1. Define model structure
        for l in range(params.num_layers):
            lparams = params.layers[l]
            if l == 0:
                h = features['image']
            elif lparams['type'] == 'fc' and len(h.get_shape().as_list()) != 2:
                h = contrib.layers.flatten(h)
            if lparams['type'] == 'conv':
                h = contrib.layers.conv2d(h, lparams['num_outputs'], lparams['kernel_size'], lparams['stride'], activation_fn=lparams['activation'], weights_regularizer=lparams['regularizer'])
            elif lparams['type'] == 'pool':
                h = contrib.layers.max_pool2d(h, lparams['kernel_size'], lparams['stride'])
            elif lparams['type'] == 'fc':
                h = contrib.layers.fully_connected(h, lparams['num_outputs'], activation_fn=lparams['activation'])

        # 2. Generate predictions
        if mode == estimator.ModeKeys.PREDICT:
            predictions = {'output': h}
            return estimator.EstimatorSpec(mode=mode, predictions=predictions)

        # 3. Define the loss functions
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=h))

        # 3.1 Additional metrics for monitoring
        eval_metric_ops = {"accuracy": tf.compat.v1.metrics.accuracy(
              labels=labels, predictions=tf.argmax(h, axis=-1))}

        # 4. Define optimizer
        optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate=params.learning_rate)
        train_op = optimizer.minimize(loss=loss, global_step=tf.compat.v1.train.get_global_step())

        # 5. Return training/evaluation EstimatorSpec
        return estimator.EstimatorSpec(mode=mode, loss=loss, train_op=train_op, eval_metric_ops=eval_metric_ops)


    params = contrib.training.HParams(
        layers = [
            {'type': 'conv', 'num_outputs' : 96, 'kernel_size' : 11, 'stride' : 4, 'activation' : tf.nn.relu, 'regularizer' : tf.nn.l2_loss},
            {'type': 'pool', 'kernel_size' : 3, 'stride' : 2},
            {'type': 'conv', 'num_outputs' : 256, 'kernel_size' : 5, 'stride' : 1, 'activation' : tf.nn.relu, 'regularizer' : tf.nn.l2_loss},
            {'type': 'pool', 'kernel_size' : 3, 'stride' : 2},
            {'type': 'conv', 'num_outputs' : 384, 'kernel_size' : 3, 'stride' : 1, 'activation' : tf.nn.relu, 'regularizer' : tf.nn.l2_loss},
            {'type': 'conv', 'num_outputs' : 384, 'kernel_size' : 3, 'stride' : 1, 'activation' : tf.nn.relu, 'regularizer' : tf.nn.l2_loss},
            {'type': 'conv', 'num_outputs' : 256, 'kernel_size' : 3, 'stride' : 1, 'activation' : tf.nn.relu, 'regularizer' : tf.nn.l2_loss},
            {'type': 'pool', 'kernel_size' : 3, 'stride' : 2},
            {'type': 'fc', 'num_outputs' : 4096, 'activation' : tf.nn.relu},
            {'type': 'fc', 'num_outputs' : 2048, 'activation' : tf.nn.relu},
            {'type': 'fc', 'num_outputs' : 50, 'activation' : None}
        ],
        learning_rate = 0.001,
        train_epochs = 30,
        batch_size = 32,
        image_height = 300,
        image_width = 200,
        image_depth = 3
    )
    params.add_hparam('num_layers', len(params.layers))
''')

N_IMAGE_CLASSES = 3


class ImageBatch(ArrayBatch):
    components = ('images', 'labels')


def make_images(n, seed):
    """12x12x1 images: a bright 4x4 patch in the top-left, centre or bottom-right corner names the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_IMAGE_CLASSES, n).astype('int32')
    images = rng.normal(0, 0.3, size=(n, 12, 12, 1)).astype('float32')
    for i, c in enumerate(labels):
        images[i, 4 * c:4 * c + 4, 4 * c:4 * c + 4] += 2.0
    return images, labels


@pytest.fixture
def seed_model(tmp_path, monkeypatch):
    """The seed's project layout: code/model.py, run from code/, results in ../results/<timestamp>."""
    code = tmp_path / 'code'
    code.mkdir()
    (code / 'model.py').write_text(SEED_MODEL_PY)
    monkeypatch.chdir(code)
    monkeypatch.syspath_prepend(str(code))
    sys.modules.pop('model', None)
    import model as seed_model_module
    yield seed_model_module
    sys.modules.pop('model', None)


def small_params(seed_model):
    """The seed's HParams shape (conv, pool, fc layers), small enough to train in a test."""
    params = ts.HParams(layers=[
        {'type': 'conv', 'num_outputs': 8, 'kernel_size': 3, 'stride': 1, 'activation': tf.nn.relu,
         'regularizer': tf.nn.l2_loss},
        {'type': 'pool', 'kernel_size': 2, 'stride': 2},
        {'type': 'fc', 'num_outputs': 16, 'activation': tf.nn.relu},
        {'type': 'fc', 'num_outputs': N_IMAGE_CLASSES, 'activation': None}], learning_rate=0.01)
    params.add_hparam('num_layers', len(params.layers))
    return params


def test_seed_004_params_and_run_config_examples_run(seed_model):
    assert seed_model.params.num_layers == 11 and seed_model.params.image_depth == 3
    from batchkit.models import estimator
    config = estimator.RunConfig(
        tf_random_seed=0,
        save_checkpoints_steps=250,
        save_checkpoints_secs=None,
        save_summary_steps=10,
    )
    est = seed_model.load_estimator(model_fn=seed_model.model_fn, model_dir='../results/config', config=config,
                                    params=seed_model.params)
    assert isinstance(est, TFModel) and est.options.seed == 0 and est.options.save_checkpoints_steps == 250
    assert est.options.save_summary_steps == 10 and os.path.isdir('../results/config')


def test_seed_004_template_model_fn_trains_evaluates_predicts(seed_model, tmp_path):
    est = seed_model.load_estimator(model_fn=seed_model.template_model_fn, model_dir=str(tmp_path / 'tpl'),
                                    params={'learning_rate': 0.1})
    x, y = _regression(256, seed=1)
    losses = [est.train({'x': x[i:i + 32]}, y[i:i + 32]) for i in range(0, 256, 32) for _ in range(8)]
    assert losses[-1] < 0.2 * losses[0]
    assert est.test({'x': x}, y)['rmse'] ** 2 == pytest.approx(est.test({'x': x}, y)['loss'], rel=0.2)
    assert est.predict({'x': x[:5]})['output_str'].shape == (5,)


def test_seed_004_workflow_in_a_pipeline(seed_model):
    ######################################
    ###   Inside code/train_model.py   ###
    ######################################
    ts_ = time.time()
    timestamp = datetime.datetime.fromtimestamp(ts_).strftime('%Y-%m-%d_%H-%M-%S')
    model_dir = '../results/' + timestamp

    from model import load_estimator, model_fn
    params = small_params(seed_model)
    tf.compat.v1.reset_default_graph()
    estimator = load_estimator(model_fn=model_fn, model_dir=model_dir, params=params)

    # the seed's reproducibility lines: batchkit already copied model.py into model_dir/source
    curr_path = os.path.realpath(__file__)
    model_file = seed_model.__file__
    shutil.copy(curr_path, model_dir)
    shutil.copy(model_file, model_dir)
    with open(model_file, 'rb') as a, open(os.path.join(model_dir, 'source', 'model.py'), 'rb') as b:
        assert a.read() == b.read()

    x, y = make_images(384, seed=0)
    xt, yt = make_images(150, seed=1)
    train_ds = Dataset(len(x), batch_class=ImageBatch, preloaded={'images': x, 'labels': y})
    test_ds = Dataset(len(xt), batch_class=ImageBatch, preloaded={'images': xt, 'labels': yt})
    features = F(lambda batch: {'image': batch.images})
    train = (train_ds.p.init_model('cnn', lambda config: estimator, 'static')
             .init_variable('loss', default=list)
             .train_model('cnn', features, B('labels'), save_to=V('loss', mode='a')))
    train.run(32, n_epochs=3, shuffle=True, prefetch=2)
    losses = train.get_variable('loss')
    assert len(losses) == 36 and np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
    assert estimator.step == 36
    assert estimator.model_dir.dir.latest().step == 36               # the end-of-run checkpoint

    evaluate = (test_ds.p.import_model('cnn', train).init_variable('metrics')
                .test_model('cnn', features, B('labels'), save_to=V('metrics')))
    evaluate.run(50, n_epochs=1, prefetch=2)
    assert evaluate.get_variable('metrics')['accuracy'] > 0.9

    # restarting training from model_dir resumes from the latest checkpoint, as the seed's Tip says
    again = load_estimator(model_fn=model_fn, model_dir=model_dir, params=params)
    assert again.step == 36
    np.testing.assert_allclose(again.predict({'image': xt})['output'], estimator.predict({'image': xt})['output'],
                               rtol=1e-5, atol=1e-6)
