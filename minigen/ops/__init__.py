"""The op modules. Importing this package attaches every op as a Tensor method.

Each module holds the ops of one family; every name in a module's ``__all__`` is
re-exported as ``mg.<name>`` and ``minigen.nn.functional.<name>``.
"""
from . import shape, elementwise, reduce, linalg  # noqa: F401  (the core)
from . import (  # noqa: F401
    pointwise, activation, reduction, manipulation, indexing, linalg_extra, norm, conv, pool, attention, loss,
)

loaded = [pointwise, activation, reduction, manipulation, indexing, linalg_extra, norm, conv, pool, attention, loss]
