"""The ``minigen`` command line (argparse).

::

    minigen info [--json]                 versions, kernel backend, CUDA, threads
    minigen train mlp [options]           MNIST MLP on the bundled 9k/1k split
    minigen train cnn [options]           MNIST LeNet-style CNN
    minigen train <name> [options]        trainers registered by minigen.models.registry
    minigen demo [--out DIR]              a quick tour that writes its results to out/

**Adding a trainer.** ``TRAINERS`` maps a name to a :class:`TrainerSpec`
(``add_arguments(parser)``, ``run(args) -> exit code``, a help line). Other
modules register theirs with :func:`register_trainer`; at start-up the CLI
imports ``minigen.models.registry`` if it exists, which either calls
``register_trainer`` or defines a dict ``TRAINERS = {name: (add_arguments, run[, help])}``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import dataclass
from typing import Callable

__all__ = ["main", "build_parser", "register_trainer", "TRAINERS", "TrainerSpec"]


@dataclass
class TrainerSpec:
    add_arguments: Callable
    run: Callable
    help: str = ""


TRAINERS: dict = {}


def register_trainer(name: str, add_arguments, run, help: str = "") -> None:
    """Make ``minigen train <name>`` available: ``add_arguments(parser)`` adds its options, ``run(args)`` trains."""
    TRAINERS[name] = TrainerSpec(add_arguments, run, help)


# ----------------------------------------------------------------------------- built-in trainers
def _add_mnist_arguments(kind):
    def add(p):
        p.add_argument("--epochs", type=int, default=3, help="passes over the 9k training images (default 3)")
        p.add_argument("--batch-size", type=int, default=64, help="default 64")
        p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
        if kind == "mlp":
            p.add_argument("--hidden", type=int, default=128, help="width of the two hidden layers (default 128)")
        p.add_argument("--out", default=f"out/mnist-{kind}",
                       help=f"output folder: metrics.jsonl/.csv, loss.png, checkpoint (default out/mnist-{kind})")
        p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out if there is one")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--limit", type=int, default=None, help="train on the first N training images only")
        p.add_argument("--device", default=None, help="cpu (default) or cuda")
        p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")

    return add


def _run_mnist(kind):
    def run(args):
        from .train import train_mnist

        res = train_mnist(kind, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          hidden=getattr(args, "hidden", 128), out=args.out, resume=args.resume, seed=args.seed,
                          limit=args.limit, device=args.device, progress=False if args.no_progress else None)
        if res["interrupted"]:
            print(f"interrupted: checkpoint saved to {res['checkpoint']}; continue with --resume", file=sys.stderr)
            return 130
        return 0

    return run


register_trainer("mlp", _add_mnist_arguments("mlp"), _run_mnist("mlp"),
                 "MNIST classifier: 2-hidden-layer MLP (bundled 9k/1k split)")
register_trainer("cnn", _add_mnist_arguments("cnn"), _run_mnist("cnn"),
                 "MNIST classifier: LeNet-style CNN (bundled 9k/1k split)")


def _import_registry():
    return importlib.import_module("minigen.models.registry")


def _load_registry() -> None:
    """Import ``minigen.models.registry`` if the model zoo provides one (it may register more trainers)."""
    try:
        mod = _import_registry()
    except ModuleNotFoundError as e:
        if e.name in ("minigen.models.registry", "minigen.models"):
            return
        print(f"minigen: warning: minigen.models.registry could not be imported ({e}); "
              "only the built-in trainers are available", file=sys.stderr)
        return
    except Exception as e:  # a broken plugin must not take the whole CLI down
        print(f"minigen: warning: minigen.models.registry failed to import ({type(e).__name__}: {e})",
              file=sys.stderr)
        return
    for name, spec in (getattr(mod, "TRAINERS", None) or {}).items():
        if isinstance(spec, TrainerSpec):
            TRAINERS[name] = spec
        else:
            TRAINERS[name] = TrainerSpec(*spec)


# ----------------------------------------------------------------------------- commands
def _cmd_info(args):
    from .info import collect, format_info

    info = collect()
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0


def _cmd_demo(args):
    from .demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

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

    p = sub.add_parser("train", help="train a model (see 'minigen train --help' for the list)",
                       description="Train a model. Each trainer has its own options: "
                                   "'minigen train <name> --help'.")
    tsub = p.add_subparsers(dest="trainer", metavar="<model>")
    for name, spec in TRAINERS.items():
        tp = tsub.add_parser(name, help=spec.help, description=spec.help)
        spec.add_arguments(tp)
        tp.set_defaults(func=spec.run)
    p.set_defaults(func=lambda a: _missing(p))

    p = sub.add_parser("demo", help="a quick tour: trains the MNIST MLP for one epoch and writes results to out/",
                       description="Train small models on the data shipped with minigen and write results "
                                   "(metrics, curves, samples, checkpoints) to --out.")
    from .demo import add_demo_arguments

    add_demo_arguments(p)
    p.set_defaults(func=_cmd_demo)
    return parser


def _missing(parser):
    parser.print_help(sys.stderr)
    return 2


def main(argv=None) -> int:
    _load_registry()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `minigen info | head`
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
