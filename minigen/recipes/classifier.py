"""``minigen train classifier``: the MNIST CNN that scores generated digits, trained on the bundled 9k/1k split.

Recipe: cross-entropy, Adam (lr 1e-3, x0.85 per epoch), batch 64, 6 epochs, random shifts of up to 1 pixel
as augmentation (:func:`random_shift`; the 9,000 training images are few, shifted copies stop the CNN
memorising them): >= 98.5% validation accuracy. The weights are cached in ``--out`` as
``classifier.safetensors``; the GAN recipes load them from there (:func:`load_or_train_classifier`) and
train them once if missing. The same loop trains ``minigen train cnn`` and ``minigen train mlp``
(:func:`train_classifier` with other defaults). ``minigen sample RUN_DIR`` writes validation digits and the
classifier's predictions.
"""
from __future__ import annotations

import os
import sys
import time

from . import _common as C

NAME = "classifier"
HELP = "MNIST CNN (at least 98.5 percent val accuracy) scoring generated digits; weights cached in --out"
#: data-parallel (``--ddp N``): what each rank gets
DATA_PARALLEL = ("each rank takes its rows of every shuffled global batch of N x --batch-size images "
                 "(random shifts drawn per rank); rank 0 evaluates and writes")
WEIGHTS = "classifier.safetensors"

__all__ = ["NAME", "HELP", "add_arguments", "run", "sample", "add_sample_arguments", "random_shift",
           "build_classifier", "train_classifier", "load_classifier", "load_or_train_classifier", "WEIGHTS"]


def random_shift(x, max_shift=2, generator=None):
    """Shift each image of ``x`` (B, C, H, W) by (dy, dx) ~ U{-s..s}^2, filling with 0 (data augmentation).

    out[n, :, i, j] = x[n, :, i - dy_n, j - dx_n]  (0 where that falls outside). Not differentiable (input data).
    """
    from .. import backend
    from ..random import _gen
    from ..tensor import Tensor

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


def build_classifier(arch="cnn", width=32, hidden=256, dropout=0.3):
    """The CNN (:class:`~minigen.models.classifier.MNISTClassifier`) or the MLP (``hidden`` wide)."""
    from ..errors import InvalidArgumentError
    from ..models.classifier import MLPClassifier, MNISTClassifier

    if arch == "cnn":
        return MNISTClassifier(int(width), int(hidden), float(dropout))
    if arch == "mlp":
        return MLPClassifier(int(hidden))
    raise InvalidArgumentError(f"MNIST classifier arch must be 'cnn' or 'mlp', got {arch!r}")


def train_classifier(out="out/classifier", arch="cnn", epochs=6, batch_size=64, lr=1e-3, lr_decay=0.85, width=32,
                     hidden=256, shift=1, seed=0, limit=None, max_steps=None, device=None, progress=None,
                     resume=False, log_every=20, quiet=False, name=NAME, args=None, dp=None):
    """Train an MNIST classifier on the bundled 9k split; writes metrics, loss curve, checkpoint, the weights
    file ``classifier.safetensors`` and ``summary.json`` (val accuracy, scores of real val digits).
    ``args``: the CLI options, written to ``config.json`` for ``minigen sample``. ``dp``: a
    :class:`minigen.train.DataParallel` (``batch_size`` per process; rank 0 alone writes). Returns (model, summary)."""
    import minigen as mg
    from .. import optim
    from ..data import BundledMNIST
    from ..io import save
    from ..models.classifier import classifier_scores
    from ..nn import functional as F
    from ..train import Trainer, accuracy

    os.makedirs(out, exist_ok=True)
    mg.manual_seed(seed)
    model = build_classifier(arch, width, hidden)
    if device is not None:
        model.to(device)
    loader = C.train_loader(C.mnist_loader("train", C.global_batch(batch_size, dp), shuffle=True, seed=seed,
                                           limit=limit, device=device, drop_last=False), dp)
    net = model if dp is None else dp.wrap(model)
    val_loader = C.mnist_loader("val", 500, shuffle=False, device=device)
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=lr_decay) if lr_decay != 1.0 else None

    def loss_fn(batch):
        x, y = batch
        return F.cross_entropy(net(random_shift(x, shift)), y)

    def eval_fn():
        tot, correct, n = 0.0, 0, 0
        for x, y in val_loader:
            logits = model(x)
            tot += float(F.cross_entropy(logits, y, reduction="sum").item())
            correct += int(round(accuracy(logits, y) * len(y)))
            n += len(y)
        return {"val_loss": tot / n, "val_acc": correct / n}

    if args is None:  # called from Python (the demo, the GAN recipes): record the options all the same
        import argparse

        args = argparse.Namespace(out=out, arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, lr_decay=lr_decay,
                                  width=width, hidden=hidden, shift=shift, seed=seed, limit=limit,
                                  max_steps=max_steps)
    C.write_config(out, name, args, model=model.config)
    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out, scheduler=sched, scheduler_interval="epoch",
                      eval_fn=C.rng_isolated(eval_fn), epochs=epochs, max_steps=max_steps,
                      log_every=max(1, min(log_every, len(loader) // 2)), progress=progress, data_parallel=dp)
    if not resume:
        C.fresh_log(trainer)
    t0 = time.perf_counter()
    res = trainer.fit(resume=resume)
    wall = time.perf_counter() - t0
    if not C.dp_main(dp):  # the other ranks of a data-parallel run write nothing
        return model, {"step": res["step"], "epoch": res["epoch"], "interrupted": res["interrupted"]}
    weights = os.path.join(out, WEIGHTS)
    save({"config": model.config, "state_dict": model.state_dict()}, weights)
    real = classifier_scores(model, BundledMNIST("val").images)
    curve = C.plot_loss_curves(trainer.logger, {"loss": "train loss (batch mean)"},
                               os.path.join(out, "loss_curve.png"), f"MNIST {arch}", ylabel="cross-entropy",
                               extra={"val loss": trainer.logger.series("val_loss", "val")})
    summary = {"step": res["step"], "epoch": res["epoch"], "val_acc": res.get("val_acc"),
               "val_loss": res.get("val_loss"), "wall_s": wall, "interrupted": res["interrupted"],
               "resumed": res.get("resumed", False), "weights": weights, "loss_curve": curve,
               "real_val_scores": real, "config": model.config, "limit": limit, "checkpoint": res["checkpoint"]}
    C.write_json(summary, os.path.join(out, "summary.json"))
    if not quiet:
        print(f"{name}: {'interrupted' if res['interrupted'] else 'done'} after {res['step']} steps "
              f"({res['epoch']} epochs) in {wall:.1f}s; val accuracy {summary['val_acc']:.4f}, val loss "
              f"{summary['val_loss']:.4f}; real val digits score IS {real['inception_score']:.2f}")
    return model, summary


def load_classifier(folder, device=None):
    """The cached classifier from ``folder/classifier.safetensors`` (eval mode), or None if there is none."""
    from ..io import load

    path = os.path.join(folder, WEIGHTS)
    if not os.path.exists(path):
        return None
    st = load(path)
    cfg = st["config"]
    model = build_classifier(cfg.get("arch", "cnn"), cfg.get("width", 32), cfg.get("hidden", 256),
                             cfg.get("dropout", 0.3))
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
def add_arguments(p, out="out/classifier", epochs=6, shift=1, lr_decay=0.85, hidden=256, arch="cnn"):
    C.add_image_arguments(p, out, epochs=epochs, batch_size=64, lr=1e-3, scorer=False)
    if arch == "cnn":
        p.add_argument("--width", type=int, default=32,
                       help="channels of the first conv (default 32; the second has 2x)")
    p.add_argument("--hidden", type=int, default=hidden, help=f"width of the hidden linear layer(s) (default {hidden})")
    p.add_argument("--shift", type=int, default=shift,
                   help=f"random-shift augmentation in pixels (default {shift}; 0 = off)")
    p.add_argument("--lr-decay", type=float, default=lr_decay,
                   help=f"learning rate x this after each epoch (default {lr_decay}; 1 = constant)")


def run(args, arch="cnn", name=NAME):
    _, summary = train_classifier(args.out, arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                  lr_decay=args.lr_decay, width=getattr(args, "width", 32), hidden=args.hidden,
                                  shift=args.shift, seed=args.seed, limit=args.limit, max_steps=args.max_steps,
                                  device=args.device, progress=C.progress_flag(args), resume=args.resume,
                                  log_every=args.log_every, name=name, args=args, dp=C.data_parallel(args))
    if not C.is_main_process():
        return 130 if summary["interrupted"] else 0
    print(f"outputs in {args.out}/")
    return C.exit_code(summary)


def add_sample_arguments(p):
    p.add_argument("--split", choices=["val", "train"], default="val", help="which bundled digits (default val)")


def sample(args):
    """n bundled digits as a PNG grid, the classifier's predicted digits (row by row) in a .txt beside it."""
    import numpy as np

    from ..data import BundledMNIST, save_image_grid
    from ..errors import CheckpointError

    model = load_classifier(args.run_dir, args.device)
    if model is None:
        raise CheckpointError(f"{args.run_dir}: no {WEIGHTS} (train first: minigen train {NAME} --out DIR)")
    n = args.n or 64
    ds = BundledMNIST(getattr(args, "split", "val"))
    start = int(np.random.default_rng(args.seed).integers(0, max(1, len(ds) - n))) if args.seed else 0
    imgs, labels = ds.images[start:start + n], ds.labels[start:start + n]
    pred = model.probs(imgs).argmax(1)
    path = C.sample_path(args, "predictions.png")
    save_image_grid(imgs, path, nrow=8)
    rows = [" ".join(str(p) for p in pred[i:i + 8]) for i in range(0, len(pred), 8)]
    txt = os.path.splitext(path)[0] + ".txt"
    with open(txt, "w", encoding="utf-8") as f:
        f.write(f"predicted digits for {os.path.basename(path)} (row by row; "
                f"{int((pred == labels).sum())}/{len(pred)} correct)\n" + "\n".join(rows) + "\n")
    print(f"wrote {path} and {txt}: {int((pred == labels).sum())}/{len(pred)} predicted correctly")
    return 0
