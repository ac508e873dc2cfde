"""GPT: a decoder-only Transformer language model (Radford et al. 2018/2019), written from its equations.

The model factorises the probability of a sequence left to right,

    P(X) = prod_t P(x_t | x_<t),      P(x_t | x_<t) = softmax(logits_t),

and computes the logits of every position in one pass. Shapes: B batch, T time, C = n_embd channels,
H heads of size d = C / H, V vocabulary::

    h_0 = W_te[x] + W_pe[0..T-1]                                  (B, T, C) token + learned position embeddings
    for each of the L blocks (pre-norm, residual):
        a   = LayerNorm_1(h)
        q, k, v = a W_q, a W_k, a W_v        each split into H heads: (B, H, T, d)
        head = softmax(q k^T / sqrt(d) + M) v,   M_ij = 0 if j <= i else -inf   (causal self-attention)
        h   = h + concat(heads) W_o
        h   = h + W_2 GELU(W_1 LayerNorm_2(h))                     (the MLP, hidden width 4C)
    logits = LayerNorm_f(h) W_head                                 (B, T, V); W_head = W_te^T when tied

and the training loss is the mean cross-entropy  -1/(BT) sum log P(x_{t+1} | x_<=t).
Attention goes through ``F.scaled_dot_product_attention``.

**KV cache** (generation). Position t's keys and values depend only on tokens <= t, so when tokens are
appended one at a time the k, v of the earlier positions need not be recomputed: each layer keeps buffers
K, V of shape (B, H, block_size, d) (:class:`KVCache`); a step computes q, k, v of the new tokens only,
writes k, v at positions pos..pos+T_new-1 and attends q over K[:pos+T_new], V[:pos+T_new] with the causal
mask shifted by pos (query i sees keys j <= pos + i). The logits equal the full forward's (tested).
The position embeddings are absolute, so once a sequence outgrows ``block_size`` every token of the window
of the last ``block_size`` tokens changes position at each step: from there on each step encodes the window
afresh, exactly as without a cache (the cache pays for the first ``block_size`` tokens only).

Initialisation as GPT-2: weights N(0, 0.02), the residual output projections N(0, 0.02 / sqrt(2L)),
biases zero. :meth:`GPT.param_groups`: AdamW decays the 2-d weights only (matmul weights and the
embedding tables, as nanoGPT), not the biases and LayerNorm gains.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..backend import get_array_module, to_numpy
from ..autograd.grad_mode import no_grad
from ..errors import InvalidArgumentError, ShapeError
from ..nn import functional as F
from ..random import _gen
from ..tensor import Tensor
from .sampling import sample_logits

__all__ = ["GPTConfig", "GPT", "CausalSelfAttention", "MLP", "Block", "KVCache"]


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    tie_weights: bool = True


class KVCache:
    """Per-layer key/value buffers for incremental decoding: ``k[l], v[l]`` of shape (B, H, block_size, d).

    ``pos`` is the number of positions already stored. Arrays live on the device of the tokens.
    """

    def __init__(self, cfg: GPTConfig, batch_size: int, xp=np, dtype=np.float32):
        H, d = cfg.n_head, cfg.n_embd // cfg.n_head
        shape = (int(batch_size), H, cfg.block_size, d)
        self.k = [xp.zeros(shape, dtype=dtype) for _ in range(cfg.n_layer)]
        self.v = [xp.zeros(shape, dtype=dtype) for _ in range(cfg.n_layer)]
        self.block_size, self.batch_size, self.pos = cfg.block_size, int(batch_size), 0

    def reset(self):
        self.pos = 0


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: y = concat_h softmax(q_h k_h^T / sqrt(d) + M) v_h, then W_o."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.n_embd % cfg.n_head:
            raise InvalidArgumentError(f"n_embd {cfg.n_embd} must be divisible by n_head {cfg.n_head}")
        self.n_head, self.n_embd, self.dropout = cfg.n_head, cfg.n_embd, cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # [W_q W_k W_v] in one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)      # W_o
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, cache: KVCache = None, layer: int = 0):
        """x (B, T, C) -> (B, T, C). With ``cache``: x holds the new positions cache.pos .. cache.pos + T - 1."""
        B, T, C = x.shape
        H = self.n_head
        qkv = self.c_attn(x).reshape(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)  # (3, B, H, T, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                               is_causal=True)                   # (B, H, T, d)
        else:
            p = cache.pos
            K, V = cache.k[layer], cache.v[layer]
            K[:, :, p:p + T] = k.array
            V[:, :, p:p + T] = v.array
            keys, vals = Tensor._make(K[:, :, :p + T]), Tensor._make(V[:, :, :p + T])
            if T == 1:        # the newest position sees every stored key
                y = F.scaled_dot_product_attention(q, keys, vals)
            elif p == 0:      # a prefill: the ordinary causal mask
                y = F.scaled_dot_product_attention(q, keys, vals, is_causal=True)
            else:             # query i (absolute p + i) sees keys j <= p + i
                xp = x.xp
                mask = xp.arange(p + T)[None, :] <= (p + xp.arange(T))[:, None]
                y = F.scaled_dot_product_attention(q, keys, vals, attn_mask=Tensor._make(mask))
        y = y.permute(0, 2, 1, 3).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """y = W_2 GELU(W_1 x) (hidden width 4C), then dropout."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm Transformer block: h = h + Attn(LN_1(h)); h = h + MLP(LN_2(h)). Shapes (B, T, C)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x, cache: KVCache = None, layer: int = 0):
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The decoder-only Transformer LM (module docstring). ``forward(idx, targets=None) -> (logits, loss)``."""

    def __init__(self, cfg: GPTConfig = None, generator=None, **kwargs):
        super().__init__()
        cfg = cfg if cfg is not None else GPTConfig(**kwargs)
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self._init_weights(generator)
        if cfg.tie_weights:
            self.lm_head.weight = self.wte.weight  # logits = h W_te^T

    def _init_weights(self, generator):
        g = _gen(generator)
        std_proj = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, std_proj, generator=g)
            elif name.endswith(".weight") and p.ndim == 2:
                nn.init.normal_(p, 0.0, 0.02, generator=g)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count (shared tensors once); without the position embeddings by default, as nanoGPT."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def forward(self, idx, targets=None, cache: KVCache = None):
        """idx (B, T) token ids -> (logits (B, T, V), loss or None). ``cache``: append to a :class:`KVCache`."""
        idx = idx if isinstance(idx, Tensor) else Tensor(np.asarray(idx, dtype=np.int64))
        if idx.ndim != 2:
            raise ShapeError(f"GPT: idx must be (B, T) token ids, got shape {tuple(idx.shape)}")
        B, T = idx.shape
        start = 0 if cache is None else cache.pos
        if start + T > self.config.block_size:
            raise ShapeError(f"GPT: positions {start}..{start + T - 1} exceed block_size {self.config.block_size}")
        pos = Tensor._make(idx.xp.arange(start, start + T, dtype=np.int64))  # on idx's device
        x = self.drop(self.wte(idx) + self.wpe(pos))                          # (B, T, C)
        for i, block in enumerate(self.h):
            x = block(x, cache, i)
        if cache is not None:
            cache.pos += T
        logits = self.lm_head(self.ln_f(x))                                   # (B, T, V)
        loss = None
        if targets is not None:
            targets = targets if isinstance(targets, Tensor) else Tensor(np.asarray(targets, dtype=np.int64))
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
        return logits, loss

    # ---------------------------------------------------------------- optimisation
    def param_groups(self, weight_decay: float):
        """Two AdamW groups: 2-d weights (matmuls, embeddings) decayed; biases and LayerNorm gains not."""
        decay, no_decay = [], []
        for p in self.parameters():
            (decay if p.ndim >= 2 else no_decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    # ---------------------------------------------------------------- sampling
    def next_logits(self, idx, use_cache: bool = True):
        """Yield the last-position logits (B, V) after ``idx`` and after every token sent back with ``send``.

        A coroutine used by :meth:`generate`: ``g = model.next_logits(idx); z = next(g); z = g.send(ids)``.
        With ``use_cache`` the keys/values are kept in a :class:`KVCache` (module docstring); without, every
        step runs the full forward on the last ``block_size`` tokens.
        """
        arr = np.asarray(to_numpy(idx.array) if isinstance(idx, Tensor) else idx, dtype=np.int64)
        if arr.ndim == 1:
            arr = arr[None]
        bs = self.config.block_size
        w = self.wte.weight.array
        xp = get_array_module(w)

        def ids(a):  # token ids on the model's device
            return Tensor._make(xp.asarray(np.ascontiguousarray(a)))

        cache = KVCache(self.config, arr.shape[0], xp=xp, dtype=w.dtype) if use_cache else None
        logits, _ = self(ids(arr[:, -bs:]), cache=cache)
        while True:
            nxt = yield logits.array[:, -1, :]
            arr = np.concatenate([arr, np.asarray(to_numpy(nxt), dtype=np.int64).reshape(-1, 1)], axis=1)
            if cache is not None and cache.pos < bs:
                logits, _ = self(ids(arr[:, -1:]), cache=cache)
            else:  # no cache, or the window slides: every position moves, so the window is encoded afresh
                logits, _ = self(ids(arr[:, -bs:]))

    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k=None, top_p=None,
                 generator=None, use_cache: bool = True):
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T) and return the (B, T + n) ids.

        Each step takes the logits of the last position and samples with
        :func:`~minigen.models.sampling.sample_logits` (temperature 0 = greedy). ``use_cache``: keep a
        :class:`KVCache` (same tokens as without it, faster).
        """
        arr = np.asarray(to_numpy(idx.array) if isinstance(idx, Tensor) else idx, dtype=np.int64)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.shape[1] == 0:
            raise ShapeError("GPT.generate: idx needs at least one token per row")
        was = self.training
        self.eval()
        out = [arr]
        try:
            with no_grad():
                steps = self.next_logits(arr, use_cache)
                last = next(steps)
                for i in range(int(max_new_tokens)):
                    nxt = to_numpy(sample_logits(last, temperature, top_k, top_p, generator)).reshape(-1, 1)
                    out.append(nxt.astype(np.int64))
                    if i + 1 < int(max_new_tokens):
                        last = steps.send(nxt)
        finally:
            self.train(was)
        return Tensor._make(np.concatenate(out, axis=1))
