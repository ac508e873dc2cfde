"""minigen: a from-scratch deep-learning engine for generative models.

``import minigen as mg`` gives the Tensor, creation functions, every op as a
function (``mg.exp``, ``mg.matmul``...) and as a Tensor method, autograd
(``mg.grad``, ``mg.no_grad``), and the sub-packages ``mg.nn``, ``mg.optim``,
``mg.data``, ``mg.testing``, ``mg.models``.
"""
__version__ = "0.1.0"

from . import _malloc  # noqa: E402
_malloc.tune()  # freed arrays stay in the process for the next step's arrays (glibc; see minigen/_malloc.py)
from . import errors  # noqa: F401,E402
from . import kernels_loader as _kernels_loader  # noqa: F401  (minigen.kernels: wheel, editable or checkout)
from .kernels.threads import set_num_threads, get_num_threads  # noqa: F401,E402  (PyTorch's names)
from .errors import MinigenError  # noqa: F401
from .backend import Device, get_array_module  # noqa: F401
from .random import Generator, manual_seed, initial_seed, get_rng_state, set_rng_state, default_generator  # noqa: F401
from .tensor import (  # noqa: F401
    Tensor, tensor, as_tensor, from_numpy, zeros, ones, empty, full, zeros_like, ones_like, empty_like,
    full_like, eye, arange, linspace, rand, randn, normal, randint, randperm, rand_like, randn_like,
    randint_like, bernoulli, multinomial, set_default_dtype, get_default_dtype, as_dtype,
    float16, half, float32, float64, double, int8, uint8, int16, int32, int64, long, bool_, short,
    complex64, cfloat, complex128, cdouble, bfloat16,
    FloatTensor, DoubleTensor, HalfTensor, LongTensor, IntTensor, ShortTensor, CharTensor, ByteTensor, BoolTensor,
)
from .tensor import float as float, int as int  # noqa: F401,E402  (mg.float / mg.int as in PyTorch)
from .autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled, inference_mode, grad  # noqa: F401
from . import autograd  # noqa: F401
from . import ops as _ops  # noqa: F401  (attaches Tensor methods)
from ._exports import *  # noqa: F401,F403  (every op as mg.<name>)
bool = bool_  # noqa: A001  mg.bool as in PyTorch

device = Device


def _lazy(name):
    import importlib

    return importlib.import_module(f"{__name__}.{name}")


def __getattr__(name):
    # sub-packages are imported on first use so `import minigen` stays fast
    if name in ("nn", "optim", "data", "testing", "models", "cuda", "cli", "utils", "io", "kernels", "train",
                "backends", "amp", "accelerator", "compiler", "distributed", "recipes"):
        try:
            mod = _lazy(name)
        except ModuleNotFoundError as e:  # hasattr(minigen, x) must answer False, not raise
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'minigen' has no attribute {name!r}") from None
        globals()[name] = mod
        return mod
    if name in ("compile", "autocast", "GradScaler"):
        from . import amp, compiler

        return {"compile": compiler.compile, "autocast": amp.autocast, "GradScaler": amp.GradScaler}[name]
    if name in ("save", "load"):
        from . import io

        return getattr(io, name)
    raise AttributeError(f"module 'minigen' has no attribute {name!r}")
