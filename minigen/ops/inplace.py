"""Tensor methods that change a tensor's dtype/device (``to``) or its values in place (``add_``, ``copy_``, ...).

In-place edits and autograd: the edited tensor is rebound to the graph node of the new value, and its
old value lives on as the new op's input (PyTorch's "original self"); an edit through a ``x[...]`` view
rebinds every base up the view chain to "base with the view's region replaced" (PyTorch's
CopySlices). The version counter (shared with views) is bumped once per edit, so a saved tensor edited
afterwards is caught at backward time.
"""
from __future__ import annotations

from .. import backend
from ..autograd.grad_mode import STATE, no_grad
from ..errors import AutogradError, ShapeError
from ..tensor import Tensor, as_dtype, bool_, float16, float32, float64, int32, int64


class _Methods:
    # the bodies below are Tensor methods; minigen.ops.methods attaches them to Tensor
    def to(self, *args, dtype=None, device=None, copy=False):
        """``t.to(mg.float64)``, ``t.to('cuda')``, ``t.to('cpu', mg.float32)`` (differentiable)."""
        for a in args:
            if isinstance(a, (str, backend.Device)):
                device = a
            elif isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            else:
                dtype = a
        out = self
        if dtype is not None and as_dtype(dtype) != self.dtype:
            from .elementwise import Cast

            out = Cast.apply(out, as_dtype(dtype))
        if device is not None and backend.as_device(device) != self.device:
            from .elementwise import ToDevice

            out = ToDevice.apply(out, backend.as_device(device))
        if copy and out is self:
            out = self.clone()
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{device}")

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def half(self):
        return self.to(float16)

    def long(self):
        return self.to(int64)

    def int(self):
        return self.to(int32)

    def bool(self):
        return self.to(bool_)

    def type_as(self, other):
        return self.to(other.dtype)

    # ---------------------------------------------------------------- in place
    def _inplace(self, compute, *args):
        """Run ``compute(self, *args)`` out of place, then write the result into this tensor's storage.

        With autograd recording, the tensor is rebound to the new op's node (its old
        node lives on as the new op's input), so gradients stay correct; a leaf that
        requires grad cannot be edited in place (as in PyTorch).
        """
        track = STATE.enabled and (self.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args))
        if track:
            if self._ctx is None and self.requires_grad:
                raise AutogradError(
                    f"a leaf tensor that requires grad (shape {tuple(self.shape)}) is being used in an in-place "
                    f"operation; wrap it in mg.no_grad() or use an out-of-place op"
                )
            # the op's input is the *original* value: a copy with its own version counter, bound to
            # this tensor's current graph node (what PyTorch saves as "original self")
            old = Tensor._make(self.array.copy(), self.requires_grad)
            old._ctx = self._ctx
            out = compute(old, *args)
            bases = self._view_chain() if self._view is not None else ()
        else:
            with no_grad():
                out = compute(self, *args)
        if out.shape != self.shape:
            raise ShapeError(
                f"in-place op would change the shape of the tensor from {tuple(self.shape)} to {tuple(out.shape)}"
            )
        out_data = out.array.astype(self.dtype) if out.dtype != self.dtype else out.array
        if track and bases:
            # editing a view edits its base: rebind each base to "base with the view's region replaced"
            from .shape import SetItem

            olds = [Tensor._make(b.array.copy(), b.requires_grad) for b, _ in bases]
            for o, (b, _) in zip(olds, bases):
                o._ctx = b._ctx
            self.array[...] = out_data
            new = out
            for o, (b, idx) in zip(olds, bases):
                new = SetItem.apply(o, new, idx)
                b._ctx, b.requires_grad = new._ctx, True
            self._vc[0] += 1
            self._ctx, self.requires_grad = out._ctx, True
            return self
        self.array[...] = out_data
        self._vc[0] += 1
        if track:
            self._ctx = out._ctx
            self.requires_grad = True
        return self

    def _view_chain(self):
        """[(base, index), ...] from this view up to the tensor that owns the storage."""
        chain, t = [], self
        while t._view is not None:
            base, idx = t._view
            if idx is None:
                raise AutogradError(
                    f"in-place operation on a view made by reshape/view/permute/transpose (shape "
                    f"{tuple(self.shape)}) while autograd is recording: edit the base tensor, use .clone(), "
                    f"or an out-of-place op"
                )
            if base._ctx is None and base.requires_grad:
                raise AutogradError(
                    f"a view of a leaf tensor that requires grad (shape {tuple(base.shape)}) is being used in an "
                    f"in-place operation; wrap it in mg.no_grad() or use an out-of-place op"
                )
            chain.append((base, idx))
            t = base
        return chain

    def add_(self, other, alpha=1):
        return self._inplace(lambda a, b: a + (b if alpha == 1 else b * alpha), other)

    def sub_(self, other, alpha=1):
        return self._inplace(lambda a, b: a - (b if alpha == 1 else b * alpha), other)

    def mul_(self, other):
        return self._inplace(lambda a, b: a * b, other)

    def div_(self, other):
        return self._inplace(lambda a, b: a / b, other)

    def pow_(self, other):
        return self._inplace(lambda a, b: a ** b, other)

    def clamp_(self, min=None, max=None):
        return self._inplace(lambda a: a.clamp(min, max))

    def neg_(self):
        return self._inplace(lambda a: -a)

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        """x[...] = value.  Under autograd: y = value, dy/dx = 0 (a view's base keeps its gradient elsewhere)."""
        if isinstance(value, Tensor):
            if value.array.size != 1:
                raise ShapeError(f"fill_ takes a number or a 1-element tensor, got shape {tuple(value.shape)}")
            value = value.item()
        _check_fill_value(value, self.dtype, "fill_")
        if STATE.enabled and (self.requires_grad or self._view is not None and _view_tracked(self)):
            from .indexing import masked_fill

            return self._inplace(lambda a: masked_fill(a, _all_true(a), value))
        self.array[...] = value
        self._vc[0] += 1
        return self

    def copy_(self, src):
        """x[...] = src (broadcast, cast to x's dtype).  Under autograd: dx_old = 0, dsrc = sum_to(g, src.shape)."""
        src = src if isinstance(src, Tensor) else Tensor(src)
        if src.device != self.device:
            src = src.to(self.device)
        if src.dtype != self.dtype:
            src = src.to(self.dtype)
        from .pointwise import where

        return self._inplace(lambda a, s: where(_all_true(a), s, a), src)

    def __setitem__(self, index, value):
        from .shape import setitem

        setitem(self, index, value)

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)



def _all_true(t):
    return Tensor._make(t.xp.ones(t.shape, dtype=bool))


def _view_tracked(t):
    """Whether some base up the view chain of ``t`` is part of a graph (so an edit must rebind it)."""
    while t._view is not None:
        t = t._view[0]
        if t.requires_grad:
            return True
    return False


def _check_fill_value(value, dtype, op):
    import numbers

    import numpy as np

    from ..errors import DTypeError

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Number, np.generic)):
        if isinstance(value, (bool, np.bool_)):
            return
        raise DTypeError(f"{op}: the value must be a number, got {type(value).__name__}")
    if isinstance(value, complex) or (isinstance(value, np.generic) and np.iscomplexobj(value)):
        raise DTypeError(f"{op}: complex value {value!r} for a tensor of dtype {dtype}")
    if dtype.kind in "iu" and isinstance(value, numbers.Integral):
        info = np.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            raise DTypeError(f"{op}: value {value} is out of range for dtype {dtype} [{info.min}, {info.max}]")
