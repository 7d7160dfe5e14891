"""Named expressions B V C F R I M D W: what each evaluates to per batch, operators, nesting, and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from batchkit import (B, BatchkitAttributeError, BatchkitError, BatchkitRuntimeError, BatchkitTypeError,
                      BatchkitValueError, C, D, F, I, M, R, V, W)
from batchkit import ArrayBatch, Dataset, action
from batchkit.pipeline.expressions import NamedExpression, evaluate


def got(ds, *args, batch_size=3, config=None, **kwargs):
    """The arguments the `record` action received for the first batch of 3 (items 0, 1, 2)."""
    p = ds.pipeline(config=config).init_variable('lr', 0.5).record(*args, **kwargs)
    return p.next_batch(batch_size).got


# --- B -----------------------------------------------------------------------------------------------------------
def test_b_component_sugar_and_batch(ds):
    (comp, sugar, whole, size), _ = got(ds, B('labels'), B.labels, B(), B('size'))
    assert comp.tolist() == [0, 10, 20] and sugar is comp
    assert whole.__class__.__name__ == 'PipeBatch' and len(whole) == 3 and size == 3


@pytest.mark.parametrize('expr, expected', [
    pytest.param((B('size') * 2 + 1) ** 2, 49, id='arith'),
    pytest.param(1 - B('size'), -2, id='reflected-sub'),
    pytest.param(10 / B('size'), 10 / 3, id='reflected-div'),
    pytest.param(B('size') // 2, 1, id='floordiv'),
    pytest.param(B('size') % 2, 1, id='mod'),
    pytest.param(-B('size'), -3, id='neg'),
    pytest.param(abs(-B('size')), 3, id='abs'),
    pytest.param(B('size') > 2, True, id='gt'),
    pytest.param(B('size') == 4, False, id='eq'),
    pytest.param(B('size') != 4, True, id='ne'),
    pytest.param(B('size') <= 3, True, id='le'),
    pytest.param(B('labels')[1], 10, id='index'),
    pytest.param(B('labels')[1:], [10, 20], id='slice'),
    pytest.param(B('images')[:, 0].tolist(), [0., 1., 2.], id='method-on-index'),
    pytest.param(B('images').shape, (3, 4), id='attribute'),
    pytest.param(B('images').shape[1], 4, id='attribute-index'),
    pytest.param(B('labels').sum(), 30, id='method-call'),
    pytest.param(B('labels').reshape(1, -1).shape, (1, 3), id='method-call-args'),
    pytest.param(B('labels') @ B('labels'), 500, id='matmul'),
    pytest.param((B('labels') > 5) & (B('labels') < 15), [False, True, False], id='and'),
    pytest.param(V('lr') * B('size'), 1.5, id='V-and-B'),
    pytest.param(C('k') + B('size'), 13, id='C-and-B'),
    pytest.param(F(len) + 1, 4, id='F-plus'),
])
def test_operators_build_expressions_evaluated_per_batch(ds, expr, expected):
    assert isinstance(expr, NamedExpression)
    (value,), _ = got(ds, expr, config={'k': 10})
    value = value.tolist() if isinstance(value, np.ndarray) else value
    assert value == pytest.approx(expected) if isinstance(expected, float) else value == expected


def test_expressions_inside_nested_arguments(ds):
    args, kwargs = got(ds, [B('size'), (V('lr'), [I('current')])], {'k': B('size'), B('size'): 'as key'},
                       plain=1, nested={'deep': [(C('c', default='c'),)]})
    assert args == ([3, (0.5, [1])], {'k': 3, 3: 'as key'})
    assert kwargs == {'plain': 1, 'nested': {'deep': [('c',)]}}
    assert type(args[0][1]) is tuple


def test_plain_values_pass_through(ds):
    marker = object()
    array = np.arange(3)
    args, kwargs = got(ds, marker, array, 'B', x=None)
    assert args[0] is marker and args[1] is array and args[2] == 'B' and kwargs == {'x': None}


def test_expressions_are_evaluated_per_batch_not_once(ds):
    p = ds.p.init_variable('sizes', list).update(V('sizes', mode='a'), B('labels').sum() + B('size'))
    assert p.run(4).get_variable('sizes') == [64, 224, 172]


def test_b_of_missing_attribute_names_it(ds):
    with pytest.raises(BatchkitAttributeError, match=r"'imagez'.*Did you mean 'images'"):
        ds.p.record(B('imagez')).next_batch(2)


# --- F ---------------------------------------------------------------------------------------------------------------
def test_f_alone_calls_fn_with_the_batch(ds):
    seen = []
    (value,), _ = got(ds, F(lambda b: seen.append(b) or b.indices.tolist()))
    assert value == [0, 1, 2] and seen[0].__class__.__name__ == 'PipeBatch'


def test_f_called_calls_fn_with_evaluated_args_only(ds):
    calls = []

    def fn(*args, **kwargs):
        calls.append((args, kwargs))
        return 'result'
    (value,), _ = got(ds, F(fn)(B('size'), V('lr'), 7, k=B('labels')[2]))
    assert value == 'result'
    assert calls == [((3, 0.5, 7), {'k': 20})]


def test_f_call_without_args_calls_fn_with_nothing(ds):
    (value,), _ = got(ds, F(lambda: 'no batch')())
    assert value == 'no batch'


# --- R ---------------------------------------------------------------------------------------------------------------
def _draws(ds, seed, expr=None, n_iters=4):
    p = ds.p.init_variable('draws', list).update(V('draws', mode='a'), expr if expr is not None else R('random', size=3))
    return [d.tolist() for d in p.run(2, n_iters=n_iters, seed=seed).get_variable('draws')]


def test_r_same_seed_same_draws(ds):
    assert _draws(ds, 11) == _draws(ds, 11)


def test_r_different_batches_and_seeds_draw_differently(ds):
    draws = _draws(ds, 11)
    assert len({tuple(d) for d in draws}) == 4
    assert _draws(ds, 12) != draws


def test_r_shuffle_seed_seeds_the_run(ds):
    p = ds.p.init_variable('d', list).update(V('d', mode='a'), R('integers', 0, 10 ** 9))
    assert p.run(5, shuffle=3).get_variable('d') == p.run(5, shuffle=3).get_variable('d')


def test_r_draws_from_the_batch_generator(ds):
    via_r = _draws(ds, 5, R('normal', 0, 1, size=2))
    p = ds.p.init_variable('d', list).call(lambda b: b.random.normal(0, 1, size=2), save_to=V('d', mode='a'))
    via_batch = [d.tolist() for d in p.run(2, n_iters=4, seed=5).get_variable('d')]
    assert via_r == via_batch


def test_r_arguments_are_expressions(ds):
    (value,), _ = got(ds, R('normal', 0, 1, size=B('size')))
    assert value.shape == (3,)


@pytest.mark.parametrize('expr, error, message', [
    (R('normal', 0, 1, size='x'), BatchkitTypeError,
     r"Generator.normal. Received: R\('normal', 0, 1, size='x'\), which numpy refused: 'str' object cannot be"),
    (R('integers', 5, 1), BatchkitValueError, r"Generator.integers. Received: R\('integers', 5, 1\), which numpy "
                                              r"refused: .*high"),
])
def test_r_arguments_numpy_refuses_name_the_draw(ds, expr, error, message):
    with pytest.raises(error, match=message):
        _draws(ds, 1, expr)


# --- I ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('run_kwargs, n', [
    ({'n_epochs': 1}, 4),
    ({'n_epochs': 2}, 8),
    ({'n_iters': 5}, 5),
    ({'n_epochs': 1, 'drop_last': True}, 3),
])
def test_i_current_max_ratio(ds, run_kwargs, n):
    p = ds.p.init_variable('it', list).update(V('it', mode='a'), (I('current'), I('max'), I('ratio'), I()))
    rows = p.run(3, **run_kwargs).get_variable('it')
    assert [r[0] for r in rows] == list(range(1, n + 1)) == [r[3] for r in rows]
    assert {r[1] for r in rows} == {n}
    assert [r[2] for r in rows] == pytest.approx([k / n for k in range(1, n + 1)])
    assert rows[-1][2] == 1.0


def test_i_counts_batches_skipped_ones_included(ds):
    from batchkit import SkipBatch

    def skip_second(b):
        if b.indices[0] == 3:
            raise SkipBatch
    p = ds.p.init_variable('it', list).call(skip_second).update(V('it', mode='a'), I('current'))
    assert p.run(3).get_variable('it') == [1, 3, 4]


# --- M, D, W, C, V ---------------------------------------------------------------------------------------------------
def test_m_is_the_pipeline_model(ds, model_class):
    p = ds.p.init_model('summer', model_class, 'static').record(M('summer'), M('summer').predict(B('labels')))
    (model, pred), _ = p.next_batch(3).got
    assert isinstance(model, model_class) and model is p.get_model_by_name('summer')
    assert pred.tolist() == [0, 20, 40]


def test_d_is_a_dataset_attribute(ds):
    (size, ids), _ = got(ds, D('size'), D('index.indices'))
    assert size == 10 and ids.tolist() == list(range(10))


def test_w_passes_the_expression_unevaluated(ds):
    inner = B('images') * 2
    (value, nested), _ = got(ds, W(inner), [W(V('lr'))])
    assert value is inner and isinstance(nested[0], V)


def test_v_reads_the_current_value(ds):
    p = ds.p.init_variable('k', 1).update(V('k'), V('k') * 2).record(V('k'))
    assert [b.got[0][0] for b in p.gen_batch(4)] == [2, 4, 8]


def test_evaluate_outside_a_pipeline_for_plain_structures():
    assert evaluate({'a': [1, (2,)]}, None, None) == {'a': [1, (2,)]}


# --- errors ----------------------------------------------------------------------------------------------------------
ERRORS = [
    pytest.param(lambda ds: F(3), BatchkitTypeError, r"F\(...\) to wrap a callable. Received: int 3", id='F-int'),
    pytest.param(lambda ds: F('len'), BatchkitTypeError, r"Received: str", id='F-str'),
    pytest.param(lambda ds: F(None), BatchkitTypeError, r"Received: NoneType", id='F-None'),
    pytest.param(lambda ds: R('gaussian'), BatchkitValueError, r"numpy.random.Generator method.*R\('gaussian'\)",
                 id='R-unknown'),
    pytest.param(lambda ds: R(3), BatchkitValueError, r"R\(3\)", id='R-non-str'),
    pytest.param(lambda ds: I('epoch'), BatchkitValueError, r"I\('current'\), I\('max'\) or I\('ratio'\)",
                 id='I-unknown'),
    pytest.param(lambda ds: B(3), BatchkitTypeError, r"B\(3\)", id='B-non-str'),
    pytest.param(lambda ds: evaluate(I('current'), ds.next_batch(2), ds.p), BatchkitRuntimeError,
                 r"in a pipeline run", id='I-outside-run'),
    pytest.param(lambda ds: ds.p.record(M('nope')).next_batch(2), BatchkitAttributeError,
                 r"'nope'.*init_model", id='M-unknown'),
    pytest.param(lambda ds: ds.p.record(D('sizee')).next_batch(2), AttributeError, r"sizee", id='D-unknown'),
    pytest.param(lambda ds: ds.p.record(V('nope')).next_batch(2), KeyError, r"'nope', which is not initialized",
                 id='V-unknown'),
]


@pytest.mark.parametrize('make, exc, message', ERRORS)
def test_expression_errors(ds, make, exc, message):
    with pytest.raises(exc, match=message):
        make(ds)


@pytest.mark.parametrize('expr', [B('x'), V('x'), C('x'), F(len), R('random'), I(), M('m'), D('size'), W(1)])
def test_every_expression_is_hashable_and_builds_more(expr):
    assert hash(expr) == hash(expr)
    assert isinstance(expr + 1, NamedExpression) and isinstance(expr[0], NamedExpression)
    assert isinstance(expr == 1, NamedExpression)


def test_errors_derive_from_batchkit_error():
    for exc in (BatchkitTypeError, BatchkitValueError, BatchkitRuntimeError, BatchkitAttributeError):
        assert issubclass(exc, BatchkitError)


# --- containers keep their identity (NOTE [ Containers keep their identity ]) -----------------------------------------
def test_containers_without_expressions_reach_the_action_as_the_same_objects(ds):
    events, options = [], {'k': [1]}
    p = ds.p.log(events, 'tag').record(events, options, key=options)
    batches = list(p.gen_batch(4))
    assert [e[0] for e in events] == ['tag'] * 3
    args, kwargs = batches[0].got
    assert args[0] is events and args[1] is options and kwargs['key'] is options


def test_expression_free_parts_of_a_container_with_expressions_are_shared(ds):
    inner = [1, 2]
    (outer,), _ = got(ds, [B('size'), inner])
    assert outer == [3, [1, 2]] and outer[1] is inner


@pytest.mark.parametrize('obj', [[1, [2]], (1, (2,)), {'a': {'b': 1}}, {(1, 2): [3]}])
def test_evaluate_and_fold_return_expression_free_containers_as_is(ds, obj):
    assert evaluate(obj, None, None) is obj
    from batchkit.pipeline.expressions import fold
    assert fold(obj, ds.p) is obj


class _NamedBatch(ArrayBatch):
    components = ('x',)

    @action
    def first(self, value=None):
        return self

    @action
    def second(self, value):
        return self


def test_unknown_b_name_names_the_step_and_every_public_name():
    pipeline = Dataset(4, _NamedBatch, preloaded=(np.arange(4),)).p.first().second(B('nope') + 1)
    with pytest.raises(AttributeError, match=r"B\('nope'\) in step 2 of the pipeline, 'second' .*Public names: .*"
                                             r"\bsize\b") as info:
        pipeline.run(2)
    assert isinstance(info.value, BatchkitError)
    assert all(name in str(info.value) for name in ('x', 'indices', 'first', 'second'))



class _Pairs(ArrayBatch):
    components = ('images',)


@pytest.mark.parametrize('make', [
    lambda x: np.array([1., 2.]) * x,
    lambda x: np.array([1., 2.]) + x,
    lambda x: np.array([10., 20.]) - x,
    lambda x: np.float64(3) * x,
], ids=['array-mul', 'array-add', 'array-sub', 'numpy-scalar-mul'])
def test_a_numpy_operand_on_the_left_builds_an_expression_that_is_evaluated(make):
    images = np.arange(8, dtype=float).reshape(4, 2)
    expr = make(B('images'))
    assert isinstance(expr, NamedExpression)      # not an object array of unevaluated expressions
    p = Dataset(4, _Pairs, preloaded={'images': images}).p.init_variable('out', default=list)
    (got,) = p.update(V('out', mode='a'), expr).run(4, n_epochs=1).get_variable('out')
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, make(images))
