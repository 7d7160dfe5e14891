"""Models under prefetch: same training for every engine, reset, save/load, shared locks, errors.

AugBatch runs in spawned worker processes: tests/models/conftest.py puts this directory (and tests/parallel, for
parallel_support) on PYTHONPATH, so a worker imports it from this module by its name.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import numpy_models as nm
from batchkit import B, BatchkitError, Dataset, F, Pipeline, V, action
from batchkit.errors import ModelError, UnknownNameError

from parallel_support import run_with_timeout

ENGINES = [{'prefetch': 8}, {'prefetch': 2, 'target': 'processes'}]
ENGINE_IDS = ['threads-8', 'processes-2']


class AugBatch(nm.RegBatch):
    """RegBatch with a stateless head action: a varying wait (so heads finish out of order) and seeded jitter."""

    @action
    def jitter(self, scale: float = 0.05, max_ms: float = 3.0) -> 'AugBatch':
        wait = np.random.default_rng(int(self.indices[0]) + 1).uniform(0, max_ms) / 1000   # not batch.random
        time.sleep(wait)
        self.images = self.images + scale * self.random.normal(size=self.images.shape)
        return self


def n_features(batch) -> int:
    return int(batch.images.shape[1])


@pytest.fixture(autouse=True)
def _fresh_counters():
    for counter in (nm.DYNAMIC_BUILDS, nm.FC_BUILDS, nm.LinearRegression.builds):
        counter.reset()
    yield


@pytest.fixture
def aug_ds() -> Dataset:
    x, y = nm.make_regression(200, seed=0)
    return Dataset(len(x), batch_class=AugBatch, preloaded={'images': x, 'labels': y})


def _training(ds, model_first: bool):
    init = dict(name='net', model_class=nm.LinearRegression, mode='dynamic',
                config={'n_features': F(n_features), 'lr': 0.05})
    p = ds.p.init_variable('loss', default=list)
    p = p.init_model(**init).jitter() if model_first else p.jitter().init_model(**init)
    return p.train_model('net', B('images'), B('labels'), save_to=V('loss', mode='a'))


# --- (a) a dynamic model trained under prefetch ends with exactly the weights of a run without it ----------------------
@pytest.mark.parametrize('model_first', [True, False], ids=['init_model-first', 'jitter-first'])
@pytest.mark.parametrize('options', ENGINES, ids=ENGINE_IDS)
def test_prefetch_training_gives_exactly_the_weights_of_a_run_without_prefetch(aug_ds, options, model_first):
    reference = _training(aug_ds, model_first).run(8, n_epochs=3, shuffle=5)
    p = _training(aug_ds, model_first)
    run_with_timeout(lambda: p.run(8, n_epochs=3, shuffle=5, **options), 120)
    want, got = reference.get_model_by_name('net'), p.get_model_by_name('net')
    assert got is not want and got.steps == want.steps == 75
    assert np.array_equal(got.w, want.w) and got.b == want.b
    assert p.get_variable('loss') == reference.get_variable('loss')
    assert nm.LinearRegression.builds.value == 2           # once per pipeline


# --- (i) run(reset='models') under prefetch rebuilds -------------------------------------------------------------------
@pytest.mark.parametrize('options', ENGINES, ids=ENGINE_IDS)
def test_reset_models_under_prefetch_rebuilds_each_model_once(aug_ds, options):
    p = (aug_ds.p.jitter()
         .init_model('s', nm.LinearRegression, 'static')
         .init_model('d', nm.LinearRegression, 'dynamic', config={'n_features': F(n_features)})
         .train_model('s', B('images'), B('labels'))
         .train_model('d', B('images'), B('labels'))
         .train_advanced())
    run = lambda **kw: run_with_timeout(lambda: p.run(20, n_epochs=1, shuffle=2, **options, **kw), 120)  # noqa: E731
    run()
    s, d, adv = (p.get_model_by_name(n) for n in ('s', 'd', 'advanced_model'))
    run()
    assert (p.get_model_by_name('s'), p.get_model_by_name('d'), p.get_model_by_name('advanced_model')) == (s, d, adv)
    assert s.steps == d.steps == len(adv['losses']) == 20
    run(reset='models')
    s2, d2, adv2 = (p.get_model_by_name(n) for n in ('s', 'd', 'advanced_model'))
    assert s2 is not s and d2 is not d and adv2 is not adv
    assert s2.steps == d2.steps == len(adv2['losses']) == 10
    assert nm.LinearRegression.builds.value == 4 and nm.DYNAMIC_BUILDS.value == 2
    # a reset run trains exactly like the first run of a fresh pipeline
    assert np.array_equal(d2.w, _fresh_weights(aug_ds, options))


def _fresh_weights(ds, options):
    p = (ds.p.jitter().init_model('d', nm.LinearRegression, 'dynamic', config={'n_features': F(n_features)})
         .train_model('d', B('images'), B('labels')))
    run_with_timeout(lambda: p.run(20, n_epochs=1, shuffle=2, **options), 120)
    return p.get_model_by_name('d').w


# --- (j) saved by one pipeline, loaded by another that runs with prefetch ----------------------------------------------
SAVE_LOAD = [(ENGINES[0], load) for load in ('before.load_model', 'config_load', 'load_model_now')] + \
    [(ENGINES[1], 'before.load_model')]


@pytest.mark.parametrize('options, load', SAVE_LOAD, ids=[f"{ENGINE_IDS[ENGINES.index(o)]}-{l}" for o, l in SAVE_LOAD])
def test_a_model_saved_by_one_pipeline_predicts_identically_in_another_with_prefetch(aug_ds, tmp_path, options, load):
    path = str(tmp_path / 'net.npz')
    train = (aug_ds.p.jitter().init_model('net', nm.LinearRegression, 'dynamic', {'lr': 0.1})
             .train_model('net', B('images'), B('labels'))
             .after.save_model('net', path=path))
    run_with_timeout(lambda: train.run(20, n_epochs=3, shuffle=3, **options), 120)
    trained = train.get_model_by_name('net')

    x, _ = nm.make_regression(90, seed=11)
    new_ds = Dataset(len(x), batch_class=AugBatch, preloaded={'images': x, 'labels': np.zeros(len(x))})
    infer = new_ds.p.init_variable('pred', default=list).init_variable('ids', default=list)
    if load == 'before.load_model':
        infer = infer.before.load_model('net', nm.LinearRegression, 'dynamic', path=path)
    elif load == 'config_load':
        infer = infer.init_model('net', nm.LinearRegression, 'static', config={'build': False, 'load': {'path': path}})
    else:
        infer.load_model_now('net', nm.LinearRegression, 'static', path=path)
    infer = (infer.jitter(scale=0.0)
             .predict_model('net', B('images'), save_to=V('pred', mode='a'))
             .update(V('ids', mode='e'), B('indices')))
    run_with_timeout(lambda: infer.run(7, n_epochs=1, shuffle=4, **options), 120)
    loaded = infer.get_model_by_name('net')
    assert loaded is not trained and loaded.steps == trained.steps == 30
    ids = np.asarray(infer.get_variable('ids'))
    assert sorted(ids.tolist()) == list(range(90))
    assert np.array_equal(np.concatenate(infer.get_variable('pred')), trained.predict(x[ids]))


# --- (h) import_model: two pipelines training one model concurrently share its lock ----------------------------------
@pytest.mark.parametrize('mode', ['static', 'dynamic'])
def test_an_imported_model_trained_by_two_prefetching_pipelines_at_once_never_overlaps(aug_ds, mode):
    """For a dynamic source, the importer may be the first to ask: the model is still built once, in the source."""
    source = aug_ds.p.jitter().init_model('m', nm.OverlapDetector, mode).train_model('m', B('images'), B('labels'))
    importer = aug_ds.p.jitter().import_model('m', source).train_model('m', B('images'), B('labels'))
    barrier, errors = threading.Barrier(2), []

    def run(p, options):
        try:
            barrier.wait(10)
            p.run(2, n_epochs=3, **options)
        except BaseException as exc:   # noqa: BLE001 - reported by the test
            errors.append(exc)
    threads = [threading.Thread(target=run, args=args)
               for args in ((source, {'prefetch': 4}), (importer, {'prefetch': 2, 'target': 'processes'}))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    model = source.get_model_by_name('m')
    assert importer.get_model_by_name('m') is model
    assert importer.models.get(importer, 'm').lock is source.models.get(source, 'm').lock
    assert model.overlaps == 0 and model.calls == model.steps == 600
    assert nm.LinearRegression.builds.value == 1


@pytest.mark.parametrize('change', ['reset', 'load_model_now'])
def test_an_import_stays_the_very_same_object_after_the_source_rebuilds_or_reloads_it(aug_ds, tmp_path, change):
    """Before the fix the importer kept the first model it resolved: after the source's run(reset='models') or
    load_model_now it predicted with a stale model, and no longer shared the source's lock."""
    train = aug_ds.p.init_model('m', nm.LinearRegression, 'dynamic').train_model('m', B('images'), B('labels'))
    infer = (aug_ds.p.import_model('m', train)
             .predict_model('m', B('images'), save_to=B('predictions')))
    train.run(20, n_epochs=1)
    assert infer.next_batch(50, n_epochs=1) is not None and infer.get_model_by_name('m') is train.get_model_by_name('m')
    if change == 'reset':
        train.run(20, n_epochs=2, reset='models', prefetch=2)
    else:
        path = str(tmp_path / 'm.npz')
        (aug_ds.p.init_model('m', nm.LinearRegression, 'static').train_model('m', B('images'), B('labels'))
         .run(10, n_epochs=1)).save_model_now('m', path=path)
        train.load_model_now('m', nm.LinearRegression, 'static', path=path)
    now = train.get_model_by_name('m')
    assert infer.get_model_by_name('m') is now
    assert infer.models.get(infer, 'm').lock is train.models.get(train, 'm').lock
    batch = infer.next_batch(50, n_epochs=1, prefetch=2)
    assert np.array_equal(batch.predictions, now.predict(batch.images))


# --- (k) errors name the model under prefetch too -----------------------------------------------------------------------
def _unknown_name(ds):
    return ds.p.jitter().init_model('my_model', nm.LinearRegression, 'static') \
        .train_model('my_modle', B('images'), B('labels'))


def _never_initialized(ds):
    return ds.p.jitter().train_model('resnet', B('images'), B('labels'))


def _dynamic_constructor_raises(ds):
    return ds.p.jitter().init_model('bad_net', nm.FailingModel, 'dynamic').train_model('bad_net', B('images'),
                                                                                         B('labels'))


def _dynamic_config_raises(ds):
    return ds.p.jitter().init_model('dyn', nm.LinearRegression, 'dynamic', config={'lr': F(_divide_by_zero)}) \
        .train_model('dyn', B('images'), B('labels'))


def _load_per_batch_missing_path(ds):
    return ds.p.jitter().load_model('my_model', nm.LinearRegression, 'dynamic', path='/nonexistent/model.npz')


def _divide_by_zero(batch):
    return 1 / 0


PREFETCH_ERRORS = [
    (_unknown_name, UnknownNameError, r"'my_modle'.*Did you mean 'my_model'"),
    (_never_initialized, UnknownNameError, r"'resnet'.*init_model\('resnet', ModelClass"),
    (_dynamic_constructor_raises, ModelError, r"model 'bad_net' \(FailingModel\).*bad layer size"),
    (_dynamic_config_raises, ModelError, r"config of model 'dyn'.*ZeroDivisionError"),
    (_load_per_batch_missing_path, ModelError, r"model 'my_model'.*'/nonexistent/model.npz'.*does not exist"),
]


@pytest.mark.parametrize('options', ENGINES, ids=ENGINE_IDS)
@pytest.mark.parametrize('make, exc, regex', PREFETCH_ERRORS, ids=[f.__name__.strip('_') for f, *_ in PREFETCH_ERRORS])
def test_model_errors_under_prefetch_name_the_model(aug_ds, make, exc, regex, options):
    p = make(aug_ds)
    with pytest.raises(exc, match=regex) as info:
        run_with_timeout(lambda: p.run(20, n_epochs=1, **options), 120)
    assert isinstance(info.value, BatchkitError)


def test_static_model_config_needing_a_batch_fails_when_a_template_is_made():
    with pytest.raises(ModelError, match=r"static model 'shape_model'.*need no batch.*mode='dynamic'"):
        Pipeline().init_model('shape_model', nm.LinearRegression, 'static', config={'n_features': B('images_shape')})
