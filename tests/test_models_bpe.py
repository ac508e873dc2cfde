"""BPE tokenizer: merges on the textbook example, exact round trip on any text, save/load."""
from collections import Counter

import pytest
from hypothesis import given, strategies as st

from minigen.models.bpe import BPETokenizer

SAMPLE = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
          "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n"
          "Café naïve — 東京 😀 tabs\tand  double  spaces __init__ x_1 3.14159 ")


@pytest.fixture(scope="module")
def tok():
    return BPETokenizer.train(SAMPLE * 3, vocab_size=256 + 60)


def test_textbook_example_aaabdaaabac():
    # "aaabdaaabac": aa (count 4, overlapping) -> Z=256: "ZabdZabac"; then ab and Za tie at 2,
    # the smaller ids (a, b) = (97, 98) win -> Y=257: "ZYdZYac"; then ZY -> X=258: "XdXac".
    t = BPETokenizer.train("aaabdaaabac", vocab_size=259, pattern=None)
    assert t.merges == [(97, 97), (97, 98), (256, 257)]
    ids = t.encode("aaabdaaabac")
    assert ids == [258, ord("d"), 258, ord("a"), ord("c")]
    assert t.vocab[258] == b"aaab"
    assert t.decode(ids) == "aaabdaaabac"


def _naive_train(text, n_merges):
    """Reference trainer: recount all pairs from scratch after every merge."""
    seq = list(text.encode("utf-8"))
    merges = []
    for _ in range(n_merges):
        counts = Counter(zip(seq, seq[1:]))
        if not counts:
            break
        pair, c = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if c < 2:
            break
        new, out, i = 256 + len(merges), [], 0
        while i < len(seq):
            if i + 1 < len(seq) and (seq[i], seq[i + 1]) == pair:
                out.append(new)
                i += 2
            else:
                out.append(seq[i])
                i += 1
        seq = out
        merges.append(pair)
    return merges, seq


@given(st.text(alphabet="abc", min_size=0, max_size=60), st.integers(0, 12))
def test_incremental_training_matches_naive_recount(text, n):
    t = BPETokenizer.train(text, vocab_size=256 + n, pattern=None)
    merges, seq = _naive_train(text, n)
    assert t.merges == merges
    assert t.encode(text) == seq  # encoding the training text reproduces the training segmentation


@given(st.text(max_size=80))
def test_roundtrip_any_text(tok, text):
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


@given(st.text(max_size=40))
def test_roundtrip_without_pretokenizer(text):
    t = BPETokenizer.train(SAMPLE, vocab_size=300, pattern=None)
    assert t.decode(t.encode(text)) == text


def test_compresses_and_respects_chunks(tok):
    ids = tok.encode(SAMPLE)
    assert len(ids) < 0.7 * len(SAMPLE.encode("utf-8"))
    # no token crosses a pre-token boundary: no learned token ends with a letter followed by a space inside
    for i in range(256, 256 + len(tok.merges)):
        s = tok.vocab[i]
        assert b" " not in s[1:], s


def test_save_load_json(tok, tmp_path):
    p = tmp_path / "bpe.json"
    tok.save(p)
    t2 = BPETokenizer.load(p)
    assert t2.merges == tok.merges and t2.pattern == tok.pattern
    assert t2.encode(SAMPLE) == tok.encode(SAMPLE)
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a minigen BPE"):
        BPETokenizer.load(tmp_path / "bad.json")


def test_special_tokens_and_errors():
    t = BPETokenizer.train(SAMPLE, vocab_size=300, special_tokens=["<|endoftext|>"])
    eot = t.special_tokens["<|endoftext|>"]
    assert eot == t.vocab_size - 1
    ids = t.encode("All:<|endoftext|>Speak")
    assert ids.count(eot) == 1 and t.decode(ids) == "All:<|endoftext|>Speak"
    with pytest.raises(ValueError, match="out of range"):
        t.decode([t.vocab_size + 5])
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train("abc", vocab_size=10)
    with pytest.raises(TypeError):
        t.encode(b"bytes")
