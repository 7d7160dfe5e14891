"""Tests of the 'wfdb' load format: records written with the wfdb package, read one per item of a FilesIndex."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from batchkit import (ArrayBatch, B, BatchkitKeyError, BatchkitValueError, Dataset, DatasetIndex, FilesIndex,
                      MissingFileError, V)

with warnings.catch_warnings():     # wfdb 4.3 calls a pandas API deprecated in pandas 3 when it is imported
    warnings.simplefilter('ignore', DeprecationWarning)
    import wfdb

# wfdb 4.3 calls a pandas API that pandas 3 deprecates (DataFrame.drop(inplace=True)), scoped to wfdb's modules
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning:wfdb.*')
FS = 250


class EcgBatch(ArrayBatch):
    components = ('signal', 'meta', 'target')


def synthetic(n_channels: int, n_samples: int, seed: int) -> np.ndarray:
    """(n_samples, n_channels) physical values in mV: sinusoids plus noise, as wfdb.wrsamp takes them."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / FS
    return np.stack([np.sin(2 * np.pi * (1 + c) * t) + 0.1 * rng.normal(size=n_samples)
                     for c in range(n_channels)], axis=1)


def write(directory, name: str, signal: np.ndarray, comments=()) -> None:
    wfdb.wrsamp(name, fs=FS, units=['mV'] * signal.shape[1], sig_name=[f'ch{c}' for c in range(signal.shape[1])],
                p_signal=signal, fmt=['16'] * signal.shape[1], comments=list(comments), write_dir=str(directory))


@pytest.fixture
def records(tmp_path):
    """Six two-channel records of 500 samples, named A00..A05; the signals as written."""
    signals = {}
    for i in range(6):
        signals[f'A{i:02d}'] = synthetic(2, 500, seed=i)
        write(tmp_path, f'A{i:02d}', signals[f'A{i:02d}'], comments=[f'record {i}'])
    return tmp_path, signals


def test_load_reads_one_record_per_item_channels_first(records):
    directory, signals = records
    ds = Dataset(FilesIndex(path=str(directory / '*.hea'), no_ext=True), batch_class=EcgBatch)
    batches = list(ds.p.load(fmt='wfdb', components=['signal', 'meta']).gen_batch(4, shuffle=False))
    assert [len(b) for b in batches] == [4, 2]
    for batch in batches:
        assert batch.signal.shape == (len(batch), 2, 500) and batch.signal.dtype == np.float64
        for i, id_ in enumerate(batch.indices):
            expected = wfdb.rdrecord(str(directory / id_)).p_signal.T
            np.testing.assert_array_equal(batch.signal[i], expected)            # exactly what wfdb reads
            np.testing.assert_allclose(batch.signal[i], signals[id_].T, atol=2e-3)   # the written values (16 bit)
            meta = batch.meta[i]
            assert meta['fs'] == FS and meta['sig_len'] == 500 and meta['n_sig'] == 2
            assert meta['sig_name'] == ['ch0', 'ch1'] and meta['units'] == ['mV', 'mV']
            assert meta['comments'] == [f'record {int(id_[1:])}']
        assert batch.meta.dtype == object and batch.meta.shape == (len(batch),)


@pytest.mark.parametrize('pattern, no_ext', [('*.hea', True), ('*.hea', False), ('*.dat', True)])
def test_files_index_over_headers_or_signal_files(records, pattern, no_ext):
    """The record name is the indexed file's path without its .hea / .dat extension."""
    directory, signals = records
    ds = Dataset(FilesIndex(path=str(directory / pattern), no_ext=no_ext), batch_class=EcgBatch)
    batch = ds.p.load(fmt='wfdb', components='signal').next_batch(6, n_epochs=1, shuffle=False)
    for i, id_ in enumerate(batch.indices):
        np.testing.assert_allclose(batch.signal[i], signals[str(id_)[:3]].T, atol=2e-3)


def test_batchkit_does_not_import_wfdb():
    code = "import sys, batchkit; assert 'wfdb' not in sys.modules, 'import batchkit loaded wfdb'"
    subprocess.run([sys.executable, '-c', code], check=True)


def test_records_of_different_lengths_give_an_object_array(tmp_path):
    lengths = {'r0': 300, 'r1': 450, 'r2': 300}
    for name, n in lengths.items():
        write(tmp_path, name, synthetic(1, n, seed=n))
    ds = Dataset(FilesIndex(path=str(tmp_path / '*.hea'), no_ext=True), batch_class=EcgBatch)
    batch = ds.p.load(fmt='wfdb', components='signal').next_batch(3, n_epochs=1, shuffle=False)
    assert batch.signal.dtype == object and batch.signal.shape == (3,)
    assert [s.shape for s in batch.signal] == [(1, 300), (1, 450), (1, 300)]
    assert batch.meta is None                                   # only what was asked for


def test_default_components_are_the_declared_wfdb_ones(records):
    class SignalOnly(ArrayBatch):
        components = ('signal', 'target')

    directory, _ = records
    batch = Dataset(FilesIndex(path=str(directory / '*.hea'), no_ext=True), batch_class=SignalOnly) \
        .p.load(fmt='wfdb').next_batch(2, n_epochs=1)
    assert batch.signal.shape == (2, 2, 500) and not hasattr(batch, 'meta')


def test_src_directory_with_ids_as_record_names(records):
    directory, signals = records
    ds = Dataset(DatasetIndex(np.array(['A03', 'A01'])), batch_class=EcgBatch)
    batch = ds.p.load(src=str(directory), fmt='wfdb').next_batch(2, n_epochs=1, shuffle=False)
    np.testing.assert_allclose(batch.signal[0], signals['A03'].T, atol=2e-3)
    np.testing.assert_allclose(batch.signal[1], signals['A01'].T, atol=2e-3)


def test_targets_from_a_csv_next_to_the_records_under_prefetch(records):
    """The seed-003 shape: signals from wfdb, targets from a REFERENCE.csv keyed by record id."""
    directory, _ = records
    (directory / 'REFERENCE.csv').write_text('id,target\n' + ''.join(f'A{i:02d},{i % 2}\n' for i in range(6)))
    ds = Dataset(FilesIndex(path=str(directory / '*.hea'), no_ext=True), batch_class=EcgBatch)
    p = (ds.p.init_variable('seen', default=list)
         .load(fmt='wfdb', components=['signal', 'meta'])
         .load(src=str(directory / 'REFERENCE.csv'), fmt='csv', components='target', index_col='id')
         .update(V('seen', mode='e'), B('target')))
    p.run(2, n_epochs=3, prefetch=2, shuffle=False)
    assert p.get_variable('seen') == [0, 1, 0, 1, 0, 1] * 3


ERRORS = [
    pytest.param({'components': ['signals']}, BatchkitKeyError, r"among \['signal', 'meta'\].*Did you mean 'signal'",
                 id='unknown-component'),
    pytest.param({'src': 'nowhere/at/all'}, BatchkitValueError, r"directory of the wfdb records", id='bad-src'),
]


@pytest.mark.parametrize('kwargs, error, message', ERRORS)
def test_errors(records, kwargs, error, message):
    directory, _ = records
    ds = Dataset(FilesIndex(path=str(directory / '*.hea'), no_ext=True), batch_class=EcgBatch)
    with pytest.raises(error, match=message):
        ds.p.load(fmt='wfdb', **kwargs).next_batch(2, n_epochs=1)


def test_missing_header_is_a_missing_file_error(records):
    directory, _ = records
    ds = Dataset(FilesIndex(path=str(directory / '*.hea'), no_ext=True), batch_class=EcgBatch)
    (directory / 'A00.hea').unlink()
    with pytest.raises(MissingFileError, match=r"A00\.hea") as info:
        ds.p.load(fmt='wfdb').next_batch(2, n_epochs=1, shuffle=False)
    assert isinstance(info.value, FileNotFoundError)


def test_plain_index_without_src_says_how_to_fix():
    ds = Dataset(3, batch_class=EcgBatch)
    with pytest.raises(BatchkitValueError, match=r"FilesIndex\(path='dir/\*\.hea', no_ext=True\)"):
        ds.p.load(fmt='wfdb').next_batch(2, n_epochs=1)
