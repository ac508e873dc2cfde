"""WGAN-GP (Gulrajani et al. 2017): a Wasserstein GAN whose critic is kept 1-Lipschitz by a gradient penalty.

The critic D (no sigmoid, no BatchNorm: the penalty is per sample) estimates the Wasserstein-1 distance
W(P_data, P_G) = max_{||D||_L <= 1} E[D(x)] - E[D(G(z))]. Its loss, for real x, fake x~ = G(z) and the
interpolates x^ = eps x + (1 - eps) x~ with eps ~ U[0, 1] per sample::

    L_D = mean D(x~) - mean D(x) + lambda * mean (||grad_x^ D(x^)||_2 - 1)^2
    L_G = -mean D(G(z))

The penalty differentiates D's input gradient again with respect to D's weights: ``mg.grad(D(x^).sum(), x^,
create_graph=True)`` builds the graph of the gradient, and ``L_D.backward()`` goes through it (second-order
derivatives of the convolutions, LeakyReLU and Linear). ||.||_2 is over all pixels of a sample; it is computed
as sqrt(sum g^2 + 1e-12) so its derivative stays finite when the gradient vanishes.

Networks: the DCGAN generator (with BatchNorm) and the DCGAN discriminator without dropout as the critic
(:mod:`minigen.models.dcgan`). w = mean D(x) - mean D(x~) is the critic's estimate of the Wasserstein
distance: it should fall as G improves. The training recipe (the paper's lambda = 10, n_critic = 5, Adam 1e-4,
betas (0, 0.9)) is :mod:`minigen.recipes.wgan_gp`.
"""
from __future__ import annotations

from ..autograd.engine import grad as autograd_grad

__all__ = ["interpolate", "gradient_penalty", "critic_loss", "generator_loss"]


def interpolate(real, fake, eps):
    """x^ = eps x + (1 - eps) x~, with ``eps`` of shape (B,) broadcast over each sample."""
    e = eps.reshape((real.shape[0],) + (1,) * (real.ndim - 1))
    return e * real + (1.0 - e) * fake


def gradient_penalty(D, x_hat, *args):
    """mean_b (||grad_x D(x)||_2 at x = x^_b  - 1)^2, differentiable with respect to D's parameters.

    ``args`` are passed to D after the image (e.g. labels of a conditional critic).
    """
    x_hat = x_hat.detach().requires_grad_(True)
    out = D(x_hat, *args)
    (g,) = autograd_grad(out.sum(), x_hat, create_graph=True)
    norm = ((g * g).reshape(g.shape[0], -1).sum(dim=1) + 1e-12).sqrt()
    return ((norm - 1.0) ** 2).mean()


def critic_loss(D, real, fake, eps, lam=10.0):
    """(L_D, w_estimate, penalty): L_D = mean D(x~) - mean D(x) + lam * GP(x^), x^ = eps x + (1 - eps) x~."""
    d_real, d_fake = D(real), D(fake)
    gp = gradient_penalty(D, interpolate(real, fake, eps))
    w = d_real.mean() - d_fake.mean()
    return -w + lam * gp, w, gp


def generator_loss(D, fake):
    """L_G = -mean D(G(z))."""
    return -D(fake).mean()
