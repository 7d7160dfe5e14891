"""Run signals (blinker): run_started, batch_processed, epoch_finished, run_finished; sender and payloads."""
from __future__ import annotations

import pytest

from batchkit import SkipBatch, StopPipeline, signals


@pytest.mark.parametrize('run_kwargs, n_batches, n_epochs', [
    ({'n_epochs': 1}, 4, 1), ({'n_epochs': 3}, 12, 3), ({'n_epochs': 2, 'prefetch': 2}, 8, 2),
    ({'n_epochs': 2, 'drop_last': True}, 6, 2)])
def test_signals_are_sent_with_the_pipeline_and_exact_counts(ds, listen, run_kwargs, n_batches, n_epochs):
    p = ds.p.add(1)
    started, processed = listen('run_started', p), listen('batch_processed', p)
    epochs, finished = listen('epoch_finished', p), listen('run_finished', p)
    p.run(3, **run_kwargs)
    assert all(sender is p for sender, _ in started + processed + epochs + finished)
    assert [payload for _, payload in started] == [{'n_batches': n_batches, 'batch_size': 3}]
    assert len(processed) == n_batches
    assert [payload['iteration'] for _, payload in processed] == list(range(1, n_batches + 1))
    assert all(payload['batch'].__class__.__name__ == 'PipeBatch' for _, payload in processed)
    assert [payload for _, payload in epochs] == [{'epoch': e} for e in range(n_epochs)]
    assert [payload for _, payload in finished] == [{'n_batches': n_batches, 'stopped': False}]


def test_signal_order_within_a_run(ds):
    p = ds.p.add(1)
    order = []
    connected = []
    for name in ('run_started', 'batch_processed', 'epoch_finished', 'run_finished'):
        def receiver(sender, _name=name, **payload):
            order.append(_name)
        getattr(signals, name).connect(receiver, sender=p, weak=False)
        connected.append((getattr(signals, name), receiver))
    try:
        p.run(5, n_epochs=2)
    finally:
        for signal, receiver in connected:
            signal.disconnect(receiver)
    assert order == ['run_started', 'batch_processed', 'batch_processed', 'epoch_finished',
                     'batch_processed', 'batch_processed', 'epoch_finished', 'run_finished']


def test_batch_processed_carries_the_processed_batch(ds, listen):
    p = ds.p.add(100)
    processed = listen('batch_processed', p)
    p.run(5)
    assert [payload['batch'].images[0][0] for _, payload in processed] == [100., 105.]


def test_skipped_batches_are_not_processed_but_epochs_still_finish(ds, listen):
    def skip_last(batch):
        if batch.indices[0] == 9:
            raise SkipBatch
    p = ds.p.call(skip_last)
    processed, epochs, finished = listen('batch_processed', p), listen('epoch_finished', p), listen('run_finished', p)
    p.run(3, n_epochs=2)
    assert [payload['iteration'] for _, payload in processed] == [1, 2, 3, 5, 6, 7]
    assert [payload['epoch'] for _, payload in epochs] == [0, 1]
    assert finished[0][1] == {'n_batches': 6, 'stopped': False}


def test_stop_pipeline_finishes_the_run_with_stopped(ds, listen):
    def stop(batch):
        if batch.indices[0] == 6:
            raise StopPipeline
    p = ds.p.call(stop)
    processed, epochs, finished = listen('batch_processed', p), listen('epoch_finished', p), listen('run_finished', p)
    p.run(3, n_epochs=2)
    assert len(processed) == 2 and epochs == []
    assert finished[0][1] == {'n_batches': 2, 'stopped': True}


def test_signals_of_one_pipeline_do_not_reach_receivers_of_another(ds, listen):
    p, q = ds.p.add(1), ds.p.add(2)
    of_p = listen('batch_processed', p)
    q.run(5)
    assert of_p == []
    p.run(5)
    assert len(of_p) == 2


def test_a_failing_run_sends_no_run_finished(ds, listen):
    p = ds.p.call(lambda b: 1 / 0)
    started, finished = listen('run_started', p), listen('run_finished', p)
    with pytest.raises(ZeroDivisionError):
        p.run(5)
    assert len(started) == 1 and finished == []


def test_signals_for_gen_batch_and_next_batch(ds, listen):
    p = ds.p.add(1)
    processed = listen('batch_processed', p)
    list(p.gen_batch(5))
    p.next_batch(4)
    p.next_batch(4)
    assert [payload['iteration'] for _, payload in processed] == [1, 2, 1, 2]


def test_signals_module_names_the_documented_signals():
    assert set(signals.__all__) >= {'run_started', 'batch_processed', 'epoch_finished', 'run_finished',
                                    'model_built', 'checkpoint_saved'}
