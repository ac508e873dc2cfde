r"""Parametrization-based ``weight_norm`` and ``spectral_norm`` (``torch.nn.utils.parametrizations``), built on
:mod:`minigen.nn.utils.parametrize`.

- ``weight_norm(module, name, dim=0)``: w = g * v / ||v|| (norm over every dimension but ``dim``; ``dim=None``:
  the whole tensor); originals ``parametrizations.<name>.original0`` (g) and ``original1`` (v).
- ``spectral_norm(module, name, n_power_iterations=1, eps=1e-12, dim=None)``: W / sigma with sigma the
  power-iteration estimate of W's largest singular value::

      W_mat = W with ``dim`` moved first, flattened to (h, w)
      repeat (training mode only, no gradient):  u = normalize(W_mat v),  v = normalize(W_mat^T u)
      sigma = u . (W_mat v)

  ``u``, ``v`` are buffers ``parametrizations.<name>.0._u`` / ``._v``, initialised from normalised normal draws
  and 15 power iterations at registration; a 1-d weight is just normalised (W / max(||W||, eps)).
  ``dim`` defaults to 0, or 1 for transposed convolutions.
"""
from __future__ import annotations

from ...autograd.grad_mode import no_grad
from ...errors import InvalidArgumentError
from ..modules.module import Module
from . import parametrize
from ._weight_norm import norm_except_dim

__all__ = ["weight_norm", "spectral_norm"]


def _normalize(x, eps):
    return x / (x * x).sum().sqrt().clamp(min=eps)


class _WeightNorm(Module):
    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return weight_v * (weight_g / norm_except_dim(weight_v, 2, self.dim))

    def right_inverse(self, weight):
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module, name: str = "weight", dim=0):
    """Register the weight-norm parametrization ``g * v / ||v||`` on ``module.<name>``; returns ``module``."""
    weight = getattr(module, name, None)
    if weight is None:
        raise InvalidArgumentError(f"weight_norm: {type(module).__name__} has no parameter {name!r}")
    if dim is not None and dim != -1 and not -weight.ndim <= dim < weight.ndim:
        raise InvalidArgumentError(f"weight_norm: dim {dim} is out of range for shape {tuple(weight.shape)}")
    if dim is not None and dim < -1:
        dim += weight.ndim
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if not -ndim <= dim < max(ndim, 1):
            raise InvalidArgumentError(f"spectral_norm: dim {dim} is out of range for shape {tuple(weight.shape)}")
        if not isinstance(n_power_iterations, int) or isinstance(n_power_iterations, bool) or n_power_iterations < 1:
            raise InvalidArgumentError("spectral_norm: n_power_iterations must be a positive int, got "
                                       f"{n_power_iterations!r}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = float(eps)
        self.n_power_iterations = n_power_iterations
        if ndim > 1:
            from ...tensor import randn

            w = self._matrix(weight.detach())
            h, k = w.shape
            self.register_buffer("_u", _normalize(randn(h, dtype=weight.dtype, device=weight.device), self.eps))
            self.register_buffer("_v", _normalize(randn(k, dtype=weight.dtype, device=weight.device), self.eps))
            self._power_method(w, 15)

    def _matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute(self.dim, *[d for d in range(weight.ndim) if d != self.dim])
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, w, n):
        with no_grad():
            w = w.detach()
            for _ in range(n):
                self._u.copy_(_normalize(w.matmul(self._v), self.eps))
                self._v.copy_(_normalize(w.t().matmul(self._u), self.eps))

    def forward(self, weight):
        if weight.ndim == 1:
            return _normalize(weight, self.eps)
        w = self._matrix(weight)
        if self.training:
            self._power_method(w, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = u.dot(w.matmul(v))
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12, dim=None):
    """Register the spectral-norm parametrization ``W / sigma(W)`` on ``module.<name>``; returns ``module``."""
    from ..modules.conv import ConvTranspose1d, ConvTranspose2d

    weight = getattr(module, name, None)
    if weight is None:
        raise InvalidArgumentError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d)) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
