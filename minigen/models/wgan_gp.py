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

The paper's hyper-parameters: lambda = 10, n_critic = 5 critic updates per generator update, Adam with
lr 1e-4, betas (0, 0.9). Networks: the DCGAN generator (with BatchNorm) and the DCGAN discriminator without
dropout as the critic (:mod:`minigen.models.dcgan`). The logged ``w_estimate`` = mean D(x) - mean D(x~) is the
critic's estimate of the Wasserstein distance: it should fall as G improves.
"""
from __future__ import annotations

from ..autograd.engine import grad as autograd_grad
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .gan import GAN, common_kwargs
from .image_utils import Optimizers, add_common_arguments, dcgan_init_, run_adversarial, sample_noise, to_pm1

__all__ = ["interpolate", "gradient_penalty", "critic_loss", "generator_loss", "make_wgan_gp_step", "train_wgan_gp",
           "add_arguments", "run"]


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


def make_wgan_gp_step(G, D, opt_g, opt_d, nz, n_critic=5, lam=10.0):
    """One generator update after ``n_critic`` critic updates, each on the same real batch and fresh noise.

    (The paper draws a new real minibatch for every critic update; reusing one batch per generator update keeps
    "an epoch" = one pass over the data for the checkpoint/sample schedule, and costs nothing in quality here.)
    """
    import minigen as mg

    def step(batch):
        x, _ = batch
        x = to_pm1(x)
        B, dev = x.shape[0], x.device
        for _ in range(n_critic):
            with mg.no_grad():
                fake = G(sample_noise(B, nz, device=dev))
            eps = mg.rand(B, device=dev)
            opt_d.zero_grad()
            ld, w, gp = critic_loss(D, x, fake, eps, lam)
            ld.backward()
            opt_d.step()
        opt_g.zero_grad()
        lg = generator_loss(D, G(sample_noise(B, nz, device=dev)))
        lg.backward()
        opt_g.step()
        return {"d_loss": ld.item(), "g_loss": lg.item(), "w_estimate": w.item(), "gp": gp.item()}

    return step


def train_wgan_gp(out="out/wgan-gp", epochs=5, batch_size=64, lr=1e-4, betas=(0.0, 0.9), nz=100, g_width=128,
                  d_width=64, n_critic=5, lam=10.0, seed=0, **kw):
    """Train WGAN-GP on the bundled MNIST; ``kw`` as :func:`~minigen.models.image_utils.run_adversarial`."""
    import minigen as mg
    from .. import optim

    mg.manual_seed(seed)
    g0 = mg.Generator().manual_seed(seed)
    G = dcgan_init_(DCGANGenerator(nz, g_width), generator=g0)
    D = dcgan_init_(DCGANDiscriminator(d_width, dropout=0.0), generator=g0)
    model = GAN(G, D)
    opt_g = optim.Adam(G.parameters(), lr=lr, betas=tuple(betas))
    opt_d = optim.Adam(D.parameters(), lr=lr, betas=tuple(betas))
    step = make_wgan_gp_step(G, D, opt_g, opt_d, nz, n_critic, lam)

    def sample(n, generator):
        return G(sample_noise(n, nz, device=next(G.parameters()).device, generator=generator))

    config = dict(epochs=epochs, batch_size=batch_size, lr=lr, betas=list(betas), nz=nz, g_width=g_width,
                  d_width=d_width, n_critic=n_critic, lam=lam, seed=seed)
    return run_adversarial("wgan-gp", model, Optimizers(D=opt_d, G=opt_g), step, sample, out=out, epochs=epochs,
                           batch_size=batch_size, seed=seed, config=config,
                           curve_keys=("d_loss", "g_loss", "w_estimate", "gp"), **kw)


def add_arguments(p):
    add_common_arguments(p, "out/wgan-gp", epochs=5, batch_size=64, lr=1e-4)
    p.add_argument("--beta1", type=float, default=0.0, help="Adam beta1 (default 0)")
    p.add_argument("--beta2", type=float, default=0.9, help="Adam beta2 (default 0.9)")
    p.add_argument("--n-critic", type=int, default=5, help="critic updates per generator update (default 5)")
    p.add_argument("--lam", type=float, default=10.0, help="gradient penalty weight lambda (default 10)")
    p.add_argument("--nz", type=int, default=100, help="noise dimension (default 100)")
    p.add_argument("--g-width", type=int, default=128, help="generator channels C (default 128)")
    p.add_argument("--d-width", type=int, default=64, help="critic channels W (default 64)")


def run(args):
    s = train_wgan_gp(args.out, args.epochs, args.batch_size, args.lr, (args.beta1, args.beta2), args.nz, args.g_width,
                      args.d_width, args.n_critic, args.lam, args.seed, **common_kwargs(args))
    return 130 if s["interrupted"] else 0
