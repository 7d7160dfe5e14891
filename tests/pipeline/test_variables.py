"""Variables (declare, fresh or persistent, get/set), update modes and save targets, config and C."""
from __future__ import annotations

import numpy as np
import pytest

from batchkit import (B, BatchkitError, BatchkitKeyError, BatchkitTypeError, BatchkitValueError, C, F, I, Pipeline, V)
from batchkit.errors import ConfigError


# --- declaring ---------------------------------------------------------------------------------------------------
def test_callable_default_is_made_fresh_at_each_run(ds):
    p = ds.p.init_variable('sizes', default=list).update(V('sizes', mode='a'), B('size'))
    p.run(3)
    first = p.get_variable('sizes')
    p.run(3)
    second = p.get_variable('sizes')
    assert first == second == [3, 3, 3, 1]
    assert first is not second


def test_custom_callable_default_is_called_once_per_run(ds):
    calls = []

    def make() -> dict:
        calls.append(1)
        return {'n': len(calls)}
    p = ds.p.init_variable('state', default=make)
    for _ in range(3):
        p.run(5)
    assert len(calls) == 3 and p.get_variable('state') == {'n': 3}


def test_init_on_each_run_is_the_seed_era_spelling_of_a_fresh_default(ds):
    p = ds.p.init_variable('seen', init_on_each_run=list).update(V('seen', mode='a'), I('current'))
    p.run(5)
    p.run(5)
    assert p.get_variable('seen') == [1, 2]


def test_non_callable_default_is_the_same_object_readable_before_any_run(ds):
    session = {'opened': True}
    p = ds.p.init_variable('session', session)
    assert p.get_variable('session') is session
    p.run(5)
    assert p.get_variable('session') is session


def test_non_callable_variable_persists_across_runs(ds):
    p = ds.p.init_variable('count', 0).update(V('count'), V('count') + 1)
    p.run(5)
    assert p.get_variable('count') == 2
    p.run(5)
    assert p.get_variable('count') == 4


@pytest.mark.parametrize('args, expected', [
    (('a', 'b'), {'a': None, 'b': None}),
    ((['a', 'b'],), {'a': None, 'b': None}),
    ((('a', 'b'),), {'a': None, 'b': None}),
    (({'a': 1, 'b': 'x'},), {'a': 1, 'b': 'x'}),
])
def test_init_variables_forms(ds, args, expected):
    p = ds.p.init_variables(*args)
    assert {name: p.get_variable(name) for name in p.variables.names()} == expected


def test_init_variables_dict_with_callable_default_is_fresh_each_run(ds):
    p = ds.p.init_variables({'hist': list, 'total': 0}).update(V('hist', mode='a'), 1)
    p.run(5)
    p.run(5)
    assert p.get_variable('hist') == [1, 1] and p.get_variable('total') == 0


def test_get_and_set_variable(ds):
    p = ds.p.init_variable('lr', 0.1).update(V('seen'), V('lr') * 10)
    p.set_variable('lr', 0.5)
    assert p.get_variable('lr') == 0.5 and p.v('lr') == 0.5
    p.run(10)
    assert p.get_variable('seen') == 5.0
    assert p.get_variable('missing', 'fallback') == 'fallback'


def test_get_unknown_variable_names_it_and_suggests(ds):
    p = ds.p.init_variable('loss_history', list)
    with pytest.raises(BatchkitKeyError, match=r"'loss_histroy'.*Did you mean 'loss_history'.*init_variable") as info:
        p.get_variable('loss_histroy')
    assert isinstance(info.value, KeyError)


def test_variable_declared_under_before_is_there_before_any_run(ds):
    p = ds.p.before.init_variable('x', 3).normalize()
    assert p.get_variable('x') == 3


# --- update modes --------------------------------------------------------------------------------------------------
MODES = [
    pytest.param(0, 'w', [1, 2, 3], 3, id='w'),
    pytest.param(0, 'write', [1, 2], 2, id='write'),
    pytest.param(list, 'a', [1, 2, 3], [1, 2, 3], id='a-list'),
    pytest.param(None, 'a', [1, 2], [1, 2], id='a-none'),
    pytest.param(list, 'append', [[1], [2]], [[1], [2]], id='append-keeps-lists'),
    pytest.param(set, 'a', [1, 2, 1], {1, 2}, id='a-set'),
    pytest.param(list, 'e', [[1, 2], [3]], [1, 2, 3], id='e'),
    pytest.param(list, 'extend', [(1,), (2, 3)], [1, 2, 3], id='extend'),
    pytest.param(dict, 'u', [{'a': 1}, {'b': 2}, {'a': 3}], {'a': 3, 'b': 2}, id='u-dict'),
    pytest.param(set, 'u', [{1, 2}, {2, 3}], {1, 2, 3}, id='u-set'),
    pytest.param(0, 'u', [1, 2, 3], 6, id='u-accumulates'),
    pytest.param(dict, 'update', [{'a': 1}], {'a': 1}, id='update'),
]


@pytest.mark.parametrize('default, mode, values, expected', MODES)
def test_update_modes(ds, default, mode, values, expected):
    p = ds.p.init_variable('v', default).update(V('v'), F(lambda b: values[b.indices[0]]), mode=mode)
    p.run(1, n_iters=len(values))
    assert p.get_variable('v') == expected


@pytest.mark.parametrize('mode', ['a', 'e', 'u', 'w'])
def test_mode_inside_v_wins_over_mode_argument(ds, mode):
    p = ds.p.init_variable('v', list).update(V('v', mode='a'), B('size'), mode=mode)
    p.run(4)
    assert p.get_variable('v') == [4, 4, 2]


def test_save_to_several_targets_at_once(ds):
    p = (ds.p.init_variable('sizes', list).init_variable('last', None)
         .call(lambda b: (b.size, int(b.indices[0])), save_to=[V('sizes', mode='a'), V('last')]))
    p.run(4)
    assert p.get_variable('sizes') == [4, 4, 2] and p.get_variable('last') == 8


def test_update_several_targets_with_a_tuple_of_expressions(ds):
    p = ds.p.init_variables('a', 'b').update([V('a'), V('b', mode='a')], (B('size'), I('current')))
    p.set_variable('b', [])
    p.run(3)
    assert p.get_variable('a') == 1 and p.get_variable('b') == [1, 2, 3, 4]


def test_save_to_component_and_variable_together(ds):
    p = ds.p.init_variable('n').call(lambda b: (b.labels + 1, b.size), save_to=[B('labels'), V('n')])
    batch = p.next_batch(3)
    assert batch.labels.tolist() == [1, 11, 21] and p.get_variable('n') == 3


def test_append_to_a_batch_component(ds):
    p = ds.p.update(B('notes'), []).update(B('notes', mode='a'), B('size')).update(B('notes', mode='a'), 'x')
    assert p.next_batch(3).notes == [3, 'x']


def test_seed_era_save_to_name_is_a_component_if_the_batch_has_it(ds):
    p = ds.p.init_variable('labels', 'untouched').call(lambda b: b.labels * 0 - 1, save_to='labels')
    assert p.next_batch(3).labels.tolist() == [-1, -1, -1]
    assert p.get_variable('labels') == 'untouched'


def test_seed_era_save_to_name_is_a_variable_otherwise(ds):
    p = ds.p.init_variable('total', 0).call(lambda b: b.size, save_to='total', mode='u')
    assert p.run(4).get_variable('total') == 10


def test_seed_era_append_to_on_train_model(ds, model_class):
    p = (ds.p.init_variable('loss', list).init_model('m', model_class, 'static')
         .train_model('m', x=B('labels'), append_to='loss'))
    p.run(4)
    assert p.get_variable('loss') == [60.0, 220.0, 170.0]


def test_train_model_save_to_with_mode(ds, model_class):
    p = (ds.p.init_variable('loss', list).init_model('m', model_class, 'static')
         .train_model('m', B('labels'), save_to=V('loss'), mode='a'))
    assert p.run(5).get_variable('loss') == [100.0, 350.0]


def test_variable_updates_are_exact_under_prefetch(ds):
    p = ds.p.init_variable('n', 0).normalize().update(V('n'), V('n') + 1).update(V('order', mode='a'), I('current'))
    p.set_variable('order', [])
    p.run(1, n_epochs=20, prefetch=3)
    assert p.get_variable('n') == 200 and p.get_variable('order') == list(range(1, 201))


# --- errors --------------------------------------------------------------------------------------------------------
def _run(p: Pipeline) -> None:
    p.run(5)


ERRORS = [
    pytest.param(lambda ds: _run(ds.p.init_variable('v', 5).update(V('v', mode='a'), 1)), BatchkitTypeError,
                 r"variable 'v' to hold a list, set or dict to append.*Received: int 5.*default=list", id='a-on-int'),
    pytest.param(lambda ds: _run(ds.p.init_variable('v', 5).update(V('v'), [1], mode='e')), BatchkitTypeError,
                 r"variable 'v' to hold a list to extend.*mode='e'.*Received: int", id='e-on-int'),
    pytest.param(lambda ds: _run(ds.p.init_variable('v', 'text').update(V('v', mode='u'), 1)), BatchkitTypeError,
                 r"variable 'v' to hold a dict, a set.*update.*Received: str", id='u-on-str'),
    pytest.param(lambda ds: _run(ds.p.init_variable('v', (1,)).update(V('v', mode='a'), 1)), BatchkitTypeError,
                 r"Received: tuple", id='a-on-tuple'),
    pytest.param(lambda ds: _run(ds.p.update(V('nope', mode='a'), 1)), BatchkitKeyError,
                 r"'nope', which is not initialized", id='a-on-undeclared'),
    pytest.param(lambda ds: _run(ds.p.update(B('images', mode='a'), 1)), BatchkitTypeError,
                 r"component 'images' to hold a list.*Received: ndarray", id='a-on-array-component'),
    pytest.param(lambda ds: ds.p.init_variable('v', []).update(V('v'), 1, mode='zz'), BatchkitValueError,
                 r"update mode.*Received: mode='zz'", id='bad-mode-at-chain'),
    pytest.param(lambda ds: V('v', mode='appendd'), BatchkitValueError, r"Received: mode='appendd'", id='bad-mode-in-V'),
    pytest.param(lambda ds: B('c', mode=3), BatchkitValueError, r"Received: mode=3", id='bad-mode-in-B'),
    pytest.param(lambda ds: ds.p.call(len, save_to='x', mode='q'), BatchkitValueError, r"mode='q'",
                 id='bad-mode-in-call'),
    pytest.param(lambda ds: _run(ds.p.call(lambda b: (1, 2, 3), save_to=[V('a'), V('b')])), BatchkitValueError,
                 r"Expected 2 values for the 2 targets.*Received: tuple of length 3", id='targets-vs-values'),
    pytest.param(lambda ds: _run(ds.p.call(lambda b: 1, save_to=[V('a'), V('b')])), BatchkitValueError,
                 r"Expected 2 values.*Received: int", id='targets-vs-scalar'),
    pytest.param(lambda ds: ds.p.call(lambda b: 1, save_to=3), BatchkitTypeError,
                 r"save_to to be B\('name'\), V\('name'\), a name.*Received: 3", id='bad-target-at-chain'),
    pytest.param(lambda ds: ds.p.update([V('a'), 2], (1, 2)), BatchkitTypeError, r"Received: 2",
                 id='bad-target-in-list-at-chain'),
    pytest.param(lambda ds: ds.p.update(B(), 1), BatchkitTypeError, r"Received: B\(\)", id='B()-target-at-chain'),
    pytest.param(lambda ds: V(3), BatchkitTypeError, r"variable name \(str\).*V\(3\)", id='V-non-str'),
    pytest.param(lambda ds: ds.p.init_variable(''), BatchkitTypeError, r"non-empty str", id='empty-name'),
    pytest.param(lambda ds: ds.p.get_variable('x'), BatchkitKeyError, r"'x', which is not initialized", id='get-unknown'),
]


@pytest.mark.parametrize('make, exc, message', ERRORS)
def test_variable_and_update_errors(ds, make, exc, message):
    with pytest.raises(exc, match=message) as info:
        make(ds)
    assert isinstance(info.value, BatchkitError)


def test_mode_error_leaves_the_variable_as_it_was(ds):
    p = ds.p.init_variable('v', 5).update(V('v', mode='a'), 1)
    with pytest.raises(BatchkitTypeError):
        p.run(5)
    assert p.get_variable('v') == 5


# --- config and C ----------------------------------------------------------------------------------------------------
def test_config_value_reaches_the_action(ds):
    p = Pipeline(config={'scale': 4.}).normalize(scale=C('scale')) << ds
    assert p.next_batch(10).images[8][0] == 2.
    assert ds.pipeline(config={'scale': 8.}).normalize(scale=C('scale')).next_batch(10).images[8][0] == 1.


@pytest.mark.parametrize('config, expr, expected', [
    ({}, C('scale', default=255.), 255.),
    ({'scale': 2}, C('scale', default=255.), 2),
    ({'model': {'lr': 0.01}}, C('model/lr'), 0.01),
    ({'model': {'opt': {'name': 'adam'}}}, C('model/opt/name'), 'adam'),
    ({'model': {}}, C('model/lr', default=0.1), 0.1),
    ({'a': None}, C('a', default=1), None),
    ({'model': {'lr': 0.01}}, C('model/lr') * 10, 0.1),
])
def test_c_reads_config_with_default_and_nested_keys(ds, config, expr, expected):
    p = ds.pipeline(config=config).init_variable('out', 'unset').update(V('out'), expr)
    out = p.run(10).get_variable('out')
    assert out is None if expected is None else out == pytest.approx(expected)


@pytest.mark.parametrize('config, key, message', [
    ({}, 'scale', r"config option 'scale'.*default="),
    ({'scal': 1}, 'scale', r"config option 'scale'.*Did you mean 'scal'"),
    ({'model': {'lr': 1}}, 'model/l', r"config option 'model/l'.*Did you mean 'model/lr'"),
    ({'model': 3}, 'model/lr', r"config option 'model/lr'"),
])
def test_missing_config_key_without_default_names_the_key(ds, config, key, message):
    p = ds.pipeline(config=config).normalize(scale=C(key))
    with pytest.raises(ConfigError, match=message) as info:
        p.run(5)
    assert isinstance(info.value, KeyError) and isinstance(info.value, BatchkitError)


def test_missing_config_fails_before_any_batch(ds):
    seen = []
    p = ds.p.log(seen).normalize(scale=C('scale'))
    with pytest.raises(ConfigError):
        p.run(5)
    assert seen == []


def test_config_must_be_a_dict():
    with pytest.raises(BatchkitTypeError, match=r"`config` to be a dict. Received: list"):
        Pipeline(config=[1])


def test_config_is_copied_not_shared(ds):
    config = {'scale': 2.}
    p = ds.pipeline(config=config)
    config['scale'] = 100.
    assert p.config == {'scale': 2.}
    assert np.isfinite(p.normalize(scale=C('scale')).next_batch(2).images).all()


class _CallableModel:
    """Stands for a Keras model or torch module: callable, yet a value to keep."""

    def __call__(self, x):
        return x


def test_a_callable_object_default_is_stored_not_called():
    import functools

    from batchkit import Dataset

    model = _CallableModel()
    p = Dataset(4).p.init_variable('model', model).init_variable('fresh', functools.partial(list, [1]))
    assert p.get_variable('model') is model          # readable before any run, the same object
    p.run(2)
    assert p.get_variable('model') is model          # not called at the run start
    assert p.get_variable('fresh') == [1]            # a partial is a factory: called at the run start


def test_reset_variables_gives_every_variable_its_declared_value_again():
    from batchkit import Dataset
    ds = Dataset(6)
    p = ds.p.init_variable('n', 0).init_variable('seen', default=list).update(V('n'), V('n') + 1)
    p.run(2)
    p.run(2)
    assert p.get_variable('n') == 6                       # a non-callable default persists across runs
    p.set_variable('seen', ['kept until a run starts'])
    p.run(2, reset='variables')
    assert p.get_variable('n') == 3 and p.get_variable('seen') == []
    p.run(2, reset=['models', 'variables'])
    assert p.get_variable('n') == 3


# --- reset and mode errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize('default', [[], {}, set()], ids=['list', 'dict', 'set'])
def test_reset_variables_drops_what_earlier_runs_put_in_a_container_default(ds, default):
    value = B('size') if isinstance(default, (list, set)) else {'n': B('size')}
    p = ds.p.init_variable('seen', default=default).update(V('seen', mode='a' if isinstance(default, list) else 'u'),
                                                           [B('size')] if isinstance(default, set) else value)
    p.run(5)
    p.run(5, reset='variables')
    expected = {list: [5, 5], dict: {'n': 5}, set: {5}}[type(default)]
    assert p.get_variable('seen') == expected
    assert default == expected                 # the first run stores the declared object itself, as documented


@pytest.mark.parametrize('default, mode, value', [
    (None, 'e', B('size')),
    ({}, 'u', 1),
    ({}, 'a', ('k', 1)),
], ids=['extend-none-with-int', 'update-dict-with-int', 'append-pair-to-dict'])
def test_a_value_the_mode_cannot_take_is_a_batchkit_error(ds, default, mode, value):
    p = ds.p.init_variable('v', default=default).update(V('v', mode=mode), value)
    with pytest.raises(BatchkitTypeError, match=rf"to write to variable 'v' in mode '{mode}'.*Received: "):
        p.run(5)


def test_an_array_given_to_init_on_each_run_is_stored_as_a_value(ds):
    p = ds.p.init_variable('x', init_on_each_run=np.array([1, 2]))
    p.run(5)
    np.testing.assert_array_equal(p.get_variable('x'), [1, 2])


# --- append_to (seed-era spelling) --------------------------------------------------------------------------------
def test_call_appends_to_append_to(ds):
    p = ds.p.init_variable('sizes', default=list).call(lambda batch: batch.size, append_to='sizes')
    assert p.run(4).get_variable('sizes') == [4, 4, 2]


def test_save_to_and_append_to_together_is_an_error_when_chained(ds):
    with pytest.raises(BatchkitTypeError, match=r"one target: save_to= or the older append_to="):
        ds.p.init_variable('a').call(lambda batch: batch.size, save_to='a', append_to='a')
