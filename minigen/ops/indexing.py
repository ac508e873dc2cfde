"""Indexing: ``x[index]``, ``x[index] = v``, gather / scatter, index_select / index_add, masks, embedding.

Two pairs of ops are each other's adjoint, and every backward here is built from them:

- **read at indices** ``y = x[index]`` (``getitem``, ``gather``, ``index_select``)  <->
  **scatter-add into zeros** ``dx[index] += g`` (write at indices, *adding* where an index repeats);
- the gradient of that scatter-add is the read again, so higher-order gradients come for free and
  repeated indices accumulate their gradients as they should.

Index and mask tensors are *arguments* of the op: they are passed to ``apply`` as Tensors and
declared in ``reads``, so editing one in place between the forward and the backward raises
:class:`~minigen.errors.InplaceError` (as in PyTorch) instead of silently scattering the gradient
to the new positions. An index tensor derived from the user's (reshaped, broadcast, moved to the
input's device) shares the user's version counter, so the check still sees the user's edits.

Index tensors must be integers (a float index is a :class:`~minigen.errors.DTypeError`) within
``[0, size)`` (else :class:`~minigen.errors.IndexOutOfRangeError`, naming the index, the valid range
and the shape).
"""
from __future__ import annotations

import builtins

import numpy as np

from ..autograd.broadcast import broadcast_to
from ..autograd.engine import SliceGrad
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled
from ..backend import get_array_module, move_array
from ..errors import DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError
from ..tensor import Tensor
from ..argcheck import brief, norm_dim

__all__ = ["gather", "take_along_dim", "index_select", "scatter", "scatter_add",
           "index_add", "masked_fill", "masked_select", "embedding", "one_hot"]

_int = builtins.int


# ------------------------------------------------------------------ index tensors
def _derived(t, arr):
    """A Tensor holding ``arr`` (computed from tensor ``t``) that shares ``t``'s version counter."""
    if isinstance(t, Tensor) and arr is t.array:
        return t
    out = Tensor._make(arr)
    if isinstance(t, Tensor):
        out._vc = t._vc
    return out


def _add_at(xp, out, index, values):
    """``out[index] += values`` where repeated positions accumulate (NumPy's / CuPy's ``add.at``)."""
    at = getattr(xp.add, "at", None)
    if at is not None:
        at(out, index, values)
    else:  # older CuPy
        import cupyx

        cupyx.scatter_add(out, index, values)


class _Slot:
    """Marks where an index tensor sits inside an index expression (``spec``)."""

    def __repr__(self):
        return "<tensor>"


_SLOT = _Slot()


def _split_index(index, x):
    """An index expression -> (spec, tensors): ``spec`` with every Tensor replaced by a slot.

    Lists become arrays; float indices and non-integer tensors are rejected clearly."""
    items = index if isinstance(index, tuple) else (index,)
    spec, tensors = [], []
    for it in items:
        arr = it.array if isinstance(it, Tensor) else it
        if isinstance(arr, list):
            arr = np.asarray(arr)
            if arr.size == 0:
                arr = arr.astype(np.int64)
        if hasattr(arr, "dtype") and hasattr(arr, "ndim"):
            if arr.dtype.kind not in "iub":
                raise DTypeError(f"tensors used as indices must be integer or bool, got dtype {arr.dtype} "
                                 f"(indexing a tensor of shape {tuple(x.shape)})")
        elif isinstance(arr, float):
            raise DTypeError(f"float index {arr} into a tensor of shape {tuple(x.shape)}: indices must be integers")
        if isinstance(it, Tensor):
            if type(arr) is not type(x.array):
                it = _derived(it, move_array(arr, x.device))
            tensors.append(it)
            spec.append(_SLOT)
        else:
            spec.append(arr)
    return (tuple(spec) if isinstance(index, tuple) else spec[0]), tuple(tensors)


def _join(spec, arrays):
    """The index expression of ``spec`` with its slots filled by ``arrays`` in order."""
    if spec is _SLOT:
        return arrays[0]
    if not isinstance(spec, tuple) or not arrays:
        return spec
    it = iter(arrays)
    return tuple(next(it) if s is _SLOT else s for s in spec)


def _is_basic(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (builtins.int, slice, type(None), type(Ellipsis))) and not isinstance(i, builtins.bool)
               for i in items)


def _fmt_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(f"array(shape={tuple(i.shape)})" if hasattr(i, "shape") else repr(i) for i in items) + "]"


_VARIANTS: dict = {}


def _for_tensors(cls, k):
    """``cls`` for an index expression holding ``k`` tensors, passed after its fixed arguments.

    The k index tensors are arguments ``cls.n_fixed .. n_fixed + k - 1``; the gradient of each of the
    first ``cls.n_grad`` arguments reads all of them (``reads``), so they are saved and version-checked.
    """
    if k == 0:
        return cls
    v = _VARIANTS.get((cls, k))
    if v is None:
        pos = tuple(range(cls.n_fixed, cls.n_fixed + k))
        reads = (pos,) * cls.n_grad + ((),) * (cls.n_fixed - cls.n_grad + k)
        v = type(cls.__name__, (cls,), {"reads": reads, "__doc__": cls.__doc__, "__module__": cls.__module__})
        _VARIANTS[(cls, k)] = v
    return v


# ------------------------------------------------------------------ x[index]  <->  scatter-add into zeros
class GetItem(Function):
    """y = x[index] (basic, integer-array and boolean indexing; PyTorch / NumPy semantics).

    Arguments ``(x, spec, *index_tensors)``. backward: dx = zeros_like(x) with dx[index] += g
    (:class:`IndexAddInto`; repeated indices accumulate). The first-order fast gradient is the same
    thing left sparse: a :class:`~minigen.autograd.engine.SliceGrad` the engine adds in place, so a
    loop reading x[t] for t = 1..T costs O(T) in backward, not O(T^2).
    """

    n_fixed, n_grad = 2, 1
    reads = ((), ())  # a basic index reads no tensor; see _for_tensors for index tensors

    @staticmethod
    def forward(ctx, x, spec, *idx):
        index = _join(spec, idx)
        ctx.in_shape, ctx.index = x.shape, index
        try:
            return x[index]
        except IndexError as e:
            raise IndexOutOfRangeError(f"index {_fmt_index(index)} is out of range for a tensor of shape "
                                       f"{tuple(x.shape)}: {e}") from None

    @staticmethod
    def backward(ctx, g):
        spec, ts = ctx.args[1], ctx.args[2:]
        gx = _for_tensors(IndexAddInto, len(ts)).apply(g, ctx.in_shape, spec, *ts)
        return (gx, None) + (None,) * len(ts)

    @staticmethod
    def fast_backward(ctx, g):
        n = len(ctx.args) - 1
        return (SliceGrad(ctx.in_shape, ctx.index, g, _is_basic(ctx.index)),) + (None,) * n


class IndexAddInto(Function):
    """y = zeros(shape); y[index] += g (scatter-add).   dg = gy[index] (:class:`GetItem`).

    Arguments ``(g, shape, spec, *index_tensors)``.
    """

    n_fixed, n_grad = 3, 1
    reads = ((), (), ())

    @staticmethod
    def forward(ctx, g, shape, spec, *idx):
        index = _join(spec, idx)
        xp = get_array_module(g)
        out = xp.zeros(shape, dtype=g.dtype)
        if not idx and _is_basic(index):
            out[index] = g
        else:
            _add_at(xp, out, index, g)
        return out

    @staticmethod
    def backward(ctx, gg):
        spec, ts = ctx.args[2], ctx.args[3:]
        return (_for_tensors(GetItem, len(ts)).apply(gg, spec, *ts), None, None) + (None,) * len(ts)


def getitem(x, index):
    """``x[index]``: a view for a basic index (ints, slices, None, ...), a copy otherwise."""
    spec, ts = _split_index(index, x)
    out = _for_tensors(GetItem, len(ts)).apply(x, spec, *ts)
    if not ts and _is_basic(spec):
        out._vc = x._vc  # basic indexing returns a view: it shares the version counter and the base
        out._view = (x, spec)
    return out


# ------------------------------------------------------------------ x[index] = v
def _fit_value(v, sel_shape):
    """Drop leading size-1 dims of an assigned value that the selection does not have (as PyTorch)."""
    shp = tuple(getattr(v, "shape", ()))
    extra = len(shp) - len(sel_shape)
    if extra > 0 and all(d == 1 for d in shp[:extra]):
        return shp[extra:]
    return shp


class SetItem(Function):
    """y = x with y[index] = v (v broadcast to the selection).

    Arguments ``(x, v, spec, *index_tensors)``. backward: dx = g with dx[index] = 0;
    dv = g[index] (the engine sums it back to v's shape where v was broadcast).
    """

    n_fixed, n_grad = 3, 2
    reads = ((), (), ())

    @staticmethod
    def forward(ctx, x, v, spec, *idx):
        index = _join(spec, idx)
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
        v, spec, ts = ctx.args[1], ctx.args[2], ctx.args[3:]
        need_x, need_v = ctx.needs_input_grad[:2]
        gx = _for_tensors(SetItem, len(ts)).apply(g, 0.0, spec, *ts) if need_x else None
        gv = None
        if need_v:
            gv = _for_tensors(GetItem, len(ts)).apply(g, spec, *ts)
            if gv.ndim < v.ndim:  # v had leading size-1 dims the selection lacks
                gv = gv.reshape((1,) * (v.ndim - gv.ndim) + tuple(gv.shape))
        return (gx, gv, None) + (None,) * len(ts)


def setitem(x, index, value):
    """``x[index] = value`` in place (autograd-aware, bumps the version counter)."""
    spec, ts = _split_index(index, x)
    if isinstance(value, Tensor) and value.device != x.device:
        from ..errors import DeviceError

        raise DeviceError(f"cannot assign a tensor on {value.device} into a tensor on {x.device}")
    if not isinstance(value, Tensor) and not isinstance(value, (builtins.int, builtins.float, builtins.bool)):
        # host data (lists, NumPy arrays) goes to x's device first (CuPy does not mix with NumPy arrays)
        try:
            value = Tensor._make(move_array(np.asarray(value, dtype=x.dtype), x.device))
        except (TypeError, ValueError):
            raise DTypeError(f"cannot assign {brief(value)} into a tensor of dtype {x.dtype} "
                             f"(shape {tuple(x.shape)})") from None
    track = is_grad_enabled() and (x.requires_grad or (isinstance(value, Tensor) and value.requires_grad))
    if not track:
        idx = _join(spec, tuple(t.array for t in ts))
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
    fn = _for_tensors(SetItem, len(ts))
    return x._inplace(lambda a, v: fn.apply(a, v, spec, *ts), value)


# ------------------------------------------------------------------ argument helpers
def _index_tensor(index, op, x, what="index"):
    """``index`` (Tensor, array, list or int) as an integer Tensor on ``x``'s device.

    A Tensor comes back as itself (or, moved to x's device, sharing its version counter)."""
    if isinstance(index, Tensor):
        arr = index.array
    elif isinstance(getattr(index, "dtype", None), np.dtype) and hasattr(index, "shape"):  # an array (not a type)
        arr = index
    elif isinstance(index, (list, tuple, builtins.int, builtins.float)):
        arr = np.asarray(index)
        if arr.size == 0:
            arr = arr.astype(np.int64)
    else:
        raise DTypeError(f"{op}: {what} must be an integer tensor, got {type(index).__name__}")
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{op}: {what} must be an integer tensor (int64 or int32), got dtype {arr.dtype} "
                         f"(input of shape {tuple(x.shape)})")
    if type(arr) is not type(x.array):
        arr = move_array(arr, x.device)
    return _derived(index, arr)


def _mask_tensor(mask, op, x):
    """``mask`` as a bool Tensor on ``x``'s device (a Tensor comes back as itself or sharing its version)."""
    arr = mask.array if isinstance(mask, Tensor) else (mask if isinstance(getattr(mask, "dtype", None), np.dtype) else np.asarray(mask))
    if arr.dtype.kind != "b":
        raise DTypeError(f"{op}: mask must be a bool tensor, got dtype {arr.dtype}")
    if type(arr) is not type(x.array):
        arr = move_array(arr, x.device)
    return _derived(mask, arr)


def _check_range(arr, n, op, dim, shape, what="index"):
    if arr.size == 0:
        return
    lo, hi = _int(arr.min()), _int(arr.max())
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        raise IndexOutOfRangeError(f"{op}: {what} {bad} is out of range [0, {n}) for dim {dim} of size {n} "
                                   f"(tensor of shape {tuple(shape)})")


def _index_add_along(xp, out, dim, idx, vals):
    """``out[.., idx[i], ..] += vals[.., i, ..]`` along ``dim``, repeated indices accumulating.

    On NumPy: sort the indices, sum each run of equal indices with ``add.reduceat`` and add
    the sums once per distinct index (several times faster than ``np.add.at`` for row updates).
    """
    if idx.size == 0:
        return
    if xp is not np:
        _add_at(xp, out, _along(dim, out.ndim, idx), vals)
        return
    o, v = np.moveaxis(out, dim, 0), np.moveaxis(vals, dim, 0)   # views: writing o writes out
    order = np.argsort(idx, kind="stable")
    s = idx[order]
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    o[s[starts]] += np.add.reduceat(v[order], starts, axis=0).astype(out.dtype, copy=False)


def _coords(xp, idx, dim):
    """Full coordinates for gather/scatter: ``idx`` along ``dim``, broadcast aranges elsewhere."""
    nd = idx.ndim
    return tuple(idx if d == dim else xp.arange(s).reshape((1,) * d + (s,) + (1,) * (nd - d - 1))
                 for d, s in enumerate(idx.shape))


def _along(dim, ndim, index):
    return (slice(None),) * dim + (index,) + (slice(None),) * (ndim - dim - 1)


def _head(shape):
    """A slice tuple selecting the leading ``shape`` block of a (possibly bigger) array."""
    return tuple(slice(0, s) for s in shape)


def _embed(g, shape):
    """``g`` written into the leading block of zeros(shape) (differentiable; identity if shapes match)."""
    if g.shape == tuple(shape):
        return g
    return IndexAddInto.apply(g, tuple(shape), _head(g.shape))


def _check_scatter_shapes(op, x, dim, idx, src_shape=None):
    if idx.ndim != x.ndim:
        raise ShapeError(f"{op}: index has {idx.ndim} dims (shape {tuple(idx.shape)}) but the input has {x.ndim} "
                         f"(shape {tuple(x.shape)}); they must have the same number of dims")
    if src_shape is not None and len(src_shape) != x.ndim:
        raise ShapeError(f"{op}: src has shape {tuple(src_shape)} but the input has {x.ndim} dims "
                         f"(shape {tuple(x.shape)}); they must have the same number of dims")
    for d in range(x.ndim):
        if d != dim and idx.shape[d] > x.shape[d]:
            raise ShapeError(f"{op}: index shape {tuple(idx.shape)} is larger than input shape {tuple(x.shape)} "
                             f"in dim {d} (only dim {dim} may be larger)")
        if src_shape is not None and idx.shape[d] > src_shape[d]:
            raise ShapeError(f"{op}: index shape {tuple(idx.shape)} is larger than src shape {tuple(src_shape)} "
                             f"in dim {d}")


# ------------------------------------------------------------------ gather <-> scatter-add
class Gather(Function):
    """y[i, j, k] = x[index[i, j, k], j, k]  (for dim = 0; likewise for other dims).

    backward: dx = scatter_add(zeros_like(x), dim, index, g): repeated indices add up.
    """

    reads = ((2,), (), ())

    @staticmethod
    def forward(ctx, x, dim, idx):
        ctx.in_shape = x.shape
        return x[_coords(get_array_module(x), idx, dim)]

    @staticmethod
    def backward(ctx, g):
        _, dim, idx = ctx.args
        return ScatterAddZeros.apply(g, ctx.in_shape, dim, idx), None, None


class ScatterAddZeros(Function):
    """y = zeros(shape);  y[index[i, j, k], j, k] += g[i, j, k]  (dim = 0).   dg = gather(gy, dim, index)."""

    reads = ((3,), (), (), ())

    @staticmethod
    def forward(ctx, g, shape, dim, idx):
        xp = get_array_module(g)
        out = xp.zeros(shape, dtype=g.dtype)
        _add_at(xp, out, _coords(xp, idx, dim), g)
        return out

    @staticmethod
    def backward(ctx, gg):
        _, _, dim, idx = ctx.args
        return Gather.apply(gg, dim, idx), None, None, None


def gather(x, dim, index, sparse_grad=False):
    """``out[i][j][k] = x[index[i][j][k]][j][k]`` for dim=0 (PyTorch semantics).

    ``index`` has as many dims as ``x``; along dims other than ``dim`` it may be smaller
    than ``x``; the result has the shape of ``index``.
    """
    idx = _index_tensor(index, "gather", x)
    if x.ndim == 0:
        return gather(x.reshape(1), 0, _derived(idx, idx.array.reshape(-1))).reshape(idx.shape)
    d = norm_dim(dim, x.ndim)
    _check_scatter_shapes("gather", x, d, idx)
    _check_range(idx.array, x.shape[d], "gather", d, x.shape)
    return Gather.apply(x, d, idx)


def take_along_dim(x, indices, dim=None):
    """``gather`` after broadcasting ``x`` and ``indices`` against each other except along ``dim``;
    with ``dim=None`` both are flattened first."""
    idx = _index_tensor(indices, "take_along_dim", x, "indices")
    if dim is None:
        return gather(x.reshape(x.numel()), 0, _derived(idx, idx.array.reshape(-1)))
    d = norm_dim(dim, x.ndim)
    if idx.ndim != x.ndim:
        raise ShapeError(f"take_along_dim: indices of shape {tuple(idx.shape)} and input of shape "
                         f"{tuple(x.shape)} must have the same number of dims")
    xs = list(x.shape)
    js = list(idx.shape)
    xs[d] = js[d] = 1
    try:
        b = list(np.broadcast_shapes(tuple(xs), tuple(js)))
    except ValueError:
        raise ShapeError(f"take_along_dim: input of shape {tuple(x.shape)} and indices of shape "
                         f"{tuple(idx.shape)} do not broadcast outside dim {d}") from None
    bx, bi = list(b), list(b)
    bx[d], bi[d] = x.shape[d], idx.shape[d]
    xp = get_array_module(idx.array)
    return gather(broadcast_to(x, tuple(bx)), d, _derived(idx, xp.broadcast_to(idx.array, tuple(bi))))


class ScatterAdd(Function):
    """y = x;  y[index[i, j, k], j, k] += src[i, j, k]  (dim = 0).

    backward: dx = g;  dsrc = gather(g, dim, index) (zero where src is bigger than index).
    """

    reads = ((), (3,), (), ())

    @staticmethod
    def forward(ctx, x, src, dim, idx):
        xp = get_array_module(x)
        ctx.src_shape = src.shape
        out = x.copy()
        _add_at(xp, out, _coords(xp, idx, dim), src[_head(idx.shape)].astype(x.dtype, copy=False))
        return out

    @staticmethod
    def backward(ctx, g):
        _, _, dim, idx = ctx.args
        gsrc = _embed(Gather.apply(g, dim, idx), ctx.src_shape) if ctx.needs_input_grad[1] else None
        return g, gsrc, None, None


class Scatter(Function):
    """y = x;  y[index[i, j, k], j, k] = src[i, j, k]  (dim = 0; ``src`` may be a number).

    backward: dx = g with the written positions zeroed = scatter(g, dim, index, 0);
    dsrc = gather(g, dim, index). (With repeated indices one write wins, as in PyTorch,
    where the result is then unspecified.)
    """

    reads = ((3,), (3,), (), ())

    @staticmethod
    def forward(ctx, x, src, dim, idx):
        xp = get_array_module(x)
        out = x.copy()
        if hasattr(src, "shape"):
            ctx.src_shape = src.shape
            src = src[_head(idx.shape)] if src.ndim else src
        out[_coords(xp, idx, dim)] = src
        return out

    @staticmethod
    def backward(ctx, g):
        _, _, dim, idx = ctx.args
        need_x, need_src = ctx.needs_input_grad[:2]
        gx = Scatter.apply(g, 0, dim, idx) if need_x else None
        gsrc = _embed(Gather.apply(g, dim, idx), ctx.src_shape) if need_src else None
        return gx, gsrc, None, None


def _prep_scatter(op, x, dim, index, src):
    idx = _index_tensor(index, op, x)
    d = norm_dim(dim, x.ndim)
    if x.ndim == 0:
        raise ShapeError(f"{op}: the input must have at least one dim, got a 0-d tensor")
    src_shape = tuple(src.shape) if isinstance(src, Tensor) else None
    _check_scatter_shapes(op, x, d, idx, src_shape)
    _check_range(idx.array, x.shape[d], op, d, x.shape)
    return d, idx


def scatter_add(x, dim, index, src):
    """Out-of-place ``x.scatter_add_(dim, index, src)``: add ``src`` at ``index`` (repeats accumulate)."""
    d, idx = _prep_scatter("scatter_add", x, dim, index, src)
    return ScatterAdd.apply(x, src, d, idx)


def scatter(x, dim, index, src=None, value=None, reduce=None):
    """Out-of-place ``x.scatter_(dim, index, src)``: write ``src`` (a tensor or a number) at ``index``."""
    if src is None:
        src = value
    if src is None:
        raise InvalidArgumentError("scatter: pass src= (a tensor) or value= (a number)")
    if reduce is not None:
        if isinstance(reduce, str) and reduce == "add" and isinstance(src, Tensor):
            return scatter_add(x, dim, index, src)
        raise InvalidArgumentError(f"scatter: reduce={reduce!r} is not supported (use scatter_add for 'add')")
    d, idx = _prep_scatter("scatter", x, dim, index, src)
    return Scatter.apply(x, src, d, idx)


# ------------------------------------------------------------------ index_select <-> index_add
class IndexSelect(Function):
    """y = x[..., index, ...] along ``dim`` (``index`` 1-d).   dx = index_add(zeros_like(x), dim, index, g)."""

    reads = ((2,), (), ())

    @staticmethod
    def forward(ctx, x, dim, idx):
        ctx.in_shape = x.shape
        return get_array_module(x).take(x, idx, axis=dim)

    @staticmethod
    def backward(ctx, g):
        _, dim, idx = ctx.args
        return IndexAddZeros.apply(g, ctx.in_shape, dim, idx), None, None


class IndexAddZeros(Function):
    """y = zeros(shape);  y[..., index[i], ...] += g[..., i, ...] along ``dim``.   dg = index_select(gy, dim, index)."""

    reads = ((3,), (), (), ())

    @staticmethod
    def forward(ctx, g, shape, dim, idx):
        xp = get_array_module(g)
        out = xp.zeros(shape, dtype=g.dtype)
        _index_add_along(xp, out, dim, idx, g)
        return out

    @staticmethod
    def backward(ctx, gg):
        _, _, dim, idx = ctx.args
        return IndexSelect.apply(gg, dim, idx), None, None, None


class IndexAdd(Function):
    """y = x;  y[..., index[i], ...] += alpha * src[..., i, ...] along ``dim``.

    backward: dx = g;   dsrc = alpha * index_select(g, dim, index).
    """

    reads = ((), (3,), (), (), ())

    @staticmethod
    def forward(ctx, x, src, dim, idx, alpha):
        xp = get_array_module(x)
        out = x.copy()
        vals = src if alpha == 1 else src * alpha
        _index_add_along(xp, out, dim, idx, vals)
        return out

    @staticmethod
    def backward(ctx, g):
        _, _, dim, idx, alpha = ctx.args
        gsrc = None
        if ctx.needs_input_grad[1]:
            gsrc = IndexSelect.apply(g, dim, idx)
            if alpha != 1:
                gsrc = gsrc * alpha
        return g, gsrc, None, None, None


def _vector_index(op, x, dim, index):
    if x.ndim == 0:
        raise ShapeError(f"{op}: the input must have at least one dim, got a 0-d tensor")
    idx = _index_tensor(index, op, x)
    if idx.ndim > 1:
        raise ShapeError(f"{op}: index must be 1-d (or 0-d), got shape {tuple(idx.shape)}")
    d = norm_dim(dim, x.ndim)
    if idx.ndim == 0:
        idx = _derived(idx, idx.array.reshape(-1))
    _check_range(idx.array, x.shape[d], op, d, x.shape)
    return d, idx


def index_select(x, dim, index):
    """The slices ``index[0], index[1], ...`` of ``x`` along ``dim`` (``index``: 1-d integers)."""
    d, idx = _vector_index("index_select", x, dim, index)
    return IndexSelect.apply(x, d, idx)


def index_add(x, dim, index, source, alpha=1):
    """Out-of-place ``x.index_add_(dim, index, source)``: ``x[.., index[i], ..] += alpha * source[.., i, ..]``."""
    d, idx = _vector_index("index_add", x, dim, index)
    want = x.shape[:d] + (idx.shape[0],) + x.shape[d + 1:]
    if tuple(source.shape) != want:
        raise ShapeError(f"index_add: source has shape {tuple(source.shape)}, expected {want} for input of shape "
                         f"{tuple(x.shape)}, dim {d} and {idx.shape[0]} indices")
    return IndexAdd.apply(x, source, d, idx, alpha)


# ------------------------------------------------------------------ masks
class MaskedFill(Function):
    """y = where(mask, value, x)  (mask broadcast to x).

    backward: dx = g where not mask (masked_fill(g, mask, 0));  dvalue = sum of g where mask.
    """

    reads = ((2,), (2,), ())

    @staticmethod
    def forward(ctx, x, value, mask):
        xp = get_array_module(x)
        return xp.where(mask, value, x).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        _, value, mask = ctx.args
        need_x, need_v = ctx.needs_input_grad[:2]
        gx = MaskedFill.apply(g, 0, mask) if need_x else None
        gv = None
        if need_v:
            gv = MaskedFill.apply(g, 0, _derived(mask, ~mask.array)).sum().reshape(value.shape)
            if gv.dtype != value.dtype:
                gv = gv.to(value.dtype)
        return gx, gv, None


def masked_fill(x, mask, value):
    """``value`` where ``mask`` is True, ``x`` elsewhere. ``mask``: bool, broadcast with x (the result
    has the broadcast shape; the in-place ``masked_fill_`` needs a mask that broadcasts to x);
    ``value``: a number or a 0-d tensor (which then gets a gradient)."""
    m = _mask_tensor(mask, "masked_fill", x)
    try:
        shape = np.broadcast_shapes(m.shape, x.shape)
    except ValueError:
        raise ShapeError(f"masked_fill: mask of shape {tuple(m.shape)} and input of shape {tuple(x.shape)} "
                         f"do not broadcast") from None
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got shape {tuple(value.shape)}")
    elif not isinstance(value, (builtins.int, builtins.float, builtins.bool, np.number, np.bool_)):
        raise InvalidArgumentError(f"masked_fill: value must be a number or a 0-d tensor, got "
                                   f"{type(value).__name__}")
    if shape != tuple(x.shape):  # as PyTorch's out-of-place masked_fill: the result has the broadcast shape
        x = broadcast_to(x, shape)
    return MaskedFill.apply(x, value, m)


def masked_select(x, mask):
    """The elements of ``x`` where ``mask`` is True, as a 1-d tensor (x and mask broadcast together):
    ``x[mask]`` after broadcasting, so its backward scatters g back (and reads the mask)."""
    m = _mask_tensor(mask, "masked_select", x)
    try:
        shape = np.broadcast_shapes(m.shape, x.shape)
    except ValueError:
        raise ShapeError(f"masked_select: mask of shape {tuple(m.shape)} and input of shape {tuple(x.shape)} "
                         f"do not broadcast") from None
    if m.shape != shape:
        m = _derived(m, get_array_module(m.array).broadcast_to(m.array, shape))
    return getitem(broadcast_to(x, shape), m)


# ------------------------------------------------------------------ embedding / one_hot
class Embedding(Function):
    """y[..., :] = weight[input[...], :]  (a row lookup).

    backward: dweight = index_add(zeros_like(weight), 0, input.flatten(), g.reshape(-1, D)), with the
    rows of g whose index is ``padding_idx`` zeroed and, with ``scale_grad_by_freq``, each row divided
    by the number of times its index occurs in ``input``.
    """

    reads = ((1,), (), (), ())

    @staticmethod
    def forward(ctx, weight, idx, padding_idx, scale_grad_by_freq):
        ctx.w_shape = weight.shape
        return get_array_module(weight).take(weight, idx, axis=0)

    @staticmethod
    def backward(ctx, g):
        _, idx, padding_idx, scale = ctx.args
        flat = idx.array.reshape(-1)
        xp = get_array_module(flat)
        g2 = g.reshape(flat.shape[0], ctx.w_shape[1])
        if padding_idx is not None:
            g2 = MaskedFill.apply(g2, 0, _derived(idx, (flat == padding_idx)[:, None]))
        if scale:
            counts = xp.bincount(flat, minlength=ctx.w_shape[0])
            g2 = g2 * Tensor._make((1.0 / counts[flat]).astype(g2.dtype)[:, None])
        return IndexAddZeros.apply(g2, ctx.w_shape, 0, _derived(idx, flat)), None, None, None


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Look up rows of ``weight`` (num_embeddings, D) for the integer tensor ``input``: shape input.shape + (D,).

    ``padding_idx``: that row gets no gradient. ``max_norm``: rows looked up whose ``norm_type``-norm
    exceeds it are rescaled in place to norm ``max_norm`` first (as in PyTorch; not differentiated).
    ``sparse`` is accepted for compatibility; gradients are always dense. ``input`` is an argument of
    the op: editing it in place before the backward raises InplaceError.
    """
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-d (num_embeddings, embedding_dim), got shape "
                         f"{tuple(weight.shape)}")
    idx = _index_tensor(input, "embedding", weight, "input")
    n = weight.shape[0]
    _check_range(idx.array, n, "embedding", 0, weight.shape, "input index")
    if padding_idx is not None:
        p = _int(padding_idx)
        if not -n <= p < n:
            raise IndexOutOfRangeError(f"embedding: padding_idx {padding_idx} is out of range [-{n}, {n}) for "
                                       f"{n} embeddings")
        padding_idx = p % n
    if max_norm is not None:
        _renorm_rows(weight, idx.array, float(max_norm), float(norm_type))
    return Embedding.apply(weight, idx, padding_idx, builtins.bool(scale_grad_by_freq))


def _renorm_rows(weight, idx, max_norm, norm_type):
    """In place: rows of ``weight`` named in ``idx`` with norm > max_norm are scaled to norm max_norm."""
    xp = get_array_module(weight.array)
    rows = xp.unique(idx.reshape(-1))
    w = weight.array[rows]
    norms = (xp.abs(w) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(w.dtype)
    weight.array[rows] = w * scale[:, None]
    weight._vc[0] += 1


def one_hot(tensor, num_classes=-1):
    """int64 tensor of shape ``tensor.shape + (num_classes,)`` with 1 at each class index (not differentiable).
    ``num_classes=-1``: max(tensor) + 1."""
    ref = tensor if isinstance(tensor, Tensor) else Tensor._make(np.zeros(0))
    idx = _index_tensor(tensor, "one_hot", ref, "input").array
    xp = get_array_module(idx)
    if idx.size and _int(idx.min()) < 0:
        raise IndexOutOfRangeError(f"one_hot: class values must be non-negative, got {_int(idx.min())}")
    if num_classes == -1:
        if idx.size == 0:
            raise InvalidArgumentError("one_hot: cannot infer num_classes from an empty tensor; pass num_classes")
        num_classes = _int(idx.max()) + 1
    num_classes = _int(num_classes)
    if num_classes < 0:
        raise InvalidArgumentError(f"one_hot: num_classes must be -1 or non-negative, got {num_classes}")
    _check_range(idx, num_classes, "one_hot", -1, tuple(idx.shape) + (num_classes,), "class value")
    out = (idx[..., None] == xp.arange(num_classes)).astype(np.int64)
    return Tensor._make(out)


# ------------------------------------------------------------------ Tensor methods (incl. in-place forms)
def _scatter_(x, dim, index, src=None, value=None, reduce=None):
    return x._inplace(lambda a, s: scatter(a, dim, index, s, reduce=reduce), src if src is not None else value)


def _scatter_add_(x, dim, index, src):
    return x._inplace(lambda a, s: scatter_add(a, dim, index, s), src)


def _index_add_(x, dim, index, source, alpha=1):
    return x._inplace(lambda a, s: index_add(a, dim, index, s, alpha), source)


def _masked_fill_(x, mask, value):
    return x._inplace(lambda a, v: masked_fill(a, mask, v), value)
