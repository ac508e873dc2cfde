"""Fused softmax / log-softmax / cross-entropy kernels == NumPy references (random shapes, strides, dtypes)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen  # noqa: F401
from minigen.kernels import cpu_softmax as K

DTYPES = st.sampled_from([np.float32, np.float64])
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def noncontig(a, flag):
    """Same values, non-contiguous strides (every other element of a wider array) when ``flag``."""
    if not flag or a.ndim == 0:
        return a
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    out = big[..., ::2]
    assert not out.flags.c_contiguous or a.shape[-1] <= 1
    return out


def ref_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ref_log_softmax(x):
    s = x - x.max(-1, keepdims=True)
    return s - np.log(np.exp(s).sum(-1, keepdims=True))


@st.composite
def case(draw, min_c=1):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=2))) + (draw(st.integers(min_c, 37)),)
    return shape, draw(DTYPES), draw(st.integers(0, 2**31)), draw(st.booleans())


@given(case())
def test_softmax_forward_backward(c):
    shape, dt, seed, nc = c
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dt)
    g = rng.standard_normal(shape).astype(dt)
    y = K.softmax_forward(noncontig(x, nc))
    np.testing.assert_allclose(y, ref_softmax(x), **TOL[dt])
    assert y.dtype == dt and y.shape == x.shape
    dx = K.softmax_backward(noncontig(y, nc), g)
    np.testing.assert_allclose(dx, y * (g - (g * y).sum(-1, keepdims=True)), **TOL[dt])
    ly = K.log_softmax_forward(x)
    np.testing.assert_allclose(ly, ref_log_softmax(x), **TOL[dt])
    ldx = K.log_softmax_backward(ly, noncontig(g, nc))
    np.testing.assert_allclose(ldx, g - np.exp(ly) * g.sum(-1, keepdims=True), **TOL[dt])


def test_softmax_hand_case_and_large_parallel_path():
    y = K.softmax_forward(np.array([[0.0, np.log(3.0)]]))
    np.testing.assert_allclose(y, [[0.25, 0.75]], rtol=1e-14)
    np.testing.assert_allclose(K.log_softmax_forward(np.array([1000.0, 1000.0])), np.log([0.5, 0.5]), rtol=1e-14)
    x = np.random.default_rng(1).standard_normal((300, 257)).astype(np.float32)  # > _PAR_MIN: thread pool path
    np.testing.assert_allclose(K.softmax_forward(x), ref_softmax(x), rtol=2e-5, atol=2e-6)


def ref_cross_entropy(x, t, w, ignore, eps, reduction):
    N, C = x.shape
    w = np.ones(C) if w is None else w.astype(np.float64)
    lp = ref_log_softmax(x.astype(np.float64))
    keep = t != ignore
    tt = np.where(keep, t, 0)
    a = np.zeros((N, C))
    a[np.arange(N), tt] = (1 - eps) * w[tt]
    a += eps / C * w[None, :]
    a[~keep] = 0
    loss = -(a * lp).sum(1)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (w[tt] * keep).sum()


@given(n=st.integers(1, 9), C=st.integers(1, 23), dt=DTYPES, seed=st.integers(0, 2**31), nc=st.booleans(),
       eps=st.sampled_from([0.0, 0.1]), weighted=st.booleans(), red=st.sampled_from(["mean", "sum", "none"]))
def test_cross_entropy_loss_and_grad(n, C, dt, seed, nc, eps, weighted, red):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, C)) * 2).astype(dt)
    t = rng.integers(0, C, n)
    t[rng.random(n) < 0.2] = -100
    t[0] = rng.integers(0, C)  # at least one counted row
    w = rng.uniform(0.5, 2.0, C).astype(dt) if weighted else None
    loss, dx = K.cross_entropy(noncontig(x, nc), t, w, -100, eps, red)
    np.testing.assert_allclose(loss, ref_cross_entropy(x, t, w, -100, eps, red), **TOL[dt])
    # gradient by central differences of the float64 reference (the loss is smooth in the logits)
    x64 = x.astype(np.float64)
    h = 1e-6
    up = np.ones(n) if red == "none" else 1.0
    num = np.zeros((n, C))
    for i in range(n):
        for j in range(C):
            xp, xm = x64.copy(), x64.copy()
            xp[i, j] += h
            xm[i, j] -= h
            diff = ref_cross_entropy(xp, t, w, -100, eps, red) - ref_cross_entropy(xm, t, w, -100, eps, red)
            num[i, j] = (np.sum(diff * up)) / (2 * h)
    np.testing.assert_allclose(dx, num, rtol=1e-4 if dt == np.float32 else 1e-6, atol=1e-5 if dt == np.float32 else 1e-8)


def test_cross_entropy_hand_case():
    # logits (0, log 3): p = (1/4, 3/4); target 1 -> loss = -log(3/4); dlogits = p - onehot = (1/4, -1/4)
    loss, dx = K.cross_entropy(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert loss == pytest.approx(-np.log(0.75), rel=1e-14)
    np.testing.assert_allclose(dx, [[0.25, -0.25]], rtol=1e-14)
    # every row ignored: PyTorch's mean is 0/0 = nan
    loss, _ = K.cross_entropy(np.zeros((2, 3)), np.array([-100, -100]))
    assert np.isnan(loss)
