"""The ops' kernel paths == their reference paths (minigen.kernels wired into minigen.ops / nn).

Each test runs the same op (forward and first-order backward, through Tensors and autograd) twice:
with the kernels forced on (``dispatch.use_kernels()``: size thresholds ignored) and with every op on
its NumPy reference (``use_reference()``), and asserts equal results; ``dispatch.stats()`` shows that
the kernel path really ran. Gradchecks with the kernels on check the fused first-order backwards against
finite differences; gradgradchecks check that ``create_graph`` still takes the differentiable formulas.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minigen as mg
from minigen.kernels import dispatch
from minigen.testing import gradcheck, gradgradcheck

F = mg.nn.functional

pytest.importorskip("numba")


def run_both(fn, arrays, requires_grad=None):
    """fn(*tensors) -> Tensor; returns ((out, grads) kernel path, (out, grads) reference path, kernel stats)."""
    res = []
    stats = None
    for mode in ("numba", "reference"):
        with dispatch.set_mode(mode):
            dispatch.reset_stats()
            ts = [mg.tensor(a, requires_grad=(requires_grad is None or requires_grad[i])) for i, a in enumerate(arrays)]
            out = fn(*ts)
            g = np.random.default_rng(7).standard_normal(out.shape).astype(out.dtype)
            out.backward(mg.tensor(g))
            res.append((out.array.copy(), [None if t.grad is None else t.grad.array.copy() for t in ts]))
            if mode == "numba":
                stats = dispatch.stats()
    return res[0], res[1], stats


def assert_same(k, r, rtol, atol):
    np.testing.assert_allclose(k[0], r[0], rtol=rtol, atol=atol)
    for gk, gr in zip(k[1], r[1]):
        assert (gk is None) == (gr is None)
        if gk is not None:
            np.testing.assert_allclose(gk, gr, rtol=rtol, atol=atol)


TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


# ------------------------------------------------------------------ convolution
@st.composite
def conv_cases(draw):
    G = draw(st.sampled_from([1, 1, 2]))
    C, O = G * draw(st.integers(1, 3)), G * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    H = draw(st.integers(max(1, d[0] * (k[0] - 1) + 1 - 2 * p[0]), 9))
    W = draw(st.integers(max(1, d[1] * (k[1] - 1) + 1 - 2 * p[1]), 9))
    N = draw(st.sampled_from([1, 2, 3, 8, 9]))  # the kernels switch to a batch-innermost layout at N >= 8
    return N, C, H, W, O, k, s, d, p, G


def conv_layout(which):
    """Force the conv kernels' column layout: 'auto' (their size rule), 'batch' (batch-innermost when N >= 8,
    whatever the sizes) or 'nchw'."""
    from unittest import mock

    from minigen.kernels import cpu_conv

    rules = {"auto": cpu_conv._batch_inner, "batch": lambda xs, ws, o: xs[0] >= 8, "nchw": lambda xs, ws, o: False}
    return mock.patch.object(cpu_conv, "_batch_inner", rules[which])


LAYOUTS = st.sampled_from(["auto", "batch", "nchw"])


@given(case=conv_cases(), dt=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31),
       bias=st.booleans(), wgrad=st.booleans(), layout=LAYOUTS)
def test_conv2d_kernel_path_equals_reference(case, dt, seed, bias, wgrad, layout):
    N, C, H, W, O, k, s, d, p, G = case
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((N, C, H, W)).astype(dt), rng.standard_normal((O, C // G) + k).astype(dt)]
    if bias:
        arrays.append(rng.standard_normal(O).astype(dt))
    fn = lambda x, w, b=None: F.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=G)  # noqa: E731
    with conv_layout(layout):
        kern, ref, stats = run_both(fn, arrays, [True, wgrad, True][:len(arrays)])
    assert_same(kern, ref, **TOL[dt])
    # forward kept the im2col matrix when the weight needs a gradient; one fused backward call
    assert stats.get("conv2d_forward_cols" if wgrad else "conv2d_forward") == 1
    assert stats.get("conv2d_backward") == 1


@given(case=conv_cases(), dt=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31),
       op=st.integers(0, 2), layout=LAYOUTS)
def test_conv_transpose2d_kernel_path_equals_reference(case, dt, seed, op, layout):
    N, C, H, W, O, k, s, d, p, G = case
    opad = tuple(min(op, max(si, di) - 1) for si, di in zip(s, d))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dt)
    w = rng.standard_normal((C, O // G) + k).astype(dt)
    fn = lambda x, w: F.conv_transpose2d(x, w, stride=s, padding=p, output_padding=opad, groups=G,  # noqa: E731
                                         dilation=d)
    try:
        with conv_layout(layout):
            kern, ref, stats = run_both(fn, [x, w])
    except mg.errors.ShapeError:  # output size < 1 for this geometry (both paths raise alike)
        assume(False)
    assert_same(kern, ref, **TOL[dt])
    assert stats.get("conv2d_backward_input") == 1 and stats.get("conv_transpose2d_backward") == 1


def test_conv1d_and_dcgan_shapes_kernel_path_equals_reference():
    rng = np.random.default_rng(0)
    x1, w1 = rng.standard_normal((2, 3, 11)), rng.standard_normal((4, 3, 3))
    assert_same(*run_both(lambda x, w: F.conv1d(x, w, stride=2, padding=1), [x1, w1])[:2], **TOL[np.float64])
    # DCGAN D conv2 geometry (5x5, stride 2, padding 2) and its generator's transposed conv, float32
    x = rng.standard_normal((8, 16, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((32, 16, 5, 5)) * 0.05).astype(np.float32)
    assert_same(*run_both(lambda x, w: F.conv2d(x, w, stride=2, padding=2), [x, w])[:2], **TOL[np.float32])
    z = rng.standard_normal((8, 32, 7, 7)).astype(np.float32)
    wt = (rng.standard_normal((32, 16, 5, 5)) * 0.05).astype(np.float32)
    kern, ref, _ = run_both(lambda z, w: F.conv_transpose2d(z, w, stride=2, padding=2, output_padding=1), [z, wt])
    assert kern[0].shape == (8, 16, 14, 14)
    assert_same(kern, ref, **TOL[np.float32])


def test_conv_cols_cache_is_bounded(monkeypatch):
    from minigen.kernels import cpu_conv

    monkeypatch.setattr(cpu_conv, "CACHE_COLS_MAX_BYTES", 0)  # too big to keep: backward rebuilds the columns
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))]
    kern, ref, _ = run_both(lambda x, w: F.conv2d(x, w, padding=1), arrays)
    assert_same(kern, ref, **TOL[np.float64])


def test_conv_gradchecks_with_kernels_on():
    rng = np.random.default_rng(2)
    x = mg.tensor(rng.standard_normal((2, 4, 5, 6)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((6, 2, 3, 2)), requires_grad=True)
    wt = mg.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    with dispatch.use_kernels():
        dispatch.reset_stats()
        assert gradcheck(lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1, dilation=(1, 2), groups=2), [x, w])
        assert gradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1), [x, wt])
        assert dispatch.stats().get("conv2d_backward", 0) > 0
        assert dispatch.stats().get("conv_transpose2d_backward", 0) > 0
        # batch-innermost layout (N >= 8), incl. a transposed conv whose output padding crops (op > p)
        x8 = mg.tensor(rng.standard_normal((8, 2, 4, 3)), requires_grad=True)
        w8 = mg.tensor(rng.standard_normal((3, 2, 3, 2)), requires_grad=True)
        w8t = mg.tensor(rng.standard_normal((2, 3, 3, 2)), requires_grad=True)
        with conv_layout("batch"):
            assert gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x8, w8])
            assert gradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=3, padding=1, output_padding=2), [x8, w8t])
        # create_graph: the differentiable formulas (whose forwards are again the kernels)
        assert gradgradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=2), [x, w])
        assert gradgradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1), [x, wt])


def test_reference_mode_covers_conv_and_pool():
    from minigen.ops import conv as C

    x = mg.tensor(np.random.default_rng(3).standard_normal((1, 2, 6, 6)), requires_grad=True)
    w = mg.tensor(np.ones((1, 2, 3, 3)), requires_grad=True)
    for ctx in (dispatch.use_reference, C.reference_kernels):
        with ctx():
            dispatch.reset_stats()
            F.conv2d(x, w, padding=1).sum().backward()
            F.max_pool2d(x, 2).sum().backward()
            F.avg_pool2d(x, 2).sum().backward()
            assert dispatch.stats() == {}
            assert C.kernel("conv2d_forward", x.array, w.array) is C.conv2d_forward_ref


# ------------------------------------------------------------------ relu / leaky relu
@given(shape=st.sampled_from([(1,), (7,), (3, 5), (2, 3, 4, 5)]), dt=st.sampled_from([np.float32, np.float64]),
       slope=st.sampled_from([0.01, 0.2, -0.5, 0.0]), seed=st.integers(0, 2**31))
def test_relu_leaky_kernel_path_equals_reference(shape, dt, slope, seed):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dt)
    x.flat[0] = 0.0  # the kink: slope 0 (relu) / negative_slope (leaky), as PyTorch
    for fn in (F.relu, lambda t: F.leaky_relu(t, slope)):
        kern, ref, stats = run_both(fn, [x])
        np.testing.assert_array_equal(kern[0], ref[0])
        np.testing.assert_array_equal(kern[1][0], ref[1][0])
        assert stats.get("masked_linear_forward") == 1


def test_relu_leaky_kernel_special_values():
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 2.0, -3.0], np.float32)
    with dispatch.use_kernels():
        dispatch.reset_stats()
        r, lk = F.relu(mg.tensor(x)).array, F.leaky_relu(mg.tensor(x), 0.5).array
        assert dispatch.stats().get("masked_linear_forward") == 2
    with dispatch.use_reference():
        np.testing.assert_array_equal(r, F.relu(mg.tensor(x)).array)
        np.testing.assert_array_equal(lk, F.leaky_relu(mg.tensor(x), 0.5).array)
    np.testing.assert_array_equal(lk[1:], [np.inf, -np.inf, -0.0, 0.0, 2.0, -1.5])  # hand values
    assert np.isnan(lk[0])


# ------------------------------------------------------------------ batch norm / layer norm
@given(shape=st.sampled_from([(4, 3), (5, 6, 4), (3, 2, 4, 5), (2, 70)]), dt=st.sampled_from([np.float32, np.float64]),
       affine=st.sampled_from(["both", "none", "weight"]), seed=st.integers(0, 2**31))
def test_batch_norm_kernel_path_equals_reference(shape, dt, affine, seed):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dt)
    arrays = [x] + ([rng.standard_normal(C).astype(dt)] if affine != "none" else []) + \
        ([rng.standard_normal(C).astype(dt)] if affine == "both" else [])
    running = {}

    def fn(x, w=None, b=None):
        rm, rv = mg.zeros(C, dtype=x.dtype), mg.ones(C, dtype=x.dtype)
        y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3)
        running.setdefault("r", []).append((rm.array.copy(), rv.array.copy()))
        return y

    kern, ref, stats = run_both(fn, arrays)
    assert_same(kern, ref, **TOL[dt])
    for a, b in zip(*running["r"]):  # running statistics updated alike
        np.testing.assert_allclose(a, b, **TOL[dt])
    assert stats.get("batch_norm_forward") == 1 and stats.get("batch_norm_backward") == 1


@given(shape=st.sampled_from([(4, 8), (2, 3, 5), (3, 2, 2, 3)]), nd=st.integers(1, 2),
       dt=st.sampled_from([np.float32, np.float64]), affine=st.booleans(), seed=st.integers(0, 2**31))
def test_layer_norm_kernel_path_equals_reference(shape, nd, dt, affine, seed):
    rng = np.random.default_rng(seed)
    ns = shape[-nd:]
    arrays = [rng.standard_normal(shape).astype(dt)]
    if affine:
        arrays += [rng.standard_normal(ns).astype(dt), rng.standard_normal(ns).astype(dt)]
    kern, ref, stats = run_both(lambda x, w=None, b=None: F.layer_norm(x, ns, w, b), arrays)
    assert_same(kern, ref, **TOL[dt])
    assert stats.get("layer_norm_forward") == 1 and stats.get("layer_norm_backward") == 1


def test_norm_gradchecks_with_kernels_on():
    rng = np.random.default_rng(4)
    x = mg.tensor(rng.standard_normal((4, 3, 2, 2)), requires_grad=True)
    w = mg.tensor(rng.standard_normal(3) + 2, requires_grad=True)
    b = mg.tensor(rng.standard_normal(3), requires_grad=True)
    wl = mg.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    with dispatch.use_kernels():
        dispatch.reset_stats()
        bn = lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)  # noqa: E731
        ln = lambda x, w: F.layer_norm(x, (2, 2), w)  # noqa: E731
        assert gradcheck(bn, [x, w, b]) and gradcheck(ln, [x, wl])
        assert dispatch.stats().get("batch_norm_backward", 0) > 0 and dispatch.stats().get("layer_norm_backward", 0) > 0
        assert gradgradcheck(bn, [x, w, b]) and gradgradcheck(ln, [x, wl])
    # bias without weight: the kernel gives no bias gradient, so the reference backward runs
    xb = mg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    with dispatch.use_kernels():
        assert gradcheck(lambda x, b: F.batch_norm(x, None, None, None, b, training=True), [xb, b])


# ------------------------------------------------------------------ GELU / SiLU (vectorised kernels)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gelu_silu_kernel_path_equals_reference_incl_tails(dt):
    import math

    x = np.concatenate([np.linspace(-15, 15, 3001), np.random.default_rng(5).standard_normal(1000)]).astype(dt)
    eps = np.finfo(dt).eps
    for fn, name, exact_erf in ((F.gelu, "gelu", True), (lambda t: F.gelu(t, approximate="tanh"), "gelu", False),
                                (F.silu, "silu", False)):
        kern, ref, stats = run_both(fn, [x])
        # the references lose relative accuracy where 1 + erf (or 1 + tanh) cancels, so: absolute agreement
        # at the scale of the values (the kernels' normal CDF is a fit with relative error ~1e-14, which
        # shows in float64 only: measured up to 4 eps there)
        tol = (32 if dt == np.float64 and exact_erf else 8) * eps * np.maximum(np.abs(x), 1.0)
        assert np.all(np.abs(kern[0] - ref[0]) <= tol)
        assert np.all(np.abs(kern[1][0] - ref[1][0]) <= tol)
        # exact GELU under a recorded graph: forward and derivative in one kernel pass, backward = g * d
        assert (stats.get("gelu_forward_grad") == 1 if exact_erf else
                stats.get(f"{name}_forward") == 1 and stats.get(f"{name}_backward") == 1)
    # ... and the exact GELU kernel keeps relative accuracy in the far negative tail (vs math.erfc)
    y = run_both(F.gelu, [x])[0][0]
    exact = np.array([0.5 * float(v) * math.erfc(-float(v) / math.sqrt(2)) for v in x])
    ok = np.abs(exact) > np.finfo(dt).tiny
    np.testing.assert_allclose(y[ok], exact[ok], rtol=max(4 * eps, 5e-13))


# ------------------------------------------------------------------ cross-entropy
@given(N=st.integers(1, 9), C=st.integers(1, 7), dt=st.sampled_from([np.float32, np.float64]),
       weighted=st.booleans(), smoothing=st.sampled_from([0.0, 0.1]), ignore=st.booleans(),
       reduction=st.sampled_from(["mean", "sum", "none"]), seed=st.integers(0, 2**31))
def test_cross_entropy_kernel_path_equals_reference(N, C, dt, weighted, smoothing, ignore, reduction, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N, C)) * 3).astype(dt)
    t = rng.integers(0, C, N)
    if ignore:
        t[rng.random(N) < 0.4] = -100  # may ignore every row: 'mean' is NaN with a zero gradient
    w = mg.tensor(rng.uniform(0.5, 2, C).astype(dt)) if weighted else None
    fn = lambda x: F.cross_entropy(x, mg.tensor(t), weight=w, label_smoothing=smoothing,  # noqa: E731
                                   reduction=reduction)
    kern, ref, stats = run_both(fn, [x])
    np.testing.assert_allclose(kern[0], ref[0], **TOL[dt])
    np.testing.assert_allclose(kern[1][0], ref[1][0], **TOL[dt])
    assert stats.get("cross_entropy") == 1


def test_cross_entropy_gradchecks_with_kernels_on():
    rng = np.random.default_rng(6)
    x = mg.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    t = mg.tensor(np.array([0, 3, -100, 1, 2]))
    w = mg.tensor(np.array([1.0, 2.0, 0.5, 1.5]))
    with dispatch.use_kernels():
        dispatch.reset_stats()
        for red in ("mean", "none"):
            fn = lambda x: F.cross_entropy(x, t, weight=w, label_smoothing=0.2, reduction=red)  # noqa: E731
            assert gradcheck(fn, [x]) and gradgradcheck(fn, [x])
        assert dispatch.stats().get("cross_entropy", 0) > 0
    # hand case: uniform logits over 4 classes, target 0: loss = log 4, dx = (1/4 - [c == 0]) / 1
    x1 = mg.tensor(np.zeros((1, 4)), requires_grad=True)
    with dispatch.use_kernels():
        loss = F.cross_entropy(x1, mg.tensor(np.array([0])))
        loss.backward()
    assert abs(loss.item() - np.log(4)) < 1e-15
    np.testing.assert_allclose(x1.grad.array, [[-0.75, 0.25, 0.25, 0.25]], rtol=1e-15)


# ------------------------------------------------------------------ scaled dot-product attention
@given(lead=st.sampled_from([(1,), (2, 3), (4,)]), Tq=st.integers(1, 70), Tk=st.integers(1, 70), D=st.integers(1, 9),
       causal=st.booleans(), dt=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_sdpa_kernel_path_equals_reference(lead, Tq, Tk, D, causal, dt, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(lead + (T, D)).astype(dt) for T in (Tq, Tk, Tk)]
    fn = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # noqa: E731
    kern, ref, stats = run_both(fn, arrays)
    assert_same(kern, ref, **(dict(rtol=1e-4, atol=1e-5) if dt == np.float32 else TOL[dt]))
    assert stats.get("sdpa_forward") == 1 and stats.get("sdpa_backward") == 1


def test_sdpa_gradchecks_with_kernels_on_and_reference_for_masks():
    rng = np.random.default_rng(8)
    q, k, v = (mg.tensor(rng.standard_normal((2, 5, 3)), requires_grad=True) for _ in range(3))
    with dispatch.use_kernels():
        dispatch.reset_stats()
        for causal in (False, True):
            fn = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # noqa: E731
            assert gradcheck(fn, [q, k, v]) and gradgradcheck(fn, [q, k, v])
        assert dispatch.stats().get("sdpa_backward", 0) > 0
        dispatch.reset_stats()
        mask = mg.tensor(np.tril(np.ones((5, 5), bool)))
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # masks / dropout: the reference
        assert "sdpa_forward" not in dispatch.stats()


# ------------------------------------------------------------------ fused optimizer steps
@pytest.mark.parametrize("make", [
    lambda ps: mg.optim.Adam(ps, lr=1e-2, weight_decay=0.1, amsgrad=True),
    lambda ps: mg.optim.Adam(ps, lr=1e-2, maximize=True),
    lambda ps: mg.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    lambda ps: mg.optim.SGD(ps, lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: mg.optim.SGD(ps, lr=1e-2, momentum=0.9, dampening=0.3, maximize=True),
    lambda ps: mg.optim.SGD(ps, lr=1e-2)])
def test_optimizer_kernel_path_equals_reference(make):
    rng = np.random.default_rng(9)
    init = [rng.standard_normal(s).astype(np.float32) for s in ((50, 100), (5000,), (7, 3))]
    grads = [[rng.standard_normal(a.shape).astype(np.float32) for a in init] for _ in range(4)]
    finals = []
    for mode in ("numba", "reference"):
        with dispatch.set_mode(mode):
            dispatch.reset_stats()
            ps = [mg.nn.Parameter(mg.tensor(a.copy())) for a in init]
            opt = make(ps)
            for gs in grads:
                for p, g in zip(ps, gs):
                    p.grad = mg.tensor(g)
                opt.step()
            finals.append([p.array.copy() for p in ps])
            if mode == "numba":
                assert sum(dispatch.stats().values()) == 4  # the fused step ran every time
    for a, b in zip(*finals):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ GRU layer (fused sequence kernel)
@given(T=st.integers(1, 6), B=st.integers(1, 3), I=st.integers(1, 4), H=st.integers(1, 5), layers=st.integers(1, 2),
       bidir=st.booleans(), bias=st.booleans(), batch_first=st.booleans(), h0=st.booleans(),
       dt=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_gru_kernel_path_equals_reference(T, B, I, H, layers, bidir, bias, batch_first, h0, dt, seed):
    rng = np.random.default_rng(seed)
    mg.manual_seed(seed % 1000)
    gru = mg.nn.GRU(I, H, layers, bias=bias, batch_first=batch_first, bidirectional=bidir, dtype=getattr(mg, dt.__name__))
    params = [p.array.copy() for p in gru.parameters()]
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dt)
    hx = rng.standard_normal((layers * (2 if bidir else 1), B, H)).astype(dt)
    results = []
    for mode in ("numba", "reference"):
        with dispatch.set_mode(mode):
            dispatch.reset_stats()
            for p, a in zip(gru.parameters(), params):
                p.array[...] = a
                p.grad = None
            xt = mg.tensor(x, requires_grad=True)
            ht = mg.tensor(hx, requires_grad=True) if h0 else None
            y, hn = gru(xt, ht)
            (y * mg.tensor(np.cos(np.arange(y.numel())).reshape(y.shape).astype(dt))).sum().add((hn * hn).sum()).backward()
            results.append([y.array, hn.array, xt.grad.array] + ([ht.grad.array] if h0 else [])
                           + [p.grad.array for p in gru.parameters()])
            if mode == "numba":
                assert dispatch.stats().get("gru_seq_backward", 0) == layers * (2 if bidir else 1)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, **(dict(rtol=1e-4, atol=1e-5) if dt == np.float32 else TOL[dt]))


def test_gru_gradchecks_with_kernels_on():
    rng = np.random.default_rng(10)
    mg.manual_seed(1)
    gru = mg.nn.GRU(2, 3, 1, dtype=mg.float64)
    x = mg.tensor(rng.standard_normal((4, 2, 2)), requires_grad=True)
    h = mg.tensor(rng.standard_normal((1, 2, 3)), requires_grad=True)
    w = gru.weight_hh_l0
    with dispatch.use_kernels():
        dispatch.reset_stats()
        fn = lambda x, h, w: gru(x, h)[0]  # noqa: E731  (w reached through the module)
        assert gradcheck(fn, [x, h, w])
        assert dispatch.stats().get("gru_seq_backward", 0) > 0
        assert gradgradcheck(lambda x, h: gru(x, h)[0], [x, h])  # create_graph: the reference loop


# ------------------------------------------------------------------ pooling
@given(N=st.sampled_from([1, 2, 9]), C=st.integers(1, 3), H=st.integers(2, 9), W=st.integers(2, 9),
       k=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 1), d=st.integers(1, 2), ceil=st.booleans(),
       ties=st.booleans(), dt=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_pooling_kernel_paths_equal_reference(N, C, H, W, k, s, p, d, ceil, ties, dt, seed):
    assume(2 * p <= k and d * (k - 1) + 1 <= H + 2 * p and d * (k - 1) + 1 <= W + 2 * p)
    x = np.random.default_rng(seed).standard_normal((N, C, H, W)).astype(dt)
    if ties:
        x = np.round(x)  # equal maxima: the first in window order wins on both paths
    fns = [lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode=ceil),
           lambda t: F.avg_pool2d(t, k, s, p, ceil_mode=ceil),
           lambda t: F.adaptive_max_pool2d(t, (2, 3)),
           lambda t: F.interpolate(t, scale_factor=2)]
    for fn in fns:
        kern, ref, stats = run_both(fn, [x])
        assert_same(kern, ref, **TOL[dt])
    kern, ref, stats = run_both(fns[0], [x])
    assert stats.get("max_pool2d_forward") == 1 and stats.get("max_pool2d_backward") == 1


def test_max_pool_gradchecks_with_kernels_on():
    x = mg.tensor(np.random.default_rng(11).permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) / 10.0,
                  requires_grad=True)  # distinct values: no ties, so the max is differentiable
    with dispatch.use_kernels():
        assert gradcheck(lambda t: F.max_pool2d(t, 3, 2, 1), [x])
        assert gradgradcheck(lambda t: F.max_pool2d(t, 2), [x])


def test_sdpa_kernel_on_strided_views():
    """q, k, v sliced out of one (B, T, 3, H, D) projection (as the GPT does), a flipped one, a broadcast one."""
    rng = np.random.default_rng(12)
    B, T, H, D = 2, 9, 3, 4
    qkv = rng.standard_normal((B, T, 3, H, D))

    def fn(a):
        t = a.permute(2, 0, 3, 1, 4)  # (3, B, H, T, D) views
        y = F.scaled_dot_product_attention(t[0], t[1], t[2], is_causal=True)
        return y.permute(0, 2, 1, 3).reshape(B * T, H * D)  # the output's memory is (B, T, H, D)

    kern, ref, stats = run_both(fn, [qkv])
    assert_same(kern, ref, **TOL[np.float64])
    assert stats.get("sdpa_forward") == 1
    q = rng.standard_normal((B, H, T, D))
    kv = rng.standard_normal((B, 1, T, D))
    fn2 = lambda q, kv: F.scaled_dot_product_attention(  # noqa: E731  (flipped keys; values broadcast over heads)
        q, kv.flip(2).expand(B, H, T, D), kv.expand(B, H, T, D))
    kern, ref, _ = run_both(fn2, [q, kv])
    assert_same(kern, ref, **TOL[np.float64])


def test_activation_gradchecks_with_kernels_on():
    x = mg.tensor(np.random.default_rng(13).standard_normal((3, 5)) * 2, requires_grad=True)
    with dispatch.use_kernels():
        dispatch.reset_stats()
        for fn in (F.gelu, lambda t: F.gelu(t, approximate="tanh"), F.silu, F.softmax, F.log_softmax):
            f = (lambda t, fn=fn: fn(t, dim=-1)) if fn in (F.softmax, F.log_softmax) else fn
            assert gradcheck(f, [x]) and gradgradcheck(f, [x])
        assert dispatch.stats().get("gelu_forward_grad", 0) > 0 and dispatch.stats().get("softmax_backward", 0) > 0
