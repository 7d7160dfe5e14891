"""Fixtures for the model tests: datasets of learnable data over the batch classes of numpy_models."""
from __future__ import annotations

import os
import sys
import threading

import pytest

# Worker processes import the batch classes of these tests by module name (numpy_models, test_models_under_prefetch)
# and parallel_support comes from tests/parallel: both directories go on this process's and the workers' path.
_HERE = os.path.dirname(os.path.abspath(__file__))
_PATHS = [_HERE, os.path.join(os.path.dirname(_HERE), 'parallel')]
for _path in reversed(_PATHS):
    if _path not in sys.path:
        sys.path.insert(0, _path)
_current = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
os.environ['PYTHONPATH'] = os.pathsep.join([p for p in _PATHS if p not in _current] + _current)

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
