"""Named expressions (B V C F R I M D W): placeholders in action arguments, evaluated per batch.

NOTE [ Evaluation ]
An expression is evaluated with `evaluate(expr, batch, pipeline)` (the method `_get`). `C` and `D` depend only
on the pipeline, which is fixed for a run, so `fold` replaces them by their values once per run; what is left
(B, R, I, F, W and arithmetic) needs only the batch and can be evaluated in a worker process. `V` and `M` read
shared state, so an op that uses them runs in order on the consuming side (see NOTE [ Head and tail ] in
prefetch.py).

NOTE [ Attribute names ]
Any public attribute of an expression builds an attribute expression (`B('meta')[0].get('k')`), so an
expression's own machinery and fields are underscored. The exceptions are the save targets' `name`, `mode` and
`set` on `B` and `V`, which the pipeline reads; reach a component's attribute with those names through the
batch: `B().images.name`.
"""
from __future__ import annotations

import contextlib
import contextvars
import operator
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._naming import suggest
from ..errors import (
    BatchkitAttributeError,
    BatchkitRuntimeError,
    BatchkitTypeError,
    BatchkitValueError,
    ConfigError,
)

__all__ = ['B', 'C', 'D', 'F', 'I', 'M', 'NamedExpression', 'R', 'V', 'W', 'evaluate', 'fold', 'has_expressions',
           'iter_expressions', 'step_context']

_MISSING = object()
_STEP: contextvars.ContextVar[str | None] = contextvars.ContextVar('batchkit_step', default=None)


@contextlib.contextmanager
def step_context(where: str) -> Iterator[None]:
    """While compiling a step: B expressions folded now name it in their errors."""
    token = _STEP.set(where)
    try:
        yield
    finally:
        _STEP.reset(token)


class NamedExpression:
    """Base of all named expressions: arithmetic, comparison, indexing, attributes and calls build new ones."""

    def _get(self, batch: Any, pipeline: Any) -> Any:
        raise NotImplementedError

    def _children(self) -> tuple:
        """The sub-expressions and containers this expression evaluates (for walking expression trees)."""
        return ()

    def _fold(self, pipeline: Any) -> Any:
        """This expression with its run constants (C, D) replaced by their values; evaluated once per run."""
        return self

    # Comparison builds expressions, so identity is the hash.
    __hash__ = object.__hash__
    # numpy defers to the reflected operators (`array * B('x')` -> B('x').__rmul__), instead of treating the
    # expression as a scalar and building an object array of unevaluated expressions.
    __array_ufunc__ = None

    def __getattr__(self, name: str) -> 'NamedExpression':
        if name.startswith('_'):
            raise AttributeError(name)
        return _Attr(self, name)

    def __getitem__(self, key: Any) -> 'NamedExpression':
        return _Op(operator.getitem, (self, key), '[]')

    def __call__(self, *args: Any, **kwargs: Any) -> 'NamedExpression':
        return _Call(self, args, kwargs)


def _binary(op: Callable, symbol: str, reflected: bool = False) -> Callable:
    if reflected:
        return lambda self, other: _Op(op, (other, self), symbol)
    return lambda self, other: _Op(op, (self, other), symbol)


for _name, _op in [('add', operator.add), ('sub', operator.sub), ('mul', operator.mul), ('truediv', operator.truediv),
                   ('floordiv', operator.floordiv), ('mod', operator.mod), ('pow', operator.pow),
                   ('matmul', operator.matmul), ('and', operator.and_), ('or', operator.or_), ('xor', operator.xor)]:
    setattr(NamedExpression, f'__{_name}__', _binary(_op, _name))
    setattr(NamedExpression, f'__r{_name}__', _binary(_op, _name, reflected=True))
for _name, _op in [('eq', operator.eq), ('ne', operator.ne), ('lt', operator.lt), ('le', operator.le),
                   ('gt', operator.gt), ('ge', operator.ge)]:
    setattr(NamedExpression, f'__{_name}__', _binary(_op, _name))
NamedExpression.__neg__ = lambda self: _Op(operator.neg, (self,), 'neg')
NamedExpression.__pos__ = lambda self: _Op(operator.pos, (self,), 'pos')
NamedExpression.__abs__ = lambda self: _Op(operator.abs, (self,), 'abs')
NamedExpression.__invert__ = lambda self: _Op(operator.invert, (self,), 'invert')


class _Op(NamedExpression):
    def __init__(self, op: Callable, operands: tuple, symbol: str) -> None:
        self._op, self._operands, self._symbol = op, operands, symbol

    def _get(self, batch: Any, pipeline: Any) -> Any:
        return self._op(*(evaluate(x, batch, pipeline) for x in self._operands))

    def _children(self) -> tuple:
        return self._operands

    def _fold(self, pipeline: Any) -> 'NamedExpression':
        return _Op(self._op, tuple(fold(x, pipeline) for x in self._operands), self._symbol)

    def __repr__(self) -> str:
        return f'{self._symbol}{self._operands!r}'


class _Attr(NamedExpression):
    def __init__(self, base: Any, name: str) -> None:
        self._base, self._name = base, name

    def _get(self, batch: Any, pipeline: Any) -> Any:
        return getattr(evaluate(self._base, batch, pipeline), self._name)

    def _children(self) -> tuple:
        return (self._base,)

    def _fold(self, pipeline: Any) -> 'NamedExpression':
        return _Attr(fold(self._base, pipeline), self._name)

    def __repr__(self) -> str:
        return f'{self._base!r}.{self._name}'


class _Call(NamedExpression):
    def __init__(self, fn: Any, args: tuple, kwargs: dict) -> None:
        self._fn, self._args, self._kwargs = fn, args, kwargs

    def _get(self, batch: Any, pipeline: Any) -> Any:
        fn = evaluate(self._fn, batch, pipeline)
        return fn(*evaluate(self._args, batch, pipeline), **evaluate(self._kwargs, batch, pipeline))

    def _children(self) -> tuple:
        return (self._fn, self._args, self._kwargs)

    def _fold(self, pipeline: Any) -> 'NamedExpression':
        return _Call(fold(self._fn, pipeline), fold(self._args, pipeline), fold(self._kwargs, pipeline))

    def __repr__(self) -> str:
        return f'{self._fn!r}(...)'


class _Literal(NamedExpression):
    """A folded value inside an expression tree."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def _get(self, batch: Any, pipeline: Any) -> Any:
        return self._value


class _NameSugar(type):
    """Lets `B.images` stand for `B('images')`."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith('_'):
            raise AttributeError(name)
        return cls(name)


class B(NamedExpression, metaclass=_NameSugar):
    """A batch component or attribute: `B('images')`, `B.images`; `B()` is the batch itself."""

    def __init__(self, name: str | None = None, mode: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise BatchkitTypeError(f"Expected a component or attribute name (str) or nothing. Received: B({name!r})")
        if mode is not None:
            from .variables import normalize_mode
            normalize_mode(mode)
        self.name, self.mode = name, mode

    def _get(self, batch: Any, pipeline: Any) -> Any:
        """The component or attribute `name` of `batch` (the batch itself for `B()`)."""
        if batch is None:
            raise BatchkitRuntimeError(f"Expected a batch to evaluate B({self.name!r}). Received: none, as in a "
                                       "static model config. Use mode='dynamic' to build from a batch.")
        if self.name is None:
            return batch
        try:
            return getattr(batch, self.name)
        except AttributeError:
            if hasattr(type(batch), self.name):
                raise                      # a property that failed inside: its own error says why
            known = sorted({*getattr(batch, 'component_names', ()),
                            *(k for k in dir(batch) if not k.startswith('_'))})
            where = f' in {self._where}' if getattr(self, '_where', None) else ''
            hint = suggest(self.name, known)
            raise BatchkitAttributeError(
                f"Expected B({self.name!r}){where} to name a component or attribute of {type(batch).__name__}. "
                f"Received: a batch without it.{hint if hint.startswith(' Did') else ''}"
                f" Public names: {', '.join(known)}.") from None

    def _fold(self, pipeline: Any) -> 'B':
        """This expression, tagged with the pipeline step it belongs to (for error messages)."""
        where = _STEP.get()
        if where is None:
            return self
        tagged = B.__new__(B)
        tagged.name, tagged.mode, tagged._where = self.name, self.mode, where
        return tagged

    def set(self, value: Any, batch: Any, pipeline: Any, mode: str) -> None:
        """Store `value` into the component `name` of `batch` in update `mode`."""
        from .variables import apply_mode
        if self.name is None:
            raise BatchkitValueError("Expected B('name') as a target to save into. Received: B(), the batch itself.")
        current = getattr(batch, self.name, None) if mode != 'w' else None
        setattr(batch, self.name, apply_mode(current, value, mode, f"component '{self.name}'"))

    def __repr__(self) -> str:
        return f'B({self.name!r})' if self.name else 'B()'


class V(NamedExpression):
    """A pipeline variable: `V('loss')`; as a save target `V('history', mode='a')` sets the update mode."""

    def __init__(self, name: str, mode: str | None = None) -> None:
        if not isinstance(name, str):
            raise BatchkitTypeError(f"Expected a variable name (str). Received: V({name!r})")
        if mode is not None:
            from .variables import normalize_mode
            normalize_mode(mode)
        self.name, self.mode = name, mode

    def _get(self, batch: Any, pipeline: Any) -> Any:
        """The value of the pipeline's variable `name`."""
        return pipeline.get_variable(self.name)

    def set(self, value: Any, batch: Any, pipeline: Any, mode: str) -> None:
        """Store `value` into the pipeline's variable `name` in update `mode`."""
        pipeline.variables.update(self.name, value, mode)

    def __repr__(self) -> str:
        return f'V({self.name!r})'


def _check_name(kind: str, name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise BatchkitTypeError(f"Expected {what} (a non-empty str). Received: {kind}({name!r})")
    return name


def _config_keys(config: dict, prefix: str = '') -> Iterator[str]:
    """Every key C can name in `config`: the flat keys and the nested ones as 'a/b'."""
    for key, value in config.items():
        yield f'{prefix}{key}'
        if isinstance(value, dict):
            yield from _config_keys(value, f'{prefix}{key}/')


class C(NamedExpression):
    """A config option: `C('scale', default=255.)`; nested keys as 'model/lr'."""

    def __init__(self, name: str, default: Any = _MISSING) -> None:
        self._name, self._default = _check_name('C', name, "a config key such as 'scale' or 'model/lr'"), default

    def _get(self, batch: Any, pipeline: Any) -> Any:
        """The config option `name` of `pipeline` (a flat key such as 'model/lr' first, then nested dicts), or
        the default."""
        config = pipeline.config
        if isinstance(config, dict) and self._name in config:
            return config[self._name]
        value: Any = config
        for part in self._name.split('/'):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif self._default is not _MISSING:
                return self._default
            else:
                known = [k for k in _config_keys(config) if k != self._name]
                raise ConfigError(f"Expected config option {self._name!r}. Received: a config without it "
                                  f"(keys: {sorted(map(str, config))}).{suggest(self._name, known)} "
                                  f"Pass it with `pipeline << {{{self._name!r}: ...}}` or give C(..., default=...).")
        return value

    def _fold(self, pipeline: Any) -> Any:
        """The config value itself: config does not change during a run."""
        return _Literal(self._get(None, pipeline))

    def __repr__(self) -> str:
        return f'C({self._name!r})'


class F(NamedExpression):
    """A function: `F(fn)` is `fn(batch)`; `F(fn)(*args, **kwargs)` is `fn(*args, **kwargs)` (args evaluated)."""

    def __init__(self, fn: Callable) -> None:
        if not callable(fn):
            raise BatchkitTypeError(f"Expected F(...) to wrap a callable. Received: {type(fn).__name__} {fn!r:.60}")
        self._fn = fn

    def _get(self, batch: Any, pipeline: Any) -> Any:
        """The result of `fn(batch)`."""
        return self._fn(batch)

    def __call__(self, *args: Any, **kwargs: Any) -> NamedExpression:
        return _Call(_Literal(self._fn), args, kwargs)

    def __repr__(self) -> str:
        return f'F({getattr(self._fn, "__name__", self._fn)!r})'


class R(NamedExpression):
    """A random draw from the batch's generator: `R('normal', 0, 1, size=B('size'))`."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        if not isinstance(name, str) or not callable(getattr(np.random.Generator, name, None)):
            raise BatchkitValueError(f"Expected the name of a numpy.random.Generator method (e.g. 'normal', "
                                     f"'uniform', 'integers', 'choice'). Received: R({name!r})")
        self._name, self._args, self._kwargs = name, args, kwargs

    def _get(self, batch: Any, pipeline: Any) -> Any:
        """A draw from the batch's generator, with the arguments evaluated for the batch."""
        args, kwargs = evaluate(self._args, batch, pipeline), evaluate(self._kwargs, batch, pipeline)
        try:
            return getattr(batch.random, self._name)(*args, **kwargs)
        except (TypeError, ValueError) as exc:      # numpy's message does not say which draw it was
            error = BatchkitTypeError if isinstance(exc, TypeError) else BatchkitValueError
            call = ', '.join([f'{a!r:.40}' for a in args] + [f'{k}={v!r:.40}' for k, v in kwargs.items()])
            raise error(f"Expected arguments of numpy.random.Generator.{self._name}. Received: "
                        f"R({self._name!r}, {call}), which numpy refused: {exc}") from exc

    def _children(self) -> tuple:
        """The arguments of the draw."""
        return (self._args, self._kwargs)

    def _fold(self, pipeline: Any) -> 'R':
        """This draw with the run constants in its arguments folded in."""
        r = R.__new__(R)
        r._name, r._args, r._kwargs = self._name, fold(self._args, pipeline), fold(self._kwargs, pipeline)
        return r


class I(NamedExpression):  # noqa: E742 - the API's name
    """The iteration: 'current' (from 1), 'max' (batches in the run) or 'ratio' (current / max)."""

    def __init__(self, name: str = 'current') -> None:
        if name not in ('current', 'max', 'ratio'):
            raise BatchkitValueError(f"Expected I('current'), I('max') or I('ratio'). Received: I({name!r})")
        self._name = name

    def _get(self, batch: Any, pipeline: Any) -> Any:
        """The batch's iteration number in the run, the number of batches, or their ratio."""
        info = getattr(batch, '_run_info', None)
        if info is None:
            raise BatchkitRuntimeError(f"Expected I({self._name!r}) to be evaluated in a pipeline run. Received: "
                                       "a batch outside any run.")
        current = batch._pos + 1
        if self._name == 'current':
            return current
        if self._name == 'max':
            return info.n_batches
        return None if info.n_batches is None else current / info.n_batches


class M(NamedExpression):
    """A model of the pipeline: `M('my_model')`."""

    def __init__(self, name: str) -> None:
        self._name = _check_name('M', name, 'a model name')

    def _get(self, batch: Any, pipeline: Any) -> Any:
        """The model `name` of the pipeline."""
        return pipeline.get_model_by_name(self._name, batch=batch)


class D(NamedExpression):
    """An attribute of the pipeline's dataset: `D('size')`, `D('index.indices')`."""

    def __init__(self, name: str) -> None:
        self._name = _check_name('D', name, "a dataset attribute such as 'size' or 'index.indices'")

    def _get(self, batch: Any, pipeline: Any) -> Any:
        """The attribute `name` (dotted names follow attributes) of the pipeline's dataset."""
        value = pipeline.dataset
        if value is None:
            raise BatchkitRuntimeError(f"Expected a pipeline linked to a dataset to evaluate D({self._name!r}). "
                                       "Received: a template with no dataset. Link one with `pipeline << dataset`.")
        for i, part in enumerate(self._name.split('.')):
            try:
                value = getattr(value, part)
            except AttributeError:
                where = '.'.join(['dataset', *self._name.split('.')[:i]])
                known = [k for k in dir(value) if not k.startswith('_')]
                raise BatchkitAttributeError(f"Expected an attribute of {where} ({type(value).__name__}). "
                                             f"Received: D({self._name!r}), which has no {part!r}."
                                             f"{suggest(part, known)}") from None
        return value

    def _fold(self, pipeline: Any) -> Any:
        """The dataset attribute itself: the dataset does not change during a run."""
        return _Literal(self._get(None, pipeline))


class W(NamedExpression):
    """Pass an expression on unevaluated: `W(B('images'))` reaches the action as the expression itself."""

    def __init__(self, expr: Any) -> None:
        self._expr = expr

    def _get(self, batch: Any, pipeline: Any) -> Any:
        """The wrapped expression itself, unevaluated."""
        return self._expr


def _same(new: Any, old: Any) -> bool:
    return all(a is b for a, b in zip(new, old))


def evaluate(obj: Any, batch: Any, pipeline: Any) -> Any:
    """`obj` with every named expression in it (also inside lists, tuples, dicts and dict keys) evaluated.

    NOTE [ Containers keep their identity ]
    A list, tuple or dict with no named expression inside is passed on as the very same object (in `fold` and
    here), as Python passes arguments: an action may fill a list it was given, and nothing is copied per
    batch. A container that holds expressions is rebuilt for each batch, with its expression-free parts shared.
    """
    if isinstance(obj, NamedExpression):
        return obj._get(batch, pipeline)
    kind = type(obj)
    if kind is list:
        new = [evaluate(x, batch, pipeline) for x in obj]
        return obj if _same(new, obj) else new
    if kind is tuple:
        new = tuple(evaluate(x, batch, pipeline) for x in obj)
        return obj if _same(new, obj) else new
    if kind is dict:
        new = {evaluate(k, batch, pipeline): evaluate(v, batch, pipeline) for k, v in obj.items()}
        return obj if len(new) == len(obj) and _same(new, obj) and _same(new.values(), obj.values()) else new
    return obj


def fold(obj: Any, pipeline: Any) -> Any:
    """`obj` with the run-constant expressions (C, D) replaced by their values (see NOTE [ Containers keep
    their identity ])."""
    if isinstance(obj, (C, D)):
        return obj._get(None, pipeline)
    if isinstance(obj, W):
        return obj
    if isinstance(obj, NamedExpression):
        return obj._fold(pipeline)
    kind = type(obj)
    if kind not in (list, tuple, dict) or not has_expressions(obj):
        return obj
    if kind is list:
        return [fold(x, pipeline) for x in obj]
    if kind is tuple:
        return tuple(fold(x, pipeline) for x in obj)
    return {fold(k, pipeline): fold(v, pipeline) for k, v in obj.items()}


def iter_expressions(obj: Any) -> Iterator[NamedExpression]:
    """Every named expression in `obj`, nested ones included (W's content excluded)."""
    if isinstance(obj, NamedExpression):
        yield obj
        if not isinstance(obj, W):
            for child in obj._children():
                yield from iter_expressions(child)
    elif type(obj) in (list, tuple):
        for x in obj:
            yield from iter_expressions(x)
    elif type(obj) is dict:
        for k, v in obj.items():
            yield from iter_expressions(k)
            yield from iter_expressions(v)


def has_expressions(obj: Any) -> bool:
    return next(iter_expressions(obj), None) is not None
