"""Fixtures of the parallel tests; puts this directory on the path of every worker process started later."""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

# Worker processes (spawned pools, Dask workers) import the batch classes from `workbatches`: put this
# directory on their path before any of them starts.
if HERE not in sys.path:
    sys.path.insert(0, HERE)
if HERE not in os.environ.get('PYTHONPATH', '').split(os.pathsep):
    os.environ['PYTHONPATH'] = os.pathsep.join(p for p in (HERE, os.environ.get('PYTHONPATH')) if p)

import workbatches  # noqa: E402
from parallel_support import Baseline  # noqa: E402

_ROOT_CONFTEST = os.path.join(os.path.dirname(HERE), 'conftest.py')


@pytest.fixture
def baseline() -> Baseline:
    workbatches.reset_counters()
    return Baseline()



def pytest_collection_finish(session: pytest.Session) -> None:
    """Give `conftest` in sys.modules back to tests/conftest.py once collection is done: importing this file
    (also named conftest) replaced it, and tests pickle classes defined there by the name `conftest.X`."""
    for plugin in session.config.pluginmanager.get_plugins():
        if os.path.abspath(getattr(plugin, '__file__', '') or '') == _ROOT_CONFTEST:
            sys.modules['conftest'] = plugin
