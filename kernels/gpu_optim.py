"""GPU (CuPy) fused optimizer steps: Adam / AdamW (amsgrad optional) and SGD, multi-tensor.

Same names, arguments and in-place results as :mod:`minigen.kernels.cpu_optim` (torch.optim's formulas):

    Adam(W):  g <- -g if maximize;  Adam: g <- g + wd p;  AdamW: p <- p (1 - lr wd)
              m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  amsgrad: vmax <- max(vmax, v), use vmax
              p <- p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    SGD:      d = g (+ wd p);  momentum: b <- d (first step) or mom b + (1 - damp) d;  d <- d + mom b
              (nesterov) or b;  p <- p - lr d

ONE kernel launch updates every parameter of a group ("multi-tensor apply"): the host builds small
tables — the device addresses of each parameter / gradient / state array, their sizes, and a list of
(tensor, start) chunks of ``CHUNK`` elements — and each CUDA block updates one chunk. The per-element
arithmetic is done in double precision (the loop is memory-bound; this matches the CPU kernel, which
computes in float64) and rounded to the parameter dtype once. Parameters must be C-contiguous device
arrays (always true for minigen Parameters); anything else takes the reference path.
"""
from __future__ import annotations

import math

import numpy as np

from .gpu_common import compile_module, contiguous, cupy_of, declare_source, i32, is_device_array, register_gpu

CHUNK = 65536
_BLOCK = 256

SOURCE = r"""
typedef unsigned long long ptr_t;

extern "C" __global__ void adam_multi(const ptr_t* P, const ptr_t* G, const ptr_t* M, const ptr_t* V, const ptr_t* VM,
                                      const long long* sizes, const int* chunk_tensor, const long long* chunk_start,
                                      const double* coef, double lr, double b1, double b2, double eps, double wd,
                                      int amsgrad, int decoupled, int maximize, int chunk) {
    int c = blockIdx.x;
    int ti = chunk_tensor[c];
    long long n = sizes[ti], s = chunk_start[c];
    long long e = s + chunk < n ? s + chunk : n;
    MG_T* p = (MG_T*)P[ti];
    const MG_T* g = (const MG_T*)G[ti];
    MG_T* m = (MG_T*)M[ti];
    MG_T* v = (MG_T*)V[ti];
    MG_T* vm = amsgrad ? (MG_T*)VM[ti] : (MG_T*)0;
    double step_size = coef[2 * ti], bc2s = coef[2 * ti + 1];
    for (long long i = s + threadIdx.x; i < e; i += blockDim.x) {
        double gi = maximize ? -(double)g[i] : (double)g[i];
        double pi = (double)p[i];
        if (wd != 0.0) {
            if (decoupled) pi = pi * (1.0 - lr * wd);
            else gi = gi + wd * pi;
        }
        double mi = b1 * (double)m[i] + (1.0 - b1) * gi;
        double vi = b2 * (double)v[i] + (1.0 - b2) * gi * gi;
        m[i] = (MG_T)mi;
        v[i] = (MG_T)vi;
        if (amsgrad) {
            if (vi > (double)vm[i]) vm[i] = (MG_T)vi;
            vi = (double)vm[i];
        }
        p[i] = (MG_T)(pi - step_size * mi / (sqrt(vi) / bc2s + eps));
    }
}

extern "C" __global__ void sgd_multi(const ptr_t* P, const ptr_t* G, const ptr_t* B, const long long* sizes,
                                     const int* first, const int* chunk_tensor, const long long* chunk_start,
                                     double lr, double mom, double damp, double wd, int nesterov, int maximize,
                                     int use_buf, int chunk) {
    int c = blockIdx.x;
    int ti = chunk_tensor[c];
    long long n = sizes[ti], s = chunk_start[c];
    long long e = s + chunk < n ? s + chunk : n;
    MG_T* p = (MG_T*)P[ti];
    const MG_T* g = (const MG_T*)G[ti];
    MG_T* buf = use_buf ? (MG_T*)B[ti] : (MG_T*)0;
    int init = first[ti];
    for (long long i = s + threadIdx.x; i < e; i += blockDim.x) {
        double d = maximize ? -(double)g[i] : (double)g[i];
        if (wd != 0.0) d = d + wd * (double)p[i];
        if (use_buf) {
            double b = init ? d : mom * (double)buf[i] + (1.0 - damp) * d;
            buf[i] = (MG_T)b;
            d = nesterov ? d + mom * b : b;
        }
        p[i] = (MG_T)((double)p[i] - lr * d);
    }
}
"""

declare_source("gpu_optim", SOURCE, [("-DMG_T=float",), ("-DMG_T=double",)])


def _ptrs(cp, arrays):
    return cp.asarray(np.array([a.data.ptr for a in arrays], dtype=np.uint64))


def _chunks(cp, sizes):
    ct, cs = [], []
    for ti, n in enumerate(sizes):
        for s in range(0, n, CHUNK):
            ct.append(ti)
            cs.append(s)
    return len(ct), cp.asarray(np.array(ct, np.int32)), cp.asarray(np.array(cs, np.int64))


def _groups(params, grads):
    """Indices of the parameters to update (gradient present, non-empty), grouped by dtype."""
    groups = {}
    for i, (p, g) in enumerate(zip(params, grads)):
        if g is None or p.size == 0:
            continue
        groups.setdefault(p.dtype, []).append(i)
    return groups


def _opt_req(params, *rest):
    return all(is_device_array(p) and p.dtype in (np.float32, np.float64) and p.flags.c_contiguous for p in params)


@register_gpu("adam_step", requires=_opt_req)
def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs=None, steps=1, *, lr=1e-3, beta1=0.9,
              beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False, maximize=False):
    """One Adam / AdamW step in place for every parameter (one launch per dtype group)."""
    n = len(params)
    if isinstance(steps, (int, np.integer)):
        steps = [int(steps)] * n
    b1, b2 = float(beta1), float(beta2)
    for dt, idx in _groups(params, grads).items():
        cp = cupy_of(params[idx[0]])
        gs = [contiguous(cp, grads[i], dt) for i in idx]
        for i in idx:
            for name, st in (("exp_avg", exp_avgs[i]), ("exp_avg_sq", exp_avg_sqs[i])) + (
                    (("max_exp_avg_sq", max_exp_avg_sqs[i]),) if amsgrad else ()):
                if st.dtype != dt or not st.flags.c_contiguous or st.shape != params[i].shape:
                    raise ValueError(f"adam_step: state {name} must be a contiguous {dt} array shaped like its "
                                     f"parameter {params[i].shape}, got {st.dtype} {st.shape}")
        coef = np.empty(2 * len(idx), np.float64)
        for k, i in enumerate(idx):
            t = steps[i]
            coef[2 * k] = float(lr) / (1.0 - b1 ** t)
            coef[2 * k + 1] = math.sqrt(1.0 - b2 ** t)
        sizes = [params[i].size for i in idx]
        nch, ct, cs = _chunks(cp, sizes)
        P = _ptrs(cp, [params[i] for i in idx])
        G = _ptrs(cp, gs)
        M = _ptrs(cp, [exp_avgs[i] for i in idx])
        V = _ptrs(cp, [exp_avg_sqs[i] for i in idx])
        VM = _ptrs(cp, [max_exp_avg_sqs[i] for i in idx]) if amsgrad else P
        mod = compile_module(cp, "gpu_optim", SOURCE, dt)
        mod.get_function("adam_multi")((nch,), (_BLOCK,), (
            P, G, M, V, VM, cp.asarray(np.array(sizes, np.int64)), ct, cs, cp.asarray(coef), np.float64(lr),
            np.float64(b1), np.float64(b2), np.float64(eps), np.float64(weight_decay), i32(bool(amsgrad)),
            i32(bool(decoupled)), i32(bool(maximize)), i32(CHUNK)))
        del gs  # the contiguous gradient copies must outlive the launch (stream-ordered frees make this safe)


@register_gpu("sgd_step", requires=_opt_req)
def sgd_step(params, grads, momentum_buffers=None, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False, first_step=None):
    """One SGD step in place for every parameter (one launch per dtype group)."""
    n = len(params)
    use_buf = momentum != 0.0
    if first_step is None or isinstance(first_step, bool):
        first_step = [bool(first_step)] * n
    for dt, idx in _groups(params, grads).items():
        cp = cupy_of(params[idx[0]])
        gs = [contiguous(cp, grads[i], dt) for i in idx]
        sizes = [params[i].size for i in idx]
        nch, ct, cs = _chunks(cp, sizes)
        P = _ptrs(cp, [params[i] for i in idx])
        G = _ptrs(cp, gs)
        if use_buf:
            for i in idx:
                b = momentum_buffers[i]
                if b.dtype != dt or not b.flags.c_contiguous or b.shape != params[i].shape:
                    raise ValueError(f"sgd_step: momentum buffer must be a contiguous {dt} array shaped like its "
                                     f"parameter {params[i].shape}, got {b.dtype} {b.shape}")
        B = _ptrs(cp, [momentum_buffers[i] for i in idx]) if use_buf else P
        first = cp.asarray(np.array([int(bool(first_step[i])) for i in idx], np.int32))
        mod = compile_module(cp, "gpu_optim", SOURCE, dt)
        mod.get_function("sgd_multi")((nch,), (_BLOCK,), (
            P, G, B, cp.asarray(np.array(sizes, np.int64)), first, ct, cs, np.float64(lr), np.float64(momentum),
            np.float64(dampening), np.float64(weight_decay), i32(bool(nesterov)), i32(bool(maximize)),
            i32(use_buf), i32(CHUNK)))
        del gs
