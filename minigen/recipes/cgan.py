"""``minigen train cgan``: the conditional DCGAN of :mod:`minigen.models.cgan` on the bundled MNIST and its labels.

Trained like the DCGAN (BCE on logits, non-saturating G loss, Adam 2e-4 / beta1 0.5, N(0, 0.02) init); fake
labels are drawn uniformly. The sample grid has one row per digit: row k shows G(z_j | k) for the same noise
vectors z_j in every row, so a column keeps its "style" (slant, thickness) while the row fixes the digit
(:func:`digit_grid`). At the end the MNIST classifier reads the digits G was asked for (``label_accuracy``).
``minigen sample RUN_DIR [--digits 0,3,7]``: that grid (``--n`` columns) for the chosen digits.
"""
from __future__ import annotations

from . import _common as C

NAME = "cgan"
HELP = "conditional DCGAN on MNIST digits and labels; sample grid with one row per digit"
DATA_PARALLEL = ("G and D each in a DistributedDataParallel; each rank takes its rows of every shuffled global "
                 "batch of N x --batch-size real images and draws its own noise; rank 0 scores, draws and writes")


def add_arguments(p):
    C.add_image_arguments(p, "out/cgan", epochs=5, batch_size=64, lr=2e-4)
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5)")
    p.add_argument("--nz", type=int, default=100, help="noise dimension (default 100)")
    p.add_argument("--g-width", type=int, default=128, help="generator channels C (default 128)")
    p.add_argument("--d-width", type=int, default=64, help="discriminator channels W (default 64)")


def build_model(a):
    import minigen as mg
    from ..models.cgan import ConditionalDiscriminator, ConditionalGenerator
    from ..models.dcgan import dcgan_init_
    from ..models.gan import GAN

    g0 = mg.Generator().manual_seed(a.seed)
    G = dcgan_init_(ConditionalGenerator(a.nz, a.g_width), generator=g0)
    D = dcgan_init_(ConditionalDiscriminator(a.d_width), generator=g0)
    return GAN(G, D)


def digit_grid(G, nz, path, n_per_row=10, generator=None, device=None, digits=None):
    """One row per digit (0..9 or ``digits``), the same ``n_per_row`` noise vectors in every row; a PNG."""
    import numpy as np

    import minigen as mg

    digits = list(range(G.n_classes)) if digits is None else [int(d) for d in digits]
    z = C.sample_noise(n_per_row, nz, device=device, generator=generator)
    zz = mg.cat([z] * len(digits), dim=0)                                  # row-major: digit k, column j
    yy = mg.tensor(np.repeat(np.asarray(digits), n_per_row), dtype=mg.int64, device=device)
    return C.save_grid(G(zz, yy), path, nrow=n_per_row)


def _label_accuracy(G, nz, classifier, score_samples, seed, n=1000):
    """How often the MNIST classifier reads the digit G was asked for (None without a classifier)."""
    import numpy as np

    import minigen as mg
    from .classifier import load_classifier

    if not classifier or str(classifier).lower() == "none" or not score_samples:
        return None
    dev = next(G.parameters()).device
    clf = load_classifier(classifier, dev)
    if clf is None:
        return None
    y = np.arange(n) % 10
    z = C.sample_noise(n, nz, device=dev, generator=mg.Generator().manual_seed(seed + 2))
    imgs = G(z, mg.tensor(y, dtype=mg.int64, device=dev))
    pred = clf.probs(C.from_pm1(imgs)).argmax(1)
    return float((pred == y).mean())


def run(args):
    import numpy as np

    import minigen as mg
    from .. import optim

    mg.manual_seed(args.seed)
    model = build_model(args)
    G, D = model.G, model.D
    opt_g = optim.Adam(G.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    step = C.gan_step(G, D, opt_g, opt_d, args.nz, conditional=True, dp=C.data_parallel(args))

    def device():
        return next(G.parameters()).device

    def sample_fn(n, generator):
        z = C.sample_noise(n, args.nz, device=device(), generator=generator)
        y = mg.tensor(np.arange(n) % 10, dtype=mg.int64, device=device())  # every digit equally often
        return G(z, y)

    def grid(path):
        digit_grid(G, args.nz, path, 10, mg.Generator().manual_seed(args.seed + 1), device())

    def finish(out):
        return {"label_accuracy": _label_accuracy(G, args.nz, args.classifier, args.score_samples, args.seed)}

    C.write_config(args.out, NAME, args)
    s = C.run_adversarial(NAME, model, C.Optimizers(D=opt_d, G=opt_g), step, sample_fn, out=args.out,
                          grid_fn=grid, finish_fn=finish, **C.gan_common_kwargs(args))
    if s.get("label_accuracy") is not None:
        print(f"cgan: the classifier reads the requested digit in {100 * s['label_accuracy']:.1f}% of samples")
    return C.gan_exit_code(s)


def add_sample_arguments(p):
    p.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9", help="the rows of the grid (default 0..9)")


def sample(args):
    import minigen as mg
    from ..errors import InvalidArgumentError

    a = C.run_args(args.run_dir)
    model = C.load_checkpoint_model(args.run_dir, build_model(a))
    if args.device:
        model.to(args.device)
    try:
        digits = [int(d) for d in str(args.digits).split(",") if d.strip()]
    except ValueError:
        raise InvalidArgumentError(f"--digits must be comma-separated digits, got {args.digits!r}") from None
    if not digits or any(not 0 <= d < model.G.n_classes for d in digits):
        raise InvalidArgumentError(f"--digits must name digits 0..{model.G.n_classes - 1}, got {args.digits!r}")
    n = args.n or 10
    with mg.no_grad():
        path = digit_grid(model.G, a.nz, C.sample_path(args, "samples_digits.png"), n,
                          mg.Generator().manual_seed(args.seed), next(model.G.parameters()).device, digits)
    print(f"wrote {len(digits)} rows x {n} samples (rows: digits {','.join(map(str, digits))}) to {path}")
    return 0
