"""A Griffe extension for the API pages (mkdocstrings reads the docstrings through Griffe).

- An op's docstring (a ``Function`` subclass in ``minigen/ops/``) is its forward and backward formula written
  in plain text with aligned columns: it is shown verbatim (a text block) instead of being reflowed as
  Markdown prose, where ``*`` and ``_`` would turn into emphasis.
- The docstrings use Sphinx roles (``:class:`Function```, ``:func:`grad```); they are shown as code.
"""
from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|py:\w+):`~?([^`]+)`")


class VerbatimOpFormulas(griffe.Extension):
    def on_instance(self, *, node, obj, agent, **kwargs):
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = _ROLE.sub(r"`\1`", obj.docstring.value)

    def on_class_instance(self, *, node, cls, agent, **kwargs):
        if not cls.path.startswith("minigen.ops.") or cls.docstring is None:
            return
        if not any(str(b).split(".")[-1] in ("Function", "_AffineNorm") for b in cls.bases):
            return
        text = cls.docstring.value
        if "```" not in text:
            cls.docstring.value = "```text\n" + text + "\n```"
