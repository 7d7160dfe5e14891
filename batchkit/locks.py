"""Named re-entrant locks for `use_lock` actions and models, owned by a pipeline run."""
from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from .errors import LockTimeoutError

__all__ = ['LockRegistry']


class LockRegistry:
    """Hands out one `threading.RLock` per key, creating it on first use.

    >>> locks = LockRegistry()
    >>> with locks.hold('write_lock'):
    ...     pass
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, threading.RLock] = {}

    def get(self, key: Hashable) -> threading.RLock:
        lock = self._locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(key, threading.RLock())
        return lock

    @contextmanager
    def hold(self, key: Hashable, timeout: float | None = None, what: str = 'lock') -> Iterator[None]:
        """Hold the lock for `key`; raise LockTimeoutError after `timeout` seconds instead of waiting forever."""
        lock = self.get(key)
        if not lock.acquire(timeout=-1 if timeout is None else timeout):
            raise LockTimeoutError(
                f"Expected to acquire {what} within lock_timeout={timeout} s. Received: it stayed held by "
                "another thread. Raise lock_timeout, or look for an action that holds the lock too long.")
        try:
            yield
        finally:
            lock.release()

    def __len__(self) -> int:
        return len(self._locks)
