"""Sorting and selection: sort, argsort, msort, topk, kthvalue, unique, nonzero.

Each differentiable result is a gather of the input at the positions the sort chose:

    forward  values = gather(x, dim, idx)      (idx = the sorting permutation, an integer tensor)
    backward dx = scatter_add(zeros_like(x), dim, idx, g)

so the gradient is the one of :func:`~minigen.ops.indexing.gather` and nothing here is written twice.
Ties keep their original order when ``stable=True`` (PyTorch); NaN sorts as the largest value.
"""
from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from ..argcheck import norm_dim
from ..backend import get_array_module
from ..errors import DTypeError, InvalidArgumentError
from ..tensor import Tensor

__all__ = ["sort", "argsort", "msort", "topk", "kthvalue", "unique", "nonzero"]

sort_result = namedtuple("sort", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])
kthvalue_result = namedtuple("kthvalue", ["values", "indices"])


def _check(x, op):
    if not isinstance(x, Tensor):
        raise DTypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.dtype.kind == "c":
        raise DTypeError(f"{op}: complex tensors cannot be ordered (dtype {x.dtype})")


def _order(arr, axis, descending, stable):
    """The permutation that sorts ``arr`` along ``axis`` (ascending; NaN last), as int64."""
    xp = get_array_module(arr)
    kind = "stable" if stable or descending else None
    if not descending:
        return xp.argsort(arr, axis=axis, kind=kind).astype(np.int64)
    # descending and stable: sort the reversed array ascending, reverse the result, map positions back
    n = arr.shape[axis]
    rev = xp.flip(arr, axis=axis)
    idx = xp.flip(xp.argsort(rev, axis=axis, kind="stable"), axis=axis)
    return (n - 1 - idx).astype(np.int64)


def _gather(x, dim, idx):
    from .indexing import gather

    return gather(x, dim, Tensor._make(idx))


def argsort(input, dim=-1, descending=False, stable=False):
    """Indices that sort ``input`` along ``dim`` (PyTorch's ``torch.argsort``)."""
    _check(input, "argsort")
    if input.ndim == 0:
        return Tensor._make(input.xp.zeros((), dtype=np.int64))
    d = norm_dim(dim, input.ndim)
    return Tensor._make(_order(input.array, d, bool(descending), bool(stable)))


def sort(input, dim=-1, descending=False, stable=False):
    """``(values, indices)`` of ``input`` sorted along ``dim``; values = gather(input, dim, indices)."""
    _check(input, "sort")
    if input.ndim == 0:
        return sort_result(input.clone(), Tensor._make(input.xp.zeros((), dtype=np.int64)))
    d = norm_dim(dim, input.ndim)
    idx = _order(input.array, d, bool(descending), bool(stable))
    return sort_result(_gather(input, d, idx), Tensor._make(idx))


def msort(input):
    """``sort(input, dim=0).values``."""
    return sort(input, 0).values


def _k_arg(k, n, op, dim_size_name):
    if isinstance(k, Tensor):
        k = k.item()
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (builtins.int, np.integer)):
        raise DTypeError(f"{op}: k must be an integer, got {type(k).__name__}")
    return builtins.int(k)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (``largest=False``: smallest) elements along ``dim``, as ``(values, indices)``."""
    _check(input, "topk")
    d = norm_dim(dim, max(input.ndim, 1))
    n = input.shape[d] if input.ndim else 1
    k = _k_arg(k, n, "topk", "")
    if not 0 <= k <= n:
        raise InvalidArgumentError(f"topk: k={k} is out of range for dimension {d} of size {n} "
                                   f"(shape {tuple(input.shape)})")
    x = input if input.ndim else input.reshape(1)
    idx = _order(x.array, d, bool(largest), True)
    xp = x.xp
    idx = xp.take(idx, xp.arange(k), axis=d)
    values, indices = _gather(x, d, idx), Tensor._make(idx)
    if input.ndim == 0:
        values, indices = values.reshape(()), indices.reshape(())
    return topk_result(values, indices)


def kthvalue(input, k, dim=-1, keepdim=False):
    """The ``k``-th smallest element (1-based) along ``dim``, as ``(values, indices)``."""
    _check(input, "kthvalue")
    x = input if input.ndim else input.reshape(1)
    d = norm_dim(dim, x.ndim)
    n = x.shape[d]
    k = _k_arg(k, n, "kthvalue", "")
    if not 1 <= k <= n:
        raise InvalidArgumentError(f"kthvalue: k={k} is out of range for dimension {d} of size {n} "
                                   f"(shape {tuple(input.shape)})")
    xp = x.xp
    idx = xp.take(_order(x.array, d, False, True), xp.asarray([k - 1]), axis=d)
    values, indices = _gather(x, d, idx), Tensor._make(idx)
    if not keepdim or input.ndim == 0:
        values, indices = values.squeeze(d), Tensor._make(idx.squeeze(d))
    if input.ndim == 0:
        values, indices = values.reshape(()), indices.reshape(())
    return kthvalue_result(values, indices)


def nonzero(input, *, as_tuple=False):
    """Indices of the non-zero elements: an (N, ndim) int64 tensor, or a tuple of ndim 1-d tensors."""
    if not isinstance(input, Tensor):
        raise DTypeError(f"nonzero: expected a Tensor, got {type(input).__name__}")
    xp = input.xp
    arr = input.array if input.ndim else input.array.reshape(1)
    nz = xp.nonzero(arr)
    if as_tuple:
        return tuple(Tensor._make(i.astype(np.int64)) for i in nz)
    if input.ndim == 0:
        return Tensor._make(xp.zeros((builtins.int(nz[0].size), 0), dtype=np.int64))
    return Tensor._make(xp.stack(nz, axis=1).astype(np.int64))


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values (sorted), optionally with the inverse indices and counts (``torch.unique``)."""
    _check(input, "unique")
    xp = input.xp
    arr = input.array
    if dim is None:
        vals, inv, cnt = xp.unique(arr.reshape(-1), return_inverse=True, return_counts=True)
        inv = inv.reshape(arr.shape)
    else:
        d = norm_dim(dim, input.ndim)
        vals, inv, cnt = xp.unique(arr, return_inverse=True, return_counts=True, axis=d)
        inv = inv.reshape(-1)
    out = [Tensor._make(vals)]
    if return_inverse:
        out.append(Tensor._make(inv.astype(np.int64)))
    if return_counts:
        out.append(Tensor._make(cnt.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)
