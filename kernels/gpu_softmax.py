"""GPU (CuPy) softmax / log-softmax over the last dim, forward and backward, and fused cross-entropy.

Same names, arguments and results as :mod:`minigen.kernels.cpu_softmax`; the formulas:

    softmax:      y = exp(x - M) / S,            M = max_j x_j,  S = sum_j exp(x_j - M)
    log_softmax:  y = x - M - log S
    backward:     softmax dx = y (g - sum_j g_j y_j);   log_softmax dx = g - exp(y) sum_j g_j
    cross-entropy (class-index targets, weights w, label smoothing eps, a_c as in cpu_softmax):
                  loss = -sum_c a_c log p_c,   dloss/dx_j = p_j sum_c a_c - a_j

Parallel layout: one row per *group* of threads. Rows of up to ``WARP_MAX_C`` columns use a warp (32
threads) per row, 4 rows per block of 128 threads, and reduce with warp shuffles only; longer rows use
a block of 256 threads per row (warp shuffles, then a shared-memory step). The max and the sum of
exponentials come from ONE pass over the row with the online rule (m, s) -> (max(m, v), s e^{m - m'} +
e^{v - m'}), then one more pass writes the result: two reads and one write per element. Nothing is
copied back to the host; the 'mean' cross-entropy divides on the device.
"""
from __future__ import annotations

import numpy as np

from .gpu_common import compile_module, contiguous, cupy_of, declare_source, i32, is_float_dev, register_gpu, scalar

WARP_MAX_C = 1024
_ROWS_PER_BLOCK = 4  # warp-per-row variant: 128 threads
_BLOCK = 256         # block-per-row variant

SOURCE = r"""
// One row per group: a warp (WARP = true) or the whole block (WARP = false).
template <bool WARP> struct Group {
    __device__ static int lane() { return WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x; }
    __device__ static int size() { return WARP ? 32 : (int)blockDim.x; }
    __device__ static long long row() {
        return WARP ? (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5) : (long long)blockIdx.x;
    }
    __device__ static MG_T sum(MG_T v, MG_T* sh) { return WARP ? warp_sum(v) : block_sum(v, sh); }
    __device__ static MG_T max(MG_T v, MG_T* sh) { return WARP ? warp_max(v) : block_max(v, sh); }
};

// Online max / sum of exp over this thread's share of a row, then combined over the group:
// returns M (row max) and S = sum_j exp(x_j - M). Rows that are not valid read nothing (M = -inf, S = 0).
template <bool WARP> __device__ void row_stats(const MG_T* xr, int C, bool valid, MG_T* sh, MG_T& M, MG_T& S) {
    typedef Group<WARP> G;
    const MG_T NEG_INF = -mg_inf(MG_T(0));
    MG_T m = NEG_INF, s = MG_T(0);
    if (valid) {
        for (int j = G::lane(); j < C; j += G::size()) {
            MG_T v = xr[j];
            if (v > m) { s = s * mg_exp(m - v) + MG_T(1); m = v; }
            else if (m > NEG_INF || v != v) { s += mg_exp(v - m); }
        }
    }
    M = G::max(m, sh);
    MG_T part = (m == NEG_INF) ? MG_T(0) : s * mg_exp(m - M);
    S = G::sum(part, sh);
}

template <bool WARP> __device__ void softmax_fwd(const MG_T* __restrict__ x, MG_T* __restrict__ y, int R, int C,
                                                 int log_) {
    typedef Group<WARP> G;
    __shared__ MG_T sh[32];
    long long r = G::row();
    bool valid = r < R;
    const MG_T* xr = x + (valid ? r : 0) * (long long)C;
    MG_T M, S;
    row_stats<WARP>(xr, C, valid, sh, M, S);
    if (!valid) return;
    MG_T* yr = y + r * (long long)C;
    if (log_) {
        MG_T ls = mg_log(S);  // (x - M) - log S, not x - (M + log S): the latter loses digits for large logits
        for (int j = G::lane(); j < C; j += G::size()) yr[j] = (xr[j] - M) - ls;
    } else {
        MG_T inv = MG_T(1) / S;
        for (int j = G::lane(); j < C; j += G::size()) yr[j] = mg_exp(xr[j] - M) * inv;
    }
}

template <bool WARP> __device__ void softmax_bwd(const MG_T* __restrict__ y, const MG_T* __restrict__ g,
                                                 MG_T* __restrict__ dx, int R, int C, int log_) {
    typedef Group<WARP> G;
    __shared__ MG_T sh[32];
    long long r = G::row();
    bool valid = r < R;
    long long off = (valid ? r : 0) * (long long)C;
    MG_T acc = MG_T(0);
    if (valid) {
        for (int j = G::lane(); j < C; j += G::size()) acc += log_ ? g[off + j] : g[off + j] * y[off + j];
    }
    MG_T dot = G::sum(acc, sh);
    if (!valid) return;
    for (int j = G::lane(); j < C; j += G::size()) {
        MG_T gj = g[off + j], yj = y[off + j];
        dx[off + j] = log_ ? gj - mg_exp(yj) * dot : yj * (gj - dot);
    }
}

// Cross-entropy per row (see cpu_softmax.cross_entropy): loss[r], dx[r, :], wt[r] = w[t_r] (0 if ignored).
// Ignored / invalid rows run the same reductions (so the group stays converged) and write zeros.
template <bool WARP> __device__ void ce_fwd(const MG_T* __restrict__ x, const long long* __restrict__ t,
                                            const MG_T* __restrict__ w, long long ignore_index, MG_T eps,
                                            MG_T* __restrict__ loss, MG_T* __restrict__ dx, MG_T* __restrict__ wt,
                                            int R, int C) {
    typedef Group<WARP> G;
    __shared__ MG_T sh[32];
    long long r = G::row();
    bool valid = r < R;
    long long tr = valid ? t[r] : 0;
    bool active = valid && tr != ignore_index;
    if (!active) tr = 0;
    const MG_T* xr = x + (valid ? r : 0) * (long long)C;
    MG_T M, S;
    row_stats<WARP>(xr, C, active, sh, M, S);
    MG_T ls = mg_log(S);
    MG_T ec = eps / MG_T(C);
    MG_T wsum = MG_T(0), wl = MG_T(0);
    if (eps != MG_T(0)) {
        MG_T a = MG_T(0), b = MG_T(0);
        if (active) {
            for (int j = G::lane(); j < C; j += G::size()) { a += w[j]; b += w[j] * ((xr[j] - M) - ls); }
        }
        wsum = G::sum(a, sh);
        wl = G::sum(b, sh);
    }
    if (!valid) return;
    MG_T* dr = dx + r * (long long)C;
    if (!active) {
        for (int j = G::lane(); j < C; j += G::size()) dr[j] = MG_T(0);
        if (G::lane() == 0) { loss[r] = MG_T(0); wt[r] = MG_T(0); }
        return;
    }
    MG_T w_t = w[tr];
    MG_T asum = (MG_T(1) - eps) * w_t + ec * wsum;
    MG_T inv = MG_T(1) / S;
    for (int j = G::lane(); j < C; j += G::size()) {
        MG_T d = mg_exp(xr[j] - M) * inv * asum - ec * w[j];
        if (j == tr) d -= (MG_T(1) - eps) * w_t;
        dr[j] = d;
    }
    if (G::lane() == 0) {
        loss[r] = -(MG_T(1) - eps) * w_t * ((xr[tr] - M) - ls) - ec * wl;
        wt[r] = w_t;
    }
}

extern "C" __global__ void softmax_fwd_warp(const MG_T* x, MG_T* y, int R, int C, int log_) {
    softmax_fwd<true>(x, y, R, C, log_); }
extern "C" __global__ void softmax_fwd_block(const MG_T* x, MG_T* y, int R, int C, int log_) {
    softmax_fwd<false>(x, y, R, C, log_); }
extern "C" __global__ void softmax_bwd_warp(const MG_T* y, const MG_T* g, MG_T* dx, int R, int C, int log_) {
    softmax_bwd<true>(y, g, dx, R, C, log_); }
extern "C" __global__ void softmax_bwd_block(const MG_T* y, const MG_T* g, MG_T* dx, int R, int C, int log_) {
    softmax_bwd<false>(y, g, dx, R, C, log_); }
extern "C" __global__ void ce_fwd_warp(const MG_T* x, const long long* t, const MG_T* w, long long ignore_index,
                                       MG_T eps, MG_T* loss, MG_T* dx, MG_T* wt, int R, int C) {
    ce_fwd<true>(x, t, w, ignore_index, eps, loss, dx, wt, R, C); }
extern "C" __global__ void ce_fwd_block(const MG_T* x, const long long* t, const MG_T* w, long long ignore_index,
                                        MG_T eps, MG_T* loss, MG_T* dx, MG_T* wt, int R, int C) {
    ce_fwd<false>(x, t, w, ignore_index, eps, loss, dx, wt, R, C); }
"""

declare_source("gpu_softmax", SOURCE, [("-DMG_T=float",), ("-DMG_T=double",)])


def _launch(cp, name, R, C, dtype, args):
    mod = compile_module(cp, "gpu_softmax", SOURCE, dtype)
    if C <= WARP_MAX_C:
        grid, block = ((R + _ROWS_PER_BLOCK - 1) // _ROWS_PER_BLOCK,), (32 * _ROWS_PER_BLOCK,)
        fn = mod.get_function(name + "_warp")
    else:
        grid, block = (R,), (_BLOCK,)
        fn = mod.get_function(name + "_block")
    fn(grid, block, args)


def _rows(cp, x):
    x = contiguous(cp, x)
    C = x.shape[-1] if x.ndim else 1
    return x, x.reshape(-1, C) if x.size else x.reshape(0, C)


def _req(*arrays):
    return is_float_dev(*arrays) and arrays[0].ndim >= 1 and arrays[0].size < 2 ** 31


def _fwd(x, log):
    cp = cupy_of(x)
    x, x2 = _rows(cp, x)
    y = cp.empty_like(x)
    R, C = x2.shape
    if R and C:
        _launch(cp, "softmax_fwd", R, C, x.dtype, (x2, y, i32(R), i32(C), i32(int(log))))
    return y


def _bwd(y, g, log):
    cp = cupy_of(y)
    y, y2 = _rows(cp, y)
    g = contiguous(cp, g, y.dtype)
    dx = cp.empty_like(y)
    R, C = y2.shape
    if R and C:
        _launch(cp, "softmax_bwd", R, C, y.dtype, (y2, g, dx, i32(R), i32(C), i32(int(log))))
    return dx


@register_gpu("softmax_forward", requires=_req)
def softmax_forward(x):
    """y = exp(x - max) / sum(exp(x - max)) over the last dim (see the module docstring)."""
    return _fwd(x, False)


@register_gpu("log_softmax_forward", requires=_req)
def log_softmax_forward(x):
    """y = x - max - log(sum(exp(x - max))) over the last dim."""
    return _fwd(x, True)


@register_gpu("softmax_backward", requires=_req)
def softmax_backward(y, g):
    """dx = y * (g - sum(g * y, -1)), last dim."""
    return _bwd(y, g, False)


@register_gpu("log_softmax_backward", requires=_req)
def log_softmax_backward(y, g):
    """dx = g - exp(y) * sum(g, -1), last dim."""
    return _bwd(y, g, True)


def _ce_req(logits, target, weight=None, *rest):
    return (is_float_dev(logits, weight) and logits.ndim == 2 and target.ndim == 1
            and target.dtype.kind in "iu" and target.shape[0] == logits.shape[0] and logits.size < 2 ** 31)


@register_gpu("cross_entropy", requires=_ce_req)
def cross_entropy(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """Loss AND dlogits in one pass; arguments and results exactly as ``cpu_softmax.cross_entropy``.

    'mean' divides by sum_i w_{t_i} over the non-ignored rows ON THE DEVICE (NaN loss and NaN dlogits
    when every row is ignored, as the CPU kernel)."""
    cp = cupy_of(logits)
    x = contiguous(cp, logits)
    dt = x.dtype
    t = contiguous(cp, target, np.int64)
    N, C = x.shape
    w = cp.ones(C, dt) if weight is None else contiguous(cp, weight, dt)
    loss = cp.empty(N, dt)
    wt = cp.empty(N, dt)
    dx = cp.empty_like(x)
    if N and C:
        _launch(cp, "ce_fwd", N, C, dt, (x, t, w, np.int64(ignore_index), scalar(dt, label_smoothing), loss, dx, wt,
                                         i32(N), i32(C)))
    if reduction == "none":
        return loss, dx
    if reduction == "sum":
        return loss.sum(dtype=np.float64).astype(dt), dx
    den = wt.sum(dtype=np.float64)
    tot = loss.sum(dtype=np.float64)
    ok = den != 0
    scale = cp.where(ok, 1.0 / cp.where(ok, den, 1.0), np.nan)
    out = (tot * scale).astype(dt)
    dx *= scale.astype(dt)
    return out, dx
