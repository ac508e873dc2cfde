"""Optional fused optimizer kernels (``minigen.kernels``, Numba) behind the kernel dispatch switch.

``fused_kernel(name, params)`` returns the kernel callable when the kernels package is present,
the dispatch mode allows it and the kernel applies to these parameter arrays; otherwise None and
the optimizer runs its reference per-parameter ``_update`` (the formula in its docstring).
"""
from __future__ import annotations


def fused_kernel(name, params):
    try:
        from ..kernels import dispatch
    except Exception:  # no kernels package (or no Numba): reference path
        return None
    get = getattr(dispatch, "get", None)
    if get is None:
        return None
    try:
        return get(name, [p.array for p in params])
    except Exception:
        return None
