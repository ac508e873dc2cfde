"""``minigen train mlp``: an MNIST MLP (:class:`minigen.models.classifier.MLPClassifier`, 784-h-h-10) trained with
Adam 1e-3, batch 64, 3 epochs on the bundled 9k/1k split. ``minigen sample RUN_DIR``: digits and predictions."""
from __future__ import annotations

from . import classifier as _classifier

NAME = "mlp"
HELP = "MNIST classifier: 2-hidden-layer MLP (bundled 9k/1k split)"

DATA_PARALLEL = _classifier.DATA_PARALLEL
add_sample_arguments = _classifier.add_sample_arguments
sample = _classifier.sample


def add_arguments(p):
    _classifier.add_arguments(p, out="out/mnist-mlp", epochs=3, shift=0, lr_decay=1.0, hidden=128, arch="mlp")


def run(args):
    return _classifier.run(args, arch="mlp", name=NAME)
