"""DCGAN (Radford, Metz & Chintala 2015): the GAN game with convolutional G and D.

The objective is the GAN's (:mod:`minigen.models.gan`), trained with binary cross-entropy on D's logits::

    L_D = BCE(D(x), 1) + BCE(D(G(z)), 0) = -mean log sigmoid(l_real) - mean log sigmoid(-l_fake)
    L_G = BCE(D(G(z)), 1) = -mean log sigmoid(l_fake)                       (non-saturating)

Generator, for C = ``g_width`` (the article's MNIST layout; 1 output channel, images in [-1, 1])::

    z (100) -> Dense(7*7*C, no bias) -> BatchNorm -> LeakyReLU(0.2) -> reshape (C, 7, 7)
      -> ConvTranspose 5x5 stride 1 (C/2)  -> BN -> LeakyReLU(0.2)          7 x 7
      -> ConvTranspose 5x5 stride 2 (C/4)  -> BN -> LeakyReLU(0.2)         14 x 14
      -> ConvTranspose 5x5 stride 2 (C/8)  -> BN -> LeakyReLU(0.2)         28 x 28
      -> Conv 5x5 (1) -> tanh                                              28 x 28

(padding 2 everywhere; output_padding 1 on the stride-2 transposed convs, so each doubles the size.)

Discriminator, for W = ``d_width``::

    x (1, 28, 28) -> Conv 5x5 stride 2 (W) -> LeakyReLU(0.2) -> Dropout 0.3        14 x 14
      -> Conv 5x5 stride 2 (2W) -> LeakyReLU(0.2) -> Dropout 0.3                    7 x 7
      -> Flatten -> Dense(1)  (a logit)

Training as the article: Adam (lr 2e-4, beta1 0.5), weights ~ N(0, 0.02) (BatchNorm gains ~ N(1, 0.02)),
minibatch 64, a checkpoint and a sample grid PNG every epoch. The defaults here use C = 128 and W = 64
(C = 256 is the TensorFlow tutorial's size; ``--g-width 256``), a 2-core CPU budget.
"""
from __future__ import annotations

from .. import nn
from .gan import GAN, common_kwargs, make_gan_step
from .image_utils import Optimizers, add_common_arguments, dcgan_init_, run_adversarial, sample_noise

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "build_dcgan", "train_dcgan", "add_arguments", "run"]


class DCGANGenerator(nn.Module):
    """z (B, nz) -> image (B, 1, 28, 28) in [-1, 1] (module docstring)."""

    def __init__(self, nz=100, width=128, out_channels=1):
        super().__init__()
        if width % 8:
            raise ValueError(f"DCGAN generator width must be a multiple of 8, got {width}")
        C = width
        self.nz, self.width = nz, width
        self.project = nn.Sequential(nn.Linear(nz, 7 * 7 * C, bias=False), nn.BatchNorm1d(7 * 7 * C),
                                     nn.LeakyReLU(0.2))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(C, C // 2, 5, stride=1, padding=2, bias=False), nn.BatchNorm2d(C // 2),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(C // 2, C // 4, 5, stride=2, padding=2, output_padding=1, bias=False),
            nn.BatchNorm2d(C // 4), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(C // 4, C // 8, 5, stride=2, padding=2, output_padding=1, bias=False),
            nn.BatchNorm2d(C // 8), nn.LeakyReLU(0.2),
            nn.Conv2d(C // 8, out_channels, 5, padding=2), nn.Tanh())

    def forward(self, z):
        h = self.project(z).reshape(z.shape[0], self.width, 7, 7)
        return self.net(h)


class DCGANDiscriminator(nn.Module):
    """x (B, in_channels, 28, 28) -> logit (B,) (module docstring). ``dropout=0`` gives WGAN-GP's critic."""

    def __init__(self, width=64, in_channels=1, dropout=0.3):
        super().__init__()
        layers = [nn.Conv2d(in_channels, width, 5, stride=2, padding=2), nn.LeakyReLU(0.2)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Conv2d(width, 2 * width, 5, stride=2, padding=2), nn.LeakyReLU(0.2)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Flatten(), nn.Linear(2 * width * 7 * 7, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).reshape(-1)


def build_dcgan(nz=100, g_width=128, d_width=64, seed=0):
    """G and D with the DCGAN initialisation, in one :class:`~minigen.models.gan.GAN` module."""
    import minigen as mg

    g0 = mg.Generator().manual_seed(seed)
    G = dcgan_init_(DCGANGenerator(nz, g_width), generator=g0)
    D = dcgan_init_(DCGANDiscriminator(d_width), generator=g0)
    return GAN(G, D)


def train_dcgan(out="out/dcgan", epochs=5, batch_size=64, lr=2e-4, beta1=0.5, nz=100, g_width=128, d_width=64,
                seed=0, **kw):
    """Train the DCGAN on the bundled MNIST; see :func:`~minigen.models.image_utils.run_adversarial` for ``kw``."""
    import minigen as mg
    from .. import optim

    mg.manual_seed(seed)
    model = build_dcgan(nz, g_width, d_width, seed)
    G, D = model.G, model.D
    opt_g = optim.Adam(G.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=lr, betas=(beta1, 0.999))
    step = make_gan_step(G, D, opt_g, opt_d, nz)

    def sample(n, generator):
        return G(sample_noise(n, nz, device=next(G.parameters()).device, generator=generator))

    config = dict(epochs=epochs, batch_size=batch_size, lr=lr, beta1=beta1, nz=nz, g_width=g_width, d_width=d_width,
                  seed=seed)
    return run_adversarial("dcgan", model, Optimizers(D=opt_d, G=opt_g), step, sample, out=out, epochs=epochs,
                           batch_size=batch_size, seed=seed, config=config, **kw)


def add_arguments(p):
    add_common_arguments(p, "out/dcgan", epochs=5, batch_size=64, lr=2e-4)
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5)")
    p.add_argument("--nz", type=int, default=100, help="noise dimension (default 100)")
    p.add_argument("--g-width", type=int, default=128,
                   help="channels after the dense layer, C (C, C/2, C/4, C/8; default 128)")
    p.add_argument("--d-width", type=int, default=64, help="discriminator channels W, 2W (default 64)")


def run(args):
    s = train_dcgan(args.out, args.epochs, args.batch_size, args.lr, args.beta1, args.nz, args.g_width, args.d_width,
                    args.seed, **common_kwargs(args))
    return 130 if s["interrupted"] else 0
