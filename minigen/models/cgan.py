"""Conditional GAN (Mirza & Osindero 2014): G and D both see the class label y.

The game is the GAN's with every term conditioned on y::

    min_G max_D  V(D, G) = E_{(x, y) ~ data}[log D(x | y)] + E_{z ~ N(0, I), y ~ U{0..9}}[log(1 - D(G(z | y) | y))]

Conditioning is by concatenation, as in the article: the generator's input is [z, onehot(y)] (100 + 10
values), and the discriminator's input is the image with 10 extra channels, channel k filled with
onehot(y)[k] (a constant plane per class), so its first convolution sees the label at every position.
Otherwise G and D are the DCGAN's (:mod:`minigen.models.dcgan`), trained the same way (BCE on logits,
non-saturating G loss, Adam 2e-4 / beta1 0.5, N(0, 0.02) init). Fake labels are drawn uniformly.

The sample grid has one row per digit: row k shows G(z_j | k) for the same ten noise vectors z_j in every
row, so a column keeps its "style" (slant, thickness) while the row fixes the digit.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import functional as F
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .gan import GAN, common_kwargs, make_gan_step
from .image_utils import Optimizers, add_common_arguments, dcgan_init_, run_adversarial, sample_noise, save_grid

__all__ = ["ConditionalGenerator", "ConditionalDiscriminator", "label_planes", "digit_grid", "train_cgan",
           "add_arguments", "run"]


def _onehot(y, n_classes, like):
    return F.one_hot(y, n_classes).to(like.dtype)


def label_planes(y, n_classes, height, width, like):
    """(B,) labels -> (B, n_classes, H, W) with plane k equal to onehot(y)[k] everywhere."""
    oh = _onehot(y, n_classes, like)
    return oh.reshape(oh.shape[0], n_classes, 1, 1).expand(oh.shape[0], n_classes, height, width)


class ConditionalGenerator(nn.Module):
    """G(z | y) = DCGAN generator applied to [z, onehot(y)]."""

    def __init__(self, nz=100, width=128, n_classes=10):
        super().__init__()
        self.nz, self.n_classes = nz, n_classes
        self.net = DCGANGenerator(nz + n_classes, width)

    def forward(self, z, y):
        import minigen as mg

        return self.net(mg.cat([z, _onehot(y, self.n_classes, z)], dim=1))


class ConditionalDiscriminator(nn.Module):
    """D(x | y) = DCGAN discriminator applied to the image stacked with the 10 label planes (a logit)."""

    def __init__(self, width=64, n_classes=10, dropout=0.3):
        super().__init__()
        self.n_classes = n_classes
        self.net = DCGANDiscriminator(width, in_channels=1 + n_classes, dropout=dropout)

    def forward(self, x, y):
        import minigen as mg

        B, _, H, W = x.shape
        return self.net(mg.cat([x, label_planes(y, self.n_classes, H, W, x)], dim=1))


def digit_grid(G, nz, path, n_per_row=10, generator=None, device=None):
    """One row per digit 0..9, the same ``n_per_row`` noise vectors in every row; written as a PNG."""
    import minigen as mg

    z = sample_noise(n_per_row, nz, device=device, generator=generator)
    zz = mg.cat([z] * G.n_classes, dim=0)                                   # row-major: digit k, column j
    yy = mg.tensor(np.repeat(np.arange(G.n_classes), n_per_row), dtype=mg.int64, device=device)
    return save_grid(G(zz, yy), path, nrow=n_per_row)


def train_cgan(out="out/cgan", epochs=5, batch_size=64, lr=2e-4, beta1=0.5, nz=100, g_width=128, d_width=64, seed=0,
               **kw):
    """Train the conditional DCGAN on the bundled MNIST with its labels; ``kw`` as :func:`run_adversarial`."""
    import minigen as mg
    from .. import optim

    mg.manual_seed(seed)
    g0 = mg.Generator().manual_seed(seed)
    G = dcgan_init_(ConditionalGenerator(nz, g_width), generator=g0)
    D = dcgan_init_(ConditionalDiscriminator(d_width), generator=g0)
    model = GAN(G, D)
    opt_g = optim.Adam(G.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=lr, betas=(beta1, 0.999))
    step = make_gan_step(G, D, opt_g, opt_d, nz, conditional=True)

    def device():
        return next(G.parameters()).device

    def sample(n, generator):
        z = sample_noise(n, nz, device=device(), generator=generator)
        y = mg.tensor(np.arange(n) % 10, dtype=mg.int64, device=device())  # every digit equally often
        return G(z, y)

    def grid(path):
        digit_grid(G, nz, path, 10, mg.Generator().manual_seed(seed + 1), device())

    config = dict(epochs=epochs, batch_size=batch_size, lr=lr, beta1=beta1, nz=nz, g_width=g_width, d_width=d_width,
                  seed=seed)
    summary = run_adversarial("cgan", model, Optimizers(D=opt_d, G=opt_g), step, sample, out=out, epochs=epochs,
                              batch_size=batch_size, seed=seed, config=config, grid_fn=grid,
                              finish_fn=lambda o: {"label_accuracy": _label_accuracy(G, nz, kw, seed)}, **kw)
    return summary


def _label_accuracy(G, nz, kw, seed, n=1000):
    """How often the MNIST classifier reads the digit G was asked for (None without a classifier)."""
    import minigen as mg
    from .classifier import load_classifier
    from .image_utils import from_pm1

    folder = kw.get("classifier")
    if not folder or str(folder).lower() == "none" or not kw.get("score_samples", 1):
        return None
    dev = next(G.parameters()).device
    clf = load_classifier(folder, dev)
    if clf is None:
        return None
    y = np.arange(n) % 10
    z = sample_noise(n, nz, device=dev, generator=mg.Generator().manual_seed(seed + 2))
    imgs = G(z, mg.tensor(y, dtype=mg.int64, device=dev))
    pred = clf.probs(from_pm1(imgs)).argmax(1)
    return float((pred == y).mean())


def add_arguments(p):
    add_common_arguments(p, "out/cgan", epochs=5, batch_size=64, lr=2e-4)
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5)")
    p.add_argument("--nz", type=int, default=100, help="noise dimension (default 100)")
    p.add_argument("--g-width", type=int, default=128, help="generator channels C (default 128)")
    p.add_argument("--d-width", type=int, default=64, help="discriminator channels W (default 64)")


def run(args):
    s = train_cgan(args.out, args.epochs, args.batch_size, args.lr, args.beta1, args.nz, args.g_width, args.d_width,
                   args.seed, **common_kwargs(args))
    if s.get("label_accuracy") is not None:
        print(f"cgan: the classifier reads the requested digit in {100 * s['label_accuracy']:.1f}% of samples")
    return 130 if s["interrupted"] else 0
