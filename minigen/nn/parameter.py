"""``Parameter``: a Tensor that a :class:`~minigen.nn.Module` owns as a trainable weight.

A Parameter is an ordinary :class:`~minigen.Tensor` (a subclass, so every op
accepts it) with two differences:

- it requires grad by default (``Parameter(t, requires_grad=False)`` for a frozen one);
- assigning it as an attribute of a Module (``self.weight = Parameter(...)``)
  registers it, so it shows up in ``module.parameters()`` and ``state_dict()``.

``Parameter(data)`` shares ``data``'s storage (no copy), as in PyTorch.
The results of ops on a Parameter are plain Tensors.
"""
from __future__ import annotations

import copy

import numpy as np

from ..argcheck import check_flag
from ..tensor import Tensor, get_default_dtype

__all__ = ["Parameter", "Buffer", "is_parameter"]


class Parameter(Tensor):
    __slots__ = ()

    def __new__(cls, data=None, requires_grad=True):
        return object.__new__(cls)

    def __init__(self, data=None, requires_grad=True):
        requires_grad = check_flag(requires_grad, "Parameter", "requires_grad")
        if data is None:
            arr = np.empty((0,), dtype=get_default_dtype())
        elif isinstance(data, Tensor):
            arr = data.array
        elif hasattr(data, "__cuda_array_interface__"):  # a CuPy array, shared as is
            arr = data
        else:
            arr = Tensor(data).array
        super().__init__(arr)
        if isinstance(data, Tensor):
            self._vc = data._vc  # same storage, same version counter
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(self.array.copy(), requires_grad=self.requires_grad)
        if self.grad is not None:
            out.grad = copy.deepcopy(self.grad, memo)
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, proto):
        # pickling is never used by minigen's checkpoints; this only keeps copy.copy working
        return (Parameter, (self.array, self.requires_grad))


class Buffer(Tensor):
    """Marks a tensor as a buffer when assigned to a Module attribute (``self.x = nn.Buffer(t)``).

    ``persistent=False`` keeps it out of ``state_dict``. The Module stores a plain Tensor.
    """

    __slots__ = ("persistent",)

    def __new__(cls, data=None, persistent=True):
        return object.__new__(cls)

    def __init__(self, data=None, persistent=True):
        persistent = check_flag(persistent, "Buffer", "persistent")
        arr = data.array if isinstance(data, Tensor) else Tensor(data).array
        super().__init__(arr)
        self.persistent = persistent


def is_parameter(x) -> bool:
    return isinstance(x, Parameter)
