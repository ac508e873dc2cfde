"""Index-driven ops: gather / scatter, index_select / index_add, masked_fill, embedding, one_hot.

Two pairs of ops are each other's adjoint, and every backward here is built from them:

- **gather** ``y = x[.., index, ..]`` (read at indices)  <->  **scatter-add** into zeros
  (``dx[.., index, ..] += g``: write at indices, *adding* where an index repeats);
- **index_select** along one dim  <->  **index_add** into zeros along that dim.

So the gradient of a gather is a scatter-add, the gradient of that scatter-add is a
gather again, and repeated indices accumulate their gradients as they should.
Index tensors must be integers (a float index is a :class:`~minigen.errors.DTypeError`)
within ``[0, size)`` (else :class:`~minigen.errors.IndexOutOfRangeError`, naming the
index, the valid range and the shape).
"""
from __future__ import annotations

import builtins

import numpy as np

from ..autograd.function import Function
from ..backend import get_array_module, move_array
from ..errors import DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError
from ..tensor import Tensor
from ..argcheck import norm_dim
from .shape import IndexAddInto, broadcast_to, reshape

__all__ = ["gather", "take_along_dim", "index_select", "scatter", "scatter_add", "index_add", "masked_fill",
           "masked_select", "embedding", "one_hot"]

_int = builtins.int


# ------------------------------------------------------------------ helpers
def _index_array(index, op, x, what="index"):
    """The integer array behind ``index`` (Tensor, array, list or int), on ``x``'s device."""
    if isinstance(index, Tensor):
        arr = index.array
    elif hasattr(index, "dtype") and hasattr(index, "shape"):
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
    return arr


def _check_range(arr, n, op, dim, shape, what="index"):
    if arr.size == 0:
        return
    lo, hi = _int(arr.min()), _int(arr.max())
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        raise IndexOutOfRangeError(f"{op}: {what} {bad} is out of range [0, {n}) for dim {dim} of size {n} "
                                   f"(tensor of shape {tuple(shape)})")


def _mask_array(mask, op, x):
    arr = mask.array if isinstance(mask, Tensor) else (mask if hasattr(mask, "dtype") else np.asarray(mask))
    if arr.dtype.kind != "b":
        raise DTypeError(f"{op}: mask must be a bool tensor, got dtype {arr.dtype}")
    if type(arr) is not type(x.array):
        arr = move_array(arr, x.device)
    return arr


def _add_at(xp, out, index, values):
    """``out[index] += values`` where repeated positions accumulate (NumPy's / CuPy's ``add.at``)."""
    at = getattr(xp.add, "at", None)
    if at is not None:
        at(out, index, values)
    else:  # older CuPy
        import cupyx

        cupyx.scatter_add(out, index, values)


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

    reads = ()

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

    reads = ()

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
    idx = _index_array(index, "gather", x)
    if x.ndim == 0:
        return reshape(gather(reshape(x, (1,)), 0, idx.reshape(-1)), idx.shape)
    d = norm_dim(dim, x.ndim)
    _check_scatter_shapes("gather", x, d, idx)
    _check_range(idx, x.shape[d], "gather", d, x.shape)
    return Gather.apply(x, d, idx)


def take_along_dim(x, indices, dim=None):
    """``gather`` after broadcasting ``x`` and ``indices`` against each other except along ``dim``;
    with ``dim=None`` both are flattened first."""
    idx = _index_array(indices, "take_along_dim", x, "indices")
    if dim is None:
        flat = reshape(x, (x.numel(),))
        return gather(flat, 0, idx.reshape(-1))
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
    xp = get_array_module(idx)
    return gather(broadcast_to(x, tuple(bx)), d, xp.broadcast_to(idx, tuple(bi)))


class ScatterAdd(Function):
    """y = x;  y[index[i, j, k], j, k] += src[i, j, k]  (dim = 0).

    backward: dx = g;  dsrc = gather(g, dim, index) (zero where src is bigger than index).
    """

    reads = ()

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
        gsrc = None
        if ctx.next_nodes[1] is not None:
            gsrc = _embed(Gather.apply(g, dim, idx), ctx.src_shape)
        return g, gsrc, None, None


class Scatter(Function):
    """y = x;  y[index[i, j, k], j, k] = src[i, j, k]  (dim = 0; ``src`` may be a number).

    backward: dx = g with the written positions zeroed = scatter(g, dim, index, 0);
    dsrc = gather(g, dim, index). (With repeated indices one write wins, as in PyTorch,
    where the result is then unspecified.)
    """

    reads = ()

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
        _, src, dim, idx = ctx.args
        gx = Scatter.apply(g, 0, dim, idx) if ctx.next_nodes[0] is not None else None
        gsrc = None
        if isinstance(src, Tensor) and ctx.next_nodes[1] is not None:
            gsrc = _embed(Gather.apply(g, dim, idx), ctx.src_shape)
        return gx, gsrc, None, None


def _prep_scatter(op, x, dim, index, src):
    idx = _index_array(index, op, x)
    d = norm_dim(dim, x.ndim)
    if x.ndim == 0:
        raise ShapeError(f"{op}: the input must have at least one dim, got a 0-d tensor")
    src_shape = tuple(src.shape) if isinstance(src, Tensor) else None
    _check_scatter_shapes(op, x, d, idx, src_shape)
    _check_range(idx, x.shape[d], op, d, x.shape)
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
        if reduce == "add" and isinstance(src, Tensor):
            return scatter_add(x, dim, index, src)
        raise InvalidArgumentError(f"scatter: reduce={reduce!r} is not supported (use scatter_add for 'add')")
    d, idx = _prep_scatter("scatter", x, dim, index, src)
    return Scatter.apply(x, src, d, idx)


# ------------------------------------------------------------------ index_select <-> index_add
class IndexSelect(Function):
    """y = x[..., index, ...] along ``dim`` (``index`` 1-d).   dx = index_add(zeros_like(x), dim, index, g)."""

    reads = ()

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

    reads = ()

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

    reads = ()

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
        if ctx.next_nodes[1] is not None:
            gsrc = IndexSelect.apply(g, dim, idx)
            if alpha != 1:
                gsrc = gsrc * alpha
        return g, gsrc, None, None, None


def _vector_index(op, x, dim, index):
    if x.ndim == 0:
        raise ShapeError(f"{op}: the input must have at least one dim, got a 0-d tensor")
    idx = _index_array(index, op, x)
    if idx.ndim > 1:
        raise ShapeError(f"{op}: index must be 1-d (or 0-d), got shape {tuple(idx.shape)}")
    d = norm_dim(dim, x.ndim)
    idx = idx.reshape(-1)
    _check_range(idx, x.shape[d], op, d, x.shape)
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

    reads = ()

    @staticmethod
    def forward(ctx, x, value, mask):
        xp = get_array_module(x)
        return xp.where(mask, value, x).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, value, mask = ctx.args
        gx = MaskedFill.apply(g, 0, mask) if ctx.next_nodes[0] is not None else None
        gv = None
        if isinstance(value, Tensor) and ctx.next_nodes[1] is not None:
            gv = reshape(MaskedFill.apply(g, 0, ~mask).sum(), value.shape)
            if gv.dtype != value.dtype:
                gv = gv.to(value.dtype)
        return gx, gv, None


def masked_fill(x, mask, value):
    """``value`` where ``mask`` is True, ``x`` elsewhere. ``mask``: bool, broadcast with x (the result
    has the broadcast shape; the in-place ``masked_fill_`` needs a mask that broadcasts to x);
    ``value``: a number or a 0-d tensor (which then gets a gradient)."""
    m = _mask_array(mask, "masked_fill", x)
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
    """The elements of ``x`` where ``mask`` is True, as a 1-d tensor (x and mask broadcast together).
    A gather with the positions of the True entries; its backward scatters g back."""
    from .shape import getitem

    m = _mask_array(mask, "masked_select", x)
    try:
        shape = np.broadcast_shapes(m.shape, x.shape)
    except ValueError:
        raise ShapeError(f"masked_select: mask of shape {tuple(m.shape)} and input of shape {tuple(x.shape)} "
                         f"do not broadcast") from None
    xp = get_array_module(m)
    m = xp.broadcast_to(m, shape)
    return getitem(broadcast_to(x, shape), tuple(m.nonzero()))


# ------------------------------------------------------------------ embedding / one_hot
class Embedding(Function):
    """y[..., :] = weight[input[...], :]  (a row lookup).

    backward: dweight = index_add(zeros_like(weight), 0, input.flatten(), g.reshape(-1, D)), with the
    rows of g whose index is ``padding_idx`` zeroed and, with ``scale_grad_by_freq``, each row divided
    by the number of times its index occurs in ``input``.
    """

    reads = ()

    @staticmethod
    def forward(ctx, weight, idx, padding_idx, scale_grad_by_freq):
        ctx.w_shape = weight.shape
        return get_array_module(weight).take(weight, idx, axis=0)

    @staticmethod
    def backward(ctx, g):
        _, idx, padding_idx, scale = ctx.args
        xp = get_array_module(idx)
        flat = idx.reshape(-1)
        g2 = reshape(g, (flat.shape[0], ctx.w_shape[1]))
        if padding_idx is not None:
            g2 = MaskedFill.apply(g2, 0, (flat == padding_idx)[:, None])
        if scale:
            counts = xp.bincount(flat, minlength=ctx.w_shape[0])
            g2 = g2 * Tensor._make((1.0 / counts[flat]).astype(g2.dtype)[:, None])
        return IndexAddZeros.apply(g2, ctx.w_shape, 0, flat), None, None, None


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Look up rows of ``weight`` (num_embeddings, D) for the integer tensor ``input``: shape input.shape + (D,).

    ``padding_idx``: that row gets no gradient. ``max_norm``: rows looked up whose ``norm_type``-norm
    exceeds it are rescaled in place to norm ``max_norm`` first (as in PyTorch; not differentiated).
    ``sparse`` is accepted for compatibility; gradients are always dense.
    """
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-d (num_embeddings, embedding_dim), got shape "
                         f"{tuple(weight.shape)}")
    idx = _index_array(input, "embedding", weight, "input")
    n = weight.shape[0]
    _check_range(idx, n, "embedding", 0, weight.shape, "input index")
    if padding_idx is not None:
        p = _int(padding_idx)
        if not -n <= p < n:
            raise IndexOutOfRangeError(f"embedding: padding_idx {padding_idx} is out of range [-{n}, {n}) for "
                                       f"{n} embeddings")
        padding_idx = p % n
    if max_norm is not None:
        _renorm_rows(weight, idx, float(max_norm), float(norm_type))
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
    idx = _index_array(tensor, "one_hot", tensor if isinstance(tensor, Tensor) else Tensor._make(np.zeros(0)),
                       "input")
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


