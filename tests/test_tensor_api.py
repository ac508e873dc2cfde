"""Tensor methods and creation functions added for ported PyTorch programs, and their bad-input errors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen.errors import DTypeError, InvalidArgumentError, MinigenError, ShapeError
from minigen.testing import gradcheck

try:
    import torch
except Exception:  # pragma: no cover
    torch = None
requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (optional oracle)")


@requires_torch
@given(st.integers(1, 6), st.integers(1, 5), st.booleans(), st.integers(0, 3))
def test_sort_argsort_topk_kthvalue_match_torch(n, m, descending, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-3, 3, size=(n, m)).astype(np.float64)  # many ties
    x, t = mg.tensor(a), torch.tensor(a)
    for dim in (0, 1, -1):
        v, i = x.sort(dim=dim, descending=descending, stable=True)
        tv, ti = t.sort(dim=dim, descending=descending, stable=True)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        np.testing.assert_array_equal(mg.argsort(x, dim=dim, descending=descending, stable=True).numpy(),
                                      torch.argsort(t, dim=dim, descending=descending, stable=True).numpy())
        k = min(2, a.shape[dim])
        np.testing.assert_array_equal(mg.topk(x, k, dim=dim).values.numpy(), torch.topk(t, k, dim=dim).values.numpy())
        np.testing.assert_array_equal(x.kthvalue(k, dim=dim).values.numpy(), t.kthvalue(k, dim=dim).values.numpy())
    np.testing.assert_array_equal(x.msort().numpy(), torch.msort(t).numpy())
    np.testing.assert_array_equal(x.nonzero().numpy(), t.nonzero().numpy())
    u, inv, cnt = x.unique(return_inverse=True, return_counts=True)
    tu, tinv, tcnt = t.unique(return_inverse=True, return_counts=True)
    for p, q in ((u, tu), (inv, tinv), (cnt, tcnt)):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_sort_nan_is_largest():
    x = mg.tensor([1.0, np.nan, -1.0])
    np.testing.assert_array_equal(x.sort().indices.numpy(), [2, 0, 1])
    np.testing.assert_array_equal(x.sort(descending=True).indices.numpy(), [1, 0, 2])


@given(st.integers(2, 6), st.integers(0, 1000))
def test_sort_topk_kthvalue_gradcheck(n, seed):
    x = mg.tensor(np.random.default_rng(seed).permutation(n).astype(np.float64) + 0.25, requires_grad=True)
    w = mg.arange(1.0, n + 1.0, dtype=mg.float64)
    assert gradcheck(lambda t: t.sort(descending=True).values * w, (x,))
    assert gradcheck(lambda t: t.topk(2 if n > 2 else 1).values, (x,))
    assert gradcheck(lambda t: t.kthvalue(1).values, (x,))


def test_sorting_bad_input():
    x = mg.randn(3, 4)
    with pytest.raises(InvalidArgumentError):
        x.topk(5)
    with pytest.raises(InvalidArgumentError):
        x.kthvalue(0)
    with pytest.raises(DTypeError):
        x.topk(1.5)
    with pytest.raises(MinigenError):
        x.sort(dim=3)


def test_new_methods_and_predicates():
    x = mg.randn(3, 4, dtype=mg.float64)
    assert x.new_zeros(2, 2).dtype == mg.float64 and x.new_ones((1, 2)).shape == (1, 2)
    assert x.new_full((2,), 3.0).tolist() == [3.0, 3.0] and x.new_empty(5).shape == (5,)
    assert x.new_tensor([1, 2]).dtype == mg.float64
    assert x.t().shape == (4, 3) and x.stride() == (4, 1) and x.t().stride() == (1, 4)
    assert x.type() == "torch.DoubleTensor" and x.type(mg.float32).dtype == mg.float32
    assert x.type("torch.LongTensor").dtype == mg.int64
    assert not x.is_mps and not x.is_xpu and x.is_cpu and not x.is_cuda
    with pytest.raises(ShapeError):
        mg.randn(2, 2, 2).t()
    assert f"{mg.tensor(3.14159):.2f}" == "3.14"
    with pytest.raises(InvalidArgumentError):
        f"{mg.randn(3):.2f}"


def test_addcmul_addcdiv_and_random_fills():
    x = mg.ones(3)
    x.addcmul_(mg.tensor([1.0, 2.0, 3.0]), mg.tensor([2.0, 2.0, 2.0]), value=0.5)
    np.testing.assert_allclose(x.numpy(), [2, 3, 4])
    x.addcdiv_(mg.tensor([2.0, 2.0, 2.0]), mg.tensor([1.0, 2.0, 4.0]), value=2)
    np.testing.assert_allclose(x.numpy(), [6, 5, 5])
    mg.manual_seed(0)
    a = mg.empty(1000).normal_(2.0, 0.5)
    assert abs(a.mean().item() - 2.0) < 0.1 and abs(a.std().item() - 0.5) < 0.1
    u = mg.empty(1000).uniform_(-1, 1)
    assert u.min().item() >= -1 and u.max().item() < 1
    b = mg.empty(1000).bernoulli_(0.3)
    assert set(np.unique(b.numpy())) <= {0.0, 1.0} and abs(b.mean().item() - 0.3) < 0.06
    e = mg.empty(1000).exponential_(2.0)
    assert e.min().item() >= 0 and abs(e.mean().item() - 0.5) < 0.1
    r = mg.zeros(1000, dtype=mg.int64).random_(3, 7)
    assert set(np.unique(r.numpy())) == {3, 4, 5, 6}
    with pytest.raises(InvalidArgumentError):
        mg.empty(3).bernoulli_(1.5)
    with pytest.raises(InvalidArgumentError):
        mg.empty(3).normal_(0, -1)
    with pytest.raises(DTypeError):
        mg.zeros(3, dtype=mg.int64).normal_()
    p = mg.zeros(3, requires_grad=True)
    with pytest.raises(MinigenError):
        p.normal_()
    with mg.no_grad():
        p.normal_()
    mg.manual_seed(1)
    s1 = mg.empty(4).normal_().numpy().copy()
    mg.manual_seed(1)
    assert np.array_equal(s1, mg.empty(4).normal_().numpy())


@pytest.mark.parametrize("call, err", [
    (lambda: mg.eye(-1), ShapeError),
    (lambda: mg.arange("a"), DTypeError),
    (lambda: mg.arange(0, 10, -1), InvalidArgumentError),
    (lambda: mg.linspace(0, 1, -1), InvalidArgumentError),
    (lambda: mg.full((2,), "abc"), DTypeError),
    (lambda: mg.zeros_like([1, 2]), DTypeError),
    (lambda: mg.set_default_dtype("blah"), DTypeError),
    (lambda: mg.set_rng_state({}), InvalidArgumentError),
    (lambda: mg.zeros(2.5), InvalidArgumentError),
    (lambda: mg.zeros("3"), InvalidArgumentError),
    (lambda: mg.zeros(None), InvalidArgumentError),
    (lambda: mg.tensor([300], dtype=mg.int8), DTypeError),
    (lambda: mg.normal(0.0, -1.0, (2,)), InvalidArgumentError),
    (lambda: mg.bernoulli(mg.tensor([1.5])), InvalidArgumentError),
    (lambda: mg.randn(2, dtype=mg.int64), DTypeError),
    (lambda: mg.tensor(["a"]), DTypeError),
    (lambda: mg.tensor(np.array(["2020-01-01"], dtype="datetime64[D]")), DTypeError),
    (lambda: mg.tensor([object()]), DTypeError),
    (lambda: mg.zeros(2 ** 30, 2 ** 30), ShapeError),
])
def test_creation_bad_input(call, err):
    with pytest.raises(err):
        call()


def test_creation_overloads_like_torch():
    mg.manual_seed(-1)  # PyTorch accepts negative seeds
    r = mg.randint(10, (3,))
    assert r.shape == (3,) and r.dtype == mg.int64 and 0 <= r.min().item() and r.max().item() < 10
    assert mg.randint(2, 5, (4,)).min().item() >= 2
    mm = np.memmap("/tmp/minigen_test_memmap.bin", dtype=np.float32, mode="w+", shape=(3,))
    t = mg.from_numpy(mm)
    np.testing.assert_array_equal((t + 1).numpy(), [1, 1, 1])


@requires_torch
@given(st.integers(1, 4), st.integers(1, 4), st.integers(-3, 3))
def test_diag_matches_torch_and_gradchecks(r, c, k):
    rng = np.random.default_rng(r * 10 + c)
    m = rng.standard_normal((r, c))
    v = rng.standard_normal(r)
    np.testing.assert_array_equal(mg.diag(mg.tensor(m), k).numpy(), torch.diag(torch.tensor(m), k).numpy())
    np.testing.assert_array_equal(mg.tensor(v).diag(k).numpy(), torch.tensor(v).diag(k).numpy())
    mt = mg.tensor(m, requires_grad=True)
    vt = mg.tensor(v, requires_grad=True)
    if min(r, c) > 0 and -r < k < c:
        assert gradcheck(lambda t: mg.diag(t, k), (mt,))
    assert gradcheck(lambda t: mg.diag(t, k), (vt,))


def test_diag_bad_input_and_legacy_constructors():
    with pytest.raises(ShapeError):
        mg.diag(mg.zeros(2, 2, 2))
    with pytest.raises(DTypeError):
        mg.diag(mg.zeros(2), 1.5)
    assert mg.FloatTensor([1, 2]).dtype == mg.float32 and mg.LongTensor([1, 2]).dtype == mg.int64
    assert mg.FloatTensor(2, 3).shape == (2, 3)
    assert isinstance(mg.zeros(2), mg.FloatTensor) and not isinstance(mg.zeros(2), mg.LongTensor)
    assert mg.zeros(size=(2, 3)).shape == (2, 3) and mg.arange(end=3).tolist() == [0, 1, 2]
    assert mg.randint(high=5, size=(4,)).max().item() < 5
    with pytest.raises(DTypeError):
        mg.zeros(2, dtype=mg.bfloat16)
    assert not hasattr(mg, "no_such_subpackage") and hasattr(mg, "amp") and hasattr(mg, "backends")


_UNARY_INPLACE = ["absolute_", "acos_", "acosh_", "arccos_", "arcsin_", "arctan_", "asin_", "asinh_", "atan_",
                  "atanh_", "cosh_", "erfc_", "exp2_", "fix_", "log10_", "log2_", "sgn_", "sinh_", "tan_", "tril_",
                  "triu_", "logical_not_"]
_BINARY_INPLACE = ["atan2_", "eq_", "ge_", "gt_", "le_", "lt_", "ne_", "hypot_", "floor_divide_", "true_divide_",
                   "logical_and_", "logical_or_", "logical_xor_", "greater_", "less_equal_", "not_equal_"]


@requires_torch
@pytest.mark.parametrize("name", _UNARY_INPLACE + _BINARY_INPLACE)
def test_inplace_variants_match_torch(name):
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 0.9, (3, 4))
    if name == "acosh_":
        a = a + 1.0
    b = rng.uniform(0.1, 0.9, (3, 4))
    x, tx = mg.tensor(a), torch.tensor(a)
    args = (mg.tensor(b),) if name in _BINARY_INPLACE else ()
    targs = (torch.tensor(b),) if name in _BINARY_INPLACE else ()
    r = getattr(x, name)(*args)
    getattr(tx, name)(*targs)
    assert r is x
    np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-12, err_msg=name)


def test_more_tensor_conveniences():
    x = mg.randn(2, 3)
    assert x.byte().dtype == mg.uint8 and x.char().dtype == mg.int8 and x.short().dtype == mg.int16
    assert x.nelement() == 6 and x.ndimension() == 2 and x.get_device() == -1 and x.is_signed()
    assert x.H.shape == (3, 2) and x.mH.shape == (3, 2) and x.positive() is x
    np.testing.assert_allclose(x.addcmul(x, x, value=2).numpy(), (x + 2 * x * x).numpy())
    assert set(np.unique(mg.full((100,), 0.5).bernoulli().numpy())) <= {0.0, 1.0}
    assert mg.tensor([0, 3, 0, 4]).argwhere().tolist() == [[1], [3]]
    with pytest.raises(DTypeError):
        mg.tensor([1, 2]).tan_()  # an integer tensor cannot hold tan's float result (PyTorch raises too)
