r"""Weight normalisation (Salimans & Kingma, 2016) as a forward pre-hook, ``torch.nn.utils.weight_norm``'s
semantics.

The parameter ``w`` is replaced by a magnitude ``g`` and a direction ``v``::

    w = g * v / ||v||

where the norm is taken over every dimension except ``dim`` (so ``g`` has ``w``'s size along ``dim`` and 1
elsewhere); ``dim=None`` normalises the whole tensor at once (``g`` is 0-d). The module gets parameters
``<name>_g`` and ``<name>_v`` in place of ``<name>`` (the state-dict keys PyTorch uses), and ``<name>`` is
recomputed from them before every forward, so gradients reach ``g`` and ``v``.
"""
from __future__ import annotations

from ...errors import InvalidArgumentError
from ..parameter import Parameter

__all__ = ["weight_norm", "remove_weight_norm", "norm_except_dim"]


def norm_except_dim(v, pow=2, dim=0):
    """The 2-norm of ``v`` over every dimension except ``dim`` (``dim=-1``: over all of ``v``, a 0-d tensor),
    kept with size 1 in the reduced dimensions."""
    if pow != 2:
        raise InvalidArgumentError(f"norm_except_dim: only pow=2 is supported, got {pow!r}")
    if dim == -1:
        return (v * v).sum().sqrt()
    axes = tuple(i for i in range(v.ndim) if i != dim)
    if not axes:
        return (v * v).sqrt()
    return (v * v).sum(dim=axes, keepdim=True).sqrt()


class _WeightNorm:
    def __init__(self, name, dim):
        self.name = name
        self.dim = dim

    def compute_weight(self, module):
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return v * (g / norm_except_dim(v, 2, self.dim))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name: str = "weight", dim=0):
    """Reparametrise ``module.<name>`` as ``g * v / ||v||`` (see the module docstring); returns ``module``."""
    from ..modules.module import Module

    if not isinstance(module, Module):
        raise InvalidArgumentError(f"weight_norm expects a Module, got {type(module).__name__}")
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, _WeightNorm) and hook.name == name:
            raise InvalidArgumentError(f"cannot register two weight_norm hooks on the same parameter {name!r}")
    weight = module._parameters.get(name)
    if weight is None:
        raise InvalidArgumentError(f"weight_norm: {type(module).__name__} has no parameter {name!r}")
    if dim is None:
        dim = -1
    if dim != -1 and not -weight.ndim <= dim < weight.ndim:
        raise InvalidArgumentError(f"weight_norm: dim {dim} is out of range for a parameter of shape "
                                   f"{tuple(weight.shape)}")
    if dim != -1 and dim < 0:
        dim += weight.ndim
    fn = _WeightNorm(name, dim)
    del module._parameters[name]
    module.register_parameter(name + "_g", Parameter(norm_except_dim(weight.detach(), 2, dim).detach()))
    module.register_parameter(name + "_v", Parameter(weight.detach()))
    setattr(module, name, fn.compute_weight(module))
    module.register_forward_pre_hook(fn)
    return module


def remove_weight_norm(module, name: str = "weight"):
    """Undo :func:`weight_norm`: ``<name>`` becomes a Parameter again, holding ``g * v / ||v||``."""
    from ..modules.module import Module

    if not isinstance(module, Module):
        raise InvalidArgumentError(f"remove_weight_norm expects a Module, got {type(module).__name__}")
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, _WeightNorm) and hook.name == name:
            weight = hook.compute_weight(module).detach()
            delattr(module, name)
            del module._parameters[name + "_g"]
            del module._parameters[name + "_v"]
            module.register_parameter(name, Parameter(weight))
            del module._forward_pre_hooks[k]
            return module
    raise InvalidArgumentError(f"weight_norm of {name!r} not found in {type(module).__name__}")
