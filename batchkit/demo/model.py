"""The demo's network: a small convolutional classifier, built for the shape of the first batch."""
from __future__ import annotations

from typing import Any

__all__ = ['conv_net']


def conv_net(config: dict) -> Any:
    """A compiled-later Keras CNN for `config['input_shape']` images and `config['num_classes']` classes.

    >>> net = conv_net({'input_shape': (8, 8, 1), 'num_classes': 10})   # doctest: +SKIP
    """
    import keras
    layers = keras.layers
    return keras.Sequential([
        keras.Input(tuple(config['input_shape'])),
        layers.Conv2D(32, 3, padding='same', activation='relu'),
        layers.Conv2D(64, 3, padding='same', activation='relu'),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(128, activation='relu'),
        layers.Dropout(0.3),
        layers.Dense(int(config['num_classes']), activation='softmax'),
    ], name='digits_cnn')
