"""``torch.backends.cuda`` switches: ``matmul.allow_tf32`` and the scaled-dot-product-attention backend
flags are stored and read back but change nothing (minigen never computes in TF32 and has one SDPA
implementation per device). ``is_built()`` says whether minigen can use a CUDA GPU (CuPy + a device)."""
from __future__ import annotations

__all__ = ["is_built", "matmul", "enable_flash_sdp", "flash_sdp_enabled", "enable_mem_efficient_sdp",
           "mem_efficient_sdp_enabled", "enable_math_sdp", "math_sdp_enabled", "enable_cudnn_sdp",
           "cudnn_sdp_enabled", "preferred_linalg_library"]


class _Matmul:
    """``torch.backends.cuda.matmul``: ``allow_tf32`` (default False), ``allow_fp16_reduced_precision_reduction``
    and ``allow_bf16_reduced_precision_reduction`` (default True), stored only."""

    def __init__(self):
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True

    def __repr__(self):
        return f"<minigen.backends.cuda.matmul allow_tf32={self.allow_tf32} (no effect in minigen)>"


matmul = _Matmul()
_sdp = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def is_built() -> bool:
    from .. import cuda as _cuda

    return _cuda.is_available()


def enable_flash_sdp(enabled: bool) -> None:
    _sdp["flash"] = bool(enabled)


def flash_sdp_enabled() -> bool:
    return _sdp["flash"]


def enable_mem_efficient_sdp(enabled: bool) -> None:
    _sdp["mem_efficient"] = bool(enabled)


def mem_efficient_sdp_enabled() -> bool:
    return _sdp["mem_efficient"]


def enable_math_sdp(enabled: bool) -> None:
    _sdp["math"] = bool(enabled)


def math_sdp_enabled() -> bool:
    return _sdp["math"]


def enable_cudnn_sdp(enabled: bool) -> None:
    _sdp["cudnn"] = bool(enabled)


def cudnn_sdp_enabled() -> bool:
    return _sdp["cudnn"]


def preferred_linalg_library(backend=None):
    """Accepted and ignored (CuPy chooses); returns ``'default'``."""
    return "default"
