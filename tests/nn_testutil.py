"""Helpers for the nn tests: gradcheck a module's parameters and inputs, compare a module with torch.

(Not a test file itself; imported by tests/test_nn_*.py.)
"""
from __future__ import annotations

import numpy as np
from hypothesis import settings

import minigen as mg
from minigen.testing import gradcheck


def few(divisor=4):
    """Hypothesis settings with a fraction of the profile's examples (for expensive module gradchecks)."""
    return settings(max_examples=max(2, settings.default.max_examples // divisor))


def flat_tensors(out):
    if isinstance(out, mg.Tensor):
        return [out]
    res = []
    for o in out:
        if o is not None:
            res += flat_tensors(o)
    return res


def _flat_torch(out):
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    res = []
    for o in out:
        if o is not None:
            res += _flat_torch(o)
    return res


def gradcheck_module(m, *inputs, params=True, **kw):
    """gradcheck of ``m(*inputs)`` w.r.t. the float inputs that require grad and every parameter (float64)."""
    ps = list(m.parameters()) if params else []
    n = len(inputs)

    def fn(*args):
        return tuple(flat_tensors(m(*args[:n])))

    return gradcheck(fn, tuple(inputs) + tuple(ps), **kw)


def load_from_torch(m, tm):
    """Copy torch module ``tm``'s state dict into minigen module ``m`` (same key names required)."""
    res = m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()}, strict=True)
    assert res.missing_keys == [] and res.unexpected_keys == []
    return m


def compare_with_torch(m, tm, inputs, call=None, tcall=None, atol=1e-10, rtol=1e-8, check_grads=True, seed=0):
    """Same weights (via state_dict) and inputs in; same outputs, input gradients and parameter gradients out.

    ``inputs``: NumPy arrays (float arrays get requires_grad) or other arguments passed as they are.
    ``call(m, xs)`` / ``tcall(tm, xs)`` run the modules (default: ``m(*xs)``). Both run in float64.
    """
    import torch

    m.double()
    tm.double()
    load_from_torch(m, tm)
    xm, xt = [], []
    for x in inputs:
        if isinstance(x, np.ndarray):
            f = x.dtype.kind == "f"
            xm.append(mg.tensor(x, requires_grad=f and check_grads))
            xt.append(torch.tensor(x, requires_grad=f and check_grads))
        else:
            xm.append(x)
            xt.append(x)
    ym = flat_tensors(call(m, xm) if call else m(*xm))
    rt = tcall(tm, xt) if tcall else tm(*xt)
    yt = _flat_torch(rt)
    assert len(ym) == len(yt), (len(ym), len(yt))
    for a, b in zip(ym, yt):
        assert tuple(a.shape) == tuple(b.shape), (a.shape, b.shape)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=atol, rtol=rtol)
    if not check_grads:
        return ym
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(tuple(b.shape)) for b in yt]
    lm = sum((a * mg.tensor(v)).sum() for a, v in zip(ym, vs) if a.requires_grad)
    lt = sum((b * torch.tensor(v)).sum() for b, v in zip(yt, vs) if b.requires_grad)
    lm.backward()
    lt.backward()
    for a, b in zip(xm, xt):
        if isinstance(a, mg.Tensor) and a.requires_grad:
            assert (a.grad is None) == (b.grad is None)
            if a.grad is not None:
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=atol, rtol=rtol)
    pm = dict(m.named_parameters())
    tnames = [k for k, _ in tm.named_parameters()]
    assert list(pm) == tnames, (list(pm), tnames)
    for k, p in tm.named_parameters():
        if p.grad is None:
            assert pm[k].grad is None or not np.any(pm[k].grad.numpy()), k
        else:
            assert pm[k].grad is not None, k
            np.testing.assert_allclose(pm[k].grad.numpy(), p.grad.numpy(), atol=atol, rtol=rtol, err_msg=k)
    return ym
