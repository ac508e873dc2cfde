"""``minigen train dcgan``: the DCGAN of :mod:`minigen.models.dcgan` on the bundled MNIST, in two presets.

``--preset pytorch-examples`` (the default): the PyTorch examples' DCGAN settings -- Adam (lr 2e-4, beta1 0.5)
for G and D, weights ~ N(0, 0.02) (BatchNorm gains ~ N(1, 0.02)), batch 64, widths C = 128 (G: C, C/2, C/4,
C/8) and W = 64 (D), one checkpoint overwritten each epoch. Not the article's configuration.

``--preset article``: the source article's DCGAN (:class:`~minigen.models.dcgan.ArticleGenerator`; its four
errors corrected as listed in :mod:`minigen.models.dcgan`) -- G widths 128 throughout, BatchNorm momentum 0.2
(Keras 0.8) and eps 1e-3, Glorot-uniform init, Adam lr 1e-4 for both with Keras' betas (0.9, 0.999) and eps
1e-7, batch 128, z ~ N(0, I) of dimension 100, and G and D saved after every epoch, one file per epoch
(``--keep-every-epoch``: ``checkpoint_epoch001.safetensors``, ...).

Both: BCE on D's logits with the non-saturating G loss (:func:`~minigen.recipes._common.gan_step`: the G step
updates G only), images in [-1, 1], a sample grid PNG every epoch. An option given on the command line wins
over the preset's value. ``minigen sample RUN_DIR``: a grid of G(z), z ~ N(0, I).

Measured (classifier-scored IS / mean max-prob of 1,000 samples after 1 / 2 / 3 epochs of the 9k images):
pytorch-examples, seeds 0 / 1 / 2: 4.43 / 4.71 / 4.96, 3.43 / 3.84 / 4.47, 3.63 / 3.83 / 5.40 (means 3.83 / 4.13 /
4.94; max-prob 0.80 at epoch 3; 38-42 CPU s per epoch, 1 thread), thin clean strokes; article (seed 0) 1.04 /
1.11 / 1.07 -- after 210 steps at lr 1e-4 its samples are still dotted checkerboard patches (D near chance: it
learns slowly, the article trains ~100x longer), and its generator costs ~14x more per image.
"""
from __future__ import annotations

from . import _common as C

NAME = "dcgan"
HELP = "DCGAN on MNIST (--preset pytorch-examples | article); sample grid every epoch"
DATA_PARALLEL = ("G and D each in a DistributedDataParallel (BatchNorm statistics per rank, rank 0's running "
                 "statistics broadcast); each rank takes its rows of every shuffled global batch of "
                 "N x --batch-size real images and draws its own noise; rank 0 scores, draws and writes")

#: option -> value, per preset (options left at None on the command line take the preset's value)
PRESETS = {
    "pytorch-examples": dict(batch_size=64, lr=2e-4, beta1=0.5, adam_eps=1e-8, g_width=128, d_width=64,
                             keep_every_epoch=False),
    "article": dict(batch_size=128, lr=1e-4, beta1=0.9, adam_eps=1e-7, g_width=128, d_width=64,
                    keep_every_epoch=True),
}
DEFAULT_PRESET = "pytorch-examples"


def add_arguments(p):
    import argparse

    C.add_image_arguments(p, "out/dcgan", epochs=5, batch_size=None, lr=None)
    p.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                   help="pytorch-examples (default): Adam 2e-4/beta1 0.5, N(0, 0.02) init, batch 64, G widths "
                        "C, C/2, C/4, C/8; article: the article's Keras DCGAN (G widths 128, BN momentum 0.2, "
                        "Glorot init, Adam 1e-4, batch 128, a checkpoint kept per epoch), errors corrected")
    for act in p._actions:  # the preset decides these unless given
        if act.dest == "batch_size":
            act.help = "default: the preset's (64 pytorch-examples, 128 article)"
        elif act.dest == "lr":
            act.help = "Adam learning rate (default: the preset's, 2e-4 pytorch-examples, 1e-4 article)"
    p.add_argument("--beta1", type=float, default=None, help="Adam beta1 (default: 0.5 pytorch-examples, 0.9 article)")
    p.add_argument("--adam-eps", type=float, default=None, help="Adam eps (default: 1e-8, article 1e-7 as Keras)")
    p.add_argument("--nz", type=int, default=100, help="noise dimension (default 100)")
    p.add_argument("--g-width", type=int, default=None,
                   help="generator channels C (default 128; pytorch-examples: C, C/2, C/4, C/8; article: C x 3)")
    p.add_argument("--d-width", type=int, default=None, help="discriminator channels W, 2W (default 64)")
    p.add_argument("--keep-every-epoch", action=argparse.BooleanOptionalAction, default=None,
                   help="also keep each epoch's checkpoint as checkpoint_epochNNN.safetensors "
                        "(default: on for the article preset, off for pytorch-examples)")


def resolve_preset(a):
    """Fill the options left at None with the values of ``a.preset`` (in place); returns ``a``."""
    from ..errors import InvalidArgumentError

    preset = getattr(a, "preset", None) or DEFAULT_PRESET
    if preset not in PRESETS:
        raise InvalidArgumentError(f"dcgan preset must be one of {sorted(PRESETS)}, got {preset!r}")
    a.preset = preset
    for k, v in PRESETS[preset].items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    return a


def build_model(a):
    from ..models.dcgan import build_article_dcgan, build_dcgan

    resolve_preset(a)
    build = build_article_dcgan if a.preset == "article" else build_dcgan
    return build(a.nz, a.g_width, a.d_width, a.seed)


def train_dcgan(out="out/dcgan", epochs=5, batch_size=None, lr=None, beta1=None, nz=100, g_width=None,
                d_width=None, seed=0, args=None, preset=DEFAULT_PRESET, adam_eps=None, keep_every_epoch=None,
                **kw):
    """Train the DCGAN; options left at None take the ``preset``'s values; ``kw`` as
    :func:`~minigen.recipes._common.run_adversarial`. Returns the summary."""
    import argparse

    import minigen as mg
    from .. import optim

    a = argparse.Namespace(out=out, epochs=epochs, batch_size=batch_size, lr=lr, beta1=beta1, nz=nz,
                           g_width=g_width, d_width=d_width, seed=seed, preset=preset, adam_eps=adam_eps,
                           keep_every_epoch=keep_every_epoch,
                           **{k: v for k, v in kw.items() if k not in ("progress", "dp")})
    resolve_preset(a)
    if args is not None:  # the config records the resolved values, so sample() rebuilds the same model
        for k in PRESETS[a.preset]:
            setattr(args, k, getattr(a, k))
        args.preset = a.preset
    mg.manual_seed(seed)
    model = build_model(a)
    G, D = model.G, model.D
    opt_g = optim.Adam(G.parameters(), lr=a.lr, betas=(a.beta1, 0.999), eps=a.adam_eps)
    opt_d = optim.Adam(D.parameters(), lr=a.lr, betas=(a.beta1, 0.999), eps=a.adam_eps)
    step = C.gan_step(G, D, opt_g, opt_d, nz, dp=kw.get("dp"))

    def sample_fn(n, generator):
        return G(C.sample_noise(n, nz, device=next(G.parameters()).device, generator=generator))

    C.write_config(out, NAME, args if args is not None else a)
    return C.run_adversarial(NAME, model, C.Optimizers(D=opt_d, G=opt_g), step, sample_fn, out=out, epochs=epochs,
                             batch_size=a.batch_size, seed=seed, keep_every_epoch=a.keep_every_epoch, **kw)


def run(args):
    resolve_preset(args)
    kw = C.gan_common_kwargs(args)
    for k in ("epochs", "batch_size", "seed"):
        kw.pop(k)
    s = train_dcgan(args.out, args.epochs, args.batch_size, args.lr, args.beta1, args.nz, args.g_width,
                    args.d_width, args.seed, args=args, preset=args.preset, adam_eps=args.adam_eps,
                    keep_every_epoch=args.keep_every_epoch, **kw)
    return C.gan_exit_code(s)


def sample(args):
    a = C.run_args(args.run_dir)
    model = C.load_checkpoint_model(args.run_dir, build_model(a))
    if args.device:
        model.to(args.device)
    return C.sample_gan_grid(args, model.G, a.nz)
