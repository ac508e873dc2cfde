"""``minigen train vae``: the VAE of :mod:`minigen.models.vae` on the bundled MNIST (9k train / 1k validation).

Recipe as the PyTorch example: Adam lr 1e-3, batch 128, 10 epochs (the loss is averaged over the batch here,
the example sums it: Adam's steps are the same up to its epsilon). The validation loss reported is the
negative ELBO averaged over the 1,000 validation images with one fixed draw of eps per image (seeded, so runs
compare exactly: :func:`evaluate_vae`).

Outputs: ``reconstructions.png`` (pairs of rows: originals, then their reconstructions), ``samples.png``
(sigmoid(f(z)) for z ~ N(0, I)), and with ``--latent-dim 2`` the 2-D latent map ``latent_map.png`` (the
decoder on a grid z = (Phi^-1(u), Phi^-1(v)), Kingma & Welling's figure 4) and ``latent_scatter.png``
(mu of the validation digits, coloured by label). ``minigen sample RUN_DIR``: a grid of decoded z ~ N(0, I)
(``--latent-map`` for the 2-D map).
"""
from __future__ import annotations

import math
import os
import time

from . import _common as C

NAME = "vae"
HELP = "VAE on MNIST (784-400-20 MLP or conv): reconstructions, samples, 2-D latent map"
DATA_PARALLEL = ("each rank takes its rows of every shuffled global batch of N x --batch-size images (its own "
                 "eps draws); rank 0 evaluates, draws the pictures and writes")


def build_model(a):
    from ..models.vae import build_vae

    return build_vae(a.arch, a.latent_dim, a.hidden, a.width)


def evaluate_vae(model, images, batch_size=500, seed=1234):
    """Mean negative ELBO per image (and its BCE / KL parts) on ``images`` (N, 1, 28, 28) in [0, 1].

    One eps per image from a generator seeded with ``seed``: the same draw every call (a fixed protocol).
    """
    import numpy as np

    import minigen as mg
    from ..models.vae import vae_loss

    g = np.random.Generator(np.random.PCG64(seed))
    tot = bce = kl = 0.0
    n = images.shape[0]
    dev = next(model.parameters()).device
    was = model.training
    model.eval()
    try:
        with mg.no_grad():
            for i in range(0, n, batch_size):
                xb = mg.tensor(np.asarray(images[i:i + batch_size], dtype=np.float32), device=dev)
                eps = mg.tensor(g.standard_normal((xb.shape[0], model.latent_dim)).astype(np.float32), device=dev)
                logits, mu, logvar = model(xb, eps)
                t, b, k = vae_loss(xb, logits, mu, logvar)
                tot, bce, kl = tot + t.item(), bce + b.item(), kl + k.item()
    finally:
        model.train(was)
    return {"val_loss": tot / n, "val_bce": bce / n, "val_kl": kl / n}


def norm_ppf(p):
    """Phi^-1(p), the standard normal quantile (bisection on Phi(x) = (1 + erf(x / sqrt 2)) / 2)."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def latent_map(model, path, n=20):
    """Decode a n x n grid of z = (Phi^-1(u_j), Phi^-1(u_i)), u evenly spaced in (0, 1): the 2-D manifold."""
    import numpy as np

    import minigen as mg
    from ..nn import functional as F

    qs = [norm_ppf((k + 0.5) / n) for k in range(n)]
    z = np.array([[qs[j], qs[n - 1 - i]] for i in range(n) for j in range(n)], dtype=np.float32)
    dev = next(model.parameters()).device
    with mg.no_grad():
        imgs = F.sigmoid(model.decode(mg.tensor(z, device=dev)))
    return C.save_grid(imgs, path, nrow=n, pm1=False)


def _latent_scatter(model, images, labels, path):
    import minigen as mg
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .. import backend

    dev = next(model.parameters()).device
    with mg.no_grad():
        mu, _ = model.encode(mg.tensor(images, device=dev))
    mu = backend.to_numpy(mu.array)
    fig = Figure(figsize=(6, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    sc = ax.scatter(mu[:, 0], mu[:, 1], c=labels, cmap="tab10", s=6)
    fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("mu_1")
    ax.set_ylabel("mu_2")
    ax.set_title("VAE latent means of the validation digits")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _samples(model, path, n, seed):
    import minigen as mg
    from ..nn import functional as F

    dev = next(model.parameters()).device
    with mg.no_grad():
        z = mg.randn(n, model.latent_dim, generator=mg.Generator().manual_seed(seed), device=dev)
        return C.save_grid(F.sigmoid(model.decode(z)), path, nrow=8, pm1=False)


def _pictures(model, out, val_images, val_labels, seed):
    import minigen as mg
    from ..nn import functional as F

    dev = next(model.parameters()).device
    paths = {}
    with mg.no_grad():
        x = mg.tensor(val_images[:32], device=dev)
        mu, _ = model.encode(x)
        rec = F.sigmoid(model.decode(mu))   # the decoder's mean at z = mu
        rows = []
        for r in range(4):
            rows += [x[8 * r:8 * r + 8], rec[8 * r:8 * r + 8]]
        paths["reconstructions"] = C.save_grid(mg.cat(rows, dim=0), os.path.join(out, "reconstructions.png"),
                                               nrow=8, pm1=False)
        paths["samples"] = _samples(model, os.path.join(out, "samples.png"), 64, seed + 1)
        if model.latent_dim == 2:
            paths["latent_map"] = latent_map(model, os.path.join(out, "latent_map.png"))
            paths["latent_scatter"] = _latent_scatter(model, val_images, val_labels,
                                                      os.path.join(out, "latent_scatter.png"))
    return paths


def train_vae(out="out/vae", arch="mlp", epochs=10, batch_size=128, lr=1e-3, latent_dim=20, hidden=400, width=32,
              seed=0, limit=None, max_steps=None, device=None, progress=None, resume=False, log_every=10, quiet=False,
              args=None, dp=None):
    """Train a VAE on the bundled MNIST 9k split; validation on the 1k split. ``dp``: a
    :class:`minigen.train.DataParallel` (``batch_size`` per process). Returns (model, summary)."""
    import argparse

    import minigen as mg
    from .. import optim
    from ..data import BundledMNIST
    from ..models.vae import vae_loss
    from ..train import Trainer

    os.makedirs(out, exist_ok=True)
    mg.manual_seed(seed)
    a = argparse.Namespace(arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, latent_dim=latent_dim,
                           hidden=hidden, width=width, seed=seed, limit=limit, max_steps=max_steps, out=out)
    model = build_model(a)
    if device is not None:
        model.to(device)
    loader = C.train_loader(C.mnist_loader("train", C.global_batch(batch_size, dp), shuffle=True, seed=seed,
                                           limit=limit, device=device, drop_last=False), dp)
    net = model if dp is None else dp.wrap(model)
    val = BundledMNIST("val")
    opt = optim.Adam(model.parameters(), lr=lr)

    def loss_fn(batch):
        x, _ = batch
        logits, mu, logvar = net(x)
        total, bce, kl = vae_loss(x, logits, mu, logvar)
        B = x.shape[0]
        return total / B, {"bce": bce.item() / B, "kl": kl.item() / B}

    def eval_fn():
        return evaluate_vae(model, val.images, seed=seed + 1234)

    C.write_config(out, NAME, args if args is not None else a)
    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out, eval_fn=C.rng_isolated(eval_fn), epochs=epochs,
                      max_steps=max_steps, log_every=max(1, min(log_every, len(loader))), progress=progress,
                      data_parallel=dp)
    if not resume:
        C.fresh_log(trainer)
    t0 = time.perf_counter()
    res = trainer.fit(resume=resume)
    wall = time.perf_counter() - t0
    if not C.dp_main(dp):  # the other ranks of a data-parallel run write nothing
        return model, {"step": res["step"], "epoch": res["epoch"], "interrupted": res["interrupted"]}
    model.eval()
    paths = C.rng_isolated(_pictures)(model, out, val.images, val.labels, seed)
    lg = trainer.logger
    paths["loss_curve"] = C.plot_loss_curves(lg, {"loss": "train loss (batch mean)"},
                                             os.path.join(out, "loss_curve.png"), f"VAE ({arch}, latent {latent_dim})",
                                             ylabel="negative ELBO per image",
                                             extra={"val loss": lg.series("val_loss", "val")})
    summary = {"model": "vae", "arch": arch, "step": res["step"], "epoch": res["epoch"], "wall_s": wall,
               "interrupted": res["interrupted"], "val_loss": res.get("val_loss"), "val_bce": res.get("val_bce"),
               "val_kl": res.get("val_kl"), "train_loss": res.get("train_loss"), "checkpoint": res["checkpoint"],
               "config": {k: v for k, v in vars(a).items() if k != "out"}, **paths}
    C.write_json(summary, os.path.join(out, "summary.json"))
    if not quiet:
        print(f"vae ({arch}): {res['step']} steps ({res['epoch']} epochs) in {wall:.1f}s; validation loss "
              f"{summary['val_loss']:.2f} per image (BCE {summary['val_bce']:.2f} + KL {summary['val_kl']:.2f})")
        print(f"outputs in {out}/")
    return model, summary


def add_arguments(p):
    C.add_image_arguments(p, "out/vae", epochs=10, batch_size=128, lr=1e-3, scorer=False)
    p.add_argument("--arch", choices=["mlp", "conv"], default="mlp", help="784-400-20 MLP (default) or conv")
    p.add_argument("--latent-dim", type=int, default=20, help="default 20 (2 also draws the latent map)")
    p.add_argument("--hidden", type=int, default=400, help="MLP hidden width (default 400)")
    p.add_argument("--width", type=int, default=32, help="conv channels (default 32)")


def run(args):
    _, s = train_vae(args.out, args.arch, args.epochs, args.batch_size, args.lr, args.latent_dim, args.hidden,
                     args.width, args.seed, args.limit, args.max_steps, args.device, C.progress_flag(args),
                     args.resume, args.log_every, args=args, dp=C.data_parallel(args))
    return C.exit_code(s) if C.is_main_process() else (130 if s["interrupted"] else 0)


def add_sample_arguments(p):
    p.add_argument("--latent-map", action="store_true",
                   help="with a 2-d latent space: the decoder on an n x n grid of quantiles instead")


def sample(args):
    from ..errors import InvalidArgumentError

    a = C.run_args(args.run_dir)
    model = C.load_checkpoint_model(args.run_dir, build_model(a))
    if args.device:
        model.to(args.device)
    if args.latent_map:
        if model.latent_dim != 2:
            raise InvalidArgumentError(f"--latent-map needs a 2-d latent space; this VAE has {model.latent_dim}")
        n = args.n or 20
        path = latent_map(model, C.sample_path(args, "latent_map_sampled.png"), n)
        print(f"wrote the {n} x {n} latent map to {path}")
        return 0
    n = args.n or 64
    path = _samples(model, C.sample_path(args, "samples_generated.png"), n, args.seed)
    print(f"wrote {n} samples sigmoid(f(z)), z ~ N(0, I), to {path}")
    return 0
