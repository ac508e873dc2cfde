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

Initialisation (:func:`dcgan_init_`, Radford et al. section 4): conv / linear weights ~ N(0, 0.02), BatchNorm
gains ~ N(1, 0.02), biases 0. The training recipe (Adam 2e-4 / beta1 0.5, batch 64, C = 128 and W = 64 by
default; C = 256 is the TensorFlow tutorial's size) is :mod:`minigen.recipes.dcgan`.
"""
from __future__ import annotations

from .. import nn
from .gan import GAN

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "dcgan_init_", "build_dcgan"]


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


def dcgan_init_(module, std=0.02, generator=None):
    """DCGAN initialisation: conv / linear weights ~ N(0, std), biases 0, BatchNorm gains ~ N(1, std) and
    shifts 0. Returns the module."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std, generator=generator)
            nn.init.zeros_(m.bias)
    return module


def build_dcgan(nz=100, g_width=128, d_width=64, seed=0):
    """G and D with the DCGAN initialisation (seeded), in one :class:`~minigen.models.gan.GAN` module."""
    import minigen as mg

    g0 = mg.Generator().manual_seed(seed)
    G = dcgan_init_(DCGANGenerator(nz, g_width), generator=g0)
    D = dcgan_init_(DCGANDiscriminator(d_width), generator=g0)
    return GAN(G, D)
