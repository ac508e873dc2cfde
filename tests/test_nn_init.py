"""nn.init: statistics on large tensors, exact formulas on small ones, determinism, in-place semantics,
and the layers' default initialisations (PyTorch's)."""
import math

import numpy as np
import pytest

import minigen as mg
from minigen import nn
from minigen.nn import init
from minigen.errors import InvalidArgumentError, ShapeError
from conftest import requires_torch


def _std_ok(arr, std, rel=0.03):
    assert abs(arr.std() - std) < rel * std, (arr.std(), std)
    assert abs(arr.mean()) < 4 * std / math.sqrt(arr.size)


def test_calculate_gain_and_fans():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(InvalidArgumentError):
        init.calculate_gain("swishy")
    assert init._calculate_fan_in_and_fan_out(mg.empty(5, 3)) == (3, 5)
    assert init._calculate_fan_in_and_fan_out(mg.empty(8, 4, 3, 2)) == (24, 48)
    with pytest.raises(ShapeError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(mg.empty(3))


def test_uniform_normal_constant():
    t = mg.empty(200, 300)
    init.uniform_(t, -2.0, 3.0)
    a = t.numpy()
    assert a.min() >= -2 and a.max() < 3 and abs(a.mean() - 0.5) < 0.03
    _std_ok(a - 0.5, 5 / math.sqrt(12))
    init.normal_(t, 1.5, 0.5)
    assert abs(t.numpy().mean() - 1.5) < 0.005
    _std_ok(t.numpy() - 1.5, 0.5)
    init.constant_(t, 0.25)
    assert (t.numpy() == 0.25).all()
    init.zeros_(t)
    assert not t.numpy().any()
    init.ones_(t)
    assert (t.numpy() == 1).all()
    e = init.eye_(mg.empty(3, 4))
    np.testing.assert_array_equal(e.numpy(), np.eye(3, 4))


def test_xavier_and_kaiming_statistics():
    t = mg.empty(256, 128, 3)  # fan_in = 384, fan_out = 768
    init.xavier_uniform_(t, gain=2.0)
    bound = 2.0 * math.sqrt(6 / (384 + 768))
    assert np.abs(t.numpy()).max() <= bound and np.abs(t.numpy()).max() > 0.99 * bound
    _std_ok(t.numpy(), bound / math.sqrt(3))
    init.xavier_normal_(t)
    _std_ok(t.numpy(), math.sqrt(2 / (384 + 768)))
    init.kaiming_normal_(t, nonlinearity="relu")
    _std_ok(t.numpy(), math.sqrt(2) / math.sqrt(384))
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    _std_ok(t.numpy(), math.sqrt(2) / math.sqrt(768))
    init.kaiming_uniform_(t, a=0.1)
    gain = math.sqrt(2 / (1 + 0.01))
    b = gain * math.sqrt(3 / 384)
    assert np.abs(t.numpy()).max() <= b
    _std_ok(t.numpy(), b / math.sqrt(3))
    with pytest.raises(InvalidArgumentError, match="mode"):
        init.kaiming_uniform_(t, mode="fan_avg")


def test_orthogonal():
    for shape in [(6, 4), (4, 6), (5, 2, 3)]:
        t = init.orthogonal_(mg.empty(*shape, dtype=mg.float64), gain=1.5)
        q = t.numpy().reshape(shape[0], -1) / 1.5
        if q.shape[0] >= q.shape[1]:
            np.testing.assert_allclose(q.T @ q, np.eye(q.shape[1]), atol=1e-12)
        else:
            np.testing.assert_allclose(q @ q.T, np.eye(q.shape[0]), atol=1e-12)
    with pytest.raises(ShapeError):
        init.orthogonal_(mg.empty(3))


def test_trunc_normal_and_sparse_and_dirac():
    t = init.trunc_normal_(mg.empty(100, 100), mean=0.5, std=1.0, a=0.0, b=1.0)
    a = t.numpy()
    assert a.min() >= 0 and a.max() <= 1
    assert abs(a.mean() - 0.5) < 0.01  # symmetric truncation around the mean
    with pytest.raises(InvalidArgumentError):
        init.trunc_normal_(mg.empty(3), a=1.0, b=0.0)
    s = init.sparse_(mg.empty(10, 20), sparsity=0.3)
    assert ((s.numpy() == 0).sum(0) >= 3).all()
    d = init.dirac_(mg.empty(4, 2, 3, 3))
    x = mg.randn(1, 2, 5, 5)
    y = mg.nn.functional.conv2d(x, d, padding=1)
    np.testing.assert_allclose(y.numpy()[0, :2], x.numpy()[0], atol=1e-6)
    assert not y.numpy()[0, 2:].any()


def test_generator_determinism_in_place_no_grad():
    g1, g2 = mg.Generator().manual_seed(5), mg.Generator().manual_seed(5)
    a, b = mg.empty(4, 5), mg.empty(4, 5)
    init.kaiming_uniform_(a, generator=g1)
    init.kaiming_uniform_(b, generator=g2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    mg.manual_seed(3)
    l1 = nn.Linear(4, 3)
    mg.manual_seed(3)
    l2 = nn.Linear(4, 3)
    np.testing.assert_array_equal(l1.weight.detach().numpy(), l2.weight.detach().numpy())
    # in place on a parameter that requires grad: same object, no graph, version bumped
    p = nn.Parameter(mg.zeros(3, 3))
    data, v = p.array, p._version()
    out = init.normal_(p)
    assert out is p and p.array is data and p.is_leaf and p.requires_grad and p._version() > v
    assert p.detach().numpy().any()


def _bound_check(w, bound):
    a = w.detach().numpy()
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.8 * bound


def test_layer_default_inits_match_pytorch_formulas():
    lin = nn.Linear(50, 40)
    _bound_check(lin.weight, 1 / math.sqrt(50))  # kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), ..)
    _bound_check(lin.bias, 1 / math.sqrt(50))
    conv = nn.Conv2d(4, 8, 3)
    _bound_check(conv.weight, 1 / math.sqrt(36))
    _bound_check(conv.bias, 1 / math.sqrt(36))
    convt = nn.ConvTranspose2d(4, 8, 3)  # weight (4, 8, 3, 3): fan_in = 8 * 9 (PyTorch's rule)
    _bound_check(convt.weight, 1 / math.sqrt(72))
    _bound_check(convt.bias, 1 / math.sqrt(72))
    lstm = nn.LSTM(10, 25)
    for p in lstm.parameters():
        _bound_check(p, 1 / math.sqrt(25))
    emb = nn.Embedding(400, 50, padding_idx=3)
    w = emb.weight.detach().numpy()
    assert not w[3].any()
    _std_ok(np.delete(w, 3, axis=0), 1.0, rel=0.05)
    bn = nn.BatchNorm2d(3)
    assert (bn.weight.detach().numpy() == 1).all() and not bn.bias.detach().numpy().any()
    assert not bn.running_mean.numpy().any() and (bn.running_var.numpy() == 1).all()
    mha = nn.MultiheadAttention(16, 4)
    _bound_check(mha.in_proj_weight, math.sqrt(6 / (16 + 48)))
    assert not mha.in_proj_bias.detach().numpy().any() and not mha.out_proj.bias.detach().numpy().any()


@requires_torch
def test_default_init_distribution_like_torch():
    """Same parameter shapes and the same empirical spread as torch's default init."""
    import torch

    for m, t in [(nn.Linear(300, 200), torch.nn.Linear(300, 200)),
                 (nn.Conv1d(30, 40, 5), torch.nn.Conv1d(30, 40, 5)),
                 (nn.GRU(20, 30), torch.nn.GRU(20, 30))]:
        tp = dict(t.named_parameters())
        for k, p in m.named_parameters():
            a, b = p.detach().numpy(), tp[k].detach().numpy()
            assert a.shape == b.shape
            if a.size < 1000:  # too few samples for the spread to be compared
                continue
            assert abs(np.abs(a).max() - np.abs(b).max()) < 0.02 * np.abs(b).max()
            assert abs(a.std() - b.std()) < 0.1 * b.std()
