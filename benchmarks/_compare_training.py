"""The training workload of benchmarks/compare.py: an MLP 784-128-10 in Keras 3 fed by each side, same initial weights."""
from __future__ import annotations

import os

import numpy as np

from batchkit import ArrayBatch, B, Dataset
from _compare_common import BATCH, N_CHECK, Result, images, spans, time_sides, torch_loader, torch_or_reason

__all__ = ['TrainBatch', 'training_data', 'training_workload']


class TrainBatch(ArrayBatch):
    components = ('images', 'labels')


def training_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images and the labels of a fixed random linear teacher (learnable, so the loss falls)."""
    X = images(n)
    teacher = np.random.default_rng(1).standard_normal((X.shape[1], 10)).astype(np.float32)
    return X, np.argmax((X - 0.5) @ teacher, axis=1).astype(np.int32)


def initial_model(cache_dir: str) -> str:
    """A compiled MLP saved once (`.keras`): every side loads its own copy, so all start from the same weights."""
    import keras
    path = os.path.join(cache_dir, 'mlp-784-128-10-adam.keras')
    if not os.path.exists(path):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, activation='relu'),
                                  keras.layers.Dense(10)])
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.optimizer.build(model.trainable_variables)     # saved with its (zero) slots: loads without warnings
        model.save(path + '.tmp.keras')
        os.replace(path + '.tmp.keras', path)
    return path


def check_weights(side: str, ref: list, weights: list) -> None:
    from _compare_common import CheckError
    if len(ref) != len(weights) or not all(np.allclose(r, w, atol=1e-5, rtol=1e-4) for r, w in zip(ref, weights)):
        raise CheckError(f'training: after {N_CHECK} steps the weights of {side} differ from the train_on_batch loop')


def training_workload(n: int, repeats: int, cache_dir: str, sides=None, bf=None) -> Result:
    """Each side trains one epoch per run (continuing the same model); first, 3 steps from fresh weights match."""
    import keras
    import tensorflow as tf

    from batchkit.models import KerasModel
    sides = sides or ('batchkit', 'numpy', 'tf.data', 'torch', 'batchflow')
    X, y = training_data(n)
    path = initial_model(cache_dir)
    fresh = lambda: keras.saving.load_model(path)  # noqa: E731
    small = slice(0, N_CHECK * BATCH)
    result, runs = {}, {}

    def loop(model, Xs, ys):
        for s in spans(len(Xs)):
            model.train_on_batch(Xs[s], ys[s])

    ref_model = fresh()
    loop(ref_model, X[small], y[small])
    ref = ref_model.get_weights()

    def batchkit_pipeline(Xs, ys):
        return (Dataset.from_arrays(batch_class=TrainBatch, images=Xs, labels=ys).p
                .init_model('mlp', KerasModel, 'static', config={'model': lambda config: fresh()})
                .train_model('mlp', x=B('images'), y=B('labels')))
    p = batchkit_pipeline(X[small], y[small]).run(BATCH, n_epochs=1, prefetch=2)
    check_weights('batchkit', ref, p.get_model_by_name('mlp').model.get_weights())
    p = batchkit_pipeline(X, y)
    runs['batchkit'] = lambda: p.run(BATCH, n_epochs=1, prefetch=2)

    m_loop = fresh()
    runs['numpy'] = lambda: loop(m_loop, X, y)

    def fit(model, Xs, ys):
        data = tf.data.Dataset.from_tensor_slices((Xs, ys)).batch(BATCH).prefetch(2)
        model.fit(data, epochs=1, verbose=0, shuffle=False)
    m = fresh()
    fit(m, X[small], y[small])
    check_weights('tf.data', ref, m.get_weights())
    m_fit = fresh()
    runs['tf.data'] = lambda: fit(m_fit, X, y)

    torch = torch_or_reason()
    if isinstance(torch, str):
        result['torch'] = torch
    else:
        def torch_feed(model, Xs, ys):
            # num_workers=0: forking a process that runs TensorFlow is unsafe; the data is in memory anyway
            xy = np.concatenate([Xs, ys[:, None].astype(np.float32)], axis=1)
            for batch in torch_loader(torch, xy, torch.from_numpy):
                model.train_on_batch(batch[:, :-1].numpy(), batch[:, -1].numpy().astype(np.int32))
        m = fresh()
        torch_feed(m, X[small], y[small])
        check_weights('torch', ref, m.get_weights())
        m_torch = fresh()
        runs['torch'] = lambda: torch_feed(m_torch, X, y)
    result.update(time_sides({k: v for k, v in runs.items() if k in sides}, repeats))
    if 'batchflow' in sides:
        result['batchflow'] = bf.run('training', X=X, y=y, model=path, repeats=repeats,
                                     check=lambda weights: check_weights('batchflow', ref, weights))
    return result
