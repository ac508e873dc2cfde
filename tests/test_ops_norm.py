"""Tests for minigen/ops/norm.py (layer/batch/group/instance/rms norm, normalize) and minigen/ops/dropout.py."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minigen as mg
from minigen.errors import DeviceError, DTypeError, InvalidArgumentError, ShapeError
from minigen.testing import compare_with_torch, gradcheck, gradgradcheck
from minigen.testing.strategies import arrays, floats
from tests.conftest import requires_torch



def T(arr, grad=True):
    t = mg.tensor(np.asarray(arr, dtype=np.float64))
    return t.requires_grad_(True) if grad else t


def spread_enough(arr, axes, min_var=0.05):
    """Keep gradchecks away from the near-constant slices where 1/sqrt(var + eps) is very steep."""
    return bool(np.all(np.var(arr, axis=axes) > min_var))


def torch_grads(out, inputs, v):
    import torch

    return torch.autograd.grad(out, inputs, grad_outputs=torch.tensor(v), allow_unused=True)


def mg_grads(out, inputs, v):
    return mg.grad(out, inputs, grad_outputs=mg.tensor(v), allow_unused=True)


# ------------------------------------------------------------------ layer norm
@st.composite
def layer_norm_case(draw):
    lead = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    norm = draw(st.lists(st.integers(2, 3), min_size=1, max_size=2))
    x = draw(arrays(tuple(lead + norm)))
    axes = tuple(range(len(lead), len(lead) + len(norm)))
    assume(spread_enough(x, axes))
    affine = draw(st.sampled_from(["none", "weight", "both"]))
    w = draw(arrays(tuple(norm))) if affine != "none" else None
    b = draw(arrays(tuple(norm))) if affine == "both" else None
    eps = draw(st.sampled_from([1e-5, 0.1]))
    return x, tuple(norm), w, b, eps


@given(layer_norm_case())
def test_layer_norm_gradcheck(case):
    x, shape, w, b, eps = case
    args = [T(x)] + [T(a) for a in (w, b) if a is not None]

    def fn(x, *wb):
        ww = wb[0] if w is not None else None
        bb = wb[1] if b is not None else None
        return mg.layer_norm(x, shape, ww, bb, eps)

    assert gradcheck(fn, args)


@given(layer_norm_case())
def test_layer_norm_create_graph_grads_equal_plain_grads(case):
    # the array fast path (plain backward) and the differentiable formula (create_graph) must agree
    x, shape, w, b, eps = case
    xs = T(x)
    ws = T(w) if w is not None else None
    bs = T(b) if b is not None else None
    v = np.random.default_rng(0).standard_normal(x.shape)
    wrt = [t for t in (xs, ws, bs) if t is not None]
    g1 = mg_grads(mg.layer_norm(xs, shape, ws, bs, eps), wrt, v)
    g2 = mg.grad(mg.layer_norm(xs, shape, ws, bs, eps), wrt, grad_outputs=mg.tensor(v), create_graph=True)
    for a, c in zip(g1, g2):
        np.testing.assert_allclose(a.numpy(), c.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_layer_norm_gradgradcheck():
    rng = np.random.default_rng(1)
    x, w, b = T(rng.standard_normal((2, 4))), T(rng.standard_normal(4)), T(rng.standard_normal(4))
    assert gradgradcheck(lambda x, w, b: mg.layer_norm(x, 4, w, b), (x, w, b))


def test_layer_norm_hand_computed():
    # x = [1, 2, 3]: mean 2, biased var 2/3, x_hat = [-a, 0, a] with a = sqrt(3/2); eps = 0
    x = T([1.0, 2.0, 3.0])
    y = mg.layer_norm(x, 3, eps=0.0)
    a = math.sqrt(1.5)
    np.testing.assert_allclose(y.detach().numpy(), [-a, 0.0, a], rtol=1e-12)
    # dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)) for g = [1, 0, 0] = a * [1/6, -1/3, 1/6]
    (y * T([1.0, 0.0, 0.0], grad=False)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [a / 6, -a / 3, a / 6], rtol=1e-12)


@requires_torch
@given(layer_norm_case())
def test_layer_norm_matches_torch(case):
    import torch

    x, shape, w, b, eps = case
    compare_with_torch(lambda x, w, b: mg.layer_norm(x, shape, w, b, eps),
                       lambda x, w, b: torch.nn.functional.layer_norm(x, shape, w, b, eps),
                       [T(a) if a is not None else None for a in (x, w, b)],
                       rtol=1e-10, atol=1e-12, grad_rtol=1e-9, grad_atol=1e-11)


def test_layer_norm_float32_stays_float32():
    x = mg.randn(2, 5)
    y = mg.layer_norm(x, (5,), mg.ones(5), mg.zeros(5))
    assert y.dtype == mg.float32
    np.testing.assert_allclose(y.numpy().mean(-1), 0.0, atol=1e-6)


def test_layer_norm_errors():
    x = mg.randn(2, 3, 4)
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        mg.layer_norm(x, 3)
    with pytest.raises(ShapeError, match="weight"):
        mg.layer_norm(x, 4, weight=mg.ones(3))
    with pytest.raises(InvalidArgumentError):
        mg.layer_norm(x, "4")
    with pytest.raises(DTypeError):
        mg.layer_norm(mg.tensor([[1, 2]]), 2)
    with pytest.raises(DTypeError):
        mg.layer_norm([[1.0, 2.0]], 2)
    with pytest.raises(InvalidArgumentError):
        mg.layer_norm(x, 4, eps=-1.0)


# ------------------------------------------------------------------ rms norm
@given(layer_norm_case())
def test_rms_norm_gradcheck(case):
    x, shape, w, _, eps = case
    args = [T(x)] + ([T(w)] if w is not None else [])
    assert gradcheck(lambda x, *w_: mg.rms_norm(x, shape, w_[0] if w_ else None, eps), args)


@requires_torch
def test_rms_norm_matches_torch():
    import torch

    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal(4)
    for eps in (None, 1e-3):
        out = mg.rms_norm(T(x), (4,), T(w), eps)
        ref = torch.nn.functional.rms_norm(torch.tensor(x), (4,), torch.tensor(w), eps)
        np.testing.assert_allclose(out.detach().numpy(), ref.numpy(), rtol=1e-12)
    # hand check: x = [3, 4] -> rms = sqrt(12.5)
    np.testing.assert_allclose(mg.rms_norm(T([3.0, 4.0]), 2, eps=0.0).detach().numpy(),
                               np.array([3.0, 4.0]) / math.sqrt(12.5), rtol=1e-12)


# ------------------------------------------------------------------ batch norm
@st.composite
def batch_norm_case(draw):
    ndim = draw(st.sampled_from([2, 3, 4]))
    C = draw(st.integers(1, 3))
    N = draw(st.integers(2, 3))
    spatial = [draw(st.integers(1, 2)) for _ in range(ndim - 2)]
    shape = (N, C, *spatial)
    x = draw(arrays(shape))
    assume(spread_enough(x, (0,) + tuple(range(2, ndim))))
    affine = draw(st.booleans())
    w = draw(arrays((C,))) if affine else None
    b = draw(arrays((C,))) if affine else None
    rm = draw(arrays((C,)))
    rv = draw(arrays((C,), elements=floats(0.2, 2.0)))
    momentum = draw(st.sampled_from([0.1, 0.5, 1.0]))
    return x, w, b, rm, rv, momentum


@given(batch_norm_case(), st.booleans())
def test_batch_norm_gradcheck(case, training):
    x, w, b, rm, rv, momentum = case
    args = [T(x)] + ([T(w), T(b)] if w is not None else [])

    def fn(x, *wb):
        # fresh running stats each call: training updates them in place
        return mg.batch_norm(x, T(rm, False), T(rv, False), wb[0] if wb else None, wb[1] if wb else None,
                            training=training, momentum=momentum)

    assert gradcheck(fn, args)


@given(batch_norm_case())
def test_batch_norm_running_stats_update(case):
    x, w, b, rm, rv, momentum = case
    rm_t, rv_t = T(rm, False), T(rv, False)
    v0 = rm_t._version()
    y = mg.batch_norm(T(x), rm_t, rv_t, T(w) if w is not None else None, T(b) if b is not None else None,
                     training=True, momentum=momentum)
    axes = (0,) + tuple(range(2, x.ndim))
    n = x.size // x.shape[1]
    mean, var_b = x.mean(axis=axes), x.var(axis=axes)
    np.testing.assert_allclose(rm_t.numpy(), (1 - momentum) * rm + momentum * mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rv_t.numpy(), (1 - momentum) * rv + momentum * var_b * n / (n - 1),
                               rtol=1e-12, atol=1e-14)
    assert rm_t._version() == v0 + 1
    # the output uses the biased batch variance
    shp = (1, -1) + (1,) * (x.ndim - 2)
    expect = (x - mean.reshape(shp)) / np.sqrt(var_b.reshape(shp) + 1e-5)
    if w is not None:
        expect = expect * w.reshape(shp) + b.reshape(shp)
    np.testing.assert_allclose(y.detach().numpy(), expect, rtol=1e-10, atol=1e-12)


@given(batch_norm_case())
def test_batch_norm_eval_uses_running_stats(case):
    x, w, b, rm, rv, momentum = case
    rm_t, rv_t = T(rm, False), T(rv, False)
    y = mg.batch_norm(T(x), rm_t, rv_t, T(w) if w is not None else None, T(b) if b is not None else None,
                     training=False, momentum=momentum, eps=1e-3)
    shp = (1, -1) + (1,) * (x.ndim - 2)
    expect = (x - rm.reshape(shp)) / np.sqrt(rv.reshape(shp) + 1e-3)
    if w is not None:
        expect = expect * w.reshape(shp) + b.reshape(shp)
    np.testing.assert_allclose(y.detach().numpy(), expect, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(rm_t.numpy(), rm)  # eval mode leaves running stats alone
    np.testing.assert_array_equal(rv_t.numpy(), rv)


def test_batch_norm_gradgradcheck_training():
    rng = np.random.default_rng(3)
    x, w, b = T(rng.standard_normal((3, 2, 2))), T(rng.standard_normal(2)), T(rng.standard_normal(2))
    assert gradgradcheck(lambda x, w, b: mg.batch_norm(x, None, None, w, b, training=True), (x, w, b))


def test_batch_norm_create_graph_grads_equal_plain_grads():
    rng = np.random.default_rng(4)
    x, w, b = T(rng.standard_normal((4, 3, 2))), T(rng.standard_normal(3)), T(rng.standard_normal(3))
    v = rng.standard_normal((4, 3, 2))
    g1 = mg_grads(mg.batch_norm(x, None, None, w, b, training=True), [x, w, b], v)
    g2 = mg.grad(mg.batch_norm(x, None, None, w, b, training=True), [x, w, b], grad_outputs=mg.tensor(v),
                 create_graph=True)
    for a, c in zip(g1, g2):
        np.testing.assert_allclose(a.numpy(), c.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_batch_norm_hand_computed():
    # one channel, batch [1, 3]: mean 2, biased var 1, unbiased var 2; eps = 0
    x = T([[1.0], [3.0]])
    rm, rv = mg.zeros(1, dtype=mg.float64), mg.ones(1, dtype=mg.float64)
    y = mg.batch_norm(x, rm, rv, training=True, momentum=0.5, eps=0.0)
    np.testing.assert_allclose(y.detach().numpy(), [[-1.0], [1.0]])
    np.testing.assert_allclose(rm.numpy(), [1.0])  # 0.5 * 0 + 0.5 * 2
    np.testing.assert_allclose(rv.numpy(), [1.5])  # 0.5 * 1 + 0.5 * 2


@requires_torch
@given(batch_norm_case(), st.booleans())
def test_batch_norm_matches_torch(case, training):
    import torch

    x, w, b, rm, rv, momentum = case
    ours = [T(a) if a is not None else None for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) if a is not None else None for a in (x, w, b)]
    rm_o, rv_o, rm_t, rv_t = T(rm, False), T(rv, False), torch.tensor(rm), torch.tensor(rv)
    out = mg.batch_norm(ours[0], rm_o, rv_o, ours[1], ours[2], training=training, momentum=momentum)
    ref = torch.nn.functional.batch_norm(theirs[0], rm_t, rv_t, theirs[1], theirs[2], training=training,
                                         momentum=momentum)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(rm_o.numpy(), rm_t.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rv_o.numpy(), rv_t.numpy(), rtol=1e-12, atol=1e-14)
    v = np.random.default_rng(0).standard_normal(x.shape)
    for a, c in zip(mg_grads(out, [t for t in ours if t is not None], v),
                    torch_grads(ref, [t for t in theirs if t is not None], v)):
        np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-8, atol=1e-10)


def test_batch_norm_errors():
    x = mg.randn(4, 3, 2)
    with pytest.raises(ShapeError, match="running_mean"):
        mg.batch_norm(x, mg.zeros(2), mg.ones(3))
    with pytest.raises(ShapeError, match="weight"):
        mg.batch_norm(x, None, None, weight=mg.ones(4), training=True)
    with pytest.raises(InvalidArgumentError, match="more than 1 value per channel"):
        mg.batch_norm(mg.randn(1, 3), None, None, training=True)
    with pytest.raises(InvalidArgumentError, match="running_mean and running_var"):
        mg.batch_norm(x, None, None, training=False)
    with pytest.raises(ShapeError):
        mg.batch_norm(mg.randn(3), None, None, training=True)
    with pytest.raises(InvalidArgumentError):
        mg.batch_norm(x, None, None, training=True, momentum="0.1")


# ------------------------------------------------------------------ group norm / instance norm
@st.composite
def group_norm_case(draw):
    G = draw(st.integers(1, 2))
    C = G * draw(st.integers(1, 2))
    N = draw(st.integers(1, 2))
    spatial = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    x = draw(arrays((N, C, *spatial)))
    assume(spread_enough(x.reshape(N, G, -1), (2,)))
    affine = draw(st.booleans())
    w = draw(arrays((C,))) if affine else None
    b = draw(arrays((C,))) if affine else None
    return x, G, w, b


@given(group_norm_case())
def test_group_norm_gradcheck(case):
    x, G, w, b = case
    args = [T(x)] + ([T(w), T(b)] if w is not None else [])
    assert gradcheck(lambda x, *wb: mg.group_norm(x, G, *(wb or (None, None))), args)


@requires_torch
@given(group_norm_case())
def test_group_norm_matches_torch(case):
    import torch

    x, G, w, b = case
    ours = [T(a) if a is not None else None for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) if a is not None else None for a in (x, w, b)]
    out = mg.group_norm(ours[0], G, ours[1], ours[2])
    ref = torch.nn.functional.group_norm(theirs[0], G, theirs[1], theirs[2])
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-9, atol=1e-11)
    v = np.random.default_rng(0).standard_normal(x.shape)
    for a, c in zip(mg_grads(out, [t for t in ours if t is not None], v),
                    torch_grads(ref, [t for t in theirs if t is not None], v)):
        np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-8, atol=1e-10)


def test_group_norm_errors():
    with pytest.raises(ShapeError, match="divisible"):
        mg.group_norm(mg.randn(2, 3, 4), 2)
    with pytest.raises(InvalidArgumentError):
        mg.group_norm(mg.randn(2, 4, 4), 0)


@requires_torch
def test_instance_norm_matches_torch_with_running_stats():
    import torch

    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((3, 2, 5)), rng.standard_normal(2), rng.standard_normal(2)
    rm, rv = rng.standard_normal(2), rng.uniform(0.5, 2, 2)
    ours = [T(a) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    rm_o, rv_o, rm_t, rv_t = T(rm, False), T(rv, False), torch.tensor(rm), torch.tensor(rv)
    out = mg.instance_norm(ours[0], rm_o, rv_o, ours[1], ours[2], momentum=0.3)
    ref = torch.nn.functional.instance_norm(theirs[0], rm_t, rv_t, theirs[1], theirs[2], momentum=0.3)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rm_o.numpy(), rm_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv_o.numpy(), rv_t.numpy(), rtol=1e-12)
    v = rng.standard_normal(x.shape)
    for a, c in zip(mg_grads(out, ours, v), torch_grads(ref, theirs, v)):
        np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-9, atol=1e-11)
    # use_input_stats=False normalises with the running statistics
    out2 = mg.instance_norm(T(x, False), rm_o, rv_o, use_input_stats=False)
    ref2 = torch.nn.functional.instance_norm(torch.tensor(x), rm_t, rv_t, use_input_stats=False)
    np.testing.assert_allclose(out2.numpy(), ref2.numpy(), rtol=1e-12)


def test_instance_norm_gradcheck():
    rng = np.random.default_rng(6)
    x, w, b = T(rng.standard_normal((2, 2, 3))), T(rng.standard_normal(2)), T(rng.standard_normal(2))
    assert gradcheck(lambda x, w, b: mg.instance_norm(x, weight=w, bias=b), (x, w, b))
    with pytest.raises(ShapeError):
        mg.instance_norm(mg.randn(2, 3))


# ------------------------------------------------------------------ normalize
@given(st.data())
def test_normalize_gradcheck(data):
    shape = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple))
    x = data.draw(arrays(shape, elements=floats(0.2, 2.0).flatmap(lambda v: st.sampled_from([v, -v]))))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    p = data.draw(st.sampled_from([1.0, 2.0, 3.0, math.inf]))
    assume(p != math.inf or len(np.unique(np.abs(x))) == x.size)  # max |x|: no ties (a kink)
    assert gradcheck(lambda x: mg.normalize(x, p=p, dim=dim), (T(x),))


@requires_torch
def test_normalize_matches_torch_including_zero_rows():
    import torch

    x = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1e-13, 0.0, 0.0]])
    for p in (1.0, 2.0, 3.0, math.inf):
        ours, theirs = T(x), torch.tensor(x, requires_grad=True)
        out = mg.normalize(ours, p=p, dim=1)
        ref = torch.nn.functional.normalize(theirs, p=p, dim=1)
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
        v = np.random.default_rng(0).standard_normal(x.shape)
        (a,), (c,) = mg_grads(out, [ours], v), torch_grads(ref, [theirs], v)
        assert np.isfinite(a.numpy()).all()
        np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-9)
    # hand: [3, 4] / 5
    np.testing.assert_allclose(mg.normalize(T([3.0, 4.0]), dim=0).detach().numpy(), [0.6, 0.8])


# ------------------------------------------------------------------ dropout
def test_dropout_statistics_and_scaling():
    p = 0.3
    x = mg.ones(200, 500, dtype=mg.float64)
    y = mg.dropout(x, p, training=True).numpy()
    kept = y != 0
    # each element kept with probability 1 - p: the fraction is within 6 standard deviations
    assert abs(kept.mean() - (1 - p)) < 6 * math.sqrt(p * (1 - p) / y.size)
    np.testing.assert_allclose(y[kept], 1 / (1 - p))   # inverted dropout: survivors scaled by 1/(1-p)
    assert abs(y.mean() - 1.0) < 0.02                    # so the expectation is preserved


def test_dropout_train_eval_and_edge_probabilities():
    x = mg.randn(4, 5, requires_grad=True)
    assert mg.dropout(x, 0.5, training=False) is x
    assert mg.dropout(x, 0.0, training=True) is x
    np.testing.assert_array_equal(mg.dropout(x, 1.0).detach().numpy(), 0.0)
    for bad in (-0.1, 1.5, "0.5", None):
        with pytest.raises(InvalidArgumentError):
            mg.dropout(x, bad)


def test_dropout_gradient_is_the_mask():
    x = mg.randn(6, 7, dtype=mg.float64, requires_grad=True)
    y = mg.dropout(x, 0.4)
    y.sum().backward()
    scale = (y.detach().numpy() / x.detach().numpy())
    np.testing.assert_allclose(x.grad.numpy(), scale, rtol=1e-12)
    assert set(np.round(np.unique(scale), 9)) <= {0.0, round(1 / 0.6, 9)}
    assert gradcheck(lambda x: mg.dropout(x, 0.4, generator=mg.Generator().manual_seed(3)), (x,))


def test_dropout_determinism_with_seed():
    x = mg.ones(10, 10)
    a = mg.dropout(x, 0.5, generator=mg.Generator().manual_seed(7)).numpy()
    b = mg.dropout(x, 0.5, generator=mg.Generator().manual_seed(7)).numpy()
    c = mg.dropout(x, 0.5, generator=mg.Generator().manual_seed(8)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    mg.manual_seed(11)
    d = mg.dropout(x, 0.5).numpy()
    mg.manual_seed(11)
    np.testing.assert_array_equal(d, mg.dropout(x, 0.5).numpy())


def test_dropout2d_zeroes_whole_channels():
    x = mg.ones(8, 16, 3, 3)
    y = mg.dropout2d(x, 0.5).numpy()
    per_channel = y.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0 < (per_channel[..., 0] == 0).mean() < 1
    assert mg.dropout1d(mg.ones(2, 3, 4), 0.5).shape == (2, 3, 4)
    assert mg.dropout3d(mg.ones(3, 2, 2, 2), 0.5).shape == (3, 2, 2, 2)
    with pytest.raises(ShapeError):
        mg.dropout2d(mg.ones(2, 3), 0.5)


def test_norm_input_type_errors():
    for fn in (lambda: mg.layer_norm(None, 3), lambda: mg.batch_norm("x", None, None),
               lambda: mg.group_norm([1.0], 1), lambda: mg.dropout(3.0), lambda: mg.normalize(None)):
        with pytest.raises(DTypeError):
            fn()
    assert issubclass(DeviceError, mg.MinigenError)


# ------------------------------------------------------------------ fast_backward (fused kernels) == backward
# layer/group/instance/batch norm (affine or not, 2-d inputs, running stats): the rows of tests/op_table.py;
# test_kernel_path_equals_reference there compares the fused gradient with the formula and the reference.


def test_norm_gradient_reads_only_what_it_needs():
    """db reads nothing: with only the bias requiring grad, editing x in place after the forward is fine
    (the check guards only what a gradient reads); with x requiring grad it raises."""
    rng = np.random.default_rng(0)
    x = T(rng.standard_normal((3, 4)), grad=False)
    b = T(np.zeros(4))
    y = mg.layer_norm(x, 4, None, b)
    x.add_(1.0)
    y.sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [3.0] * 4)
    x2 = T(rng.standard_normal((3, 4)))
    a = x2 * 1.0
    y2 = mg.layer_norm(a, 4)
    a.add_(1.0)
    with pytest.raises(mg.errors.InplaceError):
        y2.sum().backward()
