"""GAN (Goodfellow et al. 2014): a generator G and a discriminator D playing a minimax game.

The value function::

    min_G max_D  V(D, G) = E_{x ~ data}[log D(x)] + E_{z ~ N(0, I)}[log(1 - D(G(z)))]

D outputs a logit l (D = sigmoid(l)), so every log is computed stably from it:
log D = logsigmoid(l), log(1 - D) = logsigmoid(-l). Over a batch the expectations are means.

- discriminator loss (D ascends V):  L_D = -V = -mean log sigmoid(l_real) - mean log sigmoid(-l_fake)
  (= binary cross-entropy with targets 1 for real and 0 for fake);
- generator loss, **minimax** (G descends V):      L_G = mean log(1 - D(G(z))) = mean logsigmoid(-l_fake);
- generator loss, **non-saturating** (the paper's practical choice): L_G = -mean log D(G(z)) = -mean logsigmoid(l_fake).

Both push D(G(z)) up, but their gradients with respect to a fake logit differ:
minimax dL_G/dl = -sigmoid(l) / N, which vanishes early in training when D rejects the fakes confidently
(sigmoid(l) -> 0); non-saturating dL_G/dl = -(1 - sigmoid(l)) / N -> -1/N there, a strong signal.

Training (Algorithm 1 of the paper: ``k`` discriminator updates, then one generator update) is the recipe's:
:mod:`minigen.recipes.gan`.

The MLP networks follow the paper's MNIST setup: G is 100 -> 1200 -> 1200 -> 784 with ReLU (tanh output here,
because the images are scaled to [-1, 1]); D is two maxout layers of 240 units x 5 pieces with dropout, then a
linear logit. A maxout unit is h_i(x) = max_j (x W_{.ij} + b_ij).
"""
from __future__ import annotations

from .. import nn
from ..nn import functional as F

__all__ = ["value_function", "discriminator_loss", "generator_loss", "Maxout", "MLPGenerator", "MLPDiscriminator",
           "GAN"]


# ----------------------------------------------------------------------------- the objective
def value_function(real_logits, fake_logits):
    """V(D, G) = mean log D(x) + mean log(1 - D(G(z))), from D's logits (a scalar Tensor)."""
    return F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean()


def discriminator_loss(real_logits, fake_logits):
    """L_D = -V(D, G): binary cross-entropy of D on real (target 1) and fake (target 0) logits."""
    return -value_function(real_logits, fake_logits)


def generator_loss(fake_logits, mode="non-saturating"):
    """The generator's loss on D's logits of generated images.

    ``'minimax'``: L_G = mean log(1 - D(G(z))) (the term of V that depends on G, minimised);
    ``'non-saturating'``: L_G = -mean log D(G(z)).
    """
    if mode in ("non-saturating", "ns"):
        return -F.logsigmoid(fake_logits).mean()
    if mode == "minimax":
        return F.logsigmoid(-fake_logits).mean()
    raise ValueError(f"generator loss must be 'minimax' or 'non-saturating', got {mode!r}")


# ----------------------------------------------------------------------------- networks
class Maxout(nn.Module):
    """h_i(x) = max_{j < k} (x W + b)[i, j]: a linear map to ``out * k`` units, max over groups of k."""

    def __init__(self, in_features, out_features, pieces=5):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x):
        y = self.linear(x)
        return y.reshape(x.shape[0], self.out_features, self.pieces).amax(-1)


class MLPGenerator(nn.Module):
    """z (B, nz) -> Linear h -> ReLU -> Linear h -> ReLU -> Linear 784 -> tanh -> (B, 1, 28, 28)."""

    def __init__(self, nz=100, hidden=1200):
        super().__init__()
        self.nz = nz
        self.net = nn.Sequential(nn.Linear(nz, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 784), nn.Tanh())

    def forward(self, z):
        return self.net(z).reshape(z.shape[0], 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """x (B, 1, 28, 28) -> Dropout -> Maxout(h, k) -> Dropout -> Maxout(h, k) -> Dropout -> Linear 1 (a logit)."""

    def __init__(self, hidden=240, pieces=5, dropout=0.5, input_dropout=0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Dropout(input_dropout), Maxout(784, hidden, pieces),
                                 nn.Dropout(dropout), Maxout(hidden, hidden, pieces), nn.Dropout(dropout),
                                 nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x).reshape(-1)


class GAN(nn.Module):
    """Holds G and D (one state dict, one checkpoint)."""

    def __init__(self, G, D):
        super().__init__()
        self.G, self.D = G, D
