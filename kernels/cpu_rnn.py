"""Recurrent kernels: fused LSTM / GRU cells (forward + backward) and a whole-sequence LSTM layer.

Gate layouts follow PyTorch: LSTM pre-activations (B, 4H) in the order [i, f, g, o]; GRU (B, 3H) in
the order [r, z, n]. The cell kernels take the *pre-activations* (x @ W_ih^T + h @ W_hh^T + b, computed
by BLAS outside) and do all the pointwise work of a step in one pass.

The sequence kernel (:func:`lstm_seq_forward` / :func:`lstm_seq_backward`) runs one layer over T steps:
the input projection of all steps is ONE BLAS call (T*B, I) @ (I, 4H); the recurrent loop then runs in
Numba, calling cblas_?gemm for h_{t-1} @ W_hh^T (see ``_common.blas_gemm``), with no Python per step.
The backward accumulates the weight gradients with one BLAS call each over all steps. Without the
Numba-callable BLAS (exotic NumPy builds) the same loop runs in Python around NumPy's matmul.
"""
from __future__ import annotations

import math

import numpy as np

from . import _math
from ._common import blas_gemm, c, gemm, is_float, jit, transposed
from .dispatch import register

# The cell loops run over j with unsigned indices on row views, and take sigmoid / tanh from
# kernels/_math.py (plain arithmetic): LLVM vectorises them. With libm's scalar exp/tanh the pointwise
# part of an LSTM step cost ~3x its recurrent GEMM (measured: 43 ms of a 56 ms layer forward, char-LSTM
# shapes B32 H256 T64); the activations are computed in float64 whatever the array dtype.
_U = np.uint64


# ------------------------------------------------------------------ LSTM cell
# Row helpers: each loop touches few arrays, so LLVM's runtime alias checks stay within its limit and
# the loop vectorises (one fused loop over the 7 arrays of a cell did not: 40 ns per cell vs 10).
@jit
def _sigmoid_into(src, dst):
    for j in range(_U(src.size)):
        dst[j] = _math.sigmoid(np.float64(src[j]))


@jit
def _tanh_into(src, dst):
    for j in range(_U(src.size)):
        dst[j] = _math.tanh(np.float64(src[j]))


@jit
def _lstm_c(ifgo, cp, cn, H):
    """c = f * c_prev + i * g."""
    for j in range(_U(H)):
        cn[j] = ifgo[_U(H) + j] * cp[j] + ifgo[j] * ifgo[_U(2 * H) + j]


@jit
def _lstm_h(ifgo, cn, tc, h, H):
    """tanh(c) and h = o * tanh(c)."""
    for j in range(_U(H)):
        t = _math.tanh(np.float64(cn[j]))
        tc[j] = t
        h[j] = ifgo[_U(3 * H) + j] * t


@jit
def _lstm_cell_fwd(gates, c_prev, h, c_new, acts, tanh_c):
    B, H4 = gates.shape
    H = H4 // 4
    for b in range(B):
        gt, ac = gates[b], acts[b]
        _sigmoid_into(gt[:2 * H], ac[:2 * H])          # i, f
        _tanh_into(gt[2 * H:3 * H], ac[2 * H:3 * H])    # g
        _sigmoid_into(gt[3 * H:], ac[3 * H:])           # o
        _lstm_c(ac, c_prev[b], c_new[b], H)
        _lstm_h(ac, c_new[b], tanh_c[b], h[b], H)


@jit
def _lstm_dct(dh, dc, ifgo, tc, dct, H):
    """dc_t = dc + dh * o * (1 - tanh(c)^2)."""
    for j in range(_U(H)):
        t = tc[j]
        dct[j] = dc[j] + dh[j] * ifgo[_U(3 * H) + j] * (1.0 - t * t)


@jit
def _lstm_dgates(dct, ifgo, cp, dg, H):
    """d(gates)_{i,f,g} = [dc_t g i(1-i), dc_t c_prev f(1-f), dc_t i (1-g^2)]."""
    for j in range(_U(H)):
        i = ifgo[j]
        f = ifgo[_U(H) + j]
        g = ifgo[_U(2 * H) + j]
        d = dct[j]
        dg[j] = d * g * i * (1.0 - i)
        dg[_U(H) + j] = d * cp[j] * f * (1.0 - f)
        dg[_U(2 * H) + j] = d * i * (1.0 - g * g)


@jit
def _lstm_do(dh, tc, ifgo, dg, H):
    """d(gates)_o = dh tanh(c) o(1-o)."""
    for j in range(_U(H)):
        o = ifgo[_U(3 * H) + j]
        dg[_U(3 * H) + j] = dh[j] * tc[j] * o * (1.0 - o)


@jit
def _lstm_dcprev(dct, ifgo, dcp, H):
    """dc_prev = dc_t * f."""
    for j in range(_U(H)):
        dcp[j] = dct[j] * ifgo[_U(H) + j]


@jit
def _lstm_cell_bwd(dh, dc, acts, c_prev, tanh_c, dgates, dc_prev):
    """dc is the gradient flowing into c_t from step t+1 (may alias dc_prev: read before write)."""
    B, H4 = acts.shape
    H = H4 // 4
    dct = np.empty(H, acts.dtype)
    for b in range(B):
        ac = acts[b]
        _lstm_dct(dh[b], dc[b], ac, tanh_c[b], dct, H)
        _lstm_dgates(dct, ac, c_prev[b], dgates[b], H)
        _lstm_do(dh[b], tanh_c[b], ac, dgates[b], H)
        _lstm_dcprev(dct, ac, dc_prev[b], H)


def _cell_requires(*arrays):
    return is_float(*[a for a in arrays if a is not None and hasattr(a, "dtype")]) and arrays[0].ndim == 2


@register("lstm_cell_forward", requires=_cell_requires, reference="minigen.ops.rnn:lstm_cell")
def lstm_cell_forward(gates, c_prev):
    """One LSTM step from the pre-activations gates = x W_ih^T + b_ih + h W_hh^T + b_hh (B, 4H):

        i = sigmoid(gates_i), f = sigmoid(gates_f), g = tanh(gates_g), o = sigmoid(gates_o)
        c = f * c_prev + i * g,   h = o * tanh(c)
    Returns (h, c, acts, tanh_c): acts = [i, f, g, o] (B, 4H) and tanh(c), saved for the backward.
    Wired into: minigen/nn (LSTMCell / LSTM layer step) or an ``LSTMCell`` Function in minigen/ops
    (forward: BLAS for the two matmuls, then this).
    Speed (with the two matmuls and the backward): LSTM cell row of benchmarks/results/results.md.
    """
    gates = c(gates)
    c_prev = c(c_prev)
    B, H4 = gates.shape
    H = H4 // 4
    h = np.empty((B, H), gates.dtype)
    cn = np.empty_like(h)
    tc = np.empty_like(h)
    acts = np.empty_like(gates)
    _lstm_cell_fwd(gates, c_prev, h, cn, acts, tc)
    return h, cn, acts, tc


@register("lstm_cell_backward", requires=_cell_requires, reference="minigen.ops.rnn:lstm_cell")
def lstm_cell_backward(dh, dc, acts, c_prev, tanh_c):
    """Backward of :func:`lstm_cell_forward`. dh = dL/dh_t, dc = dL/dc_t from later steps (None = 0):

        dc_t = dc + dh * o * (1 - tanh(c)^2)
        d(gates) = [dc_t g i(1-i),  dc_t c_prev f(1-f),  dc_t i (1-g^2),  dh tanh(c) o(1-o)]
        dc_prev = dc_t * f
    Returns (dgates (B, 4H), dc_prev (B, H)); the caller finishes with dx = dgates W_ih,
    dh_prev = dgates W_hh, dW_ih = dgates^T x, dW_hh = dgates^T h_prev, db = sum_b dgates.
    Wired into: the LSTM cell Function's backward fast path (not create_graph).
    """
    acts = c(acts)
    B, H4 = acts.shape
    H = H4 // 4
    dt = acts.dtype
    dh = np.zeros((B, H), dt) if dh is None else c(dh)
    dc = np.zeros((B, H), dt) if dc is None else c(dc)
    dgates = np.empty_like(acts)
    dcp = np.empty((B, H), dt)
    _lstm_cell_bwd(dh, dc, acts, c(c_prev), c(tanh_c), dgates, dcp)
    return dgates, dcp


# ------------------------------------------------------------------ GRU cell
@jit
def _gru_rz(gi, gh, ac, H2):
    """r, z = sigmoid(gi + gh) over the first 2H entries."""
    for j in range(_U(H2)):
        ac[j] = _math.sigmoid(np.float64(gi[j]) + gh[j])


@jit
def _gru_n(gi, gh, ac, h, hn, H):
    """n = tanh(gi_n + r * gh_n),  h' = (1 - z) n + z h."""
    for j in range(_U(H)):
        r = ac[j]
        z = ac[_U(H) + j]
        n = _math.tanh(np.float64(gi[_U(2 * H) + j]) + r * gh[_U(2 * H) + j])
        ac[_U(2 * H) + j] = n
        hn[j] = (1.0 - z) * n + z * h[j]


@jit
def _gru_cell_fwd(gi, gh, h, hn, acts):
    B, H3 = gi.shape
    H = H3 // 3
    for b in range(B):
        _gru_rz(gi[b], gh[b], acts[b], 2 * H)
        _gru_n(gi[b], gh[b], acts[b], h[b], hn[b], H)


@jit
def _gru_dgi(dhn, h, ac, gh, dgi, H):
    for j in range(_U(H)):
        r = ac[j]
        z = ac[_U(H) + j]
        n = ac[_U(2 * H) + j]
        d = dhn[j]
        dn = d * (1.0 - z) * (1.0 - n * n)
        dgi[j] = dn * gh[_U(2 * H) + j] * r * (1.0 - r)
        dgi[_U(H) + j] = d * (h[j] - n) * z * (1.0 - z)
        dgi[_U(2 * H) + j] = dn


@jit
def _gru_dgh(dgi, ac, dhn, dgh, dh, H):
    for j in range(_U(H)):
        dgh[j] = dgi[j]
        dgh[_U(H) + j] = dgi[_U(H) + j]
        dgh[_U(2 * H) + j] = dgi[_U(2 * H) + j] * ac[j]
        dh[j] = dhn[j] * ac[_U(H) + j]


@jit
def _gru_cell_bwd(dhn, h, acts, gh, dgi, dgh, dh):
    B, H3 = acts.shape
    H = H3 // 3
    for b in range(B):
        _gru_dgi(dhn[b], h[b], acts[b], gh[b], dgi[b], H)
        _gru_dgh(dgi[b], acts[b], dhn[b], dgh[b], dh[b], H)


@register("gru_cell_forward", requires=_cell_requires, reference="minigen.ops.rnn:gru_cell")
def gru_cell_forward(gi, gh, h):
    """One GRU step (PyTorch's equations) from gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh (B, 3H):

        r = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z),  n = tanh(gi_n + r * gh_n)
        h' = (1 - z) * n + z * h
    Returns (h', acts) with acts = [r, z, n] (B, 3H) saved for the backward (which also needs gh).
    Wired into: minigen/nn GRUCell / GRU layer step (or a ``GRUCell`` Function in minigen/ops).
    Not benchmarked separately yet.
    """
    gi, gh, h = c(gi), c(gh), c(h)
    B, H3 = gi.shape
    hn = np.empty((B, H3 // 3), gi.dtype)
    acts = np.empty_like(gi)
    _gru_cell_fwd(gi, gh, h, hn, acts)
    return hn, acts


@register("gru_cell_backward", requires=_cell_requires, reference="minigen.ops.rnn:gru_cell")
def gru_cell_backward(dh_new, h, acts, gh):
    """Backward of :func:`gru_cell_forward` for dL/dh' = dh_new:

        dn_pre = dh' (1 - z)(1 - n^2);  dz_pre = dh' (h - n) z(1 - z);  dr_pre = dn_pre gh_n r(1 - r)
        dgi = [dr_pre, dz_pre, dn_pre];   dgh = [dr_pre, dz_pre, dn_pre * r];   dh_direct = dh' z
    Returns (dgi, dgh, dh_direct); the caller adds dgh W_hh to dh_direct to get dL/dh, and forms
    dx = dgi W_ih, dW_ih = dgi^T x, dW_hh = dgh^T h, db_ih = sum dgi, db_hh = sum dgh.
    """
    acts = c(acts)
    dgi = np.empty_like(acts)
    dgh = np.empty_like(acts)
    dh = np.empty((acts.shape[0], acts.shape[1] // 3), acts.dtype)
    _gru_cell_bwd(c(dh_new), c(h), acts, c(gh), dgi, dgh, dh)
    return dgi, dgh, dh


# ------------------------------------------------------------------ LSTM sequence (one layer)
@jit
def _lstm_seq_fwd_loop(gemm_fn, one, xw, w_hh_t, hs, cs, acts, tcs):
    """xw: (T, B, 4H) input projections (+ bias), overwritten with the full pre-activations.
    hs, cs: (T+1, B, H) with hs[0] = h0, cs[0] = c0 filled in; acts (T, B, 4H); tcs (T, B, H).
    w_hh_t: W_hh^T as a contiguous (H, 4H) matrix (see ``_common.transposed``: h @ Wt runs ~1.4x faster
    than h @ W^T in OpenBLAS at a batch of 32)."""
    T = xw.shape[0]
    for t in range(T):
        gemm(gemm_fn, False, False, one, hs[t], w_hh_t, one, xw[t])  # xw[t] += h_{t-1} @ W_hh^T
        _lstm_cell_fwd(xw[t], cs[t], hs[t + 1], cs[t + 1], acts[t], tcs[t])


@jit
def _lstm_seq_bwd_loop(gemm_fn, one, zero, dy, dh, dc, acts, cs, tcs, w_hh, dgates):
    """dy (T, B, H) gradients of the outputs; dh, dc (B, H): gradients into h_T, c_T, updated in place
    to the gradients into h_0, c_0; dgates (T, B, 4H) out."""
    T = dy.shape[0]
    B, H = dh.shape
    for t in range(T - 1, -1, -1):
        for b in range(B):
            dhr, dyr = dh[b], dy[t, b]
            for j in range(_U(H)):
                dhr[j] += dyr[j]
        _lstm_cell_bwd(dh, dc, acts[t], cs[t], tcs[t], dgates[t], dc)
        gemm(gemm_fn, False, False, one, dgates[t], w_hh, zero, dh)  # dh_{t-1} = dgates_t @ W_hh


def _seq_requires(x, w_ih, w_hh, *rest):
    arrs = [x, w_ih, w_hh] + [a for a in rest if a is not None and hasattr(a, "dtype")]
    return is_float(*arrs) and x.ndim == 3 and w_ih.ndim == 2 and w_hh.ndim == 2


def _py_seq_fwd(xw, w_hh, hs, cs, acts, tcs):
    wt = w_hh.T
    for t in range(xw.shape[0]):
        xw[t] += hs[t] @ wt
        _lstm_cell_fwd(xw[t], cs[t], hs[t + 1], cs[t + 1], acts[t], tcs[t])


def _py_seq_bwd(dy, dh, dc, acts, cs, tcs, w_hh, dgates):
    for t in range(dy.shape[0] - 1, -1, -1):
        dh += dy[t]
        _lstm_cell_bwd(dh, dc, acts[t], cs[t], tcs[t], dgates[t], dc)
        np.matmul(dgates[t], w_hh, out=dh)


@register("lstm_seq_forward", requires=_seq_requires, reference="minigen.ops.rnn:lstm_seq_forward_ref")
def lstm_seq_forward(x, w_ih, w_hh, bias=None, h0=None, c0=None):
    """One LSTM layer over a whole sequence, time-major: x (T, B, I), W_ih (4H, I), W_hh (4H, H),
    bias (4H,) = b_ih + b_hh (or None), h0/c0 (B, H) (None = zeros).

    For t = 1..T: gates_t = x_t W_ih^T + bias + h_{t-1} W_hh^T, then the LSTM cell (see lstm_cell_forward).
    Returns (y, h_T, c_T, saved): y = (h_1..h_T) (T, B, H); ``saved`` is the tuple the backward needs
    (hs (T+1, B, H) with h_0, cs (T+1, B, H) with c_0, acts (T, B, 4H), tanh(c) (T, B, H)).
    batch_first inputs: pass x.transpose(1, 0, 2) (the wrapper copies it contiguous once).
    Wired into: minigen/nn LSTM (one Function per layer and direction over the whole sequence, forward
    here, backward in :func:`lstm_seq_backward`) when dropout between steps is not needed.
    Speed (2 layers, fwd+bwd): LSTM sequence row of benchmarks/results/results.md, against a Python loop
    of NumPy ops per step and torch.nn.LSTM.
    """
    x = c(x)
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    w_ih = c(w_ih)
    w_hh = c(w_hh)
    xw = x.reshape(T * B, I) @ w_ih.T
    if bias is not None:
        xw += bias
    xw = xw.reshape(T, B, 4 * H)
    hs = np.empty((T + 1, B, H), dt)
    cs = np.empty((T + 1, B, H), dt)
    hs[0] = 0 if h0 is None else h0
    cs[0] = 0 if c0 is None else c0
    acts = np.empty((T, B, 4 * H), dt)
    tcs = np.empty((T, B, H), dt)
    fn = blas_gemm(dt)
    if T > 0:
        if fn is not None:
            _lstm_seq_fwd_loop(fn, dt.type(1), xw, transposed(w_hh), hs, cs, acts, tcs)
        else:
            _py_seq_fwd(xw, w_hh, hs, cs, acts, tcs)
    return hs[1:], hs[T].copy(), cs[T].copy(), (hs, cs, acts, tcs)


@register("lstm_seq_backward", requires=lambda *a: True, reference="minigen.ops.rnn:LSTMSequence.backward")
def lstm_seq_backward(dy, dh_T, dc_T, x, w_ih, w_hh, saved, need_bias=True):
    """Backward of :func:`lstm_seq_forward`. dy (T, B, H) = dL/dy (None = 0), dh_T / dc_T = dL/dh_T,
    dL/dc_T (None = 0). Runs the recurrence backwards in one Numba loop (cell backward + one gemm per
    step), then forms all weight gradients with one BLAS call each:

        dx = dG W_ih,  dW_ih = dG^T x,  dW_hh = dG^T h_{0..T-1},  dbias = sum dG  (dG = (T*B, 4H) gates grads)
    Returns (dx (T, B, I), dW_ih, dW_hh, dbias or None, dh_0, dc_0).
    """
    hs, cs, acts, tcs = saved
    T, B, H4 = acts.shape
    H = H4 // 4
    dt = acts.dtype
    x = c(x)
    I = x.shape[2]
    dy = np.zeros((T, B, H), dt) if dy is None else c(dy.astype(dt, copy=False))
    dh = np.zeros((B, H), dt) if dh_T is None else np.array(dh_T, dtype=dt, copy=True, order="C")
    dc = np.zeros((B, H), dt) if dc_T is None else np.array(dc_T, dtype=dt, copy=True, order="C")
    w_hh = c(w_hh)
    dgates = np.empty((T, B, H4), dt)
    fn = blas_gemm(dt)
    if T > 0:
        if fn is not None:
            _lstm_seq_bwd_loop(fn, dt.type(1), dt.type(0), dy, dh, dc, acts, cs, tcs, w_hh, dgates)
        else:
            _py_seq_bwd(dy, dh, dc, acts, cs, tcs, w_hh, dgates)
    dG = dgates.reshape(T * B, H4)
    dx = (dG @ c(w_ih)).reshape(T, B, I)
    dw_ih = dG.T @ x.reshape(T * B, I)
    dw_hh = dG.T @ hs[:T].reshape(T * B, H)
    db = dG.sum(0) if need_bias else None
    return dx, dw_ih, dw_hh, db, dh, dc


# ------------------------------------------------------------------ GRU sequence (one layer)
@jit
def _add_row_bias(a, b):
    for r in range(a.shape[0]):
        row = a[r]
        for j in range(_U(a.shape[1])):
            row[j] += b[j]


@jit
def _gru_seq_fwd_loop(gemm_fn, one, zero, xw, w_hh_t, b_hh, hs, acts, ghs):
    """xw (T, B, 3H) = x W_ih^T + b_ih; hs (T+1, B, H) with hs[0] = h0; out: ghs[t] = h_{t-1} W_hh^T + b_hh,
    acts[t] = [r, z, n], hs[t+1] = h_t. w_hh_t: W_hh^T contiguous (H, 3H), as in the LSTM loop."""
    T = xw.shape[0]
    for t in range(T):
        gemm(gemm_fn, False, False, one, hs[t], w_hh_t, zero, ghs[t])
        _add_row_bias(ghs[t], b_hh)
        _gru_cell_fwd(xw[t], ghs[t], hs[t], hs[t + 1], acts[t])


@jit
def _gru_seq_bwd_loop(gemm_fn, one, dy, dh, acts, hs, ghs, w_hh, dgi, dgh, tmp):
    """dy (T, B, H); dh (B, H): dL/dh_T in, dL/dh_0 out; dgi, dgh (T, B, 3H) out (gate gradients)."""
    T = dy.shape[0]
    B, H = dh.shape
    for t in range(T - 1, -1, -1):
        for b in range(B):
            dhr, dyr = dh[b], dy[t, b]
            for j in range(_U(H)):
                dhr[j] += dyr[j]
        _gru_cell_bwd(dh, hs[t], acts[t], ghs[t], dgi[t], dgh[t], tmp)  # tmp = dh * z (the direct path)
        gemm(gemm_fn, False, False, one, dgh[t], w_hh, one, tmp)         # + dgh W_hh (through gh)
        dh[:, :] = tmp


@register("gru_seq_forward", requires=_seq_requires, reference="minigen.ops.rnn:gru_seq_forward_ref")
def gru_seq_forward(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None):
    """One GRU layer over a whole sequence, time-major: x (T, B, I), W_ih (3H, I), W_hh (3H, H), b_ih/b_hh (3H,)
    or None, h0 (B, H) (None = zeros). For t = 1..T: gi = x_t W_ih^T + b_ih, gh = h_{t-1} W_hh^T + b_hh, then
    the GRU cell (see gru_cell_forward; b_hn inside the reset product, as PyTorch).
    The input projection of all steps is one BLAS call; the recurrence runs in Numba (one cblas gemm per step).
    Returns (y (T, B, H), saved) with saved = (hs (T+1, B, H) incl. h_0, acts (T, B, 3H), ghs (T, B, 3H)).
    Wired into: minigen/nn/modules/rnn.py ``GRUSequence`` (the GRU layer's op, like LSTMSequence).
    """
    x = c(x)
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    w_ih, w_hh = c(w_ih), c(w_hh)
    xw = x.reshape(T * B, I) @ w_ih.T
    if b_ih is not None:
        xw += b_ih
    xw = xw.reshape(T, B, 3 * H)
    bh = np.zeros(3 * H, dt) if b_hh is None else c(b_hh.astype(dt, copy=False))
    hs = np.empty((T + 1, B, H), dt)
    hs[0] = 0 if h0 is None else h0
    acts = np.empty((T, B, 3 * H), dt)
    ghs = np.empty((T, B, 3 * H), dt)
    fn = blas_gemm(dt)
    if T > 0:
        if fn is not None:
            _gru_seq_fwd_loop(fn, dt.type(1), dt.type(0), xw, transposed(w_hh), bh, hs, acts, ghs)
        else:
            for t in range(T):
                ghs[t] = hs[t] @ w_hh.T + bh
                _gru_cell_fwd(xw[t], ghs[t], hs[t], hs[t + 1], acts[t])
    return hs[1:], (hs, acts, ghs)


@register("gru_seq_backward", requires=lambda *a: True, reference="minigen.ops.rnn:GRUSequence.backward")
def gru_seq_backward(dy, dh_T, x, w_ih, w_hh, saved, need_bias=True):
    """Backward of :func:`gru_seq_forward`: dy (T, B, H) = dL/dy (None = 0), dh_T = dL/dh_T (None = 0).
    The recurrence runs backwards in Numba (cell backward + one gemm per step); then one BLAS call each:

        dx = dGi W_ih,  dW_ih = dGi^T x,  dW_hh = dGh^T h_{0..T-1},  db_ih = sum dGi,  db_hh = sum dGh
    with dGi, dGh (T*B, 3H) the gradients of gi and gh. Returns (dx, dW_ih, dW_hh, db_ih, db_hh, dh_0)
    (the biases None when not ``need_bias``).
    """
    hs, acts, ghs = saved
    T, B, H3 = acts.shape
    H = H3 // 3
    dt = acts.dtype
    x = c(x)
    I = x.shape[2]
    dy = np.zeros((T, B, H), dt) if dy is None else c(dy.astype(dt, copy=False))
    dh = np.zeros((B, H), dt) if dh_T is None else np.array(dh_T, dtype=dt, copy=True, order="C")
    w_hh = c(w_hh)
    dgi = np.empty((T, B, H3), dt)
    dgh = np.empty((T, B, H3), dt)
    tmp = np.empty((B, H), dt)
    fn = blas_gemm(dt)
    if T > 0:
        if fn is not None:
            _gru_seq_bwd_loop(fn, dt.type(1), dy, dh, acts, hs, ghs, w_hh, dgi, dgh, tmp)
        else:
            for t in range(T - 1, -1, -1):
                dh += dy[t]
                _gru_cell_bwd(dh, hs[t], acts[t], ghs[t], dgi[t], dgh[t], tmp)
                dh[...] = tmp + dgh[t] @ w_hh
    Gi = dgi.reshape(T * B, H3)
    Gh = dgh.reshape(T * B, H3)
    dx = (Gi @ c(w_ih)).reshape(T, B, I)
    dw_ih = Gi.T @ x.reshape(T * B, I)
    dw_hh = Gh.T @ hs[:T].reshape(T * B, H)
    dbi = Gi.sum(0) if need_bias else None
    dbh = Gh.sum(0) if need_bias else None
    return dx, dw_ih, dw_hh, dbi, dbh, dh
