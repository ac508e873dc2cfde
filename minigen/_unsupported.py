"""The error for PyTorch features that minigen has the name of but not the machinery for.

Objects such as ``minigen.amp.GradScaler`` or ``minigen.backends.cudnn`` exist so that programs written
for PyTorch import and run on minigen; switching on something minigen cannot do raises
:class:`FeatureUnavailableError` with a message that says what to do instead, never a bare failure
at import.
"""
from __future__ import annotations

from .errors import MinigenError

__all__ = ["FeatureUnavailableError"]


class FeatureUnavailableError(MinigenError, NotImplementedError):
    """A PyTorch feature minigen does not implement was switched on (the message names it and the
    alternative)."""
