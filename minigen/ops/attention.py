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

Fused kernels: without attn_mask, dropout and GQA, and when ``dispatch.applies("sdpa_forward", q, k, v)``
(the Numba kernel of ``minigen.kernels.cpu_attention`` for NumPy arrays, the CUDA kernel of
``minigen.kernels.gpu_attention`` for CuPy arrays), :func:`scaled_dot_product_attention` runs the
:class:`SDPA` op: its forward is the ``sdpa_forward`` kernel (reference: :func:`sdpa_forward_ref`), its
``fast_backward`` the ``sdpa_backward`` kernel, its ``backward`` the formula above on Tensors.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..argcheck import check_flag, check_float_tensor, check_generator, check_number, check_tensor, same_device
from ..autograd.function import Function
from ..backend import get_array_module
from ..errors import DTypeError, InvalidArgumentError, ShapeError
from ..kernels import dispatch
from ..tensor import Tensor
from .activation import softmax
from .indexing import SetItem
from .dropout import dropout
from .shape import broadcast_to, reshape, transpose

__all__ = ["scaled_dot_product_attention"]


def _broadcast(shapes, what):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"scaled_dot_product_attention: {what} do not broadcast: "
                         + ", ".join(str(tuple(s)) for s in shapes)) from None


def _check_args(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa):
    op = "scaled_dot_product_attention"
    q = check_float_tensor(query, op, "query")
    k = check_float_tensor(key, op, "key")
    v = check_float_tensor(value, op, "value")
    for name, t in (("query", q), ("key", k), ("value", v)):
        if t.ndim < 2:
            raise ShapeError(f"{op}: {name} must have at least 2 dims (..., seq, features), got {tuple(t.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ShapeError(f"{op}: query and key must have the same feature size E, got query {tuple(q.shape)} "
                         f"and key {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"{op}: key and value must have the same sequence length S, got key {tuple(k.shape)} "
                         f"and value {tuple(v.shape)}")
    enable_gqa = check_flag(enable_gqa, op, "enable_gqa")
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
    dropout_p = check_number(dropout_p, op, "dropout_p", lo=0.0, hi=1.0)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
    else:
        scale = check_number(scale, op, "scale")
    is_causal = check_flag(is_causal, op, "is_causal")
    if attn_mask is not None:
        check_tensor(attn_mask, op, "attn_mask")
        if is_causal:
            raise InvalidArgumentError(f"{op}: pass either attn_mask or is_causal=True, not both")
        if attn_mask.dtype.kind not in "bf":
            raise DTypeError(f"{op}: attn_mask must be bool (True = take part) or floating point (added to the "
                             f"scores), got dtype {attn_mask.dtype}")
        scores = batch + (q.shape[-2], k.shape[-2])
        if _broadcast([attn_mask.shape, scores], "attn_mask and the attention scores") != scores:
            raise ShapeError(f"{op}: attn_mask of shape {tuple(attn_mask.shape)} must broadcast to the shape of "
                             f"the attention scores {scores}")
    same_device(op, q, k, v, attn_mask)
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
    args = _check_args(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    check_generator(generator, "scaled_dot_product_attention")
    return _attention(*args, generator)


def _attention(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa, generator):
    """:func:`sdpa_reference` on validated arguments."""
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

    ``generator`` (a minigen extension) seeds the dropout on the attention weights. The fused
    :class:`SDPA` op runs where its kernel applies (no attn_mask, no dropout, no GQA, equal leading
    dims); everything else runs the differentiable composition of :func:`sdpa_reference`.
    """
    args = _check_args(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    check_generator(generator, "scaled_dot_product_attention")
    q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa = args
    if (attn_mask is None and dropout_p == 0.0 and not enable_gqa and q.shape[:-2] == k.shape[:-2] == v.shape[:-2]
            and dispatch.applies("sdpa_forward", q.array, k.array, v.array)):
        return SDPA.apply(q, k, v, is_causal, scale)
    return _attention(*args, generator)


# ------------------------------------------------------------------ the fused op
def sdpa_forward_ref(q, k, v, causal=False, scale=None):
    """The reference of the ``sdpa_forward`` kernels, on arrays: q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv)
    with equal leading dims -> (out (..., Tq, Dv) in q's dtype, lse (..., Tq) float64) where

        s = q k^T * scale (-inf where causal and j > i),  lse_i = log sum_j exp(s_ij),  out = exp(s - lse) v.
    No keys (Tk = 0): out is NaN and lse -inf (a softmax over an empty set)."""
    xp = get_array_module(q)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
    Tq, Tk = q.shape[-2], k.shape[-2]
    if Tk == 0:
        return xp.full(q.shape[:-1] + (v.shape[-1],), xp.nan, q.dtype), xp.full(q.shape[:-1], -xp.inf)
    s = (q @ xp.swapaxes(k, -1, -2)).astype(xp.float64) * scale
    if causal:
        s = xp.where(xp.tril(xp.ones((Tq, Tk), dtype=builtins.bool)), s, -xp.inf)
    m = s.max(axis=-1, keepdims=True)
    lse = m + xp.log(xp.exp(s - m).sum(axis=-1, keepdims=True))
    out = xp.exp(s - lse) @ v.astype(xp.float64)
    return out.astype(q.dtype), lse[..., 0]


class SDPA(Function):
    """out = softmax(Q K^T * scale [+ causal mask]) V as one op (no attn_mask, no dropout).

    forward:  the ``sdpa_forward`` kernel, else :func:`sdpa_forward_ref` (saves the row logsumexp, not P)
    backward: with P = softmax(Q K^T * scale + M) recomputed from ops,
              dV = P^T g,  dP = g V^T,  dS = P * (dP - sum(dP * P, -1)),  dQ = dS K * scale,  dK = dS^T Q * scale
    fast_backward (first order): the ``sdpa_backward`` kernel, the same formulas with P recomputed tile by
    tile from the saved logsumexp.
    Arguments: q, k, v (same leading dims), is_causal, scale.
    """

    uses_output = True

    @staticmethod
    def forward(ctx, q, k, v, is_causal, scale):
        fwd = dispatch.get("sdpa_forward", q, k, v) or sdpa_forward_ref
        out, ctx.lse = fwd(q, k, v, is_causal, scale)
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, is_causal, scale = ctx.args
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        scores = (q @ transpose(k, -2, -1)) * scale
        if is_causal:
            xp = get_array_module(q.array)
            L, S = q.shape[-2], k.shape[-2]
            keep = xp.tril(xp.ones((L, S), dtype=builtins.bool))
            scores = scores + Tensor._make(xp.where(keep, 0.0, -xp.inf).astype(q.dtype))
        p = softmax(scores, dim=-1)
        dv = transpose(p, -2, -1) @ g if need_v else None
        dq = dk = None
        if need_q or need_k:
            dp = g @ transpose(v, -2, -1)
            ds = p * (dp - (dp * p).sum(dim=-1, keepdim=True))
            dq = ds @ k * scale if need_q else None
            dk = transpose(ds, -2, -1) @ q * scale if need_k else None
        return dq, dk, dv, None, None

    @staticmethod
    def fast_backward(ctx, g):
        q, k, v, is_causal, scale = ctx.args
        kb = dispatch.get("sdpa_backward", g, q.array, k.array, v.array)
        if kb is None:
            return NotImplemented
        grads = kb(g, q.array, k.array, v.array, ctx.output.array, ctx.lse, is_causal, scale)
        return tuple(a if n else None for a, n in zip(grads, ctx.needs_input_grad))
