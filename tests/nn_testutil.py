"""Helpers for the nn tests: gradcheck a module's parameters and inputs, compare a module with torch.

(Not a test file itself; imported by tests/test_nn_*.py.)
"""
from __future__ import annotations

import numpy as np
from hypothesis import settings

import minigen as mg
from minigen.testing import compare_with_torch as _compare, gradcheck


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
    The comparison is :func:`minigen.testing.compare_with_torch` with the parameters as extra leaves.
    """
    m.double()
    tm.double()
    load_from_torch(m, tm)
    xm = [mg.tensor(x, requires_grad=x.dtype.kind == "f" and check_grads) if isinstance(x, np.ndarray) else x
          for x in inputs]
    pm = dict(m.named_parameters())
    tnames = [k for k, _ in tm.named_parameters()]
    assert list(pm) == tnames, (list(pm), tnames)
    outs = _compare(lambda *xs: call(m, list(xs)) if call else m(*xs),
                    lambda *xs: tcall(tm, list(xs)) if tcall else tm(*xs), xm, rtol=rtol, atol=atol,
                    check_dtype=False, check_grad=check_grads, seed=seed,
                    params=(list(pm.values()), [p for _, p in tm.named_parameters()]))
    if check_grads:  # leave the gradients in .grad too, for callers that inspect them
        diff = [o for o in outs if o.requires_grad]
        if diff:
            rng = np.random.default_rng(seed)
            sum((o * mg.tensor(rng.standard_normal(o.shape))).sum() for o in diff).backward()
    return outs
