"""Benchmark: batchkit side by side with a numpy loop, tf.data, a torch DataLoader and BatchFlow, in one run.

Workloads (batch size 128, one epoch, no shuffle; the sizes of the full run, --quick shrinks them):
  pipeline  100,000 x 784 float32, three light actions: x / 255, x * 2 - 1, reverse a random half of the images;
  prefetch  100,000 x 784 float32, np.sort along each axis per batch (releases the GIL), two workers ahead
            (batchkit prefetch=2, numpy through a 2-thread pool, tf.data num_parallel_calls=2 + prefetch(2),
            torch num_workers=2, BatchFlow prefetch=2);
  loading   20,000 .npy files of 784 float32 (written once into the cache dir), read the same way (batchkit
            FilesIndex + load(fmt='npy') prefetch=2, torch per-file Dataset num_workers=2, tf.data read_file
            num_parallel_calls=2, BatchFlow FilesIndex prefetch=2, numpy: an np.load loop);
  training  an MLP 784-128-10 (Keras 3, Adam), all from the same initial weights: batchkit KerasModel through
            train_model with prefetch=2, a train_on_batch loop, Keras fit on tf.data, a torch DataLoader and
            BatchFlow feeding train_on_batch.
Before timing, each workload checks on its first batches that every side computes the same thing. The sides
run alternately, best of --repeats (5); BatchFlow (installed by this script into its own venv under --cache-dir)
runs in a subprocess doing its repeats in a row. A side that cannot run says why in the table. The full run
writes the table into benchmarks/README.md and a chart into benchmarks/compare.png (--quick only with --write).

    python benchmarks/compare.py            # full sizes, a few minutes on 2 cores
    python benchmarks/compare.py --quick    # small sizes, a smoke run
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _compare_common import BATCH, CheckError  # noqa: E402
from _compare_training import training_workload  # noqa: E402
from _compare_workloads import SIDES, loading_workload, pipeline_workload, prefetch_workload  # noqa: E402

__all__ = ['BatchFlowSide', 'SIZES', 'main', 'run_workloads']

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN, END = '<!-- compare:begin -->', '<!-- compare:end -->'
SIZES = {'full': {'pipeline': 100_000, 'prefetch': 100_000, 'loading': 20_000, 'training': 51_200},
         'quick': {'pipeline': 5_000, 'prefetch': 5_000, 'loading': 2_000, 'training': 1_280}}
LABELS = {'numpy': {'training': 'Keras train_on_batch loop', 'prefetch': 'numpy + 2 threads'},
          'tf.data': {'training': 'Keras fit on tf.data'}}
RATIO_NUMPY, RATIO_PEER = 0.8, 1.0


class BatchFlowSide:
    """BatchFlow from PyPI in a venv of its own (created once, reused); workloads run in its interpreter."""

    def __init__(self, cache_dir: str) -> None:
        self.venv = os.path.join(cache_dir, 'batchflow-venv')
        self.cache_dir = cache_dir
        self.python = os.path.join(self.venv, 'bin', 'python')
        self.reason: str | None = None

    def ensure(self) -> bool:
        if self.reason is None and not os.path.exists(os.path.join(self.venv, 'ready')):
            try:
                print(f'installing batchflow and pandas into {self.venv} (once)', flush=True)
                subprocess.run(['python3.11', '-m', 'venv', self.venv], check=True)
                subprocess.run([self.python, '-m', 'pip', 'install', '-q', 'batchflow', 'pandas'], check=True,
                               timeout=900)
                open(os.path.join(self.venv, 'ready'), 'w').close()
            except (OSError, subprocess.SubprocessError) as exc:
                self.reason = f'could not install batchflow: {exc}'[:120]
        return self.reason is None

    def run(self, workload: str, *, repeats: int, check: Callable[[list], None], X: np.ndarray | None = None,
            y: np.ndarray | None = None, **cfg: Any) -> float | str:
        """The best time of `repeats` runs of `workload` in BatchFlow, or why there is none."""
        if not self.ensure():
            return self.reason or 'batchflow unavailable'
        with tempfile.TemporaryDirectory(dir=self.cache_dir) as tmp:
            cfg.update(batch_size=BATCH, repeats=repeats, check=os.path.join(tmp, 'check.npz'),
                       site_packages=sysconfig.get_paths()['purelib'])
            if X is not None:
                cfg['data'] = os.path.join(tmp, 'X.npy')
                np.save(cfg['data'], X)
            if y is not None:
                cfg['labels'] = os.path.join(tmp, 'y.npy')
                np.save(cfg['labels'], y)
            try:
                proc = subprocess.run([self.python, os.path.join(HERE, '_batchflow_side.py'), workload,
                                       '--json', json.dumps(cfg)], capture_output=True, text=True, timeout=600)
            except subprocess.TimeoutExpired:
                return 'failed: no result within 600 s (hung)'
            line = [s for s in proc.stdout.splitlines() if s.startswith('RESULT ')]
            if proc.returncode < 0:
                return f'failed: killed by signal {-proc.returncode}'
            if proc.returncode or not line:
                # the last line that says something (not a traceback's ^^^ or ~~~ markers)
                said = [s for s in proc.stderr.splitlines() if s.strip(' ^~')]
                tail = (said or ['no output'])[-1].strip()
                return f'failed: {tail}'[:120]
            result = json.loads(line[-1][len('RESULT '):])
            with np.load(cfg['check']) as f:
                outs = [f[k] for k in f.files]
            try:
                check(outs)
            except CheckError as exc:
                return f'check failed: {exc}'[:120]
            self.version = result['version']
            return float(result['best'])


def run_workloads(names: list[str], sizes: dict, repeats: int, cache_dir: str, sides=SIDES) -> dict:
    bf = BatchFlowSide(cache_dir) if 'batchflow' in sides else None
    results = {}
    for name in names:
        print(f'== {name}: {sizes[name]:,} items', flush=True)
        if name == 'pipeline':
            results[name] = pipeline_workload(sizes[name], repeats, sides, bf)
        elif name == 'prefetch':
            results[name] = prefetch_workload(sizes[name], repeats, sides, bf)
        elif name == 'loading':
            results[name] = loading_workload(sizes[name], repeats, cache_dir, sides, bf)
        else:
            results[name] = training_workload(sizes[name], repeats, cache_dir, sides, bf)
        print('   ' + ', '.join(f'{k}: {fmt(v)}' for k, v in results[name].items()), flush=True)
    return results


def fmt(value: float | str) -> str:
    return f'{value:.3f} s' if isinstance(value, float) else f'n/a ({value})'


def verdicts(results: dict) -> list[str]:
    """One line per workload and peer: the ratio peer_time / batchkit_time and whether it meets its target."""
    lines = []
    for name, res in results.items():
        bk = res.get('batchkit')
        for side, t in res.items():
            if side == 'batchkit' or not isinstance(t, float) or not isinstance(bk, float):
                continue
            target = RATIO_NUMPY if side == 'numpy' else RATIO_PEER
            ratio = t / bk
            lines.append(f'{name:<9} {side:<10} time/batchkit time = {ratio:5.2f} (target >= {target}) '
                         f'{"PASS" if ratio >= target else "FAIL"}')
    return lines


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    versions = [f'python {platform.python_version()}', f'numpy {np.__version__}']
    for mod in ('tensorflow', 'keras', 'torch'):
        try:
            versions.append(f'{mod} {__import__(mod).__version__}')
        except ImportError:
            versions.append(f'{mod} not installed')
    return (f'{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; ' + ', '.join(versions)
            + f'; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC')


def table(results: dict, sides, bf_version: str | None) -> str:
    names = {s: s for s in sides}
    if bf_version:
        names['batchflow'] = f'batchflow {bf_version}'
    rows = ['| workload | ' + ' | '.join(names[s] for s in sides) + ' |', '|---' * (len(sides) + 1) + '|']
    for name, res in results.items():
        cells = []
        for s in sides:
            label = LABELS.get(s, {}).get(name)
            value = res.get(s, 'not run')
            cells.append(fmt(value) + (f' ({label})' if label and isinstance(value, float) else ''))
        rows.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def write_readme(text: str, path: str) -> None:
    old = f'# Benchmarks\n\n{BEGIN}\n{END}\n'
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if BEGIN not in old:
        old += f'\n{BEGIN}\n{END}\n'
    head, rest = old.split(BEGIN, 1)
    tail = rest.split(END, 1)[1] if END in rest else ''
    with open(path, 'w') as f:
        f.write(f'{head}{BEGIN}\n{text}\n{END}{tail}')


def chart(results: dict, sides, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(results)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(sides)
    for i, side in enumerate(sides):
        speed = [results[n]['batchkit'] / results[n][side]
                 if isinstance(results[n].get(side), float) and isinstance(results[n].get('batchkit'), float)
                 else 0.0 for n in names]
        ax.bar(np.arange(len(names)) + (i - (len(sides) - 1) / 2) * width, speed, width, label=side)
    ax.axhline(1.0, color='k', lw=0.8)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel('speed relative to batchkit (higher is faster)')
    ax.legend(ncol=len(sides), loc='lower center', bbox_to_anchor=(0.5, 1.08), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='small sizes, 2 repeats; README and chart untouched')
    parser.add_argument('--write', action='store_true', help='write README and chart even with --quick')
    parser.add_argument('--repeats', type=int, default=None, help='timed runs of each side (default 5, quick 2)')
    parser.add_argument('--workloads', default=','.join(SIZES['full']), help='comma-separated subset')
    parser.add_argument('--sides', default=','.join(SIDES), help='comma-separated subset of ' + ', '.join(SIDES))
    parser.add_argument('--cache-dir', default=os.path.expanduser('~/.cache/batchkit-bench'),
                        help='where the .npy files, the initial model and the BatchFlow venv are kept')
    args = parser.parse_args(argv)
    sides = [s for s in SIDES if s in args.sides.split(',')]
    if 'batchkit' not in sides:
        parser.error('--sides must include batchkit (every ratio is against it)')
    names = [w for w in SIZES['full'] if w in args.workloads.split(',')]
    os.makedirs(args.cache_dir, exist_ok=True)
    sizes = SIZES['quick' if args.quick else 'full']
    repeats = args.repeats or (2 if args.quick else 5)
    results = run_workloads(names, sizes, repeats, args.cache_dir, sides)
    bf_version = None
    if 'batchflow' in sides:
        bf_version = BatchFlowSide(args.cache_dir).ensure() and _bf_version(args.cache_dir)
    text = (f'Measured on: {machine()}.\n\nBest of {repeats} runs of one epoch, batch size {BATCH}; sizes: '
            + ', '.join(f'{k} {sizes[k]:,} items' for k in names) + '.\n\n' + table(results, sides, bf_version)
            + '\n\nRatios (peer time / batchkit time; targets: >= 1 for every peer, >= 0.8 for the hand-written '
            'loop):\n\n```\n' + '\n'.join(verdicts(results)) + '\n```')
    print('\n' + text)
    if args.write or not args.quick:
        write_readme(text, os.path.join(HERE, 'README.md'))
        chart(results, sides, os.path.join(HERE, 'compare.png'))
        print('\nwrote benchmarks/README.md and benchmarks/compare.png')
    return 0


def _bf_version(cache_dir: str) -> str | None:
    side = BatchFlowSide(cache_dir)
    proc = subprocess.run([side.python, '-c', 'import batchflow; print(batchflow.__version__)'],
                          capture_output=True, text=True)
    return proc.stdout.strip() or None


if __name__ == '__main__':
    sys.exit(main())
