"""`import batchkit` is light: no heavy framework is imported and it takes < 0.3 s (STYLE.md)."""
from __future__ import annotations

import json
import subprocess
import sys

import batchkit

HEAVY = ('tensorflow', 'keras', 'torch', 'dask', 'distributed', 'ray')

PROBE = f"""
import json, sys, time
t0 = time.perf_counter()
import batchkit
elapsed = time.perf_counter() - t0
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})
print(json.dumps({{'elapsed': elapsed, 'heavy': heavy}}))
"""


def _probe() -> dict:
    out = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_framework():
    assert _probe()['heavy'] == []


def test_import_is_fast():
    best = min(_probe()['elapsed'] for _ in range(3))
    assert best < 0.3, f'import batchkit took {best:.3f} s (best of 3); expected < 0.3 s'


def test_all_is_sorted_and_importable():
    assert list(batchkit.__all__) == sorted(batchkit.__all__)
    assert len(set(batchkit.__all__)) == len(batchkit.__all__)
    for name in batchkit.__all__:
        assert hasattr(batchkit, name), name
    for name in ('DatasetIndex', 'FilesIndex', 'Dataset', 'ArrayBatch', 'Batch', 'action', 'model',
                 'inbatch_parallel', 'BatchkitError', 'SkipBatch', 'StopPipeline'):
        assert name in batchkit.__all__
