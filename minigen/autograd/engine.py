"""The backward engine: iterative topological order over graph nodes.

``backward(tensors, grad_tensors)`` walks the graph from the outputs to the
leaves in reverse topological order (an explicit stack, so a 10,000-op chain
does not touch Python's recursion limit), calls each node's ``backward`` once
with the *sum* of the gradients that reached it, and accumulates into leaf
``.grad``. ``grad(outputs, inputs)`` runs the same walk, only over nodes that
lead to ``inputs``, and returns their gradients instead.
"""
from __future__ import annotations

import numpy as np

from ..errors import AnomalyError, AutogradError, InplaceError
from .function import Context, Tensor as _T_unused, user_stack_line  # noqa: F401
from .grad_mode import STATE, set_grad_enabled
from . import function as _fn


def _node(t):
    return t._ctx if t._ctx is not None else t


def _topo(roots):
    """Nodes reachable from ``roots``; returned outputs-first (reverse postorder)."""
    post, seen = [], set()
    stack = [(r, False) for r in roots]
    while stack:
        n, done = stack.pop()
        if done:
            post.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        if type(n) is Context:
            for p in n.next_nodes:
                if p is not None and id(p) not in seen:
                    stack.append((p, False))
    post.reverse()
    return post


def _check_versions(ctx):
    if ctx.fn.uses_inputs:
        T = _fn.Tensor
        for i, a in enumerate(ctx.args):
            if isinstance(a, T) and a._vc[0] != ctx.versions[i]:
                raise InplaceError(
                    f"one of the tensors needed by {ctx.name} (argument {i}, shape {tuple(a.shape)}) "
                    f"was modified by an in-place operation after it was saved for backward "
                    f"(version {ctx.versions[i]} when saved, {a._vc[0]} now). Use an out-of-place op "
                    f"(e.g. x = x + y instead of x += y) or .clone() before the in-place edit."
                )
    if ctx.output is not None and ctx.output._vc[0] != ctx.out_version:
        raise InplaceError(
            f"the output of {ctx.fn.__name__} (shape {tuple(ctx.output.shape)}) is needed by its backward "
            f"but was modified by an in-place operation afterwards"
        )


def _run(roots, root_grads, retain_graph, create_graph, capture=None):
    """Core walk. ``capture``: list of nodes whose incoming gradient is returned
    (mg.grad); when None, gradients are accumulated into leaf ``.grad``."""
    T = _fn.Tensor
    nodes = [_node(r) for r in roots]
    order = _topo(nodes)
    if capture is not None:
        # prune: only nodes with a path to one of the captured nodes need backward
        want = {id(c) for c in capture}
        needed = set(want)
        for n in reversed(order):
            if type(n) is Context and any(p is not None and id(p) in needed for p in n.next_nodes):
                needed.add(id(n))
        order = [n for n in order if id(n) in needed]
        results = {id(c): None for c in capture}
        # a node's backward runs only when one of its inputs still needs a gradient
        run = {id(n) for n in order if type(n) is Context and any(p is not None and id(p) in needed for p in n.next_nodes)}
    grads = {}
    for n, g in zip(nodes, root_grads):
        k = id(n)
        grads[k] = g if k not in grads else grads[k] + g
    anomaly = STATE.anomaly
    with set_grad_enabled(create_graph):
        for n in order:
            g = grads.pop(id(n), None)
            if g is None:
                continue
            if capture is not None and id(n) in results:
                prev = results[id(n)]
                results[id(n)] = g if prev is None else prev + g
            if type(n) is not Context:  # a leaf tensor
                if n._hooks:
                    for h in n._hooks:
                        r = h(g)
                        if r is not None:
                            g = r
                if capture is None:
                    _accumulate(n, g, create_graph)
                continue
            ctx = n
            if capture is not None and id(n) not in run:
                continue
            if ctx.freed:
                raise AutogradError(
                    f"trying to backward through the graph a second time (at {ctx.name}); its saved values "
                    f"were freed after the first backward. Pass retain_graph=True to the first backward "
                    f"if you need to call it again."
                )
            if ctx.hooks:
                for h in ctx.hooks:
                    r = h(g)
                    if r is not None:
                        g = r
            if ctx.retained is not None and capture is None:
                t = ctx.retained()
                if t is not None:
                    _accumulate(t, g, create_graph)
            _check_versions(ctx)
            gin = ctx.fn.backward(ctx, g)
            if type(gin) is not tuple:
                gin = (gin,) if not isinstance(gin, list) else tuple(gin)
            if anomaly:
                _anomaly_backward(ctx, g, gin)
            for i, p in enumerate(ctx.next_nodes):
                if p is None:
                    continue
                gi = gin[i] if i < len(gin) else None
                if gi is None:
                    continue
                a = ctx.args[i]
                if gi.shape != a.shape:
                    raise AutogradError(
                        f"internal: {ctx.name} returned a gradient of shape {tuple(gi.shape)} for argument {i} "
                        f"of shape {tuple(a.shape)}"
                    )
                k = id(p)
                prev = grads.get(k)
                grads[k] = gi if prev is None else prev + gi
            if not retain_graph:
                ctx.release()
    if capture is not None:
        return [results[id(c)] for c in capture]
    return None


def _accumulate(t, g, create_graph):
    T = _fn.Tensor
    if g.dtype != t.dtype:
        g = g.to(t.dtype)
    if t.grad is None:
        if create_graph:
            t.grad = g
        else:
            t.grad = T._make(g.data.copy(), False)
    else:
        if create_graph:
            t.grad = t.grad + g
        else:
            t.grad = T._make(t.grad.data + g.data, False)


def _anomaly_backward(ctx, g, gin):
    from ..backend import get_array_module

    xp = get_array_module(g.data)
    if not bool(xp.isfinite(g.data).all()):
        return
    for i, gi in enumerate(gin):
        if gi is not None and gi.dtype.kind == "f" and not bool(xp.isfinite(gi.data).all()):
            raise AnomalyError(
                f"anomaly: backward of {ctx.fn.__name__} produced NaN/Inf in the gradient of argument {i} "
                f"from a finite incoming gradient; the forward op was called at {ctx.stack or '<unknown>'}"
            )


def _make_grads(outputs, grad_outputs, create_graph):
    T = _fn.Tensor
    gs = []
    for i, o in enumerate(outputs):
        g = grad_outputs[i] if grad_outputs is not None else None
        if g is None:
            if o.data.size != 1:
                raise AutogradError(
                    f"grad can be implicitly created only for scalar outputs; output {i} has shape "
                    f"{tuple(o.shape)}: pass gradient= (or grad_outputs=) of that shape"
                )
            g = T._make(_ones_like(o.data), False)
        else:
            if not isinstance(g, T):
                g = T._make(np.asarray(g, dtype=o.dtype), False)
            if g.shape != o.shape:
                from ..errors import ShapeError

                raise ShapeError(f"gradient has shape {tuple(g.shape)} but output {i} has shape {tuple(o.shape)}")
            if not create_graph:
                g = g.detach()
        gs.append(g)
    return gs


def _ones_like(a):
    from ..backend import get_array_module

    return get_array_module(a).ones_like(a)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaf) into every leaf's ``.grad`` (``torch.autograd.backward``)."""
    T = _fn.Tensor
    if isinstance(tensors, T):
        tensors = [tensors]
        if grad_tensors is not None and not isinstance(grad_tensors, (list, tuple)):
            grad_tensors = [grad_tensors]
    tensors = list(tensors)
    for t in tensors:
        if not t.requires_grad:
            raise AutogradError(
                f"element of shape {tuple(t.shape)} does not require grad and has no grad_fn: "
                f"nothing to differentiate (did you forget requires_grad=True, or run it under no_grad?)"
            )
    if retain_graph is None:
        retain_graph = create_graph
    gs = _make_grads(tensors, grad_tensors, create_graph)
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, T) else list(inputs)
        res = _run(tensors, gs, retain_graph, create_graph, capture=[_node(i) for i in inputs])
        for t, g in zip(inputs, res):
            if g is not None:
                _accumulate(t, g, create_graph)
        return
    _run(tensors, gs, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of ``outputs`` w.r.t. ``inputs`` (``torch.autograd.grad``); ``.grad`` is not touched."""
    T = _fn.Tensor
    single = isinstance(inputs, T)
    outputs = [outputs] if isinstance(outputs, T) else list(outputs)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is not None and isinstance(grad_outputs, T):
        grad_outputs = [grad_outputs]
    for i, t in enumerate(inputs):
        if not isinstance(t, T) or not t.requires_grad:
            raise AutogradError(f"input {i} to grad() does not require grad")
    for t in outputs:
        if not t.requires_grad:
            raise AutogradError(f"output of shape {tuple(t.shape)} does not require grad and has no grad_fn")
    if retain_graph is None:
        retain_graph = create_graph
    gs = _make_grads(outputs, grad_outputs, create_graph)
    res = _run(outputs, gs, retain_graph, create_graph, capture=[_node(i) for i in inputs])
    for i, r in enumerate(res):
        if r is None and not allow_unused:
            raise AutogradError(
                f"input {i} (shape {tuple(inputs[i].shape)}) was not used to compute the outputs; "
                f"pass allow_unused=True to get None for it"
            )
    return tuple(res)
