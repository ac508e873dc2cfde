"""Text data for language models: the bundled corpus, a character tokenizer, and two batchers.

- :func:`load_shakespeare`: the tiny-shakespeare corpus shipped with minigen
  (1,115,394 characters, 65 distinct); :func:`shakespeare_splits` is nanoGPT's
  split (first 90% train, last 10% validation) as token-id arrays.
- :class:`CharTokenizer`: one id per distinct character (sorted, as nanoGPT);
  ``decode(encode(s)) == s`` exactly; the vocabulary saves to / loads from JSON.
- :func:`get_batch`: nanoGPT's sampler for Transformers: ``batch_size`` random
  windows of ``block_size`` tokens; the target is the window shifted by one.
- :class:`BPTTIterator`: truncated back-propagation through time for RNNs. The
  stream is cut into ``batch_size`` equal contiguous rows ("batchify"); each step
  yields the next ``seq_len`` columns, so row ``b`` of consecutive batches
  continues the same text and an RNN can carry its hidden state across them.
"""
from __future__ import annotations

import json

import numpy as np

from .. import backend
from ..argcheck import check_flag, check_iterable, check_size
from ..errors import InvalidArgumentError, ShapeError
from ..random import _gen
from ..tensor import Tensor
from .dataset import DataError
from .mnist import bundled_file

__all__ = ["load_shakespeare", "shakespeare_splits", "CharTokenizer", "get_batch", "batchify", "BPTTIterator",
           "SHAKESPEARE_MD5"]

SHAKESPEARE_FILE = "tinyshakespeare.txt"
SHAKESPEARE_MD5 = "6fb458f1232090904fb40fe944165e91"


def load_shakespeare() -> str:
    """The bundled tiny-shakespeare text (public domain)."""
    with open(bundled_file(SHAKESPEARE_FILE), encoding="utf-8") as f:
        return f.read()


class CharTokenizer:
    """Character-level tokenizer: ``stoi[c]`` is the rank of ``c`` among the sorted distinct characters.

    ``CharTokenizer.fit(text)`` builds the vocabulary; ``CharTokenizer(chars)``
    uses a given one. Characters outside the vocabulary raise an error (or map
    to ``unk`` if one is given, a character that must be in the vocabulary).
    """

    def __init__(self, chars, unk=None):
        chars = check_iterable(chars, "CharTokenizer", "chars") if not isinstance(chars, str) else list(chars)
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise InvalidArgumentError("CharTokenizer: the vocabulary must be single characters")
        if len(set(chars)) != len(chars):
            raise InvalidArgumentError("CharTokenizer: the vocabulary has repeated characters")
        self.itos = chars
        self.stoi = {c: i for i, c in enumerate(chars)}
        if unk is not None and unk not in self.stoi:
            raise InvalidArgumentError(f"CharTokenizer: unk character {unk!r} is not in the vocabulary")
        self.unk = unk

    @classmethod
    def fit(cls, text: str, unk=None) -> "CharTokenizer":
        return cls(sorted(set(text)), unk=unk)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def __len__(self):
        return len(self.itos)

    def encode(self, text: str) -> list:
        """Text -> list of ids."""
        stoi = self.stoi
        if self.unk is not None:
            u = stoi[self.unk]
            return [stoi.get(c, u) for c in text]
        try:
            return [stoi[c] for c in text]
        except KeyError as e:
            raise InvalidArgumentError(f"CharTokenizer.encode: character {e.args[0]!r} is not in the vocabulary "
                                       f"of {self.vocab_size} characters") from None

    def encode_array(self, text: str) -> np.ndarray:
        """Text -> int64 NumPy array of ids (fast path for whole corpora)."""
        if not text:
            return np.zeros(0, dtype=np.int64)
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table_keys = np.array([ord(c) for c in self.itos], dtype=np.uint32)
        order = np.argsort(table_keys)
        pos = np.searchsorted(table_keys[order], codes)
        pos = np.minimum(pos, len(order) - 1)
        found = table_keys[order][pos] == codes
        if not found.all():
            if self.unk is None:
                bad = chr(int(codes[~found][0]))
                raise InvalidArgumentError(f"CharTokenizer.encode: character {bad!r} is not in the vocabulary "
                                           f"of {self.vocab_size} characters")
            ids = np.where(found, order[pos], self.stoi[self.unk])
        else:
            ids = order[pos]
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """Ids (list, array or Tensor) -> text."""
        if isinstance(ids, Tensor):
            ids = backend.to_numpy(ids.array)
        ids = np.asarray(ids).reshape(-1)
        n = self.vocab_size
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise InvalidArgumentError(f"CharTokenizer.decode: id out of range for a vocabulary of {n} "
                                       f"(got min {int(ids.min())}, max {int(ids.max())})")
        itos = self.itos
        return "".join(itos[i] for i in ids.tolist())

    def state_dict(self) -> dict:
        return {"type": "char", "chars": "".join(self.itos), "unk": self.unk}

    def save(self, path) -> None:
        """Write the vocabulary as JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.state_dict(), f, ensure_ascii=False)

    @classmethod
    def load(cls, path) -> "CharTokenizer":
        try:
            with open(path, encoding="utf-8") as f:
                st = json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not a tokenizer JSON file ({e})") from None
        if not isinstance(st, dict) or st.get("type") != "char" or not isinstance(st.get("chars"), str):
            raise DataError(f"{path}: not a CharTokenizer vocabulary (expected {{'type': 'char', 'chars': ...}})")
        return cls(list(st["chars"]), unk=st.get("unk"))

    def __repr__(self):
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def shakespeare_splits(tokenizer=None, train_fraction=0.9):
    """nanoGPT's split of tiny-shakespeare: ``(train_ids, val_ids, tokenizer)``.

    The first ``train_fraction`` (90%) of the characters is training data, the
    rest validation; ids are int64 NumPy arrays. The tokenizer is fit on the whole
    text (65 characters) unless one is given.
    """
    text = load_shakespeare()
    tok = tokenizer or CharTokenizer.fit(text)
    data = tok.encode_array(text)
    n = int(len(data) * train_fraction)
    return data[:n], data[n:], tok


def _as_1d_ids(data, what):
    try:
        arr = backend.to_numpy(data.array) if isinstance(data, Tensor) else np.asarray(data)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"{what}: data must be a 1-d sequence of token ids, got "
                                   f"{type(data).__name__} ({e})") from None
    if arr.ndim != 1:
        raise ShapeError(f"{what}: data must be a 1-d sequence of token ids, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise InvalidArgumentError(f"{what}: token ids must be integers, got dtype {arr.dtype}")
    return arr


def get_batch(data, block_size, batch_size, generator=None, device=None):
    """nanoGPT's batch sampler: ``(x, y)`` int64 Tensors of shape (batch_size, block_size).

    Start offsets ``i`` are drawn uniformly from ``[0, len(data) - block_size)``;
    ``x[b] = data[i_b : i_b + block_size]`` and ``y[b] = data[i_b + 1 : i_b + block_size + 1]``
    (the next token at every position).
    """
    arr = _as_1d_ids(data, "get_batch")
    block_size = check_size(block_size, "get_batch", "block_size", 1)
    batch_size = check_size(batch_size, "get_batch", "batch_size", 1)
    if block_size < 1 or batch_size < 1:
        raise InvalidArgumentError(f"get_batch: block_size and batch_size must be positive, "
                                   f"got {block_size} and {batch_size}")
    if len(arr) <= block_size:
        raise ShapeError(f"get_batch: data of length {len(arr)} is too short for block_size {block_size} "
                         "(need at least block_size + 1 tokens)")
    ix = _gen(generator).numpy.integers(0, len(arr) - block_size, size=batch_size)
    offs = ix[:, None] + np.arange(block_size)[None, :]
    x = arr[offs].astype(np.int64)
    y = arr[offs + 1].astype(np.int64)
    xt, yt = Tensor._make(x), Tensor._make(y)
    if device is not None:
        xt, yt = xt.to(device), yt.to(device)
    return xt, yt


def batchify(data, batch_size):
    """Cut a token stream into ``batch_size`` equal contiguous rows: shape (batch_size, len // batch_size).

    Row ``b`` is ``data[b*T:(b+1)*T]`` with ``T = len(data) // batch_size``; the
    leftover tail is dropped.
    """
    arr = _as_1d_ids(data, "batchify")
    batch_size = check_size(batch_size, "batchify", "batch_size", 1)
    if batch_size < 1:
        raise InvalidArgumentError(f"batchify: batch_size must be positive, got {batch_size}")
    t = len(arr) // batch_size
    if t < 2:
        raise ShapeError(f"batchify: {len(arr)} tokens are too few for {batch_size} rows of at least 2 tokens")
    return arr[: t * batch_size].reshape(batch_size, t).astype(np.int64)


class BPTTIterator:
    """Consecutive (input, target) chunks for truncated BPTT.

    ``BPTTIterator(data, batch_size, seq_len, batch_first=True, drop_last=False, device=None)``:
    the stream is batchified into rows of length T; batch ``k`` is
    ``x = rows[:, i:i+L]``, ``y = rows[:, i+1:i+1+L]`` with ``i = k * seq_len`` and
    ``L = min(seq_len, T - 1 - i)`` (the last chunk may be shorter unless
    ``drop_last``). With ``batch_first=False`` the Tensors are (L, batch_size).
    """

    def __init__(self, data, batch_size, seq_len, batch_first=True, drop_last=False, device=None):
        seq_len = check_size(seq_len, "BPTTIterator", "seq_len", 1)
        if seq_len < 1:
            raise InvalidArgumentError(f"BPTTIterator: seq_len must be positive, got {seq_len}")
        self.rows = batchify(data, batch_size)
        self.seq_len = int(seq_len)
        self.batch_first = check_flag(batch_first, "BPTTIterator", "batch_first")
        self.drop_last = check_flag(drop_last, "BPTTIterator", "drop_last")
        self.device = device

    def __len__(self):
        span = self.rows.shape[1] - 1  # positions that have a next token
        return span // self.seq_len if self.drop_last else -(-span // self.seq_len)

    def __iter__(self):
        T = self.rows.shape[1]
        for k in range(len(self)):
            i = k * self.seq_len
            L = min(self.seq_len, T - 1 - i)
            x, y = self.rows[:, i:i + L], self.rows[:, i + 1:i + 1 + L]
            if not self.batch_first:
                x, y = x.T, y.T
            xt, yt = Tensor._make(np.ascontiguousarray(x)), Tensor._make(np.ascontiguousarray(y))
            if self.device is not None:
                xt, yt = xt.to(self.device), yt.to(self.device)
            yield xt, yt
