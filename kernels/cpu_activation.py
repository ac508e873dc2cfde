"""Pointwise activations (GELU exact/tanh, SiLU) forward and backward, and dropout, each in one pass.

Arrays are processed flat (C-contiguous copies of non-contiguous inputs); large arrays are cut into one
chunk per thread. The NumPy references make 4-8 temporaries per call; these make one output.
"""
from __future__ import annotations

import math

import numpy as np
from ._common import c, is_float, jit, parallel_for
from .dispatch import register

_PAR_MIN = 1 << 17  # elements (see cpu_norm)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715

# kind codes (ints keep one compiled specialisation per dtype)
GELU, GELU_TANH, SILU = 0, 1, 2
KINDS = {"gelu": GELU, "none": GELU, "gelu_tanh": GELU_TANH, "tanh": GELU_TANH, "silu": SILU}


@jit
def act_value(v, kind):
    """The activation of one value (kind: 0 gelu, 1 gelu-tanh, 2 silu, 3 relu, -1 identity)."""
    if kind == 0:
        return 0.5 * v * (1.0 + math.erf(v * _INV_SQRT_2))
    if kind == 1:
        u = _SQRT_2_OVER_PI * (v + _GELU_C * v * v * v)
        return 0.5 * v * (1.0 + math.tanh(u))
    if kind == 2:
        if v >= 0:
            return v / (1.0 + math.exp(-v))
        e = math.exp(v)
        return v * e / (1.0 + e)
    if kind == 3:
        return v if v > 0 else 0.0
    return v


@jit
def act_grad(v, kind):
    """d act(v) / dv (relu'(0) = 0, as PyTorch)."""
    if kind == 0:
        cdf = 0.5 * (1.0 + math.erf(v * _INV_SQRT_2))
        return cdf + v * math.exp(-0.5 * v * v) * _INV_SQRT_2PI
    if kind == 1:
        t = math.tanh(_SQRT_2_OVER_PI * (v + _GELU_C * v * v * v))
        return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * v * v)
    if kind == 2:
        if v >= 0:
            s = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            s = e / (1.0 + e)
        return s * (1.0 + v * (1.0 - s))
    if kind == 3:
        return 1.0 if v > 0 else 0.0
    return 1.0


@jit
def _fwd_range(x, y, kind, i0, i1):
    for i in range(i0, i1):
        y[i] = act_value(x[i], kind)




@jit
def _bwd_range(x, g, dx, kind, i0, i1):
    for i in range(i0, i1):
        dx[i] = g[i] * act_grad(x[i], kind)




def _flat(a):
    return c(a).reshape(-1)


def act_forward(x, kind):
    """y = act(x) elementwise for a kind name ('gelu', 'gelu_tanh', 'silu')."""
    k = KINDS[kind]
    xf = _flat(x)
    y = np.empty_like(xf)
    parallel_for(_fwd_range, xf.size, xf, y, k, parallel=xf.size >= _PAR_MIN)
    return y.reshape(x.shape)


def act_backward(x, g, kind):
    """dx = g * act'(x) elementwise."""
    k = KINDS[kind]
    xf = _flat(x)
    gf = _flat(g)
    dx = np.empty_like(xf)
    parallel_for(_bwd_range, xf.size, xf, gf, dx, k, parallel=xf.size >= _PAR_MIN)
    return dx.reshape(x.shape)


def _fl(*arrays):
    return is_float(*arrays)


# Measured: gelu-tanh (64,) 5.3x, (512,) 0.94x, (4096,) 0.82x, (393216,) 0.52x: scalar libm tanh/erf/exp
# per element lose to NumPy's SIMD transcendental loops beyond a few hundred elements.
_ACT_MAX = 256


@register("gelu_forward", requires=_fl, worth=lambda x: x.size <= _ACT_MAX)
def gelu_forward(x, approximate="none"):
    """GELU. exact ('none'): y = x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;
    'tanh': y = x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    Wired into: minigen/ops/activation.py ``GELU.forward``. Measured (busy 2-core box, float32, tanh form,
    benchmarks/results/thresholds.md): (64,) 5.3x, (512,) 0.94x, (4096,) 0.82x, (393216,) 0.52x vs the NumPy reference — the scalar
    libm tanh/erf per element loses to NumPy's SIMD loops, so 'auto' uses it only up to 256 elements.
    """
    return act_forward(x, "gelu_tanh" if approximate == "tanh" else "gelu")


@register("gelu_backward", requires=_fl, worth=lambda x, g: x.size <= _ACT_MAX)
def gelu_backward(x, g, approximate="none"):
    """dx = g * gelu'(x): exact: Phi(x) + x phi(x), phi(x) = exp(-x^2/2)/sqrt(2 pi);
    'tanh': 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3*0.044715 x^2), t = tanh(u).

    Wired into: ``GELU.backward`` fast path (not create_graph).
    """
    return act_backward(x, g, "gelu_tanh" if approximate == "tanh" else "gelu")


@register("silu_forward", requires=_fl, worth=lambda x: x.size <= _ACT_MAX)
def silu_forward(x):
    """y = x * sigmoid(x) (exp only of -|x|: no overflow).  Wired into: ``SiLU.forward``."""
    return act_forward(x, "silu")


@register("silu_backward", requires=_fl, worth=lambda x, g: x.size <= _ACT_MAX)
def silu_backward(x, g):
    """dx = g * s (1 + x (1 - s)), s = sigmoid(x).  Wired into: ``SiLU.backward`` fast path."""
    return act_backward(x, g, "silu")


# ------------------------------------------------------------------ relu / leaky relu
@jit
def _masked_linear_range(x, y, slope, a, leaky, i0, i1):
    # Branch-free and vectorisable: unsigned indices (no wraparound test) and selects. With a
    # data-dependent branch, random signs cost ~6x in mispredictions (5.9 ms vs 1.0 ms, 800K float32).
    one = x.dtype.type(1.0)
    zero = x.dtype.type(0.0)
    b = a if leaky else zero
    for k in range(np.uint64(i1 - i0)):
        i = np.uint64(i0) + k
        v = x[i]
        s = one if v > 0 else b
        slope[i] = s
        y[i] = v * s if leaky else (v if v > 0 else zero)


@register("masked_linear_forward", requires=_fl)
def masked_linear_forward(x, a, leaky):
    """ReLU (leaky=False) / leaky ReLU (leaky=True, negative slope a) and its slope map, in one pass:
    y = x if x > 0 else (a*x if leaky else 0);  slope = 1 if x > 0 else a (relu: a = 0). Returns (y, slope),
    both in x.dtype (NaN: y = NaN for leaky, 0 for relu, as the reference's ``where``).

    Wired into: minigen/ops/activation.py ``MaskedLinear.forward`` (kinds 'relu', 'leaky'); its backward is
    dx = g * slope. The NumPy reference makes 5-6 temporaries (compare, two ``where``, ``astype``...);
    measured in benchmarks/results/thresholds.md: faster at every size, no threshold.
    """
    xf = _flat(x)
    y = np.empty_like(xf)
    slope = np.empty_like(xf)
    parallel_for(_masked_linear_range, xf.size, xf, y, slope, xf.dtype.type(a), bool(leaky),
                 parallel=xf.size >= _PAR_MIN)
    return y.reshape(x.shape), slope.reshape(x.shape)


# ------------------------------------------------------------------ dropout
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@jit
def uniform_at(seed, i):
    """A uniform double in [0, 1) for counter i of stream ``seed`` (SplitMix64 of seed + (i+1)*golden).

    Counter-based: element i's draw does not depend on how the array is cut over threads.
    """
    z = np.uint64(seed) + (np.uint64(i) + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@jit
def _dropout_range(x, y, mask, p, scale, seed, i0, i1):
    for i in range(i0, i1):
        if uniform_at(seed, i) >= p:
            mask[i] = scale
            y[i] = x[i] * scale
        else:
            mask[i] = 0.0
            y[i] = 0.0 * x[i]




def _seed64(seed):
    return np.uint64(int(seed) % (1 << 64))


@register("dropout_forward", requires=_fl)
def dropout_forward(x, p, seed):
    """Inverted dropout: keep each element with probability 1 - p and scale it by 1/(1 - p).

    mask_i = 1/(1-p) if u_i >= p else 0, with u_i = SplitMix64(seed, i) / 2^64 uniform in [0, 1);
    y = x * mask. Returns (y, mask) — mask in x.dtype, already scaled, so backward is dx = g * mask.
    ``seed``: an int drawn from minigen's generator by the op (``gen.numpy.integers(0, 2**63)``), so
    ``mg.manual_seed`` makes dropout reproducible. 0 < p < 1 (the op handles p = 0 and p = 1).
    Wired into: minigen/ops (dropout Function, e.g. random_ops.py / activation.py ``Dropout.forward``).
    Measured (benchmarks/results/thresholds.md, float32, p=0.1) against ``x * ((gen.random(n) >= p) / (1-p))``:
    64 elements 2.6x, 1024 1.8x, 1M 1.1x faster; no threshold.
    """
    xf = _flat(x)
    y = np.empty_like(xf)
    mask = np.empty_like(xf)
    p = float(p)
    scale = 1.0 / (1.0 - p)
    s = _seed64(seed)
    parallel_for(_dropout_range, xf.size, xf, y, mask, p, scale, s, parallel=xf.size >= _PAR_MIN)
    return y.reshape(x.shape), mask.reshape(x.shape)


@register("dropout_mask")
def dropout_mask(shape, p, seed, dtype=np.float32):
    """The scaled dropout mask alone (values 0 or 1/(1-p)), same stream as :func:`dropout_forward`."""
    z = np.ones(shape, dtype)
    return dropout_forward(z, p, seed)[1]
