"""Dropout: inverted dropout of elements (``dropout``) or of whole channels (``dropout1d/2d/3d``).

forward:  y = x * s,  s = m / (1 - p),  m ~ Bernoulli(1 - p) drawn per element (or per channel)
backward: dx = g * s

The mask is drawn in the caller from ``generator`` (default: minigen's global generator, see
``mg.manual_seed``), so the op itself is a multiplication by a constant array.
"""
from __future__ import annotations

from ..argcheck import check_flag, check_float_tensor, check_generator, check_number
from ..autograd.function import Function
from ..backend import get_array_module
from ..errors import ShapeError
from ..random import _gen
from ..tensor import Tensor

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d"]


class Dropout(Function):
    """Inverted dropout: y = x * s with the constant scale array s = m / (1 - p).   dx = g * s."""

    reads = ((), ())

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x * scale

    @staticmethod
    def backward(ctx, g):
        return g * Tensor._make(ctx.scale), None


def _dropout(x, p, training, generator, mask_shape, op):
    x = check_float_tensor(x, op)
    p = check_number(p, op, "p", lo=0.0, hi=1.0)
    check_generator(generator, op)
    if not check_flag(training, op, "training") or p == 0.0:
        return x
    xp = get_array_module(x.array)
    if p == 1.0:
        scale = xp.zeros(mask_shape, dtype=x.dtype)
    else:
        r = _gen(generator).xp_generator(xp)
        keep = r.random(mask_shape) >= p
        scale = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return Dropout.apply(x, scale)


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by 1/(1-p).

    Identity when ``training`` is False or ``p == 0``. ``inplace`` is accepted for PyTorch
    compatibility; the result is always a new tensor.
    """
    return _dropout(input, p, training, generator, getattr(input, "shape", None), "dropout")


def _feature_dropout(input, p, training, generator, spatial, op):
    x = check_float_tensor(input, op)
    if x.ndim not in (spatial + 1, spatial + 2):
        raise ShapeError(f"{op}: expected a {spatial + 1}-d (C, *) or {spatial + 2}-d (N, C, *) input, "
                         f"got shape {tuple(x.shape)}")
    k = x.ndim - spatial
    return _dropout(x, p, training, generator, tuple(x.shape[:k]) + (1,) * spatial, op)


def dropout1d(input, p=0.5, training=True, inplace=False, generator=None):
    """Channel dropout for (N, C, L) / (C, L): whole channels are zeroed with probability p (scaled 1/(1-p))."""
    return _feature_dropout(input, p, training, generator, 1, "dropout1d")


def dropout2d(input, p=0.5, training=True, inplace=False, generator=None):
    """Channel dropout for (N, C, H, W) / (C, H, W): whole feature maps are zeroed with probability p."""
    return _feature_dropout(input, p, training, generator, 2, "dropout2d")


def dropout3d(input, p=0.5, training=True, inplace=False, generator=None):
    """Channel dropout for (N, C, D, H, W) / (C, D, H, W)."""
    return _feature_dropout(input, p, training, generator, 3, "dropout3d")
