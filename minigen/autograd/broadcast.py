"""Broadcasting and its inverse: the one place a gradient is summed back to its input's shape.

forward ``y = broadcast_to(x, shape)``   backward ``dx = sum_to(g, x.shape)``
forward ``y = sum_to(x, shape)``         backward ``dx = broadcast_to(g, x.shape)``

The engine calls :func:`sum_to` on any gradient whose shape is the broadcast of its
input's shape, so no op's backward undoes broadcasting itself.
"""
from __future__ import annotations

import builtins

from ..backend import get_array_module
from ..errors import ShapeError
from .function import Function


def _sum_to_array(xp, g, shape):
    """Sum array ``g`` down to ``shape`` (the inverse of broadcasting ``shape`` to g.shape)."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if lead:
        g = g.reshape(shape)
    return g


class SumTo(Function):
    """y = sum of x over broadcast dims so that y.shape == shape.   dx = broadcast_to(g, x.shape)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return _sum_to_array(get_array_module(x), x, shape)

    @staticmethod
    def backward(ctx, g):
        return (broadcast_to(g, ctx.in_shape),)


class BroadcastTo(Function):
    """y = x broadcast to ``shape`` (NumPy rules).   dx = sum_to(g, x.shape)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        try:
            return get_array_module(x).broadcast_to(x, shape)
        except ValueError:
            raise ShapeError(f"cannot broadcast a tensor of shape {tuple(x.shape)} to shape {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        return (sum_to(g, ctx.in_shape),)


def sum_to(x, shape):
    """Reduce ``x`` by summation to ``shape`` (undo broadcasting); identity if shapes match."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return SumTo.apply(x, shape)


def broadcast_to(x, shape):
    shape = tuple(builtins.int(s) for s in shape)
    if x.shape == shape:
        return x
    return BroadcastTo.apply(x, shape)


