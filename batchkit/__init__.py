"""batchkit: lazy pipelines over batches of a dataset, run sequentially, prefetch-parallel or on Dask."""
from .batch import ArrayBatch, Batch
from .dataset import Dataset
from .decorators import action, inbatch_parallel, model
from .errors import (BatchkitAttributeError, BatchkitError, BatchkitKeyError, BatchkitRuntimeError,
                     BatchkitTypeError, BatchkitValueError, SkipBatch, StopPipeline)
from .index import DatasetIndex, FilesIndex
from . import signals
from .pipeline import B, C, D, F, I, M, Pipeline, R, V, W

__all__ = [
    'B', 'C', 'D', 'F', 'I', 'M', 'R', 'V', 'W', 'ArrayBatch', 'Batch', 'BatchkitAttributeError', 'BatchkitError', 'BatchkitKeyError', 'BatchkitRuntimeError',
    'BatchkitTypeError', 'BatchkitValueError', 'Dataset', 'DatasetIndex', 'FilesIndex', 'Pipeline', 'SkipBatch',
    'StopPipeline', 'action', 'inbatch_parallel', 'model', 'signals',
]
