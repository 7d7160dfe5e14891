"""Batch classes: Batch (any components), ArrayBatch (numpy components with load/dump)."""
from .array import ArrayBatch
from .base import Batch, BatchMeta

__all__ = ['ArrayBatch', 'Batch', 'BatchMeta']
