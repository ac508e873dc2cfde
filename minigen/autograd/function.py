"""``Function``: one differentiable op = its forward on arrays + its backward on Tensors.

A subclass writes::

    class Mul(Function):
        '''forward: y = a * b      backward: da = g * b,  db = g * a'''
        reads = ((1,), (0,))             # da reads b, db reads a (what the in-place check guards)
        @staticmethod
        def forward(ctx, a, b):          # arrays (NumPy or CuPy) and plain values
            return a * b
        @staticmethod
        def backward(ctx, g):            # g and ctx.args are Tensors
            a, b = ctx.args
            return g * b, g * a          # one entry per positional argument

The engine undoes broadcasting (sums a gradient back to its input's shape), so a
backward may return ``g * b`` even when ``a`` was broadcast. An optional
``fast_backward(ctx, grad_array)`` -- a fused kernel on raw arrays -- serves
first-order backwards; ``backward`` stays the one formula.

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
from ..tensor import Tensor
from .grad_mode import STATE

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Context:
    """What an op remembers between forward and backward.

    ``args``: the op's positional arguments (Tensors stay Tensors);
    ``needs_input_grad``: one bool per positional argument (PyTorch's name), set before ``forward``
    runs, so a forward can skip saving what no gradient will read;
    ``next_nodes``: graph edges, one per positional argument (None where no grad flows);
    ``saved``: ``(position, version)`` of the tensor arguments the backward reads (version-checked);
    ``output``: the output tensor, kept only for ops with ``uses_output = True``.
    Ops may set any other attribute in forward (masks, indices, shapes...).
    """

    __slots__ = ("fn", "args", "next_nodes", "needs_input_grad", "saved", "out_version", "__dict__")
    # defaults live on the class so creating a Context costs no attribute writes
    freed = False
    output = None
    hooks = None
    retained = None
    stack = None

    @property
    def name(self) -> str:
        return self.fn.__name__ + "Backward"

    def release(self):
        """Free what backward needed (called after a backward without retain_graph)."""
        self.args = None
        self.__dict__.clear()
        self.freed = True

    def __repr__(self):
        return f"<{self.name}>"


class _NoGradContext:
    """Stands in for a Context when no graph is recorded: forward may still set attributes on it."""

    __slots__ = ("needs_input_grad", "__dict__")


_NO_GRAD = [(False,) * n for n in range(8)]


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
    """Base class of differentiable ops (see the module docstring).

    Class attributes an op may set:

    ``reads``: which tensor arguments each gradient reads, for the in-place version check: None (the
    default) means "every tensor argument"; otherwise a tuple with one entry per positional argument,
    the positions the gradient *of that argument* reads (``Mul.reads = ((1,), (0,))``: da reads b, db
    reads a). Only the arguments read by a gradient that is needed are saved and checked.
    ``uses_output``: the backward reads the output (``ctx.output``, version-checked).
    ``fast_backward``: an optional ``staticmethod(ctx, grad_array) -> tuple of arrays`` computing the
    same gradient as ``backward`` on raw arrays (usually a fused kernel). The engine uses it for a
    first-order backward (no ``create_graph``); it may return ``NotImplemented`` when no kernel applies
    to these arrays, and the engine then runs ``backward``. ``backward`` stays the one formula.
    ``differentiable``: False for ops whose output never carries a gradient.
    """

    reads = None
    uses_output = False
    differentiable = True
    fast_backward = None

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        # the hottest function of the library: one pass over the arguments, nothing built that is not needed
        record = STATE.enabled and cls.differentiable
        raw = []
        push = raw.append
        if record:  # graph edges and requires-grad flags, built during the pass
            nodes = []
            flags = []
        req = False
        arr_type = None
        for a in args:
            if isinstance(a, Tensor):
                d = a.array
                if arr_type is None:
                    arr_type = type(d)
                elif type(d) is not arr_type and not (
                        isinstance(d, (np.ndarray, np.generic)) and issubclass(arr_type, (np.ndarray, np.generic))):
                    raise DeviceError(f"{cls.__name__}: tensors on different devices: {_describe(args)}")
                push(d)
                if record:
                    if a.requires_grad:
                        req = True
                        nodes.append(a._ctx or a)
                        flags.append(True)
                    else:
                        nodes.append(None)
                        flags.append(False)
            else:
                push(a)
                if record:
                    nodes.append(None)
                    flags.append(False)
        if arr_type is not None and arr_type is not _ndarray:
            if issubclass(arr_type, (np.generic, np.ndarray)):  # a NumPy scalar stored as t.array (0-d math)
                raw = [np.asarray(r) if isinstance(r, (np.generic, np.ndarray)) else r for r in raw]
                arr_type = _ndarray
            else:
                _check_one_gpu(cls, args)
        if req:
            needs = tuple(flags)
            pos = _PLANS.get((cls, needs))
            if pos is None:
                pos = _plan(cls, needs)
            ctx = Context()
            ctx.needs_input_grad = needs
        else:
            ctx = _NoGradContext()
            n = len(args)
            ctx.needs_input_grad = _NO_GRAD[n] if n < 8 else (False,) * n
        try:
            out = cls.forward(ctx, *raw, **kwargs)
        except MinigenError:
            raise
        except (ValueError, IndexError, TypeError, ZeroDivisionError) as e:
            raise _translate(cls, e, args) from None
        if type(out) is not _ndarray and (arr_type is None or type(out) is not arr_type):
            # NumPy returns scalars (not 0-d arrays) from some ops on 0-d inputs
            out = (np if arr_type in (None, _ndarray) else _xp_of_type(arr_type)).asarray(out)
        res = Tensor._make(out, req)
        if STATE.anomaly:
            _anomaly_forward(cls, args, res, ctx)
        if req:
            ctx.fn = cls
            ctx.args = args
            ctx.next_nodes = nodes
            ctx.saved = [(j, args[j]._vc[0]) for j in pos if isinstance(args[j], Tensor)] if pos else ()
            if cls.uses_output:
                ctx.output = res
                ctx.out_version = res._vc[0]
            res._ctx = ctx
        return res


_ndarray = np.ndarray


_PLANS: dict = {}  # (Function class, needs) -> positions of the arguments to save


def _plan(cls, needs):
    """What a node of ``cls`` saves when the gradients flagged in ``needs`` are wanted: the tensor
    arguments those gradients read (``cls.reads``; None = every argument), planned once per (op, needs)."""
    reads = cls.reads
    if reads is None:
        want = set(range(len(needs)))
    elif reads == ():  # no gradient reads an argument
        want = set()
    else:
        want = set()
        for j, f in enumerate(needs):
            if f:
                want.update(reads[j])
    pos = _PLANS[(cls, needs)] = tuple(sorted(want))
    return pos


def _check_one_gpu(cls, args):
    """GPU arrays: cuda:0 and cuda:1 do not mix either."""
    devs = {a.array.device.id for a in args if isinstance(a, Tensor)}
    if len(devs) > 1:
        raise DeviceError(f"{cls.__name__}: tensors on different devices: {_describe(args)}")


def _translate(cls, e, args):
    """A NumPy/Python error inside a forward as the minigen error naming the op and its arguments."""
    err = {IndexError: IndexOutOfRangeError, TypeError: DTypeError}.get(type(e), InvalidArgumentError)
    if err is InvalidArgumentError and ("broadcast" in str(e) or "shape" in str(e) or "dimension" in str(e)):
        err = ShapeError
    return err(f"{cls.__name__}: {e} (arguments: {_describe(args)})")


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
