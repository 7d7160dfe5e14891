"""Immutable chaining, action-name resolution (did-you-mean, at chain or link time), built-in name clashes."""
from __future__ import annotations

import numpy as np
import pytest

from batchkit import (B, BatchkitAttributeError, BatchkitError, BatchkitTypeError, Dataset, Pipeline, V)
from batchkit.errors import UnknownNameError

CHAINS = [
    pytest.param(lambda p: p.normalize(), id='action'),
    pytest.param(lambda p: p.normalize(scale=4.), id='action-kwargs'),
    pytest.param(lambda p: p.init_variable('x', 0), id='init_variable'),
    pytest.param(lambda p: p.init_variables('a', 'b'), id='init_variables'),
    pytest.param(lambda p: p.update(V('x'), 1), id='update'),
    pytest.param(lambda p: p.call(lambda b: None), id='call'),
    pytest.param(lambda p: p.before.normalize(), id='before'),
    pytest.param(lambda p: p.after.init_variable('y', 1), id='after'),
    pytest.param(lambda p: p << {'k': 1}, id='config'),
    pytest.param(lambda p: p + p, id='add'),
]


def _snapshot(p: Pipeline) -> tuple:
    return ({s: tuple(p.steps[s]) for s in ('before', 'main', 'after')}, dict(p.config),
            {n: p.get_variable(n) for n in p.variables.names()}, p.dataset)


@pytest.mark.parametrize('chain', CHAINS)
def test_every_call_returns_a_new_pipeline_and_leaves_the_old_one_unchanged(ds, chain):
    old = ds.p.init_variable('x', 5).normalize()
    before = _snapshot(old)
    new = chain(old)
    assert isinstance(new, Pipeline) and new is not old
    assert _snapshot(old) == before
    assert _snapshot(new) != before


def test_old_pipeline_runs_as_before_after_chaining_more(ds):
    base = ds.p.normalize(scale=2.)
    longer = base.add(100).normalize(scale=10.)
    assert longer is not base
    np.testing.assert_allclose(base.next_batch(10).images[3], [1.5] * 4)
    np.testing.assert_allclose(longer.next_batch(10).images[3], [10.15] * 4)
    assert [s.name for s in base.steps['main']] == ['normalize']


def test_two_branches_of_one_base_are_independent(ds):
    base = ds.p.init_variable('n', 0)
    a = base.update(V('n'), V('n') + 1)
    b = base.update(V('n'), V('n') + 100)
    a.run(5)
    b.run(5)
    assert (base.get_variable('n'), a.get_variable('n'), b.get_variable('n')) == (0, 2, 200)


def test_dataset_p_is_a_pipeline_over_the_dataset(ds):
    assert isinstance(ds.p, Pipeline) and ds.p.dataset is ds and ds.p is not ds.p
    assert Pipeline(dataset=ds).normalize().next_batch(10).images[4][0] == 2.


# --- unknown names -------------------------------------------------------------------------------------------
UNKNOWN = [
    pytest.param(lambda ds: ds.p.normalise(), UnknownNameError, r"Received: 'normalise'.*Did you mean 'normalize'\?",
                 id='chain-typo'),
    pytest.param(lambda ds: ds.p.normalize().ad(1), UnknownNameError, r"'ad'.*Did you mean 'add'", id='chain-later'),
    pytest.param(lambda ds: ds.p.before.normalise(), UnknownNameError, r"Did you mean 'normalize'", id='before'),
    pytest.param(lambda ds: ds.p.after.recrd(), UnknownNameError, r"Did you mean 'record'", id='after'),
    pytest.param(lambda ds: ds.p.not_an_action(), UnknownNameError, r"is a method but not an action.*@action",
                 id='plain-method'),
    pytest.param(lambda ds: Pipeline().normalise() << ds, UnknownNameError,
                 r"Received: 'normalise'.*Did you mean 'normalize'", id='template-link'),
    pytest.param(lambda ds: Pipeline().normalize().before.normlize() << ds, UnknownNameError,
                 r"Did you mean 'normalize'", id='template-link-before'),
    pytest.param(lambda ds: Pipeline().after.zzzzzz() << ds, UnknownNameError, r"'zzzzzz'.*Known names: .*'normalize'",
                 id='template-link-no-close-match'),
    pytest.param(lambda ds: ds.p + Pipeline().normalise(), UnknownNameError, r"Did you mean 'normalize'",
                 id='add-template'),
    pytest.param(lambda ds: ds.p.update(V('x')), BatchkitTypeError, r"update.*value", id='builtin-missing-arg'),
    pytest.param(lambda ds: ds.p.init_variable(), BatchkitTypeError, r"init_variable.*name", id='builtin-no-name'),
    pytest.param(lambda ds: ds.p << 3, BatchkitTypeError, r"pipeline << dataset.*Received: int", id='lshift-int'),
]


@pytest.mark.parametrize('make, exc, message', UNKNOWN)
def test_bad_chains_fail_when_chained_or_linked(ds, make, exc, message):
    with pytest.raises(exc, match=message) as info:
        make(ds)
    assert isinstance(info.value, BatchkitError)


def test_unknown_action_is_an_attribute_error(ds):
    err = pytest.raises(BatchkitAttributeError, lambda: ds.p.normalise).value
    assert isinstance(err, AttributeError)
    assert not hasattr(ds.p, 'normalise')


def test_template_accepts_any_name_until_linked(ds):
    template = Pipeline().whatever_action(1)         # no batch class yet: nothing to check against
    assert [s.name for s in template.steps['main']] == ['whatever_action']
    with pytest.raises(UnknownNameError, match="whatever_action"):
        template << ds


def test_unknown_name_never_fails_mid_run(ds):
    seen = []
    template = Pipeline().log(seen).normalise()
    with pytest.raises(UnknownNameError):
        template << ds
    assert seen == []


# --- built-in names taken by batch-class actions ---------------------------------------------------------------
@pytest.mark.parametrize('name, args, kwargs', [
    ('train_model', (5,), {}),
    ('train_model', (), {'session': 'sess'}),
    ('update', (7,), {}),
    ('update', ('a', 'b'), {'flag': True}),
    ('call', ('not callable',), {}),
    ('init_variable', (), {}),
])
def test_batch_class_action_named_like_a_builtin_wins(clash_ds, name, args, kwargs):
    p = getattr(clash_ds.p, name)(*args, **kwargs)
    batch = p.next_batch(4)
    assert batch.got == (name, args, kwargs)
    assert 'x' not in p.variables


def test_clashing_action_under_before_wins_too(clash_ds):
    p = clash_ds.p.before.update(1).normalize()
    assert [s.name for s in p.steps['before']] == ['update'] and [s.name for s in p.steps['main']] == ['normalize']
    p.run(5)                     # the action runs on the before part's empty batch: no error from the built-in


def test_clashing_action_wins_for_a_template_linked_later(clash_ds):
    template = Pipeline().update('target', 'value')
    child = template << clash_ds
    assert child.next_batch(3).got == ('update', ('target', 'value'), {})      # the call's own arguments, no mode=


def test_builtin_still_works_when_the_batch_class_has_no_such_action(ds):
    p = ds.p.init_variable('n', 0).update(V('n'), B('size'))
    assert p.run(4).get_variable('n') == 2


def test_failed_chain_leaves_no_trace(ds):
    p = ds.p.normalize()
    with pytest.raises(UnknownNameError):
        p.normalise()
    assert [s.name for s in p.steps['main']] == ['normalize']


def test_chaining_does_not_touch_the_dataset(ds):
    other = Dataset.from_arrays(images=np.zeros((3, 2)))
    p = ds.p.normalize()
    assert p.dataset is ds and other.p.dataset is other
