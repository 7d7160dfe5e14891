"""Dataset: construction, from_arrays, split, cv_split, gen_batch and next_batch (API.md section 1)."""
from __future__ import annotations

import numpy as np
import pytest

from batchkit import ArrayBatch, Batch, BatchkitError, BatchkitTypeError, Dataset, DatasetIndex

TEN_BY_3 = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def ids_of(batches) -> list[list]:
    return [b.indices.tolist() for b in batches]


def check_rows(batch, ds) -> None:
    """Each preloaded row of the batch belongs to the batch's id at that place."""
    pos = ds.index.get_pos(batch.indices) if ds.index.indices.dtype.kind == 'U' else batch.indices
    assert batch.images[:, 0, 0].tolist() == np.asarray(pos, dtype=float).tolist()
    assert batch.labels.tolist() == (np.asarray(pos) * 10).tolist()


# --- construction ------------------------------------------------------------------------------------------
def test_dataset_from_int():
    ds = Dataset(10)
    assert len(ds) == ds.size == 10
    assert ds.indices.tolist() == list(range(10))
    assert ds.batch_class is Batch


def test_dataset_from_int_with_batch_class():
    ds = Dataset(10, batch_class=ArrayBatch)
    assert ds.batch_class is ArrayBatch
    assert [type(b) for b in ds.gen_batch(5)] == [ArrayBatch, ArrayBatch]


def test_dataset_from_index(image_ds, image_batch_class):
    assert image_ds.batch_class is image_batch_class
    batch = next(image_ds.gen_batch(3))
    assert isinstance(batch, image_batch_class)
    check_rows(batch, image_ds)


def test_dataset_from_str_ids(str_ds):
    assert str_ds.indices.tolist() == list('abcdefghij')
    assert ids_of(str_ds.gen_batch(4)) == [list('abcd'), list('efgh'), list('ij')]


def test_from_arrays():
    X = np.arange(20).reshape(10, 2)
    y = list(range(10))
    ds = Dataset.from_arrays(images=X, labels=y)
    assert len(ds) == 10
    assert ds.batch_class is ArrayBatch
    batch = next(ds.gen_batch(4, shuffle=3))
    assert np.array_equal(batch.images, X[batch.indices])
    assert isinstance(batch.labels, np.ndarray)
    assert batch.labels.tolist() == batch.indices.tolist()


def test_from_arrays_batch_class(image_batch_class):
    ds = Dataset.from_arrays(batch_class=image_batch_class, images=np.zeros((5, 2)), labels=np.arange(5))
    assert ds.batch_class is image_batch_class
    assert isinstance(ds.next_batch(2), image_batch_class)


@pytest.mark.parametrize(('call', 'error', 'regex'), [
    (lambda: Dataset.from_arrays(images=np.zeros((10, 2)), labels=np.arange(9)), ValueError,
     r"same length.*'images': 10, 'labels': 9"),
    (lambda: Dataset.from_arrays(), ValueError, r'at least one array'),
    (lambda: Dataset(10, preloaded={'images': np.zeros((9, 2))}), ValueError,
     r"component 'images' to have one entry per dataset item \(10\). Received: 9"),
    (lambda: Dataset(10, batch_class=dict), TypeError, r'`batch_class` to be a Batch subclass.*dict'),
    (lambda: Dataset(10, batch_class=Batch(3)), TypeError, r'`batch_class` to be a Batch subclass'),
    (lambda: Dataset(-1), ValueError, r'positive dataset size.*-1'),
], ids=['unequal-lengths', 'no-arrays', 'preloaded-length', 'not-a-batch-class', 'batch-instance', 'negative'])
def test_dataset_errors(call, error, regex):
    with pytest.raises(error, match=regex) as info:
        call()
    assert isinstance(info.value, BatchkitError)


def test_preloaded_tuple_length_mismatch(image_batch_class):
    with pytest.raises(ValueError, match=r"'labels' to have one entry per dataset item \(10\). Received: 3"):
        Dataset(10, batch_class=image_batch_class, preloaded=(np.zeros((10, 2)), np.zeros(3)))


# --- split -------------------------------------------------------------------------------------------------
def test_split_default_shares(image_ds):
    image_ds.split(0.8)
    assert len(image_ds.train) == 8 and len(image_ds.test) == 2
    assert image_ds.validation is None
    assert image_ds.train.indices.tolist() == list(range(8))
    assert image_ds.test.indices.tolist() == [8, 9]
    assert image_ds.train.batch_class is image_ds.batch_class


def test_split_no_args_is_80_20():
    ds = Dataset(10)
    ds.split()
    assert (len(ds.train), len(ds.test)) == (8, 2)


def test_split_with_validation(image_ds):
    image_ds.split([0.7, 0.2])
    assert (len(image_ds.train), len(image_ds.test), len(image_ds.validation)) == (7, 2, 1)
    parts = [image_ds.train.indices, image_ds.test.indices, image_ds.validation.indices]
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))


def test_split_three_shares():
    ds = Dataset(20)
    ds.split([0.5, 0.25, 0.25])
    assert (len(ds.train), len(ds.test), len(ds.validation)) == (10, 5, 5)


def test_split_shares_summing_to_one_has_no_validation():
    ds = Dataset(10)
    ds.split([0.6, 0.4])
    assert (len(ds.train), len(ds.test)) == (6, 4)
    assert ds.validation is None


def test_split_shuffle_is_reproducible():
    a, b, c = Dataset(50), Dataset(50), Dataset(50)
    a.split(0.8, shuffle=42)
    b.split(0.8, shuffle=42)
    c.split(0.8, shuffle=7)
    assert a.train.indices.tolist() == b.train.indices.tolist()
    assert a.test.indices.tolist() == b.test.indices.tolist()
    assert a.train.indices.tolist() != c.train.indices.tolist()
    assert a.train.indices.tolist() != list(range(40))
    assert sorted(a.train.indices.tolist() + a.test.indices.tolist()) == list(range(50))


@pytest.mark.parametrize(('shares', 'regex'), [
    ([0.8, 0.3], r'sum to <= 1.*1.100'),
    (1.5, r'sum to <= 1'),
    ([0.5, 0.3, 0.3], r'sum to <= 1'),
    ([-0.1], r'non-negative'),
    ([0.2, 0.2, 0.2, 0.2], r'1-3 non-negative floats'),
    (float('nan'), r'non-negative floats. Received: shares=\[nan\]'),
], ids=['sum-over-1', 'single-over-1', 'three-over-1', 'negative', 'four-shares', 'nan'])
def test_split_errors(shares, regex):
    with pytest.raises(ValueError, match=regex) as info:
        Dataset(10).split(shares)
    assert isinstance(info.value, BatchkitError)


def test_split_batches_carry_their_own_rows(image_ds):
    image_ds.split(0.6, shuffle=3)
    for part in (image_ds.train, image_ds.test):
        seen = []
        for batch in part.gen_batch(3, shuffle=1):
            check_rows(batch, image_ds)
            seen += batch.indices.tolist()
        assert sorted(seen) == sorted(part.indices.tolist())


def test_split_of_split_keeps_rows(image_ds):
    image_ds.split(0.8, shuffle=5)
    image_ds.train.split(0.5, shuffle=6)
    inner = image_ds.train.train
    assert len(inner) == 4
    assert set(inner.indices.tolist()) <= set(image_ds.train.indices.tolist())
    for batch in inner.gen_batch(3):
        check_rows(batch, image_ds)


def test_split_with_str_ids(str_ds):
    str_ds.split(0.7, shuffle=11)
    assert len(str_ds.train) == 7
    for part in (str_ds.train, str_ds.test):
        for batch in part.gen_batch(2, shuffle=2):
            assert batch.indices.dtype.kind == 'U'
            check_rows(batch, str_ds)


def test_subset_as_new_root(image_ds, images):
    image_ds.split(0.5, shuffle=1)
    positions = image_ds.train.indices
    fresh = Dataset(image_ds.train.index, batch_class=ArrayBatch, preloaded={'x': images[positions]})
    batch = next(fresh.gen_batch(5))
    assert batch.x[:, 0, 0].tolist() == batch.indices.astype(float).tolist()


# --- cv_split ----------------------------------------------------------------------------------------------
def test_cv_split(image_ds):
    image_ds.cv_split(n_splits=5)
    tests = []
    for k in range(5):
        fold = getattr(image_ds, f'cv{k}')
        train, test = fold.train.indices.tolist(), fold.test.indices.tolist()
        assert len(test) == 2 and len(train) == 8
        assert not set(train) & set(test)
        assert sorted(train + test) == list(range(10))
        for batch in fold.test.gen_batch(4):
            check_rows(batch, image_ds)
        tests.append(test)
    assert sorted(sum(tests, [])) == list(range(10))     # disjoint tests that cover every item
    assert not hasattr(image_ds, 'cv5')


def test_cv_split_uneven_and_shuffled():
    ds = Dataset(np.array(list('abcdefghijk')))
    ds.cv_split(n_splits=3, shuffle=4)
    tests = [ds.cv0.test.indices.tolist(), ds.cv1.test.indices.tolist(), ds.cv2.test.indices.tolist()]
    assert sorted(len(t) for t in tests) == [3, 4, 4]
    assert sorted(sum(tests, [])) == list('abcdefghijk')
    assert sum(tests, []) != list('abcdefghijk')
    for k, test in enumerate(tests):
        fold = getattr(ds, f'cv{k}')
        assert sorted(fold.train.indices.tolist() + test) == list('abcdefghijk')


@pytest.mark.parametrize('n_splits', [1, 0, -2, 11, np.int64(11)])
def test_cv_split_bad_n_splits(n_splits):
    with pytest.raises(ValueError, match=r'`n_splits` to be an int from 2 to the dataset size \(10\)') as info:
        Dataset(10).cv_split(n_splits=n_splits)
    assert isinstance(info.value, BatchkitError)


@pytest.mark.parametrize('n_splits', [2.5, True, '5', np.True_, None])
def test_cv_split_n_splits_of_a_wrong_type_is_a_type_error(n_splits):
    with pytest.raises(BatchkitTypeError, match=r'`n_splits` to be an int from 2 .* of type'):
        Dataset(10).cv_split(n_splits=n_splits)


# --- gen_batch / next_batch --------------------------------------------------------------------------------
def test_gen_batch_rules(image_ds):
    assert ids_of(image_ds.gen_batch(3)) == TEN_BY_3
    assert ids_of(image_ds.gen_batch(batch_size=3, n_epochs=1, shuffle=False, drop_last=True)) == TEN_BY_3[:3]
    assert ids_of(image_ds.gen_batch(3, n_iters=5)) == TEN_BY_3 + TEN_BY_3[:1]
    for batch in image_ds.gen_batch(3, n_epochs=2, shuffle=9):
        check_rows(batch, image_ds)


def test_gen_batch_str_ids_rows(str_ds):
    batches = list(str_ds.gen_batch(3, shuffle=8))
    assert sorted(sum(ids_of(batches), [])) == list('abcdefghij')
    for batch in batches:
        check_rows(batch, str_ds)


def test_gen_batch_errors_at_call(image_ds):
    with pytest.raises(ValueError, match='never stop'):
        image_ds.gen_batch(3, n_epochs=None)


def test_next_batch_cycles_forever(image_ds):
    got = [image_ds.next_batch(3).indices.tolist() for _ in range(25)]
    assert got == (TEN_BY_3 * 7)[:25]
    assert image_ds.next_batch(3).indices.tolist() == [3, 4, 5]     # the 26th: still going


def test_next_batch_rows(image_ds):
    for _ in range(9):
        check_rows(image_ds.next_batch(4, shuffle=3), image_ds)


def test_next_batch_shuffled_epochs_are_permutations(image_ds):
    epochs = []
    for _ in range(3):
        epochs.append(sum((image_ds.next_batch(5, shuffle=12).indices.tolist() for _ in range(2)), []))
    for epoch in epochs:
        assert sorted(epoch) == list(range(10))
    assert len({tuple(e) for e in epochs}) == 3


def test_next_batch_with_n_epochs_stops(image_ds):
    got = [image_ds.next_batch(3, n_epochs=1).indices.tolist() for _ in range(4)]
    assert got == TEN_BY_3
    with pytest.raises(StopIteration):
        image_ds.next_batch(3, n_epochs=1)
    # after the end, the same call starts a new run
    assert image_ds.next_batch(3, n_epochs=1).indices.tolist() == [0, 1, 2]


def test_next_batch_new_arguments_start_a_new_generator(image_ds):
    assert image_ds.next_batch(3).indices.tolist() == [0, 1, 2]
    assert image_ds.next_batch(3).indices.tolist() == [3, 4, 5]
    assert image_ds.next_batch(4).indices.tolist() == [0, 1, 2, 3]
    expected = np.random.default_rng(0).permutation(10)[:4].tolist()
    assert image_ds.next_batch(4, shuffle=0).indices.tolist() == expected     # seed 0 is not shuffle=False


def test_next_batch_on_split_subsets_are_independent(image_ds):
    image_ds.split(0.5)
    assert image_ds.train.next_batch(2).indices.tolist() == [0, 1]
    assert image_ds.test.next_batch(2).indices.tolist() == [5, 6]
    assert image_ds.train.next_batch(2).indices.tolist() == [2, 3]


class _OneBatch(ArrayBatch):
    components = ('x',)


def test_create_subset_reads_rows_by_id():
    ds = Dataset(DatasetIndex(['a', 'b', 'c']), _OneBatch, preloaded=(np.array([10, 20, 30]),))
    sub = ds.create_subset(DatasetIndex(['c', 'a']))
    assert next(sub.gen_batch(2)).x.tolist() == [30, 10]
    assert sub.create_subset(DatasetIndex(['a'])).indices.tolist() == ['a']


def test_cv_split_forgets_folds_of_an_earlier_split():
    ds = Dataset(12)
    ds.cv_split(4)
    ds.cv_split(3)
    assert [hasattr(ds, f'cv{k}') for k in range(5)] == [True, True, True, False, False]


def test_preloaded_bare_array_fills_a_one_component_class():
    ds = Dataset(3, _OneBatch, preloaded=np.array([5, 6, 7]))
    assert next(ds.gen_batch(3)).x.tolist() == [5, 6, 7]


def test_preloaded_dataframe_gives_components_by_column():
    import pandas as pd

    frame = pd.DataFrame({'x': [1, 2, 3], 'y': [4.0, 5.0, 6.0]})
    batch = next(Dataset(3, ArrayBatch, preloaded=frame).gen_batch(2))
    assert batch.x.tolist() == [1, 2] and batch.y.tolist() == [4.0, 5.0]


@pytest.mark.parametrize('call, error, regex', [
    (lambda: Dataset(DatasetIndex(['a', 'b']), _OneBatch).create_subset(DatasetIndex(['z'])), ValueError,
     r"ids of this dataset's items. Received: ids \['z'\]"),
    (lambda: Dataset(3, _OneBatch).create_subset([0, 1]), TypeError, r'DatasetIndex of ids'),
    (lambda: Dataset(3, ArrayBatch, preloaded=np.arange(3)), ValueError, r'bare array .*one component'),
    (lambda: Dataset(3, _OneBatch, preloaded={1, 2, 3}), TypeError,
     r'a dict of arrays, a tuple of arrays .*a pandas DataFrame.*Received: set'),
    (lambda: Dataset(DatasetIndex(['a', 'b']), _OneBatch, preloaded={'a': np.zeros(3), 'b': np.ones(3)}),
     ValueError, r"keyed by component name.*Received: a dict keyed by item ids \['a', 'b'\]"),
], ids=['subset-unknown-id', 'subset-not-index', 'bare-array-many-components', 'set', 'dict-by-id'])
def test_subset_and_preloaded_errors(call, error, regex):
    with pytest.raises(error, match=regex) as info:
        call()
    assert isinstance(info.value, BatchkitError)


def test_subsets_do_not_inherit_the_folds_of_the_whole_dataset():
    ds = Dataset.from_arrays(x=np.arange(10))
    ds.cv_split(5)
    ds.split(0.5)
    assert not hasattr(ds.train, 'cv0')                 # its folds would hold items 5..9, outside ds.train
    assert not any(hasattr(ds.cv3, f'cv{k}') for k in range(5))
    ds.train.cv_split(5)
    assert set(ds.train.cv0.train.indices) | set(ds.train.cv0.test.indices) == set(range(5))


@pytest.mark.parametrize(('shares', 'regex'), [
    (None, r'a float or a list of 1-3 non-negative floats.*Received: shares=None of type NoneType'),
    ('0.8', r"Received: shares='0.8' of type str"),
    ('half', r"Received: shares='half' of type str"),
    (True, r'Received: shares=True of type bool'),
    ([0.5, None], r'Received: shares=\[0.5, None\] with None of type NoneType'),
    ([0.5, '0.3'], r"with '0.3' of type str"),
    ({'train': 0.8}, r'of type dict'),
], ids=['none', 'str-number', 'str', 'bool', 'none-in-list', 'str-in-list', 'dict'])
def test_split_wrong_types(shares, regex):
    with pytest.raises(TypeError, match=regex) as info:
        Dataset(10).split(shares)
    assert isinstance(info.value, BatchkitError)


@pytest.mark.parametrize(('shares', 'sizes'), [
    (np.float32(0.8), [8, 2]),
    (np.float64(0.8), [8, 2]),
    (np.array(0.8), [8, 2]),
    ([np.float32(.7), np.float32(.2)], [7, 2, 1]),
    (np.array([0.5, 0.3, 0.2], dtype=np.float32), [5, 3, 2]),
    ((np.int64(1),), [10]),
    ([np.float32(0.7), np.float32(0.3)], [7, 3]),
], ids=['float32', 'float64', '0d-array', 'float32-list', 'float32-array', 'int64-tuple', 'float32-sum-1'])
def test_split_accepts_numpy_scalars(shares, sizes):
    ds = Dataset(10)
    ds.split(shares)
    parts = [p for p in (ds.train, ds.test, ds.validation) if p is not None]
    assert [len(p) for p in parts] == sizes
    assert sorted(sum((p.indices.tolist() for p in parts), [])) == list(range(10))


def test_cv_split_accepts_a_numpy_int():
    ds = Dataset(9)
    ds.cv_split(np.int64(3))
    assert [getattr(ds, f'cv{k}').test.indices.tolist() for k in range(3)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert not hasattr(ds, 'cv3')


class _ImagesLabels(ArrayBatch):
    components = ('images', 'labels')


@pytest.mark.parametrize(('preloaded', 'regex'), [
    ({'imgs': np.zeros((10, 2)), 'labels': np.arange(10)},
     r"keys to be components of _ImagesLabels: \('images', 'labels'\). Received: unknown key\(s\) \['imgs'\]. "
     r"Did you mean 'images' for 'imgs'\?"),
    ({'images': np.zeros((10, 2)), 'labels': np.arange(10), 'weights': np.ones(10)},
     r"Received: unknown key\(s\) \['weights'\]. Rename the keys to components, or add them to "
     r"_ImagesLabels.components"),
], ids=['typo', 'extra'])
def test_preloaded_key_that_is_not_a_component(preloaded, regex):
    with pytest.raises(ValueError, match=regex) as info:
        Dataset(10, _ImagesLabels, preloaded=preloaded)
    assert isinstance(info.value, BatchkitError)


def test_preloaded_keys_are_free_for_a_class_without_declared_components():
    batch = next(Dataset(4, ArrayBatch, preloaded={'anything': np.arange(4)}).gen_batch(2))
    assert batch.anything.tolist() == [0, 1]
    assert next(Dataset(3, _ImagesLabels, preloaded={'labels': np.arange(3)}).gen_batch(3)).labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize(('arrays', 'regex'), [
    ({'a': 5}, r'one row per item \(an array or a list\). Received: scalars a=5\. Pass e.g. a=\[...\]'),
    ({'x': np.arange(3), 'y': 'abc'}, r"Received: scalars y='abc'"),
], ids=['int', 'str'])
def test_from_arrays_scalar_is_a_type_error(arrays, regex):
    with pytest.raises(TypeError, match=regex) as info:
        Dataset.from_arrays(**arrays)
    assert isinstance(info.value, BatchkitError)
