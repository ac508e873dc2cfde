"""n-gram LM: add-k and interpolated Kneser-Ney against hand-computed probabilities."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minigen.models.ngram import NGramLM

A, B, C, D = 0, 1, 2, 3
# "abcabcaabc" (10 chars). Bigram counts: ab 3, bc 3, ca 2, aa 1. Unigrams: a 4, b 3, c 3.
CORPUS = [A, B, C, A, B, C, A, A, B, C]


def test_add_k_by_hand():
    lm = NGramLM(2, vocab_size=3, smoothing="add-k", k=1.0).fit(CORPUS)
    # P(w | a) = (c(a w) + 1) / (c(a .) + 3), c(a .) = ab 3 + aa 1 = 4
    np.testing.assert_allclose(lm.next_token_probs([A]), [2 / 7, 4 / 7, 1 / 7], rtol=1e-12)
    # P(w | c) = (c(c w) + 1) / (2 + 3)
    np.testing.assert_allclose(lm.next_token_probs([C]), [3 / 5, 1 / 5, 1 / 5], rtol=1e-12)
    # scoring "a b": position 0 has no history -> unigram add-k (4 + 1) / (10 + 3); position 1 -> P(b | a)
    np.testing.assert_allclose(lm.token_probs([A, B]), [5 / 13, 4 / 7], rtol=1e-12)
    assert math.isclose(lm.nll([A, B]), -(math.log(5 / 13) + math.log(4 / 7)) / 2)
    assert math.isclose(lm.perplexity([A, B]), math.exp(lm.nll([A, B])))
    lm05 = NGramLM(2, vocab_size=3, smoothing="add-k", k=0.5).fit(CORPUS)
    np.testing.assert_allclose(lm05.next_token_probs([A]), [1.5 / 5.5, 3.5 / 5.5, 0.5 / 5.5], rtol=1e-12)


def test_kneser_ney_by_hand():
    lm = NGramLM(2, vocab_size=3, smoothing="kn").fit(CORPUS)
    # order 2 (raw counts): n1 = 1 (aa), n2 = 1 (ca) -> D2 = 1 / (1 + 2) = 1/3
    # order 1 (continuation counts N1+(. w)): a <- {c, a}: 2, b <- {a}: 1, c <- {b}: 1; total 4 types,
    #   n1 = 2, n2 = 1 -> D1 = 2 / (2 + 2) = 1/2
    assert math.isclose(lm.discounts[2], 1 / 3) and math.isclose(lm.discounts[1], 1 / 2)
    # P1(w) = max(N1+(.w) - 1/2, 0) / 4 + (1/2 * 3 / 4) * (1/3)  -> a 1/2, b 1/4, c 1/4
    np.testing.assert_allclose(lm.next_token_probs([]), [0.5, 0.25, 0.25], rtol=1e-12)
    # P2(w | a) = max(c(aw) - 1/3, 0) / 4 + (1/3 * 2 / 4) * P1(w)    (T(a) = 2: ab, aa)
    #   a: (2/3)/4 + 1/6 * 1/2 = 1/4;  b: (8/3)/4 + 1/6 * 1/4 = 17/24;  c: 0 + 1/6 * 1/4 = 1/24
    np.testing.assert_allclose(lm.next_token_probs([A]), [1 / 4, 17 / 24, 1 / 24], rtol=1e-12)
    # scoring: the first position uses P1, then P2
    np.testing.assert_allclose(lm.token_probs([A, B, C]), [0.5, 17 / 24, lm.next_token_probs([B])[C]], rtol=1e-12)
    # an unseen history falls back to the lower order entirely
    lm4 = NGramLM(2, vocab_size=4).fit(CORPUS)
    p1 = lm4.next_token_probs([])
    # with V = 4 the floor is 1/4: P1(a) = 1.5/4 + 3/8 * 1/4, P1(d) = 3/8 * 1/4
    np.testing.assert_allclose(p1, [1.5 / 4 + 3 / 32, 0.5 / 4 + 3 / 32, 0.5 / 4 + 3 / 32, 3 / 32], rtol=1e-12)
    np.testing.assert_allclose(lm4.next_token_probs([D]), p1, rtol=1e-12)


@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.integers(1, 4),
       st.sampled_from(["kn", "add-k"]), st.lists(st.integers(0, 4), max_size=4))
def test_distributions_sum_to_one(corpus, order, smoothing, history):
    lm = NGramLM(order, vocab_size=5, smoothing=smoothing, k=0.3).fit(corpus)
    p = lm.next_token_probs(history)
    assert p.shape == (5,) and (p > 0).all()
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-12)


@given(st.lists(st.integers(0, 3), min_size=2, max_size=50), st.lists(st.integers(0, 3), min_size=1, max_size=12),
       st.integers(1, 4))
def test_vectorised_scoring_matches_per_position(corpus, seq, order):
    lm = NGramLM(order, vocab_size=4).fit(corpus)
    probs = lm.token_probs(seq)
    for t in range(len(seq)):
        assert math.isclose(probs[t], lm.next_token_probs(seq[max(0, t - order + 1):t])[seq[t]], rel_tol=1e-12)


def test_generate_and_errors():
    lm = NGramLM(3, vocab_size=3).fit(CORPUS * 5)
    import minigen as mg

    out = lm.generate([A], 20, generator=mg.Generator().manual_seed(1))
    assert len(out) == 21 and set(out) <= {A, B, C}
    assert lm.generate([A, B], 3, temperature=0) == [A, B, C, A, B]  # greedy continues the pattern
    with pytest.raises(ValueError, match="token ids"):
        lm.nll([0, 7])
    with pytest.raises(ValueError, match="order"):
        NGramLM(0, 3)
    with pytest.raises(RuntimeError, match="fit"):
        NGramLM(2, 3).nll([0, 1])
