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


def _check(op, **tensors):
    from ...argcheck import check_tensor

    for name, t in tensors.items():
        check_tensor(t, op, name, allow_none=name in ("conv_b", "linear_b", "bn_w", "bn_b"))
    shapes = {name: tuple(t.shape) for name, t in tensors.items() if t is not None and not name.endswith("_w")}
    if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 1:
        raise InvalidArgumentError(f"{op}: the biases and batch-norm statistics must be 1-d of one length, got "
                                   f"{shapes}")


def _check_modules(op, layer, bn):
    from ..modules.module import Module

    for name, m in (("the layer", layer), ("the batch norm", bn)):
        if not isinstance(m, Module):
            raise InvalidArgumentError(f"{op}: {name} must be a Module, got {type(m).__name__}")
    if not hasattr(bn, "running_mean") or not hasattr(bn, "eps"):
        raise InvalidArgumentError(f"{op}: {type(bn).__name__} is not a batch-norm module")


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """The fused (weight, bias) Parameters of a convolution followed by an eval-mode batch norm."""
    from ...argcheck import check_flag, check_number

    _check("fuse_conv_bn_weights", conv_w=conv_w, conv_b=conv_b, bn_rm=bn_rm, bn_rv=bn_rv, bn_w=bn_w, bn_b=bn_b)
    bn_eps = check_number(bn_eps, "fuse_conv_bn_weights", "bn_eps", lo=0.0)
    transpose = check_flag(transpose, "fuse_conv_bn_weights", "transpose")
    if conv_w.ndim < 2 or conv_w.shape[1 if transpose else 0] != bn_rm.shape[0]:
        raise InvalidArgumentError(f"fuse_conv_bn_weights: a weight of shape {tuple(conv_w.shape)} does not match "
                                   f"{bn_rm.shape[0]} batch-norm features")
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
    _check_modules("fuse_conv_bn_eval", conv, bn)
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
    from ...argcheck import check_number

    _check("fuse_linear_bn_weights", linear_w=linear_w, linear_b=linear_b, bn_rm=bn_rm, bn_rv=bn_rv, bn_w=bn_w,
           bn_b=bn_b)
    bn_eps = check_number(bn_eps, "fuse_linear_bn_weights", "bn_eps", lo=0.0)
    if bn_w is None:
        bn_w = ones_like(bn_rm)
    if bn_b is None:
        bn_b = zeros_like(bn_rm)
    if linear_w.ndim != 2 or linear_w.shape[0] != bn_rm.shape[0]:
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
    _check_modules("fuse_linear_bn_eval", linear, bn)
    if linear.training or bn.training:
        raise InvalidArgumentError("fusion is only for evaluation: call .eval() on both modules first")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused
