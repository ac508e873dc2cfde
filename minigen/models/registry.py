"""All ``minigen train <name>`` trainers of the model zoo, as the CLI looks for them.

``minigen.cli`` imports this module at start-up and adds every entry of ``TRAINERS``
(``name -> (add_arguments, run, help)``): the language models of
:mod:`~minigen.models.registry_text` and the image models of :mod:`~minigen.models.registry_image`.
"""
from __future__ import annotations

from .registry_image import IMAGE_MODEL_HELP, IMAGE_MODELS
from .registry_text import TEXT_MODEL_HELP, TEXT_MODELS

__all__ = ["TRAINERS"]

TRAINERS = {}
for _models, _help in ((TEXT_MODELS, TEXT_MODEL_HELP), (IMAGE_MODELS, IMAGE_MODEL_HELP)):
    for _name, (_add, _run) in _models.items():
        if _name in TRAINERS:
            raise RuntimeError(f"two model-zoo trainers are called {_name!r}")
        TRAINERS[_name] = (_add, _run, _help.get(_name, ""))
