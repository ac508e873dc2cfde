r"""Spectral normalisation (Miyato et al., 2018) as a forward pre-hook, ``torch.nn.utils.spectral_norm``'s
semantics.

The weight is divided by an estimate of its largest singular value::

    W_mat = W with dimension ``dim`` moved first, reshaped to (h, w)
    repeat n_power_iterations times (training mode only, no gradient):
        v = normalize(W_mat^T u),   u = normalize(W_mat v)        (normalize(x) = x / max(||x||, eps))
    sigma = u . (W_mat v)
    W_sn = W / sigma

``u`` (h,) and ``v`` (w,) start as normalised standard-normal draws and persist as buffers ``<name>_u`` and
``<name>_v``; the trainable parameter becomes ``<name>_orig`` (PyTorch's state-dict keys). Gradients flow
through sigma as well as W (u and v are constants of the backward). ``dim`` defaults to 0, or 1 for
the transposed convolutions (their output channels are dimension 1).
"""
from __future__ import annotations

from ...autograd.grad_mode import no_grad
from ...errors import InvalidArgumentError
from ..parameter import Parameter

__all__ = ["spectral_norm", "remove_spectral_norm"]


def _normalize(x, eps):
    n = (x * x).sum().sqrt()
    return x / n.clamp(min=eps)


class _SpectralNorm:
    def __init__(self, name, n_power_iterations, dim, eps):
        self.name = name
        self.n_power_iterations = n_power_iterations
        self.dim = dim
        self.eps = eps

    def matrix(self, weight):
        if self.dim != 0:
            perm = [self.dim] + [d for d in range(weight.ndim) if d != self.dim]
            weight = weight.permute(*perm)
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        w_mat = self.matrix(weight)
        if do_power_iteration:
            with no_grad():
                w_const = w_mat.detach()
                for _ in range(self.n_power_iterations):
                    v.copy_(_normalize(w_const.t().matmul(u), self.eps))
                    u.copy_(_normalize(w_const.matmul(v), self.eps))
            if self.n_power_iterations > 0:
                u, v = u.clone(), v.clone()
        sigma = u.dot(w_mat.matmul(v))
        return weight / sigma

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12, dim=None):
    """Divide ``module.<name>`` by its spectral norm before every forward (see the module docstring);
    returns ``module``."""
    from ..modules.conv import ConvTranspose1d, ConvTranspose2d
    from ..modules.module import Module
    from ...tensor import randn

    if not isinstance(module, Module):
        raise InvalidArgumentError(f"spectral_norm expects a Module, got {type(module).__name__}")
    if not isinstance(n_power_iterations, int) or isinstance(n_power_iterations, bool) or n_power_iterations < 0:
        raise InvalidArgumentError(f"spectral_norm: n_power_iterations must be a non-negative int, "
                                   f"got {n_power_iterations!r}")
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, _SpectralNorm) and hook.name == name:
            raise InvalidArgumentError(f"cannot register two spectral_norm hooks on the same parameter {name!r}")
    weight = module._parameters.get(name)
    if weight is None:
        raise InvalidArgumentError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d)) else 0
    if not -weight.ndim <= dim < weight.ndim:
        raise InvalidArgumentError(f"spectral_norm: dim {dim} is out of range for a parameter of shape "
                                   f"{tuple(weight.shape)}")
    fn = _SpectralNorm(name, n_power_iterations, dim % weight.ndim, float(eps))
    with no_grad():
        h, w = fn.matrix(weight.detach()).shape
        u = _normalize(randn(h, dtype=weight.dtype, device=weight.device), fn.eps)
        v = _normalize(randn(w, dtype=weight.dtype, device=weight.device), fn.eps)
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    setattr(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module, name: str = "weight"):
    """Undo :func:`spectral_norm`: ``<name>`` becomes a Parameter holding the current normalised weight."""
    from ..modules.module import Module

    if not isinstance(module, Module):
        raise InvalidArgumentError(f"remove_spectral_norm expects a Module, got {type(module).__name__}")
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, _SpectralNorm) and hook.name == name:
            weight = hook.compute_weight(module, do_power_iteration=False).detach()
            delattr(module, name)
            del module._parameters[name + "_orig"]
            del module._buffers[name + "_u"]
            del module._buffers[name + "_v"]
            module.register_parameter(name, Parameter(weight))
            del module._forward_pre_hooks[k]
            return module
    raise InvalidArgumentError(f"spectral_norm of {name!r} not found in {type(module).__name__}")
