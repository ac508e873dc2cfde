"""Layer norm and batch norm, forward and backward, one pass over the data per statistic.

layer_norm: x seen as (R, D) rows, normalised over the last D elements (``normalized_shape`` flattened).
batch_norm: x seen as (N, C, S) with S = H*W (NCHW) or S = 1 (NC); statistics per channel over N and S.
Means and variances are accumulated in float64 (two passes: mean, then sum of squared deviations, so
large offsets do not cancel). Saved statistics come back in the input dtype, as PyTorch's.
"""
from __future__ import annotations

import math

import numpy as np
from ._common import c, chunks, is_float, jit, parallel_for
from .dispatch import register

_PAR_MIN = 1 << 17  # elements; below it the thread hand-off costs more than it saves (measured on a busy 2-core box)


def _w_or(w, D, dt, fill):
    return np.full(D, fill, dt) if w is None else c(w.reshape(-1).astype(dt, copy=False))


# ------------------------------------------------------------------ layer norm
# Row loops split into helpers over few arrays with unsigned indices, so LLVM vectorises them (see the
# batch-norm comment below); sums in float64.
_U = np.uint64


@jit
def _row_sum(x):
    s = 0.0
    for j in range(_U(x.size)):
        s += x[j]
    return s


@jit
def _row_sq_dev(x, mu):
    v = 0.0
    for j in range(_U(x.size)):
        d = x[j] - mu
        v += d * d
    return v


@jit
def _ln_out(x, w, b, mu, rs, y):
    m = x.dtype.type(mu)
    r = x.dtype.type(rs)
    for j in range(_U(x.size)):
        y[j] = (x[j] - m) * r * w[j] + b[j]


@jit
def _ln_fwd_rows(x, w, b, eps, y, mean, rstd, r0, r1):
    D = x.shape[1]
    for r in range(r0, r1):
        xr = x[r]
        mu = _row_sum(xr) / D
        rs = 1.0 / math.sqrt(_row_sq_dev(xr, mu) / D + eps)
        _ln_out(xr, w, b, mu, rs, y[r])
        mean[r] = mu
        rstd[r] = rs


@jit
def _ln_bwd_sums(g, x, w, mu, rs, dw, db):
    """(sum_j g w, sum_j g w xhat) of a row; dw += g xhat, db += g.

    Everything per element is float64 (g w of two float32 values is exact in float64), and ``_ln_dx``
    recomputes g w and xhat the same way, so ``g w - mean(g w)`` cancels exactly where it should: with
    D = 1 the answer is exactly 0. (Before, in float32, LLVM's contraction turned ``g*w - a`` into an FMA
    of the exact product against a rounded ``a``: a residue of ~1 ulp of g w, amplified by
    rstd = 1/sqrt(eps) ~ 316 to dx ~ 5e-5.)
    """
    a = 0.0
    bb = 0.0
    for j in range(_U(x.size)):
        xh = (np.float64(x[j]) - mu) * rs
        gj = np.float64(g[j])
        gw = gj * np.float64(w[j])
        a += gw
        bb += gw * xh
        dw[j] += gj * xh
        db[j] += gj
    return a, bb


@jit(fastmath=False)
def _ln_dx(g, x, w, mu, rs, a, bb, dx):
    """dx_j = rs (g_j w_j - a - xhat_j bb), in float64 (see ``_ln_bwd_sums``), rounded once at the end.

    Compiled without fast-math: ``contract`` would fuse ``g_j w_j - a`` into one FMA, subtracting the
    rounded ``a`` from the *exact* product (a nonzero residue for D = 1 in float64). An elementwise loop
    vectorises without reassociation anyway.
    """
    for j in range(_U(x.size)):
        xh = (np.float64(x[j]) - mu) * rs
        dx[j] = rs * (np.float64(g[j]) * np.float64(w[j]) - a - xh * bb)


@jit
def _ln_bwd_rows(g, x, w, mean, rstd, dx, dw, db, r0, r1):
    """dw, db: this chunk's partial sums (1-d, accumulated into).

    The row mean is recomputed here in float64 rather than read from ``mean`` (saved in the input dtype):
    when var is near eps, rstd is large and ``x - mean`` of near-equal values is all cancellation, so a
    float32-rounded mean (relative error 6e-8) shows up as ~1e-4 relative error in dx.
    """
    D = x.shape[1]
    for r in range(r0, r1):
        mu = _row_sum(x[r]) / D
        rs = np.float64(rstd[r])
        a, bb = _ln_bwd_sums(g[r], x[r], w, mu, rs, dw, db)
        _ln_dx(g[r], x[r], w, mu, rs, a / D, bb / D, dx[r])


@jit
def _ln_bwd_chunk(g, x, w, mean, rstd, dx, dwp, dbp, nch, c0, c1):
    """Chunks c0..c1 of nch equal row ranges, each with its own partial dw/db row (no races)."""
    R = x.shape[0]
    for ci in range(c0, c1):
        _ln_bwd_rows(g, x, w, mean, rstd, dx, dwp[ci], dbp[ci], ci * R // nch, (ci + 1) * R // nch)


def _ln_requires(x, *rest):
    return is_float(x, *[a for a in rest if a is not None and hasattr(a, "dtype")]) and x.ndim >= 1


@register("layer_norm_forward", requires=_ln_requires, worth=None, reference="minigen.ops.norm:_AffineNorm.forward")
def layer_norm_forward(x, weight, bias, eps, D=None):
    """y = (x - mean) * rstd * weight + bias over the last D elements (D = weight.size, or x.shape[-1]).

    mean = sum(x)/D, var = sum((x - mean)^2)/D (biased), rstd = 1/sqrt(var + eps).
    Returns (y [x.shape], mean [R], rstd [R]) with R = x.size // D (save mean/rstd for backward).
    weight/bias may be None (elementwise_affine=False).
    Wired into: minigen/ops/norm.py ``LayerNorm`` forward (flatten normalized_shape into one D).
    Measured (benchmarks/results/thresholds.md, float32): (2, 16) 14x, (8, 64) 6.2x, (64, 128) 4.6x, (768, 128) 3.7x
    faster than the NumPy reference; no threshold.
    """
    if D is None:
        D = weight.size if weight is not None else x.shape[-1]
    shape = x.shape
    x2 = c(x).reshape(-1, D)
    R = x2.shape[0]
    dt = x2.dtype
    w = _w_or(weight, D, dt, 1.0)
    b = _w_or(bias, D, dt, 0.0)
    y = np.empty_like(x2)
    mean = np.empty(R, dt)
    rstd = np.empty(R, dt)
    parallel_for(_ln_fwd_rows, R, x2, w, b, float(eps), y, mean, rstd, parallel=x2.size >= _PAR_MIN)
    return y.reshape(shape), mean, rstd


@register("layer_norm_backward", requires=_ln_requires, worth=None,
          reference="minigen.ops.norm:_AffineNorm.backward")
def layer_norm_backward(g, x, weight, mean, rstd):
    """dx = rstd * (g w - mean_j(g w) - xhat * mean_j(g w xhat)),  xhat = (x - mean) * rstd;
    dweight = sum_rows(g * xhat), dbias = sum_rows(g).

    ``mean``/``rstd`` are the forward's saved (R,) statistics; D = mean-row length = x.size // R.
    Returns (dx [x.shape], dweight [D] or None when weight is None, dbias [D] or None likewise).
    Wired into: ``LayerNorm.fast_backward`` (first-order backwards). fwd+bwd speed: layer_norm rows of benchmarks/results/results.md.
    """
    R = mean.shape[0]
    shape = x.shape
    x2 = c(x).reshape(R, -1)
    g2 = c(g).reshape(R, -1)
    D = x2.shape[1]
    dt = x2.dtype
    w = _w_or(weight, D, dt, 1.0)
    mean = c(mean.reshape(-1))
    rstd = c(rstd.reshape(-1))
    dx = np.empty_like(x2)
    nch = chunks(R) if x2.size >= _PAR_MIN and R > 1 else 1
    dwp = np.zeros((nch, D), np.float64)
    dbp = np.zeros((nch, D), np.float64)
    parallel_for(_ln_bwd_chunk, nch, g2, x2, w, mean, rstd, dx, dwp, dbp, nch, parallel=nch > 1)
    if weight is None:
        return dx.reshape(shape), None, None
    return dx.reshape(shape), dwp.sum(0).astype(dt), dbp.sum(0).astype(dt)


# ------------------------------------------------------------------ batch norm
# Two layouts. (N, C, S) with S > 1 (images): one channel at a time, contiguous rows of S values.
# (N, C) (S = 1, BatchNorm1d): a channel's values are a strided column, so the loops run over rows and
# keep one running sum per channel (contiguous across channels: vectorises). Inner indices are unsigned
# so Numba drops its negative-index test and LLVM vectorises the loops (measured 3-10x on DCGAN shapes).
_U = np.uint64


@jit
def _bn_fwd_ch(x, w, b, eps, y, mean, var, rstd, c0, c1):
    N, _, S = x.shape
    M = N * S
    for ch in range(c0, c1):
        s = 0.0
        for n in range(N):
            row = x[n, ch]
            for j in range(_U(S)):
                s += row[j]
        mu = s / M
        v = 0.0
        for n in range(N):
            row = x[n, ch]
            for j in range(_U(S)):
                d = row[j] - mu
                v += d * d
        v /= M
        rs = 1.0 / math.sqrt(v + eps)
        # (x - mu) first, in the input dtype (as the reference): x*sc + (b - mu*sc) would cancel badly
        m = x.dtype.type(mu)
        sc = x.dtype.type(rs * w[ch])
        sh = x.dtype.type(b[ch])
        for n in range(N):
            row = x[n, ch]
            out = y[n, ch]
            for j in range(_U(S)):
                out[j] = (row[j] - m) * sc + sh
        mean[ch] = mu
        var[ch] = v
        rstd[ch] = rs


@jit
def _bn_fwd_cols(x, w, b, eps, y, mean, var, rstd, c0, c1):
    """x (N, C): channels c0..c1, row by row."""
    N = x.shape[0]
    K = _U(c1 - c0)
    s = np.zeros(c1 - c0)
    for n in range(N):
        row = x[n, c0:c1]
        for k in range(K):
            s[k] += row[k]
    mu = s / N
    v = np.zeros(c1 - c0)
    for n in range(N):
        row = x[n, c0:c1]
        for k in range(K):
            d = row[k] - mu[k]
            v[k] += d * d
    v /= N
    rs = 1.0 / np.sqrt(v + eps)
    m = mu.astype(x.dtype)
    sc = (rs * w[c0:c1]).astype(x.dtype)
    sh = b[c0:c1].astype(x.dtype)
    for n in range(N):
        row = x[n, c0:c1]
        out = y[n, c0:c1]
        for k in range(K):
            out[k] = (row[k] - m[k]) * sc[k] + sh[k]
    mean[c0:c1] = mu
    var[c0:c1] = v
    rstd[c0:c1] = rs


@jit
def _bn_bwd_ch(g, x, w, mean, rstd, dx, dw, db, c0, c1):
    N, _, S = x.shape
    M = N * S
    for ch in range(c0, c1):
        # the channel mean again, in float64 (not the saved one, rounded to the input dtype: see _ln_bwd_rows)
        s = 0.0
        for n in range(N):
            row = x[n, ch]
            for j in range(_U(S)):
                s += row[j]
        mu = s / M
        rs = np.float64(rstd[ch])
        sg = 0.0
        sgx = 0.0
        for n in range(N):
            gr = g[n, ch]
            xr = x[n, ch]
            for j in range(_U(S)):
                gv = gr[j]
                sg += gv
                sgx += gv * (xr[j] - mu)
        sgx *= rs  # sum g * xhat
        db[ch] = sg
        dw[ch] = sgx
        # dx = k (g - a - (x - mu) rs bb) = p (g - a) + q (x - mu), differences first (as the reference)
        # in float64, rounded once at the end: in the input dtype, x - mean of near-equal values (var ~ eps,
        # rstd large) would lose the digits that the large q multiplies
        k = np.float64(w[ch]) * rs
        bb = sgx / M
        a = sg / M
        q = -k * rs * bb
        for n in range(N):
            gr = g[n, ch]
            xr = x[n, ch]
            out = dx[n, ch]
            for j in range(_U(S)):
                out[j] = k * (np.float64(gr[j]) - a) + q * (np.float64(xr[j]) - mu)


@jit
def _bn_bwd_cols(g, x, w, mean, rstd, dx, dw, db, c0, c1):
    """g, x (N, C): channels c0..c1, row by row."""
    N = x.shape[0]
    K = _U(c1 - c0)
    mu = np.zeros(c1 - c0)  # the channel means again, in float64 (see _bn_bwd_ch)
    for n in range(N):
        row = x[n, c0:c1]
        for k in range(K):
            mu[k] += row[k]
    mu /= N
    sg = np.zeros(c1 - c0)
    sgx = np.zeros(c1 - c0)
    for n in range(N):
        gr = g[n, c0:c1]
        xr = x[n, c0:c1]
        for k in range(K):
            gv = gr[k]
            sg[k] += gv
            sgx[k] += gv * (xr[k] - mu[k])
    rs = rstd[c0:c1].astype(np.float64)
    sgx *= rs
    db[c0:c1] = sg
    dw[c0:c1] = sgx
    kk = w[c0:c1].astype(np.float64) * rs
    bb = sgx / N
    a = sg / N
    q = -kk * rs * bb
    for n in range(N):  # in float64, rounded once at the end (see _bn_bwd_ch)
        gr = g[n, c0:c1]
        xr = x[n, c0:c1]
        out = dx[n, c0:c1]
        for k in range(K):
            out[k] = kk[k] * (np.float64(gr[k]) - a[k]) + q[k] * (np.float64(xr[k]) - mu[k])


@jit
def _affine_ch(x, sc, sh, y, c0, c1):
    N, _, S = x.shape
    for ch in range(c0, c1):
        a = sc[ch]
        b = sh[ch]
        for n in range(N):
            row = x[n, ch]
            out = y[n, ch]
            for j in range(_U(S)):
                out[j] = row[j] * a + b


def _as_ncs(x):
    x = c(x)
    return x.reshape(x.shape[0], x.shape[1], -1)


def _bn_requires(x, *rest):
    return is_float(x, *[a for a in rest if a is not None and hasattr(a, "dtype")]) and x.ndim >= 2


def _par(x3):
    return x3.size >= _PAR_MIN


@register("batch_norm_forward", requires=_bn_requires, worth=None, reference="minigen.ops.norm:_AffineNorm.forward")
def batch_norm_forward(x, weight, bias, eps):
    """Training-mode batch norm with batch statistics, per channel (dim 1) over N and the spatial dims:

    mean_c = E[x], var_c = E[(x - mean_c)^2] (biased), rstd_c = 1/sqrt(var_c + eps),
    y = (x - mean_c) * rstd_c * weight_c + bias_c.
    Returns (y, mean [C], var [C] (biased: the op updates running_var with var * M/(M-1)), rstd [C]).
    x: (N, C) or (N, C, *spatial). weight/bias may be None (affine=False).
    Wired into: minigen/ops/norm.py ``BatchNorm`` forward, training mode (or no running stats).
    Measured (benchmarks/results/thresholds.md, float32): (4, 4, 4, 4) 13.6x, (8, 16, 8, 8) 5.0x,
    (64, 64, 14, 14) 3.2x, (64, 128, 7, 7) 0.98x against the NumPy reference; no threshold.
    """
    x3 = _as_ncs(x)
    C = x3.shape[1]
    dt = x3.dtype
    w = _w_or(weight, C, dt, 1.0)
    b = _w_or(bias, C, dt, 0.0)
    y = np.empty_like(x3)
    mean, var, rstd = np.empty(C, dt), np.empty(C, dt), np.empty(C, dt)
    if x3.shape[2] == 1:  # (N, C): row-wise loops over channel blocks
        parallel_for(_bn_fwd_cols, C, x3[:, :, 0], w, b, float(eps), y[:, :, 0], mean, var, rstd,
                     parallel=_par(x3), min_per_chunk=64)
    else:
        parallel_for(_bn_fwd_ch, C, x3, w, b, float(eps), y, mean, var, rstd, parallel=_par(x3))
    return y.reshape(x.shape), mean, var, rstd


@register("batch_norm_eval_forward", requires=_bn_requires, worth=None, reference="minigen.ops.norm:batch_norm")
def batch_norm_eval_forward(x, running_mean, running_var, weight, bias, eps):
    """Eval-mode batch norm: y = (x - running_mean_c) / sqrt(running_var_c + eps) * weight_c + bias_c,
    computed as one pass y = x * scale_c + shift_c.  (Backward is dx = g * scale_c: no kernel needed.)
    Not wired: eval-mode batch norm is built from ordinary ops (kept, with its contract and tests, for a future eval fast path).
    """
    x3 = _as_ncs(x)
    C = x3.shape[1]
    dt = x3.dtype
    w = _w_or(weight, C, np.float64, 1.0)
    b = _w_or(bias, C, np.float64, 0.0)
    sc = (w / np.sqrt(running_var.astype(np.float64) + eps)).astype(dt)
    sh = (b - running_mean.astype(np.float64) * sc).astype(dt)
    y = np.empty_like(x3)
    parallel_for(_affine_ch, C, x3, sc, sh, y, parallel=_par(x3))
    return y.reshape(x.shape)


@register("batch_norm_backward", requires=_bn_requires, worth=None,
          reference="minigen.ops.norm:_AffineNorm.backward")
def batch_norm_backward(g, x, weight, mean, rstd):
    """Training-mode batch-norm backward (batch statistics), per channel c over its M = N * S values:

    dx = weight_c * rstd_c * (g - mean(g) - xhat * mean(g * xhat)),  xhat = (x - mean_c) * rstd_c
    dweight_c = sum(g * xhat),  dbias_c = sum(g).
    Returns (dx, dweight [C] or None when weight is None, dbias [C] or None likewise).
    Wired into: ``BatchNorm.fast_backward`` (training mode, first-order backwards).
    Not benchmarked separately yet (same loop structure as the forward).
    """
    x3 = _as_ncs(x)
    g3 = _as_ncs(g)
    C = x3.shape[1]
    dt = x3.dtype
    w = _w_or(weight, C, dt, 1.0)
    dx = np.empty_like(x3)
    dw, db = np.empty(C, np.float64), np.empty(C, np.float64)
    mean = c(mean.reshape(-1))
    rstd = c(rstd.reshape(-1))
    if x3.shape[2] == 1:
        parallel_for(_bn_bwd_cols, C, g3[:, :, 0], x3[:, :, 0], w, mean, rstd, dx[:, :, 0], dw, db,
                     parallel=_par(x3), min_per_chunk=64)
    else:
        parallel_for(_bn_bwd_ch, C, g3, x3, w, mean, rstd, dx, dw, db, parallel=_par(x3))
    if weight is None:
        return dx.reshape(x.shape), None, None
    return dx.reshape(x.shape), dw.astype(dt), db.astype(dt)
