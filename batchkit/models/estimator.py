"""The Estimator contract of TFModel: ModeKeys and the EstimatorSpec a `model_fn` returns (no TensorFlow needed)."""
from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import BatchkitValueError

__all__ = ['EstimatorSpec', 'ModeKeys']


class ModeKeys:
    """The modes a `model_fn` is called in, spelled as `tf.estimator.ModeKeys` spelled them.

    >>> ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.PREDICT
    ('train', 'eval', 'infer')
    """

    TRAIN = 'train'
    EVAL = 'eval'
    PREDICT = 'infer'
    ALL = (TRAIN, EVAL, PREDICT)


class EstimatorSpec(NamedTuple):
    """What a `model_fn(features, labels, mode, params)` returns: the tensors and ops of one mode's graph.

    Positional order is `tf.estimator.EstimatorSpec`'s: `EstimatorSpec(mode, predictions, loss, train_op,
    eval_metric_ops)` works as in TensorFlow 1.

    Args:
        mode: one of `ModeKeys.TRAIN | EVAL | PREDICT`.
        predictions: a tensor or a dict of tensors (needed in PREDICT mode).
        loss: a scalar tensor (needed in TRAIN and EVAL modes).
        train_op: the op that takes one optimizer step (needed in TRAIN mode).
        eval_metric_ops: a dict name -> `(value, update_op)`, as `tf.compat.v1.metrics.*` return them.
        export_outputs: a dict name -> tensor (or dict of tensors) served by `export`; predictions if None.

    >>> EstimatorSpec(ModeKeys.PREDICT, predictions={'y': 1}).mode
    'infer'
    """

    mode: str
    predictions: Any = None
    loss: Any = None
    train_op: Any = None
    eval_metric_ops: Any = None
    export_outputs: Any = None

    def check(self, owner: str) -> EstimatorSpec:
        """Raise if a mode lacks what it needs; `owner` names the model in the message."""
        if self.mode not in ModeKeys.ALL:
            raise BatchkitValueError(f"Expected the EstimatorSpec of {owner} to have mode in {ModeKeys.ALL}. "
                                     f"Received: mode={self.mode!r}. Pass the `mode` argument model_fn got.")
        needs = {ModeKeys.TRAIN: ('loss', 'train_op'), ModeKeys.EVAL: ('loss',),
                 ModeKeys.PREDICT: ('predictions',)}[self.mode]
        for field in needs:
            if getattr(self, field) is None:
                raise BatchkitValueError(
                    f"Expected the EstimatorSpec of {owner} in mode {self.mode!r} to have `{field}`. Received: "
                    f"{field}=None. Return EstimatorSpec(mode, {field}=...) from model_fn in that mode"
                    + (" (e.g. train_op=optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step()))"
                       if field == 'train_op' else '') + '.')
        return self
