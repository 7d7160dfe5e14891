"""Chain-time checks of API.md section 3: user mistakes fail early and clearly; seed 000 runs as written."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from batchkit import (ArrayBatch, B, BatchkitAttributeError, BatchkitError, BatchkitKeyError, BatchkitTypeError,
                      BatchkitValueError, C, ConfigError, D, Dataset, F, M, Pipeline, UnknownNameError, V, action,
                      inbatch_parallel, model)

N = 10


class AuditPipeBatch(ArrayBatch):
    components = ('images', 'labels')

    @action
    def normalize(self, scale=2.):
        self.images = self.images / scale
        return self

    @action
    def two_args(self, a, b):
        return self

    @action
    def anything(self, *args, **kwargs):
        self.got = (args, kwargs)
        return self

    @action
    def log(self, events):
        events.append(self.indices.tolist())
        return self

    @inbatch_parallel(init='indices', target='for')
    def per_item(self, item, k):
        self.seen = getattr(self, 'seen', []) + [(item, k)]

    @model(mode='dynamic')
    def dyn(self):
        return {'n_features': self.images.shape[1]}

    @action(model='dyn')
    def use_dyn(self, spec, k=1):
        self.spec = (spec, k)
        return self


@pytest.fixture
def ds():
    images = np.repeat(np.arange(N, dtype=np.float64), 4).reshape(N, 4)
    return Dataset(N, batch_class=AuditPipeBatch, preloaded={'images': images, 'labels': np.arange(N) * 10})


# --- an action chained with arguments that do not fit it fails when chained, never mid-run ------------------------
WRONG_CALLS = [
    pytest.param(lambda p: p.two_args(1), r"two_args\(a, b\). Received: two_args\(1\): missing a required argument: 'b'",
                 id='missing-arg'),
    pytest.param(lambda p: p.normalize(scael=3), r"normalize\(scale=2.0\). Received: normalize\(scael=3\): got an "
                 r"unexpected keyword argument 'scael'", id='typo-keyword'),
    pytest.param(lambda p: p.normalize(1, 2), r"normalize\(scale=2.0\). Received: normalize\(1, 2\): too many positional arguments",
                 id='extra-positional'),
    pytest.param(lambda p: p.per_item(), r"per_item\(k\). Received: per_item\(\): missing a required argument: 'k'",
                 id='inbatch-parallel'),
    pytest.param(lambda p: p.use_dyn(1, 2), r"use_dyn\(k=1\). Received: use_dyn\(1, 2\): too many positional", id='model-action'),
    pytest.param(lambda p: p.before.two_args(), r"two_args\(a, b\)", id='before'),
    pytest.param(lambda p: p.after.normalize(x=1), r"normalize\(scale=2.0\). Received: normalize\(x=1\): got an unexpected "
                 r"keyword argument 'x'", id='after'),
]


@pytest.mark.parametrize('make, message', WRONG_CALLS)
def test_action_with_arguments_that_do_not_fit_fails_when_chained(ds, make, message):
    events = []
    base = ds.p.log(events)
    with pytest.raises(BatchkitTypeError, match=r"Expected the arguments of action AuditPipeBatch\." + message) as info:
        make(base)
    assert isinstance(info.value, TypeError) and 'Fix the arguments' in str(info.value)
    assert events == [] and len(base.steps['main']) == 1


@pytest.mark.parametrize('make, message', WRONG_CALLS)
def test_template_with_arguments_that_do_not_fit_fails_when_linked_or_added(ds, make, message):
    template = make(Pipeline())                        # no batch class yet: nothing to check against
    with pytest.raises(BatchkitTypeError, match=message):
        template << ds
    with pytest.raises(BatchkitTypeError, match=message):
        ds.p + template


def test_calls_that_fit_are_accepted_and_run(ds):
    p = (ds.p.normalize(B('size'))                     # named expressions fit any parameter
         .two_args(a=V('x'), b=C('c', default=0))
         .anything(1, 2, key=F(len))
         .per_item(k=7)                                # the item is passed by the driver, not by the caller
         .use_dyn(k=B('size'))                         # the model descriptor is injected, not passed
         .init_variable('x', 5))
    batch = p.next_batch(3)
    assert batch.got == ((1, 2), {'key': 3})
    assert batch.seen == [(0, 7), (1, 7), (2, 7)]
    assert batch.spec == ({'n_features': 4}, 3)


def test_call_with_a_function_that_does_not_fit_fails_when_chained(ds):
    with pytest.raises(BatchkitTypeError, match=r"call\(fn, \*args, \*\*kwargs\) to fit fn\(batch, a\).*"
                                                r"Received: .*missing a required argument: 'a'.*first parameter"):
        ds.p.call(lambda batch, a: batch)
    with pytest.raises(BatchkitTypeError, match=r"too many positional arguments"):
        ds.p.call(lambda: None)                        # forgot the batch parameter
    sizes = ds.p.init_variable('n', list).call(len, save_to=V('n', mode='a')).run(4).get_variable('n')
    assert sizes == [4, 4, 2]                          # a builtin without an inspectable signature still works


def test_call_mode_inside_v_wins_over_mode_argument(ds):
    p = ds.p.init_variable('sizes', list).call(len, save_to=V('sizes', mode='a'), mode='w')
    assert p.run(3).get_variable('sizes') == [3, 3, 3, 1]


# --- other mistakes, each an error that says what was expected, what was received, and the fix -----------------
def test_pipeline_over_something_that_is_not_a_dataset(ds):
    for bad in (3, np.zeros((4, 2)), ds.p):
        with pytest.raises(BatchkitTypeError, match=r"`dataset` to be a batchkit Dataset or None. Received: "
                                                    rf"{type(bad).__name__}. Wrap arrays with Dataset.from_arrays"):
            Pipeline(dataset=bad)


@pytest.mark.parametrize('section', ['before', 'after'])
@pytest.mark.parametrize('name', ['run', 'get_variable', 'gen_batch'])
def test_non_step_method_after_before_or_after_on_a_linked_pipeline(ds, section, name):
    with pytest.raises(BatchkitTypeError, match=rf"step after `.{section}`.*Received: '{name}', a pipeline method "
                                                r"that is not a step"):
        getattr(getattr(ds.p, section), name)


@pytest.mark.parametrize('name, message', [
    ('sizee', r"attribute of dataset \(Dataset\). Received: D\('sizee'\), which has no 'sizee'. Did you mean 'size'"),
    ('index.indicez', r"attribute of dataset.index \(DatasetIndex\).*no 'indicez'. Did you mean 'indices'"),
])
def test_d_of_a_missing_attribute_fails_before_any_batch_with_a_suggestion(ds, name, message):
    events = []
    with pytest.raises(BatchkitAttributeError, match=message):
        ds.p.log(events).anything(D(name)).run(3)
    assert events == []


def test_d_reads_nested_attributes(ds):
    assert ds.p.anything(D('index.indices')).next_batch(2).got[0][0].tolist() == list(range(N))


@pytest.mark.parametrize('make, message', [
    (lambda: C(3), r"config key.*Received: C\(3\)"),
    (lambda: C(''), r"Received: C\(''\)"),
    (lambda: M(None), r"model name.*Received: M\(None\)"),
    (lambda: D(['size']), r"dataset attribute.*Received: D\(\['size'\]\)"),
    (lambda: V(1), r"variable name.*Received: V\(1\)"),
])
def test_expressions_with_a_name_that_is_not_a_str_fail_when_made(make, message):
    with pytest.raises(BatchkitTypeError, match=message):
        make()


MISTAKES = [
    pytest.param(lambda p: p.anything(B('missing')).run(3), BatchkitAttributeError,
                 r"B\('missing'\) in step 2 of the pipeline, 'anything' to name a component or attribute of "
                 r"AuditPipeBatch. Received: a batch without it. Public names: .*images.*size", id='B-missing'),
    pytest.param(lambda p: p.update(V('history', mode='a'), B('size')).run(3), BatchkitKeyError,
                 r"variable of the pipeline. Received: 'history', which is not initialized.*init_variable\('history'",
                 id='V-undeclared-append'),
    pytest.param(lambda p: p.init_variable('n', 0).update(V('n', mode='e'), B('labels')).run(3), BatchkitTypeError,
                 r"variable 'n' to hold a list to extend it \(mode='e'\). Received: int 0.*default=list",
                 id='mode-does-not-fit'),
    pytest.param(lambda p: p.normalize(C('scale')).run(3), ConfigError,
                 r"config option 'scale'. Received: a config without it.*C\(..., default=...\)", id='C-missing'),
    pytest.param(lambda p: p.update(3, B('size')), BatchkitTypeError,
                 r"save_to to be B\('name'\), V\('name'\), a name or a list of them. Received: 3", id='save-to-int'),
    pytest.param(lambda p: p.update(C('x'), B('size')), BatchkitTypeError, r"Received: C\('x'\)", id='save-to-C'),
    pytest.param(lambda p: p.call(len, save_to=B()), BatchkitTypeError, r"Received: B\(\)", id='save-to-batch'),
    pytest.param(lambda p: p.update(V('x'), 1, mode='add'), BatchkitValueError,
                 r"update mode.*Received: mode='add'", id='bad-mode'),
    pytest.param(lambda p: Pipeline().normalise() << p.dataset, UnknownNameError,
                 r"Received: 'normalise'. Did you mean 'normalize'", id='template-typo-linked-later'),
    pytest.param(lambda p: AuditPipeBatch.dyn(), BatchkitTypeError,
                 r"never called directly.*@action\(model='dyn'\)", id='model-called-directly'),
    pytest.param(lambda p: Pipeline().normalize().run(3), BatchkitValueError,
                 r"linked to a dataset. Received: a template with no dataset.*pipeline << dataset", id='no-dataset'),
    pytest.param(lambda p: p.run(3, n_epoch=2), BatchkitTypeError, r"Received: 'n_epoch'. Did you mean 'n_epochs'",
                 id='run-option-typo'),
    pytest.param(lambda p: p.run(3, prefetch='2'), BatchkitTypeError, r"Received: prefetch='2'", id='prefetch-str'),
    pytest.param(lambda p: p.get_variable('los'), BatchkitKeyError, r"Received: 'los'", id='get-unknown-variable'),
    pytest.param(lambda p: p + 3, TypeError, r"unsupported operand", id='add-non-pipeline'),
]


@pytest.mark.parametrize('make, exc, message', MISTAKES)
def test_user_mistakes_give_errors_that_say_expected_received(ds, make, exc, message):
    events = []
    p = ds.p.log(events)
    with pytest.raises(exc, match=message) as info:
        make(p)
    text = str(info.value)
    if exc is not TypeError:                      # p + 3 is Python's own operator error
        assert isinstance(info.value, BatchkitError)
        assert 'Expected' in text and 'Received' in text
    assert len(events) <= 1                       # chain-time and run-start errors: no batch; run errors: the first


def test_append_to_an_undeclared_variable_stops_at_the_first_batch_and_creates_nothing(ds):
    events = []
    p = ds.p.log(events).update(V('history', mode='a'), B('size'))
    with pytest.raises(KeyError):
        p.run(3)
    assert events == [[0, 1, 2]] and 'history' not in p.variables


def test_writing_an_undeclared_variable_creates_it(ds):
    p = ds.p.update(V('last_size'), B('size'))
    p.run(3)
    assert p.get_variable('last_size') == len(list(ds.gen_batch(3))[-1])


# --- seed 000 ("Working with models" in a batch class), with a numpy stand-in for a TF1 session -------------------
class FakeSession:
    """A tf.compat.v1.Session stand-in: `run(fetches, feed_dict)` calls each fetch with the feed. Not callable, so
    `init_variable('session', sess)` keeps this very object."""

    def __init__(self):
        self.calls = 0
        self.inside = 0
        self.max_inside = 0
        self._lock = threading.Lock()

    def run(self, fetches, feed_dict):
        with self._lock:
            self.calls += 1
            self.inside += 1
            self.max_inside = max(self.max_inside, self.inside)
        try:
            return [fetch(feed_dict) for fetch in fetches]
        finally:
            with self._lock:
                self.inside -= 1


class SeedBatch(ArrayBatch):
    components = ('images', 'labels')

    @model(mode='static')
    def basic_model():
        """Seed: `return [input_data, optimizer]` (a placeholder and a train op)."""
        input_data = 'input_data'
        state = {'w': np.zeros(4), 'steps': 0}

        def optimizer(feed):
            x = feed[input_data]
            state['w'] = state['w'] + 0.1 * x.mean(axis=0)
            state['steps'] += 1
            return state['steps']
        return [input_data, optimizer, state]

    @model(mode='dynamic')
    def advanced_model(self):
        """Seed: a dynamic definition taking only the batch, shaped from it."""
        shape = (None,) + self.images.shape[1:]
        return dict(session=FakeSession(), input_data=shape, train_step=lambda feed: len(feed['x']))

    @action(model='basic_model')
    def train_model(self, model_spec, session):
        """Seed: `session.run([optimizer], feed_dict={input_data: self.data})`."""
        input_data, optimizer, _ = model_spec
        session.run([optimizer], feed_dict={input_data: self.images})
        return self

    @action(model='basic_model')
    def evaluate_model(self, model_spec):
        self.score = float(self.images @ model_spec[2]['w'] @ np.ones(len(self)))
        return self

    @action(model='advanced_model', use_lock='some_model_lock')
    def train_it(self, model_spec):
        """Seed "Parallel training": the session is a pipeline variable, the lock a named one."""
        session = self.pipeline.get_variable('session')
        (n,) = session.run([model_spec['train_step']], feed_dict={'x': self.images})
        self.trained = (n, model_spec['input_data'])
        return self


@pytest.fixture
def seed_ds():
    return Dataset.from_arrays(batch_class=SeedBatch, images=np.ones((N, 4)), labels=np.arange(N))


def test_seed_000_static_model_action_named_train_model_with_a_session(seed_ds):
    sess = FakeSession()
    state = SeedBatch.class_model('basic_model')[2]
    before = state['steps']
    p = seed_ds.p.train_model(session=sess).evaluate_model()     # the batch-class action wins over the built-in
    p.run(3, n_epochs=2)
    assert sess.calls == 8 and state['steps'] - before == 8
    assert np.all(state['w'] > 0)


def test_seed_000_parallel_training_with_a_session_variable_and_a_named_lock(seed_ds):
    sess = FakeSession()
    p = seed_ds.p.init_variable('session', sess).train_it().init_variable('trained', list) \
        .update(V('trained', mode='a'), B('trained'))
    assert p.get_variable('session') is sess                     # the same object, readable before any run
    p.run(2, n_epochs=5, prefetch=4)
    assert sess.calls == 25 and sess.max_inside == 1
    assert p.get_variable('trained') == [(2, (None, 4))] * 25
    assert p.get_variable('session') is sess                     # and it persists across runs


# --- run options of the wrong type ----------------------------------------------------------------------------
@pytest.mark.parametrize('seed', ['abc', 1.5, -1])
def test_run_seed_of_the_wrong_kind_is_a_clear_error(ds, seed):
    with pytest.raises(BatchkitError, match=r"Expected `seed`.*Received: seed="):
        ds.p.normalize().run(3, seed=seed)


def test_run_ignore_exceptions_must_be_a_bool(ds):
    with pytest.raises(BatchkitTypeError, match=r"`ignore_exceptions`.*Received: ignore_exceptions='no'"):
        ds.p.normalize().run(3, ignore_exceptions='no')


@pytest.mark.parametrize('option, value, pattern', [
    ('profile', 'yes', r'`profile`.*Received'),
    ('bar', 'yes', r'`bar`.*Received'),
    ('reset', 'model', r'reset.*Received'),
])
def test_run_flags_of_the_wrong_kind_fail_at_the_call(ds, option, value, pattern):
    with pytest.raises(BatchkitError, match=pattern):
        ds.p.normalize().gen_batch(3, **{option: value})      # at the call, before the first next()
