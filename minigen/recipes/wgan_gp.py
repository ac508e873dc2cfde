"""``minigen train wgan-gp``: WGAN-GP (:mod:`minigen.models.wgan_gp`) on the bundled MNIST.

The paper's hyper-parameters: lambda = 10, n_critic = 5 critic updates per generator update, Adam with
lr 1e-4, betas (0, 0.9). Networks: the DCGAN generator and the DCGAN discriminator without dropout as the
critic. Each critic update uses the same real batch and fresh noise (the paper draws a new real minibatch for
every critic update; reusing one keeps "an epoch" = one pass over the data for the checkpoint schedule).
Logged: ``w_estimate`` = mean D(x) - mean D(x~) and the penalty ``gp``.
``minigen sample RUN_DIR``: a grid of G(z), z ~ N(0, I).
"""
from __future__ import annotations

from . import _common as C

NAME = "wgan-gp"
HELP = "WGAN-GP on MNIST: critic with gradient penalty on interpolates (second-order gradients)"
DATA_PARALLEL = ("G and the critic each in a DistributedDataParallel (the penalty's second-order gradients are "
                 "averaged like the others); each rank takes its rows of every shuffled global batch of "
                 "N x --batch-size real images and draws its own noise; rank 0 scores, draws and writes")


def add_arguments(p):
    C.add_image_arguments(p, "out/wgan-gp", epochs=5, batch_size=64, lr=1e-4)
    p.add_argument("--beta1", type=float, default=0.0, help="Adam beta1 (default 0)")
    p.add_argument("--beta2", type=float, default=0.9, help="Adam beta2 (default 0.9)")
    p.add_argument("--n-critic", type=int, default=5, help="critic updates per generator update (default 5)")
    p.add_argument("--lam", type=float, default=10.0, help="gradient penalty weight lambda (default 10)")
    p.add_argument("--nz", type=int, default=100, help="noise dimension (default 100)")
    p.add_argument("--g-width", type=int, default=128, help="generator channels C (default 128)")
    p.add_argument("--d-width", type=int, default=64, help="critic channels W (default 64)")


def build_model(a):
    import minigen as mg
    from ..models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_
    from ..models.gan import GAN

    g0 = mg.Generator().manual_seed(a.seed)
    G = dcgan_init_(DCGANGenerator(a.nz, a.g_width), generator=g0)
    D = dcgan_init_(DCGANDiscriminator(a.d_width, dropout=0.0), generator=g0)
    return GAN(G, D)


def wgan_gp_step(G, D, opt_g, opt_d, nz, n_critic=5, lam=10.0, dp=None):
    """``n_critic`` critic updates (L_D with the gradient penalty), then one generator update (L_G).
    ``dp`` (data-parallel): as :func:`~minigen.recipes._common.gan_step` (the critic's gradients averaged in
    its updates only)."""
    import minigen as mg
    from ..models.wgan_gp import critic_loss, generator_loss

    Gn = G if dp is None else dp.wrap(G)
    Dn = D if dp is None else dp.wrap(D)

    def step(batch):
        x, _ = batch
        x = C.to_pm1(x)
        B, dev = x.shape[0], x.device
        for _ in range(n_critic):
            with mg.no_grad():
                fake = G(C.sample_noise(B, nz, device=dev))
            eps = mg.rand(B, device=dev)
            opt_d.zero_grad()
            ld, w, gp = critic_loss(Dn, x, fake, eps, lam)
            ld.backward()
            opt_d.step()
        opt_g.zero_grad()
        if Dn is D:
            lg = generator_loss(D, G(C.sample_noise(B, nz, device=dev)))
        else:
            lg = generator_loss(lambda v: C.forward_no_sync(Dn, v), Gn(C.sample_noise(B, nz, device=dev)))
        lg.backward()
        opt_g.step()
        return {"d_loss": ld.item(), "g_loss": lg.item(), "w_estimate": w.item(), "gp": gp.item()}

    return step


def run(args):
    import minigen as mg
    from .. import optim

    mg.manual_seed(args.seed)
    model = build_model(args)
    G, D = model.G, model.D
    betas = (args.beta1, args.beta2)
    opt_g = optim.Adam(G.parameters(), lr=args.lr, betas=betas)
    opt_d = optim.Adam(D.parameters(), lr=args.lr, betas=betas)
    step = wgan_gp_step(G, D, opt_g, opt_d, args.nz, args.n_critic, args.lam, dp=C.data_parallel(args))

    def sample_fn(n, generator):
        return G(C.sample_noise(n, args.nz, device=next(G.parameters()).device, generator=generator))

    C.write_config(args.out, NAME, args)
    s = C.run_adversarial(NAME, model, C.Optimizers(D=opt_d, G=opt_g), step, sample_fn, out=args.out,
                          curve_keys=("d_loss", "g_loss", "w_estimate", "gp"), **C.gan_common_kwargs(args))
    return C.gan_exit_code(s)


def sample(args):
    a = C.run_args(args.run_dir)
    model = C.load_checkpoint_model(args.run_dir, build_model(a))
    if args.device:
        model.to(args.device)
    return C.sample_gan_grid(args, model.G, a.nz)
