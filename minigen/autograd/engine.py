"""The backward engine: iterative topological order over graph nodes.

``backward(tensors, grad_tensors)`` walks the graph from the outputs to the
leaves in reverse topological order (an explicit stack, so a 10,000-op chain
does not touch Python's recursion limit), calls each node's ``backward`` once
with the *sum* of the gradients that reached it, and accumulates into leaf
``.grad``. ``grad(outputs, inputs)`` runs the same walk, only over nodes that
lead to ``inputs``, and returns their gradients instead.
"""
from __future__ import annotations

import numbers
from sys import getrefcount as _getrefcount

import numpy as np

from ..backend import get_array_module
from ..errors import AnomalyError, AutogradError, InplaceError
from ..tensor import Tensor
from .broadcast import sum_to
from .function import Context
from .grad_mode import STATE


class SliceGrad:
    """A gradient that is zero everywhere except ``x[index] = values``.

    The first-order backward of ``x[index]`` returns one of these instead of a full-size
    zeros array, and the engine adds it into the accumulated gradient in place: a loop
    that reads ``x[t]`` for t = 1..T then costs O(T) memory traffic in backward, not O(T^2).
    """

    __slots__ = ("shape", "dtype", "index", "values", "basic")

    def __init__(self, shape, index, values, basic):
        self.shape, self.index, self.values, self.basic = tuple(shape), index, values, basic
        self.dtype = values.dtype

    def add_into(self, arr):
        if self.basic:
            arr[self.index] += self.values
        else:
            xp = get_array_module(arr)
            (np.add.at if xp is np else xp.add.at)(arr, self.index, self.values)

    def materialize(self):
        arr = get_array_module(self.values).zeros(self.shape, dtype=self.values.dtype)
        self.add_into(arr)
        return Tensor._make(arr)


def _sum_grads(prev, gi, owned):
    """prev + gi for first-order accumulation; ``owned`` maps id -> tensors whose arrays the engine
    made itself (safe to update in place; kept alive so ids stay unique during the walk)."""
    if prev is None:
        return gi
    if type(prev) is SliceGrad:
        prev = prev.materialize()
        owned[id(prev)] = prev
    if type(gi) is SliceGrad:
        if id(prev) not in owned:
            prev = Tensor._make(prev.array.copy())
            owned[id(prev)] = prev
        gi.add_into(prev.array)
        return prev
    out = prev + gi
    owned[id(out)] = out
    return out


def _node(t):
    return t._ctx if t._ctx is not None else t


def _topo(roots):
    """Op nodes (Contexts) reachable from ``roots``, outputs first (reverse DFS postorder), and for each
    leaf how many of those ops read it.

    Leaves are not listed: they have no inputs; each is finished once the last op that reads it ran."""
    post = []
    pending = {}  # leaf -> number of listed ops with an edge to it
    done = set()
    expanded = set()
    stack = []
    for r in roots:
        if type(r) is Context:
            stack.append(r)
    while stack:
        n = stack[-1]
        if n in expanded:
            stack.pop()
            if n not in done:
                done.add(n)
                post.append(n)
            continue
        expanded.add(n)
        for p in n.next_nodes:
            if p is not None:
                if type(p) is Context:
                    if p not in expanded:
                        stack.append(p)
                else:
                    pending[p] = pending.get(p, 0) + 1
    post.reverse()
    return post, pending


def _check_versions(ctx):
    for i, v in ctx.saved:
        a = ctx.args[i]
        if a._vc[0] != v:
            raise InplaceError(
                f"one of the tensors needed by {ctx.name} (argument {i}, shape {tuple(a.shape)}) "
                f"was modified by an in-place operation after it was saved for backward "
                f"(version {v} when saved, {a._vc[0]} now). Use an out-of-place op "
                f"(e.g. x = x + y instead of x += y) or .clone() before the in-place edit."
            )
    if ctx.output is not None and ctx.output._vc[0] != ctx.out_version:
        raise InplaceError(
            f"the output of {ctx.fn.__name__} (shape {tuple(ctx.output.shape)}) is needed by its backward "
            f"but was modified by an in-place operation afterwards"
        )


def _unbroadcast(gi, shape, create_graph):
    """Sum a gradient of a broadcast shape back to ``shape``: the one place broadcasting is undone.

    forward ``y = f(broadcast(a))``  ->  ``da = sum of dy over the broadcast axes``.
    """
    gshape = gi.shape
    lead = len(gshape) - len(shape)
    if lead < 0:
        raise AutogradError(f"internal: gradient of shape {tuple(gshape)} for an argument of shape {tuple(shape)}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1
    )
    for i, n in enumerate(shape):
        if n != 1 and gshape[lead + i] != n:
            raise AutogradError(
                f"internal: gradient of shape {tuple(gshape)} does not broadcast to argument shape {tuple(shape)}")
    if create_graph:
        return sum_to(gi, shape)
    arr = gi.array.sum(axis=axes, keepdims=True) if axes else gi.array
    return Tensor._make(arr.reshape(shape))


def _wrap_fast(out):
    if type(out) is not tuple:
        out = (out,) if not isinstance(out, list) else tuple(out)
    wrapped = []
    for o in out:
        wrapped.append(o if (o is None or type(o) is SliceGrad) else Tensor._make(o))
    return wrapped


def _finish_leaf(leaf, grads, results, create_graph, held=0):
    """A leaf whose gradient is complete: its hooks, then ``.grad`` (or the result slot of ``mg.grad``:
    ``results`` is not None) and its post-accumulate hooks. ``held``: references to the gradient tensor the
    caller still holds (see ``_accumulate``'s ``steal``)."""
    g = grads.pop(leaf, None)
    if g is None:
        return
    if type(g) is SliceGrad:
        g = g.materialize()
    if leaf._hooks:
        for h in leaf._hooks:
            r = h(g)
            if r is not None:
                g = _checked_hook_result(r, g, "a tensor hook")
    if results is not None:
        if leaf in results:
            results[leaf] = g if results[leaf] is None else results[leaf] + g
    else:
        _accumulate(leaf, g, create_graph, held)
        if leaf._post_hooks:
            for h in leaf._post_hooks:
                h(leaf)


def _run(roots, root_grads, retain_graph, create_graph, capture=None):
    """Core walk. ``capture``: list of nodes whose incoming gradient is returned
    (mg.grad); when None, gradients are accumulated into leaf ``.grad``.

    A leaf is finished (hooks, ``.grad``, post-accumulate hooks) as soon as the last op that
    reads it has run, not at the end of the walk: data-parallel training starts reducing the
    first gradients while the rest of the backward still runs.
    """
    nodes = []
    for r in roots:
        nodes.append(r._ctx if r._ctx is not None else r)
    order, pending = _topo(nodes)
    run = results = None
    if capture is not None:
        # prune: only nodes with a path to one of the captured nodes need their backward run
        needed = set(capture)
        run = set()
        for n in reversed(order):
            for p in n.next_nodes:
                if p is not None and p in needed:
                    needed.add(n)
                    run.add(n)
                    break
        results = dict.fromkeys(capture)
    grads = {}   # node -> gradient reaching it so far (nodes hash by identity)
    owned = {}
    # pending: leaf -> how many ops still have to pass it a gradient
    root_leaves = []
    for n, g in zip(nodes, root_grads):
        grads[n] = g if n not in grads else grads[n] + g
        if type(n) is not Context and n not in pending:
            root_leaves.append(n)

    anomaly = STATE.anomaly
    prev_mode = STATE.enabled
    STATE.enabled = create_graph
    try:
        for ctx in order:
            g = grads.pop(ctx, None)
            if g is not None and capture is not None:
                if ctx in results:
                    results[ctx] = (g.materialize() if type(g) is SliceGrad else g) if results[ctx] is None \
                        else results[ctx] + g
                if ctx not in run:
                    g = None
            if g is not None:
                if type(g) is SliceGrad:
                    g = g.materialize()
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
                            g = _checked_hook_result(r, g, "a tensor hook")
                if ctx.retained is not None and capture is None:
                    t = ctx.retained()
                    if t is not None:
                        _accumulate(t, g, create_graph)
                if ctx.saved or ctx.output is not None:
                    _check_versions(ctx)
                fn = ctx.fn
                if anomaly:
                    # ops run inside a backward are checked as part of that backward, not as forwards
                    STATE.anomaly = False
                try:
                    gin = NotImplemented
                    if not create_graph and fn.fast_backward is not None:
                        gin = fn.fast_backward(ctx, g.array)
                        if gin is not NotImplemented:
                            gin = _wrap_fast(gin)
                    if gin is NotImplemented:
                        gin = fn.backward(ctx, g)
                finally:
                    if anomaly:
                        STATE.anomaly = True
                if type(gin) is not tuple and type(gin) is not list:
                    gin = (gin,)
                if anomaly:
                    _anomaly_backward(ctx, g, gin)
                args = ctx.args
                ng = len(gin)
                i = 0
                for p in ctx.next_nodes:
                    if p is not None:
                        gi = gin[i] if i < ng else None
                        if gi is not None:
                            shape = args[i].array.shape
                            if gi.shape != shape:
                                if type(gi) is SliceGrad:
                                    raise AutogradError(f"internal: {ctx.name} returned a sparse gradient of shape "
                                                        f"{tuple(gi.shape)} for argument {i} of shape {tuple(shape)}")
                                gi = _unbroadcast(gi, shape, create_graph)
                            prev = grads.get(p)
                            if prev is None:
                                grads[p] = gi
                            elif create_graph:
                                grads[p] = prev + gi
                            else:
                                grads[p] = _sum_grads(prev, gi, owned)
                        if type(p) is not Context:
                            # a leaf: finished once the last op that reads it has passed its gradient on
                            left = pending[p] - 1
                            pending[p] = left
                            if left == 0:  # the walk holds gi twice when it is the leaf's gradient: gin, gi
                                _finish_leaf(p, grads, results, create_graph, 2 if grads.get(p) is gi else 0)
                    i += 1
                if not retain_graph:
                    ctx.release()
            else:
                # no gradient reached this op: its leaves have one reader fewer to wait for
                for p in ctx.next_nodes:
                    if p is not None and type(p) is not Context:
                        left = pending[p] - 1
                        pending[p] = left
                        if left == 0:
                            _finish_leaf(p, grads, results, create_graph)
        for leaf in root_leaves:
            _finish_leaf(leaf, grads, results, create_graph)
    finally:
        STATE.enabled = prev_mode
    if capture is not None:
        return [results[c] for c in capture]
    return None


def _checked_hook_result(r, g, what):
    if not isinstance(r, Tensor):
        raise AutogradError(f"{what} must return a Tensor or None, got {type(r).__name__}")
    if r.shape != g.shape:
        from ..errors import ShapeError

        raise ShapeError(f"{what} returned a gradient of shape {tuple(r.shape)}; expected {tuple(g.shape)}")
    return r


def _accumulate(t, g, create_graph, steal=None):
    """``t.grad += g``: in place on an existing, writable NumPy gradient that records no graph (as PyTorch's
    AccumulateGrad: a tensor holding the old ``.grad`` sees the sum, its version counter bumped), otherwise
    a new tensor; ``create_graph`` keeps the sum differentiable.

    A first gradient is copied into ``.grad``, unless ``steal`` is given (a leaf's finished gradient; the
    number of references the engine's walk still holds to it) and nothing else can see its array: a NumPy
    array that views no other memory, is referenced only by the gradient tensor (no view of it, no second
    tensor), whose tensor is referenced only by the engine (``_finish_leaf``, this frame, and ``steal``
    more). Then the array itself becomes ``.grad`` (PyTorch's AccumulateGrad does the same when the
    gradient's use count is 1), saving one copy per parameter per step."""
    T = Tensor
    gd, td = g.array.dtype, t.array.dtype
    if gd is not td and gd != td:
        g = g.to(t.dtype)
    cur = t.grad
    if cur is None:
        if create_graph:
            t.grad = g
        else:
            ga = g.array
            # references: g (the caller's frame, this frame, getrefcount's argument, + steal held by the walk);
            # ga (g's attribute, ga, the argument). Any other holder (a hook that kept g, another tensor or a
            # view of the array, an upstream gradient still in use) raises a count, and the array is copied.
            if (steal is not None and type(ga) is np.ndarray and ga.base is None and ga.flags.writeable
                    and _getrefcount(g) <= 3 + steal and _getrefcount(ga) <= 3):
                t.grad = T._make(ga, False)
            else:
                t.grad = T._make(ga.copy(), False)
    elif create_graph:
        t.grad = cur + g
    else:
        ca, ga = cur.array, g.array
        if (type(ca) is np.ndarray and not cur.requires_grad and ca.dtype is ga.dtype and ca.shape == ga.shape
                and ca.flags.writeable):
            ca += ga
            cur._vc[0] += 1
        else:
            t.grad = T._make(ca + ga, False)


def _anomaly_backward(ctx, g, gin):
    from ..backend import get_array_module

    xp = get_array_module(g.array)
    if not bool(xp.isfinite(g.array).all()):
        return
    for i, gi in enumerate(gin):
        arr = None if gi is None else (gi.values if type(gi) is SliceGrad else gi.array)
        if arr is not None and arr.dtype.kind == "f" and not bool(xp.isfinite(arr).all()):
            raise AnomalyError(
                f"anomaly: backward of {ctx.fn.__name__} produced NaN/Inf in the gradient of argument {i} "
                f"from a finite incoming gradient; the forward op was called at {ctx.stack or '<unknown>'}"
            )


def _make_grads(outputs, grad_outputs, create_graph):
    T = Tensor
    gs = []
    for i, o in enumerate(outputs):
        g = grad_outputs[i] if grad_outputs is not None else None
        if g is None:
            if o.array.size != 1:
                raise AutogradError(
                    f"grad can be implicitly created only for scalar outputs; output {i} has shape "
                    f"{tuple(o.shape)}: pass gradient= (or grad_outputs=) of that shape"
                )
            g = T._make(_ones_like(o.array), False)  # d o / d o = 1
        else:
            if not isinstance(g, T):
                g = _as_grad(g, o, i)
            if g.shape != o.shape:
                from ..errors import ShapeError

                raise ShapeError(f"gradient has shape {tuple(g.shape)} but output {i} has shape {tuple(o.shape)}")
            if not create_graph:
                g = g.detach()
        gs.append(g)
    return gs


def _as_grad(g, o, i):
    """A non-Tensor gradient (number, list, array) for output ``i`` as a Tensor of the output's dtype."""
    from ..errors import DTypeError

    if isinstance(g, (str, bytes)) or not isinstance(g, (numbers.Number, np.generic, np.ndarray, list, tuple)):
        raise DTypeError(f"the gradient for output {i} (shape {tuple(o.shape)}) must be a Tensor or an array of "
                         f"numbers, got {type(g).__name__}")
    try:
        a = np.asarray(g, dtype=o.dtype)
    except (TypeError, ValueError, OverflowError) as e:
        raise DTypeError(f"the gradient for output {i} (shape {tuple(o.shape)}, dtype {o.dtype}) cannot be read "
                         f"from {type(g).__name__}: {e}") from None
    return Tensor._make(a, False)


def _tensor_list(v, op: str, what: str) -> list:
    """``v`` (a Tensor or an iterable of Tensors) as a list of Tensors; DTypeError naming what it got."""
    from ..argcheck import check_iterable, check_tensor

    if isinstance(v, Tensor):
        return [v]
    items = check_iterable(v, op, what)
    for k, t in enumerate(items):
        check_tensor(t, op, f"{what}[{k}]")
    return items


def _grad_list(gs, n: int, op: str, what: str):
    """The gradients given for ``n`` outputs: None, or a list/tuple of ``n`` (each None, a Tensor or numbers)."""
    if gs is None:
        return None
    from ..errors import InvalidArgumentError

    if isinstance(gs, Tensor) or (n == 1 and not isinstance(gs, (list, tuple))):
        return [gs]
    if not isinstance(gs, (list, tuple)):
        raise InvalidArgumentError(f"{op}: {what} must be a list of tensors (one per output), got "
                                   f"{type(gs).__name__}")
    if len(gs) != n:
        raise InvalidArgumentError(f"{op}: {what} has {len(gs)} entries for {n} output(s)")
    return list(gs)


def _ones_like(a):
    if type(a) is np.ndarray:
        if not a.ndim:
            return np.array(1, dtype=a.dtype)
        return np.ones(a.shape, a.dtype)
    from ..backend import get_array_module

    return get_array_module(a).ones_like(a)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaf) into every leaf's ``.grad`` (``torch.autograd.backward``)."""
    T = Tensor
    if type(tensors) is T:  # the common call, t.backward()
        if grad_tensors is not None and not isinstance(grad_tensors, (list, tuple)):
            grad_tensors = [grad_tensors]
        tensors = [tensors]
    else:
        tensors = _tensor_list(tensors, "backward", "tensors")
    if grad_tensors is not None:
        grad_tensors = _grad_list(grad_tensors, len(tensors), "backward", "grad_tensors")
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
        inputs = _tensor_list(inputs, "backward", "inputs")
        res = _run(tensors, gs, retain_graph, create_graph, capture=[_node(i) for i in inputs])
        for t, g in zip(inputs, res):
            if g is not None:
                _accumulate(t, g, create_graph)
        return
    _run(tensors, gs, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of ``outputs`` w.r.t. ``inputs`` (``torch.autograd.grad``); ``.grad`` is not touched."""
    T = Tensor
    single = isinstance(inputs, T)
    outputs = _tensor_list(outputs, "grad", "outputs")
    inputs = _tensor_list(inputs, "grad", "inputs")
    if grad_outputs is not None and isinstance(grad_outputs, T):
        grad_outputs = [grad_outputs]
    grad_outputs = _grad_list(grad_outputs, len(outputs), "grad", "grad_outputs")
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
