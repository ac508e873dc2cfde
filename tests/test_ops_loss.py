"""Tests for minigen/ops/loss.py."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minigen as mg
from minigen.errors import DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError
from minigen.testing import compare_with_torch as _compare, gradcheck, gradgradcheck
from minigen.testing.strategies import arrays, floats
from tests.conftest import requires_torch

REDUCTIONS = st.sampled_from(["mean", "sum", "none"])


def T(arr, grad=True):
    t = mg.tensor(np.asarray(arr))
    return t.requires_grad_(True) if grad and t.dtype.kind == "f" else t


small_shapes = st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple)


def compare_with_torch(ours_fn, torch_fn, arrays_, grad_mask, rtol=1e-9, atol=1e-11, **kw):
    """Run both libraries on the same arrays (``grad_mask``: which require grad; ``kw`` go to both):
    minigen.testing.compare_with_torch checks the forward and the VJP for a random cotangent."""
    _compare(lambda *a: ours_fn(*a, **kw), lambda *a: torch_fn(*a, **kw), [T(a, g) for a, g in zip(arrays_, grad_mask)],
             rtol=rtol, atol=atol)


# ------------------------------------------------------------------ regression losses
@st.composite
def regression_case(draw):
    shape = draw(small_shapes)
    x = draw(arrays(shape))
    y = draw(arrays(shape))
    return x, y, draw(REDUCTIONS)


@given(regression_case(), st.sampled_from(["mse", "l1", "smooth_l1", "huber"]), st.sampled_from([0.5, 1.0, 1.5]))
def test_regression_losses_gradcheck(case, name, param):
    x, y, red = case
    d = np.abs(x - y)
    assume(np.all(d > 1e-2) and np.all(np.abs(d - param) > 1e-2))  # away from |d| = 0 and the branch point
    fn = {"mse": lambda a, b: mg.mse_loss(a, b, reduction=red),
          "l1": lambda a, b: mg.l1_loss(a, b, reduction=red),
          "smooth_l1": lambda a, b: mg.smooth_l1_loss(a, b, reduction=red, beta=param),
          "huber": lambda a, b: mg.huber_loss(a, b, reduction=red, delta=param)}[name]
    assert gradcheck(fn, (T(x), T(y)))


def test_mse_gradgradcheck():
    rng = np.random.default_rng(0)
    x, y = T(rng.standard_normal((2, 3))), T(rng.standard_normal((2, 3)))
    for red in ("mean", "none"):
        assert gradgradcheck(lambda a, b: mg.mse_loss(a, b, reduction=red), (x, y))


def test_regression_losses_hand_computed():
    x, y = T([1.0, 2.0]), T([0.0, 0.0], False)
    assert mg.mse_loss(x, y).item() == pytest.approx(2.5)
    assert mg.mse_loss(x, y, reduction="sum").item() == pytest.approx(5.0)
    assert mg.l1_loss(x, y).item() == pytest.approx(1.5)
    # smooth_l1 (beta 1): |d| = 0.5 -> 0.5 * 0.25 = 0.125;  |d| = 2 -> 2 - 0.5 = 1.5
    np.testing.assert_allclose(mg.smooth_l1_loss(T([0.5, 2.0]), T([0.0, 0.0]), reduction="none").detach().numpy(),
                               [0.125, 1.5])
    # huber (delta 2): |d| = 3 -> 2 * (3 - 1) = 4;  |d| = 1 -> 0.5
    np.testing.assert_allclose(mg.huber_loss(T([3.0, -1.0]), T([0.0, 0.0]), reduction="none", delta=2.0)
                               .detach().numpy(), [4.0, 0.5])
    # beta = 0 is l1
    assert mg.smooth_l1_loss(x, y, beta=0.0).item() == pytest.approx(1.5)
    # legacy flags map onto reduction
    assert mg.mse_loss(x, y, size_average=False).item() == pytest.approx(5.0)
    assert mg.mse_loss(x, y, reduce=False).shape == (2,)


@requires_torch
@given(regression_case())
def test_regression_losses_match_torch(case):
    import torch.nn.functional as tF

    x, y, red = case
    assume(np.all(np.abs(x - y) > 1e-3))
    compare_with_torch(mg.mse_loss, tF.mse_loss, (x, y), (1, 1), reduction=red)
    compare_with_torch(mg.l1_loss, tF.l1_loss, (x, y), (1, 1), reduction=red)
    compare_with_torch(mg.smooth_l1_loss, tF.smooth_l1_loss, (x, y), (1, 1), reduction=red, beta=0.7)
    compare_with_torch(mg.huber_loss, tF.huber_loss, (x, y), (1, 1), reduction=red, delta=0.7)


# ------------------------------------------------------------------ binary cross-entropy
@st.composite
def binary_case(draw):
    shape = draw(small_shapes)
    p = draw(arrays(shape, elements=floats(0.05, 0.95)))
    x = draw(arrays(shape, elements=floats(-4, 4)))
    y = draw(arrays(shape, elements=floats(0, 1)))
    w = draw(st.one_of(st.none(), arrays(shape[-1:], elements=floats(0.5, 2))))
    pw = draw(st.one_of(st.none(), arrays(shape[-1:], elements=floats(0.5, 2))))
    return p, x, y, w, pw, draw(REDUCTIONS)


@given(binary_case())
def test_bce_gradcheck(case):
    p, _, y, w, _, red = case
    fn = lambda a, b: mg.binary_cross_entropy(a, b, weight=None if w is None else T(w, False), reduction=red)
    assert gradcheck(fn, (T(p), T(y)))


@given(binary_case())
def test_bce_with_logits_gradcheck(case):
    _, x, y, w, pw, red = case
    args = [T(x), T(y)] + ([T(w)] if w is not None else []) + ([T(pw)] if pw is not None else [])

    def fn(x, y, *rest):
        rest = list(rest)
        ww = rest.pop(0) if w is not None else None
        pp = rest.pop(0) if pw is not None else None
        return mg.binary_cross_entropy_with_logits(x, y, weight=ww, pos_weight=pp, reduction=red)

    assert gradcheck(fn, args)


def test_bce_with_logits_gradgradcheck():
    rng = np.random.default_rng(1)
    x, y, pw = T(rng.standard_normal((2, 3))), T(rng.uniform(0, 1, (2, 3))), T(rng.uniform(0.5, 2, 3))
    assert gradgradcheck(lambda x, y, pw: mg.binary_cross_entropy_with_logits(x, y, pos_weight=pw), (x, y, pw))
    assert gradgradcheck(lambda x, y: mg.binary_cross_entropy(mg.sigmoid(x), y, reduction="sum"), (x, y))


@requires_torch
@given(binary_case())
def test_binary_losses_match_torch(case):
    import torch.nn.functional as tF

    p, x, y, w, pw, red = case
    compare_with_torch(lambda a, b, *c: mg.binary_cross_entropy(a, b, *c, reduction=red),
                       lambda a, b, *c: tF.binary_cross_entropy(a, b, *c, reduction=red),
                       (p, y) + ((w,) if w is not None else ()), (1, 1, 0))
    # torch has no gradient for pos_weight: compare input/target grads with a constant pos_weight
    compare_with_torch(lambda a, b, *c: mg.binary_cross_entropy_with_logits(a, b, *c[:1], reduction=red,
                                                                            pos_weight=c[1] if len(c) > 1 else None),
                       lambda a, b, *c: tF.binary_cross_entropy_with_logits(a, b, *c[:1], reduction=red,
                                                                            pos_weight=c[1] if len(c) > 1 else None),
                       (x, y) + ((w if w is not None else np.ones(x.shape[-1:])),) + ((pw,) if pw is not None else ()),
                       (1, 1, 0, 0))


def test_binary_losses_hand_computed_and_extremes():
    # BCE(0.5, 1) = log 2;  BCE with logits (0, 1) = log 2 and dL/dx = sigmoid(0) - 1 = -0.5
    assert mg.binary_cross_entropy(T([0.5]), T([1.0])).item() == pytest.approx(math.log(2))
    x = T([0.0])
    loss = mg.binary_cross_entropy_with_logits(x, T([1.0], False))
    loss.backward()
    assert loss.item() == pytest.approx(math.log(2))
    assert x.grad.item() == pytest.approx(-0.5)
    # pos_weight 3 scales the positive term: 3 * log 2
    assert mg.binary_cross_entropy_with_logits(T([0.0]), T([1.0]), pos_weight=T([3.0])).item() == \
        pytest.approx(3 * math.log(2))
    # |x| = 1000: finite loss and gradient
    x = T([1000.0, -1000.0, 1000.0, -1000.0])
    y = T([1.0, 1.0, 0.0, 0.0], False)
    loss = mg.binary_cross_entropy_with_logits(x, y, reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.detach().numpy(), [0.0, 1000.0, 1000.0, 0.0])
    np.testing.assert_allclose(x.grad.numpy(), [0.0, -1.0, 1.0, 0.0])
    # BCE at probabilities exactly 0 and 1: logs clamped at -100, finite everything
    p = T([0.0, 1.0, 0.0])
    loss = mg.binary_cross_entropy(p, T([0.0, 1.0, 1.0], False), reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.detach().numpy(), [0.0, 0.0, 100.0])
    assert np.isfinite(p.grad.numpy()).all()


def test_binary_losses_errors():
    with pytest.raises(InvalidArgumentError, match="between 0 and 1"):
        mg.binary_cross_entropy(T([1.5]), T([1.0]))
    with pytest.raises(ShapeError, match="target shape"):
        mg.binary_cross_entropy(T([0.5, 0.5]), T([1.0]))
    with pytest.raises(ShapeError, match="target shape"):
        mg.binary_cross_entropy_with_logits(T([[0.5, 0.5]]), T([1.0, 0.0]))
    with pytest.raises(ShapeError, match="weight"):
        mg.binary_cross_entropy_with_logits(T([0.5, 0.5]), T([1.0, 0.0]), weight=T([1.0, 2.0, 3.0]))
    with pytest.raises(DTypeError, match="target"):
        mg.binary_cross_entropy_with_logits(T([0.5]), mg.tensor([1]))
    with pytest.raises(InvalidArgumentError, match="reduction"):
        mg.binary_cross_entropy_with_logits(T([0.5]), T([1.0]), reduction="avg")


# ------------------------------------------------------------------ cross-entropy / nll
@st.composite
def class_case(draw, prob_targets=False):
    """(logits, target, weight, ignore_index, label_smoothing, reduction) for (C,), (N, C), (N, C, d...)."""
    C = draw(st.integers(2, 4))
    kind = draw(st.sampled_from(["1d", "2d", "nd"]))
    if kind == "1d":
        shape, tshape = (C,), ()
    elif kind == "2d":
        n = draw(st.integers(1, 3))
        shape, tshape = (n, C), (n,)
    else:
        n, d = draw(st.integers(1, 2)), draw(st.lists(st.integers(1, 2), min_size=1, max_size=2))
        shape, tshape = (n, C, *d), (n, *d)
    x = draw(arrays(shape, elements=floats(-3, 3)))
    ignore = draw(st.sampled_from([-100, 1]))
    if prob_targets:
        raw = draw(arrays(shape, elements=floats(0.01, 1)))
        target = raw / raw.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)
        ignore = -100  # ignore_index applies to class indices only
    else:
        target = draw(arrays(tshape, dtype="int64", elements=st.sampled_from(list(range(C)) + [ignore])))
    w = draw(st.one_of(st.none(), arrays((C,), elements=floats(0.5, 2))))
    ls = draw(st.sampled_from([0.0, 0.1, 0.5]))
    red = draw(REDUCTIONS)
    return x, target, w, ignore, ls, red


def _all_ignored(target, ignore, red):
    return red == "mean" and target.dtype.kind == "i" and np.all(target == ignore)


@given(st.one_of(class_case(), class_case(prob_targets=True)))
def test_cross_entropy_gradcheck(case):
    x, t, w, ignore, ls, red = case
    assume(not _all_ignored(t, ignore, red))  # 0/0 = NaN, checked separately
    prob = t.dtype.kind == "f"
    args = (T(x), T(t, grad=prob))

    def fn(x, t):
        return mg.cross_entropy(x, t, weight=None if w is None else T(w, False), ignore_index=ignore,
                                label_smoothing=ls, reduction=red)

    assert gradcheck(fn, args)


@pytest.mark.parametrize("mode", ["numba", "reference"])
@given(case=class_case())
def test_cross_entropy_create_graph_grads_equal_plain_grads(mode, case):
    """CrossEntropy.fast_backward (g * the gradient the fused kernel computed with the loss) == its backward
    formula (what create_graph=True runs); in reference mode fast_backward declines and both run the formula."""
    from minigen.kernels import dispatch

    x, t, w, ignore, ls, red = case
    assume(not _all_ignored(t, ignore, red))
    xs = T(x)
    kw = dict(weight=None if w is None else T(w, False), ignore_index=ignore, label_smoothing=ls, reduction=red)
    with dispatch.set_mode(mode):
        out = mg.cross_entropy(xs, T(t), **kw)
        v = mg.tensor(np.random.default_rng(0).standard_normal(out.shape))
        dispatch.reset_stats()
        (g1,) = mg.grad(mg.cross_entropy(xs, T(t), **kw), xs, grad_outputs=v)
        assert dispatch.stats().get("cross_entropy", 0) == (1 if mode == "numba" and dispatch.available() else 0)
        (g2,) = mg.grad(mg.cross_entropy(xs, T(t), **kw), xs, grad_outputs=v, create_graph=True)
    np.testing.assert_allclose(g1.numpy(), g2.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_cross_entropy_all_ignored_fast_and_formula():
    """Every target ignored with 'mean': loss NaN (0/0), gradient 0 on both paths, as PyTorch."""
    from minigen.kernels import dispatch

    x = T(np.random.default_rng(3).standard_normal((3, 4)))
    t = mg.tensor([-100, -100, -100])
    for mode in ("numba", "reference"):
        with dispatch.set_mode(mode):
            for create_graph in (False, True):
                y = mg.cross_entropy(x, t)
                assert math.isnan(y.item())
                (g,) = mg.grad(y, x, create_graph=create_graph)
                np.testing.assert_array_equal(g.detach().numpy(), np.zeros((3, 4)))


def test_bce_with_logits_broadcast_pos_weight_gradient_shape():
    """pos_weight (C,) broadcast against (N, C): its gradient is summed back by the engine (not the op)."""
    x, y = T(np.linspace(-2, 2, 6).reshape(2, 3)), T(np.array([[0.0, 1, 1], [1, 0, 0.5]]), grad=False)
    p = T(np.array([1.0, 2.0, 0.5]))
    assert gradcheck(lambda x, p: mg.binary_cross_entropy_with_logits(x, y, pos_weight=p), (x, p))
    mg.binary_cross_entropy_with_logits(x, y, pos_weight=p).backward()
    assert p.grad.shape == (3,)


def test_cross_entropy_gradgradcheck():
    rng = np.random.default_rng(2)
    x = T(rng.standard_normal((3, 4)))
    t = mg.tensor([0, 3, -100])
    w = T(rng.uniform(0.5, 2, 4), False)
    for ls in (0.0, 0.2):
        assert gradgradcheck(lambda x: mg.cross_entropy(x, t, weight=w, label_smoothing=ls), (x,))
    assert gradgradcheck(lambda x: mg.cross_entropy(x, t, reduction="none"), (x,))


@given(class_case())
def test_nll_loss_gradcheck(case):
    x, t, w, ignore, _, red = case
    assume(not _all_ignored(t, ignore, red))
    fn = lambda x: mg.nll_loss(mg.log_softmax(x, dim=1 if x.ndim > 1 else 0), T(t),
                               weight=None if w is None else T(w, False), ignore_index=ignore, reduction=red)
    assert gradcheck(fn, (T(x),))


@requires_torch
@given(st.one_of(class_case(), class_case(prob_targets=True)))
def test_cross_entropy_and_nll_match_torch(case):
    import torch.nn.functional as tF

    x, t, w, ignore, ls, red = case
    prob = t.dtype.kind == "f"
    kw = dict(ignore_index=ignore, label_smoothing=ls, reduction=red)
    arrs, grads = (x, t) + ((w,) if w is not None else ()), (1, int(prob), 0)
    compare_with_torch(lambda a, b, *c: mg.cross_entropy(a, b, *c, **kw),
                       lambda a, b, *c: tF.cross_entropy(a, b, *c, **kw), arrs, grads, atol=1e-10)
    if not prob:
        logp = x - np.log(np.exp(x).sum(axis=1 if x.ndim > 1 else 0, keepdims=True))
        compare_with_torch(lambda a, b, *c: mg.nll_loss(a, b, *c, ignore_index=ignore, reduction=red),
                           lambda a, b, *c: tF.nll_loss(a, b, *c, ignore_index=ignore, reduction=red),
                           (logp, t) + ((w,) if w is not None else ()), (1, 0, 0), atol=1e-10)


def test_cross_entropy_hand_computed():
    # logits [0, log 3]: softmax [1/4, 3/4]; target 1 -> loss -log(3/4); grad (softmax - onehot) / N
    x = T([[0.0, math.log(3)], [0.0, math.log(3)]])
    loss = mg.cross_entropy(x, mg.tensor([1, 0]))
    loss.backward()
    assert loss.item() == pytest.approx((-math.log(0.75) - math.log(0.25)) / 2)
    np.testing.assert_allclose(x.grad.numpy(), [[0.125, -0.125], [-0.375, 0.375]])
    # class weights: mean divides by the sum of the targets' weights
    w = T([1.0, 3.0], False)
    loss = mg.cross_entropy(T([[0.0, math.log(3)], [0.0, math.log(3)]]), mg.tensor([1, 0]), weight=w)
    assert loss.item() == pytest.approx((-3 * math.log(0.75) - math.log(0.25)) / 4)
    # label smoothing s over C classes: (1 - s) nll + s/C * sum_c -log p_c
    loss = mg.cross_entropy(T([0.0, math.log(3)]), mg.tensor(1), label_smoothing=0.5)
    assert loss.item() == pytest.approx(0.5 * -math.log(0.75) + 0.25 * (-math.log(0.25) - math.log(0.75)))
    # ignore_index rows add nothing and are not counted; all ignored with 'mean' gives NaN (0 / 0), as torch
    loss = mg.cross_entropy(T([[0.0, math.log(3)], [5.0, 1.0]]), mg.tensor([1, -100]))
    assert loss.item() == pytest.approx(-math.log(0.75))
    for fn in (mg.cross_entropy, mg.nll_loss):
        x = T([[1.0, 2.0]])
        loss = fn(x, mg.tensor([-100]))
        loss.backward()
        assert math.isnan(loss.item())
        np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    # nll_loss picks -input at the target: -(-1 * 2 + -3 * 1) / (2 + 1) with weights [1, 2]
    assert mg.nll_loss(T([[-1.0, -2.0], [-3.0, -4.0]]), mg.tensor([1, 0]), weight=T([1.0, 2.0], False)).item() == \
        pytest.approx((2 * 2 + 3 * 1) / 3)


def test_cross_entropy_float32_and_large_logits():
    x = mg.tensor([[1000.0, 0.0, -1000.0]], requires_grad=True)
    loss = mg.cross_entropy(x, mg.tensor([2]))
    loss.backward()
    assert loss.dtype == mg.float32 and loss.item() == pytest.approx(2000.0)
    np.testing.assert_allclose(x.grad.numpy(), [[1.0, 0.0, -1.0]], atol=1e-6)


def test_class_target_errors():
    x = mg.randn(3, 4)
    with pytest.raises(DTypeError, match="integer"):
        mg.cross_entropy(x, mg.tensor([0.0, 1.0, 2.0]))        # float class indices
    with pytest.raises(IndexOutOfRangeError, match="4"):
        mg.cross_entropy(x, mg.tensor([0, 4, 1]))
    with pytest.raises(IndexOutOfRangeError, match="-1"):
        mg.cross_entropy(x, mg.tensor([0, -1, 1]))
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        mg.cross_entropy(x, mg.tensor([0, 1]))                 # wrong N
    with pytest.raises(ShapeError, match="weight"):
        mg.cross_entropy(x, mg.tensor([0, 1, 2]), weight=mg.ones(3))
    with pytest.raises(DTypeError):
        mg.cross_entropy(x, mg.tensor([True, False, True]))
    with pytest.raises(InvalidArgumentError, match="label_smoothing"):
        mg.cross_entropy(x, mg.tensor([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(InvalidArgumentError, match="reduction"):
        mg.nll_loss(x, mg.tensor([0, 1, 2]), reduction="batchmean")
    with pytest.raises(InvalidArgumentError, match="ignore_index"):
        mg.cross_entropy(x, mg.softmax(x, dim=1), ignore_index=0)
    with pytest.raises(IndexOutOfRangeError):
        mg.nll_loss(x, mg.tensor([0, 1, 9]))
    with pytest.raises(DTypeError):
        mg.nll_loss(mg.tensor([[1, 2]]), mg.tensor([0]))
    with pytest.raises(ShapeError):
        mg.cross_entropy(mg.tensor(1.0), mg.tensor(0))


# ------------------------------------------------------------------ KL, Gaussian NLL, cosine, VAE KL
@given(small_shapes, st.sampled_from(["mean", "sum", "none", "batchmean"]), st.booleans())
def test_kl_div_gradcheck(shape, red, log_target):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    t = rng.standard_normal(shape) if log_target else rng.uniform(0.1, 1, shape)
    assert gradcheck(lambda a, b: mg.kl_div(a, b, reduction=red, log_target=log_target), (T(x), T(t)))


@requires_torch
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@given(small_shapes, st.sampled_from(["mean", "sum", "none", "batchmean"]), st.booleans())
def test_kl_div_matches_torch(shape, red, log_target):
    import torch.nn.functional as tF

    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    t = rng.standard_normal(shape) if log_target else rng.uniform(0.1, 1, shape)
    compare_with_torch(mg.kl_div, tF.kl_div, (x, t), (1, 1), reduction=red, log_target=log_target)


def test_kl_div_hand_computed_and_zero_target():
    # p = [1/2, 1/2], q = [1/4, 3/4]: KL = 1/2 log 2 + 1/2 log(2/3)
    loss = mg.kl_div(T(np.log([0.25, 0.75])), T([0.5, 0.5]), reduction="sum")
    assert loss.item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    # p = 0 contributes 0 (not NaN)
    assert mg.kl_div(T([-1.0, -2.0]), T([0.0, 1.0]), reduction="sum").item() == pytest.approx(2.0)


@given(st.sampled_from(["same", "last1", "nolast"]), st.booleans(), REDUCTIONS)
def test_gaussian_nll_gradcheck(var_kind, full, red):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    var = rng.uniform(0.2, 2, {"same": (2, 3), "last1": (2, 1), "nolast": (2,)}[var_kind])
    assert gradcheck(lambda a, b, v: mg.gaussian_nll_loss(a, b, v, full=full, reduction=red), (T(x), T(y), T(var)))


@requires_torch
def test_gaussian_nll_matches_torch():
    import torch.nn.functional as tF

    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    for var in (rng.uniform(0.2, 2, (3, 2)), rng.uniform(0.2, 2, (3,)), np.array([[1e-8], [1.0], [0.0]])):
        for full in (False, True):
            compare_with_torch(lambda a, b, v: mg.gaussian_nll_loss(a, b, v, full=full),
                               lambda a, b, v: tF.gaussian_nll_loss(a, b, v, full=full), (x, y, var), (1, 1, 1),
                               rtol=1e-9, atol=1e-6)
    # hand: var 1, d = 1 -> 0.5 * (0 + 1)
    assert mg.gaussian_nll_loss(T([1.0]), T([0.0]), T([1.0])).item() == pytest.approx(0.5)
    with pytest.raises(ShapeError, match="var"):
        mg.gaussian_nll_loss(T(x), T(y), T(np.ones((2, 2))))
    with pytest.raises(InvalidArgumentError, match="negative"):
        mg.gaussian_nll_loss(T(x), T(y), T(-np.ones((3, 2))))


@given(small_shapes, st.data())
def test_cosine_similarity_gradcheck(shape, data):
    x = data.draw(arrays(shape, elements=floats(0.3, 2)))
    y = data.draw(arrays(shape, elements=floats(-2, -0.3)))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    assert gradcheck(lambda a, b: mg.cosine_similarity(a, b, dim=dim), (T(x), T(y)))


@requires_torch
def test_cosine_similarity_matches_torch():
    import torch.nn.functional as tF

    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    compare_with_torch(mg.cosine_similarity, tF.cosine_similarity, (x, y), (1, 1))
    compare_with_torch(mg.cosine_similarity, tF.cosine_similarity, (x, y[:1]), (1, 1), dim=-1)
    compare_with_torch(mg.cosine_similarity, tF.cosine_similarity, (x * 1e-9, y), (1, 1), dim=0, rtol=1e-7)
    assert mg.cosine_similarity(T([1.0, 0.0]), T([1.0, 1.0]), dim=0).item() == pytest.approx(1 / math.sqrt(2))


def test_gaussian_kl_closed_form():
    # mu = 1, logvar = 0 -> 0.5;   mu = 0, logvar = log 2 -> -0.5 (1 + log 2 - 2) = 0.5 (1 - log 2)
    mu, lv = T([1.0, 0.0]), T([0.0, math.log(2)])
    loss = mg.gaussian_kl(mu, lv)
    assert loss.item() == pytest.approx(0.5 + 0.5 * (1 - math.log(2)))
    loss.backward()
    np.testing.assert_allclose(mu.grad.numpy(), [1.0, 0.0])              # d/dmu = mu
    np.testing.assert_allclose(lv.grad.numpy(), [0.0, 0.5])              # d/dlogvar = (exp(logvar) - 1) / 2
    # it is KL(N(mu, sigma^2) || N(0, 1)) = log(1/sigma) + (sigma^2 + mu^2) / 2 - 1/2, by numeric integration
    m, s = 0.7, 1.3
    z = np.linspace(-12, 12, 200001)
    q = np.exp(-(z - m) ** 2 / (2 * s * s)) / (s * math.sqrt(2 * math.pi))
    kl = np.trapezoid(q * (np.log(q) - (-z * z / 2 - 0.5 * math.log(2 * math.pi))), z)
    assert mg.gaussian_kl(T([m]), T([2 * math.log(s)])).item() == pytest.approx(kl, rel=1e-6)
    assert mg.gaussian_kl(T(np.zeros((4, 3))), T(np.ones((4, 3))), reduction="batchmean").item() == \
        pytest.approx(3 * 0.5 * (math.e - 2))
    assert mg.gaussian_kl(mu, lv, reduction="none").shape == (2,)
    rng = np.random.default_rng(6)
    assert gradcheck(lambda m, v: mg.gaussian_kl(m, v, reduction="mean"),
                     (T(rng.standard_normal((2, 3))), T(rng.standard_normal((2, 3)))))
    with pytest.raises(ShapeError):
        mg.gaussian_kl(T(np.zeros(3)), T(np.zeros(2)))


# ------------------------------------------------------------------ reads: no silent wrong gradient
LOSSES_EDIT = {
    "mse": lambda x, y: mg.mse_loss(x, y), "l1": lambda x, y: mg.l1_loss(x, y),
    "smooth_l1": lambda x, y: mg.smooth_l1_loss(x, y), "huber": lambda x, y: mg.huber_loss(x, y),
    "bce": lambda x, y: mg.binary_cross_entropy(mg.sigmoid(x), mg.sigmoid(y)),
    "bce_logits": lambda x, y: mg.binary_cross_entropy_with_logits(x, mg.sigmoid(y)),
    "cross_entropy_prob": lambda x, y: mg.cross_entropy(x, mg.softmax(y, 1)),
    "kl_div": lambda x, y: mg.kl_div(mg.log_softmax(x, 1), mg.softmax(y, 1), reduction="batchmean"),
    "gaussian_nll": lambda x, y: mg.gaussian_nll_loss(x, y, mg.exp(y)),
    "cosine": lambda x, y: mg.cosine_similarity(x, y).sum(),
}


@pytest.mark.parametrize("name", list(LOSSES_EDIT) + ["cross_entropy"])
@pytest.mark.parametrize("edit", [0, 1])
def test_editing_an_input_after_the_forward_never_gives_a_wrong_gradient(name, edit):
    """Editing input or target in place after the forward raises InplaceError or leaves the gradients as
    without the edit (the fused CrossEntropy/BCE Functions save only what their gradients read)."""
    from minigen.errors import InplaceError

    if name == "cross_entropy":
        fn = lambda x, y: mg.cross_entropy(x, mg.tensor([0, 3, 1]), weight=y.mean(0).detach().abs() + 0.1)  # noqa
    else:
        fn = LOSSES_EDIT[name]
    leaves = [mg.tensor(np.linspace(-1.3, 2.1, 12).reshape(3, 4), requires_grad=True),
              mg.tensor(np.linspace(0.9, -0.4, 12).reshape(3, 4), requires_grad=True)]
    want = mg.grad(fn(*[t * 1.0 for t in leaves]), leaves, allow_unused=True)
    xs = [t * 1.0 for t in leaves]
    out = fn(*xs)
    xs[edit].mul_(-2.0)
    try:
        got = mg.grad(out, leaves, allow_unused=True)
    except InplaceError:
        return
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(g.array, w.array, rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", ["bce", "bce_logits", "bce_logits_pos_weight"])
@pytest.mark.parametrize("needs", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("edit", [0, 1])
def test_binary_losses_save_only_what_their_gradients_read(name, needs, edit):
    """The fused BCE Functions' direct arguments edited in place after the forward: InplaceError, or the
    gradients of the arguments that need them are unchanged."""
    from minigen.errors import InplaceError

    vals = [np.linspace(0.1, 0.9, 6).reshape(2, 3), np.linspace(0.8, 0.2, 6).reshape(2, 3)]
    pw = mg.tensor([1.5, 0.5, 2.0])
    fn = {"bce": lambda x, y: mg.binary_cross_entropy(x, y),
          "bce_logits": lambda x, y: mg.binary_cross_entropy_with_logits(x, y),
          "bce_logits_pos_weight": lambda x, y: mg.binary_cross_entropy_with_logits(x, y, pos_weight=pw)}[name]
    leaves = [mg.tensor(v, requires_grad=n) for v, n in zip(vals, needs)]
    wrt = [t for t in leaves if t.requires_grad]
    want = mg.grad(fn(*[t * 1.0 for t in leaves]), wrt)
    xs = [t * 1.0 for t in leaves]
    out = fn(*xs)
    xs[edit].mul_(0.5)
    try:
        got = mg.grad(out, wrt)
    except InplaceError:  # always allowed: what must never happen is a silently wrong gradient
        return
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.array, w.array, rtol=1e-14, atol=0)
