"""Pointwise ops: arithmetic, math functions, rounding, maximum/minimum, clamp, where, comparisons, logic.

Notation: ``g`` is the incoming gradient dL/dy, ``y`` the op's output. Every backward is the op's one
gradient formula, written with differentiable Tensor ops (second derivatives work); arrays computed in
forward (masks, quotients) are constants of the backward. A backward may return a gradient in the
broadcast shape: the engine sums it back to its input's shape (``autograd/broadcast.py``).

Type promotion is PyTorch's (:func:`result_type`): operands are ranked tensors with dims > 0-d tensors
> Python/NumPy scalars, and a lower-ranked operand only changes the result when it is of a higher
*category* (bool < integer < float). So ``f32 tensor + f64 0-d tensor`` is float32, ``int tensor + 1.5``
and ``bool tensor * 1.5`` are the default float dtype (float32), ``int8 tensor + 1000`` stays int8.

Conventions chosen to match PyTorch exactly:
- abs'(0) = 0 (the gradient is g * sign(x));
- clamp: x gets the gradient where min <= x <= max (both ends inclusive);
- maximum/minimum: on a tie a == b the gradient is split half/half;
- sign, floor, ceil, round, trunc, floor_divide: gradient 0 (step functions); frac'(x) = 1;
- comparisons and logical ops return bool tensors that never carry a gradient.

Integer inputs to functions that need floats (sqrt, sin, erf, true division...) are promoted to the
default float dtype, as PyTorch does.
"""
from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from ..argcheck import brief as _brief, check_flag, check_int_value, check_number, check_tensor
from ..autograd.function import Context, Function, NonDifferentiable
from ..backend import get_array_module, move_array
from ..errors import DTypeError, InvalidArgumentError
from ..kernels import dispatch
from ..tensor import Tensor, get_default_dtype

__all__ = [
    # arithmetic
    "add", "sub", "rsub", "mul", "div", "true_divide", "neg", "pow", "exp", "log",
    # type promotion
    "result_type", "promote_types", "can_cast",
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


# ------------------------------------------------------------------ type promotion (torch.result_type)
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def promote_types(type1, type2):
    """``torch.promote_types``: the smallest dtype both promote to. The higher category wins outright
    (int64 + float16 -> float16, where NumPy says float64); within one category NumPy's rule
    (int8 + uint8 -> int16, float16 + float32 -> float32)."""
    return _promote_types(np.dtype(type1), np.dtype(type2))


def _promote_types(a, b):
    if a == b:
        return a
    ca, cb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def _combine(higher, lower):
    """A lower-priority participant changes the result only when it is of a higher category
    (PyTorch's ``combine_categories``); two bools promote, so bool + int is int."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return _promote_types(higher, lower)
    return higher


def _is_array(v) -> bool:
    """A NumPy or CuPy array (a NumPy scalar is a number, not an array)."""
    return isinstance(v, np.ndarray) or get_array_module(v) is not np


def _participant(v):
    """(priority, dtype) of one operand: 2 a tensor/array with dims, 1 a 0-d tensor/array, 0 a scalar.

    Python and NumPy scalars take their category's default: bool, int64, the default float dtype."""
    if isinstance(v, Tensor) or _is_array(v):
        dt = v.dtype
        if dt.kind not in _CATEGORY:
            raise DTypeError(f"unsupported dtype {dt} (minigen ops take bool, integer and float tensors)")
        return (2 if v.ndim else 1), np.dtype(dt)
    if isinstance(v, (builtins.bool, np.bool_)):
        return 0, np.dtype(bool)
    if isinstance(v, (numbers.Integral, np.integer)):
        return 0, np.dtype(np.int64)
    if isinstance(v, (builtins.float, np.floating)) or (isinstance(v, numbers.Real) and not isinstance(v, np.generic)):
        return 0, get_default_dtype()
    if isinstance(v, (list, tuple)):
        arr = _list_array(v, "result_type")
        return (2 if arr.ndim else 1), arr.dtype
    raise DTypeError(f"unsupported operand {_brief(v)}: expected a Tensor, an array or a real number")


def result_type(tensor1, tensor2, *more):
    """The dtype PyTorch gives an op on these operands (``torch.result_type``), as a NumPy dtype.

    Operands are Tensors, NumPy arrays, (nested) lists, or Python/NumPy scalars. Three priority groups --
    tensors with dims, 0-d tensors, scalars -- each promote within themselves (:func:`_promote_types`);
    then a lower group only matters when its category (bool < integer < float) is higher than the
    result so far: ``f32[3] + f64 0-d -> f32``, ``i64[3] + 1.5 -> default float``, ``u8[3] + -1 -> u8``,
    ``bool[3] + 1 -> i64``, ``i32[3] + i64 0-d -> i32``, ``i64[3] + f64 0-d -> f64``.

    In-place ops keep their tensor's dtype and refuse a result they cannot hold: see :func:`can_cast`.
    """
    groups = [None, None, None]  # scalars, 0-d, dims
    for v in (tensor1, tensor2) + more:
        p, dt = _participant(v)
        groups[p] = dt if groups[p] is None else _promote_types(groups[p], dt)
    return _combine(groups[2], _combine(groups[1], groups[0]))


def can_cast(from_, to) -> bool:
    """Whether a result of ``from_dtype`` may be written into a tensor of ``to_dtype`` (``torch.can_cast``):
    not float -> integer/bool, not integer -> bool. (An in-place op ``a.op_(b)`` needs
    ``can_cast(result_type(a, b), a.dtype)``; otherwise it raises DTypeError, as PyTorch.)"""
    return _CATEGORY[np.dtype(from_).kind] <= _CATEGORY[np.dtype(to).kind]


def check_inplace_dtype(a, b, op: str):
    """DTypeError when ``a.op_(b)`` would need a wider dtype than a's (``int_tensor.mul_(1.5)``)."""
    dt = result_type(a, b)
    if not can_cast(dt, a.dtype):
        raise DTypeError(f"{op}: result type {dt} of {_brief(a)} and {_brief(b)} can't be cast to the desired "
                         f"output type {a.dtype} of an in-place op")
    return dt


def _list_array(v, op):
    """A (nested) list/tuple as an array with PyTorch's dtype inference (floats -> the default float dtype)."""
    try:
        arr = np.asarray(v)
    except (ValueError, TypeError):
        raise DTypeError(f"{op}: cannot make a tensor from a ragged or mixed {type(v).__name__}") from None
    if arr.dtype.kind not in _CATEGORY:
        raise DTypeError(f"{op}: cannot use a {type(v).__name__} of dtype {arr.dtype} as an operand")
    if arr.dtype.kind == "f":
        arr = arr.astype(get_default_dtype())
    return arr


def _to_dtype(v, dt, like, op):
    """Operand ``v`` converted to the op's computation dtype ``dt``: Tensors through the differentiable
    cast, arrays and lists as constant Tensors on ``like``'s device, scalars as Python numbers."""
    if isinstance(v, Tensor):
        return v if v.array.dtype == dt else Cast.apply(v, dt)
    if isinstance(v, (list, tuple)):
        v = _list_array(v, op)
    if hasattr(v, "shape") and not isinstance(v, np.generic):  # a NumPy or CuPy array
        arr = v.astype(dt, copy=False)
        return Tensor._make(arr if like is None else move_array(arr, like.device))
    # a Python/NumPy scalar: a Python number (NumPy then keeps the array's dtype, as PyTorch does)
    if dt.kind == "f":
        return builtins.float(v)
    if dt.kind == "b":
        return builtins.bool(v)
    v = builtins.int(v)
    info = np.iinfo(dt)
    if not info.min <= v <= info.max:
        v = builtins.int(np.asarray(v & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64).astype(dt))  # wraps, as PyTorch
    return v


def _check_operand(v, op, a, b):
    if isinstance(v, (Tensor, np.ndarray, list, tuple, np.generic) + _Number) or _is_array(v):
        if isinstance(v, (np.generic, np.ndarray)) and v.dtype.kind not in _CATEGORY:
            raise DTypeError(f"{op}: unsupported operand dtype {v.dtype} ({_brief(a)} and {_brief(b)})")
        return
    if isinstance(v, numbers.Real):
        return
    raise DTypeError(f"{op}: unsupported operand types {type(a).__name__} and {type(b).__name__} "
                     f"(expected Tensors, arrays or real numbers; got {_brief(a)} and {_brief(b)})")


def _operands(a, b, op, float_result=False):
    """Both operands of a binary op converted to their PyTorch result dtype (:func:`result_type`).

    Either side may be a Tensor, a NumPy/CuPy array, a list, or a Python/NumPy number (at least one
    operand becomes a Tensor). ``float_result``: an integer result type becomes the default float dtype
    (true division, atan2, ...). Anything else raises a DTypeError naming both types.
    """
    if isinstance(a, Tensor):  # fast paths: the common cases need no promotion
        k = a.array.dtype.kind
        if isinstance(b, Tensor):
            if a.array.dtype == b.array.dtype and (k == "f" or not float_result):
                return a, b
        elif k == "f" and type(b) in (builtins.float, builtins.int):
            return a, b
    elif isinstance(b, Tensor) and b.array.dtype.kind == "f" and type(a) in (builtins.float, builtins.int):
        return a, b
    _check_operand(a, op, a, b)
    _check_operand(b, op, a, b)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        if isinstance(a, (list, tuple)) or (hasattr(a, "shape") and not isinstance(a, np.generic)):
            a = Tensor._make(_list_array(a, op) if isinstance(a, (list, tuple)) else a)
        elif isinstance(b, (list, tuple)) or (hasattr(b, "shape") and not isinstance(b, np.generic)):
            b = Tensor._make(_list_array(b, op) if isinstance(b, (list, tuple)) else b)
        else:  # two numbers: the first becomes a 0-d tensor of its default dtype
            a = Tensor._make(np.asarray(a, dtype=_participant(a)[1]))
    dt = result_type(a, b)
    if float_result and dt.kind != "f":
        dt = get_default_dtype()
    like = a if isinstance(a, Tensor) else b
    return _to_dtype(a, dt, like, op), _to_dtype(b, dt, like, op)


def _input(x, op):
    """The main input: a Tensor, or a number / (nested) list / array turned into one."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (list, tuple)):
        return Tensor._make(_list_array(x, op))
    if hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, np.generic):
        if x.dtype.kind not in _CATEGORY:
            raise DTypeError(f"{op}: cannot use an array of dtype {x.dtype}")
        return Tensor._make(x)
    if isinstance(x, (numbers.Real, np.generic)) and not isinstance(x, (builtins.str, builtins.bytes)):
        return Tensor._make(np.asarray(x, dtype=_participant(x)[1]))
    raise DTypeError(f"{op}: input must be a Tensor, got {_brief(x)}")


def _as_float(x):
    """Integer/bool tensors -> default float dtype (PyTorch's promotion for float-only math)."""
    if x.dtype.kind in "biu":
        return x.to(get_default_dtype())
    return x


def _const(arr):
    """A constant (no-grad) tensor around an array computed in forward (a mask, a slope map, ...).
    NumPy turns 0-d results into scalars; asarray makes them arrays again."""
    return Tensor._make(get_array_module(arr).asarray(arr))


def _zero_grad(g):
    """Gradient of a step function: zeros shaped like ``g`` (a constant)."""
    return _const(get_array_module(g.array).zeros_like(g.array))


def _xp_of(*args):
    for a in args:
        if hasattr(a, "dtype") and hasattr(a, "shape") and not isinstance(a, np.generic):
            return get_array_module(a)
    return np


# ------------------------------------------------------------------ arithmetic
class Add(Function):
    """y = a + b.   da = g,  db = g."""

    reads = ()

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    """y = a - b.   da = g,  db = -g."""

    reads = ()

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """y = a * b.   da = g * b,  db = g * a."""

    reads = ((1,), (0,))  # da reads b, db reads a: y = 3 * x never saves x

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        need_a, need_b = ctx.needs_input_grad
        return (g * b if need_a else None), (g * a if need_b else None)


class Div(Function):
    """y = a / b.   da = g / b,  db = -g * a / b^2."""

    reads = ((1,), (0, 1))

    @staticmethod
    def forward(ctx, a, b):
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        need_a, need_b = ctx.needs_input_grad
        return (g / b if need_a else None), (-g * a / (b * b) if need_b else None)


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
    """y = a ** b.   da = g * b * a^(b-1)  (0 for b == 0, as PyTorch),   db = g * a^b * log(a)."""

    reads = ((0, 1), (0, 1))

    @staticmethod
    def forward(ctx, a, b):
        return a ** b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        need_a, need_b = ctx.needs_input_grad
        ga = gb = None
        if need_a:
            if isinstance(b, Tensor):
                ga = g * b * a ** (b - 1)
            elif b == 0:
                ga = g * 0
            elif b == 1:
                ga = g
            elif b == 2:
                ga = g * (a * 2)
            else:
                ga = g * (b * a ** (b - 1))
        if need_b:
            if isinstance(a, Tensor):
                la = log(a)
            else:  # a number base: ln a (NaN for a < 0, as the forward)
                la = math.log(a) if a > 0 else (-math.inf if a == 0 else math.nan)
            gb = g * a ** b * la
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
        return g.to(ctx.src), None


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
        return g.to(ctx.src), None

    @classmethod
    def apply(cls, x, device):
        """The one op whose output lives on another device than its input: ``Function.apply`` would turn
        the output back into an array of the input's module, so this op records its node itself."""
        from ..autograd.grad_mode import is_grad_enabled

        record = x.requires_grad and is_grad_enabled()
        ctx = Context() if record else _NoGrad()
        ctx.needs_input_grad = (record, False)
        out = Tensor._make(cls.forward(ctx, x.array, device), record)
        if record:
            ctx.fn, ctx.args, ctx.saved = cls, (x, device), ()
            ctx.next_nodes = [x._ctx if x._ctx is not None else x, None]
            out._ctx = ctx
        return out


class _NoGrad:
    pass


def _alpha(alpha, op):
    """The ``alpha`` multiplier of add/sub: a real number (DTypeError naming its type otherwise)."""
    if isinstance(alpha, (numbers.Real, np.number, np.bool_)) and not isinstance(alpha, Tensor):
        return alpha
    raise DTypeError(f"{op}: alpha must be a real number, got {_brief(alpha)}")


def add(a, b, alpha=1):
    """y = a + alpha * b (PyTorch's type promotion, broadcasting; numbers and arrays on either side)."""
    if (type(alpha) is not builtins.int or alpha != 1) and _alpha(alpha, "add") != 1:
        b = mul(b, alpha)
    a, b = _operands(a, b, "add")
    return Add.apply(a, b)


def sub(a, b, alpha=1):
    """y = a - alpha * b."""
    if (type(alpha) is not builtins.int or alpha != 1) and _alpha(alpha, "sub") != 1:
        b = mul(b, alpha)
    a, b = _operands(a, b, "sub")
    t = a if isinstance(a, Tensor) else b
    if t.dtype.kind == "b":
        raise DTypeError("sub: subtraction of bool tensors is not supported (use logical_xor or ~)")
    return Sub.apply(a, b)


def rsub(a, b):
    """y = b - a."""
    return sub(b, a)


def mul(a, b):
    """y = a * b."""
    a, b = _operands(a, b, "mul")
    return Mul.apply(a, b)


def div(a, b, rounding_mode=None):
    """y = a / b: true division (integer operands give the default float dtype, as PyTorch);
    ``rounding_mode='floor'`` = floor_divide, ``'trunc'`` rounds toward zero."""
    if rounding_mode is not None:
        if rounding_mode == "floor":
            return floor_divide(a, b)
        if rounding_mode == "trunc":
            a, b = _operands(a, b, "div")
            dt = a.dtype if isinstance(a, Tensor) else b.dtype
            q = trunc(Div.apply(*_operands(a, b, "div", float_result=True)))
            return q if q.dtype == dt else q.to(dt)
        raise InvalidArgumentError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    a, b = _operands(a, b, "div", float_result=True)
    return Div.apply(a, b)


true_divide = div


def neg(x):
    """y = -x."""
    x = _input(x, "neg")
    if x.dtype.kind == "b":
        raise DTypeError("neg: negation of a bool tensor is not supported (use ~ or logical_not)")
    return Neg.apply(x)


def pow(a, b):
    """y = a ** b (either side a number)."""
    a, b = _operands(a, b, "pow")
    return Pow.apply(a, b)


def exp(x):
    """y = e^x."""
    return Exp.apply(_as_float(_input(x, "exp")))


def log(x):
    """y = ln x."""
    return Log.apply(_as_float(_input(x, "log")))


# ------------------------------------------------------------------ erf (reference + kernel)
def erf_reference(x):
    """Reference erf on a NumPy array: Python's math.erf, element by element (exact, slow)."""
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=x.dtype if x.dtype.kind == "f" else np.float64)


def erfc_reference(x):
    """Reference erfc = 1 - erf on a NumPy array: Python's math.erfc, element by element."""
    return np.asarray(np.frompyfunc(math.erfc, 1, 1)(x), dtype=x.dtype if x.dtype.kind == "f" else np.float64)


def _special(name, x):
    x = get_array_module(x).asarray(x)  # NumPy hands 0-d results around as scalars
    k = dispatch.get(name, x)
    if k is not None:
        return k(x)
    if get_array_module(x) is not np:
        import cupyx.scipy.special as sp

        return getattr(sp, name)(x)
    return (erf_reference if name == "erf" else erfc_reference)(x)


def erf_array(x):
    """erf on a float array: the ``erf`` kernel (a Numba ufunc over libm's erf) or :func:`erf_reference`
    (CuPy arrays: cupyx.scipy.special.erf)."""
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
        if ctx.needs_input_grad[0]:
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
    return Rounding.apply(_input(x, "round"), "round", check_int_value(decimals, "round", "decimals"))


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

    maximum/minimum (NaN propagates):  da = g * w_a,  w_a = 1/2 on a tie, 0 where b wins, else 1
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
        if y.dtype.kind == "f" and any(ctx.needs_input_grad):
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
        need_a, need_b = ctx.needs_input_grad[:2]
        return (g * _const(ctx.wa) if need_a else None), (g * _const(ctx.wb) if need_b else None), None, None


def maximum(a, b):
    """Elementwise max (NaN propagates); ties split the gradient half/half."""
    a, b = _operands(a, b, "maximum")
    return MaxMin.apply(a, b, True, False)


def minimum(a, b):
    a, b = _operands(a, b, "minimum")
    return MaxMin.apply(a, b, False, False)


def fmax(a, b):
    """Like maximum, but a NaN loses against a number."""
    a, b = _operands(a, b, "fmax")
    return MaxMin.apply(a, b, True, True)


def fmin(a, b):
    a, b = _operands(a, b, "fmin")
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
        z = _zero_grad(g)
        return z, z


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
        if hasattr(y, "dtype") and y.dtype.kind == "f" and ctx.needs_input_grad[1]:
            with np.errstate(all="ignore"):  # b == 0 gives NaN quotients, as the forward gives NaN
                ctx.q = xp.round((a - y) / b).astype(y.dtype)
        return y

    @staticmethod
    def backward(ctx, g):
        return g, (-g * _const(ctx.q) if ctx.needs_input_grad[1] else None), None


def floor_divide(a, b):
    a, b = _operands(a, b, "floor_divide")
    return FloorDivide.apply(a, b)


def remainder(a, b):
    a, b = _operands(a, b, "remainder")
    return Mod.apply(a, b, "remainder")


def fmod(a, b):
    a, b = _operands(a, b, "fmod")
    return Mod.apply(a, b, "fmod")


class Lerp(Function):
    """y = start + w * (end - start).

    dstart = g * (1 - w),  dend = g * w,  dw = g * (end - start).
    """

    reads = ((2,), (2,), (0, 1))

    @staticmethod
    def forward(ctx, start, end, w):
        return start + w * (end - start)

    @staticmethod
    def backward(ctx, g):
        start, end, w = ctx.args
        n = ctx.needs_input_grad
        return (g * (1 - w) if n[0] else None), (g * w if n[1] else None), (g * (end - start) if n[2] else None)


def lerp(start, end, weight):
    """y = start + weight * (end - start) (floating point; ``end``/``weight`` numbers or tensors)."""
    check_tensor(start, "lerp", "start")
    for v, nm in ((start, "start"), (end, "end"), (weight, "weight")):
        _check_operand(v, "lerp", start, v)
        if isinstance(v, Tensor) and v.dtype.kind != "f":
            raise DTypeError(f"lerp expects floating point tensors, got {nm} of dtype {v.dtype}")
    dt = result_type(start, end, weight)
    start, end, weight = (_to_dtype(v, dt, start, "lerp") for v in (start, end, weight))
    return Lerp.apply(start, end, weight)


class Atan2(Function):
    """y = atan2(a, b) (angle of the point (b, a)).   da = g b / (a^2 + b^2),  db = -g a / (a^2 + b^2)."""

    @staticmethod
    def forward(ctx, a, b):
        return _xp_of(a, b).arctan2(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        need_a, need_b = ctx.needs_input_grad
        r2 = a * a + b * b
        return (g * b / r2 if need_a else None), (-g * a / r2 if need_b else None)


def atan2(a, b):
    a, b = _operands(a, b, "atan2", float_result=True)
    return Atan2.apply(a, b)


def hypot(a, b):
    """sqrt(a^2 + b^2) (composed of differentiable ops)."""
    a, b = _operands(a, b, "hypot", float_result=True)
    return sqrt(a * a + b * b)


class LogAddExp(Function):
    """y = log(exp(a) + exp(b)) = max(a, b) + log1p(exp(-|a - b|)).

    da = g * exp(a - y),  db = g * exp(b - y)   (= softmax weights of the pair).
    """

    reads = ((0,), (1,))
    uses_output = True

    @staticmethod
    def forward(ctx, a, b):
        return _xp_of(a, b).logaddexp(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        need_a, need_b = ctx.needs_input_grad
        y = ctx.output
        return (g * (a - y).exp() if need_a else None), (g * (b - y).exp() if need_b else None)


def logaddexp(a, b):
    a, b = _operands(a, b, "logaddexp", float_result=True)
    return LogAddExp.apply(a, b)


# ------------------------------------------------------------------ clamp
class Clamp(Function):
    """y = min(max(x, lo), hi)  (lo/hi: numbers, tensors or None; if lo > hi every value becomes hi).

    dx  = g * [lo <= x <= hi]           (both ends inclusive, as PyTorch)
    dlo = g * [x < lo and lo <= hi]
    dhi = g * [x > hi or lo > hi]
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, lo, hi):
        xp = get_array_module(x)
        y = x
        if lo is not None:
            y = xp.maximum(y, lo)  # NaN stays NaN, as PyTorch
        if hi is not None:
            y = xp.minimum(y, hi)
        y = xp.asarray(y)
        if y.dtype != x.dtype and x.dtype.kind == "f":
            y = y.astype(x.dtype)
        if not any(ctx.needs_input_grad):
            return y
        dt = y.dtype
        shape = y.shape
        inside = xp.ones(x.shape, dtype=bool)
        if lo is not None:
            inside = inside & (x >= lo)
        if hi is not None:
            inside = inside & (x <= hi)
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
        n = ctx.needs_input_grad
        return ((g * _const(ctx.mx) if n[0] else None), (g * _const(ctx.mlo) if n[1] else None),
                (g * _const(ctx.mhi) if n[2] else None))


def clamp(x, min=None, max=None):
    """Clamp every element into [min, max]; ``min``/``max`` are numbers, tensors (broadcast) or None."""
    x = _input(x, "clamp")
    if min is None and max is None:
        raise InvalidArgumentError("clamp: at least one of min and max must be given")
    bounds = [v for v in (min, max) if v is not None]
    for v in bounds:
        _check_operand(v, "clamp", x, v)
    dt = result_type(x, *bounds)
    x = _to_dtype(x, dt, x, "clamp")
    lo = _to_dtype(min, dt, x, "clamp") if min is not None else None
    hi = _to_dtype(max, dt, x, "clamp") if max is not None else None
    return Clamp.apply(x, lo, hi)


clip = clamp


def clamp_min(x, min):
    return clamp(x, min=min)


def clamp_max(x, max):
    return clamp(x, max=max)


# ------------------------------------------------------------------ where / nan_to_num
class Where(Function):
    """y = a where cond else b (broadcast).   da = where(cond, g, 0),  db = where(cond, 0, g).

    Both gradients read ``cond`` (version-checked: editing the mask in place after the forward raises)."""

    reads = ((), (0,), (0,), ())

    @staticmethod
    def forward(ctx, cond, a, b, dtype):
        out = _xp_of(cond, a, b).where(cond, a, b)
        return out.astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        cond = ctx.args[0]
        n = ctx.needs_input_grad
        ga = Where.apply(cond, g, 0.0, g.dtype) if n[1] else None
        gb = Where.apply(cond, 0.0, g, g.dtype) if n[2] else None
        return None, ga, gb, None


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
    _check_operand(input, "where", input, other)
    _check_operand(other, "where", input, other)
    dtype = result_type(input, other)
    a = _to_dtype(input, dtype, condition, "where")
    b = _to_dtype(other, dtype, condition, "where")
    return Where.apply(condition, a, b, dtype)


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
        if ctx.needs_input_grad[0]:
            ctx.finite = xp.isfinite(x).astype(x.dtype)
        return xp.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, g):
        return g * _const(ctx.finite), None, None, None


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    x = _input(x, "nan_to_num")
    nan = check_number(nan, "nan_to_num", "nan")
    posinf = check_number(posinf, "nan_to_num", "posinf", allow_none=True)
    neginf = check_number(neginf, "nan_to_num", "neginf", allow_none=True)
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
        a, b = _operands(a, b, op)  # compared in the promoted dtype, as PyTorch
        return Compare.apply(a, b, op)

    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"Elementwise ``a {dict(eq='==', ne='!=', lt='<', le='<=', gt='>', ge='>=')[op]} b`` (bool tensor)."
    return fn


eq, ne, lt, le, gt, ge = (_make_cmp(o) for o in ("eq", "ne", "lt", "le", "gt", "ge"))
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def _logical(op):
    def fn(a, b):
        a, b = _operands(a, b, op)
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
        a, b = _operands(a, b, op)
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
    a, b = _operands(a, b, "isclose")
    rtol, atol = check_number(rtol, "isclose", "rtol"), check_number(atol, "isclose", "atol")
    equal_nan = check_flag(equal_nan, "isclose", "equal_nan")
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
