"""DCGAN (Radford, Metz & Chintala 2015): the GAN game with convolutional G and D.

The objective is the GAN's (:mod:`minigen.models.gan`), trained with binary cross-entropy on D's logits::

    L_D = BCE(D(x), 1) + BCE(D(G(z)), 0) = -mean log sigmoid(l_real) - mean log sigmoid(-l_fake)
    L_G = BCE(D(G(z)), 1) = -mean log sigmoid(l_fake)                       (non-saturating)

Two configurations (the recipe's ``--preset``):

**pytorch-examples** (the default; :class:`DCGANGenerator`, :class:`DCGANDiscriminator`): the article's layer
sequence with the widths halving as the maps grow, as the PyTorch examples' DCGAN does; for C = ``g_width``::

    z (100) -> Dense(7*7*C, no bias) -> BatchNorm -> LeakyReLU(0.2) -> reshape (C, 7, 7)
      -> ConvTranspose 5x5 stride 1 (C/2, no bias)  -> BN -> LeakyReLU(0.2)          7 x 7
      -> ConvTranspose 5x5 stride 2 (C/4, no bias)  -> BN -> LeakyReLU(0.2)         14 x 14
      -> ConvTranspose 5x5 stride 2 (C/8, no bias)  -> BN -> LeakyReLU(0.2)         28 x 28
      -> Conv 5x5 (1) -> tanh                                                       28 x 28

(padding 2 everywhere; output_padding 1 on the stride-2 transposed convs, so each doubles the size.)
BatchNorm with PyTorch's defaults (momentum 0.1, eps 1e-5). Initialisation (:func:`dcgan_init_`, Radford et
al. section 4): conv / linear weights ~ N(0, 0.02), BatchNorm gains ~ N(1, 0.02), biases 0. Training (Adam
2e-4 / beta1 0.5, batch 64, C = 128 and W = 64 by default; one checkpoint, overwritten each epoch) is
:mod:`minigen.recipes.dcgan`. These defaults are *not* the article's: that is the other preset.

**article** (:class:`ArticleGenerator`, the same discriminator with W = 64; :func:`build_article_dcgan`): the
source article's Keras listing, layer for layer::

    z (100) -> Dense(7*7*128, no bias) -> BatchNorm(momentum 0.2) -> LeakyReLU(0.2) -> reshape (128, 7, 7)
      -> ConvTranspose 5x5 stride 1 (128) -> BN -> LeakyReLU(0.2)                    7 x 7
      -> ConvTranspose 5x5 stride 2 (128) -> BN -> LeakyReLU(0.2)                   14 x 14
      -> ConvTranspose 5x5 stride 2 (128) -> BN -> LeakyReLU(0.2)                   28 x 28
      -> Conv 5x5 (1 channel, no bias) -> tanh                                      28 x 28

Keras' conventions carried over: BatchNormalization(momentum=0.8) keeps 0.8 of the old running statistic,
which is PyTorch's momentum 0.2 (x_run <- (1 - 0.2) x_run + 0.2 x_batch), and its eps is 1e-3; transposed
convs keep Keras' default bias; every kernel starts Glorot-uniform, U(-a, a) with a = sqrt(6 / (fan_in +
fan_out)), biases 0, BN gains 1 (:func:`glorot_init_`, Keras' defaults). Keras' ``padding='same'`` is
padding 2 here (same output sizes; TensorFlow puts the odd extra pixel of a stride-2 'same' pad at the
bottom/right, PyTorch-style padding is symmetric). Training (Adam 1e-4 for both, Keras' eps 1e-7, batch 128,
z ~ N(0, I) of dimension 100, images in [-1, 1], G and D saved after every epoch, one file per epoch) is
``minigen train dcgan --preset article``. The article's listing has four errors, corrected here:

1. its last layer has **3 output channels** for 28x28x1 MNIST; here it has 1;
2. its discriminator ends in Dense(1) with no activation -- a **logit** -- fed to a loss that expects a
   **probability** (binary_crossentropy without from_logits); here the loss is binary cross-entropy *with
   logits*, -log sigmoid(l), as written above;
3. it draws **64 noise vectors** for a batch of **128** real images (the fake batch and its 128 labels do not
   match); here the noise batch has the size of the real batch;
4. its discriminator is **not frozen** inside the stacked G->D model, so the generator's step also moves D
   towards calling fakes real; here the generator step updates G's parameters only (D's gradients from that
   step are discarded before D's next update).

Discriminator (both presets), for W = ``d_width`` (64 in the article)::

    x (1, 28, 28) -> Conv 5x5 stride 2 (W) -> LeakyReLU(0.2) -> Dropout 0.3        14 x 14
      -> Conv 5x5 stride 2 (2W) -> LeakyReLU(0.2) -> Dropout 0.3                    7 x 7
      -> Flatten -> Dense(1)  (a logit)
"""
from __future__ import annotations

from .. import nn
from .gan import GAN

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "ArticleGenerator", "dcgan_init_", "glorot_init_", "build_dcgan",
           "build_article_dcgan", "ARTICLE_BN_MOMENTUM", "ARTICLE_BN_EPS"]

ARTICLE_BN_MOMENTUM = 0.2   # Keras BatchNormalization(momentum=0.8): 0.8 of the old running value kept
ARTICLE_BN_EPS = 1e-3       # Keras' default epsilon


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


class ArticleGenerator(nn.Module):
    """The article's generator (module docstring), 1 output channel: z (B, nz) -> image (B, 1, 28, 28) in [-1, 1].

    Parameters, for nz = 100, C = 128 (the hand count the tests check): Dense 100*6272 = 627,200; BN1d 2*6272;
    three ConvTranspose 128*128*25 + 128 = 409,728 each; three BN2d 2*128; Conv 128*25 = 3,200 (no bias):
    627,200 + 12,544 + 3 * 409,728 + 3 * 256 + 3,200 = 1,872,896.
    """

    def __init__(self, nz=100, width=128, out_channels=1, bn_momentum=ARTICLE_BN_MOMENTUM, bn_eps=ARTICLE_BN_EPS):
        super().__init__()
        C = width
        self.nz, self.width = nz, width

        def bn(n, d=2):
            return (nn.BatchNorm2d if d == 2 else nn.BatchNorm1d)(n, eps=bn_eps, momentum=bn_momentum)

        self.project = nn.Sequential(nn.Linear(nz, 7 * 7 * C, bias=False), bn(7 * 7 * C, 1), nn.LeakyReLU(0.2))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(C, C, 5, stride=1, padding=2), bn(C), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(C, C, 5, stride=2, padding=2, output_padding=1), bn(C), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(C, C, 5, stride=2, padding=2, output_padding=1), bn(C), nn.LeakyReLU(0.2),
            nn.Conv2d(C, out_channels, 5, padding=2, bias=False), nn.Tanh())

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


def glorot_init_(module, generator=None):
    """Keras' default initialisation: conv / linear kernels ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    (Glorot & Bengio 2010), biases 0, BatchNorm gains 1 and shifts 0. Returns the module."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def build_article_dcgan(nz=100, g_width=128, d_width=64, seed=0):
    """The article's G and D (Glorot-uniform init, seeded) in one :class:`~minigen.models.gan.GAN` module."""
    import minigen as mg

    g0 = mg.Generator().manual_seed(seed)
    G = glorot_init_(ArticleGenerator(nz, g_width), generator=g0)
    D = glorot_init_(DCGANDiscriminator(d_width), generator=g0)
    return GAN(G, D)


def build_dcgan(nz=100, g_width=128, d_width=64, seed=0):
    """G and D with the DCGAN initialisation (seeded), in one :class:`~minigen.models.gan.GAN` module."""
    import minigen as mg

    g0 = mg.Generator().manual_seed(seed)
    G = dcgan_init_(DCGANGenerator(nz, g_width), generator=g0)
    D = dcgan_init_(DCGANDiscriminator(d_width), generator=g0)
    return GAN(G, D)
