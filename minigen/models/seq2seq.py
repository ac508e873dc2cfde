"""Transformer encoder-decoder (Vaswani et al. 2017) for sequence-to-sequence, on a toy task made on the fly.

The model factorises the probability of an output y given an input x left to right,

    P(y | x) = prod_t P(y_t | y_<t, x),     P(y_t | y_<t, x) = softmax(W_out d_t),

    memory = Enc(x):  e = sqrt(D) E_src[x] + PE;  per layer (pre-norm):
                      e = e + SelfAttn(LN(e)) (keys restricted to non-padding source tokens)
                      e = e + FFN(LN(e));     memory = LN(e)
    d      = Dec(y_<t, memory):  u = sqrt(D) E_tgt[<bos>, y_1 .. y_{t-1}] + PE;  per layer:
                      u = u + SelfAttn(LN(u))   causal: position t sees positions <= t only
                      u = u + CrossAttn(LN(u), memory)   softmax(Q K_mem^T / sqrt(d_head)) V_mem
                      u = u + FFN(LN(u));       d = LN(u)

with Attn(Q, K, V) = softmax(Q K^T / sqrt(d_head) + M) V per head, PE the sinusoidal position code,
FFN(u) = W_2 ReLU(W_1 u). The blocks are ``minigen.nn.Transformer`` (``norm_first=True``, batch-first).
Training minimises the teacher-forced cross-entropy -1/N sum_t log P(y_t | y_<t, x) over the
non-padding target tokens; decoding is greedy (argmax, one token at a time, until <eos>).

Token ids: digits 0-9, PAD = 10, BOS = 11, EOS = 12. The toy tasks it is trained on (reverse or sort a
digit string) and the exact-match evaluation: :mod:`minigen.recipes.seq2seq`.
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..tensor import Tensor

__all__ = ["PAD", "BOS", "EOS", "VOCAB", "Seq2SeqTransformer"]

PAD, BOS, EOS = 10, 11, 12
VOCAB = 13


class Seq2SeqTransformer(nn.Module):
    """Embeddings + sinusoidal positions + ``nn.Transformer`` (pre-norm) + output projection."""

    def __init__(self, vocab_size: int = VOCAB, d_model: int = 64, nhead: int = 4, num_encoder_layers: int = 2,
                 num_decoder_layers: int = 2, dim_feedforward: int = 256, dropout: float = 0.0, max_len: int = 64,
                 pad_id: int = PAD):
        super().__init__()
        self.d_model, self.pad_id, self.vocab_size = d_model, pad_id, vocab_size
        self.src_embed = nn.Embedding(vocab_size, d_model)
        self.tgt_embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.SinusoidalPositionalEncoding(d_model, max_len, dropout=dropout, batch_first=True)
        self.transformer = nn.Transformer(d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward,
                                          dropout, batch_first=True, norm_first=True)
        self.out = nn.Linear(d_model, vocab_size)
        with no_grad():
            nn.init.normal_(self.src_embed.weight, 0.0, d_model ** -0.5)
            nn.init.normal_(self.tgt_embed.weight, 0.0, d_model ** -0.5)

    def _src_pad_mask(self, src):
        return Tensor._make(src.array == self.pad_id)  # True = this key is padding (ignored)

    def encode(self, src):
        x = self.pos(self.src_embed(src) * math.sqrt(self.d_model))
        return self.transformer.encoder(x, src_key_padding_mask=self._src_pad_mask(src))

    def decode(self, tgt_in, memory, src):
        T = tgt_in.shape[1]
        u = self.pos(self.tgt_embed(tgt_in) * math.sqrt(self.d_model))
        causal = nn.Transformer.generate_square_subsequent_mask(T, dtype=u.dtype)
        d = self.transformer.decoder(u, memory, tgt_mask=causal, tgt_is_causal=True,
                                     memory_key_padding_mask=self._src_pad_mask(src))
        return self.out(d)

    def forward(self, src, tgt_in):
        """Teacher-forced logits (B, T, V) for every target position."""
        src = src if isinstance(src, Tensor) else Tensor(np.asarray(src, dtype=np.int64))
        tgt_in = tgt_in if isinstance(tgt_in, Tensor) else Tensor(np.asarray(tgt_in, dtype=np.int64))
        return self.decode(tgt_in, self.encode(src), src)

    def loss(self, src, tgt_in, tgt_out):
        logits = self(src, tgt_in)
        B, T, V = logits.shape
        return F.cross_entropy(logits.reshape(B * T, V), tgt_out.reshape(B * T), ignore_index=self.pad_id)

    def greedy_decode(self, src, max_new_tokens: int):
        """Argmax decoding from <bos>; returns (B, max_new_tokens) ids (after <eos>: PAD)."""
        src = src if isinstance(src, Tensor) else Tensor(np.asarray(src, dtype=np.int64))
        was = self.training
        self.eval()
        try:
            with no_grad():
                memory = self.encode(src)
                B = src.shape[0]
                ys = np.full((B, 1), BOS, dtype=np.int64)
                done = np.zeros(B, dtype=bool)
                for _ in range(int(max_new_tokens)):
                    logits = self.decode(Tensor._make(ys), memory, src)
                    nxt = np.asarray(logits.array[:, -1, :].argmax(-1)).astype(np.int64)
                    nxt = np.where(done, PAD, nxt)
                    done |= nxt == EOS
                    ys = np.concatenate([ys, nxt[:, None]], axis=1)
                    if done.all():
                        break
        finally:
            self.train(was)
        out = np.full((ys.shape[0], max_new_tokens), PAD, dtype=np.int64)
        out[:, :ys.shape[1] - 1] = ys[:, 1:]
        return out
