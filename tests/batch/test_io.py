"""Tests of batchkit.batch.io: ArrayBatch.load / ArrayBatch.dump in npz, npy, csv and 'array' formats."""
from __future__ import annotations

import csv
import os
import threading

import numpy as np
import pytest

from batchkit import (ArrayBatch, BatchkitError, BatchkitKeyError, BatchkitTypeError, BatchkitValueError, Dataset,
                      DatasetIndex, FilesIndex)
from batchkit.batch import io as bio

N = 10
IDS = np.arange(100, 100 + N)          # ids differ from positions, so mixing them up shows


class ImgBatch(ArrayBatch):
    components = ('images', 'labels')


class FreeBatch(ArrayBatch):
    """Declares no components."""


@pytest.fixture
def arrays():
    images = np.arange(N * 2 * 3, dtype=float).reshape(N, 2, 3)
    labels = np.arange(N) * 10
    return images, labels


@pytest.fixture
def npz_file(tmp_path, arrays):
    path = tmp_path / 'data.npz'
    np.savez(path, images=arrays[0], labels=arrays[1], extra=np.zeros(N))
    return str(path)


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / 'table.csv'
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['key', 'x', 'y', 'name'])
        for i in range(N):
            w.writerow([f'k{IDS[i]}', i, i / 2, f'item{i}'])
        f.write('\n')                                     # a blank last line is not an item
    return str(path)


def batches(ds, batch_size=3):
    return list(ds.gen_batch(batch_size, shuffle=False))


def rows(batch):
    return batch.index.root_positions


# --- npz ----------------------------------------------------------------------------------------------------
def test_npz_whole_file_over_shuffled_split(npz_file, arrays):
    ds = Dataset(DatasetIndex(IDS), batch_class=ImgBatch)
    ds.split(0.7, shuffle=1)
    seen = []
    for b in batches(ds.train):
        assert b.load(src=npz_file, fmt='npz') is b
        pos = b.indices - 100
        np.testing.assert_array_equal(b.images, arrays[0][pos])
        np.testing.assert_array_equal(b.labels, arrays[1][pos])
        assert 'extra' not in vars(b)            # only declared components by default
        seen += b.indices.tolist()
    assert sorted(seen) == sorted(ds.train.indices.tolist())
    assert seen != sorted(seen)                  # the split really was shuffled


def test_npz_default_components_without_declared_ones(npz_file, arrays):
    b = batches(Dataset(N, batch_class=FreeBatch))[1]
    b.load(src=npz_file)
    np.testing.assert_array_equal(b.extra, np.zeros(3))
    np.testing.assert_array_equal(b.images, arrays[0][3:6])


def test_npz_components_as_str_and_list(npz_file, arrays):
    b = batches(Dataset(N, batch_class=ImgBatch))[0]
    b.load(src=npz_file, components='labels')
    assert 'images' not in vars(b)
    b.load(src=npz_file, components=['extra', 'images'])
    np.testing.assert_array_equal(b.extra, np.zeros(3))
    np.testing.assert_array_equal(b.images, arrays[0][:3])


def test_npz_roundtrip_through_files_index(tmp_path, arrays):
    out = tmp_path / 'out'
    ds = Dataset(DatasetIndex(IDS), batch_class=ImgBatch, preloaded={'images': arrays[0], 'labels': arrays[1]})
    for b in batches(ds):
        b.dump(str(out), fmt='npz')
    assert sorted(os.listdir(out)) == sorted(f'{i}.npz' for i in IDS)
    fds = Dataset(FilesIndex(path=os.path.join(out, '*.npz'), no_ext=True), batch_class=ImgBatch)
    for b in batches(fds, 4):
        b.load(fmt='npz')
        pos = b.indices.astype(int) - 100
        assert b.images.dtype == arrays[0].dtype and b.labels.dtype == arrays[1].dtype
        np.testing.assert_array_equal(b.images, arrays[0][pos])
        np.testing.assert_array_equal(b.labels, arrays[1][pos])


def test_npz_per_item_from_directory_and_defaults(tmp_path, arrays):
    ds = Dataset.from_arrays(images=arrays[0], labels=arrays[1])
    for b in batches(ds):
        b.dump(str(tmp_path))
    b = batches(Dataset(N, batch_class=FreeBatch), 4)[1]
    b.load(src=str(tmp_path), fmt='npz')          # a directory: `{id}.npz` per item, all keys of the files
    np.testing.assert_array_equal(b.images, arrays[0][4:8])
    np.testing.assert_array_equal(b.labels, arrays[1][4:8])


def test_npz_dump_component_named_like_savez_arguments(tmp_path):
    ds = Dataset.from_arrays(file=np.arange(4), allow_pickle=np.ones(4))
    batches(ds, 4)[0].dump(str(tmp_path))
    with np.load(tmp_path / '2.npz') as f:
        assert sorted(f.files) == ['allow_pickle', 'file'] and f['file'] == 2


def test_dump_includes_loaded_components(tmp_path, npz_file, arrays):
    b = batches(Dataset(N, batch_class=FreeBatch))[0]
    b.load(src=npz_file, components='images')
    b.dump(str(tmp_path / 'out'))
    with np.load(tmp_path / 'out' / '1.npz') as f:
        assert f.files == ['images']
        np.testing.assert_array_equal(f['images'], arrays[0][1])


# --- npy ----------------------------------------------------------------------------------------------------
def test_npy_whole_file(tmp_path, arrays):
    path = str(tmp_path / 'images.npy')
    np.save(path, arrays[0])
    ds = Dataset(DatasetIndex(IDS), batch_class=ImgBatch)
    ds.split(0.5, shuffle=3)
    for b in batches(ds.test, 2):
        b.load(src=path, fmt='npy')              # default: the first declared component
        assert type(b.images) is np.ndarray       # not a memmap into the file
        np.testing.assert_array_equal(b.images, arrays[0][b.indices - 100])
        b.load(src=path, fmt='npy', components='labels')
        np.testing.assert_array_equal(b.labels, arrays[0][b.indices - 100])


def test_npy_roundtrip_through_files_index(tmp_path, arrays):
    ds = Dataset.from_arrays(images=arrays[0], labels=arrays[1])
    for b in batches(ds):
        b.dump(str(tmp_path), fmt='npy', components='images')
    assert len(os.listdir(tmp_path)) == N
    fds = Dataset(FilesIndex(path=str(tmp_path / '*.npy'), no_ext=True), batch_class=ImgBatch)
    for b in batches(fds):
        b.load(fmt='npy')
        np.testing.assert_array_equal(b.images, arrays[0][b.indices.astype(int)])


def test_a_per_item_npz_file_that_is_no_zip_archive_is_named(tmp_path):
    np.save(tmp_path / '0.npy', np.arange(3))
    os.rename(tmp_path / '0.npy', tmp_path / '0.npz')
    fds = Dataset(FilesIndex(path=str(tmp_path / '*.npz'), no_ext=True), batch_class=ImgBatch)
    [b] = batches(fds)
    with pytest.raises(BatchkitValueError, match=r"Expected an npz file.*0\.npz.*not a zip archive.*fmt='npy'"):
        b.load(fmt='npz')


@pytest.mark.parametrize('fmt', ['npz', 'npy'])
def test_a_per_item_file_removed_after_indexing_is_named(tmp_path, fmt):
    for i in range(2):
        if fmt == 'npz':
            np.savez(tmp_path / f'{i}.npz', images=np.arange(3))
        else:
            np.save(tmp_path / f'{i}.npy', np.arange(3))
    fds = Dataset(FilesIndex(path=str(tmp_path / f'*.{fmt}'), no_ext=True), batch_class=ImgBatch)
    os.remove(tmp_path / f'1.{fmt}')
    [b] = batches(fds)
    with pytest.raises(bio.MissingFileError, match=rf'1\.{fmt}.*does not exist'):
        b.load(fmt=fmt, components='images')


def test_per_item_npy_files_of_several_layouts_stack_in_one_run(tmp_path):
    """Layouts are kept by header: files whose dtype differs still stack (in the common dtype), not reuse a layout."""
    for i, dtype in enumerate(['f4', 'f8', 'f4']):
        np.save(tmp_path / f'{i}.npy', np.full(3, i, dtype=dtype))
    fds = Dataset(FilesIndex(path=str(tmp_path / '*.npy'), no_ext=True), batch_class=ImgBatch)
    [b] = batches(fds)
    b.load(fmt='npy')
    assert b.images.dtype == np.float64
    np.testing.assert_array_equal(b.images, np.repeat(b.indices.astype(float)[:, None], 3, axis=1))


# --- csv ----------------------------------------------------------------------------------------------------
def test_csv_by_position(csv_file):
    ds = Dataset(N, batch_class=FreeBatch)
    ds.split(0.6, shuffle=5)
    for b in batches(ds.train):
        b.load(src=csv_file, fmt='csv', components=['x', 'y', 'name'])
        pos = rows(b)
        assert b.x.dtype.kind == 'i' and b.y.dtype.kind == 'f' and b.name.dtype.kind == 'U'
        np.testing.assert_array_equal(b.x, pos)
        np.testing.assert_array_equal(b.y, pos / 2)
        assert b.name.tolist() == [f'item{p}' for p in pos]


@pytest.mark.parametrize('where', ['nothing', 'a directory'])
def test_csv_from_no_file_says_it_reads_one_table(tmp_path, where):
    b = batches(Dataset(N, batch_class=FreeBatch))[0]
    src = None if where == 'nothing' else str(tmp_path)
    with pytest.raises(BatchkitValueError, match=r"Expected `src` to be a csv file for fmt='csv' .*Received: src="
                                                 r".*fmt='npz' or 'npy'"):
        b.load(src=src, fmt='csv', components='x')


def test_csv_default_components(csv_file):
    b = batches(Dataset(np.array([f'k{i}' for i in IDS]), batch_class=FreeBatch))[0]
    b.load(src=csv_file, fmt='csv', index_col='key')
    assert {'x', 'y', 'name'} <= set(vars(b)) and 'key' not in vars(b)


def test_csv_with_index_col(csv_file):
    ids = np.array([f'k{i}' for i in IDS[::-1]])          # reversed: rows must follow ids, not positions
    ds = Dataset(DatasetIndex(ids), batch_class=FreeBatch)
    for b in batches(ds, 4):
        b.load(src=csv_file, fmt='csv', components='x', index_col='key')
        np.testing.assert_array_equal(b.x, [int(i[1:]) - 100 for i in b.indices])


def test_csv_is_parsed_once_and_again_after_a_change(csv_file):
    assert bio._csv_table(csv_file) is bio._csv_table(csv_file)
    before = bio._csv_table(csv_file)
    with open(csv_file, 'a') as f:
        f.write('k999,99,1.5,new\n')
    after = bio._csv_table(csv_file)
    assert after is not before and after.column('x')[-1] == 99


def test_csv_dump_appends_and_reads_back(tmp_path, arrays):
    path = str(tmp_path / 'sub' / 'out.csv')
    ds = Dataset(DatasetIndex(IDS), batch_class=ImgBatch, preloaded={'images': arrays[0], 'labels': arrays[1]})
    for b in batches(ds):
        b.dump(path, fmt='csv', components='labels')
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == 'id,labels' and len(lines) == N + 1
    back = Dataset(DatasetIndex(IDS[::-1]), batch_class=ImgBatch)
    for b in batches(back):
        b.load(src=path, fmt='csv', components='labels', index_col='id')
        np.testing.assert_array_equal(b.labels, arrays[1][b.indices - 100])


def test_csv_dump_from_threads_does_not_interleave(tmp_path):
    path = str(tmp_path / 'out.csv')
    n = 2000
    ds = Dataset.from_arrays(a=np.arange(n), b=np.arange(n) * 0.5)
    threads = [threading.Thread(target=b.dump, args=(path, 'csv')) for b in batches(ds, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(path, newline='') as f:
        table = list(csv.reader(f))
    assert table[0] == ['id', 'a', 'b'] and len(table) == n + 1
    assert sorted(int(r[0]) for r in table[1:]) == list(range(n))
    assert all(int(r[1]) == int(r[0]) and float(r[2]) == int(r[0]) / 2 for r in table[1:])


# --- array --------------------------------------------------------------------------------------------------
def test_array_formats(arrays):
    ds = Dataset(N, batch_class=ImgBatch)
    ds.split(0.5, shuffle=7)
    for b in batches(ds.train, 2):
        pos = rows(b)
        b.load(src=arrays[1], fmt='array', components='labels')
        np.testing.assert_array_equal(b.labels, arrays[1][pos])
        b.load(src=arrays[0], fmt='array')                       # default: the first declared component
        np.testing.assert_array_equal(b.images, arrays[0][pos])
        b.load(src=(arrays[1], arrays[0]), fmt='array', components=['labels', 'images'])
        np.testing.assert_array_equal(b.images, arrays[0][pos])
        b.load(src={'images': arrays[0] + 1, 'other': arrays[1]}, fmt='array')
        np.testing.assert_array_equal(b.images, arrays[0][pos] + 1)
        assert 'other' not in vars(b)


# --- errors -------------------------------------------------------------------------------------------------
@pytest.fixture
def batch():
    return batches(Dataset(N, batch_class=ImgBatch))[0]


@pytest.fixture
def files_batch(tmp_path, arrays):
    out = tmp_path / 'items'
    ds = Dataset.from_arrays(images=arrays[0], labels=arrays[1])
    for b in batches(ds):
        b.dump(str(out))
    np.savez(out / '1.npz', images=arrays[0][1])          # one file lacks 'labels'
    return batches(Dataset(FilesIndex(path=str(out / '*.npz'), no_ext=True), batch_class=ImgBatch))[0]


ERRORS = [
    (lambda b, p: b.load(src=p['missing'], fmt='npz'), BatchkitValueError, r"nope\.npz.*does not exist"),
    (lambda b, p: b.load(src=p['missing'], fmt='npy'), FileNotFoundError, r"nope\.npz"),
    (lambda b, p: b.load(src=p['npz'], components='masks'), BatchkitKeyError, r"'masks' in .*data\.npz.*'extra'"),
    (lambda b, p: b.load(src=p['short'], fmt='npz'), BatchkitValueError, r"at least 3.*Received: 2 rows"),
    (lambda b, p: b.load(src=p['npz'], fmt='hdf5'), BatchkitValueError, r"one of \['npz', 'npy', 'csv', 'array'(, 'wfdb')?\]"),
    (lambda b, p: b.load(src=p['npz'], fmt='npy', components=['images', 'labels']), BatchkitValueError,
     r"exactly one component"),
    (lambda b, p: b.load(src=p['csv'], fmt='csv', components='z'), BatchkitKeyError, r"'z' in .*table\.csv.*'name'"),
    (lambda b, p: b.load(src=p['csv'], fmt='csv', components='x', index_col='nokey'), BatchkitKeyError,
     r"'nokey' in .*table\.csv"),
    (lambda b, p: b.load(src=p['csv'], fmt='csv', components='x', index_col='key'), BatchkitKeyError,
     r"no row for ids \['0', '1', '2'\]"),
    (lambda b, p: b.load(fmt='npz'), BatchkitValueError, r"FilesIndex.*src=None"),
    (lambda b, p: b.load(src=p['npz'], index_col='x'), BatchkitTypeError, r"index_col.*fmt='npz'"),
    (lambda b, p: b.load(src=(np.zeros(N),), fmt='array'), BatchkitValueError, r"one array per component"),
    (lambda b, p: b.load(src={'a': np.zeros(N)}, fmt='array'), BatchkitKeyError, r"at least one of the comp"),
    (lambda b, p: b.load(src=np.zeros(N), fmt='npz'), BatchkitTypeError, r"a path"),
    (lambda b, p: b.dump(p['dir'], fmt='hdf5'), BatchkitValueError, r"one of \['npz', 'npy', 'csv'\]"),
    (lambda b, p: b.dump(p['dir'], fmt='npy', components=['images', 'labels']), BatchkitValueError,
     r"exactly one component"),
    (lambda b, p: b.dump(p['dir'], fmt='npz'), BatchkitValueError, r"a component to dump"),
    (lambda b, p: b.dump(p['csv'], fmt='csv', components='x'), BatchkitValueError, r"one row per batch item"),
]


@pytest.mark.parametrize('call, exc, message', ERRORS)
def test_errors(call, exc, message, batch, tmp_path, npz_file, csv_file):
    short = tmp_path / 'short.npz'
    np.savez(short, images=np.zeros((2, 1)))
    paths = {'missing': str(tmp_path / 'nope.npz'), 'npz': npz_file, 'short': str(short), 'csv': csv_file,
             'dir': str(tmp_path / 'dumped')}
    batch.x = np.zeros(5)                                  # a wrong-length component
    with pytest.raises(exc, match=message) as info:
        call(batch, paths)
    assert isinstance(info.value, BatchkitError)


def test_missing_component_in_one_item_file(files_batch):
    with pytest.raises(BatchkitKeyError, match=r"'labels' in .*1\.npz.*\['images'\]"):
        files_batch.load(fmt='npz')


def test_missing_item_file(files_batch):
    os.remove(files_batch.index.get_fullpath('2'))
    with pytest.raises(FileNotFoundError, match=r"2\.npz"):
        files_batch.load(fmt='npz', components='images')


def test_item_files_of_different_shapes(files_batch):
    np.savez(files_batch.index.get_fullpath('2'), images=np.zeros(1))
    with pytest.raises(BatchkitValueError, match=r"same shape.*\(2, 3\) in .*0\.npz.*\(1,\) in .*2\.npz"):
        files_batch.load(fmt='npz', components='images')


def test_csv_dump_to_file_with_other_columns(tmp_path, csv_file, arrays):
    b = batches(Dataset.from_arrays(labels=arrays[1]))[0]
    with pytest.raises(BatchkitValueError, match=r"columns \['id', 'labels'\].*'key'"):
        b.dump(csv_file, fmt='csv')


# --- atomicity ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize('fmt', ['npz', 'npy'])
def test_dump_leaves_no_temp_files(tmp_path, arrays, fmt):
    ds = Dataset.from_arrays(images=arrays[0])
    for b in batches(ds):
        b.dump(str(tmp_path), fmt=fmt)
    assert sorted(os.listdir(tmp_path)) == sorted(f'{i}.{fmt}' for i in range(N))


def test_failed_dump_leaves_no_temp_files(tmp_path, monkeypatch):
    def broken(f, arrays):
        f.write(b'half a file')
        raise OSError('disk full')

    monkeypatch.setattr(bio, '_write_npz', broken)
    with pytest.raises(OSError, match='disk full'):
        batches(Dataset.from_arrays(x=np.arange(3)))[0].dump(str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_dump_refuses_object_arrays(tmp_path):
    ds = Dataset.from_arrays(obj=np.array([{'a': 1}, None, 'x'], dtype=object))
    with pytest.raises(BatchkitValueError, match="'obj' of dtype object"):
        batches(ds)[0].dump(str(tmp_path))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('dst, fmt, cause', [
    ('blocker/sub', 'npz', 'NotADirectoryError'),
    ('blocker/sub.csv', 'csv', 'FileExistsError|NotADirectoryError'),
], ids=['npz-under-a-file', 'csv-under-a-file'])
def test_dump_to_an_unwritable_path_is_a_clear_error(batch, tmp_path, dst, fmt, cause):
    (tmp_path / 'blocker').write_text('a file, not a directory')
    batch.images = np.zeros((len(batch), 2))
    with pytest.raises(ValueError, match=rf"Expected `dst` under a directory .*Received: dst=.*({cause})") as info:
        batch.dump(str(tmp_path / dst), fmt)
    assert isinstance(info.value, BatchkitError)
