"""Execute a notebook with nbclient in a kernel running this very interpreter (the venv's python)."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

import nbformat
from nbclient import NotebookClient

KERNEL = 'batchkit-venv'


def _kernelspec_dir() -> str:
    """A kernelspec named KERNEL whose argv is sys.executable, in a fresh directory for JUPYTER_PATH."""
    root = tempfile.mkdtemp(prefix='batchkit-kernels-')
    spec_dir = os.path.join(root, 'kernels', KERNEL)
    os.makedirs(spec_dir)
    spec = {'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
            'display_name': 'batchkit (venv)', 'language': 'python',
            'env': {'TF_CPP_MIN_LOG_LEVEL': '3', 'TF_ENABLE_ONEDNN_OPTS': '0', 'PYTHONHASHSEED': '0'}}
    with open(os.path.join(spec_dir, 'kernel.json'), 'w') as f:
        json.dump(spec, f)
    return root


def execute(path: str, timeout: int = 300, workdir: str | None = None, allow_errors: bool = False) -> Any:
    """Run every cell of the notebook at `path` (cwd: `workdir`, else the notebook's folder); the executed notebook.

    Raises nbclient's CellExecutionError on the first cell that raises (unless `allow_errors`).
    """
    nb = nbformat.read(path, as_version=4)
    root = _kernelspec_dir()
    old = os.environ.get('JUPYTER_PATH')
    os.environ['JUPYTER_PATH'] = root + (os.pathsep + old if old else '')
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, allow_errors=allow_errors, record_timing=False,
                                resources={'metadata': {'path': workdir or os.path.dirname(os.path.abspath(path))}})
        client.execute()
    finally:
        if old is None:
            os.environ.pop('JUPYTER_PATH', None)
        else:
            os.environ['JUPYTER_PATH'] = old
    return nb
