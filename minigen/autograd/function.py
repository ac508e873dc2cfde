"""``Function``: one differentiable op = its forward on arrays + its backward on Tensors.

A subclass writes::

    class Mul(Function):
        '''forward: y = a * b      backward: da = g * b,  db = g * a'''
        @staticmethod
        def forward(ctx, a, b):          # arrays (NumPy or CuPy) and plain values
            return a * b
        @staticmethod
        def backward(ctx, g):            # g and ctx.args are Tensors
            a, b = ctx.args
            return g * b, g * a          # one entry per positional argument

Because ``backward`` is written with differentiable Tensor ops, running it with
graph recording on (``create_graph=True``) makes the backward itself
differentiable: higher-order gradients come for free.

The graph is made of *nodes*: a :class:`Context` for every op output that needs
a gradient, and the leaf Tensor itself for leaves. Edges (``ctx.next_nodes``)
point at the node an input had when the op ran, so rebinding a tensor by an
in-place op later does not rewrite the history of ops that already used it.
"""
from __future__ import annotations

import os
import traceback

import numpy as np

from ..errors import (
    AnomalyError,
    DTypeError,
    DeviceError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    MinigenError,
    ShapeError,
)
from .grad_mode import STATE

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Tensor = None  # bound by minigen.tensor at import time


class Context:
    """What an op remembers between forward and backward.

    ``args``: the op's positional arguments (Tensors stay Tensors);
    ``next_nodes``: graph edges, one per positional argument (None where no grad flows);
    ``versions``: version counters of the tensor arguments when the op ran;
    ``output``: the output tensor, kept only for ops with ``uses_output = True``.
    Ops may set any other attribute in forward (masks, indices, shapes...).
    """

    __slots__ = ("fn", "args", "next_nodes", "out_version", "__dict__")
    # defaults live on the class so creating a Context costs no attribute writes
    freed = False
    output = None
    hooks = None
    retained = None
    stack = None
    versions = None

    @property
    def name(self) -> str:
        return self.fn.__name__ + "Backward"

    def needs_input_grad(self, i: int) -> bool:
        return self.next_nodes[i] is not None

    def release(self):
        """Free what backward needed (called after a backward without retain_graph)."""
        self.args = None
        self.__dict__.clear()
        self.freed = True

    def __repr__(self):
        return f"<{self.name}>"


def user_stack_line() -> str:
    """The innermost stack frame outside the minigen package: where the user called the op."""
    for fr in reversed(traceback.extract_stack()[:-1]):
        if not os.path.abspath(fr.filename).startswith(_PKG_DIR):
            return f'File "{fr.filename}", line {fr.lineno}, in {fr.name}: {fr.line}'
    return "<inside minigen>"


def _describe(args) -> str:
    parts = []
    for a in args:
        if isinstance(a, Tensor):
            parts.append(f"Tensor(shape={tuple(a.shape)}, dtype={a.dtype}, device={a.device})")
        elif isinstance(a, (int, float, bool, type(None), str, tuple)) and len(repr(a)) < 60:
            parts.append(repr(a))
        else:
            parts.append(type(a).__name__)
    return ", ".join(parts)


def _all_finite(xp, arr) -> bool:
    if arr.dtype.kind not in "fc":
        return True
    return bool(xp.isfinite(arr).all())


class Function:
    """Base class of differentiable ops (see the module docstring)."""

    uses_inputs = True   # backward reads the values of tensor args (checked against in-place edits)
    uses_output = False  # backward reads the output (ctx.output)
    differentiable = True

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        T = Tensor
        needs = False
        raw = []
        arr_type = dev = None
        for a in args:
            if isinstance(a, T):
                d = a.array
                if arr_type is None:
                    arr_type = type(d)
                    if arr_type is not np.ndarray:
                        dev = d.device.id  # a GPU array: cuda:0 and cuda:1 do not mix either
                elif type(d) is not arr_type or (dev is not None and d.device.id != dev):
                    raise DeviceError(f"{cls.__name__}: tensors on different devices: {_describe(args)}")
                if a.requires_grad:
                    needs = True
                raw.append(d)
            else:
                raw.append(a)
        needs = needs and STATE.enabled and cls.differentiable
        ctx = Context() if needs else _Scratch()
        try:
            out = cls.forward(ctx, *raw, **kwargs)
        except MinigenError:
            raise
        except (ValueError, IndexError, TypeError, ZeroDivisionError) as e:
            err = {IndexError: IndexOutOfRangeError, TypeError: DTypeError}.get(type(e), InvalidArgumentError)
            if err is InvalidArgumentError and ("broadcast" in str(e) or "shape" in str(e) or "dimension" in str(e)):
                err = ShapeError
            raise err(f"{cls.__name__}: {e} (arguments: {_describe(args)})") from None
        if type(out) is not np.ndarray and (arr_type is None or type(out) is not arr_type):
            # NumPy returns scalars (not 0-d arrays) from some ops on 0-d inputs
            out = (np if arr_type in (None, np.ndarray) else _xp_of_type(arr_type)).asarray(out)
        res = T._make(out, needs)
        if STATE.anomaly:
            _anomaly_forward(cls, args, res, ctx)
        if needs:
            ctx.fn = cls
            ctx.args = args
            ctx.next_nodes = [
                (a._ctx or a) if isinstance(a, T) and a.requires_grad else None for a in args
            ]
            if cls.uses_inputs:
                ctx.versions = [a._vc[0] if isinstance(a, T) else 0 for a in args]
            if cls.uses_output:
                ctx.output = res
                ctx.out_version = res._vc[0]
            res._ctx = ctx
        return res


class _Scratch:
    """Stands in for a Context when no graph is recorded (forward may still set attributes)."""


def _xp_of_type(arr_type):
    import cupy

    return cupy


def _anomaly_forward(cls, args, res, ctx):
    from ..backend import get_array_module

    xp = get_array_module(res.array)
    ctx.stack = user_stack_line()
    if not _all_finite(xp, res.array):
        ins_ok = all(_all_finite(xp, a.array) for a in args if isinstance(a, Tensor))
        if ins_ok:
            raise AnomalyError(
                f"anomaly: forward of {cls.__name__} produced NaN/Inf from finite inputs "
                f"({_describe(args)}); called at {ctx.stack}"
            )


class NonDifferentiable(Function):
    """Base for ops whose result never carries a gradient (comparisons, argmax, ...)."""

    differentiable = False
