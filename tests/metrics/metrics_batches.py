"""A batch class that computes metrics in its action: importable, because worker processes need it."""
from __future__ import annotations

from batchkit import ArrayBatch, action
from batchkit.metrics import ClassificationMetrics


class ScoredBatch(ArrayBatch):
    """Targets `y` and predicted labels `p`; `score` leaves a ClassificationMetrics in `metrics`."""
    components = ('y', 'p')

    @action
    def score(self, num_classes: int) -> ScoredBatch:
        self.metrics = ClassificationMetrics(self.y, self.p, fmt='labels', num_classes=num_classes)
        return self
