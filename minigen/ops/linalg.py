"""Linear algebra: matmul with batching and broadcasting (NumPy ``@`` semantics, as PyTorch)."""
from __future__ import annotations

from ..autograd.function import Function
from ..errors import ShapeError
from ..tensor import Tensor
from .shape import reshape, sum_to, transpose

__all__ = ["matmul"]


class MatMul(Function):
    """y = a @ b  (batched over leading dims, broadcast).

    da = sum_to(g @ b^T, a.shape),   db = sum_to(a^T @ g, b.shape)
    (1-d operands are promoted to matrices for the formula and squeezed back).
    """

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(f"matmul: both arguments need at least 1 dimension, got shapes {tuple(a.shape)} "
                             f"and {tuple(b.shape)}")
        ka = a.shape[-1]
        kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if ka != kb:
            raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                             f"({ka} != {kb})")
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        a2 = reshape(a, (1,) + a.shape) if a.ndim == 1 else a
        b2 = reshape(b, b.shape + (1,)) if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = reshape(g2, g2.shape[:-1] + (1,) + g2.shape[-1:]) if b.ndim > 1 else reshape(g2, g2.shape + (1,))
        if b.ndim == 1:
            g2 = reshape(g2, g2.shape + (1,))
        ga = gb = None
        if ctx.next_nodes[0] is not None:
            ga = MatMul.apply(g2, transpose(b2, -1, -2))
            ga = reshape(sum_to(ga, a2.shape), a.shape)
        if ctx.next_nodes[1] is not None:
            if b2.ndim == 2 and a2.ndim > 2:
                # shared 2-d weight: one (k, B*n) @ (B*n, m) product instead of a batched one then a sum
                k, m = b2.shape
                gb = MatMul.apply(transpose(reshape(a2, (-1, k)), 0, 1), reshape(g2, (-1, m)))
            else:
                gb = sum_to(MatMul.apply(transpose(a2, -1, -2), g2), b2.shape)
            gb = reshape(gb, b.shape)
        return ga, gb


def matmul(a, b):
    return MatMul.apply(a, b)


