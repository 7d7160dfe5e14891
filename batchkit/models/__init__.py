"""Models for pipelines: BaseModel, and (with the `tf` extra) KerasModel and TFModel."""
from .base import BaseModel

__all__ = ['BaseModel']
