r"""Folding an inference-mode batch norm into the preceding convolution or linear layer
(``torch.nn.utils.fusion``).

With s = bn_weight / sqrt(running_var + eps), a BN after ``y = W x + b`` computes
``s * (y - running_mean) + bn_bias``, which is one affine layer::

    W' = W * s            (s broadcast along the output-channel dimension: 0, or 1 for transposed convs)
    b' = (b - running_mean) * s + bn_bias
"""
from __future__ import annotations

import copy

from ...errors import InvalidArgumentError
from ...tensor import ones_like, zeros_like
from ..parameter import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"]


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """The fused (weight, bias) Parameters of a convolution followed by an eval-mode batch norm."""
    if conv_b is None:
        conv_b = zeros_like(bn_rm)
    if bn_w is None:
        bn_w = ones_like(bn_rm)
    if bn_b is None:
        bn_b = zeros_like(bn_rm)
    inv = (bn_rv + bn_eps).rsqrt()
    shape = [1] * conv_w.ndim
    shape[1 if transpose else 0] = -1
    w = conv_w * (bn_w * inv).reshape(*shape)
    b = (conv_b - bn_rm) * inv * bn_w + bn_b
    return (Parameter(w.detach().to(conv_w.dtype), conv_w.requires_grad),
            Parameter(b.detach().to(conv_b.dtype), conv_b.requires_grad))


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """A copy of ``conv`` that computes ``bn(conv(x))`` of the eval-mode modules in one layer."""
    if conv.training or bn.training:
        raise InvalidArgumentError("fusion is only for evaluation: call .eval() on both modules first")
    fused = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise InvalidArgumentError("fusion needs a batch norm that tracks running statistics")
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """The fused (weight, bias) Parameters of a linear layer followed by an eval-mode batch norm."""
    if linear_w.shape[0] != bn_rm.shape[0]:
        raise InvalidArgumentError(f"linear out_features {linear_w.shape[0]} != batch-norm features "
                                   f"{bn_rm.shape[0]}")
    if linear_b is None:
        linear_b = zeros_like(bn_rm)
    scale = bn_w * (bn_rv + bn_eps).rsqrt()
    w = linear_w * scale.unsqueeze(-1)
    b = (linear_b - bn_rm) * scale + bn_b
    return (Parameter(w.detach(), linear_w.requires_grad), Parameter(b.detach(), linear_b.requires_grad))


def fuse_linear_bn_eval(linear, bn):
    """A copy of ``linear`` that computes ``bn(linear(x))`` of the eval-mode modules in one layer."""
    if linear.training or bn.training:
        raise InvalidArgumentError("fusion is only for evaluation: call .eval() on both modules first")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused
