"""Command-line trainers of the image models: ``minigen train <name> [options]``.

``IMAGE_MODELS`` maps a name to ``(add_arguments(parser), run(args) -> exit code)``;
``IMAGE_MODEL_HELP`` has a one-line description of each. Names:

- ``gan``         Goodfellow's GAN, MLP G / maxout D (``--g-loss minimax|non-saturating``)
- ``dcgan``       DCGAN (the article's MNIST layout)
- ``cgan``        conditional DCGAN (a row per digit in the sample grid)
- ``wgan-gp``     WGAN with gradient penalty (second-order gradients through a conv critic)
- ``stylegan``    StyleGAN-style generator: mapping network + modulated convs (``--mode modconv|adain``),
                  style-mixing PNGs
- ``vae``         VAE, MLP 784-400-20 (``--arch conv`` for the conv one; ``--latent-dim 2`` draws the latent map)
- ``classifier``  the MNIST CNN that scores generated digits (cached in its ``--out``)

Every trainer uses the bundled MNIST (9k train / 1k validation) and writes into ``--out``: ``metrics.jsonl``
(+ ``.csv``), ``checkpoint.safetensors`` (every epoch; ``--resume`` continues from it), PNG sample grids,
``loss_curve.png`` and ``summary.json``. The GAN trainers score their samples with the classifier in
``--classifier`` (trained there first if missing). Modules are imported only when a trainer runs.
"""
from __future__ import annotations

import importlib

__all__ = ["IMAGE_MODELS", "IMAGE_MODEL_HELP"]


def _lazy(module):
    """(add_arguments, run) that import ``minigen.models.<module>`` on first use (keeps ``minigen --help`` fast)."""

    def mod():
        return importlib.import_module(f"minigen.models.{module}")

    def add_arguments(p):
        return mod().add_arguments(p)

    def run(args):
        return mod().run(args)

    return add_arguments, run


IMAGE_MODELS = {
    "gan": _lazy("gan"),
    "dcgan": _lazy("dcgan"),
    "cgan": _lazy("cgan"),
    "wgan-gp": _lazy("wgan_gp"),
    "stylegan": _lazy("stylegan"),
    "vae": _lazy("vae"),
    "classifier": _lazy("classifier"),
}

IMAGE_MODEL_HELP = {
    "gan": "GAN (Goodfellow 2014) on MNIST: MLP generator, maxout discriminator; minimax or non-saturating G loss",
    "dcgan": "DCGAN on MNIST (conv-transpose G with BatchNorm, conv D with dropout); sample grid every epoch",
    "cgan": "conditional DCGAN on MNIST digits and labels; sample grid with one row per digit",
    "wgan-gp": "WGAN-GP on MNIST: critic with gradient penalty on interpolates (second-order gradients)",
    "stylegan": "StyleGAN-style generator on MNIST: mapping network, modulated convs, style-mixing PNGs",
    "vae": "VAE on MNIST (784-400-20 MLP or conv): reconstructions, samples, 2-D latent map",
    "classifier": "MNIST CNN (at least 98.5 percent val accuracy) scoring generated digits; weights cached in --out",
}
