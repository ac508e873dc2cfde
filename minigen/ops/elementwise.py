"""Elementwise ops with NumPy broadcasting.

Every backward undoes broadcasting with :func:`sum_to` (sum the gradient over
the dimensions that were broadcast), which is itself differentiable.
Notation: ``g`` is the incoming gradient dL/dy.
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..autograd.grad_mode import STATE
from ..backend import get_array_module, move_array
from ..tensor import Tensor
from ..autograd.broadcast import _sum_to_array, sum_to

__all__ = ["add", "sub", "mul", "div", "true_divide", "neg", "pow", "exp", "log", "rsub"]


def _t(x, like=None):
    """Wrap array-likes as tensors; Python scalars stay scalars (they keep the tensor's dtype)."""
    if isinstance(x, Tensor) or isinstance(x, (int, float, bool)):
        return x
    if isinstance(x, np.ndarray) or hasattr(x, "__array__"):
        # a CuPy array stays a device array (np.asarray would need an implicit device-to-host copy)
        arr = x if get_array_module(x) is not np else np.asarray(x)
        if like is not None and arr.dtype.kind == "f" and like.dtype.kind == "f":
            arr = arr.astype(like.dtype)
        return Tensor._make(arr if like is None else move_array(arr, like.device))
    return x


def _st(g, x):
    """Gradient for argument ``x``: reduced to its shape, or None for a plain number."""
    return sum_to(g, x.shape) if isinstance(x, Tensor) else None


def _ast(xp, g, x):
    """Array fast path of ``_st`` (first-order backward, no graph recorded)."""
    if not isinstance(x, Tensor):
        return None
    if g.shape != x.array.shape:
        g = _sum_to_array(xp, g, x.array.shape)
    return Tensor._make(g)


# Fast paths: when backward runs without create_graph (STATE.enabled is False) the hottest ops
# compute their gradients directly on arrays, skipping per-op Tensor bookkeeping. The Tensor-op
# formula next to it is the definition (and what create_graph=True differentiates).


class Add(Function):
    """y = a + b.   da = sum_to(g, a.shape),  db = sum_to(g, b.shape)."""

    reads = ()

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        if not STATE.enabled:
            xp = get_array_module(g.array)
            return _ast(xp, g.array, a), _ast(xp, g.array, b)
        return _st(g, a), _st(g, b)


class Sub(Function):
    """y = a - b.   da = sum_to(g),  db = -sum_to(g)."""

    reads = ()

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        if not STATE.enabled:
            xp = get_array_module(g.array)
            return _ast(xp, g.array, a), (_ast(xp, -g.array, b) if isinstance(b, Tensor) else None)
        return _st(g, a), (_st(-g, b) if isinstance(b, Tensor) else None)


class Mul(Function):
    """y = a * b.   da = sum_to(g * b),  db = sum_to(g * a)."""

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        if not STATE.enabled:
            xp, gd = get_array_module(g.array), g.array
            ad = a.array if isinstance(a, Tensor) else a
            bd = b.array if isinstance(b, Tensor) else b
            return (_ast(xp, gd * bd, a) if ctx.next_nodes[0] is not None else None,
                    _ast(xp, gd * ad, b) if ctx.next_nodes[1] is not None else None)
        ga = _st(g * b, a) if ctx.next_nodes[0] is not None else None
        gb = _st(g * a, b) if ctx.next_nodes[1] is not None else None
        return ga, gb


class Div(Function):
    """y = a / b.   da = sum_to(g / b),  db = sum_to(-g * a / b^2)."""

    @staticmethod
    def forward(ctx, a, b):
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        if not STATE.enabled:
            xp, gd = get_array_module(g.array), g.array
            ad = a.array if isinstance(a, Tensor) else a
            bd = b.array if isinstance(b, Tensor) else b
            return (_ast(xp, gd / bd, a) if ctx.next_nodes[0] is not None else None,
                    _ast(xp, -gd * ad / (bd * bd), b) if ctx.next_nodes[1] is not None else None)
        ga = _st(g / b, a) if ctx.next_nodes[0] is not None else None
        gb = _st(-g * a / (b * b), b) if ctx.next_nodes[1] is not None else None
        return ga, gb


class Neg(Function):
    """y = -x.   dx = -g."""

    reads = ()

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return (-g,)


class Pow(Function):
    """y = a ** b.   da = g * b * a^(b-1),   db = g * a^b * log(a)  (only where a > 0 matters)."""

    @staticmethod
    def forward(ctx, a, b):
        return a ** b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        ga = gb = None
        if ctx.next_nodes[0] is not None:
            if isinstance(b, Tensor):
                ga = _st(g * b * a ** (b - 1), a)
            elif b == 0:
                ga = g * 0
            elif b == 1:
                ga = g
            elif b == 2:
                ga = g * (a * 2)
            else:
                ga = g * (b * a ** (b - 1))
        if ctx.next_nodes[1] is not None:
            y = a ** b
            la = log(a) if isinstance(a, Tensor) else float(np.log(a))
            gb = _st(g * y * la, b)
        return ga, gb


class Exp(Function):
    """y = exp(x).   dx = g * y."""

    reads = ()
    uses_output = True

    @staticmethod
    def forward(ctx, x):
        return get_array_module(x).exp(x)

    @staticmethod
    def backward(ctx, g):
        return (g * ctx.output,)


class Log(Function):
    """y = log(x).   dx = g / x."""

    @staticmethod
    def forward(ctx, x):
        return get_array_module(x).log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.args
        return (g / x,)


class Cast(Function):
    """y = x as another dtype.   dx = g cast back to x's dtype (no gradient into integer tensors)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.src = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return (g.to(ctx.src),)


class ToDevice(Function):
    """y = x copied to another device.   dx = g copied back."""

    reads = ()

    @staticmethod
    def forward(ctx, x, device):
        from ..backend import device_of_array

        ctx.src = device_of_array(x)
        return move_array(x, device)

    @staticmethod
    def backward(ctx, g):
        return (g.to(ctx.src),)

    @classmethod
    def apply(cls, x, device):
        # the one op whose output lives on another device than its input
        from ..autograd.grad_mode import STATE

        out = Tensor._make(cls.forward(ctx := _Ctx(), x.array, device), False)
        if STATE.enabled and x.requires_grad:
            from ..autograd.function import Context

            c = Context()
            c.fn, c.args, c.src = cls, (x, device), ctx.src
            c.next_nodes = ((x._ctx if x._ctx is not None else x), None)
            c.versions = (0, 0)
            out.requires_grad, out._ctx = True, c
        return out


class _Ctx:
    pass


# ------------------------------------------------------------------ functional
def add(a, b, alpha=1):
    """a + alpha * b"""
    if alpha != 1:
        b = mul(b, alpha)
    if not isinstance(a, Tensor):
        return Add.apply(_t(a, b), b)
    return Add.apply(a, _t(b, a))


def sub(a, b, alpha=1):
    if alpha != 1:
        b = mul(b, alpha)
    if not isinstance(a, Tensor):
        return Sub.apply(_t(a, b), b)
    return Sub.apply(a, _t(b, a))


def rsub(a, b):
    return sub(b, a)


def mul(a, b):
    if not isinstance(a, Tensor):
        return Mul.apply(_t(a, b), b)
    return Mul.apply(a, _t(b, a))


def div(a, b, rounding_mode=None):
    if rounding_mode is not None:
        from .pointwise import floor_divide

        return floor_divide(a, b) if rounding_mode == "floor" else (a / b).trunc()
    if not isinstance(a, Tensor):
        a = _t(a, b)
        if not isinstance(a, Tensor):
            a = Tensor._make(get_array_module(b.array).asarray(a, dtype=b.dtype if b.dtype.kind == "f" else None))
    else:
        b = _t(b, a)
    if a.dtype.kind in "iub" and (not isinstance(b, Tensor) or b.dtype.kind in "iub"):
        # true division of integers gives the default float dtype (as PyTorch)
        from ..tensor import get_default_dtype

        a = a.to(get_default_dtype())
        if isinstance(b, Tensor):
            b = b.to(get_default_dtype())
    return Div.apply(a, b)


true_divide = div


def neg(x):
    return Neg.apply(x)


def pow(a, b):
    if not isinstance(a, Tensor):
        return Pow.apply(_t(a, b), b)
    return Pow.apply(a, _t(b, a))


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


# ------------------------------------------------------------------ operators

