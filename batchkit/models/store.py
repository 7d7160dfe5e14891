"""ModelStore: named models with one lock each, built exactly once under concurrent first requests."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ['ModelEntry', 'ModelStore']


class ModelEntry:
    """A built model with its mode and the lock that serializes its train/predict calls."""
    __slots__ = ('name', 'model', 'mode', 'lock', 'origin')

    def __init__(self, name: str, model: Any, mode: str, lock: threading.RLock | None = None,
                 origin: Any = None) -> None:
        self.name = name
        self.model = model
        self.mode = mode
        self.lock = lock if lock is not None else threading.RLock()
        self.origin = origin       # what declared it (a ModelSpec or ModelDeclaration)

    def __repr__(self) -> str:
        return f'ModelEntry({self.name!r}, {self.mode}, {type(self.model).__name__})'


class ModelStore:
    """Built models by name.

    `get_or_build` runs the builder at most once per name, even when many threads ask at the same time;
    a builder that raises stores nothing, so the next request tries again.
    """

    def __init__(self, entries: dict[str, ModelEntry] | None = None) -> None:
        self._entries: dict[str, ModelEntry] = dict(entries or {})
        self._guard = threading.Lock()
        self._build_locks: dict[str, threading.Lock] = {}

    def get(self, name: str) -> ModelEntry | None:
        return self._entries.get(name)

    def put(self, entry: ModelEntry) -> ModelEntry:
        self._entries[entry.name] = entry
        return entry

    def pop(self, name: str) -> ModelEntry | None:
        return self._entries.pop(name, None)

    def get_or_build(self, name: str, build: Callable[[], ModelEntry]) -> ModelEntry:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        with self._guard:
            build_lock = self._build_locks.setdefault(name, threading.Lock())
        with build_lock:
            entry = self._entries.get(name)
            if entry is None:
                entry = self._entries[name] = build()
        return entry

    def copy(self, keep: Callable[[ModelEntry], bool] = lambda entry: True) -> 'ModelStore':
        """A new store holding the same entries (the same model objects and locks) that `keep` accepts."""
        return ModelStore({k: v for k, v in self._entries.items() if keep(v)})

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)
