"""Pooling and resampling: max/avg pooling (1-d, 2-d; padding, dilation, ceil_mode, count_include_pad,
divisor_override, return_indices), adaptive pooling (non-divisible sizes), interpolate/upsample (nearest,
nearest-exact, linear, bilinear with/without align_corners, area). Hand-computed cases, the tie convention,
gradcheck/gradgradcheck on Hypothesis-drawn inputs, the PyTorch oracle, and input validation."""
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minigen as mg
from minigen.errors import DTypeError, InvalidArgumentError, ShapeError
from minigen.testing import compare_with_torch, gradcheck, gradgradcheck
from minigen.testing.strategies import tensors

from conftest import requires_torch
from test_ops_conv import assert_paths_equal, both_paths  # noqa: E402  (imported here: its @given
# decorators must not run inside a running @given test)


def t64(values, requires_grad=True):
    return mg.tensor(values, dtype=mg.float64, requires_grad=requires_grad)


# ------------------------------------------------------------------ strategies
@st.composite
def pool_cases(draw, nd, dilation=True, max_side=6, max_batch=2):
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) if dilation else 1 for _ in range(nd))
    s = draw(st.none() | st.tuples(*[st.integers(1, 3)] * nd))
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    spatial = tuple(draw(st.integers(lo := max(1, dd * (kk - 1) + 1 - 2 * pp), max(lo, max_side)))
                    for kk, dd, pp in zip(k, d, p))
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, 2))) + spatial
    return dict(shape=shape, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=draw(st.booleans()))


@st.composite
def distinct_tensors(draw, shape):
    """Float64 tensor whose values are pairwise >= 0.1 apart (no ties: the argmax is stable under eps)."""
    n = math.prod(shape)
    perm = draw(st.permutations(range(n)))
    arr = ((np.asarray(perm, dtype=np.float64) - n / 2) * 0.1).reshape(shape)
    return mg.tensor(arr, requires_grad=True)


@st.composite
def tied_arrays(draw, shape):
    """Small integers: many ties inside pooling windows."""
    return draw(st.lists(st.integers(-2, 2), min_size=math.prod(shape), max_size=math.prod(shape))
                .map(lambda v: np.asarray(v, dtype=np.float64).reshape(shape)))


def _max_fn(nd, c, return_indices=False):
    f = mg.max_pool1d if nd == 1 else mg.max_pool2d
    return lambda x: f(x, c["kernel_size"], c["stride"], c["padding"], c["dilation"], c["ceil_mode"], return_indices)


def _avg_fn(nd, c, include_pad=True, divisor=None):
    if nd == 1:
        return lambda x: mg.avg_pool1d(x, c["kernel_size"], c["stride"], c["padding"], c["ceil_mode"], include_pad)
    return lambda x: mg.avg_pool2d(x, c["kernel_size"], c["stride"], c["padding"], c["ceil_mode"], include_pad,
                                   divisor)


@st.composite
def interp_cases(draw, nd):
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "area", "linear" if nd == 1 else "bilinear"]))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + tuple(draw(st.integers(1, 5)) for _ in range(nd))
    align = draw(st.sampled_from([None, False, True])) if mode in ("linear", "bilinear") else None
    if draw(st.booleans()):
        kw = dict(size=tuple(draw(st.integers(1, 8)) for _ in range(nd)))
    else:
        sf = draw(st.sampled_from([0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 1 / 3]))
        assume(all(math.floor(n * sf) >= 1 for n in shape[2:]))
        kw = dict(scale_factor=sf)
    return dict(shape=shape, mode=mode, align_corners=align, kw=kw)


def _interp_fn(c):
    return lambda x: mg.interpolate(x, mode=c["mode"], align_corners=c["align_corners"], **c["kw"])


# ------------------------------------------------------------------ hand-computed cases
def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum():
    x = t64([[[[1.0, 3.0, 3.0],
                [3.0, 0.0, 2.0],
                [1.0, 3.0, 3.0]]]])
    y, idx = mg.max_pool2d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(y.detach().numpy()[0, 0], [[3.0, 3.0], [3.0, 3.0]])
    # first maximum in row-major window order: (0,1), (0,1), (1,0), (2,1)
    np.testing.assert_array_equal(idx.numpy()[0, 0], [[1, 1], [3, 7]])
    assert idx.dtype == mg.int64
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[0, 2, 0], [1, 0, 0], [0, 1, 0]])


def test_max_pool2d_padding_and_ceil_mode_by_hand():
    x = t64(np.arange(9.0).reshape(1, 1, 3, 3))
    y = mg.max_pool2d(x, 2, 2, ceil_mode=True)           # windows rows {0,1},{2} x cols {0,1},{2}
    np.testing.assert_array_equal(y.detach().numpy()[0, 0], [[4.0, 5.0], [7.0, 8.0]])
    assert mg.max_pool2d(x, 2, 2).shape == (1, 1, 1, 1)  # floor mode drops the partial window
    yp, ip = mg.max_pool2d(x, 3, 2, padding=1, return_indices=True)  # -inf padding never wins
    np.testing.assert_array_equal(yp.detach().numpy()[0, 0], [[4.0, 5.0], [7.0, 8.0]])
    np.testing.assert_array_equal(ip.numpy()[0, 0], [[4, 5], [7, 8]])
    y1 = mg.max_pool1d(t64([[[5.0, 1.0, 2.0, 7.0, 0.0]]]), 2, dilation=2)  # pairs (0, 2), (2, 4)
    np.testing.assert_array_equal(y1.detach().numpy(), [[[5.0, 2.0]]])


def test_max_pool_window_entirely_on_padding():
    # kernel 2, dilation 2, padding 1 on a length-1 signal: the only window reads positions -1 and 1
    x = t64([[[3.0]]])
    y, idx = mg.max_pool1d(x, 2, padding=1, dilation=2, return_indices=True)
    assert y.detach().numpy().tolist() == [[[-np.inf]]] and idx.numpy().tolist() == [[[-1]]]
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[0.0]]])


def test_avg_pool2d_divisors_by_hand():
    x = t64([[[[1.0, 2.0], [3.0, 4.0]]]])
    inc = mg.avg_pool2d(x, 2, stride=1, padding=1)                         # every window counts 4
    np.testing.assert_allclose(inc.detach().numpy()[0, 0], [[0.25, 0.75, 0.5], [1.0, 2.5, 1.5], [0.75, 1.75, 1.0]])
    exc = mg.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False)  # only real elements count
    np.testing.assert_allclose(exc.detach().numpy()[0, 0], [[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]])
    ovr = mg.avg_pool2d(x, 2, stride=1, padding=1, divisor_override=1)      # plain window sums
    np.testing.assert_allclose(ovr.detach().numpy()[0, 0], [[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]])
    exc.sum().backward()
    # each element gets 1/count of every window it is in: corner windows (1), edge windows (1/2), centre (1/4)
    np.testing.assert_allclose(x.grad.numpy()[0, 0], np.full((2, 2), 1 + 0.5 + 0.5 + 0.25))
    # ceil mode: the partial last window counts only the elements inside the input (+ padding)
    y = mg.avg_pool1d(t64([[[1.0, 2.0, 3.0]]], requires_grad=False), 2, ceil_mode=True)
    np.testing.assert_allclose(y.numpy(), [[[1.5, 3.0]]])


def test_adaptive_avg_pool_non_divisible_by_hand():
    x = t64([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    y = mg.adaptive_avg_pool1d(x, 3)                    # windows [0,2), [1,4), [3,5) overlap
    np.testing.assert_allclose(y.detach().numpy(), [[[1.5, 3.0, 4.5]]])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[[1 / 2, 1 / 2 + 1 / 3, 1 / 3, 1 / 3 + 1 / 2, 1 / 2]]])
    x2 = t64(np.arange(6.0).reshape(1, 1, 2, 3), requires_grad=False)
    np.testing.assert_allclose(mg.adaptive_avg_pool2d(x2, (1, None)).numpy(), [[[[1.5, 2.5, 3.5]]]])
    ym, im = mg.adaptive_max_pool2d(x2, (1, 2), return_indices=True)   # columns [0,2), [1,3)
    np.testing.assert_array_equal(ym.numpy(), [[[[4.0, 5.0]]]])
    np.testing.assert_array_equal(im.numpy(), [[[[4, 5]]]])


def test_interpolate_by_hand():
    x = t64([[[1.0, 2.0]]])
    np.testing.assert_allclose(mg.interpolate(x, scale_factor=2).detach().numpy(), [[[1, 1, 2, 2]]])
    np.testing.assert_allclose(mg.interpolate(x, size=3, mode="linear", align_corners=True).detach().numpy(),
                               [[[1.0, 1.5, 2.0]]])
    # half-pixel centres: src = (i + 0.5)/2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the edge)
    y = mg.interpolate(x, size=4, mode="linear", align_corners=False)
    np.testing.assert_allclose(y.detach().numpy(), [[[1.0, 1.25, 1.75, 2.0]]])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[[1 + 0.75 + 0.25, 0.25 + 0.75 + 1]]])
    x2 = t64([[[[1.0, 2.0], [3.0, 4.0]]]], requires_grad=False)
    yb = mg.interpolate(x2, size=(3, 3), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(yb.numpy()[0, 0], [[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]])
    np.testing.assert_allclose(mg.upsample_bilinear(x2, size=3).numpy(), yb.numpy())
    np.testing.assert_allclose(mg.upsample(x2, scale_factor=2).numpy()[0, 0],
                               np.kron([[1.0, 2.0], [3.0, 4.0]], np.ones((2, 2))))
    np.testing.assert_allclose(mg.upsample_nearest(x2, size=(1, 4)).numpy()[0, 0], [[1.0, 1.0, 2.0, 2.0]])
    np.testing.assert_allclose(mg.interpolate(x2, size=1, mode="area").numpy(), [[[[2.5]]]])


def test_unbatched_pooling_and_dtype():
    x = mg.randn(3, 6, 6)                       # (C, H, W)
    y = mg.max_pool2d(x, 2)
    assert y.shape == (3, 3, 3) and y.dtype == mg.float32
    np.testing.assert_array_equal(y.numpy(), mg.max_pool2d(x.reshape(1, 3, 6, 6), 2).numpy()[0])
    assert mg.avg_pool1d(mg.randn(2, 7), 3).shape == (2, 2)
    assert mg.adaptive_avg_pool2d(x, 4).dtype == mg.float32
    assert mg.interpolate(mg.randn(1, 2, 3, 3), scale_factor=2, mode="bilinear").dtype == mg.float32


def test_empty_batch():
    x = mg.randn(0, 2, 5, 5, requires_grad=True)
    for f, shape in ((lambda t: mg.max_pool2d(t, 2), (0, 2, 2, 2)), (lambda t: mg.avg_pool2d(t, 2), (0, 2, 2, 2)),
                     (lambda t: mg.adaptive_max_pool2d(t, 3), (0, 2, 3, 3)),
                     (lambda t: mg.interpolate(t, scale_factor=2), (0, 2, 10, 10))):
        y = f(x)
        assert y.shape == shape
        y.sum().backward()
        assert x.grad.shape == (0, 2, 5, 5)


# ------------------------------------------------------------------ gradcheck / gradgradcheck
@given(st.data())
def test_max_pool_gradcheck(data):
    nd = data.draw(st.sampled_from([1, 2]))
    c = data.draw(pool_cases(nd))
    x = data.draw(distinct_tensors(c["shape"]))
    f = _max_fn(nd, c)
    assume(np.isfinite(f(x).detach().numpy()).all())  # a window made only of -inf padding has no gradient
    assert gradcheck(f, (x,))


@given(st.data())
def test_avg_pool_gradcheck(data):
    nd = data.draw(st.sampled_from([1, 2]))
    c = data.draw(pool_cases(nd, dilation=False))
    x = data.draw(tensors(shape=c["shape"]))
    include_pad = data.draw(st.booleans())
    divisor = data.draw(st.none() | st.integers(1, 5)) if nd == 2 else None
    assert gradcheck(_avg_fn(nd, c, include_pad, divisor), (x,))


@given(st.data())
def test_adaptive_pool_gradcheck(data):
    nd = data.draw(st.sampled_from([1, 2]))
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))) + \
        tuple(data.draw(st.integers(1, 6)) for _ in range(nd))
    out = tuple(data.draw(st.integers(1, 5)) for _ in range(nd))
    avg = mg.adaptive_avg_pool1d if nd == 1 else mg.adaptive_avg_pool2d
    mx = mg.adaptive_max_pool1d if nd == 1 else mg.adaptive_max_pool2d
    assert gradcheck(lambda x: avg(x, out), (data.draw(tensors(shape=shape)),))
    assert gradcheck(lambda x: mx(x, out), (data.draw(distinct_tensors(shape)),))


@given(st.data())
def test_interpolate_gradcheck(data):
    nd = data.draw(st.sampled_from([1, 2]))
    c = data.draw(interp_cases(nd))
    x = data.draw(tensors(shape=c["shape"]))
    assert gradcheck(_interp_fn(c), (x,))


@given(st.data())
def test_avg_pool2d_gradgradcheck(data):
    c = data.draw(pool_cases(2, dilation=False, max_side=4, max_batch=1))
    x = data.draw(tensors(shape=c["shape"]))
    assert gradgradcheck(_avg_fn(2, c, data.draw(st.booleans())), (x,))


@given(st.data())
def test_max_pool2d_gradgradcheck(data):
    c = data.draw(pool_cases(2, max_side=4, max_batch=1))
    x = data.draw(distinct_tensors(c["shape"]))
    f = _max_fn(2, c)
    assume(np.isfinite(f(x).detach().numpy()).all())
    assert gradgradcheck(f, (x,))


@given(st.data())
def test_interpolate_bilinear_gradgradcheck(data):
    shape = (1, data.draw(st.integers(1, 2)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    size = (data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    align = data.draw(st.booleans())
    x = data.draw(tensors(shape=shape))
    assert gradgradcheck(lambda x: mg.interpolate(x, size=size, mode="bilinear", align_corners=align), (x,))


def test_nearest_and_adaptive_gradgradcheck_fixed_cases():
    rng = np.random.default_rng(0)
    x = t64(rng.standard_normal((1, 2, 3, 4)))
    assert gradgradcheck(lambda x: mg.interpolate(x, size=(5, 3)), (x,))
    assert gradgradcheck(lambda x: mg.adaptive_avg_pool2d(x, (2, 3)), (x,))


# ------------------------------------------------------------------ kernels == reference, fast_backward == backward
@pytest.mark.parametrize("kind", ["max", "avg"])
@given(st.data())
def test_pool_kernels_equal_reference_on_both_backward_paths(kind, data):
    """The gradient by a first-order backward (fast_backward where an op has one) and by create_graph=True
    (the backward formulas), with the kernels forced and on the reference: all four agree."""
    from minigen.kernels import dispatch

    nd = data.draw(st.sampled_from([1, 2]))
    c = data.draw(pool_cases(nd, dilation=(kind == "max")))
    x = data.draw(distinct_tensors(c["shape"]))
    f = _max_fn(nd, c) if kind == "max" else _avg_fn(nd, c, data.draw(st.booleans()))
    assume(np.isfinite(f(x).detach().numpy()).all())
    # avg pooling's box filter is a conv: with the kernels forced, the direct conv kernels run
    kernel = "max_pool2d_backward" if kind == "max" else ("conv2d_backward", "conv2d_backward_direct")
    assert_paths_equal(f, [x], "kernels", kernel)
    assert_paths_equal(f, [x], "reference", kernel)
    with dispatch.use_kernels():
        fast_k = both_paths(f, [x])[0]
    with dispatch.use_reference():
        fast_r = both_paths(f, [x])[0]
    np.testing.assert_allclose(fast_k[0], fast_r[0], rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ PyTorch oracle
def _torch_compare(mg_fn, torch_fn, x, seed=0, atol=1e-10):
    """Same array into both libraries: outputs ((values, indices) included) and the VJP agree."""
    compare_with_torch(mg_fn, torch_fn, [mg.tensor(x, requires_grad=True)], rtol=1e-6, atol=atol, seed=seed)


@requires_torch
@given(st.data())
def test_max_pool_matches_torch_with_ties(data):
    import torch.nn.functional as F

    nd = data.draw(st.sampled_from([1, 2]))
    c = data.draw(pool_cases(nd, max_side=9, max_batch=3))
    x = data.draw(tied_arrays(c["shape"]))
    tf = F.max_pool1d if nd == 1 else F.max_pool2d
    # a dilated window can fall entirely on padding: its value is -inf and torch's index for it points outside
    # the input (its backward would write out of bounds), so such geometries are left out of the comparison
    assume(np.isfinite(_max_fn(nd, c)(mg.tensor(x)).numpy()).all())
    _torch_compare(_max_fn(nd, c, True),
                   lambda t: tf(t, c["kernel_size"], c["stride"], c["padding"], c["dilation"], c["ceil_mode"], True), x)


@requires_torch
@given(st.data())
def test_avg_pool_matches_torch(data):
    import torch.nn.functional as F

    nd = data.draw(st.sampled_from([1, 2]))
    c = data.draw(pool_cases(nd, dilation=False, max_side=9, max_batch=3))
    x = np.random.default_rng(data.draw(st.integers(0, 999))).standard_normal(c["shape"])
    inc = data.draw(st.booleans())
    if nd == 1:
        _torch_compare(_avg_fn(1, c, inc),
                       lambda t: F.avg_pool1d(t, c["kernel_size"], c["stride"], c["padding"], c["ceil_mode"], inc), x)
    else:
        div = data.draw(st.none() | st.integers(1, 5))
        _torch_compare(_avg_fn(2, c, inc, div),
                       lambda t: F.avg_pool2d(t, c["kernel_size"], c["stride"], c["padding"], c["ceil_mode"], inc,
                                              div), x)


@requires_torch
@given(st.data())
def test_adaptive_pool_matches_torch(data):
    import torch.nn.functional as F

    nd = data.draw(st.sampled_from([1, 2]))
    shape = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))) + \
        tuple(data.draw(st.integers(1, 9)) for _ in range(nd))
    out = tuple(data.draw(st.integers(1, 9)) for _ in range(nd))
    noise = np.random.default_rng(0).standard_normal(shape) * data.draw(st.sampled_from([0, 1]))
    x = data.draw(tied_arrays(shape)) + noise
    if nd == 1:
        _torch_compare(lambda t: mg.adaptive_avg_pool1d(t, out[0]), lambda t: F.adaptive_avg_pool1d(t, out[0]), x)
        _torch_compare(lambda t: mg.adaptive_max_pool1d(t, out[0], True),
                       lambda t: F.adaptive_max_pool1d(t, out[0], True), x)
    else:
        _torch_compare(lambda t: mg.adaptive_avg_pool2d(t, out), lambda t: F.adaptive_avg_pool2d(t, out), x)
        _torch_compare(lambda t: mg.adaptive_max_pool2d(t, out, True), lambda t: F.adaptive_max_pool2d(t, out, True), x)


@requires_torch
@given(st.data())
def test_interpolate_matches_torch(data):
    import torch.nn.functional as F

    nd = data.draw(st.sampled_from([1, 2]))
    c = data.draw(interp_cases(nd))
    x = np.random.default_rng(data.draw(st.integers(0, 999))).standard_normal(c["shape"])
    _torch_compare(_interp_fn(c), lambda t: F.interpolate(t, mode=c["mode"], align_corners=c["align_corners"],
                                                          **c["kw"]), x)


@requires_torch
@pytest.mark.parametrize("mode,align", [("nearest", None), ("nearest-exact", None), ("bilinear", False),
                                        ("bilinear", True)])
def test_interpolate_float32_matches_torch(mode, align):
    import torch.nn.functional as F

    x = np.random.default_rng(1).standard_normal((2, 3, 7, 5)).astype(np.float32)
    for kw in (dict(size=(11, 3)), dict(scale_factor=1.7), dict(scale_factor=(0.6, 2.3))):
        _torch_compare(lambda t: mg.interpolate(t, mode=mode, align_corners=align, **kw),
                       lambda t: F.interpolate(t, mode=mode, align_corners=align, **kw), x, atol=1e-5)


# ------------------------------------------------------------------ errors
def test_pool_errors():
    x = mg.randn(1, 2, 5, 5)
    with pytest.raises(InvalidArgumentError, match=r"padding \(2, 2\) should be at most half"):
        mg.max_pool2d(x, 3, padding=2)
    with pytest.raises(ShapeError, match=r"\(1, 2, 5, 5\) is too small for kernel_size \(6, 6\)"):
        mg.max_pool2d(x, 6)
    with pytest.raises(ShapeError, match=r"4-d input \(N, C, H, W\).*got shape \(5, 5\)"):
        mg.avg_pool2d(mg.randn(5, 5), 2)
    with pytest.raises(DTypeError, match="int64"):
        mg.max_pool2d(mg.ones(1, 1, 4, 4, dtype=mg.int64), 2)
    with pytest.raises(InvalidArgumentError, match="kernel_size must be >= 1"):
        mg.avg_pool1d(mg.randn(1, 1, 4), 0)
    with pytest.raises(InvalidArgumentError, match="divisor_override"):
        mg.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(InvalidArgumentError, match="output_size"):
        mg.adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(InvalidArgumentError, match="output_size"):
        mg.adaptive_max_pool1d(mg.randn(1, 1, 4), (2, 2))


def test_interpolate_errors():
    x = mg.randn(1, 2, 4, 4)
    with pytest.raises(InvalidArgumentError, match="exactly one of size and scale_factor"):
        mg.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(InvalidArgumentError, match="exactly one of size and scale_factor"):
        mg.interpolate(x)
    with pytest.raises(InvalidArgumentError, match="unsupported mode 'cubic'"):
        mg.interpolate(x, size=3, mode="cubic")
    with pytest.raises(InvalidArgumentError, match="align_corners"):
        mg.interpolate(x, size=3, align_corners=True)
    with pytest.raises(ShapeError, match=r"'bilinear' needs a 4-d input, got shape \(1, 2, 4\)"):
        mg.interpolate(mg.randn(1, 2, 4), size=3, mode="bilinear")
    with pytest.raises(ShapeError, match=r"\(4, 4\)"):
        mg.interpolate(mg.randn(4, 4), size=3)
    with pytest.raises(ShapeError, match="empty output"):
        mg.interpolate(x, scale_factor=0.1)
    with pytest.raises(InvalidArgumentError, match="tuple of 2"):
        mg.interpolate(x, size=(1, 2, 3))
