"""Dropout layers: active only in training mode (``module.train()``); identity in ``eval()``."""
from __future__ import annotations

from .. import functional as F
from ...argcheck import check_flag, check_probability
from .module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p = check_probability(p, type(self).__name__, "dropout probability p")
        self.inplace = check_flag(inplace, type(self).__name__, "inplace")

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
