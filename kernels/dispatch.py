"""The kernel switch: which ops run a compiled kernel and which run their NumPy reference.

Modes (environment variable ``MINIGEN_KERNELS``, read at import; change at run time with
:func:`set_mode` / :func:`use_reference`):

- ``auto`` (default): an op uses its kernel when the kernel *applies* (NumPy arrays of a supported
  dtype and layout) and the input is big enough for the kernel to pay (the size thresholds measured
  on a 2-core AVX2 machine, written in each kernel's docstring);
- ``reference``: every op runs its plain NumPy reference (the teaching text and the oracle);
- ``numba``: force the kernel wherever it applies, whatever the size (what the property tests use).

This is the one kernel boundary. An op asks for a kernel with ``fn = dispatch.get("softmax_forward", x)``:
the callable, or None when the mode is ``reference``, Numba is not installed, or the kernel's rule says
no for these arrays -- the op then runs its reference. One registry holds CPU and GPU kernels, keyed by
(name, array module): NumPy arrays get the Numba kernel (``minigen.kernels.cpu_*``), CuPy arrays the CUDA
kernel of the same name (``minigen.kernels.gpu_*``, registered through
:func:`minigen.kernels.gpu_common.register_gpu`); GPU kernels have no size threshold, and the
``reference`` mode turns them off too. A kernel module registers its kernels with::

    @register("softmax_forward", requires=_float_rows, worth=lambda x: x.size >= 4096,
              reference="minigen.ops.activation:softmax")
    def softmax_forward(x): ...

``reference`` is the kernel's written contract: the op (or reference function) it must equal, tested
by the property tests. Nothing here catches a kernel's exceptions: a kernel that raises is a bug, and it
surfaces.

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
           "available", "kernel_names", "contract", "stats", "reset_stats", "num_threads", "KERNEL_MODULES"]

MODES = ("auto", "reference", "numba")
KERNEL_MODULES = ("cpu_softmax", "cpu_norm", "cpu_activation", "cpu_optim", "cpu_rnn", "cpu_attention",
                  "cpu_conv", "cpu_conv_direct", "cpu_matmul")


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
_GPU_LOADED = [False]
GPU_KERNEL_MODULES = ("gpu_softmax", "gpu_norm", "gpu_optim", "gpu_rnn", "gpu_attention")
_LOAD_LOCK = threading.Lock()
_NUMBA = [None]  # None: not checked yet; then True / False
_STATS: Counter = Counter()


class _Kernel:
    __slots__ = ("name", "fn", "requires", "worth", "xp", "reference")

    def __init__(self, name, fn, requires, worth, xp, reference):
        self.name, self.fn, self.requires, self.worth = name, fn, requires, worth
        self.xp, self.reference = xp, reference


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
    """Threads the parallel kernels use (minigen.kernels.threads' budget; never starts Numba's OpenMP layer,
    which would reset a PyTorch in the same process); 1 without Numba."""
    if not available():
        return 1
    from .threads import kernel_threads

    return int(kernel_threads())


def register(name: str, requires=None, worth=None, xp: str = "numpy", reference=None):
    """Decorator: register ``fn`` as kernel ``name`` for arrays of module ``xp`` ('numpy' or 'cupy').

    ``requires(*arrays)``: the hard rule; ``worth(*arrays)``: the measured size threshold (CPU only);
    ``reference``: the op or reference function the kernel must equal ('module:qualname')."""
    if xp not in ("numpy", "cupy"):
        raise ValueError(f"register: xp must be 'numpy' or 'cupy', got {xp!r}")

    def deco(fn):
        _REGISTRY[(name, xp)] = _Kernel(name, fn, requires, worth, xp, reference)
        return fn

    return deco


def contract(name: str, xp: str = "numpy"):
    """The reference (``'module:qualname'``) kernel ``name`` promises to equal, or None if unstated."""
    _load()
    if xp == "cupy":
        _load_gpu()
    k = _REGISTRY.get((name, xp))
    if k is None:
        raise KeyError(f"no {xp} kernel named {name!r}")
    if k.reference is None and xp == "cupy" and (name, "numpy") in _REGISTRY:
        return _REGISTRY[(name, "numpy")].reference  # a GPU kernel equals its CPU twin's reference
    return k.reference


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


def _load_gpu():
    if _GPU_LOADED[0]:
        return
    with _LOAD_LOCK:
        if not _GPU_LOADED[0]:
            for m in GPU_KERNEL_MODULES:
                importlib.import_module(f"minigen.kernels.{m}")
            _GPU_LOADED[0] = True


def kernel_names(xp: str = "numpy"):
    """Registered kernel names for arrays of module ``xp`` (imports those kernel modules)."""
    if xp == "cupy":
        _load_gpu()
    else:
        _load()
    return sorted(n for (n, x) in _REGISTRY if x == xp)


def _array_module(arrays):
    """'numpy' when every array argument is a NumPy array (lists are looked into), else 'cupy'."""
    for a in arrays:
        if isinstance(a, (list, tuple)):  # e.g. the optimizers pass the list of parameter arrays
            if _array_module(a) != "numpy":
                return "cupy"
        elif a is not None and hasattr(a, "shape") and type(a) is not np.ndarray:
            return "cupy"
    return "numpy"


def _lookup(name, arrays, forced):
    xp = _array_module(arrays)
    if xp == "numpy":
        if not available():
            return None
        if not _LOADED[0]:
            _load()
    elif not _GPU_LOADED[0]:
        _load_gpu()
    k = _REGISTRY.get((name, xp))
    if k is None:
        return None
    if k.requires is not None and arrays and not k.requires(*arrays):
        return None
    if xp == "numpy" and not forced and k.worth is not None and arrays and not k.worth(*arrays):
        return None
    return k


def get(name: str, *arrays):
    """The kernel callable for ``name`` given these input arrays, or None (use the reference).

    None when: the mode is 'reference'; there is no kernel of that name for these arrays' module
    (Numba missing counts as none on the CPU); the kernel's ``requires`` rule fails; or (mode 'auto', CPU
    only) its measured ``worth`` threshold fails. Counted in :func:`stats` (GPU kernels as ``"gpu:<name>"``).
    """
    m = _MODE[0]
    if m == "reference":
        return None
    k = _lookup(name, arrays, m == "numba")
    if k is None:
        return None
    _STATS[name if k.xp == "numpy" else "gpu:" + name] += 1
    return k.fn


def applies(name: str, *arrays) -> bool:
    """Whether :func:`get` would hand out the kernel for these arrays (does not count in stats)."""
    return _MODE[0] != "reference" and _lookup(name, arrays, _MODE[0] == "numba") is not None


def stats() -> dict:
    """How many times each kernel was handed out by :func:`get` since the last :func:`reset_stats`."""
    return dict(_STATS)


def reset_stats() -> None:
    _STATS.clear()
