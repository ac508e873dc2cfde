"""``minigen train dcgan``: the DCGAN of :mod:`minigen.models.dcgan` on the bundled MNIST.

Recipe (the PyTorch examples' DCGAN settings): Adam (lr 2e-4, beta1 0.5) for G and D, weights ~ N(0, 0.02)
(BatchNorm gains ~ N(1, 0.02)), batch 64, BCE on D's logits with the non-saturating G loss, a checkpoint and a
sample grid PNG every epoch. Widths C = 128 (G) and W = 64 (D) by default: a 2-core CPU budget.
``minigen sample RUN_DIR``: a grid of G(z), z ~ N(0, I).
"""
from __future__ import annotations

from . import _common as C

NAME = "dcgan"
HELP = "DCGAN on MNIST (conv-transpose G with BatchNorm, conv D with dropout); sample grid every epoch"


def add_arguments(p):
    C.add_image_arguments(p, "out/dcgan", epochs=5, batch_size=64, lr=2e-4)
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5)")
    p.add_argument("--nz", type=int, default=100, help="noise dimension (default 100)")
    p.add_argument("--g-width", type=int, default=128,
                   help="channels after the dense layer, C (C, C/2, C/4, C/8; default 128)")
    p.add_argument("--d-width", type=int, default=64, help="discriminator channels W, 2W (default 64)")


def build_model(a):
    from ..models.dcgan import build_dcgan

    return build_dcgan(a.nz, a.g_width, a.d_width, a.seed)


def train_dcgan(out="out/dcgan", epochs=5, batch_size=64, lr=2e-4, beta1=0.5, nz=100, g_width=128, d_width=64,
                seed=0, args=None, **kw):
    """Train the DCGAN; ``kw`` as :func:`~minigen.recipes._common.run_adversarial`. Returns the summary."""
    import argparse

    import minigen as mg
    from .. import optim

    a = argparse.Namespace(out=out, epochs=epochs, batch_size=batch_size, lr=lr, beta1=beta1, nz=nz,
                           g_width=g_width, d_width=d_width, seed=seed, **{k: v for k, v in kw.items()
                                                                         if k not in ("progress",)})
    mg.manual_seed(seed)
    model = build_model(a)
    G, D = model.G, model.D
    opt_g = optim.Adam(G.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=lr, betas=(beta1, 0.999))
    step = C.gan_step(G, D, opt_g, opt_d, nz)

    def sample_fn(n, generator):
        return G(C.sample_noise(n, nz, device=next(G.parameters()).device, generator=generator))

    C.write_config(out, NAME, args if args is not None else a)
    return C.run_adversarial(NAME, model, C.Optimizers(D=opt_d, G=opt_g), step, sample_fn, out=out, epochs=epochs,
                             batch_size=batch_size, seed=seed, **kw)


def run(args):
    kw = C.gan_common_kwargs(args)
    for k in ("epochs", "batch_size", "seed"):
        kw.pop(k)
    s = train_dcgan(args.out, args.epochs, args.batch_size, args.lr, args.beta1, args.nz, args.g_width,
                    args.d_width, args.seed, args=args, **kw)
    return C.exit_code(s)


def sample(args):
    a = C.run_args(args.run_dir)
    model = C.load_checkpoint_model(args.run_dir, build_model(a))
    if args.device:
        model.to(args.device)
    return C.sample_gan_grid(args, model.G, a.nz)
