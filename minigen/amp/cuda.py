"""``torch.cuda.amp`` names (``autocast``, ``GradScaler``) with their CUDA-implied signatures, for
``minigen.cuda.amp``. Same behaviour as :mod:`minigen.amp` with ``device_type='cuda'``: without a GPU they
warn and disable themselves (as PyTorch does); enabled on a GPU they raise
:class:`~minigen._unsupported.FeatureUnavailableError` (minigen has no mixed precision)."""
from __future__ import annotations

import numpy as np

from . import GradScaler as _GradScaler, autocast as _autocast, custom_bwd, custom_fwd  # noqa: F401

__all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd"]


class autocast(_autocast):
    """``torch.cuda.amp.autocast(enabled=True, dtype=float16, cache_enabled=True)``."""

    def __init__(self, enabled=True, dtype=np.float16, cache_enabled=True):
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_GradScaler):
    """``torch.cuda.amp.GradScaler(init_scale=2**16, growth_factor=2, backoff_factor=0.5, growth_interval=2000,
    enabled=True)``."""

    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                 enabled=True):
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)
