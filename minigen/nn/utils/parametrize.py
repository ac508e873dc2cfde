r"""Parametrizations: a tensor of a module computed from other tensors, ``torch.nn.utils.parametrize``'s
semantics.

``register_parametrization(module, "weight", P)`` replaces the parameter ``module.weight`` by
``P(original)``: the stored tensor becomes ``module.parametrizations.weight.original`` (several,
``original0``, ``original1``..., when ``P.right_inverse`` returns a tuple), and every read of
``module.weight`` evaluates the chain of registered parametrizations on it, so gradients reach the
originals. Assigning ``module.weight = X`` stores ``right_inverse(X)`` in the originals. The
module's class is swapped for a subclass holding the property (as PyTorch does), and restored by
:func:`remove_parametrizations`. Inside ``with cached():`` each parametrized tensor is computed once.
"""
from __future__ import annotations

import contextlib

from ...autograd.grad_mode import no_grad
from ...errors import InvalidArgumentError
from ...tensor import Tensor
from ..modules.container import ModuleDict, ModuleList
from ..modules.module import Module
from ..parameter import Parameter

__all__ = ["register_parametrization", "remove_parametrizations", "is_parametrized", "cached",
           "ParametrizationList", "type_before_parametrizations"]

_cache_enabled = 0
_cache = {}


@contextlib.contextmanager
def cached():
    """Compute every parametrized tensor at most once inside the block (e.g. a weight used by several
    time steps of a recurrent net)."""
    global _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache.clear()


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in registration order to the stored original(s)."""

    def __init__(self, modules, original, unsafe=False):
        super().__init__(modules)
        self.unsafe = unsafe
        trainable = isinstance(original, Parameter)
        with no_grad():
            new = original
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    new = m.right_inverse(new)
        if isinstance(new, Tensor):
            self.is_tensor, self.ntensors = True, 1
            self._store("original", original if new is original else new, trainable, original.requires_grad)
        else:
            if not isinstance(new, (tuple, list)) or not all(isinstance(t, Tensor) for t in new):
                raise InvalidArgumentError("right_inverse must return a Tensor or a sequence of Tensors, got "
                                           f"{type(new).__name__}")
            self.is_tensor, self.ntensors = False, len(new)
            for i, t in enumerate(new):
                self._store(f"original{i}", t, trainable, original.requires_grad)

    def _store(self, name, t, trainable, requires_grad):
        if trainable:
            self.register_parameter(name, t if isinstance(t, Parameter) else
                                    Parameter(t.detach(), requires_grad=requires_grad))
        else:
            self.register_buffer(name, t.detach())

    def originals(self):
        return [self.original] if self.is_tensor else [getattr(self, f"original{i}") for i in range(self.ntensors)]

    def right_inverse(self, value):
        """Store ``value`` as the parametrized tensor: the originals become the chain's right inverse of it."""
        with no_grad():
            for m in reversed(list(self)):
                if not hasattr(m, "right_inverse"):
                    raise InvalidArgumentError(f"parametrization {type(m).__name__} does not implement "
                                               "right_inverse, so the parametrized tensor cannot be assigned")
                value = m.right_inverse(value)
            values = [value] if self.is_tensor else list(value)
            if len(values) != self.ntensors:
                raise InvalidArgumentError(f"right_inverse returned {len(values)} tensors, expected {self.ntensors}")
            for orig, v in zip(self.originals(), values):
                if tuple(orig.shape) != tuple(v.shape):
                    raise InvalidArgumentError(f"cannot assign a tensor of shape {tuple(v.shape)} to a "
                                               f"parametrized original of shape {tuple(orig.shape)}")
                orig.copy_(v)

    def forward(self):
        mods = list(self)
        x = mods[0](*self.originals()) if not self.is_tensor else mods[0](self.original)
        for m in mods[1:]:
            x = m(x)
        return x


def is_parametrized(module, tensor_name=None) -> bool:
    """Whether ``module`` has parametrizations (for ``tensor_name``, if given)."""
    p = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(p, ModuleDict):
        return False
    return len(p) > 0 if tensor_name is None else tensor_name in p


def type_before_parametrizations(module):
    """The module's class before parametrizations swapped it for a subclass."""
    cls = type(module)
    return cls.__bases__[0] if getattr(cls, "_minigen_parametrized", False) else cls


def _inject_class(module):
    cls = type(module)
    new = type(f"Parametrized{cls.__name__}", (cls,), {"_minigen_parametrized": True})
    module.__class__ = new


def _inject_property(module, name):
    def getter(self):
        plist = self.parametrizations[name]
        if _cache_enabled:
            key = (id(self), name)
            if key not in _cache:
                _cache[key] = plist()
            return _cache[key]
        return plist()

    def setter(self, value):
        self.parametrizations[name].right_inverse(value)

    setattr(type(module), name, property(getter, setter))


def register_parametrization(module, tensor_name: str, parametrization, *, unsafe: bool = False):
    """Parametrize ``module.<tensor_name>`` by the Module ``parametrization`` (see the module docstring);
    a second registration on the same tensor is applied after the first. Returns ``module``."""
    if not isinstance(module, Module) or not isinstance(parametrization, Module):
        raise InvalidArgumentError("register_parametrization expects a Module and a parametrization Module, got "
                                   f"{type(module).__name__} and {type(parametrization).__name__}")
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            y = getattr(module, tensor_name)
            z = parametrization(y)
            if not isinstance(z, Tensor) or tuple(z.shape) != tuple(y.shape) or z.dtype != y.dtype:
                raise InvalidArgumentError(f"registering a parametrization may not change the shape or dtype of "
                                           f"{tensor_name!r} (pass unsafe=True to allow it)")
        module.parametrizations[tensor_name].append(parametrization)
        return module
    if tensor_name not in module._parameters and tensor_name not in module._buffers:
        raise InvalidArgumentError(f"module {type(module).__name__} has no parameter or buffer {tensor_name!r}")
    original = getattr(module, tensor_name)
    if original is None:
        raise InvalidArgumentError(f"cannot parametrize {tensor_name!r}: it is None")
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    if not unsafe:
        z = plist()
        if not isinstance(z, Tensor) or tuple(z.shape) != tuple(original.shape) or z.dtype != original.dtype:
            raise InvalidArgumentError(f"the parametrization changes the shape or dtype of {tensor_name!r} "
                                       f"({tuple(original.shape)} {original.dtype} -> {tuple(z.shape)} {z.dtype}); "
                                       "pass unsafe=True to allow it")
    delattr(module, tensor_name)
    if not is_parametrized(module):
        _inject_class(module)
        module.parametrizations = ModuleDict()
    _inject_property(module, tensor_name)
    module.parametrizations[tensor_name] = plist
    return module


def remove_parametrizations(module, tensor_name: str, leave_parametrized: bool = True):
    """Remove the parametrizations of ``tensor_name``: it becomes a plain parameter (or buffer) again holding
    the current parametrized value (``leave_parametrized=True``) or the original. Returns ``module``."""
    if not is_parametrized(module, tensor_name):
        raise InvalidArgumentError(f"module {type(module).__name__} has no parametrization on {tensor_name!r}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                value = getattr(module, tensor_name)
            if tuple(value.shape) != tuple(original.shape) or value.dtype != original.dtype:
                original = Parameter(value.detach(), requires_grad=original.requires_grad) if isinstance(
                    original, Parameter) else value.detach()
            else:
                with no_grad():
                    original.copy_(value)
    else:
        if not leave_parametrized:
            raise InvalidArgumentError("cannot leave a tensor with several originals unparametrized "
                                       "(leave_parametrized=False needs a single original)")
        with no_grad():
            value = getattr(module, tensor_name)
        trainable = isinstance(plist.original0, Parameter)
        original = Parameter(value.detach(), requires_grad=plist.original0.requires_grad) if trainable else \
            value.detach()
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    if isinstance(original, Parameter):
        module.register_parameter(tensor_name, original)
    else:
        module.register_buffer(tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = type_before_parametrizations(module)
    return module
