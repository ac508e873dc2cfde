"""Shape ops: views (reshape/view, permute/transpose, expand, squeeze...), joins and splits (cat, stack,
split...), copies that move elements (repeat, pad, flip, roll, tril/triu), and ``sum_to``.

These ops move, copy or drop elements without arithmetic, so every backward is the inverse
movement of the gradient:

- reshape-like ops (view, flatten, unflatten, squeeze, unsqueeze) reshape back; ``permute`` permutes
  by the inverse permutation; ``broadcast_to`` sums over the broadcast dims (and ``sum_to`` the reverse);
- ``cat`` slices the gradient into the pieces, ``stack`` selects them, ``split`` pieces are slices
  (``x[index]``, whose backward writes into zeros: see :mod:`minigen.ops.indexing`);
- ``repeat`` folds the gradient of every copy back onto the original (a sum);
- constant ``pad`` crops the gradient (pad by the negated amounts), the other pad modes are gathers
  with an index array, whose backward is a scatter-add (so reflected / replicated / wrapped borders
  add their gradient back);
- ``flip`` flips back, ``roll`` rolls back, ``tril``/``triu`` mask the gradient.

Views and copies, as PyTorch: ``view`` always shares memory with its input (and raises when the
input's strides make that impossible); ``reshape`` shares memory when it can and copies when it must;
``permute``/``transpose``/``x[basic index]``/``narrow``/``split`` pieces are views; ``cat``, ``stack``,
``repeat``, ``flip``, ``roll``, ``pad`` and ``clone`` copy. A view shares its base's version counter,
so an in-place edit through either is seen by every saved tensor.
"""
from __future__ import annotations

import builtins
from operator import index as _index

import numpy as np

from ..argcheck import check_int_value, check_piece_count, check_tensor, check_view_shape, norm_dim
from ..autograd import broadcast as _bc
from ..autograd.function import Function
from ..backend import get_array_module, move_array, to_numpy
from ..errors import DimError, DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError
from ..tensor import Tensor, as_tensor
from .indexing import getitem, index_select

__all__ = ["reshape", "view", "permute", "transpose", "broadcast_to", "expand", "sum_to", "sum_to_size",
           "expand_as", "reshape_as", "view_as",
           "flatten", "unflatten", "ravel", "squeeze", "unsqueeze", "repeat", "tile", "repeat_interleave",
           "cat", "concat", "concatenate", "stack", "hstack", "vstack", "split", "chunk", "unbind",
           "tensor_split", "select", "narrow", "pad", "flip", "fliplr", "flipud", "roll", "tril", "triu",
           "movedim", "moveaxis", "swapaxes", "swapdims", "clone", "contiguous"]

_int = builtins.int


def _shape_arg(shape, op):
    """``(2, 3)``, ``((2, 3),)`` or ``([2, 3],)`` -> a tuple of Python ints."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    try:
        return tuple(map(_index, shape))
    except TypeError:
        raise InvalidArgumentError(f"{op}: the shape must be integers, got {tuple(shape)!r}") from None


def _shares_memory(a, b):
    """Whether array ``b`` (made from ``a`` by a reshape) is a view of ``a``'s memory, not a fresh copy."""
    if type(a) is np.ndarray:
        base = b.base  # NumPy: a view's base is a or a's own base; a copy's is the new buffer (or None)
        return base is not None and (base is a or base is a.base)
    return a.size == 0 or get_array_module(a).may_share_memory(a, b)


def _link_view(out, x, inverse):
    """Make ``out`` a view of ``x`` for autograd: one version counter; edits through it are tracked.

    ``inverse(new_view) -> new_base``: the whole base as a (differentiable) function of the view's new value,
    so an in-place edit through the view can rebind the base's graph node (PyTorch allows it too).
    """
    out._vc, out._view = x._vc, (x, inverse)
    return out


def _reshape_back(shape):
    return lambda v: Reshape.apply(v, shape, False)


def _permute_back(perm):
    inv = tuple(sorted(range(len(perm)), key=perm.__getitem__))
    return lambda v: Permute.apply(v, inv)


# ------------------------------------------------------------------ broadcast / sum_to
def broadcast_to(x, *shape):
    """``x`` broadcast to ``shape`` (NumPy rules; a view).   backward: sum over the broadcast dims."""
    return expand(x, _shape_arg(shape, "broadcast_to"))


def expand(x, *sizes):
    """PyTorch's expand: broadcast_to where a size of -1 keeps that dimension's size."""
    sizes = _shape_arg(sizes, "expand")
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ShapeError(f"expand: the number of sizes {sizes} must be at least the number of dims of "
                         f"shape {tuple(x.shape)}")
    shape = tuple(x.shape[i - lead] if (s == -1 and i >= lead) else s for i, s in enumerate(sizes))
    return _bc.broadcast_to(x, shape)


def sum_to_size(x, *size):
    """PyTorch ``x.sum_to_size(*size)``: sum ``x`` down to ``size``, which must broadcast to x's shape
    (the inverse of ``broadcast_to``; backward: broadcast the gradient back)."""
    size = _shape_arg(size, "sum_to_size")
    try:
        ok = np.broadcast_shapes(size, tuple(x.shape)) == tuple(x.shape)
    except ValueError:
        ok = False
    if not ok:
        raise ShapeError(f"sum_to_size: size {size} is not expandable to the tensor's shape {tuple(x.shape)}")
    return _bc.sum_to(x, size)


sum_to = sum_to_size


def expand_as(x, other):
    """``x.expand(other.shape)``."""
    return expand(x, check_tensor(other, "expand_as", "other").shape)


def reshape_as(x, other):
    """``x.reshape(other.shape)``."""
    return reshape(x, check_tensor(other, "reshape_as", "other").shape)


def view_as(x, other):
    """``x.view(other.shape)``."""
    return view(x, check_tensor(other, "view_as", "other").shape)


# ------------------------------------------------------------------ reshape / view / permute
class Reshape(Function):
    """y = x with a new shape (same elements, row-major order).   dx = reshape(g, x.shape).

    ``must_view``: raise instead of copying when x's strides do not allow a view (``view``).
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, shape, must_view):
        ctx.in_shape = x.shape
        try:
            y = x.reshape(shape)
        except ValueError:
            raise ShapeError(f"cannot reshape a tensor of shape {tuple(x.shape)} ({x.size} elements) "
                             f"into shape {tuple(shape)}") from None
        if must_view and not _shares_memory(x, y):
            raise ShapeError(f"view size is not compatible with input tensor's size and stride (at least one "
                             f"dimension spans across two contiguous subspaces): a tensor of shape "
                             f"{tuple(x.shape)} and strides {tuple(s // x.itemsize for s in x.strides)} cannot "
                             f"be viewed as shape {tuple(shape)}. Use .reshape(...) instead.")
        return y

    @staticmethod
    def backward(ctx, g):
        return reshape(g, ctx.in_shape), None, None


def reshape(x, *shape):
    """``x`` with a new shape: a view when x's strides allow one, else a copy (as PyTorch)."""
    shape = check_view_shape(_shape_arg(shape, "reshape"), "reshape", x.numel())
    if x.shape == shape:
        return x
    out = Reshape.apply(x, shape, False)
    return _link_view(out, x, _reshape_back(x.shape)) if _shares_memory(x.array, out.array) else out


def view(x, *shape):
    """``x`` with a new shape, sharing its memory (writes through the view reach ``x``).

    Raises :class:`~minigen.errors.ShapeError` when x's strides make a view impossible (e.g. a
    transposed tensor flattened): use :func:`reshape`, which copies then, or ``.contiguous()`` first.
    """
    shape = check_view_shape(_shape_arg(shape, "view"), "view", x.numel())
    return _link_view(Reshape.apply(x, shape, True), x, _reshape_back(x.shape))


class Permute(Function):
    """y = x with dims reordered by ``perm`` (a view).   dx = permute(g, inverse of perm)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, perm):
        return x.transpose(perm)

    @staticmethod
    def backward(ctx, g):
        perm = ctx.args[1]
        inv = tuple(sorted(range(len(perm)), key=perm.__getitem__))
        return Permute.apply(g, inv), None


def permute(x, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    perm = tuple(norm_dim(d, x.ndim) for d in dims)
    if len(perm) != x.ndim or sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"permute: dims {tuple(dims)} is not a permutation of the {x.ndim} dims of shape "
                         f"{tuple(x.shape)}")
    return _link_view(Permute.apply(x, perm), x, _permute_back(perm))


def transpose(x, dim0, dim1):
    if x.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    d0, d1 = norm_dim(dim0, x.ndim), norm_dim(dim1, x.ndim)
    perm = list(range(x.ndim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return _link_view(Permute.apply(x, tuple(perm)), x, _permute_back(tuple(perm)))



def _ints(values, what):
    """``(2, 3)``, ``[2, 3]``, ``((2, 3),)`` or a 1-d integer Tensor -> a tuple of Python ints."""
    if len(values) == 1 and isinstance(values[0], (tuple, list, Tensor, np.ndarray)):
        values = values[0]
    if isinstance(values, Tensor):
        values = values.tolist()
    try:
        return tuple(v.__index__() if not isinstance(v, _int) else v for v in
                     (values if isinstance(values, (tuple, list, np.ndarray)) else (values,)))
    except (AttributeError, TypeError):
        raise InvalidArgumentError(f"{what} must be integers, got {values!r}") from None


def _dim(x, dim, op):
    """``dim`` of ``x`` normalised; a 0-d tensor has no dim to narrow, select or split along."""
    if x.ndim == 0:
        raise DimError(f"{op}: dimension specified as {dim!r} but the tensor has no dimensions (a 0-d tensor)")
    return norm_dim(dim, x.ndim)


def _as_int(v, op, name):
    """An int argument (a 0-d integer tensor is read; floats, bools and others are refused)."""
    if isinstance(v, Tensor) and v.ndim == 0 and v.dtype.kind in "iu":
        v = v.item()
    return check_int_value(v, op, name)


def _along(dim, ndim, index):
    """An index tuple selecting ``index`` (an int or a slice) along ``dim`` and everything elsewhere."""
    return (slice(None),) * dim + (index,) + (slice(None),) * (ndim - dim - 1)


# ------------------------------------------------------------------ reshape family
def flatten(x, start_dim=0, end_dim=-1):
    """Merge dims ``start_dim..end_dim`` into one (a reshape; a 0-d tensor becomes shape (1,))."""
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = norm_dim(start_dim, x.ndim, "start_dim"), norm_dim(end_dim, x.ndim, "end_dim")
    if s > e:
        raise DimError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {tuple(x.shape)})")
    n = 1
    for v in x.shape[s:e + 1]:
        n *= v
    return reshape(x, x.shape[:s] + (n,) + x.shape[e + 1:])


def ravel(x):
    """The tensor as 1-d (``flatten(x)``)."""
    return flatten(x)


def unflatten(x, dim, sizes):
    """Split dim ``dim`` into ``sizes`` (one entry may be -1); the inverse of flatten."""
    d = _dim(x, dim, "unflatten")
    sizes = _ints((sizes,), "unflatten sizes")
    n = x.shape[d]
    if sizes.count(-1) > 1:
        raise InvalidArgumentError(f"unflatten: only one size may be -1, got {sizes}")
    known = 1
    for s in sizes:
        if s != -1:
            known *= s
    if -1 in sizes:
        if known == 0 or n % known:
            raise ShapeError(f"unflatten: cannot split dim {dim} of size {n} into sizes {sizes} "
                             f"(shape {tuple(x.shape)})")
        sizes = tuple(n // known if s == -1 else s for s in sizes)
    elif known != n:
        raise ShapeError(f"unflatten: sizes {sizes} multiply to {known}, but dim {dim} has size {n} "
                         f"(shape {tuple(x.shape)})")
    return reshape(x, x.shape[:d] + sizes + x.shape[d + 1:])


def squeeze(x, dim=None):
    """Drop dims of size 1 (all of them, or those in ``dim`` — an int or tuple; others are kept)."""
    if dim is None:
        dims = {i for i, s in enumerate(x.shape) if s == 1}
    else:
        dd = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {d for d in (norm_dim(v, x.ndim) for v in dd) if x.ndim and x.shape[d] == 1}
    if not dims:
        return x
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in dims))


def unsqueeze(x, dim):
    """Insert a dim of size 1 at ``dim`` (in ``[-ndim-1, ndim]``)."""
    d = norm_dim(dim, x.ndim + 1)
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


# ------------------------------------------------------------------ repeat / tile
class Repeat(Function):
    """y = x tiled ``reps`` times along each dim (PyTorch ``repeat``; x gets leading 1-dims first).

    forward:  y[i0, i1, ...] = x[i0 % s0, i1 % s1, ...]
    backward: every copy sends its gradient to the original: reshape g to
              (r0, s0, r1, s1, ...), sum over the r axes, reshape to x.shape.
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, reps):
        shape = (1,) * (len(reps) - x.ndim) + x.shape
        ctx.in_shape, ctx.shape, ctx.reps = x.shape, shape, reps
        return get_array_module(x).tile(x.reshape(shape), reps)

    @staticmethod
    def backward(ctx, g):
        inter = []
        for r, s in zip(ctx.reps, ctx.shape):
            inter += [r, s]
        folded = reshape(g, tuple(inter)).sum(dim=tuple(range(0, len(inter), 2)))
        return reshape(folded, ctx.in_shape), None


def repeat(x, *sizes):
    """PyTorch ``x.repeat(*sizes)``: tile ``x``; ``len(sizes)`` must be at least ``x.ndim``."""
    reps = _ints(sizes, "repeat sizes")
    if len(reps) < x.ndim:
        raise ShapeError(f"repeat: the number of repeats {reps} must be at least the number of dims of "
                         f"the tensor (shape {tuple(x.shape)})")
    if any(r < 0 for r in reps):
        raise InvalidArgumentError(f"repeat: repeats must be non-negative, got {reps}")
    return Repeat.apply(x, reps)


def tile(x, dims):
    """``tile(x, dims)``: like repeat, but a too-short ``dims`` is padded with leading 1s."""
    reps = _ints((dims,), "tile dims")
    reps = (1,) * (x.ndim - len(reps)) + reps
    return repeat(x, reps)


def repeat_interleave(x, repeats=None, dim=None, output_size=None):
    """Repeat each element (or each slice along ``dim``) ``repeats`` times, consecutively.

    ``repeats``: an int or a 1-d integer tensor with one count per element. With
    ``dim=None`` the input is flattened first. Called with a single integer tensor
    (``repeat_interleave(counts)``) it returns ``[0]*counts[0] + [1]*counts[1] + ...``.
    A gather with the index ``[0,0,..,1,1,..]``: its backward scatter-adds the copies.
    """
    if repeats is None:  # repeat_interleave(counts)
        c = to_numpy(x.array) if isinstance(x, Tensor) else np.asarray(x)  # the output size needs the counts
        if c.dtype.kind not in "iu" or c.ndim != 1:
            raise InvalidArgumentError(f"repeat_interleave(repeats): expected a 1-d integer tensor, "
                                       f"got dtype {c.dtype}, shape {c.shape}")
        out = np.repeat(np.arange(c.shape[0], dtype=np.int64), c)
        return Tensor._make(move_array(out, x.device) if isinstance(x, Tensor) else out)
    if dim is None:
        x, d = flatten(x), 0
    else:
        d = norm_dim(dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    if isinstance(repeats, Tensor):
        if repeats.dtype.kind not in "iu":
            raise DTypeError(f"repeat_interleave: repeats must be integers, got dtype {repeats.dtype}")
        reps = np.asarray(repeats.tolist(), dtype=np.int64).reshape(-1)
    else:
        reps = np.asarray(_ints((repeats,), "repeats"), dtype=np.int64)
    if reps.size == 1:
        reps = np.full(n, reps[0], dtype=np.int64)
    if reps.shape[0] != n:
        raise ShapeError(f"repeat_interleave: got {reps.shape[0]} repeat counts for dim {d} of size {n} "
                         f"(shape {tuple(x.shape)})")
    if (reps < 0).any():
        raise InvalidArgumentError(f"repeat_interleave: repeats must be non-negative, got {reps.tolist()}")
    idx = np.repeat(np.arange(n, dtype=np.int64), reps)
    if output_size is not None and output_size != idx.shape[0]:
        raise ShapeError(f"repeat_interleave: output_size={output_size} but the repeats give {idx.shape[0]}")
    return index_select(x, d, Tensor._make(idx))


# ------------------------------------------------------------------ cat / stack
class Cat(Function):
    """y = the tensors joined along ``dim``.   d(piece i) = g[..., off_i : off_i + n_i, ...] (a slice)."""

    reads = ()

    @staticmethod
    def forward(ctx, dim, *arrays):
        ctx.sizes = [a.shape[dim] for a in arrays]
        ctx.dtypes = [a.dtype for a in arrays]
        return get_array_module(arrays[0]).concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        dim = ctx.args[0]
        out, off = [None], 0
        for i, n in enumerate(ctx.sizes):
            if ctx.needs_input_grad[i + 1]:
                gi = getitem(g, _along(dim, g.ndim, slice(off, off + n)))
                out.append(gi if gi.dtype == ctx.dtypes[i] else gi.to(ctx.dtypes[i]))
            else:
                out.append(None)
            off += n
        return tuple(out)


def _tensor_list(tensors, op):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise InvalidArgumentError(f"{op} expects a sequence of tensors, got {type(tensors).__name__}")
    if len(tensors) == 0:
        raise InvalidArgumentError(f"{op} expects a non-empty sequence of tensors")
    return [t if isinstance(t, Tensor) else as_tensor(t) for t in tensors]


def cat(tensors, dim=0):
    """Join tensors along an existing dim; all other dims must match.

    As in PyTorch, 1-d empty tensors (shape (0,)) are skipped when the others have more dims.
    """
    ts = _tensor_list(tensors, "cat")
    if any(t.ndim > 1 or t.numel() for t in ts):
        ts = [t for t in ts if not (t.ndim == 1 and t.numel() == 0)] or ts[:1]
    ref = ts[0]
    if ref.ndim == 0:
        raise ShapeError("cat: zero-dimensional tensors cannot be concatenated (use stack)")
    d = norm_dim(dim, ref.ndim)
    for i, t in enumerate(ts):
        if t.ndim != ref.ndim or any(a != b for j, (a, b) in enumerate(zip(t.shape, ref.shape)) if j != d):
            raise ShapeError(f"cat: tensor {i} has shape {tuple(t.shape)} but tensor 0 has shape "
                             f"{tuple(ref.shape)}; all dims except dim {d} must match")
    return Cat.apply(d, *ts)   # always a new tensor (a copy), as in PyTorch


concat = concatenate = cat


class Stack(Function):
    """y = the tensors stacked along a new dim ``dim``.   d(piece i) = g selected at position i of ``dim``."""

    reads = ()

    @staticmethod
    def forward(ctx, dim, *arrays):
        ctx.dtypes = [a.dtype for a in arrays]
        return get_array_module(arrays[0]).stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        dim = ctx.args[0]
        out = [None]
        for i in range(len(ctx.dtypes)):
            if ctx.needs_input_grad[i + 1]:
                gi = getitem(g, _along(dim, g.ndim, i))
                out.append(gi if gi.dtype == ctx.dtypes[i] else gi.to(ctx.dtypes[i]))
            else:
                out.append(None)
        return tuple(out)


def stack(tensors, dim=0):
    """Join same-shape tensors along a new dim ``dim`` (in ``[-ndim-1, ndim]``)."""
    ts = _tensor_list(tensors, "stack")
    for i, t in enumerate(ts):
        if t.shape != ts[0].shape:
            raise ShapeError(f"stack: all tensors must have the same shape; tensor 0 has shape "
                             f"{tuple(ts[0].shape)}, tensor {i} has shape {tuple(t.shape)}")
    return Stack.apply(norm_dim(dim, ts[0].ndim + 1), *ts)


def hstack(tensors):
    ts = _tensor_list(tensors, "hstack")
    ts = [reshape(t, (1,)) if t.ndim == 0 else t for t in ts]
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    ts = _tensor_list(tensors, "vstack")
    return cat([reshape(t, (1, t.numel())) if t.ndim < 2 else t for t in ts], 0)


# ------------------------------------------------------------------ split family
def narrow(x, dim, start, length):
    """``x[..., start:start+length, ...]`` along ``dim`` (a view; start may be negative)."""
    d = _dim(x, dim, "narrow")
    n = x.shape[d]
    start, length = _as_int(start, "narrow", "start"), _as_int(length, "narrow", "length")
    if not -n <= start <= n:
        raise InvalidArgumentError(f"narrow: start {start} is out of range for dim {dim} of size {n} "
                                   f"(shape {tuple(x.shape)})")
    if start < 0:
        start += n
    if length < 0 or start + length > n:
        raise InvalidArgumentError(f"narrow: start ({start}) + length ({length}) exceeds dim {dim} of size {n} "
                                   f"(shape {tuple(x.shape)})")
    return getitem(x, _along(d, x.ndim, slice(start, start + length)))


def select(x, dim, index):
    """``x`` indexed with the integer ``index`` along ``dim`` (that dim disappears)."""
    d = _dim(x, dim, "select")
    n = x.shape[d]
    i = _as_int(index, "select", "index")
    if not -n <= i < n:
        raise IndexOutOfRangeError(f"select: index {index} is out of range for dim {dim} of size {n} "
                                   f"(valid: {-n}..{n - 1}; shape {tuple(x.shape)})")
    return getitem(x, _along(d, x.ndim, i))


def _split_at(x, d, bounds):
    return tuple(getitem(x, _along(d, x.ndim, slice(a, max(a, b)))) for a, b in zip(bounds[:-1], bounds[1:]))


def split(x, split_size_or_sections, dim=0):
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or pieces of the given sizes."""
    d = _dim(x, dim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = _ints((split_size_or_sections,), "split sections")
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ShapeError(f"split: sections {sizes} must be non-negative and sum to the size {n} of dim {dim} "
                             f"(shape {tuple(x.shape)})")
    else:
        size = _as_int(split_size_or_sections, "split", "split_size")
        if size <= 0 and not (size == 0 and n == 0):
            raise InvalidArgumentError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else []) if n else [0]
    bounds = [0]
    for s in sizes:
        bounds.append(bounds[-1] + s)
    return _split_at(x, d, bounds)


def chunk(x, chunks, dim=0):
    """Split into ``chunks`` pieces of size ceil(n / chunks) (PyTorch: may return fewer pieces)."""
    chunks = _as_int(chunks, "chunk", "chunks")
    d = _dim(x, dim, "chunk")
    n = x.shape[d]
    if chunks <= 0 or n == 0:  # an empty dim gives ``chunks`` empty pieces: bounded
        check_piece_count(chunks, n, "chunk", "chunks")
    if n == 0:
        return tuple(x for _ in range(chunks))
    return split(x, -(-n // chunks), d)


def tensor_split(x, indices_or_sections, dim=0):
    """NumPy ``array_split``: ``k`` near-equal pieces (the first ``n % k`` one longer), or split at indices."""
    d = _dim(x, dim, "tensor_split")
    n = x.shape[d]
    if isinstance(indices_or_sections, (list, tuple)) or (isinstance(indices_or_sections, Tensor)
                                                         and indices_or_sections.ndim == 1):
        idx = _ints((indices_or_sections,), "tensor_split indices")
        # piece i is x[idx[i-1] : idx[i]] with Python slice semantics (a later index may be smaller: empty)
        bounds = [0] + [min(max(i + n if i < 0 else i, 0), n) for i in idx] + [n]
    else:
        k = check_piece_count(_as_int(indices_or_sections, "tensor_split", "sections"), n, "tensor_split",
                              "sections")
        q, r = divmod(n, k)
        bounds = [0]
        for i in range(k):
            bounds.append(bounds[-1] + q + (1 if i < r else 0))
    return _split_at(x, d, bounds)


def unbind(x, dim=0):
    """All slices along ``dim``, with that dim removed."""
    d = _dim(x, dim, "unbind")
    return tuple(getitem(x, _along(d, x.ndim, i)) for i in range(x.shape[d]))


# ------------------------------------------------------------------ pad
class ConstantPad(Function):
    """y = x with ``l_d`` / ``r_d`` entries of ``value`` added before / after each dim d
    (a negative amount crops instead).

    backward: dx = the interior of g = ConstantPad(g, -amounts, 0): cropping is the
    adjoint of zero-padding and vice versa, so the backward is the same op.
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, amounts, value):
        # amounts: ((l_0, r_0), (l_1, r_1), ...) for every dim of x, in natural dim order
        xp = get_array_module(x)
        shape = tuple(n + l + r for n, (l, r) in zip(x.shape, amounts))
        if any(s < 0 for s in shape):
            raise ShapeError(f"pad: padding {amounts} makes a negative size from shape {tuple(x.shape)}")
        out = xp.full(shape, value, dtype=x.dtype)
        src, dst = [], []
        for n, (l, r) in zip(x.shape, amounts):
            a, b = max(-l, 0), max(n - max(-r, 0), max(-l, 0))
            src.append(slice(a, b))
            dst.append(slice(max(l, 0), max(l, 0) + (b - a)))
        out[tuple(dst)] = x[tuple(src)]
        return out

    @staticmethod
    def backward(ctx, g):
        amounts = tuple((-l, -r) for l, r in ctx.args[1])
        return ConstantPad.apply(g, amounts, 0), None, None


def _pad_index(n, l, r, mode):
    """Source positions for the padded positions -l .. n+r-1 of a dim of size n."""
    p = np.arange(-l, n + r)
    if mode == "reflect":
        period = 2 * (n - 1)
        p = np.abs(p) % period if period else np.zeros_like(p)
        return np.where(p >= n, period - p, p)
    if mode == "replicate":
        return np.clip(p, 0, n - 1)
    return p % n  # circular


def pad(x, pad, mode="constant", value=None):
    """PyTorch ``F.pad``: ``pad = (left, right)`` for the last dim, then (left, right) for the one before...

    ``mode``: 'constant' (fill with ``value``, default 0; negative amounts crop), 'reflect'
    (mirror without repeating the edge; amounts < size), 'replicate' (repeat the edge) or
    'circular' (wrap around). The last three gather with an index per padded dim; their
    backward scatter-adds, so the border gradient folds back onto the source elements.
    """
    amts = _ints((pad,), "pad")
    if len(amts) % 2 or len(amts) // 2 > x.ndim:
        raise InvalidArgumentError(f"pad: the pad tuple {amts} must have an even length of at most 2 * ndim "
                                   f"(input shape {tuple(x.shape)})")
    k = len(amts) // 2
    per_dim = [(0, 0)] * (x.ndim - k) + [(amts[2 * i], amts[2 * i + 1]) for i in reversed(range(k))]
    if mode == "constant":
        return ConstantPad.apply(x, tuple(per_dim), 0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise InvalidArgumentError(f"pad: unknown mode {mode!r}; expected 'constant', 'reflect', 'replicate' "
                                   f"or 'circular'")
    if value not in (None, 0):
        raise InvalidArgumentError(f"pad: value= is only used by mode='constant', got value={value} with "
                                   f"mode={mode!r}")
    out = x
    for d, (l, r) in enumerate(per_dim):
        if l == 0 and r == 0:
            continue
        n = x.shape[d]
        if l < 0 or r < 0:
            raise InvalidArgumentError(f"pad: negative padding {(l, r)} is only supported in constant mode")
        if n == 0:
            raise ShapeError(f"pad: cannot {mode}-pad dim {d} of size 0 (shape {tuple(x.shape)})")
        if mode == "reflect" and (l >= n or r >= n):
            raise InvalidArgumentError(f"pad: reflect padding {(l, r)} must be smaller than the size {n} of "
                                       f"dim {d} (shape {tuple(x.shape)})")
        idx = Tensor._make(_pad_index(n, l, r, mode).astype(np.int64))
        out = index_select(out, d, idx)
    return out


# ------------------------------------------------------------------ flip / roll / tril / triu
def _dims_arg(dims, ndim, op):
    dd = dims if isinstance(dims, (tuple, list)) else (dims,)
    out = tuple(norm_dim(d, ndim) for d in dd)
    if len(set(out)) != len(out):
        raise DimError(f"{op}: dims {tuple(dd)} names a dimension more than once")
    return out


class Flip(Function):
    """y = x reversed along ``dims``.   dx = flip(g, dims)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, dims):
        xp = get_array_module(x)
        return xp.ascontiguousarray(xp.flip(x, axis=dims)) if dims else x.copy()

    @staticmethod
    def backward(ctx, g):
        return Flip.apply(g, ctx.args[1]), None


def flip(x, dims):
    """Reverse the order of elements along ``dims`` (an int or a tuple); returns a copy."""
    return Flip.apply(x, _dims_arg(dims, x.ndim, "flip"))


def fliplr(x):
    if x.ndim < 2:
        raise ShapeError(f"fliplr needs a tensor with at least 2 dims, got shape {tuple(x.shape)}")
    return flip(x, 1)


def flipud(x):
    if x.ndim < 1:
        raise ShapeError("flipud needs a tensor with at least 1 dim")
    return flip(x, 0)


class Roll(Function):
    """y = x shifted cyclically by ``shifts`` along ``dims`` (dims=None: over the flattened tensor).

    forward: y[(i + s) mod n] = x[i].   backward: dx = roll(g, -shifts, dims).
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, shifts, dims):
        return get_array_module(x).roll(x, shifts, axis=dims)

    @staticmethod
    def backward(ctx, g):
        _, shifts, dims = ctx.args
        neg = -shifts if dims is None else tuple(-s for s in shifts)
        return Roll.apply(g, neg, dims), None, None


def roll(x, shifts, dims=None):
    if dims is None:
        s = _ints((shifts,), "roll shifts")
        if len(s) != 1:
            raise InvalidArgumentError(f"roll: with dims=None, shifts must be a single int, got {s}")
        return Roll.apply(x, s[0], None)
    s = _ints((shifts,), "roll shifts")
    d = _dims_arg(dims, x.ndim, "roll") if isinstance(dims, (tuple, list)) else (norm_dim(dims, x.ndim),)
    if len(s) != len(d):
        raise InvalidArgumentError(f"roll: shifts {s} and dims {tuple(d)} must have the same length")
    return Roll.apply(x, s, d)


class Tril(Function):
    """y = x with entries above diagonal k zeroed (last two dims).   dx = tril(g, k)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, k):
        return get_array_module(x).tril(x, k)

    @staticmethod
    def backward(ctx, g):
        return Tril.apply(g, ctx.args[1]), None


class Triu(Function):
    """y = x with entries below diagonal k zeroed (last two dims).   dx = triu(g, k)."""

    reads = ()

    @staticmethod
    def forward(ctx, x, k):
        return get_array_module(x).triu(x, k)

    @staticmethod
    def backward(ctx, g):
        return Triu.apply(g, ctx.args[1]), None


def tril(x, diagonal=0):
    if x.ndim < 2:
        raise ShapeError(f"tril needs a tensor with at least 2 dims, got shape {tuple(x.shape)}")
    return Tril.apply(x, check_int_value(diagonal, "tril", "diagonal"))


def triu(x, diagonal=0):
    if x.ndim < 2:
        raise ShapeError(f"triu needs a tensor with at least 2 dims, got shape {tuple(x.shape)}")
    return Triu.apply(x, check_int_value(diagonal, "triu", "diagonal"))


# ------------------------------------------------------------------ dim moves
def movedim(x, source, destination):
    """Move dims ``source`` to positions ``destination`` (ints or tuples); others keep their order."""
    src = _dims_arg(source, x.ndim, "movedim")
    dst = _dims_arg(destination, x.ndim, "movedim")
    if len(src) != len(dst):
        raise InvalidArgumentError(f"movedim: source {source} and destination {destination} must have the "
                                   f"same number of dims")
    rest = [i for i in range(x.ndim) if i not in src]
    perm = [None] * x.ndim
    for s, d in zip(src, dst):
        perm[d] = s
    it = iter(rest)
    perm = [p if p is not None else next(it) for p in perm]
    return permute(x, perm) if perm != list(range(x.ndim)) else x


moveaxis = movedim


def swapaxes(x, axis0, axis1):
    return transpose(x, axis0, axis1)


swapdims = swapaxes


# ------------------------------------------------------------------ copies
class Clone(Function):
    """y = a copy of x (own storage).   dx = g."""

    reads = ()

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return (g,)


def clone(x, memory_format=None):
    return Clone.apply(x)


def contiguous(x, memory_format=None):
    """``x`` itself if its storage is C-contiguous, else a contiguous copy (a :class:`Clone`)."""
    if x.array.flags.c_contiguous:
        return x
    return Clone.apply(x)


