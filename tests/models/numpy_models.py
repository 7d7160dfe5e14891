"""Plain-numpy models that really learn (gradient steps), and batch classes defining @model methods, for tests."""
from __future__ import annotations

import threading
import time

import numpy as np

from batchkit import ArrayBatch, action, model
from batchkit.models import BaseModel

N_FEATURES = 4
TRUE_W = np.array([1.5, -2.0, 0.5, 1.0])
TRUE_B = 0.5


def make_regression(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    return x, x @ TRUE_W + TRUE_B + 0.01 * rng.normal(size=n)


def make_classification(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    return x, (x @ TRUE_W + TRUE_B > 0).astype(np.int64)


class Counter:
    """A thread-safe counter (of builds, calls, ...)."""

    def __init__(self) -> None:
        self.value, self._lock = 0, threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.value += 1
            return self.value

    def reset(self) -> None:
        with self._lock:
            self.value = 0


# --- BaseModel subclasses -------------------------------------------------------------------------------------
class LinearRegression(BaseModel):
    """y ~ x @ w + b, trained by one gradient step of the mean squared error per `train` call."""

    builds = Counter()

    def _build(self) -> None:
        LinearRegression.builds()
        n = self.config.get('n_features', N_FEATURES)
        if isinstance(n, tuple):
            (n,) = n
        self.lr = self.config.get('lr', 0.1)
        self.w, self.b, self.steps = np.zeros(int(n)), 0.0, 0
        self.built = True

    def train(self, x: np.ndarray, y: np.ndarray) -> float:
        err = x @ self.w + self.b - y
        self.w = self.w - self.lr * 2 * x.T @ err / len(x)
        self.b = self.b - self.lr * 2 * err.mean()
        self.steps += 1
        return float(np.mean(err ** 2))

    def test(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean((self.predict(x) - y) ** 2))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self.w + self.b

    def save(self, path: str) -> None:
        np.savez(path, w=self.w, b=self.b, steps=self.steps)

    def load(self, path: str) -> None:
        with np.load(path) as data:
            self.w, self.b, self.steps = data['w'].copy(), float(data['b']), int(data['steps'])
        self.lr = self.config.get('lr', 0.1)


class LogisticRegression(BaseModel):
    """A binary classifier; `train` returns (loss, accuracy) of the batch before the step."""

    def _build(self) -> None:
        self.w, self.b, self.lr = np.zeros(self.config.get('n_features', N_FEATURES)), 0.0, self.config.get('lr', 0.5)

    def _proba(self, x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(x @ self.w + self.b)))

    def train(self, x: np.ndarray, y: np.ndarray, output=('loss', 'accuracy')):
        """One gradient step; returns the named output(s) of the batch before the step."""
        p = np.clip(self._proba(x), 1e-9, 1 - 1e-9)
        values = {'loss': float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
                  'accuracy': float(np.mean((p > 0.5) == y))}
        self.w = self.w - self.lr * x.T @ (p - y) / len(x)
        self.b = self.b - self.lr * float(np.mean(p - y))
        return values[output] if isinstance(output, str) else [values[o] for o in output]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (self._proba(x) > 0.5).astype(np.int64)

    def save(self, path: str) -> None:
        np.savez(path, w=self.w, b=self.b)

    def load(self, path: str) -> None:
        with np.load(path) as data:
            self.w, self.b = data['w'].copy(), float(data['b'])


class FeedDictModel(LinearRegression):
    """A model with TensorFlow-1-like arguments: train(fetches='loss', feed_dict={'x': ..., 'y': ...})."""

    def train(self, fetches=None, feed_dict=None):
        loss = super().train(feed_dict['x'], feed_dict['y'])
        return {'loss': loss, 'steps': self.steps}[fetches] if fetches else None


class OverlapDetector(LinearRegression):
    """A linear regression whose `train` notices calls that overlap in time (it sleeps inside)."""

    def _build(self) -> None:
        super()._build()
        self.active, self.overlaps, self.calls = 0, 0, 0
        self._guard = threading.Lock()

    def train(self, x: np.ndarray, y: np.ndarray) -> float:
        with self._guard:
            self.active += 1
            if self.active > 1:
                self.overlaps += 1
        try:
            time.sleep(0.0005)
            loss = super().train(x, y)
            self.calls += 1        # not atomic on purpose: overlaps would lose counts
            return loss
        finally:
            with self._guard:
                self.active -= 1


class RecordingModel(BaseModel):
    """Records how it was made: the config it got, whether it was built, what it loaded."""

    def _build(self) -> None:
        self.built = True

    def load(self, **kwargs) -> None:
        self.loaded = kwargs


class FailingModel(BaseModel):
    def _build(self) -> None:
        raise ValueError('bad layer size')


class NoTrainModel:
    """A model with predict but neither train nor train_on_batch."""

    def __init__(self, config=None) -> None:
        self.config = config

    def predict(self, x):
        return x


# --- the cardio contract: no BaseModel ------------------------------------------------------------------------
class CardioModel:
    """A cardio-style model: train_on_batch / test_on_batch / predict_on_batch / save / load, no BaseModel."""

    def __init__(self, config=None) -> None:
        self.config = dict(config or {})
        self.w = None
        self.hist = []
        if 'input_shape' in self.config:
            self.build(self.config['input_shape'])
        if 'path' in self.config:
            self.load(self.config['path'])

    def build(self, input_shape) -> 'CardioModel':
        self.w, self.b = np.zeros(int(np.prod(input_shape))), 0.0
        return self

    def train_on_batch(self, x, y, lr: float = 0.1) -> float:
        err = x @ self.w + self.b - y
        self.w = self.w - lr * 2 * x.T @ err / len(x)
        self.b = self.b - lr * 2 * float(err.mean())
        loss = float(np.mean(err ** 2))
        self.hist.append(loss)
        return loss

    def test_on_batch(self, x, y) -> float:
        return float(np.mean((self.predict_on_batch(x) - y) ** 2))

    def predict_on_batch(self, x) -> np.ndarray:
        return x @ self.w + self.b

    def save(self, path) -> None:
        np.savez(path, w=self.w, b=self.b)

    def load(self, path) -> None:
        with np.load(path) as data:
            self.w, self.b = data['w'].copy(), float(data['b'])


STATIC_BUILDS, DYNAMIC_BUILDS, FC_BUILDS = Counter(), Counter(), Counter()


# --- batch classes with @model definitions (seed 000 and 003) -------------------------------------------------
class RegBatch(ArrayBatch):
    """Seed 000: a static and a dynamic @model, with actions bound to them."""
    components = ('images', 'labels')

    @property
    def images_shape(self):
        return self.images.shape[1:]

    @model(mode='static')
    def basic_model():
        STATIC_BUILDS()
        return {'w': np.zeros(N_FEATURES), 'b': np.zeros(1), 'steps': [0]}

    @model(mode='dynamic')
    def advanced_model(self, config=None):
        DYNAMIC_BUILDS()
        config = config or {}
        return dict(w=np.zeros(self.images.shape[1:]), b=np.zeros(1), lr=config.get('lr', 0.1), losses=[])

    @action(model='basic_model')
    def train_basic(self, model_spec, lr=0.1):
        _gd_step(model_spec, self.images, self.labels, lr)
        model_spec['steps'][0] += 1
        return self

    @action(model='basic_model')
    def evaluate_basic(self, model_spec):
        self.mse = float(np.mean((self.images @ model_spec['w'] + model_spec['b'] - self.labels) ** 2))
        return self

    @action(model='advanced_model', use_lock='some_model_lock')
    def train_advanced(self, model_spec):
        model_spec['losses'].append(_gd_step(model_spec, self.images, self.labels, model_spec['lr']))
        return self

    @action(model='advanced_model', use_lock='some_model_lock')
    def evaluate_advanced(self, model_spec):
        self.mse = float(np.mean((self.images @ model_spec['w'] + model_spec['b'] - self.labels) ** 2))
        return self

    @action
    def train_in_batch(self, model_name):
        """Seed 001/002: an action not tied to a model."""
        model = self.get_model_by_name(model_name)
        self.loss = model.train(self.images, self.labels)
        return self

    @action
    def peek_model(self, model_name):
        self.model_seen = self.get_model_by_name(model_name)
        return self

    @action
    def use_model(self, model):
        """Gets a model through M('name')."""
        self.predictions = model.predict(self.images)
        return self


def _gd_step(spec: dict, x: np.ndarray, y: np.ndarray, lr: float) -> float:
    err = x @ spec['w'] + spec['b'] - y
    spec['w'] -= lr * 2 * x.T @ err / len(x)
    spec['b'] -= lr * 2 * err.mean()
    return float(np.mean(err ** 2))


class SessionBatch(ArrayBatch):
    """Seed 000: an old-style batch action `train_model(self, model_spec, session)` wins over the built-in."""
    components = ('images', 'labels')

    @model(mode='static')
    def basic_model():
        return [np.zeros(N_FEATURES), np.zeros(1)]

    @action(model='basic_model')
    def train_model(self, model_spec, session):
        w, b = model_spec
        session['losses'].append(_gd_step({'w': w, 'b': b}, self.images, self.labels, session['lr']))
        return self


class CardioBatch(ArrayBatch):
    """Seed 003: a dynamic @model `fc_model(batch, config=None)` and cardio-style model actions."""
    components = ('signal', 'target')

    @model(mode='dynamic')
    def fc_model(batch, config=None):
        FC_BUILDS()
        config = config or {}
        return CardioModel(config).build(batch.signal[0].shape) if 'path' not in config else CardioModel(config)

    @action
    def train_on_batch(self, model_name, lr=0.1):
        model = self.get_model_by_name(model_name)
        loss = model.train_on_batch(self.signal, self.target, lr=lr)
        self.pipeline.variables.update('train_loss', loss, 'a')
        return self

    @action
    def test_on_batch(self, model_name):
        model = self.get_model_by_name(model_name)
        self.pipeline.variables.update('test_loss', model.test_on_batch(self.signal, self.target), 'a')
        return self

    @action
    def predict_on_batch(self, model_name):
        model = self.get_model_by_name(model_name)
        self.pipeline.variables.update('prediction', model.predict_on_batch(self.signal), 'a')
        return self
