"""Index-driven ops (minigen/ops/indexing.py): gather / scatter / index_select / index_add,
masked_fill / masked_select, embedding, one_hot.

Indices are drawn with repeats on purpose: gradients must accumulate at repeated positions.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen.errors import DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError
from minigen.testing import compare_with_torch as torch_compare, gradcheck, gradgradcheck, to_torch
from minigen.testing.strategies import shapes, tensors, valid_dim

from conftest import requires_torch


def t64(values, requires_grad=True):
    return mg.tensor(values, dtype=mg.float64, requires_grad=requires_grad)


def tt(a):
    return to_torch(np.asarray(a))


@st.composite
def gather_case(draw, max_side=4):
    """(x, dim, index): index as many dims as x, no bigger than x outside ``dim``, repeats likely."""
    x = draw(tensors(shape=shapes(min_dims=1, max_dims=3, max_side=max_side)))
    d = draw(valid_dim(x.ndim))
    ishape = tuple(draw(st.integers(1, 4)) if i == d % x.ndim else draw(st.integers(1, s))
                   for i, s in enumerate(x.shape))
    idx = draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, x.shape[d] - 1)))
    return x, d, idx


# ================================================================== gather / take_along_dim
@given(gather_case())
def test_gather_gradcheck_and_values(case):
    x, d, idx = case
    y = mg.gather(x, d, mg.tensor(idx))
    ref = np.asarray(x.array)
    dd = d % x.ndim
    for pos in np.ndindex(*idx.shape):
        src = list(pos)
        src[dd] = idx[pos]
        assert y.detach().numpy()[pos] == ref[tuple(src)]
    assert gradcheck(lambda a: a.gather(d, mg.tensor(idx)), (x,))


def test_gather_hand_case_repeated_indices_accumulate():
    x = t64([[1.0, 2.0], [3.0, 4.0]])
    idx = mg.tensor([[0, 0, 1], [1, 1, 1]])
    y = x.gather(1, idx)
    np.testing.assert_array_equal(y.detach().numpy(), [[1, 1, 2], [4, 4, 4]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2, 1], [0, 3]])


def test_gather_gradgradcheck():
    x = t64(np.linspace(-1, 1, 12).reshape(3, 4))
    idx = mg.tensor([[3, 3, 0], [1, 1, 2]])
    assert gradgradcheck(lambda a: (a * a).gather(1, idx), (x,))
    assert gradgradcheck(lambda a: (a * a).gather(0, mg.tensor([[2, 0, 2, 2]])), (x,))


@requires_torch
@given(gather_case())
def test_gather_matches_torch(case):
    import torch

    x, d, idx = case
    torch_compare(lambda a: a.gather(d, mg.tensor(idx)), lambda a: torch.gather(a, d, tt(idx)), (x,))


@given(st.data())
def test_take_along_dim_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3, max_side=3)))
    d = data.draw(valid_dim(x.ndim))
    ishape = tuple(data.draw(st.integers(1, 3)) if i == d % x.ndim else data.draw(st.sampled_from([1, s]))
                   for i, s in enumerate(x.shape))
    idx = data.draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, x.shape[d] - 1)))
    want = np.take_along_axis(np.asarray(x.array), idx, axis=d)
    np.testing.assert_array_equal(mg.take_along_dim(x, mg.tensor(idx), d).detach().numpy(), want)
    assert gradcheck(lambda a: a.take_along_dim(mg.tensor(idx), dim=d), (x,))
    flat = data.draw(hnp.arrays(np.int64, (4,), elements=st.integers(0, x.numel() - 1)))
    assert gradcheck(lambda a: mg.take_along_dim(a, mg.tensor(flat)), (x,))


@requires_torch
def test_take_along_dim_broadcast_matches_torch():
    import torch

    x = t64(np.linspace(-1, 1, 12).reshape(1, 3, 4))
    idx = np.array([[[0], [3]], [[2], [2]]])           # (2, 2, 1): broadcasts x's dim 0
    torch_compare(lambda a: mg.take_along_dim(a, mg.tensor(idx[:, :1]), 2),
                  lambda a: torch.take_along_dim(a, tt(idx[:, :1]), 2), (x,))
    torch_compare(lambda a: mg.take_along_dim(a, mg.tensor([11, 0, 0])),
                  lambda a: torch.take_along_dim(a, torch.tensor([11, 0, 0])), (x,))


# ================================================================== scatter_add / scatter
@given(gather_case(), st.data())
def test_scatter_add_gradcheck(case, data):
    x, d, idx = case
    src_shape = tuple(s + data.draw(st.integers(0, 1)) for s in idx.shape)   # src may be bigger than index
    src = data.draw(tensors(shape=src_shape))
    # x must be at least index-sized outside dim: it is, by construction
    ref = np.asarray(x.array).copy()
    dd = d % x.ndim
    for pos in np.ndindex(*idx.shape):
        dst = list(pos)
        dst[dd] = idx[pos]
        ref[tuple(dst)] += np.asarray(src.array)[pos]
    np.testing.assert_allclose(x.scatter_add(d, mg.tensor(idx), src).detach().numpy(), ref, rtol=1e-12)
    assert gradcheck(lambda a, s: mg.scatter_add(a, d, mg.tensor(idx), s), (x, src))


@given(st.data())
def test_scatter_gradcheck_unique_indices(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3, max_side=4)))
    d = data.draw(valid_dim(x.ndim)) % x.ndim
    # one permutation-derived index per column: no position is written twice
    ishape = tuple(data.draw(st.integers(1, s)) for s in x.shape)
    perm = np.asarray(data.draw(st.permutations(range(x.shape[d]))))[:ishape[d]]
    idx = np.broadcast_to(perm.reshape([-1 if i == d else 1 for i in range(x.ndim)]), ishape).copy()
    src = data.draw(tensors(shape=ishape))
    assert gradcheck(lambda a, s: a.scatter(d, mg.tensor(idx), s), (x, src))
    assert gradcheck(lambda a: mg.scatter(a, d, mg.tensor(idx), value=2.5), (x,))


def test_scatter_hand_cases():
    x = t64(np.zeros((2, 3)))
    src = t64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    idx = mg.tensor([[0, 1, 0], [0, 0, 0]])
    y = x.scatter_add(0, idx, src)
    np.testing.assert_array_equal(y.detach().numpy(), [[5, 5, 9], [0, 2, 0]])
    (y * t64([[1.0, 1.0, 1.0], [10.0, 10.0, 10.0]], False)).sum().backward()
    np.testing.assert_array_equal(src.grad.numpy(), [[1, 10, 1], [1, 1, 1]])
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1, 1], [10, 10, 10]])
    z = mg.zeros(2, 3).scatter(1, mg.tensor([[2], [0]]), mg.tensor([[7.0], [8.0]]))
    np.testing.assert_array_equal(z.numpy(), [[0, 0, 7], [8, 0, 0]])
    w = mg.zeros(3).scatter(0, mg.tensor([1]), value=4.0)
    np.testing.assert_array_equal(w.numpy(), [0, 4, 0])


def test_scatter_in_place_methods():
    base = t64([1.0, 2.0, 3.0])
    s = t64([10.0, 20.0])
    y = base * 1.0
    y.scatter_add_(0, mg.tensor([2, 2]), s)
    y.scatter_(0, mg.tensor([0]), 0.5)
    np.testing.assert_array_equal(y.detach().numpy(), [0.5, 2.0, 33.0])
    y.sum().backward()
    np.testing.assert_array_equal(base.grad.numpy(), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(s.grad.numpy(), [1.0, 1.0])


@requires_torch
@given(gather_case())
def test_scatter_add_matches_torch(case):
    x, d, idx = case
    src = t64(np.random.default_rng(1).standard_normal(idx.shape))
    torch_compare(lambda a, s: a.scatter_add(d, mg.tensor(idx), s),
                  lambda a, s: a.scatter_add(d, tt(idx), s), (x, src))


def test_scatter_gradgradcheck():
    x = t64(np.linspace(-1, 1, 6).reshape(2, 3))
    src = t64(np.linspace(0.5, 1.5, 6).reshape(2, 3))
    idx = mg.tensor([[1, 0, 1], [1, 1, 0]])
    assert gradgradcheck(lambda a, s: mg.scatter_add(a * a, 0, idx, s * s), (x, src))


# ================================================================== index_select / index_add
@given(st.data())
def test_index_select_index_add_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3, max_side=4)))
    d = data.draw(valid_dim(x.ndim))
    n = x.shape[d]
    idx = np.asarray(data.draw(st.lists(st.integers(0, n - 1), min_size=0, max_size=5)), dtype=np.int64)
    np.testing.assert_array_equal(x.index_select(d, mg.tensor(idx)).detach().numpy(),
                                  np.take(np.asarray(x.array), idx, axis=d))
    assert gradcheck(lambda a: a.index_select(d, mg.tensor(idx)), (x,))
    sshape = list(x.shape)
    sshape[d] = len(idx)
    src = data.draw(tensors(shape=tuple(sshape)))
    alpha = data.draw(st.sampled_from([1, -0.5]))
    ref = np.asarray(x.array).copy()
    where = (slice(None),) * (d % x.ndim) + (idx,)
    np.add.at(ref, where, alpha * np.asarray(src.array))
    # summation order may differ from np.add.at's: the error bound is relative to the summed magnitudes
    # (x = -0.5 plus five 0.1s is -2.8e-17 in one order and 0 in another), not to the possibly cancelled result
    scale = np.abs(np.asarray(x.array)).copy()
    np.add.at(scale, where, np.abs(alpha * np.asarray(src.array)))
    out = x.index_add(d, mg.tensor(idx), src, alpha=alpha).detach().numpy()
    assert np.all(np.abs(out - ref) <= 1e-12 * scale), (out, ref)
    assert gradcheck(lambda a, s: mg.index_add(a, d, mg.tensor(idx), s, alpha=alpha), (x, src))


def test_index_select_hand_case_and_gradgrad():
    x = t64([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = x.index_select(0, mg.tensor([2, 0, 2]))
    np.testing.assert_array_equal(y.detach().numpy(), [[5, 6], [1, 2], [5, 6]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1], [0, 0], [2, 2]])
    assert gradgradcheck(lambda a: (a * a).index_select(1, mg.tensor([1, 1, 0])), (t64(np.ones((2, 2)) * 0.3),))


def test_index_add_in_place():
    s = t64([[1.0, 2.0]])
    y = mg.zeros(3, 2, dtype=mg.float64)
    y.index_add_(0, mg.tensor([1]), s, alpha=2)
    np.testing.assert_array_equal(y.detach().numpy(), [[0, 0], [2, 4], [0, 0]])
    (y * 3).sum().backward()
    np.testing.assert_array_equal(s.grad.numpy(), [[6.0, 6.0]])


@requires_torch
def test_index_select_index_add_match_torch():
    x = t64(np.linspace(-1, 1, 12).reshape(3, 4))
    src = t64(np.linspace(0, 1, 9).reshape(3, 3))
    idx = np.array([3, 0, 3])
    torch_compare(lambda a: a.index_select(1, mg.tensor(idx)), lambda a: a.index_select(1, tt(idx)), (x,))
    torch_compare(lambda a, s: a.index_add(1, mg.tensor(idx), s, alpha=2.0),
                  lambda a, s: a.index_add(1, tt(idx), s, alpha=2.0), (x, src))


# ================================================================== masked_fill / masked_select
@given(st.data())
def test_masked_fill_gradcheck_with_broadcast_mask(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3)))
    mshape = data.draw(hnp.broadcastable_shapes(x.shape, max_dims=x.ndim, max_side=4))
    mask = data.draw(hnp.arrays(np.bool_, mshape))
    value = t64(data.draw(st.floats(-3, 3)))
    want = np.where(mask, float(value.array), np.asarray(x.array))
    np.testing.assert_array_equal(x.masked_fill(mg.tensor(mask), value).detach().numpy(), want)
    assert gradcheck(lambda a, v: a.masked_fill(mg.tensor(mask), v), (x, value))
    assert gradcheck(lambda a: mg.masked_fill(a, mg.tensor(mask), -1.5), (x,))


@given(st.data())
def test_masked_select_gradcheck(data):
    x = data.draw(tensors(shape=shapes(min_dims=1, max_dims=3)))
    mshape = data.draw(hnp.broadcastable_shapes(x.shape, max_dims=x.ndim, max_side=4))
    mask = data.draw(hnp.arrays(np.bool_, mshape))
    shape = np.broadcast_shapes(x.shape, mshape)
    want = np.broadcast_to(np.asarray(x.array), shape)[np.broadcast_to(mask, shape)]
    np.testing.assert_array_equal(x.masked_select(mg.tensor(mask)).detach().numpy(), want)
    assert gradcheck(lambda a: a.masked_select(mg.tensor(mask)), (x,))


def test_masked_fill_broadcasts_input_to_mask_shape():
    x = t64([[1.0], [2.0]])
    y = x.masked_fill(mg.tensor([True, False, False]), 0.0)
    np.testing.assert_array_equal(y.detach().numpy(), [[0, 1, 1], [0, 2, 2]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0], [2.0]])


def test_masked_fill_hand_case_and_in_place():
    x = t64([[1.0, 2.0], [3.0, 4.0]])
    v = t64(9.0)
    mask = mg.tensor([True, False])        # broadcast over rows: column 0
    y = x.masked_fill(mask, v)
    np.testing.assert_array_equal(y.detach().numpy(), [[9, 2], [9, 4]])
    (y * t64([[1.0, 2.0], [3.0, 4.0]], False)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 2], [0, 4]])
    assert v.grad.item() == 4.0
    z = x * 1.0
    z.masked_fill_(mg.tensor([[False, True], [False, False]]), 0.0)
    np.testing.assert_array_equal(z.detach().numpy(), [[1, 0], [3, 4]])
    scores = mg.zeros(2, 2)
    assert scores.masked_fill(mg.tensor([[False, True], [False, False]]), float("-inf")).numpy()[0, 1] == -np.inf


@requires_torch
def test_masked_ops_match_torch():
    x = t64(np.linspace(-1, 1, 12).reshape(3, 4))
    v = t64(0.75)
    mask = np.array([[True, False, True, False]])
    torch_compare(lambda a, b: a.masked_fill(mg.tensor(mask), b), lambda a, b: a.masked_fill(tt(mask), b), (x, v))
    torch_compare(lambda a: a.masked_select(mg.tensor(mask)), lambda a: a.masked_select(tt(mask)), (x,))


def test_masked_errors():
    x = mg.ones(2, 3)
    with pytest.raises(DTypeError, match="bool"):
        x.masked_fill(mg.tensor([1, 0, 1]), 0.0)
    with pytest.raises(ShapeError, match=r"\(2,\).*\(2, 3\)"):
        x.masked_fill(mg.tensor([True, False]), 0.0)
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(2, 2, 3\)"):
        (x * 1.0).masked_fill_(mg.ones(2, 2, 3).bool(), 0.0)    # in place: mask must broadcast to x
    with pytest.raises(ShapeError, match=r"\(2,\)"):
        x.masked_fill(mg.tensor([True, False, True]), mg.ones(2))
    with pytest.raises(ShapeError):
        x.masked_select(mg.tensor([True, False]))


# ================================================================== embedding
@given(st.data())
def test_embedding_gradcheck(data):
    num, dim = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))
    w = data.draw(tensors(shape=(num, dim)))
    ishape = data.draw(shapes(min_dims=0, max_dims=2))
    idx = data.draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, num - 1)))
    y = mg.embedding(mg.tensor(idx), w)
    assert y.shape == ishape + (dim,)
    np.testing.assert_array_equal(y.detach().numpy(), np.asarray(w.array)[idx])
    assert gradcheck(lambda a: mg.embedding(mg.tensor(idx), a), (w,))


def test_embedding_hand_case_padding_idx_and_gradgrad():
    w = t64([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    idx = mg.tensor([[0, 2, 0], [1, 0, 2]])
    y = mg.embedding(idx, w, padding_idx=0)
    np.testing.assert_array_equal(y.detach().numpy()[0], [[1, 1], [3, 3], [1, 1]])
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[0, 0], [1, 1], [2, 2]])   # padding row: no gradient
    w.grad = None
    mg.embedding(idx, w, padding_idx=-3).sum().backward()                      # -3 is row 0 too
    np.testing.assert_array_equal(w.grad.numpy()[0], [0, 0])
    assert gradgradcheck(lambda a: mg.embedding(idx, a * a), (t64(np.linspace(0.1, 1, 6).reshape(3, 2)),))


def test_embedding_max_norm_renormalises_rows_in_place():
    w = mg.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]], dtype=mg.float64)
    y = mg.embedding(mg.tensor([0, 1]), w, max_norm=1.0)
    np.testing.assert_allclose(np.linalg.norm(y.numpy(), axis=1), [1.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(w.numpy()[0], [0.6, 0.8], rtol=1e-6)     # looked-up row renormalised
    np.testing.assert_array_equal(w.numpy()[2], [6.0, 8.0])             # untouched row kept


@requires_torch
def test_embedding_matches_torch_incl_padding_and_freq_scaling():
    import torch
    import torch.nn.functional as tF

    w = t64(np.linspace(-1, 1, 15).reshape(5, 3))
    idx = np.array([[4, 1, 1], [0, 1, 4]])
    torch_compare(lambda a: mg.embedding(mg.tensor(idx), a, padding_idx=1),
                  lambda a: tF.embedding(tt(idx), a, padding_idx=1), (w,))
    torch_compare(lambda a: mg.embedding(mg.tensor(idx), a, scale_grad_by_freq=True),
                  lambda a: tF.embedding(tt(idx), a, scale_grad_by_freq=True), (w,))
    w1 = mg.tensor(np.linspace(-3, 3, 15).reshape(5, 3))
    tw = torch.tensor(np.linspace(-3, 3, 15).reshape(5, 3))
    y = mg.embedding(mg.tensor(idx), w1, max_norm=2.0)
    ty = tF.embedding(tt(idx), tw, max_norm=2.0)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-6)
    np.testing.assert_allclose(w1.numpy(), tw.numpy(), rtol=1e-6)


# ================================================================== one_hot
@given(hnp.arrays(np.int64, shapes(min_dims=0, max_dims=2), elements=st.integers(0, 4)), st.integers(5, 7))
def test_one_hot_values(idx, num):
    y = mg.one_hot(mg.tensor(idx), num)
    assert y.dtype == mg.int64 and y.shape == idx.shape + (num,)
    assert not y.requires_grad
    np.testing.assert_array_equal(y.numpy().argmax(-1), idx)
    np.testing.assert_array_equal(y.numpy().sum(-1), np.ones(idx.shape))


def test_one_hot_hand_case_and_errors():
    np.testing.assert_array_equal(mg.one_hot(mg.tensor([2, 0])).numpy(), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(DTypeError, match="float"):
        mg.one_hot(mg.tensor([1.0]))
    with pytest.raises(IndexOutOfRangeError, match=r"3.*\[0, 3\)"):
        mg.one_hot(mg.tensor([0, 3]), 3)
    with pytest.raises(IndexOutOfRangeError, match="non-negative"):
        mg.one_hot(mg.tensor([-1]), 3)
    with pytest.raises(InvalidArgumentError, match="empty"):
        mg.one_hot(mg.tensor([], dtype=mg.int64))


@requires_torch
def test_one_hot_matches_torch():
    import torch.nn.functional as tF

    idx = np.array([[3, 0], [1, 3]])
    np.testing.assert_array_equal(mg.one_hot(mg.tensor(idx)).numpy(), tF.one_hot(tt(idx)).numpy())
    np.testing.assert_array_equal(mg.one_hot(mg.tensor(idx), 6).numpy(), tF.one_hot(tt(idx), 6).numpy())


# ================================================================== index validation
@pytest.mark.parametrize("call", [
    lambda x, i: x.gather(0, i),
    lambda x, i: x.index_select(0, i.reshape(-1)),
    lambda x, i: x.scatter_add(0, i, mg.ones(2, 2, dtype=mg.float64)),
    lambda x, i: x.scatter(0, i, 1.0),
    lambda x, i: x.index_add(0, i.reshape(-1), mg.ones(4, 2, dtype=mg.float64)),
    lambda x, i: mg.embedding(i, x),
    lambda x, i: x.take_along_dim(i, 0),
])
def test_float_index_is_dtype_error_and_out_of_range_names_range_and_shape(call):
    x = mg.ones(3, 2, dtype=mg.float64)
    with pytest.raises(DTypeError, match="float"):
        call(x, mg.tensor([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(DTypeError):
        call(x, mg.tensor([[True, False], [False, True]]))
    with pytest.raises(IndexOutOfRangeError, match=r"3.*\[0, 3\).*\(3, 2\)"):
        call(x, mg.tensor([[0, 3], [1, 0]]))
    with pytest.raises(IndexOutOfRangeError, match=r"-1.*\[0, 3\)"):
        call(x, mg.tensor([[0, -1], [1, 0]]))


def test_index_shape_errors():
    x = mg.ones(3, 2)
    with pytest.raises(ShapeError, match=r"same number of dims"):
        x.gather(0, mg.tensor([0, 1]))
    with pytest.raises(ShapeError, match=r"\(1, 3\).*\(3, 2\)"):
        x.gather(0, mg.tensor([[0, 1, 1]]))
    with pytest.raises(ShapeError, match=r"1-d"):
        x.index_select(0, mg.tensor([[0, 1]]))
    with pytest.raises(ShapeError, match=r"\(2, 2\)"):
        x.index_add(0, mg.tensor([0]), mg.ones(2, 2))
    with pytest.raises(ShapeError, match="2-d"):
        mg.embedding(mg.tensor([0]), mg.ones(3))
    with pytest.raises(ShapeError, match=r"src"):
        x.scatter_add(0, mg.tensor([[0, 1]]), mg.ones(2))


# ================================================================== index / mask tensors are version-checked
# An index or mask tensor edited in place between the forward and the backward would scatter the gradient
# to the wrong places; as in PyTorch, the backward raises instead (the op saved the tensor it reads).
IDX1 = [2, 0, 2]                    # 1-d index (x[idx], index_select, index_add, embedding)
IDX2 = [[2, 1], [0, 0], [2, 1]]     # index with x's dims (gather, scatter*, take_along_dim)


def _torch():
    import torch

    return torch


# name: (index values, minigen call, torch call)
INDEX_OPS = {
    "getitem": (IDX1, lambda x, i: x[i], lambda x, i: x[i]),
    "getitem_tuple": (IDX1, lambda x, i: x[i, 1:], lambda x, i: x[i, 1:]),
    "index_select": (IDX1, lambda x, i: x.index_select(0, i), lambda x, i: x.index_select(0, i)),
    "gather": (IDX2, lambda x, i: x.gather(0, i), lambda x, i: x.gather(0, i)),
    "take_along_dim": (IDX2, lambda x, i: mg.take_along_dim(x, i, 0), lambda x, i: _torch().take_along_dim(x, i, 0)),
    "scatter_add": (IDX2, lambda x, i: mg.zeros(3, 2, dtype=mg.float64).scatter_add(0, i, x),
                    lambda x, i: _torch().zeros(3, 2, dtype=x.dtype).scatter_add(0, i, x)),
    "scatter": (IDX2, lambda x, i: x.scatter(0, i[:2], 7.0), lambda x, i: x.scatter(0, i[:2], 7.0)),
    "index_add": (IDX1, lambda x, i: mg.zeros(3, 2, dtype=mg.float64).index_add(0, i, x),
                  lambda x, i: _torch().zeros(3, 2, dtype=x.dtype).index_add(0, i, x)),
    "embedding": (IDX1, lambda x, i: mg.embedding(i, x), lambda x, i: _torch().nn.functional.embedding(i, x)),
}


@pytest.mark.parametrize("name", sorted(INDEX_OPS))
def test_index_tensor_edited_in_place_after_forward_raises(name):
    """x[idx], index_select, gather, take_along_dim, scatter*, index_add, embedding: editing idx before the
    backward raises InplaceError (without the check the gradient went silently to the new positions)."""
    values, fn, _ = INDEX_OPS[name]
    x = t64(np.arange(6.0).reshape(3, 2))
    idx = mg.tensor(values)
    y = fn(x, idx)
    idx[0] = 1                                   # the reused buffer gets the next batch's indices
    with pytest.raises(mg.errors.InplaceError, match="modified by an in-place operation"):
        y.sum().backward()
    x2 = t64(np.arange(6.0).reshape(3, 2))       # untouched index: the gradient flows
    fn(x2, mg.tensor(values)).sum().backward()
    assert x2.grad is not None


@requires_torch
@pytest.mark.parametrize("name", sorted(set(INDEX_OPS) - {"take_along_dim"}))
def test_index_tensor_edit_raises_in_torch_too(name):
    """The oracle: PyTorch raises for the same edit (so raising is the PyTorch semantics, not a choice).
    (Its take_along_dim saves a broadcast copy of the index, so there the edit is harmless; minigen's
    shares the caller's tensor and raises, which is never wrong.)"""
    import torch

    values, _, fn = INDEX_OPS[name]
    x = torch.arange(6.0, dtype=torch.float64).reshape(3, 2).requires_grad_()
    idx = torch.tensor(values)
    y = fn(x, idx)
    idx[0] = 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("op", ["masked_fill", "masked_fill_value", "masked_select", "getitem_mask"])
def test_mask_tensor_edited_in_place_after_forward_raises(op):
    x = t64(np.arange(6.0).reshape(3, 2))
    v = t64(5.0)
    mask = mg.tensor([[True, False], [False, True], [True, True]])
    y = {"masked_fill": lambda: x.masked_fill(mask, 0.0), "masked_fill_value": lambda: (x * 1).masked_fill(mask, v),
         "masked_select": lambda: x.masked_select(mask), "getitem_mask": lambda: x[mask]}[op]()
    mask[0, 0] = False
    with pytest.raises(mg.errors.InplaceError):
        y.sum().backward()


def test_gradient_reads_only_the_index_not_the_input():
    """y = x[idx] reads idx, not x: editing (a copy-free view chain of) x in place afterwards is fine."""
    x = t64(np.arange(4.0))
    a = x * 2
    y = a[mg.tensor([0, 3])]
    a.mul_(10)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 0.0, 2.0])


def test_embedding_module_with_a_reused_ids_buffer():
    """The micro-batch bug: one ``ids`` buffer refilled in place for the next micro-batch before the
    previous loss's backward. Now an InplaceError; with a fresh buffer per micro-batch the gradient is
    the sum over both micro-batches (checked against the hand-computed counts)."""
    emb = mg.nn.Embedding(5, 3)
    ids = mg.tensor([[1, 2, 2]])
    loss1 = emb(ids).sum()
    ids[...] = mg.tensor([[4, 4, 0]])
    loss2 = emb(ids).sum()
    with pytest.raises(mg.errors.InplaceError):
        (loss1 + loss2).backward()
    emb.zero_grad()
    loss = emb(mg.tensor([[1, 2, 2]])).sum() + emb(mg.tensor([[4, 4, 0]])).sum()
    loss.backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[:, 0], [1.0, 1.0, 2.0, 0.0, 2.0])


@requires_torch
def test_embedding_reused_ids_raises_in_torch_too():
    import torch

    emb = torch.nn.Embedding(5, 3)
    ids = torch.tensor([[1, 2, 2]])
    loss1 = emb(ids).sum()
    ids[...] = torch.tensor([[4, 4, 0]])
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss1.backward()


# ================================================================== fast_backward == backward (the formula)
def _both_paths(fn, inputs, seed=0):
    """Gradients of sum(fn(*inputs) * w) through the first-order path (the engine takes ``fast_backward``)
    and through create_graph=True (the engine takes ``backward``, the Tensor formula)."""
    out = fn(*inputs)
    w = mg.tensor(np.random.default_rng(seed).standard_normal(out.shape), dtype=out.dtype)
    fast = mg.grad((out * w).sum(), inputs)
    formula = mg.grad((fn(*inputs) * w).sum(), inputs, create_graph=True)
    return fast, formula


@pytest.mark.parametrize("index", [
    (slice(1, None), 0), (np.array([2, 0, 2]),), (mg.tensor([1, 1, 0]), slice(None, 2)),
    (np.array([[True, False, True, False]] * 3),), (Ellipsis, None, 1),
])
def test_getitem_fast_backward_equals_formula(index):
    """getitem's first-order gradient is a sparse SliceGrad (its fast_backward); it must equal the
    formula (scatter-add into zeros), repeated indices included."""
    x = t64(np.random.default_rng(1).standard_normal((3, 4)))
    idx = index[0] if len(index) == 1 else index
    fast, formula = _both_paths(lambda a: a[idx] * 1.0, (x,))
    np.testing.assert_array_equal(fast[0].numpy(), formula[0].numpy())


def test_getitem_with_index_tensors_gradgradcheck_and_views():
    """Index tensors ride along as op arguments through second order too; basic indexing is a view
    (shares memory and version), advanced indexing a copy (as PyTorch)."""
    x = t64(np.linspace(-1, 1, 12).reshape(3, 4))
    i, j = mg.tensor([2, 0, 2]), mg.tensor([1, 1, 3])
    assert gradgradcheck(lambda a: (a * a)[i], (x,))
    assert gradgradcheck(lambda a: (a * a)[i, j], (x,))
    assert gradgradcheck(lambda a: (a * a)[i, 1:], (x,))
    base = mg.zeros(3, 4, dtype=mg.float64)
    row = base[1]
    row[2] = 7.0
    assert base.numpy()[1, 2] == 7.0 and base._version() == row._version()
    rows = base[mg.tensor([1, 1])]
    rows[0, 0] = 5.0
    assert base.numpy()[1, 0] == 0.0


def test_bad_assigned_values_and_embedding_sizes_are_minigen_errors():
    x = mg.zeros(2, 3, dtype=mg.int32)
    with pytest.raises(DTypeError, match="cannot assign"):
        x[0] = np.dtype("uint8")
    with pytest.raises(InvalidArgumentError, match="num_embeddings"):
        mg.nn.Embedding(None, 3)
    with pytest.raises(InvalidArgumentError, match="embedding_dim"):
        mg.nn.Embedding(3, 2.5)
    with pytest.raises(InvalidArgumentError, match="padding_idx"):
        mg.nn.Embedding(3, 2, padding_idx="0")
