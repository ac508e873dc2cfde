"""``minigen.amp``: PyTorch's automatic-mixed-precision names, for programs that use them.

minigen has no automatic mixed precision: no op list that autocasts to float16/bfloat16, no loss
scaling. What exists, and why:

- :class:`autocast` with ``enabled=False``, or with ``dtype=float32`` (a float32 program already computes
  in float32), is an exact no-op context manager / decorator. With ``device_type='cuda'`` on a machine
  where minigen has no GPU it warns and disables itself (PyTorch does the same). Any other enabled
  autocast raises :class:`~minigen._unsupported.FeatureUnavailableError`: silently computing in float32
  when float16 was asked for would make timings and memory figures lie. Cast the model and inputs
  explicitly instead (``model.to(dtype)``).
- :class:`GradScaler` with ``enabled=False`` passes everything through (``scale(loss)`` is ``loss``,
  ``step(opt)`` is ``opt.step()``, ``get_scale()`` is 1.0), so the usual
  ``scaler.scale(loss).backward(); scaler.step(opt); scaler.update()`` loop runs unchanged. For
  ``device='cuda'`` without a GPU it warns and disables itself (as PyTorch); enabled otherwise it raises
  :class:`~minigen._unsupported.FeatureUnavailableError`.
- ``custom_fwd`` / ``custom_bwd`` are identity decorators; ``is_autocast_available`` is False.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np

from .._unsupported import FeatureUnavailableError

__all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd", "is_autocast_available", "FeatureUnavailableError"]


def _gpu_available():
    from .. import cuda

    return cuda.is_available()


def _dtype_name(dtype):
    if dtype is None:
        return None
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def is_autocast_available(device_type: str) -> bool:
    """False for every device: minigen has no autocast."""
    return False


class autocast:
    """``with minigen.amp.autocast(device_type, dtype=None, enabled=True, cache_enabled=None):`` (see the module
    docstring: a no-op when disabled or float32, an error when it would have to change precision)."""

    def __init__(self, device_type="cpu", dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise FeatureUnavailableError(f"autocast: device_type must be a string like 'cpu' or 'cuda', "
                                          f"got {type(device_type).__name__}")
        self.device = device_type
        self.fast_dtype = dtype
        self._enabled = bool(enabled)
        if self._enabled and device_type.split(":")[0] == "cuda" and not _gpu_available():
            warnings.warn("minigen.amp.autocast: device_type 'cuda' but no GPU is available to minigen; "
                          "disabling autocast", stacklevel=2)
            self._enabled = False
        if self._enabled and _dtype_name(dtype) != "float32":
            want = _dtype_name(dtype) or ("bfloat16" if device_type == "cpu" else "float16")
            raise FeatureUnavailableError(
                f"minigen has no automatic mixed precision: autocast(device_type={device_type!r}, dtype={want}) "
                "would need per-op casting rules. Use enabled=False (or dtype=float32, a no-op), or cast the "
                "model and inputs yourself with .to(dtype)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        return wrapper


def custom_fwd(fwd=None, *, device_type="cpu", cast_inputs=None):
    """Identity decorator (there is no autocast state to save or restore)."""
    if fwd is None:
        return lambda f: f
    return fwd


def custom_bwd(bwd=None, *, device_type="cpu"):
    """Identity decorator."""
    if bwd is None:
        return lambda f: f
    return bwd


class GradScaler:
    """Loss scaling for float16 training, PyTorch's interface; only ``enabled=False`` is available (see the
    module docstring). Disabled, every method passes through and ``get_scale()`` is 1.0."""

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        self._device = str(device)
        self._enabled = bool(enabled)
        if self._enabled and self._device.split(":")[0] == "cuda" and not _gpu_available():
            warnings.warn("minigen.amp.GradScaler is enabled, but no GPU is available to minigen; disabling",
                          stacklevel=2)
            self._enabled = False
        if self._enabled:
            raise FeatureUnavailableError(
                f"minigen has no loss scaling: GradScaler(device={self._device!r}, enabled=True) is not available. "
                "Train in float32 (no scaler needed) and construct it with enabled=False")
        self._init_scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)

    def is_enabled(self) -> bool:
        return self._enabled

    def scale(self, outputs):
        """The outputs, unscaled (disabled scaler)."""
        return outputs

    def unscale_(self, optimizer) -> None:
        """Nothing to unscale."""

    def step(self, optimizer, *args, **kwargs):
        """``optimizer.step(*args, **kwargs)``; its return value."""
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None) -> None:
        """Nothing to update."""

    def get_scale(self) -> float:
        return 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def state_dict(self) -> dict:
        """``{}`` for a disabled scaler (as PyTorch)."""
        return {}

    def load_state_dict(self, state_dict) -> None:
        if state_dict:
            raise FeatureUnavailableError("GradScaler.load_state_dict: this minigen scaler is disabled and cannot "
                                          "restore the state of an enabled (loss-scaling) one")
