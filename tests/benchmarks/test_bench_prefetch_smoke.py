"""benchmarks/bench_prefetch.py runs end to end at its quick sizes and prints every ratio of its targets."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.distributed]
pytest.importorskip('distributed')

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / 'benchmarks' / 'bench_prefetch.py'
RATIO = re.compile(r'speed-up +(\d+\.\d\d)x \(target >= (\d\.\d+)x\) (ok|MISSED)$')


def test_the_benchmark_prints_each_part_with_its_ratio_target_and_verdict():
    done = subprocess.run([sys.executable, str(SCRIPT), '--quick', '--repeats', '1'], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    parts = ('(1) ', '(2) ', '(2d)', '(3) ', '(3s)')
    ratios = {line[:4]: RATIO.search(line) for line in lines if line[:4] in parts}
    assert set(ratios) == set(parts), done.stdout
    assert {key: match.group(2) for key, match in ratios.items() if match} == \
        {'(1) ': '1.7', '(2) ': '1.6', '(2d)': '1.7', '(3) ': '0.95', '(3s)': '0.95'}, done.stdout
    for match in ratios.values():       # the printed ratio is rounded down, so it agrees with the verdict
        assert (float(match.group(1)) >= float(match.group(2))) == (match.group(3) == 'ok'), match.group(0)
    memory = next(line for line in lines if line.startswith('(4) '))
    assert re.search(r'= +\d+\.\d batches \(target <= 8 batches = [\d.]+ MiB\) (ok|MISSED)', memory), memory
    # each ceiling line says how much of the machine's ceiling the run above it reached
    assert len([line for line in lines if 'reached' in line and 'of it' in line]) == 2, done.stdout
    assert any(line.startswith('    (2d) reached') for line in lines), done.stdout
