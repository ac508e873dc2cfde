"""The op modules. Importing this package attaches every op as a Tensor method."""
import importlib as _importlib

# core modules (always present)
from . import shape, elementwise, reduce, linalg  # noqa: F401

# modules filled in by the op set; each defines __all__ and registers Tensor methods
_OPTIONAL = ["pointwise", "activation", "reduction", "manipulation", "indexing", "linalg_extra",
             "norm", "conv", "pool", "attention", "loss", "random_ops"]
loaded = []
for _m in _OPTIONAL:
    try:
        loaded.append(_importlib.import_module(f"{__name__}.{_m}"))
    except ModuleNotFoundError as _e:  # a module that does not exist yet
        if _e.name != f"{__name__}.{_m}":
            raise
