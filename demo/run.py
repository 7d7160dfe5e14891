"""The batchkit demo: train, evaluate and export a model through batchkit pipelines.

Data: 8x8 "digit" images made from ten class prototypes plus noise (nothing is downloaded).
Model: softmax regression in numpy, trained with prefetch-parallel augmentation.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from batchkit import B, ArrayBatch, Dataset, Pipeline, V, action
from batchkit.models import BaseModel


def make_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 8, 8)) > 0.6
    labels = rng.integers(0, 10, n)
    images = prototypes[labels] * 6.0 + rng.normal(0, 5.0, (n, 8, 8))
    return np.clip(images, 0, 16).astype(np.float32), labels


class DigitsBatch(ArrayBatch):
    components = ('images', 'labels')

    @action
    def normalize(self, scale: float = 16.0) -> 'DigitsBatch':
        self.images = self.images / scale
        return self

    @action
    def jitter(self, sigma: float) -> 'DigitsBatch':
        self.images = self.images + self.random.normal(0, sigma, self.images.shape).astype(np.float32)
        return self


class SoftmaxRegression(BaseModel):
    """Multinomial logistic regression trained by plain gradient steps."""

    def _build(self) -> None:
        rng = np.random.default_rng(self.get('seed', 0))
        self.w = rng.normal(0, 0.01, (self.config['n_features'], self.config['n_classes']))
        self.b = np.zeros(self.config['n_classes'])

    def _proba(self, x: np.ndarray) -> np.ndarray:
        logits = x.reshape(len(x), -1) @ self.w + self.b
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def train(self, x: np.ndarray, y: np.ndarray) -> float:
        p = self._proba(x)
        loss = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
        p[np.arange(len(y)), y] -= 1
        flat = x.reshape(len(x), -1)
        self.w -= self.get('lr', 0.5) * flat.T @ p / len(y)
        self.b -= self.get('lr', 0.5) * p.mean(axis=0)
        return float(loss)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._proba(x).argmax(axis=1)

    def save(self, path: str) -> None:
        tmp = path + '.tmp.npz'
        np.savez(tmp, w=self.w, b=self.b)
        os.replace(tmp, path)            # atomic: a reader never sees half a file

    def load(self, path: str) -> None:
        with np.load(path) as data:
            self.w, self.b = data['w'], data['b']


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', default='results/demo', help='where the exported model goes')
    parser.add_argument('--epochs', type=int, default=5)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    export_path = os.path.join(args.out, 'softmax.npz')

    images, labels = make_digits(5000)
    ds = Dataset.from_arrays(DigitsBatch, images=images, labels=labels)
    ds.split(0.8, shuffle=0)
    print(f'dataset: {len(ds)} images 8x8, 10 classes -> train {len(ds.train)}, test {len(ds.test)}')

    train = (ds.train.p
             .init_variable('loss', default=list)
             .init_model('clf', SoftmaxRegression, 'static', config={'n_features': 64, 'n_classes': 10})
             .normalize()
             .jitter(sigma=0.05)
             .train_model('clf', B('images'), B('labels'), save_to=V('loss', mode='a'))
             .after.save_model('clf', export_path))
    start = time.perf_counter()
    train.run(batch_size=64, n_epochs=args.epochs, shuffle=0, prefetch=2, bar=False)
    losses = train.get_variable('loss')
    print(f'trained {len(losses)} batches in {time.perf_counter() - start:.2f} s with prefetch=2: '
          f'loss {np.mean(losses[:10]):.3f} -> {np.mean(losses[-10:]):.3f}')

    evaluate = (Pipeline()
                .init_variable('predictions', default=list)
                .init_variable('correct', default=list)
                .import_model('clf', train)
                .normalize()
                .predict_model('clf', B('images'), save_to=B('predictions'))
                .update(V('predictions', mode='e'), B('predictions'))
                .update(V('correct', mode='e'), B('predictions') == B('labels')))
    evaluated = (evaluate << ds.test).run(batch_size=256)
    accuracy = float(np.mean(evaluated.get_variable('correct')))
    print(f'test accuracy: {accuracy:.3f}')

    inference = (ds.test.p
                 .init_variable('predictions', default=list)
                 .before.load_model('clf', SoftmaxRegression, 'static', path=export_path)
                 .normalize()
                 .predict_model('clf', B('images'), save_to=V('predictions', mode='e')))
    inference.run(batch_size=256)
    same = np.array_equal(inference.get_variable('predictions'), evaluated.get_variable('predictions'))
    print(f'exported to {export_path} ({os.path.getsize(export_path)} bytes); reloaded in a new pipeline, '
          f'it predicts the {len(ds.test)} test images {"identically" if same else "DIFFERENTLY"}')
    if accuracy < 0.8 or not same:
        raise SystemExit(f'demo failed: accuracy {accuracy:.3f}, identical reload: {same}')


if __name__ == '__main__':
    main()
