"""model_fns for the TFModel tests (this file is what TFModel copies into model_dir), and their data."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import tensorflow as tf

from batchkit.models import EstimatorSpec, ModeKeys

N_FEATURES, N_CLASSES = 6, 3
v1 = tf.compat.v1


def make_blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n items of N_CLASSES well separated Gaussian blobs: float32 features, int32 labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, n).astype('int32')
    centers = np.eye(N_CLASSES, N_FEATURES) * 4
    return (centers[labels] + rng.normal(size=(n, N_FEATURES))).astype('float32'), labels


def classifier_fn(features, labels, mode, params):
    """An MLP on features['x'] written the TensorFlow 1 way (get_variable, AdamOptimizer, metrics)."""
    x = features['x']
    w1 = v1.get_variable('w1', (x.shape[-1], params['hidden']))
    b1 = v1.get_variable('b1', (params['hidden'],), initializer=v1.zeros_initializer())
    w2 = v1.get_variable('w2', (params['hidden'], N_CLASSES))
    logits = tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2)
    classes = tf.argmax(logits, axis=-1, output_type=tf.int32)
    if mode == ModeKeys.PREDICT:
        return EstimatorSpec(mode, predictions={'classes': classes, 'probabilities': tf.nn.softmax(logits)})
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    eval_metric_ops = {'accuracy': v1.metrics.accuracy(labels=labels, predictions=classes)}
    optimizer = v1.train.AdamOptimizer(learning_rate=params['learning_rate'])
    train_op = optimizer.minimize(loss=loss, global_step=v1.train.get_global_step())
    return EstimatorSpec(mode, loss=loss, train_op=train_op, eval_metric_ops=eval_metric_ops)


def regression_fn(features, labels, mode, params):
    """A linear model on an array of features; predictions an array; export_outputs named."""
    w = v1.get_variable('w', (features.shape[-1], 1))
    pred = tf.matmul(features, w)
    if mode == ModeKeys.PREDICT:
        return EstimatorSpec(mode, predictions=pred, export_outputs={'y': pred})
    loss = tf.reduce_mean(tf.square(pred - labels))
    train_op = v1.train.GradientDescentOptimizer(params.learning_rate).minimize(
        loss, global_step=v1.train.get_global_step())
    return EstimatorSpec(mode, predictions=pred, loss=loss, train_op=train_op)


def keras_layers_fn(features, labels, mode, params):
    """Keras layers created once (in params) and called in every mode: the modes share their weights."""
    logits = params['head'](params['hidden'](features['x']))
    if mode == ModeKeys.PREDICT:
        return EstimatorSpec(mode, predictions=logits)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    train_op = v1.train.AdamOptimizer(0.05).minimize(loss, global_step=v1.train.get_global_step())
    return EstimatorSpec(mode, loss=loss, train_op=train_op)


def keras_inside_fn(features, labels, mode, params):
    """Keras layers created inside model_fn: a new layer per mode, which TFModel refuses."""
    import keras
    logits = keras.layers.Dense(N_CLASSES)(features['x'])
    if mode == ModeKeys.PREDICT:
        return EstimatorSpec(mode, predictions=logits)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    train_op = v1.train.AdamOptimizer(0.05).minimize(loss, global_step=v1.train.get_global_step())
    return EstimatorSpec(mode, loss=loss, train_op=train_op)


def no_spec_fn(features, labels, mode, params):
    return {'loss': tf.reduce_sum(features['x'])}


def no_train_op_fn(features, labels, mode, params):
    w = v1.get_variable('w', (N_FEATURES, 1))
    return EstimatorSpec(mode, predictions=tf.matmul(features['x'], w), loss=tf.reduce_sum(w))


# --- stand-ins for tf.contrib (gone since TensorFlow 2), used by seed 004's model.py --------------------------
class HParams(SimpleNamespace):
    """tf.contrib.training.HParams: hyperparameters as attributes, `add_hparam` to add one."""

    def add_hparam(self, name: str, value) -> None:
        setattr(self, name, value)


def _regularize(weights, regularizer) -> None:
    if regularizer is not None:
        v1.add_to_collection(v1.GraphKeys.REGULARIZATION_LOSSES, regularizer(weights))


def conv2d(inputs, num_outputs, kernel_size, stride=1, activation_fn=tf.nn.relu, weights_regularizer=None):
    """tf.contrib.layers.conv2d (SAME padding) on tf.compat.v1.get_variable, so TFModel shares it across modes."""
    with v1.variable_scope(None, default_name='Conv'):
        kernel = v1.get_variable('weights', (kernel_size, kernel_size, inputs.shape[-1], num_outputs))
        bias = v1.get_variable('biases', (num_outputs,), initializer=v1.zeros_initializer())
        _regularize(kernel, weights_regularizer)
        out = tf.nn.conv2d(inputs, kernel, stride, 'SAME') + bias
        return activation_fn(out) if activation_fn is not None else out


def max_pool2d(inputs, kernel_size, stride=2):
    """tf.contrib.layers.max_pool2d (VALID padding)."""
    return tf.nn.max_pool2d(inputs, kernel_size, stride, 'VALID')


def flatten(inputs):
    """tf.contrib.layers.flatten."""
    return tf.reshape(inputs, (-1, int(np.prod(inputs.shape[1:]))))


def fully_connected(inputs, num_outputs, activation_fn=tf.nn.relu):
    """tf.contrib.layers.fully_connected on tf.compat.v1.get_variable."""
    with v1.variable_scope(None, default_name='fully_connected'):
        weights = v1.get_variable('weights', (inputs.shape[-1], num_outputs))
        bias = v1.get_variable('biases', (num_outputs,), initializer=v1.zeros_initializer())
        out = tf.matmul(inputs, weights) + bias
        return activation_fn(out) if activation_fn is not None else out


contrib = SimpleNamespace(layers=SimpleNamespace(conv2d=conv2d, max_pool2d=max_pool2d, flatten=flatten,
                                                 fully_connected=fully_connected),
                          training=SimpleNamespace(HParams=HParams))


def sized_fn(features, labels, mode, params):
    """A 4 -> params['h'] -> 1 regression MLP with Adam; params['first'] names its first weight ('w1')."""
    w1 = v1.get_variable(params.get('first', 'w1'), (4, params['h']))
    w2 = v1.get_variable('w2', (params['h'], 1))
    pred = tf.matmul(tf.nn.tanh(tf.matmul(features, w1)), w2)
    if mode == ModeKeys.PREDICT:
        return EstimatorSpec(mode, predictions=pred)
    loss = tf.reduce_mean(tf.square(pred - labels))
    train_op = v1.train.AdamOptimizer(0.01).minimize(loss, global_step=v1.train.get_global_step())
    return EstimatorSpec(mode, loss=loss, train_op=train_op)


def no_global_step_fn(features, labels, mode, params):
    """A linear regression whose train_op does not advance the global step (minimize() without global_step)."""
    w = v1.get_variable('w', (features.shape[-1], 1))
    pred = tf.matmul(features, w)
    if mode == ModeKeys.PREDICT:
        return EstimatorSpec(mode, predictions=pred)
    loss = tf.reduce_mean(tf.square(pred - labels))
    return EstimatorSpec(mode, loss=loss, train_op=v1.train.GradientDescentOptimizer(0.05).minimize(loss))
