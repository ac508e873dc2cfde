"""``Tensor``: an n-d array (NumPy on the CPU, CuPy on a GPU) plus what autograd needs.

Fields (see ``__slots__``):
- ``array``: the array (NumPy or CuPy) -- the documented way to reach it; ``xp`` is found
  from it, never from a flag. ``t.data`` is PyTorch's: a Tensor sharing ``array``, detached
  from the graph, with a version counter of its own (``p.data.add_(g, alpha=-lr)`` updates ``p``
  without autograd noticing, as in PyTorch).
- ``requires_grad``: whether gradients flow to this tensor.
- ``grad``: the accumulated gradient (a Tensor) after ``backward``.
- ``_ctx``: the :class:`~minigen.autograd.function.Context` of the op that made it
  (None for leaves); exposed as ``grad_fn``.
- ``_vc``: a one-element list, the version counter, shared with views of the same
  storage; in-place ops bump it so autograd notices a saved tensor was edited.
- ``_view``: for a view, ``(base, index)`` (``index`` is None for reshape/permute
  views), so an in-place edit of the view can rebind the base's graph node.

This module is the data structure only: it imports nothing from the autograd
engine or the ops. The methods that run ops (``x.sum()``, ``x.relu()``, ``x.add_()``,
``x.to()``...) are declared in one table, :mod:`minigen.ops.methods`, and attached
from there.
"""
from __future__ import annotations

import builtins
import weakref

import numpy as np

from . import backend
from .argcheck import check_float, norm_dim
from .errors import AutogradError, DTypeError, DeviceError, InvalidArgumentError, ShapeError
from .random import _gen

# dtypes: NumPy dtype objects under PyTorch's names
float16 = half = np.dtype("float16")
float32 = float = np.dtype("float32")
float64 = double = np.dtype("float64")
int8 = np.dtype("int8")
uint8 = np.dtype("uint8")
int16 = short = np.dtype("int16")
int32 = int = np.dtype("int32")
int64 = long = np.dtype("int64")
bool_ = np.dtype("bool")
complex64 = cfloat = np.dtype("complex64")
complex128 = cdouble = np.dtype("complex128")


class UnsupportedDType:
    """A PyTorch dtype NumPy cannot hold (``mg.bfloat16``): it exists so programs that name it import and
    run on the CPU path, and using it to make a tensor raises a DTypeError saying so."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"minigen.{self.name}"


bfloat16 = UnsupportedDType("bfloat16")
_builtin_int, _builtin_float, _builtin_bool = builtins.int, builtins.float, builtins.bool

_default_dtype = [np.dtype("float32")]


def set_default_dtype(dtype) -> None:
    from .argcheck import check_dtype

    d = check_dtype(dtype, "set_default_dtype")
    if d.kind != "f":
        raise DTypeError(f"default dtype must be a floating point dtype, got {d}")
    _default_dtype[0] = d


def get_default_dtype():
    return _default_dtype[0]


def as_dtype(dtype):
    """Normalise a dtype spec (``mg.float32``, ``'float32'``, ``np.float32``, ``bool``)."""
    if dtype is None:
        return None
    if dtype is _builtin_bool:
        return bool_
    if dtype is _builtin_float:
        return _default_dtype[0]
    if dtype is _builtin_int:
        return int64
    if isinstance(dtype, UnsupportedDType):
        raise DTypeError(f"{dtype.name} is not supported: NumPy (minigen's array library) has no {dtype.name}; "
                         "use float32 or float16")
    try:
        d = np.dtype(dtype)
    except (TypeError, ValueError):
        raise DTypeError(f"not a dtype: {dtype!r}") from None
    if d.kind not in "biufc":
        raise DTypeError(f"minigen tensors hold booleans and numbers; dtype {d} ({dtype!r}) is not supported")
    return d


class Tensor:
    __slots__ = ("array", "requires_grad", "_vc", "_ctx", "__weakref__", "__dict__")
    # rarely-set fields default on the class: making a tensor writes only array, requires_grad, _vc, _ctx
    grad = None
    _hooks = None
    _post_hooks = None
    name = None
    _view = None
    __array_priority__ = 1000  # make `ndarray * Tensor` call Tensor.__rmul__

    def __init__(self, data, dtype=None, requires_grad=False, device=None):
        if isinstance(data, Tensor):
            data = data.array
        dt = as_dtype(dtype)
        if device is not None:
            xp = backend.xp_for_device(device)
            arr = backend.move_array(data if hasattr(data, "shape") else np.asarray(data), device)
        else:
            xp = backend.get_array_module(data)
            arr = data
        if not hasattr(arr, "dtype") or type(arr).__module__.split(".")[0] not in ("numpy", "cupy"):
            arr = _to_array(arr, dt)
        elif arr.dtype.kind not in "biufc":
            raise DTypeError(f"cannot build a tensor from data of dtype {arr.dtype} (strings, objects, dates)")
        elif dt is not None and arr.dtype != dt:
            arr = arr.astype(dt)
        if type(arr) is not np.ndarray and not isinstance(arr, np.ndarray) and xp is np:
            arr = np.asarray(arr)
        self.array = arr
        self.grad = None
        self._ctx = None
        self._vc = [0]
        self._hooks = None
        self.name = None
        self._view = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, requires_grad=False):
        """Fast internal constructor: ``data`` is already an array."""
        if type(data) is not np.ndarray and isinstance(data, np.generic):
            data = np.asarray(data)  # NumPy returns scalars, not 0-d arrays, from ops on 0-d arrays
        t = object.__new__(cls)
        t.array = data
        t.requires_grad = requires_grad
        t._vc = [0]
        t._ctx = None
        return t

    @property
    def data(self):
        """A Tensor sharing this tensor's array, detached, with its own version counter (PyTorch's ``.data``)."""
        return Tensor._make(self.array, False)

    @data.setter
    def data(self, value):
        arr = value.array if isinstance(value, Tensor) else value
        if not hasattr(arr, "shape") or type(arr).__module__.split(".")[0] not in ("numpy", "cupy"):
            arr = _to_array(arr, None)
        self.array = arr

    # ---------------------------------------------------------------- metadata
    @property
    def shape(self):
        return self.array.shape

    @property
    def ndim(self):
        return self.array.ndim

    def dim(self):
        return self.array.ndim

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def device(self):
        return backend.device_of_array(self.array)

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    @property
    def is_cpu(self):
        return self.device.type == "cpu"

    # devices minigen does not drive: always False (so device-probing PyTorch code runs unchanged)
    is_mps = is_xpu = is_meta = is_ipu = is_hpu = is_vulkan = is_mkldnn = is_quantized = is_sparse = property(
        lambda self: False)

    def is_complex(self):
        return self.dtype.kind == "c"

    @property
    def xp(self):
        return backend.get_array_module(self.array)

    def nelement(self):
        return _builtin_int(self.array.size)

    def ndimension(self):
        return self.ndim

    @property
    def itemsize(self):
        return _builtin_int(self.array.itemsize)

    @property
    def nbytes(self):
        return _builtin_int(self.array.nbytes)

    def is_signed(self):
        return self.dtype.kind in "fic"

    def is_same_size(self, other):
        if not isinstance(other, Tensor):
            raise DTypeError(f"is_same_size: other must be a Tensor, got {type(other).__name__}")
        return tuple(self.shape) == tuple(other.shape)

    def is_nonzero(self):
        if self.array.size != 1:
            raise InvalidArgumentError(f"is_nonzero needs a tensor with one element, got shape {tuple(self.shape)}")
        return _builtin_bool(self.item())

    def get_device(self):
        """-1 on the CPU (PyTorch's convention), the GPU index on a GPU."""
        d = self.device
        return -1 if d.type == "cpu" else d.index

    @property
    def retains_grad(self):
        return self._ctx is not None and self._ctx.retained is not None

    def stride(self, dim=None):
        """Strides in elements (PyTorch's convention; NumPy's are in bytes)."""
        st = tuple(_builtin_int(b) // self.array.itemsize for b in self.array.strides)
        return st if dim is None else st[norm_dim(dim, self.ndim)]

    def data_ptr(self):
        a = self.array
        return _builtin_int(a.ctypes.data) if isinstance(a, np.ndarray) else _builtin_int(a.data.ptr)

    def __format__(self, spec):
        if self.array.size == 1 and self.ndim == 0:
            try:
                return format(self.item(), spec)
            except ValueError as e:  # a spec the Python number does not take ('d' for a float)
                raise InvalidArgumentError(f"format spec {spec!r} for a 0-d tensor of dtype {self.dtype}: {e}") from None
        if spec:
            raise InvalidArgumentError(
                f"unsupported format string {spec!r} for a tensor of shape {tuple(self.shape)}; "
                "only 0-d tensors take a format spec (use t.item())")
        return repr(self)

    def size(self, dim=None):
        if dim is None:
            return tuple(self.array.shape)

        return self.array.shape[norm_dim(dim, self.ndim)]

    def numel(self):
        return _builtin_int(self.array.size)

    def element_size(self):
        return self.array.itemsize

    def __len__(self):
        if self.ndim == 0:  # a TypeError, as Python's len() contract and PyTorch
            raise DTypeError("len() of a 0-d tensor (it has no first dimension; use numel())")
        return self.array.shape[0]

    def __delitem__(self, index):
        raise DTypeError("Tensor does not support deleting items (a tensor's shape is fixed; index or mask "
                         "the elements to keep instead)")

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def is_floating_point(self):
        return self.dtype.kind == "f"

    def is_contiguous(self):
        return _builtin_bool(self.array.flags.c_contiguous)

    def _version(self):
        return self._vc[0]

    # ---------------------------------------------------------------- conversion
    def numpy(self):
        if self.requires_grad:
            raise AutogradError("can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()")
        return backend.to_numpy(self.array)

    def item(self):
        if self.array.size != 1:
            raise InvalidArgumentError(f"item() needs a tensor with one element, got shape {tuple(self.shape)}")
        return self.array.reshape(()).item() if hasattr(self.array, "item") else self.array

    def tolist(self):
        return backend.to_numpy(self.array).tolist()

    def __array__(self, dtype=None, copy=None):
        a = backend.to_numpy(self.array)
        return a.astype(dtype) if dtype is not None else a

    def __float__(self):
        return _builtin_float(self.item())

    def __int__(self):
        return _builtin_int(self.item())

    def __bool__(self):
        if self.array.size != 1:
            raise InvalidArgumentError(
                f"the truth value of a tensor with {self.array.size} elements is ambiguous (shape {tuple(self.shape)})"
            )
        return _builtin_bool(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu" or self.array.size != 1:
            raise DTypeError(f"only integer tensors of one element can be used as an index, got {self.dtype}")
        return _builtin_int(self.item())

    __hash__ = object.__hash__  # identity (C-level: tensors are dict keys in the engine's walk)

    # ---------------------------------------------------------------- autograd
    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.dtype.kind not in "fc":
            raise DTypeError(f"only floating point tensors can require gradients, got dtype {self.dtype}")
        if not requires_grad and self._ctx is not None:
            raise AutogradError("requires_grad can only be changed on leaf tensors; use detach()")
        self.requires_grad = _builtin_bool(requires_grad)
        return self

    def detach(self):
        """A tensor sharing this storage (and version counter), cut from the graph."""
        t = Tensor._make(self.array, False)
        t._vc = self._vc
        return t

    def detach_(self):
        self._ctx = None
        self.requires_grad = False
        return self

    def retain_grad(self):
        if self._ctx is None:
            return
        self._ctx.retained = weakref.ref(self)

    def register_hook(self, hook):
        """``hook(grad) -> Tensor or None`` runs when the gradient w.r.t. this tensor is computed."""
        if not self.requires_grad:
            raise AutogradError("cannot register a hook on a tensor that does not require grad")
        if self._ctx is None:
            self._hooks = (self._hooks or []) + [hook]
        else:
            self._ctx.hooks = (self._ctx.hooks or []) + [hook]
        return hook

    def register_post_accumulate_grad_hook(self, hook):
        """``hook(tensor)`` runs right after this leaf's ``.grad`` was accumulated during a backward.

        It fires as soon as the leaf's gradient is complete, while the rest of the backward may still
        be running (what data-parallel training uses to start its all-reduce early).
        """
        if self._ctx is not None:
            raise AutogradError("post-accumulate-grad hooks can only be registered on leaf tensors")
        if not self.requires_grad:
            raise AutogradError("cannot register a hook on a tensor that does not require grad")
        if not callable(hook):
            raise InvalidArgumentError(f"hook must be callable, got {type(hook).__name__}")
        self._post_hooks = (self._post_hooks or []) + [hook]
        return hook

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate the gradient of this tensor into the leaves' ``.grad``.

        A non-scalar tensor needs ``gradient`` (the vector of the vector-Jacobian
        product). ``create_graph=True`` records the backward itself, so the
        gradients can be differentiated again.
        """
        global _engine_backward
        if _engine_backward is None:
            from .autograd.engine import backward  # the engine sits beside Tensor in the same layer

            _engine_backward = backward
        _engine_backward(self, None if gradient is None else [gradient], retain_graph, create_graph, inputs)

    # ---------------------------------------------------------------- printing
    def __repr__(self):
        body = np.array2string(backend.to_numpy(self.array), separator=", ", precision=4, threshold=200,
                               prefix="tensor(")
        extra = []
        if self.dtype not in (float32, int64, bool_):
            extra.append(f"dtype={self.dtype}")
        if self.device.type != "cpu":
            extra.append(f"device='{self.device}'")
        if self._ctx is not None:
            extra.append(f"grad_fn=<{self._ctx.name}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    __str__ = __repr__


_engine_backward = None  # minigen.autograd.engine.backward, bound on first use (tensor.py imports no engine code)


def _to_array(data, dtype):
    """Python data (numbers, nested lists, tensors inside lists) to a NumPy array."""
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
        data = [backend.to_numpy(x.array) if isinstance(x, Tensor) else x for x in data]
    try:
        arr = np.asarray(data)
    except ValueError as e:
        raise InvalidArgumentError(f"cannot build a tensor from {type(data).__name__}: {e}") from None
    if arr.dtype == object:
        raise DTypeError(f"cannot build a tensor from ragged or non-numeric data of type {type(data).__name__}")
    if arr.dtype.kind in "USOMmV":
        raise DTypeError(f"cannot build a tensor from data of dtype {arr.dtype} (strings, objects, dates)")
    if dtype is not None:
        dtype = as_dtype(dtype)
        if dtype.kind in "iu" and arr.dtype.kind in "iuf" and arr.size:
            info = np.iinfo(dtype)
            lo, hi = arr.min(), arr.max()
            if not (info.min <= lo and hi <= info.max) or (arr.dtype.kind == "f" and not np.isfinite(arr).all()):
                raise DTypeError(f"value out of range for dtype {dtype} (data spans [{lo}, {hi}]; "
                                 f"{dtype} holds [{info.min}, {info.max}])")
        return arr.astype(dtype)
    if arr.dtype.kind == "f":
        return arr.astype(_default_dtype[0]) if not isinstance(data, np.ndarray) else arr
    if arr.dtype.kind in "iu" and not isinstance(data, np.ndarray):
        return arr.astype(int64)
    if arr.dtype.kind in "US":
        raise DTypeError(f"cannot build a tensor from strings ({arr.dtype})")
    return arr


# -------------------------------------------------------------------- creation
def tensor(data, dtype=None, requires_grad=False, device=None):
    """A new tensor (a copy of ``data``). Python floats become float32, ints int64."""
    if isinstance(data, Tensor):
        data = data.array
    if hasattr(data, "shape") and hasattr(data, "dtype"):
        xp = backend.get_array_module(data)
        as_dtype(data.dtype)  # refuses str/object/datetime arrays
        arr = xp.array(data, copy=True)
        if dtype is not None:
            arr = arr.astype(as_dtype(dtype)) if xp is not np else _to_array(arr, as_dtype(dtype))
    else:
        arr = _to_array(data, as_dtype(dtype))
    if device is not None:
        arr = backend.move_array(arr, device)
    t = Tensor._make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data, dtype=None, device=None):
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if isinstance(data, Tensor):
        return data.to(dtype=dtype, device=device)
    if isinstance(data, np.ndarray) and device is None:
        return Tensor._make(data if dtype is None else data.astype(as_dtype(dtype)))
    return tensor(data, dtype=dtype, device=device)


def from_numpy(arr):
    """A tensor sharing memory with a NumPy array (a subclass such as ``np.memmap`` is viewed as a plain array)."""
    if not isinstance(arr, np.ndarray):
        raise DTypeError(f"from_numpy expects a numpy.ndarray, got {type(arr).__name__}")
    if type(arr) is not np.ndarray:
        arr = arr.view(np.ndarray)
    as_dtype(arr.dtype)  # refuses str/object/datetime arrays
    return Tensor._make(arr)


def _dim_int(s, size):
    """One size entry as an int: Python/NumPy integers and 1-element integer tensors; nothing else."""
    if isinstance(s, Tensor) and s.array.size == 1 and s.dtype.kind in "iu":
        return _builtin_int(s.item())
    if isinstance(s, (_builtin_bool, np.bool_)) or not isinstance(s, (_builtin_int, np.integer)):
        raise InvalidArgumentError(f"size must be a sequence of ints, got {size!r} "
                                   f"(an element of type {type(s).__name__})")
    return _builtin_int(s)


_MAX_ELEMENTS = 2 ** 48


def _shape_arg(size):
    if not isinstance(size, (tuple, list)):
        raise InvalidArgumentError(f"size must be a sequence of ints, got {type(size).__name__}")
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(_dim_int(s, size) for s in size)
    if any(s < 0 for s in shape):
        raise ShapeError(f"negative dimension in size {shape}")
    n = 1
    for s in shape:
        n *= max(s, 1)  # NumPy refuses a shape whose non-zero sides overflow, even with a zero side
    if n > _MAX_ELEMENTS:
        raise ShapeError(f"size {shape} is too large to allocate (its non-zero sides multiply to {n})")
    return shape


def _size_or_int(size):
    return (size,) if isinstance(size, (_builtin_int, np.integer)) and not isinstance(size, _builtin_bool) else size


def _number(v, name, op):
    if isinstance(v, Tensor) and v.array.size == 1:
        v = v.item()
    if isinstance(v, (_builtin_bool, np.bool_)) or not isinstance(v, (_builtin_int, _builtin_float, np.integer,
                                                                       np.floating)):
        raise DTypeError(f"{op}: {name} must be a real number, got {type(v).__name__}")
    return v


def _sizes(size, kw, op):
    """``*size`` or PyTorch's ``size=`` keyword (not both); other unknown keywords are an error."""
    if kw:
        extra = set(kw) - {"size", "out", "layout", "pin_memory", "memory_format"}
        if extra:
            raise TypeError(f"{op}() got unexpected keyword argument(s) {sorted(extra)}")
        if kw.get("out") is not None:
            raise InvalidArgumentError(f"{op}: out= is not supported by minigen (assign the result instead)")
        if "size" in kw:
            if size:
                raise InvalidArgumentError(f"{op}: give the size positionally or as size=, not both")
            size = (kw["size"],)
    return size


def _fill(fn_name, size, dtype, device, requires_grad, *extra):
    xp = backend.xp_for_device(device) if device is not None else np
    dt = as_dtype(dtype) or _default_dtype[0]
    arr = getattr(xp, fn_name)(_shape_arg(size), *extra, dtype=dt)
    if device is not None and backend.as_device(device).type == "cuda":
        arr = backend.move_array(arr, device)
    t = Tensor._make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros(*size, dtype=None, device=None, requires_grad=False, **kw):
    return _fill("zeros", _sizes(size, kw, "zeros"), dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, **kw):
    return _fill("ones", _sizes(size, kw, "ones"), dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, **kw):
    return _fill("empty", _sizes(size, kw, "empty"), dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        dtype = bool_ if isinstance(fill_value, _builtin_bool) else (
            int64 if isinstance(fill_value, _builtin_int) else _default_dtype[0])
    if isinstance(fill_value, Tensor) and fill_value.array.size == 1:
        fill_value = fill_value.item()
    if not isinstance(fill_value, (_builtin_bool, _builtin_int, _builtin_float, complex, np.generic)):
        raise DTypeError(f"full: fill_value must be a number, got {type(fill_value).__name__}")
    xp = backend.xp_for_device(device) if device is not None else np
    with backend.device_scope(device):
        arr = xp.full(_shape_arg(_size_or_int(size)), fill_value,
                      dtype=as_dtype(dtype))
    t = Tensor._make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _like(t, dtype, device):
    if not isinstance(t, Tensor):
        raise DTypeError(f"*_like functions take a Tensor, got {type(t).__name__}")
    return (dtype if dtype is not None else t.dtype), (device if device is not None else t.device)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    d, dev = _like(t, dtype, device)
    return zeros(*t.shape, dtype=d, device=dev, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    d, dev = _like(t, dtype, device)
    return ones(*t.shape, dtype=d, device=dev, requires_grad=requires_grad)


def empty_like(t, dtype=None, device=None, requires_grad=False):
    d, dev = _like(t, dtype, device)
    return empty(*t.shape, dtype=d, device=dev, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    d, dev = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=d, device=dev, requires_grad=requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    n = _dim_int(n, (n,))
    m = n if m is None else _dim_int(m, (m,))
    if n < 0 or m < 0:
        raise ShapeError(f"eye: n and m must be non-negative, got n={n}, m={m}")
    xp = backend.xp_for_device(device) if device is not None else np
    with backend.device_scope(device):
        t = Tensor._make(xp.eye(n, m, dtype=as_dtype(dtype) or _default_dtype[0]))
    return t.requires_grad_(True) if requires_grad else t


def arange(start=None, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """[start, end) in steps: ``arange(end)``, ``arange(start, end[, step])`` or keywords (PyTorch's forms)."""
    if end is None:
        if start is None:
            raise InvalidArgumentError("arange: needs end (arange(end) or arange(start, end, step))")
        start, end = 0, start
    elif start is None:
        start = 0
    start, end, step = (_number(v, k, "arange") for v, k in ((start, "start"), (end, "end"), (step, "step")))
    if step == 0:
        raise InvalidArgumentError("arange: step must be nonzero")
    if not all(np.isfinite(_builtin_float(v)) for v in (start, end, step)):
        raise InvalidArgumentError(f"arange: start, end and step must be finite, got {start}, {end}, {step}")
    if (end - start) * step < 0:
        raise InvalidArgumentError(f"arange: upper bound and step sign are inconsistent "
                                   f"(start={start}, end={end}, step={step})")
    if abs((end - start) / step) > _MAX_ELEMENTS:
        raise ShapeError(f"arange: {abs((end - start) / step):.3g} elements is too many to allocate")
    if dtype is None:
        dtype = int64 if all(isinstance(v, _builtin_int) for v in (start, end, step)) else _default_dtype[0]
    xp = backend.xp_for_device(device) if device is not None else np
    with backend.device_scope(device):
        t = Tensor._make(xp.arange(start, end, step, dtype=as_dtype(dtype)))
    return t.requires_grad_(True) if requires_grad else t


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    start, end = _number(start, "start", "linspace"), _number(end, "end", "linspace")
    steps = _dim_int(steps, (steps,))
    if steps < 0:
        raise InvalidArgumentError(f"linspace: number of steps must be non-negative, got {steps}")
    xp = backend.xp_for_device(device) if device is not None else np
    with backend.device_scope(device):
        t = Tensor._make(xp.linspace(start, end, _builtin_int(steps), dtype=as_dtype(dtype) or _default_dtype[0]))
    return t.requires_grad_(True) if requires_grad else t


# -------------------------------------------------------------------- random
def _rng(generator, device):
    from .argcheck import check_generator

    g = _gen(check_generator(generator, "random"))
    xp = backend.xp_for_device(device) if device is not None else np
    return g.xp_generator(xp), xp


def _random_tensor(arr, dtype, requires_grad, device=None):
    dt = as_dtype(dtype) or _default_dtype[0]
    if dt.kind != "f":
        raise DTypeError(f"this random function draws floating point values; dtype {dt} is not one")
    arr = arr.astype(dt, copy=False)
    if device is not None and backend.as_device(device).type == "cuda":
        arr = backend.move_array(arr, device)  # the GPU stream draws on the current device; cuda:N may differ
    t = Tensor._make(arr)
    return t.requires_grad_(True) if requires_grad else t


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False, **kw):
    """Uniform samples on [0, 1)."""
    r, _ = _rng(generator, device)
    return _random_tensor(r.random(_shape_arg(_sizes(size, kw, "rand"))), dtype, requires_grad, device)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False, **kw):
    """Standard normal samples."""
    r, _ = _rng(generator, device)
    return _random_tensor(r.standard_normal(_shape_arg(_sizes(size, kw, "randn"))), dtype, requires_grad, device)


def normal(mean=0.0, std=1.0, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Normal samples N(mean, std^2); ``mean``/``std`` may be tensors (broadcast)."""
    if device is None:
        device = next((a.device for a in (mean, std) if isinstance(a, Tensor)), None)
    r, xp = _rng(generator, device)
    m = mean.array if isinstance(mean, Tensor) else _number(mean, "mean", "normal")
    s = std.array if isinstance(std, Tensor) else _number(std, "std", "normal")
    if bool((backend.get_array_module(s).asarray(s) < 0).any()):
        raise InvalidArgumentError(f"normal: expects std >= 0, got std={std}")
    if size is None:
        size = np.broadcast_shapes(np.shape(m), np.shape(s))
    return _random_tensor(m + s * r.standard_normal(_shape_arg((size,) if isinstance(size, _builtin_int) else size)),
                          dtype, requires_grad, device)


def randint(low=None, high=None, size=(), generator=None, dtype=None, device=None, requires_grad=False):
    """Integers uniform on [low, high): ``randint(high, size)``, ``randint(low, high, size)`` or keywords."""
    if isinstance(high, (tuple, list)) and size == ():
        low, high, size = 0, low, high  # randint(high, size)
    if high is None:
        if low is None:
            raise InvalidArgumentError("randint: needs high (randint(high, size) or randint(low, high, size))")
        low, high = 0, low
    elif low is None:
        low = 0
    low, high = _dim_int(low, (low,)) if not isinstance(low, Tensor) else low.item(), _dim_int(high, (high,))
    if high <= low:
        raise InvalidArgumentError(f"randint: need low < high, got low={low}, high={high}")
    d = as_dtype(dtype) or int64
    if d.kind == "f" or d.kind == "c":
        pass
    elif d.kind in "iu" and not (np.iinfo(d).min <= low and high - 1 <= np.iinfo(d).max):
        raise DTypeError(f"randint: [{low}, {high}) does not fit dtype {d}")
    r, xp = _rng(generator, device)
    arr = r.integers(low, high, size=_shape_arg(_size_or_int(size)))
    arr = (np.asarray(arr) if xp is np else arr).astype(as_dtype(dtype) or int64)
    t = Tensor._make(backend.move_array(arr, device) if device is not None else arr)
    return t.requires_grad_(True) if requires_grad else t


def randperm(n, generator=None, dtype=None, device=None):
    from .argcheck import check_size

    n = check_size(n, "randperm", "n")
    r, xp = _rng(generator, device)
    if xp is np:
        perm = r.permutation(_builtin_int(n))
    else:  # CuPy's Generator has no permutation: the order of n uniform draws is a uniform permutation
        perm = backend.move_array(xp.argsort(r.random(_builtin_int(n))), device)
    return Tensor._make(perm.astype(as_dtype(dtype) or int64))


def _check_like(t, op):
    from .argcheck import check_tensor

    return check_tensor(t, op)


def rand_like(t, generator=None, dtype=None, device=None, requires_grad=False):
    _check_like(t, "rand_like")
    return rand(*t.shape, generator=generator, dtype=t.dtype if dtype is None else dtype,
                device=t.device if device is None else device, requires_grad=requires_grad)


def randn_like(t, generator=None, dtype=None, device=None, requires_grad=False):
    _check_like(t, "randn_like")
    return randn(*t.shape, generator=generator, dtype=t.dtype if dtype is None else dtype,
                 device=t.device if device is None else device, requires_grad=requires_grad)


def randint_like(t, low, high=None, generator=None, dtype=None, device=None, requires_grad=False):
    _check_like(t, "randint_like")
    return randint(low, high, t.shape, generator=generator, dtype=t.dtype if dtype is None else dtype,
                   device=t.device if device is None else device, requires_grad=requires_grad)


def bernoulli(p, generator=None):
    """Samples in {0, 1} with probability ``p`` (a tensor)."""
    if not isinstance(p, Tensor):
        raise DTypeError(f"bernoulli: p must be a Tensor of probabilities, got {type(p).__name__}")
    if p.dtype.kind != "f":
        raise DTypeError(f"bernoulli: p must be a floating point tensor, got dtype {p.dtype}")
    pa = p.array
    if bool(((pa < 0) | (pa > 1) | (pa != pa)).any()):
        raise InvalidArgumentError("bernoulli: every probability must be in [0, 1]")
    r, _ = _rng(generator, p.device)
    return Tensor._make((r.random(p.shape) < p.array).astype(p.dtype))


def multinomial(probs, num_samples, replacement=False, generator=None):
    """Draw category indices from rows of (unnormalised) ``probs`` (1-d or 2-d)."""
    from .argcheck import check_flag, check_size, check_tensor

    check_float(check_tensor(probs, "multinomial", "probs"), "multinomial")
    if probs.ndim not in (1, 2):
        raise ShapeError(f"multinomial: probs must be 1-d or 2-d, got shape {tuple(probs.shape)}")
    num_samples = check_size(num_samples, "multinomial", "num_samples", minimum=1)
    replacement = check_flag(replacement, "multinomial", "replacement")
    p = backend.to_numpy(probs.array).astype(np.float64)
    squeeze = p.ndim == 1
    p = np.atleast_2d(p)
    if (p < 0).any() or not np.isfinite(p).all():
        raise InvalidArgumentError("multinomial: probabilities must be finite and non-negative")
    sums = p.sum(-1, keepdims=True)
    if (sums <= 0).any():
        raise InvalidArgumentError("multinomial: each row of probabilities must have a positive sum")
    p = p / sums
    if not replacement and num_samples > p.shape[-1]:
        raise InvalidArgumentError(
            f"multinomial: cannot draw {num_samples} samples without replacement from {p.shape[-1]} categories")
    r = _gen(generator).numpy
    out = np.stack([r.choice(p.shape[-1], size=num_samples, replace=replacement, p=row) for row in p])
    if squeeze:
        out = out[0]
    return Tensor._make(backend.move_array(out.astype(np.int64), probs.device))


# -------------------------------------------------------------------- legacy typed constructors
class _TypedTensor:
    """PyTorch's legacy constructors (``torch.FloatTensor(data)``, ``torch.LongTensor(2, 3)``): data -> a tensor of
    that dtype; sizes -> an uninitialised tensor of that shape; ``isinstance(t, mg.FloatTensor)`` checks the dtype."""

    def __init__(self, name, dtype):
        self.__name__ = self.__qualname__ = name
        self.dtype = dtype

    def __call__(self, *args, device=None):
        if len(args) == 1 and not isinstance(args[0], (_builtin_int, np.integer)):
            return tensor(args[0], dtype=self.dtype, device=device)
        return empty(*args, dtype=self.dtype, device=device)

    def __instancecheck__(self, obj):
        return isinstance(obj, Tensor) and obj.dtype == self.dtype

    def __repr__(self):
        return f"<class 'minigen.{self.__name__}'>"


FloatTensor = _TypedTensor("FloatTensor", float32)
DoubleTensor = _TypedTensor("DoubleTensor", float64)
HalfTensor = _TypedTensor("HalfTensor", float16)
LongTensor = _TypedTensor("LongTensor", int64)
IntTensor = _TypedTensor("IntTensor", int32)
ShortTensor = _TypedTensor("ShortTensor", int16)
CharTensor = _TypedTensor("CharTensor", int8)
ByteTensor = _TypedTensor("ByteTensor", uint8)
BoolTensor = _TypedTensor("BoolTensor", bool_)
