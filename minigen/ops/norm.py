"""Normalisation: layer_norm, batch_norm, group_norm, instance_norm, rms_norm, normalize.

Every normaliser here standardises ``x`` over a set of reduction dims ``D``
(n = number of elements reduced per statistic) and optionally applies a
per-feature affine map::

    mu    = mean_D(x)                      var = mean_D((x - mu)^2)     (biased variance)
    rstd  = 1 / sqrt(var + eps)            x_hat = (x - mu) * rstd
    y     = x_hat * w + b

Backward (g = dL/dy, g_hat = g * w; means over D)::

    dx = rstd * (g_hat - mean_D(g_hat) - x_hat * mean_D(g_hat * x_hat))
       = (1/n) * rstd * (n * g_hat - sum_D(g_hat) - x_hat * sum_D(g_hat * x_hat))
    dw = sum over the broadcast dims of (g * x_hat)        db = sum over the broadcast dims of g

(derivation: d x_hat_j / d x_i = rstd * (delta_ij - 1/n - x_hat_i x_hat_j / n)).

Which ``D`` and which shape of ``w`` make which layer:

=============  =========================  ==================================
op             reduction dims D           w, b broadcast as
=============  =========================  ==================================
layer_norm     the trailing ``normalized_shape`` dims   ``normalized_shape``
batch_norm     all dims but the channel dim 1            ``(C, 1, ..., 1)``
instance_norm  the spatial dims 2..                      ``(C, 1, ..., 1)``
group_norm     (C/G, spatial) inside each group          ``(C, 1, ..., 1)``
=============  =========================  ==================================
"""
from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from ..argcheck import check_flag, check_float_tensor, check_number, same_device
from ..autograd.function import Function
from ..backend import get_array_module
from ..errors import DeviceError, InvalidArgumentError, ShapeError
from ..kernels import dispatch
from .reduction import mean as _mean, sum as _sum
from .shape import reshape

__all__ = ["layer_norm", "batch_norm", "group_norm", "instance_norm", "rms_norm", "normalize"]


def _channel_view(t, ndim):
    """A per-channel vector (C,) viewed as (C, 1, ..., 1) so it broadcasts against (N, C, *spatial)."""
    return reshape(t, (t.shape[0],) + (1,) * (ndim - 2))


# ------------------------------------------------------------------ the core Function
class _AffineNorm(Function):
    """y = x_hat * w + b with x_hat = (x - mean_D x) / sqrt(var_D x + eps); see the module docstring.

    Arguments: ``(x, w, b, dims, eps, stats)``; ``w``/``b`` may be None and must already
    broadcast against ``x``; ``stats`` (a dict or None) receives the batch ``mean`` and
    biased ``var`` arrays (kept dims) so a caller can update running statistics.
    backward: dx = rstd * (g_hat - mean_D g_hat - x_hat * mean_D(g_hat * x_hat)),  g_hat = g * w;
    dw = g * x_hat,  db = g  (the engine sums both over the dims w and b were broadcast along).
    """

    reads = ((0, 1), (0,), (), (), (), ())  # dx reads x and w, dw reads x, db reads nothing

    @staticmethod
    def forward(ctx, x, w, b, dims, eps, stats):
        xp = get_array_module(x)
        mu = x.mean(axis=dims, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=dims, keepdims=True)
        rstd = 1.0 / xp.sqrt(var + eps)
        y = xc * rstd
        if w is not None:
            y = y * w
        if b is not None:
            y = y + b
        ctx.mu, ctx.rstd = mu, rstd
        if stats is not None:
            stats["mean"], stats["var"] = mu, var
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.args[:2]
        dims, eps = ctx.args[3], ctx.args[4]
        need = ctx.needs_input_grad
        # the statistics are recomputed with differentiable ops, so create_graph=True gives 2nd derivatives
        mu = _mean(x, dims, keepdim=True)
        xc = x - mu
        rstd = (_mean(xc * xc, dims, keepdim=True) + eps) ** -0.5
        x_hat = xc * rstd
        dx = dw = db = None
        if need[0]:
            g_hat = g * w if w is not None else g
            dx = rstd * (g_hat - _mean(g_hat, dims, keepdim=True)
                         - x_hat * _mean(g_hat * x_hat, dims, keepdim=True))
        if need[1]:
            dw = g * x_hat
        if need[2]:
            db = g
        return dx, dw, db, None, None, None


def _kernel_grads(ctx, k, g):
    """First-order gradients from a fused backward kernel ``k(g, x, w, mean, rstd) -> (dx, dw, db)``
    (dw, db flat per feature / channel; None where the op has no weight), or NotImplemented."""
    x, w, b = ctx.args[:3]
    if k is None or (w is None and b is not None):  # a kernel without weight returns no db
        return NotImplemented
    dx, dw, db = k(g, x.array, None if w is None else w.array, ctx.mu.reshape(-1), ctx.rstd.reshape(-1))
    need = ctx.needs_input_grad
    return (dx if need[0] else None, dw.reshape(w.shape) if need[1] else None,
            db.reshape(b.shape) if need[2] else None, None, None, None)


class LayerNorm(_AffineNorm):
    """Layer normalisation: statistics over the trailing ``normalized_shape`` dims of each sample.

    forward:  y = (x - mean_D x) / sqrt(var_D x + eps) * w + b      (var biased, D = trailing dims)
    backward: dx = rstd * (g_hat - mean_D g_hat - x_hat * mean_D(g_hat * x_hat)),  g_hat = g * w;
              dw = sum_{leading dims}(g * x_hat);  db = sum_{leading dims}(g).
    Fused kernels (minigen.kernels ``layer_norm_forward`` / ``layer_norm_backward``) compute the same,
    the backward one as the first-order ``fast_backward``.
    """

    @staticmethod
    def forward(ctx, x, w, b, dims, eps, stats):
        if stats is None and (k := dispatch.get("layer_norm_forward", x, w, b)) is not None:
            lead = x.ndim - len(dims)
            y, mean, rstd = k(x, w, b, eps, math.prod(x.shape[lead:]))
            keep = x.shape[:lead] + (1,) * len(dims)
            ctx.mu, ctx.rstd = mean.reshape(keep), rstd.reshape(keep)
            return y
        return _AffineNorm.forward(ctx, x, w, b, dims, eps, stats)

    @staticmethod
    def fast_backward(ctx, g):
        return _kernel_grads(ctx, dispatch.get("layer_norm_backward", g, ctx.args[0].array), g)


class BatchNorm(_AffineNorm):
    """Batch normalisation with batch statistics (training mode): statistics over every dim but channel 1.

    forward:  y = (x - mean_D x) / sqrt(var_D x + eps) * w + b      (D = (0, 2, 3, ...), var biased)
    backward: dx = rstd * (g_hat - mean_D g_hat - x_hat * mean_D(g_hat * x_hat)),  g_hat = g * w;
              dw_c = sum_D(g * x_hat)_c;  db_c = sum_D(g)_c.
    Fused kernels (minigen.kernels ``batch_norm_forward`` / ``batch_norm_backward``) compute the same,
    the backward one as the first-order ``fast_backward``.
    """

    @staticmethod
    def forward(ctx, x, w, b, dims, eps, stats):
        if (k := dispatch.get("batch_norm_forward", x, w, b)) is not None:
            y, mean, var, rstd = k(x, w, b, eps)
            keep = (1, x.shape[1]) + (1,) * (x.ndim - 2)
            ctx.mu, ctx.rstd = mean.reshape(keep), rstd.reshape(keep)
            if stats is not None:
                stats["mean"], stats["var"] = ctx.mu, var.reshape(keep)
            return y
        return _AffineNorm.forward(ctx, x, w, b, dims, eps, stats)

    @staticmethod
    def fast_backward(ctx, g):
        return _kernel_grads(ctx, dispatch.get("batch_norm_backward", g, ctx.args[0].array), g)


# ------------------------------------------------------------------ layer norm / rms norm
def _norm_shape(normalized_shape, x, op):
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(normalized_shape, builtins.bool):
        shape = (builtins.int(normalized_shape),)
    elif isinstance(normalized_shape, (tuple, list)) and all(
            isinstance(s, numbers.Integral) and not isinstance(s, builtins.bool) for s in normalized_shape):
        shape = tuple(builtins.int(s) for s in normalized_shape)
    else:
        raise InvalidArgumentError(f"{op}: normalized_shape must be an int or a tuple of ints, "
                                   f"got {normalized_shape!r}")
    k = len(shape)
    if k == 0 or k > x.ndim or tuple(x.shape[x.ndim - k:]) != shape:
        raise ShapeError(f"{op}: normalized_shape {shape} must equal the trailing dims of the input, "
                         f"got input of shape {tuple(x.shape)}")
    return shape


def _check_affine(t, shape, op, name):
    if t is None:
        return None
    check_float_tensor(t, op, name)
    if tuple(t.shape) != tuple(shape):
        raise ShapeError(f"{op}: {name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    return t


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation over the trailing ``normalized_shape`` dims (see :class:`LayerNorm`)."""
    op = "layer_norm"
    x = check_float_tensor(input, op)
    shape = _norm_shape(normalized_shape, x, op)
    weight = _check_affine(weight, shape, op, "weight")
    bias = _check_affine(bias, shape, op, "bias")
    eps = check_number(eps, op, "eps", lo=0.0)
    same_device(op, x, weight, bias)
    dims = tuple(range(x.ndim - len(shape), x.ndim))
    return LayerNorm.apply(x, weight, bias, dims, eps, None)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """RMS normalisation: y = x / sqrt(mean_D(x^2) + eps) * w  (D = trailing ``normalized_shape`` dims).

    Composed of differentiable ops, so its backward is the chain rule through
    mean, pow and mul: dx = rstd * (g_hat - x_hat * mean_D(g_hat * x_hat)).
    ``eps=None`` uses the machine epsilon of the input's dtype (as PyTorch).
    """
    op = "rms_norm"
    x = check_float_tensor(input, op)
    shape = _norm_shape(normalized_shape, x, op)
    weight = _check_affine(weight, shape, op, "weight")
    eps = builtins.float(np.finfo(x.dtype).eps) if eps is None else check_number(eps, op, "eps", lo=0.0)
    same_device(op, x, weight)
    dims = tuple(range(x.ndim - len(shape), x.ndim))
    y = x * (_mean(x * x, dims, keepdim=True) + eps) ** -0.5
    return y * weight if weight is not None else y


# ------------------------------------------------------------------ batch norm / instance norm / group norm
def _check_nc(x, op, min_ndim=2):
    if x.ndim < min_ndim:
        raise ShapeError(f"{op}: expected an input of shape (N, C{', L' if min_ndim > 2 else ''}, ...) "
                         f"with at least {min_ndim} dims, got shape {tuple(x.shape)}")


def _update_running(op, running, new, momentum):
    """running <- (1 - momentum) * running + momentum * new, in place (no autograd), bumping its version."""
    if running is None:
        return
    if type(running.array) is not type(new):
        raise DeviceError(f"{op}: running statistics on {running.device} but the input is on another device")
    running.array[...] = ((1.0 - momentum) * running.array + momentum * new).astype(running.dtype, copy=False)
    running._vc[0] += 1


def _check_running(t, C, op, name):
    if t is None:
        return None
    check_float_tensor(t, op, name)
    if tuple(t.shape) != (C,):
        raise ShapeError(f"{op}: {name} must have shape ({C},) (one value per channel), got {tuple(t.shape)}")
    return t


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation of (N, C), (N, C, L), (N, C, H, W), ... inputs over every dim but the channel dim.

    training=True: normalise with the batch mean and *biased* batch variance (:class:`BatchNorm`,
    closed-form backward) and update the running statistics in place (when given)::

        running_mean <- (1 - momentum) * running_mean + momentum * mean
        running_var  <- (1 - momentum) * running_var  + momentum * var * n / (n - 1)   (unbiased)

    training=False: y = (x - running_mean) / sqrt(running_var + eps) * w + b, an affine map composed of
    differentiable ops (dx = g * w / sqrt(running_var + eps)).
    """
    op = "batch_norm"
    x = check_float_tensor(input, op)
    _check_nc(x, op)
    C = x.shape[1]
    running_mean = _check_running(running_mean, C, op, "running_mean")
    running_var = _check_running(running_var, C, op, "running_var")
    weight = _check_affine(weight, (C,), op, "weight")
    bias = _check_affine(bias, (C,), op, "bias")
    eps = check_number(eps, op, "eps", lo=0.0)
    momentum = check_number(momentum, op, "momentum")
    training = check_flag(training, op, "training")
    same_device(op, x, running_mean, running_var, weight, bias)
    w = _channel_view(weight, x.ndim) if weight is not None else None
    b = _channel_view(bias, x.ndim) if bias is not None else None
    if training:
        dims = (0,) + tuple(range(2, x.ndim))
        n = x.numel() // max(C, 1)
        if n <= 1:
            raise InvalidArgumentError(f"{op}: expected more than 1 value per channel when training, "
                                       f"got input of shape {tuple(x.shape)}")
        stats = {}
        y = BatchNorm.apply(x, w, b, dims, eps, stats)
        _update_running(op, running_mean, stats["mean"].reshape(C), momentum)
        _update_running(op, running_var, stats["var"].reshape(C) * (n / (n - 1)), momentum)
        return y
    if running_mean is None or running_var is None:
        raise InvalidArgumentError(f"{op}: running_mean and running_var are needed when training=False")
    y = (x - _channel_view(running_mean, x.ndim)) * (_channel_view(running_var, x.ndim) + eps) ** -0.5
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Instance normalisation of (N, C, L...) inputs: statistics over the spatial dims of each (sample, channel).

    x_hat is the :class:`LayerNorm` Function over the trailing dims D = (2, 3, ...) (same formula, same fused
    kernels), then y = x_hat * w_c + b_c. With ``use_input_stats`` the running statistics (if given) are
    updated with the batch average of the per-instance mean and unbiased variance; ``use_input_stats=False``
    normalises with the running statistics instead.
    """
    op = "instance_norm"
    x = check_float_tensor(input, op)
    _check_nc(x, op, min_ndim=3)
    C = x.shape[1]
    running_mean = _check_running(running_mean, C, op, "running_mean")
    running_var = _check_running(running_var, C, op, "running_var")
    weight = _check_affine(weight, (C,), op, "weight")
    bias = _check_affine(bias, (C,), op, "bias")
    eps = check_number(eps, op, "eps", lo=0.0)
    momentum = check_number(momentum, op, "momentum")
    same_device(op, x, running_mean, running_var, weight, bias)
    if not check_flag(use_input_stats, op, "use_input_stats"):
        return batch_norm(x, running_mean, running_var, weight, bias, training=False, eps=eps)
    dims = tuple(range(2, x.ndim))
    n = x.numel() // max(x.shape[0] * C, 1)
    if n <= 1:
        raise InvalidArgumentError(f"{op}: expected more than 1 spatial element per channel, "
                                   f"got input of shape {tuple(x.shape)}")
    stats = {} if running_mean is not None or running_var is not None else None
    y = LayerNorm.apply(x, None, None, dims, eps, stats)
    if weight is not None:
        y = y * _channel_view(weight, x.ndim)
    if bias is not None:
        y = y + _channel_view(bias, x.ndim)
    if stats is not None:
        _update_running(op, running_mean, stats["mean"].reshape(x.shape[0], C).mean(axis=0), momentum)
        _update_running(op, running_var, (stats["var"] * (n / (n - 1))).reshape(x.shape[0], C).mean(axis=0),
                        momentum)
    return y


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation: channels split into ``num_groups`` groups, statistics over (C/G, spatial) per sample.

    forward: x viewed as (N, G, C/G * spatial), standardised over its last dim with the
    :class:`LayerNorm` Function (same closed-form backward), viewed back, then y = x_hat * w_c + b_c.
    """
    op = "group_norm"
    x = check_float_tensor(input, op)
    _check_nc(x, op)
    if isinstance(num_groups, builtins.bool) or not isinstance(num_groups, numbers.Integral) or num_groups <= 0:
        raise InvalidArgumentError(f"{op}: num_groups must be a positive int, got {num_groups!r}")
    N, C = x.shape[0], x.shape[1]
    if C % num_groups:
        raise ShapeError(f"{op}: the number of channels {C} (input shape {tuple(x.shape)}) must be divisible "
                         f"by num_groups={num_groups}")
    weight = _check_affine(weight, (C,), op, "weight")
    bias = _check_affine(bias, (C,), op, "bias")
    eps = check_number(eps, op, "eps", lo=0.0)
    same_device(op, x, weight, bias)
    per_group = x.numel() // max(N * num_groups, 1)
    xg = reshape(x, (N, builtins.int(num_groups), per_group))
    y = reshape(LayerNorm.apply(xg, None, None, (2,), eps, None), x.shape)
    if weight is not None:
        y = y * _channel_view(weight, x.ndim)
    if bias is not None:
        y = y + _channel_view(bias, x.ndim)
    return y


# ------------------------------------------------------------------ normalize
def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """y = x / max(||x||_p, eps) along ``dim`` (``||x||_p = (sum |x|^p)^(1/p)``, or max |x| for p = inf).

    Composed of differentiable ops. Where ``||x||_p < eps`` the denominator is the constant eps
    (no gradient through the norm), as ``clamp_min`` in PyTorch; an all-zero slice gives zeros
    and a zero gradient through the norm (not NaN).
    """
    from ..argcheck import norm_dim

    op = "normalize"
    x = check_float_tensor(input, op)
    if out is not None:
        raise InvalidArgumentError(f"{op}: out= is not supported")
    p = check_number(p, op, "p")
    if p <= 0:
        raise InvalidArgumentError(f"{op}: p must be positive, got {p}")
    eps = check_number(eps, op, "eps", lo=0.0)
    d = norm_dim(dim, x.ndim)
    if x.ndim == 0:
        raise ShapeError(f"{op}: expected a tensor with at least 1 dim, got a 0-d tensor")
    norm = _l2_norm(x, d, p)
    xp = get_array_module(norm.array)
    small = (norm.array < eps).astype(x.dtype)  # constant mask: clamp_min(norm, eps)
    denom = norm * (1.0 - small) + xp.asarray(eps * small, dtype=x.dtype)
    return x / denom


def _l2_norm(x, dim, p=2.0):
    """||x||_p along ``dim`` (keepdim), with gradient 0 (not NaN) for an all-zero slice (as PyTorch's norm).

    p = inf is max |x| (ties share the gradient, see ``amax``).
    """
    if math.isinf(p):
        from .pointwise import abs as _abs
        from .reduction import amax

        return amax(_abs(x), dim, keepdim=True)
    if p == 2.0:
        powed = x * x
    else:
        from .pointwise import abs as _abs

        powed = _abs(x) ** p
    s = _sum(powed, dim, keepdim=True)
    zero = (s.array == 0).astype(s.dtype)   # constant: an all-zero slice takes the root of 1 instead of 0
    return (s + zero) ** (1.0 / p) * (1.0 - zero)
