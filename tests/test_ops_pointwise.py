"""Pointwise ops: gradients (first and second order), PyTorch oracle, tie/kink conventions,
scalars on either side, comparisons and logic, erf fast path == reference, errors."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen.errors import DTypeError, InvalidArgumentError, ShapeError
from minigen.ops import pointwise as pw
from minigen.testing import compare_with_torch as _compare_with_torch, gradcheck, gradgradcheck, to_torch
from minigen.testing import strategies as mst
from tests.conftest import requires_torch
from tests.op_table import row as op_row


def _not_near_int(lo, hi, margin=0.05):
    return mst.floats(lo, hi).filter(lambda v: abs(v - round(v)) > margin)


# ------------------------------------------------------------------ unary float ops
# gradcheck, gradgradcheck and the PyTorch oracle of every unary op: rows of tests/op_table.py
UNARY = ["sqrt", "rsqrt", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
         "erf", "erfc", "log1p", "expm1", "log2", "log10", "exp2", "square", "reciprocal", "abs", "frac",
         "nan_to_num"]


def test_unary_hand_computed():
    x = mg.tensor([0.25, 1.0, 4.0], dtype=mg.float64, requires_grad=True)
    y = mg.sqrt(x)
    np.testing.assert_array_equal(y.array, [0.5, 1.0, 2.0])
    y.sum().backward()  # 1 / (2 sqrt x)
    np.testing.assert_allclose(x.grad.array, [1.0, 0.5, 0.25], rtol=1e-15)
    z = mg.tensor(0.5, dtype=mg.float64, requires_grad=True)
    mg.erf(z).backward()  # 2/sqrt(pi) exp(-1/4)
    assert z.grad.item() == pytest.approx(2 / math.sqrt(math.pi) * math.exp(-0.25), rel=1e-15)
    assert mg.erf(z).item() == pytest.approx(math.erf(0.5), rel=1e-15)
    np.testing.assert_allclose(mg.log2(mg.tensor([8.0])).array, [3.0])
    np.testing.assert_allclose(mg.frac(mg.tensor([2.75, -2.75])).array, [0.75, -0.75])


def test_integer_inputs_promote_to_float():
    x = mg.tensor([1, 4, 9])
    assert mg.sqrt(x).dtype == mg.float32
    np.testing.assert_array_equal(mg.sqrt(x).array, [1, 2, 3])
    assert mg.sin(mg.tensor([0])).dtype == mg.float32
    assert mg.square(x).dtype == mg.int64  # square stays integer, as PyTorch
    assert mg.abs(mg.tensor([-2, 3])).dtype == mg.int64
    # an int tensor meeting a float: default float dtype (Python float) or the float tensor's dtype
    assert mg.maximum(x, 2.5).dtype == mg.float32
    np.testing.assert_array_equal(mg.maximum(x, 2.5).array, [2.5, 4, 9])
    assert mg.minimum(x, mg.tensor([2.0], dtype=mg.float64)).dtype == mg.float64
    assert mg.clamp(x, 0.5, 5.5).dtype == mg.float32
    assert mg.clamp(x, 2, 5).dtype == mg.int64
    assert mg.remainder(x, 2).dtype == mg.int64
    np.testing.assert_array_equal((x == 4.0).array, [False, True, False])
    np.testing.assert_array_equal((x < 4.5).array, [True, True, False])


def test_erf_fast_path_equals_reference():
    rng = np.random.default_rng(1)
    for dt in (np.float64, np.float32):
        x = (rng.standard_normal(1000) * 3).astype(dt)
        x[:4] = [0.0, -0.0, 30.0, -30.0]
        xs = x[::2]  # non-contiguous
        np.testing.assert_allclose(pw.erf_array(xs), pw.erf_reference(xs), rtol=0, atol=0 if dt == np.float64 else 1e-7)
        np.testing.assert_allclose(pw.erfc_array(xs), pw.erfc_reference(xs), rtol=1e-15 if dt == np.float64 else 1e-6)
        assert pw.erf_array(xs).dtype == dt
    assert pw.erf_array(np.array([0.5], dtype=np.float16)).dtype == np.float16


# ------------------------------------------------------------------ step functions: zero gradients
STEP = {"floor": mg.floor, "ceil": mg.ceil, "round": mg.round, "trunc": mg.trunc, "sign": mg.sign}


@pytest.mark.parametrize("name", list(STEP))
@given(x=mst.tensors(elements=_not_near_int(-3, 3)))
def test_step_functions(name, x):
    y = STEP[name](x)
    np.testing.assert_array_equal(y.array, getattr(np, "rint" if name == "round" else name)(x.array))
    assert y.requires_grad  # as PyTorch: a gradient exists and it is zero
    (gx,) = mg.grad(y, x, grad_outputs=mg.ones_like(y))
    np.testing.assert_array_equal(gx.array, np.zeros(x.shape))


@requires_torch
def test_step_and_kink_conventions_match_torch():
    import torch

    x = mg.tensor([-2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5], dtype=mg.float64, requires_grad=True)
    for name in ("floor", "ceil", "round", "trunc", "sign", "abs", "frac"):
        _compare_with_torch(getattr(mg, name), getattr(torch, name), [x])
    _compare_with_torch(lambda t: mg.round(t, decimals=1), lambda t: torch.round(t, decimals=1),
                        [mg.tensor([1.25, 0.35, -2.45], dtype=mg.float64, requires_grad=True)])


def test_abs_gradient_at_zero_is_zero():
    x = mg.tensor([-1.0, 0.0, 2.0], dtype=mg.float64, requires_grad=True)
    mg.abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad.array, [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(abs(mg.tensor([-3.0])).array, [3.0])


def test_round_half_to_even_and_decimals():
    np.testing.assert_array_equal(mg.round(mg.tensor([0.5, 1.5, 2.5, -0.5])).array, [0.0, 2.0, 2.0, -0.0])
    np.testing.assert_allclose(mg.round(mg.tensor([1.2345, 2.5]), decimals=2).array, [1.23, 2.5])
    assert mg.floor(mg.tensor([3])).dtype == mg.int64


# ------------------------------------------------------------------ binary ops with broadcasting
GRID_A = st.integers(-20, 20).map(lambda k: k * 0.1 + 0.05)  # a and b never tie: |a - b| >= 0.05
GRID_B = st.integers(-20, 20).map(lambda k: k * 0.1)


@st.composite
def broadcast_pair(draw, elems_a=None, elems_b=None):
    sa, sb = draw(mst.mutually_broadcastable_shapes(2)).input_shapes
    a = draw(mst.tensors(shape=sa, elements=elems_a))
    b = draw(mst.tensors(shape=sb, elements=elems_b))
    return a, b


# binary ops (maximum, minimum, fmax, fmin, atan2, hypot, logaddexp): gradcheck, gradgradcheck and the
# PyTorch oracle are rows of tests/op_table.py


@requires_torch
@given(data=st.data())
def test_scalars_on_either_side_match_torch(data):
    import torch

    x = data.draw(mst.tensors(elements=GRID_A))
    s = data.draw(GRID_B)
    for name in ("maximum", "minimum", "remainder", "fmod", "floor_divide", "eq", "lt", "ge"):
        fn, tfn = getattr(mg, name), getattr(torch, name)
        if name in ("maximum", "minimum"):  # torch wants tensors here
            _compare_with_torch(lambda t: fn(t, s), lambda t: tfn(t, torch.tensor(s, dtype=t.dtype)), [x])
            _compare_with_torch(lambda t: fn(s, t), lambda t: tfn(torch.tensor(s, dtype=t.dtype), t), [x])
        elif name == "floor_divide":  # no gradient in torch (its backward raises)
            _compare_with_torch(lambda t: fn(t, s), lambda t: tfn(t, s), [x.detach()]) if s != 0 else None
        elif s != 0 or name in ("eq", "lt", "ge"):
            _compare_with_torch(lambda t: fn(t, s), lambda t: tfn(t, s), [x])
    # operators with the number on the left
    np.testing.assert_array_equal((s < x).array, s < x.array)
    np.testing.assert_array_equal((s >= x).array, s >= x.array)
    np.testing.assert_array_equal((2.0 % x).array, np.remainder(2.0, x.array))
    np.testing.assert_array_equal((2.0 // x).array, np.floor_divide(2.0, x.array))


def test_maximum_minimum_ties_split_half():
    a = mg.tensor([1.0, 2.0, 3.0], dtype=mg.float64, requires_grad=True)
    b = mg.tensor([1.0, 1.0, 4.0], dtype=mg.float64, requires_grad=True)
    mg.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.array, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(b.grad.array, [0.5, 0.0, 1.0])
    a.grad = b.grad = None
    mg.minimum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.array, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(b.grad.array, [0.5, 1.0, 0.0])
    # a tie against a broadcast scalar: each side gets half, summed over the broadcast
    c = mg.tensor([2.0], dtype=mg.float64, requires_grad=True)
    mg.maximum(a, c).sum().backward()
    np.testing.assert_array_equal(c.grad.array, [1.5])  # 1 (a=1 loses) + 0.5 (tie at 2) + 0


@requires_torch
def test_ties_and_nans_match_torch():
    import torch

    a = mg.tensor([1.0, 2.0, np.nan, 3.0, np.nan], dtype=mg.float64, requires_grad=True)
    b = mg.tensor([1.0, 2.0, 1.0, np.nan, np.nan], dtype=mg.float64, requires_grad=True)
    for name in ("maximum", "minimum", "fmax", "fmin"):
        ta, tb = to_torch(a), to_torch(b)
        y, yt = getattr(mg, name)(a, b), getattr(torch, name)(ta, tb)
        np.testing.assert_array_equal(y.array, yt.detach().numpy())
        ga, gb = mg.grad(y.sum(), [a, b])
        tga, tgb = torch.autograd.grad(yt.sum(), [ta, tb])
        np.testing.assert_array_equal(ga.array, tga.numpy(), err_msg=name)
        np.testing.assert_array_equal(gb.array, tgb.numpy(), err_msg=name)


@st.composite
def mod_inputs(draw):
    """a = q * b with q at least 0.1 away from an integer (away from the jumps of remainder/fmod)."""
    shape = draw(mst.shapes())
    b = draw(mst.tensors(shape=shape, elements=mst.away_from(0.0, -2, 2, 0.3)))
    q = draw(hnp.arrays(np.float64, shape, elements=_not_near_int(-3, 3, 0.1)))
    a = mg.tensor(q * b.array, dtype=mg.float64, requires_grad=True)
    return a, b


@given(mod_inputs())
def test_remainder_fmod_gradcheck(ab):
    a, b = ab
    assert gradcheck(mg.remainder, (a, b))
    assert gradcheck(mg.fmod, (a, b))
    assert gradcheck(lambda t: mg.remainder(t, 0.7), (a,))


@requires_torch
@given(mod_inputs())
def test_remainder_fmod_floor_divide_match_torch(ab):
    import torch

    a, b = ab
    _compare_with_torch(mg.remainder, torch.remainder, [a, b])
    _compare_with_torch(mg.fmod, torch.fmod, [a, b])
    fa, fb = a.detach(), b.detach()
    _compare_with_torch(mg.floor_divide, torch.floor_divide, [fa, fb])


def test_mod_hand_computed():
    a = mg.tensor([5.0, -5.0, 5.0], dtype=mg.float64, requires_grad=True)
    b = mg.tensor([3.0, 3.0, -3.0], dtype=mg.float64, requires_grad=True)
    r = mg.remainder(a, b)
    np.testing.assert_array_equal(r.array, [2.0, 1.0, -1.0])  # sign of the divisor
    r.sum().backward()
    np.testing.assert_array_equal(a.grad.array, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(b.grad.array, [-1.0, 2.0, 2.0])  # -floor(a / b)
    np.testing.assert_array_equal(mg.fmod(a, b).array, [2.0, -2.0, 2.0])  # sign of the dividend
    np.testing.assert_array_equal((a // b).array, [1.0, -2.0, -2.0])
    np.testing.assert_array_equal(mg.floor_divide(mg.tensor([7, -7]), 2).array, [3, -4])
    with pytest.raises(InvalidArgumentError, match="division by zero"):
        mg.floor_divide(mg.tensor([1]), 0)


@given(data=st.data())
def test_lerp_gradcheck(data):
    sa, sb, sw = data.draw(mst.mutually_broadcastable_shapes(3)).input_shapes
    start = data.draw(mst.tensors(shape=sa))
    end = data.draw(mst.tensors(shape=sb))
    w = data.draw(mst.tensors(shape=sw))
    assert gradcheck(mg.lerp, (start, end, w))
    assert gradcheck(lambda s, e: mg.lerp(s, e, 0.3), (start, end))


@requires_torch
def test_lerp_matches_torch():
    import torch

    rng = np.random.default_rng(0)
    s = mg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    e = mg.tensor(rng.standard_normal((3,)), requires_grad=True)
    w = mg.tensor(rng.random((2, 1)), requires_grad=True)
    _compare_with_torch(mg.lerp, torch.lerp, [s, e, w])
    _compare_with_torch(lambda a, b: mg.lerp(a, b, 0.25), lambda a, b: torch.lerp(a, b, 0.25), [s, e])
    x = mg.tensor([1.0, 2.0], dtype=mg.float64)
    np.testing.assert_array_equal(mg.lerp(x, mg.tensor([3.0, 6.0], dtype=mg.float64), 0.5).array, [2.0, 4.0])


# ------------------------------------------------------------------ clamp
@given(data=st.data())
def test_clamp_scalar_bounds_gradcheck(data):
    x = data.draw(mst.tensors(elements=mst.away_from((-0.5, 1.0), -2, 2, 0.05)))
    assert gradcheck(lambda t: mg.clamp(t, -0.5, 1.0), (x,))
    assert gradcheck(lambda t: mg.clamp(t, min=-0.5), (x,))
    assert gradcheck(lambda t: t.clip(max=1.0), (x,))
    assert gradgradcheck(lambda t: mg.clamp(t, -0.5, 1.0) * t, (x,))


@given(data=st.data())
def test_clamp_tensor_bounds_gradcheck(data):
    x, lo = data.draw(broadcast_pair(GRID_A, GRID_B))
    hi = lo + 1.0
    assert gradcheck(mg.clamp, (x, lo, hi.detach().requires_grad_(True)))


@requires_torch
@given(data=st.data())
def test_clamp_matches_torch(data):
    import torch

    x, lo = data.draw(broadcast_pair(GRID_A, GRID_B))
    hi = (lo + 0.75).detach().requires_grad_(True)
    _compare_with_torch(mg.clamp, torch.clamp, [x, lo, hi])
    _compare_with_torch(lambda t: mg.clamp(t, -0.5, 0.5), lambda t: torch.clamp(t, -0.5, 0.5), [x])


def test_clamp_conventions():
    x = mg.tensor([0.0, 1.0, 2.0, 3.0, 5.0], dtype=mg.float64, requires_grad=True)
    y = mg.clamp(x, 1.0, 3.0)
    np.testing.assert_array_equal(y.array, [1.0, 1.0, 2.0, 3.0, 3.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.array, [0.0, 1.0, 1.0, 1.0, 0.0])  # both ends inclusive
    # min > max: every value becomes max, nothing flows to x
    x.grad = None
    y = mg.clamp(x, 3.0, 1.0)
    np.testing.assert_array_equal(y.array, [1.0] * 5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.array, [0.0] * 5)
    # tensor bounds: min gets the gradient where x < min, max where x > max or min > max
    lo = mg.tensor([1.0, 1.0, 1.0, 3.0, 1.0], dtype=mg.float64, requires_grad=True)
    hi = mg.tensor([3.0, 3.0, 3.0, 2.0, 3.0], dtype=mg.float64, requires_grad=True)
    x.grad = None
    mg.clamp(x, lo, hi).sum().backward()
    np.testing.assert_array_equal(x.grad.array, [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(lo.grad.array, [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(hi.grad.array, [0, 0, 0, 1, 1])
    with pytest.raises(InvalidArgumentError):
        mg.clamp(x)


def test_inplace_clamp_and_friends():
    base = mg.tensor([-2.0, 0.5, 2.0], dtype=mg.float64, requires_grad=True)
    h = base * 1.0
    h.clamp_(-1.0, 1.0)
    h.sum().backward()
    np.testing.assert_array_equal(base.grad.array, [0.0, 1.0, 0.0])
    z = mg.tensor([4.0, 9.0])
    z.sqrt_()
    np.testing.assert_array_equal(z.array, [2.0, 3.0])


# ------------------------------------------------------------------ where / nan_to_num
@given(data=st.data())
def test_where_gradcheck(data):
    sc, sa, sb = data.draw(mst.mutually_broadcastable_shapes(3)).input_shapes
    cond = mg.tensor(data.draw(hnp.arrays(np.bool_, sc)))
    a = data.draw(mst.tensors(shape=sa))
    b = data.draw(mst.tensors(shape=sb))
    y = mg.where(cond, a, b)
    np.testing.assert_array_equal(y.array, np.where(cond.array, a.array, b.array))
    assert gradcheck(lambda u, w: mg.where(cond, u, w), (a, b))
    assert gradgradcheck(lambda u, w: mg.where(cond, u * u, w), (a, b))
    assert gradcheck(lambda u: mg.where(cond, u, 0.5), (a,))
    assert gradcheck(lambda w: mg.where(cond, -1.0, w), (b,))


@requires_torch
def test_where_matches_torch():
    import torch

    rng = np.random.default_rng(0)
    cond = mg.tensor(rng.random((2, 3)) > 0.5)
    a = mg.tensor(rng.standard_normal((3,)), requires_grad=True)
    b = mg.tensor(rng.standard_normal((2, 1)), requires_grad=True)
    tc = torch.tensor(cond.array)
    _compare_with_torch(lambda u, w: mg.where(cond, u, w), lambda u, w: torch.where(tc, u, w), [a, b])
    _compare_with_torch(lambda u: mg.where(cond, u, 0.0), lambda u: torch.where(tc, u, 0.0), [a])
    # scalars only: default float dtype; method form x.where(cond, y)
    assert mg.where(cond, 1.0, 0.0).dtype == mg.float32
    assert mg.where(cond, 1, 0).dtype == mg.int64
    np.testing.assert_array_equal(a.where(cond, b).array, mg.where(cond, a, b).array)
    idx = mg.where(mg.tensor([[True, False], [False, True]]))
    np.testing.assert_array_equal(idx[0].array, [0, 1])
    np.testing.assert_array_equal(idx[1].array, [0, 1])


def test_nan_to_num():
    x = mg.tensor([np.nan, np.inf, -np.inf, 1.5], dtype=mg.float64, requires_grad=True)
    y = mg.nan_to_num(x, nan=0.5, posinf=9.0, neginf=-9.0)
    np.testing.assert_array_equal(y.array, [0.5, 9.0, -9.0, 1.5])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.array, [0.0, 0.0, 0.0, 1.0])
    assert mg.nan_to_num(mg.tensor([np.inf], dtype=mg.float32)).item() == np.finfo(np.float32).max


# ------------------------------------------------------------------ comparisons and logic
CMP = {"eq": "__eq__", "ne": "__ne__", "lt": "__lt__", "le": "__le__", "gt": "__gt__", "ge": "__ge__"}


@pytest.mark.parametrize("name", list(CMP))
@given(data=st.data())
def test_comparisons(name, data):
    a, b = data.draw(broadcast_pair(GRID_B, GRID_B))  # a grid, so equal values do occur
    ref = getattr(np, {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
                       "ge": "greater_equal"}[name])(a.array, b.array)
    for y in (getattr(mg, name)(a, b), getattr(a, CMP[name])(b), getattr(a, name)(b)):
        assert y.dtype == mg.bool_ and not y.requires_grad
        np.testing.assert_array_equal(y.array, ref)


def test_comparison_operators_with_other_types():
    x = mg.tensor([1.0, 2.0, 3.0])
    assert (x == None) is False  # noqa: E711  (Python falls back to identity)
    assert (x != "a") is True
    np.testing.assert_array_equal((x == [1.0, 0.0, 3.0]).array, [True, False, True])
    np.testing.assert_array_equal((x > np.float32(1.5)).array, [False, True, True])
    np.testing.assert_array_equal((2 < x).array, [False, False, True])
    assert hash(x) == object.__hash__(x) and {x: 1}[x] == 1 and x in {x}  # identity hash: a dict key / set member


def test_logical_and_bitwise():
    a = mg.tensor([True, True, False, False])
    b = mg.tensor([True, False, True, False])
    np.testing.assert_array_equal(mg.logical_and(a, b).array, [True, False, False, False])
    np.testing.assert_array_equal(mg.logical_or(a, b).array, [True, True, True, False])
    np.testing.assert_array_equal(mg.logical_xor(a, b).array, [False, True, True, False])
    np.testing.assert_array_equal(mg.logical_not(a).array, [False, False, True, True])
    np.testing.assert_array_equal((a & b).array, [True, False, False, False])
    np.testing.assert_array_equal((a | b).array, [True, True, True, False])
    np.testing.assert_array_equal((a ^ b).array, [False, True, True, False])
    np.testing.assert_array_equal((~a).array, [False, False, True, True])
    np.testing.assert_array_equal(mg.logical_and(mg.tensor([0.0, 2.0]), 1).array, [False, True])
    np.testing.assert_array_equal((mg.tensor([6, 3]) & 5).array, [4, 1])
    with pytest.raises(DTypeError):
        mg.tensor([1.0]) & mg.tensor([1.0])
    with pytest.raises(DTypeError):
        ~mg.tensor([1.0])


def test_predicates_and_closeness():
    x = mg.tensor([1.0, np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(mg.isnan(x).array, [False, True, False, False])
    np.testing.assert_array_equal(mg.isinf(x).array, [False, False, True, True])
    np.testing.assert_array_equal(mg.isposinf(x).array, [False, False, True, False])
    np.testing.assert_array_equal(mg.isneginf(x).array, [False, False, False, True])
    np.testing.assert_array_equal(x.isfinite().array, [True, False, False, False])
    a = mg.tensor([1.0, 2.0])
    assert mg.allclose(a, a + 1e-9) is True
    assert mg.allclose(a, a + 1e-3) is False
    assert mg.allclose(a, a + 1e-3, atol=1e-2)
    assert not mg.allclose(x, x)
    assert mg.allclose(x, x, equal_nan=True)
    np.testing.assert_array_equal(mg.isclose(a, mg.tensor([1.0, 2.1])).array, [True, False])
    assert mg.equal(a, mg.tensor([1.0, 2.0])) is True
    assert mg.equal(a, mg.tensor([1.0, 2.5])) is False
    assert mg.equal(a, mg.tensor([[1.0, 2.0]])) is False  # shapes differ


# ------------------------------------------------------------------ errors
def test_errors():
    with pytest.raises(ShapeError):
        mg.maximum(mg.zeros(3), mg.zeros(4))
    with pytest.raises(ShapeError):
        mg.where(mg.tensor([True, False]), mg.zeros(3), 0.0)
    with pytest.raises(ShapeError):
        mg.zeros(2, 3) < mg.zeros(4)
    with pytest.raises(DTypeError, match="bool"):
        mg.where(mg.tensor([1, 0]), mg.zeros(2), mg.ones(2))
    with pytest.raises(DTypeError):
        mg.lerp(mg.tensor([1, 2]), mg.tensor([2, 3]), 0.5)
    with pytest.raises(DTypeError):
        mg.frac(mg.tensor([1, 2]))
    with pytest.raises(DTypeError):
        mg.maximum(mg.zeros(2), "a")
    with pytest.raises(InvalidArgumentError):
        mg.where(mg.tensor([True]), mg.zeros(1))


@requires_torch
def test_logic_predicates_and_nan_to_num_match_torch():
    import torch

    x = mg.tensor([1.0, np.nan, np.inf, -np.inf, 0.0, -2.5], dtype=mg.float64, requires_grad=True)
    tx = to_torch(x)
    for name in ("isnan", "isinf", "isposinf", "isneginf", "isfinite", "logical_not"):
        np.testing.assert_array_equal(getattr(mg, name)(x).array, getattr(torch, name)(tx).numpy(), err_msg=name)
    y = mg.tensor([1.0, 0.0, np.inf, 2.0, 0.0, -2.5], dtype=mg.float64)
    ty = torch.tensor(y.array)
    for name in ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"):
        np.testing.assert_array_equal(getattr(mg, name)(x, y).array, getattr(torch, name)(tx, ty).numpy(), err_msg=name)
    np.testing.assert_array_equal(mg.isclose(x, y, equal_nan=True).array, torch.isclose(tx, ty, equal_nan=True).numpy())
    _compare_with_torch(lambda t: mg.nan_to_num(t, nan=0.5, posinf=3.0), lambda t: torch.nan_to_num(t, 0.5, 3.0), [x])
    _compare_with_torch(mg.nan_to_num, torch.nan_to_num, [x])


# ------------------------------------------------------------------ type promotion (torch.result_type)
_DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]


def _operand(kind, dtype):
    """An operand of one of the priority groups: a tensor with dims, a 0-d tensor, or a scalar."""
    vals = np.array([1, 0, 1], dtype=dtype)
    if kind == "dims":
        return vals
    if kind == "0d":
        return vals[0].reshape(())
    return {"bool": True, "int": 3, "float": 1.5, "np.float64": np.float64(0.5), "np.int32": np.int32(2)}[kind]


_KINDS = ["dims", "0d", "bool", "int", "float", "np.float64", "np.int32"]


@requires_torch
@pytest.mark.parametrize("dtype_a", _DTYPES)
@pytest.mark.parametrize("kind_b", _KINDS)
def test_result_type_matches_torch(dtype_a, kind_b):
    """pointwise.result_type == torch.result_type for a dims tensor against every other kind of operand,
    and mul / add / where / maximum give that dtype and torch's values."""
    import torch

    for dtype_b in (_DTYPES if kind_b in ("dims", "0d") else [None]):
        a = _operand("dims", dtype_a)
        b = _operand(kind_b, dtype_b)
        ta = torch.tensor(a)
        tb = torch.tensor(b) if kind_b in ("dims", "0d") else b
        want = np.dtype(str(torch.result_type(ta, tb)).replace("torch.", ""))
        ma = mg.tensor(a)
        mb = mg.tensor(b) if kind_b in ("dims", "0d") else b
        assert pw.result_type(ma, mb) == want, (dtype_a, kind_b, dtype_b)
        assert pw.result_type(mb, ma) == want
        for fn in ("mul", "add", "maximum") if kind_b in ("dims", "0d") else ("mul", "add"):  # torch.maximum:
            y, ty = getattr(mg, fn)(ma, mb), getattr(torch, fn)(ta, tb)                         # tensors only
            assert y.dtype == want, (fn, dtype_a, kind_b, dtype_b, y.dtype, want)
            np.testing.assert_allclose(y.array.astype(np.float64), ty.double().numpy(), rtol=1e-3)
        cond = mg.tensor([True, False, True])
        assert mg.where(cond, ma, mb).dtype == want
        assert mg.where(cond, mb, ma).dtype == want


@requires_torch
def test_promote_types_and_can_cast_match_torch():
    import torch

    for a in _DTYPES:
        for b in _DTYPES:
            ta, tb = getattr(torch, a), getattr(torch, b)
            want = np.dtype(str(torch.promote_types(ta, tb)).replace("torch.", ""))
            assert mg.promote_types(np.dtype(a), np.dtype(b)) == want, (a, b)
            assert mg.can_cast(np.dtype(a), np.dtype(b)) == torch.can_cast(ta, tb), (a, b)


def test_promotion_cases_from_the_issue():
    """PyTorch's rule, written out: the default float dtype (float32) for int/bool with a Python float,
    a 0-d tensor does not widen a tensor with dims of the same category."""
    i = mg.tensor([1, 2, 3])
    f = mg.tensor([1.0, 2.0], dtype=mg.float32)
    assert (f + mg.tensor(2.0, dtype=mg.float64)).dtype == mg.float32
    assert (mg.tensor(2.0, dtype=mg.float64) + f).dtype == mg.float32
    assert (i + 1.5).dtype == mg.float32 and (1.5 + i).dtype == mg.float32
    assert (mg.tensor([True, False]) * 1.5).dtype == mg.float32
    np.testing.assert_array_equal((mg.tensor([True, False]) * 1.5).array, [1.5, 0.0])
    assert (i * np.float64(2.5)).dtype == mg.float32      # NumPy scalars count as Python numbers
    assert (f * np.float64(2.5)).dtype == mg.float32
    assert (f + np.ones(2)).dtype == mg.float64            # a NumPy array counts as a tensor
    assert (i / i).dtype == mg.float32 and (i // 2).dtype == mg.int64
    assert (i ** 2).dtype == mg.int64 and (i ** 0.5).dtype == mg.float32 and (2 ** i).dtype == mg.int64
    assert (mg.tensor([1], dtype=mg.int8) + 1000).dtype == mg.int8
    assert (mg.tensor([True]) + 1).dtype == mg.int64
    assert (mg.tensor([1.0], dtype=mg.float16) + mg.tensor(1, dtype=mg.int64)).dtype == mg.float16
    assert (mg.tensor([1], dtype=mg.int32) + mg.tensor(1.5, dtype=mg.float64)).dtype == mg.float64
    assert mg.clamp(i, min=0.5).dtype == mg.float32
    assert pw.result_type(mg.tensor([1], dtype=mg.uint8), -1) == np.uint8


def test_inplace_promotion_rule():
    """An in-place op cannot widen its tensor: can_cast(result_type(a, b), a.dtype) or a DTypeError
    (minigen.ops.inplace applies it to x.mul_(1.5) and friends)."""
    i = mg.tensor([1, 2, 3])
    with pytest.raises(DTypeError, match="int64"):
        pw.check_inplace_dtype(i, 1.5, "mul_")
    with pytest.raises(DTypeError):
        pw.check_inplace_dtype(mg.tensor([True]), 2, "add_")
    assert pw.check_inplace_dtype(i, 2, "mul_") == np.int64
    assert pw.check_inplace_dtype(mg.ones(2), mg.tensor([1.0], dtype=mg.float64), "add_") == np.float64
    assert pw.can_cast(np.int64, np.float32) and not pw.can_cast(np.float32, np.int64)


def test_inplace_op_needing_a_wider_dtype_raises():
    """int_tensor.mul_(1.5) raises (PyTorch: result type Float can't be cast to Long); int_tensor.mul_(2) works."""
    i = mg.tensor([1, 2, 3])
    i.mul_(2)
    np.testing.assert_array_equal(i.array, [2, 4, 6])
    for edit in (lambda t: t.mul_(1.5), lambda t: t.add_(0.5), lambda t: t.div_(2), lambda t: t.sqrt_(),
                 lambda t: t.clamp_(min=0.5)):
        with pytest.raises(DTypeError):
            edit(mg.tensor([1, 2, 3]))
    with pytest.raises(DTypeError):
        mg.tensor([True, False]).add_(1)


# ------------------------------------------------------------------ operands: numbers, NumPy, bad types
@requires_torch
def test_numbers_and_numpy_on_either_side_match_torch():
    import torch

    x = mg.tensor([0.5, 1.5, 2.0], requires_grad=True)
    for s in (2, 2.5, np.float64(2.5), np.float32(0.5), np.int64(3), True):
        for name in ("add", "sub", "mul", "div", "pow", "maximum", "remainder", "atan2"):
            if name == "sub" and isinstance(s, (bool, np.bool_)):
                continue
            fn, tfn = getattr(mg, name), getattr(torch, name)
            ts = torch.tensor(s) if name in ("maximum", "atan2") else s
            _compare_with_torch(lambda t: fn(t, s), lambda t: tfn(t, ts), [x], rtol=1e-6, atol=1e-7)
            if name in ("add", "sub", "mul", "div", "pow"):
                _compare_with_torch(lambda t: fn(s, t), lambda t: tfn(torch.tensor(s), t), [x], rtol=1e-6,
                                    atol=1e-7)
    arr = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    np.testing.assert_allclose((arr - x).array, arr - x.array)
    np.testing.assert_allclose((x / arr).array, x.array / arr)
    np.testing.assert_allclose(mg.sub(2, x).array, 2 - x.array)
    np.testing.assert_allclose(mg.pow(2, x).array, 2 ** x.array.astype(np.float64), rtol=1e-6)
    y = mg.pow(2.0, x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.array, (2.0 ** x.array) * math.log(2.0), rtol=1e-6)


def test_bad_operands_raise_dtype_error_naming_the_types():
    x = mg.ones(2)
    for bad in (None, "a", object(), 1j, {1: 2}):
        name = type(bad).__name__
        ops = [lambda: x + bad, lambda: bad + x, lambda: x * bad, lambda: bad - x, lambda: x / bad,
               lambda: x ** bad, lambda: x < bad, lambda: mg.add(x, bad), lambda: mg.maximum(bad, x)]
        if bad is not None:  # where(cond, x, None) / clamp(x, None) mean "argument not given"
            ops += [lambda: mg.where(mg.tensor([True, False]), x, bad), lambda: mg.clamp(x, min=bad)]
        if not isinstance(bad, complex):
            ops.append(lambda: x @ bad)
        for op in ops:
            with pytest.raises(DTypeError, match=name):
                op()
    assert (x == None) is False and (x != None) is True  # noqa: E711
    for bad_alpha in ((1,), None, "a", mg.ones(1)):
        with pytest.raises(DTypeError, match="alpha"):
            mg.add(x, x, alpha=bad_alpha)
        with pytest.raises(DTypeError, match="alpha"):
            mg.sub(x, 1.0, alpha=bad_alpha)


# ------------------------------------------------------------------ what a gradient reads (in-place checks)
def test_constant_times_x_does_not_save_x():
    """y = 3 * x: dx = 3 g never reads x, so editing x afterwards is fine (as PyTorch)."""
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    x = a * 1.0
    y = 3 * x
    z = x / 2.0  # dx = g / 2: reads only the (constant) divisor
    x.add_(1.0)
    (y.sum() + z.sum()).backward()
    np.testing.assert_allclose(a.grad.array, [3.5, 3.5])


def test_w_times_x_saves_only_what_dw_reads():
    """y = w * x with x not requiring grad: dw = g * x reads x (editing x raises), never w (editing w is fine)."""
    from minigen.errors import InplaceError

    w = mg.tensor([1.0, 2.0], requires_grad=True)
    x = mg.tensor([3.0, 4.0])
    y = w * x
    with mg.no_grad():
        w.mul_(10.0)
    y.sum().backward()
    np.testing.assert_allclose(w.grad.array, [3.0, 4.0])
    w.grad = None
    y = w * x
    x.add_(1.0)
    with pytest.raises(InplaceError):
        y.sum().backward()
    # b / x reads x for the gradient of x only: x not requiring grad, b requiring -> dx not needed, db reads x
    b = mg.tensor([1.0, 2.0], requires_grad=True)
    y = b / x
    x.mul_(2.0)
    with pytest.raises(InplaceError):
        y.sum().backward()


@requires_torch
def test_inplace_reads_match_torch():
    """The same edits in PyTorch: raises exactly where minigen raises."""
    import torch

    for edit_x in (False, True):
        w = torch.tensor([1.0, 2.0], requires_grad=True)
        x = torch.tensor([3.0, 4.0])
        y = w * x
        if edit_x:
            x.add_(1.0)
        else:
            with torch.no_grad():
                w.mul_(10.0)
        try:
            y.sum().backward()
            raised = False
        except RuntimeError:
            raised = True
        assert raised == edit_x


def test_where_condition_edited_in_place_raises():
    """The mask of where is read by both gradients: editing it after the forward raises (no silent wrong grad)."""
    from minigen.errors import InplaceError

    a = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    cond = mg.tensor([True, False, True])
    y = mg.where(cond, a, 0.0)
    cond[0] = False
    with pytest.raises(InplaceError):
        y.sum().backward()
    y = mg.where(cond, a, 0.0)
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.array, [0.0, 0.0, 1.0])


# ------------------------------------------------------------------ reads: no silent wrong gradient
def _edit_after_forward(fn, inputs, edit):
    """grad of fn at ``inputs`` (non-leaf copies), with input ``edit`` changed in place after the forward:
    None when that raises InplaceError, else (gradient after the edit, gradient without it) array pairs."""
    from minigen.errors import InplaceError

    leaves = [mg.tensor(a, requires_grad=True) for a in inputs]
    v = None
    xs = [t * 1.0 for t in leaves]
    y = fn(*xs)
    v = mg.tensor(np.random.default_rng(0).standard_normal(y.shape))
    want = mg.grad(fn(*[t * 1.0 for t in leaves]), leaves, grad_outputs=v)
    xs[edit].mul_(-1.5)
    try:
        got = mg.grad(y, leaves, grad_outputs=v)
    except InplaceError:
        return None
    return [(g.array, w.array) for g, w in zip(got, want)]


def _unchanged(pairs):
    """The edit was refused (None), or every gradient equals the unedited one exactly."""
    return pairs is None or all(np.array_equal(g, w, equal_nan=True) for g, w in pairs)


_EDIT_BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "fmax", "fmin", "remainder", "fmod",
                "atan2", "hypot", "logaddexp"]


@pytest.mark.parametrize("name", list(UNARY) + ["exp", "log", "neg", "floor", "sign", "clamp", "where"])
def test_editing_the_input_after_the_forward_never_gives_a_wrong_gradient(name):
    """Each op saves only what its gradient reads: editing its input in place after the forward either raises
    InplaceError or leaves the gradient exactly as without the edit (never a silently wrong gradient)."""
    if name in UNARY:
        fn, lo, hi = op_row(name).fn, 0.2, 0.9
        if name == "acosh":
            lo, hi = 1.2, 2.5
    else:
        fn = {"exp": mg.exp, "log": mg.log, "neg": mg.neg, "floor": mg.floor, "sign": mg.sign,
              "clamp": lambda t: mg.clamp(t, 0.3, 0.6), "where": lambda t: mg.where(t > 0.5, t, t * 2)}[name]
        lo, hi = 0.2, 0.9
    pairs = _edit_after_forward(fn, [np.linspace(lo, hi, 8).reshape(2, 4)], 0)
    assert _unchanged(pairs), (name, pairs)


@pytest.mark.parametrize("name", _EDIT_BINARY + ["lerp", "clamp_tensor_bounds", "where_tensors"])
@pytest.mark.parametrize("edit", [0, 1])
def test_editing_an_operand_after_the_forward_never_gives_a_wrong_gradient(name, edit):
    a = np.linspace(0.3, 1.9, 8).reshape(2, 4)
    b = np.linspace(1.7, 0.6, 4)  # broadcast against a
    if name == "lerp":
        fn = lambda s, e: mg.lerp(s, e, 0.3)  # noqa: E731
    elif name == "clamp_tensor_bounds":
        fn = lambda x, lo: mg.clamp(x, min=lo, max=1.5)  # noqa: E731
    elif name == "where_tensors":
        fn = lambda x, y: mg.where(x > 1.0, x, y)  # noqa: E731
    else:
        fn = getattr(mg, name)
    pairs = _edit_after_forward(fn, [a, b], edit)
    assert _unchanged(pairs), (name, edit, pairs)
