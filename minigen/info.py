"""``minigen info``: versions, kernel backend, devices and threads (who owns the cores: the thread budget,
the kernel pool, BLAS with its library, version and thread count), as a dict or as text."""
from __future__ import annotations

import os
import platform
import sys

__all__ = ["collect", "format_info"]


def _version(dist_name):
    """Installed version from the package metadata (no import: importing torch alone takes seconds)."""
    from importlib import metadata

    try:
        return metadata.version(dist_name)
    except metadata.PackageNotFoundError:
        return None


def _blas():
    try:
        import numpy as np

        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        return None


def _cuda():
    """(available, description) of CuPy/CUDA, without failing when either is missing."""
    try:
        import cupy
    except Exception:
        return False, "CuPy not installed"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return False, f"CuPy {cupy.__version__} installed, no usable CUDA device ({type(e).__name__})"
    if n == 0:
        return False, f"CuPy {cupy.__version__} installed, 0 CUDA devices"
    names = []
    for i in range(n):
        try:
            props = cupy.cuda.runtime.getDeviceProperties(i)
            name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
            names.append(f"cuda:{i} {name} ({props['totalGlobalMem'] / 2**30:.0f} GiB)")
        except Exception:
            names.append(f"cuda:{i}")
    return True, f"CuPy {cupy.__version__}, " + "; ".join(names)


def collect() -> dict:
    """Everything ``minigen info`` prints, as a JSON-able dict."""
    import minigen

    info = {
        "minigen": minigen.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": _version("numpy"),
        "blas": _blas(),
        "numba": _version("numba"),
        "safetensors": _version("safetensors"),
        "torch (optional oracle)": _version("torch"),
        "cpu_count": os.cpu_count(),
    }
    try:
        from minigen.kernels import dispatch

        info["kernels_mode"] = dispatch.mode()
        info["kernels_backend"] = "numba" if dispatch.available() else "numpy reference (Numba not importable)"
        from minigen.kernels import threads as _threads  # not dispatch.num_threads(): no Numba threading layer

        info["kernel_threads"] = _threads.kernel_threads() if dispatch.available() else 1
    except Exception as e:  # the kernels package may be absent in a stripped install
        info["kernels_mode"] = None
        info["kernels_backend"] = f"numpy reference ({type(e).__name__}: kernels unavailable)"
        info["kernel_threads"] = None
    try:  # who owns the cores (minigen.kernels.threads): the budget, the kernel pool, BLAS
        from minigen.kernels import threads

        info.update(threads.owners())
    except Exception as e:
        info["threads"] = f"unknown ({type(e).__name__})"
    from minigen import _malloc

    info["malloc_tuning"] = (f"on (arrays up to {_malloc.MMAP_THRESHOLD >> 20} MB reused from the heap; "
                             "MINIGEN_MALLOC_TUNING=0 turns it off)") if _malloc.applied else "off"
    for var in ("MINIGEN_KERNELS", "MINIGEN_MALLOC_TUNING", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "MINIGEN_DATA"):
        info[var] = os.environ.get(var)
    ok, desc = _cuda()
    info["cuda_available"] = ok
    info["cuda"] = desc
    try:
        from minigen.data.mnist import data_root

        info["data_root"] = data_root()
    except Exception:
        info["data_root"] = None
    info["executable"] = sys.executable
    return info


def format_info(info: dict) -> str:
    width = max(len(k) for k in info)
    return "\n".join(f"{k:<{width}}  {'-' if v is None else v}" for k, v in info.items())
