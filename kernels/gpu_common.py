"""Shared pieces of the CuPy GPU kernels: the GPU kernel registry, the compile cache, CUDA helpers.

Registry
--------
A GPU kernel has the SAME name, arguments and results as the CPU kernel it stands in for
(``softmax_forward``, ``layer_norm_backward``, ``adam_step``...), so an op written as::

    k = dispatch.get("softmax_forward", x)
    y = k(x) if k is not None else reference(xp, x)

runs the Numba kernel for NumPy arrays and the CUDA kernel for CuPy arrays with no other change.
:func:`register_gpu` records a kernel in the one registry of :mod:`minigen.kernels.dispatch`, keyed
by (name, 'cupy'); ``dispatch.get`` hands it out for CuPy arrays when its ``requires`` rule holds. GPU
kernels have no size threshold: they are used whenever they apply (mode ``reference`` turns them off).

Sources
-------
Every kernel is CUDA C compiled at run time by CuPy (``cupy.RawModule``, NVRTC), once per
(source, element type, option set) and cached here. The element type is the macro ``MG_T``
(``-DMG_T=float`` or ``-DMG_T=double``); accumulation is in ``MG_T`` (so float32 inputs accumulate in
float32, as the issue asks, with the reductions organised as trees, not long serial sums). Kernels use
only static shared memory and no headers, so the same source compiles under NVRTC, under ``nvcc``
(the tests compile every source for sm_90 when ``nvcc`` is installed) and under the test suite's CPU emulation
(``tests/cupy_emulator.py``).

Scalar launch arguments are always passed as NumPy scalars of the exact C type (``np.int32`` for
``int``, ``np.float32``/``np.float64`` for ``MG_T``): CuPy passes a bare Python int as a 64-bit integer.
"""
from __future__ import annotations

import importlib
import sys
import threading

import numpy as np

__all__ = ["register_gpu", "gpu_kernel_names", "cupy_of", "compile_module",
           "scalar", "i32", "COMMON_CUDA", "is_device_array", "sources"]

_SOURCES: dict = {}  # name -> (source, tuple of option tuples it is compiled with): for the nvcc compile test


def register_gpu(name: str, requires=None, reference=None):
    """Decorator: register ``fn`` as the GPU version of kernel ``name`` (same arguments and results)."""
    from .dispatch import register

    return register(name, requires=requires, xp="cupy", reference=reference)


def gpu_kernel_names():
    from .dispatch import kernel_names

    return kernel_names("cupy")


def is_device_array(a) -> bool:
    """A CuPy array (real or emulated): an array whose type lives in the ``cupy`` package."""
    return hasattr(a, "shape") and type(a).__module__.split(".")[0] == "cupy"


def _arrays(args):
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from (x for x in a if x is not None and hasattr(x, "shape"))
        elif a is not None and hasattr(a, "shape"):
            yield a


# ------------------------------------------------------------------ compile cache
_MODULES: dict = {}


def cupy_of(arr):
    """The CuPy module an array belongs to (the real one, or the emulation installed as ``cupy``)."""
    return sys.modules["cupy"]


def sources():
    """{name: (source, [options...])} of every CUDA source the GPU kernels compile (imports them)."""
    from .dispatch import _load_gpu

    _load_gpu()
    return dict(_SOURCES)


def declare_source(name, source, option_sets):
    """Record a kernel source and the option sets it is compiled with (for the compile tests and docs)."""
    _SOURCES[name] = (source, [tuple(o) for o in option_sets])


def compile_module(cp, name, source, dtype, extra=()):
    """``cp.RawModule`` of ``source`` with ``-DMG_T=<float|double>`` and ``extra`` options, cached."""
    ctype = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[np.dtype(dtype)]
    opts = (f"-DMG_T={ctype}",) + tuple(extra)
    key = (id(cp), name, opts)
    mod = _MODULES.get(key)
    if mod is None:
        mod = cp.RawModule(code=COMMON_CUDA + source, options=("--std=c++14",) + opts)
        _MODULES[key] = mod
    return mod


def scalar(dtype, v):
    """``v`` as a NumPy scalar of ``dtype`` (the C type ``MG_T`` of a kernel compiled for that dtype)."""
    return np.dtype(dtype).type(v)


def i32(v):
    return np.int32(v)


def is_float_dev(*arrays) -> bool:
    return all(a is None or (is_device_array(a) and a.dtype in (np.float32, np.float64)) for a in arrays)


def contiguous(cp, a, dtype=None):
    """C-contiguous (and of ``dtype``) version of a device array (a copy only when needed)."""
    if dtype is not None and a.dtype != dtype:
        a = a.astype(dtype)
    return cp.ascontiguousarray(a)


# ------------------------------------------------------------------ CUDA helpers shared by the sources
COMMON_CUDA = r"""
// ---- minigen gpu_common: math overloads for MG_T, warp / block reductions ------------------------
__device__ __forceinline__ float mg_exp(float x) { return expf(x); }
__device__ __forceinline__ double mg_exp(double x) { return exp(x); }
__device__ __forceinline__ float mg_log(float x) { return logf(x); }
__device__ __forceinline__ double mg_log(double x) { return log(x); }
__device__ __forceinline__ float mg_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double mg_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float mg_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double mg_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float mg_max(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double mg_max(double a, double b) { return fmax(a, b); }
__device__ __forceinline__ float mg_inf(float) { return __int_as_float(0x7f800000); }
__device__ __forceinline__ double mg_inf(double) { return (double)__int_as_float(0x7f800000); }
// sigmoid without overflow: exp is only taken of -|v|
template <typename T> __device__ __forceinline__ T mg_sigmoid(T v) {
    T e = mg_exp(v >= T(0) ? -v : v);
    return v >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}
// Reductions over a warp (32 lanes) and over a whole block. EVERY thread of the block must call the
// block versions together (they contain __syncthreads); blockDim.x must be a multiple of 32.
template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
template <typename T> __device__ __forceinline__ T warp_max(T v) {
    for (int o = 16; o > 0; o >>= 1) v = mg_max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
template <typename T> __device__ T block_sum(T v, T* sh) {
    v = warp_sum(v);
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    v = (int)threadIdx.x < nw ? sh[threadIdx.x] : T(0);
    v = warp_sum(v);
    __syncthreads();
    if (threadIdx.x == 0) sh[0] = v;
    __syncthreads();
    v = sh[0];
    __syncthreads();
    return v;
}
template <typename T> __device__ T block_max(T v, T* sh) {
    v = warp_max(v);
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    v = (int)threadIdx.x < nw ? sh[threadIdx.x] : -mg_inf(T(0));
    v = warp_max(v);
    __syncthreads();
    if (threadIdx.x == 0) sh[0] = v;
    __syncthreads();
    v = sh[0];
    __syncthreads();
    return v;
}
// ------------------------------------------------------------------------------------------------
"""
