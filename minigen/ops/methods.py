"""Every Tensor method and operator that runs an op, declared in this one table.

``minigen.tensor`` defines the data structure; the ops live in their topic files; this table says
which op each method is, and :func:`attach` sets them on :class:`~minigen.tensor.Tensor` once, when
``minigen.ops`` is imported. A method named here runs the function of the same name in the
``minigen.ops`` namespace with the tensor as its first argument, wherever that function lives.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..argcheck import check_addc, check_tensor
from ..backend import get_array_module
from ..errors import DTypeError
from ..autograd.grad_mode import STATE
from ..tensor import Tensor
from . import inplace

# x.name(...) == ops.name(x, ...)
SAME_NAME = (
    "abs absolute acos acosh add addmm all allclose amax amin aminmax any arccos arcsin arctan argmax argmin "
    "asin asinh atan atan2 atanh baddbmm bitwise_and bitwise_not bitwise_or bitwise_xor bmm broadcast_to ceil "
    "chunk clamp clamp_max clamp_min clip clone contiguous cos cosh count_nonzero cumprod cumsum div dot "
    "eq equal erf erfc exp exp2 expand expand_as expm1 fix flatten flip fliplr flipud floor floor_divide fmax "
    "fmin fmod frac gather ge ger greater greater_equal gt hypot index_add index_select inner isclose isfinite isinf "
    "isnan isneginf isposinf le lerp less less_equal log log10 log1p log2 log_softmax logaddexp logical_and "
    "logical_not logical_or logical_xor logsumexp lt masked_fill masked_select matmul max maximum mean min "
    "minimum mm moveaxis movedim mul mv nan_to_num narrow ne neg norm not_equal outer permute "
    "pow prod ravel reciprocal relu remainder repeat repeat_interleave reshape reshape_as roll round rsqrt "
    "scatter scatter_add select sgn sigmoid sign sin sinh softmax split sqrt square squeeze std sub sum sum_to "
    "sum_to_size swapaxes swapdims take_along_dim tan tanh tensor_split tile transpose tril triu true_divide trunc "
    "unbind unflatten unsqueeze var view view_as"
).split()

# more x.name(...) == ops.name(x, ...): sorting/selection, and PyTorch methods added for ported programs
SAME_NAME += "sort argsort msort topk kthvalue unique nonzero diag".split()

# x.name_(...) writes ops.name(x, ...) into x (see minigen.ops.inplace)
IN_PLACE = (
    "abs ceil clamp clamp_max clamp_min clip cos erf expm1 floor fmod frac lerp log1p nan_to_num reciprocal "
    "remainder round rsqrt sign sin sqrt square trunc sigmoid tanh exp log neg"
).split()

# more in-place variants of elementwise ops (shape-preserving), as PyTorch has them
IN_PLACE += (
    "absolute acos acosh addmm arccos arcsin arctan asin asinh atan2 atan atanh baddbmm bitwise_and bitwise_not "
    "bitwise_or bitwise_xor cosh cumprod cumsum eq erfc exp2 fix floor_divide ge greater greater_equal gt hypot le "
    "less less_equal log10 log2 logical_and logical_not logical_or logical_xor lt ne not_equal sgn sinh tan tril triu "
    "true_divide"
).split()

# methods defined in minigen.ops.inplace (conversions and the in-place machinery)
FROM_INPLACE = (
    "to cpu cuda float double half long int bool byte char short bernoulli multinomial type_as _inplace _view_chain add_ sub_ mul_ div_ pow_ "
    "neg_ zero_ fill_ copy_ __setitem__ __iadd__ __isub__ __imul__ __itruediv__"
).split()
FROM_INPLACE += (
    "t t_ type addcmul_ addcdiv_ normal_ uniform_ bernoulli_ exponential_ random_ geometric_ log_normal_ "
    "cauchy_ new_tensor new_zeros new_ones new_full new_empty"
).split()

_NUMBER = (numbers.Number, np.generic)
_OPERAND = (Tensor, np.ndarray, list, tuple) + _NUMBER


class _Scratch:
    needs_input_grad = (False, False)


_SCRATCH = _Scratch()


def _fast_function(name):
    """The Function of the four arithmetic operators: called straight on the arrays when nothing is recorded."""
    from . import pointwise

    return {"add": pointwise.Add, "sub": pointwise.Sub, "mul": pointwise.Mul, "div": pointwise.Div}.get(name)


def _binary(name, reflected=False):
    fn = _NS[name]  # bound once, when the table is attached
    ff = _fast_function(name)
    state = STATE
    ndarray = np.ndarray

    def op(a, b):
        if ff is not None and type(b) is Tensor and not state.anomaly:
            # the four arithmetic operators on two tensors of one float dtype: no promotion to work out, so
            # the public function's argument handling is skipped (the result is the same Function's)
            x, y = (b.array, a.array) if reflected else (a.array, b.array)
            if x.dtype == y.dtype and x.dtype.kind == "f":
                if not (state.enabled and (a.requires_grad or b.requires_grad)):
                    # nothing is recorded (no_grad, or a first-order backward's formula): NumPy arrays of
                    # one shape (or a 0-d side) need no graph node either -- the op's forward on the arrays
                    if type(x) is ndarray and type(y) is ndarray and (x.shape == y.shape or x.ndim == 0
                                                                        or y.ndim == 0):
                        return Tensor._make(ff.forward(_SCRATCH, x, y))
                return ff.apply(b, a) if reflected else ff.apply(a, b)
        if type(b) is not Tensor and not isinstance(b, _OPERAND) and get_array_module(b) is np:
            # (a CuPy array is an operand)
            if name in ("eq", "ne"):
                return NotImplemented  # t == None is False (Python's identity fallback), as PyTorch
            x, y = (b, a) if reflected else (a, b)
            raise DTypeError(f"{name}: unsupported operand types {type(x).__name__} and {type(y).__name__} "
                             f"(expected Tensors, arrays or real numbers)")
        return fn(b, a) if reflected else fn(a, b)

    op.__name__ = name
    return op


def _no_shift(symbol):
    def op(a, b):
        raise DTypeError(f"bit shift {symbol}: minigen has no shift ops (operands {type(a).__name__} and "
                         f"{type(b).__name__}); multiply or floor-divide by 2**k instead")

    return op


# operator: (op name, reflected)
OPERATORS = {
    "__add__": ("add", False), "__radd__": ("add", True), "__sub__": ("sub", False), "__rsub__": ("sub", True),
    "__mul__": ("mul", False), "__rmul__": ("mul", True), "__truediv__": ("div", False),
    "__rtruediv__": ("div", True), "__pow__": ("pow", False), "__rpow__": ("pow", True),
    "__matmul__": ("matmul", False), "__rmatmul__": ("matmul", True), "__floordiv__": ("floor_divide", False),
    "__rfloordiv__": ("floor_divide", True), "__mod__": ("remainder", False), "__rmod__": ("remainder", True),
    "__and__": ("bitwise_and", False), "__rand__": ("bitwise_and", True), "__or__": ("bitwise_or", False),
    "__ror__": ("bitwise_or", True), "__xor__": ("bitwise_xor", False), "__rxor__": ("bitwise_xor", True),
    "__eq__": ("eq", False), "__ne__": ("ne", False), "__lt__": ("lt", False), "__le__": ("le", False),
    "__gt__": ("gt", False), "__ge__": ("ge", False),
}

# x.alias(...) == ops.name(x, ...)
ALIASES = {"multiply": "mul", "subtract": "sub", "divide": "div", "negative": "neg", "arctan2": "atan2",
           "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh", "argwhere": "nonzero"}

# methods whose body is not "the op of the same name"
OTHER = {
    "__neg__": lambda x: _NS["neg"](x),
    "__pos__": lambda x: x,
    "__abs__": lambda x: _NS["abs"](x),
    "__invert__": lambda x: _NS["bitwise_not"](x),
    "__getitem__": lambda x, index: _NS["getitem"](x, index),
    "where": lambda x, condition, other: _NS["where"](check_tensor(condition, "where", "condition"), x, other),
    "relu_": lambda x: _NS["relu"](x, inplace=True),
    "multiply_": lambda x, other: x.mul_(other),
    "divide_": lambda x, other: x.div_(other),
    "subtract_": lambda x, other, alpha=1: x.sub_(other, alpha=alpha),
    "negative_": lambda x: x.neg_(),
    "positive": lambda x: x,
    # divmod(a, b) = (a // b, a % b); without these NumPy's divmod ufunc would take ``divmod(t, ndarray)``
    "__divmod__": lambda x, other: (x.__floordiv__(other), x.__mod__(other)),
    "__rdivmod__": lambda x, other: (x.__rfloordiv__(other), x.__rmod__(other)),
    # no shift ops: say so (else NumPy's shift ufunc takes ``t << ndarray`` and fails inside)
    "__lshift__": _no_shift("<<"), "__rlshift__": _no_shift("<<"),
    "__rshift__": _no_shift(">>"), "__rrshift__": _no_shift(">>"),
    "addcmul": lambda x, t1, t2, value=1: x + check_addc("addcmul", t1, t2, value) * (t1 * t2),
    "addcdiv": lambda x, t1, t2, value=1: x + check_addc("addcdiv", t1, t2, value) * (t1 / t2),
    "index_add_": lambda x, *a, **k: _NS["_index_add_"](x, *a, **k),
    "masked_fill_": lambda x, *a, **k: _NS["_masked_fill_"](x, *a, **k),
    "scatter_": lambda x, *a, **k: _NS["_scatter_"](x, *a, **k),
    "scatter_add_": lambda x, *a, **k: _NS["_scatter_add_"](x, *a, **k),
}

PROPERTIES = {
    "T": lambda x: _NS["permute"](x, tuple(range(x.ndim))[::-1]),
    "mT": lambda x: _NS["transpose"](x, -2, -1),
    "H": lambda x: _NS["permute"](x, tuple(range(x.ndim))[::-1]),  # real tensors: the conjugate is the tensor
    "mH": lambda x: _NS["transpose"](x, -2, -1),
}

_NS: dict = {}


def _in_place(name):
    def method(x, *args, **kwargs):
        fn = _NS[name]
        return x._inplace(lambda a: fn(a, *args, **kwargs))

    method.__name__ = name + "_"
    return method


def attach(namespace: dict) -> None:
    """Set every method of the table on Tensor; ``namespace`` maps op names to functions."""
    _NS.update(namespace)
    missing = [n for n in SAME_NAME + IN_PLACE if n not in _NS]
    missing += [n for n, _ in OPERATORS.values() if n not in _NS]
    missing += [n for n in ("_index_add_", "_masked_fill_", "_scatter_", "_scatter_add_", "getitem", "view",
                            "broadcast_to", "reshape", "where", "permute", "transpose") if n not in _NS]
    if missing:
        raise ImportError(f"minigen.ops.methods: the table names ops that do not exist: {sorted(set(missing))}")
    for name in SAME_NAME:
        setattr(Tensor, name, _NS[name])
    for alias, name in ALIASES.items():
        setattr(Tensor, alias, _NS[name])
    for name in IN_PLACE:
        setattr(Tensor, name + "_", _in_place(name))
    for name in FROM_INPLACE:
        setattr(Tensor, name, getattr(inplace._Methods, name))
    for name, (op, reflected) in OPERATORS.items():
        setattr(Tensor, name, _binary(op, reflected))
    for name, fn in OTHER.items():
        setattr(Tensor, name, fn)
    for name, fn in PROPERTIES.items():
        setattr(Tensor, name, property(fn))
