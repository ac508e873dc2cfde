"""``Embedding``: a lookup table, y = weight[indices]."""
from __future__ import annotations

from .. import functional as F
from .. import init
from ...argcheck import check_int_value
from ...errors import InvalidArgumentError
from ...tensor import Tensor
from ..parameter import Parameter
from ._common import new_param
from .module import Module

__all__ = ["Embedding"]


class Embedding(Module):
    """y[..., :] = weight[idx[...], :].

    ``weight``: (num_embeddings, embedding_dim), initialised N(0, 1) (PyTorch's default),
    with the row ``padding_idx`` (if given) set to zero; that row also gets no gradient,
    so it stays zero while training. Backward: d weight[k] = sum of g over positions with idx == k.
    ``idx`` is an argument of the lookup op, saved for the backward: refilling the same ``idx`` tensor in
    place (a reused micro-batch buffer) before that backward raises InplaceError, as in PyTorch.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None, max_norm=None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False, _weight=None,
                 _freeze: bool = False, device=None, dtype=None):
        super().__init__()
        num_embeddings = check_int_value(num_embeddings, "Embedding", "num_embeddings")
        embedding_dim = check_int_value(embedding_dim, "Embedding", "embedding_dim")
        if num_embeddings < 0 or embedding_dim < 0:
            raise InvalidArgumentError(f"Embedding: num_embeddings and embedding_dim must be non-negative, got "
                                       f"{num_embeddings} and {embedding_dim}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            padding_idx = check_int_value(padding_idx, "Embedding", "padding_idx")
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise InvalidArgumentError(
                    f"padding_idx {padding_idx} must be within [-{num_embeddings}, {num_embeddings - 1}]")
            padding_idx = padding_idx % num_embeddings
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse = max_norm, norm_type, scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = new_param(num_embeddings, embedding_dim, dtype=dtype, device=device)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise InvalidArgumentError(f"_weight shape {tuple(_weight.shape)} does not match "
                                           f"({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight)
        if _freeze:
            self.weight.requires_grad_(False)

    def reset_parameters(self, generator=None):
        init.normal_(self.weight, generator=generator)
        if self.padding_idx is not None:
            self.weight.array[self.padding_idx] = 0

    def forward(self, idx):
        return F.embedding(idx, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx=None, **kwargs):
        """An Embedding holding (a copy-free view of) ``embeddings``; frozen by default."""
        if not isinstance(embeddings, Tensor) or embeddings.ndim != 2:
            raise InvalidArgumentError("Embedding.from_pretrained expects a 2-d Tensor")
        n, d = embeddings.shape
        return cls(n, d, padding_idx=padding_idx, _weight=embeddings, _freeze=freeze, **kwargs)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        return s
