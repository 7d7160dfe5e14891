"""Models in pipelines: save/load round trips, build-once under prefetch, locks, signals, persistence, config options."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import numpy_models as nm
from batchkit import ArrayBatch, B, Dataset, V, action, model, signals
from batchkit.pipeline.builtins import BUILTINS


SLOW_BUILDS = nm.Counter()


class SlowLinear(nm.LinearRegression):
    """Builds slowly, so that concurrent first requests really overlap."""

    def _build(self) -> None:
        SLOW_BUILDS()
        time.sleep(0.005)
        super()._build()


class SlowBatch(ArrayBatch):
    """A dynamic @model that builds slowly, requested by a plain action (runs in prefetch workers)."""
    components = ('images', 'labels')

    @model(mode='dynamic')
    def slow_model(self, config=None):
        nm.DYNAMIC_BUILDS()
        time.sleep(0.005)
        return nm.LinearRegression({'n_features': self.images.shape[1]})

    @action
    def touch(self, name):
        self.model_seen = self.get_model_by_name(name)
        return self


@pytest.fixture(autouse=True)
def _fresh_slow_builds():
    SLOW_BUILDS.reset()


@pytest.fixture
def slow_ds(reg_ds):
    return Dataset(200, batch_class=SlowBatch, preloaded=reg_ds.preloaded)


# --- save / load ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('how', ['save_model_now', 'after.save_model', 'save_model'])
@pytest.mark.parametrize('load', ['load_model_now', 'before.load_model', 'config_load'])
def test_saved_by_one_pipeline_loaded_by_another_predicts_identically(reg_ds, tmp_path, how, load):
    path = str(tmp_path / 'model.npz')
    train = (reg_ds.p.init_model('m', nm.LinearRegression, 'dynamic', {'lr': 0.1})
             .train_model('m', B('images'), B('labels')))
    if how == 'after.save_model':
        train = train.after.save_model('m', path=path)
    elif how == 'save_model':
        train = train.save_model('m', path=path)
    train.run(20, n_epochs=5, shuffle=3)
    if how == 'save_model_now':
        train.save_model_now('m', path=path)
    trained = train.get_model_by_name('m')

    x, _ = nm.make_regression(80, seed=11)
    new_ds = Dataset(len(x), batch_class=nm.RegBatch, preloaded={'images': x, 'labels': np.zeros(len(x))})
    infer = new_ds.p.init_variable('pred', default=list)
    if load == 'load_model_now':
        infer.load_model_now('m', nm.LinearRegression, 'static', path=path)
    elif load == 'before.load_model':
        infer = infer.before.load_model('m', nm.LinearRegression, 'dynamic', path=path)
    else:
        infer = infer.init_model('m', nm.LinearRegression, 'static', config={'build': False, 'load': {'path': path}})
    infer = infer.predict_model('m', B('images'), save_to=V('pred', mode='a'))
    infer.run(30, n_epochs=1)
    loaded = infer.get_model_by_name('m')
    assert loaded is not trained and loaded.steps == trained.steps == 50
    assert np.array_equal(np.concatenate(infer.get_variable('pred')), trained.predict(x))


def test_config_build_false_skips_build_and_load_passes_kwargs():
    assert nm.RecordingModel().built
    assert not hasattr(nm.RecordingModel({'build': False}), 'built')
    m = nm.RecordingModel({'build': False, 'load': {'path': 'p', 'fmt': 'npz'}})
    assert m.loaded == {'path': 'p', 'fmt': 'npz'} and not hasattr(m, 'built')
    both = nm.RecordingModel({'load': {'fmt': 'npz'}})
    assert both.built and both.loaded == {'fmt': 'npz'}
    assert not hasattr(nm.RecordingModel({'load': {}}), 'loaded')
    assert nm.RecordingModel({'n': 3}).get('n') == 3 and nm.RecordingModel().get('n', 5) == 5


def test_config_options_through_init_model(reg_ds, tmp_path):
    p = reg_ds.p.init_model('r', nm.RecordingModel, 'static', config={'build': False, 'load': {'fmt': 'x'}})
    model = p.get_model_by_name('r')
    assert not hasattr(model, 'built') and model.loaded == {'fmt': 'x'}


# --- build once under prefetch ---------------------------------------------------------------------------------------
def test_prefetch_builds_a_dynamic_model_exactly_once_over_200_batches(reg_ds, built):
    ds = Dataset(200, batch_class=SlowBatch, preloaded=reg_ds.preloaded)
    p = (ds.p.init_model('m', SlowLinear, 'dynamic', {'lr': 0.05})
         .touch('m')                                         # runs in the prefetch threads
         .touch('slow_model')
         .init_variable('loss', default=list)
         .train_model('m', B('images'), B('labels'), save_to=V('loss', mode='a')))
    seen = set()
    for batch in p.gen_batch(1, n_epochs=1, prefetch=4):
        seen.add(id(batch.model_seen))
    assert SLOW_BUILDS.value == 1 and nm.DYNAMIC_BUILDS.value == 1
    assert len(seen) == 1
    assert sorted(name for sender, name, *_ in built if sender is p) == ['m', 'slow_model'] and len(built) == 2
    assert p.get_model_by_name('m').steps == 200 and len(p.get_variable('loss')) == 200


def test_prefetch_builds_once_in_each_of_50_fresh_pipelines(slow_ds, built):
    pipelines = []
    for _ in range(50):
        p = slow_ds.p.init_model('m', SlowLinear, 'dynamic').touch('m').touch('slow_model')
        p.run(8, n_epochs=1, prefetch=4)
        pipelines.append(p)
    assert SLOW_BUILDS.value == 50 and nm.DYNAMIC_BUILDS.value == 50
    assert len(built) == 100
    assert all(sum(1 for sender, *_ in built if sender is p) == 2 for p in pipelines)
    assert len({id(p.get_model_by_name('m')) for p in pipelines}) == 50


# --- locks --------------------------------------------------------------------------------------------------------
def _hammer(op, pipeline, batches, n_threads=8):
    barrier = threading.Barrier(n_threads)
    errors = []

    def work(chunk):
        try:
            barrier.wait(timeout=10)
            for batch in chunk:
                op(batch, pipeline)
        except BaseException as exc:   # noqa: BLE001 - reported by the test
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(batches[i::n_threads],)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_train_model_lock_serializes_threads_calling_the_op(reg_ds):
    p = reg_ds.p.init_model('m', nm.OverlapDetector, 'static')
    op = BUILTINS['train_model'].compile(p, 'm', B('images'), B('labels'))
    batches = list(reg_ds.gen_batch(1, n_epochs=1))
    _hammer(op, p, batches)
    model = p.get_model_by_name('m')
    assert model.overlaps == 0 and model.calls == 200 and model.steps == 200


def test_without_the_lock_train_calls_do_overlap(reg_ds):
    """The detector works: with use_lock=False the same hammering overlaps."""
    p = reg_ds.p.init_model('m', nm.OverlapDetector, 'static')
    op = BUILTINS['train_model'].compile(p, 'm', B('images'), B('labels'), use_lock=False)
    _hammer(op, p, list(reg_ds.gen_batch(1, n_epochs=1)))
    assert p.get_model_by_name('m').overlaps > 0


def test_train_and_predict_share_the_model_lock(reg_ds):
    p = reg_ds.p.init_model('m', nm.OverlapDetector, 'static')
    train = BUILTINS['train_model'].compile(p, 'm', B('images'), B('labels'))
    entry = p.models.get(p, 'm')
    held = threading.Event()
    release = threading.Event()

    def holder():
        with entry.lock:
            held.set()
            release.wait(5)
    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (train(next(reg_ds.gen_batch(5)), p), done.set()))
    worker.start()
    assert not done.wait(0.1)              # blocked by the model's lock
    release.set()
    assert done.wait(5)
    t.join()
    worker.join()


def test_two_pipelines_sharing_an_imported_model_never_overlap(reg_ds):
    train1 = reg_ds.p.init_model('m', nm.OverlapDetector, 'static').train_model('m', B('images'), B('labels'))
    train2 = reg_ds.p.import_model('m', train1).train_model('m', B('images'), B('labels'))
    assert train2.get_model_by_name('m') is train1.get_model_by_name('m')
    assert train2.models.get(train2, 'm').lock is train1.models.get(train1, 'm').lock
    errors = []

    def run(p):
        try:
            p.run(2, n_epochs=3, prefetch=4)
        except BaseException as exc:   # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(p,)) for p in (train1, train2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    model = train1.get_model_by_name('m')
    assert model.overlaps == 0 and model.calls == 600 and model.steps == 600


def test_prefetch_with_model_ops_trains_exactly_once_per_batch(reg_ds):
    p = (reg_ds.p.init_model('m', nm.OverlapDetector, 'dynamic')
         .peek_model('m')
         .train_model('m', B('images'), B('labels'))
         .predict_model('m', B('images'), save_to=B('predictions')))
    for _ in range(3):
        p.run(4, n_epochs=2, prefetch=4)
    model = p.get_model_by_name('m')
    assert model.overlaps == 0 and model.calls == model.steps == 300


# --- signals ---------------------------------------------------------------------------------------------------
def test_model_built_signal_senders(reg_ds, cardio_ds, built):
    p = reg_ds.p.init_model('s', nm.LinearRegression, 'static')
    assert [(sender, name, mode) for sender, name, _, mode in built] == [(p, 's', 'static')]
    assert built[0][2] is p.get_model_by_name('s')
    p = p.init_model('d', nm.LinearRegression, 'dynamic').train_model('d', B('images'), B('labels')).train_advanced()
    p.run(50, n_epochs=2)
    assert sorted((name, mode) for sender, name, _, mode in built[1:] if sender is p) == \
        [('advanced_model', 'dynamic'), ('d', 'dynamic')]
    assert len(built) == 3


def test_model_built_for_a_class_level_static_model_is_sent_by_the_class(built):
    class Fresh(ArrayBatch):
        @model(mode='static')
        def basic():
            return {'w': np.zeros(2)}

    assert [(sender, name, mode) for sender, name, _, mode in built] == [(Fresh, 'basic', 'static')]
    assert built[0][2] is Fresh.class_model('basic')

    class Child(Fresh):        # an inherited static model is not compiled again
        pass
    assert len(built) == 1 and Child.class_model('basic') is Fresh.class_model('basic')


def test_checkpoint_saved_signal_exists():
    assert signals.checkpoint_saved.name == 'checkpoint_saved'
    assert 'checkpoint_saved' in signals.__all__ and 'model_built' in signals.__all__


# --- persistence and reset -----------------------------------------------------------------------------------------
def test_models_persist_across_runs_and_reset_rebuilds(reg_ds, built):
    p = (reg_ds.p.init_model('s', nm.LinearRegression, 'static')
         .init_model('d', nm.LinearRegression, 'dynamic')
         .train_model('s', B('images'), B('labels'))
         .train_model('d', B('images'), B('labels'))
         .train_advanced())
    p.run(50, n_epochs=1)
    s, d, adv = (p.get_model_by_name(n) for n in ('s', 'd', 'advanced_model'))
    p.run(50, n_epochs=1)
    assert (p.get_model_by_name('s'), p.get_model_by_name('d'), p.get_model_by_name('advanced_model')) == (s, d, adv)
    assert s.steps == d.steps == 8 and len(adv['losses']) == 8
    n_built = len(built)
    p.run(50, n_epochs=1, reset='models')
    s2, d2, adv2 = (p.get_model_by_name(n) for n in ('s', 'd', 'advanced_model'))
    assert s2 is not s and d2 is not d and adv2 is not adv
    assert s2.steps == d2.steps == 4 and len(adv2['losses']) == 4
    assert len(built) == n_built + 3 and nm.DYNAMIC_BUILDS.value == 2


def test_reset_keeps_imported_models(reg_ds):
    source = reg_ds.p.init_model('m', nm.LinearRegression, 'static')
    p = reg_ds.p.import_model('m', source).train_model('m', B('images'), B('labels'))
    p.run(50, n_epochs=1, reset='models')
    assert p.get_model_by_name('m') is source.get_model_by_name('m') and source.get_model_by_name('m').steps == 4


class RunEndLinear(nm.LinearRegression):
    """Counts the end-of-run calls a pipeline makes (framework models checkpoint there)."""

    def _build(self) -> None:
        super()._build()
        self.run_ends = 0

    def on_run_end(self) -> None:
        self.run_ends += 1


def test_a_run_ends_by_calling_on_run_end_of_its_models_imported_ones_included(reg_ds):
    source = reg_ds.p.init_model('m', RunEndLinear, 'static').train_model('m', B('images'), B('labels'))
    user = reg_ds.p.import_model('m', source).predict_model('m', B('images'), save_to=B('pred'))
    source.run(50, n_epochs=1)
    user.run(50, n_epochs=1)
    user.run(50, n_epochs=1, prefetch=2)
    assert source.get_model_by_name('m').run_ends == 3


def test_chained_copy_shares_already_built_models(reg_ds):
    p = reg_ds.p.init_model('m', nm.LinearRegression, 'static')
    q = p.train_model('m', B('images'), B('labels'))
    assert q.get_model_by_name('m') is p.get_model_by_name('m')


# --- model names: a second init_model, p1 + p2 ------------------------------------------------------------------
def test_second_init_model_with_a_name_in_use_is_an_error(reg_ds):
    from batchkit import ModelError
    p = reg_ds.p.init_model('m', nm.LinearRegression, 'static')
    with pytest.raises(ModelError, match=r"'m', already declared in this pipeline \(LinearRegression, static\).*"
                                         r"replace=True"):
        p.init_model('m', nm.LogisticRegression, 'dynamic')
    with pytest.raises(ModelError, match="'m', already declared"):
        p.before.init_model('m', nm.LinearRegression, 'static')
    assert isinstance(p.get_model_by_name('m'), nm.LinearRegression)       # the first one stays


def test_init_model_replace_true_replaces_the_model(reg_ds):
    p = reg_ds.p.init_model('m', nm.LinearRegression, 'static', config={'lr': 0.5})
    old = p.get_model_by_name('m')
    q = p.init_model('m', nm.LinearRegression, 'static', config={'lr': 0.01}, replace=True)
    assert q.get_model_by_name('m') is not old and q.get_model_by_name('m').lr == 0.01
    assert p.get_model_by_name('m') is old                                   # chains are immutable
    q.train_model('m', x=B('images'), y=B('labels')).run(50, n_epochs=1)
    assert q.get_model_by_name('m').steps == 4 and old.steps == 0
    from batchkit import BatchkitTypeError
    with pytest.raises(BatchkitTypeError, match='replace'):
        p.init_model('m', nm.LinearRegression, 'static', replace='yes')


def test_adding_pipelines_with_two_models_of_one_name_is_an_error(reg_ds):
    from batchkit import ModelError, Pipeline
    left = reg_ds.p.init_model('m', nm.LinearRegression, 'static')
    right = Pipeline().init_model('m', nm.LogisticRegression, 'dynamic').train_model('m', B('images'), B('labels'))
    with pytest.raises(ModelError, match=r"model 'm' declared by both \(LinearRegression, static on the left, "
                                         r"LogisticRegression, dynamic on the right\).*import_model"):
        left + right


def test_adding_pipelines_chained_from_one_model_declaration_shares_it(reg_ds):
    base = reg_ds.p.init_model('m', nm.LinearRegression, 'static')
    model = base.get_model_by_name('m')
    total = base.train_model('m', B('images'), B('labels')) + base.train_model('m', B('images'), B('labels'))
    total.run(50, n_epochs=1)
    assert total.get_model_by_name('m') is model and model.steps == 8       # both halves train the one model


def test_adding_a_pipeline_that_imports_the_model(reg_ds):
    from batchkit import Pipeline
    left = reg_ds.p.init_model('m', nm.LinearRegression, 'static')
    right = Pipeline().import_model('m', left).train_model('m', B('images'), B('labels'))
    total = (left + right).run(50, n_epochs=1)
    assert total.get_model_by_name('m') is left.get_model_by_name('m') and left.get_model_by_name('m').steps == 4


def test_import_model_under_a_name_in_use_is_an_error_unless_replace(reg_ds):
    from batchkit import ModelError
    first = reg_ds.p.init_model('m', nm.LinearRegression, 'static')
    second = reg_ds.p.init_model('m', nm.LogisticRegression, 'static')
    p = reg_ds.p.import_model('m', first)
    assert p.import_model('m', first).get_model_by_name('m') is first.get_model_by_name('m')   # the same import
    with pytest.raises(ModelError, match=r"'m', already declared.*import_model\('m', pipeline, replace=True\)"):
        p.import_model('m', second)
    with pytest.raises(ModelError, match="already declared"):
        reg_ds.p.init_model('m', nm.LinearRegression, 'static').import_model('m', second)
    assert p.import_model('m', second, replace=True).get_model_by_name('m') is second.get_model_by_name('m')
