"""Composition: templates and <<, p1 + p2, before/after parts, lazy run, gen_batch, next_batch, call."""
from __future__ import annotations

import numpy as np
import pytest

from batchkit import B, BatchkitError, BatchkitTypeError, BatchkitValueError, C, Dataset, I, Pipeline, V


# --- templates -----------------------------------------------------------------------------------------------------
def test_template_linked_to_a_dataset_is_a_runnable_copy(ds):
    template = Pipeline(config={'scale': 4.}).init_variable('n', 0).normalize(scale=C('scale')).update(V('n'), V('n') + 1)
    child = template << ds
    assert child is not template and child.dataset is ds and template.dataset is None
    assert child.next_batch(10).images[8][0] == 2.
    child.run(5)
    assert child.get_variable('n') == 3 and template.get_variable('n') == 0      # 1 (next_batch) + 2 (run)


def test_children_of_one_template_do_not_share_fresh_variables(ds):
    template = Pipeline().init_variable('seen', list).update(V('seen', mode='a'), B('size'))
    a, b = template << ds, template << ds
    a.run(5)
    b.run(3)
    assert a.get_variable('seen') == [5, 5] and b.get_variable('seen') == [3, 3, 3, 1]


def test_template_links_to_different_datasets(ds):
    other = Dataset(4, batch_class=ds.batch_class, preloaded={'images': np.ones((4, 4)), 'labels': np.zeros(4)})
    template = Pipeline().normalize(scale=2.)
    assert (template << ds).next_batch(10).images.shape == (10, 4)
    assert (template << other).next_batch(10).images.tolist() == [[0.5] * 4] * 4


@pytest.mark.parametrize('linked', [False, True], ids=['unlinked', 'linked'])
def test_lshift_dict_merges_config(ds, linked):
    p = Pipeline(config={'scale': 2., 'keep': 'me'}).normalize(scale=C('scale'))
    if linked:
        p = p << ds
    merged = p << {'scale': 5., 'new': 1}
    assert merged is not p and merged.config == {'scale': 5., 'keep': 'me', 'new': 1}
    assert p.config == {'scale': 2., 'keep': 'me'}
    assert merged.dataset is p.dataset
    assert (merged if linked else merged << ds).next_batch(10).images[5][0] == 1.


def test_config_then_dataset_in_any_order(ds):
    template = Pipeline().normalize(scale=C('scale'))
    a = template << {'scale': 5.} << ds
    b = template << ds << {'scale': 5.}
    assert a.next_batch(10).images[5][0] == b.next_batch(10).images[5][0] == 1.


@pytest.mark.parametrize('method', ['run', 'gen_batch', 'next_batch'])
def test_running_a_template_without_a_dataset_is_a_clear_error(method):
    template = Pipeline().normalize()
    with pytest.raises(BatchkitValueError, match=r"linked to a dataset.*Received: a template with no dataset.*<< dataset"):
        getattr(template, method)(3)


# --- p1 + p2 -----------------------------------------------------------------------------------------------------------
def test_add_concatenates_steps_variables_and_config(ds):
    p1 = Pipeline(config={'a': 1, 'both': 'left'}).init_variable('x', 1).normalize().before.init_variable('b1', 0)
    p2 = Pipeline(config={'b': 2, 'both': 'right'}).init_variable('y', list).add(5).after.init_variable('a2', 0)
    s = p1 + p2
    assert [st.name for st in s.steps['main']] == ['init_variable', 'normalize', 'init_variable', 'add']
    assert [st.name for st in s.steps['before']] == ['init_variable']
    assert [st.name for st in s.steps['after']] == ['init_variable']
    assert s.config == {'a': 1, 'b': 2, 'both': 'right'}
    assert sorted(s.variables.names()) == ['a2', 'b1', 'x', 'y']
    batch = (s << ds).next_batch(10)
    assert batch.images[4][0] == 7.
    assert [st.name for st in p1.steps['main']] == ['init_variable', 'normalize']


def test_add_with_a_dataset_on_either_side(ds):
    template = Pipeline().add(1)
    assert (ds.p.normalize() + template).dataset is ds
    assert (template + ds.p.normalize()).next_batch(10).images[4][0] == 2.5


def test_add_runs_steps_in_order(ds):
    events = []
    (ds.p.log(events, 'first') + ds.p.log(events, 'second')).run(10)
    assert events == [('first', list(range(10))), ('second', list(range(10)))]


@pytest.mark.parametrize('make, exc, message', [
    pytest.param(lambda ds: ds.p + Dataset(3).p, BatchkitValueError, r"at most one of the added pipelines to have a dataset",
                 id='two-datasets'),
    pytest.param(lambda ds: ds.p + 1, TypeError, r"unsupported operand", id='add-int'),
    pytest.param(lambda ds: ds.p << [1], BatchkitTypeError, r"Received: list", id='lshift-list'),
])
def test_composition_errors(ds, make, exc, message):
    with pytest.raises(exc, match=message):
        make(ds)


# --- before / after ------------------------------------------------------------------------------------------------
def test_before_returns_the_whole_pipeline_so_chaining_goes_on(ds):
    p = ds.p.before.init_variable('x', 0).normalize()
    assert isinstance(p, Pipeline)
    assert [s.name for s in p.steps['before']] == ['init_variable']
    assert [s.name for s in p.steps['main']] == ['normalize']
    assert p.get_variable('x') == 0


@pytest.mark.parametrize('run_kwargs, n_batches', [({'n_epochs': 1}, 4), ({'n_epochs': 3}, 12), ({'n_iters': 2}, 2)])
def test_before_and_after_run_once_each(ds, run_kwargs, n_batches):
    events = []
    p = (ds.p.before.call(lambda b: events.append('before'))
         .call(lambda b: events.append('main'))
         .after.call(lambda b: events.append('after'))
         .before.update(V('started'), 1))
    p.run(3, **run_kwargs)
    assert events == ['before'] + ['main'] * n_batches + ['after']
    assert p.get_variable('started') == 1


def test_before_and_after_see_variables_and_config(ds):
    p = (ds.pipeline(config={'start': 100}).before.init_variable('n', 0).before.update(V('n'), C('start'))
         .update(V('n'), V('n') + B('size')).after.update(V('n'), V('n') * -1))
    assert p.run(4).get_variable('n') == -110


def test_before_part_runs_again_on_each_run(ds):
    p = ds.p.init_variable('count', 0).before.update(V('count'), V('count') + 1)
    p.run(5)
    p.run(5)
    assert p.get_variable('count') == 2


# --- running forms -------------------------------------------------------------------------------------------------
def test_lazy_run_stores_arguments_for_a_later_run(ds):
    p = ds.p.init_variable('sizes', list).update(V('sizes', mode='a'), B('size'))
    assert p.run(4, n_epochs=2, lazy=True) is p
    assert p.get_variable('sizes') == []
    assert p.run() is p
    assert p.get_variable('sizes') == [4, 4, 2] * 2


def test_run_without_arguments_and_nothing_stored_is_an_error(ds):
    with pytest.raises(BatchkitValueError, match=r"run\(batch_size, ...\) or arguments stored by run\(..., lazy=True\)"):
        ds.p.normalize().run()


def test_lazy_arguments_do_not_leak_into_a_new_chain(ds):
    p = ds.p.normalize()
    p.run(4, lazy=True)
    with pytest.raises(BatchkitValueError):
        ds.p.normalize().run()


def test_lazy_template_runs_once_linked(ds):
    template = Pipeline().init_variable('sizes', list).update(V('sizes', mode='a'), B('size')).run(4, lazy=True)
    child = template << ds
    child.run()
    assert child.get_variable('sizes') == [4, 4, 2]


def test_before_and_after_accept_only_steps(ds):
    with pytest.raises(BatchkitTypeError, match=r"step after `.before`.*'get_variable'"):
        Pipeline().before.get_variable('x')
    with pytest.raises(BatchkitError, match=r"'run'"):
        ds.p.after.run(3)


def test_gen_batch_yields_processed_batches(ds):
    sizes, values = [], []
    for batch in ds.p.normalize(scale=2.).gen_batch(4, n_epochs=1, shuffle=False):
        sizes.append(len(batch))
        values.append(batch.images[:, 0].tolist())
    assert sizes == [4, 4, 2] and values[2] == [4., 4.5]


def test_gen_batch_with_shuffle_and_drop_last(ds):
    batches = list(ds.p.normalize().gen_batch(3, n_epochs=2, shuffle=1, drop_last=True))
    assert [len(b) for b in batches] == [3] * 6
    first = np.concatenate([b.indices for b in batches[:3]])
    assert len(set(first.tolist())) == 9


def test_next_batch_cycles_forever(ds):
    p = ds.p.add(1)
    ids = [p.next_batch(4).indices.tolist() for _ in range(7)]
    assert ids == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] * 2 + [[0, 1, 2, 3]]
    assert p.next_batch(4).images[0][0] == 5.


def test_next_batch_with_other_arguments_starts_over(ds):
    p = ds.p.add(1)
    p.next_batch(4)
    assert p.next_batch(3).indices.tolist() == [0, 1, 2]


def test_next_batch_with_n_iters_ends(ds):
    p = ds.p.add(1)
    assert [len(p.next_batch(4, n_iters=2)) for _ in range(2)] == [4, 4]
    with pytest.raises(StopIteration):
        p.next_batch(4, n_iters=2)


def test_next_batch_counts_iterations(ds):
    p = ds.p.record(I('current'))
    assert [p.next_batch(4).got[0][0] for _ in range(5)] == [1, 2, 3, 4, 5]


# --- call ------------------------------------------------------------------------------------------------------------
def test_call_passes_the_batch_args_and_saves(ds):
    p = ds.p.init_variable('out', list).call(lambda b, k, m=1: b.size * k * m, 3, m=B('size'),
                                              save_to=V('out'), mode='a')
    assert p.run(4).get_variable('out') == [48, 48, 12]


def test_call_returning_a_new_batch_replaces_it(ds):
    def half(b):
        return ds.batch_class(b.index.create_subset(np.arange(1)), preloaded=ds.preloaded, dataset=ds)
    sizes = [len(b) for b in ds.p.call(half).add(1).gen_batch(4)]
    assert sizes == [1, 1, 1]


def test_call_return_value_other_than_a_batch_is_ignored_without_save_to(ds):
    batch = ds.p.call(lambda b: 'ignored').next_batch(2)
    assert batch.__class__.__name__ == 'PipeBatch'


@pytest.mark.parametrize('fn, message', [(3, r"Received: int 3"), ('len', r"Received: str 'len'"), (None, r"NoneType")])
def test_call_with_a_non_callable_fails_when_chained(ds, fn, message):
    with pytest.raises(BatchkitTypeError, match=r"call\(fn, ...\) to get a callable.*" + message) as info:
        ds.p.call(fn)
    assert isinstance(info.value, BatchkitError)


def test_call_in_before_and_after(ds):
    events = []
    ds.p.before.call(events.append).after.call(lambda b, tag: events.append(tag), 'end').run(5)
    assert len(events) == 2 and len(events[0]) == 0 and events[1] == 'end'


def test_next_batch_without_arguments_follows_the_lazy_run(ds):
    p = ds.p.normalize().run(4, n_epochs=2, shuffle=3, lazy=True)
    expected = [b.indices.tolist() for b in p.gen_batch(4, n_epochs=2, shuffle=3)]
    got = [p.next_batch() for _ in range(6)]
    assert [b.indices.tolist() for b in got] == expected and len(expected) == 6
    assert got[0].images[0][0] == got[0].indices[0] / 2           # processed by the chain
    with pytest.raises(StopIteration):                           # the stored run is over, as run() would be
        p.next_batch()
    assert p.next_batch().indices.tolist() == expected[0]        # and starts over
    p.run(3, n_iters=2, lazy=True)                               # new stored arguments: a new run
    assert [p.next_batch().indices.tolist() for _ in range(2)] == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(StopIteration):
        p.next_batch()


def test_next_batch_without_arguments_and_no_lazy_run_is_an_error(ds):
    with pytest.raises(BatchkitTypeError, match=r"next_batch\(batch_size, ...\), or next_batch\(\) after run"):
        ds.p.normalize().next_batch()
    with pytest.raises(BatchkitTypeError, match='with other arguments'):
        ds.p.normalize().run(4, lazy=True).next_batch(n_epochs=1)
