"""Word2Vec: skip-gram with negative sampling (Mikolov et al. 2013), on minigen autograd.

Each word w has an input vector v_w (the embedding we keep) and an output vector u_w.
For a centre word c, an observed context word o (within a window around c) and K
noise words n_1..n_K drawn from the unigram distribution raised to 3/4, the loss is

    L(c, o) = -log sigma(u_o . v_c) - sum_{k=1..K} log sigma(-u_{n_k} . v_c)

(gradients, which autograd derives: dL/dv_c = (sigma(u_o.v_c) - 1) u_o + sum_k sigma(u_{n_k}.v_c) u_{n_k},
dL/du_o = (sigma(u_o.v_c) - 1) v_c, dL/du_{n_k} = sigma(u_{n_k}.v_c) v_c).

Training data: every (c, o) pair with |pos(o) - pos(c)| <= b, b drawn uniformly from 1..window per
centre (the "dynamic window"); frequent words are subsampled: a token of word w with corpus frequency
f(w) is discarded with probability max(0, 1 - sqrt(t / f(w))).

Training (minibatch SGD with the C tool's linearly decayed learning rate) is :mod:`minigen.recipes.word2vec`.
Similarity is the cosine  cos(a, b) = v_a . v_b / (|v_a| |v_b|); a document vector is the mean of
the vectors of its in-vocabulary words, d = (1/n) sum_i v_{w_i}.
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

from .. import nn
from ..random import _gen
from ..tensor import Tensor

__all__ = ["Word2Vec", "tokenize_words", "build_vocab", "skipgram_pairs", "subsample"]

_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")


def tokenize_words(text: str):
    """Lower-cased words (letters, with an inner apostrophe: "o'er", "i'll")."""
    return _WORD_RE.findall(text.lower())


def build_vocab(words, min_count: int = 1, max_size: int | None = None):
    """(itos, counts): words seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
    c = Counter(words)
    items = sorted(((w, n) for w, n in c.items() if n >= min_count), key=lambda kv: (-kv[1], kv[0]))
    if max_size is not None:
        items = items[:max_size]
    return [str(w) for w, _ in items], np.array([n for _, n in items], dtype=np.int64)


def subsample(ids: np.ndarray, counts: np.ndarray, t: float, rng) -> np.ndarray:
    """Drop each token of word w with probability max(0, 1 - sqrt(t / f(w))), f = relative frequency."""
    if t is None or t <= 0:
        return ids
    f = counts / counts.sum()
    keep_p = np.minimum(1.0, np.sqrt(t / f))
    return ids[rng.random(len(ids)) < keep_p[ids]]


def skipgram_pairs(ids: np.ndarray, window: int, rng=None):
    """All (centre, context) pairs with the dynamic window: centre i keeps offsets 1..b_i, b_i ~ U{1..window}.

    With ``rng=None`` every offset up to ``window`` is kept (a fixed window).
    """
    n = len(ids)
    b = rng.integers(1, window + 1, size=n) if rng is not None else np.full(n, window)
    cs, os_ = [], []
    for off in range(1, window + 1):
        idx = np.nonzero(b[: n - off] >= off)[0] if n > off else np.zeros(0, dtype=np.int64)
        cs.append(ids[idx]); os_.append(ids[idx + off])            # context to the right of the centre
        idx = np.nonzero(b[off:] >= off)[0] + off if n > off else np.zeros(0, dtype=np.int64)
        cs.append(ids[idx]); os_.append(ids[idx - off])            # context to the left
    return np.concatenate(cs).astype(np.int64), np.concatenate(os_).astype(np.int64)


class Word2Vec(nn.Module):
    """Skip-gram with negative sampling. ``forward(center, context, negatives)`` returns the mean loss L.

    ``in_embed`` (V, d) holds v_w (initialised U(-0.5/d, 0.5/d)), ``out_embed`` (V, d) holds u_w (zeros),
    as in the reference C implementation. ``itos`` (the vocabulary, a list of words) is set by the recipe.
    """

    def __init__(self, vocab_size: int, dim: int = 100, generator=None):
        super().__init__()
        rng = _gen(generator).numpy
        self.vocab_size, self.dim = int(vocab_size), int(dim)
        self.in_embed = nn.Parameter(((rng.random((vocab_size, dim)) - 0.5) / dim).astype(np.float32))
        self.out_embed = nn.Parameter(np.zeros((vocab_size, dim), dtype=np.float32))
        self.itos = None  # the vocabulary, set by the recipe

    def forward(self, center, context, negatives):
        center, context, negatives = (x if isinstance(x, Tensor) else Tensor._make(np.asarray(x, dtype=np.int64))
                                      for x in (center, context, negatives))
        emb = nn.functional.embedding
        v = emb(center, self.in_embed)                  # (B, d)     v_c
        u_o = emb(context, self.out_embed)              # (B, d)     u_o
        u_n = emb(negatives, self.out_embed)            # (B, K, d)  u_{n_k}
        pos = (v * u_o).sum(-1)                         # u_o . v_c
        neg = (u_n * v.reshape(v.shape[0], 1, -1)).sum(-1)   # u_{n_k} . v_c for every k
        loss = -(nn.functional.logsigmoid(pos) + nn.functional.logsigmoid(-neg).sum(-1))
        return loss.mean()

    # ------------------------------------------------------------------ queries
    def vectors(self) -> np.ndarray:
        """The word vectors v_w as a NumPy array (V, d)."""
        return np.asarray(self.in_embed.detach().numpy(), dtype=np.float64)

    def _index(self, word):
        if isinstance(word, (int, np.integer)):
            return int(word)
        if self.itos is None:
            raise KeyError("this Word2Vec has no vocabulary attached; pass word ids")
        if not hasattr(self, "_stoi") or self._stoi is None or len(self._stoi) != len(self.itos):
            self._stoi = {w: i for i, w in enumerate(self.itos)}
        try:
            return self._stoi[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary") from None

    def similarity(self, a, b) -> float:
        """cos(v_a, v_b)."""
        W = self.vectors()
        x, y = W[self._index(a)], W[self._index(b)]
        return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-12))

    def most_similar(self, word, k: int = 5):
        """The k nearest words by cosine similarity (excluding the word itself): [(word, cos), ...]."""
        W = self.vectors()
        Wn = W / (np.linalg.norm(W, axis=1, keepdims=True) + 1e-12)
        i = self._index(word)
        sims = Wn @ Wn[i]
        sims[i] = -np.inf
        top = np.argsort(-sims, kind="stable")[:k]
        names = self.itos if self.itos is not None else list(range(len(W)))
        return [(names[j], float(sims[j])) for j in top]

    def doc_vector(self, words) -> np.ndarray:
        """Mean of the vectors of the in-vocabulary words (zeros if none)."""
        W = self.vectors()
        ids = []
        for w in words:
            try:
                ids.append(self._index(w))
            except KeyError:
                pass
        return W[ids].mean(0) if ids else np.zeros(W.shape[1])
