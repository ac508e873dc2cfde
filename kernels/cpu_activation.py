"""Pointwise activations (GELU exact/tanh, SiLU, ReLU/leaky ReLU) forward and backward, and dropout, in one pass.

Arrays are processed flat (C-contiguous copies of non-contiguous inputs); large arrays are cut into one
chunk per thread. The NumPy references make 4-8 temporaries per call; these make one output.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from . import _math
from ._common import c, is_float, jit, parallel_for
from .dispatch import register

_U = np.uint64

_PAR_MIN = 1 << 17  # elements (see cpu_norm)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715



# One loop per function and direction (no per-element switch on the kind), unsigned indices, and the
# vectorisable exp / tanh / normal CDF of kernels/_math.py instead of libm's scalar erf / tanh / exp:
# LLVM vectorises these loops. (The previous act_value(v, kind) loop with libm calls lost to NumPy's
# SIMD loops beyond ~256 elements; see the docstrings of the kernels below for the new measurements.)
@jit
def _gelu_fwd(x, y, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        v = np.float64(x[i])
        cdf, _ = _math.normal_cdf_pdf(v)
        y[i] = v * cdf


@jit
def _gelu_bwd(x, g, dx, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        v = np.float64(x[i])
        cdf, pdf = _math.normal_cdf_pdf(v)
        dx[i] = g[i] * (cdf + v * pdf)


@jit
def _gelu_fwd32(x, y, i0, i1):
    """float32 arrays: the ~1e-8-accurate normal CDF (twice as fast; float32 rounding dominates anyway)."""
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        v = np.float64(x[i])
        cdf, _ = _math.normal_cdf_pdf_f32acc(v)
        y[i] = v * cdf


@jit
def _gelu_fwd_grad32(x, y, d, i0, i1):
    """y = gelu(x) and d = gelu'(x) from one evaluation of the normal CDF and density (float32 arrays)."""
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        v = np.float64(x[i])
        cdf, pdf = _math.normal_cdf_pdf_f32acc(v)
        y[i] = v * cdf
        d[i] = cdf + v * pdf


@jit
def _gelu_fwd_grad(x, y, d, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        v = np.float64(x[i])
        cdf, pdf = _math.normal_cdf_pdf(v)
        y[i] = v * cdf
        d[i] = cdf + v * pdf


@jit
def _gelu_bwd32(x, g, dx, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        v = np.float64(x[i])
        cdf, pdf = _math.normal_cdf_pdf_f32acc(v)
        dx[i] = g[i] * (cdf + v * pdf)


@jit
def _gelu_tanh_fwd(x, y, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        v = np.float64(x[i])
        u = _SQRT_2_OVER_PI * (v + _GELU_C * v * v * v)
        y[i] = v * _math.sigmoid(2.0 * u)  # = v (1 + tanh u) / 2 without cancellation for u << 0


@jit
def _gelu_tanh_bwd(x, g, dx, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        v = np.float64(x[i])
        s = _math.sigmoid(2.0 * (_SQRT_2_OVER_PI * (v + _GELU_C * v * v * v)))  # (1 + t) / 2
        dx[i] = g[i] * (s + v * (2.0 * s * (1.0 - s)) * (_SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * v * v)))


@jit
def _silu_fwd(x, y, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        v = np.float64(x[i])
        y[i] = v * _math.sigmoid(v)


@jit
def _silu_bwd(x, g, dx, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        v = np.float64(x[i])
        s = _math.sigmoid(v)
        dx[i] = g[i] * (s * (1.0 + v * (1.0 - s)))



@jit
def _sigmoid_fwd(x, y, i0, i1):
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        y[i] = _math.sigmoid(np.float64(x[i]))


@jit
def _sigmoid_fwd32(x, y, i0, i1):
    """float32 arrays: e^{-x} to ~1e-8 relative (kernels/_math.exp_f32acc), below float32 rounding."""
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        y[i] = 1.0 / (1.0 + _math.exp_f32acc(-np.float64(x[i])))


@jit
def _sigmoid_bwd(y, g, dx, i0, i1):
    """From the forward's output y: dx = g y (1 - y)."""
    for k in range(_U(i1 - i0)):
        i = _U(i0) + k
        v = np.float64(y[i])
        dx[i] = np.float64(g[i]) * v * (1.0 - v)

# Element functions by kind code (ints keep one compiled specialisation per dtype), for loops that
# switch on the kind (the fused linear epilogue of cpu_matmul): 0 gelu, 1 gelu-tanh, 2 silu, 3 relu,
# -1 identity. Same formulas as the loops above.
GELU, GELU_TANH, SILU, RELU = 0, 1, 2, 3


@jit(inline="always")
def act_value(v, kind):
    """The activation of one value (float64 math)."""
    v = np.float64(v)
    if kind == 0:
        cdf, _ = _math.normal_cdf_pdf(v)
        return v * cdf
    if kind == 1:
        return v * _math.sigmoid(2.0 * (_SQRT_2_OVER_PI * (v + _GELU_C * v * v * v)))
    if kind == 2:
        return v * _math.sigmoid(v)
    if kind == 3:
        return v if v > 0 else 0.0
    return v


@jit(inline="always")
def act_grad(v, kind):
    """d act(v) / dv (relu'(0) = 0, as PyTorch)."""
    v = np.float64(v)
    if kind == 0:
        cdf, pdf = _math.normal_cdf_pdf(v)
        return cdf + v * pdf
    if kind == 1:
        s = _math.sigmoid(2.0 * (_SQRT_2_OVER_PI * (v + _GELU_C * v * v * v)))
        return s + v * (2.0 * s * (1.0 - s)) * (_SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * v * v))
    if kind == 2:
        s = _math.sigmoid(v)
        return s * (1.0 + v * (1.0 - s))
    if kind == 3:
        return 1.0 if v > 0 else 0.0
    return 1.0


_FWD = {"gelu": _gelu_fwd, "gelu_tanh": _gelu_tanh_fwd, "silu": _silu_fwd, "sigmoid": _sigmoid_fwd}
_BWD = {"gelu": _gelu_bwd, "gelu_tanh": _gelu_tanh_bwd, "silu": _silu_bwd}


def _flat(a):
    return c(a).reshape(-1)


_FWD32 = {"gelu": _gelu_fwd32, "sigmoid": _sigmoid_fwd32}
_BWD32 = {"gelu": _gelu_bwd32}


def act_forward(x, kind):
    """y = act(x) elementwise for a kind name ('gelu', 'gelu_tanh', 'silu', 'sigmoid')."""
    xf = _flat(x)
    y = np.empty_like(xf)
    fn = _FWD32.get(kind, _FWD[kind]) if xf.dtype == np.float32 else _FWD[kind]
    parallel_for(fn, xf.size, xf, y, parallel=xf.size >= _PAR_MIN)
    return y.reshape(x.shape)


def act_backward(x, g, kind):
    """dx = g * act'(x) elementwise."""
    xf = _flat(x)
    gf = _flat(g).astype(xf.dtype, copy=False)
    dx = np.empty_like(xf)
    fn = _BWD32.get(kind, _BWD[kind]) if xf.dtype == np.float32 else _BWD[kind]
    parallel_for(fn, xf.size, xf, gf, dx, parallel=xf.size >= _PAR_MIN)
    return dx.reshape(x.shape)


def _fl(*arrays):
    return is_float(*arrays)


# Measured (1 thread, CPU time, float32, against the NumPy reference formulas of minigen/ops/activation.py;
# the exact GELU reference calls a Numba ufunc over libm's erf): GELU exact forward 64: 2.0x, 512: 2.5x,
# 4096: 2.2x, 65536: 5.6x, 393216 (baby GPT's MLP): 5.7x; backward 2.7x .. 6.1x; SiLU forward 1.0-1.2x,
# backward 1.4-1.7x. No size threshold. (Before kernels/_math.py, the scalar libm loops lost to NumPy
# beyond ~256 elements: gelu-tanh 0.52x at 393216.)


@register("gelu_forward", requires=_fl, reference="minigen.ops.activation:GELU.forward")
def gelu_forward(x, approximate="none"):
    """GELU. exact ('none'): y = x * Phi(x), Phi the standard normal CDF (kernels/_math.normal_cdf_pdf,
    relative error < 5e-13 in both tails); 'tanh': y = x * sigmoid(2u) = x/2 (1 + tanh u),
    u = sqrt(2/pi) (x + 0.044715 x^3). Computed in float64, rounded once to x's dtype.

    Used by minigen/ops/activation.py ``GELU.forward``. Speed: see the comment above.
    """
    return act_forward(x, "gelu_tanh" if approximate == "tanh" else "gelu")


@register("gelu_forward_grad", requires=_fl, reference="minigen.ops.activation:GELU.backward")
def gelu_forward_grad(x):
    """Exact GELU and its derivative in one pass: (y, d) with y = x Phi(x), d = Phi(x) + x phi(x).

    For a forward that will be differentiated: the backward is then dx = g * d, one multiply, instead
    of a second evaluation of the normal CDF (which costs as much as the forward). Same accuracy as
    :func:`gelu_forward`. Used by minigen/ops/activation.py ``GELU.forward`` (exact form, when a gradient
    will be needed); the saved d serves ``GELU.fast_backward`` (dx = g * d).
    """
    xf = _flat(x)
    y = np.empty_like(xf)
    d = np.empty_like(xf)
    parallel_for(_gelu_fwd_grad32 if xf.dtype == np.float32 else _gelu_fwd_grad, xf.size, xf, y, d,
                 parallel=xf.size >= _PAR_MIN)
    return y.reshape(x.shape), d.reshape(x.shape)


@register("gelu_backward", requires=_fl, reference="minigen.ops.activation:GELU.backward")
def gelu_backward(x, g, approximate="none"):
    """dx = g * gelu'(x): exact: Phi(x) + x phi(x), phi(x) = exp(-x^2/2)/sqrt(2 pi);
    'tanh': s + x * 2 s (1 - s) * sqrt(2/pi) (1 + 3*0.044715 x^2) with s = sigmoid(2u) = (1 + tanh u)/2.

    Used by ``GELU.fast_backward`` (the engine calls it for a first-order backward).
    """
    return act_backward(x, g, "gelu_tanh" if approximate == "tanh" else "gelu")


@register("silu_forward", requires=_fl, reference="minigen.ops.activation:SiLU.forward")
def silu_forward(x):
    """y = x * sigmoid(x).  Used by ``SiLU.forward``."""
    return act_forward(x, "silu")


@register("silu_backward", requires=_fl, reference="minigen.ops.activation:SiLU.backward")
def silu_backward(x, g):
    """dx = g * s (1 + x (1 - s)), s = sigmoid(x).  Used by ``SiLU.fast_backward``."""
    return act_backward(x, g, "silu")



@register("sigmoid_forward", requires=_fl, reference="minigen.ops.activation:Sigmoid.forward")
def sigmoid_forward(x):
    """y = 1 / (1 + e^{-x}), one pass (float64 math; float32 inputs use the float32-accurate exponential).

    Used by minigen/ops/activation.py ``Sigmoid.forward``. Measured (1 thread, CPU time, Xeon SPR, float32,
    the VAE's (128, 784) output): 0.11 ms against 0.60 ms for the NumPy reference (exp, abs, where and two
    divisions over the whole array).
    """
    return act_forward(x, "sigmoid")


@register("sigmoid_backward", requires=_fl, reference="minigen.ops.activation:Sigmoid.backward")
def sigmoid_backward(y, g):
    """dx = g * y * (1 - y) from the forward's output y, one pass. Used by ``Sigmoid.fast_backward``."""
    yf = _flat(y)
    gf = _flat(g).astype(yf.dtype, copy=False)
    dx = np.empty_like(yf)
    parallel_for(_sigmoid_bwd, yf.size, yf, gf, dx, parallel=yf.size >= _PAR_MIN)
    return dx.reshape(y.shape)

# ------------------------------------------------------------------ relu / leaky relu
@jit
def _masked_linear_range(x, y, slope, a, leaky, i0, i1):
    # Branch-free and vectorisable: unsigned indices (no wraparound test) and selects. With a
    # data-dependent branch, random signs cost ~6x in mispredictions (5.9 ms vs 1.0 ms, 800K float32).
    # The comparisons are PyTorch's, so a NaN input gives y = NaN with slope 1 (relu) or a (leaky).
    one = x.dtype.type(1.0)
    zero = x.dtype.type(0.0)
    for k in range(np.uint64(i1 - i0)):
        i = np.uint64(i0) + k
        v = x[i]
        if leaky:
            s = one if v > 0 else a
            slope[i] = s
            y[i] = v * s
        else:
            slope[i] = zero if v <= 0 else one
            y[i] = zero if v <= 0 else v


@register("masked_linear_forward", requires=_fl, reference="minigen.ops.activation:MaskedLinear.forward")
def masked_linear_forward(x, a, leaky):
    """ReLU (leaky=False) / leaky ReLU (leaky=True, negative slope a) and its slope map, in one pass:
    relu: y = 0 if x <= 0 else x, slope = 0 if x <= 0 else 1;  leaky: slope = 1 if x > 0 else a, y = x * slope.
    Returns (y, slope), both in x.dtype. A NaN stays NaN (slope 1 for relu, a for leaky), as PyTorch.

    Used by minigen/ops/activation.py ``MaskedLinear.forward`` (kinds 'relu', 'leaky'); its backward is
    dx = g * slope. The NumPy reference makes 5-6 temporaries (compare, two ``where``, ``astype``...);
    measured in benchmarks/results/thresholds.md: faster at every size, no threshold.
    """
    xf = _flat(x)
    y = np.empty_like(xf)
    slope = np.empty_like(xf)
    parallel_for(_masked_linear_range, xf.size, xf, y, slope, xf.dtype.type(a), bool(leaky),
                 parallel=xf.size >= _PAR_MIN)
    return y.reshape(x.shape), slope.reshape(x.shape)


# ------------------------------------------------------------------ erf / erfc
@nb.vectorize(["float32(float32)", "float64(float64)"], cache=True)
def _erf_ufunc(v):
    return math.erf(v)


@nb.vectorize(["float32(float32)", "float64(float64)"], cache=True)
def _erfc_ufunc(v):
    return math.erfc(v)


@register("erf", requires=_fl, reference="minigen.ops.pointwise:erf_reference")
def erf(x):
    """erf(x) = 2/sqrt(pi) int_0^x exp(-t^2) dt elementwise: a Numba ufunc over libm's erf (what Python's
    math.erf calls, so it equals the reference bit for bit in float64). Used by ``pointwise.erf_array``
    (erf, erfc, exact GELU's reference)."""
    return np.asarray(_erf_ufunc(x))


@register("erfc", requires=_fl, reference="minigen.ops.pointwise:erfc_reference")
def erfc(x):
    """erfc(x) = 1 - erf(x) elementwise (libm's erfc: no cancellation for large x)."""
    return np.asarray(_erfc_ufunc(x))
