"""Activation functions: softmax family, sigmoid/tanh, the ReLU family, GELU, SiLU, softplus, ...

Each op is a :class:`Function` whose forward works on arrays (NumPy or CuPy via
``xp``) and whose backward is written with differentiable Tensor ops, so
``create_graph=True`` gives second derivatives (WGAN-GP's gradient penalty).
Notation: ``g`` is the incoming gradient dL/dy, ``y`` the op's output.

Kink conventions follow PyTorch exactly (the derivative chosen at the kink):
relu'(0) = 0, leaky_relu'(0) = negative_slope, elu'(0) = alpha,
hardtanh'(min_val) = hardtanh'(max_val) = 0 (so relu6'(0) = relu6'(6) = 0).
"""
from __future__ import annotations

import math

from ..argcheck import check_float, norm_dim, check_dtype, check_flag, check_number, check_tensor
from ..autograd.function import Function
from ..backend import get_array_module
from ..errors import InvalidArgumentError
from ..kernels import dispatch
from ..tensor import Tensor
from .pointwise import abs as _abs, erf, erf_array
from .reduction import Sum

__all__ = ["softmax", "log_softmax", "softmin", "sigmoid", "tanh", "relu", "relu6", "leaky_relu", "elu", "selu",
           "celu", "gelu", "silu", "swish", "mish", "softplus", "logsigmoid", "hardtanh", "hardsigmoid",
           "hardswish", "softsign", "tanhshrink", "threshold", "glu"]


# ------------------------------------------------------------------ helpers
def _tensor(x, op, name="input"):
    """``x`` when it is a Tensor, else argcheck.check_tensor's DTypeError (the common case costs one isinstance)."""
    return x if isinstance(x, Tensor) else check_tensor(x, op, name)


def _flag(v, op, name):
    """True/False as given, else argcheck.check_flag's reading of it."""
    return v if v is True or v is False else check_flag(v, op, name)


def _axis(ndim, dim):
    """Array axis for a normalised ``dim`` (a 0-d tensor has no axis: reduce over 'all' = itself)."""
    return dim if ndim > 0 else None


def _sum_keep(t, dim):
    """Differentiable sum over one dim with keepdim=True (a 0-d tensor sums over nothing)."""
    return Sum.apply(t, (dim,) if t.ndim > 0 else (), True)


def _const(arr):
    """A constant (no-grad) tensor around an array computed in forward (a mask, a slope map, ...).
    NumPy turns 0-d results into scalars; asarray makes them arrays again."""
    return Tensor._make(get_array_module(arr).asarray(arr))


def _float_input(x, op):
    _tensor(x, op)
    check_float(x, op)


def _maybe_inplace(x, inplace, op, compute):
    """``compute(x)``, or written back into x's storage when ``inplace`` (PyTorch's inplace=True)."""
    if _flag(inplace, op, "inplace"):
        return x._inplace(compute)
    return compute(x)


def _stable_sigmoid(xp, x):
    """1 / (1 + exp(-x)) without overflow: exp is only ever taken of -|x| <= 0."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _softplus_array(xp, z):
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))   (stable for any z)."""
    return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))


# ------------------------------------------------------------------ softmax family
class Softmax(Function):
    """y_i = exp(x_i - m) / sum_j exp(x_j - m),  m = max_j x_j   (over ``dim``; m cancels, it only avoids overflow).

    dx = y * (g - sum(g * y, dim))
    """

    reads = ()
    uses_output = True

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        xp = get_array_module(x)
        if x.size == 0:
            return x.copy()
        if dim == x.ndim - 1 and (k := dispatch.get("softmax_forward", x)) is not None:
            return k(x)  # fused kernel over the last dim (same formula)
        ax = _axis(x.ndim, dim)
        e = xp.exp(x - x.max(axis=ax, keepdims=True))
        return e / e.sum(axis=ax, keepdims=True)

    @staticmethod
    def backward(ctx, g):
        y = ctx.output
        return y * (g - _sum_keep(g * y, ctx.dim)), None

    @staticmethod
    def fast_backward(ctx, g):
        """The formula above in one fused pass over the last dim (kernels/cpu_softmax.py)."""
        y = ctx.output.array
        if ctx.dim != y.ndim - 1 or (k := dispatch.get("softmax_backward", y, g)) is None:
            return NotImplemented
        return k(y, g), None


class LogSoftmax(Function):
    """y_i = x_i - m - log(sum_j exp(x_j - m)),  m = max_j x_j   (over ``dim``).

    dx = g - exp(y) * sum(g, dim)
    """

    reads = ()
    uses_output = True

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        xp = get_array_module(x)
        if x.size == 0:
            return x.copy()
        if dim == x.ndim - 1 and (k := dispatch.get("log_softmax_forward", x)) is not None:
            return k(x)
        ax = _axis(x.ndim, dim)
        s = x - x.max(axis=ax, keepdims=True)
        return s - xp.log(xp.exp(s).sum(axis=ax, keepdims=True))

    @staticmethod
    def backward(ctx, g):
        y = ctx.output
        return g - y.exp() * _sum_keep(g, ctx.dim), None

    @staticmethod
    def fast_backward(ctx, g):
        """The formula above in one fused pass over the last dim (kernels/cpu_softmax.py)."""
        y = ctx.output.array
        if ctx.dim != y.ndim - 1 or (k := dispatch.get("log_softmax_backward", y, g)) is None:
            return NotImplemented
        return k(y, g), None


def _softmax_args(x, dim, dtype, op):
    _tensor(x, op)
    if dim is None:
        raise InvalidArgumentError(f"{op}: pass dim= explicitly (the dimension to normalise over), "
                                   f"input shape {tuple(x.shape)}")
    if dtype is not None:
        x = x.to(check_dtype(dtype, op))
    _float_input(x, op)
    return x, norm_dim(dim, x.ndim)


def softmax(x, dim=None, dtype=None):
    """Softmax over ``dim`` (values in (0, 1) summing to 1 along ``dim``)."""
    x, d = _softmax_args(x, dim, dtype, "softmax")
    return Softmax.apply(x, d)


def log_softmax(x, dim=None, dtype=None):
    """log(softmax(x, dim)), computed stably."""
    x, d = _softmax_args(x, dim, dtype, "log_softmax")
    return LogSoftmax.apply(x, d)


def softmin(x, dim=None, dtype=None):
    """softmax(-x, dim)."""
    x, d = _softmax_args(x, dim, dtype, "softmin")
    return Softmax.apply(-x, d)


# ------------------------------------------------------------------ sigmoid / tanh
class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)).   dx = g * y * (1 - y)."""

    reads = ()
    uses_output = True

    @staticmethod
    def forward(ctx, x):
        if (k := dispatch.get("sigmoid_forward", x)) is not None:
            return k(x)
        return _stable_sigmoid(get_array_module(x), x)

    @staticmethod
    def backward(ctx, g):
        y = ctx.output
        return (g * y * (1 - y),)

    @staticmethod
    def fast_backward(ctx, g):
        """The formula above in one fused pass (kernels/cpu_activation.py)."""
        y = ctx.output.array
        if (k := dispatch.get("sigmoid_backward", y, g)) is None:
            return NotImplemented
        return (k(y, g),)


class Tanh(Function):
    """y = tanh(x).   dx = g * (1 - y^2)."""

    reads = ()
    uses_output = True

    @staticmethod
    def forward(ctx, x):
        return get_array_module(x).tanh(x)

    @staticmethod
    def backward(ctx, g):
        y = ctx.output
        return (g * (1 - y * y),)


def sigmoid(x):
    _float_input(x, "sigmoid")
    return Sigmoid.apply(x)


def tanh(x):
    _float_input(x, "tanh")
    return Tanh.apply(x)


# ------------------------------------------------------------------ piecewise-linear family
class MaskedLinear(Function):
    """y = x * s(x) where s is piecewise constant (relu, leaky_relu, hardtanh, threshold...).

    The forward computes the output and the local slope map ``s`` (a constant array);
    dx = g * s.  (The slope at a kink is the PyTorch convention, chosen by the caller.)
    The comparisons are PyTorch's, so a NaN input gives a NaN output (relu(nan) = nan, not 0) and
    takes the gradient (slope 1; leaky_relu: negative_slope).
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, kind, a, b):
        xp = get_array_module(x)
        dt = x.dtype
        if kind in ("relu", "leaky") and (k := dispatch.get("masked_linear_forward", x)) is not None:
            y, ctx.slope = k(x, 0.0 if kind == "relu" else a, kind == "leaky")  # one fused pass
            return y
        if kind == "relu":  # y = 0 where x <= 0, else x (NaN stays NaN)
            off = x <= 0
            slope = ~off
            y = xp.where(off, 0, x).astype(dt, copy=False)
        elif kind == "leaky":  # a = negative_slope
            pos = x > 0
            slope = xp.where(pos, 1, a).astype(dt)
            y = xp.where(pos, x, x * a).astype(dt, copy=False)
        elif kind == "hardtanh":  # a = min_val, b = max_val; np.clip keeps NaN
            slope = ~((x <= a) | (x >= b))
            y = xp.clip(x, a, b).astype(dt, copy=False)
        elif kind == "threshold":  # a = threshold, b = value
            off = x <= a
            slope = ~off
            y = xp.where(off, b, x).astype(dt, copy=False)
        else:  # pragma: no cover - internal
            raise InvalidArgumentError(f"unknown kind {kind}")
        if any(ctx.needs_input_grad):
            ctx.slope = slope.astype(dt, copy=False)
        return y

    @staticmethod
    def backward(ctx, g):
        return g * _const(ctx.slope), None, None, None


def relu(x, inplace=False):
    """y = max(x, 0).   dx = g * [x > 0]   (relu'(0) = 0)."""
    _tensor(x, "relu")
    return _maybe_inplace(x, inplace, "relu", lambda a: MaskedLinear.apply(a, "relu", None, None))


def leaky_relu(x, negative_slope=0.01, inplace=False):
    """y = x if x > 0 else negative_slope * x.   dx = g * (1 if x > 0 else negative_slope)."""
    _float_input(x, "leaky_relu")
    slope = check_number(negative_slope, "leaky_relu", "negative_slope")
    return _maybe_inplace(x, inplace, "leaky_relu", lambda a: MaskedLinear.apply(a, "leaky", slope, None))


def hardtanh(x, min_val=-1.0, max_val=1.0, inplace=False):
    """y = clip(x, min_val, max_val).   dx = g * [min_val < x < max_val]  (0 at both kinks, as PyTorch)."""
    _tensor(x, "hardtanh")
    lo, hi = check_number(min_val, "hardtanh", "min_val"), check_number(max_val, "hardtanh", "max_val")
    if lo > hi:
        raise InvalidArgumentError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return _maybe_inplace(x, inplace, "hardtanh", lambda a: MaskedLinear.apply(a, "hardtanh", lo, hi))


def relu6(x, inplace=False):
    """y = min(max(x, 0), 6) = hardtanh(x, 0, 6)."""
    return hardtanh(x, 0.0, 6.0, inplace)


def threshold(x, threshold, value, inplace=False):
    """y = x if x > threshold else value.   dx = g * [x > threshold]."""
    _tensor(x, "threshold")
    t, v = check_number(threshold, "threshold", "threshold"), check_number(value, "threshold", "value")
    return _maybe_inplace(x, inplace, "threshold", lambda a: MaskedLinear.apply(a, "threshold", t, v))


# ------------------------------------------------------------------ smooth activations
class ELU(Function):
    """y = scale * (x if x > 0 else alpha * (exp(x / c) - 1)),  c = alpha for CELU, 1 for ELU and SELU.

    dx = g * (scale if x > 0 else scale * alpha * exp(x / c) / c),  written with the output as
    dx = g * (scale if x > 0 else (y + scale * alpha) / c)   (no exp of a large positive x),
    the x <= 0 branch taken at 0 as PyTorch: elu'(0) = alpha.
    """

    reads = ()
    uses_output = True

    @staticmethod
    def forward(ctx, x, alpha, scale, celu):
        xp = get_array_module(x)
        if ctx.needs_input_grad[0]:
            ctx.pos = (~(x <= 0)).astype(x.dtype)  # NaN takes the linear branch's slope, as PyTorch
        inner = x / alpha if celu else x
        neg = alpha * xp.expm1(xp.minimum(inner, 0))
        return (scale * xp.where(x > 0, x, neg)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        _, alpha, scale, celu = ctx.args
        y = ctx.output
        pos = _const(ctx.pos)
        neg_slope = (y + scale * alpha) * (1.0 / alpha if celu else 1.0)
        return g * (pos * scale + (1 - pos) * neg_slope), None, None, None


def elu(x, alpha=1.0, inplace=False):
    _float_input(x, "elu")
    alpha = check_number(alpha, "elu", "alpha")
    return _maybe_inplace(x, inplace, "elu", lambda a: ELU.apply(a, alpha, 1.0, False))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x, inplace=False):
    """y = scale * elu(x, alpha) with the self-normalising constants (alpha ~ 1.6733, scale ~ 1.0507)."""
    _float_input(x, "selu")
    return _maybe_inplace(x, inplace, "selu", lambda a: ELU.apply(a, _SELU_ALPHA, _SELU_SCALE, False))


def celu(x, alpha=1.0, inplace=False):
    """y = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    _float_input(x, "celu")
    alpha = check_number(alpha, "celu", "alpha")
    if alpha == 0:
        raise InvalidArgumentError("celu: alpha must be nonzero")
    return _maybe_inplace(x, inplace, "celu", lambda a: ELU.apply(a, alpha, 1.0, True))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


class GELU(Function):
    """Gaussian error linear unit.

    exact ('none'):  y = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
                     dx = g * (Phi(x) + x * phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    'tanh':          y = x/2 * (1 + tanh(u)),  u = sqrt(2/pi) * (x + 0.044715 x^3)
                     (computed as x * sigmoid(2u), the same value without cancellation for u << 0)
                     dx = g * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3*0.044715 x^2)),  t = tanh(u)

    Infinities (a deliberate difference from PyTorch): gelu(+inf) = +inf in both forms (the limit of
    x * Phi(x); PyTorch's exact form gives NaN), gelu(-inf) = NaN in both libraries (-inf * 0).
    """

    @staticmethod
    def forward(ctx, x, approximate):
        xp = get_array_module(x)
        if (approximate == "none" and any(ctx.needs_input_grad)
                and (k := dispatch.get("gelu_forward_grad", x)) is not None):
            y, ctx.dydx = k(x)  # gelu'(x) from the same CDF evaluation, for fast_backward
            return y
        if (k := dispatch.get("gelu_forward", x)) is not None:
            return k(x, approximate)
        if approximate == "tanh":
            # (1 + tanh(u)) / 2 == sigmoid(2u): the same value without cancellation for u << 0
            u = _SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)
            return (x * _stable_sigmoid(xp, 2 * u)).astype(x.dtype, copy=False)
        return (0.5 * x * (1 + erf_array(x * _INV_SQRT_2))).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, approximate = ctx.args
        if approximate == "tanh":
            # with s = sigmoid(2u) = (1 + t)/2:  0.5 (1 - t^2) = 2 s (1 - s)
            s = sigmoid(2 * (_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)))
            d = s + x * (2 * s * (1 - s)) * (_SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x * x))
        else:
            cdf = 0.5 * (1 + erf(x * _INV_SQRT_2))
            pdf = (x * x * -0.5).exp() * _INV_SQRT_2PI
            d = cdf + x * pdf
        return g * d, None

    @staticmethod
    def fast_backward(ctx, g):
        """g * gelu'(x) on arrays: the derivative the forward kernel already computed, or one fused pass."""
        dydx = getattr(ctx, "dydx", None)
        if dydx is not None:
            return g * dydx, None
        x, approximate = ctx.args
        if (k := dispatch.get("gelu_backward", x.array, g)) is None:
            return NotImplemented
        return k(x.array, g, approximate), None


def gelu(x, approximate="none"):
    """GELU (see :class:`GELU` for both forms and their gradients). gelu(+inf) = +inf here, where PyTorch's
    exact form gives NaN; gelu(-inf) = NaN in both."""
    _float_input(x, "gelu")
    if not isinstance(approximate, str) or approximate not in ("none", "tanh"):
        raise InvalidArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(x, approximate)


class SiLU(Function):
    """y = x * sigmoid(x).   dx = g * s * (1 + x * (1 - s)),  s = sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        if (k := dispatch.get("silu_forward", x)) is not None:
            return k(x)
        return x * _stable_sigmoid(get_array_module(x), x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.args
        s = sigmoid(x)
        return (g * s * (1 + x * (1 - s)),)

    @staticmethod
    def fast_backward(ctx, g):
        """The formula above in one fused pass (kernels/cpu_activation.py)."""
        x = ctx.args[0].array
        if (k := dispatch.get("silu_backward", x, g)) is None:
            return NotImplemented
        return (k(x, g),)


def silu(x, inplace=False):
    _float_input(x, "silu")
    return _maybe_inplace(x, inplace, "silu", SiLU.apply)


swish = silu


class Softplus(Function):
    """y = log(1 + exp(beta x)) / beta   where beta x <= threshold, else y = x (linear regime, as PyTorch).

    dx = g * sigmoid(beta x) where beta x <= threshold, else g.
    """

    @staticmethod
    def forward(ctx, x, beta, threshold):
        xp = get_array_module(x)
        z = x * beta
        lin = z > threshold
        if ctx.needs_input_grad[0]:
            ctx.lin = lin.astype(x.dtype)
        return xp.where(lin, x, _softplus_array(xp, z) / beta).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, beta, threshold = ctx.args
        lin = _const(ctx.lin)
        return g * (lin + (1 - lin) * sigmoid(x * beta)), None, None


def softplus(x, beta=1.0, threshold=20.0):
    _float_input(x, "softplus")
    beta, threshold = check_number(beta, "softplus", "beta"), check_number(threshold, "softplus", "threshold")
    if beta == 0:
        raise InvalidArgumentError("softplus: beta must be nonzero")
    return Softplus.apply(x, beta, threshold)


class LogSigmoid(Function):
    """y = log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))   (stable).   dx = g * sigmoid(-x)."""

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        return (xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.args
        return (g * sigmoid(-x),)


def logsigmoid(x):
    _float_input(x, "logsigmoid")
    return LogSigmoid.apply(x)


class Mish(Function):
    """y = x * tanh(softplus(x)).   dx = g * (t + x * (1 - t^2) * sigmoid(x)),  t = tanh(softplus(x))."""

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        return (x * xp.tanh(_softplus_array(xp, x))).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.args
        t = tanh(softplus(x))
        return (g * (t + x * (1 - t * t) * sigmoid(x)),)


def mish(x, inplace=False):
    _float_input(x, "mish")
    return _maybe_inplace(x, inplace, "mish", Mish.apply)


class Softsign(Function):
    """y = x / (1 + |x|).   dx = g / (1 + |x|)^2."""

    @staticmethod
    def forward(ctx, x):
        return x / (1 + get_array_module(x).abs(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.args
        d = 1 + _abs(x)
        return (g / (d * d),)


def softsign(x):
    _float_input(x, "softsign")
    return Softsign.apply(x)


class Tanhshrink(Function):
    """y = x - tanh(x).   dx = g * tanh(x)^2."""

    @staticmethod
    def forward(ctx, x):
        return x - get_array_module(x).tanh(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.args
        t = tanh(x)
        return (g * (t * t),)


def tanhshrink(x):
    _float_input(x, "tanhshrink")
    return Tanhshrink.apply(x)


class HardSigmoid(Function):
    """y = clip(x / 6 + 1/2, 0, 1).   dx = g / 6 where -3 < x < 3, else 0."""

    reads = ()

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        if ctx.needs_input_grad[0]:
            ctx.slope = ((x > -3) & (x < 3)).astype(x.dtype) / 6
        return xp.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        return (g * _const(ctx.slope),)


def hardsigmoid(x, inplace=False):
    _float_input(x, "hardsigmoid")
    return _maybe_inplace(x, inplace, "hardsigmoid", HardSigmoid.apply)


class HardSwish(Function):
    """y = x * clip(x + 3, 0, 6) / 6.

    dx = g * (0 if x <= -3;  (2x + 3) / 6 if -3 < x < 3;  1 if x >= 3)   (PyTorch's choice at the kinks).
    """

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        if ctx.needs_input_grad[0]:
            ctx.mid = ((x > -3) & (x < 3)).astype(x.dtype)
            ctx.hi = (x >= 3).astype(x.dtype)
        return (x * xp.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.args
        return (g * (_const(ctx.mid) * (x * (2 / 6) + 0.5) + _const(ctx.hi)),)


def hardswish(x, inplace=False):
    _float_input(x, "hardswish")
    return _maybe_inplace(x, inplace, "hardswish", HardSwish.apply)


def glu(x, dim=-1):
    """Gated linear unit: split x in halves a, b along ``dim``; y = a * sigmoid(b) (composed)."""
    _float_input(x, "glu")
    d = norm_dim(dim, x.ndim)
    if x.ndim == 0 or x.shape[d] % 2:
        raise InvalidArgumentError(f"glu: dim {dim} of shape {tuple(x.shape)} must have an even size")
    h = x.shape[d] // 2
    idx_a = (slice(None),) * d + (slice(0, h),)
    idx_b = (slice(None),) * d + (slice(h, None),)
    return x[idx_a] * sigmoid(x[idx_b])
