"""Differentiable collectives (PyTorch's ``torch.distributed.nn.functional``).

``all_reduce(x)`` returns a new Tensor y = sum_r x_r on every rank, recorded in the graph. Its backward is the
same collective on the incoming gradients: every rank's loss L_s depends on every x_r through y, so
dL/dx_r = sum_s dL_s/dy — the gradients of all ranks, summed (this is how SyncBatchNorm's statistics pass
gradients back to the activations of the other ranks). Every rank must call it, in the same order, in forward
and (implicitly) in backward.
"""
from __future__ import annotations

from ..autograd import Function
from .process_group import ReduceOp, _require


class _AllReduceSum(Function):
    """forward: y = sum_r x_r      backward: dx_r = sum_s g_s (itself an all-reduce, so double-differentiable)"""

    uses_inputs = False

    @staticmethod
    def forward(ctx, x, group=None):
        ctx.group = group
        y = x.copy()
        _require(group).all_reduce(y, "sum").wait()
        return y

    @staticmethod
    def backward(ctx, g):
        return _AllReduceSum.apply(g, ctx.group)


def all_reduce(tensor, op=ReduceOp.SUM, group=None):
    """Differentiable out-of-place all-reduce: returns sum (or average with ``op=AVG``) over ranks of ``tensor``."""
    op = ReduceOp.check(op, tensor.dtype)
    if op not in ("sum", "avg"):
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(f"the differentiable all_reduce supports SUM and AVG, not {op.upper()}")
    y = _AllReduceSum.apply(tensor, group)
    if op == "avg":
        y = y / _require(group).size
    return y
