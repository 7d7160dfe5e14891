"""The error tree: every batchkit error is a BatchkitError and the matching builtin (API.md preamble)."""
from __future__ import annotations

import pickle

import pytest

import batchkit
from batchkit import errors


@pytest.mark.parametrize(('cls', 'builtins'), [
    (errors.BatchkitValueError, (ValueError,)),
    (errors.BatchkitTypeError, (TypeError,)),
    (errors.BatchkitKeyError, (KeyError, LookupError)),
    (errors.BatchkitAttributeError, (AttributeError,)),
    (errors.BatchkitRuntimeError, (RuntimeError,)),
    (errors.UnknownNameError, (AttributeError,)),
    (errors.ConfigError, (KeyError,)),
    (errors.ModelError, (RuntimeError,)),
    (errors.ActionError, (TypeError,)),
    (errors.LockTimeoutError, (RuntimeError, TimeoutError)),
    (errors.WorkerDiedError, (RuntimeError,)),
])
def test_error_classes_derive_from_batchkit_error_and_builtin(cls, builtins):
    assert issubclass(cls, errors.BatchkitError)
    for builtin in builtins:
        assert issubclass(cls, builtin)
    with pytest.raises(builtins[0], match='what was expected'):
        raise cls('what was expected')
    with pytest.raises(errors.BatchkitError):
        raise cls('x')


def test_every_exported_error_is_in_the_tree():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert isinstance(cls, type) and issubclass(cls, Exception)
        if name.endswith('Error'):
            assert issubclass(cls, errors.BatchkitError), name


def test_batchkit_error_is_an_exception():
    assert issubclass(errors.BatchkitError, Exception)


@pytest.mark.parametrize('cls', [errors.BatchkitKeyError, errors.ConfigError])
def test_key_error_str_is_the_plain_message(cls):
    message = "Expected a config option 'lr'. Received: none."
    err = cls(message)
    assert str(err) == message              # KeyError would have quoted it
    assert str(KeyError(message)) != message
    assert str(cls()) == ''
    with pytest.raises(KeyError, match=r"^Expected a config option 'lr'\. Received: none\.$"):
        raise err


def test_errors_pickle():
    err = pickle.loads(pickle.dumps(errors.LockTimeoutError('too long')))
    assert isinstance(err, errors.LockTimeoutError) and str(err) == 'too long'
    key = pickle.loads(pickle.dumps(errors.BatchkitKeyError('missing')))
    assert str(key) == 'missing'


def test_control_flow_exceptions_importable_from_batchkit():
    from batchkit import SkipBatch, StopPipeline

    assert SkipBatch is errors.SkipBatch and StopPipeline is errors.StopPipeline
    for cls in (SkipBatch, StopPipeline):
        assert issubclass(cls, errors.PipelineControl)
        assert issubclass(cls, Exception)
        assert not issubclass(cls, errors.BatchkitError)    # control flow, not an error
    assert 'SkipBatch' in batchkit.__all__ and 'StopPipeline' in batchkit.__all__


@pytest.mark.parametrize('name', ['BatchkitError', 'BatchkitValueError', 'BatchkitTypeError', 'BatchkitKeyError',
                                  'BatchkitAttributeError', 'BatchkitRuntimeError'])
def test_base_errors_importable_from_batchkit(name):
    assert getattr(batchkit, name) is getattr(errors, name)


def _all_error_classes():
    return [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.BatchkitError)]


@pytest.mark.parametrize('cls', _all_error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_survives_the_reducer_dask_installs(cls):
    # distributed ships exceptions with tblib's reducer, which rebuilds them through __reduce_ex__:
    # errors with two builtin bases (ValueError and FileNotFoundError) used to fail there.
    tblib_pickling = pytest.importorskip('tblib.pickling_support')
    try:
        raise cls('what was expected, what was received')
    except cls as exc:
        payload = tblib_pickling.pickle_exception(exc)
    rebuilt = payload[0](*payload[1])
    assert type(rebuilt) is cls and str(rebuilt) == 'what was expected, what was received'
