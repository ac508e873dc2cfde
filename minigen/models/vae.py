"""Variational autoencoder (Kingma & Welling 2014), trained by maximising the ELBO.

Encoder q(z | x) = N(mu(x), diag sigma^2(x)) outputs mu and logvar = log sigma^2; decoder p(x | z) is a
Bernoulli per pixel with logits f(z). A sample is drawn with the **reparameterisation**

    z = mu + sigma * eps,   sigma = exp(logvar / 2),   eps ~ N(0, I)

so the gradient flows through mu and sigma. The loss per image is the negative ELBO::

    L(x) = BCE(x, sigmoid(f(z)))_sum  +  KL(q(z | x) || N(0, I))
    BCE_sum = -sum_pixels [x log p + (1 - x) log(1 - p)]          (computed from the logits, stable)
    KL      = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))  (closed form, ``F.gaussian_kl``)

Models: :class:`MLPVAE` is the PyTorch example's 784 -> 400 -> (20 mu, 20 logvar), 20 -> 400 -> 784
(ReLU hidden layers); :class:`ConvVAE` has conv 4x4 stride-2 encoders / transposed-conv decoders. A sample of
the model is sigmoid(f(z)), z ~ N(0, I). Training (the PyTorch example's Adam 1e-3, batch 128), the fixed
validation protocol and the pictures (reconstructions, samples, the 2-D latent map): :mod:`minigen.recipes.vae`.
"""
from __future__ import annotations

from .. import nn
from ..errors import InvalidArgumentError
from ..nn import functional as F

__all__ = ["reparameterize", "vae_loss", "MLPVAE", "ConvVAE", "build_vae"]


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
    raise InvalidArgumentError(f"VAE architecture must be 'mlp' or 'conv', got {arch!r}")
