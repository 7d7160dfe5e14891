"""DatasetIndex, FilesIndex and the batching rules of BatchPlan / gen_batch (API.md section 1)."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchkit import BatchkitError, BatchkitKeyError, Dataset, DatasetIndex, FilesIndex
from batchkit.errors import BatchkitValueError
from batchkit.index import BatchPlan

TEN_BY_3 = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def ids_of(batches) -> list[list]:
    return [b.indices.tolist() for b in batches]


def plan_ids(plan: BatchPlan) -> list[list]:
    return [positions.tolist() for _, _, positions in plan]


# --- DatasetIndex ------------------------------------------------------------------------------------------
def test_index_from_int():
    ix = DatasetIndex(10)
    assert len(ix) == 10
    assert isinstance(ix.indices, np.ndarray)
    assert ix.indices.tolist() == list(range(10))


def test_index_from_zero_is_an_error():
    with pytest.raises(BatchkitValueError, match=r'positive dataset size.*Received: 0'):
        DatasetIndex(0)


@pytest.mark.parametrize('ids', [
    np.array([5, 3, 9]),
    [5, 3, 9],
    (5, 3, 9),
    range(3),
    np.array(['a', 'b', 'c']),
    ['x', 'y', 'z'],
], ids=['array', 'list', 'tuple', 'range', 'str-array', 'str-list'])
def test_index_from_ids_keeps_them_in_order(ids):
    ix = DatasetIndex(ids)
    assert isinstance(ix.indices, np.ndarray)
    assert ix.indices.tolist() == list(ids)
    assert len(ix) == len(ids)
    assert list(ix) == list(ids)


def test_index_from_str_ids():
    ix = DatasetIndex(np.array(['a', 'b', 'c']))
    assert ix.indices.dtype.kind == 'U'
    assert ix.get_pos('b') == 1
    assert ix.get_pos(['c', 'a']).tolist() == [2, 0]


def test_index_from_index_keeps_ids_and_positions():
    source = DatasetIndex(np.array(['a', 'b', 'c']))
    ix = DatasetIndex(source)
    assert ix.indices.tolist() == ['a', 'b', 'c']
    assert ix.get_pos('c') == 2
    assert ix.subset_by_ids(['b']).indices.tolist() == ['b']


@pytest.mark.parametrize(('index', 'error', 'regex'), [
    (-1, ValueError, r'positive dataset size.*Received: -1'),
    (np.zeros((2, 3)), ValueError, r'1-D.*\(2, 3\)'),
    ([[1, 2], [3, 4]], ValueError, r'1-D.*\(2, 2\)'),
    ([1, 2, 2, 3], ValueError, r'unique.*\[2\]'),
    (np.array(['a', 'b', 'a']), ValueError, r"unique.*'a'"),
    ('abc', TypeError, r'int size or a 1-D list/array.*str'),
    (b'abc', TypeError, r'int size or a 1-D list/array.*bytes'),
    (True, TypeError, r'int size or an array of ids.*True'),
    (2.5, TypeError, r'int size or a 1-D list/array.*float'),
    (None, TypeError, r'int size or a 1-D list/array.*NoneType'),
], ids=['negative', '2d-array', '2d-list', 'duplicates', 'duplicate-str', 'str', 'bytes', 'bool', 'float', 'none'])
def test_index_bad_input(index, error, regex):
    with pytest.raises(error, match=regex) as info:
        DatasetIndex(index)
    assert isinstance(info.value, BatchkitError)


def test_get_pos_unknown_id():
    with pytest.raises(BatchkitKeyError, match=r"unknown id 'zz'"):
        DatasetIndex(['a', 'b']).get_pos('zz')


@pytest.mark.parametrize(('index', 'error', 'regex'), [
    ([[1], [2, 3]], ValueError, r'1-D list/array of ids. Received: a nested list of unequal lengths \[\[1\], \[2, 3\]\]'),
    (np.array([1, 'a', None], dtype=object), TypeError,
     r"one sortable type \(all ints or all strs\). Received: ids of types \['NoneType', 'int', 'str'\]"),
    (np.array([3, None, 1], dtype=object), TypeError, r"types \['NoneType', 'int'\]"),
], ids=['ragged', 'mixed-object', 'none-object'])
def test_index_ids_numpy_cannot_handle(index, error, regex):
    with pytest.raises(error, match=regex) as info:
        DatasetIndex(index)
    assert isinstance(info.value, BatchkitError)


def test_index_of_object_ids_of_one_type():
    assert DatasetIndex(np.array([3, 1, 2], dtype=object)).get_pos(1).tolist() == 1


@pytest.mark.parametrize(('call', 'regex'), [
    (lambda ix: ix.subset_by_ids(3), r'`ids` to be a list/array of ids.*Received: ids=3 of type int.*subset_by_ids\(\[3\]\)'),
    (lambda ix: ix.subset_by_ids(np.int64(3)), r'ids=np.int64\(3\) of type int64|ids=3 of type int64'),
    (lambda ix: ix.subset_by_ids(np.array(3)), r'of type ndarray'),
    (lambda ix: ix.subset_by_ids('ab'), r"ids='ab' of type str"),
    (lambda ix: ix.get_pos([[1, 2]]), r'1-D list/array of ids.*Received: a nested list/array \[\[1, 2\]\]'),
    (lambda ix: ix.get_pos([[1], [2, 3]]), r'Received: a nested list/array \[\[1\], \[2, 3\]\]'),
    (lambda ix: ix.get_pos(np.array([1, {}], dtype=object)), r'hashable scalars.*Received: an id \{\} of type dict'),
    (lambda ix: ix.subset_by_ids([[1, 2]]), r'Received: a nested list/array'),
], ids=['subset-int', 'subset-np-int', 'subset-0d', 'subset-str', 'pos-nested', 'pos-ragged', 'pos-unhashable',
        'subset-nested'])
def test_ids_of_the_wrong_type(call, regex):
    with pytest.raises(TypeError, match=regex) as info:
        call(DatasetIndex(5))
    assert isinstance(info.value, BatchkitError)


def test_create_subset_and_subset_by_ids():
    ix = DatasetIndex(np.array(['a', 'b', 'c', 'd']))
    sub = ix.create_subset([3, 1])
    assert sub.indices.tolist() == ['d', 'b']
    assert sub.root_positions.tolist() == [3, 1]
    subsub = sub.create_subset([1])
    assert subsub.indices.tolist() == ['b']
    assert subsub.root_positions.tolist() == [1]
    assert ix.subset_by_ids(['c', 'a']).indices.tolist() == ['c', 'a']
    assert ix.subset_by_ids(np.array(['d'])).indices.tolist() == ['d']
    assert ix.subset_by_ids(i for i in ['b', 'a']).indices.tolist() == ['b', 'a']


# --- FilesIndex --------------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    for name in ('a.npz', 'b.npz', 'c.npy', 'd.txt'):
        (tmp_path / name).write_bytes(b'x')
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'e.npz').write_bytes(b'x')
    return tmp_path


def test_files_index_from_glob(files):
    fx = FilesIndex(path=str(files / '*.npz'))
    assert fx.indices.tolist() == ['a.npz', 'b.npz']
    assert fx.get_fullpath('a.npz') == str(files / 'a.npz')


def test_files_index_no_ext(files):
    fx = FilesIndex(path=str(files / '*.npz'), no_ext=True)
    assert fx.indices.tolist() == ['a', 'b']
    assert len(fx) == 2
    assert fx.get_fullpath('b') == str(files / 'b.npz')
    assert fx.get_fullpath(fx.indices[0]) == str(files / 'a.npz')     # a numpy str id works too


def test_files_index_from_list_of_globs(files):
    fx = FilesIndex(path=[str(files / '*.npz'), str(files / '*.npy'), str(files / 'sub' / '*.npz')], no_ext=True)
    assert fx.indices.tolist() == ['a', 'b', 'c', 'e']
    assert fx.get_fullpath('c') == str(files / 'c.npy')
    assert fx.get_fullpath('e') == str(files / 'sub' / 'e.npz')


def test_files_index_accepts_pathlike(files):
    fx = FilesIndex(path=files / '*.npy', no_ext=True)
    assert fx.indices.tolist() == ['c']


def test_files_index_overlapping_globs_same_file_once(files):
    fx = FilesIndex(path=[str(files / '*.npz'), str(files / 'a.*')])
    assert fx.indices.tolist() == ['a.npz', 'b.npz']


def test_files_index_dirs(files):
    fx = FilesIndex(path=str(files / '*'), dirs=True)
    assert fx.indices.tolist() == ['sub']
    assert fx.get_fullpath('sub') == str(files / 'sub')


def test_files_index_subset_keeps_paths(files):
    fx = FilesIndex(path=str(files / '*.npz'), no_ext=True)
    sub = fx.create_subset([1])
    assert isinstance(sub, FilesIndex)
    assert sub.indices.tolist() == ['b']
    assert sub.get_fullpath('b') == os.path.join(str(files), 'b.npz')


@pytest.mark.parametrize(('kwargs', 'error', 'regex'), [
    ({'path': 'NOWHERE/*.npz'}, ValueError, r"pattern '.*NOWHERE/\*\.npz' to match at least one file"),
    ({'path': ['*.npz', 'NOWHERE/*.npz']}, ValueError, r'NOWHERE.*no match'),
    ({'path': 'c.npy', 'dirs': True}, ValueError, r'at least one directory'),
    ({'path': None}, ValueError, r'Expected `path`'),
    ({'path': ['*.npz', '*.npy', 'a.*'], 'no_ext': True}, ValueError, r"unique file ids.*'a'"),
    ({'path': '*.npz', 'no_ext': 'yes'}, TypeError, r"`no_ext` to be True or False. Received: no_ext='yes' of type str"),
    ({'path': '*.npz', 'dirs': 1}, TypeError, r"`dirs` to be True or False. Received: dirs=1 of type int"),
    ({'path': '*.npz', 'sort': None}, TypeError, r"`sort` to be True or False. Received: sort=None"),
], ids=['no-match', 'one-of-list-no-match', 'no-dir', 'no-path', 'duplicate-id', 'no-ext-str', 'dirs-int',
        'sort-none'])
def test_files_index_errors(files, monkeypatch, kwargs, error, regex):
    monkeypatch.chdir(files)
    (files / 'a.npy').write_bytes(b'x')      # a.npz and a.npy share the id 'a' without extensions
    with pytest.raises(error, match=regex) as info:
        FilesIndex(**kwargs)
    assert isinstance(info.value, BatchkitError)


def test_files_index_unknown_id(files):
    fx = FilesIndex(path=str(files / '*.npz'), no_ext=True)
    with pytest.raises(KeyError, match=r"'zz'"):
        fx.get_fullpath('zz')


# --- batching rules ----------------------------------------------------------------------------------------
def test_one_epoch_of_ten_by_three():
    assert ids_of(DatasetIndex(10).gen_batch(3)) == TEN_BY_3
    assert plan_ids(BatchPlan(10, 3)) == TEN_BY_3
    assert len(BatchPlan(10, 3)) == 4


def test_default_is_one_epoch():
    assert ids_of(DatasetIndex(10).gen_batch(3, n_epochs=1)) == ids_of(DatasetIndex(10).gen_batch(3))


def test_str_ids_are_batched_in_order():
    ix = DatasetIndex(np.array(list('abcdefghij')))
    assert ids_of(ix.gen_batch(4)) == [list('abcd'), list('efgh'), list('ij')]


def test_drop_last():
    assert ids_of(DatasetIndex(10).gen_batch(3, drop_last=True)) == TEN_BY_3[:3]
    assert len(BatchPlan(10, 3, drop_last=True)) == 3


def test_drop_last_with_exact_fit_keeps_all():
    assert ids_of(DatasetIndex(9).gen_batch(3, drop_last=True)) == TEN_BY_3[:3]
    assert ids_of(DatasetIndex(3).gen_batch(3, drop_last=True)) == [[0, 1, 2]]


def test_batch_size_larger_than_dataset_without_drop_last():
    assert ids_of(DatasetIndex(4).gen_batch(10)) == [[0, 1, 2, 3]]


def test_several_epochs_never_mix():
    assert ids_of(DatasetIndex(10).gen_batch(3, n_epochs=2)) == TEN_BY_3 * 2
    assert ids_of(DatasetIndex(10).gen_batch(3, n_epochs=2, drop_last=True)) == TEN_BY_3[:3] * 2


def test_plan_reports_epochs_and_last_in_epoch():
    marks = [(epoch, last) for epoch, last, _ in BatchPlan(10, 3, n_epochs=2)]
    assert marks == [(0, False), (0, False), (0, False), (0, True), (1, False), (1, False), (1, False), (1, True)]


@pytest.mark.parametrize(('n_iters', 'expected'), [
    (1, TEN_BY_3[:1]),
    (4, TEN_BY_3),
    (6, TEN_BY_3 + TEN_BY_3[:2]),
    (9, TEN_BY_3 * 2 + TEN_BY_3[:1]),
])
def test_n_iters_cycles_through_epochs(n_iters, expected):
    assert ids_of(DatasetIndex(10).gen_batch(3, n_iters=n_iters)) == expected
    assert len(BatchPlan(10, 3, n_iters=n_iters)) == n_iters


def test_n_iters_with_drop_last():
    assert ids_of(DatasetIndex(10).gen_batch(3, n_iters=5, drop_last=True)) == (TEN_BY_3[:3] * 2)[:5]


def test_n_iters_with_explicit_none_epochs():
    assert ids_of(DatasetIndex(10).gen_batch(3, n_epochs=None, n_iters=2)) == TEN_BY_3[:2]


@pytest.mark.parametrize(('kwargs', 'error', 'regex'), [
    ({'batch_size': 0}, ValueError, r'`batch_size` to be a positive int. Received: batch_size=0'),
    ({'batch_size': -3}, ValueError, r'`batch_size` to be a positive int. Received: batch_size=-3'),
    ({'batch_size': True}, TypeError, r'`batch_size` to be a positive int. Received: batch_size=True'),
    ({'batch_size': 3.0}, TypeError, r'`batch_size` to be a positive int. Received: batch_size=3.0'),
    ({'batch_size': '3'}, TypeError, r"`batch_size` to be a positive int. Received: batch_size='3'"),
    ({'batch_size': 11, 'drop_last': True}, ValueError, r'batch_size.*<= the dataset size \(10\).*drop_last'),
    ({'batch_size': 3, 'n_epochs': 2, 'n_iters': 5}, ValueError, r'either `n_epochs` or `n_iters`, not both'),
    ({'batch_size': 3, 'n_epochs': None}, ValueError, r'never stop'),
    ({'batch_size': 3, 'n_epochs': 0}, ValueError, r'`n_epochs` to be a positive int. Received: n_epochs=0'),
    ({'batch_size': 3, 'n_epochs': 1.5}, TypeError, r'`n_epochs` to be a positive int'),
    ({'batch_size': 3, 'n_iters': 0}, ValueError, r'`n_iters` to be a positive int. Received: n_iters=0'),
    ({'batch_size': 3, 'shuffle': 'x'}, TypeError, r"`shuffle` to be False, True, an int seed or a numpy.random."
                                                   r"Generator. Received: shuffle='x' of type str"),
    ({'batch_size': 3, 'shuffle': 0.5}, TypeError, r'`shuffle`.*0.5'),
    ({'batch_size': 3, 'shuffle': -1}, ValueError, r'non-negative.*shuffle=-1'),
], ids=['bs-zero', 'bs-negative', 'bs-bool', 'bs-float', 'bs-str', 'bs-over-size-drop-last', 'epochs-and-iters',
        'never-stop', 'epochs-zero', 'epochs-float', 'iters-zero', 'shuffle-str', 'shuffle-float',
        'shuffle-negative-seed'])
def test_batching_errors(kwargs, error, regex):
    with pytest.raises(error, match=regex) as info:
        BatchPlan(10, **kwargs)
    assert isinstance(info.value, BatchkitError)
    with pytest.raises(error, match=regex):
        list(DatasetIndex(10).gen_batch(**kwargs))
    with pytest.raises(error, match=regex):
        list(Dataset(10).gen_batch(**kwargs))


@pytest.mark.parametrize('make', [lambda: DatasetIndex(10), lambda: Dataset(10)], ids=['index', 'dataset'])
def test_gen_batch_validates_when_called(make):
    # Bad arguments fail at the call, like the dataset does, not later at the first next().
    with pytest.raises(ValueError, match='not both'):
        make().gen_batch(3, n_epochs=1, n_iters=2)


def test_empty_index_cannot_be_batched():
    with pytest.raises(ValueError, match='at least one item'):
        BatchPlan(0, 3)


# --- shuffle -----------------------------------------------------------------------------------------------
def test_shuffle_false_and_none_keep_order():
    assert ids_of(DatasetIndex(10).gen_batch(3, shuffle=False)) == TEN_BY_3
    assert plan_ids(BatchPlan(10, 3, shuffle=None)) == TEN_BY_3


def test_shuffle_true_gives_permutations():
    runs = [np.concatenate(ids_of(DatasetIndex(50).gen_batch(7, shuffle=True))) for _ in range(3)]
    for run in runs:
        assert sorted(run.tolist()) == list(range(50))
    assert not all(np.array_equal(runs[0], r) for r in runs[1:])


def test_same_seed_same_order():
    first = ids_of(DatasetIndex(30).gen_batch(4, n_epochs=3, shuffle=42))
    second = ids_of(DatasetIndex(30).gen_batch(4, n_epochs=3, shuffle=42))
    other = ids_of(DatasetIndex(30).gen_batch(4, n_epochs=3, shuffle=43))
    assert first == second
    assert first != other
    assert first[0] != [0, 1, 2, 3] or first[1] != [4, 5, 6, 7]     # it is shuffled at all


def test_seed_zero_shuffles():
    assert plan_ids(BatchPlan(30, 30, shuffle=0)) == [np.random.default_rng(0).permutation(30).tolist()]


def test_numpy_int_seed():
    assert plan_ids(BatchPlan(30, 4, shuffle=np.int64(7))) == plan_ids(BatchPlan(30, 4, shuffle=7))


def test_generator_shuffle():
    expected = plan_ids(BatchPlan(30, 4, shuffle=5))
    assert plan_ids(BatchPlan(30, 4, shuffle=np.random.default_rng(5))) == expected
    rng = np.random.default_rng(5)
    assert plan_ids(BatchPlan(30, 4, shuffle=rng)) == expected
    assert plan_ids(BatchPlan(30, 4, shuffle=rng)) != expected       # the caller's generator advanced


def test_each_epoch_gets_a_different_permutation():
    epochs = {}
    for epoch, _, positions in BatchPlan(20, 20, n_epochs=4, shuffle=1):
        epochs[epoch] = positions.tolist()
    assert len(epochs) == 4
    for perm in epochs.values():
        assert sorted(perm) == list(range(20))
    assert len({tuple(p) for p in epochs.values()}) == 4


def test_shuffle_true_each_epoch_differs():
    perms = [positions.tolist() for _, _, positions in BatchPlan(20, 20, n_epochs=3, shuffle=True)]
    assert len({tuple(p) for p in perms}) == 3


# --- properties --------------------------------------------------------------------------------------------
def _expected_sizes(size: int, batch_size: int, drop_last: bool) -> list[int]:
    n_full, rest = divmod(size, batch_size)
    return [batch_size] * n_full + ([rest] if rest and not drop_last else [])


plan_args = dict(
    size=st.integers(1, 200),
    batch_size=st.integers(1, 50),
    n_epochs=st.integers(1, 4),
    drop_last=st.booleans(),
    seed=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
)


@given(**plan_args)
def test_property_epochs(size, batch_size, n_epochs, drop_last, seed):
    shuffle = False if seed is None else seed
    if drop_last and batch_size > size:
        with pytest.raises(ValueError, match='drop_last'):
            BatchPlan(size, batch_size, n_epochs, shuffle=shuffle, drop_last=drop_last)
        return
    plan = BatchPlan(size, batch_size, n_epochs, shuffle=shuffle, drop_last=drop_last)
    batches = list(plan)
    per_epoch = _expected_sizes(size, batch_size, drop_last)
    assert len(batches) == len(plan) == n_epochs * len(per_epoch)

    rest = size % batch_size
    for epoch in range(n_epochs):
        chunk = batches[epoch * len(per_epoch):(epoch + 1) * len(per_epoch)]
        # batches never mix epochs: the plan labels them so, and each epoch is a set of distinct ids
        assert [e for e, _, _ in chunk] == [epoch] * len(chunk)
        assert [last for _, last, _ in chunk] == [False] * (len(chunk) - 1) + [True]
        assert [len(p) for _, _, p in chunk] == per_epoch
        ids = np.concatenate([p for _, _, p in chunk])
        assert len(np.unique(ids)) == len(ids)
        assert ids.min() >= 0 and ids.max() < size
        if drop_last:
            assert len(ids) == size - rest                 # exactly size % batch_size ids missing
            assert all(len(p) == batch_size for _, _, p in chunk)
        else:
            assert sorted(ids.tolist()) == list(range(size))
        if seed is None:
            assert ids.tolist() == list(range(len(ids)))

    # the same through the index, with ids that are not positions
    ix = DatasetIndex(np.arange(size) * 3 + 1)
    via_index = ids_of(ix.gen_batch(batch_size, n_epochs=n_epochs, shuffle=shuffle, drop_last=drop_last))
    assert via_index == [(p * 3 + 1).tolist() for _, _, p in batches]

    # the same seed reproduces the same order
    again = BatchPlan(size, batch_size, n_epochs, shuffle=shuffle, drop_last=drop_last)
    assert [p.tolist() for _, _, p in again] == [p.tolist() for _, _, p in batches]

    # each epoch its own permutation (a collision is astronomically unlikely from 10 items on)
    if seed is not None and size >= 10 and n_epochs > 1 and not drop_last:
        epochs = {tuple(np.concatenate([p for e, _, p in batches if e == k]).tolist()) for k in range(n_epochs)}
        assert len(epochs) == n_epochs


@given(n_iters=st.integers(1, 40), **plan_args)
def test_property_n_iters(size, batch_size, n_epochs, drop_last, seed, n_iters):
    del n_epochs
    shuffle = False if seed is None else seed
    if drop_last and batch_size > size:
        return
    plan = BatchPlan(size, batch_size, n_iters=n_iters, shuffle=shuffle, drop_last=drop_last)
    got = [p.tolist() for _, _, p in plan]
    assert len(got) == len(plan) == n_iters
    per_epoch = len(_expected_sizes(size, batch_size, drop_last))
    cycled = BatchPlan(size, batch_size, n_epochs=math.ceil(n_iters / per_epoch), shuffle=shuffle,
                       drop_last=drop_last)
    assert got == [p.tolist() for _, _, p in cycled][:n_iters]
    assert ids_of(DatasetIndex(size).gen_batch(batch_size, n_iters=n_iters, shuffle=shuffle,
                                               drop_last=drop_last)) == got


# --- next_batch --------------------------------------------------------------------------------------------------
def test_index_next_batch_cycles_forever():
    ix = DatasetIndex(list('abcde'))
    got = [ix.next_batch(2).indices.tolist() for _ in range(7)]
    assert got == [['a', 'b'], ['c', 'd'], ['e'], ['a', 'b'], ['c', 'd'], ['e'], ['a', 'b']]


def test_index_next_batch_keeps_positions():
    sub = DatasetIndex(list('abcde')).create_subset([4, 2, 0])
    batch = sub.next_batch(2)
    assert batch.indices.tolist() == ['e', 'c'] and batch.root_positions.tolist() == [4, 2]


@pytest.mark.parametrize('kwargs, n_batches', [({'n_epochs': 2}, 6), ({'n_iters': 4}, 4)])
def test_index_next_batch_with_a_finite_run_stops_then_starts_over(kwargs, n_batches):
    ix = DatasetIndex(5)
    got = [ix.next_batch(2, **kwargs).indices.tolist() for _ in range(n_batches)]
    assert got == [[0, 1], [2, 3], [4], [0, 1], [2, 3], [4]][:n_batches]
    with pytest.raises(StopIteration):
        ix.next_batch(2, **kwargs)
    assert ix.next_batch(2, **kwargs).indices.tolist() == [0, 1]


def test_index_next_batch_same_batching_rules_as_dataset():
    ix, ds = DatasetIndex(11), Dataset(11)
    for args in [(3,), (3,), (4, 7), (4, 7), (4, 7), (5, 1, None, True), (5, 1, None, True)]:
        assert ix.next_batch(*args).indices.tolist() == ds.next_batch(*args).indices.tolist()
    ix_rng, ds_rng = np.random.default_rng(0), np.random.default_rng(0)      # a generator: consumed by each
    for _ in range(4):
        assert ix.next_batch(2, ix_rng).indices.tolist() == ds.next_batch(2, ds_rng).indices.tolist()
    epochs = [sum((ix.next_batch(4, shuffle=12, drop_last=False).indices.tolist() for _ in range(3)), [])
              for _ in range(3)]
    assert all(sorted(e) == list(range(11)) for e in epochs) and epochs[0] != epochs[1]


def test_index_next_batch_bad_arguments_raise_at_the_call():
    ix = DatasetIndex(5)
    with pytest.raises(BatchkitError, match='batch_size'):
        ix.next_batch(0)
    with pytest.raises(BatchkitError, match='n_epochs'):
        ix.next_batch(2, n_epochs=1, n_iters=3)
    assert ix.next_batch(2).indices.tolist() == [0, 1]


def test_index_next_batch_state_is_the_index_own(tmp_path):
    ix = DatasetIndex(6)
    ix.next_batch(2)
    sub = ix.create_subset([1, 3, 5])
    assert sub.next_batch(2).indices.tolist() == [1, 3]          # not the parent's generator going on
    assert ix.next_batch(2).indices.tolist() == [2, 3]
    import copy
    import pickle
    assert pickle.loads(pickle.dumps(ix)).next_batch(2).indices.tolist() == [0, 1]   # a generator does not travel
    assert copy.copy(ix).next_batch(2).indices.tolist() == [0, 1]
    (tmp_path / 'a.npz').write_bytes(b'x')
    (tmp_path / 'b.npz').write_bytes(b'x')
    fx = FilesIndex(path=str(tmp_path / '*.npz'))
    assert fx.next_batch(1).indices.tolist() == ['a.npz']
    assert pickle.loads(pickle.dumps(fx)).get_fullpath('b.npz') == str(tmp_path / 'b.npz')


@pytest.mark.parametrize('call, error, regex', [
    (lambda: DatasetIndex([]), ValueError, r'at least one id. Received: an empty list'),
    (lambda: FilesIndex(path=[]), ValueError, r'at least one glob pattern. Received: path=\[\]'),
    (lambda: FilesIndex(path=1), TypeError, r'`path` to be a glob pattern .*Received: path=1 of type int'),
    (lambda: FilesIndex(path=5), TypeError, r'Received: path=5 of type int'),
    (lambda: FilesIndex(path=[None]), TypeError, r'Received: path=\[None\] of type list'),
    (lambda: DatasetIndex(5).create_subset(['a']), TypeError, r"int positions in this index \(0 to 4\). "
                                                              r"Received: \['a'\]"),
    (lambda: DatasetIndex(5).create_subset([7]), ValueError, r'positions from 0 to 4 .*Received: \[7\]'),
    (lambda: Dataset(1).split([0.5, 0.3, 0.2]), ValueError, r'shares=\[0.5, 0.3, 0.2\] of 1 items.*sizes \[0, 1, 0\]'),
    (lambda: Dataset(3).split(0.1), ValueError, r'sizes \[0, 3\]'),
], ids=['empty-ids', 'files-empty', 'files-int', 'files-5', 'files-none', 'subset-str', 'subset-out-of-range',
        'split-empty-part', 'split-empty-train'])
def test_built_wrong_is_a_clear_error(call, error, regex):
    with pytest.raises(error, match=regex) as info:
        call()
    assert isinstance(info.value, BatchkitError)
