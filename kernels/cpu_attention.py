"""Fused scaled-dot-product attention, forward and backward, flash-attention style (online softmax).

    out = softmax(q k^T * scale + mask) v,   q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv)

The T x T score matrix is never materialised. The forward walks the keys in tiles of ``BLOCK_K``; for
each query row it keeps a running max m, a running normaliser l and an unnormalised output o:

    s_j = scale q.k_j;  m' = max(m, max_j s_j);  l <- l e^{m - m'} + sum_j e^{s_j - m'}
    o <- o e^{m - m'} + sum_j e^{s_j - m'} v_j;  m <- m'         ...  out = o / l,  lse = m + log l

and saves only the row logsumexp ``lse`` (B, H, Tq). The backward recomputes p_ij = exp(s_ij - lse_i)
tile by tile:

    D_i = sum_e dout_ie out_ie;   dv_j += p_ij dout_i;   dp_ij = dout_i . v_j;   ds_ij = p_ij (dp_ij - D_i)
    dq_i += scale sum_j ds_ij k_j;   dk_j += scale ds_ij q_i

Causal masking is PyTorch's ``is_causal`` (top-left aligned: query i sees keys j <= i); fully masked
key tiles are skipped, so causal attention does about half the work. Parallel over the B*H heads.
Each thread's scratch memory is O(BLOCK_K * D + T * D), never O(T^2).

Accumulation dtype: ``accumulate='float32'`` (the default for float32 inputs: scores, running stats and
outputs in float32, like PyTorch's CPU kernel) or ``'float64'`` (everything accumulated in float64,
results rounded to the input dtype once at the end). float64 inputs always accumulate in float64.
"""
from __future__ import annotations

import math

import numpy as np
from ._common import c, is_float, jit, parallel_for
from .dispatch import register

BLOCK_K = 64
_PAR_MIN = 1 << 16  # scores per call (B*H*Tq*Tk) above which the heads are split over the threads


@jit
def _fwd_head(q, k, v, out, lse, causal, scale, proto, bk):
    """One head: q (Tq, D), k (Tk, D), v (Tk, Dv) -> out (Tq, Dv), lse (Tq,)."""
    Tq, D = q.shape
    Tk = k.shape[0]
    Dv = v.shape[1]
    at = proto.dtype
    kt = np.empty((D, bk), at)
    vt = np.empty((bk, Dv), at)
    o = np.zeros((Tq, Dv), at)
    m = np.full(Tq, -np.inf, at)
    el = np.zeros(Tq, at)
    s = np.empty(bk, at)
    qi = np.empty(D, at)
    kend_all = Tk if not causal else min(Tk, Tq)
    for j0 in range(0, kend_all, bk):
        j1 = min(j0 + bk, kend_all)
        nk = j1 - j0
        for j in range(nk):
            for d in range(D):
                kt[d, j] = k[j0 + j, d]
            for e in range(Dv):
                vt[j, e] = v[j0 + j, e]
        i_start = j0 if causal else 0
        for i in range(i_start, Tq):
            jn = nk
            if causal and i - j0 + 1 < jn:
                jn = i - j0 + 1
            for d in range(D):
                qi[d] = q[i, d] * scale
            for j in range(jn):
                s[j] = 0.0
            for d in range(D):
                qd = qi[d]
                for j in range(jn):
                    s[j] += qd * kt[d, j]
            mx = m[i]
            for j in range(jn):
                if s[j] > mx:
                    mx = s[j]
            alpha = math.exp(m[i] - mx) if m[i] != -np.inf else 0.0
            tot = 0.0
            for j in range(jn):
                pj = math.exp(s[j] - mx)
                s[j] = pj
                tot += pj
            el[i] = el[i] * alpha + tot
            m[i] = mx
            for e in range(Dv):
                o[i, e] *= alpha
            for j in range(jn):
                pj = s[j]
                for e in range(Dv):
                    o[i, e] += pj * vt[j, e]
    for i in range(Tq):
        inv = 1.0 / el[i]
        for e in range(Dv):
            out[i, e] = o[i, e] * inv
        lse[i] = m[i] + math.log(el[i])




@jit
def _bwd_head(dout, q, k, v, out, lse, dq, dk, dv, causal, scale, proto, bk):
    Tq, D = q.shape
    Tk = k.shape[0]
    Dv = v.shape[1]
    at = proto.dtype
    kt = np.empty((D, bk), at)
    kk = np.empty((bk, D), at)
    vt = np.empty((Dv, bk), at)
    dka = np.empty((bk, D), at)
    dva = np.empty((bk, Dv), at)
    dqa = np.zeros((Tq, D), at)
    dsum = np.empty(Tq, at)
    p = np.empty(bk, at)
    dp = np.empty(bk, at)
    qi = np.empty(D, at)
    for i in range(Tq):
        acc = 0.0
        for e in range(Dv):
            acc += dout[i, e] * out[i, e]
        dsum[i] = acc
    kend_all = Tk if not causal else min(Tk, Tq)
    for j0 in range(0, kend_all, bk):
        j1 = min(j0 + bk, kend_all)
        nk = j1 - j0
        for j in range(nk):
            for d in range(D):
                kt[d, j] = k[j0 + j, d]
                kk[j, d] = k[j0 + j, d]
                dka[j, d] = 0.0
            for e in range(Dv):
                vt[e, j] = v[j0 + j, e]
                dva[j, e] = 0.0
        i_start = j0 if causal else 0
        for i in range(i_start, Tq):
            jn = nk
            if causal and i - j0 + 1 < jn:
                jn = i - j0 + 1
            for d in range(D):
                qi[d] = q[i, d]
            for j in range(jn):
                p[j] = 0.0
                dp[j] = 0.0
            for d in range(D):
                qd = qi[d] * scale
                for j in range(jn):
                    p[j] += qd * kt[d, j]
            li = lse[i]
            for j in range(jn):
                p[j] = math.exp(p[j] - li)
            for e in range(Dv):
                go = dout[i, e]
                for j in range(jn):
                    dp[j] += go * vt[e, j]
            di = dsum[i]
            for j in range(jn):
                pj = p[j]
                for e in range(Dv):
                    dva[j, e] += pj * dout[i, e]
                dsj = pj * (dp[j] - di) * scale
                for d in range(D):
                    dqa[i, d] += dsj * kk[j, d]
                    dka[j, d] += dsj * qi[d]
        for j in range(nk):
            for d in range(D):
                dk[j0 + j, d] = dka[j, d]
            for e in range(Dv):
                dv[j0 + j, e] = dva[j, e]
    for j in range(kend_all, Tk):  # keys no query can see (causal, Tk > Tq)
        for d in range(D):
            dk[j, d] = 0.0
        for e in range(Dv):
            dv[j, e] = 0.0
    for i in range(Tq):
        for d in range(D):
            dq[i, d] = dqa[i, d]




@jit
def _fwd(q, k, v, out, lse, causal, scale, proto, bk, h0, h1):
    for h in range(h0, h1):
        _fwd_head(q[h], k[h], v[h], out[h], lse[h], causal, scale, proto, bk)


@jit
def _bwd(dout, q, k, v, out, lse, dq, dk, dv, causal, scale, proto, bk, h0, h1):
    for h in range(h0, h1):
        _bwd_head(dout[h], q[h], k[h], v[h], out[h], lse[h], dq[h], dk[h], dv[h], causal, scale, proto, bk)


def _proto(dtype, accumulate):
    if dtype == np.float64 or accumulate in ("float64", np.float64):
        return np.zeros(0, np.float64)
    return np.zeros(0, np.float32)


def _heads(a):
    """(..., T, D) -> contiguous (N, T, D) and the leading shape."""
    a = c(a)
    return a.reshape((-1,) + a.shape[-2:]), a.shape[:-2]


def _requires(q, k, v, *rest):
    return (is_float(q, k, v) and q.ndim >= 2 and q.ndim == k.ndim == v.ndim
            and q.shape[:-2] == k.shape[:-2] == v.shape[:-2] and q.shape[-1] == k.shape[-1]
            and k.shape[-2] == v.shape[-2])


def _worth(q, k, v, *rest):
    # measured (B12 H4 D32 causal fwd): T=4 1.6x, T=16 0.76x, T=64 1.2x, T=256 65x (the reference's
    # T x T temporaries thrash); the kernel is used from Tq*Tk >= 1024 (T >= 32)
    return q.shape[-2] * k.shape[-2] >= 1024


@register("sdpa_forward", requires=_requires, worth=_worth)
def sdpa_forward(q, k, v, causal=False, scale=None, accumulate="float32"):
    """out = softmax(q k^T * scale [+ causal mask]) v without the T x T matrix (see the module docstring).

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) with the same leading dims (B, H): float32/float64.
    scale defaults to 1/sqrt(D). causal: query i attends to keys j <= i (PyTorch's is_causal).
    Returns (out (..., Tq, Dv) in q's dtype, lse (..., Tq) in the accumulation dtype); keep lse, q, k, v and
    out for :func:`sdpa_backward`. No attn_mask / dropout: the op keeps its reference for those.
    Wired into: minigen/ops/attention.py scaled_dot_product_attention's Function forward when
    attn_mask is None and dropout_p == 0 (heads of k/v already expanded for GQA).
    Measured (benchmarks/results/thresholds.md, float32, B12 H4 D32 causal, forward only, against the materialised
    NumPy softmax): T=4 1.6x, T=16 0.76x, T=64 1.2x, T=256 65x (the reference's T x T temporaries);
    threshold Tq*Tk >= 1024. fwd+bwd vs PyTorch: benchmarks/results/results.md.
    """
    D = q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(D)
    q3, lead = _heads(q)
    k3, _ = _heads(k)
    v3, _ = _heads(v)
    N, Tq, _ = q3.shape
    proto = _proto(q3.dtype, accumulate)
    out = np.empty((N, Tq, v3.shape[2]), q3.dtype)
    lse = np.empty((N, Tq), proto.dtype)
    if N and Tq and k3.shape[1]:
        parallel_for(_fwd, N, q3, k3, v3, out, lse, bool(causal), float(scale), proto, BLOCK_K,
                     parallel=N * Tq * k3.shape[1] >= _PAR_MIN)
    elif N and Tq:  # no keys: softmax over an empty set (the reference gives NaN)
        out[...] = np.nan
        lse[...] = -np.inf
    return out.reshape(lead + out.shape[1:]), lse.reshape(lead + (Tq,))


@register("sdpa_backward", requires=lambda dout, q, k, v, *r: _requires(q, k, v))
def sdpa_backward(dout, q, k, v, out, lse, causal=False, scale=None):
    """Gradients of :func:`sdpa_forward` for dL/dout = dout, recomputing probabilities from the saved lse:

        p_ij = exp(scale q_i.k_j - lse_i);  D_i = sum_e dout_ie out_ie
        dv_j = sum_i p_ij dout_i;  ds_ij = p_ij (dout_i.v_j - D_i);  dq_i = scale sum_j ds_ij k_j;
        dk_j = scale sum_i ds_ij q_i
    The accumulation dtype is lse's. Returns (dq, dk, dv) shaped and typed like q, k, v.
    Wired into: the attention Function's backward fast path (not create_graph): dq, dk, dv as constants.
    Speed (fwd+bwd, B12 H4 T64/256 D32 causal): see the attention rows of
    benchmarks/results/results.md.
    """
    D = q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(D)
    q3, lead = _heads(q)
    k3, _ = _heads(k)
    v3, _ = _heads(v)
    o3, _ = _heads(out)
    d3, _ = _heads(dout.astype(q3.dtype, copy=False))
    N, Tq, _ = q3.shape
    l2 = c(lse).reshape(N, Tq)
    proto = np.zeros(0, l2.dtype)
    dq = np.empty_like(q3)
    dk = np.empty_like(k3)
    dv = np.empty_like(v3)
    if N and Tq and k3.shape[1]:
        parallel_for(_bwd, N, d3, q3, k3, v3, o3, l2, dq, dk, dv, bool(causal), float(scale), proto, BLOCK_K,
                     parallel=N * Tq * k3.shape[1] >= _PAR_MIN)
    else:
        dq[...] = 0
        dk[...] = 0
        dv[...] = 0
    return dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape)
