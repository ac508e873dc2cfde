"""Byte-pair encoding (BPE) tokenizer, byte-level.

The algorithm (Sennrich et al. 2016, after Gage 1994), on UTF-8 *bytes*:

    start:  vocabulary V_0 = the 256 byte values, every text = a sequence of bytes
    repeat: (a, b) = argmax_{pairs} count(a b)          (over the training corpus)
            new token t = |V|, bytes(t) = bytes(a) + bytes(b)
            replace every non-overlapping occurrence of "a b" (left to right) by t
            merges.append((a, b))

Encoding applies the learned merges in the order they were learned (lowest rank
first) to each pre-token; decoding concatenates ``bytes(t)`` and decodes UTF-8.
Because the base vocabulary holds every byte, *any* string encodes (no unknown
token) and ``decode(encode(s)) == s`` exactly.

Choices, documented:
- **byte-level** (not char-level): base vocabulary = 256 bytes, as GPT-2 does.
- **pre-tokenization**: the text is first cut into chunks (an optional leading space
  followed by a run of letters, of digits, or of other non-space symbols; or a run
  of whitespace) and merges never cross a chunk boundary, so tokens do not glue
  the end of one word to the start of the next. ``pattern=None`` disables it (the
  whole text is one chunk).
- **ties**: when several pairs have the same count, the pair with the smallest
  ``(a, b)`` ids wins, so training is deterministic.
- pair counts in a run ``a a a`` count overlapping pairs (2), the replacement is
  left-to-right non-overlapping (``a a a -> t a``).

Saved as JSON (``save``/``load``): the merges, the pattern and the special tokens.
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict

__all__ = ["BPETokenizer", "DEFAULT_PATTERN"]

# an optional space + letters | digits | other symbols (underscore counted as a symbol);
# whitespace runs (leaving the last space to the next word); any remaining character.
DEFAULT_PATTERN = r" ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+|[\s\S]"
_FORMAT = "minigen-bpe"


def _merge_word(word, pair, new_id):
    """Replace non-overlapping occurrences of ``pair`` in the tuple ``word`` (left to right)."""
    a, b = pair
    out = []
    i, n = 0, len(word)
    while i < n:
        if i + 1 < n and word[i] == a and word[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def _pairs(word):
    return zip(word, word[1:])


class BPETokenizer:
    """A byte-level BPE tokenizer.

    >>> tok = BPETokenizer.train("aaabdaaabac", vocab_size=259, pattern=None)
    >>> tok.merges
    [(97, 97), (97, 98), (256, 257)]
    >>> tok.decode(tok.encode("aaabdaaabac")) == "aaabdaaabac"
    True
    """

    def __init__(self, merges=(), pattern: str | None = DEFAULT_PATTERN, special_tokens=None):
        self.merges = [tuple(int(x) for x in m) for m in merges]
        self.pattern = pattern
        self._re = re.compile(pattern) if pattern is not None else None
        # vocab: id -> bytes
        self.vocab = {i: bytes([i]) for i in range(256)}
        self.ranks = {}
        for r, (a, b) in enumerate(self.merges):
            if a not in self.vocab or b not in self.vocab:
                raise ValueError(f"BPE merge {r} refers to unknown token(s) {(a, b)}")
            self.vocab[256 + r] = self.vocab[a] + self.vocab[b]
            self.ranks[(a, b)] = r
        self.special_tokens = dict(special_tokens or {})  # str -> id (ids after the merges)
        for s, i in self.special_tokens.items():
            self.vocab[int(i)] = s.encode("utf-8")
        self._special_re = (re.compile("(" + "|".join(re.escape(s) for s in sorted(self.special_tokens, key=len,
                                                                                        reverse=True)) + ")")
                            if self.special_tokens else None)
        self._cache = {}

    # ------------------------------------------------------------------ properties
    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges) + len(self.special_tokens)

    def __len__(self):
        return self.vocab_size

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str | None = DEFAULT_PATTERN, special_tokens=(),
              verbose: bool = False) -> "BPETokenizer":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges on ``text``.

        Works on the distinct pre-tokens with their counts and keeps the pair counts
        up to date incrementally (only the words that contain the merged pair are
        recounted), so training on a megabyte of text takes seconds.
        Stops early when no pair occurs twice.
        """
        n_merges = int(vocab_size) - 256 - len(special_tokens)
        if n_merges < 0:
            raise ValueError(f"vocab_size must be >= 256 + number of special tokens, got {vocab_size}")
        tmp = cls((), pattern)
        chunks = tmp._chunks(text)
        word_counts = Counter(chunks)
        words = [tuple(w.encode("utf-8", "surrogatepass")) for w in word_counts]
        freqs = list(word_counts.values())
        pair_counts = Counter()
        where = defaultdict(set)  # pair -> indices of words that contain it
        for wi, (w, f) in enumerate(zip(words, freqs)):
            for p in _pairs(w):
                pair_counts[p] += f
                where[p].add(wi)
        merges = []
        for step in range(n_merges):
            if not pair_counts:
                break
            # most frequent pair; ties -> smallest ids
            best = min(pair_counts.items(), key=lambda kv: (-kv[1], kv[0]))
            pair, count = best
            if count < 2:
                break
            new_id = 256 + len(merges)
            merges.append(pair)
            for wi in list(where.pop(pair, ())):
                w, f = words[wi], freqs[wi]
                for p in _pairs(w):
                    pair_counts[p] -= f
                    if pair_counts[p] <= 0:
                        del pair_counts[p]
                nw = _merge_word(w, pair, new_id)
                words[wi] = nw
                for p in _pairs(w):
                    if p in where and p != pair:
                        where[p].discard(wi)
                for p in _pairs(nw):
                    pair_counts[p] += f
                    where[p].add(wi)
            pair_counts.pop(pair, None)
            if verbose and step % 100 == 0:
                print(f"bpe merge {step}: {pair} -> {new_id} (count {count})")
        specials = {s: 256 + len(merges) + i for i, s in enumerate(special_tokens)}
        return cls(merges, pattern, specials)

    # ------------------------------------------------------------------ encode / decode
    def _chunks(self, text: str):
        if self._re is None:
            return [text] if text else []
        return self._re.findall(text)

    def _encode_chunk(self, chunk: str):
        hit = self._cache.get(chunk)
        if hit is not None:
            return hit
        ids = list(chunk.encode("utf-8", "surrogatepass"))
        ranks = self.ranks
        while len(ids) >= 2:
            # the pair with the lowest merge rank present in the chunk
            best, best_rank = None, None
            for p in zip(ids, ids[1:]):
                r = ranks.get(p)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = p, r
            if best is None:
                break
            ids = list(_merge_word(ids, best, 256 + best_rank))
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def encode(self, text: str, allowed_special: bool = True):
        """Text -> list of token ids. Special tokens in the text map to their ids when ``allowed_special``."""
        if not isinstance(text, str):
            raise TypeError(f"BPETokenizer.encode expects a str, got {type(text).__name__}")
        out = []
        parts = self._special_re.split(text) if (self._special_re is not None and allowed_special) else [text]
        for part in parts:
            if part in self.special_tokens and allowed_special:
                out.append(self.special_tokens[part])
                continue
            for ch in self._chunks(part):
                out.extend(self._encode_chunk(ch))
        return out

    def decode_bytes(self, ids) -> bytes:
        try:
            return b"".join(self.vocab[int(i)] for i in ids)
        except KeyError as e:
            raise ValueError(f"token id {e.args[0]} is out of range for a BPE vocabulary of size "
                             f"{self.vocab_size}") from None

    def decode(self, ids, errors: str = "replace") -> str:
        """Token ids -> text. Invalid UTF-8 (possible for arbitrary id sequences) becomes U+FFFD."""
        b = self.decode_bytes(ids)
        try:
            return b.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return b.decode("utf-8", errors)

    def token_str(self, i: int) -> str:
        """A printable form of one token (for inspecting the vocabulary)."""
        return self.vocab[int(i)].decode("utf-8", "backslashreplace")

    # ------------------------------------------------------------------ save / load
    def to_dict(self) -> dict:
        return {"format": _FORMAT, "version": 1, "kind": "byte-level", "pattern": self.pattern,
                "merges": [list(m) for m in self.merges], "special_tokens": self.special_tokens}

    @classmethod
    def from_dict(cls, d: dict) -> "BPETokenizer":
        if d.get("format") != _FORMAT:
            raise ValueError(f"not a minigen BPE tokenizer file (format={d.get('format')!r})")
        return cls(d["merges"], d.get("pattern"), d.get("special_tokens"))

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f)

    @classmethod
    def load(cls, path) -> "BPETokenizer":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def __repr__(self):
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, byte-level)"
