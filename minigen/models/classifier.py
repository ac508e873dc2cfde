"""The MNIST CNN that scores generated digits (trained with minigen on the bundled 9k/1k split).

**Model.** p(y | x) = softmax(f(x)) with f a small CNN::

    conv 5x5 (1 -> 32, pad 2) -> ReLU -> maxpool 2        28x28 -> 14x14
    conv 5x5 (32 -> 64, pad 2) -> ReLU -> maxpool 2       14x14 -> 7x7
    flatten (64*7*7) -> Linear 256 -> ReLU -> Dropout 0.3 -> Linear 10

trained on the cross-entropy  L = -1/N sum_n log p(y_n | x_n)  with Adam (lr 1e-3, decayed x0.85 per epoch)
and random shifts of up to 1 pixel as augmentation (the 9,000 training images are few; shifted copies
stop the CNN memorising them). It reaches >= 98.5% accuracy on the 1,000 validation images.

**Scores of a set of generated images** x_1..x_N (in [0, 1]), from p_n = p(. | x_n) and the mean
prediction  p_bar = 1/N sum_n p_n:

    mean max-probability   M = 1/N sum_n max_k p_n[k]                   (confident = looks like *a* digit)
    class entropy          H(p_bar) = -sum_k p_bar[k] log p_bar[k]      (ln 10 = 2.303 when every digit is
                                                                          equally frequent: no mode collapse)
    Inception-like score   IS = exp( 1/N sum_n KL(p_n || p_bar) )       (1 .. 10; 10 = confident and diverse)

(Salimans et al. 2016 define the Inception score with an ImageNet network; here the network is this MNIST CNN,
so the numbers compare runs of this project, not published results.) Real validation digits score
M ~ 0.99, H ~ 2.30, IS ~ 9.7 (see ``summary.json`` of ``minigen train classifier``): the ceiling.

The trained weights are cached in the output folder (``classifier.safetensors``); the GAN trainers load them
from there (:func:`load_or_train_classifier`) and train them once if missing.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from .. import backend, nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..random import _gen
from ..tensor import Tensor
from .image_utils import add_common_arguments, fresh_log, mnist_loader, plot_loss_curves, progress_flag, write_json

__all__ = ["MNISTClassifier", "random_shift", "classifier_scores", "scores_from_probs", "train_classifier",
           "load_classifier", "load_or_train_classifier", "WEIGHTS", "add_arguments", "run"]

WEIGHTS = "classifier.safetensors"


class MNISTClassifier(nn.Module):
    """The scoring CNN (module docstring). ``forward(x (B, 1, 28, 28) in [0, 1]) -> logits (B, 10)``."""

    def __init__(self, width=32, hidden=256, dropout=0.3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 10))
        self.config = {"width": width, "hidden": hidden, "dropout": dropout}

    def forward(self, x):
        return self.head(self.features(x))

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


def random_shift(x, max_shift=2, generator=None):
    """Shift each image of ``x`` (B, C, H, W) by (dy, dx) ~ U{-s..s}^2, filling with 0 (data augmentation).

    out[n, :, i, j] = x[n, :, i - dy_n, j - dx_n]  (0 where that falls outside). Not differentiable (input data).
    """
    s = int(max_shift)
    if s <= 0:
        return x
    arr = x.array
    xp = backend.get_array_module(arr)
    n, _, h, w = arr.shape
    shifts = _gen(generator).numpy.integers(-s, s + 1, size=(n, 2))
    padded = xp.pad(arr, ((0, 0), (0, 0), (s, s), (s, s)))
    out = xp.empty_like(arr)
    for k in range(n):
        dy, dx = int(shifts[k, 0]), int(shifts[k, 1])
        out[k] = padded[k, :, s - dy:s - dy + h, s - dx:s - dx + w]
    return Tensor._make(out)


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


# ----------------------------------------------------------------------------- training
def train_classifier(out="out/classifier", epochs=6, batch_size=64, lr=1e-3, lr_decay=0.85, width=32, hidden=256,
                     shift=1, seed=0, limit=None, max_steps=None, device=None, progress=None, resume=False,
                     log_every=20, quiet=False):
    """Train :class:`MNISTClassifier` on the bundled 9k split; writes metrics, loss curve, checkpoint, the
    weights file ``classifier.safetensors`` and ``summary.json`` (val accuracy, scores of real val digits)."""
    import minigen as mg
    from .. import optim
    from ..io import save
    from ..train import Trainer, accuracy

    os.makedirs(out, exist_ok=True)
    mg.manual_seed(seed)
    model = MNISTClassifier(width, hidden)
    if device is not None:
        model.to(device)
    loader = mnist_loader("train", batch_size, shuffle=True, seed=seed, limit=limit, device=device, drop_last=False)
    val_loader = mnist_loader("val", 500, shuffle=False, device=device)
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=lr_decay)

    def loss_fn(batch):
        x, y = batch
        return F.cross_entropy(model(random_shift(x, shift)), y)

    def eval_fn():
        tot, correct, n = 0.0, 0, 0
        for x, y in val_loader:
            logits = model(x)
            tot += float(F.cross_entropy(logits, y, reduction="sum").item())
            correct += int(round(accuracy(logits, y) * len(y)))
            n += len(y)
        return {"val_loss": tot / n, "val_acc": correct / n}

    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out, scheduler=sched, scheduler_interval="epoch",
                      eval_fn=eval_fn, epochs=epochs, max_steps=max_steps,
                      log_every=max(1, min(log_every, len(loader) // 2)), progress=progress)
    if not resume:
        fresh_log(trainer)
    t0 = time.perf_counter()
    res = trainer.fit(resume=resume)
    wall = time.perf_counter() - t0
    weights = os.path.join(out, WEIGHTS)
    save({"config": model.config, "state_dict": model.state_dict()}, weights)
    from ..data import BundledMNIST

    real = classifier_scores(model, BundledMNIST("val").images)
    curve = plot_loss_curves(trainer.logger, {"loss": "train loss (batch mean)"}, os.path.join(out, "loss_curve.png"),
                             "MNIST scoring CNN", ylabel="cross-entropy",
                             extra={"val loss": trainer.logger.series("val_loss", "val")})
    summary = {"step": res["step"], "epoch": res["epoch"], "val_acc": res.get("val_acc"),
               "val_loss": res.get("val_loss"), "wall_s": wall, "interrupted": res["interrupted"],
               "weights": weights, "loss_curve": curve, "real_val_scores": real, "config": model.config,
               "limit": limit}
    write_json(summary, os.path.join(out, "summary.json"))
    if not quiet:
        print(f"classifier: {res['step']} steps in {wall:.1f}s, val accuracy {summary['val_acc']:.4f}; "
              f"real val digits score IS {real['inception_score']:.2f}, mean max-prob {real['mean_max_prob']:.3f}")
    return model, summary


def load_classifier(folder, device=None):
    """The cached scorer from ``folder/classifier.safetensors`` (eval mode), or None if there is none."""
    from ..io import load

    path = os.path.join(folder, WEIGHTS)
    if not os.path.exists(path):
        return None
    st = load(path)
    cfg = st["config"]
    model = MNISTClassifier(int(cfg["width"]), int(cfg["hidden"]), float(cfg["dropout"]))
    model.load_state_dict(st["state_dict"])
    if device is not None:
        model.to(device)
    return model.eval()


def load_or_train_classifier(folder, device=None, progress=None, **train_kw):
    """Load the cached scorer, training it first (default recipe) if ``folder`` has none. None for 'none'."""
    if folder is None or str(folder).lower() == "none":
        return None
    model = load_classifier(folder, device)
    if model is None:
        print(f"no scoring classifier in {folder}/: training it first (minigen train classifier --out {folder})",
              file=sys.stderr)
        model, _ = train_classifier(folder, device=device, progress=progress, **train_kw)
        model.eval()
    return model


# ----------------------------------------------------------------------------- CLI
def add_arguments(p):
    add_common_arguments(p, "out/classifier", epochs=6, batch_size=64, lr=1e-3, scorer=False)
    p.add_argument("--width", type=int, default=32, help="channels of the first conv (default 32; the second has 2x)")
    p.add_argument("--hidden", type=int, default=256, help="width of the hidden linear layer (default 256)")
    p.add_argument("--shift", type=int, default=1, help="random-shift augmentation in pixels (default 1; 0 = off)")
    p.add_argument("--lr-decay", type=float, default=0.85, help="learning rate x this after each epoch (default 0.85)")


def run(args):
    _, summary = train_classifier(args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                  lr_decay=args.lr_decay, width=args.width, hidden=args.hidden, shift=args.shift,
                                  seed=args.seed, limit=args.limit, max_steps=args.max_steps, device=args.device,
                                  progress=progress_flag(args), resume=args.resume, log_every=args.log_every)
    print(f"outputs in {args.out}/")
    return 130 if summary["interrupted"] else 0
