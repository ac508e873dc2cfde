"""Training recipes: how each model of :mod:`minigen.models` is trained, sampled and driven from the CLI.

``minigen.models.<name>`` holds a model and the equation it implements, nothing else. Everything a run needs
around it (data, optimiser, schedule, the training loop, checkpoints, pictures, the argparse options) lives
here, one module per trainer, all written to one convention.

**The convention.** ``minigen/recipes/<module>.py`` defines

- ``NAME``: the trainer's name on the command line, the module name with ``_`` written ``-``
  (``wgan_gp`` -> ``minigen train wgan-gp``);
- ``HELP``: one line for ``minigen train --help``;
- ``add_arguments(parser)``: the options of ``minigen train NAME``;
- ``run(args) -> int``: train; writes into ``args.out`` ``config.json`` (``{"recipe": NAME, "args": {...}}``:
  everything :func:`sample` needs to rebuild the model), a checkpoint, ``metrics.jsonl``/``.csv``, what a
  person looks at, ``summary.json``; returns the exit code (0, or 130 after Ctrl-C: the checkpoint was saved
  and ``--resume`` continues from it, bit for bit);
- ``sample(args) -> int``: ``minigen sample RUN_DIR``: rebuild the model from ``RUN_DIR/config.json`` and
  its checkpoint and write what it produces (an image grid, text, audio) to ``args.out``, without training.
  ``args`` always has ``run_dir``, ``n``, ``out`` (None: the recipe picks a path inside ``run_dir``),
  ``seed`` and ``device``;
- optionally ``add_sample_arguments(parser)``: the extra options of ``minigen sample`` for this recipe
  (``--temperature``, ``--truncation``, ...);
- ``DATA_PARALLEL``: a line saying what each process does under ``--ddp N`` / ``mpiexec -n N`` (shown in
  ``--help``; ``run`` then takes the process group from :func:`._common.data_parallel`), or False with
  ``NO_DATA_PARALLEL`` = why not (``--ddp`` is refused with that reason). Missing means False.

Module-level code imports only the standard library and :mod:`._common`; models, data and NumPy are
imported inside the functions, so ``minigen --help`` stays fast.

:data:`RECIPES` lists the recipe modules. :func:`load` imports one on first use: a recipe that is missing or
broken raises when it is used (``minigen train <it>``), never silently, and never breaks the others.

Shared helpers (argument groups, checkpoint + config files, metric logs, image grids and curves, the GAN
driver) live in :mod:`._common`; a recipe imports nothing from another recipe except the scoring
classifier (:mod:`.classifier`) that the GAN recipes use.
"""
from __future__ import annotations

import importlib

__all__ = ["RECIPES", "load", "names", "module_name"]

RECIPES = ("mlp", "cnn", "classifier", "gan", "dcgan", "cgan", "wgan_gp", "stylegan", "vae",
           "gpt", "char_rnn", "seq2seq", "ngram", "bpe", "word2vec", "wavenet")


def names():
    """The command-line names of all recipes, in :data:`RECIPES` order (no import needed)."""
    return [m.replace("_", "-") for m in RECIPES]


def module_name(name: str) -> str:
    """``'wgan-gp'`` or ``'wgan_gp'`` -> ``'wgan_gp'``; raises KeyError for an unknown recipe."""
    mod = str(name).replace("-", "_")
    if mod not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; the recipes are: {', '.join(names())}")
    return mod


def load(name: str):
    """Import the recipe module ``name`` (CLI name or module name) and check that it follows the convention.

    Import errors propagate (a broken recipe fails loudly when it is used); a module that lacks one of
    ``NAME``, ``HELP``, ``add_arguments``, ``run``, ``sample`` raises AttributeError naming what is missing.
    """
    mod_name = module_name(name)
    mod = importlib.import_module(f"{__name__}.{mod_name}")
    missing = [a for a in ("NAME", "HELP", "add_arguments", "run", "sample") if not hasattr(mod, a)]
    if missing:
        raise AttributeError(f"recipe minigen.recipes.{mod_name} does not follow the convention: "
                             f"missing {', '.join(missing)}")
    if mod.NAME != mod_name.replace("_", "-"):
        raise AttributeError(f"recipe minigen.recipes.{mod_name}: NAME is {mod.NAME!r}, expected "
                             f"{mod_name.replace('_', '-')!r}")
    _range_checked(mod)
    return mod


def _range_checked(mod):
    """Wrap the recipe's ``add_arguments`` (and ``add_sample_arguments``) once so that every numeric option
    gets a range-checked argparse type (:func:`._common.check_numeric_options`): one rule for every recipe."""
    from . import _common

    for attr in ("add_arguments", "add_sample_arguments"):
        fn = getattr(mod, attr, None)
        if fn is None or getattr(fn, "_range_checked", False):
            continue

        def wrapped(parser, *a, _fn=fn, **k):
            out = _fn(parser, *a, **k)
            _common.check_numeric_options(parser)
            return out

        wrapped._range_checked = True
        wrapped.__doc__, wrapped.__name__, wrapped.__wrapped__ = fn.__doc__, fn.__name__, fn
        setattr(mod, attr, wrapped)
