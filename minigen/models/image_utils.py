"""What the image models share: MNIST batches, DCGAN initialisation, an adversarial Trainer, grids, CLI options.

- :func:`mnist_loader` — the bundled real MNIST (9k train / 1k validation), batches as Tensors in [0, 1];
  GANs map them to [-1, 1] with :func:`to_pm1` (their generators end in tanh) and back with :func:`from_pm1`.
- :func:`dcgan_init_` — the DCGAN article's initialisation: every conv / linear weight ~ N(0, 0.02),
  BatchNorm gains ~ N(1, 0.02), biases 0.
- :class:`AdversarialTrainer` — :class:`minigen.train.Trainer` (JSONL/CSV log, tqdm bar, checkpoint every
  epoch, exact resume, clean Ctrl-C) whose step is *a function you write* that alternates several updates
  (D then G); :class:`Optimizers` puts the D and G optimizers into one checkpoint entry.
- :func:`save_grid` / :func:`plot_loss_curves` — PNGs a person looks at.
- :func:`add_common_arguments` — the options every image trainer of ``minigen train`` takes.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .. import backend
from ..train import Trainer

__all__ = ["mnist_dataset", "mnist_loader", "to_pm1", "from_pm1", "dcgan_init_", "Optimizers",
           "AdversarialTrainer", "fresh_log", "save_grid", "plot_loss_curves", "add_common_arguments", "GeneratorState",
           "write_json", "progress_flag", "sample_noise", "run_adversarial"]


# ----------------------------------------------------------------------------- data
def mnist_dataset(split="train", limit=None):
    """The bundled MNIST split ('train': 9,000 images, 'val': 1,000), optionally its first ``limit`` images."""
    from ..data import BundledMNIST, Subset

    ds = BundledMNIST(split)
    if limit:
        ds = Subset(ds, range(min(int(limit), len(ds))))
    return ds


def mnist_loader(split="train", batch_size=64, shuffle=True, seed=0, limit=None, device=None, drop_last=None):
    """A resumable DataLoader of ``(images (B, 1, 28, 28) in [0, 1], labels (B,) int64)`` from the bundled split.

    Training loaders drop the last incomplete batch by default (a batch of 8 would give BatchNorm and a GAN
    a noisy step); evaluation loaders (``shuffle=False``) keep it.
    """
    import minigen as mg
    from ..data import DataLoader

    ds = mnist_dataset(split, limit)
    if drop_last is None:
        drop_last = bool(shuffle) and len(ds) > batch_size
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, device=device,
                      generator=mg.Generator().manual_seed(seed) if shuffle else None)


def to_pm1(x):
    """[0, 1] -> [-1, 1]:  x' = 2x - 1."""
    return x * 2.0 - 1.0


def from_pm1(x):
    """[-1, 1] -> [0, 1]:  x = (x' + 1) / 2, clipped (tanh outputs never leave the range; other generators may)."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def sample_noise(n, dim, device=None, generator=None):
    """z ~ N(0, I), shape (n, dim)."""
    import minigen as mg

    return mg.randn(n, dim, generator=generator, device=device)


# ----------------------------------------------------------------------------- initialisation
def dcgan_init_(module, std=0.02, generator=None):
    """DCGAN initialisation (Radford et al. 2015, section 4): conv / linear weights ~ N(0, std), biases 0,
    BatchNorm gains ~ N(1, std) and shifts 0. Returns the module."""
    from .. import nn

    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std, generator=generator)
            nn.init.zeros_(m.bias)
    return module


# ----------------------------------------------------------------------------- adversarial training
class Optimizers:
    """Several named optimizers seen as one by the Trainer (``state_dict`` holds each under its name).

    ``param_groups`` (read by the Trainer for the logged learning rate) are the first optimizer's.
    """

    def __init__(self, **optimizers):
        if not optimizers:
            raise ValueError("Optimizers: give at least one optimizer")
        self.optimizers = dict(optimizers)

    def __getitem__(self, name):
        return self.optimizers[name]

    @property
    def param_groups(self):
        return next(iter(self.optimizers.values())).param_groups

    def zero_grad(self, set_to_none=True):
        for o in self.optimizers.values():
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return {k: o.state_dict() for k, o in self.optimizers.items()}

    def load_state_dict(self, state):
        for k, o in self.optimizers.items():
            o.load_state_dict(state[k])


class AdversarialTrainer(Trainer):
    """A :class:`~minigen.train.Trainer` whose step is ``step_fn(batch) -> {metric: float}``.

    ``step_fn`` makes all the updates of one training step itself (for a GAN: the discriminator's, then the
    generator's), so the alternation stays visible in the model's own file. Everything else is the
    Trainer's: the tqdm bar, metric rows in ``metrics.jsonl``/``.csv`` (each metric averaged over the
    logging window), evaluation (``eval_fn``) and a checkpoint at every epoch end, exact resume, Ctrl-C.
    ``main`` names the metric shown as ``loss``.

    A step makes several optimizer updates, so an interrupt inside it could leave the parameters half
    updated: a second Ctrl-C during a step saves nothing (the previous checkpoint stays), as the Trainer does
    for an interrupt inside ``optimizer.step()``.
    """

    def __init__(self, model, optimizers, step_fn, train_loader, *, main="d_loss", **kw):
        super().__init__(model, optimizers, None, train_loader, **kw)
        self.step_fn, self.main = step_fn, main
        self._sums, self._count = {}, 0

    def _train_step(self, batch):
        self._in_update = True
        metrics = self.step_fn(batch)
        self._in_update = False
        for k, v in metrics.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
        self._count += 1
        extra = {}
        if self.log_every and (self.step + 1) % self.log_every == 0:  # the Trainer logs a row after this step
            extra = {k: s / self._count for k, s in self._sums.items()}
            self._sums, self._count = {}, 0
        return float(metrics[self.main]), extra


def fresh_log(trainer):
    """A run that does not resume starts a new metrics log (the Trainer would append to an old one in --out)."""
    trainer.logger.truncate(-1)


class GeneratorState:
    """Saves named ``minigen.Generator`` states inside a Trainer checkpoint (``extra_state=``)."""

    def __init__(self, **generators):
        self.generators = generators

    def state_dict(self):
        return {k: g.get_state() for k, g in self.generators.items()}

    def load_state_dict(self, st):
        for k, g in self.generators.items():
            if k in st:
                g.set_state(st[k])


# ----------------------------------------------------------------------------- outputs
def save_grid(images, path, nrow=8, pm1=True):
    """Write images (N, 1, 28, 28) as a PNG grid; ``pm1``: the values are in [-1, 1] (GAN outputs)."""
    from ..data import save_image_grid

    arr = backend.to_numpy(images.detach().array if hasattr(images, "detach") else images).astype(np.float32)
    if pm1:
        arr = (arr + 1.0) * 0.5
    return save_image_grid(np.clip(arr, 0.0, 1.0), path, nrow=nrow, padding=2, pad_value=0.5)


def plot_loss_curves(logger, keys, path, title, ylabel="loss", split="train", extra=None):
    """Plot the logged series ``keys`` (a list, or {key: legend label}) plus ``extra`` = {label: [(step, value)]}
    to a PNG; None if nothing was logged."""
    from ..data import plot_curves

    labels = keys if isinstance(keys, dict) else {k: k for k in keys}
    curves = {labels[k]: logger.series(k, split) for k in labels}
    curves = {k: v for k, v in curves.items() if v}
    if extra:
        curves.update({k: v for k, v in extra.items() if v})
    if not curves:
        return None
    return plot_curves(curves, path, title=title, ylabel=ylabel)


def write_json(obj, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
    return path


# ----------------------------------------------------------------------------- CLI
def progress_flag(args):
    return False if getattr(args, "no_progress", False) else None


def add_common_arguments(p, out, epochs, batch_size, lr, scorer=True):
    """Options every image trainer takes (``minigen train <name> --help`` lists them)."""
    p.add_argument("--out", default=out, help=f"output folder (default {out})")
    p.add_argument("--epochs", type=int, default=epochs, help=f"passes over the 9k training images (default {epochs})")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many training steps (a fixed budget)")
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"default {batch_size}")
    p.add_argument("--lr", type=float, default=lr, help=f"Adam learning rate (default {lr})")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images only")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out if there is one")
    p.add_argument("--device", default=None, help="cpu (default) or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")
    p.add_argument("--log-every", type=int, default=10, help="metrics row every N steps (default 10)")
    if scorer:
        p.add_argument("--classifier", default="out/classifier",
                       help="folder of the MNIST CNN that scores samples (trained there first if missing; "
                            "'none' = no scores; default out/classifier)")
        p.add_argument("--score-samples", type=int, default=1000,
                       help="generated images scored at each epoch end (default 1000)")


# ----------------------------------------------------------------------------- the GAN driver
def _eval_name(trainer, n_batches):
    """samples_epoch003.png at an epoch end, samples_step000200.png when a step budget ends mid-epoch."""
    if n_batches and trainer.step % n_batches == 0 and trainer.epoch > 0:
        return f"epoch{trainer.epoch:03d}"
    return f"step{trainer.step:06d}"


def run_adversarial(name, model, optimizers, step_fn, sample_fn, *, out, epochs=5, max_steps=None, batch_size=64,
                    seed=0, limit=None, device=None, progress=None, resume=False, log_every=10, classifier="none",
                    score_samples=1000, config=None, grid_fn=None, curve_keys=("d_loss", "g_loss"),
                    extra_state=None, finish_fn=None, quiet=False):
    """Train a GAN-like ``model`` with an :class:`AdversarialTrainer` and write what a person looks at.

    ``step_fn(batch) -> {metric: float}`` makes the updates of one step; ``sample_fn(n, generator)`` returns
    n generated images in [-1, 1] (called under ``no_grad`` in eval mode). At every epoch end (and at the end
    of a step budget) the driver writes a sample grid PNG (``grid_fn(path)`` if given, else 64 samples from a
    fixed noise), scores ``score_samples`` generated images with the MNIST classifier (if ``classifier`` is
    a folder, see :mod:`~minigen.models.classifier`) and saves a checkpoint; at the end it writes
    ``loss_curve.png``, ``score_curve.png`` and ``summary.json``. ``finish_fn(out) -> dict`` adds outputs
    (e.g. a style-mixing grid). Returns the summary dict.
    """
    import time

    import minigen as mg
    from .classifier import classifier_scores, load_or_train_classifier

    os.makedirs(out, exist_ok=True)
    mg.manual_seed(seed)
    scorer = None
    if classifier and str(classifier).lower() != "none" and score_samples:
        scorer = load_or_train_classifier(classifier, device=device, progress=progress)
    if device is not None:
        model.to(device)
    loader = mnist_loader("train", batch_size, shuffle=True, seed=seed, limit=limit, device=device)
    n_batches = len(loader)
    if config is not None:
        write_json({"model": name, **config}, os.path.join(out, "config.json"))
    grids = []

    def eval_fn():
        tag = _eval_name(trainer, n_batches)
        path = os.path.join(out, f"samples_{tag}.png")
        if grid_fn is not None:
            grid_fn(path)
        else:
            save_grid(sample_fn(64, mg.Generator().manual_seed(seed + 1)), path, nrow=8)
        grids.append(path)
        import shutil

        shutil.copyfile(path, os.path.join(out, "samples.png"))
        metrics = {}
        if scorer is not None:
            imgs = sample_fn(score_samples, mg.Generator().manual_seed(seed + 2))
            s = classifier_scores(scorer, from_pm1(imgs))
            metrics = {"score_is": s["inception_score"], "score_max_prob": s["mean_max_prob"],
                       "score_entropy": s["class_entropy"], "class_freq": s["class_freq"]}
        return metrics

    trainer = AdversarialTrainer(model, optimizers, step_fn, loader, out_dir=out, eval_fn=eval_fn, epochs=epochs,
                                 max_steps=max_steps, log_every=max(1, min(log_every, n_batches)),
                                 progress=progress, extra_state=extra_state, main=curve_keys[0])
    if not resume:
        fresh_log(trainer)
    t0 = time.perf_counter()
    res = trainer.fit(resume=resume)
    wall = time.perf_counter() - t0
    lg = trainer.logger
    loss_curve = plot_loss_curves(lg, list(curve_keys), os.path.join(out, "loss_curve.png"), f"{name}: losses")
    score_curve = None
    if lg.series("score_is", "val"):
        from ..data import plot_curves

        score_curve = plot_curves({"Inception-like score (max 10)": lg.series("score_is", "val"),
                                   "10 x mean max-probability": [(s, 10 * v) for s, v in
                                                                 lg.series("score_max_prob", "val")],
                                   "4 x class entropy (max 9.2)": [(s, 4 * v) for s, v in
                                                                   lg.series("score_entropy", "val")]},
                                  os.path.join(out, "score_curve.png"), title=f"{name}: MNIST-classifier scores",
                                  ylabel="score")
    last_train = next((r for r in reversed(lg.rows) if r.get("split") == "train"), {})
    summary = {"model": name, "step": res["step"], "epoch": res["epoch"], "interrupted": res["interrupted"],
               "resumed": res.get("resumed", False), "wall_s": wall,
               "s_per_step": _median_step_time(lg, batch_size) or (wall / max(res["step"], 1)),
               **{k: last_train.get(k) for k in curve_keys},
               "scores": {k: res.get(k) for k in ("score_is", "score_max_prob", "score_entropy", "class_freq")}
               if scorer is not None else None,
               "samples": grids[-1] if grids else None, "sample_grids": grids, "loss_curve": loss_curve,
               "score_curve": score_curve, "checkpoint": res["checkpoint"], "config": config}
    if finish_fn is not None:
        was = model.training
        model.eval()
        try:
            with mg.no_grad():
                summary.update(finish_fn(out) or {})
        finally:
            model.train(was)
    write_json(summary, os.path.join(out, "summary.json"))
    if not quiet:
        sc = summary["scores"]
        msg = (f"; classifier score IS {sc['score_is']:.2f}, mean max-prob {sc['score_max_prob']:.3f}, "
               f"class entropy {sc['score_entropy']:.3f}" if sc and sc.get("score_is") is not None else "")
        print(f"{name}: {'interrupted' if res['interrupted'] else 'done'} after {res['step']} steps "
              f"({res['epoch']} epochs) in {wall:.1f}s{msg}")
        print(f"outputs in {out}/ (samples.png, loss_curve.png, metrics.jsonl, checkpoint.safetensors)")
    return summary


def _median_step_time(logger, batch_size):
    rates = [r["samples_per_s"] for r in logger.rows if r.get("split") == "train" and r.get("samples_per_s")]
    return float(np.median([batch_size / r for r in rates])) if rates else None
