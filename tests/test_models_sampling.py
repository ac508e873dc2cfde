"""Temperature / top-k / top-p sampling against hand-computed filters and empirical frequencies."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen.errors import InvalidArgumentError
from minigen.models.sampling import filter_logits, probs_from_logits, sample_logits


def test_top_k_and_top_p_by_hand():
    z = np.array([[1.0, 3.0, 2.0, 0.0]])
    assert np.isneginf(filter_logits(z, top_k=2)).tolist() == [[True, False, False, True]]
    assert np.isfinite(filter_logits(z, top_k=10)).all()
    p = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    # keep token i iff the mass strictly before it (sorted) is < top_p
    assert np.isfinite(filter_logits(p, top_p=0.7)).tolist() == [[True, True, False, False]]
    assert np.isfinite(filter_logits(p, top_p=0.79)).tolist() == [[True, True, False, False]]
    assert np.isfinite(filter_logits(p, top_p=0.81)).tolist() == [[True, True, True, False]]
    assert np.isfinite(filter_logits(p, top_p=0.01)).tolist() == [[True, False, False, False]]
    np.testing.assert_allclose(probs_from_logits(p, top_p=0.7), [[0.5 / 0.8, 0.3 / 0.8, 0, 0]], rtol=1e-6)


def test_temperature_by_hand():
    z = np.array([0.0, np.log(3.0)])
    # T = 1: [1/4, 3/4];  T = 1/2: exp(2 z) -> [1, 9] / 10;  T = 2: [1, sqrt 3] / (1 + sqrt 3)
    np.testing.assert_allclose(probs_from_logits(z, 1.0), [0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(probs_from_logits(z, 0.5), [0.1, 0.9], rtol=1e-6)
    np.testing.assert_allclose(probs_from_logits(z, 2.0), [1 / (1 + 3 ** 0.5), 3 ** 0.5 / (1 + 3 ** 0.5)], rtol=1e-6)
    assert sample_logits(np.array([[0.1, 2.0, -1.0], [5.0, 0.0, 0.0]]), temperature=0).tolist() == [1, 0]


def test_empirical_frequencies_match():
    g = mg.Generator().manual_seed(3)
    z = np.log(np.tile(np.array([0.5, 0.3, 0.2, 0.0 + 1e-30]), (20000, 1)))
    s = sample_logits(mg.tensor(z, dtype=mg.float64), generator=g)
    freq = np.bincount(s, minlength=4) / len(s)
    # 4 standard errors of a proportion at n = 20000 is about 0.014
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.2, 0.0], atol=0.014)
    s2 = sample_logits(z, top_k=1, generator=g)
    assert (s2 == 0).all()


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=8), st.integers(1, 8), st.floats(0.05, 1.0),
       st.floats(0.3, 2.0))
def test_samples_stay_inside_the_filtered_set(logits, k, p, temp):
    z = np.tile(np.array(logits), (50, 1))
    allowed = np.isfinite(filter_logits(filter_logits(z / temp, top_k=k), top_p=p))[0]
    s = sample_logits(z, temperature=temp, top_k=k, top_p=p, generator=mg.Generator().manual_seed(0))
    assert allowed[s].all()
    kth = sorted(logits)[-min(k, len(logits))]
    assert allowed.sum() >= 1 and (np.array(logits)[allowed] >= kth).all()  # only top-k tokens survive
    pr = probs_from_logits(z, temp, k, p)
    np.testing.assert_allclose(pr.sum(-1), 1.0, rtol=1e-6)


def test_bad_arguments():
    z = np.zeros((1, 3))
    with pytest.raises(InvalidArgumentError, match="top_k"):
        filter_logits(z, top_k=0)
    with pytest.raises(InvalidArgumentError, match="top_p"):
        filter_logits(z, top_p=1.5)
    with pytest.raises(InvalidArgumentError, match="temperature"):
        sample_logits(z, temperature=-1)
