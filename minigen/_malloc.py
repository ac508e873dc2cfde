"""Keep freed array memory in the process for the next array, instead of handing it back to the OS (glibc).

A training step allocates and frees the same activation-sized arrays every step. With glibc's default tuning
a freed block above the (dynamic) mmap threshold is unmapped, and the next array of that size page-faults
its memory in again, 4 KB at a time: measured on the 2-core Xeon of the benchmarks, the baby-GPT step took
~8,200 minor page faults per step (~12 ms of a ~65 ms step) and the DCGAN step ~11,900. With blocks up to
64 MB served from the heap (``M_MMAP_THRESHOLD``) and up to 512 MB of free heap top kept (``M_TRIM_THRESHOLD``),
the same steps take ~1 and ~18 faults and run 17 % and 9 % faster, with the same peak RSS: the memory is
reused, not added (numbers in benchmarks/results/notes.md).

The tuning is process-wide (every library in the process allocates through the same malloc) and applied once,
when minigen is imported. It is skipped where the C library is not glibc, when ``MINIGEN_MALLOC_TUNING=0``, and
when the user tuned glibc already (``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` /
``GLIBC_TUNABLES`` in the environment).
"""
from __future__ import annotations

import os
import platform

MMAP_THRESHOLD = 64 * 1024 * 1024
TRIM_THRESHOLD = 512 * 1024 * 1024
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)

applied = False  # True once the tuning is in effect in this process


def tune() -> bool:
    """Apply the tuning (see the module docstring) unless opted out; returns whether it is in effect."""
    global applied
    if applied:
        return True
    if os.environ.get("MINIGEN_MALLOC_TUNING", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        applied = False
    return applied
