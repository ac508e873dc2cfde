"""Reductions: var/std, prod (with zeros), max/min/amax/amin (ties), argmax/argmin, logsumexp, norm,
cumsum/cumprod, all/any/count_nonzero: gradients, PyTorch oracle, hand-computed cases, errors."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen.errors import DimError, DTypeError, InvalidArgumentError
from minigen.testing import compare_with_torch as _compare_with_torch, gradcheck, gradgradcheck, to_torch
from minigen.testing import strategies as mst
from tests.conftest import requires_torch


@st.composite
def reduce_case(draw, elements=None, shape=None, allow_tuple=True, allow_none=True):
    """(tensor, dim, keepdim) with dim an int, a tuple or None, negative dims included."""
    x = draw(mst.tensors(shape=shape, elements=elements))
    dim = draw(mst.valid_dims(x.ndim, allow_none=allow_none, allow_tuple=allow_tuple))
    return x, dim, draw(st.booleans())


@st.composite
def distinct_tensor(draw, shape=None, positive=False):
    """A float64 tensor with pairwise distinct values (and distinct |values|): no ties anywhere."""
    shp = draw(mst.shapes() if shape is None else shape)
    n = int(np.prod(shp))
    ks = draw(st.lists(st.integers(1, 100), min_size=n, max_size=n, unique=True))
    vals = np.asarray(ks, dtype=np.float64) * 0.05
    if not positive:
        vals = vals * np.asarray(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n)))
    arr = vals.reshape(shp)
    if draw(st.booleans()) and arr.ndim >= 2:  # non-contiguous layout
        arr = np.ascontiguousarray(arr.T).T
    return mg.Tensor(arr).requires_grad_(True)


def _np_dims(dim, ndim):
    if dim is None or ndim == 0:
        return None
    return tuple(d % ndim for d in dim) if isinstance(dim, tuple) else dim % ndim


# ------------------------------------------------------------------ var / std
@given(reduce_case(), st.sampled_from([0, 1, 2]))
def test_var_std(case, correction):
    x, dim, keepdim = case
    ax = _np_dims(dim, x.ndim)
    n = x.array.size if ax is None else int(np.prod([x.shape[a] for a in np.atleast_1d(ax)]))
    with np.errstate(all="ignore"):
        ref = np.var(x.array, axis=ax, ddof=correction, keepdims=keepdim) if n > correction else None
    y = mg.var(x, dim, keepdim=keepdim, correction=correction)
    if ref is not None:
        np.testing.assert_allclose(y.array, ref, rtol=1e-12, atol=1e-14)
        assert gradcheck(lambda t: mg.var(t, dim, keepdim=keepdim, correction=correction), (x,))
        y_std = mg.std(x, dim, keepdim=keepdim, correction=correction)
        if (y_std.array > 1e-3).all():  # std has a kink where it is 0
            assert gradcheck(lambda t: t.std(dim, keepdim=keepdim, correction=correction), (x,))


@given(reduce_case(shape=mst.shapes(max_dims=2, max_side=3)))
def test_var_gradgradcheck(case):
    x, dim, keepdim = case
    assert gradgradcheck(lambda t: mg.var(t, dim, keepdim=keepdim, unbiased=False), (x,))


@requires_torch
@given(reduce_case(shape=mst.shapes(min_dims=1)), st.sampled_from([0, 1]))
def test_var_std_match_torch(case, correction):
    import torch

    x, dim, keepdim = case
    n = x.array.size if dim is None else int(np.prod([x.shape[d] for d in np.atleast_1d(dim)]))
    if n <= correction:
        return
    _compare_with_torch(lambda t: mg.var(t, dim, keepdim=keepdim, correction=correction),
                        lambda t: torch.var(t, dim, keepdim=keepdim, correction=correction), [x])
    if (mg.std(x, dim, correction=correction).array > 1e-3).all():
        _compare_with_torch(lambda t: mg.std(t, dim, keepdim=keepdim, correction=correction),
                            lambda t: torch.std(t, dim, keepdim=keepdim, correction=correction), [x])


def test_var_hand_computed():
    x = mg.tensor([1.0, 2.0, 3.0, 4.0], dtype=mg.float64, requires_grad=True)
    v = mg.var(x)  # unbiased by default: 5 / 3
    assert v.item() == pytest.approx(5 / 3, rel=1e-15)
    v.backward()  # 2 (x - mean) / (N - 1)
    np.testing.assert_allclose(x.grad.array, [-1.0, -1 / 3, 1 / 3, 1.0], rtol=1e-15)
    assert mg.var(x, unbiased=False).item() == pytest.approx(1.25)
    assert x.var(0, False).item() == pytest.approx(1.25)  # legacy positional (dim, unbiased)
    assert mg.std(x, correction=0).item() == pytest.approx(math.sqrt(1.25))
    v2, m2 = mg.var_mean(x, correction=0)
    assert (v2.item(), m2.item()) == pytest.approx((1.25, 2.5))
    s2, _ = mg.std_mean(x)
    assert s2.item() == pytest.approx(math.sqrt(5 / 3))


# ------------------------------------------------------------------ prod
@given(x=mst.tensors(elements=mst.away_from(0.0, -2, 2, 0.1)), data=st.data())
def test_prod_gradcheck(x, data):
    dim = data.draw(st.none() | mst.valid_dim(x.ndim))
    keepdim = data.draw(st.booleans())
    ref = np.prod(x.array, axis=_np_dims(dim, x.ndim), keepdims=keepdim and dim is not None)
    y = mg.prod(x, dim, keepdim=keepdim)
    np.testing.assert_allclose(y.array, ref, rtol=1e-12)
    assert gradcheck(lambda t: t.prod(dim, keepdim=keepdim), (x,))


@given(data=st.data())
def test_prod_with_zeros_gradcheck(data):
    """Inputs with 0, 1 or several zeros (a polynomial: finite differences are exact enough there)."""
    shape = data.draw(mst.shapes(min_dims=1, max_dims=2, max_side=4))
    elems = st.sampled_from([0.0, 0.0, 0.5, -1.5, 2.0, 1.25])
    x = data.draw(mst.tensors(shape=shape, elements=elems))
    dim = data.draw(st.none() | mst.valid_dim(x.ndim))
    assert gradcheck(lambda t: mg.prod(t, dim), (x,))
    assert gradgradcheck(lambda t: mg.prod(t, dim), (x,))


def test_prod_zero_cases_hand_computed():
    x = mg.tensor([0.0, 2.0, 3.0], dtype=mg.float64, requires_grad=True)
    x.prod().backward()  # one zero: only the zero's position gets prod(others)
    np.testing.assert_array_equal(x.grad.array, [6.0, 0.0, 0.0])
    x2 = mg.tensor([0.0, 2.0, 0.0], dtype=mg.float64, requires_grad=True)
    x2.prod().backward()  # two zeros: everything 0
    np.testing.assert_array_equal(x2.grad.array, [0.0, 0.0, 0.0])
    # second order with one zero: d/dx_j (prod of others at the zero) = prod of the rest != 0
    x3 = mg.tensor([0.0, 2.0, 3.0], dtype=mg.float64, requires_grad=True)
    (g,) = mg.grad(x3.prod(), x3, create_graph=True)
    (h,) = mg.grad(g[0], x3)
    np.testing.assert_array_equal(h.array, [0.0, 3.0, 2.0])
    # per-row zeros along a dim
    m = mg.tensor([[0.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 0.0, 5.0]], dtype=mg.float64, requires_grad=True)
    m.prod(1).sum().backward()
    np.testing.assert_array_equal(m.grad.array, [[6.0, 0.0, 0.0], [6.0, 3.0, 2.0], [0.0, 0.0, 0.0]])
    assert mg.tensor([1, 2, 3]).prod().dtype == mg.int64


@requires_torch
@given(data=st.data())
def test_prod_matches_torch(data):
    import torch

    x = data.draw(mst.tensors(shape=mst.shapes(min_dims=1), elements=st.sampled_from([0.0, 0.5, -1.5, 2.0])))
    d = data.draw(mst.valid_dim(x.ndim))
    keepdim = data.draw(st.booleans())
    _compare_with_torch(lambda t: mg.prod(t, d, keepdim=keepdim), lambda t: torch.prod(t, d, keepdim=keepdim), [x])
    _compare_with_torch(lambda t: mg.prod(t), lambda t: torch.prod(t), [x])


# ------------------------------------------------------------------ max / min / amax / amin
@given(x=distinct_tensor(), data=st.data())
def test_max_min_gradcheck(x, data):
    assert gradcheck(lambda t: t.max(), (x,))
    assert gradcheck(lambda t: mg.min(t), (x,))
    d = data.draw(mst.valid_dim(x.ndim))
    keepdim = data.draw(st.booleans())
    res = mg.max(x, d, keepdim=keepdim)
    assert res.values.shape == res.indices.shape and res.indices.dtype == mg.int64
    np.testing.assert_array_equal(res.indices.array, np.argmax(x.array, axis=d % max(x.ndim, 1), keepdims=keepdim)
                                  if x.ndim else 0)
    assert gradcheck(lambda t: mg.max(t, d, keepdim).values, (x,))
    assert gradcheck(lambda t: mg.min(t, d, keepdim)[0], (x,))
    dims = data.draw(mst.valid_dims(x.ndim))
    assert gradcheck(lambda t: mg.amax(t, () if dims is None else dims, keepdim), (x,))
    assert gradcheck(lambda t: t.amin(() if dims is None else dims, keepdim), (x,))


@given(x=distinct_tensor(shape=mst.shapes(max_dims=2, max_side=3)))
def test_max_gradgradcheck(x):
    # max(x * x) has a second derivative 2 at the maximiser
    assert gradgradcheck(lambda t: (t * t).amax(), (x,))
    assert gradgradcheck(lambda t: (t * t).max(-1).values if t.ndim else (t * t).max(), (x,))


@requires_torch
@given(x=distinct_tensor(shape=mst.shapes(min_dims=1)), data=st.data())
def test_max_min_match_torch(x, data):
    import torch

    d = data.draw(mst.valid_dim(x.ndim))
    keepdim = data.draw(st.booleans())
    _compare_with_torch(lambda t: mg.max(t, d, keepdim).values, lambda t: torch.max(t, d, keepdim).values, [x])
    _compare_with_torch(lambda t: mg.min(t, d, keepdim).values, lambda t: torch.min(t, d, keepdim).values, [x])
    dims = data.draw(mst.valid_dims(x.ndim, allow_none=False))
    _compare_with_torch(lambda t: mg.amax(t, dims, keepdim), lambda t: torch.amax(t, dims, keepdim), [x])
    _compare_with_torch(lambda t: mg.amin(t, dims, keepdim), lambda t: torch.amin(t, dims, keepdim), [x])


def test_max_min_ties():
    x = mg.tensor([1.0, 3.0, 3.0, -1.0, -1.0], dtype=mg.float64, requires_grad=True)
    x.max().backward()  # no dim: ties share evenly
    np.testing.assert_array_equal(x.grad.array, [0, 0.5, 0.5, 0, 0])
    x.grad = None
    x.min().backward()
    np.testing.assert_array_equal(x.grad.array, [0, 0, 0, 0.5, 0.5])
    x.grad = None
    r = x.max(0)  # with a dim: the gradient goes to the returned (first) index only
    assert r.indices.item() == 1 and r.values.item() == 3.0
    r.values.backward()
    np.testing.assert_array_equal(x.grad.array, [0, 1, 0, 0, 0])
    m = mg.tensor([[2.0, 2.0, 1.0], [0.0, 5.0, 5.0]], dtype=mg.float64, requires_grad=True)
    m.amax(1).sum().backward()
    np.testing.assert_array_equal(m.grad.array, [[0.5, 0.5, 0], [0, 0.5, 0.5]])
    m.grad = None
    mg.amax(m).backward()
    np.testing.assert_array_equal(m.grad.array, [[0, 0, 0], [0, 0.5, 0.5]])


@requires_torch
def test_ties_match_torch():
    import torch

    x = mg.tensor([[2.0, 2.0, 1.0], [0.0, 5.0, 5.0]], dtype=mg.float64, requires_grad=True)
    _compare_with_torch(lambda t: t.max(), lambda t: t.max(), [x])
    _compare_with_torch(lambda t: t.min(), lambda t: t.min(), [x])
    _compare_with_torch(lambda t: t.amax(1), lambda t: t.amax(1), [x])
    _compare_with_torch(lambda t: t.max(1).values, lambda t: t.max(1).values, [x])
    _compare_with_torch(lambda t: t.amin(0, True), lambda t: t.amin(0, True), [x])
    np.testing.assert_array_equal(x.max(1).indices.array, torch.tensor(x.array).max(1).indices.numpy())


def test_max_variants_and_namedtuples():
    x = mg.tensor([[1.0, 5.0], [7.0, 2.0]])
    r = mg.max(x, 1, keepdim=True)
    assert r.values.shape == (2, 1) and r.indices.shape == (2, 1)
    v, i = mg.min(x, dim=0)
    np.testing.assert_array_equal(v.array, [1.0, 2.0])
    np.testing.assert_array_equal(i.array, [0, 1])
    np.testing.assert_array_equal(mg.max(x, mg.tensor([[3.0, 3.0], [3.0, 3.0]])).array, [[3, 5], [7, 3]])
    mn, mx = mg.aminmax(x)
    assert (mn.item(), mx.item()) == (1.0, 7.0)
    r0 = mg.tensor(3.0).max(0)  # 0-d tensors accept dim 0
    assert r0.values.item() == 3.0 and r0.indices.item() == 0
    np.testing.assert_array_equal(mg.tensor([1.0, np.nan, 3.0]).amax().array, np.nan)


@given(x=mst.tensors(elements=st.sampled_from([0.0, 1.0, -1.0, 2.5])), data=st.data())
def test_argmax_argmin(x, data):
    d = data.draw(st.none() | mst.valid_dim(x.ndim))
    keepdim = data.draw(st.booleans())
    ax = None if d is None or x.ndim == 0 else d % x.ndim
    for name in ("argmax", "argmin"):
        y = getattr(mg, name)(x, d, keepdim)
        ref = getattr(np, name)(x.array, axis=ax, keepdims=keepdim) if x.ndim else np.array(0)
        assert y.dtype == mg.int64 and not y.requires_grad
        np.testing.assert_array_equal(y.array, ref)  # ties: the first occurrence, as PyTorch


# ------------------------------------------------------------------ logsumexp
@given(reduce_case(elements=mst.floats(-5, 5)))
def test_logsumexp(case):
    x, dim, keepdim = case
    ax = _np_dims(dim, x.ndim)
    ref = np.log(np.exp(x.array).sum(axis=ax, keepdims=keepdim))
    np.testing.assert_allclose(mg.logsumexp(x, dim, keepdim).array, ref, rtol=1e-12, atol=1e-15)
    assert gradcheck(lambda t: t.logsumexp(dim, keepdim), (x,))


@given(reduce_case(shape=mst.shapes(max_dims=2, max_side=3)))
def test_logsumexp_gradgradcheck(case):
    x, dim, keepdim = case
    assert gradgradcheck(lambda t: mg.logsumexp(t, dim, keepdim), (x,))


@requires_torch
@given(reduce_case(shape=mst.shapes(min_dims=1), allow_none=False, elements=mst.floats(-50, 50)))
def test_logsumexp_matches_torch(case):
    import torch

    x, dim, keepdim = case
    _compare_with_torch(lambda t: mg.logsumexp(t, dim, keepdim), lambda t: torch.logsumexp(t, dim, keepdim), [x])


def test_logsumexp_stability_and_hand_computed():
    x = mg.tensor([1000.0, 1000.0], dtype=mg.float64, requires_grad=True)
    with np.errstate(over="raise", invalid="raise"):
        y = mg.logsumexp(x, 0)
    assert y.item() == pytest.approx(1000 + math.log(2), rel=1e-15)
    y.backward()  # softmax weights exp(x - y); y = 1000.69... carries a rounding error of ~1000 eps
    np.testing.assert_allclose(x.grad.array, [0.5, 0.5], rtol=1e-13)
    ninf = mg.tensor([-np.inf, -np.inf])
    assert mg.logsumexp(ninf, 0).item() == -np.inf
    assert mg.logsumexp(mg.tensor([-np.inf, 0.0]), 0).item() == 0.0
    assert mg.logsumexp(mg.tensor([np.inf, 0.0]), 0).item() == np.inf
    assert mg.logsumexp(mg.tensor([1, 2]), 0).item() == pytest.approx(math.log(math.e + math.e ** 2), rel=1e-6)


# ------------------------------------------------------------------ norm
NORM_PS = [2, 1, 3, 0.5, math.inf, -math.inf, "fro"]


@pytest.mark.parametrize("p", NORM_PS)
@given(data=st.data())
def test_norm_gradcheck(p, data):
    x = data.draw(distinct_tensor())  # no zeros, no ties in |x|
    dim = data.draw(mst.valid_dims(x.ndim))
    keepdim = data.draw(st.booleans())
    ax = _np_dims(dim, x.ndim)
    a = np.abs(x.array)
    q = 2 if p == "fro" else p
    if q == math.inf:
        ref = a.max(axis=ax, keepdims=keepdim)
    elif q == -math.inf:
        ref = a.min(axis=ax, keepdims=keepdim)
    else:
        ref = (a ** q).sum(axis=ax, keepdims=keepdim) ** (1 / q)
    np.testing.assert_allclose(mg.norm(x, p, dim, keepdim).array, ref, rtol=1e-12)
    assert gradcheck(lambda t: t.norm(p, dim, keepdim), (x,))


@given(data=st.data())
def test_norm2_gradgradcheck(data):
    x = data.draw(distinct_tensor(shape=mst.shapes(max_dims=2, max_side=3)))
    dim = data.draw(mst.valid_dims(x.ndim))
    assert gradgradcheck(lambda t: mg.norm(t, 2, dim), (x,))
    assert gradgradcheck(lambda t: mg.norm(t, 3, dim), (x,))


@requires_torch
@pytest.mark.parametrize("p", NORM_PS)
@given(data=st.data())
def test_norm_matches_torch(p, data):
    import torch

    x = data.draw(distinct_tensor(shape=mst.shapes(min_dims=1)))
    dim = data.draw(mst.valid_dims(x.ndim))
    if p == "fro" and isinstance(dim, tuple) and len(dim) > 2:
        dim = dim[:2]  # torch.norm treats 'fro' over a tuple as a matrix norm: at most 2 dims
    keepdim = data.draw(st.booleans())
    _compare_with_torch(lambda t: mg.norm(t, p, dim, keepdim), lambda t: torch.norm(t, p, dim, keepdim), [x])


def test_norm_special_cases():
    z = mg.tensor([0.0, 0.0], dtype=mg.float64, requires_grad=True)
    z.norm().backward()  # p=2 at 0: gradient 0 (as PyTorch), not NaN
    np.testing.assert_array_equal(z.grad.array, [0.0, 0.0])
    x = mg.tensor([3.0, -4.0], dtype=mg.float64, requires_grad=True)
    n = x.norm()
    assert n.item() == 5.0
    n.backward()
    np.testing.assert_allclose(x.grad.array, [0.6, -0.8], rtol=1e-15)
    t = mg.tensor([-2.0, 2.0, 1.0], dtype=mg.float64, requires_grad=True)
    mg.norm(t, math.inf).backward()  # ties share, with the sign
    np.testing.assert_array_equal(t.grad.array, [-0.5, 0.5, 0.0])
    t.grad = None
    y0 = mg.norm(mg.tensor([0.0, 2.0, -1.0], dtype=mg.float64), 0)
    assert y0.item() == 2.0
    w = mg.tensor([0.0, 2.0], dtype=mg.float64, requires_grad=True)
    mg.norm(w, 1).backward()
    np.testing.assert_array_equal(w.grad.array, [0.0, 1.0])


# ------------------------------------------------------------------ cumsum / cumprod
@given(x=mst.tensors(), data=st.data())
def test_cumsum_cumprod_gradcheck(x, data):
    d = data.draw(mst.valid_dim(x.ndim))
    ax = d % max(x.ndim, 1)
    np.testing.assert_allclose(mg.cumsum(x, d).array, np.cumsum(x.array, axis=ax) if x.ndim else x.array)
    np.testing.assert_allclose(x.cumprod(d).array, np.cumprod(x.array, axis=ax) if x.ndim else x.array, rtol=1e-12)
    assert gradcheck(lambda t: t.cumsum(d), (x,))
    assert gradcheck(lambda t: mg.cumprod(t, d), (x,))


@given(data=st.data())
def test_cumprod_with_zeros(data):
    x = data.draw(mst.tensors(shape=mst.shapes(min_dims=1, max_dims=2, max_side=4),
                              elements=st.sampled_from([0.0, 0.0, 0.5, -1.5, 2.0])))
    d = data.draw(mst.valid_dim(x.ndim))
    assert gradcheck(lambda t: mg.cumprod(t, d), (x,))
    assert gradgradcheck(lambda t: mg.cumprod(t, d), (x,))


@given(x=mst.tensors(shape=mst.shapes(max_dims=2, max_side=3)), data=st.data())
def test_cumsum_cumprod_gradgradcheck(x, data):
    d = data.draw(mst.valid_dim(x.ndim))
    assert gradgradcheck(lambda t: mg.cumsum(t, d) * t, (x,))
    assert gradgradcheck(lambda t: mg.cumprod(t, d), (x,))


def test_cumprod_hand_computed():
    x = mg.tensor([2.0, 0.0, 3.0, 0.0, 5.0], dtype=mg.float64, requires_grad=True)
    x.cumprod(0).sum().backward()
    # d/dx0 = 1 + x1 + x1 x2 + ... = 1;  d/dx1 = x0 + x0 x2 + x0 x2 x3 + ... = 2 + 6 = 8;  the rest 0
    np.testing.assert_array_equal(x.grad.array, [1.0, 8.0, 0.0, 0.0, 0.0])
    y = mg.tensor([1.0, 2.0, 3.0], dtype=mg.float64, requires_grad=True)
    y.cumsum(0).sum().backward()
    np.testing.assert_array_equal(y.grad.array, [3.0, 2.0, 1.0])
    assert mg.cumsum(mg.tensor([1, 2]), 0).dtype == mg.int64


@requires_torch
@given(x=mst.tensors(shape=mst.shapes(min_dims=1), elements=st.sampled_from([0.0, 0.5, -1.5, 2.0, 1.0])),
       data=st.data())
def test_cumsum_cumprod_match_torch(x, data):
    import torch

    d = data.draw(mst.valid_dim(x.ndim))
    _compare_with_torch(lambda t: mg.cumsum(t, d), lambda t: torch.cumsum(t, d), [x])
    _compare_with_torch(lambda t: mg.cumprod(t, d), lambda t: torch.cumprod(t, d), [x])


# ------------------------------------------------------------------ all / any / count_nonzero
@given(x=mst.tensors(elements=st.sampled_from([0.0, 1.0, -2.0]), requires_grad=False), data=st.data())
def test_all_any_count_nonzero(x, data):
    dim = data.draw(mst.valid_dims(x.ndim))
    keepdim = data.draw(st.booleans())
    ax = _np_dims(dim, x.ndim)
    np.testing.assert_array_equal(mg.all(x, dim, keepdim).array, np.all(x.array, axis=ax, keepdims=keepdim))
    np.testing.assert_array_equal(x.any(dim, keepdim).array, np.any(x.array, axis=ax, keepdims=keepdim))
    np.testing.assert_array_equal(mg.count_nonzero(x, dim).array, np.count_nonzero(x.array, axis=ax))
    assert mg.all(x).dtype == mg.bool_ and mg.count_nonzero(x).dtype == mg.int64
    b = x != 0
    np.testing.assert_array_equal(b.all(dim).array, np.all(b.array, axis=ax))


# ------------------------------------------------------------------ errors
def test_errors():
    x = mg.zeros(2, 3)
    with pytest.raises(DimError, match="out of range"):
        mg.var(x, 2)
    with pytest.raises(DimError):
        mg.logsumexp(x, (0, -3))
    with pytest.raises(DimError):
        x.max(5)
    with pytest.raises(DimError):
        mg.argmax(x, -3)
    with pytest.raises(DimError):
        mg.norm(x, 2, 3)
    with pytest.raises(DimError):
        mg.cumsum(x, 2)
    with pytest.raises(DimError):
        mg.amax(x, (0, 0))
    with pytest.raises(DTypeError, match="int64"):
        mg.var(mg.tensor([1, 2]))
    with pytest.raises(DTypeError):
        mg.std(mg.tensor([1, 2]))
    with pytest.raises(DTypeError):
        mg.norm(mg.tensor([1, 2]))
    with pytest.raises(InvalidArgumentError):
        x.max((0, 1))
    with pytest.raises(InvalidArgumentError):
        mg.prod(x, (0, 1))
    with pytest.raises(InvalidArgumentError, match="empty"):
        mg.zeros(0, 3).max()
    with pytest.raises(InvalidArgumentError):
        mg.norm(x, "nuc")
    with pytest.raises(InvalidArgumentError):
        mg.var(x, 0, unbiased=True, correction=1)


@requires_torch
@given(x=mst.tensors(shape=mst.shapes(min_dims=1), elements=st.sampled_from([0.0, 1.0, -1.0, 2.5]),
                     requires_grad=False), data=st.data())
def test_index_and_truth_reductions_match_torch(x, data):
    import torch

    t = to_torch(x)
    d = data.draw(mst.valid_dim(x.ndim))
    keepdim = data.draw(st.booleans())
    for name in ("argmax", "argmin"):  # ties: the first occurrence in both
        np.testing.assert_array_equal(getattr(mg, name)(x, d, keepdim).array, getattr(torch, name)(t, d, keepdim).numpy())
        np.testing.assert_array_equal(getattr(mg, name)(x).array, getattr(torch, name)(t).numpy())
    np.testing.assert_array_equal(mg.max(x, d, keepdim).indices.array, torch.max(t, d, keepdim).indices.numpy())
    np.testing.assert_array_equal(mg.min(x, d, keepdim).indices.array, torch.min(t, d, keepdim).indices.numpy())
    np.testing.assert_array_equal(mg.all(x, d, keepdim).array, torch.all(t, d, keepdim).numpy())
    np.testing.assert_array_equal(mg.any(x, d, keepdim).array, torch.any(t, d, keepdim).numpy())
    np.testing.assert_array_equal(mg.count_nonzero(x, d).array, torch.count_nonzero(t, d).numpy())
    mn, mx = mg.aminmax(x, dim=d, keepdim=keepdim)
    tmn, tmx = torch.aminmax(t, dim=d, keepdim=keepdim)
    np.testing.assert_array_equal(mn.array, tmn.numpy())
    np.testing.assert_array_equal(mx.array, tmx.numpy())


# ------------------------------------------------------------------ fast_backward == backward
@given(data=st.data())
def test_prod_cumprod_fast_backward_equals_formula(data):
    """Prod/Cumprod.fast_backward (O(n) scans on arrays, exact with zeros) == the backward formula
    (y / x without zeros, the n x n product-of-others with zeros), which create_graph=True runs."""
    shape = data.draw(mst.shapes(max_dims=3, max_side=4))
    elems = st.sampled_from([0.0, 0.5, -1.5, 2.0, 1.25]) | mst.floats(-2, 2)
    x = data.draw(mst.tensors(shape=shape, elements=elems))
    keepdim = data.draw(st.booleans())
    dim = data.draw(st.none() | mst.valid_dim(x.ndim))
    for fn in (lambda t: mg.prod(t, dim, keepdim=keepdim) if dim is not None else mg.prod(t),
               lambda t: mg.cumprod(t, 0 if dim is None else dim)):
        y = fn(x)
        v = mg.tensor(np.random.default_rng(0).standard_normal(y.shape))
        (fast,) = mg.grad(fn(x), x, grad_outputs=v)
        (formula,) = mg.grad(fn(x), x, grad_outputs=v, create_graph=True)
        np.testing.assert_allclose(fast.array, formula.array, rtol=1e-10, atol=1e-12)


def test_sum_mean_first_and_second_order_share_the_formula():
    """Sum/Mean have no array duplicate of their gradient any more: first order and create_graph agree."""
    x = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    for fn in (lambda t: (t.sum(1) ** 2).sum(), lambda t: (t.mean(0, keepdim=True) ** 2).sum(), lambda t: t.mean()):
        (g1,) = mg.grad(fn(x), x)
        (g2,) = mg.grad(fn(x), x, create_graph=True)
        np.testing.assert_array_equal(g1.array, g2.array)
    assert gradgradcheck(lambda t: (t.mean(0) ** 3).sum(), (x,))


# ------------------------------------------------------------------ reads: no silent wrong gradient
REDUCTIONS_EDIT = {
    "sum": lambda t: t.sum(1), "mean": lambda t: t.mean(0), "var": lambda t: mg.var(t, 1), "std": mg.std,
    "prod": lambda t: mg.prod(t, 1), "prod_all": mg.prod, "amax": lambda t: mg.amax(t, 1),
    "max_dim": lambda t: mg.max(t, 0).values, "logsumexp": lambda t: mg.logsumexp(t, 1),
    "norm2": lambda t: mg.norm(t, 2, 1), "norm1": lambda t: mg.norm(t, 1), "norm3": lambda t: mg.norm(t, 3.0, 0),
    "norm_inf": lambda t: mg.norm(t, float("inf")), "cumsum": lambda t: mg.cumsum(t, 1),
    "cumprod": lambda t: mg.cumprod(t, 1),
}


@pytest.mark.parametrize("name", list(REDUCTIONS_EDIT))
@pytest.mark.parametrize("create_graph", [False, True])
def test_editing_the_input_after_the_forward_never_gives_a_wrong_gradient(name, create_graph):
    """Editing the input in place after the forward raises InplaceError or leaves the gradient unchanged
    (first-order fast paths and the formula alike)."""
    from minigen.errors import InplaceError

    fn = REDUCTIONS_EDIT[name]
    base = mg.tensor(np.linspace(-1.3, 2.1, 12).reshape(3, 4), requires_grad=True)
    v = mg.tensor(np.random.default_rng(0).standard_normal(fn(base).shape))
    (want,) = mg.grad(fn(base * 1.0), base, grad_outputs=v)
    x = base * 1.0
    y = fn(x)
    x.mul_(-2.0)
    try:
        (got,) = mg.grad(y, base, grad_outputs=v, create_graph=create_graph)
    except InplaceError:
        return
    np.testing.assert_allclose(got.array, want.array, rtol=1e-14, atol=0)
