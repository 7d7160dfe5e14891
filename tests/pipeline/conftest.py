"""Fixtures of the pipeline tests: a small dataset whose rows name their items, batch classes, a tiny model."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import pytest

from batchkit import ArrayBatch, Dataset, action, signals
from batchkit.models import BaseModel


class PipeBatch(ArrayBatch):
    """Rows of `images` hold their item's number; actions record what they receive."""
    components = ('images', 'labels')

    @action
    def normalize(self, scale: float = 2.) -> 'PipeBatch':
        self.images = self.images / scale
        return self

    @action
    def add(self, value: Any = 1) -> 'PipeBatch':
        self.images = self.images + value
        return self

    @action
    def record(self, *args: Any, **kwargs: Any) -> 'PipeBatch':
        """Keep the (evaluated) arguments on the batch, to look at them after the run."""
        self.got = (args, kwargs)
        return self

    @action
    def log(self, events: list, tag: Any = None) -> 'PipeBatch':
        events.append((tag, self.indices.tolist()))
        return self

    def not_an_action(self) -> None:
        """A plain method: chaining it is an error with a hint."""


class ClashBatch(PipeBatch):
    """Old-style actions named like built-in pipeline methods: they win over the built-ins."""

    @action
    def train_model(self, *args: Any, **kwargs: Any) -> 'ClashBatch':
        self.got = ('train_model', args, kwargs)
        return self

    @action
    def update(self, *args: Any, **kwargs: Any) -> 'ClashBatch':
        self.got = ('update', args, kwargs)
        return self

    @action
    def call(self, *args: Any, **kwargs: Any) -> 'ClashBatch':
        self.got = ('call', args, kwargs)
        return self

    @action
    def init_variable(self, *args: Any, **kwargs: Any) -> 'ClashBatch':
        self.got = ('init_variable', args, kwargs)
        return self


class Summer(BaseModel):
    """A tiny model: `train(x)` counts calls and returns the sum of x; `predict(x)` doubles x."""

    def _build(self) -> None:
        self.calls = 0

    def train(self, x: np.ndarray) -> float:
        self.calls += 1
        return float(np.sum(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x * 2


N_ITEMS = 10


@pytest.fixture
def images() -> np.ndarray:
    """Row i of the images is filled with i."""
    return np.repeat(np.arange(N_ITEMS, dtype=np.float64), 4).reshape(N_ITEMS, 4)


@pytest.fixture
def ds(images: np.ndarray) -> Dataset:
    """10 items of PipeBatch: images row i == i, labels 10 * i."""
    return Dataset(N_ITEMS, batch_class=PipeBatch, preloaded={'images': images, 'labels': np.arange(N_ITEMS) * 10})


@pytest.fixture
def clash_ds(images: np.ndarray) -> Dataset:
    return Dataset(N_ITEMS, batch_class=ClashBatch, preloaded={'images': images, 'labels': np.arange(N_ITEMS) * 10})


@pytest.fixture
def listen() -> Iterator[Callable[[str, Any], list]]:
    """`listen('batch_processed', sender)` -> the list its (sender, payload) calls go to; disconnected after the test."""
    connected = []

    def connect(name: str, sender: Any = None) -> list:
        calls: list = []

        def receiver(sent_by: Any, **payload: Any) -> None:
            calls.append((sent_by, payload))
        signal = getattr(signals, name)
        if sender is None:
            signal.connect(receiver, weak=False)
        else:
            signal.connect(receiver, sender=sender, weak=False)
        connected.append((signal, receiver))
        return calls
    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)


@pytest.fixture
def batch_class() -> type:
    return PipeBatch


@pytest.fixture
def model_class() -> type:
    return Summer
