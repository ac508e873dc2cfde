"""Hypothesis strategies for tensors, shapes, dims and index expressions.

    from minigen.testing.strategies import tensors, shapes, broadcastable_shapes, valid_dims
    @given(tensors(shape=shapes(min_dims=1), dtype="float64"))
    def test_something(x): ...

``elements`` defaults to well-scaled finite floats (|x| in [0.1, 2] with random
sign, or [-2, 2]) so finite differences stay accurate; pass your own strategy
for ops with restricted domains (e.g. ``elements=floats(0.1, 3)`` for log).
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..tensor import Tensor

__all__ = ["shapes", "broadcastable_shapes", "mutually_broadcastable_shapes", "tensors", "arrays", "valid_dims",
           "valid_dim", "basic_indices", "integer_array_indices", "floats", "away_from"]


def floats(min_value=-2.0, max_value=2.0):
    return st.floats(min_value=min_value, max_value=max_value, allow_nan=False, allow_infinity=False, width=64)


def away_from(points, min_value=-2.0, max_value=2.0, margin=1e-2):
    """Floats in [min, max] at least ``margin`` from each of ``points`` (kinks such as relu at 0)."""
    pts = tuple(points) if isinstance(points, (list, tuple)) else (points,)
    return floats(min_value, max_value).filter(lambda v: all(abs(v - p) > margin for p in pts))


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(shape, min_dims=0, max_dims=None, min_side=1, max_side=4):
    """Shapes that broadcast with ``shape`` (possibly with 1s and fewer dims)."""
    return hnp.broadcastable_shapes(shape, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                                    max_side=max_side)


def mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4):
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims,
                                             min_side=min_side, max_side=max_side)


def arrays(shape=None, dtype="float64", elements=None):
    shape = shapes() if shape is None else shape
    elements = floats() if elements is None else elements
    return hnp.arrays(np.dtype(dtype), shape, elements=elements)


@st.composite
def tensors(draw, shape=None, dtype="float64", elements=None, requires_grad=True, noncontiguous=None):
    """A Tensor; ``shape`` may be a tuple or a strategy. ``noncontiguous=None`` draws both layouts:
    a non-contiguous tensor is made by transposing (or slicing) a bigger array."""
    if shape is None:
        shape = shapes()
    shp = draw(shape) if isinstance(shape, st.SearchStrategy) else tuple(shape)
    nc = draw(st.booleans()) if noncontiguous is None else noncontiguous
    if nc and len(shp) >= 1:
        # build a reversed-axes array and transpose it back: same values, non-contiguous strides
        base = draw(arrays(tuple(reversed(shp)), dtype, elements))
        arr = base.transpose(tuple(reversed(range(len(shp)))))
    else:
        arr = draw(arrays(shp, dtype, elements))
    t = Tensor._make(arr)
    if requires_grad and arr.dtype.kind == "f":
        t.requires_grad_(True)
    return t


def valid_dim(ndim):
    """One valid dim (negative ones included) for a tensor with ``ndim`` dims (ndim >= 1)."""
    n = max(ndim, 1)
    return st.integers(-n, n - 1)


@st.composite
def valid_dims(draw, shape_or_ndim, allow_none=True, allow_tuple=True):
    """``None``, an int, or a tuple of distinct dims valid for the given shape/ndim."""
    ndim = shape_or_ndim if isinstance(shape_or_ndim, int) else len(shape_or_ndim)
    kinds = ["int"] if ndim > 0 else []
    if allow_none:
        kinds.append("none")
    if allow_tuple and ndim > 0:
        kinds.append("tuple")
    kind = draw(st.sampled_from(kinds or ["none"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(valid_dim(ndim))
    dims = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in dims)


def basic_indices(shape, allow_newaxis=False, allow_ellipsis=True):
    """Basic index expressions (ints, slices, Ellipsis) valid for ``shape``."""
    return hnp.basic_indices(tuple(shape), allow_newaxis=allow_newaxis, allow_ellipsis=allow_ellipsis,
                             min_dims=0)


@st.composite
def integer_array_indices(draw, shape, max_len=5):
    """An integer-array index into the first dim of ``shape`` (repeats allowed)."""
    n = shape[0]
    idx = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=max_len))
    return np.asarray(idx, dtype=np.int64)
