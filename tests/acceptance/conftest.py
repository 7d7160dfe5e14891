"""Fixtures of the acceptance tests: the helper directories of tests/parallel and tests/models, and this one, on the path
of this process and of every worker process started later (spawned pools import batch classes by module path)."""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
PATHS = [HERE, os.path.join(TESTS, 'parallel'), os.path.join(TESTS, 'models')]

for _path in reversed(PATHS):
    if _path not in sys.path:
        sys.path.insert(0, _path)
_current = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
os.environ['PYTHONPATH'] = os.pathsep.join([p for p in PATHS if p not in _current] + _current)

import workbatches  # noqa: E402
from parallel_support import Baseline  # noqa: E402

_ROOT_CONFTEST = os.path.join(TESTS, 'conftest.py')


@pytest.fixture
def acceptance_baseline() -> Baseline:
    """Threads and child processes before the test (named apart from tests/parallel's `baseline`)."""
    workbatches.reset_counters()
    return Baseline()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Give `conftest` in sys.modules back to tests/conftest.py (see tests/parallel/conftest.py)."""
    for plugin in session.config.pluginmanager.get_plugins():
        if os.path.abspath(getattr(plugin, '__file__', '') or '') == _ROOT_CONFTEST:
            sys.modules['conftest'] = plugin
