"""Reductions over ``dim`` (int, tuple or None) with ``keepdim``.

Backward of a reduction broadcasts the gradient back over the reduced dims
(re-inserting them first when ``keepdim=False``).
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..autograd.grad_mode import STATE
from ..backend import get_array_module
from ..tensor import Tensor
from ..argcheck import norm_dims
from .shape import broadcast_to, reshape

__all__ = ["sum", "mean"]


def _keep_shape(shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


class ExpandReduced(Function):
    """y = broadcast of a reduced tensor g back to ``in_shape`` (re-inserting the reduced dims).
    dg = sum of the incoming gradient over ``dims`` (keepdim as given)."""

    reads = ()

    @staticmethod
    def forward(ctx, g, in_shape, dims, keepdim):
        ctx.dims, ctx.keepdim = dims, keepdim
        xp = get_array_module(g)
        if g.size == 1 and len(dims) == len(in_shape):  # full reduction: a filled array is cheaper
            return xp.full(in_shape, g.reshape(()), dtype=g.dtype)
        if not keepdim:
            g = g.reshape(_keep_shape(in_shape, dims))
        return xp.broadcast_to(g, in_shape)

    @staticmethod
    def backward(ctx, gg):
        return (Sum.apply(gg, ctx.dims, ctx.keepdim),)


def expand_reduced(g, in_shape, dims, keepdim):
    """Broadcast a reduced gradient back to ``in_shape`` (differentiable)."""
    return ExpandReduced.apply(g, in_shape, dims, keepdim)


class Sum(Function):
    """y = sum_{i in dims} x_i.   dx = broadcast(g) over the summed dims."""

    reads = ()

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        return x.sum(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        if not STATE.enabled:  # array fast path (first-order backward)
            return (Tensor._make(ExpandReduced.forward(ctx, g.array, ctx.in_shape, ctx.dims, ctx.keepdim)),)
        return (expand_reduced(g, ctx.in_shape, ctx.dims, ctx.keepdim),)


class Mean(Function):
    """y = (1/N) sum_{i in dims} x_i.   dx = broadcast(g) / N."""

    reads = ()

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        n = 1
        for d in dims:
            n *= x.shape[d]
        ctx.n = n
        return x.mean(axis=dims, keepdims=keepdim) if n else x.sum(axis=dims, keepdims=keepdim) * float("nan")

    @staticmethod
    def backward(ctx, g):
        if not STATE.enabled:  # array fast path (first-order backward)
            gd = g.array / max(ctx.n, 1)
            return (Tensor._make(ExpandReduced.forward(ctx, gd, ctx.in_shape, ctx.dims, ctx.keepdim)),)
        return (expand_reduced(g, ctx.in_shape, ctx.dims, ctx.keepdim) / max(ctx.n, 1),)


def sum(x, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    elif x.dtype.kind in "biu":
        x = x.to(np.int64)
    return Sum.apply(x, norm_dims(dim, x.ndim), keepdim)


def mean(x, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype.kind not in "fc":
        from ..errors import DTypeError

        raise DTypeError(f"mean expects a floating point tensor, got dtype {x.dtype} (use .float() first)")
    return Mean.apply(x, norm_dims(dim, x.ndim), keepdim)


