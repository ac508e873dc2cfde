"""The ``minigen`` command line (argparse).

::

    minigen info [--json]                       versions, kernel backend, CUDA, threads
    minigen train <name> [options] [--ddp N]    train a model (the recipes of minigen.recipes); --ddp N: on N
                                                data-parallel processes under mpiexec (or: mpiexec -n N
                                                python -m minigen train <name> ...)
    minigen sample RUN_DIR [--n N] [--out PATH] [options]
                                                what a trained run's model produces (images, text, audio),
                                                read from RUN_DIR's config.json and checkpoint, no training
    minigen demo [--out DIR] [--minutes M]      the tour: classifier, DCGAN, VAE, WaveNet, char-GPT on bundled data
    minigen bench [GROUP ...] [--quick]         the benchmark suite (benchmarks/run.py of a source checkout)
    minigen gradcheck OP|all [--list]           float64 gradient checks of ops from the command line

**Trainers** are the modules of :mod:`minigen.recipes` (the convention is in its docstring): ``minigen train
NAME`` imports only ``minigen.recipes.<NAME>``, so a broken recipe fails, loudly, only when it is used;
``minigen train --help`` imports each to list it and marks a broken one as unavailable.
Errors of minigen's own kinds (a missing checkpoint, a bad option value) are printed as one line, exit code 1.
"""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["main", "build_parser", "GRADCHECK_OPS"]


# ----------------------------------------------------------------------------- info, demo
def _cmd_info(args):
    from .info import collect, format_info

    info = collect()
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0


def _cmd_demo(args):
    from .demo import run_demo

    return run_demo(args)


# ----------------------------------------------------------------------------- train
def _recipe_help(name):
    from . import recipes

    try:
        return recipes.load(name).HELP
    except Exception as e:  # listed, not hidden: `minigen train <it>` shows the full error
        return f"(unavailable: {type(e).__name__}: {e})"


def _run_trainer(mod, args, argv):
    """``minigen train NAME``: join (or, for ``--ddp N``, start under mpiexec) the data-parallel world, then train."""
    from .recipes import _common

    _common.start_data_parallel(mod, args, argv)
    return _common.run_recipe(mod, args)


def _add_train(sub, argv):
    from . import recipes
    from .recipes import _common

    p = sub.add_parser("train", help="train a model (see 'minigen train --help' for the list)",
                       description="Train a model. Each trainer has its own options: 'minigen train <name> --help'. "
                                   "Every run writes config.json, a checkpoint, metrics.jsonl/.csv and pictures or "
                                   "text into --out; --resume continues from its checkpoint. '--ddp N' (or "
                                   "'mpiexec -n N python -m minigen train <name> ...') trains on N data-parallel "
                                   "processes, --batch-size per process (docs/DISTRIBUTED.md).")
    tsub = p.add_subparsers(dest="trainer", metavar="<model>")
    chosen = argv[1] if len(argv) > 1 and argv[0] == "train" and not argv[1].startswith("-") else None
    for name in recipes.names():
        if chosen in (name, name.replace("-", "_")):
            mod = recipes.load(name)  # a broken recipe raises here, loudly
            tp = tsub.add_parser(name, help=mod.HELP, description=(mod.__doc__ or mod.HELP).strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
            if chosen != name:
                tsub.choices[chosen] = tp
            mod.add_arguments(tp)
            _common.add_ddp_argument(tp, mod)
            tp.set_defaults(func=lambda a, mod=mod: _run_trainer(mod, a, argv))
        elif chosen is None:
            tsub.add_parser(name, help=_recipe_help(name))
        else:
            tsub.add_parser(name)
    p.set_defaults(func=lambda a: _missing(p))


# ----------------------------------------------------------------------------- sample
def _sample_parser(recipe=None):
    from .recipes import _common

    desc = ("Write what a trained model produces, without training: RUN_DIR is a folder written by "
            "'minigen train <name> --out RUN_DIR'; its config.json names the recipe, which rebuilds the model "
            "and loads the checkpoint. Image models write a PNG grid, language models text, WaveNet audio.")
    if recipe is not None:
        desc = f"[{recipe.NAME}] " + desc
    p = argparse.ArgumentParser(prog="minigen sample", description=desc)
    _common.add_sample_arguments(p)
    if recipe is not None and hasattr(recipe, "add_sample_arguments"):
        recipe.add_sample_arguments(p.add_argument_group(f"options of the {recipe.NAME} recipe"))
    return p


def _cmd_sample(argv):
    from . import recipes
    from .recipes import _common

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("run_dir", nargs="?")
    pre.add_argument("--n", "--out", "--seed", "--device")  # the common options that take a value
    known, _ = pre.parse_known_args(argv)
    if known.run_dir is None or known.run_dir.startswith("-"):
        _sample_parser().parse_args(argv)  # --help, or the usage error for a missing RUN_DIR
        return 2
    cfg = _common.read_config(known.run_dir)
    mod = recipes.load(cfg["recipe"])
    args = _sample_parser(mod).parse_args(argv)
    return int(mod.sample(args) or 0)


# ----------------------------------------------------------------------------- bench
def _cmd_bench(args):
    from .errors import InvalidArgumentError
    from .recipes import _common

    run = _common.benchmarks_module("run")
    unknown = [g for g in args.groups if g not in run.GROUPS]
    if unknown:
        raise InvalidArgumentError(f"unknown benchmark group(s) {', '.join(unknown)}; "
                                   f"the groups are: {', '.join(run.GROUPS)}")
    argv = (["--only", ",".join(args.groups)] if args.groups else []) + (["--quick"] if args.quick else []) \
        + (["--no-write"] if args.no_write else []) + (["--threads", str(args.threads)] if args.threads else [])
    run.main(argv)
    return 0


# ----------------------------------------------------------------------------- gradcheck
def _t(rng, *shape, positive=False, lo=None):
    import numpy as np

    import minigen as mg

    a = rng.standard_normal(shape)
    if positive:
        a = np.abs(a) + 0.5
    if lo is not None:
        a = np.where(np.abs(a) < lo, lo, a)
    return mg.tensor(a, dtype=mg.float64, requires_grad=True)


def _ops():
    """name -> (function of the inputs, builder of float64 inputs from a NumPy Generator)."""
    import minigen as mg
    from .nn import functional as F

    return {
        "add": (lambda a, b: a + b, lambda r: (_t(r, 3, 4), _t(r, 4))),
        "mul": (lambda a, b: a * b, lambda r: (_t(r, 3, 4), _t(r, 3, 1))),
        "div": (lambda a, b: a / b, lambda r: (_t(r, 3, 4), _t(r, 3, 4, positive=True))),
        "pow": (lambda a: a ** 3, lambda r: (_t(r, 5),)),
        "exp": (lambda a: a.exp(), lambda r: (_t(r, 2, 3),)),
        "log": (lambda a: a.log(), lambda r: (_t(r, 2, 3, positive=True),)),
        "tanh": (lambda a: a.tanh(), lambda r: (_t(r, 2, 3),)),
        "sigmoid": (lambda a: F.sigmoid(a), lambda r: (_t(r, 2, 3),)),
        "relu": (lambda a: F.relu(a), lambda r: (_t(r, 4, 5, lo=0.05),)),
        "gelu": (lambda a: F.gelu(a), lambda r: (_t(r, 4, 5),)),
        "sum": (lambda a: a.sum(dim=1), lambda r: (_t(r, 3, 4),)),
        "mean": (lambda a: a.mean(dim=0), lambda r: (_t(r, 3, 4),)),
        "matmul": (lambda a, b: a @ b, lambda r: (_t(r, 3, 4), _t(r, 4, 2))),
        "softmax": (lambda a: F.softmax(a, dim=-1), lambda r: (_t(r, 3, 5),)),
        "log_softmax": (lambda a: F.log_softmax(a, dim=-1), lambda r: (_t(r, 3, 5),)),
        "layer_norm": (lambda a, w, b: F.layer_norm(a, (5,), w, b), lambda r: (_t(r, 3, 5), _t(r, 5), _t(r, 5))),
        "linear": (lambda a, w, b: F.linear(a, w, b), lambda r: (_t(r, 3, 4), _t(r, 2, 4), _t(r, 2))),
        "conv2d": (lambda a, w: F.conv2d(a, w, padding=1), lambda r: (_t(r, 1, 2, 5, 5), _t(r, 3, 2, 3, 3))),
        "max_pool2d": (lambda a: F.max_pool2d(a, 2), lambda r: (_t(r, 1, 2, 4, 4),)),
        "cross_entropy": (lambda a: F.cross_entropy(a, mg.tensor([1, 0, 3])), lambda r: (_t(r, 3, 4),)),
        "sdpa": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                 lambda r: (_t(r, 1, 2, 4, 3), _t(r, 1, 2, 4, 3), _t(r, 1, 2, 4, 3))),
        "embedding": (lambda w: F.embedding(mg.tensor([[0, 2], [1, 2]]), w), lambda r: (_t(r, 3, 4),)),
    }


GRADCHECK_OPS = ("add", "mul", "div", "pow", "exp", "log", "tanh", "sigmoid", "relu", "gelu", "sum", "mean",
                 "matmul", "softmax", "log_softmax", "layer_norm", "linear", "conv2d", "max_pool2d", "cross_entropy",
                 "sdpa", "embedding")


def _cmd_gradcheck(args):
    import time

    import numpy as np

    from .errors import InvalidArgumentError
    from .testing import gradcheck, gradgradcheck

    ops = _ops()
    if args.list or not args.op:
        print("ops: " + " ".join(GRADCHECK_OPS))
        return 0 if args.list else 2
    names = list(GRADCHECK_OPS) if args.op == ["all"] else args.op
    unknown = [n for n in names if n not in ops]
    if unknown:
        raise InvalidArgumentError(f"unknown op(s) {', '.join(unknown)} for gradcheck; 'minigen gradcheck --list' "
                                   f"lists them: {', '.join(GRADCHECK_OPS)}")
    failed = 0
    for name in names:
        fn, make = ops[name]
        for trial in range(args.trials):
            inputs = make(np.random.default_rng(args.seed + trial))
            t0 = time.perf_counter()
            try:
                gradcheck(fn, inputs, seed=args.seed + trial)
                if args.second_order:
                    gradgradcheck(fn, inputs, seed=args.seed + trial)
                status = "ok"
            except AssertionError as e:
                failed += 1
                status = f"FAILED: {e}"
            shapes = " ".join("x".join(map(str, t.shape)) for t in inputs)
            print(f"{name:<14} trial {trial}  inputs {shapes:<24} {status} ({time.perf_counter() - t0:.2f} s)",
                  flush=True)
    print(f"{len(names) * args.trials - failed} passed, {failed} failed "
          f"(float64 central differences{' + second order' if args.second_order else ''})")
    return 1 if failed else 0


# ----------------------------------------------------------------------------- the parser
def build_parser(argv=None) -> argparse.ArgumentParser:
    """The parser of ``argv`` (the train subcommand loads only the recipe named in ``argv``)."""
    from . import __version__
    from .demo import PARTS, add_demo_arguments

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="minigen",
        description="minigen: a from-scratch deep-learning engine for generative models.",
        epilog="Run 'minigen <command> --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"minigen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")

    p = sub.add_parser("info", help="versions, kernel backend, CUDA availability, threads",
                       description="Print the versions of Python, NumPy, Numba and minigen, the kernel backend, "
                                   "whether CuPy/CUDA is available, and the number of threads.")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=_cmd_info)

    _add_train(sub, argv)

    sub.add_parser("sample", help="write what a trained run's model produces (images, text, audio)",
                   add_help=False)

    p = sub.add_parser("demo", help=f"a ~5-minute tour: trains {', '.join(PARTS[:-1])} and a char-{PARTS[-1]} on "
                                    "the bundled MNIST / spoken digits (FSDD subset) / tiny-shakespeare, writes scores, "
                                    "samples, audio, curves to out/",
                       description="Train a scoring MNIST CNN, a DCGAN (scored by the CNN), a VAE, a digit-conditioned "
                                   "WaveNet (on the bundled spoken-digit subset) and a char-level GPT on the data "
                                   "shipped with minigen and write results (metrics, curves, sample grids, generated "
                                   "audio and text, checkpoints, summary.md) to --out.")
    add_demo_arguments(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("bench", help="run the benchmark suite or some of its groups (needs a source checkout)",
                       description="Run benchmarks/run.py: minigen against NumPy and PyTorch, results written to "
                                   "benchmarks/results/ (unless --no-write). GROUP: tiny, sgemm, conv, attention, "
                                   "lstm, norm, adam, models, cold (default: all).")
    p.add_argument("groups", nargs="*", metavar="GROUP", help="benchmark groups (default: all)")
    p.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    p.add_argument("--no-write", action="store_true", help="print only, do not update benchmarks/results/")
    p.add_argument("--threads", type=int, default=None, help="threads for BLAS, Numba and torch alike")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("gradcheck", help="gradient checks of ops (float64 central differences) from the CLI",
                       description="Check autograd against float64 central differences (minigen.testing.gradcheck) "
                                   "for the named ops, or 'all'. Exit code 1 if any check fails.")
    p.add_argument("op", nargs="*", metavar="OP", help="op names, or 'all' ('--list' shows them)")
    p.add_argument("--list", action="store_true", help="list the ops")
    p.add_argument("--trials", type=int, default=3, help="random inputs per op (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first trial's inputs (default 0)")
    p.add_argument("--second-order", action="store_true", help="also gradgradcheck (what WGAN-GP needs)")
    p.set_defaults(func=_cmd_gradcheck)
    return parser


def _missing(parser):
    parser.print_help(sys.stderr)
    return 2


def main(argv=None) -> int:
    from .errors import MinigenError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["sample"]:
            return _cmd_sample(argv[1:])
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except MinigenError as e:  # a documented error: one line (a multi-line message joined by "; "), no traceback
        print("minigen: error: " + "; ".join(p.strip() for p in str(e).splitlines() if p.strip()), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `minigen info | head`
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
