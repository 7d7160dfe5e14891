"""The model_dir of a TFModel: Saver checkpoints through ModelDir, resume, warm start, summaries, export.

A checkpoint is a `ckpt-<step>/` directory of model_dir.py (NOTE [ Atomic checkpoints ]) holding one Saver
checkpoint with the prefix `model.ckpt` (`model.ckpt.index`, `model.ckpt.data-*`), written without the Saver's own
`checkpoint` state file: model_dir.py's index names the latest checkpoint. A train_op that does not advance the
global step trains without changing the step: its checkpoints replace the one of that step (`ckpt-<step>.<rev>`).
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any

from .._optional import import_optional
from ..errors import BatchkitValueError, MissingFileError
from .estimator import ModeKeys
from .model_dir import ModelDir, parse_options

tf = import_optional('tensorflow', extra='tf')
v1 = tf.compat.v1

__all__ = ['TFModelDir', 'checkpoint_prefix']

logger = logging.getLogger('batchkit')

PREFIX = 'model.ckpt'


def checkpoint_prefix(path: str) -> str | None:
    """The Saver prefix at `path`: a model_dir (its latest), a `ckpt-<step>` or `save(path)` directory, a prefix."""
    path = os.fspath(path)
    found = ModelDir.find(path)
    if found is not None:
        path = found.path
    for prefix in (os.path.join(path, PREFIX), path):
        if os.path.exists(prefix + '.index'):
            return prefix
    latest = tf.train.latest_checkpoint(path) if os.path.isdir(path) else None   # a plain Saver directory
    return latest


def _flat_outputs(outputs: Any) -> dict:
    """predictions or export_outputs as a flat dict name -> tensor."""
    if not isinstance(outputs, dict):
        return {'output': outputs}
    flat = {}
    for key, value in outputs.items():
        if isinstance(value, dict):
            flat.update({f'{key}/{k}': v for k, v in value.items()})
        else:
            flat[key] = getattr(value, 'outputs', value)   # a PredictOutput-like object holds `outputs`
    return flat


class TFModelDir:
    """Checkpoints, TensorBoard summaries and the source copy of one TFModel, in its `model_dir`."""

    def __init__(self, model: Any) -> None:
        self.model, self._unsaved = model, False           # _unsaved: trained since the last checkpoint
        self._lock = threading.Lock()                       # guards the eval accumulation and the step check
        self._eval_losses: list[float] = []                 # losses of test() calls since the last eval summary
        self._eval_metrics: dict[str, float] = {}           # the latest (streaming) metric values
        self._start_step = 0                                # the step before the first train() (or restored)
        self._warned_step = False
        self.options = parse_options(model.config, model._name)
        self.dir = ModelDir(self.options, owner=model, name=model._name)
        fn = model.model_fn
        self.dir.claim({'class': type(model).__name__,
                        'model_fn': f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"},
                       source=fn)
        latest = self.dir.latest()
        warm = self.options.warm_start_from
        if latest is not None:
            self.restore(latest.path)
        elif warm is not None:
            source = checkpoint_prefix(warm)
            if source is None:
                raise MissingFileError(f"Expected `warm_start_from` of {model._name} to be a model_dir with "
                                       f"checkpoints or a checkpoint. Received: {warm!r}, which holds none.")
            model._restore_from, model._restore_trainable_only = source, True

    @property
    def path(self) -> str:
        """The model_dir (a temporary directory, removed at exit, when `model_dir` is None)."""
        return self.dir.path

    def _write(self, directory: str) -> str:
        model = self.model
        with model.graph.as_default():
            return model.saver().save(model.session, os.path.join(directory, PREFIX), write_meta_graph=False,
                                      write_state=False)

    def save(self, path: str | None = None) -> str:
        """A checkpoint into model_dir (atomic, rotated, signalled), or a Saver checkpoint into the directory `path`."""
        if path is None:
            replace, self._unsaved = self._unsaved, False
            return os.path.join(self.dir.save(self.model.step, self._write, replace=replace).path, PREFIX)
        os.makedirs(path, exist_ok=True)
        return self._write(os.fspath(path))

    def restore(self, path: str | None = None) -> None:
        """Restore every variable from model_dir's latest checkpoint, or the checkpoint at `path`."""
        where = os.fspath(path) if path is not None else self.path
        prefix = checkpoint_prefix(where)
        if prefix is None:
            raise MissingFileError(f"Expected a checkpoint of {self.model._name} at {where!r}. Received: none there. "
                                   f"Pass a model_dir holding checkpoints, a checkpoint directory or a prefix.")
        model = self.model
        model._restore_variables(model.graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES), prefix, False)
        model._restore_from, model._restore_trainable_only = prefix, False
        self.dir.resumed_at(model.step)
        self._start_step = model.step

    def after_train_step(self, step: int, loss: float) -> None:
        """Summaries every save_summary_steps; a checkpoint when the policy asks for one."""
        self._check_step_advances(step)
        self._unsaved = True
        self.dir.summarize(step, {'loss': loss})
        if self.dir.due(step):      # this step just changed the model: a checkpoint already at `step` is stale
            self.dir.save(step, self._write, replace=True)
            self._unsaved = False

    def _check_step_advances(self, step: int) -> None:
        # Steps only grow, so a step still equal to the one before the first train() means no train_op so far
        # advanced it (exact under concurrent train calls too). Checkpoints at one step replace each other.
        with self._lock:
            if self._warned_step or step != self._start_step:
                return
            self._warned_step = True
        logger.warning("batchkit: %s: expected the train_op of model_fn to advance the global step. Received: "
                       "global step %d after a train step. Checkpoints and summaries of this model all share "
                       "one step (each checkpoint replaces the previous one). Pass global_step="
                       "tf.compat.v1.train.get_or_create_global_step() to optimizer.minimize().",
                       self.model._name, step)

    def after_eval(self, result: dict) -> None:
        """Collect a test() result: its loss for the mean, the latest values of the (streaming) metrics."""
        with self._lock:
            self._eval_losses.append(result['loss'])
            self._eval_metrics.update({k: v for k, v in result.items() if k != 'loss' and isinstance(v, float)})

    def write_eval_summary(self) -> bool:
        """One eval summary under `<model_dir>/eval` at the current step, of the test() calls since the last.

        It holds the mean of their losses and the final values of the metrics (`tf.compat.v1.metrics` already
        accumulate), as Estimator's evaluate() wrote one summary per evaluation. Returns whether it wrote one.
        """
        with self._lock:
            losses, metrics = self._eval_losses, self._eval_metrics
            self._eval_losses, self._eval_metrics = [], {}
        if not losses:
            return False
        return self.dir.summarize(self.model.step, {'loss': sum(losses) / len(losses), **metrics}, subdir='eval',
                                  force=True)

    def on_run_end(self) -> None:
        """The eval summary of this run's test() calls, and the checkpoint (if the model trained since the last)."""
        self.write_eval_summary()
        self.dir.flush_summaries(self.model.step)        # the last, partial window of train scalars
        if self._unsaved:
            self.save()

    def close(self) -> None:
        """The final checkpoint, then close the summary writers."""
        self.on_run_end()
        self.dir.close()

    def export(self, path: str, features: Any = None) -> str:
        """A SavedModel with a `serving_default` signature from export_outputs, else predictions."""
        model = self.model
        if ModeKeys.PREDICT not in model._modes:
            if features is None and model._features is None:
                raise BatchkitValueError(f"Expected {model._name} to have seen a batch before export. Received: "
                                         f"no batch. Call export(path, features=<a batch>) or predict first.")
            model._ensure_mode(ModeKeys.PREDICT, features)
        spec = model._modes[ModeKeys.PREDICT]['spec']
        holders = model._features if isinstance(model._features, dict) else {'features': model._features}
        outputs = _flat_outputs(spec.export_outputs if spec.export_outputs is not None else spec.predictions)
        path = os.fspath(path)
        with model.graph.as_default():
            signature = v1.saved_model.signature_def_utils.predict_signature_def(holders, outputs)
            builder = v1.saved_model.Builder(path)
            builder.add_meta_graph_and_variables(model.session, [v1.saved_model.tag_constants.SERVING],
                                                 signature_def_map={'serving_default': signature},
                                                 strip_default_attrs=True)
            builder.save()
        return path
