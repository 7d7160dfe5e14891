"""@action, @model and @inbatch_parallel: registries, models, locks and per-item parallelism (API.md section 2)."""
from __future__ import annotations

import inspect
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from batchkit import (ArrayBatch, Batch, BatchkitError, BatchkitTypeError, Dataset, DatasetIndex, action,
                      inbatch_parallel, model)
from batchkit.errors import LockTimeoutError, ModelError, UnknownNameError
from batchkit.models.store import ModelStore

COMPILED = Counter()      # how many times each static model definition ran


class MyBatch(ArrayBatch):
    components = ('images', 'labels')

    @action
    def normalize(self, scale=255.):
        """Divide the images by `scale`."""
        self.images = self.images / scale
        return self

    @action(use_lock='write_lock')
    def append_to(self, sink):
        sink.append(self.indices.tolist())

    @action()
    def returns_none(self):
        self.touched = True

    @model(mode='static')
    def basic_model():
        COMPILED['basic_model'] += 1
        return {'w': np.zeros(28)}

    @model(mode='dynamic')
    def advanced_model(self, config=None):
        return {'shape': self.images.shape[1:], 'config': config}

    @action(model='basic_model')
    def train_step(self, model_spec, lr=0.1):
        self.got = (model_spec, lr)

    @action(model='advanced_model')
    def dyn_step(self, model_spec):
        self.got = model_spec

    def helper(self):
        return 'plain'


@pytest.fixture
def my_batch():
    X = np.arange(40, dtype=float).reshape(10, 2, 2)
    return Dataset(10, batch_class=MyBatch, preloaded={'images': X, 'labels': np.arange(10)}).next_batch(4)


# --- @action / registries ----------------------------------------------------------------------------------
def test_action_both_spellings(my_batch):
    out = my_batch.normalize(scale=2.)
    assert out is my_batch
    assert my_batch.images[1, 0, 0] == 2.
    assert my_batch.returns_none() is my_batch      # an action returning None gives the batch
    assert my_batch.touched


def test_registries_contain_exactly_the_decorated_names():
    assert set(MyBatch.actions) == {'normalize', 'append_to', 'returns_none', 'train_step', 'dyn_step',
                                    'load', 'dump'}
    assert set(MyBatch.models) == {'basic_model', 'advanced_model'}
    assert set(ArrayBatch.actions) == {'load', 'dump'}
    assert dict(Batch.actions) == {} and dict(Batch.models) == {}
    assert MyBatch.models['advanced_model'].mode == 'dynamic'
    assert MyBatch.actions['append_to'].use_lock == 'write_lock'
    assert MyBatch.actions['train_step'].model == 'basic_model'


def test_plain_batch_subclass_registry():
    class Plain(Batch):
        @action
        def a(self):
            pass

        def b(self):
            pass

    assert set(Plain.actions) == {'a'}
    assert set(Plain.models) == set()


@pytest.mark.parametrize('registry', ['actions', 'models'])
def test_registries_are_read_only(registry):
    mapping = getattr(MyBatch, registry)
    with pytest.raises(TypeError):
        mapping['new'] = mapping[next(iter(mapping))]
    with pytest.raises(TypeError):
        del mapping[next(iter(mapping))]
    assert 'new' not in mapping


def test_methods_keep_their_names():
    for name in ('normalize', 'append_to', 'train_step', 'basic_model', 'advanced_model'):
        assert getattr(MyBatch, name).__name__ == name
        assert getattr(MyBatch, name).__qualname__ == f'MyBatch.{name}'
    assert MyBatch.normalize.__doc__ == 'Divide the images by `scale`.'
    assert list(inspect.signature(MyBatch.normalize).parameters) == ['self', 'scale']
    defined = {'normalize', 'append_to', 'returns_none', 'basic_model', 'advanced_model', 'train_step', 'dyn_step',
               'helper', 'components'}
    public = {k for k in vars(MyBatch) if not k.startswith('_')}
    assert public == defined       # nothing renamed, no aliases added (the registries live on BatchMeta)
    assert MyBatch.helper(None) == 'plain'


def test_action_called_through_the_class(my_batch):
    assert MyBatch.normalize(my_batch, 4.) is my_batch
    with pytest.raises(BatchkitTypeError, match=r"action 'normalize' to be called on a batch"):
        MyBatch.normalize()


def test_subclass_inherits_and_overrides_actions(my_batch):
    class Sub(MyBatch):
        @action
        def normalize(self, scale=1.):
            self.images = self.images - scale

        @action
        def extra(self):
            pass

    assert set(Sub.actions) == set(MyBatch.actions) | {'extra'}
    assert Sub.actions['normalize'].fn is vars(Sub)['normalize'].__wrapped__
    assert MyBatch.actions['normalize'].fn is vars(MyBatch)['normalize'].__wrapped__
    batch = Sub(DatasetIndex(2), preloaded={'images': np.array([5., 7.])})
    assert batch.normalize().images.tolist() == [4., 6.]
    assert set(Sub.models) == set(MyBatch.models)


def test_plain_method_removes_inherited_action_and_model():
    class Sub(MyBatch):
        def normalize(self):
            return 'plain'

        @action
        def advanced_model(self):       # an action replaces a model of the same name ...
            pass

        def dyn_step(self):             # ... which no action may name any more
            pass

    assert 'normalize' not in Sub.actions
    assert 'normalize' in MyBatch.actions
    assert 'advanced_model' not in Sub.models and 'advanced_model' in Sub.actions
    assert 'dyn_step' not in Sub.actions

    class SubSub(Sub):
        pass

    assert 'normalize' not in SubSub.actions
    assert SubSub(DatasetIndex(1)).normalize() == 'plain'


# --- @model ------------------------------------------------------------------------------------------------
def test_model_definition_cannot_be_called(my_batch):
    with pytest.raises(BatchkitTypeError, match=r"never called directly.*@action\(model='basic_model'\)"):
        MyBatch.basic_model()
    with pytest.raises(TypeError, match=r"@action\(model='advanced_model'\)") as info:
        my_batch.advanced_model()
    assert isinstance(info.value, BatchkitError)


def test_static_model_compiled_once_and_injected(my_batch):
    assert COMPILED['basic_model'] == 1               # at class creation, not at use
    descriptor = MyBatch.class_model('basic_model')
    assert my_batch.train_step(lr=0.5) is my_batch
    assert my_batch.got[0] is descriptor
    assert my_batch.got[1] == 0.5
    assert my_batch.get_model_by_name('basic_model') is descriptor
    my_batch.train_step()
    assert COMPILED['basic_model'] == 1


def test_subclass_inherits_the_same_static_descriptor():
    before = COMPILED['basic_model']

    class Sub(MyBatch):
        pass

    class SubSub(Sub):
        @action
        def more(self):
            pass

    assert COMPILED['basic_model'] == before
    descriptor = MyBatch.class_model('basic_model')
    assert Sub.class_model('basic_model') is descriptor
    assert SubSub.class_model('basic_model') is descriptor
    batch = SubSub(DatasetIndex(2))
    batch.train_step()
    assert batch.got[0] is descriptor


def test_subclass_overrides_a_model():
    calls = []

    class Sub(MyBatch):
        @model
        def basic_model():
            calls.append(1)
            return 'sub descriptor'

    assert calls == [1]
    assert Sub.class_model('basic_model') == 'sub descriptor'
    assert MyBatch.class_model('basic_model') != 'sub descriptor'
    batch = Sub(DatasetIndex(1))
    batch.train_step()
    assert batch.got[0] == 'sub descriptor'


def test_dynamic_model_built_from_batch(my_batch):
    store = ModelStore()
    built = MyBatch.class_model('advanced_model', batch=my_batch, config={'k': 1}, store=store)
    assert built == {'shape': (2, 2), 'config': {'k': 1}}
    assert MyBatch.class_model('advanced_model', batch=my_batch, store=store) is built
    my_batch.dyn_step()
    assert my_batch.got['shape'] == (2, 2)


def test_dynamic_model_needs_a_batch():
    with pytest.raises(ModelError, match='Expected a batch'):
        MyBatch.class_model('advanced_model')


def test_unknown_model_name_at_lookup():
    with pytest.raises(UnknownNameError, match=r"'basic_modl'.*Did you mean 'basic_model'"):
        MyBatch.class_model('basic_modl')


@pytest.mark.parametrize(('name', 'regex'), [
    ('basic_modle', r"model='basic_modle'.*Did you mean 'basic_model'"),
    ('zzz', r"model='zzz'.*Known names: 'advanced_model', 'basic_model'"),
])
def test_action_with_unknown_model_fails_at_class_creation(name, regex):
    with pytest.raises(UnknownNameError, match=regex) as info:
        class Broken(MyBatch):
            @action(model=name)
            def step(self, spec):
                pass
    assert isinstance(info.value, AttributeError) and isinstance(info.value, BatchkitError)
    assert 'Broken.step' in str(info.value)


def test_action_with_model_in_class_without_models():
    with pytest.raises(UnknownNameError, match=r"model='m'.*None are defined"):
        class Broken(Batch):
            @action(model='m')
            def step(self, spec):
                pass


def test_static_model_that_raises_gives_model_error():
    with pytest.raises(ModelError, match=r"static model 'Bad.broken'.*ZeroDivisionError") as info:
        class Bad(Batch):
            @model
            def broken():
                return 1 / 0
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, BatchkitError)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_dynamic_model_that_raises_gives_model_error():
    class Bad(Batch):
        @model(mode='dynamic')
        def broken(self):
            raise OSError('no disk')

    with pytest.raises(ModelError, match=r"dynamic model 'Bad.broken'.*OSError: no disk"):
        Bad.class_model('broken', batch=Bad(DatasetIndex(1)), store=ModelStore())


class DynBatch(Batch):
    builds = Counter()
    builds_lock = threading.Lock()

    @model(mode='dynamic')
    def slow(self, config=None):
        with DynBatch.builds_lock:
            DynBatch.builds[config] += 1
        time.sleep(0.001)
        return object()


def test_dynamic_model_built_exactly_once_under_threads():
    n_threads, n_iters = 16, 200
    batch = DynBatch(DatasetIndex(3))
    with ThreadPoolExecutor(n_threads) as pool:
        for it in range(n_iters):
            store = ModelStore()
            barrier = threading.Barrier(n_threads)

            def request(store=store, barrier=barrier, it=it):
                barrier.wait(timeout=10)
                return DynBatch.class_model('slow', batch=batch, config=it, store=store)

            results = [f.result() for f in [pool.submit(request) for _ in range(n_threads)]]
            assert DynBatch.builds[it] == 1, f'iteration {it}: built {DynBatch.builds[it]} times'
            assert all(r is results[0] for r in results)
            assert store.get('slow').model is results[0]


# --- locks -------------------------------------------------------------------------------------------------
class Tracker:
    """Counts calls and the largest number of calls that were running at once."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.active = self.max_active = self.count = 0

    def run(self, pause: float = 0.0001) -> None:
        with self.guard:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(pause)
        with self.guard:
            self.active -= 1
            self.count += 1


class LockBatch(Batch):
    @action(use_lock=True)
    def locked_one(self, tracker):
        tracker.run()

    @action(use_lock=True)
    def locked_two(self, tracker):
        tracker.run()

    @action(use_lock='lb_shared')
    def shared_a(self, tracker):
        tracker.run()

    @action(use_lock='lb_shared')
    def shared_b(self, tracker):
        tracker.run()

    @action
    def unlocked(self, tracker):
        tracker.run(0.001)

    @action(use_lock=True, lock_timeout=0.05)
    def held(self, entered=None, release=None):
        if entered is not None:
            entered.set()
            release.wait(10)

    @action(use_lock=True, lock_timeout=1)
    def other_held(self):
        return 'ok'

    @action(use_lock='lb_timeout', lock_timeout=0.05)
    def try_named(self):
        return 'ok'

    @action(use_lock='lb_timeout')
    def hold_named(self, entered, release):
        entered.set()
        release.wait(10)

    @action(use_lock=True, lock_timeout=1)
    def maybe_raise(self, fail):
        if fail:
            raise ValueError('failed inside the lock')
        return 'ok'


def _hammer(names: list[str], tracker: Tracker, n_threads: int = 8, n_calls: int = 50) -> None:
    barrier = threading.Barrier(n_threads)

    def work(k: int) -> None:
        batch = LockBatch(DatasetIndex(2))      # a standalone batch per thread
        barrier.wait(timeout=10)
        for i in range(n_calls):
            getattr(batch, names[(k + i) % len(names)])(tracker)

    with ThreadPoolExecutor(n_threads) as pool:
        for f in [pool.submit(work, k) for k in range(n_threads)]:
            f.result()


@pytest.mark.parametrize('names', [['locked_one'], ['locked_two'], ['shared_a', 'shared_b']],
                         ids=['lock-per-action', 'another-action', 'named-lock-shared-by-two'])
def test_use_lock_serializes(names):
    tracker = Tracker()
    _hammer(names, tracker)
    assert tracker.count == 8 * 50
    assert tracker.max_active == 1
    assert tracker.active == 0


def test_without_lock_calls_overlap():
    # the tracker does see overlap when nothing serializes the calls (so the tests above mean something)
    tracker = Tracker()
    _hammer(['unlocked'], tracker, n_calls=5)
    assert tracker.count == 8 * 5
    assert tracker.max_active > 1


def _hold_in_thread(batch_method, **kwargs):
    entered, release = threading.Event(), threading.Event()
    pool = ThreadPoolExecutor(1)
    future = pool.submit(batch_method, entered=entered, release=release, **kwargs)
    assert entered.wait(10)
    return pool, future, release


def test_lock_timeout_raises_when_another_thread_holds_it():
    pool, future, release = _hold_in_thread(LockBatch(DatasetIndex(1)).held)
    try:
        with pytest.raises(LockTimeoutError, match=r"lock of action 'held' within lock_timeout=0.05") as info:
            LockBatch(DatasetIndex(1)).held()
        assert isinstance(info.value, BatchkitError) and isinstance(info.value, TimeoutError)
        # use_lock=True is a lock per action: another action is not blocked
        assert LockBatch(DatasetIndex(1)).other_held() == 'ok'
    finally:
        release.set()
        future.result()
        pool.shutdown()
    assert LockBatch(DatasetIndex(1)).held() is not None      # free again


def test_named_lock_timeout():
    pool, future, release = _hold_in_thread(LockBatch(DatasetIndex(1)).hold_named)
    try:
        with pytest.raises(LockTimeoutError):
            LockBatch(DatasetIndex(1)).try_named()
    finally:
        release.set()
        future.result()
        pool.shutdown()
    assert LockBatch(DatasetIndex(1)).try_named() == 'ok'


def test_lock_released_when_action_raises():
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(ValueError, match='failed inside the lock'):
            pool.submit(LockBatch(DatasetIndex(1)).maybe_raise, True).result()
    with ThreadPoolExecutor(1) as pool:        # a different thread: an RLock still held would time out
        assert pool.submit(LockBatch(DatasetIndex(1)).maybe_raise, False).result() == 'ok'
    assert LockBatch(DatasetIndex(1)).maybe_raise(False) == 'ok'


# --- decorator argument errors ----------------------------------------------------------------------------
def _fn(self):
    pass


@pytest.mark.parametrize(('make', 'error', 'regex'), [
    (lambda: action(use_lock=1)(_fn), TypeError, r'`use_lock` to be True, False or a lock name \(str\). '
                                                  r'Received: use_lock=1'),
    (lambda: action(use_lock=['a'])(_fn), TypeError, r"use_lock=\['a'\]"),
    (lambda: action(use_lock=True, lock_timeout=0)(_fn), ValueError, r'`lock_timeout` to be a positive number'),
    (lambda: action(lock_timeout='1')(_fn), TypeError, r"lock_timeout='1' of type str"),
    (lambda: action(model=3)(_fn), TypeError, r'`model` to be a model name \(str\). Received: model=3'),
    (lambda: action(3), TypeError, r'@action to decorate a function'),
    (lambda: model(mode='bogus')(_fn), ValueError, r"`mode` to be one of \('static', 'dynamic'\). "
                                                   r"Received: mode='bogus'"),
    (lambda: inbatch_parallel(target='bogus'), ValueError, r"`target` to be one of \('threads', 'for', "
                                                           r"'processes'\). Received: target='bogus'"),
    (lambda: inbatch_parallel(n_workers=0), ValueError, r'`n_workers` to be a positive int or None'),
    (lambda: inbatch_parallel(use_lock=2.5), TypeError, r'`use_lock`'),
    (lambda: inbatch_parallel(n_workers='2'), TypeError, r"`n_workers` to be a positive int or None. "
                                                         r"Received: n_workers='2' of type str"),
    (lambda: inbatch_parallel(n_workers=True), TypeError, r'n_workers=True of type bool'),
    (lambda: inbatch_parallel(n_workers=2.0), TypeError, r'n_workers=2.0 of type float'),
    (lambda: inbatch_parallel(n_workers=np.int64(0)), ValueError, r'positive int or None. Received: n_workers=0'),
    (lambda: action(ordered='yes')(_fn), TypeError, r"`ordered` to be True or False. Received: ordered='yes' of type str"),
    (lambda: inbatch_parallel(ordered=1), TypeError, r'`ordered` to be True or False. Received: ordered=1 of type int'),
], ids=['use-lock-int', 'use-lock-list', 'timeout-zero', 'timeout-str', 'model-int', 'action-non-callable',
        'model-mode', 'parallel-target', 'parallel-workers', 'parallel-use-lock', 'parallel-workers-str',
        'parallel-workers-bool', 'parallel-workers-float', 'parallel-workers-np-zero', 'ordered-str',
        'parallel-ordered-int'])
def test_decorator_argument_errors(make, error, regex):
    with pytest.raises(error, match=regex) as info:
        make()
    assert isinstance(info.value, BatchkitError)


# --- @inbatch_parallel -------------------------------------------------------------------------------------
def make_parallel_class(target: str) -> type:
    class PBatch(ArrayBatch):
        components = ('x',)

        @inbatch_parallel(init='indices', target=target)
        def record(self, ix, tag='t'):
            with self.guard:
                self.seen.append((ix, tag))
            return ix

        @inbatch_parallel(init='indices', post='collect', target=target, n_workers=4)
        def slow_square(self, ix):
            pos = int(self.index.get_pos(ix))
            time.sleep(0.002 * (len(self) - pos))       # later items finish first
            return self.x[pos] ** 2

        def collect(self, results):
            self.results = results
            return self

        def pairs(self):
            return [(i, i * 10) for i in range(len(self))]

        @inbatch_parallel(init='pairs', post=lambda batch, results: batch.set_results(results), target=target)
        def from_pairs(self, pair, offset=0):
            return pair[0] + pair[1] + offset

        @inbatch_parallel(init=lambda batch: list(reversed(range(len(batch)))), post='collect', target=target)
        def from_callable(self, k):
            return k

        @inbatch_parallel(init='indices', target=target)
        def fails(self, ix, bad):
            if ix == bad:
                raise ValueError(f'bad item {ix}')

        def set_results(self, results):
            self.results = results

    return PBatch


@pytest.fixture(params=['for', 'threads'])
def pbatch(request):
    cls = make_parallel_class(request.param)
    ids = np.array(['a', 'b', 'c', 'd', 'e', 'f'])
    batch = cls(DatasetIndex(ids), preloaded={'x': np.arange(6) + 1})
    batch.seen, batch.guard = [], threading.Lock()
    return batch


def test_parallel_methods_are_actions(pbatch):
    assert {'record', 'slow_square', 'from_pairs', 'from_callable', 'fails'} <= set(type(pbatch).actions)
    assert 'collect' not in type(pbatch).actions
    assert type(pbatch).record.__name__ == 'record'


def test_parallel_init_indices_once_per_item(pbatch):
    out = pbatch.record(tag='z')
    assert out is pbatch                                   # no post: results ignored, the batch returned
    assert sorted(pbatch.seen) == [(i, 'z') for i in 'abcdef']
    assert len(pbatch.seen) == 6


def test_parallel_post_gets_results_in_item_order(pbatch):
    assert pbatch.slow_square() is pbatch
    assert pbatch.results == [1, 4, 9, 16, 25, 36]


def test_parallel_init_method_name_and_callable_post(pbatch):
    assert pbatch.from_pairs(offset=1) is pbatch
    assert pbatch.results == [1, 12, 23, 34, 45, 56]


def test_parallel_init_callable(pbatch):
    pbatch.from_callable()
    assert pbatch.results == [5, 4, 3, 2, 1, 0]


@pytest.mark.parametrize('bad', ['a', 'd', 'f'])
def test_parallel_exception_propagates(pbatch, bad):
    with pytest.raises(ValueError, match=f'bad item {bad}'):
        pbatch.fails(bad)


def test_parallel_over_dataset_batches():
    cls = make_parallel_class('threads')
    ds = Dataset(20, batch_class=cls, preloaded={'x': np.arange(20)})
    for batch in ds.gen_batch(7, shuffle=3):
        batch.slow_square()
        assert batch.results == (np.arange(20)[batch.indices] ** 2).tolist()


def test_registries_cannot_be_replaced():
    class Replaced(ArrayBatch):
        @action
        def go(self):
            return self

    for name in ('actions', 'models'):
        with pytest.raises(AttributeError, match='assignment'):
            setattr(Replaced, name, {})
    assert 'go' in Replaced.actions


class _SignatureBatch(ArrayBatch):
    @action
    def scale(self, factor: float, shift: float = 0.0):
        return self


@pytest.mark.parametrize('chain, regex', [
    (lambda p: p.scale(1, 2, 3), r"Expected the arguments of action _SignatureBatch.scale\(factor, shift=0.0\). "
                                 r"Received: scale\(1, 2, 3\): too many positional arguments"),
    (lambda p: p.update(1, 2, 3, 4), r"Expected the arguments of update\(target, value, mode='w'\). "
                                     r"Received: update\(1, 2, 3, 4\)"),
], ids=['action', 'builtin'])
def test_signature_errors_show_the_users_call(chain, regex):
    with pytest.raises(TypeError, match=regex) as info:
        chain(Dataset(4, _SignatureBatch).p)
    assert isinstance(info.value, BatchkitError)
    assert 'self' not in str(info.value) and "'float'" not in str(info.value) and "'Pipeline'" not in str(info.value)


def test_inbatch_parallel_accepts_a_numpy_int_for_n_workers():
    class NBatch(ArrayBatch):
        components = ('x',)

        @inbatch_parallel(init='indices', post='collect', target='threads', n_workers=np.int64(2))
        def square(self, ix):
            return int(self.x[self.index.get_pos(ix)]) ** 2

        def collect(self, results):
            self.squares = results
            return self

    n_workers = NBatch.actions['square'].parallel.n_workers
    assert n_workers == 2 and type(n_workers) is int
    batch = NBatch(DatasetIndex(4), preloaded={'x': np.arange(4)})
    assert batch.square().squares == [0, 1, 4, 9]
