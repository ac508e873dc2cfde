"""``torch.backends.cudnn`` flags: stored, read back, no effect (minigen does not call cuDNN).

``enabled`` / ``benchmark`` / ``deterministic`` / ``allow_tf32`` start at PyTorch's defaults
(True / False / False / True). ``is_available()`` is False and ``version()`` None.
"""
from __future__ import annotations

import contextlib

__all__ = ["enabled", "benchmark", "deterministic", "allow_tf32", "benchmark_limit", "is_available", "version",
           "flags", "is_acceptable"]

enabled = True
benchmark = False
benchmark_limit = 10
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """False: minigen's GPU path (CuPy + its own kernels) does not use cuDNN."""
    return False


def version():
    """None (no cuDNN library is loaded)."""
    return None


def is_acceptable(tensor) -> bool:
    return False


@contextlib.contextmanager
def flags(enabled=False, benchmark=False, benchmark_limit=10, deterministic=False, allow_tf32=True):
    """Set the flags inside a ``with`` block and restore them after (no effect on computation)."""
    g = globals()
    names = ("enabled", "benchmark", "benchmark_limit", "deterministic", "allow_tf32")
    old = {k: g[k] for k in names}
    g.update(enabled=enabled, benchmark=benchmark, benchmark_limit=benchmark_limit, deterministic=deterministic,
             allow_tf32=allow_tf32)
    try:
        yield
    finally:
        g.update(old)
