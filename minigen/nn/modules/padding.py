r"""Padding layers (``torch.nn.modules.padding``): each is ``F.pad`` with a fixed padding and mode.

For an N-d layer (N = 1, 2, 3) the input is (C, *spatial) or (B, C, *spatial) with N spatial dims;
``padding`` is an int (the same on every side) or a 2N-tuple ``(left, right, top, bottom, front, back)``
ordered from the last dimension backwards (PyTorch's convention). Modes::

    Zero / Constant:  pad with 0 / ``value``
    Reflection:       x[-i] = x[i]          (mirror, edge not repeated; padding < the dimension's size)
    Replication:      x[-i] = x[0]          (repeat the edge)
    Circular:         x[-i] = x[n - i]      (wrap around)

Gradients flow through ``F.pad`` (padding positions receive none; reflected/replicated/wrapped positions
add theirs to the source element).
"""
from __future__ import annotations

import numbers

from .. import functional as F
from ...errors import InvalidArgumentError, ShapeError
from ...argcheck import check_tensor
from .module import Module

__all__ = ["ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
           "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
           "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d"]


def _ntuple(padding, n, cls):
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        return (int(padding),) * (2 * n)
    if not isinstance(padding, (tuple, list)) or not all(
            isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in padding):
        raise InvalidArgumentError(f"{cls}: padding must be an int or a tuple of {2 * n} ints, got {padding!r}")
    pad = tuple(int(p) for p in padding)
    if len(pad) != 2 * n:
        raise InvalidArgumentError(f"{cls}: padding must have {2 * n} values, got {len(pad)} ({padding!r})")
    return pad


class _PadNd(Module):
    _n = 1
    _mode = "constant"

    def __init__(self, padding, value=0.0):
        super().__init__()
        self.padding = _ntuple(padding, self._n, type(self).__name__)
        if self._mode != "constant" and any(p < 0 for p in self.padding):
            raise InvalidArgumentError(f"{type(self).__name__}: padding must be non-negative, got {self.padding}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidArgumentError(f"{type(self).__name__}: value must be a real number, got {type(value).__name__}")
        self.value = float(value)

    def forward(self, input):
        check_tensor(input, type(self).__name__)
        if input.ndim not in (self._n + 1, self._n + 2):
            raise ShapeError(f"{type(self).__name__} expects a {self._n + 1}-d or {self._n + 2}-d input "
                             f"((C, *spatial) or (B, C, *spatial)), got shape {tuple(input.shape)}")
        if self._mode == "constant":
            return F.pad(input, self.padding, mode="constant", value=self.value)
        return F.pad(input, self.padding, mode=self._mode)

    def extra_repr(self):
        if self._mode == "constant" and type(self).__name__.startswith("Constant"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


def _make(name, n, mode, doc):
    return type(name, (_PadNd,), {"_n": n, "_mode": mode, "__doc__": doc, "__module__": __name__})


class ZeroPad1d(_PadNd):
    """Pad the last dimension with zeros: ``ZeroPad1d(padding)``."""
    _n = 1

    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ZeroPad2d(ZeroPad1d):
    """Pad the last two dimensions with zeros: ``ZeroPad2d(padding)``."""
    _n = 2


class ZeroPad3d(ZeroPad1d):
    """Pad the last three dimensions with zeros: ``ZeroPad3d(padding)``."""
    _n = 3


class ConstantPad1d(_PadNd):
    """Pad the last dimension with ``value``: ``ConstantPad1d(padding, value)``."""
    _n = 1

    def __init__(self, padding, value):
        super().__init__(padding, value)


class ConstantPad2d(ConstantPad1d):
    """Pad the last two dimensions with ``value``."""
    _n = 2


class ConstantPad3d(ConstantPad1d):
    """Pad the last three dimensions with ``value``."""
    _n = 3


ReflectionPad1d = _make("ReflectionPad1d", 1, "reflect", "Mirror-pad the last dimension (edge not repeated).")
ReflectionPad2d = _make("ReflectionPad2d", 2, "reflect", "Mirror-pad the last two dimensions (edge not repeated).")
ReflectionPad3d = _make("ReflectionPad3d", 3, "reflect", "Mirror-pad the last three dimensions.")
ReplicationPad1d = _make("ReplicationPad1d", 1, "replicate", "Pad the last dimension by repeating its edge values.")
ReplicationPad2d = _make("ReplicationPad2d", 2, "replicate", "Pad the last two dimensions by repeating the edges.")
ReplicationPad3d = _make("ReplicationPad3d", 3, "replicate", "Pad the last three dimensions by repeating the edges.")
CircularPad1d = _make("CircularPad1d", 1, "circular", "Pad the last dimension by wrapping around.")
CircularPad2d = _make("CircularPad2d", 2, "circular", "Pad the last two dimensions by wrapping around.")
CircularPad3d = _make("CircularPad3d", 3, "circular", "Pad the last three dimensions by wrapping around.")
