"""Scaled dot-product attention (PyTorch's ``F.scaled_dot_product_attention``).

    scores = Q K^T * scale + M          (scale = 1/sqrt(E) by default)
    P      = softmax(scores, dim=-1)     (then dropout on P when dropout_p > 0)
    out    = P V

Shapes: Q (..., L, E), K (..., S, E), V (..., S, Ev) -> out (..., L, Ev); the leading (batch,
head) dims broadcast. The mask M is

* a bool ``attn_mask``: True = the key takes part; False positions get -inf before the softmax;
* a float ``attn_mask``: added to the scores (it may require grad, e.g. a learned position bias);
* ``is_causal=True``: the top-left aligned lower-triangular mask, query i sees keys j <= i.

A query row whose keys are all masked gets all-zero attention weights (and a zero output row),
not NaN, as PyTorch's math backend does since 2.5.

``sdpa_reference`` is composed of differentiable ops (matmul, softmax, dropout, add), so its
backward (and double backward) is the chain rule through them::

    dV = P^T dOut,   dP = dOut V^T,   dS = P * (dP - sum(dP * P, -1)),   dQ = dS K * scale,
    dK = dS^T Q * scale,   dM = dS (summed over broadcast dims)

It is also the oracle for fused kernels: a kernel registered with :func:`register_sdpa_kernel`
is tried first by :func:`scaled_dot_product_attention` and must agree with the reference.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..autograd.function import Function
from ..autograd.grad_mode import STATE
from ..backend import get_array_module
from ..errors import DTypeError, InvalidArgumentError, ShapeError
from ..tensor import Tensor
from .norm import (_check_flag, _check_float_tensor, _check_generator, _check_number, _check_tensor, _same_device)
from .dropout import dropout
from .indexing import SetItem
from .shape import broadcast_to, reshape, transpose

__all__ = ["scaled_dot_product_attention"]

_KERNELS = []


def register_sdpa_kernel(kernel):
    """Register a fast path ``kernel(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa, generator)``.

    It receives validated arguments (``scale`` already a float) and returns the output Tensor, or
    ``NotImplemented`` to fall back to the next kernel / the reference. Returns ``kernel``.
    """
    _KERNELS.append(kernel)
    return kernel


def _broadcast(shapes, what):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"scaled_dot_product_attention: {what} do not broadcast: "
                         + ", ".join(str(tuple(s)) for s in shapes)) from None


def _check_args(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa):
    op = "scaled_dot_product_attention"
    q = _check_float_tensor(query, op, "query")
    k = _check_float_tensor(key, op, "key")
    v = _check_float_tensor(value, op, "value")
    for name, t in (("query", q), ("key", k), ("value", v)):
        if t.ndim < 2:
            raise ShapeError(f"{op}: {name} must have at least 2 dims (..., seq, features), got {tuple(t.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ShapeError(f"{op}: query and key must have the same feature size E, got query {tuple(q.shape)} "
                         f"and key {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"{op}: key and value must have the same sequence length S, got key {tuple(k.shape)} "
                         f"and value {tuple(v.shape)}")
    enable_gqa = _check_flag(enable_gqa, op, "enable_gqa")
    if not (q.dtype == k.dtype == v.dtype):
        raise DTypeError(f"{op}: query, key and value must have the same dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if enable_gqa:
        if q.ndim < 3 or k.ndim < 3 or v.ndim < 3:
            raise ShapeError(f"{op}: enable_gqa needs a head dim (..., H, L, E); got query {tuple(q.shape)}, "
                             f"key {tuple(k.shape)}, value {tuple(v.shape)}")
        hq, hk, hv = q.shape[-3], k.shape[-3], v.shape[-3]
        if hk != hv or hk == 0 or hq % hk:
            raise ShapeError(f"{op}: with enable_gqa the key/value head counts must be equal and divide the "
                             f"query head count, got query {tuple(q.shape)}, key {tuple(k.shape)}, "
                             f"value {tuple(v.shape)}")
        batch = _broadcast([q.shape[:-3], k.shape[:-3], v.shape[:-3]], "the batch dims of query, key and value")
        batch = batch + (hq,)
    else:
        batch = _broadcast([q.shape[:-2], k.shape[:-2], v.shape[:-2]], "the batch dims of query, key and value")
    dropout_p = _check_number(dropout_p, op, "dropout_p", lo=0.0, hi=1.0)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
    else:
        scale = _check_number(scale, op, "scale")
    is_causal = _check_flag(is_causal, op, "is_causal")
    if attn_mask is not None:
        _check_tensor(attn_mask, op, "attn_mask")
        if is_causal:
            raise InvalidArgumentError(f"{op}: pass either attn_mask or is_causal=True, not both")
        if attn_mask.dtype.kind not in "bf":
            raise DTypeError(f"{op}: attn_mask must be bool (True = take part) or floating point (added to the "
                             f"scores), got dtype {attn_mask.dtype}")
        scores = batch + (q.shape[-2], k.shape[-2])
        if _broadcast([attn_mask.shape, scores], "attn_mask and the attention scores") != scores:
            raise ShapeError(f"{op}: attn_mask of shape {tuple(attn_mask.shape)} must broadcast to the shape of "
                             f"the attention scores {scores}")
    _same_device(op, q, k, v, attn_mask)
    return q, k, v, attn_mask, dropout_p, builtins.bool(is_causal), builtins.float(scale), builtins.bool(enable_gqa)


def _repeat_heads(t, rep):
    """(..., H, S, E) -> (..., H * rep, S, E), each head repeated ``rep`` times in a row (repeat_interleave)."""
    if rep == 1:
        return t
    lead, (h, s, e) = t.shape[:-3], t.shape[-3:]
    t = reshape(t, lead + (h, 1, s, e))
    t = broadcast_to(t, lead + (h, rep, s, e))
    return reshape(t, lead + (h * rep, s, e))


def _mask_rows(mask_shape, L, S):
    """Shape of the mask once its last two dims are broadcast to (L, S) (leading dims left as small as given)."""
    shp = tuple(mask_shape)
    if len(shp) < 2:
        shp = (1,) * (2 - len(shp)) + shp
    return _broadcast([shp, (L, S)], "attn_mask and the attention scores")


def sdpa_reference(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                   enable_gqa=False, generator=None):
    """Reference attention softmax(Q K^T * scale + M) V, composed of differentiable ops (see module docstring)."""
    from .activation import softmax

    q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa = _check_args(
        query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    _check_generator(generator, "scaled_dot_product_attention")
    if enable_gqa:
        rep = q.shape[-3] // k.shape[-3]
        k, v = _repeat_heads(k, rep), _repeat_heads(v, rep)
    L, S = q.shape[-2], k.shape[-2]
    xp = get_array_module(q.array)
    scores = (q @ transpose(k, -2, -1)) * scale
    dead_rows = None  # constant (..., L, 1) array: 1 where a query row has no key left
    if is_causal:
        attn_mask = Tensor._make(xp.tril(xp.ones((L, S), dtype=builtins.bool)))
    if attn_mask is not None:
        shp = _mask_rows(attn_mask.shape, L, S)
        if attn_mask.dtype.kind == "b":
            keep = xp.broadcast_to(attn_mask.array, shp)
            dead = ~keep.any(axis=-1, keepdims=True)
            additive = xp.where(keep | dead, 0.0, -xp.inf).astype(q.dtype)
            scores = scores + Tensor._make(additive)
        else:
            m = broadcast_to(attn_mask if attn_mask.dtype == q.dtype else attn_mask.to(q.dtype), shp)
            dead = xp.isneginf(m.array).all(axis=-1, keepdims=True)
            if dead.any():  # rows masked out entirely: use 0 instead of -inf there (the row is zeroed below)
                m = SetItem.apply(m, 0.0, xp.broadcast_to(dead, shp))
            scores = scores + m
        if dead.any():
            dead_rows = dead
    p = softmax(scores, dim=-1)
    if dead_rows is not None:
        p = p * Tensor._make((~dead_rows).astype(q.dtype))
    if dropout_p > 0.0:
        p = dropout(p, dropout_p, training=True, generator=generator)
    return p @ v


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False, generator=None):
    """softmax(Q K^T * scale + mask) V with PyTorch's arguments (see the module docstring).

    ``generator`` (a minigen extension) seeds the dropout on the attention weights. Registered fast
    kernels are tried first; the differentiable :func:`sdpa_reference` is the fallback.
    """
    if _KERNELS:
        args = _check_args(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
        for kern in _KERNELS:
            out = kern(*args, generator)
            if out is not NotImplemented:
                return out
    return sdpa_reference(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, generator)


# ------------------------------------------------------------------ fused kernel (minigen.kernels.cpu_attention)
class SDPA(Function):
    """out = softmax(Q K^T * scale [+ causal mask]) V by the fused flash-style kernel (no attn_mask, no dropout).

    forward:  the ``sdpa_forward`` kernel (saves the row logsumexp, not the probabilities)
    backward: first order: the ``sdpa_backward`` kernel (probabilities recomputed tile by tile);
              create_graph: the differentiable formulas of the module docstring, with
              P = softmax(Q K^T * scale + M) recomputed from ops:
              dV = P^T g,  dP = g V^T,  dS = P * (dP - sum(dP * P, -1)),  dQ = dS K * scale,  dK = dS^T Q * scale
    Arguments: q, k, v (same leading dims), is_causal, scale, the forward kernel.
    """

    uses_output = True

    @staticmethod
    def forward(ctx, q, k, v, is_causal, scale, fwd):
        out, ctx.lse = fwd(q, k, v, is_causal, scale)
        return out

    @staticmethod
    def backward(ctx, g):
        from .activation import softmax

        q, k, v, is_causal, scale, _ = ctx.args
        if not STATE.enabled and (kb := _attn_kernel("sdpa_backward", g.array, q.array, k.array, v.array)) is not None:
            grads = kb(g.array, q.array, k.array, v.array, ctx.output.array, ctx.lse, is_causal, scale)
            return tuple(Tensor._make(a) if ctx.next_nodes[i] is not None else None
                         for i, a in enumerate(grads)) + (None, None, None)
        scores = (q @ transpose(k, -2, -1)) * scale
        if is_causal:
            xp = get_array_module(q.array)
            L, S = q.shape[-2], k.shape[-2]
            keep = xp.tril(xp.ones((L, S), dtype=builtins.bool))
            scores = scores + Tensor._make(xp.where(keep, 0.0, -xp.inf).astype(q.dtype))
        p = softmax(scores, dim=-1)
        dp = g @ transpose(v, -2, -1)
        ds = p * (dp - (dp * p).sum(dim=-1, keepdim=True))
        return ds @ k * scale, transpose(ds, -2, -1) @ q * scale, transpose(p, -2, -1) @ g, None, None, None


def _attn_kernel(name, *arrays):
    from ..kernels import dispatch

    return dispatch.get(name, *arrays)


def _sdpa_fast(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa, generator):
    """The fused kernel for what it covers (no attn_mask, no dropout, no GQA, equal leading dims)."""
    if attn_mask is not None or dropout_p > 0.0 or enable_gqa or not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        return NotImplemented
    try:
        fwd = _attn_kernel("sdpa_forward", q.array, k.array, v.array)
    except ImportError:  # pragma: no cover - a checkout without the kernels folder
        return NotImplemented
    if fwd is None:
        return NotImplemented
    return SDPA.apply(q, k, v, is_causal, scale, fwd)


register_sdpa_kernel(_sdpa_fast)
