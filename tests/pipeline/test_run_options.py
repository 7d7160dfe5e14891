"""Run options: wrong types raise the TypeError branch, numpy scalars pass, internal fields are not options."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from batchkit import ArrayBatch, BatchkitError, Dataset, action


class OptBatch(ArrayBatch):
    components = ('x',)

    @action
    def double(self):
        self.x = self.x * 2
        return self


@pytest.fixture
def pipeline():
    return Dataset(10, OptBatch, preloaded=(np.arange(10),)).p.double()


@pytest.mark.parametrize('options, error, regex', [
    ({'prefetch': '2'}, TypeError, r"`prefetch` to be a non-negative int. Received: prefetch='2' of type str"),
    ({'prefetch': 2.0}, TypeError, r"Received: prefetch=2.0 of type float"),
    ({'prefetch': -1}, ValueError, r"`prefetch` to be a non-negative int. Received: prefetch=-1"),
    ({'forever': True}, TypeError, r"Expected run options among .*Received: 'forever'"),
    ({'resets': ('models',)}, TypeError, r"Expected run options among .*Received: 'resets'"),
], ids=['prefetch-str', 'prefetch-float', 'prefetch-negative', 'forever', 'resets'])
def test_run_option_errors(pipeline, options, error, regex):
    with pytest.raises(error, match=regex) as info:
        pipeline.run(2, **options)
    assert isinstance(info.value, BatchkitError)


def test_unknown_option_lists_only_real_options(pipeline):
    with pytest.raises(TypeError) as info:
        pipeline.run(2, bogus=1)
    listed = str(info.value).split('Received')[0]
    assert 'prefetch' in listed and 'forever' not in listed and 'resets' not in listed
    assert str(info.value).count("'prefetch'") == 1            # the options are listed once, not again after it


def test_forever_does_not_bypass_the_never_stop_check(pipeline):
    with pytest.raises(ValueError, match='never stop'):
        pipeline.gen_batch(2, n_epochs=None)
    with pytest.raises(TypeError, match="Received: 'forever'"):
        pipeline.gen_batch(2, n_epochs=None, forever=True)


@pytest.mark.parametrize('options', [{'prefetch': np.int64(2)}, {'shuffle': np.bool_(True)},
                                     {'drop_last': np.bool_(True)}, {'shuffle': np.int32(3)}],
                         ids=['prefetch-np-int', 'shuffle-np-bool', 'drop-last-np-bool', 'shuffle-np-seed'])
def test_numpy_scalars_are_accepted(pipeline, options):
    batches = list(pipeline.gen_batch(3, **options))
    total = sorted(np.concatenate([b.x for b in batches]).tolist())
    expected = [2 * i for i in range(10)]
    if options.get('drop_last'):
        assert len(total) == 9 and set(total) <= set(expected)
    else:
        assert total == expected


def test_shut_down_executor_is_a_clear_error(pipeline):
    executor = ThreadPoolExecutor(2)
    executor.shutdown()
    with pytest.raises(RuntimeError, match='Expected `executor` to accept work. Received: a ThreadPoolExecutor '
                                           'that was shut down') as info:
        pipeline.run(2, prefetch=1, executor=executor)
    assert isinstance(info.value, BatchkitError)


def test_reset_of_a_wrong_type_is_a_type_error(pipeline):
    with pytest.raises(TypeError, match=r"Expected reset to be 'models', 'variables' or a list.*reset=5") as info:
        pipeline.run(2, reset=5)
    assert isinstance(info.value, BatchkitError)


def test_run_without_a_batch_size_names_it(pipeline):
    with pytest.raises(TypeError, match=r"Expected run\(batch_size, \.\.\.\).*n_epochs=") as info:
        pipeline.run(n_epochs=1)
    assert isinstance(info.value, BatchkitError)


@pytest.mark.parametrize('call, error, regex', [
    (lambda p: p.run(2, prefetch='2', lazy=True), TypeError, r"Received: prefetch='2'"),
    (lambda p: p.run(2, n_epochs=None, lazy=True), ValueError, r'never stop'),
    (lambda p: p.run(20, drop_last=True, lazy=True), ValueError, r'batch_size=20, which would yield no batch'),
    (lambda p: p.run(2, bogus=1, lazy=True), TypeError, r"Received: 'bogus'"),
    (lambda p: p.run(n_epochs=1, lazy=True), TypeError, r'the batch size first'),
], ids=['bad-option', 'never-stops', 'no-batch', 'unknown-option', 'no-batch-size'])
def test_lazy_run_checks_its_arguments_when_they_are_stored(pipeline, call, error, regex):
    with pytest.raises(error, match=regex) as info:
        call(pipeline)
    assert isinstance(info.value, BatchkitError)
    assert pipeline._lazy is None                     # nothing stored to fail later


def test_lazy_must_be_a_bool(pipeline):
    with pytest.raises(BatchkitError, match=r"`lazy` to be True or False. Received: lazy='yes' of type str") as info:
        pipeline.run(2, lazy='yes')
    assert isinstance(info.value, TypeError)
    pipeline.run(2, lazy=np.bool_(True))
    assert pipeline._lazy is not None


@pytest.mark.parametrize('call, regex', [
    (lambda p: p.run(2, 1, None, False, False, 3), r'at most 5 positional arguments to run: batch_size, n_epochs'),
    (lambda p: p.run(2, batch_size=3), r'batch_size both by position and by keyword'),
    (lambda p: p.run(2, 1, n_epochs=2), r'n_epochs both by position and by keyword'),
], ids=['too-many-positional', 'batch-size-twice', 'n-epochs-twice'])
def test_run_signature_errors_name_run(pipeline, call, regex):
    with pytest.raises(BatchkitError, match=regex) as info:
        call(pipeline)
    assert isinstance(info.value, TypeError) and 'gen_batch' not in str(info.value)
