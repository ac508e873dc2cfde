"""Bundled tiny-shakespeare, CharTokenizer, nanoGPT get_batch, BPTT iterator."""
import hashlib
import json

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minigen as mg
from minigen.data import (
    BPTTIterator, CharTokenizer, DataError, batchify, get_batch, load_shakespeare, shakespeare_splits,
)
from minigen.data import text as T
from minigen.errors import InvalidArgumentError, ShapeError


def test_bundled_corpus_md5_and_nanogpt_split():
    text = load_shakespeare()
    assert hashlib.md5(text.encode("utf-8")).hexdigest() == T.SHAKESPEARE_MD5
    assert len(text) == 1115394
    tr, va, tok = shakespeare_splits()
    assert tok.vocab_size == 65
    assert len(tr) == int(0.9 * len(text)) == 1003854 and len(tr) + len(va) == len(text)
    assert tok.decode(tr[:14]) == "First Citizen:"
    assert tok.decode(va[-5:]) == text[-5:]
    assert tr.dtype == np.int64 and tok.itos[0] == "\n" and tok.itos[1] == " "  # sorted characters


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=60))
def test_tokenizer_round_trip(text):
    tok = CharTokenizer.fit(text)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.encode_array(text).tolist() == ids
    assert tok.decode(mg.tensor(ids)) == text
    assert sorted(tok.itos) == tok.itos and len(tok) == len(set(text))


def test_tokenizer_hand_case_save_load_and_errors(tmp_path):
    tok = CharTokenizer.fit("hello")
    assert tok.itos == ["e", "h", "l", "o"] and tok.encode("hole") == [1, 3, 2, 0]
    p = tmp_path / "vocab.json"
    tok.save(p)
    assert json.loads(p.read_text(encoding="utf-8"))["chars"] == "ehlo"
    tok2 = CharTokenizer.load(p)
    assert tok2.itos == tok.itos and tok2.decode(tok2.encode("hello")) == "hello"
    with pytest.raises(InvalidArgumentError, match="'z'"):
        tok.encode("hez")
    with pytest.raises(InvalidArgumentError, match="'z'"):
        tok.encode_array("hez")
    with pytest.raises(InvalidArgumentError, match="out of range"):
        tok.decode([4])
    unk = CharTokenizer.fit("ab?", unk="?")
    assert unk.encode("axb") == [1, 0, 2] and unk.encode_array("axb").tolist() == [1, 0, 2]
    p.write_text('{"type": "bpe"}', encoding="utf-8")
    with pytest.raises(DataError, match="not a CharTokenizer"):
        CharTokenizer.load(p)
    p.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not a tokenizer JSON"):
        CharTokenizer.load(p)


@given(st.integers(2, 50), st.integers(1, 8), st.integers(1, 5), st.integers(0, 1000))
def test_get_batch_windows(n_extra, block, bs, seed):
    data = np.arange(block + n_extra) * 7  # distinct values: a window identifies its offset
    x, y = get_batch(data, block, bs, generator=mg.Generator().manual_seed(seed))
    assert x.shape == y.shape == (bs, block) and x.dtype == mg.int64
    xa, ya = x.numpy(), y.numpy()
    for r in range(bs):
        i = xa[r, 0] // 7
        assert 0 <= i < len(data) - block
        assert np.array_equal(xa[r], data[i:i + block]) and np.array_equal(ya[r], data[i + 1:i + 1 + block])
    x2, _ = get_batch(mg.tensor(data), block, bs, generator=mg.Generator().manual_seed(seed))
    assert np.array_equal(x2.numpy(), xa)


def test_get_batch_errors():
    with pytest.raises(ShapeError, match="too short for block_size 4"):
        get_batch(np.arange(4), 4, 2)
    with pytest.raises(ShapeError, match="1-d"):
        get_batch(np.zeros((3, 3), dtype=np.int64), 1, 1)


def test_batchify_and_bptt_hand_case():
    rows = batchify(np.arange(11), 2)  # 5 tokens per row, the 11th dropped
    assert rows.tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    it = BPTTIterator(np.arange(11), batch_size=2, seq_len=3)
    chunks = [(x.tolist(), y.tolist()) for x, y in it]
    assert chunks == [([[0, 1, 2], [5, 6, 7]], [[1, 2, 3], [6, 7, 8]]),
                      ([[3], [8]], [[4], [9]])]
    assert len(it) == 2 and len(BPTTIterator(np.arange(11), 2, 3, drop_last=True)) == 1
    tm = [(x.shape, y.tolist()) for x, y in BPTTIterator(np.arange(11), 2, 3, batch_first=False)]
    assert tm[0] == ((3, 2), [[1, 6], [2, 7], [3, 8]])
    with pytest.raises(ShapeError, match="too few"):
        batchify(np.arange(3), 2)


@given(st.integers(4, 60), st.integers(1, 4), st.integers(1, 7))
def test_bptt_covers_stream_in_order(n, bs, seq):
    assume(n // bs >= 2)
    T_ = n // bs
    data = np.arange(n)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in BPTTIterator(data, bs, seq)])
    X, Y = np.concatenate(xs, axis=1), np.concatenate(ys, axis=1)
    assert X.shape == (bs, T_ - 1)
    assert np.array_equal(X, data[: bs * T_].reshape(bs, T_)[:, :-1])
    assert np.array_equal(Y, X + 1)  # targets are the next token of the same row
    assert all(x.shape[1] == seq for x in xs[:-1]) and 1 <= xs[-1].shape[1] <= seq
