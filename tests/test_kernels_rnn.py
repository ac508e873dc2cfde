"""Fused LSTM / GRU cells and the LSTM sequence kernel == NumPy references (float32/float64, odd sizes)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen  # noqa: F401
from minigen.kernels import _common
from minigen.kernels import cpu_rnn as R

from conftest import requires_torch

DTYPES = st.sampled_from([np.float32, np.float64])
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-12)}


def sig(v):
    return 1 / (1 + np.exp(-v))


def ref_lstm_step(gates, c_prev):
    i, f, g, o = np.split(gates.astype(np.float64), 4, axis=1)
    i, f, g, o = sig(i), sig(f), np.tanh(g), sig(o)
    c = f * c_prev + i * g
    return o * np.tanh(c), c, (i, f, g, o)


def ref_lstm_step_bwd(dh, dc, gates, c_prev):
    h, c, (i, f, g, o) = ref_lstm_step(gates, c_prev)
    tc = np.tanh(c)
    dct = dc + dh * o * (1 - tc ** 2)
    dg = np.concatenate([dct * g * i * (1 - i), dct * c_prev * f * (1 - f), dct * i * (1 - g ** 2),
                         dh * tc * o * (1 - o)], axis=1)
    return dg, dct * f


@given(B=st.integers(1, 5), H=st.integers(1, 9), dt=DTYPES, seed=st.integers(0, 2**31))
def test_lstm_cell(B, H, dt, seed):
    rng = np.random.default_rng(seed)
    gates = (rng.standard_normal((B, 4 * H)) * 2).astype(dt)
    c_prev = rng.standard_normal((B, H)).astype(dt)
    h, c, acts, tc = R.lstm_cell_forward(gates[:, ::1], c_prev.T.copy().T)  # F-ordered c_prev: copied
    hr, cr, _ = ref_lstm_step(gates, c_prev)
    np.testing.assert_allclose(h, hr, **TOL[dt])
    np.testing.assert_allclose(c, cr, **TOL[dt])
    dh = rng.standard_normal((B, H)).astype(dt)
    dc = rng.standard_normal((B, H)).astype(dt)
    dg, dcp = R.lstm_cell_backward(dh, dc, acts, c_prev, tc)
    dgr, dcpr = ref_lstm_step_bwd(dh, dc, gates, c_prev)
    np.testing.assert_allclose(dg, dgr, **TOL[dt])
    np.testing.assert_allclose(dcp, dcpr, **TOL[dt])
    dg0, _ = R.lstm_cell_backward(None, None, acts, c_prev, tc)
    assert not dg0.any()


def test_lstm_cell_hand_case():
    # all pre-activations 0: i = f = o = 1/2, g = 0 -> c = c_prev / 2, h = tanh(c) / 2
    h, c, _, _ = R.lstm_cell_forward(np.zeros((1, 4)), np.array([[2.0]]))
    assert c[0, 0] == 1.0 and h[0, 0] == pytest.approx(np.tanh(1.0) / 2, rel=1e-15)


def ref_gru(gi, gh, h):
    r = sig(gi[:, :H_(gi)] + gh[:, :H_(gi)])
    z = sig(gi[:, H_(gi):2 * H_(gi)] + gh[:, H_(gi):2 * H_(gi)])
    n = np.tanh(gi[:, 2 * H_(gi):] + r * gh[:, 2 * H_(gi):])
    return (1 - z) * n + z * h


def H_(a):
    return a.shape[1] // 3


@given(B=st.integers(1, 5), H=st.integers(1, 9), dt=DTYPES, seed=st.integers(0, 2**31))
def test_gru_cell_against_numeric_gradient(B, H, dt, seed):
    rng = np.random.default_rng(seed)
    gi = rng.standard_normal((B, 3 * H)).astype(dt)
    gh = rng.standard_normal((B, 3 * H)).astype(dt)
    h = rng.standard_normal((B, H)).astype(dt)
    hn, acts = R.gru_cell_forward(gi, gh, h)
    np.testing.assert_allclose(hn, ref_gru(gi.astype(np.float64), gh, h), **TOL[dt])
    d = rng.standard_normal((B, H))
    dgi, dgh, dhd = R.gru_cell_backward(d.astype(dt), h, acts, gh)
    # central differences of <d, h'> in float64
    g64, h64, gh64 = gi.astype(np.float64), h.astype(np.float64), gh.astype(np.float64)
    eps = 1e-6
    for name, arr, got in (("gi", g64, dgi), ("gh", gh64, dgh), ("h", h64, dhd)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            p, m = arr.copy(), arr.copy()
            p[idx] += eps
            m[idx] -= eps
            args_p = {"gi": g64, "gh": gh64, "h": h64, name: p}
            args_m = {"gi": g64, "gh": gh64, "h": h64, name: m}
            num[idx] = ((ref_gru(**args_p) - ref_gru(**args_m)) * d).sum() / (2 * eps)
        tol = dict(rtol=1e-4, atol=1e-5) if dt == np.float32 else dict(rtol=1e-6, atol=1e-8)
        if name == "h":
            continue  # dh_direct is only the z * dh' part; the gh path is checked through dgh
        np.testing.assert_allclose(got, num, **tol)
    np.testing.assert_allclose(dhd, d * acts[:, H:2 * H], **TOL[dt])


def ref_lstm_seq(x, w_ih, w_hh, b, h0, c0):
    T = x.shape[0]
    h, c = h0.astype(np.float64), c0.astype(np.float64)
    ys = []
    for t in range(T):
        h, c, _ = ref_lstm_step(x[t] @ w_ih.T + b + h @ w_hh.T, c)
        ys.append(h)
    return np.stack(ys), h, c


@pytest.mark.parametrize("numba_blas", [True, False])
@given(T=st.integers(1, 6), B=st.integers(1, 4), I=st.integers(1, 5), H=st.integers(1, 6), dt=DTYPES,
       seed=st.integers(0, 2**31))
def test_lstm_sequence(numba_blas, T, B, I, H, dt, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, I)).astype(dt)
    w_ih = (rng.standard_normal((4 * H, I)) * 0.5).astype(dt)
    w_hh = (rng.standard_normal((4 * H, H)) * 0.5).astype(dt)
    b = rng.standard_normal(4 * H).astype(dt)
    h0 = rng.standard_normal((B, H)).astype(dt)
    c0 = rng.standard_normal((B, H)).astype(dt)
    saved_blas = R.blas_gemm
    if not numba_blas:
        R.blas_gemm = lambda dt: None  # the Python-loop fallback
    try:
        y, hT, cT, saved = R.lstm_seq_forward(x, w_ih, w_hh, b, h0, c0)
        yr, hr, cr = ref_lstm_seq(x, w_ih, w_hh, b, h0, c0)
        tol = dict(rtol=1e-4, atol=1e-5) if dt == np.float32 else TOL[dt]
        np.testing.assert_allclose(y, yr, **tol)
        np.testing.assert_allclose(cT, cr, **tol)
        # backward: loss = <dy, y> + <dhT, hT> + <dcT, cT>; check against the cell-by-cell reference
        dy = rng.standard_normal(y.shape).astype(dt)
        dhT = rng.standard_normal((B, H)).astype(dt)
        dcT = rng.standard_normal((B, H)).astype(dt)
        dx, dwi, dwh, db, dh0, dc0 = R.lstm_seq_backward(dy, dhT, dcT, x, w_ih, w_hh, saved)
    finally:
        R.blas_gemm = saved_blas
    # reference backward through time in float64
    hs, cs = [h0.astype(np.float64)], [c0.astype(np.float64)]
    pre = []
    for t in range(T):
        gt = x[t] @ w_ih.T.astype(np.float64) + b + hs[-1] @ w_hh.T
        h, c, _ = ref_lstm_step(gt, cs[-1])
        pre.append(gt)
        hs.append(h)
        cs.append(c)
    dh, dc = dhT.astype(np.float64), dcT.astype(np.float64)
    dxr, dwir, dwhr, dbr = np.zeros(x.shape), np.zeros(w_ih.shape), np.zeros(w_hh.shape), np.zeros(b.shape)
    for t in reversed(range(T)):
        dh = dh + dy[t]
        dg, dc = ref_lstm_step_bwd(dh, dc, pre[t], cs[t])
        dxr[t] = dg @ w_ih
        dwir += dg.T @ x[t]
        dwhr += dg.T @ hs[t]
        dbr += dg.sum(0)
        dh = dg @ w_hh
    for got, ref in ((dx, dxr), (dwi, dwir), (dwh, dwhr), (db, dbr), (dh0, dh), (dc0, dc)):
        np.testing.assert_allclose(got, ref, **tol)


def test_numba_blas_found_for_numpy_wheel():
    # NumPy's wheels bundle scipy-openblas64; the sequence kernel then runs its loop without Python
    assert _common.blas_gemm(np.float32) is not None and _common.blas_gemm(np.float64) is not None


@requires_torch
def test_lstm_sequence_matches_torch():
    import torch

    torch.manual_seed(0)
    T, B, I, H = 7, 3, 5, 4
    lstm = torch.nn.LSTM(I, H).double()
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    y, (hT, cT) = lstm(x)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    p = {k: v.detach().numpy() for k, v in lstm.named_parameters()}
    yk, hk, ck, saved = R.lstm_seq_forward(x.detach().numpy(), p["weight_ih_l0"], p["weight_hh_l0"],
                                           p["bias_ih_l0"] + p["bias_hh_l0"])
    np.testing.assert_allclose(yk, y.detach().numpy(), rtol=1e-12, atol=1e-13)
    dx, dwi, dwh, db, _, _ = R.lstm_seq_backward(dy.numpy(), None, None, x.detach().numpy(), p["weight_ih_l0"],
                                                 p["weight_hh_l0"], saved)
    np.testing.assert_allclose(dx, x.grad.numpy(), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dwh, lstm.weight_hh_l0.grad.numpy(), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(db, lstm.bias_ih_l0.grad.numpy(), rtol=1e-11, atol=1e-12)


# ------------------------------------------------------------------ kernels == the op file's array references
@given(T=st.integers(1, 5), B=st.integers(1, 3), I=st.integers(1, 4), H=st.integers(1, 5), dt=DTYPES,
       bias=st.booleans(), seed=st.integers(0, 2**31))
def test_seq_kernels_equal_the_references_of_minigen_ops_rnn(T, B, I, H, dt, bias, seed):
    """lstm_seq_forward / gru_seq_forward == lstm_seq_forward_ref / gru_seq_forward_ref (outputs and the saved
    arrays the backward kernels read), so a backward kernel may follow either forward."""
    from minigen.ops import rnn as ops_rnn

    rng = np.random.default_rng(seed)
    r = lambda *s: (rng.standard_normal(s) * 0.6).astype(dt)  # noqa: E731
    x, h0, c0 = r(T, B, I), r(B, H), r(B, H)
    tol = dict(rtol=1e-4, atol=1e-5) if dt == np.float32 else TOL[dt]
    w_ih, w_hh, b = r(4 * H, I), r(4 * H, H), (r(4 * H) if bias else None)
    got, want = R.lstm_seq_forward(x, w_ih, w_hh, b, h0, c0), ops_rnn.lstm_seq_forward_ref(x, w_ih, w_hh, b, h0, c0)
    for a, e in zip(got[:3] + tuple(got[3]), want[:3] + tuple(want[3])):
        assert a.dtype == e.dtype == dt
        np.testing.assert_allclose(a, e, **tol)
    w_ih, w_hh = r(3 * H, I), r(3 * H, H)
    bi, bh = (r(3 * H), r(3 * H)) if bias else (None, None)
    got, want = R.gru_seq_forward(x, w_ih, w_hh, bi, bh, h0), ops_rnn.gru_seq_forward_ref(x, w_ih, w_hh, bi, bh, h0)
    for a, e in zip((got[0],) + tuple(got[1]), (want[0],) + tuple(want[1])):
        assert a.dtype == e.dtype == dt
        np.testing.assert_allclose(a, e, **tol)


@given(m=st.integers(0, 80), n=st.integers(0, 80), dt=st.sampled_from([np.float32, np.float64, np.int64]),
       view=st.sampled_from(["c", "f", "slice"]), seed=st.integers(0, 2**31))
def test_transposed_equals_numpy(m, n, dt, view, seed):
    """The blocked transpose the recurrent loops use for W_hh^T: equal to NumPy's a.T for any size (block
    edges at 32 included), contiguous, for C-ordered, F-ordered and sliced inputs."""
    a = np.random.default_rng(seed).standard_normal((m, 2 * n)).astype(dt)
    a = {"c": a[:, :n], "f": np.asfortranarray(a[:, :n]), "slice": a[:, ::2]}[view]
    t = _common.transposed(a)
    assert t.flags.c_contiguous and t.dtype == a.dtype and t.shape == (a.shape[1], a.shape[0])
    np.testing.assert_array_equal(t, a.T)


@given(n=st.integers(0, 70), dt=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31),
       ninf=st.booleans(), stride=st.sampled_from([1, 2]))
def test_row_max_equals_numpy(n, dt, seed, ninf, stride):
    """The 8-way unrolled row maximum (softmax, cross-entropy and attention rows): NumPy's max for any length
    (remainders of the 8-wide loop included), strided rows, rows with -inf entries; -inf for an empty row."""
    a = np.random.default_rng(seed).standard_normal(n * stride).astype(dt)[::stride]
    if ninf and n:
        a[::3] = -np.inf
    got = _common.row_max(a)
    assert got == (a.max() if n else -np.inf)
