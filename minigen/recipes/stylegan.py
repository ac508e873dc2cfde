"""``minigen train stylegan``: the StyleGAN-style generator of :mod:`minigen.models.stylegan` on the bundled MNIST.

Recipe (StyleGAN2's, sized for a CPU): the non-saturating logistic loss of :mod:`minigen.models.gan`; R1 on
real images, R1 = gamma/2 * E||grad_x D(x)||^2, applied lazily every ``r1_every`` steps with weight
``gamma/2 * r1_every``; Adam (lr 2e-3, betas (0, 0.99)), batch 64; equalised learning rate everywhere, the
mapping network at lr_mul 0.01; minibatch standard deviation in D; mixing regularisation: with probability
``mixing_prob`` a batch uses two z with a random crossover layer; and an **EMA of G's weights** (half-life
10k images, ramped up as 25% of the images seen, ``--ema-rampup``), which is what is sampled, scored and saved
for ``minigen sample``. Departures from StyleGAN, each measured below: the up blocks' first conv runs before the
upsampling (``--up after``, cost), the noise strengths learn at lr x 0.1 (``--noise-lr-mul``, speckle), and
**G's output goes through a tanh**
(``--g-output tanh``, the DCGAN's output layer): with StyleGAN's linear output the generator has to hit the
flat -1 background exactly and after an epoch its samples had grey, blotchy backgrounds (IS 3.03 against 4.97
with the tanh, same run otherwise, seed 0). ``--skip 1`` gives StyleGAN2's skip generator (a ToRGB per
resolution, summed). At the end: three style-mixing grids (:func:`style_mixing_grid`: coarse 7x7, middle 14x14
and fine 28x28 styles taken from a second image).

Measured against the DCGAN's pytorch-examples preset (epochs of the 9k images, classifier-scored IS of 1,000
samples, seeds 0 / 1 / 2; CPU = process seconds in the training steps, one thread). The defaults are the
configuration measured best at **equal CPU** (issue 10, third session):

- ``--width 48`` (48 / 24 / 12 channels at 7 / 14 / 28) and ``--up after`` (the up blocks' first conv at the
  low resolution, then bilinear upsampling; :mod:`minigen.models.stylegan`) make a step cheaper (back to back,
  one thread: 355 ms bilinear at width 64 -> 285 ms after at 64 -> 255 ms after at 48, the DCGAN 240 ms), and
  the G step no longer computes gradients for D's weights (-17 ms, same updates).
- ``--noise-lr-mul 0.1``: the per-pixel noise strengths learn 10x slower. At 1 they grew to ~0.24 at the 14x14
  second and 28x28 first convs within 3 epochs, and the samples carried salt-and-pepper speckle (with the noise
  maps at 0 the same runs scored IS ~5.25 instead of ~4.9). At 0.1 they stay below 0.01 in 3 epochs: the noise
  inputs are kept (StyleGAN's stochastic-variation channel) but at this budget they are nearly silent, and
  the strokes are smooth.

At equal CPU: a step here costs ~1.07x the DCGAN's (back to back, one thread: 251 vs 235 ms), so the DCGAN's
1 / 2 / 3 epochs (32.5-33.6 / 65-66 / 97-99 CPU s) buy ~131 / 262 / 393 steps; scored at 128 / 257 / 385 steps
(seed 0 at 127 / 246 / 374, the last steps within its DCGAN's CPU; every checkpoint's CPU measured within 1% of
or below the same seed's DCGAN's): IS 4.83, 4.34, 4.41 (mean 4.52) / 5.32, 5.37, 4.90 (5.20) / 5.19, 5.17, 4.78
(5.05) against the DCGAN's 4.43, 3.43, 3.63 (3.83) / 4.71, 3.84, 3.83 (4.13) / 4.96, 4.47, 5.40 (4.94): ahead
on the mean at every budget and on every seed but seed 2 at the last (the DCGAN's seed 2 jumps 3.83 -> 5.40 in
its 3rd epoch). At equal epochs: 4.90, 4.36, 4.44 (4.56) / 5.35, 5.45, 4.96 (5.25) / 5.10, 5.12, 4.76 (4.99).
The previous defaults (width 64, bilinear then conv, noise lr x 1) scored 3.76 / 4.76 / 4.82 at the DCGAN's
CPU of 1 / 2 / 3 epochs (102 / 204 / 305 of their steps). Sampling with the noise maps at 0 now changes
nothing (IS 5.10 / 5.12 / 4.76 against 5.11 / 5.11 / 4.76 with noise, same z, after 3 epochs); truncation psi
0.7: IS 4.70 / 4.66 / 4.44, max-prob 0.80-0.82, class entropy 1.98-2.08 (fewer, more typical digits). The
samples: smooth strokes without speckle, rounder and thicker than the DCGAN's; a part of the cells are
fragments or ambiguous glyphs, where the DCGAN draws thinner, more connected strokes with scratchy artifacts.

Tried and not kept. At equal CPU (seed 0 unless said; IS at the DCGAN's 1 / 2 / 3 epochs of CPU):
``--up transposed`` (4x4 stride-2 modulated transposed conv, StyleGAN2's upsampling conv without its blur
filter) drew checkerboard speckle, IS 1.91 at 1 epoch of CPU (noise lr x 1 or x 0.1 alike); ``--d-kernel 3``
(StyleGAN's 3x3 kernels in D, 240 ms a step at width 64) 4.15 / 4.94 / 4.16 (class entropy down to 2.09 at
the end), and with ``--r1-every 16`` (StyleGAN2's lazy interval) 3.47 / 3.36 / 4.46 (entropy 1.71 at epoch 2:
near collapse); width 64 with ``--up after --noise-lr-mul 0.1`` (3 seeds) 3.81 / 4.66 / 4.97 at 115 / 230 /
344 steps (~8% over the DCGAN's CPU). Earlier (session 2, 1-epoch probes, batch 64): StyleGAN2-ADA's auto settings (lr 2.5e-3, gamma
0.01, 2 mapping layers: 3.51 linear; with the tanh 4.09 at seed 0 but collapsed to 1s at seed 1), lr 5e-3 /
1e-2 (2.93 / 2.42), ToRGB bias started at -1 (3.04), D dropout 0.3 (2.78), R1 every 16 (2.37, linear
output), EMA ramp-up 0.05 (4.97 / 4.18 / 4.76 against 4.62 / 4.94 / 4.91 on the same seed-0 training run).
Scores swing by ~0.5-1 from checkpoint to checkpoint.

``minigen sample RUN_DIR [--truncation PSI] [--mix coarse|middle|fine] [--no-noise]``: a grid of G(z) with the
truncation trick w = w_avg + psi (w - w_avg), or a style-mixing grid; ``--no-noise`` sets the noise maps to 0.
"""
from __future__ import annotations

from . import _common as C

NAME = "stylegan"
HELP = "StyleGAN-style generator on MNIST: mapping network, modulated convs, style-mixing PNGs"
DATA_PARALLEL = ("G and D each in a DistributedDataParallel (the EMA of G follows the averaged G on every "
                 "rank); each rank takes its rows of every shuffled global batch of N x --batch-size real images "
                 "and draws its own noise and mixing; rank 0 scores, draws and writes")

MIX_LAYERS = {"coarse": (0, 2), "middle": (2, 4), "fine": (4, 7)}


def add_arguments(p):
    C.add_image_arguments(p, "out/stylegan", epochs=5, batch_size=64, lr=2e-3)
    p.add_argument("--mode", choices=["modconv", "adain"], default="modconv",
                   help="how w styles the convs: weight modulation/demodulation (StyleGAN2, default) or AdaIN")
    p.add_argument("--z-dim", type=int, default=64, help="default 64")
    p.add_argument("--w-dim", type=int, default=64, help="default 64")
    p.add_argument("--width", type=int, default=48,
                   help="synthesis channels at 7x7 (C, C/2, C/4; default 48: a cheaper step, measured better at "
                        "equal CPU than 64)")
    p.add_argument("--n-mapping", type=int, default=4, help="mapping network layers (default 4)")
    p.add_argument("--d-width", type=int, default=64, help="discriminator channels (default 64)")
    p.add_argument("--r1-gamma", type=float, default=1.0, help="R1 weight gamma (default 1; 0 = off)")
    p.add_argument("--r1-every", type=int, default=4, help="lazy R1: every N steps (default 4)")
    p.add_argument("--mixing-prob", type=float, default=0.5, help="style-mixing regularisation (default 0.5)")
    p.add_argument("--mapping-lr-mul", type=float, default=0.01,
                   help="learning-rate multiplier of the mapping network (default 0.01, StyleGAN's)")
    p.add_argument("--skip", type=int, choices=[0, 1], default=0,
                   help="1: StyleGAN2's skip generator (a ToRGB at every resolution, summed); "
                        "0 (default): one ToRGB at 28 x 28 (measured better here at 2 epochs)")
    p.add_argument("--ema-rampup", type=float, default=0.25,
                   help="EMA ramp-up: the half-life is at most this fraction of the images seen so far "
                        "(default 0.25; StyleGAN2-ADA's 0.05 scored IS 4.97 / 4.18 / 4.76 after epochs 1 / 2 / 3 "
                        "against 0.25's 4.62 / 4.94 / 4.91 on the same training run, seed 0)")
    p.add_argument("--rgb-bias-init", type=C.any_float, default=0.0,
                   help="initial bias of the output ToRGB (default 0)")
    p.add_argument("--g-output", choices=["linear", "tanh"], default="tanh",
                   help="G's output: tanh (default; the DCGAN's: MNIST's flat -1 background is reached by "
                        "saturating) or linear (StyleGAN's own: grey, blotchy backgrounds here)")
    p.add_argument("--up", choices=["bilinear", "after", "transposed"], default="after",
                   help="how the synthesis network doubles the resolution: the up block's first 3x3 modulated conv "
                        "at the low resolution, then bilinear upsampling (after, default: a quarter of that conv's "
                        "multiply-adds); bilinear upsampling then the conv (bilinear, StyleGAN1's order); or a 4x4 "
                        "stride-2 modulated transposed conv (transposed: checkerboard speckle here, no blur filter)")
    p.add_argument("--noise-lr-mul", type=float, default=0.1,
                   help="learning-rate multiplier of the per-pixel noise strengths (default 0.1; at 1 they grew to "
                        "~0.24 and the samples carried salt-and-pepper speckle)")
    p.add_argument("--mbstd-group", type=C.positive_int, default=4,
                   help="minibatch-stddev group size in D (default 4; 1 = the feature is a constant, i.e. off)")
    p.add_argument("--d-kernel", type=int, choices=[3, 5], default=5,
                   help="kernel size of D's two stride-2 convs (default 5, the DCGAN's; 3 is StyleGAN's)")
    p.add_argument("--d-dropout", type=float, default=0.0, help="dropout after D's conv blocks (default 0)")
    p.add_argument("--d-lr", type=float, default=None, help="D's Adam learning rate (default: --lr)")
    p.add_argument("--ema-half-life", type=float, default=10_000,
                   help="half-life in images of the EMA of G's weights that is sampled and scored "
                        "(default 10000, ramped up as --ema-rampup of the images seen; 0 = no EMA)")


def build_model(a):
    import minigen as mg
    from ..models.gan import GAN
    from ..models.stylegan import StyleDiscriminator, StyleGenerator

    mg.manual_seed(a.seed)  # the equalised layers draw their N(0, 1) weights from the global generator
    kw = dict(mapping_lr_mul=getattr(a, "mapping_lr_mul", 0.01), skip=bool(getattr(a, "skip", 0)),
              rgb_bias_init=getattr(a, "rgb_bias_init", 0.0), tanh=getattr(a, "g_output", "linear") == "tanh",
              up=getattr(a, "up", "bilinear"), noise_lr_mul=getattr(a, "noise_lr_mul", 1.0))
    G = StyleGenerator(a.z_dim, a.w_dim, a.width, a.n_mapping, a.mode, **kw)
    D = StyleDiscriminator(a.d_width, mbstd_group=getattr(a, "mbstd_group", 4), dropout=getattr(a, "d_dropout", 0.0),
                           kernel=getattr(a, "d_kernel", 5))
    model = GAN(G, D)
    if getattr(a, "ema_half_life", 0):
        G_ema = StyleGenerator(a.z_dim, a.w_dim, a.width, a.n_mapping, a.mode, **kw)
        G_ema.load_state_dict(G.state_dict())
        for q in G_ema.parameters():
            q.requires_grad_(False)
        model.G_ema = G_ema.eval()
    return model


def sampler(model):
    """The generator that is sampled and scored: the EMA of G's weights when the run keeps one, else G."""
    G_ema = getattr(model, "G_ema", None)
    return G_ema if G_ema is not None else model.G


class _StepCount:
    """The number of D updates made, saved in the checkpoint (it decides when the lazy R1 runs)."""

    def __init__(self):
        self.n = 0

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, st):
        self.n = int(st["n"])


def stylegan_step(G, D, opt_g, opt_d, z_dim, r1_gamma=1.0, r1_every=4, mixing_prob=0.5, count=None, G_ema=None,
                  ema_half_life=10_000, dp=None, ema_rampup=0.25):
    """D update (logistic loss, lazy R1), then G update (non-saturating), with mixing regularisation;
    then ``G_ema`` (if given) moves towards G (:func:`~minigen.models.stylegan.ema_update_`). ``dp``
    (data-parallel): as :func:`~minigen.recipes._common.gan_step`; ``B`` in the EMA's beta is the global batch."""
    import minigen as mg
    from ..models.gan import discriminator_loss, generator_loss
    from ..models.stylegan import N_STYLES, ema_beta, ema_update_, r1_penalty
    from ..nn import functional as F

    count = count if count is not None else _StepCount()
    Gn = G if dp is None else dp.wrap(G)
    Dn = D if dp is None else dp.wrap(D)
    world = 1 if dp is None else dp.world

    def fake_batch(B, dev):
        g = mg.default_generator
        z = C.sample_noise(B, z_dim, device=dev)
        if mixing_prob > 0 and g.numpy.random() < mixing_prob:
            return Gn(z, C.sample_noise(B, z_dim, device=dev), cut=int(g.numpy.integers(1, N_STYLES)))
        return Gn(z)

    def step(batch):
        x, _ = batch
        x = C.to_pm1(x)
        B, dev = x.shape[0], x.device
        fake = fake_batch(B, dev)
        opt_d.zero_grad()
        lr_, lf_ = Dn(x), Dn(fake.detach())
        ld = discriminator_loss(lr_, lf_)
        out = {"d_loss": ld.item()}
        if r1_gamma > 0 and count.n % r1_every == 0:
            r1 = r1_penalty(Dn, x)
            ld = ld + r1 * (0.5 * r1_gamma * r1_every)
            out["r1"] = r1.item()
        ld.backward()
        opt_d.step()
        count.n += 1
        opt_g.zero_grad()
        d_params = [p for p in D.parameters() if p.requires_grad]
        for p in d_params:            # D is not updated by the G step: no gradients for its weights (StyleGAN2)
            p.requires_grad_(False)
        try:
            lg = generator_loss(D(fake) if Dn is D else C.forward_no_sync(Dn, fake))
            lg.backward()
        finally:
            for p in d_params:
                p.requires_grad_(True)
        opt_g.step()
        if G_ema is not None:
            ema_update_(G_ema, G, ema_beta(B * world, count.n * B * world, ema_half_life, ema_rampup))
        out.update({"g_loss": lg.item(), "D(x)": F.sigmoid(lr_.detach()).mean().item(),
                    "D(G(z))": F.sigmoid(lf_.detach()).mean().item()})
        return out

    return step


def style_mixing_grid(G, path, layers, n_a=5, n_b=6, generator=None, truncation=1.0, no_noise=False):
    """StyleGAN's figure: row i is source A_i, column j source B_j; cell (i, j) is A_i with the styles of
    ``layers`` = (lo, hi) taken from B_j. Top row: the B images; left column: the A images."""
    import minigen as mg

    dev = next(G.parameters()).device
    za = C.sample_noise(n_a, G.z_dim, device=dev, generator=generator)
    zb = C.sample_noise(n_b, G.z_dim, device=dev, generator=generator)
    # one fixed noise map per layer, shared by every image, so the cells differ only by their styles
    gen = generator if generator is not None else mg.default_generator
    noise = [mg.randn(1, 1, s, s, generator=gen, device=dev) for s in (7, 7, 14, 14, 28, 28)]
    if no_noise:
        noise = [mg.zeros(1, 1, s, s, device=dev) for s in (7, 7, 14, 14, 28, 28)]
    img_a = G(za, truncation=truncation, noise=noise)
    img_b = G(zb, truncation=truncation, noise=noise)
    za_rep = mg.cat([za[i:i + 1].expand(n_b, G.z_dim) for i in range(n_a)], dim=0)
    zb_rep = mg.cat([zb] * n_a, dim=0)
    mixed = G(za_rep, zb_rep, cut=tuple(layers), truncation=truncation, noise=noise)
    blank = mg.full((1, 1, 28, 28), -1.0, device=dev)
    rows = [mg.cat([blank, img_b], dim=0)]
    for i in range(n_a):
        rows.append(mg.cat([img_a[i:i + 1], mixed[i * n_b:(i + 1) * n_b]], dim=0))
    return C.save_grid(mg.cat(rows, dim=0), path, nrow=n_b + 1)


def run(args):
    import minigen as mg
    from .. import optim

    model = build_model(args)
    mg.manual_seed(args.seed)
    G, D = model.G, model.D
    opt_g = optim.Adam(G.parameters(), lr=args.lr, betas=(0.0, 0.99))
    opt_d = optim.Adam(D.parameters(), lr=getattr(args, "d_lr", None) or args.lr, betas=(0.0, 0.99))
    count = _StepCount()
    Gs = sampler(model)
    step = stylegan_step(G, D, opt_g, opt_d, args.z_dim, args.r1_gamma, args.r1_every, args.mixing_prob, count,
                         G_ema=getattr(model, "G_ema", None), ema_half_life=getattr(args, "ema_half_life", 0),
                         dp=C.data_parallel(args),
                         ema_rampup=getattr(args, "ema_rampup", 0.05))  # a run from before the option: 0.05

    def sample_fn(n, generator):
        return Gs(C.sample_noise(n, args.z_dim, device=next(Gs.parameters()).device, generator=generator))

    def finish(o):
        return {f"style_mixing_{name}": style_mixing_grid(Gs, f"{o}/style_mixing_{name}.png", layers,
                                                          generator=mg.Generator().manual_seed(args.seed + 5))
                for name, layers in MIX_LAYERS.items()}

    C.write_config(args.out, NAME, args)
    s = C.run_adversarial(NAME, model, C.Optimizers(D=opt_d, G=opt_g), step, sample_fn, out=args.out,
                          finish_fn=finish, curve_keys=("d_loss", "g_loss", "r1"), extra_state=count,
                          **C.gan_common_kwargs(args))
    return C.gan_exit_code(s)


def add_sample_arguments(p):
    p.add_argument("--truncation", type=float, default=1.0,
                   help="psi of the truncation trick w = w_avg + psi (w - w_avg) (default 1 = off; 0.7 is typical)")
    p.add_argument("--mix", choices=sorted(MIX_LAYERS), default=None,
                   help="write a style-mixing grid instead: take the coarse / middle / fine styles from B")
    p.add_argument("--no-noise", action="store_true",
                   help="set the per-pixel noise inputs of every synthesis layer to 0 (StyleGAN's 'no noise' "
                        "figure: the fine stochastic texture goes, the digit stays)")


def sample(args):
    import minigen as mg

    a = C.run_args(args.run_dir)
    model = C.load_checkpoint_model(args.run_dir, build_model(a))
    if args.device:
        model.to(args.device)
    G = sampler(model)
    mg.manual_seed(args.seed)  # the per-pixel noise of the synthesis layers
    gen = mg.Generator().manual_seed(args.seed)
    no_noise = bool(getattr(args, "no_noise", False))
    tag = "_nonoise" if no_noise else ""
    dev = next(G.parameters()).device
    with mg.no_grad():
        if args.mix:
            path = C.sample_path(args, f"style_mixing_{args.mix}_psi{args.truncation:g}{tag}.png")
            style_mixing_grid(G, path, MIX_LAYERS[args.mix], generator=gen, truncation=args.truncation,
                              no_noise=no_noise)
            print(f"wrote a style-mixing grid ({args.mix} styles from the top row) to {path}")
            return 0
        n = args.n or 64
        noise = [mg.zeros(1, 1, s, s, device=dev) for s in (7, 7, 14, 14, 28, 28)] if no_noise else None
        imgs = G(C.sample_noise(n, G.z_dim, device=dev, generator=gen), truncation=args.truncation, noise=noise)
        path = C.save_grid(imgs, C.sample_path(args, f"samples_psi{args.truncation:g}{tag}.png"), nrow=8)
    print(f"wrote {n} samples (truncation psi = {args.truncation:g}{', no noise' if no_noise else ''}) to {path}")
    return 0
