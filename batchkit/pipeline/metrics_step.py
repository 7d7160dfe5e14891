"""The gather_metrics pipeline step: metrics of each batch, accumulated into a variable in batch order.

NOTE [ Gathering metrics ]
`gather_metrics` builds a metrics object from each batch's targets and predictions and merges it into its
target (`V('m', mode='u')`: `m = m + batch_metrics`), so after a run `m` holds the metrics of all the data, equal
to metrics computed once (see batchkit/metrics/base.py). Its op is `ordered`, so under prefetch it runs in the
tail, on the consuming side, in batch order (NOTE [ Head and tail ] in pipeline/prefetch.py): the merged items
come in the order of the batches whatever the engine. batchkit.metrics is imported when the step is chained,
never by `import batchkit`.
"""
from __future__ import annotations

import inspect
from typing import Any

from .._naming import suggest
from ..errors import BatchkitTypeError, UnknownNameError
from .builtins import check_save, register_builtin, store_result
from .expressions import V, evaluate, fold
from .ops import BuiltinOp, Op

__all__ = ['METRICS_CLASSES']

# gather_metrics names -> classes of batchkit.metrics (BatchFlow's names)
METRICS_CLASSES = {
    'classification': 'ClassificationMetrics',
    'segmentation': 'SegmentationMetricsByPixels',
    'instance': 'SegmentationMetricsByInstances',
    'regression': 'RegressionMetrics',
}

_DEFAULT_TARGET = V('m', mode='u')


def _metrics_class(name_or_class: Any) -> type:
    """The Metrics class a gather_metrics name or class stands for; an error with "did you mean" otherwise."""
    from .. import metrics
    if isinstance(name_or_class, str):
        if name_or_class not in METRICS_CLASSES:
            raise UnknownNameError(f"Expected gather_metrics to get one of {sorted(METRICS_CLASSES)} or a Metrics "
                                   f"class. Received: {name_or_class!r}."
                                   + suggest(name_or_class, METRICS_CLASSES))
        return getattr(metrics, METRICS_CLASSES[name_or_class])
    if isinstance(name_or_class, type) and issubclass(name_or_class, metrics.Metrics):
        return name_or_class
    raise BatchkitTypeError(f"Expected gather_metrics to get one of {sorted(METRICS_CLASSES)} or a subclass of "
                            f"batchkit.metrics.Metrics. Received: {type(name_or_class).__name__} "
                            f"{name_or_class!r:.60}.")


def _check_gather(pipeline: Any, name_or_class: Any, *args: Any, save_to: Any = _DEFAULT_TARGET, mode: str = 'u',
                  **kwargs: Any) -> None:
    """Fail when chained on an unknown metrics name, arguments the class does not take, or a bad target."""
    cls = _metrics_class(name_or_class)
    check_save(save_to, mode)
    try:
        inspect.signature(cls).bind(*args, **kwargs)
    except TypeError as exc:
        raise BatchkitTypeError(f"Expected gather_metrics({name_or_class!r}, ...) arguments that fit "
                                f"{cls.__name__}{inspect.signature(cls)}. Received: {exc}. Pass targets=... and "
                                f"predictions=... and the class's options.") from None
    # a bare target variable is declared as init_variable(name) would; accumulation starts from None
    if isinstance(save_to, str):
        save_to = V(save_to)
    if isinstance(save_to, V) and save_to.name not in pipeline.variables:
        pipeline.variables.declare(save_to.name, None)


@register_builtin('gather_metrics', on_chain=_check_gather)
def _compile_gather_metrics(pipeline: Any, name_or_class: Any, *args: Any, save_to: Any = _DEFAULT_TARGET,
                            mode: str = 'u', **kwargs: Any) -> Op:
    cls = _metrics_class(name_or_class)
    args, kwargs, target = fold(args, pipeline), fold(kwargs, pipeline), save_to

    def gather_metrics(batch: Any, pipe: Any) -> None:
        batch_metrics = cls(*evaluate(args, batch, pipe), **evaluate(kwargs, batch, pipe))
        with pipe.variables.transaction():     # read and merge under one lock: NOTE [ Atomic updates ]
            store_result(target, batch_metrics, batch, pipe, mode)
    return BuiltinOp(f'gather_metrics({cls.__name__})', gather_metrics)   # ordered: NOTE [ Gathering metrics ]
