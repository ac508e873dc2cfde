"""The CUDA kernels of ``minigen.kernels.gpu_*`` against NumPy references, on random inputs.

Backends: ``emulated`` runs the very same CUDA C sources on the CPU (OpenMP emulation, needs a C++
compiler; skipped without one) and ``cuda`` a real GPU (skipped without one). Every source is also
compiled for sm_90 with ``nvcc`` when it is installed (skipped otherwise).

References are the formulas written out in NumPy (float64), each kernel checked in float32 and float64.
The LSTM-layer backward is checked against the CPU kernel (itself tested against the reference loop).
"""
import math
import os
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from minigen.kernels import dispatch, gpu_attention, gpu_common, gpu_norm, gpu_optim, gpu_rnn, gpu_softmax
from cupy_emulator import compiler_available, on_backend, real_gpu_available

requires_gpu = pytest.mark.skipif(not real_gpu_available(), reason="no CUDA GPU (CuPy + an NVIDIA device)")
requires_cxx = pytest.mark.skipif(not compiler_available(), reason="no C++ compiler for the kernel emulation")
BACKENDS = [pytest.param("emulated", marks=requires_cxx), pytest.param("cuda", marks=requires_gpu)]

TOL = {np.float32: 2e-5, np.float64: 1e-11}
dtypes = st.sampled_from([np.float32, np.float64])
# the backend fixture is function-scoped (so no emulation outlives its test) and needs no reset per example
fixture_ok = settings(suppress_health_check=list(settings().suppress_health_check)
                      + [HealthCheck.function_scoped_fixture])


@pytest.fixture(params=BACKENDS)
def cp(request):
    with on_backend(request.param) as mod:
        yield mod


def _close(got, want, dtype, what=""):
    got = got.get() if hasattr(got, "get") else got
    tol = TOL[dtype]
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol, err_msg=what)


def _rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# ------------------------------------------------------------------ references
def softmax_ref(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


# ------------------------------------------------------------------ softmax family
@fixture_ok
@given(dt=dtypes, rows=st.integers(1, 9), cols=st.sampled_from([1, 5, 33, 64, 1030]), seed=st.integers(0, 99))
def test_softmax_forward_backward(cp, dt, rows, cols, seed):
    if cols > 1024:
        rows = min(rows, 2)  # block-per-row variant: keep the emulated launches small
    rng = np.random.default_rng(seed)
    x = _rand(rng, (rows, cols), dt, 4)
    g = _rand(rng, (rows, cols), dt)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    y = softmax_ref(x64)
    _close(gpu_softmax.softmax_forward(cp.asarray(x)), y, dt, "softmax")
    _close(gpu_softmax.log_softmax_forward(cp.asarray(x)), np.log(y), dt, "log_softmax")
    _close(gpu_softmax.softmax_backward(cp.asarray(y.astype(dt)), cp.asarray(g)),
           y * (g64 - (g64 * y).sum(-1, keepdims=True)), dt, "softmax backward")
    _close(gpu_softmax.log_softmax_backward(cp.asarray(np.log(y).astype(dt)), cp.asarray(g)),
           g64 - y * g64.sum(-1, keepdims=True), dt, "log_softmax backward")


def test_softmax_hand_case_and_extremes(cp):
    """softmax([0, ln 3]) = [1/4, 3/4]; -inf entries get 0; huge logits do not overflow."""
    y = gpu_softmax.softmax_forward(cp.asarray(np.array([[0.0, math.log(3.0)]]))).get()
    np.testing.assert_allclose(y, [[0.25, 0.75]], rtol=1e-15)
    x = np.array([[-np.inf, 0.0, 1000.0, 1000.0]], np.float32)
    np.testing.assert_array_equal(gpu_softmax.softmax_forward(cp.asarray(x)).get(), [[0, 0, 0.5, 0.5]])
    lx = gpu_softmax.log_softmax_forward(cp.asarray(x)).get()
    assert lx[0, 0] == -np.inf and np.allclose(lx[0, 2:], -math.log(2))


@fixture_ok
@given(dt=dtypes, n=st.integers(1, 6), c=st.sampled_from([2, 7, 40, 1100]), eps=st.sampled_from([0.0, 0.1]),
       weighted=st.booleans(), reduction=st.sampled_from(["none", "sum", "mean"]), seed=st.integers(0, 99))
def test_cross_entropy(cp, dt, n, c, eps, weighted, reduction, seed):
    rng = np.random.default_rng(seed)
    x = _rand(rng, (n, c), dt, 3)
    t = rng.integers(0, c, n)
    t[rng.random(n) < 0.2] = -100  # some ignored rows
    w = (rng.random(c) + 0.5).astype(dt) if weighted else None
    wv = np.ones(c) if w is None else w.astype(np.float64)
    p = softmax_ref(x.astype(np.float64))
    loss, grad, wt = np.zeros(n), np.zeros((n, c)), np.zeros(n)
    for i in range(n):
        if t[i] == -100:
            continue
        a = eps / c * wv
        a[t[i]] += (1 - eps) * wv[t[i]]
        loss[i] = -(a * np.log(p[i])).sum()
        grad[i] = p[i] * a.sum() - a
        wt[i] = wv[t[i]]
    if reduction == "sum":
        loss = loss.sum()
    elif reduction == "mean":
        den = wt.sum()
        loss, grad = (loss.sum() / den, grad / den) if den else (np.nan, grad * np.nan)
    got_l, got_g = gpu_softmax.cross_entropy(cp.asarray(x), cp.asarray(t), None if w is None else cp.asarray(w),
                                             -100, eps, reduction)
    _close(got_l, loss, dt, "loss")
    _close(got_g, grad, dt, "dlogits")


# ------------------------------------------------------------------ layer norm
@fixture_ok
@given(dt=dtypes, rows=st.sampled_from([1, 3, 70]), d=st.sampled_from([1, 6, 32, 1500]), affine=st.booleans(),
       seed=st.integers(0, 99))
def test_layer_norm(cp, dt, rows, d, affine, seed):
    if d > 1024:
        rows = min(rows, 2)  # block-per-row variant: keep the emulated launches small (70 rows: 2 dw chunks)
    rng = np.random.default_rng(seed)
    x = _rand(rng, (rows, d), dt, 2) + 1
    g = _rand(rng, (rows, d), dt)
    w = _rand(rng, d, dt) if affine else None
    b = _rand(rng, d, dt) if affine else None
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    mu = x64.mean(-1, keepdims=True)
    rs = 1 / np.sqrt(((x64 - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
    xh = (x64 - mu) * rs
    w64 = np.ones(d) if w is None else w.astype(np.float64)
    y = xh * w64 + (0 if b is None else b.astype(np.float64))
    yg, mg_, rg = gpu_norm.layer_norm_forward(cp.asarray(x), None if w is None else cp.asarray(w),
                                              None if b is None else cp.asarray(b), 1e-5)
    _close(yg, y, dt, "y")
    _close(mg_, mu[:, 0], dt, "mean")
    _close(rg, rs[:, 0], dt, "rstd")
    gw = g64 * w64
    dx = rs * (gw - gw.mean(-1, keepdims=True) - xh * (gw * xh).mean(-1, keepdims=True))
    dxg, dwg, dbg = gpu_norm.layer_norm_backward(cp.asarray(g), cp.asarray(x), None if w is None else cp.asarray(w),
                                                 mg_, rg)
    _close(dxg, dx, dt, "dx")
    if affine:
        _close(dwg, (g64 * xh).sum(0), dt, "dweight")
        _close(dbg, g64.sum(0), dt, "dbias")
    else:
        assert dwg is None and dbg is None


# ------------------------------------------------------------------ optimizers
def _adam_ref(p, g, m, v, vm, t, lr, b1, b2, eps, wd, amsgrad, decoupled, maximize):
    g = -g if maximize else g
    if wd:
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    if amsgrad:
        vm = np.maximum(vm, v)
    vv = vm if amsgrad else v
    p = p - lr / (1 - b1 ** t) * m / (np.sqrt(vv) / math.sqrt(1 - b2 ** t) + eps)
    return p, m, v, vm


@fixture_ok
@given(dt=dtypes, amsgrad=st.booleans(), decoupled=st.booleans(), maximize=st.booleans(),
       wd=st.sampled_from([0.0, 0.05]), seed=st.integers(0, 99))
def test_adam_multi_tensor(cp, dt, amsgrad, decoupled, maximize, wd, seed):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (gpu_optim.CHUNK + 5,), (1,)]  # the long one spans two chunks
    P = [_rand(rng, s, dt) for s in shapes]
    G = [_rand(rng, s, dt) for s in shapes]
    M = [_rand(rng, s, dt) for s in shapes]
    V = [(rng.random(s)).astype(dt) for s in shapes]
    VM = [v + (rng.random(v.shape) * 0.1).astype(dt) for v in V]
    steps = [1, 7, 3]
    kw = dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=wd, amsgrad=amsgrad, decoupled=decoupled,
              maximize=maximize)
    dev = [[cp.asarray(a) for a in L] for L in (P, G, M, V, VM)]
    gpu_optim.adam_step(dev[0], dev[1], dev[2], dev[3], dev[4] if amsgrad else None, steps, **kw)
    for i in range(3):
        ref = _adam_ref(*(a.astype(np.float64) for a in (P[i], G[i], M[i], V[i], VM[i])), steps[i], 1e-2, 0.9, 0.99,
                        1e-8, wd, amsgrad, decoupled, maximize)
        for got, want, name in zip((dev[0][i], dev[2][i], dev[3][i], dev[4][i]), ref, ("p", "m", "v", "vmax")):
            if name == "vmax" and not amsgrad:
                continue
            _close(got, want, dt, f"{name}[{i}]")


@fixture_ok
@given(dt=dtypes, momentum=st.sampled_from([0.0, 0.9]), nesterov=st.booleans(), seed=st.integers(0, 99))
def test_sgd_multi_tensor(cp, dt, momentum, nesterov, seed):
    nesterov = nesterov and momentum > 0
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (5,)]
    P = [_rand(rng, s, dt) for s in shapes]
    G = [_rand(rng, s, dt) for s in shapes]
    B = [_rand(rng, s, dt) for s in shapes]
    first = [True, False]
    dev = [[cp.asarray(a) for a in L] for L in (P, G, B)]
    gpu_optim.sgd_step(dev[0], dev[1], dev[2] if momentum else None, lr=0.1, momentum=momentum, dampening=0.0,
                       weight_decay=0.01, nesterov=nesterov, first_step=first)
    for i in range(2):
        p, g, b = (a.astype(np.float64) for a in (P[i], G[i], B[i]))
        d = g + 0.01 * p
        if momentum:
            b = d if first[i] else momentum * b + d
            d = d + momentum * b if nesterov else b
            _close(dev[2][i], b, dt, "buffer")
        _close(dev[0][i], p - 0.1 * d, dt, "param")


def test_adam_skips_missing_grads(cp):
    p = cp.asarray(np.ones(3, np.float32))
    m, v = cp.zeros(3, dtype=np.float32), cp.zeros(3, dtype=np.float32)
    gpu_optim.adam_step([p], [None], [m], [v], None, 1)
    np.testing.assert_array_equal(p.get(), 1.0)


# ------------------------------------------------------------------ recurrent cells
@fixture_ok
@given(dt=dtypes, b=st.integers(1, 4), h=st.integers(1, 9), seed=st.integers(0, 99))
def test_lstm_cell(cp, dt, b, h, seed):
    rng = np.random.default_rng(seed)
    gates, c_prev = _rand(rng, (b, 4 * h), dt, 2), _rand(rng, (b, h), dt)
    dh, dc = _rand(rng, (b, h), dt), _rand(rng, (b, h), dt)
    G, C, DH, DC = (a.astype(np.float64) for a in (gates, c_prev, dh, dc))
    i, f, g, o = sigmoid(G[:, :h]), sigmoid(G[:, h:2 * h]), np.tanh(G[:, 2 * h:3 * h]), sigmoid(G[:, 3 * h:])
    c = f * C + i * g
    tc = np.tanh(c)
    hn, cn, acts, tcs = gpu_rnn.lstm_cell_forward(cp.asarray(gates), cp.asarray(c_prev))
    _close(hn, o * tc, dt, "h")
    _close(cn, c, dt, "c")
    _close(acts, np.concatenate([i, f, g, o], 1), dt, "acts")
    dct = DC + DH * o * (1 - tc ** 2)
    want = np.concatenate([dct * g * i * (1 - i), dct * C * f * (1 - f), dct * i * (1 - g * g),
                           DH * tc * o * (1 - o)], 1)
    dg, dcp = gpu_rnn.lstm_cell_backward(cp.asarray(dh), cp.asarray(dc), acts, cp.asarray(c_prev), tcs)
    _close(dg, want, dt, "dgates")
    _close(dcp, dct * f, dt, "dc_prev")


@fixture_ok
@given(dt=dtypes, b=st.integers(1, 4), h=st.integers(1, 9), seed=st.integers(0, 99))
def test_gru_cell(cp, dt, b, h, seed):
    rng = np.random.default_rng(seed)
    gi, gh, hp, dhn = (_rand(rng, s, dt) for s in ((b, 3 * h), (b, 3 * h), (b, h), (b, h)))
    GI, GH, H, D = (a.astype(np.float64) for a in (gi, gh, hp, dhn))
    r = sigmoid(GI[:, :h] + GH[:, :h])
    z = sigmoid(GI[:, h:2 * h] + GH[:, h:2 * h])
    n = np.tanh(GI[:, 2 * h:] + r * GH[:, 2 * h:])
    hn, acts = gpu_rnn.gru_cell_forward(cp.asarray(gi), cp.asarray(gh), cp.asarray(hp))
    _close(hn, (1 - z) * n + z * H, dt, "h'")
    dn = D * (1 - z) * (1 - n * n)
    dz = D * (H - n) * z * (1 - z)
    dr = dn * GH[:, 2 * h:] * r * (1 - r)
    dgi, dgh, dh = gpu_rnn.gru_cell_backward(cp.asarray(dhn), cp.asarray(hp), acts, cp.asarray(gh))
    _close(dgi, np.concatenate([dr, dz, dn], 1), dt, "dgi")
    _close(dgh, np.concatenate([dr, dz, dn * r], 1), dt, "dgh")
    _close(dh, D * z, dt, "dh")


@fixture_ok
@given(dt=dtypes, T=st.integers(1, 5), b=st.integers(1, 3), i=st.integers(1, 4), h=st.integers(1, 5),
       bias=st.booleans(), seed=st.integers(0, 99))
def test_lstm_layer(cp, dt, T, b, i, h, bias, seed):
    from minigen.kernels import cpu_rnn

    rng = np.random.default_rng(seed)
    x, wih, whh = _rand(rng, (T, b, i), dt), _rand(rng, (4 * h, i), dt, 0.5), _rand(rng, (4 * h, h), dt, 0.5)
    bb = _rand(rng, 4 * h, dt) if bias else None
    h0, c0, dy, dhT, dcT = (_rand(rng, s, dt) for s in ((b, h), (b, h), (T, b, h), (b, h), (b, h)))
    want = cpu_rnn.lstm_seq_forward(x, wih, whh, bb, h0, c0)
    got = gpu_rnn.lstm_seq_forward(*(None if a is None else cp.asarray(a) for a in (x, wih, whh, bb, h0, c0)))
    for g_, w_, n_ in zip(got[:3], want[:3], ("y", "h_T", "c_T")):
        _close(g_, w_.astype(np.float64), dt, n_)
    wb = cpu_rnn.lstm_seq_backward(dy, dhT, dcT, x, wih, whh, want[3], need_bias=bias)
    gb = gpu_rnn.lstm_seq_backward(cp.asarray(dy), cp.asarray(dhT), cp.asarray(dcT), cp.asarray(x), cp.asarray(wih),
                                   cp.asarray(whh), got[3], need_bias=bias)
    for g_, w_, n_ in zip(gb, wb, ("dx", "dW_ih", "dW_hh", "dbias", "dh_0", "dc_0")):
        if w_ is None:
            assert g_ is None
        else:
            _close(g_, w_.astype(np.float64), dt, n_)


# ------------------------------------------------------------------ attention
def _attn_ref(q, k, v, causal, scale):
    s = q @ np.swapaxes(k, -1, -2) * scale
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    m = s.max(-1, keepdims=True)
    lse = m + np.log(np.exp(s - m).sum(-1, keepdims=True))
    p = np.exp(s - lse)
    return p, p @ v, lse[..., 0]


@fixture_ok
@given(dt=dtypes, n=st.integers(1, 2), tq=st.sampled_from([1, 5, 17, 70]), tk=st.sampled_from([1, 6, 66]),
       d=st.sampled_from([3, 16, 40, 64, 100]), dv=st.sampled_from([None, 8]), causal=st.booleans(),
       scale=st.sampled_from([None, 0.3]), seed=st.integers(0, 99))
def test_flash_attention(cp, dt, n, tq, tk, d, dv, causal, scale, seed):
    if causal:
        tk = tq  # the usual self-attention case (the kernel handles Tq != Tk top-left aligned too)
    dv = d if dv is None else dv
    rng = np.random.default_rng(seed)
    q, k, v = _rand(rng, (n, 2, tq, d), dt), _rand(rng, (n, 2, tk, d), dt), _rand(rng, (n, 2, tk, dv), dt)
    do = _rand(rng, (n, 2, tq, dv), dt)
    sc = 1 / math.sqrt(d) if scale is None else scale
    Q, K, V, DO = (a.astype(np.float64) for a in (q, k, v, do))
    p, out, lse = _attn_ref(Q, K, V, causal, sc)
    og, lg = gpu_attention.sdpa_forward(cp.asarray(q), cp.asarray(k), cp.asarray(v), causal, scale)
    assert og.dtype == dt and og.shape == out.shape and lg.shape == lse.shape
    _close(og, out, dt, "out")
    _close(lg, lse, dt, "lse")
    dV = np.swapaxes(p, -1, -2) @ DO
    dP = DO @ np.swapaxes(V, -1, -2)
    dS = p * (dP - (dP * p).sum(-1, keepdims=True))
    dQ, dK = dS @ K * sc, np.swapaxes(dS, -1, -2) @ Q * sc
    dq, dk, dv_ = gpu_attention.sdpa_backward(cp.asarray(do), cp.asarray(q), cp.asarray(k), cp.asarray(v), og, lg,
                                              causal, scale)
    tol = {np.float32: 1e-4, np.float64: 1e-10}[dt]  # long dot products in float32
    for got, want, name in ((dq, dQ, "dq"), (dk, dK, "dk"), (dv_, dV, "dv")):
        np.testing.assert_allclose(got.get().astype(np.float64), want, rtol=tol, atol=tol, err_msg=name)


def test_flash_attention_hand_case(cp):
    """One query, two keys with scores 0 and ln 3 (scale 1): weights 1/4, 3/4; lse = ln 4."""
    q = np.array([[[[1.0, 0.0]]]])
    k = np.array([[[[0.0, 0.0], [math.log(3.0), 0.0]]]])
    v = np.array([[[[4.0, 0.0], [0.0, 8.0]]]])
    out, lse = gpu_attention.sdpa_forward(cp.asarray(q), cp.asarray(k), cp.asarray(v), False, 1.0)
    np.testing.assert_allclose(out.get(), [[[[1.0, 6.0]]]], rtol=1e-14)
    np.testing.assert_allclose(lse.get(), [[[math.log(4.0)]]], rtol=1e-14)


def test_flash_attention_accumulate_float64(cp):
    rng = np.random.default_rng(0)
    q, k, v = (_rand(rng, (1, 1, 9, 8), np.float32) for _ in range(3))
    out, lse = gpu_attention.sdpa_forward(cp.asarray(q), cp.asarray(k), cp.asarray(v), True, None, "float64")
    assert out.dtype == np.float32 and lse.dtype == np.float64
    _, want, _ = _attn_ref(*(a.astype(np.float64) for a in (q, k, v)), True, 1 / math.sqrt(8))
    np.testing.assert_allclose(out.get(), want, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ registry and launches
def test_registry_hands_out_gpu_kernels_for_device_arrays_only(cp):
    x = cp.asarray(np.ones((2, 3), np.float32))
    assert dispatch.get("softmax_forward", x) is gpu_softmax.softmax_forward
    assert dispatch.get("softmax_forward", np.ones((2, 3), np.float32)) is not gpu_softmax.softmax_forward
    assert dispatch.get("softmax_forward", cp.asarray(np.ones(3, np.int64))) is None  # requires: floats
    assert dispatch.get("no_such_kernel", x) is None
    assert dispatch.get("adam_step", [x, x]) is gpu_optim.adam_step
    assert set(gpu_common.gpu_kernel_names()) >= {"softmax_forward", "layer_norm_backward", "adam_step",
                                                   "lstm_seq_backward", "sdpa_backward", "cross_entropy"}


@pytest.mark.parametrize("backend_name", [pytest.param("emulated", marks=requires_cxx)])
def test_emulator_checks_launch_argument_types(backend_name):
    """A Python int where the kernel takes a C int is the classic silent CuPy bug: the emulation rejects it."""
    with on_backend(backend_name) as cp:
        x = cp.asarray(np.ones((2, 3), np.float32))
        y = cp.empty_like(x)
        mod = gpu_common.compile_module(cp, "gpu_softmax", gpu_softmax.SOURCE, np.float32)
        fn = mod.get_function("softmax_fwd_warp")
        with pytest.raises(TypeError, match="numpy.int32"):
            fn((1,), (128,), (x, y, 2, 3, 0))
        with pytest.raises(TypeError, match="dtype float64"):
            fn((1,), (128,), (x.astype(np.float64), y, np.int32(2), np.int32(3), np.int32(0)))
        with pytest.raises(ValueError, match="C-contiguous"):
            fn((1,), (128,), (x.T, y, np.int32(2), np.int32(3), np.int32(0)))


# ------------------------------------------------------------------ nvcc compile check
NVCC = shutil.which("nvcc")


def _option_sets():
    out = []
    for name, (src, sets) in sorted(gpu_common.sources().items()):
        chosen = sets if os.environ.get("MINIGEN_HYPOTHESIS_PROFILE") == "intense" else sets[:1]
        if name == "gpu_attention" and len(chosen) == 1:
            chosen = [s for s in sets if "-DDMAX=64" in s][:1]  # the head size of the GPT configs
        out += [(name, s) for s in chosen]
    return out


@pytest.mark.skipif(NVCC is None, reason="nvcc (CUDA toolkit) not installed")
@pytest.mark.parametrize("name,opts", _option_sets())
def test_sources_compile_for_sm90_without_spills(tmp_path, name, opts):
    """Every source compiles with nvcc for the H100 (sm_90) and ptxas reports no register spills.
    (The default profile compiles one option set per source; MINIGEN_HYPOTHESIS_PROFILE=intense all.)"""
    src = gpu_common.COMMON_CUDA + gpu_common.sources()[name][0]
    cu = tmp_path / f"{name}.cu"
    cu.write_text(src)
    r = subprocess.run([NVCC, "-cubin", "-arch=sm_90", "--std=c++14", "-Xptxas", "-v", *opts, str(cu), "-o",
                        str(tmp_path / "k.cubin")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    spills = [ln for ln in r.stderr.splitlines() if "spill" in ln and "0 bytes spill stores, 0 bytes spill loads"
              not in ln]
    assert not spills, spills
