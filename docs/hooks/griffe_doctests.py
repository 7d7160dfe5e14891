"""Griffe extension for the API reference: `>>>` examples in docstrings render as Python code blocks.

batchkit's docstrings keep their examples in plain doctest form (`>>>` lines and their output), readable in
`help()`. Markdown would read them as nested quotes and their output as links; this wraps each run of
doctest lines in a fenced `pycon` block.
"""
from __future__ import annotations

import re
from typing import Any

import griffe

_PROMPT = re.compile(r'^(\s*)>>> ')


def fence_doctests(text: str) -> str:
    """`text` with every block of `>>>`/`...` lines (and the output lines after them) in a ```pycon fence."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    in_fence = False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith('```'):
            in_fence = not in_fence
        m = None if in_fence else _PROMPT.match(line)
        if m is None:
            out.append(line)
            i += 1
            continue
        indent = m.group(1)
        out.append(f'{indent}```pycon')
        while i < len(lines) and lines[i].strip() and lines[i].startswith(indent):
            out.append(lines[i])
            i += 1
        out.append(f'{indent}```')
    return '\n'.join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctest examples of every docstring."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None and '>>>' in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
