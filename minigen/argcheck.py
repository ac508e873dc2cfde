"""Argument checks shared by every layer (the one validation module): dims, dtypes, ranks, pairs.

Each check raises a minigen error naming the op, the argument and what it got."""
from __future__ import annotations

import builtins

from .errors import DimError, DTypeError, InvalidArgumentError


def norm_dim(dim, ndim: int, name: str = "dim") -> int:
    """Map a possibly negative ``dim`` into ``[0, ndim)``; DimError when out of range."""
    if not isinstance(dim, builtins.int) or isinstance(dim, builtins.bool):
        try:
            dim = dim.__index__()
        except (AttributeError, TypeError):
            raise DimError(f"{name} must be an int, got {type(dim).__name__}") from None
    n = max(ndim, 1)
    if dim < -n or dim >= n:
        raise DimError(f"{name} {dim} is out of range for a tensor with {ndim} dimension(s) "
                       f"(expected a value in [{-n}, {n - 1}])")
    return dim % n


def norm_dims(dim, ndim: int):
    """``None`` -> all dims; int or sequence -> a sorted tuple of non-negative dims (no repeats)."""
    if dim is None:
        return tuple(range(ndim))
    if ndim == 0:
        # a 0-d tensor accepts dim 0 / -1 (as PyTorch) and reduces over nothing
        for d in (dim if isinstance(dim, (list, tuple)) else (dim,)):
            norm_dim(d, 0)
        return ()
    if isinstance(dim, (list, tuple)):
        dims = tuple(norm_dim(d, ndim) for d in dim)
        if len(set(dims)) != len(dims):
            raise DimError(f"dim {tuple(dim)} names a dimension more than once")
        return tuple(sorted(dims))
    return (norm_dim(dim, ndim),)


def check_float(t, op: str):
    if t.dtype.kind not in "fc":
        raise DTypeError(f"{op} expects a floating point tensor, got dtype {t.dtype}")


def check_int(t, op: str, what: str = "index"):
    if t.dtype.kind not in "iu":
        raise DTypeError(f"{op}: {what} must be an integer tensor, got dtype {t.dtype}")


def check_ndim(t, op: str, allowed, what: str = "input"):
    if t.ndim not in allowed:
        exp = " or ".join(f"{n}-d" for n in allowed)
        raise InvalidArgumentError(f"{op}: expected {what} to be {exp}, got shape {tuple(t.shape)}")


def pair(v, n: int = 2, name: str = "value"):
    """``3 -> (3, 3)``; ``(1, 2) -> (1, 2)``; checks the length."""
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise InvalidArgumentError(f"{name} must be an int or a tuple of {n} ints, got {v!r}")
        return tuple(builtins.int(x) for x in v)
    return (builtins.int(v),) * n
