"""Batch classes of the root conftest, in a module of their own: every test folder has a `conftest`, so a class
pickled by reference as `conftest.ImageBatch` was looked up in whichever of them was imported last."""
from __future__ import annotations

from batchkit import ArrayBatch


class ImageBatch(ArrayBatch):
    """A batch with two declared components, for the dataset and batch tests."""
    components = ('images', 'labels')
