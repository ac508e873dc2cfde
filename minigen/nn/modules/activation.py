"""Activations as modules: each one calls the function of the same name in
``minigen.nn.functional`` (whose docstring has the formula and its derivative).

``MultiheadAttention`` lives in :mod:`minigen.nn.modules.transformer`.
"""
from __future__ import annotations

from .. import functional as F
from .. import init
from ...argcheck import check_device, check_float_dtype, check_number, check_size
from ._common import new_param
from .module import Module

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh",
           "Softplus", "Softsign", "Tanhshrink", "Hardtanh", "Hardsigmoid", "Hardswish", "LogSigmoid", "Threshold",
           "GLU", "Softmax", "LogSoftmax", "Softmin"]


class _Inplace(Module):
    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_Inplace):
    """y = max(x, 0)."""

    def forward(self, x):
        return F.relu(x, inplace=self.inplace)


class ReLU6(_Inplace):
    """y = min(max(x, 0), 6)."""

    def forward(self, x):
        return F.relu6(x, inplace=self.inplace)


class SiLU(_Inplace):
    """y = x * sigmoid(x)  (a.k.a. swish)."""

    def forward(self, x):
        return F.silu(x, inplace=self.inplace)


class Mish(_Inplace):
    """y = x * tanh(softplus(x))."""

    def forward(self, x):
        return F.mish(x, inplace=self.inplace)


class SELU(_Inplace):
    """y = scale * (max(0, x) + min(0, alpha * (exp(x) - 1)))."""

    def forward(self, x):
        return F.selu(x, inplace=self.inplace)


class Hardsigmoid(_Inplace):
    """y = relu6(x + 3) / 6."""

    def forward(self, x):
        return F.hardsigmoid(x, inplace=self.inplace)


class Hardswish(_Inplace):
    """y = x * relu6(x + 3) / 6."""

    def forward(self, x):
        return F.hardswish(x, inplace=self.inplace)


class LeakyReLU(Module):
    """y = x if x >= 0 else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope, inplace=self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class PReLU(Module):
    """y = x if x >= 0 else a * x, with a learnable ``weight`` a of shape (num_parameters,)
    (one slope, or one per channel = dim 1), initialised to ``init``."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = check_size(num_parameters, "PReLU", "num_parameters", minimum=1)
        self.init = check_number(init, "PReLU", "init")
        check_float_dtype(dtype, "PReLU")
        check_device(device, "PReLU")
        self.weight = new_param(num_parameters, dtype=dtype, device=device)
        self.reset_parameters()

    def reset_parameters(self):
        init.constant_(self.weight, self.init)

    def forward(self, x):
        if hasattr(F, "prelu"):
            return F.prelu(x, self.weight)
        w = self.weight
        if self.num_parameters > 1:
            w = w.reshape((self.num_parameters,) + (1,) * (x.ndim - 2))
        return F.relu(x) - w * F.relu(-x)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class ELU(Module):
    """y = x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x):
        return F.elu(x, self.alpha, inplace=self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(Module):
    """y = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x):
        return F.celu(x, self.alpha, inplace=self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """y = x * Phi(x) (Phi: the standard normal CDF), or its tanh approximation with ``approximate='tanh'``:
    y = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).

    Deliberate difference from PyTorch: ``gelu(+inf) = +inf`` in both forms (the limit of x * Phi(x)); PyTorch's
    exact form returns NaN there (its tanh form returns inf). ``gelu(-inf)`` is NaN in both libraries.
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x))."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, x):
        return F.tanh(x)


class Softsign(Module):
    """y = x / (1 + |x|)."""

    def forward(self, x):
        return F.softsign(x)


class Tanhshrink(Module):
    """y = x - tanh(x)."""

    def forward(self, x):
        return F.tanhshrink(x)


class LogSigmoid(Module):
    """y = log(sigmoid(x))."""

    def forward(self, x):
        return F.logsigmoid(x)


class Softplus(Module):
    """y = log(1 + exp(beta * x)) / beta  (y = x where beta * x > threshold)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """y = clamp(x, min_val, max_val)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val, inplace=self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class Threshold(Module):
    """y = x if x > threshold else value."""

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, x):
        return F.threshold(x, self.threshold, self.value, inplace=self.inplace)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + (", inplace=True" if self.inplace else "")


class GLU(Module):
    """y = a * sigmoid(b) where (a, b) = x split in half along ``dim``."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.glu(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class _DimModule(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_DimModule):
    """y_i = exp(x_i) / sum_j exp(x_j) along ``dim``."""

    def forward(self, x):
        return F.softmax(x, dim=self.dim)


class LogSoftmax(_DimModule):
    """y_i = x_i - log sum_j exp(x_j) along ``dim``."""

    def forward(self, x):
        return F.log_softmax(x, dim=self.dim)


class Softmin(_DimModule):
    """y = softmax(-x) along ``dim``."""

    def forward(self, x):
        return F.softmin(x, dim=self.dim)


def __getattr__(name):
    # PyTorch defines MultiheadAttention in torch/nn/modules/activation.py; minigen's lives with the other
    # attention blocks in transformer.py (which imports this module, hence the lazy lookup)
    if name == "MultiheadAttention":
        from .transformer import MultiheadAttention

        return MultiheadAttention
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
