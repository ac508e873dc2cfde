"""``minigen train gan``: Goodfellow et al.'s GAN (:mod:`minigen.models.gan`) on the bundled MNIST.

Algorithm 1 of the paper: each iteration makes ``k`` (``--d-steps``) discriminator updates, then one generator
update (:func:`~minigen.recipes._common.gan_step`), minimax or non-saturating G loss (``--g-loss``). The paper
trained with SGD + momentum; the default here is Adam (lr 2e-4, beta1 0.5), the DCGAN article's setting, which
needs no schedule. Weights start N(0, 0.02). ``minigen sample RUN_DIR``: a grid of G(z), z ~ N(0, I).
"""
from __future__ import annotations

from . import _common as C

NAME = "gan"
HELP = "GAN (Goodfellow 2014) on MNIST: MLP generator, maxout discriminator; minimax or non-saturating G loss"
DATA_PARALLEL = ("G and D each in a DistributedDataParallel; each rank takes its rows of every shuffled global "
                 "batch of N x --batch-size real images and draws its own noise; rank 0 scores, draws and writes")


def add_arguments(p):
    C.add_image_arguments(p, "out/gan", epochs=20, batch_size=64, lr=2e-4)
    p.add_argument("--g-loss", choices=["non-saturating", "minimax"], default="non-saturating",
                   help="generator loss: -log D(G(z)) (default) or log(1 - D(G(z))) (the minimax game)")
    p.add_argument("--d-steps", type=int, default=1, help="discriminator updates per generator update, k (default 1)")
    p.add_argument("--nz", type=int, default=100, help="noise dimension (default 100)")
    p.add_argument("--g-hidden", type=int, default=1200, help="generator hidden width (default 1200)")
    p.add_argument("--d-hidden", type=int, default=240, help="maxout units per discriminator layer (default 240)")
    p.add_argument("--pieces", type=int, default=5, help="linear pieces per maxout unit (default 5)")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5)")


def build_model(a):
    """G and D from the run's options, DCGAN-initialised with the run's seed, in one GAN module."""
    import minigen as mg
    from ..models.dcgan import dcgan_init_
    from ..models.gan import GAN, MLPDiscriminator, MLPGenerator

    G, D = MLPGenerator(a.nz, a.g_hidden), MLPDiscriminator(a.d_hidden, a.pieces)
    g0 = mg.Generator().manual_seed(a.seed)
    dcgan_init_(G, generator=g0)
    dcgan_init_(D, generator=g0)
    return GAN(G, D)


def run(args):
    import minigen as mg
    from .. import optim

    mg.manual_seed(args.seed)
    model = build_model(args)
    G, D = model.G, model.D
    opt_g = optim.Adam(G.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    step = C.gan_step(G, D, opt_g, opt_d, args.nz, args.g_loss, args.d_steps, dp=C.data_parallel(args))

    def sample_fn(n, generator):
        return G(C.sample_noise(n, args.nz, device=next(G.parameters()).device, generator=generator))

    C.write_config(args.out, NAME, args)
    s = C.run_adversarial(NAME, model, C.Optimizers(D=opt_d, G=opt_g), step, sample_fn, out=args.out,
                          **C.gan_common_kwargs(args))
    return C.gan_exit_code(s)


def sample(args):
    a = C.run_args(args.run_dir)
    model = C.load_checkpoint_model(args.run_dir, build_model(a))
    if args.device:
        model.to(args.device)
    return C.sample_gan_grid(args, model.G, a.nz)
