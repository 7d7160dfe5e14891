"""batchkit: lazy pipelines over batches of a dataset, run sequentially, prefetch-parallel or on Dask."""
from . import signals
from .batch import ArrayBatch, Batch
from .dataset import Dataset
from .decorators import action, inbatch_parallel, model
from .errors import (
                     BatchkitAttributeError,
                     BatchkitError,
                     BatchkitKeyError,
                     BatchkitRuntimeError,
                     BatchkitTypeError,
                     BatchkitValueError,
                     ConfigError,
                     LockTimeoutError,
                     MissingFileError,
                     ModelError,
                     SkipBatch,
                     StopPipeline,
                     UnknownNameError,
                     WorkerDiedError,
)
from .index import DatasetIndex, FilesIndex
from .pipeline import B, C, D, F, I, M, Pipeline, R, V, W

__all__ = [
    'ArrayBatch', 'B', 'Batch', 'BatchkitAttributeError', 'BatchkitError', 'BatchkitKeyError', 'BatchkitRuntimeError',
    'BatchkitTypeError', 'BatchkitValueError', 'C', 'ConfigError', 'D', 'Dataset', 'DatasetIndex', 'F',
    'FilesIndex', 'I', 'LockTimeoutError', 'M', 'MissingFileError', 'ModelError', 'Pipeline', 'R', 'SkipBatch',
    'StopPipeline', 'UnknownNameError', 'V', 'W', 'WorkerDiedError', 'action', 'inbatch_parallel', 'model',
    'signals',
]
