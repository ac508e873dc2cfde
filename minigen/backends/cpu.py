"""``torch.backends.cpu.get_cpu_capability()``: the widest x86 vector ISA this CPU offers ('AVX512', 'AVX2',
or 'DEFAULT' elsewhere), read from the CPU flags (what NumPy's BLAS and Numba's LLVM can use here)."""
from __future__ import annotations

__all__ = ["get_cpu_capability", "cpu_flags"]


def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (a set), or None where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return set()


def get_cpu_capability() -> str:
    flags = cpu_flags()
    if flags is None:
        return "DEFAULT"
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "AVX512"
    if {"avx2", "fma"} <= flags:
        return "AVX2"
    return "DEFAULT"
