"""Helpers of the parallel tests: baselines of threads and child processes, a hang guard, the test directory.

(A module of its own, not conftest: `conftest` is the root tests/conftest.py's name in sys.modules.)
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

import psutil
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def worker_children() -> set[int]:
    """Child processes that do work (multiprocessing's resource tracker lives for the session: not counted)."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if any('resource_tracker' in part for part in child.cmdline()):
                continue
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        pids.add(child.pid)
    return pids


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class Baseline:
    """Threads and worker processes before a test; `check()` waits (briefly) until they are back."""

    def __init__(self) -> None:
        self.threads = threading.active_count()
        self.children = worker_children()

    def check(self) -> None:
        assert wait_until(lambda: threading.active_count() <= self.threads), \
            f'threads: {threading.active_count()} now, {self.threads} before ({threading.enumerate()})'
        assert wait_until(lambda: worker_children() <= self.children), \
            f'child processes: {worker_children()} now, {self.children} before'


def run_with_timeout(fn: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Run `fn` in a thread; fail (instead of hanging the suite) if it has not finished after `timeout` s."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome['value'] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome['error'] = exc

    thread = threading.Thread(target=target, daemon=True, name='test-timeout-guard')
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f'hung: still running after {timeout} s')
    if 'error' in outcome:
        raise outcome['error']
    return outcome.get('value')
