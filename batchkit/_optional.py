"""Optional dependencies: import on demand, or explain which extra to install."""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import BatchkitError

__all__ = ['MissingDependencyError', 'import_optional']


class MissingDependencyError(BatchkitError, ImportError):
    """An optional dependency that is not installed."""


def import_optional(name: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(f"Expected the package '{name}' for this feature. Received: it is not "
                                     f"installed. Install it with: pip install 'batchkit[{extra}]'") from exc
