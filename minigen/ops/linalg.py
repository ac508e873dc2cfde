"""Linear algebra: matmul (NumPy ``@`` semantics with batching and broadcasting, as PyTorch), linear,
mm/bmm/mv/dot/outer, addmm/baddbmm, einsum, tensordot.

``matmul`` is the core product: ``y = a @ b`` gives ``da = g @ b^T`` and ``db = a^T @ g`` (the engine
sums a gradient over the batch dims an operand was broadcast along).

``linear`` is the workhorse of every layer, so it has its own op: its weight
gradient is one (N, out)^T @ (N, in) product over all leading dims flattened,
never a per-batch product summed afterwards.

``einsum`` computes with ``xp.einsum``; its backward is again an einsum: for
``y = einsum("ij,jk->ik", A, B)`` the gradient of A is ``einsum("jk,ik->ij", B, g)``
— the other operands and the incoming gradient, contracted to A's subscripts.
Subscripts of A that appear nowhere else were summed away, so their gradient is
broadcast back; a subscript repeated in A (a diagonal, ``"ii->i"``) gets its
gradient put back on the diagonal with an identity matrix.
"""
from __future__ import annotations

import builtins
import string

import numpy as np

from ..autograd.broadcast import broadcast_to
from ..autograd.function import Function
from ..backend import get_array_module
from ..argcheck import brief, check_int_value, check_number, norm_dim
from ..errors import DTypeError, InvalidArgumentError, ShapeError
from ..tensor import Tensor, as_tensor
from .shape import reshape, transpose

__all__ = ["matmul", "linear", "bilinear", "mm", "bmm", "mv", "dot", "inner", "outer", "ger", "addmm", "baddbmm",
           "einsum", "tensordot", "diag"]

_int = builtins.int


# ------------------------------------------------------------------ matmul
class MatMul(Function):
    """y = a @ b  (batched over leading dims, broadcast; a 1-d operand is a row / column vector).

    da = g @ b^T,   db = a^T @ g   (on the operands promoted to matrices; the engine sums each back
    over the batch dims it was broadcast along).
    """

    reads = ((1,), (0,))

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(f"matmul: both arguments need at least 1 dimension, got shapes {tuple(a.shape)} "
                             f"and {tuple(b.shape)}")
        ka = a.shape[-1]
        kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if ka != kb:
            raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                             f"({ka} != {kb})")
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        a2 = reshape(a, (1,) + a.shape) if a.ndim == 1 else a      # (k,) -> (1, k)
        b2 = reshape(b, b.shape + (1,)) if b.ndim == 1 else b      # (k,) -> (k, 1)
        g2 = g
        if a.ndim == 1:
            g2 = reshape(g2, g2.shape[:-1] + (1,) + g2.shape[-1:]) if b.ndim > 1 else reshape(g2, g2.shape + (1,))
        if b.ndim == 1:
            g2 = reshape(g2, g2.shape + (1,))
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = MatMul.apply(g2, transpose(b2, -1, -2))           # (..., 1, k) broadcasts to a's (k,)
        if ctx.needs_input_grad[1]:
            if b2.ndim == 2 and a2.ndim > 2:
                # shared 2-d weight: one (k, B*n) @ (B*n, m) product instead of a batched one then a sum
                k, m = b2.shape
                gb = MatMul.apply(transpose(reshape(a2, (-1, k)), 0, 1), reshape(g2, (-1, m)))
            else:
                gb = MatMul.apply(transpose(a2, -1, -2), g2)
            if b.ndim == 1:
                gb = reshape(gb, gb.shape[:-1])                      # (..., k, 1) -> (..., k)
        return ga, gb


def _t(t, op, name):
    """A tensor argument (a NumPy array becomes a Tensor); numbers, None, lists... are a DTypeError."""
    if isinstance(t, Tensor):
        return t
    if isinstance(t, np.ndarray):
        return as_tensor(t)
    raise DTypeError(f"{op}: {name} must be a Tensor, got {brief(t)}")


def matmul(a, b):
    """``a @ b`` with NumPy / PyTorch semantics (1-d operands promoted, leading dims broadcast)."""
    return MatMul.apply(_t(a, "matmul", "input"), _t(b, "matmul", "other"))


# ------------------------------------------------------------------ linear
def _rows(shape):
    """Number of rows when all but the last dim are flattened."""
    n = 1
    for s in shape[:-1]:
        n *= s
    return n


class Linear(Function):
    """y = x W^T + b   (x: (..., in), W: (out, in), b: broadcastable to (..., out)).

    backward: dx = g W;   dW = g2^T x2 with g2, x2 the gradient and input with all leading
    dims flattened ((N, out) and (N, in));   db = g (the engine sums it over the broadcast dims).
    Leading dims are flattened so each product is one 2-d BLAS call.
    """

    reads = ((1,), (0,), ())

    @staticmethod
    def forward(ctx, x, w, b=None):
        n_out, n_in = w.shape
        y = (x.reshape(_rows(x.shape), n_in) @ w.T).reshape(x.shape[:-1] + (n_out,))
        if b is not None:
            if b.dtype == y.dtype and type(y) is type(b):
                y += b  # y is the product's fresh array: no second output array, one pass fewer
            else:
                y = y + b  # mixed dtypes promote as before
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.args[0], ctx.args[1]
        need = ctx.needs_input_grad
        n_out, n_in = w.shape
        g2 = reshape(g, (_rows(x.shape), n_out))
        gx = reshape(matmul(g2, w), x.shape) if need[0] else None
        gw = matmul(transpose(g2, 0, 1), reshape(x, (_rows(x.shape), n_in))) if need[1] else None
        return (gx, gw, g) if len(need) > 2 else (gx, gw)

    @staticmethod
    def fast_backward(ctx, g):
        """The same two products straight on the arrays (BLAS), without building graph nodes."""
        x, w = ctx.args[0].array, ctx.args[1].array
        need = ctx.needs_input_grad
        g2 = g.reshape(_rows(x.shape), w.shape[0])
        gx = (g2 @ w).reshape(x.shape) if need[0] else None
        gw = g2.T @ x.reshape(_rows(x.shape), w.shape[1]) if need[1] else None
        return (gx, gw, g) if len(need) > 2 else (gx, gw)


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` (PyTorch ``F.linear``); weight is (out_features, in_features)."""
    input, weight = _t(input, "linear", "input"), _t(weight, "linear", "weight")
    bias = None if bias is None else _t(bias, "linear", "bias")
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-d (out_features, in_features), got shape {tuple(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input of shape {tuple(input.shape)} does not fit weight of shape "
                         f"{tuple(weight.shape)} (input's last dim must be in_features={weight.shape[1]})")
    if bias is None:
        return Linear.apply(input, weight)
    out_shape = tuple(input.shape[:-1]) + (weight.shape[0],)
    try:
        ok = np.broadcast_shapes(tuple(bias.shape), out_shape) == out_shape
    except ValueError:
        ok = False
    if not ok:
        raise ShapeError(f"linear: bias of shape {tuple(bias.shape)} does not broadcast to the output shape "
                         f"{out_shape} (expected ({weight.shape[0]},))")
    return Linear.apply(input, weight, bias)


def bilinear(input1, input2, weight, bias=None):
    """``y_k = x1^T W_k x2 + b_k`` (PyTorch ``F.bilinear``; weight (out, in1, in2)), via einsum."""
    input1, input2 = _t(input1, "bilinear", "input1"), _t(input2, "bilinear", "input2")
    weight = _t(weight, "bilinear", "weight")
    if input1.ndim == 0 or input2.ndim == 0:
        raise ShapeError(f"bilinear: inputs must have at least 1 dim, got shapes {tuple(input1.shape)} and "
                         f"{tuple(input2.shape)}")
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] or input2.shape[-1] != weight.shape[2]:
        raise ShapeError(f"bilinear: inputs of shapes {tuple(input1.shape)}, {tuple(input2.shape)} do not fit "
                         f"weight of shape {tuple(weight.shape)} (out, in1, in2)")
    y = einsum("...i,kij,...j->...k", input1, weight, input2)
    return y + bias if bias is not None else y


# ------------------------------------------------------------------ products with shape checks
def _need(op, t, ndims, what):
    """``t`` as a Tensor with one of the ranks ``ndims``."""
    t = _t(t, op, what)
    if t.ndim not in ndims:
        exp = " or ".join(f"{n}-d" for n in ndims)
        raise ShapeError(f"{op}: {what} must be {exp}, got shape {tuple(t.shape)}")
    return t


def mm(input, mat2):
    """Matrix product of two 2-d tensors."""
    input = _need("mm", input, (2,), "input")
    mat2 = _need("mm", mat2, (2,), "mat2")
    if input.shape[1] != mat2.shape[0]:
        raise ShapeError(f"mm: shapes {tuple(input.shape)} and {tuple(mat2.shape)} cannot be multiplied "
                         f"({input.shape[1]} != {mat2.shape[0]})")
    return matmul(input, mat2)


def bmm(input, mat2):
    """Batched matrix product: (B, n, k) @ (B, k, m) -> (B, n, m); no broadcasting."""
    input = _need("bmm", input, (3,), "input")
    mat2 = _need("bmm", mat2, (3,), "mat2")
    if input.shape[0] != mat2.shape[0]:
        raise ShapeError(f"bmm: batch sizes differ: input {tuple(input.shape)}, mat2 {tuple(mat2.shape)}")
    if input.shape[2] != mat2.shape[1]:
        raise ShapeError(f"bmm: shapes {tuple(input.shape)} and {tuple(mat2.shape)} cannot be multiplied "
                         f"({input.shape[2]} != {mat2.shape[1]})")
    return matmul(input, mat2)


def mv(input, vec):
    """Matrix (n, m) times vector (m,) -> (n,)."""
    input = _need("mv", input, (2,), "input")
    vec = _need("mv", vec, (1,), "vec")
    if input.shape[1] != vec.shape[0]:
        raise ShapeError(f"mv: matrix of shape {tuple(input.shape)} and vector of shape {tuple(vec.shape)} "
                         f"do not fit ({input.shape[1]} != {vec.shape[0]})")
    return matmul(input, vec)


def dot(input, other):
    """Inner product of two 1-d tensors of the same length (a 0-d result)."""
    input = _need("dot", input, (1,), "input")
    other = _need("dot", other, (1,), "other")
    if input.shape != other.shape:
        raise ShapeError(f"dot: 1-d tensors must have the same length, got {tuple(input.shape)} and "
                         f"{tuple(other.shape)}")
    return matmul(input, other)


def inner(input, other):
    """Sum over the last dims: ``einsum('...i,...j->' ...)`` as NumPy/PyTorch ``inner``."""
    input, other = _t(input, "inner", "input"), _t(other, "inner", "other")
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise ShapeError(f"inner: last dims must match, got shapes {tuple(input.shape)} and {tuple(other.shape)}")
    a = string.ascii_letters[:input.ndim - 1]
    b = string.ascii_letters[input.ndim - 1:input.ndim + other.ndim - 2]
    return einsum(f"{a}z,{b}z->{a}{b}", input, other)


def outer(input, vec2):
    """Outer product of two 1-d tensors: y[i, j] = a[i] * b[j]."""
    input = _need("outer", input, (1,), "input")
    vec2 = _need("outer", vec2, (1,), "vec2")
    return reshape(input, (input.shape[0], 1)) * reshape(vec2, (1, vec2.shape[0]))


ger = outer


def addmm(input, mat1, mat2, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)`` (input broadcast; with beta=0 input is ignored, NaN included)."""
    input = _t(input, "addmm", "input")
    p = mm(mat1, mat2)
    return _add_scaled(input, p, beta, alpha, "addmm")


def baddbmm(input, batch1, batch2, beta=1, alpha=1):
    """``beta * input + alpha * bmm(batch1, batch2)``."""
    input = _t(input, "baddbmm", "input")
    p = bmm(batch1, batch2)
    return _add_scaled(input, p, beta, alpha, "baddbmm")


def _add_scaled(input, p, beta, alpha, op):
    check_number(beta, op, "beta"), check_number(alpha, op, "alpha")
    try:
        ok = np.broadcast_shapes(tuple(input.shape), tuple(p.shape)) == tuple(p.shape)
    except ValueError:
        ok = False
    if not ok:
        raise ShapeError(f"{op}: input of shape {tuple(input.shape)} does not broadcast to the product's shape "
                         f"{tuple(p.shape)}")
    if alpha != 1:
        p = p * alpha
    if beta == 0:
        return p
    return p + (input if beta == 1 else input * beta)


# ------------------------------------------------------------------ einsum
class Einsum(Function):
    """y = einsum("t_1,...,t_n->out", x_1, ..., x_n)  (explicit letters only; see :func:`einsum`).

    backward: dx_k = einsum("t_1,..(without t_k)..,t_n,out->t_k", x_1, .., g, ..), with letters
    of t_k found in no other term broadcast back and repeated letters of t_k (diagonals) put
    back on the diagonal via identity matrices.
    """

    reads = None  # the gradient of each operand reads every other operand: all of them are saved

    @staticmethod
    def forward(ctx, spec, *arrays):
        terms, out, sizes = spec
        xp = get_array_module(arrays[0])
        eq = ",".join(terms) + "->" + out
        return xp.einsum(eq, *arrays, optimize=len(arrays) > 2)

    @staticmethod
    def backward(ctx, g):
        (terms, out, sizes), ops = ctx.args[0], ctx.args[1:]
        grads = [None]
        for k, t in enumerate(terms):
            if not ctx.needs_input_grad[k + 1]:
                grads.append(None)
                continue
            other_terms = [terms[j] for j in range(len(terms)) if j != k] + [out]
            other_ops = [ops[j] for j in range(len(ops)) if j != k] + [g]
            have = set("".join(other_terms))
            uniq = "".join(dict.fromkeys(t))
            avail = "".join(c for c in uniq if c in have)
            gk = _apply(other_terms, avail, sizes, other_ops)
            if avail != uniq:  # letters summed away inside operand k alone: broadcast back
                gk = reshape(gk, tuple(sizes[c] if c in avail else 1 for c in uniq))
                gk = broadcast_to(gk, tuple(sizes[c] for c in uniq))
            if uniq != t:  # repeated letters: put the gradient on the diagonal
                gk = _undiagonal(gk, uniq, t, sizes, terms, out)
            a = ops[k]
            grads.append(gk if gk.dtype == a.dtype else gk.to(a.dtype))
        return tuple(grads)


def _apply(terms, out, sizes, ops):
    return Einsum.apply((tuple(terms), out, sizes), *ops)


def _undiagonal(gk, uniq, t, sizes, terms, out):
    """From a gradient over the unique letters of ``t`` to one over ``t`` (zero off the diagonals)."""
    used = set("".join(terms) + out)
    fresh = iter(c for c in string.ascii_letters if c not in used)
    seen, new_t, eye_terms, eyes = set(), "", [], []
    xp = get_array_module(gk.array)
    for c in t:
        if c not in seen:
            seen.add(c)
            new_t += c
            continue
        try:
            f = next(fresh)
        except StopIteration:
            raise InvalidArgumentError("einsum: too many subscripts to differentiate a repeated subscript") from None
        new_t += f
        eye_terms.append(c + f)
        eyes.append(Tensor._make(xp.eye(sizes[c], dtype=gk.dtype)))
    sizes2 = dict(sizes)
    for et in eye_terms:
        sizes2[et[1]] = sizes[et[0]]
    return _apply([uniq] + eye_terms, new_t, _frozen(sizes2), [gk] + eyes)


class _frozen(dict):
    """A dict that can sit in an op's argument tuple (hashable, compact in error messages)."""

    def __hash__(self):
        return hash(tuple(sorted(self.items())))

    def __repr__(self):
        return "{" + ",".join(f"{k}:{v}" for k, v in sorted(self.items())) + "}"


def _parse_einsum(equation, shapes):
    """Explicit-letter terms and output for an equation with possible '...' and implicit output."""
    eq = equation.replace(" ", "")
    if eq.count("->") > 1:
        raise InvalidArgumentError(f"einsum: equation {equation!r} has more than one '->'")
    lhs, rhs = eq.split("->") if "->" in eq else (eq, None)
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise InvalidArgumentError(f"einsum: equation {equation!r} has {len(terms)} operand term(s) but "
                                   f"{len(shapes)} operand(s) were given")
    for t in terms + ([rhs] if rhs is not None else []):
        body = t.replace("...", "", 1)
        if any(c not in string.ascii_letters for c in body):
            raise InvalidArgumentError(f"einsum: bad subscripts {t!r} in {equation!r}: use letters a-z, A-Z and "
                                       f"at most one '...' per term")
    used = set(c for c in eq if c in string.ascii_letters)
    spare = [c for c in string.ascii_letters if c not in used]
    n_ell = []
    for i, (t, s) in enumerate(zip(terms, shapes)):
        n_letters = len(t.replace("...", ""))
        if "..." in t:
            if len(s) < n_letters:
                raise ShapeError(f"einsum: term {t!r} needs at least {n_letters} dims but operand {i} has shape "
                                 f"{tuple(s)}")
            n_ell.append(len(s) - n_letters)
        else:
            if len(s) != n_letters:
                raise ShapeError(f"einsum: term {t!r} has {n_letters} subscripts but operand {i} has shape "
                                 f"{tuple(s)} ({len(s)} dims)")
            n_ell.append(0)
    e = max(n_ell) if n_ell else 0
    if e > len(spare):
        raise InvalidArgumentError(f"einsum: too many broadcast dims in {equation!r}")
    ell = "".join(spare[:e])
    terms = [t.replace("...", ell[e - k:]) for t, k in zip(terms, n_ell)]
    if rhs is None:
        counts = {}
        for t in terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = rhs.replace("...", ell)
        if len(set(out)) != len(out):
            raise InvalidArgumentError(f"einsum: output subscripts {rhs!r} repeat a letter")
        missing = [c for c in out if not any(c in t for t in terms)]
        if missing:
            raise InvalidArgumentError(f"einsum: output subscript(s) {''.join(missing)!r} appear in no input term "
                                       f"of {equation!r}")
    return terms, out


def einsum(equation, *operands):
    """Einstein summation (PyTorch/NumPy ``einsum``): ``einsum("bij,bjk->bik", a, b)``.

    Supports an explicit output (``->``), the implicit output (letters seen once, alphabetical,
    after the ``...`` dims), ``...`` broadcast dims, repeated subscripts (diagonals and traces such
    as ``"ii->i"``, ``"ii"``) and size-1 broadcasting of a subscript across operands.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise InvalidArgumentError("einsum: no operands given")
    for i, op in enumerate(operands):
        if not isinstance(op, Tensor):
            raise InvalidArgumentError(f"einsum: operand {i} is a {type(op).__name__}, not a Tensor")
    terms, out = _parse_einsum(equation, [o.shape for o in operands])
    sizes = {}
    for i, (t, o) in enumerate(zip(terms, operands)):
        local = {}
        for c, s in zip(t, o.shape):
            if c in local and local[c] != s:
                raise ShapeError(f"einsum: subscript {c!r} is repeated in operand {i} (shape {tuple(o.shape)}) "
                                 f"with different sizes {local[c]} and {s}")
            local[c] = s
            if sizes.get(c, 1) != 1 and s != 1 and sizes[c] != s:
                raise ShapeError(f"einsum: subscript {c!r} has size {sizes[c]} in one operand and {s} in operand "
                                 f"{i} (shapes {[tuple(o.shape) for o in operands]}) in {equation!r}")
            if s != 1 or c not in sizes:
                sizes[c] = s
    ops = []
    for t, o in zip(terms, operands):
        want = tuple(sizes[c] for c in t)
        ops.append(o if o.shape == want else broadcast_to(o, want))
    return _apply(terms, out, _frozen(sizes), ops)


def tensordot(a, b, dims=2):
    """Contract the last ``dims`` dims of ``a`` with the first ``dims`` of ``b``, or the dim lists
    ``dims = (dims_a, dims_b)`` (built as an einsum)."""
    a, b = _t(a, "tensordot", "a"), _t(b, "tensordot", "b")
    if isinstance(dims, (list, tuple)):
        if len(dims) != 2:
            raise InvalidArgumentError(f"tensordot: dims must be an int or a pair of dim lists, got {dims!r}")
        da, db = dims
        da = [da] if isinstance(da, _int) else list(da)
        db = [db] if isinstance(db, _int) else list(db)
    else:
        n = check_int_value(dims, "tensordot", "dims")
        if n < 0 or n > min(a.ndim, b.ndim):
            raise InvalidArgumentError(f"tensordot: dims={n} is out of range for shapes {tuple(a.shape)} and "
                                       f"{tuple(b.shape)}")
        da, db = list(range(a.ndim - n, a.ndim)), list(range(n))
    da = [norm_dim(d, a.ndim) for d in da]
    db = [norm_dim(d, b.ndim) for d in db]
    if len(da) != len(db) or len(set(da)) != len(da) or len(set(db)) != len(db):
        raise InvalidArgumentError(f"tensordot: dim lists {da} and {db} must have the same length, no repeats")
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(f"tensordot: contracted dims differ: a dim {i} has size {a.shape[i]}, b dim {j} has "
                             f"size {b.shape[j]} (shapes {tuple(a.shape)}, {tuple(b.shape)})")
    letters = iter(string.ascii_letters)
    ta = [next(letters) for _ in range(a.ndim)]
    tb = [None] * b.ndim
    for i, j in zip(da, db):
        tb[j] = ta[i]
    tb = [c if c is not None else next(letters) for c in tb]
    out = "".join(c for i, c in enumerate(ta) if i not in da) + "".join(c for j, c in enumerate(tb) if j not in db)
    return einsum(f"{''.join(ta)},{''.join(tb)}->{out}", a, b)


# ------------------------------------------------------------------ diag
class Diag(Function):
    """1-d x -> the matrix with x on diagonal k;  2-d x -> its diagonal k (PyTorch's ``torch.diag``).

    forward  y = diag(x, k)       backward  dx = diag(g, k) (the other direction: put back / read off)
    ``shape``: the 2-d shape to build when called from a 2-d input's backward (non-square inputs).
    """

    reads = ()

    @staticmethod
    def forward(ctx, x, k, shape):
        ctx.in_shape = x.shape
        xp = get_array_module(x)
        if x.ndim == 2:
            return xp.diagonal(x, k).copy()
        if shape is None:
            return xp.diag(x, k)
        out = xp.zeros(shape, dtype=x.dtype)
        n = x.shape[0]
        r0, c0 = (0, k) if k >= 0 else (-k, 0)
        out[xp.arange(n) + r0, xp.arange(n) + c0] = x
        return out

    @staticmethod
    def backward(ctx, g):
        k = ctx.args[1]
        return Diag.apply(g, k, ctx.in_shape if len(ctx.in_shape) == 2 else None), None, None


def diag(input, diagonal=0):
    """``diag(v, k)``: a square matrix with the 1-d ``v`` on diagonal ``k``; ``diag(m, k)``: the 1-d diagonal k of a
    2-d ``m``. (See :class:`Diag` for the formulas.)"""
    from ..argcheck import check_tensor

    check_tensor(input, "diag")
    if isinstance(diagonal, bool) or not isinstance(diagonal, (int, np.integer)):
        raise DTypeError(f"diag: diagonal must be an int, got {type(diagonal).__name__}")
    if input.ndim not in (1, 2):
        raise ShapeError(f"diag expects a 1-d or 2-d tensor, got shape {tuple(input.shape)}")
    return Diag.apply(input, int(diagonal), None)
