"""What the recipes share: argument groups, run files (config + checkpoint), metrics, pictures, the GAN driver.

- **arguments**: :func:`add_run_arguments` (``--out --resume --seed --device --no-progress``),
  :func:`add_image_arguments` (+ epochs, step budget, batch, lr, scoring classifier),
  :func:`add_text_sampling_arguments` (temperature, top-k, top-p) and :func:`add_sample_arguments`
  (what every ``minigen sample`` takes: ``--n --out --seed --device``).
- **run files**: :func:`write_config` / :func:`read_config` (``RUN_DIR/config.json`` =
  ``{"recipe": NAME, "args": {...}}``), :func:`load_checkpoint_model` (the model's weights out of the
  Trainer's ``checkpoint.safetensors``), :func:`write_json`.
- **training**: :func:`rng_isolated` (an evaluation that leaves minigen's global RNG untouched, so a run
  stopped and resumed at any step equals the uninterrupted one), :func:`fresh_log`, :func:`exit_code`.
- **MNIST**: :func:`mnist_loader` (the bundled 9k/1k split as resumable batches), :func:`to_pm1`,
  :func:`from_pm1`, :func:`sample_noise`.
- **pictures**: :func:`save_grid`, :func:`plot_loss_curves`.
- **the GAN driver**: :class:`Optimizers`, :class:`AdversarialTrainer`, :func:`run_adversarial`,
  :func:`sample_gan_grid`.
- **data parallelism** (``--ddp N`` / ``mpiexec -n N``): :func:`add_ddp_argument`, :func:`start_data_parallel`,
  :func:`run_recipe` (the CLI's), :func:`data_parallel` (the run's :class:`minigen.train.DataParallel`),
  :func:`train_loader` / :func:`global_batch` (global batches, this rank's rows), :func:`forward_no_sync`,
  :class:`StopSignal`, :func:`is_main_process` (only rank 0 writes). A recipe that can run data-parallel sets
  ``DATA_PARALLEL`` to a line saying what each rank does (shown by ``--help``); one that cannot sets it False
  and ``NO_DATA_PARALLEL`` to the reason (``--ddp`` is then refused with it).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

CHECKPOINT = "checkpoint.safetensors"
CONFIG = "config.json"


# ----------------------------------------------------------------------------- arguments
def progress_flag(args):
    """None (a bar on a terminal) unless ``--no-progress``."""
    return False if getattr(args, "no_progress", False) else None


def add_run_arguments(p, out, seed=0, device=True, resume=True):
    """``--out --resume --seed --device --no-progress`` (the options of every trainer)."""
    p.add_argument("--out", default=out, help=f"output folder (default {out})")
    if resume:
        p.add_argument("--resume", action="store_true",
                       help="continue from the checkpoint in --out if there is one (bit for bit)")
    p.add_argument("--seed", type=int, default=seed, help=f"random seed (default {seed})")
    if device:
        p.add_argument("--device", default=None, help="cpu (default) or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")


def add_image_arguments(p, out, epochs, batch_size, lr, scorer=True):
    """Options every MNIST trainer takes (``minigen train <name> --help`` lists them)."""
    add_run_arguments(p, out)
    p.add_argument("--epochs", type=int, default=epochs, help=f"passes over the 9k training images (default {epochs})")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many training steps in all (a budget; --resume continues past it)")
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"default {batch_size}")
    p.add_argument("--lr", type=float, default=lr, help=f"Adam learning rate (default {lr})")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images only")
    p.add_argument("--log-every", type=int, default=10, help="metrics row every N steps (default 10)")
    if scorer:
        p.add_argument("--classifier", default="out/classifier",
                       help="folder of the MNIST CNN that scores samples (trained there first if missing; "
                            "'none' = no scores; default out/classifier)")
        p.add_argument("--score-samples", type=int, default=1000,
                       help="generated images scored at each epoch end (default 1000)")


def add_text_sampling_arguments(p, temperature=0.8, samples=None):
    """``--temperature --top-k --top-p`` (and ``--samples N`` tokens generated at the end of a run)."""
    if samples is not None:
        p.add_argument("--samples", type=int, default=samples,
                       help=f"how many tokens to generate at the end (default {samples})")
    p.add_argument("--temperature", type=float, default=temperature,
                   help=f"sampling temperature (default {temperature}; 0 = greedy)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens only")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling: the smallest set with mass >= p")


def add_sample_arguments(p):
    """What ``minigen sample RUN_DIR`` takes for every recipe."""
    p.add_argument("run_dir", help="a folder written by 'minigen train <name> --out RUN_DIR'")
    p.add_argument("--n", type=int, default=None, help="how many samples (images, tokens, ...; recipe default)")
    p.add_argument("--out", default=None, help="where to write them (default: a file inside RUN_DIR)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the samples (default 0)")
    p.add_argument("--device", default=None, help="cpu (default) or cuda")


# ----------------------------------------------------------------------------- numeric option ranges
def _number_type(kind, lo=None, hi=None, lo_open=False, hi_open=False, name=None):
    """An argparse ``type``: ``kind`` (int or float) of the string, finite, within the bounds; else an
    ``argparse.ArgumentTypeError`` (argparse prints "invalid value" and exits 2, no traceback)."""
    def parse(text):
        try:
            v = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an int' if kind is int else 'a number'}") from None
        if kind is float and v != v or v in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
        bad = (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and (v >= hi if hi_open else v > hi))
        if bad:
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            raise argparse.ArgumentTypeError(f"{text} is out of range {left}{'-inf' if lo is None else lo}, "
                                             f"{'inf' if hi is None else hi}{right}")
        return v

    parse.__name__ = name or kind.__name__  # argparse names the type in its message
    return parse


positive_int = _number_type(int, 1, name="positive int")
nonnegative_int = _number_type(int, 0, name="non-negative int")
any_int = _number_type(int, name="int")
positive_float = _number_type(float, 0.0, lo_open=True, name="positive number")
nonnegative_float = _number_type(float, 0.0, name="non-negative number")
any_float = _number_type(float, name="number")
probability = _number_type(float, 0.0, 1.0, name="probability")
unit_open = _number_type(float, 0.0, 1.0, hi_open=True, name="number in [0, 1)")

# option dest -> its argparse type, for the options whose range is not the default one (ints >= 0,
# floats finite and >= 0); used by check_numeric_options on every recipe's parser
OPTION_TYPES = {
    "seed": any_int, "truncation": any_float,
    "epochs": positive_int, "iters": positive_int, "steps": positive_int, "batch_size": positive_int,
    "eval_batch_size": positive_int, "block_size": positive_int, "seq_len": positive_int,
    "eval_interval": positive_int, "eval_iters": positive_int,
    "log_every": positive_int, "checkpoint_every": positive_int, "hidden": positive_int, "width": positive_int,
    "g_width": positive_int, "d_width": positive_int, "g_hidden": positive_int, "d_hidden": positive_int,
    "nz": positive_int, "z_dim": positive_int, "w_dim": positive_int, "latent_dim": positive_int,
    "layers": positive_int, "n_layer": positive_int, "n_head": positive_int, "nhead": positive_int,
    "n_embd": positive_int, "d_model": positive_int, "ff": positive_int, "dim": positive_int,
    "pieces": positive_int, "d_steps": positive_int, "n_critic": positive_int, "kernel_size": positive_int,
    "stacks": positive_int, "layers_per_stack": positive_int, "residual_channels": positive_int,
    "gate_channels": positive_int, "skip_channels": positive_int, "end_channels": positive_int,
    "vocab_size": positive_int, "bpe_vocab": positive_int, "window": positive_int, "max_len": positive_int,
    "max_steps": positive_int, "limit": positive_int, "limit_words": positive_int, "r1_every": positive_int,
    "lr": positive_float, "dropout": unit_open, "top_p": _number_type(float, 0.0, 1.0, lo_open=True, name="p in (0, 1]"),
    "mixing_prob": probability, "beta1": unit_open, "beta2": unit_open, "adam_eps": positive_float,
    "lr_decay": positive_float, "mapping_lr_mul": positive_float, "alpha": unit_open,
}


def check_numeric_options(parser):
    """Give every int/float option of ``parser`` a range-checked type: :data:`OPTION_TYPES` by dest, else
    ints >= 0 and finite floats >= 0. A bad value (``--epochs -1``, ``--lr nan``) is then argparse's
    usage error (exit 2, one line), never a traceback from deep inside a trainer."""
    for action in parser._actions:
        if action.type in (int, float) and action.nargs in (None, "?"):
            default = nonnegative_int if action.type is int else nonnegative_float
            chosen = OPTION_TYPES.get(action.dest, default)
            if (chosen.__name__.endswith("int") or chosen.__name__ == "int") != (action.type is int):
                chosen = default  # the table names a float where this recipe takes an int (or back)
            action.type = chosen
    return parser


# ----------------------------------------------------------------------------- data parallelism (--ddp N)
DDP_HELP = ("train on N data-parallel processes: re-runs this command under 'mpiexec -n N' (needs mpi4py + an "
            "MPI: pip install 'minigen[distributed]'); the same as 'mpiexec -n N python -m minigen train ...'. "
            "--batch-size is per process (PyTorch's convention): each step trains on N x batch-size samples, "
            "rank r taking its own rows of that global batch; rank 0 alone writes files. See docs/DISTRIBUTED.md")


def add_ddp_argument(p, recipe):
    """``--ddp N`` for ``minigen train NAME`` (every trainer gets it; those that cannot run data-parallel
    refuse it with a clear error, see :func:`start_data_parallel`)."""
    why = getattr(recipe, "DATA_PARALLEL", None)
    help_ = DDP_HELP if why is True or isinstance(why, str) else (
        f"not available for this trainer: {getattr(recipe, 'NO_DATA_PARALLEL', 'it has no gradient steps')}")
    if isinstance(why, str):
        help_ += f". This trainer: {why}"
    p.add_argument("--ddp", type=positive_int, default=None, metavar="N", help=help_)


def is_main_process() -> bool:
    """False on the ranks other than 0 of a data-parallel run (they write no file)."""
    from .. import distributed as dist

    return not dist.is_initialized() or dist.get_rank() == 0


def start_data_parallel(recipe, args, argv):
    """Before ``recipe.run(args)``: join or start the data-parallel world the command line asks for.

    ``--ddp N`` outside an MPI job re-executes ``python -m minigen <argv>`` under ``mpiexec -n N`` (this process is
    replaced); inside one (``mpiexec -n N python -m minigen train ...``, with or without ``--ddp N``) every
    process joins the world (:func:`minigen.distributed.init_from_env`). Raises a minigen error (one line on the
    command line) for a trainer that cannot run data-parallel, a missing mpi4py or mpiexec, or ``--ddp N`` under
    an MPI job of another size."""
    from .. import distributed as dist
    from ..distributed.launch import relaunch
    from ..errors import InvalidArgumentError

    n = getattr(args, "ddp", None)
    under_mpi = dist.launched_by_mpi()
    world = dist.env_world_size() if under_mpi else 1
    if not getattr(recipe, "DATA_PARALLEL", False):
        if (n or 1) > 1 or world > 1:
            how = f"--ddp {n}" if n else f"an MPI job of {world} processes"
            raise InvalidArgumentError(
                f"minigen train {recipe.NAME} cannot run data-parallel ({how}): "
                f"{getattr(recipe, 'NO_DATA_PARALLEL', 'it has no gradient steps to average')}. Run it as one "
                "process, without --ddp / mpiexec")
        return
    if n is not None and under_mpi and n != world:
        raise InvalidArgumentError(f"--ddp {n} but mpiexec started {world} processes: give the same number (or "
                                   "leave --ddp out under mpiexec)")
    if (n or 1) > 1 or (under_mpi and world > 1):
        if not dist.is_mpi_available():
            raise dist.DistributedError(
                f"--ddp {n or world} needs mpi4py and an MPI library: pip install 'minigen[distributed]' "
                "(= pip install mpi4py mpich), or run without --ddp")
    if n is not None and n > 1 and not under_mpi:
        relaunch(n, argv=["-m", "minigen", *argv], threads_per_process=max(1, (os.cpu_count() or 1) // n))
    if under_mpi and dist.is_mpi_available():
        dist.init_from_env()
        if dist.get_world_size() > 1 and dist.get_rank() == 0:
            b = getattr(args, "batch_size", None)
            print(f"minigen train {recipe.NAME}: {dist.get_world_size()} data-parallel processes "
                  f"({dist.get_backend()})" + (f", batch {b} per process = {b * dist.get_world_size()} per step"
                                              if isinstance(b, int) else ""), file=sys.stderr, flush=True)


def run_recipe(recipe, args):
    """``recipe.run(args)``; in a world of several processes an exception escaping the trainer on one rank (or
    a second Ctrl-C) ends the whole MPI job with its traceback, instead of leaving the other ranks waiting in a
    collective (:func:`minigen.distributed.init_process_group`'s abort-on-exception hook)."""
    from .. import distributed as dist

    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return recipe.run(args)
    try:
        return recipe.run(args)
    except (Exception, KeyboardInterrupt):
        sys.excepthook(*sys.exc_info())  # prints the traceback with the rank, then MPI_Abort (ends every rank)
        raise


def data_parallel(args=None, seed=None):
    """The run's :class:`minigen.train.DataParallel` (inactive in a single-process run)."""
    from ..train import DataParallel

    return DataParallel(seed=seed if seed is not None else int(getattr(args, "seed", 0) or 0))


def dp_main(dp) -> bool:
    """True unless ``dp`` is an active DataParallel on a rank other than 0."""
    return dp is None or dp.is_main


def forward_no_sync(net, *a, **kw):
    """``net(*a, **kw)`` whose backward does not average gradients: for a DistributedDataParallel ``net``, a forward
    under ``no_sync()`` (the G step of a GAN backpropagates through D, whose gradients are not used there)."""
    no_sync = getattr(net, "no_sync", None)
    if no_sync is None:
        return net(*a, **kw)
    with no_sync():
        return net(*a, **kw)


# ----------------------------------------------------------------------------- run files
def write_json(obj, path):
    """Write ``obj`` as JSON (not on the ranks other than 0 of a data-parallel run: they write no file)."""
    if not is_main_process():
        return path
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, default=str)
    return path


def _jsonable_args(args):
    out = {}
    for k, v in vars(args).items():
        if callable(v) or k in ("func", "command", "trainer"):
            continue
        out[k] = v if isinstance(v, (str, int, float, bool, type(None), list, tuple, dict)) else str(v)
    return out


def write_config(out, name, args, **extra):
    """``out/config.json`` = ``{"recipe": name, "args": vars(args), **extra}``: what sample() rebuilds from
    (written by rank 0 alone in a data-parallel run)."""
    os.makedirs(out, exist_ok=True)
    return write_json({"recipe": name, "args": _jsonable_args(args), **extra}, os.path.join(out, CONFIG))


def read_config(run_dir) -> dict:
    """The run's ``config.json``; raises CheckpointError when it is missing or was not written by a recipe."""
    from ..errors import CheckpointError

    path = os.path.join(os.fspath(run_dir), CONFIG)
    if not os.path.exists(path):
        raise CheckpointError(f"{run_dir}: no {CONFIG} (is this a folder written by 'minigen train'?)")
    with open(path, encoding="utf-8") as f:
        try:
            cfg = json.load(f)
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or "recipe" not in cfg or not isinstance(cfg.get("args"), dict):
        raise CheckpointError(f"{path} names no recipe: written by an older minigen? Train again to sample from it")
    return cfg


def run_args(run_dir) -> argparse.Namespace:
    """The training options of a run, as the Namespace its recipe's run() received."""
    return argparse.Namespace(**read_config(run_dir)["args"])


def load_checkpoint_model(run_dir, model, key="model", name=CHECKPOINT):
    """Load the weights ``checkpoint[key]`` of a run into ``model`` (eval mode) and return it."""
    from ..errors import CheckpointError
    from ..io import load

    path = os.path.join(os.fspath(run_dir), name)
    if not os.path.exists(path):
        raise CheckpointError(f"{run_dir}: no {name} to sample from (the run saved none yet)")
    st = load(path)
    if key is not None:
        if not isinstance(st, dict) or key not in st:
            raise CheckpointError(f"{path}: no {key!r} entry (found {sorted(st) if isinstance(st, dict) else st})")
        st = st[key]
    model.load_state_dict(st)
    return model.eval()


def sample_path(args, default_name):
    """``args.out`` if given, else ``RUN_DIR/default_name``; the folder is created."""
    path = args.out or os.path.join(args.run_dir, default_name)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return path


def exit_code(summary) -> int:
    """0, or 130 (and a note) when the run was interrupted."""
    if summary.get("interrupted"):
        print("interrupted: checkpoint saved; continue with --resume", file=sys.stderr)
        return 130
    return 0


def print_summary(name, summary, out):
    show = {k: v for k, v in summary.items() if not isinstance(v, (list, dict))}
    print(f"{name}: " + json.dumps(show, indent=1, default=str))
    print(f"outputs in {out}/")


# ----------------------------------------------------------------------------- training helpers
def rng_isolated(fn):
    """``fn`` wrapped so that it leaves minigen's global RNG as it found it.

    Evaluations run at stop points (the end of a short run, a Ctrl-C) that an uninterrupted run does not
    have; if they drew from the global RNG, a resumed run would diverge from the uninterrupted one.
    """
    if fn is None:
        return None

    def wrapped(*a, **kw):
        from ..random import get_rng_state, set_rng_state

        st = get_rng_state()
        try:
            return fn(*a, **kw)
        finally:
            set_rng_state(st)

    return wrapped


def fresh_log(trainer):
    """A run that does not resume starts a new metrics log (the Trainer would append to an old one in --out)."""
    trainer.logger.truncate(-1)


class GeneratorState:
    """Saves named ``minigen.Generator`` states inside a Trainer checkpoint (``extra_state=``)."""

    def __init__(self, **generators):
        self.generators = generators

    def state_dict(self):
        return {k: g.get_state() for k, g in self.generators.items()}

    def load_state_dict(self, st):
        for k, g in self.generators.items():
            if k in st:
                g.set_state(st[k])


def median_step_time(logger, batch_size):
    import numpy as np

    rates = [r["samples_per_s"] for r in logger.rows if r.get("split") == "train" and r.get("samples_per_s")]
    return float(np.median([batch_size / r for r in rates])) if rates else None


# ----------------------------------------------------------------------------- MNIST
def mnist_dataset(split="train", limit=None):
    """The bundled MNIST split ('train': 9,000 images, 'val': 1,000), optionally its first ``limit`` images."""
    from ..data import BundledMNIST, Subset

    ds = BundledMNIST(split)
    if limit:
        ds = Subset(ds, range(min(int(limit), len(ds))))
    return ds


def mnist_loader(split="train", batch_size=64, shuffle=True, seed=0, limit=None, device=None, drop_last=None):
    """A resumable DataLoader of ``(images (B, 1, 28, 28) in [0, 1], labels (B,) int64)`` from the bundled split.

    Training loaders drop the last incomplete batch by default (a batch of 8 would give BatchNorm and a GAN
    a noisy step); evaluation loaders (``shuffle=False``) keep it.
    """
    import minigen as mg
    from ..data import DataLoader

    ds = mnist_dataset(split, limit)
    if drop_last is None:
        drop_last = bool(shuffle) and len(ds) > batch_size
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, device=device,
                      generator=mg.Generator().manual_seed(seed) if shuffle else None)


def train_loader(loader, dp):
    """A training loader of *global* batches (built with ``dp.global_batch(B)``) as this rank's shard of each:
    ``dp.shard_loader(loader)``; the loader itself when ``dp`` is None or a world of one."""
    return loader if dp is None else dp.shard_loader(loader)


def global_batch(batch_size, dp):
    """``batch_size`` x the number of processes (``batch_size`` in a single-process run)."""
    return batch_size if dp is None else dp.global_batch(batch_size)


def to_pm1(x):
    """[0, 1] -> [-1, 1]:  x' = 2x - 1."""
    return x * 2.0 - 1.0


def from_pm1(x):
    """[-1, 1] -> [0, 1]:  x = (x' + 1) / 2, clipped (tanh outputs never leave the range; other generators may)."""
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def sample_noise(n, dim, device=None, generator=None):
    """z ~ N(0, I), shape (n, dim)."""
    import minigen as mg

    return mg.randn(n, dim, generator=generator, device=device)


# ----------------------------------------------------------------------------- pictures
def save_grid(images, path, nrow=8, pm1=True):
    """Write images (N, 1, 28, 28) as a PNG grid; ``pm1``: the values are in [-1, 1] (GAN outputs)."""
    import numpy as np

    from .. import backend
    from ..data import save_image_grid

    arr = backend.to_numpy(images.detach().array if hasattr(images, "detach") else images).astype(np.float32)
    if pm1:
        arr = (arr + 1.0) * 0.5
    return save_image_grid(np.clip(arr, 0.0, 1.0), path, nrow=nrow, padding=2, pad_value=0.5)


def plot_loss_curves(logger, keys, path, title, ylabel="loss", split="train", extra=None):
    """Plot the logged series ``keys`` (a list, or {key: legend label}) plus ``extra`` = {label: [(step, value)]}
    to a PNG; None if nothing was logged."""
    from ..data import plot_curves

    labels = keys if isinstance(keys, dict) else {k: k for k in keys}
    curves = {labels[k]: logger.series(k, split) for k in labels}
    curves = {k: v for k, v in curves.items() if v}
    if extra:
        curves.update({k: v for k, v in extra.items() if v})
    if not curves:
        return None
    return plot_curves(curves, path, title=title, ylabel=ylabel)


# ----------------------------------------------------------------------------- the GAN driver
class Optimizers:
    """Several named optimizers seen as one by the Trainer (``state_dict`` holds each under its name).

    ``param_groups`` (read by the Trainer for the logged learning rate) are the first optimizer's.
    """

    def __init__(self, **optimizers):
        if not optimizers:
            raise ValueError("Optimizers: give at least one optimizer")
        self.optimizers = dict(optimizers)

    def __getitem__(self, name):
        return self.optimizers[name]

    @property
    def param_groups(self):
        return next(iter(self.optimizers.values())).param_groups

    def zero_grad(self, set_to_none=True):
        for o in self.optimizers.values():
            o.zero_grad(set_to_none=set_to_none)

    def step(self):  # the Trainer never calls it: a GAN step makes its own updates
        raise RuntimeError("Optimizers.step: step the named optimizers (D, G) one by one")

    def state_dict(self):
        return {k: o.state_dict() for k, o in self.optimizers.items()}

    def load_state_dict(self, state):
        for k, o in self.optimizers.items():
            o.load_state_dict(state[k])


def _adversarial_trainer_class():
    from ..train import Trainer

    class AdversarialTrainer(Trainer):
        """A :class:`~minigen.train.Trainer` whose step is ``step_fn(batch) -> {metric: float}``.

        ``step_fn`` makes all the updates of one training step itself (for a GAN: the discriminator's, then
        the generator's), so the alternation stays visible in the recipe. Everything else is the Trainer's:
        the bar, metric rows (each metric averaged over the logging window), evaluation and checkpoints,
        exact resume, Ctrl-C. ``main`` names the metric shown as ``loss``. The whole step counts as one
        update: an interrupt inside it never saves half-updated parameters.
        """

        def __init__(self, model, optimizers, step_fn, train_loader, *, main="d_loss", keep_every_epoch=False, **kw):
            super().__init__(model, optimizers, None, train_loader, **kw)
            self.step_fn, self.main = step_fn, main
            self.keep_every_epoch = bool(keep_every_epoch)
            self._sums, self._count = {}, 0

        def save_checkpoint(self, path=None, **kw):
            """The Trainer's checkpoint; with ``keep_every_epoch`` a copy of it at every epoch end,
            ``checkpoint_epoch001.safetensors``, ... (kept, never overwritten by a later epoch)."""
            import shutil

            saved = super().save_checkpoint(path, **kw)
            if self.dp is not None and not self.dp.is_main:  # (data-parallel: rank 0 alone writes)
                return saved
            n = len(self.loader)
            if self.keep_every_epoch and path is None and self.step > 0 and n and self.step % n == 0:
                shutil.copyfile(saved, epoch_checkpoint_path(self.out_dir, self.step // n))
            return saved

        def _train_step(self, batch):
            self._in_update = True
            metrics = self.step_fn(batch)
            self._in_update = False
            for k, v in metrics.items():
                self._sums[k] = self._sums.get(k, 0.0) + float(v)
            self._count += 1
            extra = {}
            if self.log_every and (self.step + 1) % self.log_every == 0:  # the Trainer logs a row after this step
                extra = {k: s / self._count for k, s in self._sums.items()}
                self._sums, self._count = {}, 0
            return float(metrics[self.main]), extra

    return AdversarialTrainer


def AdversarialTrainer(*a, **kw):
    """Build the Trainer subclass for GAN steps (see :func:`_adversarial_trainer_class`)."""
    return _adversarial_trainer_class()(*a, **kw)


def epoch_checkpoint_path(out, epoch):
    """``out/checkpoint_epoch{epoch:03d}.safetensors``: the checkpoint kept for one epoch (``keep_every_epoch``)."""
    return os.path.join(os.fspath(out), f"checkpoint_epoch{int(epoch):03d}.safetensors")


def _eval_name(trainer, n_batches):
    """samples_epoch003.png at an epoch end, samples_step000200.png when a step budget ends mid-epoch."""
    if n_batches and trainer.step % n_batches == 0 and trainer.epoch > 0:
        return f"epoch{trainer.epoch:03d}"
    return f"step{trainer.step:06d}"


def run_adversarial(name, model, optimizers, step_fn, sample_fn, *, out, epochs=5, max_steps=None, batch_size=64,
                    seed=0, limit=None, device=None, progress=None, resume=False, log_every=10, classifier="none",
                    score_samples=1000, grid_fn=None, curve_keys=("d_loss", "g_loss"), extra_state=None,
                    finish_fn=None, quiet=False, keep_every_epoch=False, dp=None):
    """Train a GAN-like ``model`` with an :class:`AdversarialTrainer` and write what a person looks at.

    ``step_fn(batch) -> {metric: float}`` makes the updates of one step; ``sample_fn(n, generator)`` returns
    n generated images in [-1, 1] (called under ``no_grad`` in eval mode). At every epoch end (and at the end
    of a step budget) the driver writes a sample grid PNG (``grid_fn(path)`` if given, else 64 samples from a
    fixed noise), scores ``score_samples`` generated images with the MNIST classifier (if ``classifier`` is
    a folder, see :mod:`minigen.recipes.classifier`) and saves a checkpoint; at the end it writes
    ``loss_curve.png``, ``score_curve.png`` and ``summary.json``. ``keep_every_epoch``: the checkpoint of every
    epoch end is also kept as :func:`epoch_checkpoint_path` (one file per epoch, none overwritten).
    ``finish_fn(out) -> dict`` adds outputs
    (e.g. a style-mixing grid). Evaluations leave the global RNG untouched (:func:`rng_isolated`).
    ``dp``: a :class:`minigen.train.DataParallel` (``batch_size`` per process; ``step_fn`` must forward through
    the DistributedDataParallel wrappers, e.g. :func:`gan_step` with the same ``dp``); rank 0 alone scores,
    draws and writes. Returns the summary dict (on the other ranks: step, epoch, interrupted).
    """
    import shutil
    import time

    import minigen as mg
    from ..models.classifier import classifier_scores
    from .classifier import load_or_train_classifier

    os.makedirs(out, exist_ok=True)
    mg.manual_seed(seed)
    scorer = None
    if classifier and str(classifier).lower() != "none" and score_samples and dp_main(dp):
        scorer = load_or_train_classifier(classifier, device=device, progress=progress)
    if device is not None:
        model.to(device)
    loader = train_loader(mnist_loader("train", global_batch(batch_size, dp), shuffle=True, seed=seed, limit=limit,
                                       device=device), dp)
    n_batches = len(loader)
    grids = []

    def eval_fn():
        tag = _eval_name(trainer, n_batches)
        path = os.path.join(out, f"samples_{tag}.png")
        if grid_fn is not None:
            grid_fn(path)
        else:
            save_grid(sample_fn(64, mg.Generator().manual_seed(seed + 1)), path, nrow=8)
        grids.append(path)
        shutil.copyfile(path, os.path.join(out, "samples.png"))
        metrics = {}
        if scorer is not None:
            imgs = sample_fn(score_samples, mg.Generator().manual_seed(seed + 2))
            s = classifier_scores(scorer, from_pm1(imgs))
            metrics = {"score_is": s["inception_score"], "score_max_prob": s["mean_max_prob"],
                       "score_entropy": s["class_entropy"], "class_freq": s["class_freq"]}
        return metrics

    trainer = AdversarialTrainer(model, optimizers, step_fn, loader, out_dir=out, eval_fn=rng_isolated(eval_fn),
                                 epochs=epochs, max_steps=max_steps, log_every=max(1, min(log_every, n_batches)),
                                 progress=progress, extra_state=extra_state, main=curve_keys[0],
                                 keep_every_epoch=keep_every_epoch, data_parallel=dp)
    if not resume:
        fresh_log(trainer)
    t0 = time.perf_counter()
    res = trainer.fit(resume=resume)
    wall = time.perf_counter() - t0
    if not dp_main(dp):  # the other ranks of a data-parallel run write nothing
        return {"model": name, "step": res["step"], "epoch": res["epoch"], "interrupted": res["interrupted"]}
    lg = trainer.logger
    loss_curve = plot_loss_curves(lg, list(curve_keys), os.path.join(out, "loss_curve.png"), f"{name}: losses")
    score_curve = None
    if lg.series("score_is", "val"):
        from ..data import plot_curves

        score_curve = plot_curves({"Inception-like score (max 10)": lg.series("score_is", "val"),
                                   "10 x mean max-probability": [(s, 10 * v) for s, v in
                                                                 lg.series("score_max_prob", "val")],
                                   "4 x class entropy (max 9.2)": [(s, 4 * v) for s, v in
                                                                   lg.series("score_entropy", "val")]},
                                  os.path.join(out, "score_curve.png"), title=f"{name}: MNIST-classifier scores",
                                  ylabel="score")
    last_train = next((r for r in reversed(lg.rows) if r.get("split") == "train"), {})
    summary = {"model": name, "step": res["step"], "epoch": res["epoch"], "interrupted": res["interrupted"],
               "resumed": res.get("resumed", False), "wall_s": wall,
               "s_per_step": median_step_time(lg, global_batch(batch_size, dp)) or (wall / max(res["step"], 1)),
               **{k: last_train.get(k) for k in curve_keys},
               "scores": {k: res.get(k) for k in ("score_is", "score_max_prob", "score_entropy", "class_freq")}
               if scorer is not None else None,
               "samples": grids[-1] if grids else None, "sample_grids": grids, "loss_curve": loss_curve,
               "score_curve": score_curve, "checkpoint": res["checkpoint"]}
    if keep_every_epoch:
        summary["epoch_checkpoints"] = [epoch_checkpoint_path(out, e) for e in range(1, res["epoch"] + 1)
                                        if os.path.exists(epoch_checkpoint_path(out, e))]
    if finish_fn is not None:
        was = model.training
        model.eval()
        try:
            with mg.no_grad():
                summary.update(rng_isolated(finish_fn)(out) or {})
        finally:
            model.train(was)
    write_json(summary, os.path.join(out, "summary.json"))
    if not quiet:
        sc = summary["scores"]
        msg = (f"; classifier score IS {sc['score_is']:.2f}, mean max-prob {sc['score_max_prob']:.3f}, "
               f"class entropy {sc['score_entropy']:.3f}" if sc and sc.get("score_is") is not None else "")
        print(f"{name}: {'interrupted' if res['interrupted'] else 'done'} after {res['step']} steps "
              f"({res['epoch']} epochs) in {wall:.1f}s{msg}")
        print(f"outputs in {out}/ (samples.png, loss_curve.png, metrics.jsonl, checkpoint.safetensors)")
    return summary


def gan_common_kwargs(args):
    """The :func:`run_adversarial` keyword arguments from the options of :func:`add_image_arguments` (with the
    run's :func:`data_parallel`)."""
    return dict(epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, seed=args.seed,
                limit=args.limit, device=args.device, progress=progress_flag(args), resume=args.resume,
                log_every=args.log_every, classifier=args.classifier, score_samples=args.score_samples,
                dp=data_parallel(args))


def gan_exit_code(summary) -> int:
    """:func:`exit_code` on rank 0; the other ranks of a data-parallel run only return the code."""
    if is_main_process():
        return exit_code(summary)
    return 130 if summary.get("interrupted") else 0


def sample_gan_grid(args, G, nz, default_name="samples_generated.png", nrow=8):
    """``minigen sample`` for an unconditional generator ``G(z)``: n images from z ~ N(0, I) as a PNG grid."""
    import minigen as mg

    n = args.n or 64
    dev = next(G.parameters()).device
    with mg.no_grad():
        imgs = G(sample_noise(n, nz, device=dev, generator=mg.Generator().manual_seed(args.seed)))
    path = save_grid(imgs, sample_path(args, default_name), nrow=nrow)
    print(f"wrote {n} samples to {path}")
    return 0


def gan_step(G, D, opt_g, opt_d, nz, g_loss="non-saturating", d_steps=1, conditional=False, n_classes=10,
             dp=None):
    """One iteration of Goodfellow et al.'s Algorithm 1 as a function ``step(batch) -> metrics``.

    ``d_steps`` (k) discriminator updates, then one generator update (losses of :mod:`minigen.models.gan`).
    With k = 1 the generated batch of the D update is reused for the G update (as the PyTorch DCGAN example
    does): D sees it detached, G gets gradients through D's logits of the same images. ``conditional``:
    G(z, y) and D(x, y), fake labels drawn uniformly (the conditional GAN).

    ``dp`` (data-parallel): G and D each in a DistributedDataParallel (built here, on every rank in the same
    order). D's gradients are averaged in the D update; in the G update the backward goes through D under
    ``no_sync()`` (D's gradients there are discarded by the next ``opt_d.zero_grad()``), so only G's are averaged.
    """
    import minigen as mg
    from ..models.gan import discriminator_loss, generator_loss
    from ..nn import functional as F

    Gn = G if dp is None else dp.wrap(G)
    Dn = D if dp is None else dp.wrap(D)

    def d_update(x, y, fake, y_fake):
        opt_d.zero_grad()
        lr_, lf_ = (Dn(x, y), Dn(fake.detach(), y_fake)) if conditional else (Dn(x), Dn(fake.detach()))
        loss = discriminator_loss(lr_, lf_)
        loss.backward()
        opt_d.step()
        return loss, lr_, lf_

    def gen(B, device):
        z = sample_noise(B, nz, device=device)
        if conditional:
            yf = mg.randint(0, n_classes, (B,), device=device)
            return Gn(z, yf), yf
        return Gn(z), None

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
        if Dn is D:
            logits = D(fake, yf) if conditional else D(fake)
        else:
            logits = forward_no_sync(Dn, fake, yf) if conditional else forward_no_sync(Dn, fake)
        lg = generator_loss(logits, g_loss)
        lg.backward()
        opt_g.step()
        return {"d_loss": ld.item(), "g_loss": lg.item(), "D(x)": F.sigmoid(lr_.detach()).mean().item(),
                "D(G(z))": F.sigmoid(lf_.detach()).mean().item()}

    return step


def benchmarks_module(name):
    """Import ``benchmarks/<name>.py`` of a source checkout (the benchmarks are not part of the installed package)."""
    import importlib.util

    from ..errors import InvalidArgumentError

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "benchmarks", f"{name}.py")
    if not os.path.exists(path):
        raise InvalidArgumentError(f"benchmarks/{name}.py not found next to the minigen package ({root}): the "
                                   f"benchmarks ship with the source checkout, not with an installed wheel")
    spec = importlib.util.spec_from_file_location(f"minigen_benchmarks_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


class StopSignal:
    """For a recipe's own training loop in a data-parallel run: a first Ctrl-C only sets :attr:`requested` (the
    loop agrees on it with the other ranks, ``dp.any(...)``, and every rank stops after the same step); a second
    raises KeyboardInterrupt (which ends the whole MPI job). A no-op (Ctrl-C raises as usual) when ``dp`` is not
    active. Use as a context manager."""

    def __init__(self, dp):
        self.dp = dp if dp is not None and dp.active else None
        self.requested = False
        self._old = None

    def __enter__(self):
        import signal
        import threading

        if self.dp is not None and threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                if self.requested:
                    raise KeyboardInterrupt
                self.requested = True
                print(f"\nCtrl-C (rank {self.dp.rank}): every rank stops after this step (Ctrl-C again aborts the job)",
                      file=sys.stderr, flush=True)

            self._old = signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            import signal

            signal.signal(signal.SIGINT, self._old)
            self._old = None
        return False
