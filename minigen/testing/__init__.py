"""``minigen.testing``: gradient checks and Hypothesis strategies, a public API.

``gradcheck(fn, inputs)`` compares autograd with float64 central differences.
It checks the vector-Jacobian product against a random cotangent ``v``:

    analytic:  d<v, fn(x)>/dx            (one backward pass)
    numeric:   (<v, fn(x + eps e_i)> - <v, fn(x - eps e_i)>) / (2 eps)   for every element i

A wrong gradient passes only if its error is exactly orthogonal to a random
``v``, which happens with probability zero. On failure the report names the
input, the index, both values and the difference.

``gradgradcheck(fn, inputs)`` runs gradcheck on the function
``(x, v) -> grad(<v, fn(x)>, x, create_graph=True)``, i.e. it checks the
backward's own backward (what WGAN-GP's gradient penalty needs).

``compare_with_torch(fn_mg, fn_torch, inputs)`` (with ``to_torch`` / ``from_torch``) checks an op against
its PyTorch twin, forward and vector-Jacobian products (see :mod:`minigen.testing.torch_compare`).
"""
from __future__ import annotations

import numpy as np

from ..autograd.engine import grad as _grad
from ..errors import MinigenError
from ..tensor import Tensor

from .torch_compare import compare_with_torch, from_torch, to_numpy, to_torch

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError", "compare_with_torch", "to_torch", "from_torch",
           "to_numpy"]


class GradcheckError(MinigenError, AssertionError):
    """Autograd and finite differences disagree (the message says where)."""


def _outputs(res):
    if isinstance(res, Tensor):
        return [res]
    return [r for r in res if isinstance(r, Tensor)]


def _dot(outs, vs):
    total = 0.0
    for o, v in zip(outs, vs):
        if o is None or v is None:
            continue
        total += float(np.sum(np.asarray(o.array, dtype=np.float64) * v))
    return total


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0, nondet_tol=0.0):
    """Check autograd gradients of ``fn(*inputs)`` against central differences.

    ``inputs``: a tuple of Tensors (those with ``requires_grad`` are checked; use
    float64) and other arguments passed through. Returns True, or raises
    :class:`GradcheckError` (returns False when ``raise_exception=False``).
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input requires grad")
    for i in wrt:
        if inputs[i].dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; use float64 for finite differences")
    outs = _outputs(fn(*inputs))
    outs = [o for o in outs if o.dtype.kind == "f"]
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(o.shape) for o in outs]
    diff_outs = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
    if diff_outs:
        grads = _grad([o for o, _ in diff_outs], [inputs[i] for i in wrt],
                      grad_outputs=[Tensor._make(v.astype(o.dtype)) for o, v in diff_outs], allow_unused=True)
    else:
        grads = [None] * len(wrt)
    for gi, i in zip(grads, wrt):
        x = inputs[i]
        analytic = np.zeros(x.shape) if gi is None else np.asarray(gi.array, dtype=np.float64)
        if analytic.shape != x.shape:
            return _fail(raise_exception, f"input {i}: gradient shape {analytic.shape} != input shape {x.shape}")
        numeric = np.zeros(x.shape)
        # fn runs with grad mode on: gradgradcheck's fn itself calls autograd
        if True:
            for idx in np.ndindex(*x.shape):
                orig = x.array[idx]
                x.array[idx] = orig + eps
                fp = _dot(_outputs(fn(*inputs)), vs)
                x.array[idx] = orig - eps
                fm = _dot(_outputs(fn(*inputs)), vs)
                x.array[idx] = orig
                numeric[idx] = (fp - fm) / (2 * eps)
        bad = np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            idx = tuple(int(j) for j in np.argwhere(bad)[0])
            return _fail(
                raise_exception,
                f"gradcheck failed for input {i} (shape {tuple(x.shape)}) at index {idx}: "
                f"analytic {analytic[idx]:.8g}, numeric {numeric[idx]:.8g}, "
                f"difference {abs(analytic[idx] - numeric[idx]):.3g} > atol {atol} + rtol {rtol} * |numeric|; "
                f"{int(bad.sum())} of {bad.size} elements disagree",
            )
    return True


def _fail(raise_exception, msg):
    if raise_exception:
        raise GradcheckError(msg)
    return False


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=1):
    """Check second derivatives: gradcheck of ``(x, v) -> d<v, fn(x)>/dx`` (built with create_graph=True)."""
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    outs = [o for o in _outputs(fn(*inputs)) if o.dtype.kind == "f" and o.requires_grad]
    rng = np.random.default_rng(seed)
    if grad_outputs is None:
        grad_outputs = [Tensor._make(rng.standard_normal(o.shape)).requires_grad_(True) for o in outs]
    n = len(inputs)

    def first_grad(*args):
        xs, gos = args[:n], args[n:]
        o = [t for t in _outputs(fn(*xs)) if t.dtype.kind == "f" and t.requires_grad]
        gs = _grad(o, [xs[i] for i in wrt], grad_outputs=list(gos), create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_grad, inputs + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, seed=seed + 1)
