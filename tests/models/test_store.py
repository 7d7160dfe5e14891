"""ModelStore: models built exactly once under concurrent first requests; failures store nothing."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from batchkit.models.store import ModelEntry, ModelStore


def test_put_get_pop():
    store = ModelStore()
    entry = store.put(ModelEntry('m', object(), 'static'))
    assert store.get('m') is entry and 'm' in store and len(store) == 1
    assert store.names() == ['m'] and list(store) == [entry]
    assert store.pop('m') is entry
    assert store.get('m') is None and store.pop('m') is None and len(store) == 0


def test_get_or_build_builds_once_sequentially():
    store, calls = ModelStore(), []

    def build():
        calls.append(1)
        return ModelEntry('m', object(), 'dynamic')

    first = store.get_or_build('m', build)
    assert store.get_or_build('m', build) is first
    assert calls == [1]


def test_get_or_build_exactly_once_under_threads():
    n_threads, n_iters = 16, 200
    with ThreadPoolExecutor(n_threads) as pool:
        for it in range(n_iters):
            store, barrier = ModelStore(), threading.Barrier(n_threads)
            count, guard = [0], threading.Lock()

            def build(count=count, guard=guard):
                with guard:
                    count[0] += 1
                time.sleep(0.001)
                return ModelEntry('m', object(), 'dynamic')

            def request(store=store, barrier=barrier, build=build):
                barrier.wait(timeout=10)
                return store.get_or_build('m', build)

            entries = [f.result() for f in [pool.submit(request) for _ in range(n_threads)]]
            assert count[0] == 1, f'iteration {it}: built {count[0]} times'
            assert all(e is entries[0] for e in entries)
            assert store.get('m') is entries[0]


def test_different_names_build_independently():
    store = ModelStore()
    a = store.get_or_build('a', lambda: ModelEntry('a', 1, 'dynamic'))
    b = store.get_or_build('b', lambda: ModelEntry('b', 2, 'dynamic'))
    assert (a.model, b.model) == (1, 2)
    assert sorted(store.names()) == ['a', 'b']


def test_builder_that_raises_stores_nothing():
    store, calls = ModelStore(), []

    def failing():
        calls.append('fail')
        raise RuntimeError('cannot build')

    with pytest.raises(RuntimeError, match='cannot build'):
        store.get_or_build('m', failing)
    assert 'm' not in store and store.get('m') is None
    entry = store.get_or_build('m', lambda: ModelEntry('m', 'ok', 'dynamic'))
    assert entry.model == 'ok'
    assert store.get('m') is entry
    assert calls == ['fail']


def test_builder_that_raises_under_threads_lets_a_later_call_build():
    store, barrier = ModelStore(), threading.Barrier(8)
    attempts, guard = [0], threading.Lock()

    def build():
        with guard:
            attempts[0] += 1
            first = attempts[0] == 1
        if first:
            raise RuntimeError('first build fails')
        return ModelEntry('m', 'built', 'dynamic')

    def request():
        barrier.wait(timeout=10)
        try:
            return store.get_or_build('m', build).model
        except RuntimeError:
            return 'error'

    with ThreadPoolExecutor(8) as pool:
        results = [f.result() for f in [pool.submit(request) for _ in range(8)]]
    assert results.count('error') == 1
    assert results.count('built') == 7
    assert attempts[0] == 2


def test_copy_shares_entries():
    store = ModelStore()
    a = store.put(ModelEntry('a', object(), 'static'))
    b = store.put(ModelEntry('b', object(), 'dynamic'))
    copy = store.copy()
    assert copy is not store
    assert copy.get('a') is a and copy.get('b') is b
    assert copy.get('a').lock is a.lock                   # the same model object and the same lock
    copy.put(ModelEntry('c', object(), 'dynamic'))
    copy.pop('a')
    assert 'c' not in store and 'a' in store              # the stores themselves are separate
    static_only = store.copy(keep=lambda entry: entry.mode == 'static')
    assert static_only.names() == ['a'] and static_only.get('a') is a


def test_entry_defaults():
    entry = ModelEntry('m', [1], 'dynamic')
    other = ModelEntry('n', [2], 'dynamic')
    assert entry.lock is not other.lock
    assert hasattr(entry.lock, 'acquire')
    assert 'm' in repr(entry) and 'dynamic' in repr(entry)
