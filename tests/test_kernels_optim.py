"""Fused Adam/AdamW/SGD kernels == the step-by-step NumPy reference of torch.optim's formulas."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen  # noqa: F401
from minigen.kernels import cpu_optim as O

from conftest import requires_torch

DTYPES = st.sampled_from([np.float32, np.float64])


def ref_adam(p, g, m, v, vmax, t, lr, b1, b2, eps, wd, amsgrad, decoupled, maximize):
    p, g = p.astype(np.float64), g.astype(np.float64)
    if maximize:
        g = -g
    if wd:
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    if amsgrad:
        vmax = np.maximum(vmax, v)
    denom = np.sqrt(vmax if amsgrad else v) / math.sqrt(1 - b2 ** t) + eps
    return p - lr / (1 - b1 ** t) * m / denom, m, v, vmax


@given(shapes=st.lists(st.lists(st.integers(1, 6), min_size=1, max_size=2), min_size=1, max_size=3),
       dt=DTYPES, seed=st.integers(0, 2**31), amsgrad=st.booleans(), decoupled=st.booleans(),
       maximize=st.booleans(), wd=st.sampled_from([0.0, 0.1]))
def test_adam(shapes, dt, seed, amsgrad, decoupled, maximize, wd):
    rng = np.random.default_rng(seed)
    ps = [rng.standard_normal(s).astype(dt) for s in shapes]
    ps[0] = np.asfortranarray(ps[0]) if ps[0].ndim == 2 else ps[0]  # non-contiguous param: updated in place
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    vm = [np.zeros_like(p) for p in ps]
    ref = [(p.astype(np.float64), np.zeros(p.shape), np.zeros(p.shape), np.zeros(p.shape)) for p in ps]
    hp = dict(lr=1e-2, b1=0.9, b2=0.99, eps=1e-8, wd=wd, amsgrad=amsgrad, decoupled=decoupled, maximize=maximize)
    for t in (1, 2, 3):
        gs = [rng.standard_normal(p.shape).astype(dt) for p in ps]
        ids = [id(p) for p in ps]
        O.adam_step(ps, gs, ms, vs, vm if amsgrad else None, t, lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8,
                    weight_decay=wd, amsgrad=amsgrad, decoupled=decoupled, maximize=maximize)
        assert [id(p) for p in ps] == ids
        ref = [ref_adam(r[0], g, r[1], r[2], r[3], t, **hp) for r, g in zip(ref, gs)]
    tol = dict(rtol=1e-5, atol=1e-6) if dt == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for p, m, v, r in zip(ps, ms, vs, ref):
        np.testing.assert_allclose(p, r[0], **tol)
        np.testing.assert_allclose(m, r[1], **tol)
        np.testing.assert_allclose(v, r[2], **tol)


def test_adam_hand_case_and_skipped_grad():
    # first step of Adam moves every parameter by lr * sign(g) (bias correction makes m/sqrt(v) = g/|g|)
    p = np.array([1.0, -2.0])
    q = np.array([5.0])
    O.adam_step([p, q], [np.array([3.0, -0.5]), None], [np.zeros(2), np.zeros(1)], [np.zeros(2), np.zeros(1)],
                steps=1, lr=0.1, eps=0.0)
    np.testing.assert_allclose(p, [0.9, -1.9], rtol=1e-14)
    assert q[0] == 5.0


@given(shapes=st.lists(st.lists(st.integers(1, 6), min_size=1, max_size=2), min_size=1, max_size=3),
       dt=DTYPES, seed=st.integers(0, 2**31), momentum=st.sampled_from([0.0, 0.9]), nesterov=st.booleans(),
       wd=st.sampled_from([0.0, 0.1]), damp=st.sampled_from([0.0, 0.3]), maximize=st.booleans())
def test_sgd(shapes, dt, seed, momentum, nesterov, wd, damp, maximize):
    nesterov = nesterov and momentum > 0 and damp == 0
    rng = np.random.default_rng(seed)
    ps = [rng.standard_normal(s).astype(dt) for s in shapes]
    bufs = [np.zeros_like(p) for p in ps] if momentum else None
    ref = [p.astype(np.float64) for p in ps]
    rbuf = [None] * len(ps)
    for t in (1, 2, 3):
        gs = [rng.standard_normal(p.shape).astype(dt) for p in ps]
        O.sgd_step(ps, gs, bufs, lr=0.1, momentum=momentum, dampening=damp, weight_decay=wd, nesterov=nesterov,
                   maximize=maximize, first_step=t == 1)
        for i, g in enumerate(gs):
            d = -g.astype(np.float64) if maximize else g.astype(np.float64)
            d = d + wd * ref[i]
            if momentum:
                rbuf[i] = d.copy() if rbuf[i] is None else momentum * rbuf[i] + (1 - damp) * d
                d = d + momentum * rbuf[i] if nesterov else rbuf[i]
            ref[i] = ref[i] - 0.1 * d
    tol = dict(rtol=1e-5, atol=1e-6) if dt == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for p, r in zip(ps, ref):
        np.testing.assert_allclose(p, r, **tol)


def test_large_param_parallel_path():
    rng = np.random.default_rng(0)
    p = rng.standard_normal(200_000).astype(np.float32)
    g = rng.standard_normal(200_000).astype(np.float32)
    r = ref_adam(p, g, 0, 0, 0, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False)[0]
    O.adam_step([p], [g], [np.zeros_like(p)], [np.zeros_like(p)], steps=1)
    np.testing.assert_allclose(p, r, rtol=1e-5, atol=1e-6)


@requires_torch
@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
def test_adam_matches_torch(cls):
    import torch

    torch.manual_seed(0)
    tp = [torch.randn(7, 3, dtype=torch.float64, requires_grad=True)]
    opt = getattr(torch.optim, cls)(tp, lr=0.01, betas=(0.9, 0.99), weight_decay=0.1, amsgrad=True)
    p = [tp[0].detach().numpy().copy()]
    m, v, vm = [np.zeros_like(p[0])], [np.zeros_like(p[0])], [np.zeros_like(p[0])]
    for t in range(1, 5):
        g = torch.randn(7, 3, dtype=torch.float64)
        tp[0].grad = g
        opt.step()
        O.adam_step(p, [g.numpy()], m, v, vm, t, lr=0.01, beta1=0.9, beta2=0.99, weight_decay=0.1, amsgrad=True,
                    decoupled=cls == "AdamW")
    np.testing.assert_allclose(p[0], tp[0].detach().numpy(), rtol=1e-13, atol=1e-14)
