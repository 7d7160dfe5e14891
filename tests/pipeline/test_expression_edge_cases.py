"""Named expressions at their edges: numpy operands on the left, flat config keys with '/', attribute names that
an expression's own machinery used to shadow."""
from __future__ import annotations

import operator

import numpy as np
import pytest

from batchkit import B, C, ConfigError, D, F, I, M, R, V, W
from batchkit import ArrayBatch, Dataset, Pipeline
from batchkit.pipeline.expressions import NamedExpression, evaluate


class _Meta(ArrayBatch):
    components = ('images', 'meta')


@pytest.fixture
def meta_ds() -> Dataset:
    images = np.arange(8, dtype=float).reshape(4, 2)
    meta = np.array([{'k': i, 'name': f'item{i}'} for i in range(4)], dtype=object)
    return Dataset(4, _Meta, preloaded={'images': images, 'meta': meta})


def _run(ds: Dataset, expr, config=None):
    """The value of `expr` for the one batch of all 4 items."""
    p = ds.pipeline(config=config).init_variable('out', default=list).update(V('out', mode='a'), expr)
    (value,) = p.run(4, n_epochs=1).get_variable('out')
    return value


# --- 1. a numpy operand on the left ----------------------------------------------------------------------------------
@pytest.mark.parametrize('op', [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
                                operator.mod, operator.pow],
                         ids=lambda op: op.__name__)
def test_every_reflected_operator_with_an_array_on_the_left(meta_ds, op):
    left = np.array([3., 5.])
    expr = op(left, B('images') + 1)
    assert isinstance(expr, NamedExpression)
    np.testing.assert_array_equal(_run(meta_ds, expr), op(left, np.arange(8.).reshape(4, 2) + 1))


def test_matmul_with_an_array_on_the_left(meta_ds):
    left = np.eye(4)[::-1]
    expr = left @ B('images')
    assert isinstance(expr, NamedExpression)
    np.testing.assert_array_equal(_run(meta_ds, expr), left @ np.arange(8.).reshape(4, 2))


def test_a_numpy_scalar_on_the_left_still_builds_an_expression(meta_ds):
    expr = np.float64(2) * B('size')
    assert isinstance(expr, NamedExpression)
    assert _run(meta_ds, expr) == 8.0


# --- 2. flat config keys with '/' --------------------------------------------------------------------------------
@pytest.mark.parametrize('config, expected', [
    pytest.param({'model/lr': 0.1}, 0.1, id='flat'),
    pytest.param({'model': {'lr': 0.2}}, 0.2, id='nested'),
    pytest.param({'model/lr': 0.1, 'model': {'lr': 0.2}}, 0.1, id='flat-wins'),
])
def test_c_reads_a_flat_key_with_a_slash_before_nested_dicts(meta_ds, config, expected):
    assert _run(meta_ds, C('model/lr'), config=config) == expected


def test_c_reads_a_flat_key_merged_with_shift(meta_ds):
    p = (Pipeline() << {'model/lr': 0.1}) << meta_ds
    p = p.init_variable('out', default=list).update(V('out', mode='a'), C('model/lr'))
    assert p.run(4, n_epochs=1).get_variable('out') == [0.1]


@pytest.mark.parametrize('config, key, hint', [
    pytest.param({'model/lr': 0.1}, 'model/lr2', r"Did you mean 'model/lr'\?", id='flat-near'),
    pytest.param({'model': {'lr': 0.1}}, 'model/lrr', r"Did you mean 'model/lr'", id='nested-near'),
    pytest.param({'model': {'lr': 0.1}}, 'model/lr/x', r"Expected config option 'model/lr/x'", id='too-deep'),
])
def test_c_unknown_key_suggests_a_key_that_exists(meta_ds, config, key, hint):
    with pytest.raises(ConfigError, match=hint) as info:
        _run(meta_ds, C(key), config=config)
    assert f'Did you mean {key!r}' not in str(info.value)


def test_c_never_suggests_the_key_that_was_asked_for(meta_ds):
    with pytest.raises(ConfigError) as info:
        _run(meta_ds, C('model/lr'), config={'model': {'momentum': 0.9}, 'other': 1})
    assert "'model/lr'?" not in str(info.value) and 'model/lr: ...' in str(info.value).replace("'", '')


def test_c_default_still_applies(meta_ds):
    assert _run(meta_ds, C('model/lr', default=0.5), config={'model/momentum': 0.9}) == 0.5


# --- 3. attribute names on expressions ---------------------------------------------------------------------------
def test_get_on_a_chain_is_a_method_call_on_the_value(meta_ds):
    expr = B('meta')[0].get('k')
    assert isinstance(expr, NamedExpression)
    assert _run(meta_ds, expr) == 0


@pytest.mark.parametrize('attr', ['get', 'fold', 'children', 'name', 'mode', 'set', 'args', 'kwargs', 'fn',
                                  'expr', 'default'])
def test_any_public_attribute_of_a_chain_builds_an_attribute_expression(attr):
    for chain in (B('x')[0], B('x') + 1, B('x').y, F(len)(B('x'))):
        assert isinstance(getattr(chain, attr), NamedExpression), (chain, attr)


@pytest.mark.parametrize('leaf', [C('k'), F(len), R('normal'), I(), M('m'), D('size'), W(1)],
                         ids=['C', 'F', 'R', 'I', 'M', 'D', 'W'])
@pytest.mark.parametrize('attr', ['get', 'fold', 'children', 'name', 'fn', 'args', 'kwargs', 'expr', 'default'])
def test_leaf_fields_do_not_shadow_attributes(leaf, attr):
    assert isinstance(getattr(leaf, attr), NamedExpression)


def test_a_component_attribute_named_like_a_save_target_field_is_reached_through_the_batch(meta_ds):
    """B and V keep `name`, `mode`, `set` (the pipeline reads them on save targets); `B().comp.name` reaches the
    component's own attribute."""
    assert B('images').name == 'images' and V('v', mode='a').mode == 'a'

    class Named:
        name = 'the name'
    batch = meta_ds.next_batch(2)
    batch.images = Named()
    assert evaluate(B().images.name, batch, None) == 'the name'


def test_b_class_sugar_reaches_former_method_names():
    assert repr(B.get) == "B('get')" and repr(B.fold) == "B('fold')"
