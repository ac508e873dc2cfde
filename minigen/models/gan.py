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

Algorithm 1 of the paper: each iteration makes ``k`` (``--d-steps``) discriminator updates on fresh
minibatches of noise, then one generator update.

The MLP networks follow the paper's MNIST setup: G is 100 -> 1200 -> 1200 -> 784 with ReLU (tanh output here,
because the images are scaled to [-1, 1]); D is two maxout layers of 240 units x 5 pieces with dropout, then a
linear logit. A maxout unit is h_i(x) = max_j (x W_{.ij} + b_ij). The paper trained with SGD + momentum; the
default here is Adam (lr 2e-4, beta1 0.5), the DCGAN article's setting, which needs no schedule.
"""
from __future__ import annotations

from .. import nn
from ..nn import functional as F
from .image_utils import (Optimizers, add_common_arguments, progress_flag, run_adversarial, sample_noise,
                          to_pm1)

__all__ = ["value_function", "discriminator_loss", "generator_loss", "Maxout", "MLPGenerator",
           "MLPDiscriminator", "GAN", "make_gan_step", "train_gan", "add_arguments", "run"]


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


# ----------------------------------------------------------------------------- training step
def make_gan_step(G, D, opt_g, opt_d, nz, g_loss="non-saturating", d_steps=1, conditional=False, n_classes=10):
    """One iteration of Algorithm 1 as a function ``step(batch) -> metrics``.

    ``d_steps`` (k) discriminator updates, then one generator update. With k = 1 the generated batch of the
    D update is reused for the G update (as the PyTorch DCGAN example does): D sees it detached, G gets
    gradients through D's logits of the same images. ``conditional``: G(z, y) and D(x, y), fake labels drawn
    uniformly (the conditional GAN).
    """
    import minigen as mg

    def d_update(x, y, fake, y_fake):
        opt_d.zero_grad()
        lr_, lf_ = (D(x, y), D(fake.detach(), y_fake)) if conditional else (D(x), D(fake.detach()))
        loss = discriminator_loss(lr_, lf_)
        loss.backward()
        opt_d.step()
        return loss, lr_, lf_

    def gen(B, device):
        z = sample_noise(B, nz, device=device)
        if conditional:
            yf = mg.randint(0, n_classes, (B,), device=device)
            return G(z, yf), yf
        return G(z), None

    def step(batch):
        x, y = batch
        x = to_pm1(x)
        B, dev = x.shape[0], x.device
        for _ in range(d_steps - 1):
            with mg.no_grad():
                fake, yf = gen(B, dev)
            d_update(x, y, fake, yf)
        fake, yf = gen(B, dev)
        ld, lr_, lf_ = d_update(x, y, fake, yf)
        opt_g.zero_grad()
        logits = D(fake, yf) if conditional else D(fake)
        lg = generator_loss(logits, g_loss)
        lg.backward()
        opt_g.step()
        return {"d_loss": ld.item(), "g_loss": lg.item(), "D(x)": F.sigmoid(lr_.detach()).mean().item(),
                "D(G(z))": F.sigmoid(lf_.detach()).mean().item()}

    return step


def train_gan(out="out/gan", epochs=20, batch_size=64, lr=2e-4, beta1=0.5, nz=100, g_hidden=1200, d_hidden=240,
              pieces=5, g_loss="non-saturating", d_steps=1, seed=0, **kw):
    """Train the MLP GAN on the bundled MNIST (images in [-1, 1]); see :func:`run_adversarial` for ``kw``."""
    import minigen as mg
    from .. import optim
    from .image_utils import dcgan_init_

    mg.manual_seed(seed)
    G, D = MLPGenerator(nz, g_hidden), MLPDiscriminator(d_hidden, pieces)
    g0 = mg.Generator().manual_seed(seed)
    dcgan_init_(G, generator=g0)
    dcgan_init_(D, generator=g0)
    model = GAN(G, D)
    opt_g = optim.Adam(G.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=lr, betas=(beta1, 0.999))
    step = make_gan_step(G, D, opt_g, opt_d, nz, g_loss, d_steps)

    def sample(n, generator):
        return G(sample_noise(n, nz, device=next(G.parameters()).device, generator=generator))

    config = dict(epochs=epochs, batch_size=batch_size, lr=lr, beta1=beta1, nz=nz, g_hidden=g_hidden,
                  d_hidden=d_hidden, pieces=pieces, g_loss=g_loss, d_steps=d_steps, seed=seed)
    return run_adversarial("gan", model, Optimizers(D=opt_d, G=opt_g), step, sample, out=out, epochs=epochs,
                           batch_size=batch_size, seed=seed, config=config, **kw)


# ----------------------------------------------------------------------------- CLI
def add_arguments(p):
    add_common_arguments(p, "out/gan", epochs=20, batch_size=64, lr=2e-4)
    p.add_argument("--g-loss", choices=["non-saturating", "minimax"], default="non-saturating",
                   help="generator loss: -log D(G(z)) (default) or log(1 - D(G(z))) (the minimax game)")
    p.add_argument("--d-steps", type=int, default=1, help="discriminator updates per generator update, k (default 1)")
    p.add_argument("--nz", type=int, default=100, help="noise dimension (default 100)")
    p.add_argument("--g-hidden", type=int, default=1200, help="generator hidden width (default 1200)")
    p.add_argument("--d-hidden", type=int, default=240, help="maxout units per discriminator layer (default 240)")
    p.add_argument("--pieces", type=int, default=5, help="linear pieces per maxout unit (default 5)")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5)")


def common_kwargs(args):
    """The :func:`run_adversarial` keyword arguments from the common CLI options."""
    return dict(max_steps=args.max_steps, limit=args.limit, device=args.device, progress=progress_flag(args),
                resume=args.resume, log_every=args.log_every, classifier=args.classifier,
                score_samples=args.score_samples)


def run(args):
    s = train_gan(args.out, args.epochs, args.batch_size, args.lr, args.beta1, args.nz, args.g_hidden, args.d_hidden,
                  args.pieces, args.g_loss, args.d_steps, args.seed, **common_kwargs(args))
    return 130 if s["interrupted"] else 0
