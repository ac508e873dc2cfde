"""Attention and Transformer blocks (Vaswani et al., 2017), PyTorch's names and semantics,
plus two positional encodings.

Multi-head attention, for queries Q (L, E), keys K (S, kdim), values V (S, vdim)::

    q = Q W_q^T + b_q,  k = K W_k^T + b_k,  v = V W_v^T + b_v      (W_q, W_k, W_v stacked in in_proj_weight)
    split q, k, v into h heads of size d = E / h
    head_i = softmax(q_i k_i^T / sqrt(d) + M) v_i                    (dropout on the softmax weights)
    out = concat(head_1, ..., head_h) W_o^T + b_o                      (out_proj)

M is the sum of the attention mask and the key-padding mask, each either bool
(True = this key may NOT be attended to, i.e. -inf; PyTorch's convention for
``nn.MultiheadAttention``) or float (added to the scores).

Encoder layer (post-norm, ``norm_first=False``, the original paper)::

    x = norm1(x + dropout1(self_attn(x, x, x)))
    x = norm2(x + dropout2(linear2(dropout(activation(linear1(x))))))

Pre-norm (``norm_first=True``): ``x = x + dropout1(self_attn(norm1(x)))``, then
``x = x + dropout2(ff(norm2(x)))``. The decoder layer adds cross-attention to the
encoder output ``memory`` between the two (``multihead_attn``, ``norm2``, ``dropout2``;
the feed-forward block then uses ``norm3``, ``dropout3``).
"""
from __future__ import annotations

import copy
import math

import numpy as np

from .. import functional as F
from .. import init
from ...argcheck import (check_device, check_fits_memory, check_flag, check_float_dtype, check_number,
                         check_probability, check_size, check_tensor, check_float_tensor)
from ...backend import get_array_module
from ...errors import DTypeError, InvalidArgumentError, ShapeError
from ...tensor import Tensor
from ._common import new_param
from .activation import GELU, ReLU
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm

__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder",
           "TransformerDecoder", "Transformer", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding",
           "causal_mask"]


def causal_mask(size: int, dtype=None, device=None) -> Tensor:
    """The (size, size) float mask with -inf above the diagonal and 0 elsewhere: query i sees keys j <= i
    (PyTorch's ``Transformer.generate_square_subsequent_mask``)."""
    from ...tensor import get_default_dtype
    from ...backend import move_array

    arr = np.triu(np.full((size, size), -np.inf), k=1).astype(dtype or get_default_dtype())
    return Tensor._make(move_array(arr, device) if device is not None else arr)


def _additive_mask(mask, dtype, what):
    """A bool mask (True = masked out) as a float tensor of 0 / -inf; a float mask is returned as is."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise DTypeError(f"{what} must be a Tensor, got {type(mask).__name__}")
    if mask.dtype.kind == "b":
        xp = get_array_module(mask.array)
        return Tensor._make(xp.where(mask.array, -np.inf, 0.0).astype(dtype))
    if mask.dtype.kind != "f":
        raise DTypeError(f"{what} must be a bool or floating point tensor, got dtype {mask.dtype}")
    return mask.to(dtype) if mask.dtype != dtype else mask


class MultiheadAttention(Module):
    """Multi-head attention (formula in the module docstring).

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) -> (output, weights)``.
    Shapes (``batch_first=False``): query (L, N, E), key (S, N, kdim), value (S, N, vdim);
    (N, L, E) etc. with ``batch_first=True``; unbatched (L, E) also works. ``key_padding_mask``:
    (N, S); ``attn_mask``: (L, S) or (N * num_heads, L, S). ``is_causal=True`` without an
    ``attn_mask`` applies the causal mask (minigen builds it; PyTorch requires passing it).
    ``weights``: (N, L, S) averaged over heads, (N, num_heads, L, S) with
    ``average_attn_weights=False``, or None with ``need_weights=False`` (which takes the
    ``F.scaled_dot_product_attention`` path).

    Parameters (PyTorch's names): ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E,), or
    ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when kdim/vdim differ from E;
    ``out_proj`` (a Linear). Init: xavier_uniform_ on the projections, zero biases.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        op = "MultiheadAttention"
        embed_dim = check_size(embed_dim, op, "embed_dim", minimum=1)
        num_heads = check_size(num_heads, op, "num_heads", minimum=1)
        kdim = None if kdim is None else check_size(kdim, op, "kdim", minimum=1)
        vdim = None if vdim is None else check_size(vdim, op, "vdim", minimum=1)
        dropout = check_probability(dropout, op, "dropout")
        bias, batch_first = check_flag(bias, op, "bias"), check_flag(batch_first, op, "batch_first")
        add_bias_kv, add_zero_attn = check_flag(add_bias_kv, op, "add_bias_kv"), check_flag(add_zero_attn, op,
                                                                                              "add_zero_attn")
        check_float_dtype(dtype, op)
        check_device(device, op)
        if embed_dim % num_heads:
            raise InvalidArgumentError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        if add_bias_kv or add_zero_attn:
            raise InvalidArgumentError("add_bias_kv / add_zero_attn are not supported by minigen")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), batch_first
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = new_param(3 * E, E, dtype=dtype, device=device)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = new_param(E, E, dtype=dtype, device=device)
            self.k_proj_weight = new_param(E, self.kdim, dtype=dtype, device=device)
            self.v_proj_weight = new_param(E, self.vdim, dtype=dtype, device=device)
        if bias:
            self.in_proj_bias = new_param(3 * E, dtype=dtype, device=device)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, device=device, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self, generator=None):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight, generator=generator)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w, generator=generator)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _project(self, query, key, value):
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[0:E], b[E:2 * E], b[2 * E:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:  # self-attention: one matrix product for q, k and v
                qkv = F.linear(query, w, b)
                return qkv[..., 0:E], qkv[..., E:2 * E], qkv[..., 2 * E:]
            wq, wk, wv = w[0:E], w[E:2 * E], w[2 * E:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        for name, t in (("query", query), ("key", key), ("value", value)):
            check_float_tensor(t, "MultiheadAttention", name)
        check_tensor(key_padding_mask, "MultiheadAttention", "key_padding_mask", allow_none=True)
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ShapeError(f"MultiheadAttention expects query, key, value all 3-d (batched) or all 2-d, got "
                             f"shapes {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        if query.shape[-1] != self.embed_dim or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ShapeError(f"MultiheadAttention: feature sizes of query/key/value {query.shape[-1]}/"
                             f"{key.shape[-1]}/{value.shape[-1]} do not match embed_dim/kdim/vdim "
                             f"{self.embed_dim}/{self.kdim}/{self.vdim}")
        same = query is key and key is value
        # to (N, L, E)
        if not batched:
            query, key, value = (t.reshape((1,) + tuple(t.shape)) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.reshape((1,) + tuple(key_padding_mask.shape))
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if same:
            key = value = query
        N, L, S = query.shape[0], query.shape[1], key.shape[1]
        if key.shape[0] != N or value.shape[:2] != key.shape[:2]:
            raise ShapeError(f"MultiheadAttention: batch / source sizes do not match: query {tuple(query.shape)}, "
                             f"key {tuple(key.shape)}, value {tuple(value.shape)} (as (N, L, E))")
        H, d = self.num_heads, self.head_dim
        dt = query.dtype
        # causal and nothing else, no weights wanted: let scaled_dot_product_attention apply it (fast kernels can)
        sdpa_causal = bool(is_causal) and attn_mask is None and key_padding_mask is None and not need_weights
        if sdpa_causal and L != S:
            raise ShapeError(f"is_causal=True needs a square attention (L == S), got L={L}, S={S}")
        mask = None if sdpa_causal else self._merge_masks(attn_mask, key_padding_mask, is_causal, N, L, S, dt,
                                                           query.device)
        q, k, v = self._project(query, key, value)
        q = q.reshape(N, L, H, d).permute(0, 2, 1, 3)     # (N, H, L, d)
        k = k.reshape(N, S, H, d).permute(0, 2, 1, 3)
        v = v.reshape(N, S, H, d).permute(0, 2, 1, 3)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = (q * (1.0 / math.sqrt(d))) @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores + mask
            weights = F.softmax(scores, dim=-1)
            attn = F.dropout(weights, p, True) if p > 0 else weights
            out = attn @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=sdpa_causal)
        out = out.permute(0, 2, 1, 3).reshape(N, L, self.embed_dim)
        out = self.out_proj(out)
        if not batched:
            out = out.reshape(L, self.embed_dim)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if weights is not None:
            if average_attn_weights:
                weights = weights.mean(dim=1)
            if not batched:
                weights = weights.reshape(tuple(weights.shape[1:]))
        return out, weights

    def _merge_masks(self, attn_mask, key_padding_mask, is_causal, N, L, S, dt, device):
        """One additive mask broadcastable to (N, H, L, S), or None."""
        H = self.num_heads
        am = _additive_mask(attn_mask, dt, "attn_mask")
        if am is None and is_causal:
            if L != S:
                raise ShapeError(f"is_causal=True needs a square attention (L == S), got L={L}, S={S}")
            am = causal_mask(L, dtype=dt, device=device)
        if am is not None:
            if am.ndim == 2:
                if tuple(am.shape) != (L, S):
                    raise ShapeError(f"attn_mask has shape {tuple(am.shape)}, expected ({L}, {S})")
            elif am.ndim == 3:
                if tuple(am.shape) != (N * H, L, S):
                    raise ShapeError(f"attn_mask has shape {tuple(am.shape)}, expected ({N * H}, {L}, {S})")
                am = am.reshape(N, H, L, S)
            else:
                raise ShapeError(f"attn_mask must be 2-d or 3-d, got shape {tuple(am.shape)}")
        kpm = _additive_mask(key_padding_mask, dt, "key_padding_mask")
        if kpm is not None:
            if tuple(kpm.shape) != (N, S):
                raise ShapeError(f"key_padding_mask has shape {tuple(kpm.shape)}, expected ({N}, {S})")
            kpm = kpm.reshape(N, 1, 1, S)
            am = kpm if am is None else am + kpm
        return am

    def extra_repr(self):
        return ""


def _activation(activation):
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise InvalidArgumentError(f"activation should be 'relu', 'gelu' or a callable, got {activation!r}")
    if not callable(activation):
        raise InvalidArgumentError(f"activation should be 'relu', 'gelu' or a callable, got {activation!r}")
    return activation


class TransformerEncoderLayer(Module):
    """Self-attention + feed-forward block (formulas in the module docstring).

    ``forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``; src (S, N, E), or
    (N, S, E) with ``batch_first=True``. Submodules (PyTorch's names): self_attn, linear1, dropout,
    linear2, norm1, norm2, dropout1, dropout2.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation)
        self.batch_first = batch_first

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        check_float_tensor(src, "TransformerEncoderLayer", "src")
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x


class TransformerDecoderLayer(Module):
    """Masked self-attention + cross-attention over ``memory`` + feed-forward (module docstring).

    ``forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False)``. Submodules:
    self_attn, multihead_attn, linear1, dropout, linear2, norm1, norm2, norm3, dropout1..3.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                                 **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation)
        self.batch_first = batch_first

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False, is_causal=is_causal)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        check_float_tensor(tgt, "TransformerDecoderLayer", "tgt")
        check_float_tensor(memory, "TransformerDecoderLayer", "memory")
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x


def _check_stack(op, name, layer, num_layers, norm):
    """The arguments of TransformerEncoder/Decoder: a Module to copy, a layer count whose copies fit in memory,
    a Module or None as the final norm."""
    if not isinstance(layer, Module):
        raise InvalidArgumentError(f"{op}: {name} must be a Module, got {type(layer).__name__}")
    check_size(num_layers, op, "num_layers")
    if norm is not None and not isinstance(norm, Module):
        raise InvalidArgumentError(f"{op}: norm must be a Module or None, got {type(norm).__name__}")
    check_fits_memory(num_layers * sum(p.numel() for p in layer.parameters()), 4, op, f"{num_layers} layers")


class TransformerEncoder(Module):
    """``num_layers`` deep copies of ``encoder_layer`` (so all start with the same weights, as in
    PyTorch) applied in turn, then the optional final ``norm``. Submodules: layers.0.., norm."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        _check_stack("TransformerEncoder", "encoder_layer", encoder_layer, num_layers, norm)
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """``num_layers`` deep copies of ``decoder_layer`` applied in turn, then the optional final ``norm``."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        _check_stack("TransformerDecoder", "decoder_layer", decoder_layer, num_layers, norm)
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """The encoder-decoder Transformer: ``forward(src, tgt, src_mask, tgt_mask, memory_mask,
    src_key_padding_mask, tgt_key_padding_mask, memory_key_padding_mask)``. All weight matrices
    are re-initialised with xavier_uniform_ (as PyTorch does)."""

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                            batch_first, norm_first, bias, **kw)
            self.encoder = TransformerEncoder(layer, num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                            batch_first, norm_first, bias, **kw)
            self.decoder = TransformerDecoder(layer, num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        return causal_mask(sz, dtype=dtype, device=device)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)


# ====================================================================== positional encodings
def _check_pe_input(m, x, offset):
    """A positional encoding's input: a float tensor (T, d_model) or 3-d with last dim d_model; offset >= 0."""
    op = type(m).__name__
    check_tensor(x, op)
    if x.dtype.kind != "f":
        raise DTypeError(f"{op}: input must be a floating point tensor, got dtype {x.dtype}")
    if x.ndim not in (2, 3) or x.shape[-1] != m.d_model:
        raise ShapeError(f"{op}: expected input (T, {m.d_model}) or 3-d with last dim d_model={m.d_model}, "
                         f"got shape {tuple(x.shape)}")
    check_size(offset, op, "offset")


class SinusoidalPositionalEncoding(Module):
    """Adds the fixed sinusoidal position code of Vaswani et al. (2017), then dropout::

        PE[pos, 2i]     = sin(pos / 10000^(2i / d_model))
        PE[pos, 2i + 1] = cos(pos / 10000^(2i / d_model))

    ``forward(x, offset=0)``: x (T, N, d_model) (or (N, T, d_model) with ``batch_first=True``,
    or (T, d_model)); row ``offset + t`` of PE is added at step t (``offset`` for incremental
    decoding). PE is a non-persistent buffer (not in the state dict; it is recomputed).
    A minigen module (PyTorch has no class for it).
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0, batch_first: bool = False,
                 base: float = 10000.0):
        super().__init__()
        op = "SinusoidalPositionalEncoding"
        d_model, max_len = check_size(d_model, op, "d_model"), check_size(max_len, op, "max_len")
        batch_first = check_flag(batch_first, op, "batch_first")
        base = check_number(base, op, "base", lo=0.0)
        check_fits_memory(max_len * d_model, 8, op, "the position table")
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        pos = np.arange(max_len, dtype=np.float64)[:, None]
        div = np.exp(-math.log(base) * np.arange(0, d_model, 2, dtype=np.float64) / d_model)
        pe = np.zeros((max_len, d_model))
        pe[:, 0::2] = np.sin(pos * div)
        pe[:, 1::2] = np.cos(pos * div[: d_model // 2])
        from ...tensor import get_default_dtype

        self.register_buffer("pe", Tensor._make(pe.astype(get_default_dtype())), persistent=False)
        self.dropout = Dropout(dropout)

    def forward(self, x, offset: int = 0):
        _check_pe_input(self, x, offset)
        T = x.shape[1] if (self.batch_first and x.ndim == 3) else x.shape[0]
        if offset + T > self.max_len:
            raise ShapeError(f"sequence of length {T} at offset {offset} exceeds max_len={self.max_len}")
        pe = self.pe[offset:offset + T]
        if pe.dtype != x.dtype:
            pe = pe.to(x.dtype)
        if x.ndim == 3:
            pe = pe.reshape(1, T, self.d_model) if self.batch_first else pe.reshape(T, 1, self.d_model)
        return self.dropout(x + pe)

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"


class LearnedPositionalEncoding(Module):
    """Adds a learned vector per position (GPT-2 style), then dropout:  y_t = x_t + weight[offset + t].

    ``weight``: (max_len, d_model), initialised N(0, init_std^2) (0.02 as in GPT-2).
    ``forward(x, offset=0)`` with x (T, N, d_model), (N, T, d_model) if ``batch_first``, or (T, d_model).
    A minigen module (PyTorch has no class for it; it equals ``x + Embedding(max_len, d)(arange(T))``).
    """

    def __init__(self, max_len: int, d_model: int, dropout: float = 0.0, batch_first: bool = False,
                 init_std: float = 0.02, device=None, dtype=None):
        super().__init__()
        op = "LearnedPositionalEncoding"
        max_len, d_model = check_size(max_len, op, "max_len"), check_size(d_model, op, "d_model")
        batch_first = check_flag(batch_first, op, "batch_first")
        init_std = check_number(init_std, op, "init_std", lo=0.0)
        check_float_dtype(dtype, op)
        check_device(device, op)
        self.max_len, self.d_model, self.batch_first, self.init_std = max_len, d_model, batch_first, init_std
        self.weight = new_param(max_len, d_model, dtype=dtype, device=device)
        self.dropout = Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self, generator=None):
        init.normal_(self.weight, 0.0, self.init_std, generator=generator)

    def forward(self, x, offset: int = 0):
        _check_pe_input(self, x, offset)
        T = x.shape[1] if (self.batch_first and x.ndim == 3) else x.shape[0]
        if offset + T > self.max_len:
            raise ShapeError(f"sequence of length {T} at offset {offset} exceeds max_len={self.max_len}")
        pe = self.weight[offset:offset + T]
        if x.ndim == 3:
            pe = pe.reshape(1, T, self.d_model) if self.batch_first else pe.reshape(T, 1, self.d_model)
        return self.dropout(x + pe)

    def extra_repr(self):
        return f"max_len={self.max_len}, d_model={self.d_model}, batch_first={self.batch_first}"
