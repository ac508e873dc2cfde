"""Activation functions: gradients (first and second order), PyTorch oracle, kink conventions,
numerical stability, hand-computed values and error handling."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen.errors import DimError, DTypeError, InvalidArgumentError
from minigen.testing import compare_with_torch as _compare_with_torch
from minigen.testing import strategies as mst
from tests.conftest import requires_torch
from tests.op_table import row as op_row

F = mg  # every functional op is exported as mg.<name> (and as mg.nn.functional.<name>)

# gradcheck, gradgradcheck (second order where marked), the PyTorch oracle and kernel == reference of every
# activation: rows of tests/op_table.py (fn: op_row(name).fn, torch twin: op_row(name).torch_fn())
UNARY = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "celu", "gelu", "gelu_tanh", "silu", "mish", "softplus",
         "logsigmoid", "hardtanh", "relu6", "hardsigmoid", "hardswish", "softsign", "tanhshrink", "threshold"]


KINKS = {  # op, points, expected derivative at each point (PyTorch's conventions)
    "relu": (mg.relu, [0.0], [0.0]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), [0.0], [0.1]),
    "elu": (lambda x: F.elu(x, 0.7), [0.0], [0.7]),
    "celu": (lambda x: F.celu(x, 0.5), [0.0], [1.0]),
    "selu": (F.selu, [0.0], [1.0507009873554805 * 1.6732632423543772]),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 1.0), [-0.5, 1.0], [0.0, 0.0]),
    "relu6": (F.relu6, [0.0, 6.0], [0.0, 0.0]),
    "hardsigmoid": (F.hardsigmoid, [-3.0, 3.0], [0.0, 0.0]),
    "hardswish": (F.hardswish, [-3.0, 0.0, 3.0], [0.0, 0.5, 1.0]),
    "softplus_threshold": (lambda x: F.softplus(x, beta=2.0, threshold=3.0), [1.5],
                           [1 / (1 + math.exp(-3.0))]),  # at beta*x == threshold the log branch is used
    "threshold": (lambda x: F.threshold(x, 0.5, -1.0), [0.5], [0.0]),
}


@pytest.mark.parametrize("name", list(KINKS))
def test_kinks(name):
    fn, points, expected = KINKS[name]
    x = mg.tensor(points, dtype=mg.float64, requires_grad=True)
    fn(x).sum().backward()
    np.testing.assert_allclose(x.grad.array, expected, rtol=1e-12)


@requires_torch
@pytest.mark.parametrize("name", [k for k in KINKS if k in UNARY or k == "softplus_threshold"])
def test_kinks_match_torch(name):
    fn, points, _ = KINKS[name]
    tfn = op_row("softplus" if name == "softplus_threshold" else name).torch_fn()
    x = mg.tensor(points, dtype=mg.float64, requires_grad=True)
    _compare_with_torch(fn, tfn, [x], rtol=1e-7 if name == "hardsigmoid" else 1e-10)


def test_hand_computed_values():
    x = mg.tensor([0.0, 1.0, -1.0], dtype=mg.float64, requires_grad=True)
    np.testing.assert_allclose(mg.sigmoid(x).array, [0.5, 1 / (1 + math.exp(-1)), 1 / (1 + math.e)], rtol=1e-15)
    mg.sigmoid(x)[0].backward()
    assert x.grad.array[0] == pytest.approx(0.25)
    np.testing.assert_allclose(F.gelu(x).array, [0.0, 0.5 * (1 + math.erf(1 / math.sqrt(2))),
                                                -0.5 * (1 + math.erf(-1 / math.sqrt(2)))], rtol=1e-14)
    np.testing.assert_allclose(F.silu(x).array, [0.0, 1 / (1 + math.exp(-1)), -1 / (1 + math.e)], rtol=1e-15)
    np.testing.assert_allclose(F.softplus(x).array, [math.log(2), math.log(1 + math.e), math.log(1 + 1 / math.e)],
                               rtol=1e-15)
    np.testing.assert_allclose(F.elu(x, 2.0).array, [0.0, 1.0, 2 * (math.exp(-1) - 1)], rtol=1e-15)
    np.testing.assert_allclose(F.mish(x).array[1], math.tanh(math.log(1 + math.e)), rtol=1e-15)
    # gelu'(x) = Phi(x) + x phi(x): at 1, 0.8413447 + 0.2419707
    x1 = mg.tensor(1.0, dtype=mg.float64, requires_grad=True)
    F.gelu(x1).backward()
    assert x1.grad.item() == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))) + math.exp(-0.5) / math.sqrt(
        2 * math.pi), rel=1e-14)


def test_stable_at_extremes():
    x = mg.tensor([-1000.0, 1000.0], dtype=mg.float64)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow, no 0 * inf (underflow is fine)
        np.testing.assert_array_equal(mg.sigmoid(x).array, [0.0, 1.0])
        np.testing.assert_array_equal(F.logsigmoid(x).array, [-1000.0, 0.0])
        np.testing.assert_array_equal(F.softplus(x).array, [0.0, 1000.0])
        np.testing.assert_array_equal(F.silu(x).array, [-0.0, 1000.0])
        np.testing.assert_allclose(F.mish(x).array, [0.0, 1000.0])
        xs = mg.tensor([-800.0, 800.0], dtype=mg.float64, requires_grad=True)
        F.elu(xs).sum().backward()
        np.testing.assert_allclose(xs.grad.array, [0.0, 1.0], atol=1e-300)


def test_float32_stays_float32():
    x = mg.randn(3, 4)
    for name in UNARY:
        assert op_row(name).fn(x).dtype == mg.float32, name
    assert F.softmax(x, -1).dtype == mg.float32


def test_inplace_variants():
    base = mg.tensor([-1.0, 2.0], dtype=mg.float64, requires_grad=True)
    h = base * 1.0
    out = h.relu_()
    assert out is h
    np.testing.assert_array_equal(h.array, [0.0, 2.0])
    h.sum().backward()
    np.testing.assert_array_equal(base.grad.array, [0.0, 1.0])
    y = mg.tensor([-2.0, 0.5])
    F.leaky_relu(y, 0.5, inplace=True)
    np.testing.assert_array_equal(y.array, [-1.0, 0.5])
    z = mg.tensor([0.0])
    z.sigmoid_()
    assert z.item() == 0.5


def test_tensor_methods():
    x = mg.tensor([[-1.0, 0.5], [2.0, -3.0]])
    np.testing.assert_array_equal(x.relu().array, mg.relu(x).array)
    np.testing.assert_array_equal(x.sigmoid().array, mg.sigmoid(x).array)
    np.testing.assert_array_equal(x.tanh().array, mg.tanh(x).array)
    np.testing.assert_array_equal(x.softmax(0).array, mg.softmax(x, 0).array)
    np.testing.assert_array_equal(x.log_softmax(-1).array, mg.log_softmax(x, -1).array)


# ------------------------------------------------------------------ softmax family
@st.composite
def tensor_and_dim(draw, **kw):
    x = draw(mst.tensors(**kw))
    return x, draw(mst.valid_dim(x.ndim))


# softmax / log_softmax / softmin gradcheck and gradgradcheck: rows of tests/op_table.py


@requires_torch
@given(tensor_and_dim(elements=mst.floats(-30, 30)))
def test_softmax_matches_torch(xd):
    import torch

    x, d = xd
    _compare_with_torch(lambda t: mg.softmax(t, d), lambda t: torch.softmax(t, d), [x])
    _compare_with_torch(lambda t: mg.log_softmax(t, d), lambda t: torch.log_softmax(t, d), [x])
    _compare_with_torch(lambda t: F.softmin(t, d), lambda t: torch.nn.functional.softmin(t, d), [x])


@requires_torch
@given(tensor_and_dim(shape=mst.shapes(min_dims=1), elements=mst.floats(-3, 3)))
def test_glu_matches_torch(xd):
    import torch

    x, d = xd
    if x.shape[d] % 2:
        with pytest.raises(InvalidArgumentError):
            F.glu(x, d)
        return
    _compare_with_torch(lambda t: F.glu(t, d), lambda t: torch.nn.functional.glu(t, d), [x])


def test_softmax_hand_computed():
    x = mg.tensor([0.0, math.log(3.0)], dtype=mg.float64, requires_grad=True)
    y = mg.softmax(x, 0)
    np.testing.assert_allclose(y.array, [0.25, 0.75], rtol=1e-15)
    # dx = y * (g - sum(g * y)) with g = (1, 0): (0.25 * 0.75, -0.75 * 0.25)
    y.backward(mg.tensor([1.0, 0.0], dtype=mg.float64))
    np.testing.assert_allclose(x.grad.array, [0.1875, -0.1875], rtol=1e-14)
    x.grad = None
    ls = mg.log_softmax(x, 0)
    np.testing.assert_allclose(ls.array, [math.log(0.25), math.log(0.75)], rtol=1e-15)
    # dx = g - exp(y) sum(g) with g = (1, 0): (1 - 0.25, -0.75)
    ls.backward(mg.tensor([1.0, 0.0], dtype=mg.float64))
    np.testing.assert_allclose(x.grad.array, [0.75, -0.75], rtol=1e-14)


def test_softmax_stability_and_edge_cases():
    x = mg.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]], dtype=mg.float64)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = mg.softmax(x, 1)
        ls = mg.log_softmax(x, 1)
    ref = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    np.testing.assert_allclose(y.array[0], ref, rtol=1e-14)
    np.testing.assert_allclose(y.array[1], ref[::-1], rtol=1e-14)
    np.testing.assert_allclose(ls.array[0], np.log(ref), rtol=1e-14)
    # 0-d input: softmax of one element is 1
    assert mg.softmax(mg.tensor(3.0), 0).item() == 1.0
    assert mg.log_softmax(mg.tensor(3.0), -1).item() == 0.0
    # empty input stays empty
    assert mg.softmax(mg.zeros(0, 3), 1).shape == (0, 3)
    # dtype= casts first
    assert mg.softmax(mg.tensor([1.0, 2.0]), 0, dtype=mg.float64).dtype == mg.float64


def test_errors():
    with pytest.raises(DTypeError, match="int64"):
        mg.sigmoid(mg.tensor([1, 2]))
    with pytest.raises(DTypeError):
        mg.softmax(mg.tensor([1, 2]), 0)
    with pytest.raises(DTypeError):
        F.gelu(mg.tensor([1, 2]))
    with pytest.raises(DimError, match="out of range"):
        mg.softmax(mg.zeros(2, 3), 2)
    with pytest.raises(DimError):
        mg.log_softmax(mg.zeros(2, 3), -3)
    with pytest.raises(InvalidArgumentError, match="dim"):
        mg.softmax(mg.zeros(2, 3))
    with pytest.raises(InvalidArgumentError, match="approximate"):
        F.gelu(mg.zeros(2), approximate="erf")
    with pytest.raises(InvalidArgumentError):
        F.hardtanh(mg.zeros(2), 1.0, -1.0)


# compiled kernels == reference (softmax, log_softmax, gelu, gelu tanh, silu; float32 and float64) and
# fast_backward == backward: test_kernel_path_equals_reference in tests/test_op_table.py


# ------------------------------------------------------------------ NaN, as PyTorch
@requires_torch
@pytest.mark.parametrize("mode", ["numba", "reference"])
@pytest.mark.parametrize("name", list(UNARY))
def test_nan_and_kinks_match_torch(name, mode):
    """relu(nan) is NaN (it once returned 0): every activation's value at NaN, and its value and gradient
    at its kinks, equal PyTorch's, with the kernels forced on and with the NumPy references.

    (Gradients *at* NaN are not compared: PyTorch's own differ between its loops, e.g. hardtanh's is 1 in
    float32 and 0 in float64.)"""
    import torch
    from minigen.kernels import dispatch

    fn, tfn = op_row(name).fn, op_row(name).torch_fn()
    vals = [float("nan"), -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0, 7.0]
    for dt in ("float64", "float32"):
        x = mg.tensor(vals, dtype=dt, requires_grad=True)
        with dispatch.set_mode(mode):
            y = fn(x)
            y.sum().backward()
        tx = torch.tensor(vals, dtype=getattr(torch, dt), requires_grad=True)
        ty = tfn(tx)
        ty.sum().backward()
        # float32: PyTorch's GELU loses digits to cancellation in 1 + erf(x / sqrt 2) for x << 0 (ours keeps
        # them: gelu(-3) = -0.00404969, torch -0.00405023); float64: its hardsigmoid slope is 1/6 rounded to
        # float32
        tol = dict(rtol=1e-10, atol=1e-15) if dt == "float64" else dict(rtol=2e-4, atol=1e-7)
        gtol = dict(rtol=1e-7, atol=1e-15) if (dt, name) == ("float64", "hardsigmoid") else tol
        np.testing.assert_allclose(y.array, ty.detach().numpy(), equal_nan=True, **tol, err_msg=f"{name} {dt}")
        assert np.isnan(y.array[0]), f"{name}(nan) must be NaN"
        np.testing.assert_allclose(x.grad.array[1:], tx.grad.numpy()[1:], **gtol, err_msg=f"grad {name} {dt}")


def test_relu_of_nan_is_nan():
    from minigen.kernels import dispatch

    for mode in ("numba", "reference"):
        with dispatch.set_mode(mode):
            for f in (mg.relu, F.relu6, F.leaky_relu, F.hardtanh, lambda t: F.threshold(t, 0.0, -1.0)):
                y = f(mg.tensor([float("nan"), -1.0, 2.0]))
                assert np.isnan(y.array[0]) and not np.isnan(y.array[1:]).any()


# ------------------------------------------------------------------ fast_backward == backward
# (with the kernels forced on: test_kernel_path_equals_reference in tests/test_op_table.py compares the fused
# first-order gradient with the create_graph formula and the reference, and checks which kernels ran)
FAST = {"softmax": lambda t: mg.softmax(t, -1), "log_softmax": lambda t: mg.log_softmax(t, -1), "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"), "silu": F.silu}


@pytest.mark.parametrize("name", list(FAST))
def test_fast_backward_declines_without_a_kernel(name):
    """In reference mode fast_backward returns NotImplemented and the engine runs the formula."""
    from minigen.kernels import dispatch

    fn = FAST[name]
    x = mg.tensor(np.linspace(-2, 2, 12).reshape(3, 4), requires_grad=True)
    with dispatch.use_reference():
        dispatch.reset_stats()
        (g,) = mg.grad(fn(x), x, grad_outputs=mg.ones(3, 4, dtype=mg.float64))
        assert dispatch.stats() == {}
    with dispatch.use_reference():
        (g2,) = mg.grad(fn(x), x, grad_outputs=mg.ones(3, 4, dtype=mg.float64), create_graph=True)
    np.testing.assert_allclose(g.array, g2.array, rtol=1e-14, atol=0)


# ------------------------------------------------------------------ reads: no silent wrong gradient
@pytest.mark.parametrize("name", list(UNARY) + ["softmax", "log_softmax"])
def test_editing_the_input_after_the_forward_never_gives_a_wrong_gradient(name):
    """Each op saves only what its gradient reads: after the forward, editing the input in place either
    raises InplaceError (the gradient reads it) or leaves the gradient exactly as without the edit."""
    from minigen.errors import InplaceError

    fn = op_row(name).fn if name in UNARY else (lambda t: getattr(mg, name)(t, -1))
    base = mg.tensor(np.linspace(-2.5, 2.7, 12).reshape(3, 4), requires_grad=True)
    v = mg.tensor(np.random.default_rng(0).standard_normal((3, 4)))
    (want,) = mg.grad(fn(base * 1.0), base, grad_outputs=v)
    x = base * 1.0
    y = fn(x)
    x.mul_(-3.0)
    try:
        (got,) = mg.grad(y, base, grad_outputs=v)
    except InplaceError:
        return
    np.testing.assert_array_equal(got.array, want.array)
