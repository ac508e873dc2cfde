"""Fused optimizer updates: Adam / AdamW (amsgrad optional) and SGD (momentum, nesterov, weight decay).

Each call updates a *list* of parameters in place, with their gradients and state arrays, in one pass
per parameter over (param, grad, state) — instead of the 8-12 NumPy temporaries the reference update
makes. Formulas exactly as torch.optim (bias correction included). Parameters must be float32/float64
NumPy arrays; a non-contiguous parameter is updated through a contiguous copy written back.
Large parameters are split over the threads (memory-bound loop; 2 threads give ~1.5x at 1M elements).
"""
from __future__ import annotations

import math

import numpy as np
from ._common import FLOATS, jit, parallel_for
from .dispatch import register

_PAR_MIN = 1 << 18  # elements per parameter tensor


# Branch-free, vectorisable loops: the flags become loop-invariant factors (sgn = -1 for maximize,
# wdc = weight decay added to the gradient (Adam), pf = 1 - lr wd applied to the parameter (AdamW)),
# amsgrad / momentum variants are separate loops, and the indices are unsigned (no wraparound test).
# Measured in float32 against the NumPy update of minigen/optim: see adam_step's docstring.
_U = np.uint64


@jit
def _adam_range(p, g, m, v, step, b1, b2, eps, bc2s, sgn, wdc, pf, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        pi = p[i] * pf
        gi = sgn * g[i] + wdc * pi
        mi = b1 * m[i] + (1.0 - b1) * gi
        vi = b2 * v[i] + (1.0 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = pi - step * mi / (math.sqrt(vi) / bc2s + eps)


@jit
def _adam_ams_range(p, g, m, v, vmax, step, b1, b2, eps, bc2s, sgn, wdc, pf, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        pi = p[i] * pf
        gi = sgn * g[i] + wdc * pi
        mi = b1 * m[i] + (1.0 - b1) * gi
        vi = b2 * v[i] + (1.0 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        vm = max(vmax[i], vi)
        vmax[i] = vm
        p[i] = pi - step * mi / (math.sqrt(vm) / bc2s + eps)


@jit
def _sgd_range(p, g, lr, sgn, wd, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        p[i] = p[i] - lr * (sgn * g[i] + wd * p[i])


@jit
def _sgd_mom_range(p, g, buf, lr, sgn, wd, bm, dm, nf, bf, i0, i1):
    """b <- bm b + dm d;  p <- p - lr (nf d + bf b)   (first step: bm = 0, dm = 1)."""
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        d = sgn * g[i] + wd * p[i]
        b = bm * buf[i] + dm * d
        buf[i] = b
        p[i] = p[i] - lr * (nf * d + bf * b)


class _Flat:
    """A flat contiguous view of an array to update in place (or a copy written back on close)."""

    __slots__ = ("orig", "flat", "copied")

    def __init__(self, a, dtype=None):
        self.orig = a
        self.copied = not a.flags.c_contiguous or (dtype is not None and a.dtype != dtype)
        self.flat = (np.ascontiguousarray(a, dtype=dtype) if self.copied else a).reshape(-1)

    def close(self):
        if self.copied:
            self.orig[...] = self.flat.reshape(self.orig.shape)


def _ro(a, dtype):
    """Read-only input (a gradient): flat, contiguous, in the parameter's dtype."""
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def _opt_requires(params, *rest):
    return all(type(p) is np.ndarray and p.dtype in FLOATS for p in params)


def _opt_worth(params, *rest):
    """Measured (1 thread, float32): the fused loop wins from ~4K elements per tensor (Adam 1.5x at 16K,
    1.7x at 100K, 1.8x at 1M; SGD with momentum 1.1x, 1.4x, 1.3x); on 1000-element tensors its per-tensor
    call overhead makes it even (Adam) or slower (SGD 0.7x)."""
    return sum(p.size for p in params) >= 4096 * max(len(params), 1)


@register("adam_step", requires=_opt_requires, worth=_opt_worth, reference="minigen.optim.adam:Adam._update")
def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs=None, steps=1, *, lr=1e-3, beta1=0.9,
              beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False, maximize=False):
    """One Adam (``decoupled=False``) or AdamW (``decoupled=True``) step, in place, for every parameter.

    Per element, at step t (``steps``: an int, or one int per parameter, counted from 1):
        g <- -g if maximize;   Adam: g <- g + wd p;   AdamW: p <- p (1 - lr wd)
        m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2;   amsgrad: vmax <- max(vmax, v), use vmax
        p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)        (torch.optim.Adam's form)
    params / exp_avgs / exp_avg_sqs / max_exp_avg_sqs: lists of arrays updated in place (state arrays
    shaped like their parameter); grads: list of arrays (None entries are skipped, as torch skips
    parameters without .grad).
    Wired into: minigen/optim Adam.step / AdamW.step (arrays of p.array, p.grad.array and the state).
    Measured (1 thread, CPU time, float32, against minigen/optim's NumPy update): 1000 elements 1.0x,
    16K x 21 tensors 1.5x, 100K 1.7x, 1M 1.8x (memory-bound: 28 bytes per element); 'auto' uses it from
    4096 elements per tensor on average (:func:`_opt_worth`). (The first version, with per-element
    branches and signed indices, was not vectorised and ran at 0.2x of NumPy.)
    """
    n = len(params)
    if isinstance(steps, (int, np.integer)):
        steps = [int(steps)] * n
    b1, b2 = float(beta1), float(beta2)
    lr, wd = float(lr), float(weight_decay)
    sgn = -1.0 if maximize else 1.0
    wdc, pf = (0.0, 1.0 - lr * wd) if decoupled else (wd, 1.0)
    for i in range(n):
        g = grads[i]
        if g is None:
            continue
        P = _Flat(params[i])
        dt = P.flat.dtype
        gf = _ro(g, dt)
        M = _Flat(exp_avgs[i], dt)
        V = _Flat(exp_avg_sqs[i], dt)
        t = steps[i]
        step = lr / (1.0 - b1 ** t)
        bc2s = math.sqrt(1.0 - b2 ** t)
        par = P.flat.size >= _PAR_MIN
        if amsgrad:
            VM = _Flat(max_exp_avg_sqs[i], dt)
            parallel_for(_adam_ams_range, P.flat.size, P.flat, gf, M.flat, V.flat, VM.flat, step, b1, b2,
                         float(eps), bc2s, sgn, wdc, pf, parallel=par)
            VM.close()
        else:
            parallel_for(_adam_range, P.flat.size, P.flat, gf, M.flat, V.flat, step, b1, b2, float(eps), bc2s,
                         sgn, wdc, pf, parallel=par)
        for f in (P, M, V):
            f.close()


@register("sgd_step", requires=_opt_requires, worth=_opt_worth, reference="minigen.optim.sgd:SGD._update")
def sgd_step(params, grads, momentum_buffers=None, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, maximize=False, first_step=None):
    """One SGD step in place, torch.optim.SGD's formula, for every parameter:

        d = -g if maximize else g;   d <- d + wd p
        momentum != 0:  b <- d on the first step (buffer empty), else b <- momentum b + (1 - dampening) d;
                        d <- d + momentum b (nesterov)  or  d <- b
        p <- p - lr d
    momentum_buffers: list of arrays shaped like the params (updated in place), or None when momentum = 0.
    first_step: list of bools (True where the buffer is still empty: torch initialises it to a copy of d),
    or one bool for all. grads entries that are None are skipped.
    Wired into: minigen/optim SGD.step. Measured (momentum 0.9, float32): 1000 elements 0.7x, 16K x 21
    tensors 1.1x, 100K 1.4x, 1M 1.3x of the NumPy update; 'auto' uses it from 4096 elements per tensor.
    """
    n = len(params)
    use_buf = momentum != 0.0
    if first_step is None or isinstance(first_step, bool):
        first_step = [bool(first_step)] * n
    sgn = -1.0 if maximize else 1.0
    mom = float(momentum)
    nf, bf = (1.0, mom) if nesterov else (0.0, 1.0)
    for i in range(n):
        g = grads[i]
        if g is None:
            continue
        P = _Flat(params[i])
        dt = P.flat.dtype
        gf = _ro(g, dt)
        par = P.flat.size >= _PAR_MIN
        if use_buf:
            B = _Flat(momentum_buffers[i], dt)
            if first_step[i]:  # torch: the buffer starts as a copy of d
                B.flat[...] = 0
            bm, dm = (0.0, 1.0) if first_step[i] else (mom, 1.0 - float(dampening))
            parallel_for(_sgd_mom_range, P.flat.size, P.flat, gf, B.flat, float(lr), sgn, float(weight_decay), bm,
                         dm, nf, bf, parallel=par)
            B.close()
        else:
            parallel_for(_sgd_range, P.flat.size, P.flat, gf, float(lr), sgn, float(weight_decay), parallel=par)
        P.close()
