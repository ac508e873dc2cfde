"""Dropout layers: active only in training mode (``module.train()``); identity in ``eval()``."""
from __future__ import annotations

from .. import functional as F
from ...errors import InvalidArgumentError
from .module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise InvalidArgumentError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = float(p), inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Training: y = x * m / (1 - p) with m ~ Bernoulli(1 - p) per element; eval: y = x."""

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    """Zeroes whole channels: input (N, C, L) or (C, L); mask per (n, c)."""

    def forward(self, x):
        return F.dropout1d(x, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zeroes whole channels: input (N, C, H, W) or (C, H, W); mask per (n, c)."""

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    """Zeroes whole channels: input (N, C, D, H, W); mask per (n, c)."""

    def forward(self, x):
        return F.dropout3d(x, self.p, self.training, self.inplace)
