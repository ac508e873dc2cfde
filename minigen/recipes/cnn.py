"""``minigen train cnn``: the MNIST CNN (:class:`minigen.models.classifier.MNISTClassifier`) with a plain recipe:
Adam 1e-3 at a constant rate, batch 64, 3 epochs, no augmentation (``minigen train classifier`` is the same
model with augmentation and a decaying rate). ``minigen sample RUN_DIR``: digits and their predictions."""
from __future__ import annotations

from . import classifier as _classifier

NAME = "cnn"
HELP = "MNIST classifier: the zoo's CNN, plain recipe (bundled 9k/1k split)"

DATA_PARALLEL = _classifier.DATA_PARALLEL
add_sample_arguments = _classifier.add_sample_arguments
sample = _classifier.sample


def add_arguments(p):
    _classifier.add_arguments(p, out="out/mnist-cnn", epochs=3, shift=0, lr_decay=1.0, hidden=256, arch="cnn")


def run(args):
    return _classifier.run(args, arch="cnn", name=NAME)
