"""``minigen.backends``: PyTorch's ``torch.backends`` flags, for programs that set them.

minigen has no cuDNN, MPS, oneDNN or OpenMP backends to configure: its CPU path is NumPy/BLAS +
Numba, its GPU path CuPy. The flags exist so that lines such as
``torch.backends.cudnn.benchmark = True`` or ``torch.backends.cuda.matmul.allow_tf32 = True`` run
unchanged; they are stored and read back but change nothing (minigen's CPU results are already
deterministic, and it never computes in TF32). The ``is_available()`` queries answer honestly
(False for cuDNN, MPS, oneDNN).

- :mod:`.cudnn`: ``enabled``, ``benchmark``, ``deterministic``, ``allow_tf32``, ``flags(...)``, ``is_available()``;
- :mod:`.cuda`: ``matmul.allow_tf32``, the SDPA backend switches, ``is_built()``;
- :mod:`.mps`, :mod:`.mkldnn`, :mod:`.openmp`: ``is_available()`` / ``is_built()``;
- :mod:`.cpu`: ``get_cpu_capability()`` (the vector ISA NumPy and Numba can use here).
"""
from . import cpu, cuda, cudnn, mkldnn, mps, openmp  # noqa: F401

__all__ = ["cpu", "cuda", "cudnn", "mkldnn", "mps", "openmp"]
