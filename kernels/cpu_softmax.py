"""Fused softmax / log-softmax (over the last dim) and cross-entropy, forward and backward, in one pass per row.

Layout: the kernels see a C-contiguous (R, C) array (the wrapper reshapes the leading dims into R and
copies a non-contiguous input once). Row sums are accumulated in float64 for both dtypes.
Rows are split over the threads when the array is large (``_PAR_MIN`` elements).

Compiled WITHOUT fast-math re-association (``_FM``): with ``reassoc`` LLVM rewrites
(x - m) - log(s) into x - (m + log(s)), which loses ~1e-13 relative precision in float64 for large
logits (caught by the hand test). The exp in every element dominates the cost anyway.
"""
from __future__ import annotations

import math

import numpy as np
from ._common import c, is_float, jit, parallel_for
from .dispatch import register

_FM = {"contract", "nsz"}
_PAR_MIN = 1 << 17  # below ~128k elements one thread: a 2-thread split only pays for ms-long work on a busy machine


def _rows2d(x):
    x = c(x)
    C = x.shape[-1] if x.ndim else 1
    return x.reshape(-1, C)


def _float_nd(*arrays):
    return is_float(*arrays) and arrays[0].ndim >= 1


# ------------------------------------------------------------------ softmax / log_softmax
@jit(fastmath=_FM)
def _softmax_rows(x, y, log, r0, r1):
    C = x.shape[1]
    for r in range(r0, r1):
        m = -np.inf
        for j in range(C):
            if x[r, j] > m:
                m = x[r, j]
        if m == -np.inf:  # a row of all -inf: NumPy's reference gives NaN (exp(-inf - -inf))
            m = 0.0
        s = 0.0
        if log:
            for j in range(C):
                s += math.exp(x[r, j] - m)
            ls = math.log(s)
            for j in range(C):
                y[r, j] = (x[r, j] - m) - ls
        else:
            for j in range(C):
                e = math.exp(x[r, j] - m)
                y[r, j] = e
                s += e
            inv = 1.0 / s
            for j in range(C):
                y[r, j] = y[r, j] * inv




@jit(fastmath=_FM)
def _softmax_bwd_rows(y, g, dx, log, r0, r1):
    C = y.shape[1]
    for r in range(r0, r1):
        s = 0.0
        if log:  # dx = g - exp(y) * sum(g)
            for j in range(C):
                s += g[r, j]
            for j in range(C):
                dx[r, j] = g[r, j] - math.exp(y[r, j]) * s
        else:  # dx = y * (g - sum(g * y))
            for j in range(C):
                s += g[r, j] * y[r, j]
            for j in range(C):
                dx[r, j] = y[r, j] * (g[r, j] - s)




def _fwd(x, log):
    shape = x.shape
    x2 = _rows2d(x)
    y = np.empty_like(x2)
    R = x2.shape[0]
    parallel_for(_softmax_rows, R, x2, y, log, parallel=x2.size >= _PAR_MIN)
    return y.reshape(shape)


def _bwd(y, g, log):
    shape = y.shape
    y2, g2 = _rows2d(y), _rows2d(g)
    dx = np.empty_like(y2)
    R = y2.shape[0]
    parallel_for(_softmax_bwd_rows, R, y2, g2, dx, log, parallel=y2.size >= _PAR_MIN)
    return dx.reshape(shape)


# Measured (benchmarks/results/thresholds.md): the kernel wins on small arrays (NumPy's per-call overhead
# dominates: (1, 16) 6.9x, (4, 64) 1.7x, (16, 64) 1.2x) and LOSES on large ones ((64, 256) 0.45x,
# (2048, 65) 0.53x): Numba calls a scalar libm exp per element while NumPy 2.x uses a SIMD exp.
_SMALL_MAX = 2048


@register("softmax_forward", requires=_float_nd, worth=lambda x: x.size <= _SMALL_MAX)
def softmax_forward(x):
    """y = exp(x - max) / sum(exp(x - max)) over the LAST dim of ``x`` (any leading shape).

    Wired into: minigen/ops/activation.py ``Softmax.forward`` when ``dim == x.ndim - 1``.
    Measured (benchmarks/results/thresholds.md, float32): (1, 16) 6.9x, (4, 64) 1.7x, (16, 64) 1.2x faster, but
    (64, 256) 0.45x, (768, 64) 0.58x, (2048, 65) 0.53x (scalar libm exp vs NumPy's SIMD exp):
    'auto' uses it up to 2048 elements.
    """
    return _fwd(x, False)


@register("log_softmax_forward", requires=_float_nd, worth=lambda x: x.size <= _SMALL_MAX)
def log_softmax_forward(x):
    """y = x - max - log(sum(exp(x - max))) over the last dim.

    Wired into: minigen/ops/activation.py ``LogSoftmax.forward`` (dim == last). Same thresholds as softmax.
    """
    return _fwd(x, True)


@register("softmax_backward", requires=_float_nd, worth=lambda y, g: y.size <= _SMALL_MAX)
def softmax_backward(y, g):
    """dx = y * (g - sum(g * y, -1))   (y = softmax output, g = dL/dy), last dim.

    Wired into: ``Softmax.backward`` as the fast array path when not create_graph
    (``not grad_mode.STATE.enabled``): ``Tensor._make(softmax_backward(y.data, g.data))``.
    """
    return _bwd(y, g, False)


@register("log_softmax_backward", requires=_float_nd, worth=lambda y, g: y.size <= _SMALL_MAX)
def log_softmax_backward(y, g):
    """dx = g - exp(y) * sum(g, -1)   (y = log_softmax output), last dim.

    Wired into: ``LogSoftmax.backward`` fast path (not create_graph).
    """
    return _bwd(y, g, True)


# ------------------------------------------------------------------ cross-entropy
@jit(fastmath=_FM)
def _ce_rows(x, t, w, ignore_index, eps, loss, dx, wt, r0, r1):
    """Per row r: p = softmax(x_r); a_c = (1-eps) w_t [c == t] + eps/C w_c;
    loss_r = -sum_c a_c log p_c;  dloss_r/dx_rj = p_j sum_c a_c - a_j.   wt_r = w_t (0 if ignored)."""
    C = x.shape[1]
    for r in range(r0, r1):
        tr = t[r]
        if tr == ignore_index:
            loss[r] = 0.0
            wt[r] = 0.0
            for j in range(C):
                dx[r, j] = 0.0
            continue
        m = -np.inf
        for j in range(C):
            if x[r, j] > m:
                m = x[r, j]
        s = 0.0
        for j in range(C):
            s += math.exp(x[r, j] - m)
        ls = math.log(s)
        inv = 1.0 / s
        w_t = w[tr]
        asum = (1.0 - eps) * w_t
        lsum = -(1.0 - eps) * w_t * ((x[r, tr] - m) - ls)
        if eps != 0.0:
            ec = eps / C
            for j in range(C):
                asum += ec * w[j]
                lsum -= ec * w[j] * ((x[r, j] - m) - ls)
            for j in range(C):
                dx[r, j] = math.exp(x[r, j] - m) * inv * asum - ec * w[j]
        else:
            for j in range(C):
                dx[r, j] = math.exp(x[r, j] - m) * inv * asum
        dx[r, tr] -= (1.0 - eps) * w_t
        loss[r] = lsum
        wt[r] = w_t




def _ce_requires(logits, target, weight=None):
    return (is_float(logits, weight) and logits.ndim == 2 and target.ndim == 1
            and target.dtype.kind in "iu" and target.shape[0] == logits.shape[0])


@register("cross_entropy", requires=_ce_requires, worth=lambda x, t, w=None: x.size <= 16384)
def cross_entropy(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """Cross-entropy of logits (N, C) against integer class targets (N,), loss AND dlogits in one pass.

    With p = softmax(logits_i), w the class weights (ones if None), eps = label_smoothing and
    a_ic = (1 - eps) w_{t_i} [c == t_i] + eps/C w_c (PyTorch's definition):
        loss_i = -sum_c a_ic log p_ic                 (0 for rows with t_i == ignore_index)
        dloss_i/dlogits_ij = p_ij sum_c a_ic - a_ij
    reduction 'none' -> (loss (N,), dlogits (N, C));  'sum' -> (0-d sum, dlogits);
    'mean' -> (sum_i loss_i / sum_i w_{t_i}, dlogits / sum_i w_{t_i})  (non-ignored rows), as PyTorch.
    The returned dlogits is d(reduced loss)/dlogits for an upstream gradient of 1 (for 'none': row i
    is dloss_i/dlogits_i), so the op's backward is ``g * dlogits`` ('none': ``g[:, None] * dlogits``).
    Targets must lie in [0, C) (the op validates them and raises IndexOutOfRangeError first).

    Wired into: minigen/ops/loss.py ``CrossEntropy`` (forward computes both; backward multiplies) for
    (N, C) logits with class-index targets (higher-rank (N, C, d...) inputs: move C last and flatten).
    Measured (benchmarks/results/thresholds.md, float32, loss+grad against log_softmax + gather + grad in NumPy):
    (4, 8) 2.3x, (16, 65) 1.5x, (128, 10) 1.5x, (2048, 65) 0.73x: 'auto' uses it up to 16384 elements.
    """
    x = c(logits)
    t = c(target.astype(np.int64, copy=False))
    N, C = x.shape
    w = np.ones(C, x.dtype) if weight is None else c(weight.astype(x.dtype, copy=False))
    loss = np.empty(N, x.dtype)
    wt = np.empty(N, x.dtype)
    dx = np.empty_like(x)
    parallel_for(_ce_rows, N, x, t, w, int(ignore_index), float(label_smoothing), loss, dx, wt,
                 parallel=x.size >= _PAR_MIN)
    if reduction == "none":
        return loss, dx
    if reduction == "sum":
        return np.asarray(loss.sum(dtype=np.float64), x.dtype), dx
    den = wt.sum(dtype=np.float64)
    tot = loss.sum(dtype=np.float64)
    out = np.asarray(tot / den if den != 0 else np.nan, x.dtype)
    if den != 0:
        dx *= x.dtype.type(1.0 / den)
    else:
        dx[...] = np.nan
    return out, dx
