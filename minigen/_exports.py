"""Collect every op module's ``__all__`` so ops are available as ``mg.<name>``."""
from .ops import shape as _shape, elementwise as _ew, reduce as _red, linalg as _la, loaded as _loaded

__all__ = []
for _m in [_shape, _ew, _red, _la] + list(_loaded):
    for _n in getattr(_m, "__all__", ()):
        globals()[_n] = getattr(_m, _n)
        __all__.append(_n)
