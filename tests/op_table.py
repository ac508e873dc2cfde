"""THE table of ops: one row per public op, read by tests/test_op_table.py.

Each row says, for one minigen op (or one fixed configuration of it):

- ``fn``: the minigen callable, called as ``fn(*args)``;
- ``torch``: the PyTorch twin, a dotted path (``"torch.sin"``, ``"torch.nn.functional.gelu"``, or
  ``"Tensor.reshape"`` for a method of the first argument) called with the same ``args`` (and ``kwargs``;
  ``torch_kwargs`` where PyTorch spells them differently); None where PyTorch has no public twin;
- ``inputs``: a Hypothesis strategy drawing the tuple ``args`` (float64 Tensors with requires_grad,
  plus any index tensors, dims, sizes), built on :mod:`minigen.testing.strategies`; value ranges keep
  finite differences away from kinks and domain edges;
- ``second_order``: whether gradgradcheck runs (the ops WGAN-GP and friends differentiate twice);
- ``kernels``: the registry names (``minigen.kernels.dispatch.kernel_names()``) the op asks for and is
  handed when kernels are forced on (``dispatch.use_kernels()``); the test checks this column against
  ``dispatch.stats()``, so it cannot go stale;
- ``differentiable``: False for ops without a gradient (comparisons, argmax, sort indices, ...):
  only the forward is compared;
- ``gpu``: whether the op runs on the CuPy backend (emulated or real) and is compared with the CPU there.

- ``may_use``: kernels that run for some drawn inputs only (softmax over the last dim, the conv family whose
  kernel rule picks direct loops or im2col by geometry); ``gradcheck=False`` where finite differences cannot
  see a documented convention (``padding_idx`` rows get no gradient by definition).

Rows are named ``<op>`` or ``<op>_<variant>``; :data:`ALIASES` maps PyTorch's alias names to the row whose
function they are.

Adding an op: one ``op(name, fn, torch_path, inputs, second_order=..., kernels=...)`` call below; every
check in tests/test_op_table.py then runs for it on every backend. ``tcall(torch_fn, *args)`` adapts the
call where PyTorch takes the arguments differently (a list for ``cat``, ``reduction=`` as a keyword).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
from hypothesis import assume, strategies as st

import minigen as mg
import minigen.nn.functional as F
from minigen.testing import strategies as mst

# ------------------------------------------------------------------ the row


@dataclass(frozen=True, repr=False)
class Op:
    name: str
    fn: Callable
    torch: Optional[str]
    inputs: Any                        # strategy of the positional args tuple
    second_order: bool = False
    kernels: tuple = ()
    kwargs: dict = field(default_factory=dict)
    torch_kwargs: Optional[dict] = None
    differentiable: bool = True
    gpu: bool = True
    rtol: float = 1e-10                # vs torch, float64
    atol: float = 1e-12
    check_dtype: bool = True
    tcall: Optional[Callable] = None   # how to call the torch twin: tcall(torch_fn, *args); default torch_fn(*args)
    may_use: tuple = ()                # kernels that run for some inputs only (softmax over the last dim, ...)
    gradcheck: bool = True             # False where finite differences cannot see the convention (padding_idx)

    def __repr__(self):
        return f"Op({self.name!r})"

    def call(self, *args):
        return self.fn(*args, **self.kwargs)

    def torch_fn(self):
        """The PyTorch twin as a callable of the same positional args (imports torch)."""
        import torch

        kw = self.kwargs if self.torch_kwargs is None else self.torch_kwargs
        path = self.torch
        if path.startswith("Tensor."):
            meth = path[len("Tensor."):]
            if self.tcall is not None:
                return lambda *a: self.tcall(getattr(torch.Tensor, meth), *a)
            return lambda x, *a: getattr(x, meth)(*a, **kw)
        obj = torch
        for part in path.split(".")[1:]:
            obj = getattr(obj, part)
        if self.tcall is not None:
            return lambda *a: self.tcall(obj, *a)
        return lambda *a: obj(*a, **kw)


ROWS: list = []


def op(name, fn, torch, inputs, **kw):
    ROWS.append(Op(name, fn, torch, inputs, **kw))


# ------------------------------------------------------------------ strategies (built on minigen.testing)
SHAPES = mst.shapes(max_dims=3, max_side=3)
SHAPES1 = mst.shapes(min_dims=1, max_dims=3, max_side=3)
SHAPES2 = mst.shapes(min_dims=2, max_dims=3, max_side=3)
POS = mst.floats(0.2, 2.0)
NONZERO = mst.away_from(0.0, -2, 2, 0.2)
UNIT = mst.floats(-0.9, 0.9)
PROB = mst.floats(0.05, 0.95)


def T(shape=None, elements=None, grad=True, noncontiguous=None):
    return mst.tensors(shape=SHAPES if shape is None else shape, elements=elements, requires_grad=grad,
                       noncontiguous=noncontiguous)


def not_near_int(lo, hi, margin=0.05):
    return mst.floats(lo, hi).filter(lambda v: abs(v - round(v)) > margin)


def unary(elements=None, shape=None):
    return st.tuples(T(shape, elements))


@st.composite
def broadcast_pair(draw, ea=None, eb=None, max_dims=3):
    sa, sb = draw(mst.mutually_broadcastable_shapes(2, max_dims=max_dims, max_side=3)).input_shapes
    return draw(T(sa, ea)), draw(T(sb, eb))


@st.composite
def same_shape(draw, *elements, shape=None, grads=None):
    shp = draw(SHAPES if shape is None else shape) if not isinstance(shape, tuple) else shape
    grads = grads or (True,) * len(elements)
    return tuple(draw(T(shp, e, g)) for e, g in zip(elements, grads))


@st.composite
def with_dim(draw, elements=None, shape=SHAPES1, keepdim=False, kind="int", allow_none=False):
    """(x, dim) or (x, dim, keepdim): dim an int (negative included), a tuple, or None."""
    x = draw(T(shape, elements))
    if kind == "int":
        dim = draw(mst.valid_dim(x.ndim))
        if allow_none and draw(st.booleans()):
            dim = None
    else:
        dim = draw(mst.valid_dims(x.ndim, allow_none=allow_none))
    return (x, dim, draw(st.booleans())) if keepdim else (x, dim)


def distinct(shape=SHAPES1, scale=0.1):
    """A tensor of distinct values (a permutation of a grid): max/min/sort have no ties to split."""
    @st.composite
    def strat(draw):
        shp = draw(shape) if not isinstance(shape, tuple) else shape
        n = int(np.prod(shp))
        perm = draw(st.permutations(range(n)))
        arr = (np.array(perm, dtype=np.float64).reshape(shp) - n / 2) * scale
        return mg.tensor(arr, requires_grad=True)
    return strat()


@st.composite
def distinct_with_dim(draw, keepdim=True, shape=SHAPES1):
    x = draw(distinct(shape))
    dim = draw(mst.valid_dim(x.ndim))
    return (x, dim, draw(st.booleans())) if keepdim else (x, dim)


@st.composite
def _distinct_dims(draw):
    x = draw(distinct(mst.shapes(1, 3, min_side=2, max_side=3)))
    return x, draw(mst.valid_dims(x.ndim))


def ints(shape, lo, hi):
    return mst.arrays(shape, "int64", elements=st.integers(lo, hi)).map(mg.tensor)


def torch_full(like, n, value):
    """A torch vector of n copies of value with ``like``'s dtype (for torch twins that need constants)."""
    import torch

    return torch.full((n,), value, dtype=like.dtype)


def bools(shape):
    return mst.arrays(shape, "bool", elements=st.booleans()).map(mg.tensor)


_SPECIAL_VALUES = st.sampled_from([0.0, 1.5, -2.0, np.inf, -np.inf, np.nan])

# ================================================================== pointwise: unary float ops
_UNARY = [  # name, fn, torch path, elements, second order
    ("exp", mg.exp, None, True), ("log", mg.log, POS, True), ("neg", mg.neg, None, True),
    ("sqrt", mg.sqrt, mst.floats(0.1, 3), True), ("rsqrt", mg.rsqrt, mst.floats(0.1, 3), True),
    ("sin", mg.sin, mst.floats(-3, 3), True), ("cos", mg.cos, mst.floats(-3, 3), True),
    ("tan", mg.tan, mst.floats(-1.2, 1.2), True), ("asin", mg.asin, UNIT, True), ("acos", mg.acos, UNIT, True),
    ("atan", mg.atan, mst.floats(-3, 3), True), ("sinh", mg.sinh, None, True), ("cosh", mg.cosh, None, True),
    ("asinh", mg.asinh, mst.floats(-3, 3), True), ("acosh", mg.acosh, mst.floats(1.1, 3), True),
    ("atanh", mg.atanh, UNIT, True), ("erf", mg.erf, mst.floats(-3, 3), True),
    ("erfc", mg.erfc, mst.floats(-3, 3), True), ("log1p", mg.log1p, mst.floats(-0.9, 3), True),
    ("expm1", mg.expm1, None, True), ("log2", mg.log2, mst.floats(0.1, 3), True),
    ("log10", mg.log10, mst.floats(0.1, 3), True), ("exp2", mg.exp2, None, True),
    ("square", mg.square, None, True), ("reciprocal", mg.reciprocal, NONZERO, True),
    ("abs", mg.abs, mst.away_from(0.0), True), ("frac", mg.frac, not_near_int(-3, 3), True),
    ("nan_to_num", mg.nan_to_num, None, True),
    # steps: zero gradient away from the jumps (PyTorch's convention), checked by gradcheck too
    ("floor", mg.floor, not_near_int(-3, 3), False), ("ceil", mg.ceil, not_near_int(-3, 3), False),
    ("round", mg.round, mst.floats(-3, 3).filter(lambda v: abs(v - math.floor(v) - 0.5) > 0.05), False),
    ("trunc", mg.trunc, not_near_int(-3, 3), False), ("sign", mg.sign, mst.away_from(0.0), False),
    ("sgn", mg.sgn, mst.away_from(0.0), False),
]
_UNARY[2] = ("neg", lambda x: -x, None, True)  # the operator (mg.neg is the same Function)
for _n, _f, _e, _so in _UNARY:
    op(_n, _f, f"torch.{_n}", unary(_e), second_order=_so, kernels=(_n,) if _n in ("erf", "erfc") else ())
op("round_decimals", mg.round, "torch.round", unary(mst.floats(-3, 3).filter(lambda v: abs(v * 10 - math.floor(v * 10) - 0.5) > 0.05)),
   kwargs=dict(decimals=1))
op("pow_scalar", lambda x: x ** 3, "torch.pow", unary(), second_order=True, tcall=lambda f, x: f(x, 3))
op("pow_half", lambda x: x ** 0.5, "torch.pow", unary(POS), second_order=True, tcall=lambda f, x: f(x, 0.5))
op("pow_neg", lambda x: mg.pow(x, -1.5), "torch.pow", unary(POS), second_order=True, tcall=lambda f, x: f(x, -1.5))
op("pow_two", lambda x: x ** 2, "torch.pow", unary(), second_order=True, tcall=lambda f, x: f(x, 2))
op("rpow", lambda x: 2.0 ** x, "torch.pow", unary(), second_order=True, tcall=lambda f, x: f(2.0, x))
op("nan_to_num_values", lambda x: mg.nan_to_num(mg.log(x), nan=0.5, posinf=3.0, neginf=-3.0), "torch.nan_to_num",
   st.tuples(mst.arrays((2, 3), "float64", _SPECIAL_VALUES).map(mg.tensor)),
   tcall=lambda f, x: f(x.log(), nan=0.5, posinf=3.0, neginf=-3.0), differentiable=False)

# ================================================================== pointwise: binary (broadcasting)
_OPERATORS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,  # (mg.add with
              "div": lambda a, b: a / b, "pow": lambda a, b: a ** b}                          # alpha: add_alpha)
GRID_A = st.integers(-20, 20).map(lambda k: k * 0.1 + 0.05)  # a and b never tie: |a - b| >= 0.05
GRID_B = st.integers(-20, 20).map(lambda k: k * 0.1)
for _n, _ea, _eb, _so in [("add", None, None, True), ("sub", None, None, True), ("mul", None, None, True),
                          ("div", None, NONZERO, True), ("pow", POS, None, True),
                          ("maximum", GRID_A, GRID_B, True), ("minimum", GRID_A, GRID_B, True),
                          ("fmax", GRID_A, GRID_B, False), ("fmin", GRID_A, GRID_B, False),
                          ("atan2", NONZERO, NONZERO, True), ("hypot", NONZERO, None, False),
                          ("logaddexp", mst.floats(-3, 3), mst.floats(-3, 3), True)]:
    op(_n, _OPERATORS.get(_n, getattr(mg, _n)), f"torch.{_n}", broadcast_pair(_ea, _eb), second_order=_so)
op("add_alpha", mg.add, "torch.add", broadcast_pair(), kwargs=dict(alpha=2.5))
op("sub_alpha", mg.sub, "torch.sub", broadcast_pair(), kwargs=dict(alpha=-0.5))
op("rsub", mg.rsub, "torch.rsub", broadcast_pair())


@st.composite
def _mod_inputs(draw):
    a, b = draw(broadcast_pair(mst.floats(-3, 3), mst.away_from(0.0, -2, 2, 0.3)))
    q = a.array / b.array  # keep a / b away from the integers where remainder/fmod jump
    if np.any(np.abs(q - np.round(q)) < 0.02):
        assume(False)
    return a, b


op("remainder", mg.remainder, "torch.remainder", _mod_inputs())
op("fmod", mg.fmod, "torch.fmod", _mod_inputs())
op("floor_divide", mg.floor_divide, "torch.floor_divide",
   _mod_inputs().map(lambda ab: (ab[0].detach(), ab[1].detach())), differentiable=False)
op("lerp", mg.lerp, "torch.lerp", same_shape(None, None, mst.floats(0, 1)), second_order=True)
op("lerp_scalar_weight", mg.lerp, "torch.lerp", same_shape(None, None).map(lambda t: t + (0.25,)))
op("clamp", mg.clamp, "torch.clamp", unary(mst.away_from((-0.5, 0.5))), kwargs=dict(min=-0.5, max=0.5))
op("clamp_tensor_bounds", mg.clamp, "torch.clamp",
   same_shape(GRID_A, st.integers(-20, 0).map(lambda k: k * 0.1), st.integers(1, 20).map(lambda k: k * 0.1)))
op("clamp_min", mg.clamp_min, "torch.clamp_min", unary(mst.away_from(0.3)), kwargs=dict(min=0.3))
op("clamp_max", mg.clamp_max, "torch.clamp_max", unary(mst.away_from(0.3)), kwargs=dict(max=0.3))


@st.composite
def _where_inputs(draw):
    a, b = draw(same_shape(None, None))
    return draw(bools(a.shape)), a, b


op("where", mg.where, "torch.where", _where_inputs(), second_order=True)
# comparisons and logic: no gradient, compared with torch forward (bool outputs)
for _n in ("eq", "ne", "lt", "le", "gt", "ge"):
    op(_n, getattr(mg, _n), f"torch.{_n}", broadcast_pair(GRID_A, GRID_B), differentiable=False)
op("isclose", mg.isclose, "torch.isclose", broadcast_pair(GRID_A, GRID_B), differentiable=False)
for _n in ("logical_and", "logical_or", "logical_xor"):
    op(_n, getattr(mg, _n), f"torch.{_n}", st.tuples(bools((2, 3)), bools((2, 3))), differentiable=False)
op("logical_not", mg.logical_not, "torch.logical_not", st.tuples(bools((2, 3))), differentiable=False)
for _n in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    op(_n, getattr(mg, _n), f"torch.{_n}", st.tuples(ints((2, 3), -5, 9), ints((3,), -5, 9)), differentiable=False)
op("bitwise_not", mg.bitwise_not, "torch.bitwise_not", st.tuples(ints((2, 3), -5, 9)), differentiable=False)
for _n in ("isnan", "isinf", "isposinf", "isneginf", "isfinite"):
    op(_n, getattr(mg, _n), f"torch.{_n}", st.tuples(mst.arrays((2, 3), "float64", _SPECIAL_VALUES).map(mg.tensor)),
       differentiable=False)

# ================================================================== activations
_ACT = [  # name, fn, torch path, torch kwargs, elements, second order, kernels
    ("sigmoid", mg.sigmoid, "torch.sigmoid", {}, mst.floats(-4, 4), True, ("sigmoid_forward", "sigmoid_backward")),
    ("tanh", mg.tanh, "torch.tanh", {}, mst.floats(-3, 3), True, ()),
    ("relu", F.relu, "torch.nn.functional.relu", {}, mst.away_from(0.0), True, ("masked_linear_forward",)),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.1), "torch.nn.functional.leaky_relu", {"negative_slope": 0.1},
     mst.away_from(0.0), True, ("masked_linear_forward",)),
    ("elu", lambda x: F.elu(x, 0.7), "torch.nn.functional.elu", {"alpha": 0.7}, mst.away_from(0.0), True, ()),
    ("selu", F.selu, "torch.nn.functional.selu", {}, mst.away_from(0.0), True, ()),
    ("celu", lambda x: F.celu(x, 0.5), "torch.nn.functional.celu", {"alpha": 0.5}, mst.away_from(0.0), True, ()),
    ("gelu", F.gelu, "torch.nn.functional.gelu", {}, mst.floats(-3, 3), True, ("gelu_forward_grad",)),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), "torch.nn.functional.gelu", {"approximate": "tanh"},
     mst.floats(-3, 3), True, ("gelu_forward", "gelu_backward")),
    ("silu", F.silu, "torch.nn.functional.silu", {}, mst.floats(-3, 3), True, ("silu_forward", "silu_backward")),
    ("mish", F.mish, "torch.nn.functional.mish", {}, mst.floats(-3, 3), True, ()),
    ("softplus", lambda x: F.softplus(x, beta=2.0, threshold=3.0), "torch.nn.functional.softplus",
     {"beta": 2.0, "threshold": 3.0}, mst.away_from(1.5, -3, 3), True, ()),
    ("logsigmoid", F.logsigmoid, "torch.nn.functional.logsigmoid", {}, mst.floats(-4, 4), True, ()),
    ("hardtanh", lambda x: F.hardtanh(x, -0.5, 1.0), "torch.nn.functional.hardtanh",
     {"min_val": -0.5, "max_val": 1.0}, mst.away_from((-0.5, 1.0)), False, ()),
    ("relu6", F.relu6, "torch.nn.functional.relu6", {}, mst.away_from((0.0, 6.0), -2, 8), False, ()),
    ("hardsigmoid", F.hardsigmoid, "torch.nn.functional.hardsigmoid", {}, mst.away_from((-3.0, 3.0), -4, 4),
     False, ()),
    ("hardswish", F.hardswish, "torch.nn.functional.hardswish", {}, mst.away_from((-3.0, 3.0), -4, 4), True, ()),
    ("softsign", F.softsign, "torch.nn.functional.softsign", {}, mst.away_from(0.0), True, ()),
    ("tanhshrink", F.tanhshrink, "torch.nn.functional.tanhshrink", {}, mst.floats(-3, 3), True, ()),
    ("threshold", lambda x: F.threshold(x, 0.5, -1.0), "torch.nn.functional.threshold",
     {"threshold": 0.5, "value": -1.0}, mst.away_from(0.5), False, ()),
]
SIGMOID_KERNELS = ("sigmoid_forward", "sigmoid_backward")  # ops whose formulas go through sigmoid()
for _n, _f, _tp, _tk, _e, _so, _k in _ACT:
    # PyTorch's float64 hardsigmoid backward multiplies by a float32 1/6 (0.16666667163...)
    op(_n, _f, _tp, unary(_e), second_order=_so, kernels=_k, torch_kwargs=_tk,
       rtol=1e-7 if _n == "hardsigmoid" else 1e-10,
       may_use=SIGMOID_KERNELS if _n in ("logsigmoid", "mish", "softplus") else ())
op("softmax", mg.softmax, "torch.softmax", with_dim(mst.floats(-4, 4)), second_order=True,
   may_use=("softmax_forward", "softmax_backward"))
op("softmax_last", lambda x: mg.softmax(x, -1), "torch.softmax", unary(mst.floats(-6, 6), SHAPES1),
   torch_kwargs={"dim": -1}, second_order=True, kernels=("softmax_forward", "softmax_backward"))
op("log_softmax", mg.log_softmax, "torch.log_softmax", with_dim(mst.floats(-4, 4)), second_order=True,
   may_use=("log_softmax_forward", "log_softmax_backward"))
op("log_softmax_last", lambda x: mg.log_softmax(x, -1), "torch.log_softmax", unary(mst.floats(-6, 6), SHAPES1),
   torch_kwargs={"dim": -1}, second_order=True, kernels=("log_softmax_forward", "log_softmax_backward"))
op("softmin", F.softmin, "torch.nn.functional.softmin", with_dim(mst.floats(-4, 4)), second_order=True,
   may_use=("softmax_forward", "softmax_backward"))


@st.composite
def _glu_inputs(draw):
    shp = list(draw(SHAPES1))
    d = draw(mst.valid_dim(len(shp)))
    shp[d] = 2 * draw(st.integers(1, 2))
    return draw(T(tuple(shp))), d


op("glu", F.glu, "torch.nn.functional.glu", _glu_inputs(), second_order=True, may_use=SIGMOID_KERNELS)

# ================================================================== reductions
op("sum", mg.sum, "torch.sum", with_dim(keepdim=True, kind="dims"), second_order=True)
op("sum_all", mg.sum, "torch.sum", unary())
op("mean", mg.mean, "torch.mean", with_dim(keepdim=True, kind="dims", shape=SHAPES1), second_order=True)
op("prod", mg.prod, "torch.prod", with_dim(NONZERO, keepdim=True), second_order=True)
op("prod_all", mg.prod, "torch.prod", unary(NONZERO))
op("var", mg.var, "torch.var", with_dim(keepdim=False, kind="dims", shape=mst.shapes(1, 3, min_side=2, max_side=3)),
   second_order=True)
op("var_correction0", lambda x, d: mg.var(x, d, correction=0), "torch.var", with_dim(kind="dims"),
   torch_kwargs={"correction": 0}, second_order=True)
op("std", mg.std, "torch.std", _distinct_dims(), second_order=True)
op("var_mean", mg.var_mean, "torch.var_mean", with_dim(kind="dims", shape=mst.shapes(1, 3, min_side=2, max_side=3)))
op("std_mean", mg.std_mean, "torch.std_mean", _distinct_dims())
op("max_dim", mg.max, "torch.max", distinct_with_dim(), second_order=True)
op("min_dim", mg.min, "torch.min", distinct_with_dim(), second_order=True)
op("max_all", mg.max, "torch.max", st.tuples(distinct()))
op("min_all", mg.min, "torch.min", st.tuples(distinct()))
op("amax", mg.amax, "torch.amax", st.tuples(distinct()).map(lambda t: t + (-1, True)))
op("amin", mg.amin, "torch.amin", st.tuples(distinct()).map(lambda t: t + (0, False)))
op("aminmax", lambda x, d, k: mg.aminmax(x, dim=d, keepdim=k), "torch.aminmax", distinct_with_dim(),
   tcall=lambda f, x, d, k: f(x, dim=d, keepdim=k))
op("argmax", mg.argmax, "torch.argmax", distinct_with_dim(), differentiable=False)
op("argmin", mg.argmin, "torch.argmin", distinct_with_dim(), differentiable=False)
op("logsumexp", mg.logsumexp, "torch.logsumexp", with_dim(mst.floats(-3, 3), keepdim=True, kind="dims"),
   second_order=True)
op("norm_fro", mg.norm, "torch.norm", unary(NONZERO), second_order=True)
op("norm_p1_dim", lambda x, d: mg.norm(x, 1, d), "torch.norm", with_dim(NONZERO), tcall=lambda f, x, d: f(x, 1, d))
op("norm_p3_dim", lambda x, d: mg.norm(x, 3, d), "torch.norm", with_dim(NONZERO), tcall=lambda f, x, d: f(x, 3, d))
op("cumsum", mg.cumsum, "torch.cumsum", with_dim(), second_order=True)
op("cumprod", mg.cumprod, "torch.cumprod", with_dim(NONZERO))
op("all", mg.all, "torch.all", st.tuples(bools((2, 3)), st.sampled_from([0, 1, -1])), differentiable=False)
op("any", mg.any, "torch.any", st.tuples(bools((2, 3)), st.sampled_from([0, 1, -1])), differentiable=False)
op("count_nonzero", mg.count_nonzero, "torch.count_nonzero",
   st.tuples(ints((3, 4), -1, 1), st.sampled_from([0, 1, None])), differentiable=False)

# ================================================================== shape and layout
op("reshape", lambda x: mg.reshape(x, (-1,)), "torch.reshape", unary(), torch_kwargs={"shape": (-1,)},
   second_order=True)
op("reshape_2d", lambda x: mg.reshape(x, (3, -1)), "torch.reshape", unary(shape=(2, 3, 2)),
   torch_kwargs={"shape": (3, -1)})
op("view", lambda x: x.contiguous().view(-1, 2), "Tensor.view", unary(shape=(3, 2, 2)),
   tcall=lambda f, x: x.contiguous().view(-1, 2))
op("permute", lambda x: mg.permute(x, 2, 0, 1), "torch.permute", unary(shape=(2, 3, 2)),
   torch_kwargs={"dims": (2, 0, 1)}, second_order=True)
op("transpose", mg.transpose, "torch.transpose", unary(shape=(2, 3, 2)).map(lambda t: t + (0, -1)),
   second_order=True)
op("broadcast_to", lambda x: mg.broadcast_to(x, (2, 3, 3)), "torch.broadcast_to", unary(shape=(3, 1)),
   torch_kwargs={"size": (2, 3, 3)})
op("expand", lambda x: x.expand(2, 3, 3), "Tensor.expand", unary(shape=(1, 3)), second_order=True,
   tcall=lambda f, x: x.expand(2, 3, 3))
op("flatten", mg.flatten, "torch.flatten", unary(shape=(2, 3, 2)).map(lambda t: t + (1,)))
op("unflatten", mg.unflatten, "torch.unflatten", unary(shape=(2, 6)).map(lambda t: t + (1, (3, 2))))
op("squeeze", mg.squeeze, "torch.squeeze", unary(shape=(2, 1, 3)).map(lambda t: t + (1,)))
op("unsqueeze", mg.unsqueeze, "torch.unsqueeze", with_dim(shape=SHAPES).map(
    lambda t: (t[0], t[1] if t[0].ndim else 0)))
op("repeat", lambda x: x.repeat(2, 1, 3), "Tensor.repeat", unary(shape=(2, 3)), second_order=True,
   tcall=lambda f, x: x.repeat(2, 1, 3))
op("tile", mg.tile, "torch.tile", unary(shape=(2, 3)).map(lambda t: t + ((2, 2),)))
op("repeat_interleave", mg.repeat_interleave, "torch.repeat_interleave", unary(shape=(2, 3)).map(lambda t: t + (2, 1)))
op("cat", lambda a, b: mg.cat([a, b], 1), "torch.cat", tcall=lambda f, a, b: f([a, b], 1), inputs=same_shape(None, None, shape=(2, 3)), second_order=True)
op("stack", lambda a, b: mg.stack([a, b], -1), "torch.stack", tcall=lambda f, a, b: f([a, b], -1), inputs=same_shape(None, None, shape=(2, 3)))
op("hstack", lambda a, b: mg.hstack([a, b]), "torch.hstack", tcall=lambda f, a, b: f([a, b]), inputs=same_shape(None, None, shape=(2, 3)))
op("vstack", lambda a, b: mg.vstack([a, b]), "torch.vstack", tcall=lambda f, a, b: f([a, b]), inputs=same_shape(None, None, shape=(2, 3)))
op("split", mg.split, "torch.split", unary(shape=(5, 2)).map(lambda t: t + (2,)))
op("split_sections", mg.split, "torch.split", unary(shape=(5, 2)).map(lambda t: t + ([1, 4],)))
op("chunk", mg.chunk, "torch.chunk", unary(shape=(2, 5)).map(lambda t: t + (3, 1)))
op("unbind", mg.unbind, "torch.unbind", unary(shape=(3, 2)).map(lambda t: t + (1,)))
op("tensor_split", mg.tensor_split, "torch.tensor_split", unary(shape=(5, 2)).map(lambda t: t + (3,)))
op("select", mg.select, "torch.select", unary(shape=(3, 4)).map(lambda t: t + (1, -2)))
op("narrow", mg.narrow, "torch.narrow", unary(shape=(3, 4)).map(lambda t: t + (1, 1, 2)))
op("pad_constant", mg.pad, "torch.nn.functional.pad", unary(shape=(2, 3)).map(lambda t: t + ((1, 2, 0, 1),)),
   second_order=True)
op("pad_reflect", lambda x: mg.pad(x, (1, 2), mode="reflect"), "torch.nn.functional.pad",
   unary(shape=(2, 2, 4)), torch_kwargs={"pad": (1, 2), "mode": "reflect"})
op("pad_replicate", lambda x: mg.pad(x, (1, 2), mode="replicate"), "torch.nn.functional.pad",
   unary(shape=(2, 2, 4)), torch_kwargs={"pad": (1, 2), "mode": "replicate"})
op("pad_circular", lambda x: mg.pad(x, (1, 2), mode="circular"), "torch.nn.functional.pad",
   unary(shape=(2, 2, 4)), torch_kwargs={"pad": (1, 2), "mode": "circular"})
op("flip", mg.flip, "torch.flip", unary(shape=(2, 3, 2)).map(lambda t: t + ((0, 2),)))
op("fliplr", mg.fliplr, "torch.fliplr", unary(shape=(2, 3)))
op("flipud", mg.flipud, "torch.flipud", unary(shape=(2, 3)))
op("roll", mg.roll, "torch.roll", unary(shape=(3, 4)).map(lambda t: t + (1, 1)))
op("roll_flat", mg.roll, "torch.roll", unary(shape=(3, 4)).map(lambda t: t + (-2,)))
op("tril", mg.tril, "torch.tril", unary(shape=(3, 4)).map(lambda t: t + (0,)))
op("triu", mg.triu, "torch.triu", unary(shape=(2, 3, 4)).map(lambda t: t + (1,)))
op("movedim", mg.movedim, "torch.movedim", unary(shape=(2, 3, 2)).map(lambda t: t + (0, -1)))
op("swapaxes", mg.swapaxes, "torch.swapaxes", unary(shape=(2, 3, 2)).map(lambda t: t + (0, 1)))
op("clone", mg.clone, "torch.clone", unary())
op("contiguous", lambda x: x.transpose(0, 1).contiguous(), "Tensor.contiguous", unary(shape=(2, 3)),
   tcall=lambda f, x: x.transpose(0, 1).contiguous())
op("ravel", mg.ravel, "torch.ravel", unary(shape=(2, 3, 2)))
op("expand_as", mg.expand_as, "Tensor.expand_as", st.tuples(T((3, 1)), T((2, 3, 3), grad=False)))
op("reshape_as", mg.reshape_as, "Tensor.reshape_as", st.tuples(T((2, 3)), T((3, 2), grad=False)))
op("view_as", mg.view_as, "Tensor.view_as", st.tuples(T((2, 3), noncontiguous=False), T((6,), grad=False)))
op("sum_to_size", lambda x: mg.sum_to_size(x, 3, 1), "Tensor.sum_to_size", unary(shape=(2, 3, 4)),
   second_order=True, tcall=lambda f, x: x.sum_to_size(3, 1))
op("sum_to", lambda x: mg.sum_to(x, (1, 4)), "Tensor.sum_to_size", unary(shape=(2, 3, 4)),
   tcall=lambda f, x: x.sum_to_size(1, 4))
op("getitem_basic", lambda x: x[1:, ::2], "Tensor.__getitem__", unary(shape=(3, 4)), second_order=True,
   tcall=lambda f, x: x[1:, ::2])

# ================================================================== linear algebra
op("matmul", mg.matmul, "torch.matmul", st.sampled_from([((3,), (3,)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 2)),
                                                           ((3,), (2, 3, 2)), ((2, 1, 2, 3), (2, 3, 2))]).flatmap(
    lambda s: st.tuples(T(s[0]), T(s[1]))), second_order=True)
op("mm", mg.mm, "torch.mm", st.tuples(T((2, 3)), T((3, 4))), second_order=True)
op("bmm", mg.bmm, "torch.bmm", st.tuples(T((2, 2, 3)), T((2, 3, 4))), second_order=True)
op("diag", mg.diag, "torch.diag", st.sampled_from([(3,), (3, 4), (4, 2)]).flatmap(
    lambda s: st.tuples(T(s), st.integers(-1, 1))), second_order=True)
op("mv", mg.mv, "torch.mv", st.tuples(T((2, 3)), T((3,))))
op("dot", mg.dot, "torch.dot", st.tuples(T((4,)), T((4,))))
op("inner", mg.inner, "torch.inner", st.tuples(T((2, 3)), T((4, 3))))
op("outer", mg.outer, "torch.outer", st.tuples(T((3,)), T((4,))))
op("linear", F.linear, "torch.nn.functional.linear", st.sampled_from([(2, 3), (3,), (2, 2, 3)]).flatmap(
    lambda s: st.tuples(T(s), T((4, 3)), T((4,)))), second_order=True)
op("linear_no_bias", F.linear, "torch.nn.functional.linear", st.tuples(T((2, 3)), T((4, 3))), second_order=True)
op("bilinear", F.bilinear, "torch.nn.functional.bilinear", st.tuples(T((2, 3)), T((2, 2)), T((4, 3, 2)), T((4,))),
   second_order=True)
op("addmm", mg.addmm, "torch.addmm", st.tuples(T((2, 4)), T((2, 3)), T((3, 4))), kwargs=dict(beta=0.5, alpha=2.0))
op("baddbmm", mg.baddbmm, "torch.baddbmm", st.tuples(T((2, 2, 4)), T((2, 2, 3)), T((2, 3, 4))))
op("einsum", lambda a, b: mg.einsum("bij,bjk->bik", a, b), "torch.einsum",
   tcall=lambda f, a, b: f("bij,bjk->bik", a, b), inputs=st.tuples(T((2, 2, 3)), T((2, 3, 2))),
   second_order=True)
op("einsum_trace_outer", lambda a, b: mg.einsum("ii,j->j", a, b), "torch.einsum",
   tcall=lambda f, a, b: f("ii,j->j", a, b), inputs=st.tuples(T((3, 3)), T((2,))))
op("tensordot", mg.tensordot, "torch.tensordot", st.tuples(T((2, 3, 4)), T((3, 4, 2))), kwargs=dict(dims=2))

# ================================================================== indexing


@st.composite
def _gather_inputs(draw):
    x = draw(T((3, 4)))
    d = draw(st.sampled_from([0, 1, -1]))
    n = x.shape[d]
    idx = draw(ints((2, 4) if d == 0 else (3, 2), 0, n - 1))
    return x, d, idx


op("gather", mg.gather, "torch.gather", _gather_inputs(), second_order=True)
op("take_along_dim", lambda x, d, i: mg.take_along_dim(x, i, d), "torch.take_along_dim", _gather_inputs(),
   tcall=lambda f, x, d, i: f(x, i, d))
op("index_select", mg.index_select, "torch.index_select",
   st.tuples(T((3, 4)), st.just(1), ints((5,), 0, 3)), second_order=True)
op("getitem_int_array", lambda x, i: x[i], "Tensor.__getitem__", tcall=lambda f, x, i: x[i], inputs=st.tuples(T((4, 2)), ints((5,), -4, 3)))
op("getitem_mask", lambda x, m: x[m], "Tensor.__getitem__", tcall=lambda f, x, m: x[m], inputs=st.tuples(T((3, 2)), bools((3, 2))))
op("scatter_add", mg.scatter_add, "torch.scatter_add",
   st.tuples(T((3, 4)), st.just(0), ints((2, 4), 0, 2), T((2, 4))))
op("scatter_value", lambda x, d, i: mg.scatter(x, d, i, value=7.0), "torch.scatter",
   tcall=lambda f, x, d, i: f(x, d, i, value=7.0), inputs=
   st.tuples(T((3, 4)), st.just(1), st.permutations(range(4)).map(lambda p: mg.tensor(np.array([p[:2]] * 3)))))
op("index_add", mg.index_add, "torch.index_add",
   st.tuples(T((3, 2)), st.just(0), ints((4,), 0, 2), T((4, 2))), kwargs=dict(alpha=1.5))
op("masked_fill", mg.masked_fill, "torch.masked_fill", st.tuples(T((3, 2)), bools((3, 2)), st.just(-1.5)),
   second_order=True)
op("masked_select", mg.masked_select, "torch.masked_select", st.tuples(T((3, 2)), bools((2,))))
op("embedding", lambda i, w: F.embedding(i, w), "torch.nn.functional.embedding",
   st.tuples(ints((2, 3), 0, 4), T((5, 3))), second_order=True)
op("embedding_padding_idx", lambda i, w: F.embedding(i, w, padding_idx=1), "torch.nn.functional.embedding",
   st.tuples(ints((2, 3), 0, 4), T((5, 3))), torch_kwargs={"padding_idx": 1}, gradcheck=False)
op("one_hot", F.one_hot, "torch.nn.functional.one_hot", st.tuples(ints((2, 3), 0, 3), st.just(4)),
   differentiable=False)

# ================================================================== sorting
op("sort", mg.sort, "torch.sort", distinct_with_dim(keepdim=False).map(lambda t: t + (True,)))
op("argsort", mg.argsort, "torch.argsort", distinct_with_dim(keepdim=False), differentiable=False)
op("msort", mg.msort, "torch.msort", st.tuples(distinct()))
op("topk", mg.topk, "torch.topk", st.tuples(distinct((2, 4)), st.integers(1, 4)))
op("kthvalue", mg.kthvalue, "torch.kthvalue", st.tuples(distinct((3, 4)), st.integers(1, 4)))
op("unique", mg.unique, "torch.unique", st.tuples(ints((7,), 0, 3)), differentiable=False)
op("nonzero", mg.nonzero, "torch.nonzero", st.tuples(ints((3, 2), 0, 1)), differentiable=False)

# ================================================================== losses
REDUCTION = st.sampled_from(["mean", "sum", "none"])


def _loss_pair(ea=None, eb=None, shape=None, target_grad=True):
    @st.composite
    def strat(draw):
        shp = draw(SHAPES1 if shape is None else shape)
        return draw(T(shp, ea)), draw(T(shp, eb, grad=target_grad)), draw(REDUCTION)
    return strat()


def _kw_reduction(f, *a):
    return f(*a[:-1], reduction=a[-1])


op("mse_loss", lambda x, y, r: F.mse_loss(x, y, reduction=r), "torch.nn.functional.mse_loss", _loss_pair(),
   second_order=True, tcall=_kw_reduction)
op("l1_loss", lambda x, y, r: F.l1_loss(x, y, reduction=r), "torch.nn.functional.l1_loss",
   _loss_pair(GRID_A, GRID_B), tcall=_kw_reduction)
op("smooth_l1_loss", lambda x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.5),
   "torch.nn.functional.smooth_l1_loss", _loss_pair(GRID_A.map(lambda v: v + 0.2), GRID_B), second_order=True,
   tcall=lambda f, x, y, r: f(x, y, reduction=r, beta=0.5))
op("huber_loss", lambda x, y, r: F.huber_loss(x, y, reduction=r, delta=0.5), "torch.nn.functional.huber_loss",
   _loss_pair(GRID_A.map(lambda v: v + 0.2), GRID_B), second_order=True,
   tcall=lambda f, x, y, r: f(x, y, reduction=r, delta=0.5))
op("binary_cross_entropy", lambda x, y, r: F.binary_cross_entropy(x, y, reduction=r),
   "torch.nn.functional.binary_cross_entropy", _loss_pair(PROB, PROB), second_order=True, tcall=_kw_reduction)
op("binary_cross_entropy_with_logits", lambda x, y, r: F.binary_cross_entropy_with_logits(x, y, reduction=r),
   "torch.nn.functional.binary_cross_entropy_with_logits", _loss_pair(None, PROB), second_order=True,
   tcall=_kw_reduction, may_use=SIGMOID_KERNELS)


@st.composite
def _bce_pos_weight(draw):
    x, y, r = draw(_loss_pair(None, PROB, shape=mst.shapes(1, 3, max_side=3)))
    return x, y, draw(T((x.shape[-1],), POS, grad=False)), r  # torch has no gradient for pos_weight


op("binary_cross_entropy_with_logits_pos_weight",
   lambda x, y, p, r: F.binary_cross_entropy_with_logits(x, y, reduction=r, pos_weight=p),
   "torch.nn.functional.binary_cross_entropy_with_logits", _bce_pos_weight(), second_order=True,
   tcall=lambda f, x, y, p, r: f(x, y, reduction=r, pos_weight=p), may_use=SIGMOID_KERNELS)


@st.composite
def _class_inputs(draw, smoothing=False, weighted=False, ignore=False, spatial=False):
    N, C = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    shape = (N, C, draw(st.integers(1, 3))) if spatial else (N, C)
    x = draw(T(shape, mst.floats(-3, 3)))
    tshape = (N,) + shape[2:]
    t = draw(mst.arrays(tshape, "int64", st.integers(0, C - 1)))
    if ignore:
        t = np.where(draw(mst.arrays(tshape, "bool", st.booleans())), -100, t)
        t.flat[0] = 0  # at least one row counts ('mean' of nothing is NaN)
    args = [x, mg.tensor(t)]
    args.append(draw(T((C,), POS, grad=False)) if weighted else None)
    args.append(draw(REDUCTION))
    args.append(draw(st.sampled_from([0.0, 0.2])) if smoothing else 0.0)
    return tuple(args)


_CE_T = lambda f, x, t, w, r, s: f(x, t, weight=w, reduction=r, label_smoothing=s)  # noqa: E731
op("cross_entropy", lambda x, t, w, r, s: F.cross_entropy(x, t, weight=w, reduction=r, label_smoothing=s),
   "torch.nn.functional.cross_entropy", tcall=_CE_T, inputs=_class_inputs(True, True, True), second_order=True, kernels=("cross_entropy",))
op("cross_entropy_spatial", lambda x, t, w, r, s: F.cross_entropy(x, t, weight=w, reduction=r, label_smoothing=s),
   "torch.nn.functional.cross_entropy", tcall=_CE_T, inputs=_class_inputs(True, True, False, spatial=True), second_order=True,
   kernels=("cross_entropy",))
op("nll_loss", lambda x, t, w, r, s: F.nll_loss(x, t, weight=w, reduction=r), "torch.nn.functional.nll_loss",
   tcall=lambda f, x, t, w, r, s: f(x, t, weight=w, reduction=r), inputs=
   _class_inputs(False, True, True), second_order=True)
op("kl_div", lambda x, y, r: F.kl_div(x, y, reduction=r), "torch.nn.functional.kl_div",
   _loss_pair(None, PROB, target_grad=True), second_order=True, tcall=_kw_reduction)
op("kl_div_log_target", lambda x, y, r: F.kl_div(x, y, reduction=r, log_target=True), "torch.nn.functional.kl_div",
   _loss_pair(None, None), second_order=True, tcall=lambda f, x, y, r: f(x, y, reduction=r, log_target=True))


@st.composite
def _gnll(draw):
    x, y, r = draw(_loss_pair())
    return x, y, draw(T(x.shape, POS)), r


op("gaussian_nll_loss", lambda x, y, v, r: F.gaussian_nll_loss(x, y, v, reduction=r),
   "torch.nn.functional.gaussian_nll_loss", _gnll(), second_order=True, tcall=_kw_reduction)
op("cosine_similarity", F.cosine_similarity, "torch.nn.functional.cosine_similarity",
   same_shape(NONZERO, NONZERO, shape=(3, 4)).map(lambda t: t + (1,)), second_order=True)
op("gaussian_kl", lambda m, lv: F.gaussian_kl(m, lv), None, same_shape(None, None, shape=(2, 3)), second_order=True)

# ================================================================== normalisation
op("layer_norm", lambda x, w, b: F.layer_norm(x, (3,), w, b), "torch.nn.functional.layer_norm",
   tcall=lambda f, x, w, b: f(x, (3,), w, b), inputs=
   st.tuples(T((2, 4, 3)), T((3,)), T((3,))), second_order=True,
   kernels=("layer_norm_forward", "layer_norm_backward"))
op("layer_norm_2d_shape", lambda x, w, b: F.layer_norm(x, (3, 2), w, b), "torch.nn.functional.layer_norm",
   tcall=lambda f, x, w, b: f(x, (3, 2), w, b), inputs=
   st.tuples(T((2, 3, 2)), T((3, 2)), T((3, 2))), second_order=True,
   kernels=("layer_norm_forward", "layer_norm_backward"))
op("layer_norm_no_affine", lambda x: F.layer_norm(x, (4,)), "torch.nn.functional.layer_norm",
   tcall=lambda f, x: f(x, (4,)), inputs=unary(shape=(3, 4)), second_order=True,
   kernels=("layer_norm_forward", "layer_norm_backward"))
op("rms_norm", lambda x, w: F.rms_norm(x, (3,), w), "torch.nn.functional.rms_norm",
   tcall=lambda f, x, w: f(x, (3,), w), inputs=st.tuples(T((2, 3), NONZERO), T((3,))), second_order=True)
op("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), "torch.nn.functional.group_norm",
   tcall=lambda f, x, w, b: f(x, 2, w, b), inputs=st.tuples(T((2, 4, 3)), T((4,)), T((4,))),
   second_order=True, kernels=("layer_norm_forward", "layer_norm_backward"))
op("instance_norm", lambda x, w, b: F.instance_norm(x, weight=w, bias=b), "torch.nn.functional.instance_norm",
   tcall=lambda f, x, w, b: f(x, weight=w, bias=b), inputs=
   st.tuples(T((2, 3, 4)), T((3,)), T((3,))), second_order=True,
   kernels=("layer_norm_forward", "layer_norm_backward"))
_BN_T = lambda f, x, w=None, b=None: f(x, None, None, w, b, training=True)  # noqa: E731
op("batch_norm", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), "torch.nn.functional.batch_norm",
   tcall=_BN_T, inputs=
   st.tuples(T((4, 3, 2, 2)), T((3,)), T((3,))), second_order=True,
   kernels=("batch_norm_forward", "batch_norm_backward"))
op("batch_norm_2d_input", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
   "torch.nn.functional.batch_norm", tcall=_BN_T, inputs=
   st.tuples(T((5, 3)), T((3,)), T((3,))), second_order=True, kernels=("batch_norm_forward", "batch_norm_backward"))
op("batch_norm_no_affine", lambda x: F.batch_norm(x, None, None, training=True), "torch.nn.functional.batch_norm",
   tcall=_BN_T, inputs=unary(shape=(4, 3, 2)),
   second_order=True, kernels=("batch_norm_forward", "batch_norm_backward"))
op("batch_norm_bias_only", lambda x, b: F.batch_norm(x, None, None, None, b, training=True),
   "torch.nn.functional.batch_norm", st.tuples(T((4, 3)), T((3,))), second_order=True,
   tcall=lambda f, x, b: f(x, None, None, None, b, training=True),
   kernels=("batch_norm_forward", "batch_norm_backward"))  # bias without weight: the fast path handles it
op("instance_norm_running_stats", lambda x: F.instance_norm(x, mg.zeros(3, dtype=x.dtype, device=x.device),
                                                            mg.ones(3, dtype=x.dtype, device=x.device)),
   "torch.nn.functional.instance_norm", unary(shape=(2, 3, 2, 3)), second_order=True,
   tcall=lambda f, x: f(x, torch_full(x, 3, 0.0), torch_full(x, 3, 1.0)),
   kernels=("layer_norm_backward",))  # the forward also updates the running stats: its own reference
op("batch_norm_eval", lambda x, w, b: F.batch_norm(x, mg.full((3,), 0.5, dtype=x.dtype, device=x.device),
                                                   mg.full((3,), 2.0, dtype=x.dtype, device=x.device), w, b,
                                                   training=False),
   "torch.nn.functional.batch_norm", st.tuples(T((4, 3, 2)), T((3,)), T((3,))), second_order=True,
   tcall=lambda f, x, w, b: f(x, torch_full(x, 3, 0.5), torch_full(x, 3, 2.0), w, b, training=False))
op("normalize", F.normalize, "torch.nn.functional.normalize", unary(NONZERO, (3, 4)), second_order=True)

# ================================================================== convolution, pooling, resampling


@st.composite
def _conv(draw, nd=2, transpose=False, bias=True):
    G = draw(st.sampled_from([1, 1, 2]))
    C, O = G * draw(st.integers(1, 2)), G * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    p = tuple(draw(st.integers(0, 1)) for _ in range(nd))
    sp = tuple(draw(st.integers(max(1, d[i] * (k[i] - 1) + 1 - 2 * p[i]), 5)) for i in range(nd))
    N = draw(st.integers(1, 2))
    x = draw(T((N, C) + sp))
    w = draw(T(((C, O // G) if transpose else (O, C // G)) + k))
    b = draw(T((O,))) if bias else None
    if transpose:
        op_ = tuple(min(draw(st.integers(0, 1)), max(si, di) - 1) for si, di in zip(s, d))
        out = [(sp[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op_[i] + 1 for i in range(nd)]
        assume(min(out) >= 1)
        return x, w, b, s, p, op_, G, d
    return x, w, b, s, p, d, G


# the conv kernels come in two families, chosen by each kernel's own rule (few output channels: the direct
# loops; otherwise im2col + GEMM): which one runs depends on the drawn geometry
CONV_KERNELS = ("conv2d_forward_direct", "conv2d_backward_direct", "conv2d_forward_cols", "conv2d_forward",
                "conv2d_backward", "conv2d_backward_input_direct", "conv2d_backward_input",
                "conv2d_backward_weight_direct", "conv2d_backward_weight", "conv_transpose2d_backward_direct",
                "conv_transpose2d_backward")
op("conv2d", F.conv2d, "torch.nn.functional.conv2d", _conv(2), second_order=True, may_use=CONV_KERNELS)
op("conv1d", F.conv1d, "torch.nn.functional.conv1d", _conv(1), second_order=True, may_use=CONV_KERNELS)
op("conv_transpose2d", F.conv_transpose2d, "torch.nn.functional.conv_transpose2d", _conv(2, True),
   second_order=True, may_use=CONV_KERNELS)
op("conv_transpose1d", F.conv_transpose1d, "torch.nn.functional.conv_transpose1d", _conv(1, True),
   second_order=True, may_use=CONV_KERNELS)


@st.composite
def _pool(draw, nd=2, dilation=True, shape=None):
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 2))
    p = draw(st.integers(0, k // 2))
    d = draw(st.integers(1, 2)) if dilation else 1
    lo = d * (k - 1) + 1 - 2 * p
    sp = tuple(draw(st.integers(max(lo, 2), 5)) for _ in range(nd))
    x = draw(distinct((draw(st.integers(1, 2)), draw(st.integers(1, 2))) + sp))
    return (x, k, s, p, d, draw(st.booleans())) if dilation else (x, k, s, p, draw(st.booleans()))


op("max_pool2d", F.max_pool2d, "torch.nn.functional.max_pool2d", _pool(2), second_order=True,
   kernels=("max_pool2d_forward", "max_pool2d_backward"))
op("max_pool1d", F.max_pool1d, "torch.nn.functional.max_pool1d", _pool(1), second_order=True,
   kernels=("max_pool2d_forward", "max_pool2d_backward"))
op("avg_pool2d", F.avg_pool2d, "torch.nn.functional.avg_pool2d", _pool(2, dilation=False), second_order=True,
   may_use=CONV_KERNELS)  # a convolution with a box filter
op("avg_pool1d", F.avg_pool1d, "torch.nn.functional.avg_pool1d", _pool(1, dilation=False), may_use=CONV_KERNELS)
op("adaptive_avg_pool2d", F.adaptive_avg_pool2d, "torch.nn.functional.adaptive_avg_pool2d",
   st.tuples(T((1, 2, 5, 4)), st.sampled_from([(2, 3), 3, (1, 1)])), second_order=True)
op("adaptive_avg_pool1d", F.adaptive_avg_pool1d, "torch.nn.functional.adaptive_avg_pool1d",
   st.tuples(T((2, 2, 5)), st.sampled_from([2, 3])))
op("adaptive_max_pool2d", F.adaptive_max_pool2d, "torch.nn.functional.adaptive_max_pool2d",
   st.tuples(distinct((1, 2, 5, 4)), st.sampled_from([(2, 3), 2])), may_use=("max_pool2d_backward",))
op("adaptive_max_pool1d", F.adaptive_max_pool1d, "torch.nn.functional.adaptive_max_pool1d",
   st.tuples(distinct((2, 2, 5)), st.sampled_from([2, 3])), may_use=("max_pool2d_backward",))
op("interpolate_nearest", lambda x: F.interpolate(x, scale_factor=2), "torch.nn.functional.interpolate",
   unary(shape=(1, 2, 2, 3)), torch_kwargs={"scale_factor": 2}, second_order=True, may_use=("max_pool2d_backward",))
op("interpolate_bilinear", lambda x: F.interpolate(x, size=(3, 5), mode="bilinear", align_corners=False),
   "torch.nn.functional.interpolate", unary(shape=(1, 2, 2, 3)),
   torch_kwargs={"size": (3, 5), "mode": "bilinear", "align_corners": False})
op("interpolate_linear_align", lambda x: F.interpolate(x, size=5, mode="linear", align_corners=True),
   "torch.nn.functional.interpolate", unary(shape=(1, 2, 3)),
   torch_kwargs={"size": 5, "mode": "linear", "align_corners": True})

# ================================================================== attention


@st.composite
def _sdpa(draw, causal=None, mask=False):
    lead = draw(st.sampled_from([(1,), (2,), (2, 2)]))
    L, S, E = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    q, k, v = draw(T(lead + (L, E))), draw(T(lead + (S, E))), draw(T(lead + (S, E)))
    if mask:
        m = draw(mst.arrays((L, S), "bool", st.booleans()))
        m[:, 0] = True  # every query sees at least one key
        return q, k, v, mg.tensor(m)
    return q, k, v


op("scaled_dot_product_attention", F.scaled_dot_product_attention,
   "torch.nn.functional.scaled_dot_product_attention", _sdpa(), second_order=True,
   kernels=("sdpa_forward", "sdpa_backward"))
op("scaled_dot_product_attention_causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
   "torch.nn.functional.scaled_dot_product_attention", _sdpa().filter(lambda t: t[0].shape[-2] <= t[1].shape[-2]),
   torch_kwargs={"is_causal": True}, second_order=True, kernels=("sdpa_forward", "sdpa_backward"))
op("scaled_dot_product_attention_mask", F.scaled_dot_product_attention,
   "torch.nn.functional.scaled_dot_product_attention", _sdpa(mask=True), second_order=True,
   may_use=("softmax_forward", "softmax_backward"))

# ================================================================== recurrent cells and layers
from minigen.ops import rnn as _rnn  # noqa: E402


@st.composite
def _cell(draw, gates, lstm=False):
    B, I, H = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    args = [draw(T((B, I))), draw(T((B, H)))]
    if lstm:
        args.append(draw(T((B, H))))
    args += [draw(T((gates * H, I))), draw(T((gates * H, H))), draw(T((gates * H,))), draw(T((gates * H,)))]
    return tuple(args)


op("rnn_tanh_cell", _rnn.rnn_tanh_cell, "torch.rnn_tanh_cell", _cell(1), second_order=True)
op("lstm_cell", _rnn.lstm_cell, "torch.lstm_cell", _cell(4, lstm=True), second_order=True,
   tcall=lambda f, x, h, c, *w: f(x, (h, c), *w), may_use=SIGMOID_KERNELS)
op("gru_cell", _rnn.gru_cell, "torch.gru_cell", _cell(3), second_order=True, may_use=SIGMOID_KERNELS)


@st.composite
def _seq(draw, gates, lstm=False):
    T_, B, I, H = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    args = [draw(T((T_, B, I))), draw(T((B, H)))]
    if lstm:
        args.append(draw(T((B, H))))
    args += [draw(T((gates * H, I))), draw(T((gates * H, H))), draw(T((gates * H,))), draw(T((gates * H,))),
             draw(st.booleans())]
    return tuple(args)


def _lstm_layer(x, h, c, wi, wh, bi, bh, rev):
    y, (hn, cn) = _rnn.rnn_layer("LSTM", x, (h, c), wi, wh, bi, bh, reverse=rev)
    return y, hn, cn


def _gru_layer(x, h, wi, wh, bi, bh, rev):
    y, hn = _rnn.rnn_layer("GRU", x, h, wi, wh, bi, bh, reverse=rev)
    return y, hn


op("lstm_layer", _lstm_layer, None, _seq(4, lstm=True), second_order=True,
   kernels=("lstm_seq_forward", "lstm_seq_backward"))
op("gru_layer", _gru_layer, None, _seq(3), second_order=True, kernels=("gru_seq_forward", "gru_seq_backward"))

# ================================================================== dropout (p = 0 and eval: the identity)
op("dropout_eval", lambda x: F.dropout(x, 0.5, training=False), "torch.nn.functional.dropout", unary(),
   torch_kwargs={"p": 0.5, "training": False})
op("dropout_p0", lambda x: F.dropout(x, 0.0), "torch.nn.functional.dropout", unary(), torch_kwargs={"p": 0.0})

for _n in ("dropout1d", "dropout2d", "dropout3d"):
    op(f"{_n}_eval", (lambda f: lambda x: f(x, 0.5, training=False))(getattr(F, _n)), f"torch.nn.functional.{_n}",
       unary(shape={"dropout1d": (2, 3, 4), "dropout2d": (2, 3, 2, 2), "dropout3d": (1, 2, 2, 2, 2)}[_n]),
       torch_kwargs={"p": 0.5, "training": False})
op("upsample_nearest", lambda x: F.upsample_nearest(x, scale_factor=2), "torch.nn.functional.upsample_nearest",
   unary(shape=(1, 2, 2, 3)), torch_kwargs={"scale_factor": 2}, may_use=("max_pool2d_backward",))
op("upsample_bilinear", lambda x: F.upsample_bilinear(x, size=(3, 4)), "torch.nn.functional.upsample_bilinear",
   unary(shape=(1, 2, 2, 3)), torch_kwargs={"size": (3, 4)})  # align_corners=True, as PyTorch's
op("upsample", lambda x: F.upsample(x, scale_factor=2, mode="linear"), "torch.nn.functional.upsample",
   unary(shape=(1, 2, 3)), torch_kwargs={"scale_factor": 2, "mode": "linear"})

# ------------------------------------------------------------------ the index
BY_NAME = {r.name: r for r in ROWS}
assert len(BY_NAME) == len(ROWS), "duplicate row names"

ALIASES = {  # PyTorch alias -> the row whose minigen function it is
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "absolute": "abs", "fix": "trunc", "clip": "clamp",
    "true_divide": "div", "greater": "gt", "greater_equal": "ge", "less": "lt", "less_equal": "le",
    "not_equal": "ne", "concat": "cat", "concatenate": "cat", "moveaxis": "movedim", "swapdims": "swapaxes",
    "swish": "silu", "ger": "outer",
}
# public functions without a row: result_type, promote_types, can_cast, allclose and equal return dtypes or
# bools, not tensors (compared with torch in tests/test_ops_pointwise.py)


def row(name):
    return BY_NAME[name]
