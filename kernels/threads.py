"""Who owns the CPU cores: one thread budget, shared by BLAS and the Numba kernels, never both at once.

minigen runs two kinds of parallel code: BLAS (NumPy's ``@``, and the ``cblas_?gemm`` calls made from
Numba code) and the Numba kernels' thread pool (:func:`minigen.kernels._common.parallel_for`). Each on
its own would use every core; nested (a pool chunk that calls a multi-threaded GEMM) they would run
cores x cores threads on cores cores. The rule, per call:

- **a GEMM owns the cores**: BLAS runs with ``get_num_threads()`` threads while the kernel pool is idle
  (the im2col convolutions, Linear, matmul: the pool's loops and the GEMM run one after the other);
- **a parallel kernel owns the cores**: its pool runs ``get_num_threads()`` chunks, and chunks that call
  BLAS themselves (attention's blocks) run it single-threaded: BLAS is held at 1 thread while they run
  and given back its count after.

So at any moment at most ``get_num_threads()`` threads compute, and the default (all the cores this
process may run on) is the right one: ``OMP_NUM_THREADS=1`` is no longer needed to avoid
oversubscription, only to ask for one thread.

The budget, ``get_num_threads()``: the last ``set_num_threads(n)`` (PyTorch's names), else
``OMP_NUM_THREADS`` (as PyTorch reads it), else the cores of ``os.sched_getaffinity``.
Honoured environment variables: ``NUMBA_NUM_THREADS`` caps the kernel pool; ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS`` and ``OMP_NUM_THREADS`` are read by BLAS itself when NumPy loads it, and minigen does
not change BLAS's count until ``set_num_threads`` is called. BLAS is controlled through threadpoolctl
(any BLAS NumPy loaded: OpenBLAS, MKL, BLIS); without threadpoolctl the BLAS count stays as loaded.

Numba's own threading layer (``numba.get_num_threads``/``set_num_threads``, prange) is never started:
no kernel uses prange, and starting it loads an OpenMP pool that shares the process's libgomp with
PyTorch and resets its thread count (measured: after it, PyTorch's ops under ``torch.set_num_threads(1)``
ran on 2 threads). This module imports neither Numba nor threadpoolctl at import time.
"""
from __future__ import annotations

import os
import threading

__all__ = ["set_num_threads", "get_num_threads", "kernel_threads", "blas_threads", "blas_info", "owners",
           "blas_single"]

_STATE = {"budget": None, "ctl": None, "blas": None, "default": None, "numba_cap": None}
_LOCK = threading.Lock()
_HOLD = [0, None]  # nesting depth of blas_single, BLAS counts to restore


def _env_int(name):
    v = os.environ.get(name, "").strip()
    try:
        n = int(v)
    except ValueError:
        return None
    return n if n >= 1 else None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """The thread budget of minigen's CPU work (BLAS or the kernel pool, one at a time): the last
    :func:`set_num_threads`, else ``OMP_NUM_THREADS``, else the usable cores."""
    b = _STATE["budget"]
    if b is None:
        b = _STATE["default"]
        if b is None:  # read once (as PyTorch reads OMP_NUM_THREADS once): every kernel call asks
            b = _STATE["default"] = _env_int("OMP_NUM_THREADS") or _cores()
    return b


def kernel_threads() -> int:
    """Threads of the Numba kernel pool: the budget, capped by ``NUMBA_NUM_THREADS`` when set."""
    n = get_num_threads()
    cap = _STATE["numba_cap"]
    if cap is None:  # read once: an environment lookup per kernel call cost ~1 us
        cap = _STATE["numba_cap"] = _env_int("NUMBA_NUM_THREADS") or 0
    return min(n, cap) if cap else n


def _blas_controllers():
    """threadpoolctl's controllers of the BLAS libraries loaded in this process ([] without threadpoolctl)."""
    if _STATE["blas"] is None:
        with _LOCK:
            if _STATE["blas"] is None:
                try:
                    import numpy  # noqa: F401  (loads NumPy's BLAS, so threadpoolctl can see it)
                    from threadpoolctl import ThreadpoolController

                    _STATE["ctl"] = ThreadpoolController()
                    _STATE["blas"] = list(_STATE["ctl"].select(user_api="blas").lib_controllers)
                except Exception:  # threadpoolctl missing or failing: leave BLAS as loaded
                    _STATE["blas"] = []
    return _STATE["blas"]


def blas_threads():
    """BLAS's current thread count (the first BLAS library loaded), or None when it cannot be read."""
    for lc in _blas_controllers():
        try:
            return int(lc.num_threads)
        except Exception:
            return None
    return None


def blas_info():
    """[{library, version, threads, threading layer, path}] for every BLAS loaded (threadpoolctl's view)."""
    out = []
    for lc in _blas_controllers():
        d = lc.info()
        out.append({"library": d.get("internal_api"), "version": d.get("version"), "threads": d.get("num_threads"),
                    "threading_layer": d.get("threading_layer"), "architecture": d.get("architecture"),
                    "path": d.get("filepath")})
    return out


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for minigen's CPU work (PyTorch's ``torch.set_num_threads``): the BLAS thread
    count and the kernel pool's size both become ``n`` (the pool stays capped by NUMBA_NUM_THREADS).
    They never run at the same time (module docstring), so ``n`` is also the most threads that compute."""
    import builtins

    if isinstance(n, builtins.bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
        from minigen.errors import InvalidArgumentError

        raise InvalidArgumentError(f"set_num_threads: expected a positive int, got {n!r}")
    n = int(n.__index__())
    if n < 1:
        from minigen.errors import InvalidArgumentError

        raise InvalidArgumentError(f"set_num_threads: expected a positive int, got {n}")
    _STATE["budget"] = n
    for lc in _blas_controllers():
        lc.set_num_threads(n)
    if _HOLD[0]:  # inside blas_single: restore to the new count at the end
        _HOLD[1] = [n] * len(_HOLD[1] or [])


class blas_single:
    """``with blas_single():`` BLAS runs single-threaded inside (for parallel pool chunks that call it);
    its thread count is restored on exit. Nests; costs two ctypes calls when BLAS has more than one thread."""

    __slots__ = ()

    def __enter__(self):
        ctls = _blas_controllers()
        with _LOCK:
            if _HOLD[0] == 0:
                counts = [lc.num_threads for lc in ctls]
                _HOLD[1] = counts
                for lc, k in zip(ctls, counts):
                    if k != 1:
                        lc.set_num_threads(1)
            _HOLD[0] += 1
        return self

    def __exit__(self, *exc):
        ctls = _blas_controllers()
        with _LOCK:
            _HOLD[0] -= 1
            if _HOLD[0] == 0:
                for lc, k in zip(ctls, _HOLD[1] or []):
                    if k != 1:
                        lc.set_num_threads(k)
                _HOLD[1] = None
        return False


def owners() -> dict:
    """Who owns the cores, for ``minigen info``: the budget and where it came from, the kernel pool,
    BLAS (library, version, threads), and the rule."""
    if _STATE["budget"] is not None:
        src = "mg.set_num_threads"
    elif _env_int("OMP_NUM_THREADS"):
        src = "OMP_NUM_THREADS"
    else:
        src = "usable cores"
    blas = blas_info()
    return {"threads": get_num_threads(), "threads_from": src, "kernel_pool_threads": kernel_threads(),
            "blas": ", ".join(f"{b['library']} {b['version']} ({b['threads']} threads, {b['threading_layer']})"
                              for b in blas) or "not visible (threadpoolctl missing)",
            "thread_rule": "GEMMs use the BLAS threads, other kernels the pool; pool chunks call BLAS single-threaded"}
