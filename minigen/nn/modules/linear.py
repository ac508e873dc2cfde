"""Affine layers: ``Identity``, ``Linear``, ``Bilinear``, ``LazyLinear`` is not provided.

Default initialisation is PyTorch's: weight ``kaiming_uniform_(a=sqrt(5))`` which is
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""
from __future__ import annotations

import math

from .. import functional as F
from .. import init
from ...argcheck import check_device, check_flag, check_float_dtype, check_float_tensor, check_size
from ...errors import ShapeError
from ._common import new_param
from .module import Module

__all__ = ["Identity", "Linear", "Bilinear"]


class Identity(Module):
    """y = x (arguments are accepted and ignored, as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    """y = x W^T + b.

    ``weight``: (out_features, in_features); ``bias``: (out_features,) or None.
    Input (*, in_features) -> output (*, out_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in_features = check_size(in_features, "Linear", "in_features")
        self.out_features = check_size(out_features, "Linear", "out_features")
        bias = check_flag(bias, "Linear", "bias")
        check_float_dtype(dtype, "Linear")
        check_device(device, "Linear")
        self.weight = new_param(out_features, in_features, dtype=dtype, device=device)
        if bias:
            self.bias = new_param(out_features, dtype=dtype, device=device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, generator=None):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    """y_k = x1^T A_k x2 + b_k.

    ``weight``: (out_features, in1_features, in2_features); ``bias``: (out_features,).
    Init: U(-1/sqrt(in1_features), 1/sqrt(in1_features)) for both.
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = (
            check_size(v, "Bilinear", n) for v, n in ((in1_features, "in1_features"), (in2_features, "in2_features"),
                                                      (out_features, "out_features")))
        bias = check_flag(bias, "Bilinear", "bias")
        check_float_dtype(dtype, "Bilinear")
        check_device(device, "Bilinear")
        self.weight = new_param(out_features, in1_features, in2_features, dtype=dtype, device=device)
        if bias:
            self.bias = new_param(out_features, dtype=dtype, device=device)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, generator=None):
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound, generator=generator)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, x1, x2):
        # (*, i) (o, i, j) (*, j): y[..., o] = sum_ij x1[..., i] A[o, i, j] x2[..., j]
        for name, t, n in (("input1", x1, self.in1_features), ("input2", x2, self.in2_features)):
            check_float_tensor(t, "Bilinear", name)
            if t.ndim == 0 or t.shape[-1] != n:
                raise ShapeError(f"Bilinear: {name} must end with {n} features, got shape {tuple(t.shape)}")
        if tuple(x1.shape[:-1]) != tuple(x2.shape[:-1]):
            raise ShapeError(f"Bilinear: input1 and input2 must have the same leading dims, got shapes "
                             f"{tuple(x1.shape)} and {tuple(x2.shape)}")
        lead = x1.shape[:-1]
        a = x1.reshape(-1, 1, 1, self.in1_features) @ self.weight.reshape(1, self.out_features, self.in1_features,
                                                                           self.in2_features)
        # a: (N, o, 1, j)
        y = (a.reshape(-1, self.out_features, self.in2_features) * x2.reshape(-1, 1, self.in2_features)).sum(-1)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
