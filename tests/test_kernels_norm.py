"""Layer-norm and batch-norm kernels == NumPy references (random shapes, strides, dtypes, affine or not)."""
import numpy as np
from hypothesis import given, strategies as st

import minigen  # noqa: F401
from minigen.kernels import cpu_norm as K

DTYPES = st.sampled_from([np.float32, np.float64])
TOL = {np.float32: dict(rtol=1e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}


def noncontig(a, flag):
    if not flag or a.ndim == 0:
        return a
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def ref_norm(x, axes, w, b, eps):
    x = x.astype(np.float64)
    mu = x.mean(axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axes, keepdims=True)
    rs = 1 / np.sqrt(var + eps)
    xh = (x - mu) * rs
    return xh * w + b, mu, var, rs, xh


@given(lead=st.lists(st.integers(1, 4), min_size=1, max_size=2), D=st.integers(1, 40), dt=DTYPES,
       seed=st.integers(0, 2**31), nc=st.booleans(), affine=st.booleans())
def test_layer_norm(lead, D, dt, seed, nc, affine):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(tuple(lead) + (D,)) * 2 + 1).astype(dt)
    g = rng.standard_normal(x.shape).astype(dt)
    w = rng.standard_normal(D).astype(dt) if affine else None
    b = rng.standard_normal(D).astype(dt) if affine else None
    y, mean, rstd = K.layer_norm_forward(noncontig(x, nc), w, b, 1e-5)
    W = np.ones(D) if w is None else w
    B = np.zeros(D) if b is None else b
    yr, mu, var, rs, xh = ref_norm(x, -1, W, B, 1e-5)
    np.testing.assert_allclose(y, yr, **TOL[dt])
    np.testing.assert_allclose(mean, mu.reshape(-1), **TOL[dt])
    np.testing.assert_allclose(rstd, rs.reshape(-1), rtol=TOL[dt]["rtol"] * 10)
    dx, dw, db = K.layer_norm_backward(noncontig(g, nc), x, w, mean, rstd)
    gw = g * W
    dxr = rs * (gw - gw.mean(-1, keepdims=True) - xh * (gw * xh).mean(-1, keepdims=True))
    np.testing.assert_allclose(dx, dxr, **TOL[dt])
    if affine:
        np.testing.assert_allclose(dw, (g * xh).reshape(-1, D).sum(0), **TOL[dt])
        np.testing.assert_allclose(db, g.reshape(-1, D).sum(0), **TOL[dt])
    else:
        assert dw is None and db is None


@given(R=st.integers(1, 300), dt=DTYPES, seed=st.integers(0, 2**31), affine=st.booleans())
def test_layer_norm_backward_size_one_dim_is_exactly_zero(R, dt, seed, affine):
    # D = 1: xhat = 0 and g w - mean(g w) = 0, so dx = 0 exactly, whatever rstd = 1/sqrt(eps) amplifies.
    # (Before the fix, float32 gave |dx| up to ~5e-5: an FMA residue of g*w times 316.)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((R, 1)) * 10).astype(dt)
    g = (rng.standard_normal((R, 1)) * 10).astype(dt)
    w = rng.standard_normal(1).astype(dt) if affine else None
    y, mean, rstd = K.layer_norm_forward(x, w, None, 1e-5)
    dx, dw, _ = K.layer_norm_backward(g, x, w, mean, rstd)
    assert np.array_equal(dx, np.zeros_like(x)) and dx.dtype == dt
    if affine:
        assert dw[0] == 0.0


def test_layer_norm_hand_case_and_parallel_path():
    # x = (1, 3): mean 2, var 1, xhat = (-1, 1); eps = 0
    y, m, r = K.layer_norm_forward(np.array([[1.0, 3.0]]), np.array([2.0, 2.0]), np.array([0.5, 0.5]), 0.0)
    np.testing.assert_allclose(y, [[-1.5, 2.5]])
    assert m[0] == 2.0 and r[0] == 1.0
    x = np.random.default_rng(0).standard_normal((200, 128)).astype(np.float32)  # thread-pool path
    y, m, r = K.layer_norm_forward(x, None, None, 1e-5)
    np.testing.assert_allclose(y, ref_norm(x, -1, 1, 0, 1e-5)[0], rtol=1e-4, atol=2e-5)
    dx, _, _ = K.layer_norm_backward(np.ones_like(x), x, None, m, r)
    np.testing.assert_allclose(dx, 0, atol=1e-4)  # sum of a normalised row does not depend on x


@given(N=st.integers(1, 5), C=st.integers(1, 6), spatial=st.lists(st.integers(1, 5), min_size=0, max_size=2),
       dt=DTYPES, seed=st.integers(0, 2**31), nc=st.booleans(), affine=st.booleans())
def test_batch_norm(N, C, spatial, dt, seed, nc, affine):
    rng = np.random.default_rng(seed)
    shape = (N, C) + tuple(spatial)
    x = (rng.standard_normal(shape) * 3 - 1).astype(dt)
    g = rng.standard_normal(shape).astype(dt)
    w = rng.standard_normal(C).astype(dt) if affine else None
    b = rng.standard_normal(C).astype(dt) if affine else None
    axes = (0,) + tuple(range(2, len(shape)))
    cshape = (1, C) + (1,) * len(spatial)
    W = (np.ones(C) if w is None else w).reshape(cshape)
    B = (np.zeros(C) if b is None else b).reshape(cshape)
    y, mean, var, rstd = K.batch_norm_forward(noncontig(x, nc), w, b, 1e-5)
    yr, mu, vr, rs, xh = ref_norm(x, axes, W, B, 1e-5)
    np.testing.assert_allclose(y, yr, **TOL[dt])
    np.testing.assert_allclose(mean, mu.reshape(-1), **TOL[dt])
    np.testing.assert_allclose(var, vr.reshape(-1), **TOL[dt])
    dx, dw, db = K.batch_norm_backward(g, noncontig(x, nc), w, mean, rstd)
    dxr = W * rs * (g - g.mean(axes, keepdims=True) - xh * (g * xh).mean(axes, keepdims=True))
    np.testing.assert_allclose(dx, dxr, **TOL[dt])
    if affine:
        np.testing.assert_allclose(dw, (g * xh).sum(axes), **TOL[dt])
        np.testing.assert_allclose(db, g.sum(axes), **TOL[dt])
    rm = rng.standard_normal(C).astype(dt)
    rv = rng.uniform(0.5, 2, C).astype(dt)
    ye = K.batch_norm_eval_forward(x, rm, rv, w, b, 1e-5)
    np.testing.assert_allclose(ye, (x - rm.reshape(cshape)) / np.sqrt(rv.reshape(cshape) + 1e-5) * W + B, **TOL[dt])


def test_batch_norm_parallel_path_dcgan_shape():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 32, 7, 7)).astype(np.float32)
    w = rng.standard_normal(32).astype(np.float32)
    y, m, v, r = K.batch_norm_forward(x, w, None, 1e-5)
    yr = ref_norm(x, (0, 2, 3), w.reshape(1, -1, 1, 1), 0, 1e-5)[0]
    np.testing.assert_allclose(y, yr, rtol=1e-4, atol=2e-5)
