"""Heads in worker processes: the head travels once per worker, and only what the head changed comes back."""
from __future__ import annotations

import os
import pickle
import threading
import uuid

import numpy as np
import pytest

from batchkit import Dataset
from batchkit.batch import parallel
from batchkit.pipeline.remote import RemoteHead, rebuild

import workbatches as wb
from parallel_support import run_with_timeout


def test_the_head_reaches_each_worker_process_once():
    key = f'arrived-{uuid.uuid4().hex}'
    p = wb.work_dataset(60).p.sleepy(2).arrivals(wb.Arrival(key))
    batches = run_with_timeout(lambda: list(p.gen_batch(2, prefetch=2, target='processes')))
    assert len(batches) == 30
    assert [b.arrived for b in batches] == [1] * 30        # not once per batch
    pids = {b.pid for b in batches}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids


def _counted_dataset(n: int) -> Dataset:
    return Dataset(n, batch_class=wb.WorkBatch, preloaded={'x': np.arange(n, dtype=np.float64).view(wb.CountedArray)})


def test_a_component_the_head_did_not_change_does_not_come_back():
    wb.reset_counters()
    p = _counted_dataset(40).p.record_pid()
    batches = run_with_timeout(lambda: list(p.gen_batch(2, prefetch=2, target='processes')))
    assert len(batches) == 20 and all(b.pid != os.getpid() for b in batches)
    assert wb.counter('array arrivals') == 0                # x stayed here: the consumer's own copy is used
    assert np.array_equal(np.concatenate([b.x for b in batches]), np.arange(40))


@pytest.mark.parametrize('action', ['double_in_place', 'where'])
def test_a_component_changed_in_place_comes_back_and_an_untouched_one_does_not(action):
    wb.reset_counters()
    p = getattr(_counted_dataset(40).p, action)()
    batches = run_with_timeout(lambda: list(p.gen_batch(2, prefetch=2, target='processes')))
    changed = action == 'double_in_place'
    assert wb.counter('array arrivals') == (20 if changed else 0)
    assert np.array_equal(np.concatenate([b.x for b in batches]), np.arange(40) * (2 if changed else 1))


@pytest.fixture
def in_this_process(monkeypatch):
    """Run a RemoteHead here without marking the test process as a worker process."""
    monkeypatch.setattr(parallel, '_IN_WORKER', threading.Event())


def _round_trip(recipe: tuple) -> tuple[dict, dict, list]:
    batch = wb.work_dataset(6).create_batch(np.arange(3))
    sent = batch.__getstate__()
    changed, kept, _ = pickle.loads(RemoteHead(recipe, wb.WorkBatch)(dict(sent)))
    return sent, changed, kept


@pytest.mark.parametrize('recipe, changed_names', [
    ((('record_pid', (), {}),), {'pid'}),                            # a new attribute
    ((('double_in_place', (), {}),), {'x'}),                         # same object, new bytes
    ((('take', ([1, 2],), {}),), {'taken'}),
    ((('reshape_in_place', (), {}),), {'x'}),                        # same object and bytes, new shape
])
def test_what_a_head_sends_back(in_this_process, recipe, changed_names):
    sent, changed, kept = _round_trip(recipe)
    assert set(changed) == changed_names
    assert set(kept) == set(sent) - changed_names
    assert '_index' in kept


def test_a_mutable_attribute_left_in_place_still_comes_back(in_this_process):
    batch = wb.work_dataset(6).create_batch(np.arange(3))
    batch.notes = ['a']                                   # a list could have been changed in place: it goes back
    sent = batch.__getstate__()
    changed, kept, _ = pickle.loads(RemoteHead((('record_pid', (), {}),), wb.WorkBatch)(dict(sent)))
    assert 'notes' in changed and 'x' in kept


def test_a_rebuilt_batch_takes_the_kept_entries_from_what_was_sent(in_this_process):
    batch = wb.work_dataset(6).create_batch(np.arange(3))
    sent = batch.__getstate__()
    shipped = RemoteHead((('record_pid', (), {}),), wb.WorkBatch)(dict(sent))
    back = rebuild(shipped, sent, wb.WorkBatch)
    assert back.x is sent['x'] and back.pid == os.getpid()
