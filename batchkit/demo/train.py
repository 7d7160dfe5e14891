"""The demo's pipelines: augment and train a dynamic KerasModel, then evaluate it on the test split."""
from __future__ import annotations

from typing import Any

import numpy as np

from batchkit import B, Pipeline, R, V
from batchkit.metrics import ClassificationMetrics

from .data import NUM_CLASSES
from .model import conv_net

__all__ = ['evaluate', 'model_config', 'train_pipeline']

MODEL = 'net'


def model_config(model_dir: str, seed: int, steps_per_epoch: int, learning_rate: float = 2e-3) -> dict:
    """The KerasModel config: the network is built from the first batch's image shape (a dynamic model)."""
    import keras
    return {
        'model': conv_net, 'input_shape': B('images').shape[1:], 'num_classes': NUM_CLASSES,
        'loss': 'sparse_categorical_crossentropy', 'metrics': ['accuracy'],
        'optimizer': keras.optimizers.Adam(learning_rate),
        'model_dir': model_dir, 'seed': seed, 'name': MODEL,
        'save_checkpoints_steps': steps_per_epoch,       # a checkpoint per epoch, and one at the end of a run
        'save_summary_steps': 10,
    }


def train_pipeline(dataset: Any, config: dict, max_shift: int = 1, max_angle: float = 12.0) -> Pipeline:
    """Shift and rotate every image by a random amount (drawn through `R`), then one training step per batch.

    The loss and accuracy of the last batch are in the variable `stats` (the progress bar shows them).

    >>> p = train_pipeline(ds.train, model_config('results/demo', 0, 23))    # doctest: +SKIP
    >>> p.run(64, n_iters=100, prefetch=2, bar={'postfix': V('stats')})       # doctest: +SKIP
    """
    return (dataset.p
            .init_variable('stats', default=dict)
            .init_model(MODEL, 'dynamic', _keras_model(), config)
            .shift(R('integers', -max_shift, max_shift + 1, size=(B('size'), 2)))
            .rotate(R('uniform', -max_angle, max_angle, size=B('size')))
            .train_model(MODEL, B('images'), B('labels'), save_to=V('stats')))


def _keras_model() -> type:
    from batchkit.models import KerasModel
    return KerasModel


def evaluate(dataset: Any, trained: Pipeline, batch_size: int) -> tuple[ClassificationMetrics, np.ndarray]:
    """The model of `trained` on the un-augmented `dataset`: gathered metrics and the predicted probabilities.

    The test loss goes to the model's `eval` TensorBoard summaries (written when the run ends).
    """
    p = (dataset.p
         .import_model(MODEL, trained)
         .init_variable('proba', default=list)
         .test_model(MODEL, B('images'), B('labels'))
         .predict_model(MODEL, B('images'), save_to=V('proba', mode='a'))
         .gather_metrics('classification', targets=B('labels'), predictions=V('proba')[-1], fmt='proba',
                         axis=-1, num_classes=NUM_CLASSES, save_to=V('metrics', mode='u'))
         .run(batch_size, n_epochs=1, shuffle=False))      # its end writes the test loss to <model_dir>/eval
    return p.get_variable('metrics'), np.concatenate(p.get_variable('proba'))
