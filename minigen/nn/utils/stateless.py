"""``functional_call(module, parameters_and_buffers, args)``: run a module with some of its parameters and
buffers temporarily replaced by the given tensors (``torch.func.functional_call`` /
``torch.nn.utils.stateless.functional_call``). Gradients flow to the tensors passed in; the module's own
tensors are restored afterwards, even if the forward raises."""
from __future__ import annotations

from ...errors import InvalidArgumentError

__all__ = ["functional_call"]


def _owner(module, dotted):
    *path, leaf = dotted.split(".")
    m = module
    for p in path:
        sub = m._modules.get(p)
        if sub is None:
            raise InvalidArgumentError(f"functional_call: {type(module).__name__} has no submodule path {dotted!r}")
        m = sub
    return m, leaf


def functional_call(module, parameters_and_buffers, args=(), kwargs=None, *, tie_weights=True, strict=False):
    """``module(*args, **kwargs)`` with ``parameters_and_buffers`` (a dict, or a tuple of dicts, name -> Tensor)
    standing in for the module's own tensors of those names."""
    if isinstance(parameters_and_buffers, (tuple, list)):
        merged = {}
        for d in parameters_and_buffers:
            dup = set(merged) & set(d)
            if dup:
                raise InvalidArgumentError(f"functional_call: {sorted(dup)} given more than once")
            merged.update(d)
        parameters_and_buffers = merged
    if not isinstance(args, tuple):
        args = (args,)
    kwargs = kwargs or {}
    if strict:
        own = {k for k, _ in module.named_parameters()} | {k for k, _ in module.named_buffers()}
        missing, unexpected = own - set(parameters_and_buffers), set(parameters_and_buffers) - own
        if missing or unexpected:
            raise InvalidArgumentError(f"functional_call(strict=True): missing {sorted(missing)}, "
                                       f"unexpected {sorted(unexpected)}")
    saved = []
    try:
        for name, t in parameters_and_buffers.items():
            m, leaf = _owner(module, name)
            if leaf in m._parameters:
                saved.append((m._parameters, leaf, m._parameters[leaf]))
                m._parameters[leaf] = t
            elif leaf in m._buffers:
                saved.append((m._buffers, leaf, m._buffers[leaf]))
                m._buffers[leaf] = t
            else:
                raise InvalidArgumentError(f"functional_call: {name!r} is not a parameter or buffer of "
                                           f"{type(module).__name__}")
        return module(*args, **kwargs)
    finally:
        for reg, leaf, old in reversed(saved):
            reg[leaf] = old
