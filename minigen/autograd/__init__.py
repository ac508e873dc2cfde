"""Reverse-mode automatic differentiation (see engine.py and function.py)."""
from .grad_mode import no_grad, enable_grad, set_grad_enabled, is_grad_enabled, inference_mode  # noqa: F401
from .function import Function, Context, NonDifferentiable  # noqa: F401
from .engine import backward, grad  # noqa: F401
from .anomaly import detect_anomaly, set_detect_anomaly, is_anomaly_enabled  # noqa: F401
from .graph import to_dot  # noqa: F401
