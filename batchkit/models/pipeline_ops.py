"""Model steps of pipelines: init_model, import_model, train/predict/test_model, save_model, load_model."""
from __future__ import annotations

from typing import Any, Callable

from ..errors import BatchkitTypeError
from ..pipeline.builtins import register_builtin
from ..pipeline.expressions import evaluate, fold
from ..pipeline.ops import BuiltinOp, Op, save_to
from .registry import ModelDeclaration, model_method, parse_model_args

__all__: list[str] = []


def _declare(pipeline: Any, *args: Any, **kwargs: Any) -> None:
    decl = parse_model_args(args, kwargs)
    if decl.cls is None:
        return            # a batch-class @model: built from pipeline.config[name] on first request
    pipeline.models.declare(pipeline, decl)


@register_builtin('init_model', on_chain=_declare)
def _compile_init_model(pipeline: Any, *args: Any, **kwargs: Any) -> Op | None:
    decl = parse_model_args(args, kwargs)
    if decl.mode == 'static' and decl.cls is not None:
        return None
    name = decl.name

    def init_model(batch: Any, pipe: Any) -> None:
        pipe.models.get(pipe, name, batch)      # builds a dynamic model once, with the first batch
    return BuiltinOp(f'init_model({name})', init_model)


def _declare_import(pipeline: Any, name: str, source: Any) -> None:
    from ..pipeline.pipeline import Pipeline
    if not isinstance(source, Pipeline):
        raise BatchkitTypeError(f"Expected import_model(name, pipeline) to get a Pipeline. Received: "
                                f"{type(source).__name__}")
    pipeline.models.decls[name] = ModelDeclaration(name, None, 'static', source=source)
    pipeline.models.store.pop(name)


@register_builtin('import_model', on_chain=_declare_import)
def _compile_import_model(pipeline: Any, name: str, source: Any) -> Op:
    def import_model(batch: Any, pipe: Any) -> None:
        pipe.models.get(pipe, name, batch)
    return BuiltinOp(f'import_model({name})', import_model)


def _model_call(step: str, methods: tuple[str, ...]) -> Callable[..., Op]:
    def compile_step(pipeline: Any, name: str, *args: Any, make_data: Callable | None = None, save_to: Any = None,
                     mode: str = 'w', use_lock: bool = True, append_to: Any = None, **kwargs: Any) -> Op:
        if make_data is not None and not callable(make_data):
            raise BatchkitTypeError(f"Expected make_data to be a callable (batch, model) -> dict. Received: {make_data!r:.60}")
        args, kwargs = fold(args, pipeline), fold(kwargs, pipeline)
        target, target_mode = (append_to, 'a') if append_to is not None else (save_to, mode)
        store = _store

        def call(batch: Any, pipe: Any) -> None:
            entry = pipe.models.get(pipe, name, batch)
            call_args, call_kwargs = evaluate(args, batch, pipe), evaluate(kwargs, batch, pipe)
            if make_data is not None:
                call_kwargs.update(make_data(batch, entry.model))
            method = model_method(entry, *methods)
            if use_lock:
                with entry.lock:
                    output = method(*call_args, **call_kwargs)
            else:
                output = method(*call_args, **call_kwargs)
            if target is not None:
                store(target, output, batch, pipe, target_mode)
        return BuiltinOp(f'{step}({name})', call)
    return compile_step


_store = save_to
register_builtin('train_model')(_model_call('train_model', ('train', 'train_on_batch')))
register_builtin('predict_model')(_model_call('predict_model', ('predict', 'predict_on_batch')))
register_builtin('test_model')(_model_call('test_model', ('test', 'test_on_batch')))


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
