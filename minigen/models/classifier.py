"""MNIST classifiers: the CNN (the one MNIST CNN of the zoo, which also scores generated digits) and an MLP.

**Models.** p(y | x) = softmax(f(x)) for an image x (1, 28, 28) in [0, 1], with f either the CNN
:class:`MNISTClassifier`::

    conv 5x5 (1 -> W, pad 2) -> ReLU -> maxpool 2          28x28 -> 14x14        (W = 32 by default)
    conv 5x5 (W -> 2W, pad 2) -> ReLU -> maxpool 2         14x14 -> 7x7
    flatten (2W*7*7) -> Linear 256 -> ReLU -> Dropout 0.3 -> Linear 10

or the MLP :class:`MLPClassifier`:  flatten -> Linear(784, h) -> ReLU -> Linear(h, h) -> ReLU -> Linear(h, 10).
Both are trained on the cross-entropy  L = -1/N sum_n log p(y_n | x_n)  (:mod:`minigen.recipes.classifier`,
``minigen train classifier|cnn|mlp``); the CNN reaches >= 98.5% accuracy on the 1,000 validation images.

**Scores of a set of generated images** x_1..x_N (in [0, 1]), from p_n = p(. | x_n) and the mean
prediction  p_bar = 1/N sum_n p_n:

    mean max-probability   M = 1/N sum_n max_k p_n[k]                   (confident = looks like *a* digit)
    class entropy          H(p_bar) = -sum_k p_bar[k] log p_bar[k]      (ln 10 = 2.303 when every digit is
                                                                          equally frequent: no mode collapse)
    Inception-like score   IS = exp( 1/N sum_n KL(p_n || p_bar) )       (1 .. 10; 10 = confident and diverse)

(Salimans et al. 2016 define the Inception score with an ImageNet network; here the network is this MNIST CNN,
so the numbers compare runs of this project, not published results.) Real validation digits score
M ~ 0.99, H ~ 2.30, IS ~ 9.7: the ceiling.
"""
from __future__ import annotations

import numpy as np

from .. import backend, nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..tensor import Tensor

__all__ = ["MNISTClassifier", "MLPClassifier", "classifier_scores", "scores_from_probs"]


class _Probs:
    def probs(self, x, batch_size=500):
        """p(y | x) for images in [0, 1] (any number; evaluated in batches, eval mode, no graph) as a NumPy array.

        ``x``: a Tensor (on any device) or a NumPy array; batches are moved to the classifier's device."""
        was = self.training
        self.eval()
        dev = next(self.parameters()).device
        out = []
        try:
            with no_grad():
                for i in range(0, x.shape[0], batch_size):
                    xb = x[i:i + batch_size]
                    xb = xb if isinstance(xb, Tensor) else Tensor(np.asarray(xb, dtype=np.float32))
                    if xb.device != dev:
                        xb = xb.to(dev)
                    out.append(backend.to_numpy(F.softmax(self(xb), dim=-1).array))
        finally:
            self.train(was)
        return np.concatenate(out).astype(np.float64)


class MNISTClassifier(_Probs, nn.Module):
    """The CNN (module docstring). ``forward(x (B, 1, 28, 28) in [0, 1]) -> logits (B, 10)``."""

    def __init__(self, width=32, hidden=256, dropout=0.3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 10))
        self.config = {"arch": "cnn", "width": width, "hidden": hidden, "dropout": dropout}

    def forward(self, x):
        return self.head(self.features(x))


class MLPClassifier(_Probs, nn.Module):
    """The MLP (module docstring). ``forward(x (B, 1, 28, 28)) -> logits (B, 10)``."""

    def __init__(self, hidden=128):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 10))
        self.config = {"arch": "mlp", "hidden": hidden}

    def forward(self, x):
        return self.net(x)


def scores_from_probs(p) -> dict:
    """Mean max-probability, class entropy of the mean prediction, Inception-like score (module docstring).

    ``p``: (N, 10) rows of class probabilities. Returns floats plus ``class_freq`` (the argmax histogram / N).
    """
    p = np.asarray(p, dtype=np.float64)
    pbar = p.mean(axis=0)
    eps = 1e-12
    entropy = float(-(pbar * np.log(pbar + eps)).sum())
    kl = (p * (np.log(p + eps) - np.log(pbar + eps))).sum(axis=1)
    freq = np.bincount(p.argmax(axis=1), minlength=p.shape[1]) / len(p)
    return {"mean_max_prob": float(p.max(axis=1).mean()), "class_entropy": entropy,
            "inception_score": float(np.exp(kl.mean())), "class_freq": [round(float(f), 4) for f in freq]}


def classifier_scores(model, images01, batch_size=500) -> dict:
    """:func:`scores_from_probs` of the classifier's predictions on ``images01`` (N, 1, 28, 28) in [0, 1]."""
    return scores_from_probs(model.probs(images01, batch_size))
