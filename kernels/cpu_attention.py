"""Fused scaled-dot-product attention, forward and backward, flash-attention style (online softmax).

    out = softmax(q k^T * scale + mask) v,   q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv)

The T x T score matrix is never materialised: each head is processed in blocks of ``BLOCK_Q`` query
rows against tiles of ``BLOCK_K`` keys, so the scratch memory is O(BLOCK_Q * BLOCK_K) per thread. For
each query block the forward keeps a running max m, a running normaliser l and an unnormalised output o:

    S = scale Q K_tile^T;  m' = max(m, rowmax S);  P = e^{S - m'};  l <- l e^{m - m'} + rowsum P
    o <- o e^{m - m'} + P V_tile;  m <- m'         ...  out = o / l,  lse = m + log l

and saves only the row logsumexp ``lse`` (B, H, Tq). The backward walks the key tiles (outer) and the
query blocks (inner) and recomputes the probabilities from lse:

    P = e^{scale Q K^T - lse};  D_i = sum_e dout_ie out_ie;  dV += P^T dOut;  dP = dOut V^T;
    dS = P * (dP - D);  dQ += scale dS K;  dK += scale dS^T Q

Every product is one BLAS call on a block (cblas_?gemm called from Numba, see ``_common.gemm_rows``),
always in the plain A @ B or A^T @ B form: each head's K and V are first transposed into (D, T) scratch
so that Q K^T and dOut V^T need no transposed B operand, a form OpenBLAS runs at half speed on these
small tiles (32x32x32: 1.08 vs 0.49 us; 64x64x32: 3.00 vs 1.52 us, 1 thread, Xeon SPR). The score
tiles live in one scratch buffer per thread, reshaped C-contiguous per tile so that the row loops
vectorise. The exponentials are kernels/_math.exp (float64 inputs) or kernels/_math.exp_f32acc
(float32 inputs: ~1e-8 relative, below float32 rounding) in vectorised row loops. Causal masking is PyTorch's
``is_causal`` (top-left aligned: query i sees keys j <= i): tiles entirely above the diagonal are
skipped, tiles crossing it are masked, so causal attention does about half the work. The heads are
split over the threads. Products run in the input dtype (float32 for float32 inputs, as PyTorch's CPU
kernel); the running statistics and the exponentials in float64.

Measured (1 thread, CPU time, B12 H4 D32 causal, fwd+bwd; see the attention rows of
benchmarks/results/results.md for the figures against PyTorch): this blocked-BLAS version replaced a
loop-per-element kernel that was 1.8x slower than the NumPy reference at T=64; the untransposed
products, float32 exponentials and C-contiguous scratch took T=64 from 1.60 to 1.35 ms and T=256 from
15.3 to 12.9 ms (Xeon SPR, float32; PyTorch 2.13 in the same process: 1.36 and 12.3 ms).
"""
from __future__ import annotations

import math

import numpy as np

from . import _math
from ._common import blas_gemm, c, gemm_rows, is_float, jit, parallel_for, row_max
from .dispatch import register

BLOCK_Q = BLOCK_K = 64  # query rows / keys per tile; 32 when Tk <= 128 (measured at T=64: 2.1 vs 2.3 ms
#                        fwd+bwd for B12 H4 D32 causal; at T=256, 64 x 64 tiles: 22 vs 24 ms)


def _blocks(Tk):
    return (32, 32) if Tk <= 128 else (BLOCK_Q, BLOCK_K)
_PAR_MIN = 1 << 16  # scores per call (B*H*Tq*Tk) above which the heads are split over the threads
_U = np.uint64


@jit
def _mask_causal(S, i0, j0):
    """S[r, c] = -inf where key j0 + c comes after query i0 + r."""
    nq, nk = S.shape
    for r in range(nq):
        first = i0 + r - j0 + 1  # columns >= first are masked
        if first < 0:
            first = 0
        row = S[r]
        for cc in range(first, nk):
            row[cc] = -np.inf


@jit
def _online_softmax_rows(S, m, el, alpha, f32):
    """Per row r of the score tile S (in place -> P = e^{S - m'}): m' = max(m, rowmax S),
    alpha = e^{m - m'}, l <- l alpha + rowsum P, m <- m'. ``f32``: float32 scores, whose exponentials
    need only ~1e-8 relative accuracy (``_math.exp_f32acc``, a shorter polynomial)."""
    nq, nk = S.shape
    for r in range(nq):
        row = S[r]
        mx = max(m[r], np.float64(row_max(row)))
        a = _math.exp(m[r] - mx) if m[r] != -np.inf else 0.0
        tot = 0.0
        if mx == -np.inf:  # nothing visible yet in this row
            for j in range(_U(nk)):
                row[j] = 0.0
        elif f32:
            for j in range(_U(nk)):
                e = _math.exp_f32acc(np.float64(row[j]) - mx)
                row[j] = e
                tot += e
        else:
            for j in range(_U(nk)):
                e = _math.exp(np.float64(row[j]) - mx)
                row[j] = e
                tot += e
        el[r] = el[r] * a + tot
        m[r] = mx
        alpha[r] = a


@jit
def _scale_rows(o, alpha):
    for r in range(o.shape[0]):
        row = o[r]
        a = alpha[r]
        for e in range(_U(o.shape[1])):
            row[e] = row[e] * a


@jit
def _probs_rows(S, lse, f32):
    """S <- e^{S - lse} row by row (the backward's recomputed probabilities)."""
    for r in range(S.shape[0]):
        row = S[r]
        li = np.float64(lse[r])
        if f32:
            for j in range(_U(S.shape[1])):
                row[j] = _math.exp_f32acc(np.float64(row[j]) - li)
        else:
            for j in range(_U(S.shape[1])):
                row[j] = _math.exp(np.float64(row[j]) - li)


@jit
def _ds_rows(P, dP, dsum):
    """dP <- P * (dP - D) row by row."""
    for r in range(P.shape[0]):
        pr = P[r]
        dr = dP[r]
        di = dsum[r]
        for j in range(_U(P.shape[1])):
            dr[j] = pr[j] * (dr[j] - di)


@jit
def _transpose_into(a, at):
    """at[d, j] = a[j, d] (a head's k or v as a (D, T) matrix: the score products then run as plain
    A @ B GEMMs, which OpenBLAS does 2x faster than A @ B^T at these small sizes)."""
    for j in range(a.shape[0]):
        row = a[j]
        for d in range(a.shape[1]):
            at[d, j] = row[d]


@jit
def _fwd_head(fn, q, k, v, out, lse, causal, scale, bq, bk, kt, Sb, o, m, el, alpha, f32):
    """One head: q (Tq, D), k (Tk, D), v (Tk, Dv) -> out (Tq, Dv), lse (Tq,). Scratch: kt (D, Tk),
    Sb (bq, bk), o (bq, Dv), m/el/alpha (bq,)."""
    Tq = q.shape[0]
    Tk = k.shape[0]
    Dv = v.shape[1]
    dt = q.dtype
    one = dt.type(1.0)
    zero = dt.type(0.0)
    sc = dt.type(scale)
    _transpose_into(k, kt)
    for i0 in range(0, Tq, bq):
        i1 = min(i0 + bq, Tq)
        nq = i1 - i0
        kend = min(Tk, i1) if causal else Tk
        ob = o[:nq * Dv].reshape(nq, Dv)
        ob[:, :] = 0.0
        for r in range(nq):
            m[r] = -np.inf
            el[r] = 0.0
        for j0 in range(0, kend, bk):
            j1 = min(j0 + bk, kend)
            S = Sb[:nq * (j1 - j0)].reshape(nq, j1 - j0)  # C-contiguous: its row loops vectorise
            gemm_rows(fn, False, False, sc, q[i0:i1], kt[:, j0:j1], zero, S)
            if causal and j1 - 1 > i0:
                _mask_causal(S, i0, j0)
            _online_softmax_rows(S, m, el, alpha, f32)
            _scale_rows(ob, alpha)
            gemm_rows(fn, False, False, one, S, v[j0:j1], one, ob)
        for r in range(nq):
            inv = 1.0 / el[r]
            orow = ob[r]
            out_r = out[i0 + r]
            for e in range(Dv):
                out_r[e] = orow[e] * inv
            lse[i0 + r] = m[r] + math.log(el[r])


@jit
def _bwd_head(fn, dout, q, k, v, out, lse, dq, dk, dv, causal, scale, bq, bk, kt, vt, Pb, dPb, dsum, f32):
    """Scratch: kt (D, Tk), vt (Dv, Tk), Pb / dPb (bq, bk), dsum (Tq,)."""
    Tq, D = q.shape
    Tk = k.shape[0]
    Dv = v.shape[1]
    dt = q.dtype
    one = dt.type(1.0)
    zero = dt.type(0.0)
    sc = dt.type(scale)
    for i in range(Tq):
        acc = 0.0
        dr = dout[i]
        orow = out[i]
        for e in range(_U(Dv)):
            acc += np.float64(dr[e]) * orow[e]
        dsum[i] = acc
    _transpose_into(k, kt)
    _transpose_into(v, vt)
    dq[:, :] = 0.0
    kend_all = min(Tk, Tq) if causal else Tk
    for j0 in range(0, kend_all, bk):
        j1 = min(j0 + bk, kend_all)
        nk = j1 - j0
        dk_t = dk[j0:j1]
        dv_t = dv[j0:j1]
        dk_t[:, :] = 0.0
        dv_t[:, :] = 0.0
        istart = (j0 // bq) * bq if causal else 0
        for i0 in range(istart, Tq, bq):
            i1 = min(i0 + bq, Tq)
            nq = i1 - i0
            P = Pb[:nq * nk].reshape(nq, nk)
            gemm_rows(fn, False, False, sc, q[i0:i1], kt[:, j0:j1], zero, P)
            if causal and j1 - 1 > i0:
                _mask_causal(P, i0, j0)
            _probs_rows(P, lse[i0:i1], f32)
            gemm_rows(fn, True, False, one, P, dout[i0:i1], one, dv_t)      # dV += P^T dOut
            dP = dPb[:nq * nk].reshape(nq, nk)
            gemm_rows(fn, False, False, one, dout[i0:i1], vt[:, j0:j1], zero, dP)  # dP = dOut V^T
            _ds_rows(P, dP, dsum[i0:i1])
            gemm_rows(fn, False, False, sc, dP, k[j0:j1], one, dq[i0:i1])   # dQ += scale dS K
            gemm_rows(fn, True, False, sc, dP, q[i0:i1], one, dk_t)         # dK += scale dS^T Q
    for j in range(kend_all, Tk):  # keys no query can see (causal, Tk > Tq)
        dk[j, :] = 0.0
        dv[j, :] = 0.0


# The drivers take 4-d (B, H, T, D) arrays with any strides except a contiguous last dim: a head's
# (T, D) matrix is then rows of D contiguous values spaced by a row stride, which BLAS reads directly
# (its leading dimension). So the q, k, v views a Transformer slices out of one (B, T, 3, H, D)
# projection need no copies, and the output can be written in (B, T, H, D) memory order.
# Each call (one thread's range of heads) allocates its scratch tiles once.
@jit
def _fwd(fn, q, k, v, out, lse, causal, scale, bq, bk, n0, n1):
    H = q.shape[1]
    Tk, D = k.shape[2], k.shape[3]
    Dv = v.shape[3]
    dt = q.dtype
    f32 = q.itemsize == 4
    kt = np.empty((D, Tk), dt)
    Sb = np.empty(bq * bk, dt)
    o = np.empty(bq * Dv, dt)
    m = np.empty(bq)
    el = np.empty(bq)
    alpha = np.empty(bq)
    for n in range(n0, n1):
        b, h = n // H, n % H
        _fwd_head(fn, q[b, h], k[b, h], v[b, h], out[b, h], lse[b, h], causal, scale, bq, bk, kt, Sb, o, m, el,
                  alpha, f32)


@jit
def _bwd(fn, dout, q, k, v, out, lse, dq, dk, dv, causal, scale, bq, bk, n0, n1):
    H = q.shape[1]
    Tq = q.shape[2]
    Tk, D = k.shape[2], k.shape[3]
    Dv = v.shape[3]
    dt = q.dtype
    f32 = q.itemsize == 4
    kt = np.empty((D, Tk), dt)
    vt = np.empty((Dv, Tk), dt)
    Pb = np.empty(bq * bk, dt)
    dPb = np.empty(bq * bk, dt)
    dsum = np.empty(Tq)
    for n in range(n0, n1):
        b, h = n // H, n % H
        _bwd_head(fn, dout[b, h], q[b, h], k[b, h], v[b, h], out[b, h], lse[b, h], dq[b, h], dk[b, h], dv[b, h],
                  causal, scale, bq, bk, kt, vt, Pb, dPb, dsum, f32)


def _strided_ok(a):
    """A 4-d array BLAS can read head by head in place: contiguous last dim, non-negative strides in whole
    elements, rows that do not overlap."""
    st = a.strides
    return (a.ndim == 4 and not a.flags.c_contiguous and st[-1] == a.itemsize and min(st) >= 0
            and all(x % a.itemsize == 0 for x in st) and (a.shape[-2] <= 1 or st[-2] >= a.shape[-1] * a.itemsize))


def _as4(*arrays):
    """Each a (..., T, D) as a 4-d (B, H, T, D) array. When ALL of them are strided 4-d views BLAS can read
    (:func:`_strided_ok`) they pass as they are; otherwise all are made C-contiguous (a copy where needed).
    All-or-none keeps the compiled specialisations to two layouts (each mix of layouts is a separate
    Numba compilation, ~3 s for the forward and the backward each)."""
    if all(_strided_ok(a) for a in arrays):
        return arrays
    return tuple(c(a).reshape((1, -1) + a.shape[-2:]) if a.ndim != 4 else c(a) for a in arrays)


def _requires(q, k, v, *rest):
    return (is_float(q, k, v) and q.ndim >= 2 and q.ndim == k.ndim == v.ndim
            and q.shape[:-2] == k.shape[:-2] == v.shape[:-2] and q.shape[-1] == k.shape[-1]
            and k.shape[-2] == v.shape[-2] and blas_gemm(q.dtype) is not None)


@register("sdpa_forward", requires=_requires, reference="minigen.ops.attention:sdpa_forward_ref")
def sdpa_forward(q, k, v, causal=False, scale=None, accumulate=None):
    """out = softmax(q k^T * scale [+ causal mask]) v without the T x T matrix (see the module docstring).

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) with the same leading dims (B, H): float32/float64;
    4-d inputs may be strided views (see ``_fwd``). scale defaults to 1/sqrt(D). causal: query i attends
    to keys j <= i (PyTorch's is_causal).
    Returns (out (..., Tq, Dv) in q's dtype, lse (..., Tq) float64); keep lse, q, k, v and out for
    :func:`sdpa_backward`. For 4-d inputs ``out`` is a (B, H, Tq, Dv) view of a (B, Tq, H, Dv) array, the
    layout a Transformer reshapes it to next (``out.transpose(0, 2, 1, 3)`` is then free).
    ``accumulate`` is accepted for compatibility and ignored (products in the input dtype, statistics
    in float64). Wired into: minigen/ops/attention.py ``scaled_dot_product_attention`` (an SDPA Function)
    when attn_mask is None and dropout_p == 0. Speed: the attention rows of benchmarks/results/results.md.
    """
    D = q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(D)
    q4, k4, v4 = _as4(q, k, v)
    B, H, Tq, _ = q4.shape
    Tk, Dv = k4.shape[2], v4.shape[3]
    out = np.empty((B, Tq, H, Dv), q4.dtype).transpose(0, 2, 1, 3)
    lse = np.empty((B, H, Tq), np.float64)
    N = B * H
    if N and Tq and Tk:
        bq, bk = _blocks(Tk)
        parallel_for(_fwd, N, blas_gemm(q4.dtype), q4, k4, v4, out, lse, bool(causal), float(scale), bq, bk,
                     parallel=N * Tq * Tk >= _PAR_MIN)
    elif N and Tq:  # no keys: softmax over an empty set (the reference gives NaN)
        out[...] = np.nan
        lse[...] = -np.inf
    if q.ndim != 4:
        out = np.ascontiguousarray(out).reshape(q.shape[:-2] + (Tq, Dv))
        lse = lse.reshape(q.shape[:-2] + (Tq,))
    return out, lse


@register("sdpa_backward", requires=lambda dout, q, k, v, *r: _requires(q, k, v),
          reference="minigen.ops.attention:SDPA.backward")
def sdpa_backward(dout, q, k, v, out, lse, causal=False, scale=None):
    """Gradients of :func:`sdpa_forward` for dL/dout = dout, recomputing probabilities from the saved lse:

        p_ij = exp(scale q_i.k_j - lse_i);  D_i = sum_e dout_ie out_ie
        dv_j = sum_i p_ij dout_i;  ds_ij = p_ij (dout_i.v_j - D_i);  dq_i = scale sum_j ds_ij k_j;
        dk_j = scale sum_i ds_ij q_i
    Returns (dq, dk, dv) shaped and typed like q, k, v (contiguous).
    Wired into: the SDPA Function's backward in minigen/ops/attention.py (first order; create_graph
    runs the differentiable formula). Speed: the attention rows of benchmarks/results/results.md.
    """
    D = q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(D)
    dt = q.dtype
    q4, k4, v4 = _as4(q, k, v)
    o4, d4 = _as4(np.ascontiguousarray(out, dtype=dt), np.ascontiguousarray(dout, dtype=dt))  # always C
    B, H, Tq, _ = q4.shape
    Tk = k4.shape[2]
    l3 = c(lse).reshape(B, H, Tq)
    dq = np.empty(q4.shape, dt)
    dk = np.empty(k4.shape, dt)
    dv = np.empty(v4.shape, dt)
    N = B * H
    if N and Tq and Tk:
        bq, bk = _blocks(Tk)
        parallel_for(_bwd, N, blas_gemm(dt), d4, q4, k4, v4, o4, l3, dq, dk, dv, bool(causal), float(scale),
                     bq, bk, parallel=N * Tq * Tk >= _PAR_MIN)
    else:
        dq[...] = 0
        dk[...] = 0
        dv[...] = 0
    return dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape)
