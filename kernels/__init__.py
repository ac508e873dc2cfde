"""Compute kernels, installed as ``minigen.kernels``: Numba for the CPU (``cpu_*``), CuPy for the GPU (``gpu_*``).

A kernel knows nothing of Tensors: it takes and returns arrays. The op modules
in ``minigen.ops`` choose a kernel through :mod:`minigen.kernels.dispatch` and
fall back to their NumPy reference otherwise.
"""
