"""The model examples of the seed documents (000-003), with numpy models in place of TensorFlow and Keras."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import numpy_models as nm
from batchkit import ArrayBatch, B, BatchkitTypeError, Dataset, F, M, Pipeline, V, action, model
from batchkit.models import BaseModel


def _decreased(losses, factor=0.1):
    """The loss really went down: the last few batches are far below the first ones."""
    losses = np.asarray(losses, dtype=float)
    assert len(losses) >= 6, losses
    return np.mean(losses[-3:]) < factor * np.mean(losses[:3])


# --- seed 000: model definitions in batch classes -----------------------------------------------------------
def test_static_model_is_compiled_once_when_the_class_is_created(reg_ds):
    assert nm.STATIC_BUILDS.value == 1                      # at import of numpy_models, before any pipeline
    spec = reg_ds.p.peek_model('basic_model').next_batch(10, n_epochs=1).model_seen
    assert set(spec) == {'w', 'b', 'steps'}
    assert nm.STATIC_BUILDS.value == 1
    assert nm.RegBatch.models['basic_model'].mode == 'static'
    assert nm.RegBatch.models['advanced_model'].mode == 'dynamic'


def test_two_actions_share_one_static_model(reg_ds):
    spec = nm.RegBatch.class_model('basic_model')
    steps_before = spec['steps'][0]
    p = reg_ds.p.init_variable('mse', default=list).train_basic(lr=0.1).evaluate_basic() \
        .update(V('mse', mode='a'), B('mse'))
    p.run(20, n_epochs=3)
    assert spec['steps'][0] - steps_before == 30
    assert _decreased(p.get_variable('mse'))
    assert nm.RegBatch.class_model('basic_model') is spec          # the very same descriptor for both actions


def test_dynamic_model_is_compiled_when_an_action_requests_it(reg_ds):
    p = reg_ds.p.train_advanced().evaluate_advanced()
    assert nm.DYNAMIC_BUILDS.value == 0                              # chaining builds nothing
    p.run(20, n_epochs=4)
    assert nm.DYNAMIC_BUILDS.value == 1
    spec = p.get_model_by_name('advanced_model')
    assert spec['w'].shape == (nm.N_FEATURES,)                       # shaped from the first batch
    assert len(spec['losses']) == 40 and _decreased(spec['losses'])


def test_dynamic_model_receives_the_pipeline_config_under_its_name(reg_ds):
    p = (reg_ds.pipeline(config={'advanced_model': {'lr': 0.05}}).train_advanced())
    p.run(50, n_epochs=1)
    assert p.get_model_by_name('advanced_model')['lr'] == 0.05


def test_use_lock_named_lock_serializes_model_actions_under_prefetch(reg_ds):
    p = reg_ds.p.train_advanced().evaluate_advanced()
    p.run(10, n_epochs=5, prefetch=4)
    assert nm.DYNAMIC_BUILDS.value == 1
    assert len(p.get_model_by_name('advanced_model')['losses']) == 100


@pytest.fixture
def session_ds():
    x, y = nm.make_regression(120, seed=3)
    return Dataset(len(x), batch_class=nm.SessionBatch, preloaded={'images': x, 'labels': y})


def test_old_style_batch_action_train_model_wins_over_the_builtin(session_ds):
    session = {'lr': 0.1, 'losses': []}
    (session_ds.p.init_variable('session', session).train_model(V('session'))).run(20, n_epochs=4)
    assert len(session['losses']) == 24 and _decreased(session['losses'])


def test_old_style_train_model_action_called_with_keywords_only(session_ds):
    """Seed 000: `.train_model(session=sess)`, no model name: the batch-class action, not the built-in."""
    session = {'lr': 0.1, 'losses': []}
    (session_ds.p.init_variable('session', session).train_model(session=V('session'))).run(20, n_epochs=4)
    assert len(session['losses']) == 24


def test_model_definition_method_is_never_called_directly():
    with pytest.raises(BatchkitTypeError, match=r"never called directly.*get_model_by_name\('basic_model'\)"):
        nm.RegBatch.basic_model()


# --- seeds 001 / 002: models in pipelines -------------------------------------------------------------------
ORDERS = [
    pytest.param(('static', nm.LinearRegression, 'my_model', {'lr': 0.1}), {}, 'my_model', id='mode-cls-name-config'),
    pytest.param(('my_model', nm.LinearRegression, 'static', {'lr': 0.1}), {}, 'my_model', id='name-cls-mode-config'),
    pytest.param(('my-model', 'static', nm.LinearRegression), {'config': {'lr': 0.1}}, 'my-model',
                 id='name-mode-cls-config='),
    pytest.param(('static', nm.LinearRegression), {}, 'LinearRegression', id='mode-cls'),
    pytest.param(('dynamic', nm.LinearRegression), {}, 'LinearRegression', id='dynamic-cls'),
]


@pytest.mark.parametrize('args, kwargs, name', ORDERS)
def test_init_model_argument_orders(reg_ds, args, kwargs, name):
    p = (reg_ds.p.init_model(*args, **kwargs)
         .init_variable('loss', default=list)
         .train_model(name, x=B('images'), y=B('labels'), save_to=V('loss'), mode='a'))
    mode = 'static' if 'static' in args else 'dynamic'
    assert (name in p.models.store) == (mode == 'static')            # static: created by init_model itself
    p.run(20, n_epochs=3)
    model = p.get_model_by_name(name)
    assert isinstance(model, nm.LinearRegression) and model.config.get('lr', 0.1) == 0.1
    assert model.steps == 30 and _decreased(p.get_variable('loss'))
    assert p.models.store.get(name).mode == mode


def test_train_model_with_two_outputs_into_two_variables(clf_ds):
    """Seed 002: output=['loss', 'accuracy'] saved to [V('current_loss'), V('current_accuracy')]."""
    p = (clf_ds.p
         .init_model('my_model', nm.LogisticRegression, 'static', {'lr': 0.5})
         .init_variable('current_loss', 0)
         .init_variable('current_accuracy', 0)
         .init_variable('history', default=list)
         .train_model('my_model', output=['loss', 'accuracy'], x=B('images'), y=B('labels'),
                      save_to=[V('current_loss'), V('current_accuracy')])
         .update(V('history', mode='a'), [V('current_loss'), V('current_accuracy')]))
    p.run(20, n_epochs=5, shuffle=0)
    history = np.array(p.get_variable('history'))
    assert history.shape == (50, 2)
    assert p.get_variable('current_loss') == history[-1, 0]
    assert p.get_variable('current_accuracy') == history[-1, 1] >= 0.9
    assert _decreased(history[:, 0], factor=0.6)


def test_feed_dict_model_appends_with_mode_append(reg_ds):
    """Seed 002: fetches='loss', feed_dict={'x': B('images'), 'y': B('labels')}, save_to=V(...), mode='append'."""
    p = (reg_ds.p
         .init_model('another_model', nm.FeedDictModel, 'dynamic', {'lr': 0.1})
         .init_variable('loss_history', init_on_each_run=list)
         .train_model('another_model', fetches='loss', feed_dict={'x': B('images'), 'y': B('labels')},
                      save_to=V('loss_history'), mode='append'))
    p.run(20, n_epochs=3)
    assert len(p.get_variable('loss_history')) == 30 and _decreased(p.get_variable('loss_history'))
    p.run(20, n_epochs=1)                                   # init_on_each_run: a fresh list each run
    assert len(p.get_variable('loss_history')) == 10


def test_seed_001_save_to_name_and_append_to(clf_ds, reg_ds):
    """Seed 001: save_to='current_accuracy' (a variable: no such component) and append_to='loss_history'."""
    p = (clf_ds.p
         .init_model('static', nm.LogisticRegression, 'my_model', {'lr': 0.5})
         .init_model('dynamic', nm.FeedDictModel, 'another_model', {'lr': 0.1})
         .init_variable('current_accuracy', 0)
         .init_variable('loss_history', init_on_each_run=list)
         .train_model('my_model', output='accuracy', x=B('images'), y=B('labels'), save_to='current_accuracy')
         .train_model('another_model', fetches='loss', feed_dict={'x': B('images'), 'y': B('labels')},
                      append_to='loss_history'))
    p.run(20, n_epochs=5, shuffle=1)
    assert p.get_variable('current_accuracy') >= 0.9
    assert len(p.get_variable('loss_history')) == 50


class LossBatch(ArrayBatch):
    components = ('images', 'labels', 'loss')


def test_save_to_a_component_name_stores_into_the_batch(reg_ds):
    ds = Dataset(200, batch_class=LossBatch, preloaded=reg_ds.preloaded)
    p = (ds.p.init_model('m', nm.LinearRegression, 'static')
         .train_model('m', B('images'), B('labels'), save_to='loss'))
    batch = p.next_batch(20, n_epochs=1)
    assert batch.loss > 0 and 'loss' not in p.variables


def test_config_with_variables_and_functions(reg_ds):
    """Seed 002: V in a static config, a V as a dict KEY of a dynamic config, F(lambda batch: ...)."""
    p = (reg_ds.p
         .init_variable('n', nm.N_FEATURES)
         .init_variable('shape_name', 'n_features')
         .init_model('static_m', nm.LinearRegression, 'static', config={'n_features': V('n')})
         .init_model('key_m', nm.LinearRegression, 'dynamic', config={V('shape_name'): B('images_shape')})
         .init_model('fn_m', nm.LinearRegression, 'dynamic',
                     config={'n_features': F(lambda batch: batch.images.shape[1:])}))
    assert p.get_model_by_name('static_m').config == {'n_features': nm.N_FEATURES}
    p = p.train_model('key_m', B('images'), B('labels')).train_model('fn_m', B('images'), B('labels'))
    p.run(50, n_epochs=1)
    assert p.get_model_by_name('key_m').config == {'n_features': (nm.N_FEATURES,)}
    assert p.get_model_by_name('fn_m').config == {'n_features': (nm.N_FEATURES,)}
    assert p.get_model_by_name('fn_m').steps == 4


def test_predict_model_saves_to_variable_and_component(reg_ds):
    """Seed 002: init_model('my-model', 'static', MyModel, config=config); predict_model(..., save_to=V/B)."""
    train = (reg_ds.p.init_model('my-model', 'static', nm.LinearRegression, config={'lr': 0.1})
             .train_model('my-model', x=B('images'), y=B('labels')))
    train.run(20, n_epochs=10)
    p = (train.init_variable('predicted_labels', init_on_each_run=list)
         .predict_model('my-model', x=B('images'), save_to=V('predicted_labels'), mode='a')
         .predict_model('my-model', x=B('images'), save_to=B('predictions')))
    batches = list(p.gen_batch(50, n_epochs=1))
    predicted = np.concatenate(p.get_variable('predicted_labels'))
    assert predicted.shape == (200,)
    _, y = nm.make_regression(200, seed=0)
    assert np.mean((predicted - y) ** 2) < 0.01
    assert all(np.array_equal(b.predictions, predicted[i * 50:(i + 1) * 50]) for i, b in enumerate(batches))


def test_train_with_positional_args_and_name_sugar(reg_ds):
    """Seed 002: .train_model('my_model', B.images, B.labels, use_lock=True)."""
    p = (reg_ds.p.init_model('my_model', nm.LinearRegression, 'static')
         .init_variable('loss', default=list)
         .train_model('my_model', B.images, B.labels, use_lock=True, save_to=V('loss', mode='a')))
    p.run(20, n_epochs=3)
    assert _decreased(p.get_variable('loss'))


class LinkedBatch(ArrayBatch):
    """Seed 001: an action linked to `some_model`, which a pipeline may also initialize."""
    components = ('images', 'labels')

    @model(mode='dynamic')
    def some_model(self, config=None):
        m = nm.LinearRegression({'n_features': self.images.shape[1]})
        m.from_class = True
        return m

    @action(model='some_model')
    def train_linked_model(self, model):
        self.loss = model.train(self.images, self.labels)
        return self

    @action
    def train_in_batch(self, model_name):
        self.loss_in_batch = self.get_model_by_name(model_name).train(self.images, self.labels)
        return self


@pytest.fixture
def linked_ds():
    x, y = nm.make_regression(100, seed=4)
    return Dataset(len(x), batch_class=LinkedBatch, preloaded={'images': x, 'labels': y})


def test_actions_with_get_model_by_name_and_linked_model(linked_ds):
    """Seeds 001/002: train_in_batch('model-1') and an action bound to a model; the pipeline's model wins."""
    p = (linked_ds.p
         .init_model('model-1', nm.LinearRegression, 'static', config={'lr': 0.1})
         .init_model('dynamic', nm.LinearRegression, 'some_model', {'lr': 0.1})
         .train_in_batch('model-1')
         .train_linked_model())
    p.run(10, n_epochs=3)
    assert p.get_model_by_name('model-1').steps == 30
    some = p.get_model_by_name('some_model')
    assert some.steps == 30 and not hasattr(some, 'from_class')
    # without init_model, the class's own @model definition is used
    q = linked_ds.p.train_linked_model().train_in_batch('some_model')
    q.run(10, n_epochs=1)
    assert q.get_model_by_name('some_model').from_class and q.get_model_by_name('some_model').steps == 20


def test_model_expression_in_action_arguments(reg_ds):
    p = (reg_ds.p.init_model('m', nm.LinearRegression, 'static')
         .train_model('m', B('images'), B('labels'))
         .use_model(M('m')))
    batch = p.next_batch(50, n_epochs=1)
    assert np.array_equal(batch.predictions, p.get_model_by_name('m').predict(batch.images))


def test_make_data_gives_train_arguments(reg_ds):
    seen = []

    def make_data(batch, model):
        seen.append(model)
        return {'x': batch.images, 'y': batch.labels}

    p = reg_ds.p.init_model('m', nm.LinearRegression, 'static').train_model('m', make_data=make_data)
    p.run(20, n_epochs=2)
    assert len(seen) == 20 and all(m is p.get_model_by_name('m') for m in seen)
    assert p.get_model_by_name('m').steps == 20


def test_save_and_load_models_as_actions_and_now(reg_ds, tmp_path):
    """Seed 002: save_model per batch and under `after`, save_model_now; load_model under `before`, load_model_now."""
    per_batch, after, now = (str(tmp_path / f'{n}.npz') for n in ('per_batch', 'after', 'now'))
    train = (reg_ds.p.init_model('my_model', nm.LinearRegression, 'dynamic')
             .train_model('my_model', B('images'), B('labels'))
             .save_model('my_model', path=per_batch)
             .after.save_model('my_model', path=after))
    train.run(20, n_epochs=5)
    train.save_model_now('my_model', path=now)
    trained = train.get_model_by_name('my_model')
    for path in (per_batch, after, now):
        with np.load(path) as data:
            assert np.array_equal(data['w'], trained.w) and int(data['steps']) == 50

    x = reg_ds.preloaded['images']
    infer = (reg_ds.p.before.load_model('my_model', nm.LinearRegression, 'dynamic', path=after)
             .predict_model('my_model', B('images'), save_to=V('pred', mode='a')))
    infer = infer.init_variable('pred', default=list)
    infer.run(50, n_epochs=1)
    assert np.array_equal(np.concatenate(infer.get_variable('pred')), trained.predict(x))

    other = reg_ds.p
    other.load_model_now('my_model', nm.LinearRegression, 'dynamic', path=now)
    loaded = other.get_model_by_name('my_model')
    assert loaded is not trained and np.array_equal(loaded.predict(x), trained.predict(x))


def test_load_model_per_batch_reloads_each_time(reg_ds, tmp_path):
    path = str(tmp_path / 'm.npz')
    src = nm.LinearRegression({'n_features': nm.N_FEATURES})
    src.w[:] = 1.0
    src.save(path)
    p = (reg_ds.p.load_model('m', nm.LinearRegression, 'dynamic', path=path)
         .peek_model('m').init_variable('seen', default=list).update(V('seen', mode='a'), B('model_seen')))
    p.run(50, n_epochs=1)
    seen = p.get_variable('seen')
    assert len({id(m) for m in seen}) == 4 and all(np.array_equal(m.w, src.w) for m in seen)


def test_import_model_into_an_inference_template(reg_ds):
    """Seeds 001/002: a template imports the trained model; linked later with `<<`; the very same object."""
    train = (reg_ds.p.init_model('dynamic', nm.LinearRegression)
             .train_model('LinearRegression', B('images'), B('labels'))
             .run(20, shuffle=True, n_epochs=10))
    template = (Pipeline()
                .import_model('LinearRegression', train)
                .init_variable('pred', default=list)
                .predict_model('LinearRegression', B('images'), save_to=V('pred', mode='a')))
    x, y = nm.make_regression(60, seed=9)
    infer = (template << Dataset(len(x), batch_class=nm.RegBatch, preloaded={'images': x, 'labels': y}))
    infer.run(25, shuffle=False)
    trained = train.get_model_by_name('LinearRegression')
    assert infer.get_model_by_name('LinearRegression') is trained
    assert infer.models.get(infer, 'LinearRegression').lock is train.models.get(train, 'LinearRegression').lock
    pred = np.concatenate(infer.get_variable('pred'))
    assert np.array_equal(pred, trained.predict(x)) and np.mean((pred - y) ** 2) < 0.01


# --- seed 003: the cardio contract ------------------------------------------------------------------------------
def test_cardio_model_through_builtin_model_steps(cardio_ds):
    p = (cardio_ds.p
         .init_model('cardio', nm.CardioModel, 'dynamic', config={'input_shape': F(lambda b: b.signal.shape[1:])})
         .init_variable('train_hist', default=list)
         .init_variable('test_hist', default=list)
         .train_model('cardio', B('signal'), B('target'), lr=0.1, save_to=V('train_hist', mode='a'))
         .test_model('cardio', B('signal'), B('target'), save_to=V('test_hist', mode='a'))
         .predict_model('cardio', B('signal'), save_to=B('prediction')))
    batches = list(p.gen_batch(20, n_epochs=4))
    model = p.get_model_by_name('cardio')
    assert isinstance(model, nm.CardioModel) and not isinstance(model, BaseModel)
    assert len(p.get_variable('train_hist')) == 40 == len(model.hist)
    assert _decreased(p.get_variable('train_hist')) and _decreased(p.get_variable('test_hist'))
    assert np.array_equal(batches[-1].prediction, model.predict_on_batch(batches[-1].signal))


def test_cardio_style_batch_actions_train_save_and_predict(cardio_ds, tmp_path):
    """Seed 003: train_on_batch('fc_model') over a dynamic `fc_model(batch, config=None)`, then
    Pipeline(config={'fc_model': {'path': ...}}).init_model('fc_model') and predict_on_batch('fc_model')."""
    path = str(tmp_path / 'fc_model.npz')
    fc_train = ((Pipeline()
                 .init_variable('train_loss', default=list)
                 .init_variable('test_loss', default=list)
                 .train_on_batch('fc_model')
                 .test_on_batch('fc_model')
                 .after.save_model('fc_model', path=path))
                << cardio_ds).run(batch_size=30, shuffle=True, drop_last=True, n_epochs=5)
    assert nm.FC_BUILDS.value == 1
    assert len(fc_train.get_variable('train_loss')) == 30           # 6 batches of 30 per epoch
    assert _decreased(fc_train.get_variable('train_loss'))
    trained = fc_train.get_model_by_name('fc_model')

    config = {'path': path}
    fc_predict = ((Pipeline(config={'fc_model': config})
                   .init_model('fc_model')
                   .init_variable('prediction', [])
                   .predict_on_batch('fc_model'))
                  << cardio_ds).run(batch_size=100, shuffle=False, drop_last=False, n_epochs=1)
    assert nm.FC_BUILDS.value == 2
    loaded = fc_predict.get_model_by_name('fc_model')
    assert loaded is not trained
    x = cardio_ds.preloaded['signal']
    assert np.array_equal(np.concatenate(fc_predict.get_variable('prediction')), trained.predict_on_batch(x))


def test_cardio_actions_under_prefetch_build_fc_model_once(cardio_ds):
    lock = threading.Lock()

    class LockedCardio(nm.CardioBatch):
        @action(use_lock='fc_lock')
        def train_locked(self, model_name):
            with lock:           # a second holder would block the test: the named lock must serialize
                self.get_model_by_name(model_name).train_on_batch(self.signal, self.target)
            return self

    ds = Dataset(200, batch_class=LockedCardio, preloaded=cardio_ds.preloaded)
    p = ds.p.train_locked('fc_model')
    p.run(5, n_epochs=3, prefetch=4)
    assert nm.FC_BUILDS.value == 1 and len(p.get_model_by_name('fc_model').hist) == 120
