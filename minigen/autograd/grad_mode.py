"""Grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled`` (context managers and decorators)."""
from __future__ import annotations

import functools


class _State:
    __slots__ = ("enabled", "anomaly")

    def __init__(self):
        self.enabled = True
        self.anomaly = False


STATE = _State()


def is_grad_enabled() -> bool:
    return STATE.enabled


class set_grad_enabled:
    """``with mg.set_grad_enabled(False): ...`` — also usable as a plain call or decorator."""

    def __init__(self, mode: bool):
        self.prev = STATE.enabled
        self.mode = bool(mode)
        STATE.enabled = self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        STATE.enabled = self.prev
        return False

    def __call__(self, fn):
        mode = self.mode
        STATE.enabled = self.prev  # used as a decorator: undo the eager switch

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with set_grad_enabled(mode):
                return fn(*a, **k)

        return wrapper


class _GradModeContext:
    mode = True

    def __enter__(self):
        self.prev = STATE.enabled
        STATE.enabled = self.mode
        return self

    def __exit__(self, *exc):
        STATE.enabled = self.prev
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*a, **k):
            prev = STATE.enabled
            STATE.enabled = mode
            try:
                return fn(*a, **k)
            finally:
                STATE.enabled = prev

        return wrapper


class no_grad(_GradModeContext):
    """Disable graph recording: ops return tensors with ``requires_grad=False``."""

    mode = False


class enable_grad(_GradModeContext):
    """Re-enable graph recording inside a ``no_grad`` block."""

    mode = True


inference_mode = no_grad
