"""Normalisation layers: BatchNorm1d/2d/3d, LayerNorm, GroupNorm, InstanceNorm1d/2d, RMSNorm.

All normalise x_hat = (x - mean) / sqrt(var + eps) (biased variance) over some dims,
then apply a per-channel (or per-element) affine map y = x_hat * weight + bias.

BatchNorm statistics are over (N, *spatial) per channel. In training mode the batch
statistics are used and the running estimates are updated as
    running = (1 - momentum) * running + momentum * batch_stat
with the *unbiased* batch variance for running_var (PyTorch's convention). With
``momentum=None`` the update is a cumulative average: momentum = 1 / num_batches_tracked.
In eval mode the running estimates are used. Buffers: ``running_mean``, ``running_var``,
``num_batches_tracked`` (saved in the state dict, PyTorch's names).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import init
from ...argcheck import (check_device, check_flag, check_float_dtype, check_number, check_shape, check_size,
                         check_tensor)
from ...errors import InvalidArgumentError, ShapeError
from ...tensor import tensor
from ._common import new_param, ones_buffer, zeros_buffer
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "InstanceNorm1d",
           "InstanceNorm2d", "RMSNorm"]


class _NormBase(Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None, *, bias=True):
        super().__init__()
        op = type(self).__name__
        num_features = check_size(num_features, op, "num_features")
        eps = check_number(eps, op, "eps", lo=0.0)
        momentum = check_number(momentum, op, "momentum", allow_none=True)
        affine, bias = check_flag(affine, op, "affine"), check_flag(bias, op, "bias")
        track_running_stats = check_flag(track_running_stats, op, "track_running_stats")
        check_float_dtype(dtype, op)
        check_device(device, op)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = new_param(num_features, dtype=dtype, device=device)
            if bias:
                self.bias = new_param(num_features, dtype=dtype, device=device)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros_buffer(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ones_buffer(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", tensor(0, dtype="int64", device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.array[...] = 0
            self.running_var.array[...] = 1
            self.num_batches_tracked.array[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def _check_input_dim(self, x):
        raise NotImplementedError

    def _load_hook(self, state_dict, prefix):
        # checkpoints written before num_batches_tracked existed (or by hand) may lack it
        key = prefix + "num_batches_tracked"
        if self.track_running_stats and key not in state_dict and (prefix + "running_mean") in state_dict:
            state_dict[key] = tensor(0, dtype="int64")

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def forward(self, x):
        check_tensor(x, type(self).__name__)
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.array += 1
            self.num_batches_tracked._vc[0] += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.array)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, per channel C."""

    def _check_input_dim(self, x):
        if x.ndim not in (2, 3):
            raise ShapeError(f"BatchNorm1d expects a 2-d or 3-d input (N, C) / (N, C, L), got shape {tuple(x.shape)}")


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, per channel C."""

    def _check_input_dim(self, x):
        if x.ndim != 4:
            raise ShapeError(f"BatchNorm2d expects a 4-d input (N, C, H, W), got shape {tuple(x.shape)}")


class BatchNorm3d(_BatchNorm):
    """Batch norm over (N, C, D, H, W) inputs, per channel C."""

    def _check_input_dim(self, x):
        if x.ndim != 5:
            raise ShapeError(f"BatchNorm3d expects a 5-d input (N, C, D, H, W), got shape {tuple(x.shape)}")


class _InstanceNorm(_NormBase):
    """Normalise each (sample, channel) over its spatial dims. Defaults: no affine, no running stats."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False,
                 device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, x):
        check_tensor(x, type(self).__name__)
        self._check_input_dim(x)
        unbatched = x.ndim == self._spatial + 1
        if unbatched:
            x = x.reshape((1,) + tuple(x.shape))
        use_input_stats = self.training or not self.track_running_stats
        y = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_input_stats, self.momentum if self.momentum is not None else 0.1, self.eps)
        return y.reshape(tuple(y.shape[1:])) if unbatched else y

    def _check_input_dim(self, x):
        if x.ndim not in (self._spatial + 1, self._spatial + 2):
            raise ShapeError(f"{type(self).__name__} expects a {self._spatial + 1}-d or {self._spatial + 2}-d "
                             f"input, got shape {tuple(x.shape)}")


class InstanceNorm1d(_InstanceNorm):
    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    _spatial = 2


def _norm_shape(normalized_shape, op):
    return check_shape(normalized_shape, op, "normalized_shape")


class LayerNorm(Module):
    """y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias, statistics over the last
    ``len(normalized_shape)`` dims of each sample. weight = 1, bias = 0 initially."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _norm_shape(normalized_shape, "LayerNorm")
        eps = check_number(eps, "LayerNorm", "eps", lo=0.0)
        elementwise_affine = check_flag(elementwise_affine, "LayerNorm", "elementwise_affine")
        bias = check_flag(bias, "LayerNorm", "bias")
        check_float_dtype(dtype, "LayerNorm")
        check_device(device, "LayerNorm")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = new_param(*self.normalized_shape, dtype=dtype, device=device)
            if bias:
                self.bias = new_param(*self.normalized_shape, dtype=dtype, device=device)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        s = f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        return s + (f", bias={self.bias is not None}" if self.elementwise_affine else "")


class GroupNorm(Module):
    """Split C channels into ``num_groups`` groups; normalise each (sample, group) over its
    channels and spatial dims; then a per-channel affine map (weight 1, bias 0 initially)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        num_groups = check_size(num_groups, "GroupNorm", "num_groups", minimum=1)
        num_channels = check_size(num_channels, "GroupNorm", "num_channels")
        eps = check_number(eps, "GroupNorm", "eps", lo=0.0)
        affine, bias = check_flag(affine, "GroupNorm", "affine"), check_flag(bias, "GroupNorm", "bias")
        check_float_dtype(dtype, "GroupNorm")
        check_device(device, "GroupNorm")
        if num_channels % num_groups != 0:
            raise InvalidArgumentError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        if affine:
            self.weight = new_param(num_channels, dtype=dtype, device=device)
            if bias:
                self.bias = new_param(num_channels, dtype=dtype, device=device)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(Module):
    """y = x / sqrt(mean(x^2) + eps) * weight, mean over the last ``len(normalized_shape)`` dims
    (Zhang & Sennrich, 2019). ``eps=None`` uses the machine epsilon of the input dtype (as PyTorch)."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine: bool = True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _norm_shape(normalized_shape, "RMSNorm")
        eps = check_number(eps, "RMSNorm", "eps", lo=0.0, allow_none=True)
        elementwise_affine = check_flag(elementwise_affine, "RMSNorm", "elementwise_affine")
        check_float_dtype(dtype, "RMSNorm")
        check_device(device, "RMSNorm")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = new_param(*self.normalized_shape, dtype=dtype, device=device)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x):
        check_tensor(x, "RMSNorm")
        k = len(self.normalized_shape)
        if tuple(x.shape[x.ndim - k:]) != self.normalized_shape:
            raise ShapeError(f"RMSNorm: input shape {tuple(x.shape)} does not end with normalized_shape "
                             f"{self.normalized_shape}")
        if hasattr(F, "rms_norm"):
            return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)
        eps = float(np.finfo(x.dtype).eps) if self.eps is None else self.eps
        dims = tuple(range(x.ndim - k, x.ndim))
        y = x * ((x * x).mean(dim=dims, keepdim=True) + eps) ** -0.5
        return y * self.weight if self.weight is not None else y

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
