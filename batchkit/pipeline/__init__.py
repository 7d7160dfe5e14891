"""Pipelines: immutable chains of actions, named expressions, variables and the run loop."""
from . import model_steps as _model_steps  # noqa: F401 - registers the model steps
from . import metrics_step as _metrics_step  # noqa: F401 - registers gather_metrics
from .expressions import B, C, D, F, I, M, R, V, W
from .pipeline import Pipeline

__all__ = ['B', 'C', 'D', 'F', 'I', 'M', 'Pipeline', 'R', 'V', 'W']
