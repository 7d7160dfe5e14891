"""Small Keras models and a separable data set for the KerasModel tests."""
from __future__ import annotations

import keras
import numpy as np

from batchkit import ArrayBatch, Dataset
from batchkit.models import KerasModel

N_FEATURES = 4


def separable(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x ~ N(0, 1)^4; y = 1 where a fixed linear form is positive: linearly separable."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype('float32')
    y = (x @ np.array([1.5, -2.0, 1.0, 0.5], 'float32') > 0).astype('float32')[:, None]
    return x, y


def mlp(config: dict | None = None) -> keras.Model:
    """A 4-16-1 classifier; config may give `input_shape` (a dynamic model's shape from the first batch)."""
    shape = tuple((config or {}).get('input_shape', (N_FEATURES,)))
    return keras.Sequential([keras.Input(shape), keras.layers.Dense(16, activation='relu'),
                             keras.layers.Dense(1, activation='sigmoid')], name='mlp')


def compiled_config(**extra) -> dict:
    return {'model': mlp, 'loss': 'binary_crossentropy', 'optimizer': 'adam', 'metrics': ['accuracy'], **extra}


class SubclassedNet(KerasModel):
    """Seed 003's KerasBaseModel style: `_build` returns a compiled keras.Model."""

    def _build(self):
        model = mlp(self.config)
        model.compile(loss='binary_crossentropy', optimizer=keras.optimizers.Adam(0.05), metrics=['accuracy'])
        return model


class XYBatch(ArrayBatch):
    components = ('images', 'labels')


def dataset(n: int = 256, seed: int = 0) -> Dataset:
    x, y = separable(n, seed)
    return Dataset(len(x), batch_class=XYBatch, preloaded={'images': x, 'labels': y})


def mae_loss(y, p):
    """A plain Python loss function: Keras cannot find it by name when it loads a `.keras` file."""
    return keras.ops.mean(keras.ops.abs(y - p))
