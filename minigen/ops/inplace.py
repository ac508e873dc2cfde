"""Tensor methods that change a tensor's dtype/device (``to``) or its values in place (``add_``, ``copy_``, ...).

In-place edits and autograd: the edited tensor is rebound to the graph node of the new value, and its
old value lives on as the new op's input (PyTorch's "original self"); an edit through a ``x[...]`` view
rebinds every base up the view chain to "base with the view's region replaced" (PyTorch's
CopySlices). The version counter (shared with views) is bumped once per edit, so a saved tensor edited
afterwards is caught at backward time.
"""
from __future__ import annotations

from .. import backend
from ..argcheck import check_addc, check_flag, check_generator, check_int_value, check_tensor
from ..autograd.grad_mode import STATE, no_grad
from ..errors import AutogradError, DTypeError, ShapeError
from . import pointwise as _pw
from ..tensor import Tensor, as_dtype, bool_, float16, float32, float64, int8, int16, int32, int64, uint8


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
        copy = check_flag(copy, "to", "copy")
        out = self
        if dtype is not None and as_dtype(dtype) != self.dtype:
            out = _pw.Cast.apply(out, as_dtype(dtype))
        if device is not None and backend.as_device(device) != self.device:
            out = _pw.ToDevice.apply(out, backend.as_device(device))
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

    def byte(self):
        return self.to(uint8)

    def char(self):
        return self.to(int8)

    def short(self):
        return self.to(int16)

    def bernoulli(self, p=None, *, generator=None):
        """Samples in {0, 1}: with probability ``self`` (or ``p`` when given), as PyTorch's ``Tensor.bernoulli``."""
        from ..tensor import bernoulli, full_like

        if p is not None and not isinstance(p, Tensor):
            p = _check_dist("bernoulli", p=p)["p"]
        probs = self if p is None else (p if isinstance(p, Tensor) else full_like(self, p))
        return bernoulli(probs, generator=generator)

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        from ..tensor import multinomial

        return multinomial(self, num_samples, replacement=replacement, generator=generator)

    def type_as(self, other):
        return self.to(check_tensor(other, "type_as", "other").dtype)

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
        if out.dtype != self.dtype:
            from .pointwise import can_cast

            if not can_cast(out.dtype, self.dtype):
                raise DTypeError(f"result type {out.dtype} can't be cast to the desired output type {self.dtype} "
                                 f"of an in-place op (tensor of shape {tuple(self.shape)})")
        out_data = out.array.astype(self.dtype) if out.dtype != self.dtype else out.array
        if track and bases:
            # editing a view edits its base: rebind each base to "base with the view's region replaced"
            from .indexing import SetItem

            olds = [Tensor._make(b.array.copy(), b.requires_grad) for b, _ in bases]
            for o, (b, _) in zip(olds, bases):
                o._ctx = b._ctx
            self.array[...] = out_data
            new = out
            for o, (b, idx) in zip(olds, bases):
                new = idx(new) if callable(idx) else SetItem.apply(o, new, idx)
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
        """[(base, index), ...] from this view up to the tensor that owns the storage.

        ``index``: the ``x[index]`` that made the view, or a function giving the whole base from the view's
        value (reshape/view/permute/transpose views cover their base)."""
        chain, t = [], self
        while t._view is not None:
            base, idx = t._view
            if base._ctx is None and base.requires_grad:
                raise AutogradError(
                    f"a view of a leaf tensor that requires grad (shape {tuple(base.shape)}) is being used in an "
                    f"in-place operation; wrap it in mg.no_grad() or use an out-of-place op"
                )
            chain.append((base, idx))
            t = base
        return chain

    def add_(self, other, alpha=1):
        return self._inplace(lambda a, b: _pw.add(a, b, alpha=alpha), other)

    def sub_(self, other, alpha=1):
        return self._inplace(lambda a, b: _pw.sub(a, b, alpha=alpha), other)

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

    # ------------------------------------------------------------ PyTorch conveniences
    def t(self):
        """Transpose of a tensor with at most 2 dims (PyTorch's ``Tensor.t``)."""
        if self.ndim > 2:
            raise ShapeError(f"t() expects a tensor with <= 2 dimensions, got shape {tuple(self.shape)}; "
                             "use transpose(dim0, dim1) or .mT")
        from .shape import transpose

        return self if self.ndim < 2 else transpose(self, 0, 1)

    def t_(self):
        if self.ndim > 2:
            raise ShapeError(f"t_() expects a tensor with <= 2 dimensions, got shape {tuple(self.shape)}")
        if self.ndim == 2:
            if self.requires_grad and STATE.enabled:
                raise AutogradError("t_() on a tensor that requires grad is not supported; use t()")
            self.array = self.array.T
            self._vc[0] += 1
        return self

    def type(self, dtype=None, non_blocking=False):
        """``x.type()`` -> PyTorch's type string ('torch.FloatTensor'); ``x.type(dtype)`` -> ``x.to(dtype)``."""
        if dtype is None:
            prefix = "torch.cuda." if self.device.type == "cuda" else "torch."
            return prefix + _TYPE_NAMES.get(self.dtype.name, self.dtype.name) + "Tensor"
        if isinstance(dtype, str) and dtype.startswith("torch."):
            names = {v + "Tensor": k for k, v in _TYPE_NAMES.items()}
            name = dtype.split(".")[-1]
            if name not in names:
                from ..errors import DTypeError

                raise DTypeError(f"type(): unknown tensor type {dtype!r}")
            dtype = names[name]
        return self.to(as_dtype(dtype))

    def addcmul_(self, tensor1, tensor2, value=1):
        """x += value * tensor1 * tensor2 (in place)."""
        value = check_addc("addcmul_", tensor1, tensor2, value)
        return self._inplace(lambda a, b, c: a + value * (b * c), tensor1, tensor2)

    def addcdiv_(self, tensor1, tensor2, value=1):
        """x += value * tensor1 / tensor2 (in place)."""
        value = check_addc("addcdiv_", tensor1, tensor2, value)
        return self._inplace(lambda a, b, c: a + value * (b / c), tensor1, tensor2)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        from ..tensor import tensor

        return tensor(data, dtype=self.dtype if dtype is None else dtype,
                      device=self.device if device is None else device, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        from ..tensor import zeros

        return zeros(*size, dtype=self.dtype if dtype is None else dtype,
                     device=self.device if device is None else device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        from ..tensor import ones

        return ones(*size, dtype=self.dtype if dtype is None else dtype,
                     device=self.device if device is None else device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        from ..tensor import empty

        return empty(*size, dtype=self.dtype if dtype is None else dtype,
                     device=self.device if device is None else device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        from ..tensor import full

        return full(size, fill_value, dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device is None else device, requires_grad=requires_grad)

    # in-place random fills: x[...] = a draw (never recorded by autograd, like PyTorch)
    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        mean, std = _check_dist("normal_", mean=mean, std=std).values()
        return _fill_random(self, lambda r, shape: r.normal(mean, std, shape), generator, "normal_")

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        a, b = _check_dist("uniform_", a=a, b=b).values()
        if not a <= b:
            from ..errors import InvalidArgumentError

            raise InvalidArgumentError(f"uniform_: expects a <= b, got a={a}, b={b}")
        return _fill_random(self, lambda r, shape: r.uniform(a, b, shape), generator, "uniform_")

    def bernoulli_(self, p=0.5, *, generator=None):
        if isinstance(p, Tensor):
            if p.device != self.device:
                p = p.to(self.device)
            _broadcasts_into(p.shape, self.shape, "bernoulli_", "p")
            p = p.array
        else:
            p = _check_dist("bernoulli_", p=p)["p"]
        return _fill_random(self, lambda r, shape: (r.random(shape) < p), generator, "bernoulli_", any_dtype=True)

    def exponential_(self, lambd=1.0, *, generator=None):
        lambd = _check_dist("exponential_", lambd=lambd)["lambd"]
        return _fill_random(self, lambda r, shape: r.exponential(1.0 / lambd, shape), generator, "exponential_")

    def geometric_(self, p, *, generator=None):
        p = _check_dist("geometric_", p=p)["p"]
        if not 0 < p < 1:
            from ..errors import InvalidArgumentError

            raise InvalidArgumentError(f"geometric_: expects p in (0, 1), got p={p}")
        return _fill_random(self, lambda r, shape: r.geometric(p, shape), generator, "geometric_", any_dtype=True)

    def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
        mean, std = _check_dist("log_normal_", mean=mean, std=std).values()
        return _fill_random(self, lambda r, shape: r.lognormal(mean, std, shape), generator, "log_normal_")

    def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
        median, sigma = _check_dist("cauchy_", median=median, sigma=sigma).values()
        return _fill_random(self, lambda r, shape: median + sigma * r.standard_cauchy(shape), generator, "cauchy_")

    def random_(self, from_=0, to=None, *, generator=None):
        """Integers uniform in [from_, to) (``to=None``: [0, from_) if only one bound... PyTorch: random_(to))."""
        import numpy as np

        from_ = check_int_value(from_, "random_", "from")
        to = None if to is None else check_int_value(to, "random_", "to")
        if to is None:
            lo, hi = 0, from_ if from_ else None
        else:
            lo, hi = from_, to
        if hi is None:
            if self.dtype.kind in "iu":
                hi = int(np.iinfo(self.dtype).max) + 1
            elif self.dtype.kind == "b":
                hi = 2
            else:
                hi = 2 ** np.finfo(self.dtype).nmant + 1
        if not lo < hi:
            from ..errors import InvalidArgumentError

            raise InvalidArgumentError(f"random_: expects from < to, got from={lo}, to={hi}")
        return _fill_random(self, lambda r, shape: r.integers(lo, hi, shape), generator, "random_", any_dtype=True)

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
        from .indexing import setitem

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


_TYPE_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int",
               "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool", "bfloat16": "BFloat16"}


def _check_dist(op, **params):
    import math

    from ..errors import InvalidArgumentError

    import numbers

    out = {}
    for k, v in params.items():
        if isinstance(v, Tensor) and v.ndim == 0:
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise InvalidArgumentError(f"{op}: {k} must be a real number, got {type(v).__name__}")
        fv = out[k] = float(v)
        if math.isnan(fv):
            raise InvalidArgumentError(f"{op}: {k} is NaN")
        if k in ("std", "sigma", "lambd") and not fv > 0 and not (k == "std" and fv == 0):
            raise InvalidArgumentError(f"{op}: expects {k} > 0, got {k}={v}")
        if k == "p" and not 0 <= fv <= 1:
            raise InvalidArgumentError(f"{op}: expects 0 <= p <= 1, got p={v}")
    return out


def _broadcasts_into(shape, target, op, name):
    """ShapeError unless ``shape`` broadcasts to ``target`` (an in-place fill's parameter tensor)."""
    import numpy as np

    try:
        ok = np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        ok = False
    if not ok:
        raise ShapeError(f"{op}: {name} of shape {tuple(shape)} does not broadcast to the tensor's shape "
                         f"{tuple(target)}")


def _fill_random(t, draw, generator, op, any_dtype=False):
    from ..errors import DTypeError
    from ..random import _gen

    if not any_dtype and t.dtype.kind != "f":
        raise DTypeError(f"{op} needs a floating point tensor, got dtype {t.dtype}")
    if STATE.enabled and t.requires_grad and t._ctx is None:
        raise AutogradError(f"a leaf tensor that requires grad is being used in an in-place operation ({op}); "
                            "wrap it in mg.no_grad()")
    check_generator(generator, op)
    xp = t.xp
    r = _gen(generator).xp_generator(xp)
    vals = draw(r, t.shape)
    t.array[...] = xp.asarray(vals).astype(t.dtype, copy=False)
    t._vc[0] += 1
    return t
