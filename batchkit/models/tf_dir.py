"""The model_dir of a TFModel: Saver checkpoints written atomically, resume, warm start, summaries, export.

NOTE [ Atomic Saver checkpoints ]
A Saver checkpoint is several files (`<prefix>.index`, `<prefix>.data-*`) plus the `checkpoint` state file that
names the latest one. They are written into a temporary directory inside model_dir, moved next to the older
checkpoints (data files first, the index last), and only then does the `checkpoint` state file, rewritten
atomically by TensorFlow, point at them. A process killed at any moment leaves the state naming a complete
checkpoint: the previous one until the very last write, the new one after it.
"""
from __future__ import annotations

import atexit
import glob
import inspect
import json
import os
import shutil
import tempfile
import time
from typing import Any

from .. import signals
from .._optional import import_optional
from ..errors import BatchkitTypeError, BatchkitValueError, MissingFileError, ModelError
from .estimator import ModeKeys
from .tf import _flat_outputs

tf = import_optional('tensorflow', extra='tf')
v1 = tf.compat.v1

__all__ = ['ModelDirectory']

_PREFIX = 'model.ckpt'
_FINGERPRINT = 'batchkit_model.json'
_OPTIONS = {'save_checkpoints_steps': None, 'save_checkpoints_secs': None, 'keep_checkpoint_max': 5,
            'save_summary_steps': 100}


def _positive(config: dict, key: str, owner: str) -> Any:
    value = config.get(key, _OPTIONS[key])
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise BatchkitValueError(f"Expected `{key}` of {owner} to be a positive number or None. "
                                 f"Received: {key}={value!r}")
    return value


class ModelDirectory:
    """Checkpoints, TensorBoard summaries and the source copy of one TFModel in its `model_dir`."""

    def __init__(self, model: Any) -> None:
        self.model, config, owner = model, model.config, model._name
        for key in _OPTIONS:
            setattr(self, key, _positive(config, key, owner))
        if self.save_checkpoints_steps is None and self.save_checkpoints_secs is None:
            self.save_checkpoints_secs = 600                       # tf.estimator.RunConfig's default
        path = config.get('model_dir')
        if path is None:
            path = tempfile.mkdtemp(prefix='batchkit-tf-')
            atexit.register(shutil.rmtree, path, True)
        elif not isinstance(path, (str, os.PathLike)):
            raise BatchkitTypeError(f"Expected `model_dir` of {owner} to be a path or None. Received: {path!r:.60}")
        self.path = os.fspath(path)
        os.makedirs(self.path, exist_ok=True)
        for stale in glob.glob(os.path.join(self.path, '.tmp-ckpt-*')):    # left by a process killed mid-save
            shutil.rmtree(stale, ignore_errors=True)
        self._check_fingerprint()
        self._copy_source()
        self._writer = tf.summary.create_file_writer(self.path)
        self.last_saved_step, self._last_save_time = 0, time.monotonic()
        self._summary_step, self._summary_time = None, time.monotonic()
        latest = tf.train.latest_checkpoint(self.path)
        warm = config.get('warm_start_from')
        if latest is not None:
            self.restore(latest)
            self.last_saved_step = model.step
        elif warm is not None:
            source = tf.train.latest_checkpoint(warm) if os.path.isdir(warm) else warm
            if source is None or not glob.glob(source + '.index'):
                raise MissingFileError(f"Expected `warm_start_from` of {owner} to be a directory with checkpoints "
                                       f"or a checkpoint prefix. Received: {warm!r}, which holds none.")
            model._restore_from, model._restore_trainable_only = source, True

    # --- identity ---------------------------------------------------------------------------------------------
    def _identity(self) -> dict:
        fn = self.model.model_fn
        return {'class': type(self.model).__name__,
                'model_fn': f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"}

    def _check_fingerprint(self) -> None:
        file, identity = os.path.join(self.path, _FINGERPRINT), self._identity()
        if os.path.exists(file):
            with open(file) as f:
                stored = json.load(f)
            if stored != identity:
                raise ModelError(f"Expected model_dir {self.path!r} to hold checkpoints of {self.model._name} "
                                 f"({identity}). Received: a directory of another model ({stored}). Give this model "
                                 f"its own model_dir.")
            return
        if tf.train.latest_checkpoint(self.path) is not None:
            raise ModelError(f"Expected model_dir {self.path!r} to hold checkpoints of {self.model._name}. Received: "
                             f"checkpoints written by something else (no {_FINGERPRINT}). Use an empty model_dir.")
        tmp = file + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(identity, f)
        os.replace(tmp, file)

    def _copy_source(self) -> None:
        try:
            source = inspect.getsourcefile(self.model.model_fn)
        except TypeError:                                        # a builtin or C callable: no source file
            return
        if source and os.path.isfile(source):
            shutil.copyfile(source, os.path.join(self.path, os.path.basename(source)))

    # --- checkpoints ------------------------------------------------------------------------------------------
    def latest(self) -> str | None:
        """The prefix of the latest checkpoint in model_dir, or None."""
        return tf.train.latest_checkpoint(self.path)

    def save(self, path: str | None = None) -> str:
        """Write a checkpoint atomically (see NOTE [ Atomic Saver checkpoints ]); return its prefix."""
        target = os.fspath(path) if path is not None else self.path
        os.makedirs(target, exist_ok=True)
        model, step = self.model, self.model.step
        tmp = tempfile.mkdtemp(prefix='.tmp-ckpt-', dir=target)
        try:
            with model.graph.as_default():
                written = model.saver().save(model.session, os.path.join(tmp, _PREFIX), global_step=step,
                                             write_meta_graph=False, write_state=False)
            files = sorted(os.listdir(tmp), key=lambda name: name.endswith('.index'))     # the index last
            for name in files:
                os.replace(os.path.join(tmp, name), os.path.join(target, name))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        prefix = os.path.join(target, os.path.basename(written))
        state = v1.train.get_checkpoint_state(target)
        kept = [p for p in (state.all_model_checkpoint_paths if state else []) if p != prefix] + [prefix]
        keep = int(self.keep_checkpoint_max)
        v1.train.update_checkpoint_state(target, prefix, all_model_checkpoint_paths=kept[-keep:])
        for old in kept[:-keep]:                                 # only after the state no longer names them
            for file in glob.glob(old + '.*'):
                os.remove(file)
        if path is None:
            self.last_saved_step, self._last_save_time = step, time.monotonic()
        signals.checkpoint_saved.send(model, name=model._name, path=prefix, step=step)
        return prefix

    def restore(self, path: str | None = None) -> None:
        """Restore every variable from the latest checkpoint of model_dir (or `path`, a directory or prefix)."""
        path = os.fspath(path) if path is not None else self.path
        prefix = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
        if prefix is None or not os.path.exists(prefix + '.index'):
            raise MissingFileError(f"Expected a checkpoint of {self.model._name} at {path!r}. Received: none there. "
                                   f"Pass a model_dir holding checkpoints or a checkpoint prefix.")
        model = self.model
        model._restore_variables(model.graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES), prefix, False)
        model._restore_from, model._restore_trainable_only = prefix, False

    # --- per step ---------------------------------------------------------------------------------------------
    def after_train_step(self, step: int, loss: float) -> None:
        """Write summaries every save_summary_steps and a checkpoint when the policy asks for one."""
        if step % int(self.save_summary_steps) == 0:
            now = time.monotonic()
            scalars = {'loss': loss}
            if self._summary_step is not None and now > self._summary_time:
                scalars['global_step/sec'] = (step - self._summary_step) / (now - self._summary_time)
            self.write_scalars(step, scalars)
            self._summary_step, self._summary_time = step, now
        by_steps = self.save_checkpoints_steps is not None and step - self.last_saved_step >= self.save_checkpoints_steps
        by_secs = (self.save_checkpoints_secs is not None
                   and time.monotonic() - self._last_save_time >= self.save_checkpoints_secs)
        if by_steps or by_secs:
            self.save()

    def after_eval(self, result: dict) -> None:
        """Write the loss and metrics of an evaluation under `eval/`."""
        self.write_scalars(self.model.step, {f'eval/{k}': v for k, v in result.items() if isinstance(v, float)})

    def write_scalars(self, step: int, scalars: dict) -> None:
        """TensorBoard scalars, readable with tf.compat.v1.train.summary_iterator (values in `value.tensor`)."""
        with self._writer.as_default(step=step):
            for tag, value in scalars.items():
                tf.summary.scalar(tag, value)
        self._writer.flush()

    def close(self) -> None:
        """The checkpoint at the end of a run (unless the current step is saved already)."""
        if self.model.step != self.last_saved_step and ModeKeys.TRAIN in self.model._modes:
            self.save()
        self._writer.close()

    # --- export -----------------------------------------------------------------------------------------------
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
