"""The Estimator contract of TFModel: ModeKeys, EstimatorSpec, and tf.estimator's Estimator and RunConfig spellings.

Importing this module needs no TensorFlow; `Estimator(...)` builds a TFModel, which does. Code written for
`tf.estimator` runs with `from batchkit.models import estimator` and `tf.estimator.X` spelled `estimator.X`.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import BatchkitTypeError, BatchkitValueError

__all__ = ['Estimator', 'EstimatorSpec', 'ModeKeys', 'RunConfig']


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


class RunConfig:
    """tf.estimator.RunConfig: runtime options, mapped to TFModel's model_dir options (`tf_random_seed` -> `seed`).

    >>> RunConfig(tf_random_seed=0, save_checkpoints_steps=250, save_checkpoints_secs=None).options()
    {'seed': 0, 'save_checkpoints_steps': 250}
    """

    _NAMES = {'model_dir': 'model_dir', 'tf_random_seed': 'seed', 'save_summary_steps': 'save_summary_steps',
              'save_checkpoints_steps': 'save_checkpoints_steps', 'save_checkpoints_secs': 'save_checkpoints_secs',
              'keep_checkpoint_max': 'keep_checkpoint_max'}

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(self._NAMES))
        if unknown:
            raise BatchkitTypeError(f"Expected RunConfig options among {sorted(self._NAMES)}. Received: {unknown}. "
                                    f"Other tf.estimator.RunConfig options have no meaning in batchkit; drop them.")
        self.kwargs = kwargs

    def options(self) -> dict:
        """The TFModel config options (None values dropped, as tf.estimator treated them as unset)."""
        return {self._NAMES[k]: v for k, v in self.kwargs.items() if v is not None}


def Estimator(model_fn: Any, model_dir: Any = None, config: RunConfig | None = None,  # noqa: N802 - tf's name
              params: Any = None, warm_start_from: Any = None) -> Any:
    """tf.estimator.Estimator's signature, returning a `batchkit.models.TFModel` (train/test/predict per batch).

    >>> model = Estimator(model_fn, model_dir='results/run1', params={'learning_rate': 0.01})  # doctest: +SKIP
    """
    from .tf import TFModel
    options = config.options() if config is not None else {}
    if model_dir is not None:
        options['model_dir'] = model_dir
    if warm_start_from is not None:
        options['warm_start_from'] = warm_start_from
    return TFModel({'model_fn': model_fn, 'params': params, **options})
