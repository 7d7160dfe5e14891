"""The contract of API.md sections 1-2 end to end: batching rules and user mistakes, through index, dataset and pipeline."""
from __future__ import annotations

import os

import numpy as np
import pytest

from batchkit import (ArrayBatch, BatchkitError, BatchkitTypeError, BatchkitValueError, Dataset, DatasetIndex,
                      action, model)

N = 10


class AuditBatch(ArrayBatch):
    components = ('images', 'labels')

    @action
    def scale_in_place(self, k=2.):
        self.images *= k                  # an in-place edit: the next action must see it
        return self

    @action
    def record(self, events):
        events.append(self.images.copy())
        return self

    @model(mode='static')
    def basic_model():
        return {'w': np.zeros(4)}


@pytest.fixture
def ds():
    images = np.repeat(np.arange(N, dtype=np.float64), 4).reshape(N, 4)
    return Dataset(N, batch_class=AuditBatch, preloaded={'images': images, 'labels': np.arange(N) * 10})


# --- batching rules: the same for index, dataset and pipeline ---------------------------------------------------
RUNS = [
    pytest.param(dict(batch_size=3), id='one-epoch'),
    pytest.param(dict(batch_size=3, drop_last=True, n_epochs=2), id='drop-last-2-epochs'),
    pytest.param(dict(batch_size=4, n_iters=7), id='n-iters-cycles'),
    pytest.param(dict(batch_size=4, n_iters=7, drop_last=True), id='n-iters-drop-last'),
    pytest.param(dict(batch_size=3, n_epochs=3, shuffle=42), id='seed-3-epochs'),
    pytest.param(dict(batch_size=10, n_epochs=2, shuffle=7, drop_last=True), id='whole-dataset-batches'),
]


@pytest.mark.parametrize('kwargs', RUNS)
def test_index_dataset_and_pipeline_yield_the_same_batches(ds, kwargs):
    by_index = [b.indices.tolist() for b in DatasetIndex(N).gen_batch(**kwargs)]
    by_dataset = [b.indices.tolist() for b in ds.gen_batch(**kwargs)]
    by_pipeline = [b.indices.tolist() for b in ds.p.gen_batch(**kwargs)]
    assert by_index == by_dataset == by_pipeline
    assert by_index                       # and they are not all empty


def test_pipeline_batches_never_mix_epochs_and_each_epoch_is_a_new_permutation(ds):
    batches = [b.indices.tolist() for b in ds.p.gen_batch(3, n_epochs=3, shuffle=5)]
    assert [len(b) for b in batches] == [3, 3, 3, 1] * 3
    epochs = [sum(batches[i:i + 4], []) for i in range(0, 12, 4)]
    assert all(sorted(e) == list(range(N)) for e in epochs)
    assert len({tuple(e) for e in epochs}) == 3


def test_pipeline_same_seed_same_order_on_every_run(ds):
    p = ds.p.scale_in_place(1.)
    first = [b.indices.tolist() for b in p.gen_batch(3, n_epochs=2, shuffle=11)]
    second = [b.indices.tolist() for b in p.gen_batch(3, n_epochs=2, shuffle=11)]
    assert first == second and first != [b.indices.tolist() for b in p.gen_batch(3, n_epochs=2)]


BAD_BATCHING = [
    pytest.param({'batch_size': '3'}, BatchkitTypeError, r"`batch_size` to be a positive int. Received: batch_size='3'",
                 id='batch-size-str'),
    pytest.param({'batch_size': 0}, BatchkitValueError, r"Received: batch_size=0", id='batch-size-zero'),
    pytest.param({'batch_size': 2.5}, BatchkitTypeError, r"Received: batch_size=2.5", id='batch-size-float'),
    pytest.param({'batch_size': 11, 'drop_last': True}, BatchkitValueError, r"<= the dataset size \(10\)",
                 id='batch-size-over-size'),
    pytest.param({'batch_size': 3, 'shuffle': 'yes'}, BatchkitTypeError, r"Received: shuffle='yes' of type str",
                 id='shuffle-str'),
    pytest.param({'batch_size': 3, 'n_epochs': '2'}, BatchkitTypeError, r"`n_epochs` to be a positive int. "
                 r"Received: n_epochs='2'", id='n-epochs-str'),
    pytest.param({'batch_size': 3, 'n_epochs': 2, 'n_iters': 4}, BatchkitValueError, r"not both", id='both'),
    pytest.param({'batch_size': 3, 'n_epochs': None}, BatchkitValueError, r"would never stop", id='never-stop'),
    pytest.param({'batch_size': 3, 'drop_last': 'no'}, BatchkitTypeError,
                 r"`drop_last` to be True or False. Received: drop_last='no'", id='drop-last-str'),
]


@pytest.mark.parametrize('kwargs, exc, message', BAD_BATCHING)
@pytest.mark.parametrize('entry', ['index', 'dataset', 'pipeline-run', 'pipeline-gen-batch'])
def test_bad_batching_arguments_fail_at_the_call_before_any_batch(ds, entry, kwargs, exc, message):
    events = []
    calls = {
        'index': lambda: DatasetIndex(N).gen_batch(**kwargs),
        'dataset': lambda: ds.gen_batch(**kwargs),
        'pipeline-run': lambda: ds.p.record(events).run(**kwargs),
        'pipeline-gen-batch': lambda: ds.p.record(events).gen_batch(**kwargs),   # not iterated: fails at the call
    }
    with pytest.raises(exc, match=message) as info:
        calls[entry]()
    assert isinstance(info.value, BatchkitError)
    assert events == []


def test_drop_last_accepts_numpy_bools(ds):
    assert [len(b) for b in ds.gen_batch(3, drop_last=np.bool_(True))] == [3, 3, 3]


@pytest.mark.parametrize('seed', [np.int64(42), np.int32(42)], ids=['int64', 'int32'])
def test_next_batch_with_a_numpy_int_seed_goes_on_instead_of_restarting(ds, seed):
    """Equal numpy int seeds are the same argument on every call: next_batch continues its stored generator."""
    seeds = [type(seed)(42) for _ in range(4)]          # equal values, distinct objects (all alive: distinct ids)
    got = [ds.next_batch(3, shuffle=s).indices.tolist() for s in seeds]
    p = ds.p
    piped = [p.next_batch(3, shuffle=s).indices.tolist() for s in seeds]
    expected = [b.indices.tolist() for b in ds.gen_batch(3, shuffle=42)]
    assert got == piped == expected


# --- split: the order of the parts -------------------------------------------------------------------------------
def test_split_without_shuffle_gives_train_then_test_then_validation(ds):
    ds.split([0.7, 0.2])
    assert ds.train.indices.tolist() == list(range(7))
    assert ds.test.indices.tolist() == [7, 8]
    assert ds.validation.indices.tolist() == [9]
    assert ds.validation.next_batch(1).images[0, 0] == 9.


# --- ArrayBatch: in-place edits persist from one action to the next ---------------------------------------------
def test_in_place_edit_in_one_action_is_seen_by_the_next_and_not_by_the_dataset(ds):
    seen = []
    ds.p.scale_in_place(3.).record(seen).run(4)
    assert [s[:, 0].tolist() for s in seen] == [[0., 3., 6., 9.], [12., 15., 18., 21.], [24., 27.]]
    assert ds.preloaded['images'][1, 0] == 1.       # gathered rows are a copy: the dataset is untouched


# --- model definitions ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('call', [lambda b: AuditBatch.basic_model(), lambda b: b.basic_model()],
                         ids=['through-class', 'through-batch'])
def test_calling_a_model_definition_says_how_models_are_used(ds, call):
    batch = ds.next_batch(2)
    with pytest.raises(BatchkitTypeError, match=r"never called directly.*@action\(model='basic_model'\)"
                                                r".*get_model_by_name\('basic_model'\)"):
        call(batch)
    assert AuditBatch.class_model('basic_model')['w'].shape == (4,)


# --- dump: a target of the wrong kind --------------------------------------------------------------------------
@pytest.mark.parametrize('fmt', ['npz', 'npy'])
def test_dump_per_item_into_an_existing_file_is_a_clear_error(ds, tmp_path, fmt):
    target = tmp_path / 'taken.txt'
    target.write_text('keep me')
    with pytest.raises(BatchkitValueError, match=r"`dst` to be a directory.*Received: '.*taken.txt', an existing "
                                                 r"file.*fmt='csv'"):
        ds.p.dump(str(target), fmt=fmt, components='images').run(5)
    assert target.read_text() == 'keep me'


def test_dump_csv_into_a_directory_is_a_clear_error(ds, tmp_path):
    with pytest.raises(BatchkitValueError, match=r"csv file to append rows to.*a directory.*items.csv"):
        ds.p.dump(str(tmp_path), fmt='csv', components='labels').run(5)
    assert os.listdir(tmp_path) == []
