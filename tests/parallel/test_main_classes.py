"""Batch classes defined in a script's `__main__` or in a Jupyter kernel run on every engine (real processes)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import nbformat
import pytest

from parallel_support import HERE

SCRIPTS = os.path.join(HERE, 'scripts')
EXPECTED = sum(i * i + 1000 for i in range(40))
needs_dask = pytest.mark.skipif(importlib.util.find_spec('distributed') is None, reason='needs distributed')


def _run_script(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}      # the class must come from __main__ only
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, env=env,
                          cwd=SCRIPTS)


@pytest.mark.slow
@pytest.mark.parametrize('engine', ['threads', 'processes',
                                    pytest.param('dask-executor', marks=[needs_dask, pytest.mark.distributed]),
                                    pytest.param('dask', marks=[needs_dask, pytest.mark.distributed])])
def test_a_class_of_a_scripts_main_runs_on_every_engine(engine):
    done = _run_script('main_classes.py', engine)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f'total {EXPECTED}' in done.stdout


def test_a_script_without_the_main_guard_gets_an_error_naming_the_guard():
    done = _run_script('unguarded.py')
    assert done.returncode != 0
    assert "if __name__ == '__main__':" in done.stderr
    assert 'BatchkitRuntimeError' in done.stderr
    assert 'died' not in done.stderr and 'finished' not in done.stdout


_CELLS = [
    "import sys\nprint(sys.executable)",
    """import numpy as np
from batchkit import ArrayBatch, B, Dataset, V, action, model

class NotebookBatch(ArrayBatch):
    components = ('x',)

    @model(mode='static')
    def table():
        return {'offset': 1000}

    @action
    def square(self):
        self.x = self.x ** 2
        return self

    @action(model='table')
    def shift(self, table):
        self.x = self.x + table['offset']
        return self

def total(**run):
    p = (Dataset(40, batch_class=NotebookBatch, preloaded={'x': np.arange(40)}).p
         .init_variable('sums', default=list).square().shift().update(V('sums', mode='a'), B('x').sum()))
    p.run(8, prefetch=2, **run)
    return int(sum(p.get_variable('sums')))""",
    "print('processes', total(target='processes'))",
]
_DASK_CELL = """import distributed
cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None)
client = distributed.Client(cluster)
print('executor', total(executor=client.get_executor()))
print('engine', total(engine='dask', address=cluster.scheduler_address))
client.close(); cluster.close()"""


def _kernel_env(tmp_path) -> dict:
    """A kernelspec for this very interpreter (the venv's), in a directory of the test's own."""
    prefix = tmp_path / 'jupyter'
    subprocess.run([sys.executable, '-m', 'ipykernel', 'install', '--prefix', str(prefix), '--name', 'batchkit-test'],
                   check=True, capture_output=True, timeout=120)
    return {'JUPYTER_PATH': str(prefix / 'share' / 'jupyter')}


@pytest.mark.slow
@pytest.mark.parametrize('dask', [False, pytest.param(True, marks=[needs_dask, pytest.mark.distributed])])
def test_a_class_of_a_notebook_runs_in_worker_processes(tmp_path, monkeypatch, dask):
    from nbclient import NotebookClient
    for key, value in _kernel_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv('PYTHONPATH', raising=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in _CELLS + ([_DASK_CELL] if dask else [])])
    NotebookClient(nb, kernel_name='batchkit-test', timeout=300, resources={'metadata': {'path': str(tmp_path)}}).execute()
    out = ''.join(o.get('text', '') for cell in nb.cells for o in cell.get('outputs', []))
    assert out.splitlines()[0] == sys.executable
    assert f'processes {EXPECTED}' in out
    if dask:
        assert f'executor {EXPECTED}' in out and f'engine {EXPECTED}' in out
