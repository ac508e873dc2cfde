"""Flash-style SDPA kernel == the materialised-softmax NumPy reference (causal / not, tiles, dtypes)."""
import math

import numpy as np
from hypothesis import given, strategies as st

import minigen  # noqa: F401
from minigen.kernels import cpu_attention as A
from minigen.ops import attention as attention_ops

from conftest import requires_torch


def ref_sdpa(q, k, v, causal, scale):
    q, k, v = (a.astype(np.float64) for a in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) * scale
    if causal:
        Tq, Tk = s.shape[-2:]
        s = np.where(np.tril(np.ones((Tq, Tk), bool)), s, -np.inf)
    m = s.max(-1, keepdims=True)
    p = np.exp(s - m)
    lse = (m + np.log(p.sum(-1, keepdims=True)))[..., 0]
    p /= p.sum(-1, keepdims=True)
    return p @ v, p, lse


def ref_sdpa_bwd(dout, q, k, v, causal, scale):
    out, p, _ = ref_sdpa(q, k, v, causal, scale)
    dout = dout.astype(np.float64)
    dv = np.swapaxes(p, -1, -2) @ dout
    dp = dout @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    return ds @ k * scale, np.swapaxes(ds, -1, -2) @ q * scale, dv


# T up to 150 crosses the 64-key tile boundary (T not a multiple of the tile included)
@given(B=st.integers(1, 2), H=st.integers(1, 3), Tq=st.integers(1, 150), Tk=st.integers(1, 150),
       D=st.integers(1, 9), Dv=st.integers(1, 9), causal=st.booleans(),
       mode=st.sampled_from([(np.float32, "float32"), (np.float32, "float64"), (np.float64, "float64")]),
       seed=st.integers(0, 2**31), nc=st.booleans())
def test_sdpa_forward_backward(B, H, Tq, Tk, D, Dv, causal, mode, seed, nc):
    dt, acc = mode
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, H, Tq, D)).astype(dt)
    k = rng.standard_normal((B, H, Tk, D)).astype(dt)
    v = rng.standard_normal((B, H, Tk, Dv)).astype(dt)
    if nc:  # non-contiguous q: (B, T, H, D) memory transposed to (B, H, T, D)
        q = np.ascontiguousarray(q.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    scale = 1 / math.sqrt(D)
    out, lse = A.sdpa_forward(q, k, v, causal, None, acc)
    outr, _, lser = ref_sdpa(q, k, v, causal, scale)
    tol = dict(rtol=1e-4, atol=1e-5) if dt == np.float32 else dict(rtol=1e-10, atol=1e-11)
    assert out.dtype == dt and lse.dtype == np.float64  # running statistics in float64 (acc is ignored)
    np.testing.assert_allclose(out, outr, **tol)
    np.testing.assert_allclose(lse, lser, **tol)
    # the op file's reference of this kernel (minigen.ops.attention.sdpa_forward_ref) gives the same
    out_ref, lse_ref = attention_ops.sdpa_forward_ref(q, k, v, causal, scale)
    assert out_ref.dtype == dt and lse_ref.dtype == np.float64
    np.testing.assert_allclose(out, out_ref, **tol)
    np.testing.assert_allclose(lse, lse_ref, **tol)
    dout = rng.standard_normal(out.shape).astype(dt)
    dq, dk, dv = A.sdpa_backward(dout, q, k, v, out, lse, causal)
    for got, ref in zip((dq, dk, dv), ref_sdpa_bwd(dout, q, k, v, causal, scale)):
        np.testing.assert_allclose(got, ref, **tol)


def test_sdpa_hand_case():
    # one query, two keys with scores 0 and log 3 (scale 1): weights 1/4, 3/4
    q = np.array([[[[1.0]]]])
    k = np.array([[[[0.0], [math.log(3.0)]]]])
    v = np.array([[[[4.0], [8.0]]]])
    out, lse = A.sdpa_forward(q, k, v, False, 1.0)
    assert out[0, 0, 0, 0 ] == 7.0 and abs(lse[0, 0, 0] - math.log(4.0)) < 1e-15
    out, _ = A.sdpa_forward(np.ones((1, 1, 2, 1)), k, v, True, 1.0)  # causal: row 0 sees only key 0
    assert out[0, 0, 0, 0] == 4.0


def test_sdpa_parallel_path_gpt_shape():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((4, 4, 64, 32)).astype(np.float32) for _ in range(3))  # thread-pool path
    out, lse = A.sdpa_forward(q, k, v, True)
    np.testing.assert_allclose(out, ref_sdpa(q, k, v, True, 1 / math.sqrt(32))[0], rtol=1e-4, atol=1e-5)


@requires_torch
def test_sdpa_matches_torch():
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 70, 8, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    dy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    (y * dy).sum().backward()
    n = [t.detach().numpy() for t in (q, k, v)]
    out, lse = A.sdpa_forward(*n, True)
    np.testing.assert_allclose(out, y.detach().numpy(), rtol=1e-12, atol=1e-13)
    for got, t in zip(A.sdpa_backward(dy.numpy(), *n, out, lse, True), (q, k, v)):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-11, atol=1e-12)
