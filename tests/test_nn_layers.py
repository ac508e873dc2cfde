"""Layers: gradcheck (float64, parameters and inputs) and comparison with torch.nn (same weights via
state_dict with the same keys -> same outputs, input gradients and parameter gradients)."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen import nn
from minigen.errors import InvalidArgumentError, ShapeError, IndexOutOfRangeError
from conftest import requires_torch
from nn_testutil import compare_with_torch, few, gradcheck_module

seeds = st.integers(0, 2 ** 31 - 1)


def rnd(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def t64(a, grad=True):
    return mg.tensor(a, dtype=mg.float64, requires_grad=grad)


# ------------------------------------------------------------------ Linear / Bilinear / Identity / Flatten
@given(lead=st.lists(st.integers(1, 3), max_size=2), fin=st.integers(1, 3), fout=st.integers(1, 3),
       bias=st.booleans(), seed=seeds)
def test_linear_gradcheck(lead, fin, fout, bias, seed):
    m = nn.Linear(fin, fout, bias=bias, dtype=mg.float64)
    assert m.weight.dtype == np.float64
    gradcheck_module(m, t64(rnd(seed, *lead, fin)))


def test_linear_hand_case():
    m = nn.Linear(2, 1, dtype=mg.float64)
    m.load_state_dict({"weight": np.array([[2.0, -1.0]]), "bias": np.array([0.5])})
    y = m(mg.tensor([[1.0, 3.0]], dtype=mg.float64))
    assert y.tolist() == [[2 * 1 - 3 + 0.5]]
    with pytest.raises(ShapeError):
        m(mg.ones(2, 3, dtype=mg.float64))


@requires_torch
@given(lead=st.lists(st.integers(1, 3), max_size=2), bias=st.booleans(), seed=seeds)
def test_linear_vs_torch(lead, bias, seed):
    import torch

    compare_with_torch(nn.Linear(3, 2, bias=bias), torch.nn.Linear(3, 2, bias=bias), [rnd(seed, *lead, 3)])


@requires_torch
def test_bilinear_identity_flatten_vs_torch():
    import torch

    m = nn.Bilinear(2, 3, 2, dtype=mg.float64)
    gradcheck_module(m, t64(rnd(1, 4, 2)), t64(rnd(2, 4, 3)))
    compare_with_torch(nn.Bilinear(2, 3, 2), torch.nn.Bilinear(2, 3, 2), [rnd(1, 4, 2), rnd(2, 4, 3)])
    compare_with_torch(nn.Identity(5, k=1), torch.nn.Identity(5, k=1), [rnd(0, 2, 3)])
    compare_with_torch(nn.Flatten(), torch.nn.Flatten(), [rnd(0, 2, 3, 4)])
    compare_with_torch(nn.Flatten(0, 1), torch.nn.Flatten(0, 1), [rnd(0, 2, 3, 4)])
    compare_with_torch(nn.Unflatten(1, (2, 3)), torch.nn.Unflatten(1, (2, 3)), [rnd(0, 4, 6, 2)])
    compare_with_torch(nn.PixelShuffle(2), torch.nn.PixelShuffle(2), [rnd(0, 1, 8, 2, 3)])
    compare_with_torch(nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2), [rnd(0, 1, 2, 4, 6)])


# ------------------------------------------------------------------ convolutions
conv_cfg = st.fixed_dictionaries(dict(
    stride=st.integers(1, 2), padding=st.integers(0, 2), dilation=st.integers(1, 2), groups=st.sampled_from([1, 2]),
    bias=st.booleans(), padding_mode=st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"])))


@requires_torch
@given(cfg=conv_cfg, seed=seeds)
@few(3)
def test_conv2d_vs_torch(cfg, seed):
    import torch

    if cfg["padding_mode"] != "zeros":
        cfg["padding"] = min(cfg["padding"], 1)
    args = (2, 4, (2, 3))
    compare_with_torch(nn.Conv2d(*args, **cfg), torch.nn.Conv2d(*args, **cfg), [rnd(seed, 2, 2, 5, 6)])


@requires_torch
@given(cfg=conv_cfg, seed=seeds)
@few(3)
def test_conv1d_vs_torch(cfg, seed):
    import torch

    if cfg["padding_mode"] != "zeros":
        cfg["padding"] = min(cfg["padding"], 1)
    compare_with_torch(nn.Conv1d(2, 2, 3, **cfg), torch.nn.Conv1d(2, 2, 3, **cfg), [rnd(seed, 2, 2, 7)])


@requires_torch
def test_conv_same_valid_unbatched_vs_torch():
    import torch

    for pad in ["same", "valid"]:
        for k, d in [(3, 1), (4, 1), (3, 2)]:
            compare_with_torch(nn.Conv2d(1, 2, k, padding=pad, dilation=d),
                               torch.nn.Conv2d(1, 2, k, padding=pad, dilation=d), [rnd(k, 1, 1, 6, 6)])
    compare_with_torch(nn.Conv1d(2, 3, 3), torch.nn.Conv1d(2, 3, 3), [rnd(0, 2, 6)])  # unbatched (C, L)
    with pytest.raises(InvalidArgumentError):
        nn.Conv2d(1, 2, 3, stride=2, padding="same")
    with pytest.raises(ShapeError, match="channels"):
        nn.Conv2d(3, 2, 3)(mg.randn(1, 2, 5, 5))


ct_cfg = st.fixed_dictionaries(dict(stride=st.integers(1, 3), padding=st.integers(0, 1), groups=st.sampled_from([1, 2]),
                                    bias=st.booleans(), dilation=st.integers(1, 2)))


@requires_torch
@given(cfg=ct_cfg, op=st.integers(0, 2), seed=seeds)
@few(3)
def test_conv_transpose_vs_torch(cfg, op, seed):
    import torch

    cfg["output_padding"] = op % max(cfg["stride"], cfg["dilation"])
    compare_with_torch(nn.ConvTranspose2d(2, 4, 3, **cfg), torch.nn.ConvTranspose2d(2, 4, 3, **cfg),
                       [rnd(seed, 2, 2, 3, 4)])
    compare_with_torch(nn.ConvTranspose1d(2, 2, 3, **cfg), torch.nn.ConvTranspose1d(2, 2, 3, **cfg),
                       [rnd(seed, 2, 2, 4)])


@requires_torch
def test_conv_transpose_output_size_vs_torch():
    import torch

    m, t = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1), torch.nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1)
    x = rnd(0, 1, 1, 3, 3)
    compare_with_torch(m, t, [x], call=lambda m, xs: m(xs[0], output_size=(6, 6)),
                       tcall=lambda t, xs: t(xs[0], output_size=(6, 6)))
    assert m(mg.tensor(x), output_size=(5, 5)).shape == (1, 1, 5, 5)
    with pytest.raises(ShapeError, match="not reachable"):
        m(mg.tensor(x), output_size=(9, 9))


def test_conv_gradcheck():
    gradcheck_module(nn.Conv2d(2, 2, 2, stride=2, padding=1, groups=2, dtype=mg.float64), t64(rnd(0, 1, 2, 3, 3)))
    gradcheck_module(nn.Conv1d(1, 2, 3, padding=1, padding_mode="reflect", dtype=mg.float64), t64(rnd(1, 2, 1, 4)))
    gradcheck_module(nn.ConvTranspose2d(1, 2, 2, stride=2, dtype=mg.float64), t64(rnd(2, 1, 1, 2, 2)))
    gradcheck_module(nn.ConvTranspose1d(2, 1, 3, stride=2, padding=1, output_padding=1, dtype=mg.float64),
                     t64(rnd(3, 1, 2, 3)))


# ------------------------------------------------------------------ pooling / upsampling
@requires_torch
@given(k=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 1), ceil=st.booleans(), seed=seeds)
@few(3)
def test_pool2d_vs_torch(k, s, p, ceil, seed):
    import torch

    p = min(p, k // 2)
    x = rnd(seed, 2, 2, 5, 6)
    compare_with_torch(nn.MaxPool2d(k, s, p, ceil_mode=ceil), torch.nn.MaxPool2d(k, s, p, ceil_mode=ceil), [x])
    for cip in (True, False):
        compare_with_torch(nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=cip),
                           torch.nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=cip), [x])


@requires_torch
@given(out=st.sampled_from([1, 2, 3, (2, 4), (None, 2)]), seed=seeds)
@few(3)
def test_adaptive_pool_vs_torch(out, seed):
    import torch

    x = rnd(seed, 2, 3, 5, 7)
    compare_with_torch(nn.AdaptiveAvgPool2d(out), torch.nn.AdaptiveAvgPool2d(out), [x])
    compare_with_torch(nn.AdaptiveMaxPool2d(out), torch.nn.AdaptiveMaxPool2d(out), [x])


@requires_torch
def test_upsample_pool1d_vs_torch():
    import torch

    x = rnd(0, 1, 2, 3, 4)
    for kw in [dict(scale_factor=2), dict(size=(5, 7)), dict(scale_factor=2, mode="bilinear"),
               dict(scale_factor=3, mode="bilinear", align_corners=True)]:
        compare_with_torch(nn.Upsample(**kw), torch.nn.Upsample(**kw), [x])
    compare_with_torch(nn.UpsamplingNearest2d(scale_factor=2), torch.nn.UpsamplingNearest2d(scale_factor=2), [x])
    compare_with_torch(nn.UpsamplingBilinear2d(size=(4, 6)), torch.nn.UpsamplingBilinear2d(size=(4, 6)), [x])
    x1 = rnd(1, 2, 2, 7)
    compare_with_torch(nn.MaxPool1d(3, 2, 1), torch.nn.MaxPool1d(3, 2, 1), [x1])
    compare_with_torch(nn.AvgPool1d(2), torch.nn.AvgPool1d(2), [x1])
    compare_with_torch(nn.AdaptiveAvgPool1d(3), torch.nn.AdaptiveAvgPool1d(3), [x1])


def test_pooling_gradcheck():
    x = t64(np.random.default_rng(0).permutation(2 * 16).reshape(1, 2, 4, 4) * 0.1)  # distinct: no max ties
    gradcheck_module(nn.MaxPool2d(2), x, params=False)
    gradcheck_module(nn.MaxPool2d(3, 1, 1), x, params=False)
    gradcheck_module(nn.AvgPool2d(3, 2, 1, count_include_pad=False), x, params=False)
    gradcheck_module(nn.AdaptiveAvgPool2d(3), x, params=False)
    gradcheck_module(nn.Upsample(scale_factor=2, mode="bilinear"), x, params=False)
    y = nn.MaxPool2d(2)(mg.tensor([[[[1.0, 2.0], [4.0, 3.0]]]]))
    assert y.tolist() == [[[[4.0]]]]


# ------------------------------------------------------------------ normalisation
@requires_torch
@given(momentum=st.sampled_from([0.1, 0.5, None]), affine=st.booleans(), track=st.booleans(),
       dims=st.sampled_from([(5, 3), (4, 3, 2), (3, 3, 2, 2)]), seed=seeds)
@few(3)
def test_batchnorm_vs_torch_over_steps(momentum, affine, track, dims, seed):
    """Training steps update running stats as torch (unbiased var, cumulative average with momentum=None),
    then eval mode uses them."""
    import torch

    cls, tcls = (nn.BatchNorm2d, torch.nn.BatchNorm2d) if len(dims) == 4 else (nn.BatchNorm1d, torch.nn.BatchNorm1d)
    m = cls(3, momentum=momentum, affine=affine, track_running_stats=track)
    t = tcls(3, momentum=momentum, affine=affine, track_running_stats=track)
    m.double()
    t.double()
    if affine:
        with torch.no_grad():
            t.weight.uniform_(0.5, 1.5)
            t.bias.uniform_(-1, 1)
    for step in range(3):
        compare_with_torch(m, t, [rnd(seed + step, *dims) * 2 + 1])
        for k, v in t.state_dict().items():
            np.testing.assert_allclose(m.state_dict()[k].numpy(), v.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
        # compare_with_torch reloads torch's state into m each call, so m's own update is checked here:
    m.eval()
    t.eval()
    compare_with_torch(m, t, [rnd(seed + 9, *dims)])


def test_batchnorm_running_stats_hand_case():
    bn = nn.BatchNorm1d(1, momentum=None).double()
    for vals in ([1.0, 3.0], [2.0, 6.0]):
        bn(mg.tensor([[v] for v in vals], dtype=mg.float64))
    # cumulative average of batch means (2, 4) and unbiased variances (2, 8)
    np.testing.assert_allclose(bn.running_mean.numpy(), [3.0])
    np.testing.assert_allclose(bn.running_var.numpy(), [5.0])
    assert int(bn.num_batches_tracked.item()) == 2
    bn2 = nn.BatchNorm1d(1, momentum=0.1).double()
    bn2(mg.tensor([[1.0], [3.0]], dtype=mg.float64))
    np.testing.assert_allclose(bn2.running_mean.numpy(), [0.2])
    np.testing.assert_allclose(bn2.running_var.numpy(), [0.9 + 0.1 * 2.0])
    with pytest.raises(ShapeError):
        nn.BatchNorm2d(1)(mg.randn(2, 1, 3))


def test_norm_gradcheck():
    x = t64(rnd(0, 3, 4, 2))
    bn = nn.BatchNorm1d(4, dtype=mg.float64)
    with mg.no_grad():
        bn.weight.array[...] = rnd(1, 4)
        bn.bias.array[...] = rnd(2, 4)
    gradcheck_module(bn, x)  # training mode: batch statistics (running stats change, output does not depend)
    bn.eval()
    gradcheck_module(bn, x)
    gradcheck_module(nn.LayerNorm((4, 2), dtype=mg.float64), x)
    gradcheck_module(nn.GroupNorm(2, 4, dtype=mg.float64), x)
    gradcheck_module(nn.RMSNorm(2, dtype=mg.float64), x)
    gradcheck_module(nn.InstanceNorm1d(4, affine=True, dtype=mg.float64), x)


@requires_torch
@given(seed=seeds, affine=st.booleans())
@few(3)
def test_layer_group_rms_instance_norm_vs_torch(seed, affine):
    import torch

    x = rnd(seed, 3, 4, 5) * 3 + 1
    compare_with_torch(nn.LayerNorm(5, elementwise_affine=affine), torch.nn.LayerNorm(5, elementwise_affine=affine),
                       [x])
    compare_with_torch(nn.LayerNorm((4, 5), bias=False), torch.nn.LayerNorm((4, 5), bias=False), [x])
    compare_with_torch(nn.GroupNorm(2, 4, affine=affine), torch.nn.GroupNorm(2, 4, affine=affine), [x])
    compare_with_torch(nn.RMSNorm(5, elementwise_affine=affine), torch.nn.RMSNorm(5, elementwise_affine=affine), [x])
    compare_with_torch(nn.RMSNorm(5, eps=1e-3), torch.nn.RMSNorm(5, eps=1e-3), [x])
    compare_with_torch(nn.InstanceNorm1d(4, affine=affine), torch.nn.InstanceNorm1d(4, affine=affine), [x])


# ------------------------------------------------------------------ dropout / embedding
def test_dropout_statistics_and_modes():
    d = nn.Dropout(0.3)
    x = mg.ones(200, 100)
    y = d(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    d.eval()
    assert d(x) is x or np.array_equal(d(x).numpy(), x.numpy())
    mg.manual_seed(1)
    a = nn.Dropout(0.5)(mg.ones(50)).numpy()
    mg.manual_seed(1)
    b = nn.Dropout(0.5)(mg.ones(50)).numpy()
    np.testing.assert_array_equal(a, b)
    xg = mg.ones(30, requires_grad=True)
    yg = nn.Dropout(0.4)(xg)
    yg.sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), yg.detach().numpy())  # d/dx = mask / (1 - p) = y / x
    assert np.array_equal(nn.Dropout(0.0)(xg).detach().numpy(), xg.detach().numpy())
    with pytest.raises(InvalidArgumentError):
        nn.Dropout(1.5)
    y2 = nn.Dropout2d(0.5)(mg.ones(4, 6, 3, 3)).numpy()
    assert all(len(np.unique(y2[n, c])) == 1 for n in range(4) for c in range(6))  # whole channels


@requires_torch
@given(pad=st.sampled_from([None, 0, 3, -1]), seed=seeds)
@few(3)
def test_embedding_vs_torch(pad, seed):
    import torch

    idx = np.random.default_rng(seed).integers(0, 6, size=(3, 4))
    m, t = nn.Embedding(6, 3, padding_idx=pad), torch.nn.Embedding(6, 3, padding_idx=pad)
    compare_with_torch(m, t, [mg.tensor(idx)], tcall=lambda t, xs: t(torch.tensor(idx)))
    if pad is not None:
        assert not m.weight.grad.numpy()[pad % 6].any()


def test_embedding_gradcheck_and_errors():
    idx = mg.tensor([[0, 1, 3], [3, 3, 2]])
    gradcheck_module(nn.Embedding(4, 2, dtype=mg.float64), idx)
    m = nn.Embedding(4, 2, padding_idx=1, dtype=mg.float64)
    assert not m.weight.detach().numpy()[1].any()
    m(idx).sum().backward()  # the padding row is used (it is zero) but gets no gradient
    np.testing.assert_array_equal(m.weight.grad.numpy(), [[1, 1], [0, 0], [1, 1], [3, 3]])
    with pytest.raises(IndexOutOfRangeError):
        m(mg.tensor([4]))
    pre = nn.Embedding.from_pretrained(mg.eye(3))
    assert not pre.weight.requires_grad and pre(mg.tensor([2])).tolist() == [[0.0, 0.0, 1.0]]


# ------------------------------------------------------------------ activations
# (CELU alpha 0.5: torch computes the backward of celu with 1/alpha rounded to float32; 1/0.5 is exact)
ACTS = [("ReLU", (), 0.0), ("ReLU6", (), 0.0), ("LeakyReLU", (0.2,), 0.0), ("ELU", (0.7,), 0.0), ("SELU", (), 0.0),
        ("CELU", (0.5,), 0.0), ("GELU", (), None), ("GELU", ("tanh",), None), ("SiLU", (), None), ("Mish", (), None),
        ("Sigmoid", (), None), ("Tanh", (), None), ("Softplus", (2.0, 5.0), None), ("Softsign", (), None),
        ("Tanhshrink", (), None), ("Hardtanh", (-0.5, 0.7), 0.5), ("Hardsigmoid", (), 3.0), ("Hardswish", (), 3.0),
        ("LogSigmoid", (), None), ("Threshold", (0.1, -2.0), 0.1), ("GLU", (1,), None), ("Softmax", (1,), None),
        ("LogSoftmax", (-1,), None), ("Softmin", (0,), None), ("PReLU", (), 0.0)]


@pytest.mark.parametrize("name,args,kink", ACTS, ids=[a[0] + str(i) for i, a in enumerate(ACTS)])
def test_activation_gradcheck(name, args, kink):
    x = rnd(7, 3, 4) * 2
    if kink is not None:  # keep clear of kinks (+-kink and -0.5 for Hardtanh's lower edge)
        for k in (kink, -kink, -0.5, 0.7, 6.0):
            x = np.where(np.abs(x - k) < 0.05, x + 0.1, x)
    m = getattr(nn, name)(*args)
    m.double()
    gradcheck_module(m, t64(x))


@requires_torch
@pytest.mark.parametrize("name,args,kink", ACTS, ids=[a[0] + str(i) for i, a in enumerate(ACTS)])
def test_activation_vs_torch(name, args, kink):
    import torch

    x = rnd(3, 3, 4) * 3
    # torch's hardsigmoid/hardswish backward multiplies by 1/6 rounded to float32 even in float64
    # (a relative error of 3e-8), so those two get rtol 1e-7; every other activation agrees to 1e-8
    rtol = 1e-7 if name in ("Hardsigmoid", "Hardswish") else 1e-8
    compare_with_torch(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), [x], rtol=rtol)
    assert repr(getattr(nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


@requires_torch
def test_prelu_channels_vs_torch():
    import torch

    m, t = nn.PReLU(3, init=0.1), torch.nn.PReLU(3, init=0.1)
    compare_with_torch(m, t, [rnd(0, 2, 3, 4)])


def test_reshaping_layers_gradcheck():
    x = t64(rnd(4, 2, 4, 2, 2))
    for m in (nn.Identity(), nn.Flatten(), nn.Unflatten(1, (2, 2)), nn.PixelShuffle(2), nn.PixelUnshuffle(2),
              nn.Upsample(scale_factor=2), nn.AdaptiveMaxPool2d(1)):
        gradcheck_module(m, x, params=False)
