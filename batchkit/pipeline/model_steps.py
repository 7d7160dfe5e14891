"""Model steps of pipelines: init_model, import_model, train/predict/test_model, save_model, load_model.

NOTE [ Building under prefetch ]
A dynamic model is built from the first batch that reaches a step using it (train/predict/test_model, an action
with `model=`, M(...)), as that batch is at that step: a chain may declare it with `init_model` first and load the
data it is shaped from afterwards (seed 003). `init_model` of a dynamic model is therefore no op at all: it adds
nothing to the head or tail, so the chain after it still runs in prefetch workers (NOTE [ Head and tail ] in
pipeline/prefetch.py). Steps that use a model are ordered, so the model is built from the run's first batch and
sees batches in the same order as without prefetch; the store builds each model exactly once however many
threads ask at the same time (ModelStore.get_or_build). A dynamic model that no step used is built from the
run's first batch at the end of its chain (so that a wrong config fails in the first run, and `after` steps find
the model). A batch-class static `@model` is built by its `init_model` step on the run's first batch.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._naming import suggest
from ..errors import BatchkitTypeError, ModelError, UnknownNameError
from ..index import _check_bool
from .builtins import check_save, register_builtin, save_target, store_result
from .expressions import evaluate, fold
from .model_registry import ModelDeclaration, model_method, parse_model_args
from .ops import BuiltinOp, Op

__all__ = ['dynamic_model_of']


def _declare(pipeline: Any, *args: Any, replace: bool = False, **kwargs: Any) -> None:
    decl = parse_model_args(args, kwargs)
    if decl.cls is None:
        _check_class_model(pipeline, decl.name)
        return            # a batch-class @model: built from pipeline.config[name] on first request
    pipeline.models.declare(pipeline, decl, replace=replace)


def _check_class_model(pipeline: Any, name: str) -> None:
    """`init_model(name)` alone must name a @model of the batch class (checked when chained or linked)."""
    if not pipeline.models.knows(pipeline, name):
        raise UnknownNameError(f"Expected init_model({name!r}) to name a @model of {pipeline.batch_class.__name__}. "
                               f"Received: {name!r}.{suggest(name, pipeline.models.known_names(pipeline))} "
                               f"Or give its class: init_model({name!r}, ModelClass, mode, config).")


def dynamic_model_of(pipeline: Any, *args: Any, **kwargs: Any) -> str | None:
    """The name of the dynamic model an `init_model(*args, **kwargs)` step declares, or None."""
    decl = parse_model_args(args, kwargs)
    if decl.cls is None:
        _check_class_model(pipeline, decl.name)     # a template linked later: fail at run start, before any batch
        return decl.name if pipeline.batch_class.models[decl.name].mode == 'dynamic' else None
    return decl.name if decl.mode == 'dynamic' else None


@register_builtin('init_model', on_chain=_declare)
def _compile_init_model(pipeline: Any, *args: Any, **kwargs: Any) -> Op | None:
    decl = parse_model_args(args, kwargs)
    name = decl.name
    if dynamic_model_of(pipeline, *args, **kwargs) is not None or decl.cls is not None:
        return None           # static: built when declared; dynamic: at first use (NOTE [ Building under prefetch ])

    def init_model(batch: Any, pipe: Any) -> None:
        if getattr(batch, '_pos', 0) == 0:
            pipe.models.get(pipe, name, batch)
    return BuiltinOp(f'init_model({name})', init_model, ordered=False)


def _declare_import(pipeline: Any, name: str, source: Any, replace: bool = False) -> None:
    from .pipeline import Pipeline
    if not isinstance(source, Pipeline):
        raise BatchkitTypeError(f"Expected import_model(name, pipeline) to get a Pipeline. Received: "
                                f"{type(source).__name__}")
    if not source.models.knows(source, name):
        raise UnknownNameError(f"Expected import_model({name!r}, pipeline) to name a model of that pipeline. "
                               f"Received: {name!r}, which it neither initializes nor has as a @model of its batch "
                               f"class.{suggest(name, source.models.known_names(source))}")
    old = pipeline.models.decls.get(name)
    if old is not None and old.source is not source and not replace:
        raise ModelError(f"Expected import_model to bring in a new model name. Received: {name!r}, already "
                         f"declared in this pipeline. Pick another name, or pass import_model({name!r}, pipeline, "
                         "replace=True) to replace that model.")
    pipeline.models.decls[name] = ModelDeclaration(name, None, 'static', source=source)
    pipeline.models.store.pop(name)


@register_builtin('import_model', on_chain=_declare_import)
def _compile_import_model(pipeline: Any, name: str, source: Any, replace: bool = False) -> Op:
    def import_model(batch: Any, pipe: Any) -> None:
        pipe.models.get(pipe, name, batch)
    return BuiltinOp(f'import_model({name})', import_model, ordered=False)


def _check_model_call(pipeline: Any, name: str, *args: Any, make_data: Callable | None = None, save_to: Any = None,
                      mode: str = 'w', use_lock: bool = True, append_to: Any = None, **kwargs: Any) -> None:
    """Fail when chained, not mid-run, on options that cannot work."""
    if make_data is not None and not callable(make_data):
        raise BatchkitTypeError(f"Expected make_data to be a callable (batch, model) -> dict. Received: {make_data!r:.60}")
    _check_bool('use_lock', use_lock)         # the model's own lock, or none
    check_save(save_to, mode, append_to)


def _made_data(make_data: Callable, batch: Any, model: Any, step: str) -> Mapping:
    data = make_data(batch, model)
    if not isinstance(data, Mapping):
        raise BatchkitTypeError(f"Expected make_data of {step} to return a dict of the model method's keyword "
                                f"arguments. Received: {type(data).__name__} {data!r:.60}. Return e.g. "
                                "{'x': batch.images, 'y': batch.labels}.")
    return data


def _start_evaluation(entry: Any) -> None:
    """A run's first test on a model: `on_evaluation_start()` if it has one (TFModel zeroes its streaming metrics,
    so that each run is one evaluation, as each `estimator.evaluate` was)."""
    hook = getattr(entry.model, 'on_evaluation_start', None)
    if callable(hook):
        with entry.lock:
            hook()


def _model_call(step: str, methods: tuple[str, ...]) -> Callable[..., Op]:
    def compile_step(pipeline: Any, name: str, *args: Any, make_data: Callable | None = None, save_to: Any = None,
                     mode: str = 'w', use_lock: bool = True, append_to: Any = None, **kwargs: Any) -> Op:
        args, kwargs = fold(args, pipeline), fold(kwargs, pipeline)
        target, target_mode = save_target(save_to, mode, append_to)
        evaluated: set[int] = set()     # models this run has started an evaluation of (the ops are made per run)

        def call(batch: Any, pipe: Any) -> None:
            entry = pipe.models.get(pipe, name, batch)
            if step == 'test_model' and id(entry.model) not in evaluated:
                _start_evaluation(entry)
                evaluated.add(id(entry.model))
            call_args, call_kwargs = evaluate(args, batch, pipe), evaluate(kwargs, batch, pipe)
            if make_data is not None:
                call_kwargs.update(_made_data(make_data, batch, entry.model, step))
            method = model_method(entry, *methods)
            if use_lock:
                with entry.lock:
                    output = method(*call_args, **call_kwargs)
            else:
                output = method(*call_args, **call_kwargs)
            if target is not None:
                store_result(target, output, batch, pipe, target_mode)
        return BuiltinOp(f'{step}({name})', call)
    return compile_step


register_builtin('train_model', on_chain=_check_model_call)(_model_call('train_model', ('train', 'train_on_batch')))
register_builtin('predict_model', on_chain=_check_model_call)(_model_call('predict_model', ('predict', 'predict_on_batch')))
register_builtin('test_model', on_chain=_check_model_call)(_model_call('test_model', ('test', 'test_on_batch')))


@register_builtin('save_model')
def _compile_save_model(pipeline: Any, name: str, *args: Any, **kwargs: Any) -> Op:
    args, kwargs = fold(args, pipeline), fold(kwargs, pipeline)

    def save_model(batch: Any, pipe: Any) -> None:
        pipe.models.save_now(pipe, name, *evaluate(args, batch, pipe), **evaluate(kwargs, batch, pipe))
    return BuiltinOp(f'save_model({name})', save_model)


@register_builtin('load_model')
def _compile_load_model(pipeline: Any, *args: Any, **kwargs: Any) -> Op:
    args, kwargs = fold(args, pipeline), fold(kwargs, pipeline)

    def load_model(batch: Any, pipe: Any) -> None:
        pipe.models.load_now(pipe, *args, batch=batch, **evaluate(kwargs, batch, pipe))
    return BuiltinOp('load_model', load_model)
