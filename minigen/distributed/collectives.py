"""Collectives on Tensors, PyTorch's names and semantics (``torch.distributed.all_reduce`` ...).

Each works in place on the Tensors it is given (their ``.array``), outside autograd, like PyTorch's. With
``async_op=False`` (default) it returns None once the result is in place; with ``async_op=True`` it returns a
:class:`~minigen.distributed.Work` right after starting, and the result is in place after ``work.wait()``.

Definitions (rank r holds x_r, world size W):

- all_reduce:      x_r <- op_{s=0..W-1} x_s              (AVG = SUM / W)
- reduce:          x_dst <- op_s x_s                      (other ranks unchanged)
- broadcast:       x_r <- x_src
- all_gather:      out_r[i] <- x_i                        (pieces may differ in size from rank to rank)
- reduce_scatter:  y_r <- op_s in_s[r]
- gather:          out_dst[i] <- x_i;   scatter: x_r <- in_src[r]
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, InvalidArgumentError, ShapeError
from .process_group import NonGroupMember, ReduceOp, _require

__all__ = ["all_reduce", "reduce", "broadcast", "all_gather", "all_gather_into_tensor", "reduce_scatter",
           "reduce_scatter_tensor", "gather", "scatter"]


def _tensor(t, what):
    from ..tensor import Tensor

    if not isinstance(t, Tensor):
        raise InvalidArgumentError(f"{what} must be a minigen Tensor, got {type(t).__name__}")
    return t


def _tensors(ts, what, n=None):
    if not isinstance(ts, (list, tuple)):
        raise InvalidArgumentError(f"{what} must be a list of Tensors, got {type(ts).__name__}")
    ts = [_tensor(t, f"{what}[{i}]") for i, t in enumerate(ts)]
    if n is not None and len(ts) != n:
        raise InvalidArgumentError(f"{what} has {len(ts)} tensors but the group has {n} ranks")
    return ts


def _same_dtype(ref, ts, what):
    for i, t in enumerate(ts):
        if t.dtype != ref.dtype:
            raise DTypeError(f"{what}[{i}] has dtype {t.dtype} but the tensor has dtype {ref.dtype}")


def _touched(*ts):
    for t in ts:  # the arrays change outside autograd: bump the version counters (saved-for-backward checks)
        vc = getattr(t, "_vc", None)
        if vc is not None:
            vc[0] += 1


def _root(r, g, what):
    if not isinstance(r, (int, np.integer)) or not 0 <= int(r) < g.size:
        raise InvalidArgumentError(f"{what}={r!r} is not a rank of a group of size {g.size}")
    return int(r)


def _done(work, async_op):
    if async_op:
        return work
    work.wait()
    return None


def _group(group):
    g = _require(group)
    return None if isinstance(g, NonGroupMember) else g


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Every rank's ``tensor`` becomes op over ranks of the ``tensor``s (in place)."""
    g = _group(group)
    if g is None:
        return None
    _tensor(tensor, "tensor")
    op = ReduceOp.check(op, tensor.dtype)
    w = g.all_reduce(tensor.array, op)
    _touched(tensor)
    return _done(w, async_op)


def reduce(tensor, dst=0, op=ReduceOp.SUM, group=None, async_op=False):
    """Rank ``dst``'s ``tensor`` becomes op over ranks of the ``tensor``s; the others' are unchanged."""
    g = _group(group)
    if g is None:
        return None
    _tensor(tensor, "tensor")
    op = ReduceOp.check(op, tensor.dtype)
    w = g.reduce(tensor.array, _root(dst, g, "dst"), op)
    _touched(tensor)
    return _done(w, async_op)


def broadcast(tensor, src=0, group=None, async_op=False):
    """Every rank's ``tensor`` becomes rank ``src``'s (same shape and dtype on every rank)."""
    g = _group(group)
    if g is None:
        return None
    _tensor(tensor, "tensor")
    w = g.broadcast(tensor.array, _root(src, g, "src"))
    _touched(tensor)
    return _done(w, async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """``tensor_list[i]`` receives rank i's ``tensor`` on every rank. The pieces may differ in size between
    ranks (then every rank must pass the same list of shapes); ``tensor_list[rank]`` must fit ``tensor``."""
    g = _group(group)
    if g is None:
        return None
    _tensor(tensor, "tensor")
    outs = _tensors(tensor_list, "tensor_list", g.size)
    _same_dtype(tensor, outs, "tensor_list")
    if outs[g.rank].numel() != tensor.numel():
        raise ShapeError(f"all_gather: tensor_list[{g.rank}] has shape {tuple(outs[g.rank].shape)} but this rank's "
                         f"tensor has shape {tuple(tensor.shape)}")
    w = g.all_gather([o.array for o in outs], tensor.array)
    _touched(*outs)
    return _done(w, async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """``output_tensor`` (W·n elements) = the ranks' ``input_tensor``s (n elements each), concatenated by rank
    along the first dim (or flattened)."""
    g = _group(group)
    if g is None:
        return None
    _tensor(output_tensor, "output_tensor")
    _tensor(input_tensor, "input_tensor")
    _same_dtype(input_tensor, [output_tensor], "output_tensor")
    n = input_tensor.numel()
    if output_tensor.numel() != n * g.size:
        raise ShapeError(f"all_gather_into_tensor: output_tensor has shape {tuple(output_tensor.shape)} "
                         f"({output_tensor.numel()} elements) but world size {g.size} x input shape "
                         f"{tuple(input_tensor.shape)} is {n * g.size} elements")
    flat = output_tensor.array.reshape(-1) if output_tensor.is_contiguous() else None
    if flat is not None:
        outs = [flat[i * n:(i + 1) * n] for i in range(g.size)]
        w = g.all_gather(outs, input_tensor.array)
    else:
        tmp = [np.empty(n, input_tensor.dtype) for _ in range(g.size)]
        w = g.all_gather(tmp, input_tensor.array)
        w.wait()
        output_tensor.array[...] = _like(output_tensor.array, np.concatenate(tmp).reshape(output_tensor.shape))
    _touched(output_tensor)
    return _done(w, async_op)


def _like(ref, a):
    if type(ref) is np.ndarray:
        return a
    import cupy

    return cupy.asarray(a)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """``output`` on rank r = op over ranks of their ``input_list[r]``. The pieces may differ in size between
    ranks (every rank passes the same list of shapes; ``input_list[rank]`` must fit ``output``)."""
    g = _group(group)
    if g is None:
        return None
    _tensor(output, "output")
    ins = _tensors(input_list, "input_list", g.size)
    _same_dtype(output, ins, "input_list")
    op = ReduceOp.check(op, output.dtype)
    if ins[g.rank].numel() != output.numel():
        raise ShapeError(f"reduce_scatter: input_list[{g.rank}] has shape {tuple(ins[g.rank].shape)} but output "
                         f"has shape {tuple(output.shape)}")
    w = g.reduce_scatter(output.array, [i.array for i in ins], op)
    _touched(output)
    return _done(w, async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """``output`` (n elements) on rank r = op over ranks of slice r of their ``input`` (W·n elements)."""
    g = _group(group)
    if g is None:
        return None
    _tensor(output, "output")
    _tensor(input, "input")
    _same_dtype(output, [input], "input")
    n = output.numel()
    if input.numel() != n * g.size:
        raise ShapeError(f"reduce_scatter_tensor: input has shape {tuple(input.shape)} ({input.numel()} elements) but "
                         f"world size {g.size} x output shape {tuple(output.shape)} is {n * g.size} elements")
    op = ReduceOp.check(op, output.dtype)
    flat = input.array.reshape(-1)
    w = g.reduce_scatter(output.array, [flat[i * n:(i + 1) * n] for i in range(g.size)], op)
    _touched(output)
    return _done(w, async_op)


def gather(tensor, gather_list=None, dst=0, group=None, async_op=False):
    """On rank ``dst``, ``gather_list[i]`` receives rank i's ``tensor``; the other ranks pass no list."""
    g = _group(group)
    if g is None:
        return None
    _tensor(tensor, "tensor")
    dst = _root(dst, g, "dst")
    if g.rank == dst:
        outs = _tensors(gather_list, "gather_list", g.size)
        _same_dtype(tensor, outs, "gather_list")
        if outs[dst].numel() != tensor.numel():
            raise ShapeError(f"gather: gather_list[{dst}] has shape {tuple(outs[dst].shape)} but the tensor has "
                             f"shape {tuple(tensor.shape)}")
        w = g.gather(tensor.array, [o.array for o in outs], dst)
        _touched(*outs)
    else:
        if gather_list:
            raise InvalidArgumentError(f"gather: gather_list must be None on ranks other than dst={dst}")
        w = g.gather(tensor.array, None, dst)
    return _done(w, async_op)


def scatter(tensor, scatter_list=None, src=0, group=None, async_op=False):
    """Rank r's ``tensor`` receives rank ``src``'s ``scatter_list[r]``; the other ranks pass no list."""
    g = _group(group)
    if g is None:
        return None
    _tensor(tensor, "tensor")
    src = _root(src, g, "src")
    if g.rank == src:
        ins = _tensors(scatter_list, "scatter_list", g.size)
        _same_dtype(tensor, ins, "scatter_list")
        if ins[src].numel() != tensor.numel():
            raise ShapeError(f"scatter: scatter_list[{src}] has shape {tuple(ins[src].shape)} but the tensor has "
                             f"shape {tuple(tensor.shape)}")
        w = g.scatter(tensor.array, [i.array for i in ins], src)
    else:
        if scatter_list:
            raise InvalidArgumentError(f"scatter: scatter_list must be None on ranks other than src={src}")
        w = g.scatter(tensor.array, None, src)
    _touched(tensor)
    return _done(w, async_op)
