"""Shape ops (minigen/ops/shape.py: reshape/view, permute, broadcast, flatten ... contiguous) and the
indexing ops x[index] / x[index] = v (minigen/ops/indexing.py: getitem, setitem).

Every differentiable op: gradcheck on Hypothesis-drawn float64 inputs (contiguous and
not), PyTorch as a forward+gradient oracle where installed, one hand-computed case, and
the errors bad input raises.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen.errors import AutogradError, DimError, DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError
from minigen.testing import compare_with_torch as torch_compare, gradcheck, gradgradcheck
from minigen.testing.strategies import basic_indices, shapes, tensors, valid_dim

from conftest import requires_torch


def t64(values, requires_grad=True):
    return mg.tensor(values, dtype=mg.float64, requires_grad=requires_grad)


def factor_shape(draw, n):
    """A random shape whose product is ``n`` (n >= 1)."""
    dims, rest = [], n
    while rest > 1 and len(dims) < 3:
        divs = [d for d in range(2, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divs))
        dims.append(d)
        rest //= d
    if rest > 1:
        dims.append(rest)
    dims.insert(draw(st.integers(0, len(dims))), 1) if draw(st.booleans()) else None
    return tuple(dims)


# ================================================================== core: reshape / view
@given(st.data())
def test_reshape_gradcheck_and_view(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3)))
    new = factor_shape(data.draw, x.numel())
    assert gradcheck(lambda a: a.reshape(new), (x,))
    assert gradcheck(lambda a: mg.reshape(a * 1.0, -1), (x,))
    y = x.reshape(new)
    assert y.shape == new
    np.testing.assert_array_equal(y.detach().numpy().ravel(), np.asarray(x.array).ravel())


def test_reshape_hand_case_and_view_shares_version():
    x = t64(np.arange(6.0))
    y = x.view(2, 3)
    np.testing.assert_array_equal(y.detach().numpy(), [[0, 1, 2], [3, 4, 5]])
    (y * t64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], False)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 2, 3, 4, 5, 6])
    base = mg.zeros(6, dtype=mg.float64)
    v = base.view(2, 3)
    v[0, 0] = 1.0
    assert base._version() == 1 and base.numpy()[0] == 1.0


def test_view_shares_memory_and_refuses_to_copy():
    """``view`` is a true view (writes reach the base); where x's strides make that impossible it
    raises, as PyTorch, instead of silently copying (writes through such a "view" were lost)."""
    base = mg.zeros(2, 3, dtype=mg.float64)
    v = base.view(3, 2)
    v[0, 1] = 5.0
    assert base.numpy()[0, 1] == 5.0 and base._version() == v._version() == 1
    t = base.transpose(0, 1)                        # shape (3, 2), strides (1, 3): not contiguous
    with pytest.raises(ShapeError, match=r"view size is not compatible.*\(3, 2\).*Use \.reshape"):
        t.view(6)
    with pytest.raises(ShapeError):
        t.view_as(mg.zeros(6))
    assert t.view(3, 1, 2).shape == (3, 1, 2)       # splitting / adding size-1 dims needs no copy
    assert t.contiguous().view(6).shape == (6,)
    r = t.reshape(6)                                # reshape copies when it must ...
    r.add_(1.0)
    assert base.numpy().sum() == 5.0 and base._version() == 1   # ... and the copy is not a view
    w = t.reshape(3, 1, 2)                          # ... and is a view when it can be
    w.mul_(0.0)
    assert base.numpy().sum() == 0.0 and base._version() == 2


def test_view_gradient_is_the_reshape_gradient():
    x = t64(np.arange(6.0).reshape(2, 3))
    y = (x * 1.0).view(3, 2)
    (y * t64(np.arange(6.0).reshape(3, 2), False)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(6.0).reshape(2, 3))
    assert gradcheck(lambda a: a.view(-1, 2), (x,))
    assert gradgradcheck(lambda a: (a * a).view(3, 2), (x,))


@requires_torch
@given(st.data())
def test_view_raises_exactly_when_torch_does(data):
    """Permuted or sliced tensors viewed as random shapes: minigen raises iff PyTorch raises, and the
    values agree when it does not."""
    import torch

    shape = data.draw(shapes(min_dims=2, max_dims=4, min_side=1, max_side=4))
    perm = data.draw(st.permutations(range(len(shape))))
    step = data.draw(st.sampled_from([1, 2]))
    a = np.arange(float(np.prod(shape))).reshape(shape)
    x = mg.tensor(a).permute(*perm)[..., ::step]
    tx = torch.tensor(a).permute(*perm)[..., ::step]
    new = factor_shape(data.draw, x.numel())
    try:
        expected = tx.view(new)
    except RuntimeError:
        with pytest.raises(ShapeError, match="view size is not compatible"):
            x.view(new)
    else:
        np.testing.assert_array_equal(x.view(new).numpy(), expected.numpy())


def test_sum_to_size():
    x = t64(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.sum_to_size(1, 3).detach().numpy(), [[3.0, 5.0, 7.0]])
    np.testing.assert_array_equal(mg.sum_to_size(x, (3,)).detach().numpy(), [3.0, 5.0, 7.0])
    assert x.sum_to_size(2, 3) is x
    with pytest.raises(ShapeError, match=r"\(4,\).*\(2, 3\)"):
        x.sum_to_size(4)
    assert gradgradcheck(lambda a: (a * a).sum_to_size(2, 1), (x,))


def test_reshape_gradgradcheck():
    x = t64(np.linspace(-1, 1, 12).reshape(3, 4))
    assert gradgradcheck(lambda a: (a * a).reshape(2, 6).reshape(4, 3), (x,))


def test_reshape_error_names_shapes():
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(4,\)"):
        mg.ones(2, 3).reshape(4)


@requires_torch
@given(st.data())
def test_reshape_matches_torch(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3)))
    new = factor_shape(data.draw, x.numel())
    torch_compare(lambda a: a.reshape(new), lambda a: a.reshape(new), (x,))


# ================================================================== core: permute / transpose / T / mT
@given(st.data())
def test_permute_transpose_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=4, max_side=3)))
    perm = data.draw(st.permutations(range(x.ndim)))
    perm = [p - x.ndim if data.draw(st.booleans()) else p for p in perm]
    d0, d1 = data.draw(valid_dim(x.ndim)), data.draw(valid_dim(x.ndim))
    assert gradcheck(lambda a: a.permute(*perm), (x,))
    assert gradcheck(lambda a: a.transpose(d0, d1), (x,))
    np.testing.assert_array_equal(x.permute(perm).detach().numpy(), np.transpose(np.asarray(x.array), perm))


@requires_torch
@given(st.data())
def test_permute_transpose_T_mT_match_torch(data):
    x = data.draw(tensors(shape=shapes(min_dims=2, max_dims=4, max_side=3)))
    perm = data.draw(st.permutations(range(x.ndim)))
    torch_compare(lambda a: a.permute(perm), lambda a: a.permute(perm), (x,))
    torch_compare(lambda a: a.mT, lambda a: a.mT, (x,))
    torch_compare(lambda a: a.transpose(0, -1), lambda a: a.transpose(0, -1), (x,))
    if x.ndim == 2:
        torch_compare(lambda a: a.T, lambda a: a.T, (x,))


def test_transpose_hand_case_and_errors():
    x = t64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(x.T.detach().numpy(), [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(x.mT.detach().numpy(), [[1, 4], [2, 5], [3, 6]])
    (x.T * t64([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]], False)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 0, 0], [0, 0, 2]])
    with pytest.raises(ShapeError, match="permutation"):
        x.permute(0, 0)
    with pytest.raises(DimError, match="out of range"):
        x.transpose(0, 2)


# ================================================================== core: broadcast_to / expand
@given(st.data())
def test_broadcast_to_expand_gradcheck(data):
    shp = data.draw(shapes(min_dims=0, max_dims=3, max_side=3))
    target = data.draw(hnp.broadcastable_shapes(shp, min_dims=len(shp), max_dims=len(shp) + 1, max_side=3))
    target = tuple(max(a, b) for a, b in zip((1,) * (len(target) - len(shp)) + shp, target))
    x = data.draw(tensors(shape=shp))
    assert gradcheck(lambda a: a.broadcast_to(target), (x,))
    assert gradcheck(lambda a: a.expand(*target[:len(target) - len(shp)], *([-1] * len(shp))), (x,))


def test_broadcast_hand_case_and_error():
    x = t64([[1.0], [2.0]])
    y = x.expand(2, 3)
    np.testing.assert_array_equal(y.detach().numpy(), [[1, 1, 1], [2, 2, 2]])
    (y * t64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], False)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[6.0], [15.0]])
    with pytest.raises(ShapeError, match=r"\(2, 1\).*\(3, 3\)"):
        x.broadcast_to((3, 3))


@requires_torch
def test_expand_matches_torch():
    x = t64(np.arange(3.0).reshape(3, 1))
    torch_compare(lambda a: a.expand(2, 3, 4), lambda a: a.expand(2, 3, 4), (x,))


# ================================================================== core: getitem
@given(st.data())
def test_getitem_basic_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3)))
    idx = data.draw(basic_indices(x.shape, allow_newaxis=True))
    y = x[idx]
    np.testing.assert_array_equal(y.detach().numpy(), np.asarray(x.array)[idx])
    assert gradcheck(lambda a: a[idx], (x,))


@given(st.data())
def test_getitem_integer_array_with_repeats_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3)))
    rows = np.asarray(data.draw(st.lists(st.integers(-x.shape[0], x.shape[0] - 1), min_size=1, max_size=6)))
    assert gradcheck(lambda a: a[rows], (x,))
    assert gradcheck(lambda a: a[mg.tensor(rows)], (x,))
    if x.ndim >= 2:
        cols = np.asarray(data.draw(st.lists(st.integers(0, x.shape[1] - 1), min_size=1, max_size=4)))
        assert gradcheck(lambda a: a[:, cols], (x,))


@given(st.data())
def test_getitem_boolean_mask_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3)))
    mask = data.draw(hnp.arrays(np.bool_, x.shape))
    assert gradcheck(lambda a: a[mask], (x,))
    assert gradcheck(lambda a: a[mg.tensor(mask)], (x,))
    row_mask = data.draw(hnp.arrays(np.bool_, (x.shape[0],)))
    assert gradcheck(lambda a: a[row_mask], (x,))


def test_getitem_hand_cases():
    x = t64([1.0, 2.0, 3.0])
    x[[0, 0, 2, 0]].sum().backward()          # repeats accumulate
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])
    m = t64([[1.0, -2.0], [-3.0, 4.0]])
    sel = m[m.detach() > 0]
    np.testing.assert_array_equal(sel.detach().numpy(), [1.0, 4.0])
    sel.sum().backward()
    np.testing.assert_array_equal(m.grad.numpy(), [[1, 0], [0, 1]])


def test_getitem_gradgradcheck():
    x = t64(np.linspace(-1, 1, 12).reshape(3, 4))
    idx = np.array([2, 0, 2])
    assert gradgradcheck(lambda a: (a * a)[idx, 1:3], (x,))
    assert gradgradcheck(lambda a: (a * a)[1:, ::2], (x,))


def test_getitem_errors():
    x = mg.ones(3, 4)
    with pytest.raises(DTypeError, match="float"):
        x[1.0]
    with pytest.raises(DTypeError, match="integer or bool"):
        x[mg.tensor([0.0, 1.0])]
    with pytest.raises(IndexOutOfRangeError, match=r"\(3, 4\)"):
        x[5]
    with pytest.raises(IndexOutOfRangeError, match=r"\(3, 4\)"):
        x[mg.tensor([0, 3])]


@requires_torch
@given(st.data())
def test_getitem_matches_torch(data):
    x = data.draw(tensors(shape=shapes(min_dims=2, max_dims=3)))
    rows = np.asarray(data.draw(st.lists(st.integers(0, x.shape[0] - 1), min_size=1, max_size=5)))
    mask = data.draw(hnp.arrays(np.bool_, x.shape))
    import torch

    torch_compare(lambda a: a[rows], lambda a: a[torch.tensor(rows)], (x,))
    torch_compare(lambda a: a[mask], lambda a: a[torch.tensor(mask)], (x,))
    torch_compare(lambda a: a[1:, ..., :1], lambda a: a[1:, ..., :1], (x,))
    torch_compare(lambda a: a[None, -1], lambda a: a[None, -1], (x,))


# ================================================================== core: setitem / in place
@given(st.data())
def test_setitem_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3)))
    rows = np.asarray(data.draw(st.lists(st.integers(0, x.shape[0] - 1), min_size=1, max_size=3, unique=True)))
    v = data.draw(tensors(shape=(len(rows),) + x.shape[1:]))
    s = data.draw(tensors(shape=(1,) * (x.ndim - 1)))

    def f(a, b, c):
        y = a * 1.0
        y[rows] = b             # integer-array assignment
        y[-1:, ...] = c          # basic assignment with broadcasting
        return y * y

    assert gradcheck(f, (x, v, s))


def test_setitem_hand_case():
    x, v = t64([1.0, 2.0, 3.0]), t64(10.0)
    y = x * 2.0
    y[1] = v * 3.0
    np.testing.assert_array_equal(y.detach().numpy(), [2.0, 30.0, 6.0])
    (y * t64([1.0, 2.0, 3.0], False)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 6.0])
    np.testing.assert_array_equal(v.grad.numpy(), 6.0)
    c = mg.zeros(2, 2)
    c[0] = mg.tensor([1.0, 2.0])
    assert c._version() == 1 and c.tolist() == [[1.0, 2.0], [0.0, 0.0]]


def test_setitem_one_element_value_into_scalar_slot():
    x, v = t64([1.0, 2.0, 3.0]), t64([10.0])
    y = x * 1.0
    y[1] = v
    y.sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [1.0])


def test_setitem_errors():
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        mg.zeros(2, 2)[0] = mg.ones(3)
    with pytest.raises(AutogradError, match="leaf"):
        t64([1.0, 2.0])[0] = 3.0
    with pytest.raises(IndexOutOfRangeError):
        mg.zeros(2)[4] = 1.0


@requires_torch
def test_setitem_matches_torch():
    import torch

    x, v = t64(np.arange(12.0).reshape(3, 4) / 7), t64(np.ones((2, 4)) * 0.5)

    def f_mg(a, b):
        y = a * a
        y[[2, 0]] = b * b
        return y

    def f_t(a, b):
        y = a * a
        y[torch.tensor([2, 0])] = b * b
        return y

    torch_compare(f_mg, f_t, (x, v))


def test_in_place_edit_through_view_reaches_base_gradient():
    x = t64(np.ones((2, 3)))
    a = x * 1.0
    v = a[0]
    v.mul_(2.0)
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 2.0, 2.0], [1.0, 1.0, 1.0]])


# ================================================================== flatten / unflatten / squeeze / unsqueeze
@given(st.data())
def test_flatten_unflatten_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=4, max_side=3)))
    s = data.draw(valid_dim(x.ndim))
    e = data.draw(valid_dim(x.ndim))
    if s % x.ndim > e % x.ndim:
        s, e = e, s
    y = mg.flatten(x, s, e)
    want = np.asarray(x.array).reshape(x.shape[:s % x.ndim] + (-1,) + x.shape[e % x.ndim + 1:])
    np.testing.assert_array_equal(y.detach().numpy(), want)
    assert gradcheck(lambda a: a.flatten(s, e), (x,))
    d = data.draw(valid_dim(y.ndim))
    n = y.shape[d]
    sizes = factor_shape(data.draw, n)
    z = y.unflatten(d, sizes)
    assert z.numel() == x.numel()
    assert gradcheck(lambda a: mg.unflatten(a.flatten(s, e), d, sizes), (x,))


@given(st.data())
def test_squeeze_unsqueeze_gradcheck(data):
    shp = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=2))
    x = data.draw(tensors(shape=shp))
    dim = data.draw(st.none() | valid_dim(x.ndim) | st.lists(st.integers(0, x.ndim - 1), unique=True).map(tuple))
    ref = np.asarray(x.array)
    if dim is None:
        want = ref.squeeze()
    else:
        dd = dim if isinstance(dim, tuple) else (dim,)
        want = ref.squeeze(tuple(d for d in dd if ref.shape[d] == 1))
    assert x.squeeze(dim).shape == want.shape
    assert gradcheck(lambda a: a.squeeze(dim), (x,))
    u = data.draw(st.integers(-x.ndim - 1, x.ndim))
    assert x.unsqueeze(u).shape == np.expand_dims(ref, u).shape
    assert gradcheck(lambda a: a.unsqueeze(u), (x,))


@requires_torch
def test_flatten_squeeze_family_matches_torch():
    x = t64(np.arange(24.0).reshape(2, 1, 3, 4) / 10)
    torch_compare(lambda a: a.flatten(1), lambda a: a.flatten(1), (x,))
    torch_compare(lambda a: a.flatten(0, -2), lambda a: a.flatten(0, -2), (x,))
    torch_compare(lambda a: a.unflatten(-1, (2, -1)), lambda a: a.unflatten(-1, (2, -1)), (x,))
    torch_compare(lambda a: a.squeeze(), lambda a: a.squeeze(), (x,))
    torch_compare(lambda a: a.squeeze((0, 1)), lambda a: a.squeeze((0, 1)), (x,))
    torch_compare(lambda a: a.unsqueeze(-1), lambda a: a.unsqueeze(-1), (x,))
    torch_compare(lambda a: a.ravel(), lambda a: a.ravel(), (x,))


def test_flatten_family_hand_cases_and_errors():
    assert mg.tensor(3.0).flatten().shape == (1,)
    assert mg.ones(2, 3, 4).flatten(1).shape == (2, 12)
    assert mg.ones(2, 12).unflatten(1, (3, -1)).shape == (2, 3, 4)
    assert mg.ones(1, 2, 1).squeeze().shape == (2,)
    assert mg.ones(1, 2, 1).squeeze(1).shape == (1, 2, 1)
    with pytest.raises(DimError):
        mg.ones(2, 3).flatten(1, 0)
    with pytest.raises(ShapeError, match="12"):
        mg.ones(2, 12).unflatten(1, (5, -1))
    with pytest.raises(ShapeError, match=r"\(2, 2\)"):
        mg.ones(2, 12).unflatten(1, (2, 2))
    with pytest.raises(DimError):
        mg.ones(2).unsqueeze(3)


# ================================================================== repeat / tile / repeat_interleave
@given(st.data())
def test_repeat_tile_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=0, max_dims=3, max_side=3)))
    reps = data.draw(st.lists(st.integers(0, 3), min_size=x.ndim, max_size=x.ndim + 1))
    want = np.tile(np.asarray(x.array).reshape((1,) * (len(reps) - x.ndim) + x.shape), reps)
    np.testing.assert_array_equal(x.repeat(*reps).detach().numpy(), want)
    assert gradcheck(lambda a: a.repeat(reps), (x,))
    treps = data.draw(st.lists(st.integers(1, 2), min_size=0, max_size=x.ndim + 1))
    assert gradcheck(lambda a: a.tile(treps), (x,))


@given(st.data())
def test_repeat_interleave_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3, max_side=3)))
    d = data.draw(valid_dim(x.ndim))
    reps = data.draw(st.lists(st.integers(0, 3), min_size=x.shape[d], max_size=x.shape[d]))
    want = np.repeat(np.asarray(x.array), reps, axis=d)
    y = x.repeat_interleave(mg.tensor(reps), dim=d)
    np.testing.assert_array_equal(y.detach().numpy(), want)
    assert gradcheck(lambda a: a.repeat_interleave(mg.tensor(reps), dim=d), (x,))
    assert gradcheck(lambda a: mg.repeat_interleave(a, 2), (x,))


def test_repeat_hand_cases_and_errors():
    x = t64([1.0, 2.0])
    y = x.repeat(2, 3)                      # (2, 6): every element appears 6 times
    assert y.shape == (2, 6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 6.0])
    np.testing.assert_array_equal(mg.tensor([1, 2]).repeat_interleave(mg.tensor([2, 1])).numpy(), [1, 1, 2])
    np.testing.assert_array_equal(mg.repeat_interleave(mg.tensor([2, 0, 1])).numpy(), [0, 0, 2])
    with pytest.raises(ShapeError, match=r"\(2, 3\)"):
        mg.ones(2, 3).repeat(2)
    with pytest.raises(ShapeError, match="repeat counts"):
        mg.ones(3).repeat_interleave(mg.tensor([1, 2]), dim=0)


@requires_torch
def test_repeat_family_matches_torch():
    import torch

    x = t64(np.arange(6.0).reshape(2, 3) / 5)
    torch_compare(lambda a: a.repeat(2, 1, 3), lambda a: a.repeat(2, 1, 3), (x,))
    torch_compare(lambda a: a.tile((2,)), lambda a: a.tile((2,)), (x,))
    torch_compare(lambda a: a.repeat_interleave(2), lambda a: a.repeat_interleave(2), (x,))
    torch_compare(lambda a: a.repeat_interleave(mg.tensor([1, 0, 3]), dim=1),
                  lambda a: a.repeat_interleave(torch.tensor([1, 0, 3]), dim=1), (x,))


# ================================================================== cat / stack / split family
@given(st.data())
def test_cat_stack_gradcheck(data):
    shp = data.draw(shapes(min_dims=1, max_dims=3, max_side=3))
    d = data.draw(valid_dim(len(shp)))
    k = data.draw(st.integers(1, 3))
    xs = []
    for _ in range(k):
        s = list(shp)
        s[d] = data.draw(st.integers(0, 3))
        xs.append(data.draw(tensors(shape=tuple(s))))
    y = mg.cat(xs, d)
    np.testing.assert_array_equal(y.detach().numpy(), np.concatenate([np.asarray(t.array) for t in xs], axis=d))
    assert gradcheck(lambda *a: mg.cat(list(a), dim=d), tuple(xs))
    ys = [data.draw(tensors(shape=shp)) for _ in range(k)]
    sd = data.draw(st.integers(-len(shp) - 1, len(shp)))
    assert gradcheck(lambda *a: mg.stack(a, sd), tuple(ys))


def test_cat_stack_gradgradcheck():
    a, b = t64(np.linspace(-1, 1, 6).reshape(2, 3)), t64(np.linspace(0.5, 2, 3).reshape(1, 3))
    assert gradgradcheck(lambda p, q: mg.cat([p * p, q * p[:1]], 0), (a, b))
    assert gradgradcheck(lambda p: mg.stack([p * p, p], -1), (a,))


def test_cat_stack_hand_cases_and_errors():
    a, b = t64([[1.0, 2.0]]), t64([[3.0, 4.0], [5.0, 6.0]])
    y = mg.cat([a, b])
    np.testing.assert_array_equal(y.detach().numpy(), [[1, 2], [3, 4], [5, 6]])
    (y * t64([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], False)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [[1, 2]])
    np.testing.assert_array_equal(b.grad.numpy(), [[3, 4], [5, 6]])
    assert mg.concat([a, a], 1).shape == (1, 4) and mg.concatenate([a, a], -1).shape == (1, 4)
    assert mg.stack([a, a], 1).shape == (1, 2, 2)
    assert not np.shares_memory(mg.cat([a]).array, a.array)          # always a new tensor
    assert mg.cat([mg.ones(2, 2), mg.zeros(0)]).shape == (2, 2)     # legacy empty tensor skipped
    assert mg.hstack([mg.ones(2), mg.ones(3)]).shape == (5,)
    assert mg.vstack([mg.ones(3), mg.ones(2, 3)]).shape == (3, 3)
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(2, 2\)"):
        mg.cat([mg.ones(2, 2), mg.ones(2, 3)], 0)
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        mg.stack([mg.ones(2), mg.ones(3)])
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        mg.cat([])
    with pytest.raises(DimError):
        mg.cat([mg.ones(2), mg.ones(2)], 1)


def test_cat_mixed_dtypes_promotes_and_casts_gradients_back():
    a = mg.tensor([1.0, 2.0], dtype=mg.float32, requires_grad=True)
    b = mg.tensor([3.0], dtype=mg.float64, requires_grad=True)
    y = mg.cat([a, b])
    assert y.dtype == mg.float64
    (y * 2).sum().backward()
    assert a.grad.dtype == mg.float32 and b.grad.dtype == mg.float64
    np.testing.assert_array_equal(a.grad.numpy(), [2.0, 2.0])


@given(st.data())
def test_split_chunk_unbind_tensor_split_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3, max_side=5)))
    d = data.draw(valid_dim(x.ndim))
    n = x.shape[d]
    size = data.draw(st.integers(1, n))
    parts = x.split(size, d)
    assert [p.shape[d] for p in parts] == [size] * (n // size) + ([n % size] if n % size else [])
    np.testing.assert_array_equal(mg.cat(parts, d).detach().numpy(), np.asarray(x.array))
    k = data.draw(st.integers(1, 4))
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3)))
    sections = [b - a for a, b in zip([0] + cuts, cuts + [n])]

    def weigh(ps):
        return [p * float(i + 1) for i, p in enumerate(ps)]   # distinct weights catch misrouted gradients

    assert gradcheck(lambda a: weigh(a.split(size, d)), (x,))
    assert gradcheck(lambda a: weigh(a.split(sections, d)), (x,))
    assert gradcheck(lambda a: weigh(a.chunk(k, d)), (x,))
    assert gradcheck(lambda a: weigh(a.unbind(d)), (x,))
    assert gradcheck(lambda a: weigh(a.tensor_split(k, d)), (x,))
    assert gradcheck(lambda a: weigh(a.tensor_split(cuts, d)), (x,))


@requires_torch
@given(st.data())
def test_split_family_matches_torch(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3, max_side=5)))
    d = data.draw(valid_dim(x.ndim))
    n = x.shape[d]
    size = data.draw(st.integers(1, n))
    k = data.draw(st.integers(1, 4))
    cuts = data.draw(st.lists(st.integers(-n, n), max_size=3))
    torch_compare(lambda a: a.split(size, d), lambda a: a.split(size, d), (x,))
    torch_compare(lambda a: a.chunk(k, d), lambda a: a.chunk(k, d), (x,))
    torch_compare(lambda a: a.unbind(d), lambda a: a.unbind(d), (x,))
    torch_compare(lambda a: a.tensor_split(k, d), lambda a: a.tensor_split(k, d), (x,))
    torch_compare(lambda a: a.tensor_split(cuts, d), lambda a: a.tensor_split(cuts, d), (x,))
    s = data.draw(st.integers(-n, n - 1))
    ln = data.draw(st.integers(0, n - s % n))
    torch_compare(lambda a: a.narrow(d, s, ln), lambda a: a.narrow(d, s, ln), (x,))
    torch_compare(lambda a: a.select(d, s), lambda a: a.select(d, s), (x,))


def test_split_hand_cases_and_errors():
    x = mg.arange(7)
    assert [p.tolist() for p in x.split(3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [p.tolist() for p in x.split([2, 5])] == [[0, 1], [2, 3, 4, 5, 6]]
    assert [p.tolist() for p in x.chunk(3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [p.tolist() for p in x.tensor_split(3)] == [[0, 1, 2], [3, 4], [5, 6]]
    assert [p.tolist() for p in x.tensor_split([1, 5])] == [[0], [1, 2, 3, 4], [5, 6]]
    assert x.narrow(0, -3, 2).tolist() == [4, 5]
    assert [t.tolist() for t in mg.tensor([[1, 2], [3, 4]]).unbind(1)] == [[1, 3], [2, 4]]
    with pytest.raises(ShapeError, match="sum to the size 7"):
        x.split([2, 2])
    with pytest.raises(InvalidArgumentError, match="exceeds"):
        x.narrow(0, 5, 3)
    with pytest.raises(IndexOutOfRangeError, match="size 7"):
        x.select(0, 7)
    with pytest.raises(InvalidArgumentError):
        x.chunk(0)


# ================================================================== pad
@given(st.data())
def test_pad_all_modes_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3, min_side=2, max_side=4)))
    k = data.draw(st.integers(1, x.ndim))
    mode = data.draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    amounts = []
    for i in range(k):
        n = x.shape[x.ndim - 1 - i]
        if mode == "constant":
            amounts += [data.draw(st.integers(-n + 1, 3)), data.draw(st.integers(-1, 3))]
        elif mode == "reflect":
            amounts += [data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1))]
        else:
            amounts += [data.draw(st.integers(0, n)), data.draw(st.integers(0, n))]
    value = data.draw(st.sampled_from([0.0, 1.5])) if mode == "constant" else None
    kw = {"value": value} if value is not None else {}
    if mode != "constant" or all(a >= 0 for a in amounts):
        np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
        widths = [(0, 0)] * (x.ndim - k) + [(amounts[2 * i], amounts[2 * i + 1]) for i in reversed(range(k))]
        want = np.pad(np.asarray(x.array), widths, mode=np_mode, **({"constant_values": value} if value else {}))
        np.testing.assert_array_equal(mg.pad(x, amounts, mode, **kw).detach().numpy(), want)
    assert gradcheck(lambda a: mg.pad(a, amounts, mode=mode, **kw), (x,))


def test_pad_gradgradcheck():
    x = t64(np.linspace(-1, 1, 12).reshape(3, 4))
    assert gradgradcheck(lambda a: mg.pad(a * a, (1, 2, 0, 1), value=0.5), (x,))
    assert gradgradcheck(lambda a: mg.pad(a * a, (2, 1), mode="reflect"), (x,))


def test_pad_hand_cases_and_errors():
    x = t64([1.0, 2.0, 3.0])
    y = mg.pad(x, (2, 1), mode="reflect")
    np.testing.assert_array_equal(y.detach().numpy(), [3, 2, 1, 2, 3, 2])
    y.sum().backward()                       # sources 2,1,0,1,2,1: counts 1, 3, 2
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 3.0, 2.0])
    np.testing.assert_array_equal(mg.pad(mg.tensor([1.0, 2.0]), (1, 2), mode="replicate").numpy(), [1, 1, 2, 2, 2])
    np.testing.assert_array_equal(mg.pad(mg.tensor([1.0, 2.0]), (1, 2), mode="circular").numpy(), [2, 1, 2, 1, 2])
    np.testing.assert_array_equal(mg.pad(mg.tensor([1.0, 2.0, 3.0]), (-1, 1), value=9).numpy(), [2, 3, 9])
    with pytest.raises(InvalidArgumentError, match="even"):
        mg.pad(mg.ones(2, 2), (1, 1, 1))
    with pytest.raises(InvalidArgumentError, match="smaller than the size 2"):
        mg.pad(mg.ones(2, 2), (2, 0), mode="reflect")
    with pytest.raises(InvalidArgumentError, match="unknown mode"):
        mg.pad(mg.ones(2), (1, 1), mode="mirror")
    with pytest.raises(ShapeError, match="negative size"):
        mg.pad(mg.ones(2), (-2, -1))


@requires_torch
@given(st.data())
def test_pad_matches_torch(data):
    import torch.nn.functional as tF

    k = data.draw(st.integers(1, 2))
    x = data.draw(tensors(shape=(2, 2) + tuple(data.draw(st.integers(2, 4)) for _ in range(k))))
    mode = data.draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    amounts = []
    for i in range(k):
        n = x.shape[x.ndim - 1 - i]
        hi = n - 1 if mode == "reflect" else n
        lo = -1 if mode == "constant" else 0
        amounts += [data.draw(st.integers(lo, hi)), data.draw(st.integers(lo, hi))]
    if mode == "constant":
        torch_compare(lambda a: mg.pad(a, amounts, value=0.25), lambda a: tF.pad(a, amounts, value=0.25), (x,))
    else:
        torch_compare(lambda a: mg.pad(a, amounts, mode), lambda a: tF.pad(a, amounts, mode=mode), (x,))


# ================================================================== flip / roll / tril / triu
@given(st.data())
def test_flip_roll_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3)))
    dims = tuple(data.draw(st.lists(valid_dim(x.ndim), min_size=1, max_size=x.ndim,
                                    unique_by=lambda d: d % x.ndim)))
    np.testing.assert_array_equal(x.flip(dims).detach().numpy(), np.flip(np.asarray(x.array), dims))
    assert gradcheck(lambda a: a.flip(dims), (x,))
    shifts = tuple(data.draw(st.integers(-5, 5)) for _ in dims)
    np.testing.assert_array_equal(x.roll(shifts, dims).detach().numpy(), np.roll(np.asarray(x.array), shifts, dims))
    assert gradcheck(lambda a: a.roll(shifts, dims), (x,))
    assert gradcheck(lambda a: a.roll(shifts[0]), (x,))


@given(st.data())
def test_tril_triu_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=2, max_dims=3)))
    k = data.draw(st.integers(-3, 3))
    np.testing.assert_array_equal(x.tril(k).detach().numpy(), np.tril(np.asarray(x.array), k))
    np.testing.assert_array_equal(x.triu(k).detach().numpy(), np.triu(np.asarray(x.array), k))
    assert gradcheck(lambda a: a.tril(k), (x,))
    assert gradcheck(lambda a: mg.triu(a, diagonal=k), (x,))


def test_flip_roll_tril_hand_cases_and_errors():
    x = t64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(x.flip(1).detach().numpy(), [[3, 2, 1], [6, 5, 4]])
    np.testing.assert_array_equal(x.fliplr().detach().numpy(), [[3, 2, 1], [6, 5, 4]])
    np.testing.assert_array_equal(x.flipud().detach().numpy(), [[4, 5, 6], [1, 2, 3]])
    np.testing.assert_array_equal(x.roll(1).detach().numpy(), [[6, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(x.roll((1, -1), (0, 1)).detach().numpy(), [[5, 6, 4], [2, 3, 1]])
    y = x.tril()
    np.testing.assert_array_equal(y.detach().numpy(), [[1, 0, 0], [4, 5, 0]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 0, 0], [1, 1, 0]])
    f = x.flip(0)
    assert not np.shares_memory(f.array, x.array)   # a copy, as in PyTorch
    with pytest.raises(DimError, match="more than once"):
        x.flip((0, -2))
    with pytest.raises(InvalidArgumentError, match="same length"):
        x.roll((1, 2), 0)
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        mg.ones(3).tril()


@requires_torch
def test_flip_roll_tril_triu_match_torch():
    x = t64(np.linspace(-2, 2, 24).reshape(2, 3, 4))
    torch_compare(lambda a: a.flip((0, 2)), lambda a: a.flip((0, 2)), (x,))
    torch_compare(lambda a: a.roll(5), lambda a: a.roll(5), (x,))
    torch_compare(lambda a: a.roll((2, -7), (1, 2)), lambda a: a.roll((2, -7), (1, 2)), (x,))
    torch_compare(lambda a: a.tril(-1), lambda a: a.tril(-1), (x,))
    torch_compare(lambda a: a.triu(1), lambda a: a.triu(1), (x,))


# ================================================================== movedim / swapaxes / narrow / clone / contiguous
@given(st.data())
def test_movedim_swapaxes_narrow_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=4, max_side=3)))
    src = data.draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim, unique=True))
    dst = data.draw(st.lists(st.integers(0, x.ndim - 1), min_size=len(src), max_size=len(src), unique=True))
    np.testing.assert_array_equal(mg.movedim(x, src, dst).detach().numpy(), np.moveaxis(np.asarray(x.array), src, dst))
    assert gradcheck(lambda a: a.movedim(src, dst), (x,))
    d0, d1 = data.draw(valid_dim(x.ndim)), data.draw(valid_dim(x.ndim))
    assert gradcheck(lambda a: a.swapaxes(d0, d1), (x,))
    d = data.draw(valid_dim(x.ndim))
    start = data.draw(st.integers(0, x.shape[d]))
    assert gradcheck(lambda a: a.narrow(d, start, x.shape[d] - start), (x,))


@given(tensors(shape=shapes(min_dims=1, max_dims=3)))
def test_clone_contiguous_gradcheck(x):
    c = x.clone()
    assert not np.shares_memory(c.array, x.array)
    k = x.contiguous()
    assert k.is_contiguous()
    assert (k is x) == bool(x.array.flags.c_contiguous)
    assert gradcheck(lambda a: a.clone() * a.contiguous(), (x,))


@requires_torch
def test_movedim_family_matches_torch():
    x = t64(np.linspace(-2, 2, 24).reshape(2, 3, 4))
    torch_compare(lambda a: a.movedim(0, -1), lambda a: a.movedim(0, -1), (x,))
    torch_compare(lambda a: mg.moveaxis(a, (0, 1), (2, 0)), lambda a: a.moveaxis((0, 1), (2, 0)), (x,))
    torch_compare(lambda a: a.swapdims(0, 2), lambda a: a.swapdims(0, 2), (x,))
    torch_compare(lambda a: a.mT.contiguous(), lambda a: a.mT.contiguous(), (x,))


def test_movedim_hand_case_and_errors():
    x = mg.ones(2, 3, 4)
    assert x.movedim(0, 2).shape == (3, 4, 2)
    assert x.movedim((0, 2), (1, 0)).shape == (4, 2, 3)
    with pytest.raises(InvalidArgumentError, match="same number"):
        x.movedim((0, 1), 2)
    with pytest.raises(DimError):
        x.swapaxes(0, 3)


# ================================================================== bad arguments: minigen errors, never raw ones
BAD_SHAPE_CALLS = [
    # (call, minigen error, torch call raising too (or None where PyTorch has no such call))
    (lambda m: m.tensor(1.0).narrow(0, 0, 0), DimError, lambda t: t.tensor(1.0).narrow(0, 0, 0)),
    (lambda m: m.tensor(1.0).select(0, 0), DimError, lambda t: t.tensor(1.0).select(0, 0)),
    (lambda m: m.tensor(1.0).split(1), DimError, lambda t: t.tensor(1.0).split(1)),
    (lambda m: m.tensor(1.0).unbind(), DimError, lambda t: t.tensor(1.0).unbind()),
    (lambda m: m.tensor(1.0).tensor_split(2), DimError, lambda t: t.tensor(1.0).tensor_split(2)),
    (lambda m: m.tensor(1.0).unflatten(0, ()), DimError, lambda t: t.tensor(1.0).unflatten(0, ())),
    (lambda m: m.ones(4).chunk(int), InvalidArgumentError, lambda t: t.ones(4).chunk(int)),
    (lambda m: m.ones(4).chunk(2.0), InvalidArgumentError, lambda t: t.ones(4).chunk(2.0)),
    (lambda m: m.ones(4).narrow(0, 1.5, 1), InvalidArgumentError, lambda t: t.ones(4).narrow(0, 1.5, 1)),
    (lambda m: m.ones(2, 2).tril([3]), InvalidArgumentError, lambda t: t.ones(2, 2).tril([3])),
    (lambda m: m.ones(2, 2).triu(0.5), InvalidArgumentError, lambda t: t.ones(2, 2).triu(0.5)),
    (lambda m: m.ones(2).expand_as(None), DTypeError, lambda t: t.ones(2).expand_as(None)),
    (lambda m: m.ones(2).reshape_as(None), DTypeError, lambda t: t.ones(2).reshape_as(None)),
    (lambda m: m.ones(2).view_as(3), DTypeError, lambda t: t.ones(2).view_as(3)),
    (lambda m: m.ones(2).broadcast_to({"a": 1}), InvalidArgumentError, lambda t: t.ones(2).broadcast_to({"a": 1})),
    (lambda m: m.ones(2).expand(2.5, 2), InvalidArgumentError, lambda t: t.ones(2).expand(2.5, 2)),
    (lambda m: m.ones(2).reshape(1.0, 2), InvalidArgumentError, lambda t: t.ones(2).reshape(1.0, 2)),
    (lambda m: m.ones(2, 3).sum_to_size(2.0), InvalidArgumentError, lambda t: t.ones(2, 3).sum_to_size(2.0)),
    (lambda m: m.ones(2, 3).sum_to(2.0), InvalidArgumentError, None),
]


@pytest.mark.parametrize("i", range(len(BAD_SHAPE_CALLS)))
def test_bad_shape_arguments_raise_minigen_errors(i):
    call, err, torch_call = BAD_SHAPE_CALLS[i]
    with pytest.raises(err):
        call(mg)
    try:
        import torch
    except ImportError:
        return
    if torch_call is not None:
        with pytest.raises((TypeError, RuntimeError, IndexError, ValueError)):
            torch_call(torch)
