"""Shared pieces of the CPU kernels: the jit decorators, layout helpers and rules, and BLAS from Numba.

Decorators
----------
``jit``  = ``numba.njit(cache=True, fastmath=FASTMATH, error_model="numpy")``: compiled once, cached on disk (``__pycache__``
next to the module, or NUMBA_CACHE_DIR), so a second process starts fast.
All kernels are compiled with ``nogil=True``: they release the GIL, so Python threads run them in parallel.

``FASTMATH`` is the *safe* subset of LLVM's fast-math flags: ``reassoc`` + ``contract`` (so reductions
vectorise and a*b+c becomes an FMA), ``nsz`` and ``arcp``. It deliberately leaves out ``nnan``/``ninf``:
the kernels rely on -inf (masked attention scores, max-subtraction) and must propagate NaN like NumPy.
Re-association changes float32 rounding at the ~1e-6 relative level, inside the tests' tolerances
(the same tolerances NumPy's own pairwise summation needs against a float64 reference).

Parallel pattern
----------------
A kernel body is a serial ``jit`` function whose last two arguments are a range ``[i0, i1)`` of rows /
channels / heads / elements; :func:`parallel_for` cuts the range into one chunk per thread and runs
the chunks on a small persistent thread pool (the calling thread takes the first chunk). Threads =
:func:`minigen.kernels.threads.kernel_threads` (``mg.set_num_threads``, else OMP_NUM_THREADS, else the
usable cores; capped by NUMBA_NUM_THREADS). Thread ownership (:mod:`minigen.kernels.threads`): the pool
and BLAS never compute at the same time -- chunks that call BLAS (a ``cblas_?gemm`` object among the
arguments) run it single-threaded while the pool owns the cores.
Why not ``parallel=True``/``prange``: measured on this 2-core machine, a ``prange`` driver adds 0.6 s
(simple loops) to 3.5 s (attention) of compile time per dtype specialisation, for the same 1.9-2x
speedup that the thread pool gives at ~15 us dispatch cost; compile time is what the cold start and the
test budget pay for. Small inputs call the serial body directly (see each kernel's threshold).

BLAS from Numba
---------------
``np.dot`` inside ``@njit`` needs SciPy, which minigen does not depend on. Instead :func:`blas_gemm`
finds the ILP64 ``cblas_?gemm`` that NumPy's own wheel bundles (``scipy_openblas64``) and hands it to
Numba as a first-class function (a Wrapper Address Protocol object passed as an argument, so the
compiled code stays cacheable). When it cannot be found (another NumPy build), ``blas_gemm`` returns
None and the kernels that want it fall back to a Python loop around NumPy's ``@``.
"""
from __future__ import annotations

import ctypes
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np
from numba import types

from . import threads as _threads

# Never call numba.get_num_threads / set_num_threads here: they launch Numba's threading layer (its
# OpenMP pool, which shares the process's libgomp with PyTorch and resets the OpenMP thread count: measured,
# a torch.set_num_threads(1) in the same process then ran its ops on 2 threads). No kernel uses prange, so
# that layer is never needed; the pool size is :func:`threads`.

FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


def jit(fn=None, **kw):
    opts = dict(cache=True, fastmath=FASTMATH, nogil=True, error_model="numpy")
    opts.update(kw)
    return nb.njit(**opts)(fn) if fn is not None else nb.njit(**opts)




FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def is_float(*arrays) -> bool:
    """All given arrays are float32/float64 NumPy arrays of one dtype (None entries ignored)."""
    dt = None
    for a in arrays:
        if a is None:
            continue
        if a.dtype not in FLOATS:
            return False
        if dt is None:
            dt = a.dtype
        elif a.dtype != dt:
            return False
    return dt is not None


def c(a):
    """C-contiguous version of ``a`` (no copy when it already is)."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def threads() -> int:
    """Threads of the kernel pool (:func:`minigen.kernels.threads.kernel_threads`)."""
    return _threads.kernel_threads()


def chunks(n: int, min_per_chunk: int = 1) -> int:
    """How many parallel chunks to cut ``n`` items into: one per thread, never below ``min_per_chunk`` each."""
    t = threads()
    return max(1, min(t, n // max(1, min_per_chunk)))


_POOL = [None, 0]
_POOL_LOCK = threading.Lock()


def _pool(n):
    if _POOL[0] is None or _POOL[1] < n:
        with _POOL_LOCK:
            if _POOL[0] is None or _POOL[1] < n:
                old = _POOL[0]
                _POOL[0] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="minigen-kernel")
                _POOL[1] = n
                if old is not None:
                    old.shutdown(wait=False)
    return _POOL[0]


def parallel_for(fn, n, *args, parallel=True, min_per_chunk=1):
    """Run ``fn(*args, i0, i1)`` over ``[0, n)``: one chunk per thread when ``parallel``, else one call.

    ``fn`` must be a ``nogil`` Numba function (it is, with :func:`jit`) for the chunks to overlap.
    """
    nch = chunks(n, min_per_chunk) if parallel else 1
    if nch <= 1 or threading.current_thread().name.startswith("minigen-kernel"):
        fn(*args, 0, n)
        return
    if any(isinstance(a, _GemmWAP) for a in args):  # the chunks call BLAS: one BLAS thread each
        with _threads.blas_single():
            _run_chunks(fn, n, nch, args)
    else:
        _run_chunks(fn, n, nch, args)


def _run_chunks(fn, n, nch, args):
    pool = _pool(nch - 1)
    futs = [pool.submit(fn, *args, k * n // nch, (k + 1) * n // nch) for k in range(1, nch)]
    try:
        fn(*args, 0, n // nch)
    finally:
        for f in futs:
            f.result()


# ------------------------------------------------------------------ BLAS (cblas_?gemm) for Numba
CblasRowMajor, CblasNoTrans, CblasTrans = 101, 111, 112


class _GemmWAP(types.WrapperAddressProtocol):
    """A C function address + its Numba signature: callable from nopython code when passed as an argument."""

    def __init__(self, addr, sig):
        self._addr, self._sig = addr, sig

    def __wrapper_address__(self):
        return self._addr

    def signature(self):
        return self._sig


def _gemm_sig(ft):
    i32, i64, p = types.int32, types.int64, types.uintp
    return types.void(i32, i32, i32, i64, i64, i64, ft, p, i64, p, i64, ft, p, i64)


_BLAS = {}


def _find_blas():
    import numba.experimental.function_type  # noqa: F401  (registers typeof for WAP objects)

    libdir = os.path.dirname(np.__file__) + ".libs"
    cands = sorted(glob.glob(os.path.join(libdir, "*openblas*.so*")))
    for path in cands:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_cblas_", "cblas_"):
            try:
                fs = getattr(lib, prefix + "sgemm64_")
                fd = getattr(lib, prefix + "dgemm64_")
            except AttributeError:
                continue
            _BLAS["lib"] = lib  # keep the library loaded
            _BLAS[np.dtype(np.float32)] = _GemmWAP(ctypes.cast(fs, ctypes.c_void_p).value, _gemm_sig(types.float32))
            _BLAS[np.dtype(np.float64)] = _GemmWAP(ctypes.cast(fd, ctypes.c_void_p).value, _gemm_sig(types.float64))
            return


def blas_gemm(dtype):
    """The ILP64 cblas gemm for ``dtype`` as a Numba-callable object, or None when not found."""
    if not _BLAS:
        _BLAS["searched"] = True
        if os.environ.get("MINIGEN_NO_NUMBA_BLAS", "") not in ("", "0"):
            return None
        try:
            _find_blas()
        except Exception:  # pragma: no cover - exotic NumPy builds
            pass
    return _BLAS.get(np.dtype(dtype))


@jit
def gemm(fn, transa, transb, alpha, a, b, beta, out):
    """out = alpha * op(a) @ op(b) + beta * out  for C-contiguous 2-d arrays (op = transpose if trans*)."""
    m = out.shape[0]
    n = out.shape[1]
    k = a.shape[0] if transa else a.shape[1]
    ta = np.int32(CblasTrans if transa else CblasNoTrans)
    tb = np.int32(CblasTrans if transb else CblasNoTrans)
    fn(np.int32(CblasRowMajor), ta, tb, np.int64(m), np.int64(n), np.int64(k), alpha,
       a.ctypes.data, np.int64(a.shape[1]), b.ctypes.data, np.int64(b.shape[1]), beta,
       out.ctypes.data, np.int64(out.shape[1]))


@jit
def gemm_rows(fn, transa, transb, alpha, a, b, beta, out):
    """As :func:`gemm` for 2-d arrays whose rows are contiguous but may be spaced further apart (row
    slices, (i0:i1, j0:j1) blocks): the leading dimensions come from the row strides."""
    m = out.shape[0]
    n = out.shape[1]
    k = a.shape[0] if transa else a.shape[1]
    ta = np.int32(CblasTrans if transa else CblasNoTrans)
    tb = np.int32(CblasTrans if transb else CblasNoTrans)
    fn(np.int32(CblasRowMajor), ta, tb, np.int64(m), np.int64(n), np.int64(k), alpha,
       a.ctypes.data, np.int64(a.strides[0] // a.itemsize), b.ctypes.data, np.int64(b.strides[0] // b.itemsize),
       beta, out.ctypes.data, np.int64(out.strides[0] // out.itemsize))


@jit
def _transpose_blocks(a, out):
    """out[j, i] = a[i, j] in 32 x 32 blocks (measured on (1024, 256) float32: 150 us, against 720 us for
    the row-major-read loop order and 280 us for NumPy's copy; about the memory bandwidth)."""
    m, n = a.shape
    for i0 in range(0, m, 32):
        i1 = min(i0 + 32, m)
        for j0 in range(0, n, 32):
            j1 = min(j0 + 32, n)
            for j in range(j0, j1):
                orow = out[j]
                for i in range(i0, i1):
                    orow[i] = a[i, j]


def transposed(a):
    """A C-contiguous copy of a 2-d array's transpose (a blocked copy: ~4x faster than NumPy's
    ``ascontiguousarray(a.T)`` on a (1024, 256) float32 matrix). Used where a weight multiplies from the
    right many times: OpenBLAS runs ``h @ W^T`` with a small h (a recurrent step, batch 32) ~1.4x slower
    than ``h @ Wt`` with ``Wt`` contiguous."""
    out = np.empty((a.shape[1], a.shape[0]), a.dtype)
    _transpose_blocks(c(a), out)
    return out


@jit
def row_max(row):
    """max of a 1-d array in its own dtype (-inf when empty), with eight independent running maxima: one
    chain of compares is a serial dependency LLVM does not vectorise (0.47 vs 0.18 ns per element on 32-wide
    float32 rows). A NaN element may or may not win; the callers' exponentials propagate it either way."""
    n = row.shape[0]
    n8 = n - n % 8
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = row.dtype.type(-np.inf)
    for j in range(0, n8, 8):
        a0 = max(a0, row[j])
        a1 = max(a1, row[j + 1])
        a2 = max(a2, row[j + 2])
        a3 = max(a3, row[j + 3])
        a4 = max(a4, row[j + 4])
        a5 = max(a5, row[j + 5])
        a6 = max(a6, row[j + 6])
        a7 = max(a7, row[j + 7])
    mx = max(max(max(a0, a1), max(a2, a3)), max(max(a4, a5), max(a6, a7)))
    for j in range(n8, n):
        mx = max(mx, row[j])
    return mx
