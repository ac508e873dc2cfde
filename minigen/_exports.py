"""Collect every op module's ``__all__`` so ops are available as ``mg.<name>`` and ``F.<name>``.

Each exported function is wrapped in a thin guard at this public boundary: an error
raised by NumPy or Python deep inside an op because an argument had the wrong type
(``None``, a string, a list where a Tensor belongs...) comes out as a minigen error
naming the op and the argument types, never as a raw AttributeError/IndexError.
Errors minigen raises itself pass through unchanged. Tensor methods and operators
are not wrapped (their first argument is a Tensor by construction).
"""
import functools as _functools

from .errors import DTypeError as _DTypeError, InvalidArgumentError as _InvalidArgumentError
from .errors import IndexOutOfRangeError as _IndexOutOfRangeError, MinigenError as _MinigenError
from .ops import loaded as _loaded


def _type_names(args, kwargs):
    parts = [type(a).__name__ if type(a).__name__ != "Tensor" else f"Tensor{tuple(a.shape)}" for a in args]
    parts += [f"{k}={type(v).__name__}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _guard(fn, name):
    @_functools.wraps(fn)
    def op(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _MinigenError:
            raise
        except (AttributeError, TypeError, KeyError) as e:
            raise _DTypeError(f"{name}: invalid argument types ({_type_names(args, kwargs)}): {e}") from None
        except IndexError as e:
            raise _IndexOutOfRangeError(f"{name}: {e} (arguments: {_type_names(args, kwargs)})") from None
        except (ValueError, ZeroDivisionError, OverflowError) as e:
            raise _InvalidArgumentError(f"{name}: {e} (arguments: {_type_names(args, kwargs)})") from None

    op.__wrapped__ = fn
    return op


__all__ = []
for _m in _loaded:
    if _m.__name__.endswith((".methods", ".inplace")):
        continue
    for _n in getattr(_m, "__all__", ()):
        if _n in globals():
            continue
        _f = getattr(_m, _n)
        globals()[_n] = _guard(_f, _n) if callable(_f) and not isinstance(_f, type) else _f
        __all__.append(_n)
