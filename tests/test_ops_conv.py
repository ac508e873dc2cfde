"""conv1d / conv2d / conv_transpose1d / conv_transpose2d: hand-computed cases, gradcheck and gradgradcheck
on Hypothesis-drawn geometries (groups, stride, padding incl. 'same', dilation, output_padding), the
PyTorch oracle for forward, gradients and double backward, fast_backward == backward (kernels forced and
reference mode), and input validation."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigen as mg
from minigen.errors import DTypeError, InvalidArgumentError, ShapeError
from minigen.ops import conv as C
from minigen.testing import compare_with_torch, gradcheck, gradgradcheck
from minigen.testing.strategies import tensors

from conftest import requires_torch


def t64(values, requires_grad=True):
    return mg.tensor(values, dtype=mg.float64, requires_grad=requires_grad)


# ------------------------------------------------------------------ geometry strategies
@st.composite
def conv_cases(draw, nd, max_side=5, max_batch=2, allow_str_padding=True):
    """A valid convolution: dict of shapes and parameters (tuples of length nd)."""
    groups = draw(st.integers(1, 2))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    kind = draw(st.sampled_from(["int", "int", "same", "valid"] if allow_str_padding else ["int"]))
    if kind == "same":
        s, p = (1,) * nd, "same"
        pads = [(dd * (kk - 1) // 2, dd * (kk - 1) - dd * (kk - 1) // 2) for kk, dd in zip(k, d)]
    else:
        s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
        p = tuple(draw(st.integers(0, 2)) for _ in range(nd)) if kind == "int" else "valid"
        pads = [(0, 0)] * nd if kind == "valid" else [(pp, pp) for pp in p]
    # each spatial size at least the dilated kernel minus the padding
    spatial = tuple(draw(st.integers(max(1, dd * (kk - 1) + 1 - a - b), max(max_side, dd * (kk - 1) + 1)))
                    for kk, dd, (a, b) in zip(k, d, pads))
    n = draw(st.integers(1, max_batch))
    return dict(x=(n, cin) + spatial, w=(cout, cin // groups) + k, b=(cout,), stride=s, padding=p, dilation=d,
                groups=groups, bias=draw(st.booleans()))


@st.composite
def conv_transpose_cases(draw, nd, max_side=3, max_batch=2):
    groups = draw(st.integers(1, 2))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    p = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    op = tuple(draw(st.integers(0, max(ss, dd) - 1)) for ss, dd in zip(s, d))
    spatial = tuple(draw(st.integers(1, max_side)) for _ in range(nd))
    out = tuple((i - 1) * ss - 2 * pp + dd * (kk - 1) + o + 1 for i, ss, pp, dd, kk, o in zip(spatial, s, p, d, k, op))
    assume(all(o >= 1 for o in out))
    n = draw(st.integers(1, max_batch))
    return dict(x=(n, cin) + spatial, w=(cin, cout // groups) + k, b=(cout,), stride=s, padding=p,
                output_padding=op, dilation=d, groups=groups, bias=draw(st.booleans()), out=out)


def _draw_tensors(data, case):
    x = data.draw(tensors(shape=case["x"]), label="x")
    w = data.draw(tensors(shape=case["w"]), label="w")
    b = data.draw(tensors(shape=case["b"]), label="b") if case["bias"] else None
    return x, w, b


def _conv_fn(nd, case):
    f = mg.conv1d if nd == 1 else mg.conv2d
    return lambda x, w, b=None: f(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"])


def _convt_fn(nd, case):
    f = mg.conv_transpose1d if nd == 1 else mg.conv_transpose2d
    return lambda x, w, b=None: f(x, w, b, case["stride"], case["padding"], case["output_padding"], case["groups"],
                                  case["dilation"])


# ------------------------------------------------------------------ hand-computed cases
def test_conv2d_hand_computed_forward_and_gradients():
    x = t64([[[[1.0, 2.0, 3.0],
                [4.0, 5.0, 6.0],
                [7.0, 8.0, 9.0]]]])
    w = t64([[[[1.0, 0.0],
                [0.0, -1.0]]]])
    b = t64([0.5])
    y = mg.conv2d(x, w, b)
    # y[i, j] = x[i, j] - x[i+1, j+1] + 0.5 = -4 + 0.5 everywhere
    np.testing.assert_allclose(y.detach().numpy(), [[[[-3.5, -3.5], [-3.5, -3.5]]]])
    y.sum().backward()
    # dx[h, w] = sum of the kernel taps that touch (h, w); dw[a, b] = sum of the window x[a:a+2, b:b+2]
    np.testing.assert_allclose(x.grad.numpy()[0, 0], [[1, 1, 0], [1, 0, -1], [0, -1, -1]])
    np.testing.assert_allclose(w.grad.numpy()[0, 0], [[1 + 2 + 4 + 5, 2 + 3 + 5 + 6], [4 + 5 + 7 + 8, 5 + 6 + 8 + 9]])
    np.testing.assert_allclose(b.grad.numpy(), [4.0])


def test_conv2d_hand_computed_stride_padding_dilation_groups():
    x = t64(np.arange(1.0, 17.0).reshape(1, 1, 4, 4), requires_grad=False)
    w = t64([[[[1.0, 1.0]]]], requires_grad=False)
    # dilation 2 along W, stride 2, padding 1 in W: y[i, j] = x_pad[2i, 2j] + x_pad[2i, 2j + 2]
    y = mg.conv2d(x, w, stride=2, padding=(0, 1), dilation=(1, 2))
    xp = np.pad(np.arange(1.0, 17.0).reshape(4, 4), ((0, 0), (1, 1)))
    np.testing.assert_allclose(y.numpy()[0, 0], [[xp[0, 0] + xp[0, 2], xp[0, 2] + xp[0, 4]],
                                                 [xp[2, 0] + xp[2, 2], xp[2, 2] + xp[2, 4]]])
    # groups=2: each output channel sees only its own input channel
    x2 = t64([[[[1.0, 2.0]], [[10.0, 20.0]]]], requires_grad=False)
    w2 = t64([[[[1.0, 1.0]]], [[[2.0, -1.0]]]], requires_grad=False)
    np.testing.assert_allclose(mg.conv2d(x2, w2, groups=2).numpy().ravel(), [3.0, 0.0])


def test_conv1d_hand_computed_same_padding():
    x = t64([[[1.0, 2.0, 3.0, 4.0]]])
    w = t64([[[1.0, 10.0]]])
    # even kernel with 'same': the extra zero goes at the end, y[i] = x[i] + 10 x[i+1]
    y = mg.conv1d(x, w, padding="same")
    np.testing.assert_allclose(y.detach().numpy(), [[[21.0, 32.0, 43.0, 4.0]]])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[[1.0, 11.0, 11.0, 11.0]]])
    np.testing.assert_allclose(w.grad.numpy(), [[[10.0, 9.0]]])


def test_conv_transpose2d_hand_computed():
    # stride 2 scatters every input pixel as a scaled copy of the 2x2 kernel into its own 2x2 block
    x = t64([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = t64([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = mg.conv_transpose2d(x, w, stride=2)
    expected = np.kron(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(y.detach().numpy()[0, 0], expected)
    # stride 1 overlaps the copies: the full (non-strided) convolution, cropped by padding=1 to the centre
    y1 = mg.conv_transpose2d(x.detach(), w.detach(), padding=1)
    np.testing.assert_allclose(y1.numpy()[0, 0], [[1 * 4 + 2 * 3 + 3 * 2 + 4 * 1]])
    # output_padding adds a zero row/column at the end
    y2 = mg.conv_transpose2d(x.detach(), w.detach(), stride=2, output_padding=1)
    np.testing.assert_allclose(y2.numpy()[0, 0], np.pad(expected, ((0, 1), (0, 1))))
    y.sum().backward()
    # dx[i, j] = sum of the kernel, dw[a, b] = sum of x
    np.testing.assert_allclose(x.grad.numpy(), np.full((1, 1, 2, 2), 10.0))
    np.testing.assert_allclose(w.grad.numpy(), np.full((1, 1, 2, 2), 10.0))


def test_conv_transpose_is_the_input_gradient_of_conv():
    rng = np.random.default_rng(3)
    x = t64(rng.standard_normal((2, 4, 7, 6)))
    w = t64(rng.standard_normal((6, 2, 3, 2)), requires_grad=False)
    y = mg.conv2d(x, w, stride=(2, 3), padding=(1, 0), dilation=(1, 2), groups=2)
    g = rng.standard_normal(y.shape)
    (gx,) = mg.grad(y, x, grad_outputs=mg.tensor(g))
    # output_padding picks the input size 7 x 6 among those that conv maps to y's size
    op = (7 + 2 - 1 * 2 - 1) % 2, (6 - 2 * 1 - 1) % 3
    ct = mg.conv_transpose2d(mg.tensor(g), w, stride=(2, 3), padding=(1, 0), output_padding=op, groups=2,
                             dilation=(1, 2))
    np.testing.assert_allclose(ct.numpy(), gx.numpy(), rtol=1e-12, atol=1e-12)


def test_unbatched_inputs_match_batched():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 4))
    w = rng.standard_normal((2, 3, 2, 2))
    y = mg.conv2d(mg.tensor(x), mg.tensor(w), padding=1)
    yb = mg.conv2d(mg.tensor(x[None]), mg.tensor(w), padding=1)
    assert y.shape == (2, 6, 5)
    np.testing.assert_array_equal(y.numpy(), yb.numpy()[0])
    wt = rng.standard_normal((3, 2, 3))
    y1 = mg.conv_transpose1d(mg.tensor(x[:, 0]), mg.tensor(wt), stride=2)
    assert y1.shape == (2, 9)
    np.testing.assert_array_equal(y1.numpy(), mg.conv_transpose1d(mg.tensor(x[None, :, 0]), mg.tensor(wt),
                                                                  stride=2).numpy()[0])


def test_float32_stays_float32():
    x = mg.randn(1, 2, 5, 5)
    w = mg.randn(3, 2, 3, 3, requires_grad=True)
    y = mg.conv2d(x, w, mg.zeros(3), padding="same")
    assert y.dtype == mg.float32 and y.shape == (1, 3, 5, 5)
    y.sum().backward()
    assert w.grad.dtype == mg.float32
    yt = mg.conv_transpose2d(y.detach(), mg.randn(3, 2, 4, 4), stride=2, padding=1)
    assert yt.dtype == mg.float32 and yt.shape == (1, 2, 10, 10)


def test_empty_batch():
    x, w = mg.randn(0, 2, 5, 5, requires_grad=True), mg.randn(3, 2, 3, 3, requires_grad=True)
    y = mg.conv2d(x, w, padding=1)
    assert y.shape == (0, 3, 5, 5)
    y.sum().backward()
    assert x.grad.shape == (0, 2, 5, 5)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((3, 2, 3, 3)))
    assert mg.conv_transpose2d(x, mg.randn(2, 3, 3, 3), stride=2).shape == (0, 3, 11, 11)


# ------------------------------------------------------------------ gradcheck / gradgradcheck
@given(st.data())
def test_conv2d_gradcheck(data):
    case = data.draw(conv_cases(2))
    x, w, b = _draw_tensors(data, case)
    assert gradcheck(_conv_fn(2, case), (x, w, b))


@given(st.data())
def test_conv1d_gradcheck(data):
    case = data.draw(conv_cases(1, max_side=7))
    x, w, b = _draw_tensors(data, case)
    assert gradcheck(_conv_fn(1, case), (x, w, b))


@given(st.data())
def test_conv_transpose2d_gradcheck(data):
    case = data.draw(conv_transpose_cases(2))
    x, w, b = _draw_tensors(data, case)
    y = _convt_fn(2, case)(x, w, b)
    assert y.shape[2:] == case["out"]
    assert gradcheck(_convt_fn(2, case), (x, w, b))


@given(st.data())
def test_conv_transpose1d_gradcheck(data):
    case = data.draw(conv_transpose_cases(1, max_side=4))
    x, w, b = _draw_tensors(data, case)
    assert gradcheck(_convt_fn(1, case), (x, w, b))


@given(st.data())
def test_conv2d_gradgradcheck(data):
    case = data.draw(conv_cases(2, max_side=4, max_batch=1))
    x, w, b = _draw_tensors(data, case)
    assert gradgradcheck(_conv_fn(2, case), (x, w, b))


@given(st.data())
def test_conv_transpose2d_gradgradcheck(data):
    case = data.draw(conv_transpose_cases(2, max_side=2, max_batch=1))
    x, w, b = _draw_tensors(data, case)
    assert gradgradcheck(_convt_fn(2, case), (x, w, b))


def test_conv1d_gradgradcheck_fixed_case():
    rng = np.random.default_rng(1)
    x, w = t64(rng.standard_normal((2, 2, 6))), t64(rng.standard_normal((2, 1, 3)))
    assert gradgradcheck(lambda x, w: mg.conv1d(x, w, stride=2, padding=1, dilation=2, groups=2), (x, w))


# ------------------------------------------------------------------ PyTorch oracle
def _torch_compare(mg_fn, torch_fn, arrays, rng, atol=1e-10):
    """Same arrays into both libraries (every array requires grad): forward and VJP agree."""
    ms = [None if a is None else mg.tensor(a, requires_grad=True) for a in arrays]
    compare_with_torch(mg_fn, torch_fn, ms, rtol=1e-6, atol=atol, seed=int(rng.integers(2 ** 31)))


def _arrays(case, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    arrs = [rng.standard_normal(case["x"]), rng.standard_normal(case["w"]),
            rng.standard_normal(case["b"]) if case["bias"] else None]
    return [None if a is None else a.astype(dtype) for a in arrs], rng


@requires_torch
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@given(conv_cases(2, max_side=9, max_batch=3), st.integers(0, 2 ** 16))
def test_conv2d_matches_torch(case, seed):
    import torch.nn.functional as F

    arrs, rng = _arrays(case, seed)
    _torch_compare(_conv_fn(2, case),
                   lambda x, w, b: F.conv2d(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"]),
                   arrs, rng)


@requires_torch
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@given(conv_cases(1, max_side=12, max_batch=3), st.integers(0, 2 ** 16))
def test_conv1d_matches_torch(case, seed):
    import torch.nn.functional as F

    arrs, rng = _arrays(case, seed)
    _torch_compare(_conv_fn(1, case),
                   lambda x, w, b: F.conv1d(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"]),
                   arrs, rng)


@requires_torch
@given(conv_transpose_cases(2, max_side=6, max_batch=3), st.integers(0, 2 ** 16))
def test_conv_transpose2d_matches_torch(case, seed):
    import torch.nn.functional as F

    arrs, rng = _arrays(case, seed)
    _torch_compare(_convt_fn(2, case),
                   lambda x, w, b: F.conv_transpose2d(x, w, b, case["stride"], case["padding"], case["output_padding"],
                                                      case["groups"], case["dilation"]), arrs, rng)


@requires_torch
@given(conv_transpose_cases(1, max_side=8, max_batch=3), st.integers(0, 2 ** 16))
def test_conv_transpose1d_matches_torch(case, seed):
    import torch.nn.functional as F

    arrs, rng = _arrays(case, seed)
    _torch_compare(_convt_fn(1, case),
                   lambda x, w, b: F.conv_transpose1d(x, w, b, case["stride"], case["padding"], case["output_padding"],
                                                      case["groups"], case["dilation"]), arrs, rng)


@requires_torch
def test_float32_matches_torch():
    import torch.nn.functional as F

    case = dict(x=(2, 4, 9, 8), w=(6, 2, 3, 3), b=(6,), bias=True, stride=(2, 1), padding=(1, 2), dilation=(1, 2),
                groups=2)
    arrs, rng = _arrays(case, 5, np.float32)
    _torch_compare(_conv_fn(2, case), lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 2), (1, 2), 2), arrs, rng,
                   atol=1e-4)


@requires_torch
def test_gradient_penalty_double_backward_matches_torch():
    """WGAN-GP: d/dθ of ||d D(x)/dx||² through conv, conv_transpose and a conv1d critic."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(7)
    xa = rng.standard_normal((3, 2, 6, 6))
    w1a, w2a, w3a = (rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((4, 2, 2, 2)),
                     rng.standard_normal((1, 6, 2)))

    def critic(lib, F_, x, w1, w2, w3):
        h = F_.conv2d(x, w1, stride=2, padding=1)                             # (3, 4, 3, 3)
        h = F_.conv_transpose2d(h * h, w2, stride=2, output_padding=1)        # (3, 2, 7, 7)
        h = F_.conv1d(lib.reshape(h[:, :, :6, :6], (3, 6, 12)) * h[:, 0, :1, :1], w3, stride=3)
        return (h * h).sum()

    outs = []
    for lib, F_ in ((torch, F), (mg, mg)):
        T = lambda a: lib.tensor(a, requires_grad=True)  # noqa: E731
        x, w1, w2, w3 = T(xa), T(w1a), T(w2a), T(w3a)
        d = critic(lib, F_, x, w1, w2, w3)
        (gx,) = (torch.autograd.grad if lib is torch else mg.grad)(d, x, create_graph=True)
        penalty = ((gx * gx).sum() - 1.0) ** 2
        penalty.backward()
        outs.append([t.grad.detach().numpy() if lib is torch else t.grad.numpy() for t in (x, w1, w2, w3)])
    for a, b in zip(*outs):
        np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-8)


# ------------------------------------------------------------------ fast_backward == backward
def both_paths(fn, inputs, seed=0):
    """(fast, formula): the gradients of sum(v * fn(*inputs)) w.r.t. ``inputs`` by a first-order backward (the
    engine runs each op's ``fast_backward``) and with ``create_graph=True`` (each op's ``backward`` formula)."""
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    rng = np.random.default_rng(seed)
    vs = [mg.tensor(rng.standard_normal(tuple(o.shape)).astype(o.dtype)) for o in outs]
    fast = mg.grad(outs, inputs, grad_outputs=vs, retain_graph=True)
    formula = mg.grad(outs, inputs, grad_outputs=vs, create_graph=True)
    return [g.numpy() for g in fast], [g.detach().numpy() for g in formula]


def kernel_modes():
    """The two kernel modes every fast_backward test runs under: kernels forced wherever they apply, and the
    reference everywhere (fast_backward then declines and the formula runs on both paths)."""
    from minigen.kernels import dispatch

    return [("kernels", dispatch.use_kernels), ("reference", dispatch.use_reference),
            ("auto", lambda: dispatch.set_mode("auto"))]


def assert_paths_equal(fn, inputs, mode, kernel=None, seed=0, rtol=1e-10, atol=1e-12):
    """fast_backward path == backward formula under ``mode``; in kernel mode (with Numba) ``kernel`` ran."""
    from minigen.kernels import dispatch

    ctx = dict(kernel_modes())[mode]
    with ctx():
        dispatch.reset_stats()
        fast, formula = both_paths(fn, inputs, seed)
        ran = dispatch.stats()
    if kernel is not None:
        kernels = (kernel,) if isinstance(kernel, str) else kernel
        if mode in ("kernels", "auto") and dispatch.available():
            assert any(ran.get(k, 0) > 0 for k in kernels), (kernel, ran)
        if mode == "reference":
            assert ran == {}
    for a, b in zip(fast, formula):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# forced kernels: the direct kernels (they apply to every shape); auto: the measured rule picks direct or im2col
FAST = {"conv2d": {"kernels": "conv2d_backward_direct", "auto": ("conv2d_backward_direct", "conv2d_backward"),
                   "reference": None},
        "conv_transpose2d": {"kernels": "conv_transpose2d_backward_direct",
                             "auto": ("conv_transpose2d_backward_direct", "conv_transpose2d_backward"),
                             "reference": None}}


@pytest.mark.parametrize("mode", ["kernels", "auto", "reference"])
@given(conv_cases(2, allow_str_padding=False), st.integers(0, 2 ** 16))
def test_conv2d_fast_backward_equals_formula(mode, case, seed):
    arrs, _ = _arrays(case, seed)
    x, w = t64(arrs[0]), t64(arrs[1])
    fn = lambda x, w: mg.conv2d(x, w, None, case["stride"], case["padding"], case["dilation"],  # noqa: E731
                                case["groups"])
    assert_paths_equal(fn, [x, w], mode, FAST["conv2d"][mode] or "conv2d_backward", seed)


@pytest.mark.parametrize("mode", ["kernels", "auto", "reference"])
@given(conv_transpose_cases(2), st.integers(0, 2 ** 16))
def test_conv_transpose2d_fast_backward_equals_formula(mode, case, seed):
    arrs, _ = _arrays(case, seed)
    x, w = t64(arrs[0]), t64(arrs[1])
    fn = lambda x, w: mg.conv_transpose2d(x, w, None, case["stride"], case["padding"],  # noqa: E731
                                          case["output_padding"], case["groups"], case["dilation"])
    assert_paths_equal(fn, [x, w], mode, FAST["conv_transpose2d"][mode] or "conv_transpose2d_backward", seed)


@pytest.mark.parametrize("mode", ["kernels", "auto", "reference"])
@pytest.mark.parametrize("need", ["x", "w"])
def test_conv_fast_backward_with_one_gradient_needed(mode, need):
    """Only dx (constant weight) or only dw (constant input) is asked for: the kernel computes just that one."""
    rng = np.random.default_rng(4)
    x = t64(rng.standard_normal((2, 4, 6, 5)), need == "x")
    w = t64(rng.standard_normal((6, 2, 3, 2)), need == "w")
    wt = t64(rng.standard_normal((4, 3, 3, 2)), need == "w")
    assert_paths_equal(lambda *_: mg.conv2d(x, w, stride=2, padding=1, groups=2), [x if need == "x" else w], mode)
    assert_paths_equal(lambda *_: mg.conv_transpose2d(x, wt, stride=2), [x if need == "x" else wt], mode)


def test_conv_forward_uses_the_kernels_or_the_reference():
    from minigen.kernels import dispatch

    x, w = mg.randn(1, 2, 5, 5, requires_grad=True), mg.randn(3, 2, 3, 3, requires_grad=True)
    with dispatch.use_reference():
        dispatch.reset_stats()
        y_ref = mg.conv2d(x, w, padding=1)
        assert dispatch.stats() == {}
    with dispatch.use_kernels():  # forced: the direct kernel applies to every shape
        dispatch.reset_stats()
        y = mg.conv2d(x, w, padding=1)
        if dispatch.available():
            assert dispatch.stats() == {"conv2d_forward_direct": 1}
    wide = mg.randn(40, 2, 3, 3, requires_grad=True)
    xb, wb = mg.randn(16, 32, 28, 28), mg.randn(1, 32, 5, 5)  # the DCGAN output conv: 40 MB of im2col columns
    with dispatch.set_mode("auto"):  # the measured rule: small problems through im2col, the big 32 -> 1 conv direct
        dispatch.reset_stats()
        y3 = mg.conv2d(x, w, padding=1)  # the weight needs a gradient: the forward keeps its im2col columns
        with mg.no_grad():
            yw2 = mg.conv2d(x, wide, padding=1)
            yb = mg.conv2d(xb, wb, padding=2)
        if dispatch.available():
            assert dispatch.stats() == {"conv2d_forward_cols": 1, "conv2d_forward": 1, "conv2d_forward_direct": 1}
    with dispatch.use_reference():
        yw_ref = mg.conv2d(x, wide, padding=1)
        yb_ref = mg.conv2d(xb, wb, padding=2)
    np.testing.assert_allclose(y.detach().numpy(), y_ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y3.detach().numpy(), y_ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(yw2.numpy(), yw_ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(yb.numpy(), yb_ref.numpy(), rtol=1e-4, atol=1e-4)


def test_reference_helpers_are_usable_on_arrays():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    y = C.conv2d_forward_ref(x, w, stride=2, padding=1)
    # direct formula for one output element
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    assert y.shape == (1, 3, 3, 3)
    np.testing.assert_allclose(y[0, 1, 2, 1], np.sum(xp[0, :, 4:7, 2:5] * w[1]))
    g = rng.standard_normal(y.shape)
    # adjointness: <conv(x), g> = <x, convT(g)> = <w, dW(x, g)>
    dx = C.conv2d_backward_input_ref(g, w, (5, 5), stride=2, padding=1)
    dw = C.conv2d_backward_weight_ref(x, g, (3, 3), stride=2, padding=1)
    np.testing.assert_allclose(np.sum(y * g), np.sum(x * dx))
    np.testing.assert_allclose(np.sum(y * g), np.sum(w * dw))


# ------------------------------------------------------------------ errors
def test_errors_name_the_shapes():
    x, w = mg.randn(2, 4, 5, 5), mg.randn(6, 2, 3, 3)
    with pytest.raises(ShapeError, match=r"\(4, 5, 5, 1, 1\)"):
        mg.conv2d(mg.randn(4, 5, 5, 1, 1), w)
    with pytest.raises(ShapeError, match=r"weight, got shape \(6, 2, 3\)"):
        mg.conv2d(x, mg.randn(6, 2, 3))
    with pytest.raises(ShapeError, match=r"4 channels .*\(2, 4, 5, 5\).*\(6, 2, 3, 3\) with groups=1 expects 2"):
        mg.conv2d(x, w)
    with pytest.raises(ShapeError, match="not divisible by groups=4"):
        mg.conv2d(x, mg.randn(6, 1, 3, 3), groups=4)
    with pytest.raises(ShapeError, match=r"kernel size \(3, 3\) \(dilated: \(7, 7\)\) is larger than the padded "
                                         r"input \(5, 5\)"):
        mg.conv2d(x, w, dilation=3, groups=2)
    with pytest.raises(ShapeError, match=r"bias must have shape \(6,\)"):
        mg.conv2d(x, w, mg.randn(4), groups=2)
    with pytest.raises(ShapeError, match=r"input has 4 channels .* expects 3"):
        mg.conv_transpose2d(x, mg.randn(3, 2, 2, 2))
    with pytest.raises(ShapeError, match=r"output size \(-1, -1\) is too small"):
        mg.conv_transpose2d(mg.randn(1, 1, 1, 1), mg.randn(1, 1, 1, 1), padding=1)
    with pytest.raises(ShapeError, match=r"3-d input \(N, C, L\)"):
        mg.conv1d(mg.randn(5), mg.randn(1, 1, 1))


def test_errors_for_bad_arguments_and_dtypes():
    x, w = mg.randn(1, 2, 5, 5), mg.randn(3, 2, 3, 3)
    with pytest.raises(InvalidArgumentError, match="output_padding"):
        mg.conv_transpose2d(x, mg.randn(2, 3, 3, 3), stride=2, output_padding=2)
    with pytest.raises(InvalidArgumentError, match="stride must be >= 1"):
        mg.conv2d(x, w, stride=0)
    with pytest.raises(InvalidArgumentError, match="padding must be >= 0"):
        mg.conv2d(x, w, padding=-1)
    with pytest.raises(InvalidArgumentError, match="'same' needs stride 1"):
        mg.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(InvalidArgumentError, match="'full'"):
        mg.conv2d(x, w, padding="full")
    with pytest.raises(InvalidArgumentError, match="tuple of 2 ints"):
        mg.conv2d(x, w, stride=(1, 2, 3))
    with pytest.raises(InvalidArgumentError, match="groups must be a positive int"):
        mg.conv2d(x, w, groups=0)
    with pytest.raises(DTypeError, match="int64"):
        mg.conv2d(mg.ones(1, 2, 5, 5, dtype=mg.int64), w)
    with pytest.raises(DTypeError, match="float32 and weight dtype float64"):
        mg.conv2d(x, w.double())
    with pytest.raises(DTypeError, match="must be a Tensor"):
        mg.conv2d(np.ones((1, 2, 5, 5)), w)


# ------------------------------------------------------------------ gradchecks with each algorithm on
@pytest.mark.parametrize("algo", ["direct", "im2col", "im2col-chunked"])
@settings(max_examples=6)
@given(data=st.data())
def test_gradcheck_with_each_conv_algorithm(algo, data):
    """gradcheck / gradgradcheck with the kernels on: the direct loops (forced mode), im2col + BLAS (a
    wide conv, O = 20 > every direct limit, in auto mode) and im2col over 1-sample batch chunks."""
    from minigen.kernels import cpu_conv, dispatch

    case = data.draw(conv_cases(2, max_side=4, allow_str_padding=False))
    tcase = data.draw(conv_transpose_cases(2))
    if algo != "direct":
        g = case["groups"]
        case = dict(case, w=(20 * g,) + case["w"][1:], b=(20 * g,))
        tcase = dict(tcase, x=tcase["x"][:1] + (20 * tcase["groups"],) + tcase["x"][2:],
                     w=(20 * tcase["groups"],) + tcase["w"][1:])
    x, w, b = _draw_tensors(data, case)
    xt, wt, bt = _draw_tensors(data, tcase)
    old = cpu_conv.COLS_CHUNK_BYTES
    if algo == "im2col-chunked":
        cpu_conv.COLS_CHUNK_BYTES = 1
    try:
        with (dispatch.use_kernels() if algo == "direct" else dispatch.set_mode("auto")):
            dispatch.reset_stats()
            assert gradcheck(_conv_fn(2, case), (x, w, b))
            assert gradcheck(_convt_fn(2, tcase), (xt, wt, bt))
            assert gradgradcheck(_conv_fn(2, case), (x, w))
            ran = dispatch.stats()
    finally:
        cpu_conv.COLS_CHUNK_BYTES = old
    if dispatch.available():
        if algo == "direct":
            assert ran.get("conv2d_forward_direct", 0) > 0 and ran.get("conv2d_backward_input_direct", 0) > 0, ran
        else:
            assert ran.get("conv2d_forward_cols", 0) + ran.get("conv2d_forward", 0) > 0, ran
            assert "conv2d_forward_direct" not in ran, ran
