"""Fused softmax / log-softmax (over the last dim) and cross-entropy, forward and backward, in one pass per row.

Layout: the kernels see a C-contiguous (R, C) array (the wrapper reshapes the leading dims into R and
copies a non-contiguous input once). Row sums are accumulated in float64 for both dtypes.
Rows are split over the threads when the array is large (``_PAR_MIN`` elements).

The loop that writes (x - m) - log(s) is compiled WITHOUT fast-math re-association (``_FM``): with
``reassoc`` LLVM rewrites it into x - (m + log(s)), which loses ~1e-13 relative precision in float64 for
large logits (caught by the hand test). Sums and maxima may be re-associated (so they vectorise), and
the exp is kernels/_math.exp (vectorisable), so every row loop runs 4 doubles per instruction.
"""
from __future__ import annotations

import math

import numpy as np
from . import _math
from ._common import c, is_float, jit, parallel_for, row_max
from .dispatch import register

_FM = {"contract", "nsz"}
_PAR_MIN = 1 << 17  # below ~128k elements one thread: a 2-thread split only pays for ms-long work on a busy machine


def _rows2d(x):
    x = c(x)
    C = x.shape[-1] if x.ndim else 1
    return x.reshape(-1, C)


def _float_nd(*arrays):
    return is_float(*arrays) and arrays[0].ndim >= 1


# ------------------------------------------------------------------ row helpers
# Each helper is one loop over a row with unsigned indices; the exp is kernels/_math.exp, so LLVM
# vectorises them (4 doubles per AVX2 instruction). Sums and the max may be re-associated (FASTMATH:
# only their rounding order changes); the one expression that must not be, (x - m) - log(s), has its
# own loop compiled without ``reassoc`` (``_FM``).
_U = np.uint64


@jit
def _row_max(x):
    m = np.float64(row_max(x))
    return m if m != -np.inf else 0.0  # a row of all -inf: exp(-inf - 0) = 0, sum 0 -> NaN as the reference


@jit
def _row_sumexp(x, m):
    s = 0.0
    for j in range(_U(x.size)):
        s += _math.exp(np.float64(x[j]) - m)
    return s


@jit
def _row_exp_into(x, m, y):
    """y = exp(x - m); returns sum(y) (float64)."""
    s = 0.0
    for j in range(_U(x.size)):
        e = _math.exp(np.float64(x[j]) - m)
        y[j] = e
        s += e
    return s


@jit
def _row_scale(y, a):
    for j in range(_U(y.size)):
        y[j] = y[j] * a


@jit(fastmath=_FM)
def _row_log_out(x, m, ls, y):
    for j in range(_U(x.size)):
        y[j] = (np.float64(x[j]) - m) - ls


@jit
def _row_sum(g):
    s = 0.0
    for j in range(_U(g.size)):
        s += g[j]
    return s


@jit
def _row_dot(g, y):
    s = 0.0
    for j in range(_U(g.size)):
        s += np.float64(g[j]) * y[j]
    return s


@jit
def _row_softmax_bwd(y, g, s, dx):
    for j in range(_U(y.size)):
        dx[j] = y[j] * (g[j] - s)


@jit
def _row_log_softmax_bwd(y, g, s, dx):
    for j in range(_U(y.size)):
        dx[j] = g[j] - _math.exp(np.float64(y[j])) * s


# ------------------------------------------------------------------ softmax / log_softmax
@jit
def _softmax_rows(x, y, log, r0, r1):
    for r in range(r0, r1):
        xr, yr = x[r], y[r]
        m = _row_max(xr)
        if log:
            _row_log_out(xr, m, math.log(_row_sumexp(xr, m)), yr)
        else:
            _row_scale(yr, 1.0 / _row_exp_into(xr, m, yr))


@jit
def _softmax_bwd_rows(y, g, dx, log, r0, r1):
    for r in range(r0, r1):
        yr, gr, dr = y[r], g[r], dx[r]
        if log:  # dx = g - exp(y) * sum(g)
            _row_log_softmax_bwd(yr, gr, _row_sum(gr), dr)
        else:  # dx = y * (g - sum(g * y))
            _row_softmax_bwd(yr, gr, _row_dot(gr, yr), dr)


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


# Measured (1 thread, CPU time, float32, against the NumPy reference formulas): softmax forward (1, 16) 1.6x,
# (64, 256) 1.4x, (768, 64) 1.4x, (3072, 64) 1.5x, (64, 1000) 1.1x, (2048, 65) 1.3x; backward 1.0-2.5x;
# cross-entropy loss+grad (4, 8) 2.0x, (64, 256) 1.9x, (3072, 64) 2.2x, (2048, 65) 1.8x. No size threshold.
# (With libm's scalar exp these kernels lost to NumPy's SIMD exp beyond ~2048 elements.)


@register("softmax_forward", requires=_float_nd, reference="minigen.ops.activation:Softmax.forward")
def softmax_forward(x):
    """y = exp(x - max) / sum(exp(x - max)) over the LAST dim of ``x`` (any leading shape).

    Used by minigen/ops/activation.py ``Softmax.forward`` when ``dim == x.ndim - 1``. Speed: see above.
    """
    return _fwd(x, False)


@register("log_softmax_forward", requires=_float_nd, reference="minigen.ops.activation:LogSoftmax.forward")
def log_softmax_forward(x):
    """y = x - max - log(sum(exp(x - max))) over the last dim.

    Used by minigen/ops/activation.py ``LogSoftmax.forward`` (dim == last).
    """
    return _fwd(x, True)


@register("softmax_backward", requires=_float_nd, reference="minigen.ops.activation:Softmax.backward")
def softmax_backward(y, g):
    """dx = y * (g - sum(g * y, -1))   (y = softmax output, g = dL/dy), last dim.

    Used by ``Softmax.fast_backward`` (the engine calls it for a first-order backward).
    """
    return _bwd(y, g, False)


@register("log_softmax_backward", requires=_float_nd, reference="minigen.ops.activation:LogSoftmax.backward")
def log_softmax_backward(y, g):
    """dx = g - exp(y) * sum(g, -1)   (y = log_softmax output), last dim.

    Used by ``LogSoftmax.fast_backward`` (first-order backward).
    """
    return _bwd(y, g, True)


# ------------------------------------------------------------------ cross-entropy
@jit
def _row_ce_smooth(x, m, ls, w, ec, dx):
    """Label smoothing: dx -= ec * w;  returns (sum_c w_c, sum_c w_c log p_c)."""
    ws = 0.0
    wl = 0.0
    for j in range(_U(x.size)):
        wj = np.float64(w[j])
        ws += wj
        wl += wj * ((np.float64(x[j]) - m) - ls)
        dx[j] = dx[j] - ec * wj
    return ws, wl


@jit
def _ce_rows(x, t, w, ignore_index, eps, loss, dx, wt, r0, r1):
    """Per row r: p = softmax(x_r); a_c = (1-eps) w_t [c == t] + eps/C w_c;
    loss_r = -sum_c a_c log p_c;  dloss_r/dx_rj = p_j sum_c a_c - a_j.   wt_r = w_t (0 if ignored)."""
    C = x.shape[1]
    for r in range(r0, r1):
        tr = t[r]
        xr, dr = x[r], dx[r]
        if tr == ignore_index:
            loss[r] = 0.0
            wt[r] = 0.0
            dr[:] = 0.0
            continue
        m = _row_max(xr)
        s = _row_exp_into(xr, m, dr)  # dr = exp(x - m), scaled to the gradient below (one exp per element)
        ls = math.log(s)
        w_t = np.float64(w[tr])
        lp_t = (np.float64(xr[tr]) - m) - ls
        if eps != 0.0:
            ec = eps / C
            # sum_c a_c = (1 - eps) w_t + ec sum_c w_c: the softmax part needs the weight sum first
            ws = 0.0
            for j in range(C):
                ws += w[j]
            _row_scale(dr, ((1.0 - eps) * w_t + ec * ws) / s)
            ws, wl = _row_ce_smooth(xr, m, ls, w, ec, dr)
            loss[r] = -(1.0 - eps) * w_t * lp_t - ec * wl
        else:
            _row_scale(dr, w_t / s)
            loss[r] = -w_t * lp_t
        dr[tr] -= (1.0 - eps) * w_t
        wt[r] = w_t


def _ce_requires(logits, target, weight=None):
    return (is_float(logits, weight) and logits.ndim == 2 and target.ndim == 1
            and target.dtype.kind in "iu" and target.shape[0] == logits.shape[0])


@register("cross_entropy", requires=_ce_requires, reference="minigen.ops.loss:CrossEntropy")
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

    Used by minigen/ops/loss.py ``CrossEntropy`` (forward computes both; fast_backward multiplies) for
    (N, C) logits with class-index targets (higher-rank (N, C, d...) inputs: move C last and flatten).
    Speed: see the comment above ``softmax_forward`` (one exp per element, vectorised).
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
    else:  # every target ignored: the loss is 0/0 = NaN, the gradient 0 (no row takes part), as PyTorch
        dx[...] = 0
    return out, dx
