"""Argument checks shared by every layer (the one validation module): dims, dtypes, ranks, pairs.

Each check raises a minigen error naming the op, the argument and what it got."""
from __future__ import annotations

import builtins

import numpy as np

from .errors import DimError, DTypeError, InvalidArgumentError, MinigenError, ShapeError


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


def brief(v) -> str:
    """A short description of an argument for an error message: its repr, or its type (and shape/dtype)."""
    if isinstance(v, (builtins.int, builtins.float, builtins.bool, str, type(None))):
        return repr(v)
    if isinstance(v, type):
        return f"the class {v.__name__}"
    if hasattr(v, "shape") and hasattr(v, "dtype") and isinstance(getattr(v, "shape", None), tuple):
        return f"{type(v).__name__}(shape={tuple(v.shape)}, dtype={v.dtype})"
    return type(v).__name__


def check_int_value(v, op: str, name: str) -> int:
    """A Python/NumPy integer (not a bool), returned as an int."""
    if isinstance(v, (builtins.int, np.integer)) and not isinstance(v, builtins.bool):
        return builtins.int(v)
    raise InvalidArgumentError(f"{op}: {name} must be an int, got {brief(v)}")


def check_ints(v, n: int, op: str, name: str, minimum=None) -> tuple:
    """An int or a sequence of ``n`` ints (no bools), each >= ``minimum`` -> a tuple of ``n`` Python ints
    (``3 -> (3, 3)``): the stride / padding / dilation / kernel_size arguments of convolution and pooling."""
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v,) * n
    if len(vals) != n or not all(isinstance(e, (builtins.int, np.integer)) and not isinstance(e, builtins.bool)
                                 for e in vals):
        raise InvalidArgumentError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v!r}")
    vals = tuple(builtins.int(e) for e in vals)
    if minimum is not None and any(e < minimum for e in vals):
        raise InvalidArgumentError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return vals


def check_dtype(dtype, op: str):
    """A real dtype argument (mg.float32, 'float64', np.int64, ...) as a NumPy dtype; DTypeError otherwise."""
    from .tensor import as_dtype

    try:
        dt = None if isinstance(dtype, (builtins.int, builtins.float, tuple, list, dict)) else as_dtype(dtype)
    except (TypeError, ValueError, DTypeError):
        dt = None
    if dt is None or dt.kind not in "biuf":
        raise DTypeError(f"{op}: dtype must be a dtype such as mg.float32, got {brief(dtype)}")
    return dt


# ------------------------------------------------------------------ checks of functional-op arguments
def check_tensor(x, op: str, name: str = "input", allow_none: bool = False):
    """``x`` itself when it is a Tensor (or None with ``allow_none``); else a DTypeError naming ``op``."""
    from .tensor import Tensor

    if x is None and allow_none:
        return None
    if not isinstance(x, Tensor):
        raise DTypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    return x


def check_float_tensor(x, op: str, name: str = "input", allow_none: bool = False):
    """``x`` itself when it is a floating point Tensor (or None with ``allow_none``)."""
    x = check_tensor(x, op, name, allow_none)
    if x is not None and x.dtype.kind != "f":
        raise DTypeError(f"{op}: {name} must be a floating point tensor, got dtype {x.dtype}")
    return x


def check_number(v, op: str, name: str, lo=None, hi=None, allow_none: bool = False):
    """A real number (bool excluded; a 0-d tensor is read) within [lo, hi]; returned as a float. NaN is refused
    (PyTorch accepts e.g. ``Dropout(nan)`` and computes with it; minigen says so at once)."""
    import math
    import numbers

    from .tensor import Tensor

    if v is None and allow_none:
        return None
    if isinstance(v, Tensor) and v.array.size == 1 and v.ndim == 0:
        v = v.item()
    if isinstance(v, builtins.bool) or not isinstance(v, numbers.Real):
        raise InvalidArgumentError(f"{op}: {name} must be a real number, got {type(v).__name__}")
    v = builtins.float(v)
    if math.isnan(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise InvalidArgumentError(f"{op}: {name} must be in {rng}, got {v}")
    return v


def check_flag(v, op: str, name: str) -> bool:
    """A bool flag (Python/NumPy bool or an int used as one); returned as a Python bool."""
    import numbers

    import numpy as np

    if not isinstance(v, (builtins.bool, np.bool_, numbers.Integral)):
        raise InvalidArgumentError(f"{op}: {name} must be a bool, got {type(v).__name__}")
    return builtins.bool(v)


def check_generator(generator, op: str):
    """``generator`` when it is a minigen.Generator or None."""
    from .random import Generator

    if generator is not None and not isinstance(generator, Generator):
        raise InvalidArgumentError(f"{op}: generator must be a minigen.Generator or None, "
                                   f"got {type(generator).__name__}")
    return generator


def same_device(op: str, *ts):
    """DeviceError naming every tensor's shape and device when the Tensors among ``ts`` do not share one."""
    from .errors import DeviceError
    from .tensor import Tensor

    ts = [t for t in ts if isinstance(t, Tensor)]
    for t in ts[1:]:
        if type(t.array) is not type(ts[0].array):
            raise DeviceError(f"{op}: tensors on different devices: " +
                              ", ".join(f"shape {tuple(u.shape)} on {u.device}" for u in ts))


# ------------------------------------------------------------------ checks of layer-constructor arguments
def _is_int(v) -> bool:
    return isinstance(v, (builtins.int, np.integer)) and not isinstance(v, (builtins.bool, np.bool_))


def check_size(v, op: str, name: str, minimum: int = 0) -> int:
    """A size or count (``in_features``, ``num_layers``, ``upscale_factor`` ...): a Python/NumPy int, not a
    bool, float, None or string, ``>= minimum``; returned as an int (PyTorch: ``Linear(2.5, 3)`` raises)."""
    if not _is_int(v):
        raise InvalidArgumentError(f"{op}: {name} must be an int, got {brief(v)}")
    if v < minimum:
        raise InvalidArgumentError(f"{op}: {name} must be >= {minimum}, got {v}")
    return builtins.int(v)


def check_shape(v, op: str, name: str, minimum: int = 0) -> tuple:
    """An int or a sequence of ints each ``>= minimum`` (``normalized_shape``, ``unflattened_size``) -> a tuple."""
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if not all(_is_int(e) for e in vals):
        raise InvalidArgumentError(f"{op}: {name} must be an int or a sequence of ints, got {brief(v)}"
                                   + (f" {v!r}" if isinstance(v, (tuple, list)) else ""))
    if any(e < minimum for e in vals):
        raise InvalidArgumentError(f"{op}: {name} entries must be >= {minimum}, got {tuple(vals)}")
    return tuple(builtins.int(e) for e in vals)


def check_float_dtype(dtype, op: str, allow_none: bool = True):
    """A floating point dtype argument (a layer's ``dtype=``), or None; returned as a NumPy dtype or None."""
    if dtype is None and allow_none:
        return None
    dt = check_dtype(dtype, op)
    if dt.kind != "f":
        raise DTypeError(f"{op}: dtype must be a floating point dtype, got {dt}")
    return dt


def check_device(device, op: str):
    """A device argument: None, a string such as 'cpu'/'cuda:0', or a minigen Device (checked to exist)."""
    from .backend import Device

    if device is None:
        return None
    if not isinstance(device, (str, Device)):
        raise InvalidArgumentError(f"{op}: device must be a string such as 'cpu' or a minigen.device, "
                                   f"got {brief(device)}")
    try:
        return Device(device) if isinstance(device, str) else device
    except MinigenError:
        raise
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"{op}: invalid device {device!r}: {e}") from None


def check_choice(v, op: str, name: str, choices):
    """``v`` when it is one of ``choices`` (compared with ==, strings only when the choices are strings)."""
    if isinstance(v, (list, dict, set)) or not any(type(v) is type(c) and v == c for c in choices):
        raise InvalidArgumentError(f"{op}: {name} must be one of {', '.join(map(repr, choices))}, got {brief(v)}")
    return v


def check_callable(v, op: str, name: str, allow_none: bool = False):
    """``v`` when it is callable (or None with ``allow_none``)."""
    if (v is None and allow_none) or callable(v):
        return v
    raise InvalidArgumentError(f"{op}: {name} must be callable, got {brief(v)}")


def check_probability(p, op: str, name: str = "p") -> float:
    """A probability in [0, 1] (dropout's ``p``): a real number, not NaN, not a bool."""
    return check_number(p, op, name, 0.0, 1.0)


def check_fits_memory(n_elements: int, itemsize: int, op: str, what: str) -> None:
    """ShapeError when ``n_elements`` of ``itemsize`` bytes exceed this machine's physical memory: a layer
    that builds its parameters in a loop (``RNN(num_layers=2**40)``) refuses at once instead of allocating
    until the process dies."""
    import os

    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        ram = 1 << 46
    need = builtins.int(n_elements) * builtins.int(itemsize)
    if need > ram:
        raise ShapeError(f"{op}: {what} needs {need / 2 ** 30:.3g} GiB, more than this machine's "
                         f"{ram / 2 ** 30:.3g} GiB of memory")


def check_iterable(v, op: str, name: str) -> list:
    """``list(v)`` for an iterable argument (a list of modules, of parameters, of milestones ...); a string,
    bytes or a non-iterable is an InvalidArgumentError naming what it got."""
    if isinstance(v, (str, bytes)):
        raise InvalidArgumentError(f"{op}: {name} must be an iterable (a list or tuple), got {brief(v)}")
    try:
        return list(v)
    except TypeError:
        raise InvalidArgumentError(f"{op}: {name} must be an iterable (a list or tuple), got {brief(v)}") from None


def check_view_shape(shape: tuple, op: str, numel: int) -> tuple:
    """A target shape for reshape/view: non-negative sizes and at most one ``-1`` (inferred); another
    negative size is a ShapeError (NumPy would read any negative size as "infer")."""
    bad = [s for s in shape if s < -1]
    if bad or list(shape).count(-1) > 1:
        raise ShapeError(f"{op}: invalid shape {tuple(shape)} for a tensor of {numel} elements (sizes must be "
                         f">= 0, with at most one -1 to infer)")
    return shape


# more pieces than this, beyond the size of the dim split (all the extra ones empty), is refused
MAX_EMPTY_PIECES = 1 << 16


def check_piece_count(k: int, n: int, op: str, name: str) -> int:
    """The number of pieces a split makes (``tensor_split(sections)``, ``chunk``): positive, and not more
    than ``n + MAX_EMPTY_PIECES`` for a dim of size ``n`` (each piece is a Tensor object; ``2**40`` of them,
    nearly all empty, would never finish)."""
    if k <= 0:
        raise InvalidArgumentError(f"{op}: {name} must be positive, got {k}")
    if k > n + MAX_EMPTY_PIECES:
        raise InvalidArgumentError(f"{op}: {name}={k} would make {k} tensors from a dim of size {n} (more than "
                                   f"{MAX_EMPTY_PIECES} of them empty); use at most {n + MAX_EMPTY_PIECES}")
    return k


def check_addc(op: str, tensor1, tensor2, value):
    """``addcmul``/``addcdiv`` (and their in-place forms): tensor1 and tensor2 Tensors, ``value`` a real number
    (returned as given, so an int keeps integer arithmetic)."""
    check_tensor(tensor1, op, "tensor1")
    check_tensor(tensor2, op, "tensor2")
    check_number(value, op, "value")
    return value


def check_path(v, op: str, name: str = "path"):
    """A file path (``str``, ``bytes`` or ``os.PathLike``), returned as given; an InvalidArgumentError naming
    what it got otherwise (not the ``os.fspath`` TypeError from deep inside an ``open``)."""
    import os

    if isinstance(v, (str, bytes, os.PathLike)):
        return v
    raise InvalidArgumentError(f"{op}: {name} must be a file path (str or os.PathLike), got {brief(v)}")
