"""TFModel: an Estimator `model_fn` run in a tf.Graph and session of its own, one session.run per batch.

NOTE [ One graph for all modes ]
tf.estimator rebuilt a graph per call and restored it from the latest checkpoint. Per batch that is far too slow,
so TFModel builds each mode's graph once, on first use, in ONE tf.Graph under
`variable_scope('model', reuse=AUTO_REUSE)`: `tf.compat.v1.get_variable` calls of every mode return the same
variables. Keras layers are objects, not names: a layer created inside `model_fn` is a new layer in every mode,
so create Keras layers once (in a closure or in `params`) and call them in `model_fn`. A mode built after another
that creates new trainable variables is therefore an error (the modes would not share weights). Variables a later
mode creates (e.g. Adam slots when TRAIN is built after PREDICT) are restored from the checkpoint the model was
restored from, so resuming is exact whichever mode runs first. Eager execution is never disabled: the graph is
entered only around building and session.run does not need it.

NOTE [ Names of optimizer state ]
Optimizer variables are matched to a checkpoint by name, and their names depend on build order: a model_fn that
builds its optimizer in EVAL mode too (as seed 004's does) creates a second, unused set (`w/Adam_2`, ...). So
TRAIN is always built before EVAL, giving TRAIN the canonical names whatever the first call was, and every mode
is built in the same name scope (`model/`), so non-slot variables (`model/beta1_power`) keep their names too.
PREDICT mode is expected to return before building an optimizer, as tf.estimator required.
"""
from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .._optional import import_optional
from ..errors import BatchkitTypeError, BatchkitValueError, ModelError
from .base import BaseModel
from .estimator import EstimatorSpec, ModeKeys
from .model_dir import parse_options
from .tf_dir import TFModelDir

EXPORT_FORMATS = ('tf_saved_model', 'saved_model')      # a TFModel exports a SavedModel only

tf = import_optional('tensorflow', extra='tf')
v1 = tf.compat.v1

__all__ = ['TFModel']


def _to_numpy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return np.asarray(value)


class TFModel(BaseModel):
    """A TensorFlow 1 style `model_fn(features, labels, mode, params)` trained and served batch by batch.

    Config: `model_fn` (returns an `EstimatorSpec`), `params` (dict or attribute object passed to `model_fn`),
    `seed` (graph-level seed) and the model_dir options (`model_dir`, `save_checkpoints_steps` or
    `save_checkpoints_secs`, `keep_checkpoint_max`, `save_summary_steps`, `warm_start_from`). See
    NOTE [ One graph for all modes ] for how the modes share variables.

    >>> import tensorflow as tf                               # doctest: +SKIP
    >>> def model_fn(features, labels, mode, params):         # doctest: +SKIP
    ...     w = tf.compat.v1.get_variable('w', (3, 1))
    ...     pred = tf.matmul(features, w)
    ...     if mode == ModeKeys.PREDICT:
    ...         return EstimatorSpec(mode, predictions=pred)
    ...     loss = tf.reduce_mean(tf.square(pred - labels))
    ...     opt = tf.compat.v1.train.AdamOptimizer(params['lr'])
    ...     return EstimatorSpec(mode, loss=loss, train_op=opt.minimize(
    ...         loss, global_step=tf.compat.v1.train.get_global_step()))
    >>> m = TFModel({'model_fn': model_fn, 'params': {'lr': 0.1}})   # doctest: +SKIP
    >>> loss = m.train(np.ones((4, 3), 'float32'), np.ones((4, 1), 'float32'))   # doctest: +SKIP
    """

    def _build(self, *args: Any, **kwargs: Any) -> None:
        self.model_fn: Callable = self.config.get('model_fn')
        if not callable(self.model_fn):
            raise BatchkitTypeError(f"Expected config['model_fn'] of {self._name} to be a callable "
                                    f"model_fn(features, labels, mode, params). Received: {self.model_fn!r:.60}")
        self.params = self.config.get('params') or {}
        self.options = parse_options(self.config, self._name, export_formats=EXPORT_FORMATS)  # before anything is built
        self.seed = self.options.seed
        self.graph = tf.Graph()
        self.session = v1.Session(graph=self.graph)
        self._modes: dict[str, dict] = {}
        self._features = self._labels = None          # placeholders, created from the first batch
        self._known_vars: set = set()
        self._untrained: set = set()                  # names of the variables EVAL mode created
        self._restore_error: ModelError | None = None   # a checkpoint that does not fit the graph
        self._saver = None
        self._restore_from: str | None = None         # see NOTE [ One graph for all modes ]
        self._restore_trainable_only = False
        self._build_lock = threading.RLock()
        with self.graph.as_default():
            if self.seed is not None:
                v1.set_random_seed(self.seed)
            self.global_step = v1.train.get_or_create_global_step()
            self.session.run(self.global_step.initializer)
        self._known_vars = {v.name for v in self.graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)}
        self.model_dir = TFModelDir(self)

    @property
    def _name(self) -> str:
        fn = self.config.get('model_fn')
        return f"TFModel({getattr(fn, '__qualname__', type(fn).__name__)})"

    # --- graph building ---------------------------------------------------------------------------------------
    def _placeholders(self, data: Any, name: str) -> Any:
        def one(value: Any, key: str) -> Any:
            value = np.asarray(value)
            if value.ndim == 0:
                raise BatchkitValueError(f"Expected {name} of {self._name} to be batches (ndim >= 1). Received: "
                                         f"a scalar {key}={value!r:.40}")
            return v1.placeholder(tf.as_dtype(value.dtype), (None,) + value.shape[1:], name=key)
        if isinstance(data, dict):
            with v1.name_scope(name):
                return {k: one(v, k) for k, v in data.items()}
        return one(data, name)

    def _ensure_mode(self, mode: str, features: Any, labels: Any = None) -> dict:
        built = self._modes.get(mode)
        if built is not None:
            return built
        if self._restore_error is not None:
            raise self._restore_error
        with self._build_lock:
            if mode == ModeKeys.EVAL and ModeKeys.TRAIN not in self._modes:    # see NOTE [ Names of optimizer state ]
                self._modes[ModeKeys.TRAIN] = self._build_mode(ModeKeys.TRAIN, features, labels)
            if mode not in self._modes:
                self._modes[mode] = self._build_mode(mode, features, labels)
        return self._modes[mode]

    def _build_mode(self, mode: str, features: Any, labels: Any) -> dict:
        with self.graph.as_default():
            local_before = {v.name for v in self.graph.get_collection(v1.GraphKeys.LOCAL_VARIABLES)}
            if self._features is None:
                self._features = self._placeholders(features, 'features')
            if labels is not None and self._labels is None:
                self._labels = self._placeholders(labels, 'labels')
            # the same name scope in every mode: Adam's beta powers get the names the checkpoint has
            with v1.variable_scope('model', reuse=v1.AUTO_REUSE, auxiliary_name_scope=False), v1.name_scope('model/'):
                spec = self._call_model_fn(mode)
            if mode == ModeKeys.TRAIN:
                with tf.control_dependencies([spec.train_op]):     # the step this very run took
                    fetches = {'loss': spec.loss, 'step': tf.identity(self.global_step.read_value())}
            elif mode == ModeKeys.EVAL:
                fetches = {'loss': spec.loss, 'metrics': {k: v[1] for k, v in (spec.eval_metric_ops or {}).items()}}
            else:
                fetches = {'predictions': spec.predictions}
            # this mode's metric variables only: an initializer over older ones would change ops already run
            local_init = v1.variables_initializer([v for v in self.graph.get_collection(v1.GraphKeys.LOCAL_VARIABLES)
                                                   if v.name not in local_before])
            self._init_new_variables(mode)
            self.session.run(local_init)
        return {'spec': spec, 'fetches': fetches, 'local_init': local_init}

    def _call_model_fn(self, mode: str) -> EstimatorSpec:
        # as tf.estimator did, `mode` and `params` are passed only to a model_fn that takes them
        names = inspect.signature(self.model_fn).parameters
        kwargs = {key: value for key, value in (('mode', mode), ('params', self.params)) if key in names}
        labels = self._labels if mode != ModeKeys.PREDICT else None
        spec = self.model_fn(self._features, labels, **kwargs)
        if not isinstance(spec, EstimatorSpec):
            raise ModelError(f"Expected model_fn of {self._name} to return a batchkit.models.EstimatorSpec in mode "
                             f"{mode!r}. Received: {type(spec).__name__} {spec!r:.60}. Return "
                             f"EstimatorSpec(mode, predictions=..., loss=..., train_op=...).")
        return spec.check(self._name)

    def _init_new_variables(self, mode: str) -> None:
        current = self.graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)
        new = [v for v in current if v.name not in self._known_vars]
        trainable = {v.name for v in self.graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)}
        new_trainable = [v.name for v in new if v.name in trainable]
        if self._modes and new_trainable:
            raise ModelError(
                f"Expected model_fn of {self._name} to share its variables across modes. Received: mode {mode!r} "
                f"created new trainable variables {new_trainable[:4]} after modes {sorted(self._modes)} were built. "
                f"Create Keras layers once (in a closure or in params), or use tf.compat.v1.get_variable, which "
                f"TFModel reuses (variable_scope AUTO_REUSE).")
        if not new:
            return
        self.session.run(v1.variables_initializer(new))
        self._known_vars.update(v.name for v in new)
        self._saver = None                                  # rebuilt over the new variable set
        self.saver()                                        # built now: no graph change after a session.run
        if mode == ModeKeys.EVAL:
            self._untrained.update(v.op.name for v in new)
        if self._restore_from is not None:
            # EVAL's new variables are never trained (e.g. a second optimizer's slots, NOTE [ Names of optimizer
            # state ]): a checkpoint written before the first evaluation lacks them, and they keep their init
            try:
                self._restore_variables(new, self._restore_from, self._restore_trainable_only)
            except ModelError as error:                     # sticky: a retry must not train fresh variables
                self._restore_error = error
                raise

    def _restore_variables(self, variables: list, path: str, trainable_only: bool) -> list:
        """Restore `variables` from the checkpoint at `path`; return the names restored.

        Resuming or loading (`trainable_only` False) restores every variable, as tf.estimator did, and a checkpoint
        that lacks one or holds it with another shape is an error: skipping them would silently continue from
        fresh weights under the checkpoint's global step. A warm start (`trainable_only`) restores the trainable
        variables the checkpoint holds with the same shape and leaves the others initialized.

        Raises:
            ModelError: (not a warm start) a variable missing from the checkpoint (but those only EVAL mode
                created) or stored with another shape.
        """
        stored = dict(tf.train.list_variables(path))
        trainable = {v.name for v in self.graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)}
        if not trainable_only:
            wrong = [f"{v.op.name}: checkpoint {tuple(stored[v.op.name])} vs graph {tuple(v.shape.as_list())}"
                     for v in variables if v.op.name in stored and stored[v.op.name] != v.shape.as_list()]
            wrong += [f"{v.op.name}: not in checkpoint, graph {tuple(v.shape.as_list())}"
                      for v in variables if v.op.name not in stored and v.op.name not in self._untrained]
            if wrong:
                more = f" and {len(wrong) - 4} more" if len(wrong) > 4 else ''
                raise ModelError(
                    f"Expected the checkpoint {path!r} that {self._name} restores to hold every variable of its "
                    f"graph with the graph's shape. Received: {len(wrong)} that do not: "
                    f"{'; '.join(wrong[:4])}{more}. "
                    f"The model_fn or params differ from those that wrote it: give this model a new model_dir, "
                    f"or a new model_dir with warm_start_from=<this checkpoint's model_dir> to start from the "
                    f"trainable variables that still fit.")
        chosen = {v.op.name: v for v in variables if stored.get(v.op.name) == v.shape.as_list()
                  and (not trainable_only or v.name in trainable)}
        if chosen:
            with self.graph.as_default():
                v1.train.Saver(var_list=chosen).restore(self.session, path)
        return sorted(chosen)

    def saver(self) -> Any:
        """The tf.compat.v1.train.Saver over all global variables (rebuilt when a mode adds variables)."""
        if self._saver is None:
            with self.graph.as_default():
                self._saver = v1.train.Saver(var_list=self.graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES),
                                             max_to_keep=None, save_relative_paths=True)
        return self._saver

    # --- feeding ----------------------------------------------------------------------------------------------
    def _feed(self, feed: dict, holders: Any, data: Any, what: str) -> None:
        if isinstance(holders, dict):
            if not isinstance(data, dict) or set(data) != set(holders):
                got = sorted(data) if isinstance(data, dict) else type(data).__name__
                raise BatchkitValueError(f"Expected {what} of {self._name} to be a dict with keys {sorted(holders)}, "
                                         f"as in its first batch. Received: {got}")
            for key, holder in holders.items():
                self._feed(feed, holder, data[key], f'{what}[{key!r}]')
            return
        value = np.asarray(data)
        expected = holders.shape
        if isinstance(data, dict) or not expected.is_compatible_with(value.shape):
            got = f"a dict with keys {sorted(data)}" if isinstance(data, dict) else f"shape {value.shape}"
            raise BatchkitValueError(f"Expected {what} of {self._name} to have shape {tuple(expected.as_list())} "
                                     f"(None: any size), as the graph was built for. Received: {got}. "
                                     f"Feed batches shaped like the first one.")
        feed[holders] = value

    def _run(self, mode: str, features: Any, labels: Any = None) -> dict:
        if mode != ModeKeys.PREDICT and labels is None:
            raise BatchkitValueError(f"Expected labels for {self._name} in mode {mode!r}. Received: None. "
                                     f"Call train(features, labels) / test(features, labels).")
        built = self._ensure_mode(mode, features, labels)
        feed: dict = {}
        self._feed(feed, self._features, features, 'features')
        if mode != ModeKeys.PREDICT:
            self._feed(feed, self._labels, labels, 'labels')
        return self.session.run(built['fetches'], feed_dict=feed)

    # --- public API -------------------------------------------------------------------------------------------
    def train(self, features: Any, labels: Any) -> float:
        """One optimizer step on a batch; returns the loss (a Python float)."""
        out = self._run(ModeKeys.TRAIN, features, labels)
        loss = float(out['loss'])
        self.model_dir.after_train_step(int(out['step']), loss)
        return loss

    def test(self, features: Any, labels: Any) -> dict:
        """Loss on a batch and the eval metrics accumulated since the last `reset_metrics()`, as floats.

        In a pipeline run, the first `test_model` step on the model resets them, so each run is one evaluation,
        as each `estimator.evaluate` was.
        """
        out = self._run(ModeKeys.EVAL, features, labels)
        result = {'loss': float(out['loss'])}
        for key, value in out['metrics'].items():
            value = np.asarray(value)
            result[key] = float(value) if value.size == 1 else value
        self.model_dir.after_eval(result)
        return result

    def reset_metrics(self) -> None:
        """Zero the accumulated eval metrics (the local variables of `tf.compat.v1.metrics`), as between evaluations."""
        for built in self._modes.values():
            self.session.run(built['local_init'])

    def predict(self, features: Any) -> Any:
        """Predictions for a batch: numpy (a dict of arrays when model_fn returns a dict)."""
        return _to_numpy(self._run(ModeKeys.PREDICT, features)['predictions'])

    @property
    def step(self) -> int:
        """The global step: optimizer steps taken, restored ones included."""
        return int(self.session.run(self.global_step))

    def save(self, path: str | None = None) -> str:
        """Write a checkpoint now (into model_dir, or the directory `path`); returns its prefix."""
        return self.model_dir.save(path)

    def load(self, path: str | None = None) -> None:
        """Restore the latest checkpoint of model_dir, or the checkpoint at `path` (a directory or a prefix)."""
        if not hasattr(self, 'graph'):               # load_model builds with build=False, then loads
            self._build()
        self.model_dir.restore(path)

    def on_evaluation_start(self) -> None:
        """Called by a run's first `test_model` step on this model: the eval metrics start from zero (the local
        variables of the other modes, a model_fn's own, are left alone)."""
        if ModeKeys.EVAL in self._modes:
            self.session.run(self._modes[ModeKeys.EVAL]['local_init'])

    def on_run_end(self) -> None:
        """Called by the pipeline at the end of a run: the end-of-run checkpoint."""
        self.model_dir.on_run_end()

    def export(self, path: str, features: Any = None) -> str:
        """Write a SavedModel (signature from export_outputs, else predictions) that `tf.saved_model.load` serves.

        `features` (a batch) builds the PREDICT graph if no batch has reached the model yet.
        """
        return self.model_dir.export(path, features)

    def close(self) -> None:
        """Write the final checkpoint and summaries, and close the session."""
        self.model_dir.close()
        self.session.close()
