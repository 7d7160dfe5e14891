"""The arrows run one way: batchkit.pipeline imports batchkit.models, never the reverse."""
from __future__ import annotations

import ast
import pathlib

import batchkit.models

MODELS = pathlib.Path(batchkit.models.__file__).parent


def _imported_modules(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add('.' * node.level + (node.module or ''))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_models_import_nothing_from_pipeline():
    offenders = {path.name: sorted(name for name in _imported_modules(path) if 'pipeline' in name)
                 for path in MODELS.glob('*.py')}
    offenders = {name: imports for name, imports in offenders.items() if imports}
    assert offenders == {}
