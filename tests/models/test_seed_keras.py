"""Seed 003's Keras examples (KerasBaseModel subclass, dynamic fc_model, train/predict pipelines) and seed 000's
Keras model descriptor, run with real Keras models."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.tf

import keras  # noqa: E402

import keras_support as ks  # noqa: E402
from batchkit import ArrayBatch, B, Dataset, Pipeline, V, action, model  # noqa: E402
from batchkit.models import KerasModel  # noqa: E402


class SimpleFCModel(KerasModel):
    """Seed 003's SimpleFCModel: Input -> Dense, compiled in `_build` (one sigmoid unit for 0/1 targets)."""

    def _build(self):
        x = keras.Input(tuple(self.config['input_shape']))
        out = keras.layers.Dense(1, activation='sigmoid')(x)
        model = keras.Model(inputs=x, outputs=out)
        model.compile(loss='binary_crossentropy', optimizer=keras.optimizers.Adam(0.05))
        return model


class ECGBatch(ArrayBatch):
    components = ('signal', 'target')

    @model(mode='dynamic')
    def fc_model(batch, config=None):
        """Seed 003: a dynamic model takes its input shape from the first batch."""
        config = config or {}
        shape = batch.signal[0].shape
        if 'path' in config:
            return SimpleFCModel({'input_shape': shape, 'load': {'path': config['path']}})
        return SimpleFCModel({'input_shape': shape})

    @model(mode='static')
    def keras_descriptor():
        """Seed 000: a model descriptor may be a (compiled) Keras model."""
        net = ks.mlp()
        net.compile(loss='binary_crossentropy', optimizer=keras.optimizers.Adam(0.05))
        return net

    @action
    def train_on_batch(self, model_name):
        self.pipeline.variables.update('train_loss', self.get_model_by_name(model_name)
                                       .train_on_batch(self.signal, self.target), 'a')
        return self

    @action
    def test_on_batch(self, model_name):
        self.pipeline.variables.update('test_loss', self.get_model_by_name(model_name)
                                       .test_on_batch(self.signal, self.target), 'a')
        return self

    @action
    def predict_on_batch(self, model_name):
        self.pipeline.variables.update('prediction', self.get_model_by_name(model_name)
                                       .predict_on_batch(self.signal), 'a')
        return self

    @action
    def widen(self):
        self.wide = np.concatenate([self.signal, self.signal], axis=1)
        return self

    @action(model='keras_descriptor', use_lock='keras_descriptor')
    def train_descriptor(self, net):
        self.loss = float(net.train_on_batch(self.signal, self.target))
        return self


@pytest.fixture
def ecg_ds() -> Dataset:
    x, y = ks.separable(240, seed=3)
    return Dataset(len(x), batch_class=ECGBatch, preloaded={'signal': x, 'target': y})


def test_seed_003_fc_train_pipeline_then_predict_pipeline(ecg_ds, tmp_path):
    path = str(tmp_path / 'fc_model.keras')
    fc_train = ((Pipeline()
                 .init_variable('train_loss', default=list)
                 .init_variable('test_loss', default=list)
                 .train_on_batch('fc_model')
                 .test_on_batch('fc_model')
                 .after.save_model('fc_model', path=path))
                << ecg_ds).run(batch_size=30, shuffle=True, drop_last=True, n_epochs=5)
    train_loss = fc_train.get_variable('train_loss')
    assert len(train_loss) == 40 and all(type(v) is float for v in train_loss)
    assert np.mean(train_loss[-8:]) < 0.6 * np.mean(train_loss[:8])
    trained = fc_train.get_model_by_name('fc_model')
    assert isinstance(trained, SimpleFCModel) and int(trained.optimizer.iterations.numpy()) == 40
    assert 'dense' in trained.summary() and len(trained.history['test']) == 40

    config = {'path': path}
    fc_predict = ((Pipeline(config={'fc_model': config})
                   .init_model('fc_model')
                   .init_variable('prediction', [])
                   .predict_on_batch('fc_model'))
                  << ecg_ds).run(batch_size=100, shuffle=False, drop_last=False, n_epochs=1)
    loaded = fc_predict.get_model_by_name('fc_model')
    assert loaded is not trained and int(loaded.optimizer.iterations.numpy()) == 40
    x, y = ecg_ds.preloaded['signal'], ecg_ds.preloaded['target']
    prediction = np.concatenate(fc_predict.get_variable('prediction'))
    np.testing.assert_allclose(prediction, trained.predict_on_batch(x), rtol=1e-5, atol=1e-6)
    assert ((prediction > 0.5) == y).mean() > 0.9


@pytest.mark.parametrize('prefetch', [0, 2])
def test_seed_003_predict_pipeline_declares_the_model_before_the_load_that_shapes_it(ecg_ds, tmp_path, prefetch):
    """Seed 003 as written: init_model('fc_model') comes first; the model takes its shape from the loaded signal."""
    from batchkit import FilesIndex
    x, y = ecg_ds.preloaded['signal'], ecg_ds.preloaded['target']
    for i in range(60):
        np.savez(tmp_path / f'{i:03d}.npz', signal=x[i], target=y[i])
    files = Dataset(FilesIndex(path=str(tmp_path / '*.npz'), no_ext=True), batch_class=ECGBatch)
    trained = SimpleFCModel({'input_shape': x.shape[1:]})
    trained.train_on_batch(x[:60], y[:60])
    path = str(tmp_path / 'fc_model.keras')
    trained.save(path)
    fc_predict = ((Pipeline(config={'fc_model': {'path': path}})
                   .init_model('fc_model')
                   .init_variable('prediction', [])
                   .load(fmt='npz', components=['signal', 'target'])
                   .predict_on_batch('fc_model'))
                  << files).run(batch_size=25, shuffle=False, drop_last=False, n_epochs=1, prefetch=prefetch)
    prediction = np.concatenate(fc_predict.get_variable('prediction')).ravel()
    expected = trained.predict_on_batch(x[:60]).ravel()
    if prefetch:      # the seed's plain action appends from prefetch threads: batches in the order they finish
        prediction, expected = np.sort(prediction), np.sort(expected)
    np.testing.assert_allclose(prediction, expected, rtol=1e-5, atol=1e-6)


def test_a_dynamic_model_no_step_uses_is_built_from_the_first_batch_at_the_end_of_its_chain(ecg_ds):
    p = (ecg_ds.p.init_model('shaped', KerasModel, 'dynamic', config=ks.compiled_config(input_shape=B('wide').shape[1:]))
         .widen())
    p.run(30, n_epochs=1, prefetch=2)
    assert p.get_model_by_name('shaped').model.input_shape == (None, 8)


def test_load_model_step_creates_a_keras_model_from_its_file(ecg_ds, tmp_path):
    path = str(tmp_path / 'net.keras')
    net = KerasModel(ks.compiled_config())
    net.train(*ks.separable(32))
    net.save(path)
    p = (ecg_ds.p.before.load_model('m', KerasModel, 'static', path=path)
         .init_variable('pred', default=list)
         .predict_model('m', B('signal'), save_to=V('pred', mode='a')))
    p.run(60, n_epochs=1)
    assert int(p.get_model_by_name('m').optimizer.iterations.numpy()) == 1
    np.testing.assert_allclose(np.concatenate(p.v('pred')), net.predict(ecg_ds.preloaded['signal']),
                               rtol=1e-5, atol=1e-6)


def test_seed_000_keras_descriptor_trains_under_prefetch_with_its_lock(ecg_ds):
    net = ECGBatch.class_model('keras_descriptor')
    before = int(net.optimizer.iterations.numpy())
    p = ecg_ds.p.init_variable('loss', default=list).train_descriptor().update(V('loss', mode='a'), B('loss'))
    p.run(20, n_epochs=4, prefetch=3)
    assert int(net.optimizer.iterations.numpy()) - before == 48
    losses = p.v('loss')
    assert np.mean(losses[-6:]) < 0.7 * np.mean(losses[:6])
