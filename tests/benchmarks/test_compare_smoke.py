"""benchmarks/compare.py: every workload runs on tiny sizes for batchkit, numpy, tf.data and torch, and its checks bite."""
from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.tf]

BENCH = pathlib.Path(__file__).resolve().parents[2] / 'benchmarks'
LOCAL = ('batchkit', 'numpy', 'tf.data', 'torch')     # BatchFlow installs from PyPI: not in the test suite


@pytest.fixture(scope='module')
def compare():
    spec = importlib.util.spec_from_file_location('compare', BENCH / 'compare.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)      # puts benchmarks/ on sys.path for its helper modules
    return module


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp('bench-cache'))


@pytest.mark.parametrize('workload', ['pipeline', 'prefetch', 'loading', 'training'])
def test_every_local_side_runs_the_workload_and_passes_its_check(compare, cache, workload):
    sizes = {'pipeline': 700, 'prefetch': 700, 'loading': 400, 'training': 512}
    results = compare.run_workloads([workload], sizes, 1, cache, LOCAL)
    assert set(results[workload]) == set(LOCAL)
    assert all(isinstance(t, float) and t > 0 for t in results[workload].values()), results


def test_the_loading_files_are_written_once_and_hold_the_images(compare, cache):
    workloads = sys.modules['_compare_workloads']
    folder, X = workloads.npy_files(50, cache)
    stamp = pathlib.Path(folder, '000007.npy').stat().st_mtime_ns
    assert np.array_equal(np.load(pathlib.Path(folder, '000007.npy')), X[7])
    workloads.npy_files(50, cache)
    assert pathlib.Path(folder, '000007.npy').stat().st_mtime_ns == stamp


def test_the_pipeline_check_refuses_a_different_computation(compare):
    common = sys.modules['_compare_common']
    X = common.images(256)
    rng = np.random.default_rng(0)
    good = [common.flip_random_half(X[s] / 255 * 2 - 1, rng) for s in common.spans(256)]
    common.check_light('numpy', X, good)
    with pytest.raises(common.CheckError, match='batch 0'):           # no flip at all
        common.check_light('numpy', X, [X[:128] / 255 * 2 - 1])
    with pytest.raises(common.CheckError, match='batch 1'):           # forgot x * 2 - 1 on the second batch
        common.check_light('numpy', X, [good[0], common.flip_random_half(X[128:] / 255, rng)])
    wrong = good[0].copy()
    wrong[0, 0] += 0.01
    with pytest.raises(common.CheckError):
        common.check_equal('prefetch', 'torch', good[:1], [wrong])


def test_the_training_check_refuses_weights_that_trained_differently(compare):
    training = sys.modules['_compare_training']
    ref = [np.zeros((3, 2), 'float32'), np.ones(2, 'float32')]
    training.check_weights('torch', ref, [w.copy() for w in ref])
    with pytest.raises(sys.modules['_compare_common'].CheckError, match='torch'):
        training.check_weights('torch', ref, [ref[0] + 1e-3, ref[1]])


def test_the_report_replaces_only_the_text_between_the_markers(compare, tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text(f'# Benchmarks\n\nintro\n\n{compare.BEGIN}\nold table\n{compare.END}\n\nafter\n')
    results = {'pipeline': {'batchkit': 1.0, 'numpy': 0.9, 'tf.data': 2.0, 'torch': 'torch not installed'}}
    compare.write_readme(compare.table(results, LOCAL, None), str(readme))
    text = readme.read_text()
    assert text.startswith('# Benchmarks\n\nintro\n') and text.endswith('\n\nafter\n') and 'old table' not in text
    assert '| pipeline | 1.000 s | 0.900 s | 2.000 s | n/a (torch not installed) |' in text
    lines = compare.verdicts(results)
    assert lines == ['pipeline  numpy      time/batchkit time =  0.90 (target >= 0.8) PASS',
                     'pipeline  tf.data    time/batchkit time =  2.00 (target >= 1.0) PASS']
    compare.chart(results, LOCAL, str(tmp_path / 'chart.png'))
    assert (tmp_path / 'chart.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_a_failed_batchflow_side_is_reported_by_its_last_telling_line(compare, tmp_path):
    side = compare.BatchFlowSide(str(tmp_path))
    os.makedirs(side.venv)
    open(os.path.join(side.venv, 'ready'), 'w').close()
    side.python = str(tmp_path / 'fake-python')
    with open(side.python, 'w') as f:      # a traceback cut short after its ^^^ markers, as a stopped side leaves it
        f.write('#!/bin/sh\nprintf \'Traceback (most recent call last):\\n  File "side.py", line 9\\n'
                '    batch = next(gen)\\n            ^^^^^^^^^\\n\' >&2\nexit 1\n')
    os.chmod(side.python, 0o755)
    assert side.run('pipeline', repeats=1, check=lambda outs: None) == 'failed: batch = next(gen)'
