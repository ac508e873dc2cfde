"""Tests for minigen/ops/attention.py: scaled_dot_product_attention and its reference."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen.errors import DTypeError, InvalidArgumentError, ShapeError
from minigen.ops import attention as attn
from minigen.testing import gradcheck, gradgradcheck
from minigen.testing.strategies import arrays, floats
from tests.conftest import requires_torch
from test_ops_conv import assert_paths_equal  # (imported here: importing it inside a @given test nests @given)

sdpa = mg.scaled_dot_product_attention


def T(arr, grad=True):
    t = mg.tensor(np.asarray(arr))
    return t.requires_grad_(True) if grad and t.dtype.kind == "f" else t


@st.composite
def attention_case(draw, max_batch=2):
    """(q, k, v, mask or None, kwargs) with small shapes and every kind of mask."""
    batch = tuple(draw(st.lists(st.integers(1, max_batch), min_size=0, max_size=2)))
    L, S, E, Ev = (draw(st.integers(1, 3)) for _ in range(4))
    gqa = len(batch) >= 1 and draw(st.booleans())
    if gqa:
        hkv = draw(st.integers(1, 2))
        qb, kb = batch[:-1] + (hkv * draw(st.integers(1, 2)),), batch[:-1] + (hkv,)
    else:
        qb = kb = batch
    q = draw(arrays(qb + (L, E)))
    k = draw(arrays(kb + (S, E)))
    v = draw(arrays(kb + (S, Ev)))
    kind = draw(st.sampled_from(["none", "bool", "float", "causal"]))
    kwargs = {"enable_gqa": gqa}
    if draw(st.booleans()):
        kwargs["scale"] = draw(floats(0.1, 2.0))
    mask = None
    # masks broadcast over the batch/head dims: draw (L, S), (1, L, S) or (L, 1) shapes
    mshape = draw(st.sampled_from([(L, S), (L, 1), (S,)] + ([(1, L, S)] if batch else [])))
    if kind == "bool":
        mask = draw(arrays(mshape, dtype="bool", elements=st.booleans()))
    elif kind == "float":
        mask = draw(arrays(mshape, elements=st.one_of(floats(-2, 2), st.just(-np.inf))))
    elif kind == "causal":
        kwargs["is_causal"] = True
    return q, k, v, mask, kwargs


def reference_numpy(q, k, v, mask, scale=None, is_causal=False, enable_gqa=False):
    """softmax(q k^T * scale + M) v in plain NumPy (rows with no key get zero weights)."""
    if enable_gqa:
        rep = q.shape[-3] // k.shape[-3]
        k, v = np.repeat(k, rep, axis=-3), np.repeat(v, rep, axis=-3)
    L, S = q.shape[-2], k.shape[-2]
    s = q @ np.swapaxes(k, -1, -2) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if is_causal:
        mask = np.tril(np.ones((L, S), dtype=bool))
    if mask is not None:
        s = s + (np.where(mask, 0.0, -np.inf) if mask.dtype == bool else mask)
    m = np.max(s, axis=-1, keepdims=True)
    dead = np.isneginf(m)
    e = np.exp(s - np.where(dead, 0.0, m))
    p = np.where(dead, 0.0, e / np.where(dead, 1.0, e.sum(-1, keepdims=True)))
    return p @ v


@given(attention_case())
def test_sdpa_forward_matches_numpy(case):
    q, k, v, mask, kw = case
    out = sdpa(T(q), T(k), T(v), attn_mask=None if mask is None else T(mask, False), **kw)
    np.testing.assert_allclose(out.detach().numpy(), reference_numpy(q, k, v, mask, **kw), rtol=1e-10, atol=1e-12)


@given(attention_case())
def test_sdpa_gradcheck(case):
    q, k, v, mask, kw = case
    args = [T(q), T(k), T(v)]
    float_mask = mask is not None and mask.dtype != bool
    if float_mask:
        args.append(T(mask))  # a float mask is differentiable (e.g. a learned position bias)

    def fn(q, k, v, *m):
        return sdpa(q, k, v, attn_mask=m[0] if m else (None if mask is None else T(mask, False)), **kw)

    assert gradcheck(fn, args)


def test_sdpa_gradcheck_with_dropout():
    # a fixed seed per call makes the dropout mask part of a deterministic function of (q, k, v)
    rng = np.random.default_rng(2)
    q, k, v = (T(rng.standard_normal(s)) for s in ((2, 3, 2), (2, 4, 2), (2, 4, 3)))
    fn = lambda q, k, v: sdpa(q, k, v, dropout_p=0.4, generator=mg.Generator().manual_seed(5))
    assert gradcheck(fn, (q, k, v))
    assert (fn(q, k, v).detach().numpy() != sdpa(q, k, v).detach().numpy()).any()


def test_sdpa_gradgradcheck():
    rng = np.random.default_rng(0)
    q, k, v = (T(rng.standard_normal(s)) for s in ((2, 3, 2), (2, 3, 2), (2, 3, 2)))
    m = T(rng.standard_normal((3, 3)))
    assert gradgradcheck(lambda q, k, v: sdpa(q, k, v, is_causal=True), (q, k, v))
    assert gradgradcheck(lambda q, k, v, m: sdpa(q, k, v, attn_mask=m, scale=0.7), (q, k, v, m))


def test_sdpa_hand_computed():
    # one query [1, 0] against keys [1, 0] and [0, 1], scale 1: scores [1, 0] -> weights [e, 1] / (e + 1)
    q, k = T([[1.0, 0.0]]), T([[1.0, 0.0], [0.0, 1.0]])
    v = T([[1.0, 2.0], [3.0, 4.0]])
    out = sdpa(q, k, v, scale=1.0)
    p0 = math.e / (math.e + 1)
    np.testing.assert_allclose(out.detach().numpy(), [[p0 * 1 + (1 - p0) * 3, p0 * 2 + (1 - p0) * 4]])
    # default scale is 1/sqrt(E): with E = 4, q.k = 4 becomes 2
    out = sdpa(T([[1.0] * 4]), T([[1.0] * 4, [0.0] * 4]), T([[1.0], [0.0]]))
    np.testing.assert_allclose(out.detach().numpy(), [[math.exp(2) / (math.exp(2) + 1)]])
    # a bool mask hides the first key; causal: query 0 sees only key 0
    np.testing.assert_allclose(sdpa(q, k, v, attn_mask=mg.tensor([False, True])).detach().numpy(), [[3.0, 4.0]])
    qq = T([[0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(sdpa(qq, k, v, is_causal=True).detach().numpy(), [[1.0, 2.0], [2.0, 3.0]])


def test_float_mask_is_cast_to_the_query_dtype():
    q = mg.randn(2, 3)
    m = mg.tensor(np.array([[0.0, -1.0], [0.5, 0.0]]), requires_grad=True)  # float64 mask, float32 q/k/v
    out = sdpa(q, q, q, attn_mask=m)
    assert out.dtype == mg.float32
    out.sum().backward()
    assert m.grad.dtype == mg.float64 and m.grad.shape == (2, 2)


def test_fully_masked_rows_give_zero_output_and_finite_grads():
    rng = np.random.default_rng(1)
    q, k, v = T(rng.standard_normal((3, 2))), T(rng.standard_normal((4, 2))), T(rng.standard_normal((4, 2)))
    mask = np.ones((3, 4), dtype=bool)
    mask[1] = False
    out = sdpa(q, k, v, attn_mask=mg.tensor(mask))
    np.testing.assert_array_equal(out.detach().numpy()[1], 0.0)
    out.sum().backward()
    for t in (q, k, v):
        assert np.isfinite(t.grad.numpy()).all()
    np.testing.assert_array_equal(q.grad.numpy()[1], 0.0)
    fm = np.zeros((3, 4))
    fm[2] = -np.inf
    out = sdpa(q, k, v, attn_mask=T(fm))
    np.testing.assert_array_equal(out.detach().numpy()[2], 0.0)


@requires_torch
@given(attention_case())
def test_sdpa_matches_torch(case):
    import torch

    q, k, v, mask, kw = case
    ours = [T(a) for a in (q, k, v)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    if mask is not None:
        tmask = np.atleast_2d(mask)  # torch's mask handling wants >= 2 dims; ours also takes (S,)
        if mask.dtype == bool:
            om, tm = T(mask, False), torch.tensor(tmask)
        else:
            om, tm = T(mask), torch.tensor(tmask, requires_grad=True)
            ours.append(om)
            theirs.append(tm)
    else:
        om = tm = None
    out = sdpa(*ours[:3], attn_mask=om, **kw)
    ref = torch.nn.functional.scaled_dot_product_attention(*theirs[:3], attn_mask=tm, **kw)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-9, atol=1e-12)
    vv = np.random.default_rng(0).standard_normal(out.shape)
    g1 = mg.grad(out, ours, grad_outputs=mg.tensor(vv), allow_unused=True)
    g2 = torch.autograd.grad(ref, theirs, grad_outputs=torch.tensor(vv), allow_unused=True)
    for a, c in zip(g1, g2):
        assert (a is None) == (c is None)
        if a is not None:
            c = np.nan_to_num(c.numpy())  # torch: NaN grads into -inf mask entries; ours: 0
            np.testing.assert_allclose(a.numpy().ravel(), c.ravel(), rtol=1e-8, atol=1e-10)


def test_sdpa_dropout_is_seeded_and_inverted():
    S = 50
    q, k = mg.zeros(S, 4), mg.zeros(S, 4)                  # uniform attention weights 1/S
    v = mg.eye(S)                                          # out = the (dropped) weight matrix itself
    a = sdpa(q, k, v, dropout_p=0.3, generator=mg.Generator().manual_seed(1)).numpy()
    b = sdpa(q, k, v, dropout_p=0.3, generator=mg.Generator().manual_seed(1)).numpy()
    np.testing.assert_array_equal(a, b)
    vals = np.unique(np.round(a, 6))
    np.testing.assert_allclose(vals, [0.0, round(1 / S / 0.7, 6)], rtol=1e-5)
    assert abs((a == 0).mean() - 0.3) < 6 * math.sqrt(0.3 * 0.7 / a.size)
    np.testing.assert_allclose(sdpa(q, k, v, dropout_p=0.0).numpy(), 1 / S, rtol=1e-6)


def test_sdpa_errors():
    q, k, v = mg.randn(2, 3, 4), mg.randn(2, 5, 4), mg.randn(2, 5, 6)
    with pytest.raises(ShapeError, match="feature size"):
        sdpa(q, mg.randn(2, 5, 3), v)
    with pytest.raises(ShapeError, match="sequence length"):
        sdpa(q, k, mg.randn(2, 4, 6))
    with pytest.raises(ShapeError, match="attn_mask"):
        sdpa(q, k, v, attn_mask=mg.ones(3, 4, dtype=mg.bool_))
    with pytest.raises(DTypeError, match="attn_mask"):
        sdpa(q, k, v, attn_mask=mg.ones(3, 5, dtype=mg.int64))
    with pytest.raises(InvalidArgumentError, match="is_causal"):
        sdpa(q, k, v, attn_mask=mg.ones(3, 5, dtype=mg.bool_), is_causal=True)
    with pytest.raises(ShapeError, match="attn_mask"):  # a mask may not add dims to the scores
        sdpa(q, k, v, attn_mask=mg.ones(1, 2, 3, 5, dtype=mg.bool_))
    with pytest.raises(ShapeError, match="batch dims"):
        sdpa(mg.randn(3, 3, 4), k, v)
    with pytest.raises(ShapeError, match="enable_gqa"):
        sdpa(mg.randn(1, 3, 2, 4), mg.randn(1, 2, 5, 4), mg.randn(1, 2, 5, 6), enable_gqa=True)
    with pytest.raises(ShapeError):
        sdpa(mg.randn(4), k, v)
    with pytest.raises(DTypeError):
        sdpa(q.double(), k, v)
    with pytest.raises(DTypeError):
        sdpa(None, k, v)
    with pytest.raises(InvalidArgumentError):
        sdpa(q, k, v, dropout_p=2.0)


# ------------------------------------------------------------------ the fused SDPA op
def _qkv(seed, lead=(2, 3), L=5, S=7, E=4, Ev=3, grad=True):
    rng = np.random.default_rng(seed)
    return [T(rng.standard_normal(lead + shp), grad) for shp in ((L, E), (S, E), (S, Ev))]


@pytest.mark.parametrize("mode", ["kernels", "reference"])
@pytest.mark.parametrize("causal", [False, True])
@given(seed=st.integers(0, 2 ** 16), lead=st.sampled_from([(), (2,), (1, 3)]), L=st.integers(1, 6),
       S=st.integers(1, 6))
def test_sdpa_op_fast_backward_equals_formula(mode, causal, seed, lead, L, S):
    """The SDPA op: its fast_backward (the sdpa_backward kernel) == its backward formula, kernels forced and on
    the reference; and both == the gradient of the composed reference."""
    q, k, v = _qkv(seed, lead, L, S)
    op = lambda q, k, v: attn.SDPA.apply(q, k, v, causal, 0.7)  # noqa: E731
    assert_paths_equal(op, [q, k, v], mode, "sdpa_backward", seed)
    out = op(q, k, v)
    ref = attn.sdpa_reference(q, k, v, is_causal=causal, scale=0.7)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = mg.tensor(np.random.default_rng(seed + 1).standard_normal(out.shape))
    for a, b in zip(mg.grad(out, [q, k, v], g), mg.grad(ref, [q, k, v], g)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-11)


def test_sdpa_takes_the_fused_op_only_where_its_kernel_applies():
    from minigen.kernels import dispatch

    q, k, v = _qkv(0)
    with dispatch.use_kernels():
        fused = sdpa(q, k, v, is_causal=True)
        masked = sdpa(q, k, v, attn_mask=mg.ones(5, 7, dtype=mg.bool_))
    with dispatch.use_reference():
        ref = sdpa(q, k, v, is_causal=True)
    assert ref.grad_fn.name != "SDPABackward" and masked.grad_fn.name != "SDPABackward"
    if dispatch.available():
        assert fused.grad_fn.name == "SDPABackward"
    np.testing.assert_allclose(fused.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)


@given(seed=st.integers(0, 2 ** 16), lead=st.sampled_from([(), (2,), (1, 2)]), L=st.integers(1, 3),
       S=st.integers(1, 3), E=st.integers(1, 3), causal=st.booleans(), scale=st.floats(0.2, 1.5))
def test_sdpa_op_gradcheck_and_gradgradcheck(seed, lead, L, S, E, causal, scale):
    q, k, v = _qkv(seed, lead, L, S, E, E)
    fn = lambda q, k, v: attn.SDPA.apply(q, k, v, causal, scale)  # noqa: E731
    assert gradcheck(fn, (q, k, v))
    assert gradgradcheck(fn, (q, k, v))


def test_sdpa_forward_ref_by_hand():
    # one query, two keys with scores 0 and log 3 (scale 1): weights 1/4, 3/4
    q = np.array([[1.0]])
    k = np.array([[0.0], [np.log(3.0)]])
    v = np.array([[4.0, 0.0], [0.0, 8.0]])
    out, lse = attn.sdpa_forward_ref(q, k, v, False, 1.0)
    np.testing.assert_allclose(out, [[1.0, 6.0]], rtol=1e-14)
    np.testing.assert_allclose(lse, [np.log(4.0)], rtol=1e-14)
    out, lse = attn.sdpa_forward_ref(q, k, v, True, 1.0)  # causal: query 0 sees key 0 only
    np.testing.assert_allclose(out, [[4.0, 0.0]])
