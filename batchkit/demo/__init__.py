"""The batchkit demo: a small CNN trained on scikit-learn's digits through batchkit pipelines."""
from __future__ import annotations

from .cli import build_parser, main

__all__ = ['build_parser', 'main']
