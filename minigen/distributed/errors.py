"""The one exception of ``minigen.distributed``.

It subclasses :class:`minigen.errors.MinigenError` and ``RuntimeError`` (PyTorch raises ``RuntimeError``
from its process groups; ``DistBackendError`` is its subclass there), so ``except RuntimeError`` keeps working.
"""
from __future__ import annotations

from ..errors import MinigenError


class DistributedError(MinigenError, RuntimeError):
    """A collective that timed out, a process group that is not initialised, a rank that
    disagrees with the others (mismatched model, different collective), or a backend failure."""
