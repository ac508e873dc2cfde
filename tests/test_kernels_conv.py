"""Convolution and pooling kernels == the NumPy references in minigen/ops (and hand-made ones)."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minigen  # noqa: F401
from minigen.kernels import cpu_conv as K

from conftest import requires_torch

conv_ops = pytest.importorskip("minigen.ops.conv")
DTYPES = st.sampled_from([np.float32, np.float64])


def tol(dt):
    return dict(rtol=1e-4, atol=1e-4) if dt == np.float32 else dict(rtol=1e-11, atol=1e-11)


@st.composite
def conv_case(draw):
    G = draw(st.sampled_from([1, 1, 2]))
    C = G * draw(st.integers(1, 3))
    O = G * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = tuple(tuple(draw(st.integers(0, 2)) for _ in range(2)) for _ in range(2))
    H = draw(st.integers(max(1, dh * (kh - 1) + 1 - sum(pads[0])), 10))
    W = draw(st.integers(max(1, dw * (kw - 1) + 1 - sum(pads[1])), 10))
    N = draw(st.integers(1, 3))
    return N, C, H, W, O, (kh, kw), (sh, sw), pads, (dh, dw), G


@given(case=conv_case(), dt=DTYPES, seed=st.integers(0, 2**31), nc=st.booleans())
def test_conv2d_three_maps(case, dt, seed, nc):
    N, C, H, W, O, k, s, p, d, G = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dt)
    w = rng.standard_normal((O, C // G) + k).astype(dt)
    xin = x.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2) if nc else x  # non-contiguous input
    y = K.conv2d_forward(xin, w, s, p, d, G)
    np.testing.assert_allclose(y, conv_ops.conv2d_forward_ref(x, w, s, p, d, G), **tol(dt))
    g = rng.standard_normal(y.shape).astype(dt)
    dx = K.conv2d_backward_input(g, w, (H, W), s, p, d, G)
    np.testing.assert_allclose(dx, conv_ops.conv2d_backward_input_ref(g, w, (H, W), s, p, d, G), **tol(dt))
    dw = K.conv2d_backward_weight(xin, g, k, s, p, d, G)
    np.testing.assert_allclose(dw, conv_ops.conv2d_backward_weight_ref(x, g, k, s, p, d, G), **tol(dt))
    # adjointness: <conv(x), g> = <x, conv^T(g)>
    assert np.isclose((y * g).sum(), (x * dx).sum(), rtol=1e-3 if dt == np.float32 else 1e-10)


def test_conv_hand_case_and_dcgan_shape():
    # 1x1 image patch sums: a 2x2 ones kernel over [[1, 2], [3, 4]] = 10
    y = K.conv2d_forward(np.arange(1.0, 5.0).reshape(1, 1, 2, 2), np.ones((1, 1, 2, 2)))
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 10.0
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16, 14, 14)).astype(np.float32)  # DCGAN D conv2 geometry, thread-pool path
    w = rng.standard_normal((32, 16, 5, 5)).astype(np.float32)
    y = K.conv2d_forward(x, w, 2, 2)
    np.testing.assert_allclose(y, conv_ops.conv2d_forward_ref(x, w, 2, 2), rtol=1e-4, atol=1e-3)


@requires_torch
def test_conv_transpose_matches_torch():
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 3, 4, 3))
    for s, p, op, G in ((2, 1, 1, 1), (1, 0, 0, 2), (3, 2, 2, 1)):
        wg = w  # (Cin, Cout/G, kh, kw): Cout = 3 G
        yt = F.conv_transpose2d(torch.tensor(x), torch.tensor(wg), stride=s, padding=p, output_padding=op, groups=G)
        np.testing.assert_allclose(K.conv_transpose2d_forward(x, wg, s, p, op, G), yt.numpy(), rtol=1e-12, atol=1e-12)


pool_ops = pytest.importorskip("minigen.ops.pool")


@given(N=st.integers(1, 2), C=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9),
       k=st.tuples(st.integers(1, 3), st.integers(1, 3)), s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       pd=st.tuples(st.integers(0, 1), st.integers(0, 1)), d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       dt=DTYPES, seed=st.integers(0, 2**31), ties=st.booleans())
def test_max_pool(N, C, H, W, k, s, pd, d, dt, seed, ties):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dt)
    if ties:
        x = np.round(x)  # many equal values: the FIRST maximum must be chosen
    pads = ((pd[0], pd[0]), (pd[1], pd[1]))
    Ho = (H + 2 * pd[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    Wo = (W + 2 * pd[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    assume(Ho > 0 and Wo > 0)
    y, pos = K.max_pool2d_forward(x, k, s, pads, d, (Ho, Wo))
    posr = pool_ops.max_pool2d_argmax_ref(x, k, s, pads, d, (Ho, Wo))
    np.testing.assert_array_equal(pos, posr)
    xpad = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]), constant_values=-np.inf)
    np.testing.assert_array_equal(y, np.take_along_axis(xpad.reshape(N, C, -1), posr.reshape(N, C, -1), 2).reshape(y.shape))
    g = rng.standard_normal(y.shape).astype(dt)
    dx = K.max_pool2d_backward(g, pos, x.shape, pads)
    dxp = np.zeros((N * C, xpad.shape[2] * xpad.shape[3]))
    for i in range(N * C):
        np.add.at(dxp[i], posr.reshape(N * C, -1)[i], g.reshape(N * C, -1)[i])
    dxr = dxp.reshape(xpad.shape)[:, :, pads[0][0]:pads[0][0] + H, pads[1][0]:pads[1][0] + W]
    np.testing.assert_allclose(dx, dxr, **tol(dt))
    np.testing.assert_allclose(pool_ops.max_pool2d_backward_ref(g, posr, x.shape, pads), dxr, **tol(dt))


def ref_avg(x, k, s, p, out_hw, cip, div):
    N, C, H, W = x.shape
    y = np.zeros((N, C) + tuple(out_hw))
    for i in range(out_hw[0]):
        for j in range(out_hw[1]):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            cnt = (h1 - h0) * (w1 - w0)
            hh0, ww0, hh1, ww1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            if not cip:
                cnt = (hh1 - hh0) * (ww1 - ww0)
            tot = x[:, :, hh0:hh1, ww0:ww1].sum((2, 3))
            y[:, :, i, j] = tot / (div if div else cnt)
    return y


@given(H=st.integers(2, 9), W=st.integers(2, 9), k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       s=st.tuples(st.integers(1, 3), st.integers(1, 3)), pd=st.tuples(st.integers(0, 1), st.integers(0, 1)),
       cip=st.booleans(), div=st.sampled_from([None, 3]), dt=DTYPES, seed=st.integers(0, 2**31))
def test_avg_pool(H, W, k, s, pd, cip, div, dt, seed):
    # PyTorch's rules: pad at most half the kernel; the window fits the padded input
    assume(pd[0] * 2 <= k[0] and pd[1] * 2 <= k[1] and k[0] <= H + 2 * pd[0] and k[1] <= W + 2 * pd[1])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, H, W)).astype(dt)
    out_hw = ((H + 2 * pd[0] - k[0]) // s[0] + 1, (W + 2 * pd[1] - k[1]) // s[1] + 1)
    y = K.avg_pool2d_forward(x, k, s, pd, out_hw, cip, div)
    np.testing.assert_allclose(y, ref_avg(x, k, s, pd, out_hw, cip, div), **tol(dt))
    g = rng.standard_normal(y.shape).astype(dt)
    dx = K.avg_pool2d_backward(g, (H, W), k, s, pd, cip, div)
    # adjointness against the (linear) reference forward
    assert np.isclose((dx * x).sum(), (g * ref_avg(x, k, s, pd, out_hw, cip, div)).sum(),
                      rtol=1e-4 if dt == np.float32 else 1e-10)


# ------------------------------------------------------------------ conv algorithm per shape
from minigen.kernels import cpu_conv_direct as KD  # noqa: E402
from minigen.kernels import dispatch  # noqa: E402


@st.composite
def edge_conv_case(draw):
    """Edge geometries: batch 1, one output channel (the K = 1 input-gradient GEMM), one input channel,
    1x1 kernels, strides past the kernel, crop (negative) paddings, groups."""
    G = draw(st.sampled_from([1, 1, 1, 2]))
    C = G * draw(st.sampled_from([1, 1, 2, 3]))
    O = G * draw(st.sampled_from([1, 1, 2, 5]))
    kh, kw = draw(st.sampled_from([(1, 1), (1, 1), (1, 3), (3, 1), (2, 2), (5, 5)]))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = tuple(tuple(draw(st.integers(-1, 2)) for _ in range(2)) for _ in range(2))
    h0 = max(1, dh * (kh - 1) + 1 - sum(pads[0]), 1 - min(0, pads[0][0]) - min(0, pads[0][1]))
    w0 = max(1, dw * (kw - 1) + 1 - sum(pads[1]), 1 - min(0, pads[1][0]) - min(0, pads[1][1]))
    H, W = draw(st.integers(h0, max(h0, 9))), draw(st.integers(w0, max(w0, 9)))
    N = draw(st.sampled_from([1, 1, 2, 3]))
    return N, C, H, W, O, (kh, kw), (sh, sw), pads, (dh, dw), G


def _maps(mod, names, case, dt, seed, nc=False):
    N, C, H, W, O, k, s, p, d, G = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dt)
    w = rng.standard_normal((O, C // G) + k).astype(dt)
    xin = x.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2) if nc else x
    fwd, inp, wgt = (getattr(mod, n) for n in names)
    yr = conv_ops.conv2d_forward_ref(x, w, s, p, d, G)
    y = fwd(xin, w, s, p, d, G)
    assert y.shape == yr.shape and y.dtype == x.dtype
    np.testing.assert_allclose(y, yr, **tol(dt))
    g = rng.standard_normal(yr.shape).astype(dt)
    dx = inp(g, w, (H, W), s, p, d, G)
    assert dx.shape == x.shape and dx.dtype == x.dtype
    np.testing.assert_allclose(dx, conv_ops.conv2d_backward_input_ref(g, w, (H, W), s, p, d, G), **tol(dt))
    dw = wgt(xin, g, k, s, p, d, G)
    assert dw.shape == w.shape and dw.dtype == x.dtype
    np.testing.assert_allclose(dw, conv_ops.conv2d_backward_weight_ref(x, g, k, s, p, d, G), **tol(dt))
    return x, w, g


DIRECT = ("conv2d_forward_direct", "conv2d_backward_input_direct", "conv2d_backward_weight_direct")
IM2COL = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight")


@given(case=edge_conv_case(), dt=DTYPES, seed=st.integers(0, 2**31), nc=st.booleans())
def test_direct_kernels_equal_the_references(case, dt, seed, nc):
    x, w, g = _maps(KD, DIRECT, case, dt, seed, nc)  # asserts the three maps == the references
    assert x.shape[1] == w.shape[1] * case[9]


@given(case=conv_case(), dt=DTYPES, seed=st.integers(0, 2**31))
def test_direct_kernels_equal_the_references_general(case, dt, seed):
    x, w, g = _maps(KD, DIRECT, case, dt, seed)  # asserts the three maps == the references
    assert x.shape[1] == w.shape[1] * case[9]


@given(case=edge_conv_case(), dt=DTYPES, seed=st.integers(0, 2**31))
def test_im2col_kernels_on_edge_shapes(case, dt, seed):
    """1x1 (no column matrix), K = 1, Cout = 1, batch 1, crop paddings through the im2col + BLAS kernels."""
    x, w, g = _maps(K, IM2COL, case, dt, seed)  # asserts forward, input and weight maps == the references
    assert x.shape[0] == case[0] and w.shape[0] == case[4] and np.isfinite(g).all()


@given(case=edge_conv_case(), dt=DTYPES, seed=st.integers(0, 2**31), budget=st.sampled_from([1, 64, 400]))
def test_im2col_batch_chunks_equal_the_references(case, dt, seed, budget):
    """A column budget of a few bytes cuts the batch into 1-sample chunks: results must not change."""
    old = K.COLS_CHUNK_BYTES
    K.COLS_CHUNK_BYTES = budget
    try:
        x, w, g = _maps(K, IM2COL, case, dt, seed)
        N, C, H, W, O, k, s, p, d, G = case
        dx, dw = K.conv2d_backward(g, x, w, None, True, True, s, p, d, G)
        np.testing.assert_allclose(dx, conv_ops.conv2d_backward_input_ref(g, w, (H, W), s, p, d, G), **tol(dt))
        np.testing.assert_allclose(dw, conv_ops.conv2d_backward_weight_ref(x, g, k, s, p, d, G), **tol(dt))
        # the transposed conv's fused backward: its "input" g has w.shape[0] channels, its output x's shape
        dg, dw2 = K.conv_transpose2d_backward(x, g, w, True, True, s, p, d, G)
        np.testing.assert_allclose(dg, conv_ops.conv2d_forward_ref(x, w, s, p, d, G), **tol(dt))
        np.testing.assert_allclose(dw2, conv_ops.conv2d_backward_weight_ref(x, g, k, s, p, d, G), **tol(dt))
    finally:
        K.COLS_CHUNK_BYTES = old


@given(case=edge_conv_case(), dt=DTYPES, seed=st.integers(0, 2**31))
def test_direct_fused_backwards_equal_the_separate_maps(case, dt, seed):
    x, w, g = _maps(KD, DIRECT, case, dt, seed)
    N, C, H, W, O, k, s, p, d, G = case
    dx, dw = KD.conv2d_backward_direct(g, x, w, True, False, s, p, d, G)
    assert dw is None
    np.testing.assert_allclose(dx, conv_ops.conv2d_backward_input_ref(g, w, (H, W), s, p, d, G), **tol(dt))
    dg, dw2 = KD.conv_transpose2d_backward_direct(x, g, w, True, True, s, p, d, G)
    np.testing.assert_allclose(dg, conv_ops.conv2d_forward_ref(x, w, s, p, d, G), **tol(dt))
    np.testing.assert_allclose(dw2, conv_ops.conv2d_backward_weight_ref(x, g, k, s, p, d, G), **tol(dt))


def test_dcgan_output_conv_has_no_column_matrix():
    """The 32 -> 1 channel 5x5 output conv (the issue's 160 MB column matrix at batch 64) at batch 4:
    the direct kernels equal the reference, and the rule picks them (and not for a wide conv)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 32, 28, 28)).astype(np.float32)
    w = (rng.standard_normal((1, 32, 5, 5)) * 0.1).astype(np.float32)
    np.testing.assert_allclose(KD.conv2d_forward_direct(x, w, 1, 2), conv_ops.conv2d_forward_ref(x, w, 1, 2),
                               rtol=1e-4, atol=1e-4)
    g = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(KD.conv2d_backward_input_direct(g, w, (28, 28), 1, 2),
                               conv_ops.conv2d_backward_input_ref(g, w, (28, 28), 1, 2), rtol=1e-4, atol=1e-4)
    with dispatch.set_mode("auto"):  # the rule looks at shapes only: the batch-64 arrays as views of zeros
        x64, g64 = np.zeros((64, 32, 28, 28), np.float32), np.zeros((64, 1, 28, 28), np.float32)
        assert dispatch.applies("conv2d_forward_direct", x64, w, (1, 1))
        assert dispatch.applies("conv2d_backward_input_direct", g64, w, (1, 1))
        assert dispatch.applies("conv2d_backward_weight_direct", x64, g64, (1, 1), (5, 5))
        wide = np.zeros((64, 32, 5, 5), np.float32)
        assert not dispatch.applies("conv2d_forward_direct", x64, wide, (1, 1))
        assert not dispatch.applies("conv2d_backward_input_direct", np.zeros((64, 64, 28, 28), np.float32), wide,
                                    (1, 1))
        # small problems stay on im2col whatever O: LeNet conv2 (64, 6, 12, 12) -> 1, 5x5 (2.4 MB of columns)
        assert not dispatch.applies("conv2d_forward_direct", np.zeros((64, 6, 12, 12), np.float32),
                                    np.zeros((1, 6, 5, 5), np.float32), (1, 1))


def test_direct_rule_is_the_measured_table():
    assert KD.direct_worth("forward", 16) and not KD.direct_worth("forward", 17)
    assert KD.direct_worth("input", 8) and not KD.direct_worth("input", 9)
    assert KD.direct_worth("weight", 4) and not KD.direct_worth("weight", 5)
    assert KD.direct_worth("input", 1, (2, 2)) and not KD.direct_worth("input", 2, (2, 1))
    big, small = 160 << 20, 2 << 20
    assert KD.direct_worth("input", 1, 1, big, 784) and not KD.direct_worth("input", 1, 1, small, 784)
    assert not KD.direct_worth("input", 1, 1, big, 64)


def test_chunks_bound_the_column_matrix():
    B = K.COLS_CHUNK_BYTES
    ch = K._batch_chunks(64, B // 6 + 1)  # 5 samples fit a chunk: 13 chunks of 4-5 samples
    assert len(ch) == 13 and ch[0][0] == 0 and ch[-1][1] == 64 and all(a[1] == b[0] for a, b in zip(ch, ch[1:]))
    assert all(4 <= b - a <= 5 for a, b in ch)
    assert K._batch_chunks(64, B // 53) == [(0, 32), (32, 64)]  # 53 fit: two even chunks, not 53 + 11
    assert K._batch_chunks(3, 1 << 40) == [(0, 1), (1, 2), (2, 3)]
    assert K._batch_chunks(64, 1000) == [(0, 64)]
