"""The documentation site: it builds with `mkdocs build --strict`, and every Python code block on it runs.

NOTE [ Which code blocks run ]
Every fenced block whose language is `python` (also `py`, `python3`) runs. The blocks of
one page run in order, in one fresh interpreter (a subprocess) whose working directory is an empty temporary
directory, as one script whose line numbers are the page's own: a traceback points at the line of the page.
A block opts out only by being another language (```text, ```console, ```bash) -- with one exception, for
the code of other libraries shown for comparison on the migration pages: a python block whose title ends
with "(not run)", e.g. ```python title="BatchFlow (not run)"```. That marker is accepted only on the pages
listed in NOT_RUN_PAGES; anywhere else it fails the test, so no batchkit example can hide from it.
The README's python blocks run by the same rule. The `>>>` examples of the docstrings, which the API reference shows, run as doctests (test_docstring_examples_run).
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / 'docs'
NOT_RUN_PAGES = {'migration-batchflow.md', 'migration-estimator.md'}
NOT_RUN = re.compile(r'title="[^"]*\(not run\)"')
PYTHON = {'python', 'py', 'python3'}
FENCE = re.compile(r'^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$')
PAGE_TIMEOUT = 600

pytestmark = pytest.mark.slow


def _pages() -> list[Path]:
    return sorted(DOCS.rglob('*.md'))


def code_blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """Fenced blocks of a Markdown text: (line number of the first code line, info string, code lines).

    Indented fences (inside lists or admonitions) are found too; their indentation is removed.
    """
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m['indent'], m['fence'], m['info'].strip()
        body, j = [], i + 1
        while j < len(lines) and not re.match(rf'^{re.escape(indent)}{re.escape(fence[0])}{{{len(fence)},}}\s*$',
                                               lines[j]):
            line = lines[j]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            j += 1
        if j == len(lines):
            raise AssertionError(f'unclosed code fence at line {i + 1}')
        blocks.append((i + 2, info, body))
        i = j + 1
    return blocks


def _language(info: str) -> str:
    info = info.strip()
    if info.startswith('{'):                       # ``` { .python title="..." }
        m = re.search(r'\.([\w+-]+)', info)
        return m.group(1).lower() if m else ''
    return info.split()[0].lower() if info else ''


def runnable_blocks(page: Path) -> list[tuple[int, list[str]]]:
    """The python blocks of `page` that run (see NOTE [ Which code blocks run ])."""
    result = []
    for line, info, body in code_blocks(page.read_text(encoding='utf-8')):
        if _language(info) not in PYTHON:
            continue
        if NOT_RUN.search(info):
            assert page.name in NOT_RUN_PAGES, (
                f'{page.relative_to(ROOT)}:{line - 1}: the "(not run)" marker is only for the code of other '
                f'libraries on {sorted(NOT_RUN_PAGES)}; a batchkit example must run')
            continue
        result.append((line, body))
    return result


def page_script(page: Path) -> str:
    """The page's runnable blocks as one script, each code line at its line number in the page."""
    out: list[str] = []
    for line, body in runnable_blocks(page):
        out.extend([''] * (line - 1 - len(out)))
        out.extend(body)
    return '\n'.join(out) + '\n'


PAGES_WITH_CODE = [p for p in _pages() if runnable_blocks(p)]
# The README's examples are held to the same rule as the site's.
RUN_PAGES = [*PAGES_WITH_CODE, ROOT / 'README.md']


def test_code_blocks_are_found() -> None:
    """The extraction finds the examples (a broken fence regex would make every page pass vacuously)."""
    by_page = {p.relative_to(DOCS).as_posix(): len(runnable_blocks(p)) for p in PAGES_WITH_CODE}
    assert sum(by_page.values()) >= 40, by_page
    for name in ('getting-started.md', 'pipelines.md', 'parallel.md', 'models.md', 'troubleshooting.md'):
        assert by_page.get(name, 0) >= 1, (name, by_page)


def test_extraction_rules() -> None:
    text = ('a\n```python\nx = 1\n```\n'
            '```text\nnot code\n```\n'
            '- item\n\n    ```python\n    y = 2\n    ```\n'
            '```python title="BatchFlow (not run)"\nimport batchflow\n```\n')
    blocks = code_blocks(text)
    assert [(line, _language(info), body) for line, info, body in blocks] == [
        (3, 'python', ['x = 1']), (6, 'text', ['not code']), (11, 'python', ['y = 2']),
        (14, 'python', ['import batchflow'])]
    assert NOT_RUN.search(blocks[3][1]) and not NOT_RUN.search(blocks[0][1])


@pytest.mark.parametrize('page', RUN_PAGES, ids=lambda p: p.relative_to(DOCS if DOCS in p.parents else ROOT).as_posix())
def test_page_code_runs(page: Path, tmp_path: Path) -> None:
    # The script sits in its working directory, as a user's script in their project: the modules an example
    # writes there (a batch class for Dask workers) are importable, by the script and by spawned workers.
    script = tmp_path / ('page_' + page.stem.replace('-', '_') + '.py')
    script.write_text(page_script(page), encoding='utf-8')
    work = tmp_path
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')])),
               TF_CPP_MIN_LOG_LEVEL='2', MPLBACKEND='Agg')
    proc = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=PAGE_TIMEOUT)
    # the script's line numbers are the page's: the traceback names the failing line of the page
    report = proc.stderr.replace(str(script), str(page.relative_to(ROOT)))
    assert proc.returncode == 0, f'{page.relative_to(ROOT)} failed:\n{proc.stdout[-3000:]}\n{report[-6000:]}'


DOCTESTS = """
import doctest, importlib, pkgutil, sys
import numpy as np
import batchkit
failed = attempted = 0
for info in pkgutil.walk_packages(batchkit.__path__, 'batchkit.'):
    if info.name.startswith('batchkit.demo'):
        continue
    module = importlib.import_module(info.name)
    globs = {'np': np, **{name: getattr(batchkit, name) for name in batchkit.__all__}, **vars(module)}
    result = doctest.testmod(module, extraglobs=globs, optionflags=doctest.ELLIPSIS)
    failed, attempted = failed + result.failed, attempted + result.attempted
print(attempted, failed)
sys.exit(1 if failed else 0)
"""


def test_docstring_examples_run(tmp_path: Path) -> None:
    """The `>>>` examples the API reference shows run (those marked `# doctest: +SKIP` are fragments)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    proc = subprocess.run([sys.executable, '-c', DOCTESTS], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=PAGE_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    attempted = int(proc.stdout.split()[-2])
    assert attempted >= 40, proc.stdout[-2000:]


def test_site_builds_strict(tmp_path: Path) -> None:
    mkdocs = shutil.which('mkdocs', path=str(Path(sys.executable).parent)) or shutil.which('mkdocs')
    assert mkdocs is not None, 'mkdocs is not installed: pip install -e ".[docs]" (the test extra includes it)'
    site = tmp_path / 'site'
    proc = subprocess.run([mkdocs, 'build', '--strict', '--site-dir', str(site)], cwd=ROOT, capture_output=True,
                          text=True, timeout=PAGE_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert (site / 'index.html').is_file()
    # the API reference is rendered from the docstrings, not copied by hand, their >>> examples as code
    assert 'gen_batch' in (site / 'reference' / 'pipeline' / 'index.html').read_text(encoding='utf-8')
    assert '<span class="gp">&gt;&gt;&gt; </span>' in (site / 'reference' / 'dataset' / 'index.html').read_text(
        encoding='utf-8')


def test_doctest_examples_are_fenced() -> None:
    spec = importlib.util.spec_from_file_location('griffe_doctests', DOCS / 'hooks' / 'griffe_doctests.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = 'Text.\n\n>>> ds = make()\n>>> [len(b) for b in ds]\n[3, 1]\n\nArgs:\n    x: y.\n\n```python\n>>> kept\n```'
    assert module.fence_doctests(text) == (
        'Text.\n\n```pycon\n>>> ds = make()\n>>> [len(b) for b in ds]\n[3, 1]\n```\n\nArgs:\n    x: y.\n\n'
        '```python\n>>> kept\n```')
