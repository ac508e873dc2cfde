"""GPU (CuPy) fused scaled-dot-product attention, forward and backward, flash-attention style.

    out = softmax(q k^T * scale [+ causal mask]) v,   q (.., Tq, D), k (.., Tk, D), v (.., Tk, Dv)

Same names, arguments and results as :mod:`minigen.kernels.cpu_attention` (``sdpa_forward`` returns
(out, lse), ``sdpa_backward`` returns (dq, dk, dv)). The Tq x Tk score matrix never exists in global
memory: only O(T * D) arrays are read and written.

Forward (kernel ``flash_fwd``): a block owns ``ROWS`` query rows of one head (``TP`` threads per row, each
holding every TP-th element of q and of the output accumulator in registers). It walks the keys in tiles
of ``TILE`` rows that the block loads into shared memory together (K and V tiles), and for every query row
keeps the online-softmax state, chunk of 16 keys by chunk:

    s_j = scale q.k_j;  m' = max(m, max_j s_j);  alpha = e^{m - m'};  l <- alpha l + sum_j e^{s_j - m'}
    o <- alpha o + sum_j e^{s_j - m'} v_j;  m <- m'          ...   out = o / l,   lse = m + log l

Causal masking (PyTorch's ``is_causal``: query i sees keys j <= i) skips every key tile past the block's
last query row, so causal attention does about half the work.

Backward (recomputing p_ij = exp(s_ij - lse_i) tile by tile, delta_i = sum_e dout_ie out_ie):

    dv_j = sum_i p_ij dout_i,   ds_ij = p_ij (dout_i.v_j - delta_i),
    dq_i = scale sum_j ds_ij k_j,   dk_j = scale sum_i ds_ij q_i

split into two kernels so that every output has exactly one writer (deterministic, no atomics):
``flash_bwd_dkdv`` (a block owns ROWS keys and walks query tiles of Q / dOut in shared memory) and
``flash_bwd_dq`` (a block owns ROWS queries and walks key tiles, like the forward).

Precision: float32 inputs compute and accumulate in float32 (``accumulate='float64'`` runs the double
kernels on float64 copies); float64 inputs in float64. Head dims up to 128 (compiled per bucket 32 / 64 /
128, registers sized to the bucket); larger head dims take the reference path. Static shared memory stays
at 32 KB per block (two tiles of TILE x DMAX elements).
"""
from __future__ import annotations

import math

import numpy as np

from .gpu_common import compile_module, contiguous, cupy_of, declare_source, i32, is_float_dev, register_gpu, scalar

ROWS = 64
CH = 16  # keys per online-softmax update in the forward

SOURCE = r"""
// Compile-time configuration: DMAX (head-dim bucket), TP (threads per row), ROWS (rows per block),
// TILE (rows per shared-memory tile). Each thread owns elements d = r + TP * u, u < VL, of its row.
#define VL (DMAX / TP)
#define CH 16

__device__ __forceinline__ MG_T tp_sum(MG_T v) {
#pragma unroll
    for (int o = TP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Cooperative load of rows [t0, t0 + TILE) of a (T, W) matrix into a TILE x DMAX shared tile (zero padded).
__device__ __forceinline__ void load_tile(MG_T (*tile)[DMAX], const MG_T* __restrict__ src, int t0, int T, int W) {
    for (int e = threadIdx.x; e < TILE * DMAX; e += blockDim.x) {
        int rr = e / DMAX, cc = e - rr * DMAX;
        int gr = t0 + rr;
        tile[rr][cc] = (gr < T && cc < W) ? src[(long long)gr * W + cc] : MG_T(0);
    }
}

extern "C" __global__ void flash_fwd(const MG_T* __restrict__ q, const MG_T* __restrict__ k,
                                     const MG_T* __restrict__ v, MG_T* __restrict__ out, MG_T* __restrict__ lse,
                                     int Tq, int Tk, int D, int Dv, MG_T scale, int causal) {
    __shared__ MG_T Ks[TILE][DMAX];
    __shared__ MG_T Vs[TILE][DMAX];
    const MG_T NEG_INF = -mg_inf(MG_T(0));
    int r = threadIdx.x % TP, row = threadIdx.x / TP;
    long long n = blockIdx.x;
    int i = blockIdx.y * ROWS + row;
    bool valid = i < Tq;
    const MG_T* kh = k + n * Tk * (long long)D;
    const MG_T* vh = v + n * Tk * (long long)Dv;
    MG_T qr[VL], acc[VL];
#pragma unroll
    for (int u = 0; u < VL; ++u) {
        int d = r + TP * u;
        qr[u] = (valid && d < D) ? q[(n * Tq + i) * (long long)D + d] * scale : MG_T(0);
        acc[u] = MG_T(0);
    }
    MG_T m = NEG_INF, l = MG_T(0);
    int last = min(Tq, (int)(blockIdx.y + 1) * ROWS);      // one past the block's last query row
    int kend = causal ? min(Tk, last) : Tk;                  // keys any row of this block can see
    for (int k0 = 0; k0 < kend; k0 += TILE) {
        __syncthreads();                                     // the previous tile is consumed
        load_tile(Ks, kh, k0, Tk, D);
        load_tile(Vs, vh, k0, Tk, Dv);
        __syncthreads();
        int jn = min(TILE, kend - k0);
        for (int j0 = 0; j0 < jn; j0 += CH) {
            MG_T s[CH];
            MG_T mx = NEG_INF;
#pragma unroll
            for (int c = 0; c < CH; ++c) {
                int j = j0 + c;
                MG_T part = MG_T(0);
#pragma unroll
                for (int u = 0; u < VL; ++u) part += qr[u] * Ks[j][r + TP * u];
                MG_T sc = tp_sum(part);
                bool ok = valid && j < jn && (!causal || k0 + j <= i);
                s[c] = ok ? sc : NEG_INF;
                mx = mg_max(mx, s[c]);
            }
            MG_T mn = mg_max(m, mx);
            if (mn > NEG_INF) {
                MG_T alpha = mg_exp(m - mn);
                MG_T ps = MG_T(0);
#pragma unroll
                for (int u = 0; u < VL; ++u) acc[u] *= alpha;
#pragma unroll
                for (int c = 0; c < CH; ++c) {
                    MG_T p = mg_exp(s[c] - mn);
                    ps += p;
#pragma unroll
                    for (int u = 0; u < VL; ++u) acc[u] += p * Vs[j0 + c][r + TP * u];
                }
                l = l * alpha + ps;
                m = mn;
            }
        }
    }
    if (!valid) return;
    MG_T inv = MG_T(1) / l;
#pragma unroll
    for (int u = 0; u < VL; ++u) {
        int d = r + TP * u;
        if (d < Dv) out[(n * Tq + i) * (long long)Dv + d] = acc[u] * inv;
    }
    if (r == 0) lse[n * Tq + i] = m + mg_log(l);
}

extern "C" __global__ void flash_bwd_dq(const MG_T* __restrict__ q, const MG_T* __restrict__ k,
                                        const MG_T* __restrict__ v, const MG_T* __restrict__ dout,
                                        const MG_T* __restrict__ lse, const MG_T* __restrict__ delta,
                                        MG_T* __restrict__ dq, int Tq, int Tk, int D, int Dv, MG_T scale, int causal) {
    __shared__ MG_T Ks[TILE][DMAX];
    __shared__ MG_T Vs[TILE][DMAX];
    int r = threadIdx.x % TP, row = threadIdx.x / TP;
    long long n = blockIdx.x;
    int i = blockIdx.y * ROWS + row;
    bool valid = i < Tq;
    const MG_T* kh = k + n * Tk * (long long)D;
    const MG_T* vh = v + n * Tk * (long long)Dv;
    MG_T qr[VL], dor[VL], dqa[VL];
#pragma unroll
    for (int u = 0; u < VL; ++u) {
        int d = r + TP * u;
        qr[u] = (valid && d < D) ? q[(n * Tq + i) * (long long)D + d] * scale : MG_T(0);
        dor[u] = (valid && d < Dv) ? dout[(n * Tq + i) * (long long)Dv + d] : MG_T(0);
        dqa[u] = MG_T(0);
    }
    MG_T li = valid ? lse[n * Tq + i] : MG_T(0), di = valid ? delta[n * Tq + i] : MG_T(0);
    int last = min(Tq, (int)(blockIdx.y + 1) * ROWS);
    int kend = causal ? min(Tk, last) : Tk;
    for (int k0 = 0; k0 < kend; k0 += TILE) {
        __syncthreads();
        load_tile(Ks, kh, k0, Tk, D);
        load_tile(Vs, vh, k0, Tk, Dv);
        __syncthreads();
        int jn = min(TILE, kend - k0);
        for (int j = 0; j < jn; ++j) {
            MG_T ps = MG_T(0), pd = MG_T(0);
#pragma unroll
            for (int u = 0; u < VL; ++u) { ps += qr[u] * Ks[j][r + TP * u]; pd += dor[u] * Vs[j][r + TP * u]; }
            MG_T s = tp_sum(ps), dp = tp_sum(pd);
            bool ok = valid && (!causal || k0 + j <= i);
            MG_T p = ok ? mg_exp(s - li) : MG_T(0);
            MG_T ds = p * (dp - di);
#pragma unroll
            for (int u = 0; u < VL; ++u) dqa[u] += ds * Ks[j][r + TP * u];
        }
    }
    if (!valid) return;
#pragma unroll
    for (int u = 0; u < VL; ++u) {
        int d = r + TP * u;
        if (d < D) dq[(n * Tq + i) * (long long)D + d] = dqa[u] * scale;
    }
}

extern "C" __global__ void flash_bwd_dkdv(const MG_T* __restrict__ q, const MG_T* __restrict__ k,
                                          const MG_T* __restrict__ v, const MG_T* __restrict__ dout,
                                          const MG_T* __restrict__ lse, const MG_T* __restrict__ delta,
                                          MG_T* __restrict__ dk, MG_T* __restrict__ dv,
                                          int Tq, int Tk, int D, int Dv, MG_T scale, int causal) {
    __shared__ MG_T Qs[TILE][DMAX];
    __shared__ MG_T Os[TILE][DMAX];
    __shared__ MG_T Ls[TILE];
    __shared__ MG_T Ds[TILE];
    int r = threadIdx.x % TP, row = threadIdx.x / TP;
    long long n = blockIdx.x;
    int j = blockIdx.y * ROWS + row;
    bool valid = j < Tk;
    const MG_T* qh = q + n * Tq * (long long)D;
    const MG_T* oh = dout + n * Tq * (long long)Dv;
    MG_T kr[VL], vr[VL], dka[VL], dva[VL];
#pragma unroll
    for (int u = 0; u < VL; ++u) {
        int d = r + TP * u;
        kr[u] = (valid && d < D) ? k[(n * Tk + j) * (long long)D + d] * scale : MG_T(0);
        vr[u] = (valid && d < Dv) ? v[(n * Tk + j) * (long long)Dv + d] : MG_T(0);
        dka[u] = MG_T(0);
        dva[u] = MG_T(0);
    }
    // causal: queries i >= j, and j >= the block's first key
    int i_start = causal ? min(Tq, (int)blockIdx.y * ROWS) : 0;
    for (int i0 = i_start; i0 < Tq; i0 += TILE) {
        __syncthreads();
        load_tile(Qs, qh, i0, Tq, D);
        load_tile(Os, oh, i0, Tq, Dv);
        for (int e = threadIdx.x; e < TILE; e += blockDim.x) {
            int gi = i0 + e;
            Ls[e] = gi < Tq ? lse[n * Tq + gi] : MG_T(0);
            Ds[e] = gi < Tq ? delta[n * Tq + gi] : MG_T(0);
        }
        __syncthreads();
        int in_ = min(TILE, Tq - i0);
        for (int ii = 0; ii < in_; ++ii) {
            MG_T ps = MG_T(0), pd = MG_T(0);
#pragma unroll
            for (int u = 0; u < VL; ++u) { ps += Qs[ii][r + TP * u] * kr[u]; pd += Os[ii][r + TP * u] * vr[u]; }
            MG_T s = tp_sum(ps), dp = tp_sum(pd);
            bool ok = valid && (!causal || j <= i0 + ii);
            MG_T p = ok ? mg_exp(s - Ls[ii]) : MG_T(0);
            MG_T ds = p * (dp - Ds[ii]);
#pragma unroll
            for (int u = 0; u < VL; ++u) {
                dva[u] += p * Os[ii][r + TP * u];
                dka[u] += ds * Qs[ii][r + TP * u];
            }
        }
    }
    if (!valid) return;
#pragma unroll
    for (int u = 0; u < VL; ++u) {
        int d = r + TP * u;
        if (d < D) dk[(n * Tk + j) * (long long)D + d] = dka[u] * scale;
        if (d < Dv) dv[(n * Tk + j) * (long long)Dv + d] = dva[u];
    }
}
"""


def _config(dmax, itemsize):
    """Compile-time constants for a head-dim bucket: TP threads per row so that each thread holds at most
    32 floats (16 doubles) per vector (nvcc -Xptxas -v: no register spills for any bucket at sm_90), and
    shared tiles of TILE rows so the two tiles take 32 KB."""
    tile = min(64, 32768 // (2 * dmax * itemsize))
    tp = dmax // (32 if itemsize == 4 else 16)
    return {"DMAX": dmax, "TP": tp, "ROWS": ROWS, "TILE": tile}


def _options(cfg):
    return tuple(f"-D{k}={v}" for k, v in cfg.items())


_OPTION_SETS = []
for _dt, _ct in ((np.float32, "float"), (np.float64, "double")):
    for _dm in (32, 64, 128):
        _OPTION_SETS.append((f"-DMG_T={_ct}",) + _options(_config(_dm, np.dtype(_dt).itemsize)))
declare_source("gpu_attention", SOURCE, _OPTION_SETS)


def _bucket(D, Dv):
    m = max(D, Dv, 1)
    return 32 if m <= 32 else (64 if m <= 64 else 128)


def _fn(cp, dt, dmax, name):
    cfg = _config(dmax, np.dtype(dt).itemsize)
    mod = compile_module(cp, "gpu_attention", SOURCE, dt, _options(cfg))
    return mod.get_function(name), cfg


def _heads(cp, a, dt):
    a = contiguous(cp, a, dt)
    return a.reshape((-1,) + a.shape[-2:]), a.shape[:-2]


def _requires(q, k, v, *rest):
    return (is_float_dev(q, k, v) and q.ndim >= 2 and q.ndim == k.ndim == v.ndim and q.dtype == k.dtype == v.dtype
            and q.shape[:-2] == k.shape[:-2] == v.shape[:-2] and q.shape[-1] == k.shape[-1]
            and k.shape[-2] == v.shape[-2] and max(q.shape[-1], v.shape[-1]) <= 128
            and max(q.size, k.size, v.size) < 2 ** 31)


def _acc_dtype(dtype, accumulate):
    if np.dtype(dtype) == np.float64 or accumulate in ("float64", np.float64):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


@register_gpu("sdpa_forward", requires=_requires)
def sdpa_forward(q, k, v, causal=False, scale=None, accumulate="float32"):
    """Returns (out (..., Tq, Dv) in q's dtype, lse (..., Tq) in the accumulation dtype)."""
    cp = cupy_of(q)
    D = q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(D) if D else 1.0
    at = _acc_dtype(q.dtype, accumulate)
    q3, lead = _heads(cp, q, at)
    k3, _ = _heads(cp, k, at)
    v3, _ = _heads(cp, v, at)
    N, Tq, _ = q3.shape
    Tk, Dv = v3.shape[1], v3.shape[2]
    out = cp.empty((N, Tq, Dv), at)
    lse = cp.empty((N, Tq), at)
    if N and Tq and Tk:
        fn, cfg = _fn(cp, at, _bucket(D, Dv), "flash_fwd")
        fn((N, (Tq + ROWS - 1) // ROWS), (ROWS * cfg["TP"],),
           (q3, k3, v3, out, lse, i32(Tq), i32(Tk), i32(D), i32(Dv), scalar(at, scale), i32(bool(causal))))
    elif N and Tq:  # no keys: softmax over an empty set (the reference gives NaN)
        out[...] = np.nan
        lse[...] = -np.inf
    out = out.astype(q.dtype, copy=False)
    return out.reshape(lead + out.shape[1:]), lse.reshape(lead + (Tq,))


@register_gpu("sdpa_backward", requires=lambda dout, q, k, v, *r: _requires(q, k, v))
def sdpa_backward(dout, q, k, v, out, lse, causal=False, scale=None):
    """Returns (dq, dk, dv) shaped and typed like q, k, v (accumulation dtype = lse's)."""
    cp = cupy_of(q)
    D = q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(D) if D else 1.0
    at = np.dtype(lse.dtype)
    q3, lead = _heads(cp, q, at)
    k3, _ = _heads(cp, k, at)
    v3, _ = _heads(cp, v, at)
    o3, _ = _heads(cp, out, at)
    d3, _ = _heads(cp, dout, at)
    N, Tq, _ = q3.shape
    Tk, Dv = v3.shape[1], v3.shape[2]
    l2 = contiguous(cp, lse, at).reshape(N, Tq)
    dq = cp.zeros_like(q3)
    dk = cp.zeros_like(k3)
    dv = cp.zeros_like(v3)
    if N and Tq and Tk:
        delta = (d3 * o3).sum(-1)  # delta_i = sum_e dout_ie out_ie  (N, Tq)
        dmax = _bucket(D, Dv)
        common = (i32(Tq), i32(Tk), i32(D), i32(Dv), scalar(at, scale), i32(bool(causal)))
        fn, cfg = _fn(cp, at, dmax, "flash_bwd_dq")
        fn((N, (Tq + ROWS - 1) // ROWS), (ROWS * cfg["TP"],), (q3, k3, v3, d3, l2, delta, dq) + common)
        fn, cfg = _fn(cp, at, dmax, "flash_bwd_dkdv")
        fn((N, (Tk + ROWS - 1) // ROWS), (ROWS * cfg["TP"],), (q3, k3, v3, d3, l2, delta, dk, dv) + common)
    return (dq.astype(q.dtype, copy=False).reshape(q.shape), dk.astype(k.dtype, copy=False).reshape(k.shape),
            dv.astype(v.dtype, copy=False).reshape(v.shape))
