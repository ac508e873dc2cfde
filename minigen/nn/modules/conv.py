"""Convolution layers: Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d.

Conv (cross-correlation, as in every DL library), per output channel o and group g:
    y[n, o, p] = b[o] + sum_{c in group(o)} sum_k w[o, c, k] * x_pad[n, c, p * stride + k * dilation]
Output length: L_out = floor((L + 2 * padding - dilation * (k - 1) - 1) / stride) + 1.

Transposed conv is the adjoint (the gradient of conv with respect to its input):
    L_out = (L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.

Weights: conv (out_channels, in_channels / groups, *k); transposed conv
(in_channels, out_channels / groups, *k) (PyTorch's layouts). Default init is PyTorch's:
``kaiming_uniform_(w, a=sqrt(5))`` = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) where fan_in = weight.shape[1] * prod(k).
"""
from __future__ import annotations

import math

from .. import functional as F
from .. import init
from ...errors import InvalidArgumentError, ShapeError
from ...argcheck import (check_device, check_flag, check_float_dtype, check_ints, check_iterable, check_size,
                         check_tensor)
from ._common import new_param
from .module import Module

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PAD_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    _n = 2
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, output_padding=0, device=None, dtype=None):
        super().__init__()
        n, op = self._n, type(self).__name__
        in_channels = check_size(in_channels, op, "in_channels")
        out_channels = check_size(out_channels, op, "out_channels")
        groups = check_size(groups, op, "groups", minimum=1)
        check_flag(bias, op, "bias")
        check_float_dtype(dtype, op)
        check_device(device, op)
        if in_channels % groups or out_channels % groups:
            raise InvalidArgumentError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                                       f"divisible by groups ({groups})")
        if not isinstance(padding_mode, str) or padding_mode not in _PAD_MODES:
            raise InvalidArgumentError(f"padding_mode must be one of {_PAD_MODES}, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = check_ints(kernel_size, n, op, "kernel_size", minimum=1)
        self.stride = check_ints(stride, n, op, "stride", minimum=1)
        self.dilation = check_ints(dilation, n, op, "dilation", minimum=1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise InvalidArgumentError(f"padding must be 'same', 'valid' or int(s), got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise InvalidArgumentError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = check_ints(padding, n, op, "padding", minimum=0)
        self.output_padding = check_ints(output_padding, n, op, "output_padding", minimum=0)
        self.padding_mode = padding_mode
        if self.transposed:
            if padding_mode != "zeros":
                raise InvalidArgumentError(f"only 'zeros' padding mode is supported for {type(self).__name__}")
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = new_param(*shape, dtype=dtype, device=device)
        if bias:
            self.bias = new_param(out_channels, dtype=dtype, device=device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, generator=None):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound, generator=generator)

    def _explicit_padding(self):
        """Per-dim (left, right) padding, or None for the plain symmetric int padding."""
        if self.padding == "valid":
            return [(0, 0)] * self._n
        if self.padding == "same":
            out = []
            for k, d in zip(self.kernel_size, self.dilation):
                total = d * (k - 1)
                out.append((total // 2, total - total // 2))
            return out
        return [(p, p) for p in self.padding]

    def _conv_input(self, x):
        """Pad the input explicitly where the conv op's symmetric zero padding does not do it.

        Returns (x, padding for the conv op)."""
        pads = self._explicit_padding()
        symmetric = all(a == b for a, b in pads)
        if self.padding_mode == "zeros" and symmetric:
            return x, tuple(a for a, _ in pads)
        flat = []
        for a, b in reversed(pads):  # F.pad takes the last dim first
            flat += [a, b]
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return F.pad(x, tuple(flat), mode=mode), (0,) * self._n

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._n:
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1,) * self._n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, 0, device, dtype)

    def forward(self, x):
        # the functional op validates the input (shape, channels, dtype) and handles the unbatched layout
        x, pad = self._conv_input(x)
        return self._op(x, self.weight, self.bias, self.stride, pad, self.dilation, self.groups)


class Conv1d(_Conv):
    """1-d convolution: input (N, C_in, L) -> (N, C_out, L_out) (see the module docstring)."""

    _n = 1

    @staticmethod
    def _op(*a):
        return F.conv1d(*a)


class Conv2d(_Conv):
    """2-d convolution: input (N, C_in, H, W) -> (N, C_out, H_out, W_out) (see the module docstring)."""

    _n = 2

    @staticmethod
    def _op(*a):
        return F.conv2d(*a)


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device, dtype)
        if isinstance(self.padding, str):
            raise InvalidArgumentError(f"{type(self).__name__} does not accept string padding {self.padding!r}")
        for op_, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op_ >= max(s, d):
                raise InvalidArgumentError(f"output_padding {self.output_padding} must be smaller than either "
                                           f"stride {self.stride} or dilation {self.dilation}")

    def _output_padding(self, x, output_size):
        """output_padding that makes the output exactly ``output_size`` (spatial dims), as PyTorch."""
        if output_size is None:
            return self.output_padding
        check_tensor(x, type(self).__name__)
        size = check_iterable(output_size, type(self).__name__, "output_size")
        if len(size) < self._n or not all(isinstance(v, int) and not isinstance(v, bool) for v in size[-self._n:]):
            raise InvalidArgumentError(f"{type(self).__name__}: output_size must end with {self._n} ints, "
                                       f"got {output_size!r}")
        size = tuple(size)[-self._n:]
        out = []
        for i in range(self._n):
            base = ((x.shape[x.ndim - self._n + i] - 1) * self.stride[i] - 2 * self.padding[i]
                    + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            extra = size[i] - base
            if not 0 <= extra < max(self.stride[i], self.dilation[i]):
                raise ShapeError(f"requested output size {tuple(size)} is not reachable from input shape "
                                 f"{tuple(x.shape)} (dim {i}: between {base} and "
                                 f"{base + max(self.stride[i], self.dilation[i]) - 1})")
            out.append(extra)
        return tuple(out)

    def forward(self, x, output_size=None):
        op = self._output_padding(x, output_size)
        return self._op(x, self.weight, self.bias, self.stride, self.padding, op, self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """Transposed 1-d convolution: (N, C_in, L) -> (N, C_out, L_out) (see the module docstring)."""

    _n = 1

    @staticmethod
    def _op(*a):
        return F.conv_transpose1d(*a)


class ConvTranspose2d(_ConvTranspose):
    """Transposed 2-d convolution ("deconvolution", DCGAN's generator): (N, C_in, H, W) -> (N, C_out, H_out, W_out)."""

    _n = 2

    @staticmethod
    def _op(*a):
        return F.conv_transpose2d(*a)
