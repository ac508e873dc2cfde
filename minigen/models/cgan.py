"""Conditional GAN (Mirza & Osindero 2014): G and D both see the class label y.

The game is the GAN's with every term conditioned on y::

    min_G max_D  V(D, G) = E_{(x, y) ~ data}[log D(x | y)] + E_{z ~ N(0, I), y ~ U{0..9}}[log(1 - D(G(z | y) | y))]

Conditioning is by concatenation, as in the article: the generator's input is [z, onehot(y)] (100 + 10
values), and the discriminator's input is the image with 10 extra channels, channel k filled with
onehot(y)[k] (a constant plane per class), so its first convolution sees the label at every position.
Otherwise G and D are the DCGAN's (:mod:`minigen.models.dcgan`), trained the same way (BCE on logits,
non-saturating G loss, N(0, 0.02) init).
Training and the one-row-per-digit sample grid: :mod:`minigen.recipes.cgan`.
"""
from __future__ import annotations

from .. import nn
from ..nn import functional as F
from .dcgan import DCGANDiscriminator, DCGANGenerator

__all__ = ["ConditionalGenerator", "ConditionalDiscriminator", "label_planes"]


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
