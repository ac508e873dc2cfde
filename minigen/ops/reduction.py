"""Reductions: sum, mean, var/std, prod, max/min (values + indices), amax/amin, argmax/argmin, logsumexp,
norm, cumsum/cumprod, all/any, count_nonzero, aminmax.

``dim`` is an int, a tuple of ints or None (all dims) where PyTorch allows it;
``keepdim`` keeps the reduced dims with size 1. Backward of a reduction first
broadcasts the incoming gradient ``g`` back over the reduced dims (``G`` below =
g broadcast to the input's shape, :func:`expand_reduced`), then applies the local derivative.

Tie and kink conventions (as PyTorch):
- ``max()``/``min()`` without dim, ``amax``/``amin`` and ``norm(p=inf)``: the gradient is split
  evenly among all elements equal to the extreme value;
- ``max(dim)``/``min(dim)``: the gradient goes only to the returned index (the first extreme);
- ``norm(p=2)`` at x = 0: gradient 0; ``prod`` with zeros: exact (product of the *other* elements).
"""
from __future__ import annotations

import builtins
import math
from collections import namedtuple

import numpy as np

from ..argcheck import (check_float, norm_dim, norm_dims, check_dtype, check_flag, check_number,
                        check_tensor)
from ..autograd.function import Function, NonDifferentiable
from ..backend import get_array_module
from ..errors import DTypeError, InvalidArgumentError
from ..tensor import Tensor, get_default_dtype
from .pointwise import abs as _abs, maximum, minimum, sqrt
from .shape import reshape, transpose

__all__ = ["sum", "mean", "var", "std", "var_mean", "std_mean", "prod", "max", "min", "amax",
           "amin", "argmax", "argmin", "aminmax", "logsumexp", "norm", "cumsum", "cumprod", "all", "any",
           "count_nonzero"]

# the result types of max/min/aminmax with a dim, like torch.return_types
max_result = namedtuple("max", ["values", "indices"])
min_result = namedtuple("min", ["values", "indices"])
aminmax_result = namedtuple("aminmax", ["min", "max"])


# ------------------------------------------------------------------ helpers
def _tensor(x, op, name="input"):
    """``x`` when it is a Tensor, else argcheck.check_tensor's DTypeError (the common case costs one isinstance)."""
    return x if isinstance(x, Tensor) else check_tensor(x, op, name)


def _flag(v, op, name):
    """True/False as given, else argcheck.check_flag's reading of it."""
    return v if v is True or v is False else check_flag(v, op, name)


def _dims(dim, ndim):
    """Normalised reduction dims; a 0-d tensor accepts dim 0 / -1 but has no axis to reduce."""
    dims = norm_dims(dim, ndim)
    return dims if ndim > 0 else ()


def _all_if_empty(dim):
    """amax/amin's ``dim=()`` means every dim (None); anything else goes to the dim check as given."""
    return None if isinstance(dim, (tuple, list)) and len(dim) == 0 else dim


def _count(shape, dims):
    n = 1
    for d in dims:
        n *= shape[d]
    return n


def _keep_shape(shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _const(arr):
    """A constant (no-grad) tensor around an array computed in forward (a mask, a slope map, ...).
    NumPy turns 0-d results into scalars; asarray makes them arrays again."""
    return Tensor._make(get_array_module(arr).asarray(arr))


def cast_dtype(x, dtype, op):
    """``x.to(dtype)`` when a dtype is given (a clear DTypeError for anything that is not a real dtype)."""
    return x if dtype is None else x.to(check_dtype(dtype, op))


def _expand(g, ctx):
    """g broadcast back to the input shape (re-inserting reduced dims when keepdim=False)."""
    return expand_reduced(g, ctx.in_shape, ctx.dims, ctx.keepdim)


def _keep(y, in_shape, dims, keepdim):
    """A reduced value reshaped with the reduced dims kept (for broadcasting against the input)."""
    if keepdim:
        return y
    return reshape(y, _keep_shape(in_shape, dims))


def _require_float(x, op):
    _tensor(x, op)
    check_float(x, op)


# ------------------------------------------------------------------ sum / mean
class ExpandReduced(Function):
    """y = a reduced tensor g broadcast back to ``in_shape`` (re-inserting the reduced dims).
    dg = sum of the incoming gradient over ``dims`` (keepdim as given)."""

    reads = ()

    @staticmethod
    def forward(ctx, g, in_shape, dims, keepdim):
        ctx.dims, ctx.keepdim = dims, keepdim
        return _expand_array(g, in_shape, dims, keepdim)

    @staticmethod
    def backward(ctx, gg):
        return Sum.apply(gg, ctx.dims, ctx.keepdim), None, None, None


def _expand_array(g, in_shape, dims, keepdim):
    """ExpandReduced's forward on arrays (read-only where it is a broadcast view)."""
    xp = get_array_module(g)
    if g.size == 1 and len(dims) == len(in_shape):  # full reduction: a filled array is cheaper
        if xp is not np:
            return xp.full(in_shape, g.reshape(()), dtype=g.dtype)
        out = np.empty(in_shape, dtype=g.dtype)
        out.fill(g.reshape(()))
        return out
    if not keepdim:
        g = g.reshape(_keep_shape(in_shape, dims))
    return xp.broadcast_to(g, in_shape)


def expand_reduced(g, in_shape, dims, keepdim):
    """Broadcast a reduced gradient back to ``in_shape`` (differentiable)."""
    return ExpandReduced.apply(g, in_shape, dims, keepdim)


class Sum(Function):
    """y = sum_{i in dims} x_i.   dx = G (g broadcast over the summed dims)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        return x.sum(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        return _expand(g, ctx), None, None

    @staticmethod
    def fast_backward(ctx, g):  # first order: the broadcast on arrays, no node for it
        return _expand_array(g, ctx.in_shape, ctx.dims, ctx.keepdim), None, None


class Mean(Function):
    """y = (1/N) sum_{i in dims} x_i.   dx = G / N."""

    reads = ()

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        n = _count(x.shape, dims)
        ctx.n = n
        return x.mean(axis=dims, keepdims=keepdim) if n else x.sum(axis=dims, keepdims=keepdim) * float("nan")

    @staticmethod
    def backward(ctx, g):
        return expand_reduced(g * (1.0 / builtins.max(ctx.n, 1)), ctx.in_shape, ctx.dims, ctx.keepdim), None, None

    @staticmethod
    def fast_backward(ctx, g):  # first order: the same on arrays, no nodes for it
        return _expand_array(g * (1.0 / builtins.max(ctx.n, 1)), ctx.in_shape, ctx.dims, ctx.keepdim), None, None


def sum(x, dim=None, keepdim=False, dtype=None):
    """Sum over ``dim`` (int, tuple or None = all). Integer/bool tensors give int64, as PyTorch."""
    _tensor(x, "sum")
    if dtype is not None:
        x = cast_dtype(x, dtype, "sum")
    elif x.dtype.kind in "biu":
        x = x.to(np.int64)
    return Sum.apply(x, norm_dims(dim, x.ndim), _flag(keepdim, "sum", "keepdim"))


def mean(x, dim=None, keepdim=False, dtype=None):
    """Mean over ``dim`` (floating point tensors; pass dtype= to average integers)."""
    _tensor(x, "mean")
    x = cast_dtype(x, dtype, "mean")
    if x.dtype.kind not in "fc":
        raise DTypeError(f"mean expects a floating point tensor, got dtype {x.dtype} (use .float() first)")
    return Mean.apply(x, norm_dims(dim, x.ndim), _flag(keepdim, "mean", "keepdim"))


# ------------------------------------------------------------------ var / std
class Var(Function):
    """y = sum_i (x_i - mean(x))^2 / max(N - correction, 0)   over ``dims`` (N elements reduced).

    dx = G * 2 (x - mean(x)) / (N - correction)
    """

    @staticmethod
    def forward(ctx, x, dims, correction, keepdim):
        xp = get_array_module(x)
        n = _count(x.shape, dims)
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        ctx.denom = builtins.max(n - correction, 0)
        d = x - x.mean(axis=dims, keepdims=True) if n else x
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.asarray((d * d).sum(axis=dims, keepdims=keepdim) / x.dtype.type(ctx.denom))

    @staticmethod
    def backward(ctx, g):
        x = ctx.args[0]
        centered = x - x.mean(ctx.dims, keepdim=True) if ctx.dims else x * 0
        scale = 2.0 / ctx.denom if ctx.denom else math.inf
        return _expand(g, ctx) * centered * scale, None, None, None


def _var_args(x, dim, unbiased, correction, keepdim, op):
    _require_float(x, op)
    if isinstance(dim, builtins.bool):  # legacy var(unbiased) overload
        unbiased, dim = dim, None
    if correction is not None and unbiased is not None:
        raise InvalidArgumentError(f"{op}: pass either unbiased= or correction=, not both")
    if correction is None:
        correction = 1 if unbiased is None or _flag(unbiased, op, "unbiased") else 0
    correction = check_number(correction, op, "correction")
    return _dims(dim, x.ndim), correction, _flag(keepdim, op, "keepdim")


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over ``dim`` with Bessel's correction by default (``correction=1``; ``unbiased=False`` -> 0)."""
    dims, c, keepdim = _var_args(x, dim, unbiased, correction, keepdim, "var")
    return Var.apply(x, dims, c, keepdim)


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """sqrt(var(x)) (composed, so its gradient is var's gradient / (2 std))."""
    return sqrt(var(x, dim, unbiased, keepdim, correction=correction))


def var_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over the same dims."""
    v = var(x, dim, unbiased, keepdim, correction=correction)
    return v, _mean(x, None if isinstance(dim, builtins.bool) else dim, keepdim)


def std_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over the same dims."""
    s = std(x, dim, unbiased, keepdim, correction=correction)
    return s, _mean(x, None if isinstance(dim, builtins.bool) else dim, keepdim)


def _mean(x, dim, keepdim):
    return Mean.apply(x, _dims(dim, x.ndim), bool(keepdim))


# ------------------------------------------------------------------ prod
def _prod_others_array(x, axis):
    """P_i = prod_{j != i} x_j along ``axis`` (exact with zeros): exclusive left * right cumulative products."""
    xp = get_array_module(x)
    m = xp.moveaxis(x, axis, -1)
    left = xp.ones_like(m)
    right = xp.ones_like(m)
    if m.shape[-1] > 1:
        left[..., 1:] = xp.cumprod(m, axis=-1)[..., :-1]
        right[..., :-1] = xp.cumprod(m[..., ::-1], axis=-1)[..., ::-1][..., 1:]
    return xp.moveaxis(left * right, -1, axis)


def _prod_others(x, axis):
    """P_i = prod_{j != i} x_j along ``axis``, as differentiable Tensor ops (exact with zeros).

    Builds B[..., i, j] = x_j for j != i and 1 on the diagonal, then P_i = prod_j B[..., i, j]
    (O(n^2) memory; used only for higher-order gradients of a product that contains zeros).
    """
    last = x.ndim - 1
    xl = transpose(x, axis, last) if axis != last else x
    n = xl.shape[-1]
    xp = get_array_module(x.array)
    eye = xp.eye(n, dtype=x.dtype)
    b = reshape(xl, xl.shape[:-1] + (1, n)) * _const(1 - eye) + _const(eye)
    p = Prod.apply(b, b.ndim - 1, False)
    return transpose(p, axis, last) if axis != last else p


class Prod(Function):
    """y = prod_i x_i   over ``dim`` (an int; None = all elements).

    dx_i = G * prod_{j != i} x_j   (= G * y / x_i when no x_j is 0; with zeros the product of the
    others is formed directly: one zero -> only that position gets a gradient, two or more -> all 0).
    """

    uses_output = True

    @staticmethod
    def forward(ctx, x, dim, keepdim):
        ctx.dim, ctx.keepdim, ctx.in_shape = dim, keepdim, x.shape
        ctx.has_zero = builtins.any(ctx.needs_input_grad) and bool((x == 0).any())
        if dim is None:
            return get_array_module(x).asarray(x.prod(keepdims=keepdim))
        return x.prod(axis=dim, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        x = ctx.args[0]
        dim = ctx.dim
        if x.ndim == 0:
            return g, None, None
        if dim is None:  # all elements: work on the flattened tensor
            flat = reshape(x, (x.array.size,))
            others = ctx.output / flat if not ctx.has_zero else _prod_others(flat, 0)
            return reshape(g, ()) * reshape(others, x.shape), None, None
        gx = expand_reduced(g, ctx.in_shape, (dim,), ctx.keepdim)
        others = _keep(ctx.output, ctx.in_shape, (dim,), ctx.keepdim) / x if not ctx.has_zero else _prod_others(x, dim)
        return gx * others, None, None

    @staticmethod
    def fast_backward(ctx, g):
        """The same gradient on arrays in O(n) memory: G * (exclusive left * right cumulative products),
        exact with zeros (the formula above builds an n x n matrix when x has zeros)."""
        x = ctx.args[0].array
        if x.ndim == 0:
            return g, None, None
        if ctx.dim is None:
            return g.reshape(()) * _prod_others_array(x.reshape(-1), 0).reshape(x.shape), None, None
        gx = g if ctx.keepdim else get_array_module(g).expand_dims(g, ctx.dim)
        return gx * _prod_others_array(x, ctx.dim), None, None


def prod(x, dim=None, keepdim=False, dtype=None):
    """Product of the elements (over one ``dim``, or all). Integer/bool tensors give int64, as PyTorch."""
    _tensor(x, "prod")
    keepdim = _flag(keepdim, "prod", "keepdim")
    if dtype is not None:
        x = cast_dtype(x, dtype, "prod")
    elif x.dtype.kind in "biu":
        x = x.to(np.dtype(np.int64))
    if isinstance(dim, (tuple, list)):
        raise InvalidArgumentError(f"prod: dim must be a single int or None, got {dim!r}")
    d = None if dim is None else norm_dim(dim, x.ndim)
    if d is not None and x.ndim == 0:
        d = None
    return Prod.apply(x, d, keepdim if d is not None else False)


# ------------------------------------------------------------------ max / min / amax / amin
class Extreme(Function):
    """y = max (``largest``) or min of x over ``dims``.

    ``indices=None`` (amax/amin, max()/min() with no dim): dx = G * [x == y] / (number of ties)
    -- the gradient is shared evenly among tied extremes.
    ``indices`` given (max(dim)/min(dim), keepdim-shaped argmax/argmin): dx = G * onehot(indices),
    the first extreme only.
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, dims, keepdim, largest, indices):
        xp = get_array_module(x)
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        y = (xp.max if largest else xp.min)(x, axis=dims, keepdims=True)
        if x.dtype.kind == "f" and builtins.any(ctx.needs_input_grad):
            if indices is None:  # share among ties (NaN counts as equal to a NaN extreme)
                hit = (x == y) | (xp.isnan(x) & xp.isnan(y))
                w = hit.astype(x.dtype)
                ctx.weights = w / w.sum(axis=dims, keepdims=True)
            else:  # one-hot at the given index along the single reduced dim
                if dims:
                    d = dims[0]
                    pos = xp.arange(x.shape[d]).reshape((-1,) + (1,) * (x.ndim - d - 1))
                    ctx.weights = (pos == indices).astype(x.dtype)
                else:
                    ctx.weights = xp.ones(x.shape, dtype=x.dtype)
        return y if keepdim else y.reshape(tuple(s for i, s in enumerate(x.shape) if i not in dims))

    @staticmethod
    def backward(ctx, g):
        return _expand(g, ctx) * _const(ctx.weights), None, None, None, None


def _extreme(x, dim, keepdim, largest, indices=None):
    dims = _dims(dim, x.ndim)
    if x.array.size == 0 and (not dims or _count(x.shape, dims) == 0):
        raise InvalidArgumentError(f"{'max' if largest else 'min'}: cannot reduce an empty tensor of shape "
                                   f"{tuple(x.shape)} over dim {dim} (the extreme of nothing is undefined)")
    return Extreme.apply(x, dims, keepdim, largest, indices)


def _max_min(x, dim, keepdim, largest, other):
    name = "max" if largest else "min"
    _tensor(x, name)
    keepdim = _flag(keepdim, name, "keepdim")
    if isinstance(dim, Tensor) or other is not None:  # torch.max(a, b) overload = maximum
        b = dim if isinstance(dim, Tensor) else other
        return (maximum if largest else minimum)(x, b)
    if dim is None:
        if keepdim:
            raise InvalidArgumentError(f"{name}: keepdim=True needs a dim")
        return _extreme(x, None, False, largest)
    if isinstance(dim, (tuple, list)):
        raise InvalidArgumentError(f"{name}: dim must be a single int (use amax/amin for several dims), got {dim!r}")
    d = norm_dim(dim, x.ndim)
    xp = get_array_module(x.array)
    if x.ndim == 0:
        idx = xp.zeros((), dtype=np.int64)
    elif x.array.size == 0:  # reduced dim non-empty (else _extreme raises): empty values and indices
        idx = xp.zeros(tuple(1 if i == d else n for i, n in enumerate(x.shape)), dtype=np.int64)
    else:
        idx = (xp.argmax if largest else xp.argmin)(x.array, axis=d, keepdims=True)
    values = _extreme(x, d, keepdim, largest, idx)
    if not keepdim:
        idx = idx.reshape(values.shape)
    return (max_result if largest else min_result)(values, _const(idx.astype(np.int64, copy=False)))


def max(x, dim=None, keepdim=False, *, other=None):
    """``max(x)``: the largest value (ties share the gradient); ``max(x, dim)``: (values, indices);
    ``max(x, y)`` with a tensor y: elementwise maximum."""
    return _max_min(x, dim, keepdim, True, other)


def min(x, dim=None, keepdim=False, *, other=None):
    """``min(x)``, ``min(x, dim)`` -> (values, indices), ``min(x, y)`` -> elementwise minimum."""
    return _max_min(x, dim, keepdim, False, other)


def amax(x, dim=(), keepdim=False):
    """Largest value over ``dim`` (int or tuple; () or None = all dims); ties share the gradient evenly."""
    _tensor(x, "amax")
    keepdim = _flag(keepdim, "amax", "keepdim")
    return _extreme(x, _all_if_empty(dim), keepdim, True)


def amin(x, dim=(), keepdim=False):
    _tensor(x, "amin")
    keepdim = _flag(keepdim, "amin", "keepdim")
    return _extreme(x, _all_if_empty(dim), keepdim, False)


def aminmax(x, *, dim=None, keepdim=False):
    """(min, max) over ``dim`` (None = all), both with the amin/amax gradient rule."""
    _tensor(x, "aminmax")
    return aminmax_result(amin(x, () if dim is None else dim, keepdim), amax(x, () if dim is None else dim, keepdim))


class ArgExtreme(NonDifferentiable):
    """Index of the first largest (smallest) element over ``dim`` (None = the flattened tensor). int64."""

    @staticmethod
    def forward(ctx, x, dim, keepdim, largest):
        xp = get_array_module(x)
        fn = xp.argmax if largest else xp.argmin
        if x.size == 0:
            raise InvalidArgumentError(f"{'argmax' if largest else 'argmin'}: empty tensor of shape {x.shape}")
        if x.ndim == 0:
            return xp.zeros((), dtype=np.int64)
        return fn(x, axis=dim, keepdims=keepdim).astype(np.int64, copy=False)


def argmax(x, dim=None, keepdim=False):
    _tensor(x, "argmax")
    keepdim = _flag(keepdim, "argmax", "keepdim")
    return ArgExtreme.apply(x, None if dim is None else norm_dim(dim, x.ndim), keepdim, True)


def argmin(x, dim=None, keepdim=False):
    _tensor(x, "argmin")
    keepdim = _flag(keepdim, "argmin", "keepdim")
    return ArgExtreme.apply(x, None if dim is None else norm_dim(dim, x.ndim), keepdim, False)


# ------------------------------------------------------------------ logsumexp
class LogSumExp(Function):
    """y = m + log(sum_i exp(x_i - m)),  m = max_i x_i (taken as 0 where infinite)   over ``dims``.

    dx = G * exp(x - y)   (the softmax of x over ``dims``).
    """

    uses_output = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        xp = get_array_module(x)
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        if x.size == 0:
            with np.errstate(divide="ignore"):
                return xp.log(x.sum(axis=dims, keepdims=keepdim) * 0)  # log(0) = -inf, as PyTorch
        m = x.max(axis=dims, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        with np.errstate(divide="ignore"):
            y = xp.log(xp.exp(x - m).sum(axis=dims, keepdims=True)) + m
        return y if keepdim else y.reshape(tuple(s for i, s in enumerate(x.shape) if i not in dims))

    @staticmethod
    def backward(ctx, g):
        x = ctx.args[0]
        y = _keep(ctx.output, ctx.in_shape, ctx.dims, ctx.keepdim)
        return _expand(g, ctx) * (x - y).exp(), None, None


def logsumexp(x, dim=None, keepdim=False):
    """log(sum(exp(x))) over ``dim`` (int, tuple or None = all), without overflow."""
    _tensor(x, "logsumexp")
    keepdim = _flag(keepdim, "logsumexp", "keepdim")
    if x.dtype.kind in "biu":
        x = x.to(get_default_dtype())
    return LogSumExp.apply(x, _dims(dim, x.ndim), keepdim)


# ------------------------------------------------------------------ norm
class Norm(Function):
    """Vector p-norm over ``dims``:  y = (sum_i |x_i|^p)^(1/p).

    p = 2:    dx = G * x / y                      (0 where y = 0, as PyTorch)
    p = 1:    dx = G * sign(x)
    p = inf:  y = max|x|,  dx = G * sign(x) * [|x| = y] / (number of ties)   (-inf: min|x|, same rule)
    p = 0:    y = number of nonzero x_i,  dx = 0
    other p:  dx = G * sign(x) * |x|^(p-1) / y^(p-1)   (0 where y = 0)
    """

    uses_output = True

    @staticmethod
    def forward(ctx, x, p, dims, keepdim):
        xp = get_array_module(x)
        ctx.in_shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        a = xp.abs(x)
        ctx.sign = xp.sign(x)
        if p == 2:
            y = xp.sqrt((x * x).sum(axis=dims, keepdims=keepdim))
        elif p == 1:
            y = a.sum(axis=dims, keepdims=keepdim)
        elif p == math.inf or p == -math.inf:
            y = (a.max if p > 0 else a.min)(axis=dims, keepdims=True)
            hit = (a == y).astype(x.dtype)
            ctx.weights = ctx.sign * hit / hit.sum(axis=dims, keepdims=True)
            if not keepdim:
                y = y.reshape(tuple(s for i, s in enumerate(x.shape) if i not in dims))
        elif p == 0:
            y = (x != 0).sum(axis=dims, keepdims=keepdim).astype(x.dtype)
        else:
            with np.errstate(divide="ignore"):
                y = (a ** p).sum(axis=dims, keepdims=keepdim) ** (1.0 / p)
        return xp.asarray(y, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        x, p = ctx.args[0], ctx.args[1]
        G = _expand(g, ctx)
        if p == 0:
            return G * 0, None, None, None
        if p == 1:
            return G * _const(ctx.sign), None, None, None
        if p in (math.inf, -math.inf):
            return G * _const(ctx.weights), None, None, None
        y = _keep(ctx.output, ctx.in_shape, ctx.dims, ctx.keepdim)
        y_safe = y + _const((y.array == 0).astype(y.dtype))  # y = 0 only when x = 0 there: gradient 0
        if p == 2:
            return G * x / y_safe, None, None, None
        return G * _const(ctx.sign) * _abs(x) ** (p - 1) / y_safe ** (p - 1), None, None, None


def norm(x, p="fro", dim=None, keepdim=False, dtype=None):
    """``torch.norm``: the vector p-norm of x over ``dim`` (int, tuple or None = all elements).

    ``p``: 'fro' (= 2), any float including inf, -inf and 0.
    """
    _tensor(x, "norm")
    keepdim = _flag(keepdim, "norm", "keepdim")
    x = cast_dtype(x, dtype, "norm")
    _require_float(x, "norm")
    if isinstance(p, str):
        if p != "fro":
            raise InvalidArgumentError(f"norm: p={p!r} is not supported (use 'fro' or a number)")
        p = 2
    p = check_number(p, "norm", "p")
    if math.isnan(p):
        raise InvalidArgumentError("norm: p must not be NaN")
    if p < 0 and p != -math.inf:
        raise InvalidArgumentError(f"norm: p must be >= 0 (or -inf), got {p}")
    return Norm.apply(x, p, _dims(dim, x.ndim), keepdim)


# ------------------------------------------------------------------ cumsum / cumprod
class Cumsum(Function):
    """y_i = sum_{j <= i} x_j along ``dim``.   dx_i = sum_{j >= i} g_j (a reversed cumulative sum)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, dim, reverse):
        ctx.dim, ctx.reverse = dim, reverse
        if x.ndim == 0:
            return x.copy()
        if reverse:
            return get_array_module(x).flip(get_array_module(x).flip(x, dim).cumsum(axis=dim), dim)
        return x.cumsum(axis=dim)

    @staticmethod
    def backward(ctx, g):
        return Cumsum.apply(g, ctx.dim, not ctx.reverse), None, None


class Cumprod(Function):
    """y_i = prod_{j <= i} x_j along ``dim``.

    dx_k = sum_{i >= k} g_i * prod_{j <= i, j != k} x_j
    (no division by x_k, so zeros and tiny values are exact: an O(n^2) product formula of differentiable
    ops; ``fast_backward`` computes it by an O(n) backward scan on arrays).
    """

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        if x.ndim == 0:
            return x.copy()
        return x.cumprod(axis=dim)

    @staticmethod
    def backward(ctx, g):
        x = ctx.args[0]
        if x.ndim == 0:
            return g, None
        return _cumprod_grad_graph(x, g, ctx.dim), None

    @staticmethod
    def fast_backward(ctx, g):
        """The same gradient as a backward scan on arrays (O(n), not the n x n formula)."""
        x = ctx.args[0].array
        if x.ndim == 0:
            return g, None
        return _cumprod_grad_array(x, g, ctx.dim), None


def _cumprod_grad_array(x, g, axis):
    """dx_k = L_k * R_k with L_k = prod_{j<k} x_j and R_k = g_k + x_{k+1} R_{k+1} (a backward scan)."""
    xp = get_array_module(x)
    xm, gm = xp.moveaxis(x, axis, -1), xp.moveaxis(g, axis, -1)
    n = xm.shape[-1]
    left = xp.ones_like(xm)
    if n > 1:
        left[..., 1:] = xp.cumprod(xm, axis=-1)[..., :-1]
    r = xp.empty_like(gm)
    r[..., n - 1] = gm[..., n - 1]
    for k in range(n - 2, -1, -1):
        r[..., k] = gm[..., k] + xm[..., k + 1] * r[..., k + 1]
    return xp.moveaxis(left * r, -1, axis)


def _cumprod_grad_graph(x, g, axis):
    """The same gradient as differentiable ops (for create_graph): with B[k, j] = x_j (j != k), 1 (j == k),
    A = cumprod(B, j) gives A[k, i] = prod_{j <= i, j != k} x_j, and dx_k = sum_{i >= k} g_i A[k, i]."""
    last = x.ndim - 1
    xl = transpose(x, axis, last) if axis != last else x
    gl = transpose(g, axis, last) if axis != last else g
    n = xl.shape[-1]
    xp = get_array_module(x.array)
    eye = xp.eye(n, dtype=x.dtype)
    b = reshape(xl, xl.shape[:-1] + (1, n)) * _const(1 - eye) + _const(eye)
    a = Cumprod.apply(b, b.ndim - 1)
    upper = _const(xp.triu(xp.ones((n, n), dtype=x.dtype)))  # [i >= k]
    dx = Sum.apply(a * upper * reshape(gl, gl.shape[:-1] + (1, n)), (b.ndim - 1,), False)
    return transpose(dx, axis, last) if axis != last else dx


def cumsum(x, dim, dtype=None):
    _tensor(x, "cumsum")
    if dtype is not None:
        x = cast_dtype(x, dtype, "cumsum")
    elif x.dtype.kind in "biu":
        x = x.to(np.dtype(np.int64))
    return Cumsum.apply(x, norm_dim(dim, x.ndim), False)


def cumprod(x, dim, dtype=None):
    _tensor(x, "cumprod")
    if dtype is not None:
        x = cast_dtype(x, dtype, "cumprod")
    elif x.dtype.kind in "biu":
        x = x.to(np.dtype(np.int64))
    return Cumprod.apply(x, norm_dim(dim, x.ndim))


# ------------------------------------------------------------------ all / any / count_nonzero
class Truth(NonDifferentiable):
    """all / any / count_nonzero over ``dims`` (bool, bool, int64 results). No gradient."""

    @staticmethod
    def forward(ctx, x, dims, keepdim, op):
        xp = get_array_module(x)
        if op == "count_nonzero":
            return xp.asarray((x != 0).sum(axis=dims, keepdims=keepdim), dtype=np.int64)
        return xp.asarray(getattr(xp, op)(x != 0 if x.dtype.kind != "b" else x, axis=dims, keepdims=keepdim))


def all(x, dim=None, keepdim=False):
    _tensor(x, "all")
    keepdim = _flag(keepdim, "all", "keepdim")
    return Truth.apply(x, _dims(dim, x.ndim), keepdim, "all")


def any(x, dim=None, keepdim=False):
    _tensor(x, "any")
    keepdim = _flag(keepdim, "any", "keepdim")
    return Truth.apply(x, _dims(dim, x.ndim), keepdim, "any")


def count_nonzero(x, dim=None):
    _tensor(x, "count_nonzero")
    return Truth.apply(x, _dims(dim, x.ndim), False, "count_nonzero")
