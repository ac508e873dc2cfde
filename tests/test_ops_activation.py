"""Activation functions: gradients (first and second order), PyTorch oracle, kink conventions,
numerical stability, hand-computed values and error handling."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen.errors import DimError, DTypeError, InvalidArgumentError
from minigen.testing import gradcheck, gradgradcheck
from minigen.testing import strategies as mst
from tests.conftest import requires_torch

F = mg  # every functional op is exported as mg.<name> (and as mg.nn.functional.<name>)

# name -> (minigen fn, torch fn name + kwargs, element strategy, second-order check?)
# element strategies keep finite differences away from the kinks (checked exactly in test_kinks).
UNARY = {
    "sigmoid": (mg.sigmoid, ("sigmoid", {}), mst.floats(-4, 4), True),
    "tanh": (mg.tanh, ("tanh", {}), mst.floats(-3, 3), True),
    "relu": (mg.relu, ("relu", {}), mst.away_from(0.0), True),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), ("leaky_relu", {"negative_slope": 0.1}), mst.away_from(0.0), True),
    "elu": (lambda x: F.elu(x, 0.7), ("elu", {"alpha": 0.7}), mst.away_from(0.0), True),
    "selu": (F.selu, ("selu", {}), mst.away_from(0.0), True),
    "celu": (lambda x: F.celu(x, 0.5), ("celu", {"alpha": 0.5}), mst.away_from(0.0), True),
    "gelu": (F.gelu, ("gelu", {}), mst.floats(-3, 3), True),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), ("gelu", {"approximate": "tanh"}), mst.floats(-3, 3),
                  True),
    "silu": (F.silu, ("silu", {}), mst.floats(-3, 3), True),
    "mish": (F.mish, ("mish", {}), mst.floats(-3, 3), True),
    "softplus": (lambda x: F.softplus(x, beta=2.0, threshold=3.0), ("softplus", {"beta": 2.0, "threshold": 3.0}),
                 mst.away_from(1.5, -3, 3), True),
    "logsigmoid": (F.logsigmoid, ("logsigmoid", {}), mst.floats(-4, 4), True),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 1.0), ("hardtanh", {"min_val": -0.5, "max_val": 1.0}),
                 mst.away_from((-0.5, 1.0)), False),
    "relu6": (F.relu6, ("relu6", {}), mst.away_from((0.0, 6.0), -2, 8), False),
    "hardsigmoid": (F.hardsigmoid, ("hardsigmoid", {}), mst.away_from((-3.0, 3.0), -4, 4), False),
    "hardswish": (F.hardswish, ("hardswish", {}), mst.away_from((-3.0, 3.0), -4, 4), True),
    "softsign": (F.softsign, ("softsign", {}), mst.away_from(0.0), True),
    "tanhshrink": (F.tanhshrink, ("tanhshrink", {}), mst.floats(-3, 3), True),
    "threshold": (lambda x: F.threshold(x, 0.5, -1.0), ("threshold", {"threshold": 0.5, "value": -1.0}),
                  mst.away_from(0.5), False),
}
SECOND_ORDER = [k for k, v in UNARY.items() if v[3]]


def _torch_fn(spec):
    import torch

    name, kw = spec
    fn = getattr(torch.nn.functional, name)
    return lambda t: fn(t, **kw)


def _to_torch(x):
    import torch

    return torch.tensor(np.array(x.array), requires_grad=x.requires_grad)


def _compare_with_torch(mg_fn, th_fn, xs, rtol=1e-10, atol=1e-12):
    """Forward and vector-Jacobian products of mg_fn and th_fn on the same float64 inputs."""
    import torch

    ts = [_to_torch(x) for x in xs]
    y, yt = mg_fn(*xs), th_fn(*ts)
    np.testing.assert_allclose(y.array, yt.detach().numpy(), rtol=rtol, atol=atol)
    v = np.random.default_rng(0).standard_normal(y.shape)
    gs = mg.grad(y, list(xs), grad_outputs=mg.tensor(v))
    gts = torch.autograd.grad(yt, ts, grad_outputs=torch.tensor(v))
    for g, gt in zip(gs, gts):
        np.testing.assert_allclose(g.array, gt.numpy(), rtol=rtol, atol=atol)


# ------------------------------------------------------------------ elementwise activations
@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_gradcheck(name, data):
    fn, _, elems, _ = UNARY[name]
    x = data.draw(mst.tensors(elements=elems))
    y = fn(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert gradcheck(fn, (x,))


@pytest.mark.parametrize("name", SECOND_ORDER)
@given(data=st.data())
def test_unary_gradgradcheck(name, data):
    fn, _, elems, _ = UNARY[name]
    x = data.draw(mst.tensors(shape=mst.shapes(max_dims=2, max_side=3), elements=elems))
    assert gradgradcheck(fn, (x,))


@requires_torch
@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_matches_torch(name, data):
    fn, spec, elems, _ = UNARY[name]
    x = data.draw(mst.tensors(elements=elems))
    # PyTorch's float64 hardsigmoid backward multiplies by a float32 1/6 (0.16666667163...)
    rtol = 1e-7 if name == "hardsigmoid" else 1e-10
    _compare_with_torch(fn, _torch_fn(spec), [x], rtol=rtol)


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
    spec = UNARY["softplus" if name == "softplus_threshold" else name][1]
    x = mg.tensor(points, dtype=mg.float64, requires_grad=True)
    _compare_with_torch(fn, _torch_fn(spec), [x], rtol=1e-7 if name == "hardsigmoid" else 1e-10)


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
    for name, (fn, *_rest) in UNARY.items():
        assert fn(x).dtype == mg.float32, name
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


@given(tensor_and_dim())
def test_softmax_gradcheck(xd):
    x, d = xd
    y = mg.softmax(x, d)
    np.testing.assert_allclose(y.array.sum(axis=d if x.ndim else None), 1.0, rtol=1e-12)
    assert gradcheck(lambda t: mg.softmax(t, d), (x,))
    assert gradcheck(lambda t: mg.log_softmax(t, d), (x,))
    assert gradcheck(lambda t: F.softmin(t, d), (x,))


@given(tensor_and_dim(shape=mst.shapes(max_dims=2, max_side=3)))
def test_softmax_gradgradcheck(xd):
    x, d = xd
    assert gradgradcheck(lambda t: mg.softmax(t, d), (x,))
    assert gradgradcheck(lambda t: mg.log_softmax(t, d), (x,))


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


# ------------------------------------------------------------------ compiled kernels == reference
KERNEL_OPS = {
    "softmax": lambda t: mg.softmax(t, -1),
    "log_softmax": lambda t: mg.log_softmax(t, -1),
    "gelu": F.gelu,
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
    "silu": F.silu,
}


@pytest.mark.parametrize("name", list(KERNEL_OPS))
@given(x=mst.tensors(shape=mst.shapes(max_side=5), elements=mst.floats(-6, 6)), f32=st.booleans())
def test_kernel_path_equals_reference(name, x, f32):
    """The op with its Numba kernels forced on (forward and first-order backward) agrees with the
    NumPy reference formulas (the same inputs, the same cotangent)."""
    dispatch = pytest.importorskip("minigen.kernels.dispatch")
    if not dispatch.available():
        pytest.skip("Numba is not installed: no kernels")
    fn = KERNEL_OPS[name]
    if f32:
        x = x.detach().float().requires_grad_(True)
    v = mg.tensor(np.random.default_rng(0).standard_normal(x.shape), dtype=x.dtype)
    results = []
    for mode in ("numba", "reference"):
        with dispatch.set_mode(mode):
            y = fn(x)
            (gx,) = mg.grad(y, x, grad_outputs=v)
        results.append((y.array, gx.array))
    (yk, gk), (yr, gr) = results
    assert yk.dtype == yr.dtype == x.dtype and gk.dtype == x.dtype
    tol = dict(rtol=1e-5, atol=1e-6) if f32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(yk, yr, **tol)
    np.testing.assert_allclose(gk, gr, **tol)


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

    fn, spec, _, _ = UNARY[name]
    vals = [float("nan"), -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0, 7.0]
    for dt in ("float64", "float32"):
        x = mg.tensor(vals, dtype=dt, requires_grad=True)
        with dispatch.set_mode(mode):
            y = fn(x)
            y.sum().backward()
        tx = torch.tensor(vals, dtype=getattr(torch, dt), requires_grad=True)
        ty = _torch_fn(spec)(tx)
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
FAST = {  # name -> (fn, kernels the first-order backward must use)
    "softmax": (lambda t: mg.softmax(t, -1), ["softmax_backward"]),
    "log_softmax": (lambda t: mg.log_softmax(t, -1), ["log_softmax_backward"]),
    "gelu": (F.gelu, ["gelu_forward_grad"]),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), ["gelu_backward"]),
    "silu": (F.silu, ["silu_backward"]),
}


@pytest.mark.parametrize("name", list(FAST))
@given(x=mst.tensors(shape=mst.shapes(min_dims=1, max_side=5), elements=mst.floats(-6, 6)), f32=st.booleans())
def test_fast_backward_equals_backward(name, x, f32):
    """With the kernels forced on, the engine's first-order path (the op's fast_backward, a fused kernel)
    gives the gradient of the op's backward formula (what create_graph=True runs)."""
    from minigen.kernels import dispatch

    if not dispatch.available():
        pytest.skip("Numba is not installed: no kernels")
    fn, kernels = FAST[name]
    if f32:
        x = x.detach().float().requires_grad_(True)
    v = mg.tensor(np.random.default_rng(1).standard_normal(x.shape), dtype=x.dtype)
    with dispatch.use_kernels():
        dispatch.reset_stats()
        (fast,) = mg.grad(fn(x), x, grad_outputs=v)
        assert all(dispatch.stats().get(k, 0) >= 1 for k in kernels), dispatch.stats()
        (formula,) = mg.grad(fn(x), x, grad_outputs=v, create_graph=True)
    assert fast.dtype == formula.dtype == x.dtype
    tol = dict(rtol=2e-5, atol=1e-6) if f32 else dict(rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(fast.array, formula.array, **tol)


@pytest.mark.parametrize("name", list(FAST))
def test_fast_backward_declines_without_a_kernel(name):
    """In reference mode fast_backward returns NotImplemented and the engine runs the formula."""
    from minigen.kernels import dispatch

    fn, _ = FAST[name]
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

    fn = UNARY[name][0] if name in UNARY else (lambda t: getattr(mg, name)(t, -1))
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
