"""The kernel switch: which ops run a compiled kernel and which run their NumPy reference.

Modes (environment variable ``MINIGEN_KERNELS``, read at import; change at run time with
:func:`set_mode` / :func:`use_reference`):

- ``auto`` (default): an op uses its kernel when the kernel *applies* (NumPy arrays of a supported
  dtype and layout) and the input is big enough for the kernel to pay (the size thresholds measured
  on a 2-core AVX2 machine, written in each kernel's docstring);
- ``reference``: every op runs its plain NumPy reference (the teaching text and the oracle);
- ``numba``: force the kernel wherever it applies, whatever the size (what the property tests use).

An op asks for a kernel with ``fn = dispatch.get("softmax_forward", x)``: the callable, or None when
the mode is ``reference``, Numba is not installed, or the kernel's rule says no for these arrays.
CuPy (GPU) arrays get the CUDA kernel of the same name from ``minigen.kernels.gpu_*`` (see
:mod:`minigen.kernels.gpu_common`), or None (the op's ``xp`` reference path) when there is none; GPU
kernels have no size threshold, and the ``reference`` mode turns them off too. A kernel module registers
its kernels with::

    @register("softmax_forward", requires=_float_rows, worth=lambda x: x.size >= 4096)
    def softmax_forward(x): ...

``requires(*arrays)`` is the hard rule (dtype, rank, layout the kernel handles); ``worth(*arrays)``
is the measured size threshold (ignored in ``numba`` mode). Kernel modules are imported lazily on
the first :func:`get`, so ``import minigen`` does not pay for importing Numba.

``stats()`` counts how often each kernel was handed out (handy to check an op really used it).
"""
from __future__ import annotations

import importlib
import os
import threading
from collections import Counter

import numpy as np

__all__ = ["MODES", "mode", "set_mode", "use_reference", "use_kernels", "register", "get", "applies",
           "available", "kernel_names", "stats", "reset_stats", "num_threads", "KERNEL_MODULES"]

MODES = ("auto", "reference", "numba")
KERNEL_MODULES = ("cpu_softmax", "cpu_norm", "cpu_activation", "cpu_optim", "cpu_rnn", "cpu_attention",
                  "cpu_conv", "cpu_matmul")


def _env_mode() -> str:
    m = os.environ.get("MINIGEN_KERNELS", "auto").strip().lower() or "auto"
    if m not in MODES:
        import warnings

        warnings.warn(f"MINIGEN_KERNELS={m!r} is not one of {MODES}; using 'auto'", stacklevel=2)
        m = "auto"
    return m


_MODE = [_env_mode()]
_REGISTRY: dict = {}
_LOADED = [False]
_LOAD_LOCK = threading.Lock()
_NUMBA = [None]  # None: not checked yet; then True / False
_STATS: Counter = Counter()


class _Kernel:
    __slots__ = ("name", "fn", "requires", "worth")

    def __init__(self, name, fn, requires, worth):
        self.name, self.fn, self.requires, self.worth = name, fn, requires, worth


# ------------------------------------------------------------------ mode
def mode() -> str:
    """The current mode: 'auto', 'reference' or 'numba'."""
    return _MODE[0]


class set_mode:
    """Set the kernel mode. A plain call sets it for good; ``with set_mode('reference'):`` restores it after."""

    def __init__(self, new_mode: str):
        new_mode = str(new_mode).lower()
        if new_mode not in MODES:
            from minigen.errors import InvalidArgumentError

            raise InvalidArgumentError(f"kernel mode must be one of {MODES}, got {new_mode!r}")
        self.prev = _MODE[0]
        _MODE[0] = new_mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _MODE[0] = self.prev
        return False


def use_reference():
    """``with use_reference(): ...`` runs every op on its NumPy reference inside the block."""
    return set_mode("reference")


def use_kernels():
    """``with use_kernels(): ...`` forces the kernels wherever they apply (size thresholds ignored)."""
    return set_mode("numba")


# ------------------------------------------------------------------ registry
def available() -> bool:
    """Whether Numba can be imported (kernels exist at all)."""
    if _NUMBA[0] is None:
        try:
            import numba  # noqa: F401

            _NUMBA[0] = True
        except Exception:
            _NUMBA[0] = False
    return _NUMBA[0]


def num_threads() -> int:
    """Threads the parallel kernels use (Numba's, which respects NUMBA_NUM_THREADS); 1 without Numba."""
    if not available():
        return 1
    import numba

    return int(numba.get_num_threads())


def register(name: str, requires=None, worth=None):
    """Decorator: register ``fn`` as kernel ``name`` (see the module docstring for the two rules)."""

    def deco(fn):
        _REGISTRY[name] = _Kernel(name, fn, requires, worth)
        return fn

    return deco


def _load():
    if _LOADED[0]:
        return
    with _LOAD_LOCK:
        if _LOADED[0]:
            return
        if available():
            for m in KERNEL_MODULES:
                importlib.import_module(f"minigen.kernels.{m}")
        _LOADED[0] = True


def kernel_names():
    """All registered kernel names (imports the kernel modules)."""
    _load()
    return sorted(_REGISTRY)


def _all_numpy(arrays) -> bool:
    for a in arrays:
        if isinstance(a, (list, tuple)):  # e.g. the optimizers pass the list of parameter arrays
            if not _all_numpy(a):
                return False
        elif a is not None and hasattr(a, "shape") and type(a) is not np.ndarray:
            return False
    return True


def _gpu(name, arrays):
    """The CUDA kernel ``name`` for CuPy arrays (minigen.kernels.gpu_common.lookup), or None."""
    try:
        from . import gpu_common
    except Exception:  # pragma: no cover - a broken install
        return None
    return gpu_common.lookup(name, arrays)


def _lookup(name, arrays, forced):
    if not _LOADED[0]:
        _load()
    k = _REGISTRY.get(name)
    if k is None or not _all_numpy(arrays):
        return None
    if k.requires is not None and arrays and not k.requires(*arrays):
        return None
    if not forced and k.worth is not None and arrays and not k.worth(*arrays):
        return None
    return k


def get(name: str, *arrays):
    """The kernel callable for ``name`` given these input arrays, or None (use the reference).

    None when: the mode is 'reference'; Numba is missing; the kernel's ``requires`` rule fails; or (mode
    'auto' only) its measured ``worth`` threshold fails. CuPy arrays: the GPU kernel (counted in
    :func:`stats` as ``"gpu:<name>"``), or None when no GPU kernel applies.
    Called without arrays, only the mode/availability checks apply.
    """
    m = _MODE[0]
    if m == "reference":
        return None
    if not _all_numpy(arrays):
        fn = _gpu(name, arrays)
        if fn is not None:
            _STATS["gpu:" + name] += 1
        return fn
    if not available():
        return None
    k = _lookup(name, arrays, m == "numba")
    if k is None:
        return None
    _STATS[name] += 1
    return k.fn


def applies(name: str, *arrays) -> bool:
    """Whether :func:`get` would hand out the kernel for these arrays (does not count in stats)."""
    m = _MODE[0]
    if m == "reference":
        return False
    if not _all_numpy(arrays):
        return _gpu(name, arrays) is not None
    if not available():
        return False
    return _lookup(name, arrays, m == "numba") is not None


def stats() -> dict:
    """How many times each kernel was handed out by :func:`get` since the last :func:`reset_stats`."""
    return dict(_STATS)


def reset_stats() -> None:
    _STATS.clear()
