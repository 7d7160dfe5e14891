"""The batchkit error tree: every error derives from BatchkitError and the matching builtin."""
from __future__ import annotations

__all__ = [
    'ActionError', 'BatchkitAttributeError', 'BatchkitError', 'BatchkitKeyError', 'BatchkitRuntimeError',
    'BatchkitTypeError', 'BatchkitValueError', 'ConfigError', 'LockTimeoutError', 'MissingFileError', 'ModelError',
    'PipelineControl', 'SkipBatch', 'StopPipeline', 'UnknownNameError', 'WorkerDiedError',
]


class BatchkitError(Exception):
    """Base of every error batchkit raises."""

    def __reduce__(self) -> tuple:
        # Rebuild by calling the class, so errors with two builtin bases (ValueError and FileNotFoundError)
        # unpickle under any reducer, Dask's (tblib) included.
        return type(self), self.args, self.__dict__ or None


class BatchkitValueError(BatchkitError, ValueError):
    """A value of the right type but out of range or inconsistent."""


class BatchkitTypeError(BatchkitError, TypeError):
    """An argument of the wrong type."""


class BatchkitKeyError(BatchkitError, KeyError):
    """A missing key (a config option, a variable, a component in a file)."""

    def __str__(self) -> str:
        # KeyError quotes its argument; our messages are sentences, show them as they are.
        return str(self.args[0]) if self.args else ''


class BatchkitAttributeError(BatchkitError, AttributeError):
    """A missing attribute: an unknown action or component."""


class BatchkitRuntimeError(BatchkitError, RuntimeError):
    """Something went wrong while running."""


class MissingFileError(BatchkitValueError, FileNotFoundError):
    """A file to load from does not exist (also a FileNotFoundError, so `except OSError` keeps working)."""


class UnknownNameError(BatchkitAttributeError):
    """An action or model name that nothing defines."""


class ConfigError(BatchkitKeyError):
    """A config option that is missing and has no default."""


class ModelError(BatchkitRuntimeError):
    """A model that cannot be built, found, trained, saved or loaded."""


class ActionError(BatchkitTypeError):
    """An action that returned something other than a batch."""


class LockTimeoutError(BatchkitRuntimeError, TimeoutError):
    """A `use_lock` lock that was not acquired within its timeout."""


class WorkerDiedError(BatchkitRuntimeError):
    """A worker process died while it held a batch."""


class PipelineControl(Exception):  # noqa: N818 - control flow, not an error
    """Base of the exceptions an action raises to steer the run."""


class SkipBatch(PipelineControl):
    """Raised in an action: drop the current batch and go on with the next one."""


class StopPipeline(PipelineControl):
    """Raised in an action: end the run cleanly after the batches already yielded."""
