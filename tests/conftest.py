"""Shared fixtures and hypothesis settings for the batchkit test suite."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from batchkit import Dataset, DatasetIndex

from shared_batches import ImageBatch

settings.register_profile(
    'batchkit', deadline=None, max_examples=150, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile('batchkit')

STR_IDS = np.array(list('abcdefghij'))


@pytest.fixture
def images() -> np.ndarray:
    """10 'images' whose row i is filled with i, so a row names the item it belongs to."""
    return np.repeat(np.arange(10, dtype=np.float64), 4).reshape(10, 2, 2)


@pytest.fixture
def labels() -> np.ndarray:
    return np.arange(10) * 10


@pytest.fixture
def image_ds(images: np.ndarray, labels: np.ndarray) -> Dataset:
    """10 items, ids 0..9, components images (row i == i) and labels (10 * i)."""
    return Dataset(DatasetIndex(10), batch_class=ImageBatch, preloaded={'images': images, 'labels': labels})


@pytest.fixture
def str_ds(images: np.ndarray, labels: np.ndarray) -> Dataset:
    """Like image_ds, with string ids 'a'..'j' (row i belongs to the i-th letter)."""
    return Dataset(DatasetIndex(STR_IDS), batch_class=ImageBatch, preloaded={'images': images, 'labels': labels})


@pytest.fixture
def image_batch_class() -> type:
    return ImageBatch
