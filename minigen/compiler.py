"""``minigen.compile`` / ``minigen.compiler``: PyTorch's graph compiler entry points, as identities.

minigen executes eagerly and has no graph compiler: its speed comes from the Numba/CuPy kernels that
ops dispatch to, which are compiled on first use whatever you call. ``minigen.compile(model)`` therefore
returns ``model`` itself (and ``@minigen.compile`` / ``minigen.compile(mode=...)(fn)`` return ``fn``), so
``model = torch.compile(model)`` ports unchanged and the model's ``state_dict`` keys stay as they were
(PyTorch's compiled wrapper would prefix them with ``_orig_mod.``). ``fullgraph``, ``dynamic``, ``backend``,
``mode`` and ``options`` are accepted and ignored.
"""
from __future__ import annotations

__all__ = ["compile", "is_compiling", "is_dynamo_compiling", "disable", "reset", "list_backends",
           "allow_in_graph", "assume_constant_result"]


def compile(model=None, *, fullgraph=False, dynamic=None, backend=None, mode=None, options=None, name=None,
            disable=False, **kwargs):
    """Return ``model`` unchanged (or, called without a model, a decorator that returns its function)."""
    if model is None:
        return lambda fn: fn
    if not callable(model):
        from .errors import InvalidArgumentError

        raise InvalidArgumentError(f"compile expects a Module or a callable, got {type(model).__name__}")
    return model


def is_compiling() -> bool:
    return False


is_dynamo_compiling = is_compiling


def disable(fn=None, recursive=True, *, reason=None):
    """Identity decorator (nothing is ever compiled)."""
    if fn is None:
        return lambda f: f
    return fn


def reset() -> None:
    """Nothing to reset."""


def list_backends(exclude_tags=("debug", "experimental")):
    """``[]``: minigen has no compiler backends."""
    return []


def allow_in_graph(fn):
    return fn


def assume_constant_result(fn):
    return fn
