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

Similarity is the cosine  cos(a, b) = v_a . v_b / (|v_a| |v_b|); a document vector is the mean of
the vectors of its in-vocabulary words, d = (1/n) sum_i v_{w_i}.
"""
from __future__ import annotations

import math
import os
import re
import time
from collections import Counter

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..random import _gen
from ..tensor import Tensor

__all__ = ["Word2Vec", "tokenize_words", "build_vocab", "skipgram_pairs", "subsample", "train_word2vec"]

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
    as in the reference C implementation.
    """

    def __init__(self, vocab_size: int, dim: int = 100, generator=None):
        super().__init__()
        rng = _gen(generator).numpy
        self.vocab_size, self.dim = int(vocab_size), int(dim)
        self.in_embed = nn.Parameter(((rng.random((vocab_size, dim)) - 0.5) / dim).astype(np.float32))
        self.out_embed = nn.Parameter(np.zeros((vocab_size, dim), dtype=np.float32))
        self.itos = None  # set by train_word2vec

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


def train_word2vec(sentences_or_ids, itos=None, counts=None, dim=100, window=5, negatives=5, epochs=1,
                   batch_size=1024, lr=0.025, min_lr=1e-4, sample=1e-3, min_count=5, generator=None,
                   log=None, progress=False, out_dir=None, resume=False, stop_after=None):
    """Train a :class:`Word2Vec` by minibatch SGD on the mean loss, learning rate decayed linearly.

    ``sentences_or_ids``: a list of words (tokens; the vocabulary is built with ``min_count``) or an
    array of word ids with ``itos``/``counts`` given. ``lr`` is per pair, as in the C tool, which
    applies one SGD step per pair: here the steps of a batch of pairs are summed and applied at once
    (``param -= lr * batch_size * grad(mean loss)``), like the C tool's lock-free threads. On a
    vocabulary of a few thousand words a row rarely occurs twice in a batch and this is the C tool's
    update; on a tiny vocabulary (tens of words) the same row is hit by hundreds of pairs per batch
    and the summed step is that many times larger: lower ``lr`` or ``batch_size`` there.

    With ``out_dir``, a checkpoint (model, vocabulary, step, RNG state) is written after every epoch
    to ``out_dir/checkpoint.safetensors`` and ``resume=True`` continues from it (the same run, exactly).
    ``stop_after``: stop after that many epochs of this call (a checkpoint is there to resume from).
    Returns the model (with ``model.itos`` set) and a list of {step, epoch, loss, lr, time} records.
    """
    from ..io import load as _load, save as _save

    g = _gen(generator)
    rng = g.numpy
    if itos is None:
        words = list(sentences_or_ids)
        itos, counts = build_vocab(words, min_count)
        stoi = {w: i for i, w in enumerate(itos)}
        ids = np.array([stoi[w] for w in words if w in stoi], dtype=np.int64)
    else:
        ids = np.asarray(sentences_or_ids, dtype=np.int64)
        counts = np.asarray(counts if counts is not None else np.bincount(ids, minlength=len(itos)))
    V = len(itos)
    model = Word2Vec(V, dim, generator=g)
    model.itos = list(itos)
    noise = counts.astype(np.float64) ** 0.75
    noise_cdf = np.cumsum(noise / noise.sum())
    # the number of steps, for the linear decay (estimated from one pass of subsampling + windows)
    est_pairs = len(subsample(ids, counts, sample, np.random.default_rng(0))) * (window + 1)
    total_steps = max(1, epochs * math.ceil(est_pairs / batch_size))
    history, step, start_epoch, t0 = [], 0, 0, time.time()
    ckpt = os.path.join(out_dir, "checkpoint.safetensors") if out_dir else None
    if resume and ckpt and os.path.exists(ckpt):
        st = _load(ckpt)
        if list(st["itos"]) != model.itos:
            raise ValueError(f"{ckpt}: the checkpoint was trained on a different vocabulary")
        model.load_state_dict(st["model"])
        g.set_state(st["rng"])
        step, start_epoch, history = int(st["step"]), int(st["epoch"]), list(st["history"])
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=min(step, total_steps), desc="word2vec", unit="step")
    last = epochs if stop_after is None else min(epochs, start_epoch + int(stop_after))
    for ep in range(start_epoch, last):
        kept = subsample(ids, counts, sample, rng)
        c_all, o_all = skipgram_pairs(kept, window, rng)
        perm = rng.permutation(len(c_all))
        c_all, o_all = c_all[perm], o_all[perm]
        for s in range(0, len(c_all), batch_size):
            c, o = c_all[s:s + batch_size], o_all[s:s + batch_size]
            neg = np.minimum(np.searchsorted(noise_cdf, rng.random((len(c), negatives))), V - 1)
            loss = model(c, o, neg)
            model.zero_grad()
            loss.backward()
            a = max(min_lr, lr * (1.0 - step / total_steps))
            with no_grad():
                # lr * (sum of the per-pair gradients) = lr * batch * grad(mean loss)
                for p in (model.in_embed, model.out_embed):
                    p.array -= (a * len(c)) * p.grad.array
            step += 1
            if step % 50 == 0 or s + batch_size >= len(c_all):
                rec = {"split": "train", "step": step, "epoch": ep, "loss": float(loss.item()), "lr": a,
                       "time": time.time() - t0}
                history.append(rec)
                if log is not None:
                    log(rec)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.item()):.4f}")
        if ckpt:
            _save({"model": model.state_dict(), "itos": model.itos, "rng": g.get_state(), "step": step,
                   "epoch": ep + 1, "history": history}, ckpt)
    if bar is not None:
        bar.close()
    return model, history
