"""Fixtures for the model tests: datasets of learnable data over the batch classes of numpy_models."""
from __future__ import annotations

import threading

import pytest

import numpy_models as nm
from batchkit import Dataset, signals


@pytest.fixture
def reg_ds() -> Dataset:
    """200 items of a noisy linear relation (images @ TRUE_W + TRUE_B ~ labels), RegBatch."""
    x, y = nm.make_regression(200, seed=0)
    return Dataset(len(x), batch_class=nm.RegBatch, preloaded={'images': x, 'labels': y})


@pytest.fixture
def clf_ds() -> Dataset:
    """200 items of a linearly separable binary classification problem, RegBatch."""
    x, y = nm.make_classification(200, seed=1)
    return Dataset(len(x), batch_class=nm.RegBatch, preloaded={'images': x, 'labels': y})


@pytest.fixture
def cardio_ds() -> Dataset:
    x, y = nm.make_regression(200, seed=2)
    return Dataset(len(x), batch_class=nm.CardioBatch, preloaded={'signal': x, 'target': y})


@pytest.fixture
def built():
    """Every model_built signal sent while the test runs: a list of (sender, name, model, mode)."""
    events, lock = [], threading.Lock()

    def receiver(sender, **kw):
        with lock:
            events.append((sender, kw['name'], kw['model'], kw['mode']))
    signals.model_built.connect(receiver, weak=False)
    try:
        yield events
    finally:
        signals.model_built.disconnect(receiver)


@pytest.fixture(autouse=True)
def _fresh_counters():
    for counter in (nm.DYNAMIC_BUILDS, nm.FC_BUILDS, nm.LinearRegression.builds):
        counter.reset()
    yield
