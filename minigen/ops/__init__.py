"""The op modules, one topic per file. Importing this package attaches the Tensor methods.

Every name in a module's ``__all__`` is re-exported as ``mg.<name>`` and
``minigen.nn.functional.<name>``; which of them are Tensor methods is declared in
one table, :mod:`minigen.ops.methods`.
"""
from . import shape, linalg  # noqa: F401  (the core)
from . import (  # noqa: F401
    pointwise, activation, reduction, indexing, norm, dropout, conv, pool, attention, rnn, loss,
)
from . import sorting  # noqa: F401
from . import inplace, methods

loaded = [shape, linalg, pointwise, activation, reduction, indexing, norm, dropout, conv,
          pool, attention, rnn, loss]
loaded.append(sorting)


def _namespace():
    ns = {}
    for m in loaded:
        for k, v in vars(m).items():
            if callable(v) and not isinstance(v, type) and getattr(v, "__module__", "").startswith("minigen."):
                ns.setdefault(k, v)
    return ns


methods.attach(_namespace())
