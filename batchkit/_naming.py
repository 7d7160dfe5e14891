"""Did-you-mean suggestions for unknown names."""
from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ['suggest']


def suggest(name: str, candidates: Iterable[str], list_known: bool = True) -> str:
    """' Did you mean 'x'?' for the closest candidate, or a list of the known names when none is close (nothing
    with `list_known=False`, for a message that lists them already)."""
    candidates = sorted(set(candidates))
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    if close:
        return ' Did you mean ' + ' or '.join(repr(c) for c in close) + '?'
    if not list_known:
        return ''
    if not candidates:
        return ' None are defined.'
    shown = ', '.join(repr(c) for c in candidates[:20])
    return f' Known names: {shown}{", ..." if len(candidates) > 20 else ""}.'
