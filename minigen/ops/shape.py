"""Shape and indexing ops: reshape, permute, broadcast, sum_to, getitem, setitem.

These move elements around without arithmetic, so each backward is the
inverse movement: reshape back, permute by the inverse permutation, sum over
broadcast dims, scatter-add into the indexed positions.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..autograd.function import Function
from ..autograd.grad_mode import STATE
from ..backend import get_array_module, move_array
from ..errors import DTypeError, IndexOutOfRangeError, ShapeError
from ..tensor import Tensor
from ..argcheck import norm_dim

__all__ = ["reshape", "view", "permute", "transpose", "broadcast_to", "expand", "sum_to"]


from ..autograd.broadcast import BroadcastTo, SumTo, _sum_to_array, broadcast_to, sum_to  # noqa: F401,E402


def expand(x, *sizes):
    """PyTorch's expand: -1 keeps a dimension's size."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ShapeError(f"expand: the number of sizes {tuple(sizes)} must be at least the number of dims of "
                         f"shape {tuple(x.shape)}")
    shape = tuple(x.shape[i - lead] if (s == -1 and i >= lead) else s for i, s in enumerate(sizes))
    return broadcast_to(x, shape)


# ------------------------------------------------------------------ reshape / permute
class Reshape(Function):
    """y = x viewed with a new shape (same elements, row-major order).   dx = reshape(g, x.shape)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ShapeError(f"cannot reshape a tensor of shape {tuple(x.shape)} ({x.size} elements) "
                             f"into shape {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        return (reshape(g, ctx.in_shape),)


def reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(builtins.int(s) for s in shape)
    if x.shape == shape:
        return x
    out = Reshape.apply(x, shape)
    if out.array.base is not None:
        out._vc = x._vc  # a view shares the version counter
        out._view = (x, None)
    return out


view = reshape


class Permute(Function):
    """y = x with dims reordered by ``perm``.   dx = permute(g, argsort(perm))."""

    reads = ()

    @staticmethod
    def forward(ctx, x, perm):
        ctx.perm = perm
        return x.transpose(perm)

    @staticmethod
    def backward(ctx, g):
        inv = tuple(int(i) for i in np.argsort(ctx.perm))
        return (Permute.apply(g, inv),)


def permute(x, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    perm = tuple(norm_dim(d, x.ndim) for d in dims)
    if len(perm) != x.ndim or sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"permute: dims {tuple(dims)} is not a permutation of the {x.ndim} dims of shape "
                         f"{tuple(x.shape)}")
    out = Permute.apply(x, perm)
    out._vc, out._view = x._vc, (x, None)
    return out


def transpose(x, dim0, dim1):
    if x.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    d0, d1 = norm_dim(dim0, x.ndim), norm_dim(dim1, x.ndim)
    perm = list(range(x.ndim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    out = Permute.apply(x, tuple(perm))
    out._vc, out._view = x._vc, (x, None)
    return out


# ------------------------------------------------------------------ indexing
def _norm_index(index, shape):
    """Turn tensors inside an index expression into arrays; reject float indices clearly."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for it in items:
        if isinstance(it, Tensor):
            it = it.array
        if isinstance(it, list):
            it = np.asarray(it)
            if it.size == 0:
                it = it.astype(np.int64)
        if hasattr(it, "dtype") and hasattr(it, "ndim"):
            if it.dtype.kind not in "iub":
                raise DTypeError(f"tensors used as indices must be integer or bool, got dtype {it.dtype} "
                                 f"(indexing a tensor of shape {tuple(shape)})")
        elif isinstance(it, float):
            raise DTypeError(f"float index {it} into a tensor of shape {tuple(shape)}: indices must be integers")
        out.append(it)
    return tuple(out) if isinstance(index, tuple) else out[0]


def _is_basic(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (builtins.int, slice, type(None), type(Ellipsis))) and not isinstance(i, builtins.bool)
               for i in items)


class GetItem(Function):
    """y = x[index] (basic, integer-array and boolean indexing).

    dx = scatter-add of g into zeros_like(x) at ``index`` (repeated indices accumulate).
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, index):
        ctx.in_shape, ctx.index = x.shape, index
        try:
            return x[index]
        except IndexError as e:
            raise IndexOutOfRangeError(f"index {_fmt_index(index)} is out of range for a tensor of shape "
                                       f"{tuple(x.shape)}: {e}") from None

    @staticmethod
    def backward(ctx, g):
        if not STATE.enabled:
            # first-order: a lazy "zeros except x[index]" gradient the engine adds in place
            from ..autograd.engine import SliceGrad

            return (SliceGrad(ctx.in_shape, ctx.index, g.array, _is_basic(ctx.index)), None)
        return (IndexAddInto.apply(g, ctx.in_shape, ctx.index), None)


class IndexAddInto(Function):
    """y = zeros(shape); y[index] += g (scatter-add).   dg = y_grad[index]."""

    reads = ()

    @staticmethod
    def forward(ctx, g, shape, index):
        ctx.index = index
        xp = get_array_module(g)
        out = xp.zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            out[index] = g
        elif xp is np:
            np.add.at(out, index, g)
        elif getattr(xp.add, "at", None) is not None:  # CuPy >= 13
            xp.add.at(out, index, g)
        else:
            import cupyx

            cupyx.scatter_add(out, index, g)
        return out

    @staticmethod
    def backward(ctx, gg):
        return (GetItem.apply(gg, ctx.index), None, None)


def _fmt_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(f"array(shape={tuple(i.shape)})" if hasattr(i, "shape") else repr(i) for i in items) + "]"


def getitem(x, index):
    idx = _norm_index(index, x.shape)
    out = GetItem.apply(x, idx)
    if _is_basic(idx):
        out._vc = x._vc  # basic indexing returns a view
        out._view = (x, idx)
    return out


def _fit_value(v, sel_shape):
    """Drop leading size-1 dims of an assigned value that the selection does not have (as PyTorch)."""
    shp = tuple(getattr(v, "shape", ()))
    extra = len(shp) - len(sel_shape)
    if extra > 0 and all(d == 1 for d in shp[:extra]):
        return shp[extra:]
    return shp


class SetItem(Function):
    """y = x with y[index] = v.   dx = g with g[index] = 0;  dv = sum_to(g[index], v.shape)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, v, index):
        ctx.index = index
        out = x.copy()
        sel_shape = x[index].shape
        if hasattr(v, "shape"):
            fitted = _fit_value(v, sel_shape)
            if fitted != v.shape:
                v = v.reshape(fitted)
        try:
            out[index] = v
        except ValueError:
            raise ShapeError(f"cannot assign a value of shape {tuple(getattr(v, 'shape', ()))} to "
                             f"x{_fmt_index(index)} (x of shape {tuple(x.shape)}, selection of shape "
                             f"{tuple(sel_shape)})") from None
        return out

    @staticmethod
    def backward(ctx, g):
        x, v, index = ctx.args
        gx = SetItem.apply(g, 0.0, index) if ctx.next_nodes[0] is not None else None
        gv = None
        if isinstance(v, Tensor) and ctx.next_nodes[1] is not None:
            sel = GetItem.apply(g, index)
            gv = reshape(sum_to(sel, _fit_value(v, sel.shape)), v.shape)
        return gx, gv, None


def setitem(x, index, value):
    """``x[index] = value`` in place (autograd-aware, bumps the version counter)."""
    idx = _norm_index(index, x.shape)
    if isinstance(value, Tensor) and value.device != x.device:
        from ..errors import DeviceError

        raise DeviceError(f"cannot assign a tensor on {value.device} into a tensor on {x.device}")
    if not isinstance(value, Tensor) and not isinstance(value, (builtins.int, builtins.float, builtins.bool)):
        # host data (lists, NumPy arrays) goes to x's device first (CuPy does not mix with NumPy arrays)
        value = Tensor._make(move_array(np.asarray(value, dtype=x.dtype), x.device))
    track = STATE.enabled and (x.requires_grad or (isinstance(value, Tensor) and value.requires_grad))
    if not track:
        try:
            val = value.array if isinstance(value, Tensor) else value
            if hasattr(val, "shape"):
                fitted = _fit_value(val, x.array[idx].shape)
                if fitted != val.shape:
                    val = val.reshape(fitted)
            x.array[idx] = val
        except IndexError as e:
            raise IndexOutOfRangeError(f"index {_fmt_index(idx)} is out of range for a tensor of shape "
                                       f"{tuple(x.shape)}: {e}") from None
        except ValueError:
            raise ShapeError(f"cannot assign a value of shape {tuple(getattr(value, 'shape', ()))} to "
                             f"x{_fmt_index(idx)} (x of shape {tuple(x.shape)})") from None
        x._vc[0] += 1
        return x
    return x._inplace(lambda a, v: SetItem.apply(a, v, idx), value)


