"""Every notebook in notebooks/ runs top to bottom in a kernel on this interpreter, and is committed executed."""
from __future__ import annotations

import pathlib
import re
import sys

import pytest

import nbformat  # noqa: E402
import nbclient  # noqa: E402,F401 - the test extra installs what the notebooks need
import ipykernel  # noqa: E402,F401

import nbrun  # noqa: E402

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[2] / 'notebooks'
PATHS = sorted(NOTEBOOKS.glob('*.ipynb'))


def test_there_are_notebooks_and_the_readme_lists_each_of_them():
    assert len(PATHS) >= 5
    listed = set(re.findall(r'\(([\w.-]+\.ipynb)\)', (NOTEBOOKS / 'README.md').read_text()))
    assert listed == {p.name for p in PATHS}


@pytest.mark.parametrize('path', PATHS, ids=[p.stem for p in PATHS])
def test_committed_notebook_carries_its_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert code and all(c.execution_count is not None for c in code), 'execute the notebook and save it'
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), 'run top to bottom once'
    assert not [o for c in code for o in c.outputs if o.output_type == 'error']
    assert any(c.outputs for c in code)


@pytest.mark.slow
@pytest.mark.parametrize('path', PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_without_error(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    # the first cell reports the kernel's interpreter: it must be this one (the venv's), not another python
    nb.cells.insert(0, nbformat.v4.new_code_cell('import sys; print(sys.executable)'))
    copy = tmp_path / path.name
    nbformat.write(nb, copy)
    done = nbrun.execute(str(copy), timeout=600, workdir=str(tmp_path))   # raises on the first failing cell
    assert done.cells[0].outputs[0]['text'].strip() == sys.executable
    code = [c for c in done.cells if c.cell_type == 'code']
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == 'error']
