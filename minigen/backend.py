"""Array backends: one array module (``xp``) per tensor.

A Tensor holds a NumPy array (device ``cpu``) or a CuPy array (device ``cuda``
/ ``cuda:N``). Code that touches arrays asks :func:`get_array_module` for the
module instead of branching on the device. CuPy is imported lazily and only
when a CUDA device is asked for, so the CPU path never needs it.
"""
from __future__ import annotations

import numpy as np

from .errors import DeviceError

_cupy = None
_cupy_checked = False


def cupy_module():
    """Return the ``cupy`` module, or None when CuPy (or a GPU) is unavailable."""
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy  # noqa: F401

            if cupy.cuda.runtime.getDeviceCount() > 0:
                _cupy = cupy
        except Exception:  # ImportError, CUDA driver errors, ...
            _cupy = None
    return _cupy


class Device:
    """A device: ``Device("cpu")``, ``Device("cuda")``, ``Device("cuda:1")``."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise DeviceError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
        s = spec.strip().lower()
        if ":" in s:
            s, _, idx = s.partition(":")
            try:
                index = int(idx)
            except ValueError:
                raise DeviceError(f"bad device index in {spec!r}") from None
        if s not in ("cpu", "cuda"):
            raise DeviceError(f"unknown device {spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        if s == "cpu":
            index = None
        elif index is None:
            index = 0
        self.type, self.index = s, index

    def __eq__(self, other):
        if isinstance(other, str):
            other = Device(other)
        return isinstance(other, Device) and self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device({str(self)!r})"


CPU = Device("cpu")


def as_device(device) -> Device:
    if device is None:
        return CPU
    if isinstance(device, Device):
        return device
    return Device(device)


def xp_for_device(device) -> "module":
    """The array module for a device; raises DeviceError when CUDA is not usable."""
    d = as_device(device)
    if d.type == "cpu":
        return np
    cp = cupy_module()
    if cp is None:
        raise DeviceError(
            f"device {d} was requested but CUDA is not available "
            "(install minigen[gpu] with a CuPy wheel and run on a machine with an NVIDIA GPU)"
        )
    return cp


def get_array_module(arr):
    """``numpy`` for NumPy arrays, ``cupy`` for CuPy arrays."""
    if isinstance(arr, np.ndarray) or _cupy is None:
        return np
    return _cupy.get_array_module(arr)


def device_of_array(arr) -> Device:
    if isinstance(arr, np.ndarray) or _cupy is None or not isinstance(arr, _cupy.ndarray):
        return CPU
    return Device("cuda", arr.device.id)


def to_numpy(arr):
    """Host copy (or the array itself) as a NumPy array."""
    if isinstance(arr, np.ndarray):
        return arr
    if _cupy is not None and isinstance(arr, _cupy.ndarray):
        return _cupy.asnumpy(arr)
    return np.asarray(arr)


def move_array(arr, device):
    """Copy ``arr`` to ``device`` (returns ``arr`` itself when it is already there)."""
    d = as_device(device)
    if d.type == "cpu":
        return to_numpy(arr)
    cp = xp_for_device(d)
    if d.index >= cp.cuda.runtime.getDeviceCount():
        raise DeviceError(f"device {d} does not exist: this machine has {cp.cuda.runtime.getDeviceCount()} GPU(s)")
    with cp.cuda.Device(d.index):
        if isinstance(arr, cp.ndarray):
            # cupy.asarray keeps an array on the GPU it is on; copy() copies to the current device
            return arr if arr.device.id == d.index else arr.copy()
        return cp.asarray(arr)


def device_scope(device):
    """``with device_scope(d):`` makes GPU ``d`` current (a no-op context for the CPU)."""
    import contextlib

    d = as_device(device)
    if d.type == "cpu":
        return contextlib.nullcontext()
    return xp_for_device(d).cuda.Device(d.index)
