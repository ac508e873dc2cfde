"""Core arithmetic (minigen/ops/pointwise.py, minigen/ops/reduction.py): add, sub, mul, div, neg, pow, exp,
log, sum, mean with broadcasting, Python scalars on either side and non-contiguous inputs.
Gradients (first and second order), PyTorch oracle, hand-computed cases, errors."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen.errors import DimError, DTypeError, ShapeError
from minigen.testing import compare_with_torch as _compare_with_torch, gradcheck, gradgradcheck
from minigen.testing import strategies as mst
from tests.conftest import requires_torch


@st.composite
def broadcast_pair(draw, elems_a=None, elems_b=None):
    sa, sb = draw(mst.mutually_broadcastable_shapes(2)).input_shapes
    return draw(mst.tensors(shape=sa, elements=elems_a)), draw(mst.tensors(shape=sb, elements=elems_b))


POSITIVE = mst.floats(0.2, 2.0)
NONZERO = mst.away_from(0.0, -2, 2, 0.2)

# the binary operators (a + b, a - b, a * b, a / b, a ** b, add/sub with alpha) and the unary ones (-x, exp,
# log, x ** s, s ** x): gradcheck, gradgradcheck and the PyTorch oracle are rows of tests/op_table.py
# (add, sub, mul, div, pow, add_alpha, sub_alpha, neg, exp, log, pow_scalar, pow_half, pow_neg, pow_two, rpow)
SCALAR = [-1.5, 0.5, 2.0, 3]


# ------------------------------------------------------------------ binary ops
@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**"])
@pytest.mark.parametrize("s", SCALAR)
@given(x=mst.tensors(elements=POSITIVE))
def test_scalar_on_either_side(op, s, x):
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
           "**": lambda a, b: a ** b}
    f = ops[op]
    right, left = f(x, s), f(s, x) if not (op == "**" and s < 0) else None
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(right.array, f(x.array, s), rtol=1e-14)
        assert right.dtype == x.dtype
        assert gradcheck(lambda t: f(t, s), (x,))
        if left is not None:
            np.testing.assert_allclose(left.array, f(s, x.array), rtol=1e-14)
            assert left.dtype == x.dtype
            assert gradcheck(lambda t: f(s, t), (x,))


def test_scalars_keep_float32():
    x = mg.ones(2, 3)
    for y in (x + 1.5, 2 * x, x / 3, 1 - x, x ** 2.5, 2.0 ** x, mg.exp(x), x.sum(), x.mean(0)):
        assert y.dtype == mg.float32
    np.testing.assert_array_equal((mg.tensor([1, 3]) / 2).array, [0.5, 1.5])
    assert (mg.tensor([1, 3]) / 2).dtype == mg.float32


def test_int_by_int_division_is_default_float():
    """int / int gives the default float dtype in PyTorch (float32), not float32 / int64 -> float64."""
    y = mg.tensor([1, 2]) / mg.tensor([2, 4])
    np.testing.assert_array_equal(y.array, [0.5, 0.5])
    assert y.dtype == mg.float32


@requires_torch
@pytest.mark.parametrize("s", SCALAR)
def test_scalars_match_torch(s):
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.uniform(0.5, 2.0, (2, 3)), requires_grad=True)
    for f in (lambda t: t + s, lambda t: s + t, lambda t: t - s, lambda t: s - t, lambda t: t * s,
              lambda t: s * t, lambda t: t / s, lambda t: s / t, lambda t: t ** s):
        _compare_with_torch(f, f, [x])
    if s > 0:
        _compare_with_torch(lambda t: s ** t, lambda t: s ** t, [x])


# ------------------------------------------------------------------ unary ops
def test_hand_computed():
    a = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    b = mg.tensor([[3.0], [4.0], [5.0]], dtype=mg.float64, requires_grad=True)
    y = a * b + a / b - b  # (3, 2)
    y.sum().backward()
    # da_j = sum_i (b_i + 1 / b_i);  db_i = sum_j (a_j - a_j / b_i^2 - 1)
    np.testing.assert_allclose(a.grad.array, [12 + 1 / 3 + 1 / 4 + 1 / 5] * 2, rtol=1e-15)
    np.testing.assert_allclose(b.grad.array, [[3 - 3 / 9 - 2], [3 - 3 / 16 - 2], [3 - 3 / 25 - 2]], rtol=1e-15)
    x = mg.tensor(2.0, dtype=mg.float64, requires_grad=True)
    (x ** 3).backward()
    assert x.grad.item() == 12.0
    e = mg.tensor(3.0, dtype=mg.float64, requires_grad=True)
    (2.0 ** e).backward()  # d/de 2^e = 2^e ln 2
    assert e.grad.item() == pytest.approx(8 * math.log(2), rel=1e-15)
    z = mg.tensor([1.0, math.e], dtype=mg.float64, requires_grad=True)
    mg.log(z).sum().backward()
    np.testing.assert_allclose(z.grad.array, [1.0, 1 / math.e], rtol=1e-15)


def test_second_derivative_hand_computed():
    x = mg.tensor(1.5, dtype=mg.float64, requires_grad=True)
    (g,) = mg.grad(x ** 3, x, create_graph=True)  # 3 x^2
    (h,) = mg.grad(g, x)  # 6 x
    assert (g.item(), h.item()) == pytest.approx((6.75, 9.0))
    (g,) = mg.grad(mg.log(x), x, create_graph=True)
    (h,) = mg.grad(g, x)  # -1 / x^2
    assert h.item() == pytest.approx(-1 / 2.25)


# ------------------------------------------------------------------ sum / mean
@st.composite
def reduce_case(draw, shape=None):
    x = draw(mst.tensors(shape=shape if shape is not None else mst.shapes(min_dims=1)))
    return x, draw(mst.valid_dims(x.ndim)), draw(st.booleans())


def _ax(dim, ndim):
    return None if dim is None else (tuple(d % ndim for d in dim) if isinstance(dim, tuple) else dim % ndim)


@given(reduce_case())
def test_sum_mean(case):
    x, dim, keepdim = case
    ax = _ax(dim, x.ndim)
    np.testing.assert_allclose(mg.sum(x, dim, keepdim).array, x.array.sum(axis=ax, keepdims=keepdim), rtol=1e-12)
    np.testing.assert_allclose(x.mean(dim, keepdim).array, x.array.mean(axis=ax, keepdims=keepdim), rtol=1e-12)
    assert gradcheck(lambda t: t.sum(dim, keepdim), (x,))
    assert gradcheck(lambda t: mg.mean(t, dim, keepdim), (x,))


@given(reduce_case(shape=mst.shapes(min_dims=1, max_dims=2, max_side=3)))
def test_sum_mean_gradgradcheck(case):
    x, dim, keepdim = case
    assert gradgradcheck(lambda t: (t * t).sum(dim, keepdim), (x,))
    assert gradgradcheck(lambda t: mg.mean(t * t * t, dim, keepdim), (x,))


@requires_torch
@given(reduce_case())
def test_sum_mean_match_torch(case):
    import torch

    x, dim, keepdim = case
    tdim = dim if dim is not None else tuple(range(x.ndim))
    _compare_with_torch(lambda t: t.sum(dim, keepdim), lambda t: torch.sum(t, tdim, keepdim), [x])
    _compare_with_torch(lambda t: t.mean(dim, keepdim), lambda t: torch.mean(t, tdim, keepdim), [x])


def test_sum_mean_hand_computed():
    x = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=mg.float64, requires_grad=True)
    np.testing.assert_array_equal(x.sum(0).array, [5.0, 7.0, 9.0])
    np.testing.assert_array_equal(x.mean(1, keepdim=True).array, [[2.0], [5.0]])
    assert x.sum().item() == 21.0 and x.mean((0, 1)).item() == 3.5
    x.mean(-1).sum().backward()
    np.testing.assert_allclose(x.grad.array, np.full((2, 3), 1 / 3), rtol=1e-15)
    assert mg.sum(x, dtype=mg.float32).dtype == mg.float32


# ------------------------------------------------------------------ non-contiguous inputs (explicit)
def test_non_contiguous_inputs():
    base = np.arange(24.0).reshape(4, 6) / 10
    other = base.copy() + 0.5  # b must not alias a's memory (gradcheck perturbs a in place)
    a = mg.Tensor(base.T).requires_grad_(True)  # (6, 4), transposed strides
    b = mg.Tensor(other[::2, ::3]).requires_grad_(True)  # (2, 2), sliced strides
    assert not a.is_contiguous() and not b.is_contiguous()
    y = (a[:2, :2] * b + b / (a[:2, :2] + 1)) ** 2
    bb = other[::2, ::3]
    np.testing.assert_allclose(y.array, (base.T[:2, :2] * bb + bb / (base.T[:2, :2] + 1)) ** 2)
    assert gradcheck(lambda u, w: (u[:2, :2] * w + w / (u[:2, :2] + 1)) ** 2, (a, b))
    assert gradcheck(lambda u: mg.exp(u).sum(0) + mg.log(u + 1).mean(1).sum(), (a,))


# ------------------------------------------------------------------ errors
def test_errors():
    with pytest.raises(ShapeError, match=r"\(3,\).*\(4,\)|\(4,\).*\(3,\)|broadcast"):
        mg.zeros(3) + mg.zeros(4)
    with pytest.raises(ShapeError):
        mg.zeros(2, 3) * mg.zeros(3, 2)
    with pytest.raises(ShapeError):
        mg.zeros(2, 3) / mg.ones(2)
    with pytest.raises(DimError, match="out of range"):
        mg.zeros(2, 3).sum(2)
    with pytest.raises(DimError):
        mg.zeros(2, 3).mean((0, -3))
    with pytest.raises(DimError):
        mg.zeros(2, 3).sum((1, 1))
    with pytest.raises(DTypeError, match="int64"):
        mg.tensor([1, 2]).mean()


# ------------------------------------------------------------------ regression tests for core bugs found here
# (fixed in pointwise.py / reduction.py; each docstring says what went wrong)
def test_backward_through_0d_sub_and_mul_keeps_arrays():
    """The first-order fast path once wrapped NumPy *scalars*: 0-d arithmetic such as -g or g * b returns
    np.float64, not an ndarray, and the next op raised DeviceError ('tensors on different devices')."""
    x = mg.tensor(0.5, dtype=mg.float64, requires_grad=True)
    (1.0 - mg.exp(x)).backward()  # Sub's fast path hands np.float64 to Exp's backward
    assert isinstance(x.grad.array, np.ndarray)
    assert x.grad.item() == pytest.approx(-math.exp(0.5))
    y = mg.tensor(0.5, dtype=mg.float64, requires_grad=True)
    (mg.exp(y * 2.0) * 3.0).backward()
    assert y.grad.item() == pytest.approx(6 * math.exp(1.0))


def test_sum_of_integer_tensor():
    """sum of an integer/bool tensor gives int64 (reduce.sum once passed "int64", read as a device name)."""
    s = mg.tensor([1, 2, 3]).sum()
    assert s.item() == 6 and s.dtype == mg.int64
    assert mg.tensor([True, True, False]).sum().item() == 2


def test_sum_mean_over_dim_0_of_a_0d_tensor():
    """PyTorch accepts dim 0 / -1 on a 0-d tensor (x.sum(0) == x); NumPy's AxisError must not leak."""
    x = mg.tensor(3.0, dtype=mg.float64, requires_grad=True)
    assert x.sum(0).item() == 3.0
    assert x.mean(-1, keepdim=True).item() == 3.0
    x.sum(0).backward()
    assert x.grad.item() == 1.0
