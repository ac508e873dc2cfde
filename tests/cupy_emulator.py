"""An emulated CuPy, so the GPU code paths can be tested on a machine without a GPU.

Nothing here is used when a real GPU is present; it exists for the tests (``tests/test_gpu_*.py``) and
for anyone who wants to step through the GPU code on a laptop. Two parts:

1. :class:`FakeCupy` — an array module that behaves like CuPy *where minigen could get it wrong*:

   - its arrays (:class:`ndarray`) are NOT ``numpy.ndarray`` instances, so code that tests
     ``isinstance(a, np.ndarray)``, hands them to Numba, or mixes them with NumPy arrays is caught;
   - ``np.asarray(device_array)`` raises ``TypeError`` (CuPy forbids the implicit device-to-host copy);
   - NumPy arrays passed to device functions / operators raise ``TypeError`` (``Unsupported type``);
   - reductions return 0-d device arrays, not Python/NumPy scalars;
   - NumPy functions CuPy lacks (``frompyfunc``, ``put_along_axis``, ufunc ``reduceat``...) raise,
     and ``cupy.random.Generator`` has only CuPy's methods (no ``permutation``/``choice``/``normal``);
   - every array lives on a device (``a.device.id``); ``cupy.cuda.Device(i)`` selects the current one,
     ``copy()`` copies to the current device, and mixing devices in one call raises ``ValueError``;
   - ``RawModule`` / ``RawKernel`` run the CUDA C source of the ``gpu_*`` kernels on the CPU (part 2).

   Underneath, every array is a NumPy array (``a._a``), so results are exact NumPy results.

2. :class:`EmuRawModule` — compiles a CUDA C source with the host C++ compiler and OpenMP: a block
   runs as an OpenMP team with one OpenMP thread per CUDA thread, ``__syncthreads()`` is an OpenMP
   barrier, ``__shared__`` variables are shared by the team, warp shuffles go through a shared buffer
   between two barriers (so they must be called by the whole block together, which the gpu_* kernels
   guarantee), ``atomicAdd`` is an OpenMP atomic. Blocks run one after another. Launch arguments are
   checked against the kernel's C signature (``int`` needs ``numpy.int32``, ``float`` needs
   ``numpy.float32``, pointers need C-contiguous device arrays of the pointee type), which catches the
   classic silent bug of passing a Python int where the kernel expects a 32-bit int.

What the emulation cannot tell: real-GPU races beyond what 2 CPU threads expose, NVRTC-specific
compile errors (``tests/test_gpu_kernels.py`` also compiles every source with ``nvcc`` when present),
CuPy API differences not modelled here, and speed. See docs/GPU.md.

Use::

    from cupy_emulator import emulated_cupy
    with emulated_cupy():            # installs the fake as `cupy` and as minigen's GPU backend
        x = mg.randn(4, 4, device="cuda")
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import types

import numpy as np

__all__ = ["FakeCupy", "ndarray", "EmuRawModule", "emulated_cupy", "compiler_available", "N_DEVICES",
           "on_backend", "real_gpu_available"]

N_DEVICES = 2  # the emulated machine has two GPUs, so cross-device rules can be tested


# ====================================================================================== the fake array
class _Device:
    __slots__ = ("id",)

    def __init__(self, i=None):
        self.id = _STATE.current if i is None else int(i)

    def __enter__(self):
        _STATE.stack.append(_STATE.current)
        _STATE.current = self.id
        return self

    def __exit__(self, *exc):
        _STATE.current = _STATE.stack.pop()
        return False

    def use(self):
        _STATE.current = self.id

    def synchronize(self):
        pass

    @property
    def compute_capability(self):
        return "90"

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class _State(threading.local):
    def __init__(self):
        self.current = 0
        self.stack = []


_STATE = _State()


class _Pointer:
    """Stands in for ``cupy.cuda.MemoryPointer``: ``.ptr`` is the address of the first element."""

    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr


def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


def _unwrap(x, strict, devs):
    """Replace fake arrays by their NumPy arrays (recording their devices); NumPy arrays raise if strict."""
    if isinstance(x, ndarray):
        devs.add(x._dev)
        return x._a
    if isinstance(x, np.ndarray):
        if strict:
            raise _unsupported(x)
        return x
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, strict, devs) for v in x)
    return x


def _device_of(devs):
    if len(devs) > 1:
        raise ValueError(f"arrays on different devices {sorted(devs)} in one operation "
                         "(CuPy: the array device must be the current device)")
    return next(iter(devs)) if devs else _STATE.current


def _wrap(r, dev):
    if isinstance(r, np.ndarray):
        return ndarray._new(r, dev)
    if isinstance(r, np.generic):
        return ndarray._new(np.asarray(r), dev)  # CuPy returns 0-d arrays, never scalars
    if isinstance(r, tuple):
        return tuple(_wrap(v, dev) for v in r)
    if isinstance(r, list):
        return [_wrap(v, dev) for v in r]
    return r


def _call(fn, args, kwargs, strict=True):
    devs = set()
    a = _unwrap(args, strict, devs)
    kw = {k: _unwrap(v, strict, devs) for k, v in kwargs.items()}
    dev = _device_of(devs)
    out = kwargs.get("out")
    r = fn(*a, **kw)
    if isinstance(out, ndarray):
        return out
    return _wrap(r, dev)


def _binary(name):
    np_name = name

    def op(self, other):
        if getattr(other, "__array_priority__", 0) > ndarray.__array_priority__ and not isinstance(other, ndarray):
            return NotImplemented  # e.g. a minigen Tensor: let its reflected operator run
        if isinstance(other, np.ndarray):
            raise _unsupported(other)
        devs = {self._dev}
        o = _unwrap(other, True, devs)
        dev = _device_of(devs)
        return _wrap(getattr(self._a, np_name)(o), dev)

    op.__name__ = name
    return op


def _inplace(name):
    def op(self, other):
        if isinstance(other, np.ndarray):
            raise _unsupported(other)
        devs = {self._dev}
        o = _unwrap(other, True, devs)
        _device_of(devs)
        getattr(self._a, name)(o)
        return self

    op.__name__ = name
    return op


def _unary(name):
    def op(self):
        return _wrap(getattr(self._a, name)(), self._dev)

    op.__name__ = name
    return op


class ndarray:
    """A device array of the emulated CuPy: a NumPy array (``_a``) plus the id of its device (``_dev``)."""

    __slots__ = ("_a", "_dev", "__weakref__")
    __array_priority__ = 100  # CuPy's: below minigen's Tensor (1000), so Tensor's reflected ops win
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = np.empty(shape, dtype=dtype, order=order)
        self._dev = _STATE.current

    @classmethod
    def _new(cls, a, dev):
        t = object.__new__(cls)
        t._a = a
        t._dev = dev
        return t

    # ---------------------------------------------------------------- metadata
    shape = property(lambda s: s._a.shape)
    dtype = property(lambda s: s._a.dtype)
    ndim = property(lambda s: s._a.ndim)
    size = property(lambda s: s._a.size)
    itemsize = property(lambda s: s._a.itemsize)
    nbytes = property(lambda s: s._a.nbytes)
    strides = property(lambda s: s._a.strides)
    flags = property(lambda s: s._a.flags)
    device = property(lambda s: _Device(s._dev))
    data = property(lambda s: _Pointer(s._a.ctypes.data))
    T = property(lambda s: _wrap(s._a.T, s._dev))
    mT = property(lambda s: _wrap(np.swapaxes(s._a, -1, -2), s._dev))
    real = property(lambda s: _wrap(s._a.real, s._dev))
    imag = property(lambda s: _wrap(s._a.imag, s._dev))

    @property
    def base(self):
        b = self._a.base
        return None if b is None else (_wrap(b, self._dev) if isinstance(b, np.ndarray) else b)

    # ---------------------------------------------------------------- host transfers
    def get(self, stream=None, order="C", out=None):
        """Copy to the host (a NumPy array)."""
        return np.array(self._a, copy=True)

    def set(self, arr, stream=None):
        self._a[...] = arr

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def __array__(self, *a, **k):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "reduceat":
            return NotImplemented
        return _call(getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        if func.__name__ in _MISSING:
            return NotImplemented
        return _call(func, args, kwargs)

    # ---------------------------------------------------------------- methods
    def copy(self, order="C"):
        """A copy on the CURRENT device (as CuPy's ``ndarray.copy``)."""
        return ndarray._new(self._a.copy(order=order), _STATE.current)

    def __copy__(self):
        return ndarray._new(self._a.copy(), self._dev)

    def __deepcopy__(self, memo):
        return ndarray._new(self._a.copy(), self._dev)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return ndarray._new(self._a.astype(dtype, order=order, copy=copy), self._dev)

    def fill(self, value):
        if isinstance(value, (np.ndarray, ndarray)) and np.ndim(getattr(value, "_a", value)) != 0:
            raise TypeError("fill value must be a scalar")
        self._a.fill(value._a if isinstance(value, ndarray) else value)

    def __getattr__(self, name):
        if name.startswith("__") or name == "ctypes":
            # no __array_interface__ / __array_struct__ / buffer: the host cannot read device memory
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        attr = getattr(self._a, name)  # AttributeError for unknown names
        if not callable(attr):
            return _wrap(attr, self._dev)

        def method(*args, **kwargs):
            devs = {self._dev}
            a = _unwrap(args, True, devs)
            kw = {k: _unwrap(v, True, devs) for k, v in kwargs.items()}
            dev = _device_of(devs)
            r = attr(*a, **kw)
            if isinstance(kwargs.get("out"), ndarray):
                return kwargs["out"]
            return _wrap(r, dev)

        method.__name__ = name
        return method

    # ---------------------------------------------------------------- indexing
    def __getitem__(self, index):
        devs = {self._dev}
        idx = _unwrap(index, False, devs)  # NumPy arrays and lists are fine as indices (CuPy converts them)
        _device_of(devs)
        return _wrap(self._a[idx], self._dev)

    def __setitem__(self, index, value):
        devs = {self._dev}
        idx = _unwrap(index, False, devs)
        basic = all(isinstance(i, (int, slice, type(None), type(Ellipsis))) and not isinstance(i, bool)
                    for i in (idx if isinstance(idx, tuple) else (idx,)))
        if isinstance(value, np.ndarray) and basic and value.ndim:
            # CuPy fills basic selections with a *scalar* host value only; arrays must be device arrays
            raise TypeError(f"Unsupported type {type(value)} for assignment into a device array")
        v = _unwrap(value, False, devs)
        _device_of(devs)
        self._a[idx] = v

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for row in self._a:
            yield _wrap(row, self._dev)

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def __repr__(self):
        return repr(self._a).replace("array(", "array(", 1)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __reduce__(self):
        raise TypeError("emulated device arrays cannot be pickled (use .get())")


for _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift",
           "rshift", "divmod"):
    setattr(ndarray, f"__{_n}__", _binary(f"__{_n}__"))
    setattr(ndarray, f"__r{_n}__", _binary(f"__r{_n}__"))
for _n in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(ndarray, f"__{_n}__", _binary(f"__{_n}__"))
for _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    setattr(ndarray, f"__i{_n}__", _inplace(f"__i{_n}__"))
for _n in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_n}__", _unary(f"__{_n}__"))
ndarray.__module__ = "cupy"  # minigen recognises array types by their top-level module name
ndarray.__qualname__ = "ndarray"


# ====================================================================================== the fake module
# NumPy names CuPy does not provide (as of CuPy 13/14), so code using them through `xp` is caught here.
_MISSING = {"frompyfunc", "vectorize", "put_along_axis", "errstate", "seterr", "geterr", "nditer", "ndenumerate",
            "fromfunction", "piecewise", "apply_over_axes", "fromiter", "genfromtxt", "loadtxt", "savetxt",
            "array2string", "array_repr", "array_str", "set_printoptions", "get_printoptions", "printoptions",
            "object_", "str_", "bytes_", "nanquantile", "nanpercentile"}
# names passed through unchanged: dtypes, type classes, constants, dtype utilities (CuPy re-exports NumPy's)
_PASSTHROUGH = {"dtype", "finfo", "iinfo", "result_type", "promote_types", "can_cast", "issubdtype", "newaxis",
                "pi", "e", "inf", "nan", "euler_gamma", "integer", "floating", "number", "generic", "bool_",
                "signedinteger", "unsignedinteger", "complexfloating", "inexact", "ndim", "shape", "isscalar",
                "broadcast_shapes", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                "uint16", "uint32", "uint64", "complex64", "complex128", "intp", "uintp", "longlong", "ulonglong",
                "single", "double", "half", "byte", "ubyte", "short", "ushort", "intc", "uintc", "int_", "uint",
                "float_", "complex_", "bool", "min_scalar_type", "obj2sctype", "format_float_positional",
                "index_exp", "s_", "ufunc"}
_CONVERT = {"asarray", "array", "asanyarray", "ascontiguousarray", "asfortranarray"}
_CREATE = {"zeros", "ones", "empty", "full", "arange", "linspace", "logspace", "eye", "identity", "tri",
           "indices", "fromfunction"}


class _UFunc:
    """A NumPy ufunc seen through the fake module: ``__call__``, ``reduce``, ``accumulate``, ``outer``, ``at``."""

    def __init__(self, uf):
        self._uf = uf
        self.__name__ = uf.__name__
        self.nin, self.nout = uf.nin, uf.nout

    def __call__(self, *args, **kwargs):
        return _call(self._uf, args, kwargs)

    def reduce(self, *args, **kwargs):
        return _call(self._uf.reduce, args, kwargs)

    def accumulate(self, *args, **kwargs):
        return _call(self._uf.accumulate, args, kwargs)

    def outer(self, *args, **kwargs):
        return _call(self._uf.outer, args, kwargs)

    def at(self, a, indices, b=None):
        if not isinstance(a, ndarray):
            raise _unsupported(a)
        devs = {a._dev}
        idx = _unwrap(indices, False, devs)
        bv = _unwrap(b, True, devs)
        _device_of(devs)
        if bv is None:
            self._uf.at(a._a, idx)
        else:
            self._uf.at(a._a, idx, bv)

    def __repr__(self):
        return f"<emulated cupy ufunc {self.__name__}>"


def _converter(fn):
    """asarray / array / ascontiguousarray...: host data goes to the current device; a device array stays
    where it is (asarray, ascontiguousarray) unless ``array`` copies it, which copies to the CURRENT device."""

    def convert(obj, dtype=None, *args, **kwargs):
        copy = kwargs.pop("copy", True if fn is np.array else None)
        if isinstance(obj, ndarray):
            same_dtype = dtype is None or obj.dtype == np.dtype(dtype)
            contiguous_ok = fn is not np.ascontiguousarray or obj._a.flags.c_contiguous
            if not copy and same_dtype and contiguous_ok:
                return obj
            arr = np.array(obj._a, dtype=dtype, copy=True, order="C" if fn is np.ascontiguousarray else "K")
            return ndarray._new(arr, _STATE.current if fn is np.array else obj._dev)
        devs = set()
        inner = _unwrap(obj, False, devs)  # lists of device arrays / host arrays / numbers
        arr = np.array(inner, dtype=dtype, copy=True)
        return ndarray._new(arr, _device_of(devs) if devs else _STATE.current)

    return convert


def _creator(fn):
    def create(*args, **kwargs):
        devs = set()  # a 0-d device array is a valid fill value (cupy.full fills from it on the device)
        a = _unwrap(args, False, devs)
        kw = {k: _unwrap(v, False, devs) for k, v in kwargs.items()}
        return _wrap(fn(*a, **kw), _STATE.current)

    return create


def _like_creator(fn):
    def create(a, *args, **kwargs):
        if isinstance(a, np.ndarray):
            raise _unsupported(a)
        dev = a._dev if isinstance(a, ndarray) else _STATE.current
        devs = set()
        rest = _unwrap(args, False, devs)
        kw = {k: _unwrap(v, False, devs) for k, v in kwargs.items()}
        return _wrap(fn(a._a if isinstance(a, ndarray) else a, *rest, **kw), dev)

    return create


def _function(fn):
    def call(*args, **kwargs):
        return _call(fn, args, kwargs)

    call.__name__ = getattr(fn, "__name__", "function")
    return call


class _SubModule(types.ModuleType):
    """A NumPy submodule (linalg, fft, lib.stride_tricks...) seen through the fake module."""

    def __init__(self, name, np_mod):
        super().__init__(name)
        self._np = np_mod

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._np, name)
        if isinstance(attr, types.ModuleType):
            return _SubModule(f"{self.__name__}.{name}", attr)
        if callable(attr) and not isinstance(attr, type):
            return _function(attr)
        return attr


# ------------------------------------------------------------------ random
class Generator:
    """``cupy.random.Generator``: CuPy's methods only (no permutation / choice / normal / shuffle)."""

    def __init__(self, seed):
        self._g = np.random.Generator(np.random.PCG64(None if seed is None else int(seed)))

    def _out(self, a):
        return _wrap(np.asarray(a), _STATE.current)

    def random(self, size=None, dtype=np.float64, out=None):
        return self._out(self._g.random(size, dtype=np.float64).astype(dtype))

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return self._out(self._g.standard_normal(size).astype(dtype))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        lo = low._a if isinstance(low, ndarray) else low
        hi = high._a if isinstance(high, ndarray) else high
        return self._out(self._g.uniform(lo, hi, size).astype(dtype))

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return self._out(np.asarray(self._g.integers(low, high, size, endpoint=endpoint)).astype(dtype))

    def standard_exponential(self, size=None, dtype=np.float64, method=None, out=None):
        return self._out(self._g.standard_exponential(size).astype(dtype))

    def exponential(self, scale=1.0, size=None):
        return self._out(self._g.exponential(scale, size))

    def poisson(self, lam=1.0, size=None):
        return self._out(self._g.poisson(lam, size))

    def binomial(self, n, p, size=None):
        return self._out(self._g.binomial(n, p, size))


def _random_module():
    m = types.ModuleType("cupy.random")
    m.Generator = Generator
    m.default_rng = lambda seed=None: Generator(seed)
    return m


# ------------------------------------------------------------------ cuda
class _Stream:
    def __init__(self, *a, **k):
        pass

    def synchronize(self):
        pass

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    ptr = 0


class _Event:
    """Timing events on the host clock (the emulation has no device clock)."""

    def __init__(self, *a, **k):
        self.t = None

    def record(self, stream=None):
        import time

        self.t = time.perf_counter()

    def synchronize(self):
        pass


class _MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


def _cuda_module():
    m = types.ModuleType("cupy.cuda")
    m.Device = _Device
    m.Stream = _Stream
    m.Stream.null = _Stream()
    m.Event = _Event
    m.get_elapsed_time = lambda a, b: (b.t - a.t) * 1e3
    m.get_current_stream = lambda: m.Stream.null
    _pool = _MemoryPool()
    m.get_default_memory_pool = lambda: _pool
    m.get_default_pinned_memory_pool = lambda: _pool
    m.MemoryPointer = _Pointer
    rt = types.ModuleType("cupy.cuda.runtime")
    rt.getDeviceCount = lambda: N_DEVICES
    rt.getDevice = lambda: _STATE.current

    def set_device(i):
        _STATE.current = int(i)

    rt.setDevice = set_device
    rt.getDeviceProperties = lambda i: {"name": f"Emulated GPU {i} (NumPy + OpenMP on the CPU)".encode(),
                                        "totalGlobalMem": 0, "multiProcessorCount": 1, "major": 9, "minor": 0}
    rt.deviceSynchronize = lambda: None
    rt.runtimeGetVersion = lambda: 13000
    rt.driverGetVersion = lambda: 13000
    rt.is_hip = False
    m.runtime = rt
    m.is_available = lambda: True
    return m


class FakeCupy(types.ModuleType):
    """The emulated ``cupy`` module (see the module docstring)."""

    ndarray = ndarray
    emulated = True
    __version__ = "13.0.0+emulated"

    def __init__(self):
        super().__init__("cupy")
        self.random = _random_module()
        self.cuda = _cuda_module()
        self.linalg = _SubModule("cupy.linalg", np.linalg)
        self.fft = _SubModule("cupy.fft", np.fft)
        self.lib = _SubModule("cupy.lib", np.lib)
        self.RawModule = EmuRawModule
        self.RawKernel = EmuRawKernel
        self._ufuncs = {}

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name in _MISSING:
            raise AttributeError(f"module 'cupy' has no attribute {name!r} (emulation: CuPy lacks it)")
        if name in _PASSTHROUGH:
            return getattr(np, name)
        attr = getattr(np, name)  # AttributeError for unknown names
        if isinstance(attr, np.ufunc):
            uf = self._ufuncs.get(name)
            if uf is None:
                uf = self._ufuncs[name] = _UFunc(attr)
            return uf
        if isinstance(attr, type):
            return attr
        if name in _CONVERT:
            return _converter(attr)
        if name in _CREATE:
            return _creator(attr)
        if name.endswith("_like"):
            return _like_creator(attr)
        if callable(attr):
            return _function(attr)
        return attr

    # CuPy-only functions
    @staticmethod
    def asnumpy(a, stream=None, order="C", out=None):
        if isinstance(a, ndarray):
            return np.array(a._a, copy=True)
        return np.asarray(a)

    @staticmethod
    def get_array_module(*args):
        for a in args:
            if isinstance(a, ndarray):
                return sys.modules.get("cupy", FAKE)
        return np

    @staticmethod
    def is_available():
        return True

    @staticmethod
    def fuse(*a, **k):
        raise AttributeError("cupy.fuse is not emulated")


def _cupyx_module(fake):
    x = types.ModuleType("cupyx")

    def scatter_add(a, slices, value):
        fake.add.at(a, slices, value)

    x.scatter_add = scatter_add
    scipy = types.ModuleType("cupyx.scipy")
    special = types.ModuleType("cupyx.scipy.special")
    _erf = np.vectorize(math.erf, otypes=[np.float64])
    _erfc = np.vectorize(math.erfc, otypes=[np.float64])

    def erf(a):
        return _wrap(_erf(a._a).astype(a.dtype if a.dtype.kind == "f" else np.float64), a._dev)

    def erfc(a):
        return _wrap(_erfc(a._a).astype(a.dtype if a.dtype.kind == "f" else np.float64), a._dev)

    special.erf, special.erfc = erf, erfc
    special.erfinv = lambda a: (_ for _ in ()).throw(AttributeError("erfinv is not emulated"))
    scipy.special = special
    x.scipy = scipy
    return x, scipy, special



@contextlib.contextmanager
def emulated_cupy():
    """Install the emulation as ``cupy``/``cupyx`` and as minigen's GPU backend for the ``with`` block.

    minigen then sees a machine with :data:`N_DEVICES` GPUs; tensors on ``"cuda"`` hold emulated arrays.
    Everything is restored afterwards (a real CuPy, if installed, comes back)."""
    from minigen import backend

    names = ("cupy", "cupyx", "cupyx.scipy", "cupyx.scipy.special")
    saved_mods = {n: sys.modules.get(n) for n in names}
    saved_backend = (backend._cupy, backend._cupy_checked)
    cx, sc, sp = _cupyx_module(FAKE)
    sys.modules.update({"cupy": FAKE, "cupyx": cx, "cupyx.scipy": sc, "cupyx.scipy.special": sp})
    backend._cupy, backend._cupy_checked = FAKE, True
    rng_saved = _reset_rng_streams()
    _STATE.current = 0
    try:
        import minigen.cuda  # noqa: F401  (registers the GPU glue, as backend.cupy_module() does with a GPU)

        yield FAKE
    finally:
        backend._cupy, backend._cupy_checked = saved_backend
        for n, m in saved_mods.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
        _reset_rng_streams(rng_saved)
        _STATE.current = 0


def _reset_rng_streams(saved=None):
    """Drop GPU generator streams created under the emulation (they hold fake generators)."""
    from minigen import random as mg_random

    g = mg_random.default_generator
    prev = getattr(g, "_cupy", None)
    if hasattr(g, "_cupy"):
        g._cupy = saved if saved is not None else None
    return prev


# ====================================================================================== the kernel emulator
_PRELUDE = r"""
#include <math.h>
#include <string.h>
#include <stdint.h>
#include <omp.h>
struct dim3 { unsigned int x, y, z; };
static dim3 gridDim, blockIdx, blockDim;
static thread_local dim3 threadIdx;
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __ldg(p) (*(p))
static inline void __syncthreads() { _Pragma("omp barrier") }
static inline void __syncwarp(unsigned int mask = 0xffffffffu) { _Pragma("omp barrier") }
static inline int _mg_tid() { return (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)); }
static double _mg_shfl_buf[1024];
template <typename T> static inline T _mg_shfl(T v, int src_of_me_lane, int width) {
    int t = _mg_tid();
    _mg_shfl_buf[t] = (double)v;
    _Pragma("omp barrier")
    int base = t & ~(width - 1);
    T r = (T)_mg_shfl_buf[base + (src_of_me_lane & (width - 1))];
    _Pragma("omp barrier")
    return r;
}
template <typename T> static inline T __shfl_xor_sync(unsigned m, T v, int lm, int w = 32) {
    return _mg_shfl(v, (_mg_tid() & (w - 1)) ^ lm, w); }
template <typename T> static inline T __shfl_sync(unsigned m, T v, int src, int w = 32) { return _mg_shfl(v, src, w); }
template <typename T> static inline T __shfl_down_sync(unsigned m, T v, unsigned d, int w = 32) {
    int l = (_mg_tid() & (w - 1)) + (int)d; return _mg_shfl(v, l < w ? l : (_mg_tid() & (w - 1)), w); }
static inline float atomicAdd(float* p, float v) {
    float old; _Pragma("omp atomic capture") { old = *p; *p += v; } return old; }
static inline double atomicAdd(double* p, double v) {
    double old; _Pragma("omp atomic capture") { old = *p; *p += v; } return old; }
static inline int atomicAdd(int* p, int v) { int old; _Pragma("omp atomic capture") { old = *p; *p += v; } return old; }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
static inline double __longlong_as_double(long long i) { double f; memcpy(&f, &i, 8); return f; }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
"""

_KERNEL_RE = re.compile(r'extern\s+"C"\s+__global__\s+(?:__launch_bounds__\([^)]*\)\s+)?void\s+(\w+)\s*\(([^)]*)\)',
                        re.S)

_C_SCALARS = {"int": np.int32, "unsigned int": np.uint32, "unsigned": np.uint32, "long long": np.int64,
              "long long int": np.int64, "unsigned long long": np.uint64, "float": np.float32,
              "double": np.float64, "bool": np.bool_, "int64_t": np.int64, "int32_t": np.int32,
              "size_t": np.uint64, "ptrdiff_t": np.int64}
_C_CTYPES = {np.int32: ctypes.c_int32, np.uint32: ctypes.c_uint32, np.int64: ctypes.c_int64,
             np.uint64: ctypes.c_uint64, np.float32: ctypes.c_float, np.float64: ctypes.c_double,
             np.bool_: ctypes.c_bool}


def _parse_params(params):
    out = []
    for p in params.split(","):
        p = " ".join(p.replace("__restrict__", " ").replace("*", " * ").split())
        if not p or p == "void":
            continue
        toks = p.split(" ")
        name, ctype = toks[-1], toks[:-1]
        ptr = "*" in ctype
        base = " ".join(t for t in ctype if t not in ("const", "*"))
        base = {"MG_T": "MG_T"}.get(base, base)
        out.append((name, base, ptr, " ".join(ctype)))
    return out


def compiler_available() -> bool:
    """Whether a host C++ compiler with OpenMP is there to run the kernel emulation."""
    return shutil.which(os.environ.get("CXX", "g++")) is not None


_LIBS = {}
_LIB_LOCK = threading.Lock()


def _cache_dir():
    d = os.environ.get("MINIGEN_EMU_CACHE") or os.path.join(tempfile.gettempdir(), f"minigen-gpu-emu-{os.getuid()}")
    os.makedirs(d, exist_ok=True)
    return d


def _defines(options):
    """The ``-D``/``-U`` options of a CuPy compile (others, e.g. ``--use_fast_math``, don't apply on the host)."""
    out = []
    for o in options or ():
        if o.startswith(("-D", "-U")):
            out.append(o)
    return out


class EmuRawModule:
    """``cupy.RawModule(code=..., options=...)`` run on the CPU (see the module docstring)."""

    def __init__(self, code=None, *, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 name_expressions=None, jitify=False):
        if code is None:
            raise ValueError("EmuRawModule needs code=")
        self.code = code
        self.options = tuple(options)
        defs = _defines(options)
        typedefs = {}
        for d in defs:  # -DMG_T=float: resolve the kernel parameter types that use the macro
            if d.startswith("-D") and "=" in d:
                k, v = d[2:].split("=", 1)
                typedefs[k] = v
        self.kernels = {}
        for m in _KERNEL_RE.finditer(code):
            params = []
            for name, base, ptr, full in _parse_params(m.group(2)):
                params.append((name, typedefs.get(base, base), ptr))
            self.kernels[m.group(1)] = params
        self._lib = _compile(code, defs, self.kernels)

    def get_function(self, name):
        if name not in self.kernels:
            raise AttributeError(f"no kernel named {name!r} in this module (found {sorted(self.kernels)})")
        return _EmuFunction(self, name)


class EmuRawKernel(EmuRawModule):
    """``cupy.RawKernel(code, name, options)`` run on the CPU."""

    def __init__(self, code, name, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, jitify=False):
        super().__init__(code=code, options=options)
        self._fn = self.get_function(name)

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
        return self._fn(grid, block, args, shared_mem=shared_mem)


def _launcher_source(kernels):
    lines = []
    for name, params in kernels.items():
        args = ", ".join(f"*({_c_type(b, p)}*)a[{i}]" for i, (_, b, p) in enumerate(params))
        lines.append(f"""
extern "C" int mg_launch_{name}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                                void** a) {{
    int nt = (int)(bx * by * bz), bad = 0;
    gridDim.x = gx; gridDim.y = gy; gridDim.z = gz; blockDim.x = bx; blockDim.y = by; blockDim.z = bz;
    omp_set_dynamic(0);
    for (unsigned z = 0; z < gz && !bad; ++z) for (unsigned y = 0; y < gy && !bad; ++y)
    for (unsigned x = 0; x < gx && !bad; ++x) {{
        blockIdx.x = x; blockIdx.y = y; blockIdx.z = z;
        #pragma omp parallel num_threads(nt)
        {{
            if (omp_get_num_threads() != nt) {{
                #pragma omp atomic write
                bad = 1;
            }} else {{
                int t = omp_get_thread_num();
                threadIdx.x = t % bx; threadIdx.y = (t / bx) % by; threadIdx.z = t / (bx * by);
                {name}({args});
            }}
        }}
    }}
    return bad;
}}""")
    return "\n".join(lines)


def _c_type(base, ptr):
    return f"{base}*" if ptr else base


def _compile(code, defs, kernels):
    src = _PRELUDE + "\n" + code + "\n" + _launcher_source(kernels)
    cxx = os.environ.get("CXX", "g++")
    flags = ["-O1", "-fopenmp", "-shared", "-fPIC", "-std=c++14", "-w", "-x", "c++"] + defs
    key = hashlib.sha256((src + "\0" + " ".join(flags) + cxx).encode()).hexdigest()[:24]
    with _LIB_LOCK:
        lib = _LIBS.get(key)
        if lib is not None:
            return lib
        so = os.path.join(_cache_dir(), f"k_{key}.so")
        if not os.path.exists(so):
            if shutil.which(cxx) is None:
                raise RuntimeError(f"the kernel emulation needs a C++ compiler with OpenMP ({cxx!r} not found)")
            cpath = so[:-3] + ".cpp"
            with open(cpath, "w") as f:
                f.write(src)
            tmp = so + f".{os.getpid()}.tmp"
            r = subprocess.run([cxx] + flags + [cpath, "-o", tmp], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"emulated kernel compile failed:\n{r.stderr[-4000:]}")
            os.replace(tmp, so)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        lib = ctypes.CDLL(so)
        _LIBS[key] = lib
        return lib


def _dim3(v):
    if isinstance(v, (int, np.integer)):
        v = (int(v),)
    v = tuple(int(x) for x in v) + (1,) * (3 - len(v))
    if any(x < 1 for x in v):
        raise ValueError(f"grid/block dimensions must be positive, got {v}")
    return v


class _EmuFunction:
    def __init__(self, module, name):
        self.module, self.name = module, name
        self.params = module.kernels[name]
        self._launch = getattr(module._lib, f"mg_launch_{name}")
        self._launch.restype = ctypes.c_int

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
        if shared_mem:
            raise ValueError("the gpu_* kernels use static shared memory only (shared_mem must be 0)")
        if len(args) != len(self.params):
            raise TypeError(f"{self.name}: expected {len(self.params)} arguments, got {len(args)}")
        g, b = _dim3(grid), _dim3(block)
        if b[0] * b[1] * b[2] > 1024:
            raise ValueError(f"{self.name}: block of {b} threads exceeds 1024")
        keep, ptrs = [], []
        for (pname, base, ptr), a in zip(self.params, args):
            if ptr:
                if not isinstance(a, ndarray):
                    raise TypeError(f"{self.name}: argument {pname!r} must be a device array, got {type(a)}")
                want = _C_SCALARS.get(base)
                if want is not None and a.dtype != np.dtype(want):
                    raise TypeError(f"{self.name}: argument {pname!r} is {base}* but the array has dtype {a.dtype}")
                if not a._a.flags.c_contiguous:
                    raise ValueError(f"{self.name}: argument {pname!r} must be C-contiguous (raw kernels index "
                                     f"flat memory), got strides {a.strides}")
                v = ctypes.c_void_p(a._a.ctypes.data)
            else:
                want = _C_SCALARS.get(base)
                if want is None:
                    raise TypeError(f"{self.name}: unsupported scalar parameter type {base!r}")
                if not isinstance(a, np.generic) or a.dtype != np.dtype(want):
                    raise TypeError(f"{self.name}: argument {pname!r} is a C {base}: pass numpy.{np.dtype(want)} "
                                    f"(CuPy passes a Python int as 64-bit, a float as double), got "
                                    f"{type(a).__name__}")
                v = _C_CTYPES[np.dtype(want).type](a.item())
            keep.append(v)
            ptrs.append(ctypes.cast(ctypes.pointer(v), ctypes.c_void_p))
        arr = (ctypes.c_void_p * max(len(ptrs), 1))(*ptrs)
        bad = self._launch(*[ctypes.c_uint(x) for x in g + b], arr)
        if bad:
            raise RuntimeError(f"{self.name}: OpenMP could not start {b[0] * b[1] * b[2]} threads for a block")


FAKE = FakeCupy()


def real_gpu_available() -> bool:
    """Whether a real CuPy with a CUDA device is there (checked without the emulation installed)."""
    from minigen import backend

    if sys.modules.get("cupy") is FAKE:
        return False
    return backend.cupy_module() is not None and backend.cupy_module() is not FAKE


@contextlib.contextmanager
def on_backend(name):
    """``with on_backend('emulated'):`` / ``with on_backend('cuda'):`` — the tests' switch between the
    emulation and a real GPU (which must be available: the tests skip the 'cuda' case otherwise)."""
    if name == "emulated":
        with emulated_cupy() as cp:
            yield cp
    elif name == "cuda":
        if not real_gpu_available():
            raise RuntimeError("no real CUDA GPU available")
        import minigen.cuda  # noqa: F401

        yield sys.modules["cupy"]
    else:
        raise ValueError(f"unknown GPU backend {name!r}")
