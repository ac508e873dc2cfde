"""``Flatten`` and ``Unflatten``: reshape a range of dims into one, and back."""
from __future__ import annotations

from ...argcheck import check_int_value, check_shape, check_tensor, norm_dim
from .module import Module

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = check_int_value(start_dim, "Flatten", "start_dim")
        self.end_dim = check_int_value(end_dim, "Flatten", "end_dim")

    def forward(self, x):
        check_tensor(x, "Flatten")
        if x.ndim == 0:
            return x.reshape(1)
        s, e = norm_dim(self.start_dim, x.ndim, "start_dim"), norm_dim(self.end_dim, x.ndim, "end_dim")
        if s > e:
            from ...errors import InvalidArgumentError

            raise InvalidArgumentError(f"flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} "
                                       f"for a tensor of shape {tuple(x.shape)}")
        n = 1
        for d in x.shape[s:e + 1]:
            n *= d
        return x.reshape(tuple(x.shape[:s]) + (n,) + tuple(x.shape[e + 1:]))

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size``: Unflatten(1, (C, H, W)) maps (N, C*H*W) -> (N, C, H, W)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim = check_int_value(dim, "Unflatten", "dim")
        self.unflattened_size = check_shape(unflattened_size, "Unflatten", "unflattened_size", minimum=-1)

    def forward(self, x):
        check_tensor(x, "Unflatten")
        d = norm_dim(self.dim, x.ndim)
        return x.reshape(tuple(x.shape[:d]) + self.unflattened_size + tuple(x.shape[d + 1:]))

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
