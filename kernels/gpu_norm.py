"""GPU (CuPy) layer norm, forward and backward. Same names, arguments and results as ``cpu_norm``.

    forward:  mean = sum_j x_j / D,  var = sum_j (x_j - mean)^2 / D,  rstd = 1 / sqrt(var + eps)
              y = (x - mean) * rstd * w + b                      (over the last D elements of each row)
    backward: xhat = (x - mean) rstd;  dx = rstd (g w - mean_j(g w) - xhat mean_j(g w xhat))
              dw = sum_rows g xhat,  db = sum_rows g

Parallel layout: as gpu_softmax, a warp per row for D <= 1024 (4 rows per 128-thread block), a block of
256 threads per row beyond. The variance is the two-pass one (the row is re-read from L1/L2, never
E[x^2] - mean^2). The weight/bias gradients are column sums: a second kernel gives each thread one
column of a chunk of rows (coalesced reads), writes per-chunk partial sums, and CuPy adds the chunks:
a fixed summation order, so the result is deterministic (no atomics).
"""
from __future__ import annotations

from .gpu_common import compile_module, contiguous, cupy_of, declare_source, i32, is_float_dev, register_gpu, scalar

WARP_MAX_D = 1024
_ROWS_PER_BLOCK = 4
_BLOCK = 256
_COLS = 128        # threads (columns) per block of the dw/db kernel
_CHUNK_ROWS = 64   # rows summed by one thread of the dw/db kernel

SOURCE = r"""
template <bool WARP> struct Group {
    __device__ static int lane() { return WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x; }
    __device__ static int size() { return WARP ? 32 : (int)blockDim.x; }
    __device__ static long long row() {
        return WARP ? (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5) : (long long)blockIdx.x;
    }
    __device__ static MG_T sum(MG_T v, MG_T* sh) { return WARP ? warp_sum(v) : block_sum(v, sh); }
};

template <bool WARP> __device__ void ln_fwd(const MG_T* __restrict__ x, const MG_T* __restrict__ w,
                                            const MG_T* __restrict__ b, MG_T* __restrict__ y,
                                            MG_T* __restrict__ mean, MG_T* __restrict__ rstd,
                                            int R, int D, MG_T eps, int has_w, int has_b) {
    typedef Group<WARP> G;
    __shared__ MG_T sh[32];
    long long r = G::row();
    bool valid = r < R;
    const MG_T* xr = x + (valid ? r : 0) * (long long)D;
    MG_T s = MG_T(0);
    if (valid) for (int j = G::lane(); j < D; j += G::size()) s += xr[j];
    MG_T mu = G::sum(s, sh) / MG_T(D);
    MG_T q = MG_T(0);
    if (valid) for (int j = G::lane(); j < D; j += G::size()) { MG_T d = xr[j] - mu; q += d * d; }
    MG_T var = G::sum(q, sh) / MG_T(D);
    if (!valid) return;
    MG_T rs = MG_T(1) / mg_sqrt(var + eps);
    MG_T* yr = y + r * (long long)D;
    for (int j = G::lane(); j < D; j += G::size()) {
        MG_T v = (xr[j] - mu) * rs;
        if (has_w) v *= w[j];
        if (has_b) v += b[j];
        yr[j] = v;
    }
    if (G::lane() == 0) { mean[r] = mu; rstd[r] = rs; }
}

template <bool WARP> __device__ void ln_bwd(const MG_T* __restrict__ g, const MG_T* __restrict__ x,
                                            const MG_T* __restrict__ w, const MG_T* __restrict__ mean,
                                            const MG_T* __restrict__ rstd, MG_T* __restrict__ dx,
                                            int R, int D, int has_w) {
    typedef Group<WARP> G;
    __shared__ MG_T sh[32];
    long long r = G::row();
    bool valid = r < R;
    long long off = (valid ? r : 0) * (long long)D;
    MG_T mu = valid ? mean[r] : MG_T(0), rs = valid ? rstd[r] : MG_T(0);
    MG_T a = MG_T(0), c = MG_T(0);
    if (valid) {
        for (int j = G::lane(); j < D; j += G::size()) {
            MG_T gw = has_w ? g[off + j] * w[j] : g[off + j];
            a += gw;
            c += gw * (x[off + j] - mu) * rs;
        }
    }
    a = G::sum(a, sh) / MG_T(D);
    c = G::sum(c, sh) / MG_T(D);
    if (!valid) return;
    for (int j = G::lane(); j < D; j += G::size()) {
        MG_T gw = has_w ? g[off + j] * w[j] : g[off + j];
        MG_T xh = (x[off + j] - mu) * rs;
        dx[off + j] = rs * (gw - a - xh * c);
    }
}

extern "C" __global__ void ln_fwd_warp(const MG_T* x, const MG_T* w, const MG_T* b, MG_T* y, MG_T* mean, MG_T* rstd,
                                       int R, int D, MG_T eps, int has_w, int has_b) {
    ln_fwd<true>(x, w, b, y, mean, rstd, R, D, eps, has_w, has_b); }
extern "C" __global__ void ln_fwd_block(const MG_T* x, const MG_T* w, const MG_T* b, MG_T* y, MG_T* mean, MG_T* rstd,
                                        int R, int D, MG_T eps, int has_w, int has_b) {
    ln_fwd<false>(x, w, b, y, mean, rstd, R, D, eps, has_w, has_b); }
extern "C" __global__ void ln_bwd_warp(const MG_T* g, const MG_T* x, const MG_T* w, const MG_T* mean,
                                       const MG_T* rstd, MG_T* dx, int R, int D, int has_w) {
    ln_bwd<true>(g, x, w, mean, rstd, dx, R, D, has_w); }
extern "C" __global__ void ln_bwd_block(const MG_T* g, const MG_T* x, const MG_T* w, const MG_T* mean,
                                        const MG_T* rstd, MG_T* dx, int R, int D, int has_w) {
    ln_bwd<false>(g, x, w, mean, rstd, dx, R, D, has_w); }

// Per-chunk column sums for dw / db: dwp[c, j] = sum_{rows r of chunk c} g[r, j] xhat[r, j], dbp likewise of g.
extern "C" __global__ void ln_bwd_wb(const MG_T* __restrict__ g, const MG_T* __restrict__ x,
                                     const MG_T* __restrict__ mean, const MG_T* __restrict__ rstd,
                                     MG_T* __restrict__ dwp, MG_T* __restrict__ dbp, int R, int D, int chunk_rows) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    int c = blockIdx.y;
    if (j >= D) return;
    int r0 = c * chunk_rows, r1 = min(R, r0 + chunk_rows);
    MG_T sw = MG_T(0), sb = MG_T(0);
    for (int r = r0; r < r1; ++r) {
        long long o = (long long)r * D + j;
        MG_T gv = g[o];
        sw += gv * (x[o] - mean[r]) * rstd[r];
        sb += gv;
    }
    dwp[(long long)c * D + j] = sw;
    dbp[(long long)c * D + j] = sb;
}
"""

declare_source("gpu_norm", SOURCE, [("-DMG_T=float",), ("-DMG_T=double",)])


def _launch(cp, name, R, D, dtype, args):
    mod = compile_module(cp, "gpu_norm", SOURCE, dtype)
    if D <= WARP_MAX_D:
        mod.get_function(name + "_warp")(((R + _ROWS_PER_BLOCK - 1) // _ROWS_PER_BLOCK,), (32 * _ROWS_PER_BLOCK,),
                                         args)
    else:
        mod.get_function(name + "_block")((R,), (_BLOCK,), args)


def _ln_req(x, *rest):
    return is_float_dev(x, *[a for a in rest if hasattr(a, "dtype")]) and x.ndim >= 1 and x.size < 2 ** 31


@register_gpu("layer_norm_forward", requires=_ln_req)
def layer_norm_forward(x, weight, bias, eps, D=None):
    """Returns (y [x.shape], mean [R], rstd [R]) as ``cpu_norm.layer_norm_forward``."""
    cp = cupy_of(x)
    if D is None:
        D = weight.size if weight is not None else x.shape[-1]
    x = contiguous(cp, x)
    dt = x.dtype
    x2 = x.reshape(-1, D)
    R = x2.shape[0]
    w = contiguous(cp, weight, dt).reshape(-1) if weight is not None else x2
    b = contiguous(cp, bias, dt).reshape(-1) if bias is not None else x2
    y = cp.empty_like(x2)
    mean = cp.empty(R, dt)
    rstd = cp.empty(R, dt)
    if R and D:
        _launch(cp, "ln_fwd", R, D, dt, (x2, w, b, y, mean, rstd, i32(R), i32(D), scalar(dt, eps),
                                         i32(weight is not None), i32(bias is not None)))
    return y.reshape(x.shape), mean, rstd


@register_gpu("layer_norm_backward", requires=_ln_req)
def layer_norm_backward(g, x, weight, mean, rstd):
    """Returns (dx, dweight or None, dbias or None) as ``cpu_norm.layer_norm_backward``."""
    cp = cupy_of(x)
    R = mean.shape[0]
    x = contiguous(cp, x)
    dt = x.dtype
    x2 = x.reshape(R, -1)
    D = x2.shape[1]
    g2 = contiguous(cp, g, dt).reshape(R, D)
    mean = contiguous(cp, mean, dt).reshape(-1)
    rstd = contiguous(cp, rstd, dt).reshape(-1)
    w = contiguous(cp, weight, dt).reshape(-1) if weight is not None else x2
    dx = cp.empty_like(x2)
    if R and D:
        _launch(cp, "ln_bwd", R, D, dt, (g2, x2, w, mean, rstd, dx, i32(R), i32(D), i32(weight is not None)))
    if weight is None:
        return dx.reshape(x.shape), None, None
    nch = max(1, (R + _CHUNK_ROWS - 1) // _CHUNK_ROWS)
    dwp = cp.zeros((nch, D), dt)
    dbp = cp.zeros((nch, D), dt)
    if R and D:
        mod = compile_module(cp, "gpu_norm", SOURCE, dt)
        mod.get_function("ln_bwd_wb")(((D + _COLS - 1) // _COLS, nch), (_COLS,),
                                      (g2, x2, mean, rstd, dwp, dbp, i32(R), i32(D), i32(_CHUNK_ROWS)))
    return dx.reshape(x.shape), dwp.sum(0), dbp.sum(0)
