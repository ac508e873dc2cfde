"""Gradient and parameter utilities: clipping, flattening to a vector, counting; :mod:`.rnn` for
variable-length sequences (``pad_sequence``, ``pack_padded_sequence``, ``PackedSequence``...).

``clip_grad_norm_(params, max_norm)``: with the total norm over all gradients
    N = (sum_p ||g_p||_q^q)^(1/q)      (q = norm_type; q = inf: N = max_p max|g_p|)
every gradient is scaled in place by min(1, max_norm / (N + 1e-6)); N is returned.
``clip_grad_value_(params, c)``: g = clamp(g, -c, c) elementwise.
"""
from __future__ import annotations

import math

import numpy as np

from ...backend import get_array_module, move_array, to_numpy
from ...errors import DTypeError, InvalidArgumentError, ShapeError
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "parameters_to_vector", "vector_to_parameters",
           "count_parameters", "rnn", "clip_grads_with_norm_", "clip_grad_norm", "weight_norm", "remove_weight_norm",
           "spectral_norm", "remove_spectral_norm", "parametrize", "parametrizations", "stateless",
           "fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights", "clip_grad",
           "convert_parameters", "fusion", "skip_init", "convert_conv2d_weight_memory_format",
           "convert_conv3d_weight_memory_format"]


def _params(parameters, op="nn.utils", allow_none=False):
    """A Tensor or an iterable of Tensors (``None`` entries kept with ``allow_none``) as a list; anything else
    is a DTypeError / InvalidArgumentError naming ``op``."""
    from ...argcheck import check_iterable

    if isinstance(parameters, Tensor):
        return [parameters]
    items = check_iterable(parameters, op, "parameters")
    for i, t in enumerate(items):
        if not isinstance(t, Tensor) and not (allow_none and t is None):
            raise DTypeError(f"{op}: parameters[{i}] must be a Tensor, got {type(t).__name__}")
    return items


def _grads(params, op):
    """The parameters whose ``.grad`` is set, each gradient checked to be a Tensor of its parameter's shape."""
    out = []
    for p in params:
        g = p.grad
        if g is None:
            continue
        if not isinstance(g, Tensor) or tuple(g.shape) != tuple(p.shape):
            raise ShapeError(f"{op}: a parameter of shape {tuple(p.shape)} has a gradient "
                             f"{tuple(g.shape) if isinstance(g, Tensor) else type(g).__name__}")
        out.append(p)
    return out


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """(sum_i ||t_i||_q^q)^(1/q) over the given tensors (q = inf: the largest |element|); a 0-d float tensor."""
    from ...argcheck import check_flag, check_number

    ts = [t for t in _params(tensors, "get_total_norm", allow_none=True) if t is not None]
    q = check_number(norm_type, "get_total_norm", "norm_type")
    error_if_nonfinite = check_flag(error_if_nonfinite, "get_total_norm", "error_if_nonfinite")
    if not ts:
        return Tensor._make(np.asarray(0.0, dtype=np.float32))
    dt = ts[0].dtype
    if q == math.inf:
        total = max(float(get_array_module(t.array).abs(t.array).max()) if t.array.size else 0.0 for t in ts)
    elif q <= 0:
        raise InvalidArgumentError(f"norm_type must be positive, got {norm_type}")
    else:
        acc = 0.0
        for t in ts:
            a = t.array.astype(np.float64) if t.array.dtype != np.float64 else t.array
            acc += float((get_array_module(a).abs(a) ** q).sum())
        total = acc ** (1.0 / q)
    if error_if_nonfinite and not math.isfinite(total):
        raise InvalidArgumentError(f"the total norm of order {norm_type} of the gradients is non-finite ({total}); "
                                   f"pass error_if_nonfinite=False to clip anyway")
    return Tensor._make(np.asarray(total, dtype=dt))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scale all gradients in place so that their total norm is at most ``max_norm``.

    N = total norm of the gradients (see :func:`get_total_norm`); each gradient is multiplied
    by ``min(1, max_norm / (N + 1e-6))``. Returns N (before clipping), as a 0-d tensor.
    """
    from ...argcheck import check_number

    params = _grads(_params(parameters, "clip_grad_norm_"), "clip_grad_norm_")
    max_norm = check_number(max_norm, "clip_grad_norm_", "max_norm")
    total = get_total_norm([p.grad for p in params], norm_type, error_if_nonfinite)
    coef = min(1.0, max_norm / (float(total.array) + 1e-6))
    for p in params:
        g = p.grad.array
        if coef < 1.0:
            g *= coef
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value], in place."""
    from ...argcheck import check_number

    c = check_number(clip_value, "clip_grad_value_", "clip_value")
    for p in _grads(_params(parameters, "clip_grad_value_"), "clip_grad_value_"):
        if p.grad is not None:
            g = p.grad.array
            get_array_module(g).clip(g, -c, c, out=g)


def parameters_to_vector(parameters) -> Tensor:
    """Concatenate the flattened parameters into one 1-d tensor (a copy; no autograd)."""
    ps = _params(parameters, "parameters_to_vector")
    if not ps:
        raise InvalidArgumentError("parameters_to_vector needs at least one tensor")
    xp = get_array_module(ps[0].array)
    for p in ps[1:]:
        if p.device != ps[0].device:
            from ...errors import DeviceError

            raise DeviceError(f"parameters_to_vector: parameters on {ps[0].device} and {p.device}")
    return Tensor._make(xp.concatenate([p.array.reshape(-1) for p in ps]))


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Write consecutive slices of ``vec`` into the parameters (in place), the inverse of parameters_to_vector."""
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise ShapeError(f"vector_to_parameters expects a 1-d Tensor, got "
                         f"{tuple(vec.shape) if isinstance(vec, Tensor) else type(vec).__name__}")
    ps = _params(parameters, "vector_to_parameters")
    total = sum(p.numel() for p in ps)
    if total != vec.numel():
        raise ShapeError(f"vector_to_parameters: vector has {vec.numel()} elements, the parameters have {total}")
    i = 0
    for p in ps:
        n = p.numel()
        chunk = vec.array[i:i + n].reshape(p.shape)
        p.array[...] = move_array(chunk, p.device).astype(p.dtype, copy=False)
        p._vc[0] += 1
        i += n


def count_parameters(module_or_params, trainable_only: bool = False) -> int:
    """Number of scalar parameters of a Module (or an iterable of tensors), each shared tensor counted once."""
    from ...argcheck import check_flag
    from ..modules.module import Module

    trainable_only = check_flag(trainable_only, "count_parameters", "trainable_only")
    params = (module_or_params.parameters() if isinstance(module_or_params, Module)
              else _params(module_or_params, "count_parameters"))
    seen, n = set(), 0
    for p in params:
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
    return n


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Scale every gradient in place by min(1, max_norm / (total_norm + 1e-6)), with ``total_norm``
    computed beforehand (e.g. by :func:`get_total_norm`); PyTorch's second half of ``clip_grad_norm_``."""
    from ...argcheck import check_number

    tn = check_number(total_norm, "clip_grads_with_norm_", "total_norm", lo=0.0)
    coef = min(1.0, check_number(max_norm, "clip_grads_with_norm_", "max_norm") / (tn + 1e-6))
    params = _grads(_params(parameters, "clip_grads_with_norm_"), "clip_grads_with_norm_")
    if coef < 1.0:
        for p in params:
            p.grad.array[...] *= coef


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """Deprecated alias of :func:`clip_grad_norm_` (as in PyTorch)."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite)


from . import rnn  # noqa: E402,F401  (torch.nn.utils.rnn's path)
from ._weight_norm import weight_norm, remove_weight_norm  # noqa: E402,F401
from ._spectral_norm import spectral_norm, remove_spectral_norm  # noqa: E402,F401
from . import parametrize, parametrizations, stateless  # noqa: E402,F401
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights  # noqa
from . import clip_grad, convert_parameters, fusion  # noqa: E402,F401


def convert_conv2d_weight_memory_format(module, memory_format):
    """Returns ``module`` unchanged: minigen's convolutions choose their own memory layout (PyTorch converts
    the weights to channels-last here)."""
    from ..modules.module import Module

    if not isinstance(module, Module):
        raise InvalidArgumentError(f"convert_conv2d_weight_memory_format expects a Module, got "
                                   f"{type(module).__name__}")
    return module


def convert_conv3d_weight_memory_format(module, memory_format):
    """Returns ``module`` unchanged (see :func:`convert_conv2d_weight_memory_format`)."""
    return convert_conv2d_weight_memory_format(module, memory_format)


def skip_init(module_cls, *args, **kwargs):
    """``module_cls(*args, **kwargs)``: PyTorch's version skips the parameter initialisation to save time;
    minigen's initialisers are cheap, so the module is simply constructed (its values are then overwritten
    by the caller, as with PyTorch)."""
    from ..modules.module import Module

    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise InvalidArgumentError(f"skip_init expects a Module class, got {type(module_cls).__name__}")
    if kwargs.get("device") == "meta":
        del kwargs["device"]
    return module_cls(*args, **kwargs)
