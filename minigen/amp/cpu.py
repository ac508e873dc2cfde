"""``torch.cpu.amp`` names: ``autocast(enabled=True, dtype=bfloat16, cache_enabled=True)`` with the CPU implied
(see :mod:`minigen.amp`: a no-op when disabled or float32, an error otherwise) and ``GradScaler``."""
from __future__ import annotations

from . import GradScaler as _GradScaler, autocast as _autocast

__all__ = ["autocast", "GradScaler"]


class autocast(_autocast):
    """``torch.cpu.amp.autocast(enabled=True, dtype=bfloat16, cache_enabled=True)``."""

    def __init__(self, enabled=True, dtype=None, cache_enabled=True):
        super().__init__("cpu", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_GradScaler):
    """``torch.cpu.amp.GradScaler``: as :class:`minigen.amp.GradScaler` on the CPU (only ``enabled=False``)."""

    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                 enabled=True):
        super().__init__("cpu", init_scale, growth_factor, backoff_factor, growth_interval, enabled)
