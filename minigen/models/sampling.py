"""Sampling the next token from a language model's logits: temperature, top-k, top-p (nucleus).

Given logits z over the vocabulary (a row per sequence):

    temperature T:  p_i = exp(z_i / T) / sum_j exp(z_j / T)       (T -> 0: argmax, T = 1: the model)
    top-k:          keep the k largest z_i, set the rest to -inf (ties at the k-th value are kept)
    top-p:          sort p descending; keep the smallest prefix whose total probability is >= p
                    (token i of the sorted order is kept iff  sum_{j<i} p_(j) < p; the first always is)

then renormalise and draw one index per row by inverse-CDF sampling:
``i = #{j : cumsum(p)_j <= u * sum(p)}`` with u ~ U[0, 1). Works on NumPy or CuPy arrays
(and on Tensors, through their arrays); nothing here is differentiated.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..errors import InvalidArgumentError
from ..random import _gen

__all__ = ["filter_logits", "sample_logits", "probs_from_logits"]


def _arr(x):
    return x.array if hasattr(x, "array") and hasattr(x, "requires_grad") else x


def filter_logits(logits, top_k=None, top_p=None):
    """Logits (..., V) with the tokens outside top-k / the top-p nucleus set to -inf (a new array)."""
    z = _arr(logits)
    xp = get_array_module(z)
    z = z.astype(xp.float64 if z.dtype == xp.float64 else xp.float32, copy=True)
    V = z.shape[-1]
    if top_k is not None:
        k = int(top_k)
        if k < 1:
            raise InvalidArgumentError(f"top_k must be >= 1, got {top_k}")
        if k < V:
            kth = xp.sort(z, axis=-1)[..., V - k][..., None]  # the k-th largest value
            z = xp.where(z < kth, -xp.inf, z)
    if top_p is not None:
        p = float(top_p)
        if not 0.0 < p <= 1.0:
            raise InvalidArgumentError(f"top_p must be in (0, 1], got {top_p}")
        if p < 1.0:
            probs = _softmax(xp, z)
            order = xp.argsort(-probs, axis=-1, kind="stable") if xp is np else xp.argsort(-probs, axis=-1)
            sp = xp.take_along_axis(probs, order, axis=-1)
            before = xp.cumsum(sp, axis=-1) - sp  # probability mass strictly before each sorted token
            keep_sorted = before < p
            keep = xp.zeros_like(keep_sorted)
            xp.put_along_axis(keep, order, keep_sorted, axis=-1)
            z = xp.where(keep, z, -xp.inf)
    return z


def _softmax(xp, z):
    m = xp.max(z, axis=-1, keepdims=True)
    e = xp.exp(z - m)
    return e / e.sum(axis=-1, keepdims=True)


def probs_from_logits(logits, temperature=1.0, top_k=None, top_p=None):
    """The distribution actually sampled from: softmax(filter(z / T)). ``temperature`` must be > 0."""
    z = _arr(logits)
    xp = get_array_module(z)
    if temperature <= 0:
        raise InvalidArgumentError(f"temperature must be > 0 for a distribution, got {temperature}")
    z = filter_logits(z / float(temperature), top_k, None)
    if top_p is not None:
        z = filter_logits(z, None, top_p)
    return _softmax(xp, z)


def sample_logits(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """Draw one token index per row of ``logits`` (..., V); ``temperature=0`` means greedy (argmax).

    Returns an int64 array of shape ``logits.shape[:-1]``.
    """
    z = _arr(logits)
    xp = get_array_module(z)
    if temperature is None or temperature == 0:
        z = filter_logits(z, top_k, top_p)
        return xp.argmax(z, axis=-1).astype(xp.int64)
    if temperature < 0:
        raise InvalidArgumentError(f"temperature must be >= 0, got {temperature}")
    p = probs_from_logits(z, temperature, top_k, top_p)
    rng = _gen(generator).xp_generator(xp)
    u = rng.random(p.shape[:-1] + (1,))
    c = xp.cumsum(p, axis=-1)
    idx = (c <= u * c[..., -1:]).sum(axis=-1)
    return xp.minimum(idx, p.shape[-1] - 1).astype(xp.int64)
