"""n-gram language model with add-k and interpolated Kneser-Ney smoothing.

An order-N model approximates P(X) = prod_t P(x_t | x_<t) by conditioning on the
last N-1 tokens only: P(x_t | x_<t) ~ P(x_t | h), h = x_{t-N+1} .. x_{t-1}.
(At the start of a sequence the history is shorter: the model of the available order is used.)

**add-k** (Laplace for k = 1), V = vocabulary size, c(.) = counts in the training text:

    P(w | h) = (c(h w) + k) / (sum_w' c(h w') + k V)

**interpolated Kneser-Ney** (Kneser & Ney 1995; Chen & Goodman 1998, eq. for IKN):

    P_m(w | h) = max(c_m(h w) - D_m, 0) / C_m(h)  +  D_m T_m(h) / C_m(h) * P_{m-1}(w | h')     if C_m(h) > 0
               = P_{m-1}(w | h')                                                              otherwise
    P_0(w)     = 1 / V

where h' is h without its first token, C_m(h) = sum_w c_m(h w), T_m(h) = #{w : c_m(h w) > 0}, and

    c_N(g) = count(g)                 (raw counts at the highest order)
    c_m(g) = N1+(. g) = #{v : count(v g) > 0}   for m < N   (continuation counts: in how many
                                                            distinct contexts g appears)
    D_m    = n1 / (n1 + 2 n2)         (Ney's estimate; n_r = number of m-grams with c_m = r)

Every P_m(. | h) sums to one over the vocabulary (tested).

The implementation is vectorised with NumPy: an m-gram (x_1..x_m) is the integer
code sum_j x_j V^(m-j), counts are ``np.unique`` over codes and look-ups are
``np.searchsorted``, so fitting and scoring a million characters take about a second.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["NGramLM"]


def _codes(x: np.ndarray, m: int, V: int) -> np.ndarray:
    """Codes of every m-gram of ``x`` (length len(x) - m + 1): code[t] encodes x[t : t + m]."""
    n = len(x) - m + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    c = np.zeros(n, dtype=np.int64)
    for j in range(m):
        c = c * V + x[j:j + n]
    return c


def _lookup(keys: np.ndarray, vals: np.ndarray, q: np.ndarray) -> np.ndarray:
    """vals[keys == q] for each q (0 where q is absent); ``keys`` sorted."""
    if len(keys) == 0:
        return np.zeros(q.shape, dtype=vals.dtype)
    pos = np.searchsorted(keys, q)
    pos = np.minimum(pos, len(keys) - 1)
    hit = keys[pos] == q
    return np.where(hit, vals[pos], 0)


class _Table:
    """Counts of one order m: m-gram codes -> c_m, and per-history totals C_m(h), T_m(h)."""

    def __init__(self, keys, counts, V):
        self.keys = keys
        self.counts = counts.astype(np.float64)
        hist = keys // V
        hkeys, start, types = np.unique(hist, return_index=True, return_counts=True)
        self.hkeys = hkeys
        self.htotal = np.add.reduceat(self.counts, start) if len(start) else np.zeros(0)
        self.htypes = types.astype(np.float64)

    def discount(self) -> float:
        n1 = float(np.sum(self.counts == 1))
        n2 = float(np.sum(self.counts == 2))
        if n1 == 0:
            return 0.5
        return n1 / (n1 + 2.0 * n2)


class NGramLM:
    """An order-``order`` n-gram LM over integer tokens ``0 .. vocab_size - 1``.

    ``smoothing``: ``"kn"`` (interpolated Kneser-Ney, default) or ``"add-k"`` (with ``k``).
    ``discount``: a fixed KN discount for every order instead of Ney's estimate.

    >>> lm = NGramLM(3, vocab_size=4).fit([0, 1, 2, 0, 1, 3, 0, 1, 2])
    >>> round(float(lm.next_token_probs([0, 1]).sum()), 12)
    1.0
    """

    def __init__(self, order: int, vocab_size: int, smoothing: str = "kn", k: float = 1.0, discount=None):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if smoothing not in ("kn", "add-k"):
            raise ValueError(f"smoothing must be 'kn' or 'add-k', got {smoothing!r}")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if order * math.log2(max(vocab_size, 2)) > 62:
            raise ValueError(f"vocab_size**order = {vocab_size}**{order} does not fit the int64 n-gram codes")
        if smoothing == "add-k" and k <= 0:
            raise ValueError(f"add-k smoothing needs k > 0, got {k}")
        self.order, self.V, self.smoothing, self.k = int(order), int(vocab_size), smoothing, float(k)
        self.fixed_discount = discount
        self.tables = {}     # m -> _Table (the counts the smoothing uses at order m)
        self.discounts = {}  # m -> D_m (KN)

    def _check(self, x):
        x = np.asarray(x, dtype=np.int64).ravel()
        if x.size and (x.min() < 0 or x.max() >= self.V):
            raise ValueError(f"token ids must lie in [0, {self.V}), got range [{x.min()}, {x.max()}]")
        return x

    # ------------------------------------------------------------------ fitting
    def fit(self, tokens) -> "NGramLM":
        x = self._check(tokens)
        V, N = self.V, self.order
        raw = {}
        for m in range(1, N + 1):
            keys, cnt = np.unique(_codes(x, m, V), return_counts=True)
            raw[m] = (keys, cnt)
        for m in range(1, N + 1):
            if self.smoothing == "add-k" or m == N:
                keys, cnt = raw[m]
            else:
                # continuation counts: N1+(. g) = number of distinct (m+1)-grams ending in g
                suffix = raw[m + 1][0] % (V ** m)
                keys, cnt = np.unique(suffix, return_counts=True)
            t = _Table(keys, cnt, V)
            self.tables[m] = t
            self.discounts[m] = float(self.fixed_discount) if self.fixed_discount is not None else t.discount()
        return self

    # ------------------------------------------------------------------ scoring
    def _prob_codes(self, m: int, gram_codes: np.ndarray) -> np.ndarray:
        """P_m(w | h) for m-gram codes ``gram_codes`` (h = first m-1 tokens, w = last)."""
        V = self.V
        if self.smoothing == "add-k":
            if m == 0:
                return np.full(gram_codes.shape, 1.0 / V)
            t = self.tables[m]
            c = _lookup(t.keys, t.counts, gram_codes)
            C = _lookup(t.hkeys, t.htotal, gram_codes // V)
            return (c + self.k) / (C + self.k * V)
        # interpolated Kneser-Ney, recursion from order 0 upwards
        p = np.full(gram_codes.shape, 1.0 / V)
        for j in range(1, m + 1):
            t, D = self.tables[j], self.discounts[j]
            g = gram_codes % (V ** j)  # the last j tokens
            c = _lookup(t.keys, t.counts, g)
            h = g // V
            C = _lookup(t.hkeys, t.htotal, h)
            T = _lookup(t.hkeys, t.htypes, h)
            safe = np.where(C > 0, C, 1.0)
            p = np.where(C > 0, np.maximum(c - D, 0.0) / safe + D * T / safe * p, p)
        return p

    def token_probs(self, tokens) -> np.ndarray:
        """P(x_t | history) for every position t of ``tokens`` (history truncated at the start)."""
        if not self.tables:
            raise RuntimeError("NGramLM: call fit() first")
        x = self._check(tokens)
        out = np.empty(len(x))
        for m in range(1, self.order + 1):
            codes = _codes(x, m, self.V)
            if m < self.order:  # positions t = m - 1 only (the history is exactly m - 1 long)
                if m - 1 < len(x):
                    out[m - 1] = self._prob_codes(m, codes[:1])[0]
            else:
                out[m - 1:] = self._prob_codes(m, codes)
        return out

    def nll(self, tokens) -> float:
        """Mean negative log-likelihood in nats per token (comparable to a neural LM's cross-entropy)."""
        return float(-np.mean(np.log(self.token_probs(tokens))))

    def perplexity(self, tokens) -> float:
        """exp(mean NLL)."""
        return float(math.exp(self.nll(tokens)))

    def next_token_probs(self, history) -> np.ndarray:
        """The distribution P(. | history) over the whole vocabulary (uses the last order-1 tokens)."""
        if not self.tables:
            raise RuntimeError("NGramLM: call fit() first")
        h = self._check(history)[-(self.order - 1):] if self.order > 1 else np.zeros(0, dtype=np.int64)
        m = len(h) + 1
        hc = int(_codes(h, len(h), self.V)[0]) if len(h) else 0
        codes = hc * self.V + np.arange(self.V, dtype=np.int64)
        return self._prob_codes(m, codes)

    def generate(self, history, max_new_tokens: int, temperature: float = 1.0, generator=None):
        """Sample ``max_new_tokens`` tokens after ``history``; returns history + samples (a list)."""
        from .. import random as _random

        rng = _random._gen(generator).numpy
        out = [int(i) for i in self._check(history)]
        for _ in range(int(max_new_tokens)):
            p = self.next_token_probs(out) if out else self.next_token_probs([])
            if temperature != 1.0:
                if temperature <= 0:
                    out.append(int(np.argmax(p)))
                    continue
                logp = np.log(np.maximum(p, 1e-300)) / temperature
                p = np.exp(logp - logp.max())
            p = p / p.sum()
            out.append(int(rng.choice(self.V, p=p)))
        return out

    # ------------------------------------------------------------------ saving
    def state_dict(self) -> dict:
        """The fitted counts as arrays (what ``minigen.save`` writes; :meth:`from_state_dict` reads it back)."""
        st = {"order": self.order, "vocab_size": self.V, "smoothing": self.smoothing, "k": self.k,
              "discounts": {str(m): d for m, d in self.discounts.items()}, "tables": {}}
        for m, t in self.tables.items():
            st["tables"][str(m)] = {"keys": t.keys, "counts": t.counts}
        return st

    @classmethod
    def from_state_dict(cls, st) -> "NGramLM":
        lm = cls(int(st["order"]), int(st["vocab_size"]), str(st["smoothing"]), float(st["k"]))
        V = lm.V
        for m, t in st["tables"].items():
            keys = np.asarray(t["keys"].numpy() if hasattr(t["keys"], "numpy") else t["keys"], dtype=np.int64)
            counts = np.asarray(t["counts"].numpy() if hasattr(t["counts"], "numpy") else t["counts"],
                                dtype=np.float64)
            lm.tables[int(m)] = _Table(keys, counts, V)
        lm.discounts = {int(m): float(d) for m, d in st["discounts"].items()}
        return lm

    def __repr__(self):
        s = f"k={self.k}" if self.smoothing == "add-k" else "D=" + ",".join(
            f"{self.discounts[m]:.3f}" for m in sorted(self.discounts))
        return f"NGramLM(order={self.order}, V={self.V}, smoothing={self.smoothing}, {s})"
