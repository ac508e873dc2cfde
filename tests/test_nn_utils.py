"""nn.utils: gradient clipping against its formula (and torch), parameter vectors, counting."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen import nn
from minigen.errors import InvalidArgumentError, ShapeError
from minigen.nn.utils import (clip_grad_norm_, clip_grad_value_, count_parameters, parameters_to_vector,
                              vector_to_parameters)
from conftest import requires_torch


def _params_with_grads(seed, scale):
    rng = np.random.default_rng(seed)
    ps = [nn.Parameter(mg.tensor(rng.standard_normal(s))) for s in [(3, 2), (4,), (1,)]]
    for p in ps:
        p.grad = mg.tensor(rng.standard_normal(p.shape) * scale)
    return ps


@given(seed=st.integers(0, 2 ** 31 - 1), scale=st.sampled_from([0.01, 1.0, 10.0]),
       max_norm=st.sampled_from([0.5, 1.0, 5.0]), norm_type=st.sampled_from([1.0, 2.0, 3.0, math.inf]))
def test_clip_grad_norm_formula(seed, scale, max_norm, norm_type):
    ps = _params_with_grads(seed, scale)
    g = np.concatenate([p.grad.numpy().ravel() for p in ps])
    total = np.abs(g).max() if norm_type == math.inf else (np.abs(g) ** norm_type).sum() ** (1 / norm_type)
    got = clip_grad_norm_(ps, max_norm, norm_type)
    assert float(got.item()) == pytest.approx(total, rel=1e-12)
    coef = min(1.0, max_norm / (total + 1e-6))
    np.testing.assert_allclose(np.concatenate([p.grad.numpy().ravel() for p in ps]), g * coef, rtol=1e-12)
    new = np.concatenate([p.grad.numpy().ravel() for p in ps])
    new_norm = np.abs(new).max() if norm_type == math.inf else (np.abs(new) ** norm_type).sum() ** (1 / norm_type)
    assert new_norm <= max_norm * (1 + 1e-9) or new_norm == pytest.approx(total)


def test_clip_hand_case_and_errors():
    p = nn.Parameter(mg.zeros(2))
    p.grad = mg.tensor([3.0, 4.0])
    n = clip_grad_norm_([p], 1.0)
    assert n.item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), [3 / (5 + 1e-6), 4 / (5 + 1e-6)], rtol=1e-6)
    q = nn.Parameter(mg.zeros(2))
    q.grad = mg.tensor([0.3, 0.4])
    clip_grad_norm_(q, 1.0)  # below the threshold: unchanged
    np.testing.assert_allclose(q.grad.numpy(), [0.3, 0.4], rtol=1e-7)
    q.grad = mg.tensor([float("nan"), 1.0])
    with pytest.raises(InvalidArgumentError, match="non-finite"):
        clip_grad_norm_(q, 1.0, error_if_nonfinite=True)
    r = nn.Parameter(mg.zeros(3))
    r.grad = mg.tensor([-5.0, 0.2, 3.0])
    clip_grad_value_([r, nn.Parameter(mg.zeros(1))], 1.0)  # a parameter without grad is skipped
    np.testing.assert_allclose(r.grad.numpy(), [-1.0, 0.2, 1.0], rtol=1e-7)
    assert clip_grad_norm_([nn.Parameter(mg.zeros(1))], 1.0).item() == 0.0


@requires_torch
def test_clip_vs_torch():
    import torch

    ps = _params_with_grads(3, 5.0)
    tps = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in ps]
    for p, t in zip(ps, tps):
        t.grad = torch.tensor(p.grad.numpy())
    for nt in (2.0, math.inf, 1.0):
        a = clip_grad_norm_(ps, 1.5, nt)
        b = torch.nn.utils.clip_grad_norm_(tps, 1.5, nt)
        assert a.item() == pytest.approx(b.item(), rel=1e-12)
        for p, t in zip(ps, tps):
            np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    clip_grad_value_(ps, 0.1)
    torch.nn.utils.clip_grad_value_(tps, 0.1)
    for p, t in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_vectors_and_count():
    m = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1, bias=False))
    assert count_parameters(m) == 3 * 2 + 2 + 2 == 10
    m[0].bias.requires_grad_(False)
    assert count_parameters(m, trainable_only=True) == 8
    v = parameters_to_vector(m.parameters())
    assert v.shape == (10,) and not v.requires_grad
    np.testing.assert_array_equal(v.numpy()[:6], m[0].weight.detach().numpy().ravel())
    vector_to_parameters(mg.arange(10, dtype=mg.float32), m.parameters())
    np.testing.assert_array_equal(m[0].bias.detach().numpy(), [6, 7])
    np.testing.assert_array_equal(m[2].weight.detach().numpy(), [[8, 9]])
    np.testing.assert_array_equal(parameters_to_vector(m.parameters()).numpy(), np.arange(10))
    with pytest.raises(ShapeError, match="11 elements"):
        vector_to_parameters(mg.zeros(11), m.parameters())
