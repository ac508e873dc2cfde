"""Weight initialisation (``minigen.nn.init``), PyTorch names and formulas.

Every function fills a tensor *in place* (no autograd history, version counter
bumped), returns it, and takes ``generator=`` (a :class:`minigen.Generator`;
default: the global one seeded by ``mg.manual_seed``). Random values are drawn
from the generator's NumPy stream on the host and copied to the tensor's
device, so a seed gives the same weights on CPU and GPU.

Fans: for a weight of shape ``(out, in, *kernel)`` with receptive field
``r = prod(kernel)``: ``fan_in = in * r``, ``fan_out = out * r``.

==========================  ===================================================
``uniform_(t, a, b)``        U(a, b)
``normal_(t, mean, std)``    N(mean, std^2)
``xavier_uniform_(t, g)``    U(-A, A),  A = g * sqrt(6 / (fan_in + fan_out))
``xavier_normal_(t, g)``     N(0, s^2), s = g * sqrt(2 / (fan_in + fan_out))
``kaiming_uniform_``         U(-B, B),  B = gain * sqrt(3 / fan)
``kaiming_normal_``          N(0, s^2), s = gain / sqrt(fan)
``orthogonal_(t, g)``        g * Q, Q from the QR decomposition of a normal matrix
``trunc_normal_``            N(mean, std^2) conditioned on [a, b]
==========================  ===================================================

``gain = calculate_gain(nonlinearity, param)``; for kaiming the default
``nonlinearity='leaky_relu', a=0`` gives gain sqrt(2) (He et al.). PyTorch's
Linear/Conv default ``kaiming_uniform_(w, a=sqrt(5))`` gives B = 1/sqrt(fan_in).
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import move_array
from ..argcheck import check_generator, check_number, check_size, check_tensor
from ..errors import DTypeError, InvalidArgumentError, ShapeError
from ..random import _gen
from ..tensor import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_", "dirac_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
           "trunc_normal_", "sparse_"]


def _write(tensor, host_array):
    """tensor[...] = host_array, cast to the tensor's dtype and moved to its device; no autograd."""
    arr = np.asarray(host_array).astype(tensor.dtype, copy=False)
    tensor.array[...] = move_array(arr, tensor.device)
    tensor._vc[0] += 1
    return tensor


def _rng(generator):
    return _gen(check_generator(generator, "nn.init")).numpy


def _target(tensor, op, floating=True):
    """The tensor an initialiser fills: a Tensor (floating point for the random ones)."""
    check_tensor(tensor, f"nn.init.{op}", "tensor")
    if floating and tensor.dtype.kind != "f":
        raise DTypeError(f"nn.init.{op} fills floating point tensors, got dtype {tensor.dtype}")
    return tensor


def _real(v, op, name, lo=None):
    """A finite real number argument (a 0-d tensor is read)."""
    x = check_number(v, f"nn.init.{op}", name, lo=lo)
    if math.isinf(x):
        raise InvalidArgumentError(f"nn.init.{op}: {name} must be finite, got {x}")
    return x


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity.

    linear / conv* / sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);
    leaky_relu: sqrt(2 / (1 + slope^2)) (slope default 0.01);  selu: 3/4.
    """
    if not isinstance(nonlinearity, str):
        raise InvalidArgumentError(f"nonlinearity must be a string such as 'relu', got {type(nonlinearity).__name__}")
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise InvalidArgumentError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise InvalidArgumentError(f"unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel); needs at least 2 dims."""
    if tensor.ndim < 2:
        raise ShapeError(f"fan in and fan out can not be computed for a tensor with fewer than 2 dimensions "
                         f"(shape {tuple(tensor.shape)})")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= int(s)
    return int(tensor.shape[1]) * receptive, int(tensor.shape[0]) * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise InvalidArgumentError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    _target(tensor, "uniform_")
    a, b = _real(a, "uniform_", "a"), _real(b, "uniform_", "b")
    if a > b:
        raise InvalidArgumentError(f"nn.init.uniform_ needs a <= b, got a={a}, b={b}")
    return _write(tensor, _rng(generator).uniform(a, b, size=tensor.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std^2)."""
    _target(tensor, "normal_")
    mean, std = _real(mean, "normal_", "mean"), _real(std, "normal_", "std", lo=0.0)
    return _write(tensor, mean + std * _rng(generator).standard_normal(tensor.shape))


def constant_(tensor, val: float):
    """Fill with ``val`` (any real number, NaN and inf included; a bool for bool tensors)."""
    import numbers

    _target(tensor, "constant_", floating=False)
    if isinstance(val, Tensor) and val.numel() == 1:
        val = val.item()
    if not isinstance(val, numbers.Real) or (isinstance(val, bool) and tensor.dtype.kind != "b"):
        raise InvalidArgumentError(f"nn.init.constant_: val must be a real number, got {type(val).__name__}")
    if tensor.dtype.kind in "iu" and (not math.isfinite(val) or not np.iinfo(tensor.dtype).min <= val
                                      <= np.iinfo(tensor.dtype).max):
        raise InvalidArgumentError(f"nn.init.constant_: {val} does not fit dtype {tensor.dtype}")
    tensor.array[...] = val
    tensor._vc[0] += 1
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def eye_(tensor):
    """The identity matrix (2-d tensors only)."""
    _target(tensor, "eye_", floating=False)
    if tensor.ndim != 2:
        raise ShapeError(f"eye_ needs a 2-d tensor, got shape {tuple(tensor.shape)}")
    return _write(tensor, np.eye(*tensor.shape))


def dirac_(tensor, groups: int = 1):
    """Dirac delta for conv weights (out, in, *k): channel i passes straight to output i (per group)."""
    _target(tensor, "dirac_", floating=False)
    groups = check_size(groups, "nn.init.dirac_", "groups", minimum=1)
    if tensor.ndim not in (3, 4, 5):
        raise ShapeError(f"dirac_ needs a 3-, 4- or 5-d tensor, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] % groups:
        raise InvalidArgumentError(f"dirac_: dim 0 of shape {tuple(tensor.shape)} is not divisible by groups={groups}")
    if tensor.numel() == 0:
        return tensor
    out_per = tensor.shape[0] // groups
    min_dim = min(out_per, tensor.shape[1])
    arr = np.zeros(tensor.shape)
    centre = tuple(s // 2 for s in tensor.shape[2:])
    for g in range(groups):
        for d in range(min_dim):
            arr[(g * out_per + d, d) + centre] = 1
    return _write(tensor, arr)


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """U(-A, A) with A = gain * sqrt(6 / (fan_in + fan_out))  (Glorot & Bengio, 2010)."""
    _target(tensor, "xavier_uniform_")
    gain = _real(gain, "xavier_uniform_", "gain")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if fan_in + fan_out == 0:
        return tensor
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """N(0, s^2) with s = gain * sqrt(2 / (fan_in + fan_out))."""
    _target(tensor, "xavier_normal_")
    gain = _real(gain, "xavier_normal_", "gain")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if fan_in + fan_out == 0:
        return tensor
    return normal_(tensor, 0.0, abs(gain) * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None):
    """U(-B, B) with B = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a)  (He et al., 2015)."""
    _target(tensor, "kaiming_uniform_")
    a = _real(a, "kaiming_uniform_", "a")
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None):
    """N(0, s^2) with s = gain / sqrt(fan)."""
    _target(tensor, "kaiming_normal_")
    a = _real(a, "kaiming_normal_", "a")
    fan = _fan(tensor, mode)
    if fan == 0:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), generator)


def orthogonal_(tensor, gain: float = 1.0, generator=None):
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al., 2013).

    The tensor is viewed as ``rows = shape[0]`` by ``cols = prod(shape[1:])``. Draw
    A ~ N(0, 1) of shape (max, min), take A = QR, and fix the signs Q <- Q * sign(diag R)
    so that Q is uniformly (Haar) distributed; transpose when rows < cols. Then
    Q^T Q = I (rows >= cols) or Q Q^T = I (rows < cols).
    """
    _target(tensor, "orthogonal_")
    gain = _real(gain, "orthogonal_", "gain")
    if tensor.ndim < 2:
        raise ShapeError(f"orthogonal_ needs a tensor with at least 2 dimensions, got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        return tensor
    rows = int(tensor.shape[0])
    cols = int(np.prod(tensor.shape[1:]))
    a = _rng(generator).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    d = np.sign(np.diag(r))
    d[d == 0] = 1
    q = q * d[None, :]
    if rows < cols:
        q = q.T
    return _write(tensor, (gain * q).reshape(tensor.shape))


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, generator=None):
    """N(mean, std^2) restricted to [a, b] (absolute bounds, as in PyTorch), by rejection:
    values outside [a, b] are redrawn until all lie inside."""
    _target(tensor, "trunc_normal_")
    mean, std = _real(mean, "trunc_normal_", "mean"), _real(std, "trunc_normal_", "std", lo=0.0)
    a, b = _real(a, "trunc_normal_", "a"), _real(b, "trunc_normal_", "b")
    if std == 0:
        if not a <= mean <= b:
            raise InvalidArgumentError(f"trunc_normal_: std=0 puts every value at mean={mean}, outside [{a}, {b}]")
        return constant_(tensor, mean)
    if not a < b:
        raise InvalidArgumentError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    lo, hi = (a - mean) / std, (b - mean) / std
    p_in = 0.5 * (math.erf(hi / math.sqrt(2)) - math.erf(lo / math.sqrt(2)))
    if p_in < 1e-4:
        raise InvalidArgumentError(f"trunc_normal_: [a, b] = [{a}, {b}] holds only {p_in:.2e} of N({mean}, {std}^2); "
                                   f"rejection sampling would not finish")
    rng = _rng(generator)
    out = rng.standard_normal(tensor.shape) * std + mean
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum())) * std + mean
        bad = (out < a) | (out > b)
    return _write(tensor, out)


def sparse_(tensor, sparsity: float, std: float = 0.01, generator=None):
    """2-d tensor: N(0, std^2) with a fraction ``sparsity`` of each column set to zero."""
    _target(tensor, "sparse_")
    sparsity = check_number(sparsity, "nn.init.sparse_", "sparsity", 0.0, 1.0)
    std = _real(std, "sparse_", "std", lo=0.0)
    if tensor.ndim != 2:
        raise ShapeError(f"sparse_ needs a 2-d tensor, got shape {tuple(tensor.shape)}")
    rows, cols = tensor.shape
    rng = _rng(generator)
    arr = rng.standard_normal((rows, cols)) * std
    nz = int(math.ceil(sparsity * rows))
    for c in range(cols):
        arr[rng.permutation(rows)[:nz], c] = 0
    return _write(tensor, arr)
