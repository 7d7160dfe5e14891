"""Blinker signals sent during runs; every one is sent with the pipeline (or batch class) as sender.

Payloads (keyword arguments):
    run_started:      n_batches (int), batch_size (int)
    batch_processed:  batch (Batch), iteration (int, from 1)
    epoch_finished:   epoch (int, from 0)
    run_finished:     n_batches (int, batches that reached the end), stopped (bool, StopPipeline ended it)
    model_built:      name (str), model (the model or descriptor), mode ('static' | 'dynamic')
    checkpoint_saved: name (str), path (str), step (int)

Receivers are held weakly by blinker: connect a lambda with `weak=False`.
"""
from __future__ import annotations

from blinker import Namespace

__all__ = ['batch_processed', 'checkpoint_saved', 'epoch_finished', 'model_built', 'run_finished', 'run_started']

_signals = Namespace()
run_started = _signals.signal('run_started')
batch_processed = _signals.signal('batch_processed')
epoch_finished = _signals.signal('epoch_finished')
run_finished = _signals.signal('run_finished')
model_built = _signals.signal('model_built')
checkpoint_saved = _signals.signal('checkpoint_saved')
