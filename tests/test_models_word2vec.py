"""Word2Vec skip-gram negative sampling: the loss by hand, gradients, planted co-occurrence structure."""
import math

import numpy as np

import minigen as mg
from minigen.models.word2vec import Word2Vec, build_vocab, skipgram_pairs, subsample, tokenize_words
from minigen.recipes.word2vec import train_word2vec
from minigen.testing import gradcheck


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_loss_and_gradient_by_hand():
    m = Word2Vec(3, 2)
    with mg.no_grad():
        m.in_embed.array[...] = [[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]]
        m.out_embed.array[...] = [[0.0, 0.0], [0.5, -0.25], [1.0, 1.0]]
    # u_1 . v_0 = 0, u_2 . v_0 = 3:  L = -log sig(0) - log sig(-3) = log 2 + log(1 + e^3)
    loss = m([0], [1], [[2]])
    assert math.isclose(loss.item(), math.log(2) + math.log(1 + math.exp(3)), rel_tol=1e-6)
    loss.backward()
    # dL/dv_0 = (sig(0) - 1) u_1 + sig(3) u_2;  dL/du_1 = (sig(0) - 1) v_0;  dL/du_2 = sig(3) v_0
    s3 = _sig(3)
    np.testing.assert_allclose(m.in_embed.grad.numpy()[0], [-0.25 + s3, 0.125 + s3], rtol=1e-5)
    np.testing.assert_allclose(m.out_embed.grad.numpy()[1], [-0.5, -1.0], rtol=1e-5)
    np.testing.assert_allclose(m.out_embed.grad.numpy()[2], [s3, 2 * s3], rtol=1e-5)
    assert not m.in_embed.grad.numpy()[1:].any()


def test_gradcheck_float64():
    rng = np.random.default_rng(0)
    win = mg.tensor(rng.normal(size=(5, 3)), dtype=mg.float64, requires_grad=True)
    wout = mg.tensor(rng.normal(size=(5, 3)), dtype=mg.float64, requires_grad=True)
    c, o, n = np.array([0, 1, 1]), np.array([2, 3, 0]), np.array([[4, 1], [2, 2], [3, 4]])
    assert gradcheck(lambda a, b: _loss(a, b, c, o, n), (win, wout))
    # Word2Vec.forward computes the same function
    m = Word2Vec(5, 3)
    with mg.no_grad():
        m.in_embed.array = win.detach().numpy().copy()
        m.out_embed.array = wout.detach().numpy().copy()
    assert math.isclose(m(c, o, n).item(), _loss(win, wout, c, o, n).item(), rel_tol=1e-12)


def _loss(a, b, c, o, n):
    """The SGNS loss written directly on tensors (what Word2Vec.forward computes)."""
    v, uo, un = a[c], b[o], b[n]
    pos = (v * uo).sum(-1)
    neg = (un * v.reshape(v.shape[0], 1, -1)).sum(-1)
    return -(mg.nn.functional.logsigmoid(pos) + mg.nn.functional.logsigmoid(-neg).sum(-1)).mean()


def test_forward_matches_reference_formula():
    m = Word2Vec(6, 4, generator=mg.Generator().manual_seed(2))
    with mg.no_grad():
        m.out_embed.array[...] = np.random.default_rng(1).normal(size=(6, 4))
    c, o, n = np.array([0, 5, 2]), np.array([1, 1, 3]), np.array([[4, 2], [0, 3], [5, 5]])
    W, U = m.in_embed.detach().numpy().astype(np.float64), m.out_embed.detach().numpy().astype(np.float64)
    ref = 0.0
    for i in range(3):
        ref += -math.log(_sig(U[o[i]] @ W[c[i]])) - sum(math.log(_sig(-U[k] @ W[c[i]])) for k in n[i])
    assert math.isclose(m(c, o, n).item(), ref / 3, rel_tol=1e-5)


def test_pairs_vocab_and_subsampling():
    ids = np.array([10, 11, 12, 13])
    c, o = skipgram_pairs(ids, 2)  # fixed window 2
    assert sorted(zip(c.tolist(), o.tolist())) == sorted(
        [(10, 11), (11, 12), (12, 13), (11, 10), (12, 11), (13, 12), (10, 12), (11, 13), (12, 10), (13, 11)])
    c, o = skipgram_pairs(np.arange(200), 5, np.random.default_rng(0))
    assert (np.abs(c - o) <= 5).all() and (c != o).all()
    assert tokenize_words("O'er the KING's land, i'll go!") == ["o'er", "the", "king's", "land", "i'll", "go"]
    itos, counts = build_vocab("b a c a b a d".split(), min_count=2)
    assert itos == ["a", "b"] and counts.tolist() == [3, 2]
    # a word with frequency f is kept with probability sqrt(t / f): f = 0.5, t = 0.02 -> 0.2
    ids = np.array([0] * 50000 + [1] * 50000)
    kept = subsample(ids, np.array([50000, 50000]), 0.02, np.random.default_rng(0))
    assert abs(len(kept) / 100000 - 0.2) < 0.01


def test_planted_structure_cooccurring_words_end_up_closer():
    # three groups of 4 words; text = runs of 40 words drawn from one group at a time
    rng = np.random.default_rng(0)
    groups = [[f"{g}{i}" for i in range(4)] for g in "xyz"]
    words = []
    for _ in range(150):
        words += list(rng.choice(groups[rng.integers(3)], size=40))
    model, hist = train_word2vec(words, dim=8, window=2, negatives=4, epochs=5, batch_size=256, lr=0.002,
                                 sample=0, min_count=1, generator=mg.Generator().manual_seed(0))
    assert hist[-1]["loss"] < hist[0]["loss"]
    same, diff = [], []
    for gi, g in enumerate(groups):
        for w in g:
            nn_word = model.most_similar(w, 1)[0][0]
            assert nn_word in g, (w, model.most_similar(w, 3))
            for gj, h in enumerate(groups):
                for u in h:
                    if u != w:
                        (same if gi == gj else diff).append(model.similarity(w, u))
    assert np.mean(same) > np.mean(diff) + 0.5
    d = model.doc_vector(["x0", "x1", "unknown-word"])
    np.testing.assert_allclose(d, (model.vectors()[model._index("x0")] + model.vectors()[model._index("x1")]) / 2)
