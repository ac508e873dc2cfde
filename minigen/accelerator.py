"""``minigen.accelerator``: PyTorch's device-agnostic accelerator queries (``torch.accelerator``).

minigen's one accelerator type is a CUDA GPU used through CuPy (:mod:`minigen.cuda`). Without one,
``is_available()`` is False, ``current_accelerator()`` is None and ``device_count()`` 0, and the calls
that need a device raise :class:`~minigen.errors.DeviceError`.
"""
from __future__ import annotations

from . import cuda as _cuda
from .backend import Device
from .errors import DeviceError

__all__ = ["is_available", "current_accelerator", "device_count", "current_device_index", "current_device_idx",
           "set_device_index", "set_device_idx", "synchronize", "device_index", "empty_cache", "memory_allocated"]


def is_available() -> bool:
    return _cuda.is_available()


def current_accelerator(check_available: bool = False):
    """``Device('cuda')`` when minigen can use a GPU; else None."""
    return Device("cuda") if _cuda.is_available() else None


def device_count() -> int:
    return _cuda.device_count()


def _need():
    if not _cuda.is_available():
        raise DeviceError("no accelerator is available to minigen (it needs CuPy and an NVIDIA GPU)")


def current_device_index() -> int:
    _need()
    return _cuda.current_device()


current_device_idx = current_device_index


def set_device_index(device) -> None:
    _need()
    _cuda.set_device(device)


set_device_idx = set_device_index


def synchronize(device=None) -> None:
    """Wait for the accelerator's queued work; nothing to wait for without one (returns at once)."""
    if _cuda.is_available():
        _cuda.synchronize(device)


class device_index:
    """``with minigen.accelerator.device_index(i):`` makes GPU i current inside the block (``None``: no change)."""

    def __init__(self, device):
        self.idx = device
        self._ctx = None

    def __enter__(self):
        if self.idx is not None:
            _need()
            self._ctx = _cuda.device(self.idx)
            self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        if self._ctx is not None:
            return self._ctx.__exit__(*exc)
        return False


def empty_cache() -> None:
    if _cuda.is_available():
        _cuda.empty_cache()


def memory_allocated(device=None) -> int:
    return _cuda.memory_allocated(device) if _cuda.is_available() else 0
