"""Batch and ArrayBatch: components gathered once, attributes, random, pickling (API.md section 2)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from batchkit import ArrayBatch, Batch, BatchkitAttributeError, BatchkitError, Dataset, DatasetIndex


class Triple(ArrayBatch):
    components = ('images', 'labels', 'masks')


@pytest.fixture
def batch(image_ds):
    return next(image_ds.gen_batch(4, shuffle=2))


def test_component_is_gathered_once(batch):
    first = batch.images
    assert isinstance(first, np.ndarray)
    assert batch.images is first
    assert batch.labels is batch.labels
    assert first.shape == (4, 2, 2)
    assert first[:, 0, 0].tolist() == batch.indices.astype(float).tolist()


def test_in_place_edits_persist(batch, images):
    batch.images[0] = -1
    batch.images *= 2
    assert (batch.images[0] == -2).all()
    assert (images >= 0).all()            # the dataset's arrays are untouched


def test_assignment(batch):
    new = np.ones((4, 3))
    batch.images = new
    assert batch.images is new
    batch.extra = 'x'                     # any attribute may be set
    assert batch.extra == 'x'


def test_unknown_attribute_suggests(batch):
    with pytest.raises(AttributeError, match=r"'imagse'.*Did you mean 'images'") as info:
        batch.imagse
    assert isinstance(info.value, BatchkitError)
    assert not hasattr(batch, 'nothing_like_it')


def test_unknown_attribute_lists_actions_too(batch):
    with pytest.raises(AttributeError, match=r"Did you mean 'load'"):
        batch.laod


def test_declared_component_without_data_is_none(images, labels):
    ds = Dataset(10, batch_class=Triple, preloaded={'images': images, 'labels': labels})
    batch = ds.next_batch(3)
    assert batch.masks is None
    batch.masks = np.zeros(3)
    assert batch.masks.shape == (3,)


def test_declared_component_without_preloaded_is_none():
    batch = Triple(DatasetIndex(3))
    assert batch.images is None and batch.labels is None and batch.masks is None


def test_len_size_indices(image_ds):
    batch = list(image_ds.gen_batch(3))[-1]
    assert len(batch) == batch.size == 1
    assert batch.indices.tolist() == [9]
    assert isinstance(batch.indices, np.ndarray)
    assert batch.index.indices is batch.indices


def test_batch_constructor():
    batch = Batch(5)
    assert len(batch) == 5
    assert batch.indices.tolist() == list(range(5))
    assert batch.pipeline is None
    batch = Batch(np.array(['a', 'b']), preloaded={'x': [1, 2]}, pipeline=None)
    assert batch.indices.tolist() == ['a', 'b']
    assert batch.x == [1, 2]


def test_plain_batch_keeps_lists():
    data = ['p', 'q', 'r', 's', 't']
    ds = Dataset(5, preloaded={'x': data, 'y': np.arange(5)})
    batch = next(ds.gen_batch(2, shuffle=4))
    assert isinstance(batch.x, list)
    assert batch.x == [data[i] for i in batch.indices]
    assert isinstance(batch.y, np.ndarray)
    assert batch.x is batch.x


def test_plain_batch_doc_example():
    batch = Batch(DatasetIndex(3), preloaded={'x': [10, 20, 30]})
    assert batch.x == [10, 20, 30]


def test_array_batch_converts_lists():
    ds = Dataset(5, batch_class=ArrayBatch, preloaded={'x': [10, 11, 12, 13, 14]})
    batch = ds.next_batch(2)
    assert isinstance(batch.x, np.ndarray)
    assert batch.x.tolist() == [10, 11]


def test_tuple_preloaded(images, labels, image_batch_class):
    ds = Dataset(10, batch_class=image_batch_class, preloaded=(images, labels))
    batch = next(ds.gen_batch(3, shuffle=6))
    assert batch.labels.tolist() == (batch.indices * 10).tolist()
    assert batch.images[:, 0, 0].tolist() == batch.indices.astype(float).tolist()


@pytest.mark.parametrize('preloaded', [
    (np.zeros(10),),
    (np.zeros(10), np.zeros(10), np.zeros(10)),
    [np.zeros(10)],
], ids=['too-short', 'too-long', 'list'])
def test_tuple_preloaded_wrong_length(preloaded, image_batch_class):
    regex = r"preloaded data for the 2 components \('images', 'labels'\)\. Received: a (tuple|list) of \d items"
    with pytest.raises(ValueError, match=regex) as info:
        Dataset(10, batch_class=image_batch_class, preloaded=preloaded)
    assert isinstance(info.value, BatchkitError)
    with pytest.raises(ValueError, match=regex):
        image_batch_class.check_preloaded(preloaded, 10)


def test_random_is_a_generator(batch):
    rng = batch.random
    assert isinstance(rng, np.random.Generator)
    assert batch.random is rng


def test_random_differs_between_batches(image_ds):
    a, b = image_ds.gen_batch(5)
    assert a.random is not b.random


def test_pickle_keeps_gathered_components_only():
    n, width = 20_000, 50
    X = np.random.default_rng(0).random((n, width))
    y = np.arange(n)
    ds = Dataset.from_arrays(images=X, labels=y)
    batch = next(ds.gen_batch(8, shuffle=1))
    batch.images *= 2                                  # an edit that must travel with the batch
    data = pickle.dumps(batch)
    assert len(data) < 0.01 * (X.nbytes + y.nbytes)    # the whole dataset stays behind
    back = pickle.loads(data)
    assert type(back) is ArrayBatch
    assert back.indices.tolist() == batch.indices.tolist()
    assert np.array_equal(back.images, X[batch.indices] * 2)
    assert np.array_equal(back.labels, y[batch.indices])
    assert len(back) == 8


def test_pickle_gathers_unread_components(image_ds):
    batch = image_ds.next_batch(3)
    back = pickle.loads(pickle.dumps(batch))        # components never read before pickling
    assert back.labels.tolist() == [0, 10, 20]
    assert back.images.shape == (3, 2, 2)
    assert isinstance(back.random, np.random.Generator)


def test_a_missing_attribute_lists_every_public_name_size_included(image_ds):
    batch = next(image_ds.gen_batch(3))
    with pytest.raises(BatchkitAttributeError, match=r"Received: 'imags'. Did you mean 'images'.*Public names: .*"
                                                     r"\bimages\b.*\bindices\b.*\blabels\b.*\bsize\b"):
        batch.imags


def test_items_of_different_shapes_come_as_an_object_array_of_their_rows():
    class Signals(ArrayBatch):
        components = ('signal',)
    signals = [np.arange(n, dtype=float) for n in (2, 5, 3, 4)]
    batch = next(Dataset(4, Signals, preloaded={'signal': signals}).gen_batch(2, shuffle=False, n_epochs=1))
    assert batch.signal.dtype == object and batch.signal.shape == (2,)
    for got, expected in zip(batch.signal, signals[:2]):
        np.testing.assert_array_equal(got, expected)
