"""KerasModel: a compiled Keras 3 model trained per batch, with the model_dir workflow (checkpoints, resume, export)."""
from __future__ import annotations

import contextlib
import inspect
import os
import threading
import uuid
import warnings
from typing import Any

import numpy as np

from .._optional import import_optional
from ..errors import BatchkitTypeError, BatchkitValueError, ModelError
from .base import BaseModel
from .model_dir import ModelDir, parse_options

keras = import_optional('keras', extra='tf')

__all__ = ['KerasModel']

CHECKPOINT_FILE = 'model.keras'
EXPORT_FORMATS = ('tf_saved_model', 'onnx', 'openvino', 'litert', 'torch')     # keras.Model.export's, Keras 3.15


def _build_with(builder: Any, config: dict) -> Any:
    """`builder(config)`, or `builder()` for a builder that takes no argument (`def build(): return
    keras.Sequential(...)`, as Keras users write it)."""
    try:
        takes_none = not inspect.signature(builder).parameters
    except (TypeError, ValueError):           # no signature to read (some builtins): pass the config
        takes_none = False
    return builder() if takes_none else builder(config)


class KerasModel(BaseModel):
    """A Keras model in a pipeline: `train(x, y)`, `test(x, y)`, `predict(x)`, checkpoints in `model_dir`.

    Config: `model` (a `keras.Model`, or a callable `model(config) -> keras.Model`, or `model()` when it takes no
    argument; in a dynamic pipeline model the config may take shapes from the first batch), `loss`, `optimizer`
    (default 'adam'), `metrics`, `use_lock` (default True: calls on one model are serialized), `name` (used in
    signals) and the model_dir options of API.md section 5. Or subclass and return a compiled model from `_build`.

    `train` and `test` return the loss as a float when the model has no compiled metrics, else a dict of floats
    `{'loss': ..., <metric>: ...}`; `predict` returns numpy.

    >>> import keras
    >>> m = KerasModel({'model': keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), 'loss': 'mse'})
    >>> isinstance(m.train(np.zeros((4, 2), 'float32'), np.zeros((4, 1), 'float32')), float)
    True
    """

    # --- building ----------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        name = self.config.get('name')
        self.name = name if isinstance(name, str) else type(self).__name__
        self.options = parse_options(self.config, owner=self._what(), export_formats=EXPORT_FORMATS)
        self.use_lock = bool(self.config.get('use_lock', True))
        self._lock: Any = threading.RLock() if self.use_lock else contextlib.nullcontext()
        self.history: dict[str, list[dict]] = {'train': [], 'test': []}
        self._eval: list[dict] = []
        self._count: list | None = None          # NOTE [ Counted steps ]
        self._shape_of: tuple | None = None

    def _attach(self) -> None:
        self.model_dir = ModelDir(self.options, owner=self, name=self.name)
        self.model_dir.claim(self._fingerprint(), source=self._source())

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Create the compiled Keras model (from the config or `_build`); resume from model_dir or warm start."""
        self._setup()
        if self.options.seed is not None:
            keras.utils.set_random_seed(self.options.seed)
        built = self._build(*args, **kwargs)
        self.model = self._check_model(built if built is not None else self._from_config())
        self._attach()
        latest = self.model_dir.latest()
        if latest is not None:
            self._restore(os.path.join(latest.path, CHECKPOINT_FILE))
        elif self.options.warm_start_from is not None:
            self._warm_start(self.options.warm_start_from)
        self.model_dir.resumed_at(self.step)
        return self.model

    def _what(self) -> str:
        return f"{type(self).__name__} '{self.config.get('name') or type(self).__name__}'"

    def _from_config(self) -> Any:
        spec = self.config.get('model')
        if spec is None:
            raise ModelError(f"Expected {self._what()} to get config['model'] (a keras.Model or a callable building "
                             f"one) or a subclass whose `_build` returns a compiled keras.Model. Received: neither.")
        model = spec if isinstance(spec, keras.Model) else _build_with(spec, self.config) if callable(spec) else spec
        if not isinstance(model, keras.Model):
            raise BatchkitTypeError(f"Expected config['model'] of {self._what()} to be a keras.Model or a callable "
                                    f"returning one. Received: {type(model).__name__} {model!r:.60}")
        given = [k for k in ('loss', 'optimizer', 'metrics') if self.config.get(k) is not None]
        if model.compiled and given:
            raise ModelError(f"Expected either a compiled Keras model or config {given} to compile it, for "
                             f"{self._what()}. Received: both, model '{model.name}' already compiled (optimizer "
                             f"{type(model.optimizer).__name__}, loss {model.loss!r:.60}). Drop config {given}, or "
                             f"pass the model uncompiled so that the config compiles it.")
        if not model.compiled and self.config.get('loss') is not None:
            optimizer = self.config.get('optimizer', 'adam')
            self._check_identifiers(self.config['loss'], optimizer)
            model.compile(optimizer=optimizer, loss=self.config['loss'], metrics=self.config.get('metrics'))
        return model

    def _check_identifiers(self, loss: Any, optimizer: Any) -> None:
        """Resolve string losses and the optimizer now, so that a typo fails at construction, naming it."""
        losses = loss.values() if isinstance(loss, dict) else loss if isinstance(loss, (list, tuple)) else [loss]
        for name in losses:
            if isinstance(name, str):
                self._resolve(keras.losses.get, name, 'loss', "loss name (e.g. 'mse', 'binary_crossentropy'), "
                              "a keras.losses.Loss or a function")
        if isinstance(optimizer, (str, dict)):
            self._resolve(keras.optimizers.get, optimizer, 'optimizer',
                          "optimizer name (e.g. 'adam', 'sgd') or a keras.optimizers.Optimizer")

    def _resolve(self, get: Any, identifier: Any, key: str, expected: str) -> None:
        try:
            get(identifier)
        except ValueError as exc:
            raise ModelError(f"Expected config[{key!r}] of {self._what()} to be a Keras {expected}. Received: "
                             f"{identifier!r:.60}, which Keras does not know ({exc}).") from None

    def _check_model(self, model: Any) -> Any:
        if not isinstance(model, keras.Model):
            raise BatchkitTypeError(f"Expected `_build` of {self._what()} to return a keras.Model. "
                                    f"Received: {type(model).__name__} {model!r:.60}")
        if not model.compiled or model.optimizer is None:
            raise ModelError(f"Expected the Keras model of {self._what()} to be compiled. Received: model "
                             f"'{model.name}', not compiled. Call model.compile(optimizer=..., loss=...) in `_build`, "
                             f"or give config['loss'] (and 'optimizer', 'metrics') to compile it.")
        return model

    def _fingerprint(self) -> dict:
        owner = type(self) if type(self) is not KerasModel else self.config.get('model')
        owner = owner if inspect.isclass(owner) or callable(owner) and not isinstance(owner, keras.Model) else None
        who = f"{owner.__module__}.{owner.__qualname__}" if owner is not None else type(self.model).__name__
        layers = [[type(layer).__name__, [list(w.shape) for w in layer.weights]] for layer in self.model.layers]
        return {'model': who, 'framework': 'keras', 'layers': layers}

    def _source(self) -> Any:
        if type(self) is not KerasModel:
            return type(self)
        spec = self.config.get('model')
        if isinstance(spec, keras.Model):
            cls = type(spec)
            return None if cls.__module__.startswith('keras') else cls
        return spec if callable(spec) else None

    # --- the step counter and checkpoints ---------------------------------------------------------------------
    @property
    def optimizer(self) -> Any:
        """The Keras model's optimizer."""
        return self.model.optimizer

    @property
    def step(self) -> int:
        """The global step: the optimizer's iterations (restored with a checkpoint)."""
        return int(self.model.optimizer.iterations.numpy())

    def _counted_step(self) -> int:
        """The step after one more `train_on_batch`, counted here rather than read from the optimizer.

        NOTE [ Counted steps ]
        Reading `optimizer.iterations` is an eager TensorFlow op (tens to hundreds of us, a tenth of a small
        model's train step), so `train` reads it once per Keras model and then counts its own calls, under the
        lock (with `use_lock=False` it reads every time). It is read again for another Keras model or optimizer (a restore or load replaces them) and at the
        end of every pipeline run, so steps taken on `self.model` outside `train` (e.g. `model.fit` between two
        runs) are counted from then on; `step` always reads the optimizer.
        """
        model = self.model
        if not self.use_lock:        # unserialized calls could not count exactly: read each time
            return self.step
        if self._count is None or self._count[0] is not model or self._count[1] is not model.optimizer:
            self._count = [model, model.optimizer, self.step]
        else:
            self._count[2] += 1
        return self._count[2]

    def _restore(self, path: str) -> None:
        """Load a `.keras` file's weights and optimizer state into the model built from the config, in place.

        NOTE [ Restoring in place ]
        The config (or `_build`) has just built and compiled the model, so a checkpoint only has to give it its
        variables: `keras.models.load_model` would instead rebuild the model from the file, which needs every
        custom loss, metric and layer as `custom_objects` (and `safe_mode=False` for lambdas), and would replace a
        `config['model']` object the user still holds. The optimizer is built first, so that its slots exist to be
        assigned; Keras only warns when the file's optimizer state does not fit, which is an error here unless
        the file was saved before the first step (its optimizer unbuilt: nothing to restore).
        """
        model, optimizer = self.model, self.model.optimizer
        unbuilt = None if optimizer.built else len(optimizer.variables)
        try:
            if not optimizer.built:
                optimizer.build(model.trainable_variables)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                model.load_weights(path)
        except Exception as exc:
            raise ModelError(f"Expected {self._what()} to load its checkpoint {path!r} into Keras model "
                             f"'{model.name}'. Received: {type(exc).__name__}: {exc}. A checkpoint of a model "
                             f"built differently cannot be restored into this one.") from exc
        for w in caught:
            text = str(w.message)
            if 'Skipping variable loading for optimizer' in text:
                if unbuilt is not None and f"saved optimizer has {unbuilt} variables" in text:
                    continue                       # saved before the first step: a fresh optimizer state
                raise ModelError(f"Expected the checkpoint {path!r} to hold the state of {self._what()}'s "
                                 f"optimizer ({type(optimizer).__name__}). Received: {text.strip()} Give the "
                                 f"same optimizer as when it was saved, or use `warm_start_from` (weights only).")
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self._count = None                         # the step is read again (NOTE [ Counted steps ])

    def _load_whole(self, path: str) -> None:
        """With no model yet (`build=False`), the file is the whole model; the config names custom objects."""
        custom: dict[str, Any] = {}
        for key in ('loss', 'metrics', 'model'):       # one object, a list, or a dict per output
            value = self.config.get(key)
            objects = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) \
                else [value]
            custom.update({obj.__name__: obj for obj in objects
                           if callable(obj) and hasattr(obj, '__name__') and not isinstance(obj, keras.Model)})
        custom.update(self.config.get('custom_objects') or {})
        try:
            self.model = self._check_model(keras.models.load_model(path, custom_objects=custom or None))
        except Exception as exc:
            raise ModelError(f"Expected {self._what()} to load the Keras model file {path!r}. Received: "
                             f"{type(exc).__name__}: {exc}. Custom functions and layers must be given in "
                             f"config['custom_objects'] (name -> object), or build the model from the config "
                             f"and then load.") from exc

    def _warm_start(self, source: str) -> None:
        found = ModelDir.find(source)
        path = os.path.join(found.path, CHECKPOINT_FILE) if found is not None else source
        if not os.path.isfile(path):
            raise ModelError(f"Expected `warm_start_from` of {self._what()} to be a model_dir with checkpoints, a "
                             f"checkpoint directory or a .keras file. Received: {source!r}, which is none of them.")
        self.model.set_weights(keras.models.load_model(path, compile=False).get_weights())

    def save_checkpoint(self) -> Any:
        """Checkpoint now into model_dir (atomically); the Checkpoint written."""
        with self._lock:
            return self.model_dir.save(self.step, lambda tmp: self.model.save(os.path.join(tmp, CHECKPOINT_FILE)))

    def on_run_end(self) -> None:
        """Called by the pipeline when a run ends: write pending eval summaries and checkpoint the last step."""
        with self._lock:
            self._count = None          # read the step again next run (NOTE [ Counted steps ])
            self.model_dir.flush_summaries(self.step)    # the last, partial window of train scalars
            if self._eval:  # the means over this run's test batches, at the current step (as Estimator's eval)
                means = {k: float(np.mean([e[k] for e in self._eval])) for k in self._eval[0]}
                self.model_dir.summarize(self.step, means, subdir='eval', force=True)
                self._eval = []
            latest = self.model_dir.latest()
            if self.step > 0 and (latest is None or latest.step != self.step):
                self.save_checkpoint()

    # --- per batch ---------------------------------------------------------------------------------------------
    def _check_shapes(self, x: Any, y: Any = None) -> None:
        model = self.model
        if self._shape_of is None or self._shape_of[0] is not model:      # a property Keras recomputes per call
            self._shape_of = (model, model.input_shape)
        expected = self._shape_of[1]
        for name, value in (('x', x), ('y', y)):
            if isinstance(value, (str, bytes)):        # Keras would say only "Only input tensors may be passed"
                raise BatchkitTypeError(f"Expected {name} of {self._what()} to be an array (or a list or dict of "
                                        f"arrays). Received: {type(value).__name__} {value!r:.40}. Pass the batch's "
                                        f"data, e.g. B('images').")
        if isinstance(expected, list) or not hasattr(x, 'shape'):
            return
        got = tuple(np.shape(x))
        if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
            raise BatchkitValueError(f"Expected x of {self._what()} (Keras model '{self.model.name}') to have shape "
                                     f"{tuple(expected)}. Received: x with shape {got}. Reshape the batch or build "
                                     f"the model for this shape.")
        if y is not None and hasattr(y, 'shape') and np.ndim(y) and np.shape(y)[0] != got[0]:
            raise BatchkitValueError(f"Expected y of {self._what()} (Keras model '{self.model.name}') to have as many "
                                     f"items as x ({got[0]}). Received: y with shape {tuple(np.shape(y))}, x with "
                                     f"shape {got}.")

    @staticmethod
    def _result(values: dict) -> float | dict[str, float]:
        values = {k: float(v) for k, v in values.items()}
        return values['loss'] if len(values) == 1 and 'loss' in values else values

    def _check_targets(self, y: Any, method: str) -> None:
        if y is None and self.model.loss is not None:        # Keras would say only "None values not supported"
            raise BatchkitValueError(f"Expected y for {method} of {self._what()}, whose Keras model is compiled with "
                                     f"loss {self.model.loss!r:.60}. Received: y=None. Pass the targets, e.g. "
                                     f"{method}_model(name, x=B('images'), y=B('labels')).")

    def train(self, x: Any, y: Any = None, **kwargs: Any) -> float | dict[str, float]:
        """One gradient step on (x, y); the loss (or loss and metrics); checkpoints and summaries when due."""
        self._check_shapes(x, y)
        self._check_targets(y, 'train')
        with self._lock:
            values = self.model.train_on_batch(x, y, return_dict=True, **kwargs)
            values = {k: float(v) for k, v in values.items()}
            step = self._counted_step()
            self.history['train'].append({'step': step, **values})
            self.model_dir.summarize(step, values)
            if self.model_dir.due(step):
                self.save_checkpoint()
        return self._result(values)

    def test(self, x: Any, y: Any = None, **kwargs: Any) -> float | dict[str, float]:
        """The loss (or loss and metrics) on (x, y), without training; eval summaries are written at run end."""
        self._check_shapes(x, y)
        self._check_targets(y, 'test')
        with self._lock:
            values = {k: float(v) for k, v in self.model.test_on_batch(x, y, return_dict=True, **kwargs).items()}
            self.history['test'].append({'step': self.step, **values})
            self._eval.append(values)
        return self._result(values)

    def predict(self, x: Any, **kwargs: Any) -> np.ndarray:
        """The model's output on x, as numpy."""
        self._check_shapes(x)
        with self._lock:
            out = self.model.predict_on_batch(x, **kwargs)
        return np.asarray(out) if not isinstance(out, (list, dict)) else out

    # seed 003's names
    train_on_batch = train
    test_on_batch = test
    predict_on_batch = predict

    def summary(self) -> str:
        """The Keras summary of the model, printed and returned."""
        lines: list[str] = []
        self.model.summary(print_fn=lambda line, *a, **k: lines.append(line))
        text = '\n'.join(lines)
        print(text)
        return text

    # --- files -------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, **kwargs: Any) -> None:
        """Save the model, optimizer state included, to a `.keras` file (atomically)."""
        path = os.fspath(path)
        if not path.endswith('.keras'):
            raise BatchkitValueError(f"Expected a path ending in '.keras' to save {self._what()}. Received: {path!r}")
        folder = os.path.dirname(path) or '.'
        if not os.path.isdir(folder):      # as keras' model.save: the folder is not created
            raise ModelError(f"Expected the folder of {path!r} to exist to save {self._what()}. Received: "
                             f"{folder!r}, which {'is not a folder' if os.path.exists(folder) else 'does not exist'}."
                             f" Create it first (os.makedirs).")
        tmp = os.path.join(folder, f".tmp-{os.getpid()}-{uuid.uuid4().hex}.keras")
        with self._lock:
            try:
                self.model.save(tmp, **kwargs)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)

    def load(self, path: str | os.PathLike, **kwargs: Any) -> None:
        """Load a `.keras` file saved by `save`: weights and optimizer state (training continues where it stopped)."""
        path = os.fspath(path)
        if not hasattr(self, 'model'):      # created with build=False (load_model): the file is the whole model
            self._setup()
            self._load_whole(path)
            self._attach()
            self.model_dir.resumed_at(self.step)
            return
        with self._lock:
            self._restore(path)
            self.model_dir.resumed_at(self.step)

    def export(self, path: str | os.PathLike) -> str:
        """Write a servable model (a TF SavedModel, or `export_format`); `tf.saved_model.load` serves it."""
        with self._lock:
            self.model.export(os.fspath(path), format=self.options.export_format or 'tf_saved_model', verbose=False)
        return os.fspath(path)
