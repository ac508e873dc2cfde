"""PyTorch as a test oracle: convert tensors both ways and compare an op with its torch twin.

``compare_with_torch(fn_mg, fn_torch, inputs)`` runs ``fn_mg(*inputs)`` and ``fn_torch(*to_torch(inputs))``
on the same values and checks, for every output ``y`` (a Tensor or a tuple/list of them):

    forward:   y_mg == y_torch                          (shape, values; dtype unless check_dtype=False)
    backward:  d<v, y_mg>/dx == d<v, y_torch>/dx         for every input x with requires_grad

with one random cotangent ``v`` per differentiable output (``numpy.random.default_rng(seed)``), i.e. the
vector-Jacobian products of both libraries. A gradient that one library leaves undefined (``None``,
e.g. an unused input) counts as zeros. Non-Tensor inputs (ints, tuples, strings) are passed to both
functions unchanged.

PyTorch is never a dependency of minigen: this module imports ``torch`` only when called, so tests
should do ``pytest.importorskip("torch")`` first.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor

__all__ = ["to_torch", "from_torch", "to_numpy", "compare_with_torch"]


def to_numpy(x):
    """A host NumPy copy of a Tensor's (or an array's) values (CuPy arrays are copied off the device)."""
    a = x.array if isinstance(x, Tensor) else x
    if type(a) is not np.ndarray and hasattr(a, "get"):
        a = a.get()
    return np.array(a)


def to_torch(x, requires_grad=None):
    """A torch tensor with a copy of ``x``'s values (a Tensor or a NumPy/CuPy array).

    ``requires_grad``: None keeps the Tensor's flag (False for arrays); float dtypes only."""
    import torch

    arr = to_numpy(x)
    rg = (x.requires_grad if isinstance(x, Tensor) else False) if requires_grad is None else bool(requires_grad)
    t = torch.tensor(arr)
    if rg and arr.dtype.kind == "f":
        t.requires_grad_(True)
    return t


def from_torch(t, requires_grad=None):
    """A minigen Tensor with a copy of torch tensor ``t``'s values (``requires_grad`` None keeps t's flag)."""
    import minigen as mg

    rg = t.requires_grad if requires_grad is None else bool(requires_grad)
    return mg.tensor(t.detach().cpu().numpy().copy(), requires_grad=rg)


def _outputs(res, kind):
    if isinstance(res, kind):
        return [res]
    if isinstance(res, (tuple, list)):
        out = []
        for r in res:
            out += _outputs(r, kind)
        return out
    return []


def _dtype_name(t):
    return str(t.dtype).replace("torch.", "")


def compare_with_torch(fn_mg, fn_torch, inputs, rtol=1e-10, atol=1e-12, grad_rtol=None, grad_atol=None,
                       check_dtype=True, check_grad=True, seed=0, params=None):
    """Assert that ``fn_mg(*inputs)`` and ``fn_torch(*torch_inputs)`` agree in value and in gradient.

    ``inputs``: a sequence; Tensors are converted with :func:`to_torch` (keeping ``requires_grad``), anything
    else is passed to both as is. Outputs may be a Tensor or a (nested) tuple/list of Tensors; they are
    matched in order. ``grad_rtol``/``grad_atol`` default to ``rtol``/``atol``. ``params``: an optional pair
    ``(minigen_tensors, torch_tensors)`` read by the functions but not passed to them (a module's parameters):
    their gradients are compared too. Returns the minigen outputs (their graph is kept: a caller may still
    call ``backward`` on them).
    Raises AssertionError naming the output or input that disagrees.
    """
    import torch

    import minigen as mg

    inputs = list(inputs)
    tin = [to_torch(x) if isinstance(x, Tensor) else x for x in inputs]
    outs = _outputs(fn_mg(*inputs), Tensor)
    touts = _outputs(fn_torch(*tin), torch.Tensor)
    assert len(outs) == len(touts), f"minigen gave {len(outs)} outputs, torch {len(touts)}"
    for k, (o, to) in enumerate(zip(outs, touts)):
        assert tuple(o.shape) == tuple(to.shape), f"output {k}: shape {tuple(o.shape)} != torch {tuple(to.shape)}"
        if check_dtype:
            assert str(o.dtype) == _dtype_name(to), f"output {k}: dtype {o.dtype} != torch {to.dtype}"
        np.testing.assert_allclose(to_numpy(o), to.detach().cpu().numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"output {k} (forward)")
    if not check_grad:
        return outs
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    mg_wrt, th_wrt = [inputs[i] for i in wrt], [tin[i] for i in wrt]
    names = [f"input {i}" for i in wrt]
    if params is not None:
        pm, pt = list(params[0]), list(params[1])
        assert len(pm) == len(pt), f"{len(pm)} minigen parameters, {len(pt)} torch parameters"
        mg_wrt, th_wrt = mg_wrt + pm, th_wrt + pt
        names += [f"parameter {j}" for j in range(len(pm))]
    diff = [k for k, (o, to) in enumerate(zip(outs, touts)) if to.requires_grad and o.dtype.kind == "f"]
    if not mg_wrt or not diff:
        return outs
    for k in diff:
        assert outs[k].requires_grad, f"output {k}: torch's requires grad, minigen's does not"
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(tuple(outs[k].shape)) for k in diff]
    gs = mg.grad([outs[k] for k in diff], mg_wrt,
                 grad_outputs=[mg.tensor(v.astype(to_numpy(outs[k]).dtype), device=outs[k].device)
                               for k, v in zip(diff, vs)], allow_unused=True, retain_graph=True)
    tgs = torch.autograd.grad([touts[k] for k in diff], th_wrt,
                              grad_outputs=[torch.tensor(v, dtype=touts[k].dtype) for k, v in zip(diff, vs)],
                              allow_unused=True)
    grtol = rtol if grad_rtol is None else grad_rtol
    gatol = atol if grad_atol is None else grad_atol
    for g, tg, x, name in zip(gs, tgs, mg_wrt, names):
        a = np.zeros(tuple(x.shape)) if g is None else to_numpy(g)
        b = np.zeros(tuple(x.shape)) if tg is None else tg.detach().cpu().numpy(force=True)  # force: ZeroTensor
        np.testing.assert_allclose(a, b, rtol=grtol, atol=gatol, err_msg=f"gradient of {name}")
    return outs
