"""Linear algebra (minigen/ops/linalg.py): matmul, linear, mm, bmm, mv, dot, inner, outer, addmm, baddbmm,
einsum, tensordot, bilinear."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen.errors import DTypeError, InvalidArgumentError, ShapeError
from minigen.testing import compare_with_torch as torch_compare, gradcheck, gradgradcheck
from minigen.testing.strategies import tensors

from conftest import requires_torch


def t64(values, requires_grad=True):
    return mg.tensor(values, dtype=mg.float64, requires_grad=requires_grad)


@st.composite
def matmul_case(draw):
    """Operands for matmul: 1-d x 1-d, 1-d x batched, batched x 1-d, batched x batched (broadcast batch dims)."""
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    kind = draw(st.sampled_from(["vv", "vm", "mv", "mm"]))
    ba, bb = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3)).input_shapes
    sa = (k,) if kind[0] == "v" else ba + (n, k)
    sb = (k,) if kind[1] == "v" else bb + (k, m)
    return draw(tensors(shape=sa)), draw(tensors(shape=sb))


# ================================================================== core matmul
@given(matmul_case())
def test_matmul_gradcheck_all_ranks(case):
    a, b = case
    np.testing.assert_allclose((a @ b).detach().numpy(), np.asarray(a.array) @ np.asarray(b.array), rtol=1e-12)
    assert gradcheck(lambda p, q: mg.matmul(p, q), (a, b))


@requires_torch
@given(matmul_case())
def test_matmul_matches_torch(case):
    import torch

    torch_compare(lambda p, q: p @ q, lambda p, q: torch.matmul(p, q), case)


def test_matmul_gradgradcheck():
    a = t64(np.linspace(-1, 1, 12).reshape(2, 2, 3))
    b = t64(np.linspace(0.5, 1.5, 6).reshape(3, 2))
    assert gradgradcheck(lambda p, q: mg.matmul(p, q), (a, b))
    v = t64([0.5, -1.0, 2.0])
    assert gradgradcheck(lambda p, q: p @ q, (a, v))          # batched matrix @ vector


def test_matmul_hand_case_and_errors():
    a, b = t64([[1.0, 2.0], [3.0, 4.0]]), t64([[5.0], [6.0]])
    y = a @ b
    np.testing.assert_array_equal(y.detach().numpy(), [[17.0], [39.0]])
    y.sum().backward()                               # da = 1 b^T, db = a^T 1
    np.testing.assert_array_equal(a.grad.numpy(), [[5, 6], [5, 6]])
    np.testing.assert_array_equal(b.grad.numpy(), [[4], [6]])
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(2, 3\)"):
        mg.ones(2, 3) @ mg.ones(2, 3)
    with pytest.raises(ShapeError, match="at least 1 dimension"):
        mg.matmul(mg.tensor(2.0), mg.ones(2))


# ================================================================== linear
@given(st.data())
def test_linear_gradcheck(data):
    lead = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    n_in, n_out = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    x = data.draw(tensors(shape=lead + (n_in,)))
    w = data.draw(tensors(shape=(n_out, n_in)))
    b = data.draw(st.none() | tensors(shape=(n_out,)))
    y = mg.linear(x, w, b)
    want = np.asarray(x.array) @ np.asarray(w.array).T + (0 if b is None else np.asarray(b.array))
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-12)
    args = (x, w) if b is None else (x, w, b)
    assert gradcheck(lambda *a: mg.linear(*a), args)


def test_linear_gradgradcheck_and_hand_case():
    x = t64(np.linspace(-1, 1, 12).reshape(2, 2, 3))
    w = t64(np.linspace(0.5, 1.5, 6).reshape(2, 3))
    b = t64([0.1, -0.2])
    assert gradgradcheck(lambda p, q, r: mg.linear(p * p, q, r), (x, w, b))
    x1, w1, b1 = t64([1.0, 2.0]), t64([[1.0, 0.0], [3.0, -1.0], [0.5, 0.5]]), t64([1.0, 1.0, 1.0])
    y = mg.linear(x1, w1, b1)
    np.testing.assert_array_equal(y.detach().numpy(), [2.0, 2.0, 2.5])
    y.sum().backward()
    np.testing.assert_array_equal(x1.grad.numpy(), [4.5, -0.5])       # column sums of W
    np.testing.assert_array_equal(w1.grad.numpy(), [[1, 2], [1, 2], [1, 2]])
    np.testing.assert_array_equal(b1.grad.numpy(), [1, 1, 1])


def test_linear_keeps_float32_and_errors():
    x = mg.randn(4, 3)
    w = mg.randn(2, 3, requires_grad=True)
    y = mg.linear(x, w)
    assert y.dtype == mg.float32
    y.sum().backward()
    assert w.grad.dtype == mg.float32 and w.grad.shape == (2, 3)
    with pytest.raises(ShapeError, match=r"\(4, 3\).*\(3, 2\)"):
        mg.linear(x, mg.ones(3, 2))
    with pytest.raises(ShapeError, match="2-d"):
        mg.linear(x, mg.ones(3))
    with pytest.raises(ShapeError, match=r"bias of shape \(3,\)"):
        mg.linear(x, mg.ones(2, 3), mg.ones(3))


@requires_torch
@given(st.data())
def test_linear_matches_torch(data):
    import torch.nn.functional as tF

    lead = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    x = data.draw(tensors(shape=lead + (3,)))
    w, b = data.draw(tensors(shape=(2, 3))), data.draw(tensors(shape=(2,)))
    torch_compare(lambda p, q, r: mg.linear(p, q, r), lambda p, q, r: tF.linear(p, q, r), (x, w, b))
    torch_compare(lambda p, q: mg.linear(p, q), lambda p, q: tF.linear(p, q), (x, w))


# ================================================================== mm / bmm / mv / dot / outer / inner / addmm
@given(st.data())
def test_small_products_gradcheck(data):
    n, k, m, bsz = (data.draw(st.integers(1, 3)) for _ in range(4))
    A, B = data.draw(tensors(shape=(n, k))), data.draw(tensors(shape=(k, m)))
    P, Q = data.draw(tensors(shape=(bsz, n, k))), data.draw(tensors(shape=(bsz, k, m)))
    v, u = data.draw(tensors(shape=(k,))), data.draw(tensors(shape=(k,)))
    C, D = data.draw(tensors(shape=(n, m))), data.draw(tensors(shape=(m,)))
    assert gradcheck(lambda a, b: a.mm(b), (A, B))
    assert gradcheck(lambda a, b: mg.bmm(a, b), (P, Q))
    assert gradcheck(lambda a, b: a.mv(b), (A, v))
    assert gradcheck(lambda a, b: mg.dot(a, b), (v, u))
    assert gradcheck(lambda a, b: mg.outer(a, b), (v, D))
    assert gradcheck(lambda a, b: mg.inner(a, b), (A, P))
    assert gradcheck(lambda c, a, b: mg.addmm(c, a, b, beta=0.5, alpha=-2.0), (C, A, B))
    assert gradcheck(lambda c, a, b: mg.baddbmm(c, a, b, beta=2.0), (D, P, Q))


@requires_torch
def test_small_products_match_torch():
    import torch

    r = np.random.default_rng(3)
    A, B, v, u = t64(r.standard_normal((2, 3))), t64(r.standard_normal((3, 4))), t64(r.standard_normal(3)), \
        t64(r.standard_normal(3))
    P, Q, C = t64(r.standard_normal((2, 2, 3))), t64(r.standard_normal((2, 3, 4))), t64(r.standard_normal((1, 4)))
    torch_compare(lambda a, b: a.mm(b), lambda a, b: a.mm(b), (A, B))
    torch_compare(lambda a, b: a.bmm(b), lambda a, b: a.bmm(b), (P, Q))
    torch_compare(lambda a, b: a.mv(b), lambda a, b: a.mv(b), (A, v))
    torch_compare(lambda a, b: a.dot(b), lambda a, b: a.dot(b), (v, u))
    torch_compare(lambda a, b: a.outer(b), lambda a, b: a.outer(b), (v, u))
    torch_compare(lambda a, b: mg.inner(a, b), lambda a, b: torch.inner(a, b), (A, P))
    torch_compare(lambda c, a, b: c.addmm(a, b, beta=0.5, alpha=3.0),
                  lambda c, a, b: c.addmm(a, b, beta=0.5, alpha=3.0), (C, A, B))
    torch_compare(lambda c, a, b: c.baddbmm(a, b, alpha=-1.0), lambda c, a, b: c.baddbmm(a, b, alpha=-1.0),
                  (C, P, Q))


def test_small_products_hand_cases_and_errors():
    assert mg.dot(mg.tensor([1.0, 2.0]), mg.tensor([3.0, 4.0])).item() == 11.0
    np.testing.assert_array_equal(mg.outer(mg.tensor([1.0, 2.0]), mg.tensor([3.0, 4.0, 5.0])).numpy(),
                                  [[3, 4, 5], [6, 8, 10]])
    nan_in = mg.full((2, 2), float("nan"))
    assert np.isfinite(mg.addmm(nan_in, mg.ones(2, 2), mg.ones(2, 2), beta=0).numpy()).all()
    with pytest.raises(ShapeError, match=r"bmm: input must be 3-d, got shape \(2, 3\)"):
        mg.bmm(mg.ones(2, 3), mg.ones(2, 3, 1))
    with pytest.raises(ShapeError, match="batch sizes differ"):
        mg.bmm(mg.ones(2, 3, 4), mg.ones(3, 4, 1))
    with pytest.raises(ShapeError, match=r"\(2, 3, 4\).*\(2, 3, 1\)"):
        mg.bmm(mg.ones(2, 3, 4), mg.ones(2, 3, 1))
    with pytest.raises(ShapeError, match="2-d"):
        mg.mm(mg.ones(2, 2, 2), mg.ones(2, 2))
    with pytest.raises(ShapeError, match="same length"):
        mg.dot(mg.ones(2), mg.ones(3))
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        mg.mv(mg.ones(2, 2), mg.ones(3))


# ================================================================== einsum
EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
    ("ij,kj", [(2, 3), (4, 3)]),                  # implicit output: ik
    ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(2,), (3,)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("ij->ji", [(2, 3)]),
    ("ii->i", [(3, 3)]),                          # diagonal
    ("ii", [(3, 3)]),                             # trace
    ("iji->j", [(2, 3, 2)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (3, 3, 2)]),   # ellipsis with broadcast batch dims
    ("b...d,d->b...", [(2, 3, 4), (4,)]),
    ("...", [(2, 3)]),
    ("bhqd,bhkd->bhqk", [(1, 2, 3, 2), (1, 2, 2, 2)]),    # attention scores
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),           # three operands
    ("ij,ij->ij", [(1, 3), (2, 3)]),                      # size-1 broadcast of a subscript
    (" i j , j k -> i k ", [(2, 2), (2, 2)]),             # spaces
]


@pytest.mark.parametrize("eq,shapes_", EINSUM_CASES)
def test_einsum_gradcheck_cases(eq, shapes_):
    r = np.random.default_rng(len(eq))
    ops = [t64(r.standard_normal(s)) for s in shapes_]
    y = mg.einsum(eq, *ops)
    want = np.einsum(eq.replace(" ", ""), *[np.asarray(o.array) for o in ops])
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda *a: mg.einsum(eq, *a), tuple(ops))


@requires_torch
@pytest.mark.parametrize("eq,shapes_", EINSUM_CASES)
def test_einsum_cases_match_torch(eq, shapes_):
    import torch

    r = np.random.default_rng(len(eq) + 1)
    ops = [t64(r.standard_normal(s)) for s in shapes_]
    torch_compare(lambda *a: mg.einsum(eq, *a), lambda *a: torch.einsum(eq, *a), tuple(ops))


@st.composite
def einsum_case(draw):
    """Two operands over letters a-d (random subsets and orders) and an output of distinct letters."""
    sizes = {c: draw(st.integers(1, 3)) for c in "abcd"}
    t1 = draw(st.lists(st.sampled_from("abcd"), min_size=0, max_size=3, unique=True))
    t2 = draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=3, unique=True))
    pool = sorted(set(t1) | set(t2))
    out = draw(st.lists(st.sampled_from(pool), max_size=len(pool), unique=True))
    eq = f"{''.join(t1)},{''.join(t2)}->{''.join(out)}"
    x = draw(tensors(shape=tuple(sizes[c] for c in t1)))
    y = draw(tensors(shape=tuple(sizes[c] for c in t2)))
    return eq, x, y


@given(einsum_case())
def test_einsum_random_contractions_gradcheck(case):
    eq, x, y = case
    np.testing.assert_allclose(mg.einsum(eq, x, y).detach().numpy(),
                               np.einsum(eq, np.asarray(x.array), np.asarray(y.array)), rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda a, b: mg.einsum(eq, a, b), (x, y))


@requires_torch
@given(einsum_case())
def test_einsum_random_contractions_match_torch(case):
    import torch

    eq, x, y = case
    torch_compare(lambda a, b: mg.einsum(eq, a, b), lambda a, b: torch.einsum(eq, a, b), (x, y))


def test_einsum_gradgradcheck_and_list_form():
    a = t64(np.linspace(-1, 1, 6).reshape(2, 3))
    b = t64(np.linspace(0.5, 1.5, 12).reshape(3, 4))
    assert gradgradcheck(lambda p, q: mg.einsum("ij,jk->ik", p * p, q), (a, b))
    assert gradgradcheck(lambda p: mg.einsum("ii->i", p * p), (t64(np.linspace(-1, 1, 4).reshape(2, 2)),))
    np.testing.assert_allclose(mg.einsum("ij,jk", [a, b]).detach().numpy(), (a @ b).detach().numpy())


def test_einsum_hand_case():
    m = t64([[1.0, 2.0], [3.0, 4.0]])
    tr = mg.einsum("ii", m)
    assert tr.item() == 5.0
    tr.backward()
    np.testing.assert_array_equal(m.grad.numpy(), [[1, 0], [0, 1]])


def test_einsum_errors():
    a = mg.ones(2, 3)
    with pytest.raises(InvalidArgumentError, match="2 operand term"):
        mg.einsum("ij,jk->ik", a)
    with pytest.raises(ShapeError, match=r"'ijk'.*\(2, 3\)"):
        mg.einsum("ijk->i", a)
    with pytest.raises(ShapeError, match=r"'j' has size 3.*2"):
        mg.einsum("ij,jk->ik", a, mg.ones(2, 2))
    with pytest.raises(InvalidArgumentError, match="bad subscripts"):
        mg.einsum("i1->i", a)
    with pytest.raises(InvalidArgumentError, match="repeat"):
        mg.einsum("ij->ii", a)
    with pytest.raises(InvalidArgumentError, match="appear in no input"):
        mg.einsum("ij->k", a)
    with pytest.raises(ShapeError, match="different sizes"):
        mg.einsum("ii->i", a)


# ================================================================== tensordot / bilinear
@given(st.data())
def test_tensordot_gradcheck(data):
    s = [data.draw(st.integers(1, 3)) for _ in range(4)]
    a = data.draw(tensors(shape=(s[0], s[1], s[2])))
    b = data.draw(tensors(shape=(s[1], s[2], s[3])))
    np.testing.assert_allclose(mg.tensordot(a, b, 2).detach().numpy(),
                               np.tensordot(np.asarray(a.array), np.asarray(b.array), 2), rtol=1e-12)
    assert gradcheck(lambda p, q: mg.tensordot(p, q, 2), (a, b))
    assert gradcheck(lambda p, q: mg.tensordot(p, q, ([1], [0])), (a, b))
    assert gradcheck(lambda p, q: mg.tensordot(p, q, 0), (a[0, 0], b[0, 0]))


@requires_torch
def test_tensordot_bilinear_match_torch():
    import torch
    import torch.nn.functional as tF

    r = np.random.default_rng(5)
    a, b = t64(r.standard_normal((2, 3, 4))), t64(r.standard_normal((4, 3, 2)))
    torch_compare(lambda p, q: mg.tensordot(p, q, ([1, 2], [1, 0])),
                  lambda p, q: torch.tensordot(p, q, ([1, 2], [1, 0])), (a, b))
    x1, x2 = t64(r.standard_normal((2, 3))), t64(r.standard_normal((2, 4)))
    w, bias = t64(r.standard_normal((5, 3, 4))), t64(r.standard_normal(5))
    torch_compare(lambda p, q, ww, bb: mg.bilinear(p, q, ww, bb), lambda p, q, ww, bb: tF.bilinear(p, q, ww, bb),
                  (x1, x2, w, bias))


def test_tensordot_errors():
    with pytest.raises(ShapeError, match="contracted dims differ"):
        mg.tensordot(mg.ones(2, 3), mg.ones(2, 3), ([1], [1 - 1]))
    with pytest.raises(InvalidArgumentError, match="out of range"):
        mg.tensordot(mg.ones(2), mg.ones(2), 2)


# ================================================================== fast_backward == backward; reads
def _both_paths(fn, inputs, seed=0):
    """Gradients through the first-order path (the engine takes ``fast_backward``) and through
    create_graph=True (the engine takes ``backward``, the Tensor formula)."""
    out = fn(*inputs)
    w = mg.tensor(np.random.default_rng(seed).standard_normal(out.shape), dtype=out.dtype)
    fast = mg.grad((out * w).sum(), inputs)
    formula = mg.grad((fn(*inputs) * w).sum(), inputs, create_graph=True)
    return fast, formula


@pytest.mark.parametrize("xshape,bshape", [((5, 4), (3,)), ((2, 3, 4), (3,)), ((4,), (3,)), ((2, 5, 4), (1, 1, 3)),
                                           ((6, 4), None)])
def test_linear_fast_backward_equals_formula(xshape, bshape):
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.standard_normal(xshape), requires_grad=True)
    w = mg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    inputs = (x, w) if bshape is None else (x, w, mg.tensor(rng.standard_normal(bshape), requires_grad=True))
    fast, formula = _both_paths(lambda *a: mg.nn.functional.linear(*a), inputs)
    for a, b in zip(fast, formula):
        assert a.shape == b.shape
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ashape,bshape", [((4,), (4,)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((3, 4), (2, 4, 5)),
                                           ((2, 1, 3, 4), (5, 4, 2)), ((2, 3, 4), (4, 5))])
def test_matmul_broadcast_gradients_summed_by_the_engine(ashape, bshape):
    """MatMul's backward returns gradients in the broadcast (batched) shape; the engine sums them back,
    first order and with create_graph (checked against PyTorch-free NumPy einsum sums and gradgradcheck)."""
    rng = np.random.default_rng(2)
    a = mg.tensor(rng.standard_normal(ashape), requires_grad=True)
    b = mg.tensor(rng.standard_normal(bshape), requires_grad=True)
    fast, formula = _both_paths(mg.matmul, (a, b))
    for g, f, t in zip(fast, formula, (a, b)):
        assert g.shape == t.shape
        np.testing.assert_allclose(g.numpy(), f.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert gradgradcheck(mg.matmul, (a, b))


def test_matmul_gradient_reads_only_the_other_operand():
    """da reads b, db reads a: with only a requiring grad, editing a in place after the forward is fine
    (PyTorch agrees); editing b raises."""
    a = mg.tensor([[1.0, 2.0]], requires_grad=True)
    b = mg.tensor([[3.0], [4.0]])
    y = mg.matmul(a * 1.0, b)
    y.sum().backward()
    b2 = mg.tensor([[3.0], [4.0]])
    a2 = a * 1.0
    y2 = mg.matmul(a2, b2)
    a2.mul_(5.0)                                   # da reads b only
    y2.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [[6.0, 8.0]])
    y3 = mg.matmul(a * 1.0, b2)
    b2.mul_(2.0)
    with pytest.raises(mg.errors.InplaceError):
        y3.sum().backward()


# ================================================================== bad arguments: minigen errors, never raw ones
@pytest.mark.parametrize("call", [
    lambda: mg.ones(2, 2) @ True, lambda: mg.matmul(mg.ones(2), None), lambda: mg.ones(2).dot(None),
    lambda: mg.ones(2).outer("a"), lambda: mg.ones(2).inner(None), lambda: mg.mm(mg.ones(2, 2), 3.0),
    lambda: mg.nn.functional.linear(None, mg.ones(2, 2)), lambda: mg.tensordot(mg.ones(2), [1.0]),
])
def test_non_tensor_operands_are_dtype_errors(call):
    """PyTorch raises TypeError for these; minigen raises its DTypeError (a TypeError) naming the argument."""
    with pytest.raises(DTypeError, match="must be a Tensor"):
        call()


def test_bad_scalars_are_minigen_errors():
    with pytest.raises(InvalidArgumentError, match="alpha"):
        mg.addmm(mg.ones(2, 2), mg.ones(2, 2), mg.ones(2, 2), alpha=None)
    with pytest.raises(InvalidArgumentError, match="dims"):
        mg.tensordot(mg.ones(2, 2), mg.ones(2, 2), dims=1.5)
    np.testing.assert_array_equal(mg.ones(2, 2) @ np.ones((2, 1)), [[2.0], [2.0]])   # NumPy arrays convert
