"""BaseModel: a model built from a config, trained and used for prediction inside pipelines."""
from __future__ import annotations

from typing import Any

from ..errors import BatchkitTypeError

__all__ = ['BaseModel']


class BaseModel:
    """Base of batchkit models: `__init__` builds from `config` (unless `build=False`) then loads (`load={...}`).

    Subclasses implement `_build`, `train`, `predict` (and `test`), `save` and `load`.

    >>> class Mean(BaseModel):
    ...     def _build(self):
    ...         self.total, self.count = 0.0, 0
    ...     def train(self, x):
    ...         self.total += x.sum(); self.count += x.size
    ...         return self.total / self.count
    """

    def __init__(self, config: dict | None = None, *args: Any, **kwargs: Any) -> None:
        if config is not None and not isinstance(config, dict):
            raise BatchkitTypeError(f"Expected a model config dict. Received: {type(config).__name__} {config!r:.60}")
        self.config: dict = dict(config or {})
        load = self.config.get('load')
        if load is not None and not isinstance(load, dict):
            raise BatchkitTypeError(f"Expected config['load'] to be a dict of load(**kwargs) arguments. "
                                    f"Received: {load!r:.60}")
        if self.config.get('build', True):
            self.build(*args, **kwargs)
        if load:
            self.load(**load)

    def get(self, key: str, default: Any = None) -> Any:
        """A config option."""
        return self.config.get(key, default)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Build the model from `self.config` (called by `__init__` unless `config['build']` is False)."""
        return self._build(*args, **kwargs)

    def _build(self, *args: Any, **kwargs: Any) -> None:
        """Create the model's parts from `self.config`."""

    def _missing(self, what: str) -> BatchkitTypeError:
        return BatchkitTypeError(f"Expected {type(self).__name__} to implement `{what}`. Received: a model without it.")

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """Train on one batch of data; return what the caller keeps (e.g. the loss). Subclasses implement it."""
        raise self._missing('train')

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Return predictions for one batch of data; subclasses implement it."""
        raise self._missing('predict')

    def test(self, *args: Any, **kwargs: Any) -> Any:
        """Evaluate on one batch of data (e.g. return the loss); subclasses implement it."""
        raise self._missing('test')

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save the model (e.g. to `path=`); subclasses implement it."""
        raise self._missing('save')

    def load(self, *args: Any, **kwargs: Any) -> None:
        """Load the model saved by `save`; subclasses implement it."""
        raise self._missing('load')
