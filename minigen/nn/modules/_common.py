"""Helpers shared by the layer modules."""
from __future__ import annotations

from ...tensor import as_dtype, empty, get_default_dtype, zeros, ones
from ..parameter import Parameter


def new_param(*shape, dtype=None, device=None):
    """An uninitialised Parameter of ``shape`` (filled by the layer's ``reset_parameters``)."""
    return Parameter(empty(*shape, dtype=as_dtype(dtype) or get_default_dtype(), device=device))


def zeros_buffer(*shape, dtype=None, device=None):
    return zeros(*shape, dtype=as_dtype(dtype) or get_default_dtype(), device=device)


def ones_buffer(*shape, dtype=None, device=None):
    return ones(*shape, dtype=as_dtype(dtype) or get_default_dtype(), device=device)
