"""GELU / SiLU / dropout / fused linear epilogue / bmm kernels == NumPy references."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen  # noqa: F401
from minigen.kernels import cpu_activation as A
from minigen.kernels import cpu_matmul as M

DTYPES = st.sampled_from([np.float32, np.float64])
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
_erf = np.vectorize(math.erf)


def noncontig(a, flag):
    if not flag or a.ndim == 0:
        return a
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def ref_act(x, kind):
    x = x.astype(np.float64)
    if kind == "gelu":
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    if kind == "gelu_tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if kind == "silu":
        return x / (1 + np.exp(-x))
    if kind == "relu":
        return np.maximum(x, 0)
    return x


def ref_grad(x, kind):
    x = x.astype(np.float64)
    if kind == "gelu":
        return 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    if kind == "gelu_tanh":
        t = np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
    if kind == "silu":
        s = 1 / (1 + np.exp(-x))
        return s * (1 + x * (1 - s))
    if kind == "relu":
        return (x > 0).astype(np.float64)
    return np.ones_like(x)


@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3), dt=DTYPES, seed=st.integers(0, 2**31),
       nc=st.booleans(), kind=st.sampled_from(["gelu", "gelu_tanh", "silu"]))
def test_pointwise_activations(shape, dt, seed, nc, kind):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(dt)
    g = rng.standard_normal(shape).astype(dt)
    if kind == "silu":
        y, dx = A.silu_forward(noncontig(x, nc)), A.silu_backward(noncontig(x, nc), g)
    else:
        appr = "tanh" if kind == "gelu_tanh" else "none"
        y, dx = A.gelu_forward(noncontig(x, nc), appr), A.gelu_backward(x, noncontig(g, nc), appr)
    assert y.dtype == dt and y.shape == x.shape
    np.testing.assert_allclose(y, ref_act(x, kind), **TOL[dt])
    np.testing.assert_allclose(dx, g * ref_grad(x, kind), **TOL[dt])


@given(shape=st.lists(st.integers(1, 9), min_size=0, max_size=3), dt=DTYPES, seed=st.integers(0, 2**31),
       nc=st.booleans(), leaky=st.booleans(), nan=st.booleans())
def test_masked_linear_equals_reference_with_nan(shape, dt, seed, nc, leaky, nan):
    """relu / leaky-relu kernel == MaskedLinear's NumPy reference, NaN included (relu(nan) = nan, slope 1;
    leaky: nan, slope a)."""
    from minigen.kernels import dispatch
    from minigen.ops.activation import MaskedLinear

    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dt)
    if nan and x.size:
        x.reshape(-1)[rng.integers(0, x.size)] = np.nan
    if x.size:
        x.reshape(-1)[0] = 0.0  # the kink
    a = 0.1 if leaky else 0.0
    y, slope = A.masked_linear_forward(noncontig(x, nc), a, leaky)

    class Ctx:
        needs_input_grad = (True, False, False, False)

    ctx = Ctx()
    with dispatch.use_reference():
        y_ref = MaskedLinear.forward(ctx, x, "leaky" if leaky else "relu", a, None)
    assert y.dtype == slope.dtype == dt and y.shape == x.shape
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(slope, ctx.slope)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))


@given(shape=st.lists(st.integers(1, 9), min_size=0, max_size=3), dt=DTYPES, seed=st.integers(0, 2**31))
def test_erf_kernels_equal_reference(shape, dt, seed):
    """The erf / erfc kernels (libm through a Numba ufunc) == math.erf / math.erfc element by element."""
    from minigen.ops.pointwise import erf_reference, erfc_reference

    x = (np.random.default_rng(seed).standard_normal(shape) * 3).astype(dt)
    tol = dict(rtol=0, atol=0) if dt == np.float64 else dict(rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(A.erf(x), erf_reference(x), **tol)
    np.testing.assert_allclose(A.erfc(x), erfc_reference(x), **tol)
    assert A.erf(x).shape == x.shape and A.erf(x).dtype == dt


def test_activation_hand_values():
    # gelu(1) = Phi(1) = 0.8413447460685429; silu(0) = 0, silu'(0) = 1/2; extreme inputs do not overflow
    assert A.gelu_forward(np.array([1.0]))[0] == pytest.approx(0.8413447460685429, rel=1e-14)
    assert A.silu_backward(np.array([0.0]), np.array([1.0]))[0] == 0.5
    y = A.silu_forward(np.array([-1000.0, 1000.0]))
    np.testing.assert_array_equal(y, [-0.0, 1000.0])


@given(lead=st.lists(st.integers(1, 5), min_size=1, max_size=2), K=st.integers(1, 12), N=st.integers(1, 12),
       dt=DTYPES, seed=st.integers(0, 2**31), bias=st.booleans(),
       act=st.sampled_from(["none", "relu", "gelu", "gelu_tanh", "silu"]))
def test_linear_act(lead, K, N, dt, seed, bias, act):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(lead) + (K,)).astype(dt)
    w = rng.standard_normal((N, K)).astype(dt)
    b = rng.standard_normal(N).astype(dt) if bias else None
    z_ref = x.astype(np.float64) @ w.T.astype(np.float64) + (0 if b is None else b)
    y, z = M.linear_act_forward(x, w, b, act)
    tol = dict(rtol=1e-4, atol=1e-4) if dt == np.float32 else TOL[dt]
    np.testing.assert_allclose(z, z_ref, **tol)
    np.testing.assert_allclose(y, ref_act(z, act), **tol)
    g = rng.standard_normal(y.shape).astype(dt)
    gz, db = M.linear_act_backward(g, z, act)
    np.testing.assert_allclose(gz, g * ref_grad(z, act), **tol)
    np.testing.assert_allclose(db, (g * ref_grad(z, act)).reshape(-1, N).sum(0), **tol)


@given(B=st.integers(1, 6), m=st.integers(1, 7), k=st.integers(1, 7), n=st.integers(1, 7), dt=DTYPES,
       seed=st.integers(0, 2**31))
def test_bmm_small(B, m, k, n, dt, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((B, m, k)).astype(dt)
    b = rng.standard_normal((B, k, n)).astype(dt)
    np.testing.assert_allclose(M.bmm_small(a, b), a @ b, **TOL[dt])


@given(shape=st.lists(st.integers(0, 9), min_size=0, max_size=3), dt=DTYPES, seed=st.integers(0, 2**31),
       nc=st.booleans(), scale=st.sampled_from([1.0, 4.0, 60.0]))
def test_sigmoid_kernels_equal_the_reference(shape, dt, seed, nc, scale):
    """sigmoid_forward == the op file's stable NumPy formula (inputs up to |x| ~ 200: saturated ends, no
    overflow warning), sigmoid_backward == g y (1 - y), both for strided inputs too."""
    from minigen.ops.activation import _stable_sigmoid

    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(dt)
    g = rng.standard_normal(shape).astype(dt)
    y = A.sigmoid_forward(noncontig(x, nc))
    ref = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert y.dtype == dt and y.shape == x.shape
    np.testing.assert_allclose(y, ref, **TOL[dt])
    np.testing.assert_allclose(y, _stable_sigmoid(np, x), **TOL[dt])
    dx = A.sigmoid_backward(noncontig(y, nc), g)
    y64 = y.astype(np.float64)
    assert dx.dtype == dt
    np.testing.assert_allclose(dx, g * y64 * (1 - y64), **TOL[dt])


def test_sigmoid_hand_values():
    # sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4; the ends saturate to exactly 0 and 1 without overflow
    for dt in (np.float32, np.float64):
        y = A.sigmoid_forward(np.array([0.0, math.log(3.0), -1000.0, 1000.0], dt))
        np.testing.assert_allclose(y, [0.5, 0.75, 0.0, 1.0], rtol=1e-7, atol=0)
        assert A.sigmoid_backward(np.array([0.5], dt), np.array([2.0], dt))[0] == 0.5
