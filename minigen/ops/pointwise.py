"""Pointwise math: roots, trig, erf, logs, rounding, clamp, maximum/minimum, where, comparisons, logic.

Notation: ``g`` is the incoming gradient dL/dy, ``y`` the op's output. Every
backward is written with differentiable Tensor ops (second derivatives work);
arrays computed in forward (masks, quotients) are constants of the backward.

Conventions chosen to match PyTorch exactly:
- abs'(0) = 0 (the gradient is g * sign(x));
- clamp: x gets the gradient where min <= x <= max (both ends inclusive);
- maximum/minimum: on a tie a == b the gradient is split half/half;
- sign, floor, ceil, round, trunc, floor_divide: gradient 0 (step functions); frac'(x) = 1;
- comparisons and logical ops return bool tensors that never carry a gradient.

Integer inputs to functions that need floats (sqrt, sin, erf, ...) are promoted
to the default float dtype, as PyTorch does.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..autograd.function import Function, NonDifferentiable
from ..backend import get_array_module, move_array
from ..errors import DTypeError, InvalidArgumentError
from ..tensor import Tensor, get_default_dtype
from .shape import sum_to

__all__ = [
    # unary float math
    "sqrt", "rsqrt", "sin", "cos", "tan", "asin", "acos", "atan", "arcsin", "arccos", "arctan", "sinh", "cosh",
    "asinh", "acosh", "atanh", "erf", "erfc", "log1p", "expm1", "log2", "log10", "exp2", "square", "reciprocal",
    # abs / sign / rounding
    "abs", "absolute", "sign", "sgn", "floor", "ceil", "round", "trunc", "fix", "frac",
    # binary
    "maximum", "minimum", "fmax", "fmin", "floor_divide", "remainder", "fmod", "lerp", "atan2", "hypot",
    "logaddexp", "clamp", "clip", "clamp_min", "clamp_max", "where", "nan_to_num",
    # comparisons / logic (bool results, no gradient)
    "eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal",
    "logical_and", "logical_or", "logical_not", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor",
    "bitwise_not", "isnan", "isinf", "isposinf", "isneginf", "isfinite", "isclose", "allclose", "equal",
]

_Number = (builtins.int, builtins.float, builtins.bool)


# ------------------------------------------------------------------ helpers
def _const(arr):
    """A constant (no-grad) tensor around an array computed in forward (a mask, a slope map, ...).
    NumPy turns 0-d results into scalars; asarray makes them arrays again."""
    return Tensor._make(get_array_module(arr).asarray(arr))


def _zero_grad(g):
    """Gradient of a step function: zeros shaped like ``g`` (a constant)."""
    return _const(get_array_module(g.array).zeros_like(g.array))


def _st(g, x):
    """Gradient for argument ``x``: ``g`` summed down to x's shape; None for plain numbers."""
    return sum_to(g, x.shape) if isinstance(x, Tensor) else None


def _needs(ctx, i):
    return ctx.next_nodes[i] is not None


# ------------------------------------------------------------------ argument checks (shared by the op modules)
def require_tensor(x, op, name="input"):
    """``x`` must be a Tensor (DTypeError naming what was passed otherwise)."""
    if not isinstance(x, Tensor):
        raise DTypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    return x


def require_number(v, op, name, allow_none=False):
    """A real Python/NumPy number (bools count as 0/1), returned as a float."""
    if v is None and allow_none:
        return None
    if isinstance(v, (builtins.int, builtins.float, np.integer, np.floating, np.bool_)):
        return builtins.float(v)
    raise InvalidArgumentError(f"{op}: {name} must be a real number, got {_brief(v)}")


def require_int(v, op, name):
    if isinstance(v, (builtins.int, np.integer)) and not isinstance(v, builtins.bool):
        return builtins.int(v)
    raise InvalidArgumentError(f"{op}: {name} must be an int, got {_brief(v)}")


def require_flag(v, op, name):
    """True/False (0/1 accepted), as PyTorch's bool arguments."""
    if isinstance(v, (builtins.bool, np.bool_)) or (isinstance(v, (builtins.int, np.integer)) and v in (0, 1)):
        return builtins.bool(v)
    raise InvalidArgumentError(f"{op}: {name} must be True or False, got {_brief(v)}")


def cast_dtype(x, dtype, op):
    """``x.to(dtype)`` when a dtype is given; a clear DTypeError for anything that is not a real dtype."""
    if dtype is None:
        return x
    from ..tensor import as_dtype

    try:
        dt = None if isinstance(dtype, (builtins.int, builtins.float, tuple, list, dict)) else as_dtype(dtype)
    except (TypeError, ValueError, DTypeError):
        dt = None
    if dt is None or dt.kind not in "biuf":
        raise DTypeError(f"{op}: dtype must be a dtype such as mg.float32, got {_brief(dtype)}")
    return x.to(dt)


def _brief(v):
    if isinstance(v, (builtins.int, builtins.float, builtins.bool, str, type(None))):
        return repr(v)
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return f"{type(v).__name__}(shape={tuple(v.shape)}, dtype={v.dtype})"
    return type(v).__name__


def _as_float(x):
    """Integer/bool tensors -> default float dtype (PyTorch's promotion for float-only math)."""
    if x.dtype.kind in "biu":
        return x.to(get_default_dtype())
    return x


def _tensor_arg(x, op, like=None):
    """Accept Tensors, arrays and lists; Python numbers stay numbers (they adopt the tensor's dtype)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, _Number):
        return x
    if isinstance(x, (np.ndarray, list, tuple)) or hasattr(x, "__array__"):
        try:
            # a CuPy array stays a device array (np.asarray would need an implicit device-to-host copy)
            arr = x if get_array_module(x) is not np else np.asarray(x)
        except (ValueError, TypeError):
            raise DTypeError(f"{op}: cannot make a tensor from a ragged or mixed {type(x).__name__}") from None
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise DTypeError(f"{op}: cannot use an argument of type {type(x).__name__} (dtype {arr.dtype})")
        if like is not None:
            if arr.dtype.kind == "f" and like.dtype.kind == "f" and not isinstance(x, np.ndarray):
                arr = arr.astype(like.dtype)
            return Tensor._make(move_array(arr, like.device))
        return Tensor._make(arr)
    raise DTypeError(f"{op}: unsupported argument of type {type(x).__name__}")


def _input(x, op):
    """The main input: a Tensor, or a number / (nested) list / array turned into one."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, _Number) and not isinstance(x, builtins.bool):
        return Tensor._make(np.asarray(x, dtype=get_default_dtype() if isinstance(x, builtins.float) else np.int64))
    t = _tensor_arg(x, op)
    if not isinstance(t, Tensor):
        raise DTypeError(f"{op}: input must be a Tensor, got {_brief(x)}")
    return t


def _binary_args(a, b, op, promote=True):
    """Both operands as Tensor-or-number, at least one Tensor.

    With ``promote`` (ops with numeric results), integer tensors meet floats as in PyTorch: an int
    tensor with a Python float becomes the default float dtype; with a float tensor, that tensor's dtype.
    """
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = _tensor_arg(a, op)
        if not isinstance(a, Tensor):
            a = Tensor._make(np.asarray(a, dtype=get_default_dtype() if isinstance(a, builtins.float) else None))
    if isinstance(a, Tensor):
        b = _tensor_arg(b, op, like=a)
    else:
        a = _tensor_arg(a, op, like=b)
    if promote:
        a, b = _promote(a, b), _promote(b, a)
    return a, b


def _promote(t, other):
    """``t`` cast to a float dtype when it is an integer tensor and ``other`` is a float (PyTorch's rule)."""
    if not isinstance(t, Tensor) or t.dtype.kind not in "biu":
        return t
    if isinstance(other, builtins.float):
        return t.to(get_default_dtype())
    if isinstance(other, Tensor) and other.dtype.kind == "f":
        return t.to(other.dtype)
    return t


def _xp_of(*args):
    for a in args:
        if hasattr(a, "dtype") and hasattr(a, "shape") and not isinstance(a, np.generic):
            return get_array_module(a)
    return np


# ------------------------------------------------------------------ erf (reference + fast path)
def erf_reference(x):
    """Reference erf on a NumPy array: Python's math.erf, element by element (exact, slow)."""
    return np.frompyfunc(math.erf, 1, 1)(x).astype(x.dtype if x.dtype.kind == "f" else np.float64)


def erfc_reference(x):
    return np.frompyfunc(math.erfc, 1, 1)(x).astype(x.dtype if x.dtype.kind == "f" else np.float64)


_FAST = {}


def _numba_ufuncs():
    """Compile (once, lazily) Numba ufuncs calling libm's erf/erfc; None when Numba is unavailable."""
    if "erf" not in _FAST:
        try:
            import numba

            sigs = ["float32(float32)", "float64(float64)"]

            @numba.vectorize(sigs, cache=True)
            def _erf(v):
                return math.erf(v)

            @numba.vectorize(sigs, cache=True)
            def _erfc(v):
                return math.erfc(v)

            _FAST["erf"], _FAST["erfc"] = _erf, _erfc
        except Exception:  # numba missing or failing: use the reference
            _FAST["erf"] = _FAST["erfc"] = None
    return _FAST["erf"], _FAST["erfc"]


def _special(name, x):
    xp = get_array_module(x)
    if xp is not np:
        import cupyx.scipy.special as sp

        return getattr(sp, name)(x)
    fast = _numba_ufuncs()[0 if name == "erf" else 1]
    if fast is None:
        return (erf_reference if name == "erf" else erfc_reference)(x)
    if x.dtype == np.float16:
        return fast(x.astype(np.float32)).astype(np.float16)
    return fast(x)


def erf_array(x):
    """erf on a float array (NumPy: Numba ufunc over libm erf; CuPy: cupyx.scipy.special.erf)."""
    return _special("erf", x)


def erfc_array(x):
    return _special("erfc", x)


# ------------------------------------------------------------------ unary float ops
def _unary(name, doc, forward, backward, uses_output=False):
    """Build a unary Function: ``forward(xp, x) -> array``, ``backward(g, x, y) -> Tensor``.

    With ``uses_output=True`` backward reads y (x is then None); otherwise y is None.
    """

    def fwd(ctx, x):
        out = forward(get_array_module(x), x)
        return out.astype(x.dtype, copy=False) if hasattr(out, "astype") and x.dtype.kind == "f" else out

    if uses_output:
        def bwd(ctx, g):
            return (backward(g, None, ctx.output),)
    else:
        def bwd(ctx, g):
            return (backward(g, ctx.args[0], None),)

    return type(name, (Function,), {
        "__doc__": doc, "forward": staticmethod(fwd), "backward": staticmethod(bwd),
        "reads": () if uses_output else None, "uses_output": uses_output, "__module__": __name__,
    })


_LN2, _LN10 = math.log(2.0), math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

Sqrt = _unary("Sqrt", "y = sqrt(x).   dx = g / (2 y).",
              lambda xp, x: xp.sqrt(x), lambda g, x, y: g / (y * 2), uses_output=True)
Rsqrt = _unary("Rsqrt", "y = 1 / sqrt(x).   dx = -g y^3 / 2.",
               lambda xp, x: 1 / xp.sqrt(x), lambda g, x, y: g * (y * y * y) * -0.5, uses_output=True)
Sin = _unary("Sin", "y = sin(x).   dx = g cos(x).", lambda xp, x: xp.sin(x), lambda g, x, y: g * cos(x))
Cos = _unary("Cos", "y = cos(x).   dx = -g sin(x).", lambda xp, x: xp.cos(x), lambda g, x, y: -g * sin(x))
Tan = _unary("Tan", "y = tan(x).   dx = g (1 + y^2).",
             lambda xp, x: xp.tan(x), lambda g, x, y: g * (1 + y * y), uses_output=True)
Asin = _unary("Asin", "y = asin(x).   dx = g / sqrt(1 - x^2).",
              lambda xp, x: xp.arcsin(x), lambda g, x, y: g * rsqrt(1 - x * x))
Acos = _unary("Acos", "y = acos(x).   dx = -g / sqrt(1 - x^2).",
              lambda xp, x: xp.arccos(x), lambda g, x, y: -g * rsqrt(1 - x * x))
Atan = _unary("Atan", "y = atan(x).   dx = g / (1 + x^2).",
              lambda xp, x: xp.arctan(x), lambda g, x, y: g / (1 + x * x))
Sinh = _unary("Sinh", "y = sinh(x).   dx = g cosh(x).", lambda xp, x: xp.sinh(x), lambda g, x, y: g * cosh(x))
Cosh = _unary("Cosh", "y = cosh(x).   dx = g sinh(x).", lambda xp, x: xp.cosh(x), lambda g, x, y: g * sinh(x))
Asinh = _unary("Asinh", "y = asinh(x).   dx = g / sqrt(x^2 + 1).",
               lambda xp, x: xp.arcsinh(x), lambda g, x, y: g * rsqrt(x * x + 1))
Acosh = _unary("Acosh", "y = acosh(x).   dx = g / sqrt(x^2 - 1).",
               lambda xp, x: xp.arccosh(x), lambda g, x, y: g * rsqrt(x * x - 1))
Atanh = _unary("Atanh", "y = atanh(x).   dx = g / (1 - x^2).",
               lambda xp, x: xp.arctanh(x), lambda g, x, y: g / (1 - x * x))
Erf = _unary("Erf", "y = erf(x) = 2/sqrt(pi) int_0^x exp(-t^2) dt.   dx = g 2/sqrt(pi) exp(-x^2).",
             lambda xp, x: erf_array(x), lambda g, x, y: g * ((x * x * -1).exp() * _TWO_OVER_SQRT_PI))
Erfc = _unary("Erfc", "y = erfc(x) = 1 - erf(x).   dx = -g 2/sqrt(pi) exp(-x^2).",
              lambda xp, x: erfc_array(x), lambda g, x, y: g * ((x * x * -1).exp() * -_TWO_OVER_SQRT_PI))
Log1p = _unary("Log1p", "y = log(1 + x).   dx = g / (1 + x).",
               lambda xp, x: xp.log1p(x), lambda g, x, y: g / (x + 1))
Expm1 = _unary("Expm1", "y = exp(x) - 1.   dx = g (y + 1).",
               lambda xp, x: xp.expm1(x), lambda g, x, y: g * (y + 1), uses_output=True)
Log2 = _unary("Log2", "y = log2(x).   dx = g / (x ln 2).",
              lambda xp, x: xp.log2(x), lambda g, x, y: g / (x * _LN2))
Log10 = _unary("Log10", "y = log10(x).   dx = g / (x ln 10).",
               lambda xp, x: xp.log10(x), lambda g, x, y: g / (x * _LN10))
Exp2 = _unary("Exp2", "y = 2^x.   dx = g y ln 2.",
              lambda xp, x: xp.exp2(x), lambda g, x, y: g * (y * _LN2), uses_output=True)
Square = _unary("Square", "y = x^2.   dx = 2 g x.", lambda xp, x: x * x, lambda g, x, y: g * (x * 2))
Reciprocal = _unary("Reciprocal", "y = 1 / x.   dx = -g y^2.",
                    lambda xp, x: 1 / x, lambda g, x, y: -g * (y * y), uses_output=True)


def _float_unary(cls, name):
    def fn(x):
        return cls.apply(_as_float(_input(x, name)))

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = cls.__doc__
    return fn


sqrt = _float_unary(Sqrt, "sqrt")
rsqrt = _float_unary(Rsqrt, "rsqrt")
sin = _float_unary(Sin, "sin")
cos = _float_unary(Cos, "cos")
tan = _float_unary(Tan, "tan")
asin = arcsin = _float_unary(Asin, "asin")
acos = arccos = _float_unary(Acos, "acos")
atan = arctan = _float_unary(Atan, "atan")
sinh = _float_unary(Sinh, "sinh")
cosh = _float_unary(Cosh, "cosh")
asinh = _float_unary(Asinh, "asinh")
acosh = _float_unary(Acosh, "acosh")
atanh = _float_unary(Atanh, "atanh")
erf = _float_unary(Erf, "erf")
erfc = _float_unary(Erfc, "erfc")
log1p = _float_unary(Log1p, "log1p")
expm1 = _float_unary(Expm1, "expm1")
log2 = _float_unary(Log2, "log2")
log10 = _float_unary(Log10, "log10")
exp2 = _float_unary(Exp2, "exp2")
reciprocal = _float_unary(Reciprocal, "reciprocal")


def square(x):
    """y = x^2 (integer tensors stay integer, as PyTorch)."""
    return Square.apply(_input(x, "square"))


# ------------------------------------------------------------------ abs, sign, rounding
class Abs(Function):
    """y = |x|.   dx = g * sign(x)   (sign(0) = 0, so abs'(0) = 0 as PyTorch)."""

    reads = ()

    @staticmethod
    def forward(ctx, x):
        ctx.sign = get_array_module(x).sign(x)
        return get_array_module(x).abs(x)

    @staticmethod
    def backward(ctx, g):
        return (g * _const(ctx.sign.astype(g.dtype, copy=False)),)


class Sign(Function):
    """y = sign(x) in {-1, 0, 1}.   dx = 0."""

    reads = ()

    @staticmethod
    def forward(ctx, x):
        return get_array_module(x).sign(x)

    @staticmethod
    def backward(ctx, g):
        return (_zero_grad(g),)


class Rounding(Function):
    """y = floor(x) / ceil(x) / round(x, decimals) (half to even) / trunc(x).   dx = 0 (a step function)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, mode, decimals):
        if x.dtype.kind in "biu":
            return x.copy()
        xp = get_array_module(x)
        if mode == "round":
            return xp.round(x, decimals)
        return getattr(xp, mode)(x)

    @staticmethod
    def backward(ctx, g):
        return _zero_grad(g), None, None


class Frac(Function):
    """y = x - trunc(x)   (keeps the sign of x).   dx = g."""

    reads = ()

    @staticmethod
    def forward(ctx, x):
        return x - get_array_module(x).trunc(x)

    @staticmethod
    def backward(ctx, g):
        return (g,)


def abs(x):
    return Abs.apply(_input(x, "abs"))


absolute = abs


def sign(x):
    return Sign.apply(_input(x, "sign"))


sgn = sign


def floor(x):
    return Rounding.apply(_input(x, "floor"), "floor", 0)


def ceil(x):
    return Rounding.apply(_input(x, "ceil"), "ceil", 0)


def round(x, decimals=0):
    """Round half to even (as PyTorch); ``decimals`` digits after the point."""
    return Rounding.apply(_input(x, "round"), "round", require_int(decimals, "round", "decimals"))


def trunc(x):
    return Rounding.apply(_input(x, "trunc"), "trunc", 0)


fix = trunc


def frac(x):
    x = _input(x, "frac")
    if x.dtype.kind not in "fc":
        raise DTypeError(f"frac expects a floating point tensor, got dtype {x.dtype}")
    return Frac.apply(x)


# ------------------------------------------------------------------ maximum / minimum
class MaxMin(Function):
    """y = max(a, b) (``largest``) or min(a, b), elementwise with broadcasting.

    maximum/minimum (NaN propagates):  da = sum_to(g * w_a),  w_a = 1/2 on a tie, 0 where b wins, else 1
    (so on a tie the gradient is split half/half, and both sides get it next to a NaN, as PyTorch).
    fmax/fmin (a NaN loses):  a takes the whole gradient where a >= b (a <= b for fmin) or b is NaN,
    b takes it elsewhere.
    """

    reads = ()

    @staticmethod
    def forward(ctx, a, b, largest, nan_ignoring):
        xp = _xp_of(a, b)
        if nan_ignoring:
            y = (xp.fmax if largest else xp.fmin)(a, b)
        else:
            y = (xp.maximum if largest else xp.minimum)(a, b)
        y = xp.asarray(y)
        if y.dtype.kind == "f":
            dt, shape = y.dtype, y.shape
            if nan_ignoring:
                a_takes = ((a >= b) if largest else (a <= b)) | xp.isnan(xp.asarray(b))
                wa = a_takes.astype(dt)
                wb = 1 - wa
            else:
                a_wins, b_wins = ((a > b), (b > a)) if largest else ((a < b), (b < a))
                half = 0.5 * (xp.asarray(a == b))
                wa = xp.where(b_wins, 0.0, 1.0) - half
                wb = xp.where(a_wins, 0.0, 1.0) - half
            ctx.wa = xp.broadcast_to(xp.asarray(wa, dtype=dt), shape)
            ctx.wb = xp.broadcast_to(xp.asarray(wb, dtype=dt), shape)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args[0], ctx.args[1]
        ga = _st(g * _const(ctx.wa), a) if _needs(ctx, 0) else None
        gb = _st(g * _const(ctx.wb), b) if _needs(ctx, 1) else None
        return ga, gb, None, None


def maximum(a, b):
    a, b = _binary_args(a, b, "maximum")
    return MaxMin.apply(a, b, True, False)


def minimum(a, b):
    a, b = _binary_args(a, b, "minimum")
    return MaxMin.apply(a, b, False, False)


def fmax(a, b):
    """Like maximum, but a NaN loses against a number."""
    a, b = _binary_args(a, b, "fmax")
    return MaxMin.apply(a, b, True, True)


def fmin(a, b):
    a, b = _binary_args(a, b, "fmin")
    return MaxMin.apply(a, b, False, True)


# ------------------------------------------------------------------ division-like
class FloorDivide(Function):
    """y = floor(a / b) (Python's ``//``).   da = db = 0 (a step function, like torch.div(rounding_mode='floor'))."""

    reads = ()

    @staticmethod
    def forward(ctx, a, b):
        if _is_int(a) and _is_int(b) and bool((_xp_of(a, b).asarray(b) == 0).any()):
            raise ZeroDivisionError("floor_divide: integer division by zero")
        return _xp_of(a, b).floor_divide(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        return (_zero_grad(sum_to(g, a.shape)) if isinstance(a, Tensor) else None,
                _zero_grad(sum_to(g, b.shape)) if isinstance(b, Tensor) else None)


def _is_int(v):
    return (isinstance(v, builtins.int) and not isinstance(v, builtins.bool)) or (
        hasattr(v, "dtype") and v.dtype.kind in "iu")


class Mod(Function):
    """``remainder``: y = a - floor(a / b) * b (sign of b, Python's %);  ``fmod``: y = a - trunc(a / b) * b (sign of a).

    da = g,   db = -g * q   with q = floor(a / b) or trunc(a / b) (a constant: piecewise).
    """

    reads = ()

    @staticmethod
    def forward(ctx, a, b, kind):
        xp = _xp_of(a, b)
        if _is_int(a) and _is_int(b) and bool((xp.asarray(b) == 0).any()):
            raise ZeroDivisionError(f"{kind}: integer division by zero")
        y = (xp.remainder if kind == "remainder" else xp.fmod)(a, b)
        if hasattr(y, "dtype") and y.dtype.kind == "f":
            with np.errstate(all="ignore"):  # b == 0 gives NaN quotients, as the forward gives NaN
                ctx.q = xp.round((a - y) / b).astype(y.dtype)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, _ = ctx.args
        ga = _st(g, a) if _needs(ctx, 0) else None
        gb = _st(-g * _const(ctx.q), b) if _needs(ctx, 1) else None
        return ga, gb, None


def floor_divide(a, b):
    a, b = _binary_args(a, b, "floor_divide")
    return FloorDivide.apply(a, b)


def remainder(a, b):
    a, b = _binary_args(a, b, "remainder")
    return Mod.apply(a, b, "remainder")


def fmod(a, b):
    a, b = _binary_args(a, b, "fmod")
    return Mod.apply(a, b, "fmod")


class Lerp(Function):
    """y = start + w * (end - start).

    dstart = sum_to(g * (1 - w)),  dend = sum_to(g * w),  dw = sum_to(g * (end - start)).
    """

    @staticmethod
    def forward(ctx, start, end, w):
        return start + w * (end - start)

    @staticmethod
    def backward(ctx, g):
        start, end, w = ctx.args
        gs = _st(g * (1 - w), start) if _needs(ctx, 0) else None
        ge = _st(g * w, end) if _needs(ctx, 1) else None
        gw = _st(g * (end - start), w) if _needs(ctx, 2) else None
        return gs, ge, gw


def lerp(start, end, weight):
    require_tensor(start, "lerp", "start")
    end = _tensor_arg(end, "lerp", like=start)
    weight = _tensor_arg(weight, "lerp", like=start)
    for v, nm in ((start, "start"), (end, "end"), (weight, "weight")):
        if isinstance(v, Tensor) and v.dtype.kind not in "fc":
            raise DTypeError(f"lerp expects floating point tensors, got {nm} of dtype {v.dtype}")
    return Lerp.apply(start, end, weight)


class Atan2(Function):
    """y = atan2(a, b) (angle of the point (b, a)).   da = g b / (a^2 + b^2),  db = -g a / (a^2 + b^2)."""

    @staticmethod
    def forward(ctx, a, b):
        return _xp_of(a, b).arctan2(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        r2 = a * a + b * b
        ga = _st(g * b / r2, a) if _needs(ctx, 0) else None
        gb = _st(-g * a / r2, b) if _needs(ctx, 1) else None
        return ga, gb


def atan2(a, b):
    a, b = _binary_args(a, b, "atan2")
    a = _as_float(a) if isinstance(a, Tensor) else a
    b = _as_float(b) if isinstance(b, Tensor) else b
    return Atan2.apply(a, b)


def hypot(a, b):
    """sqrt(a^2 + b^2) (composed of differentiable ops)."""
    a, b = _binary_args(a, b, "hypot")
    return sqrt(a * a + b * b)


class LogAddExp(Function):
    """y = log(exp(a) + exp(b)) = max(a, b) + log1p(exp(-|a - b|)).

    da = g * exp(a - y),  db = g * exp(b - y)   (= softmax weights of the pair).
    """

    uses_output = True

    @staticmethod
    def forward(ctx, a, b):
        return _xp_of(a, b).logaddexp(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        y = ctx.output
        ga = _st(g * (a - y).exp(), a) if _needs(ctx, 0) else None
        gb = _st(g * (b - y).exp(), b) if _needs(ctx, 1) else None
        return ga, gb


def logaddexp(a, b):
    a, b = _binary_args(a, b, "logaddexp")
    return LogAddExp.apply(a, b)


# ------------------------------------------------------------------ clamp
class Clamp(Function):
    """y = min(max(x, lo), hi)  (lo/hi: numbers, tensors or None; if lo > hi every value becomes hi).

    dx  = g * [lo <= x <= hi]           (both ends inclusive, as PyTorch)
    dlo = sum_to(g * [x < lo and lo <= hi])
    dhi = sum_to(g * [x > hi or lo > hi])
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, lo, hi):
        xp = get_array_module(x)
        y = x
        inside = xp.ones(x.shape, dtype=bool)
        if lo is not None:
            y = xp.maximum(y, lo)
            inside = inside & (x >= lo)
        if hi is not None:
            y = xp.minimum(y, hi)
            inside = inside & (x <= hi)
        y = xp.asarray(y)
        if y.dtype != x.dtype and x.dtype.kind == "f":
            y = y.astype(x.dtype)
        dt = y.dtype
        shape = y.shape
        ctx.mx = xp.broadcast_to(inside, shape).astype(dt)
        if lo is not None and hi is not None:
            ctx.mlo = xp.broadcast_to((x < lo) & (lo <= hi), shape).astype(dt)
            ctx.mhi = xp.broadcast_to((x > hi) | (lo > hi), shape).astype(dt)
        elif lo is not None:
            ctx.mlo = xp.broadcast_to(x < lo, shape).astype(dt)
        elif hi is not None:
            ctx.mhi = xp.broadcast_to(x > hi, shape).astype(dt)
        return y

    @staticmethod
    def backward(ctx, g):
        x, lo, hi = ctx.args
        gx = _st(g * _const(ctx.mx), x) if _needs(ctx, 0) else None
        glo = _st(g * _const(ctx.mlo), lo) if _needs(ctx, 1) else None
        ghi = _st(g * _const(ctx.mhi), hi) if _needs(ctx, 2) else None
        return gx, glo, ghi


def clamp(x, min=None, max=None):
    """Clamp every element into [min, max]; ``min``/``max`` are numbers, tensors (broadcast) or None."""
    x = _input(x, "clamp")
    if min is None and max is None:
        raise InvalidArgumentError("clamp: at least one of min and max must be given")
    lo = _tensor_arg(min, "clamp", like=x) if min is not None else None
    hi = _tensor_arg(max, "clamp", like=x) if max is not None else None
    for bound in (lo, hi):
        x = _promote(x, bound)
    return Clamp.apply(x, lo, hi)


clip = clamp


def clamp_min(x, min):
    return clamp(x, min=min)


def clamp_max(x, max):
    return clamp(x, max=max)


# ------------------------------------------------------------------ where / nan_to_num
class Where(Function):
    """y = a where cond else b (broadcast).   da = sum_to(where(cond, g, 0)),  db = sum_to(where(cond, 0, g))."""

    reads = ()

    @staticmethod
    def forward(ctx, cond, a, b, dtype):
        ctx.cond = cond
        out = _xp_of(cond, a, b).where(cond, a, b)
        return out.astype(dtype, copy=False) if dtype is not None else out

    @staticmethod
    def backward(ctx, g):
        cond, a, b, _ = ctx.args
        c = ctx.cond
        ga = _st(Where.apply(c, g, 0.0, g.dtype), a) if _needs(ctx, 1) else None
        gb = _st(Where.apply(c, 0.0, g, g.dtype), b) if _needs(ctx, 2) else None
        return None, ga, gb, None


def _result_dtype(a, b):
    ta = [v for v in (a, b) if isinstance(v, Tensor)]
    if not ta:
        kinds = [v for v in (a, b)]
        if any(isinstance(v, builtins.float) for v in kinds):
            return get_default_dtype()
        if all(isinstance(v, builtins.bool) for v in kinds):
            return np.dtype(bool)
        return np.dtype(np.int64)
    if len(ta) == 2:
        return np.result_type(ta[0].dtype, ta[1].dtype)
    t = ta[0]
    other = b if t is a else a
    if isinstance(other, builtins.float) and t.dtype.kind in "biu":
        return get_default_dtype()
    if isinstance(other, builtins.int) and not isinstance(other, builtins.bool) and t.dtype.kind == "b":
        return np.dtype(np.int64)
    return t.dtype


def where(condition, input=None, other=None):
    """``where(cond, a, b)``: a where cond is True, else b (numbers allowed). ``where(cond)``: nonzero indices."""
    condition = _input(condition, "where") if not isinstance(condition, builtins.bool) else condition
    if not isinstance(condition, Tensor) or condition.dtype.kind != "b":
        raise DTypeError(f"where: condition must be a bool tensor, got {_brief(getattr(condition, 'array', condition))}")
    if input is None and other is None:
        xp = get_array_module(condition.array)
        return tuple(_const(i.astype(np.int64)) for i in xp.nonzero(condition.array))
    if input is None or other is None:
        raise InvalidArgumentError("where: pass both input and other (or neither)")
    like = condition
    a = _tensor_arg(input, "where", like=other if isinstance(other, Tensor) else None)
    b = _tensor_arg(other, "where", like=a if isinstance(a, Tensor) else None)
    dtype = _result_dtype(a, b)
    for v in (a, b):
        if isinstance(v, Tensor) and v.device != like.device:
            from ..errors import DeviceError

            raise DeviceError(f"where: condition on {like.device} but a value on {v.device}")
    return Where.apply(condition.array, a, b, dtype)


class NanToNum(Function):
    """y = x with NaN -> nan, +inf -> posinf, -inf -> neginf (defaults: 0, dtype max, dtype min).

    dx = g * isfinite(x)   (replaced entries are constants).
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, nan, posinf, neginf):
        xp = get_array_module(x)
        if x.dtype.kind not in "fc":
            return x.copy()
        ctx.finite = xp.isfinite(x).astype(x.dtype)
        return xp.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, g):
        return g * _const(ctx.finite), None, None, None


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    x = _input(x, "nan_to_num")
    nan = require_number(nan, "nan_to_num", "nan")
    posinf = require_number(posinf, "nan_to_num", "posinf", allow_none=True)
    neginf = require_number(neginf, "nan_to_num", "neginf", allow_none=True)
    return NanToNum.apply(x, nan, posinf, neginf)


# ------------------------------------------------------------------ comparisons and logic
_CMP = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal"}


class Compare(NonDifferentiable):
    """y = (a OP b) elementwise, a bool tensor (OP in ==, !=, <, <=, >, >=). No gradient."""

    @staticmethod
    def forward(ctx, a, b, op):
        return getattr(_xp_of(a, b), _CMP[op])(a, b)


class Logical(NonDifferentiable):
    """y = logical/bitwise and, or, xor, not of the operands. No gradient."""

    @staticmethod
    def forward(ctx, a, b, op):
        xp = _xp_of(a, b)
        if op == "logical_not":
            return xp.logical_not(a)
        if op == "bitwise_not":
            return xp.invert(a)
        return getattr(xp, op)(a, b)


class Predicate(NonDifferentiable):
    """y = isnan / isinf / isposinf / isneginf / isfinite of x (bool). No gradient."""

    @staticmethod
    def forward(ctx, x, op):
        xp = get_array_module(x)
        if op == "isposinf":
            return xp.isinf(x) & (x > 0)
        if op == "isneginf":
            return xp.isinf(x) & (x < 0)
        return getattr(xp, op)(x)


def _make_cmp(op):
    def fn(a, b):
        a, b = _binary_args(a, b, op, promote=False)  # NumPy compares mixed int/float operands itself
        return Compare.apply(a, b, op)

    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"Elementwise ``a {dict(eq='==', ne='!=', lt='<', le='<=', gt='>', ge='>=')[op]} b`` (bool tensor)."
    return fn


eq, ne, lt, le, gt, ge = (_make_cmp(o) for o in ("eq", "ne", "lt", "le", "gt", "ge"))
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def _logical(op):
    def fn(a, b):
        a, b = _binary_args(a, b, op, promote=False)
        return Logical.apply(a, b, op)

    fn.__name__ = fn.__qualname__ = op
    return fn


logical_and = _logical("logical_and")
logical_or = _logical("logical_or")
logical_xor = _logical("logical_xor")


def logical_not(x):
    return Logical.apply(_input(x, "logical_not"), None, "logical_not")


def _bitwise(op):
    def fn(a, b):
        a, b = _binary_args(a, b, op, promote=False)
        for v in (a, b):
            if (isinstance(v, Tensor) and v.dtype.kind not in "biu") or isinstance(v, builtins.float):
                raise DTypeError(f"{op} needs integer or bool operands, got "
                                 f"{v.dtype if isinstance(v, Tensor) else 'float'}")
        return Logical.apply(a, b, op)

    fn.__name__ = fn.__qualname__ = op
    return fn


bitwise_and = _bitwise("bitwise_and")
bitwise_or = _bitwise("bitwise_or")
bitwise_xor = _bitwise("bitwise_xor")


def bitwise_not(x):
    x = _input(x, "bitwise_not")
    if x.dtype.kind not in "biu":
        raise DTypeError(f"bitwise_not (~) needs an integer or bool tensor, got dtype {x.dtype}")
    return Logical.apply(x, None, "bitwise_not")


def isnan(x):
    return Predicate.apply(_input(x, "isnan"), "isnan")


def isinf(x):
    return Predicate.apply(_input(x, "isinf"), "isinf")


def isposinf(x):
    return Predicate.apply(_input(x, "isposinf"), "isposinf")


def isneginf(x):
    return Predicate.apply(_input(x, "isneginf"), "isneginf")


def isfinite(x):
    return Predicate.apply(_input(x, "isfinite"), "isfinite")


class IsClose(NonDifferentiable):
    """y = |a - b| <= atol + rtol * |b|  (and NaN == NaN when equal_nan). No gradient."""

    @staticmethod
    def forward(ctx, a, b, rtol, atol, equal_nan):
        return _xp_of(a, b).isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = _binary_args(a, b, "isclose", promote=False)
    rtol, atol = require_number(rtol, "isclose", "rtol"), require_number(atol, "isclose", "atol")
    equal_nan = require_flag(equal_nan, "isclose", "equal_nan")
    return IsClose.apply(a, b, rtol, atol, equal_nan)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when every element satisfies |a - b| <= atol + rtol * |b| (a Python bool)."""
    return builtins.bool(isclose(a, b, rtol, atol, equal_nan).array.all())


def equal(a, b):
    """True when a and b have the same shape and the same values (a Python bool)."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise DTypeError("equal expects two tensors")
    if a.shape != b.shape:
        return False
    return builtins.bool((a.array == b.array).all())


# ------------------------------------------------------------------ Tensor methods and operators


def _inplace_method(fn):
    def method(x, *args, **kwargs):
        return x._inplace(lambda a: fn(a, *args, **kwargs))

    method.__name__ = fn.__name__ + "_"
    return method


def _cmp_operator(op):
    fn = globals()[op]

    def operator(a, b):
        if not isinstance(b, (Tensor, np.ndarray, np.generic, list, tuple) + _Number):
            return NotImplemented  # e.g. t == None or t == "a": Python falls back to identity
        return fn(a, b)

    return operator


