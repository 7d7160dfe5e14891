"""Models for pipelines: BaseModel, and (with the `tf` extra) KerasModel and TFModel.

The framework models are imported on first use, so `import batchkit` never loads TensorFlow; without it,
`from batchkit.models import KerasModel` raises an ImportError that gives the pip command for the `tf` extra.
"""
from __future__ import annotations

import importlib
from typing import Any

from .base import BaseModel

__all__ = ['BaseModel', 'EstimatorSpec', 'KerasModel', 'ModeKeys', 'TFModel']

# public name -> module that defines it; these modules import TensorFlow or Keras
_LAZY = {'KerasModel': '.keras', 'TFModel': '.tf', 'EstimatorSpec': '.estimator', 'ModeKeys': '.estimator'}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
