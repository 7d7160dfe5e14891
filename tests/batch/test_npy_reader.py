"""Tests of batchkit.batch.npy_reader: the fast readers of small .npy and .npz files give what np.load gives."""
from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from batchkit.batch.npy_reader import NpzReader, read_npy

NPY_ARRAYS = {
    'c float32': np.arange(12, dtype=np.float32).reshape(3, 4),
    'fortran': np.asfortranarray(np.arange(12.).reshape(3, 4)),
    'big-endian': np.arange(6, dtype='>i4').reshape(2, 3),
    'scalar': np.array(7.5),
    'structured': np.array([(1, 2.5), (3, 4.5)], dtype=[('a', 'i2'), ('b', 'f8')]),
    'unicode': np.array(['ab', 'cde']),
    'empty rows': np.zeros((0, 3), dtype=np.uint8),
}


@pytest.mark.parametrize('kind', sorted(NPY_ARRAYS))
def test_a_per_item_npy_file_reads_as_np_load_reads_it_without_calling_np_load(tmp_path, monkeypatch, kind):
    expected = NPY_ARRAYS[kind]
    path = str(tmp_path / 'a.npy')
    np.save(path, expected)
    monkeypatch.setattr(np, 'load', lambda *a, **k: pytest.fail('np.load called for a plain version 1 file'))
    for _ in range(2):          # the second read takes the kept layout
        got = read_npy(path)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert got.flags.f_contiguous == expected.flags.f_contiguous
        np.testing.assert_array_equal(got, expected)


def test_npy_files_the_fast_path_does_not_know_go_to_np_load_with_its_results_and_errors(tmp_path):
    v2 = str(tmp_path / 'v2.npy')
    with open(v2, 'wb') as f:
        np.lib.format.write_array(f, np.arange(5), version=(2, 0))
    np.testing.assert_array_equal(read_npy(v2), np.arange(5))
    objects = str(tmp_path / 'objects.npy')
    np.save(objects, np.array([{'a': 1}, None], dtype=object))
    with pytest.raises(ValueError, match='allow_pickle'):
        read_npy(objects)
    short = str(tmp_path / 'short.npy')
    np.save(short, np.arange(100))
    with open(short, 'r+b') as f:
        f.truncate(os.path.getsize(short) - 8)
    with pytest.raises(ValueError) as raised:
        read_npy(short)
    with pytest.raises(ValueError) as from_np_load:
        np.load(short)
    assert str(raised.value) == str(from_np_load.value)


def test_an_npz_file_reads_as_np_load_reads_it_without_numpy_s_reader(tmp_path, monkeypatch):
    path = str(tmp_path / 'a.npz')
    np.savez(path, **{k.replace(' ', '_'): v for k, v in NPY_ARRAYS.items()})
    with np.load(path) as expected:
        wanted = {name: expected[name] for name in expected.files}
    monkeypatch.setattr(np.lib.format, 'read_array', lambda *a, **k: pytest.fail("numpy's reader called"))
    with NpzReader(path) as got:
        assert got.files == list(wanted)
        for name, array in wanted.items():
            assert got[name].dtype == array.dtype and got[name].shape == array.shape
            np.testing.assert_array_equal(got[name], array)


def test_npz_members_the_fast_path_does_not_know_are_read_by_np_load_s_reader(tmp_path):
    path = str(tmp_path / 'a.npz')
    np.savez_compressed(path, plain=np.arange(4), objects=np.array([None, {}], dtype=object))
    with NpzReader(path) as got:
        np.testing.assert_array_equal(got['plain'], np.arange(4))       # compressed: zipfile inflates it
        with pytest.raises(ValueError, match='allow_pickle'):
            got['objects']
    np.save(tmp_path / 'a.npy', np.arange(3))
    with pytest.raises(zipfile.BadZipFile):
        NpzReader(str(tmp_path / 'a.npy'))
