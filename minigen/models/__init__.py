"""The model zoo: each model in its own module, written from the equation quoted in its docstring.

Image models (MNIST): :mod:`.gan`, :mod:`.dcgan`, :mod:`.cgan`, :mod:`.wgan_gp`, :mod:`.stylegan`,
:mod:`.vae`, and :mod:`.classifier` (the CNN that scores generated digits).
Language models (tiny-shakespeare): :mod:`.gpt`, :mod:`.char_rnn`, :mod:`.ngram`, :mod:`.bpe`,
:mod:`.word2vec`, :mod:`.seq2seq`.

``minigen.models.registry.TRAINERS`` (also ``minigen.models.TRAINERS``) maps every ``minigen train <name>``
to ``(add_arguments, run, help)``; it merges :data:`.registry_text.TEXT_MODELS` and
:data:`.registry_image.IMAGE_MODELS`. Importing this package is cheap: the model modules load when a
trainer runs or when you import them.
"""
from .registry import TRAINERS  # noqa: F401

__all__ = ["TRAINERS"]
