"""Variational autoencoder (Kingma & Welling 2014), trained by maximising the ELBO.

Encoder q(z | x) = N(mu(x), diag sigma^2(x)) outputs mu and logvar = log sigma^2; decoder p(x | z) is a
Bernoulli per pixel with logits f(z). A sample is drawn with the **reparameterisation**

    z = mu + sigma * eps,   sigma = exp(logvar / 2),   eps ~ N(0, I)

so the gradient flows through mu and sigma. The loss per image is the negative ELBO::

    L(x) = BCE(x, sigmoid(f(z)))_sum  +  KL(q(z | x) || N(0, I))
    BCE_sum = -sum_pixels [x log p + (1 - x) log(1 - p)]          (computed from the logits, stable)
    KL      = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))  (closed form, ``F.gaussian_kl``)

Models: :class:`MLPVAE` is the PyTorch example's 784 -> 400 -> (20 mu, 20 logvar), 20 -> 400 -> 784
(ReLU hidden layers); :class:`ConvVAE` has conv 4x4 stride-2 encoders / transposed-conv decoders. Training as
the PyTorch example: Adam lr 1e-3, batch 128 (the loss is averaged over the batch here, the example sums it:
Adam's steps are the same up to its epsilon). The validation loss reported is L(x) averaged over the 1,000
validation images with one fixed draw of eps per image (seeded, so runs compare exactly).

Outputs: ``reconstructions.png`` (pairs of rows: originals, then their reconstructions), ``samples.png``
(sigmoid(f(z)) for z ~ N(0, I)), and with ``latent_dim = 2`` the 2-D latent map ``latent_map.png`` (the
decoder on a grid z = (Phi^-1(u), Phi^-1(v)), Kingma & Welling's figure 4) and ``latent_scatter.png``
(mu of the validation digits, coloured by label).
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from .. import backend, nn
from ..nn import functional as F
from .image_utils import (add_common_arguments, fresh_log, mnist_loader, plot_loss_curves, progress_flag, save_grid,
                          write_json)

__all__ = ["reparameterize", "vae_loss", "MLPVAE", "ConvVAE", "build_vae", "norm_ppf", "evaluate_vae", "train_vae",
           "latent_map", "add_arguments", "run"]


# ----------------------------------------------------------------------------- the formulas
def reparameterize(mu, logvar, eps=None):
    """z = mu + exp(logvar / 2) * eps (eps ~ N(0, I) drawn from the default generator when not given)."""
    import minigen as mg

    std = (logvar * 0.5).exp()
    if eps is None:
        eps = mg.randn_like(std)
    return mu + std * eps


def vae_loss(x, logits, mu, logvar):
    """Negative ELBO summed over the batch: (total, bce, kl), each a scalar Tensor (divide by B for per image).

    bce = sum BCE-with-logits(logits, x) over pixels and images; kl = sum of the closed-form KL.
    """
    bce = F.binary_cross_entropy_with_logits(logits.reshape(x.shape), x, reduction="sum")
    kl = F.gaussian_kl(mu, logvar, reduction="sum")
    return bce + kl, bce, kl


# ----------------------------------------------------------------------------- models
class MLPVAE(nn.Module):
    """784 -> hidden -> (mu, logvar) of size latent; latent -> hidden -> 784 logits (PyTorch example shape)."""

    def __init__(self, latent_dim=20, hidden=400):
        super().__init__()
        self.latent_dim = latent_dim
        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent_dim)   # mu
        self.fc22 = nn.Linear(hidden, latent_dim)   # logvar
        self.fc3 = nn.Linear(latent_dim, hidden)
        self.fc4 = nn.Linear(hidden, 784)

    def encode(self, x):
        h = F.relu(self.fc1(x.reshape(x.shape[0], 784)))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        """Logits of p(x | z), shape (B, 1, 28, 28)."""
        return self.fc4(F.relu(self.fc3(z))).reshape(z.shape[0], 1, 28, 28)

    def forward(self, x, eps=None):
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar


class ConvVAE(nn.Module):
    """Encoder conv 4x4 s2 (1->32) -> ReLU -> conv 4x4 s2 (32->64) -> ReLU -> Linear(64*7*7 -> 2 * latent);
    decoder Linear(latent -> 64*7*7) -> ReLU -> convT 4x4 s2 (64->32) -> ReLU -> convT 4x4 s2 (32->1) logits."""

    def __init__(self, latent_dim=20, width=32):
        super().__init__()
        self.latent_dim, self.width = latent_dim, width
        W = width
        self.enc = nn.Sequential(nn.Conv2d(1, W, 4, 2, 1), nn.ReLU(), nn.Conv2d(W, 2 * W, 4, 2, 1), nn.ReLU(),
                                 nn.Flatten())
        self.fc_mu = nn.Linear(2 * W * 49, latent_dim)
        self.fc_logvar = nn.Linear(2 * W * 49, latent_dim)
        self.fc_dec = nn.Linear(latent_dim, 2 * W * 49)
        self.dec = nn.Sequential(nn.ConvTranspose2d(2 * W, W, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(W, 1, 4, 2, 1))

    def encode(self, x):
        h = self.enc(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z):
        h = F.relu(self.fc_dec(z)).reshape(z.shape[0], 2 * self.width, 7, 7)
        return self.dec(h)

    def forward(self, x, eps=None):
        mu, logvar = self.encode(x)
        return self.decode(reparameterize(mu, logvar, eps)), mu, logvar


def build_vae(arch="mlp", latent_dim=20, hidden=400, width=32):
    if arch == "mlp":
        return MLPVAE(latent_dim, hidden)
    if arch == "conv":
        return ConvVAE(latent_dim, width)
    raise ValueError(f"VAE architecture must be 'mlp' or 'conv', got {arch!r}")


# ----------------------------------------------------------------------------- evaluation and pictures
def evaluate_vae(model, images, batch_size=500, seed=1234):
    """Mean negative ELBO per image (and its BCE / KL parts) on ``images`` (N, 1, 28, 28) in [0, 1].

    One eps per image from a generator seeded with ``seed``: the same draw every call (a fixed protocol).
    """
    import minigen as mg

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
    import minigen as mg

    qs = [norm_ppf((k + 0.5) / n) for k in range(n)]
    z = np.array([[qs[j], qs[n - 1 - i]] for i in range(n) for j in range(n)], dtype=np.float32)
    dev = next(model.parameters()).device
    with mg.no_grad():
        imgs = F.sigmoid(model.decode(mg.tensor(z, device=dev)))
    return save_grid(imgs, path, nrow=n, pm1=False)


def _latent_scatter(model, images, labels, path):
    import minigen as mg
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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


def _pictures(model, out, val_images, val_labels, seed):
    import minigen as mg

    dev = next(model.parameters()).device
    paths = {}
    with mg.no_grad():
        x = mg.tensor(val_images[:32], device=dev)
        mu, _ = model.encode(x)
        rec = F.sigmoid(model.decode(mu))   # the decoder's mean at z = mu
        rows = []
        for r in range(4):
            rows += [x[8 * r:8 * r + 8], rec[8 * r:8 * r + 8]]
        paths["reconstructions"] = save_grid(mg.cat(rows, dim=0), os.path.join(out, "reconstructions.png"), nrow=8,
                                             pm1=False)
        z = mg.randn(64, model.latent_dim, generator=mg.Generator().manual_seed(seed + 1), device=dev)
        paths["samples"] = save_grid(F.sigmoid(model.decode(z)), os.path.join(out, "samples.png"), nrow=8, pm1=False)
        if model.latent_dim == 2:
            paths["latent_map"] = latent_map(model, os.path.join(out, "latent_map.png"))
            paths["latent_scatter"] = _latent_scatter(model, val_images, val_labels,
                                                      os.path.join(out, "latent_scatter.png"))
    return paths


# ----------------------------------------------------------------------------- training
def train_vae(out="out/vae", arch="mlp", epochs=10, batch_size=128, lr=1e-3, latent_dim=20, hidden=400, width=32,
              seed=0, limit=None, max_steps=None, device=None, progress=None, resume=False, log_every=10, quiet=False):
    """Train a VAE on the bundled MNIST 9k split; validation on the 1k split. Returns (model, summary)."""
    import minigen as mg
    from .. import optim
    from ..data import BundledMNIST
    from ..train import Trainer

    os.makedirs(out, exist_ok=True)
    mg.manual_seed(seed)
    model = build_vae(arch, latent_dim, hidden, width)
    if device is not None:
        model.to(device)
    loader = mnist_loader("train", batch_size, shuffle=True, seed=seed, limit=limit, device=device, drop_last=False)
    val = BundledMNIST("val")
    opt = optim.Adam(model.parameters(), lr=lr)

    def loss_fn(batch):
        x, _ = batch
        logits, mu, logvar = model(x)
        total, bce, kl = vae_loss(x, logits, mu, logvar)
        B = x.shape[0]
        return total / B, {"bce": bce.item() / B, "kl": kl.item() / B}

    def eval_fn():
        return evaluate_vae(model, val.images, seed=seed + 1234)

    config = dict(arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, latent_dim=latent_dim, hidden=hidden,
                  width=width, seed=seed)
    write_json({"model": "vae", **config}, os.path.join(out, "config.json"))
    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out, eval_fn=eval_fn, epochs=epochs, max_steps=max_steps,
                      log_every=max(1, min(log_every, len(loader))), progress=progress)
    if not resume:
        fresh_log(trainer)
    t0 = time.perf_counter()
    res = trainer.fit(resume=resume)
    wall = time.perf_counter() - t0
    model.eval()
    paths = _pictures(model, out, val.images, val.labels, seed)
    lg = trainer.logger
    paths["loss_curve"] = plot_loss_curves(lg, {"loss": "train loss (batch mean)"}, os.path.join(out, "loss_curve.png"),
                                           f"VAE ({arch}, latent {latent_dim})", ylabel="negative ELBO per image",
                                           extra={"val loss": lg.series("val_loss", "val")})
    summary = {"model": "vae", "arch": arch, "step": res["step"], "epoch": res["epoch"], "wall_s": wall,
               "interrupted": res["interrupted"], "val_loss": res.get("val_loss"), "val_bce": res.get("val_bce"),
               "val_kl": res.get("val_kl"), "train_loss": res.get("train_loss"), "checkpoint": res["checkpoint"],
               "config": config, **paths}
    write_json(summary, os.path.join(out, "summary.json"))
    if not quiet:
        print(f"vae ({arch}): {res['step']} steps ({res['epoch']} epochs) in {wall:.1f}s; validation loss "
              f"{summary['val_loss']:.2f} per image (BCE {summary['val_bce']:.2f} + KL {summary['val_kl']:.2f})")
        print(f"outputs in {out}/")
    return model, summary


# ----------------------------------------------------------------------------- CLI
def add_arguments(p):
    add_common_arguments(p, "out/vae", epochs=10, batch_size=128, lr=1e-3, scorer=False)
    p.add_argument("--arch", choices=["mlp", "conv"], default="mlp", help="784-400-20 MLP (default) or conv")
    p.add_argument("--latent-dim", type=int, default=20, help="default 20 (2 also draws the latent map)")
    p.add_argument("--hidden", type=int, default=400, help="MLP hidden width (default 400)")
    p.add_argument("--width", type=int, default=32, help="conv channels (default 32)")


def run(args):
    _, s = train_vae(args.out, args.arch, args.epochs, args.batch_size, args.lr, args.latent_dim, args.hidden,
                     args.width, args.seed, args.limit, args.max_steps, args.device, progress_flag(args), args.resume,
                     args.log_every)
    return 130 if s["interrupted"] else 0
