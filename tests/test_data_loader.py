"""DataLoader, samplers, collate, TensorDataset, Subset, random_split."""
import collections

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen.data import (
    ConcatDataset, DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split,
)
from minigen.errors import IndexOutOfRangeError, InvalidArgumentError, ShapeError


class Plain(Dataset):
    """A dataset without fetch_batch: items are (index as array, index as int)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.array([i, 10 * i], dtype=np.float32), i


def _ids(loader):
    """All sample ids of one epoch, batch by batch."""
    out = []
    for b in loader:
        out.append(b[1].numpy().tolist())
    return out


loader_args = st.tuples(st.integers(0, 37), st.integers(1, 9), st.booleans(), st.booleans(), st.booleans())


@given(loader_args)
def test_every_sample_exactly_once_per_epoch(args):
    n, bs, shuffle, drop_last, plain = args
    ds = Plain(n) if plain else TensorDataset(np.arange(n, dtype=np.float32)[:, None], np.arange(n))
    g = mg.Generator().manual_seed(5)
    dl = DataLoader(ds, batch_size=bs, shuffle=shuffle, drop_last=drop_last, generator=g)
    for _epoch in range(2):
        batches = _ids(dl)
        sizes = [len(b) for b in batches]
        flat = [i for b in batches for i in b]
        if drop_last:
            assert sizes == [bs] * (n // bs)
            assert len(set(flat)) == len(flat) == (n // bs) * bs
            assert set(flat) <= set(range(n))
        else:
            assert sorted(flat) == list(range(n))
            assert sizes == [bs] * (n // bs) + ([n % bs] if n % bs else [])
        assert len(dl) == len(batches)
        if not shuffle:
            assert flat == list(range(len(flat)))


@given(st.integers(10, 40), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_shuffle_deterministic_with_seed_and_seeds_differ(n, bs, seed):
    ds = TensorDataset(np.zeros((n, 1)), np.arange(n))

    def epochs(s):
        dl = DataLoader(ds, batch_size=bs, shuffle=True, generator=mg.Generator().manual_seed(s))
        return [_ids(dl) for _ in range(2)]

    a, b = epochs(seed), epochs(seed)
    assert a == b
    assert a[0] != a[1]  # a new permutation each epoch (n >= 10: a repeat has probability <= 1/10!)
    assert epochs(seed + 1) != a


def test_fetch_batch_matches_getitem_collate():
    x = np.random.default_rng(0).standard_normal((11, 2, 3)).astype(np.float32)
    y = np.arange(11)
    ds = TensorDataset(x, y)
    idx = [3, 0, 10, 3]
    fast = ds.fetch_batch(idx)
    slow = default_collate([ds[i] for i in idx])
    for f, s in zip(fast, slow):
        assert f.dtype == s.dtype and np.array_equal(f.numpy(), s.numpy())
    sub = Subset(ds, [5, 6, 7])
    assert np.array_equal(sub.fetch_batch([2, 0])[1].numpy(), [7, 5])
    assert not hasattr(Subset(Plain(3), [0]), "fetch_batch")


def test_shuffle_uses_default_generator_under_manual_seed():
    ds = TensorDataset(np.arange(20))
    mg.manual_seed(3)
    a = [b[0].numpy().tolist() for b in DataLoader(ds, 4, shuffle=True)]
    mg.manual_seed(3)
    b = [b[0].numpy().tolist() for b in DataLoader(ds, 4, shuffle=True)]
    assert a == b and sorted(sum(a, [])) == list(range(20))


def test_resume_mid_epoch_continues_same_order():
    ds = TensorDataset(np.arange(23))
    g = mg.Generator().manual_seed(1)
    dl = DataLoader(ds, 4, shuffle=True, generator=g)
    it = iter(dl)
    first = [next(it)[0].numpy().tolist() for _ in range(3)]
    state, gstate = dl.state_dict(), g.get_state()
    rest = [b[0].numpy().tolist() for b in it]
    nxt_epoch = _ids_single(dl)
    assert state["batches_done"] == 3 and state["epoch_seed"] is not None
    # fresh objects, restored state
    g2 = mg.Generator()
    g2.set_state(gstate)
    dl2 = DataLoader(ds, 4, shuffle=True, generator=g2)
    dl2.load_state_dict(state)
    assert [b[0].numpy().tolist() for b in dl2] == rest
    assert _ids_single(dl2) == nxt_epoch
    assert sorted(sum(first + rest, [])) == list(range(23))
    assert dl.state_dict() == {"epoch_seed": None, "batches_done": 0}  # a finished epoch


def _ids_single(dl):
    return [b[0].numpy().tolist() for b in dl]


def test_default_collate_types():
    Pt = collections.namedtuple("Pt", "a b")
    batch = [{"x": mg.tensor([1.0, 2.0]), "n": 1, "f": 0.5, "s": "u", "t": (True, np.int16(3)), "p": Pt(1, 2.0)},
             {"x": mg.tensor([3.0, 4.0]), "n": 2, "f": 1.5, "s": "v", "t": (False, np.int16(4)), "p": Pt(3, 4.0)}]
    out = default_collate(batch)
    assert out["x"].shape == (2, 2) and out["x"].dtype == mg.float32
    assert out["n"].dtype == mg.int64 and out["n"].tolist() == [1, 2]
    assert out["f"].dtype == mg.float64 and out["f"].tolist() == [0.5, 1.5]
    assert out["s"] == ["u", "v"]
    assert out["t"][0].dtype == mg.bool_ and out["t"][1].dtype == np.int16
    assert isinstance(out["p"], Pt) and out["p"].a.tolist() == [1, 3]
    with pytest.raises(ShapeError, match=r"\(2,\).*\(3,\)|\(3,\).*\(2,\)"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(InvalidArgumentError, match="object"):
        default_collate([object(), object()])


def test_custom_collate_sampler_and_batch_none():
    ds = Plain(5)
    dl = DataLoader(ds, batch_size=2, collate_fn=lambda items: [i for _, i in items])
    assert list(dl) == [[0, 1], [2, 3], [4]]
    dl = DataLoader(ds, batch_size=None)
    assert [i for _, i in dl] == [0, 1, 2, 3, 4]
    dl = DataLoader(ds, sampler=[4, 2], batch_size=1)
    assert [b[1].tolist() for b in dl] == [[4], [2]]
    with pytest.raises(InvalidArgumentError):
        DataLoader(ds, sampler=[0], shuffle=True)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        DataLoader(ds, batch_size=0)


def test_tensor_dataset_checks_and_items():
    with pytest.raises(ShapeError, match=r"\(3, 2\).*\(4,\)"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    ds = TensorDataset(mg.arange(6).reshape(3, 2), np.array([7, 8, 9]))
    x, y = ds[-1]
    assert x.tolist() == [4, 5] and y.item() == 9
    with pytest.raises(IndexOutOfRangeError, match="3"):
        ds[3]


@given(st.integers(0, 30), st.lists(st.floats(0.05, 1.0), min_size=1, max_size=4), st.integers(0, 1000))
def test_random_split_partitions(n, weights, seed):
    fr = [w / sum(weights) for w in weights]
    fr[-1] = 1.0 - sum(fr[:-1])
    parts = random_split(TensorDataset(np.arange(n)), fr, generator=mg.Generator().manual_seed(seed))
    assert sum(len(p) for p in parts) == n
    assert all(abs(len(p) - f * n) < len(fr) + 1 for p, f in zip(parts, fr))
    ids = sorted(int(p[i][0].item()) for p in parts for i in range(len(p)))
    assert ids == list(range(n))


def test_random_split_lengths_and_errors():
    ds = TensorDataset(np.arange(10))
    a, b = random_split(ds, [7, 3], generator=mg.Generator().manual_seed(0))
    a2, _ = random_split(ds, [7, 3], generator=mg.Generator().manual_seed(0))
    assert np.array_equal(a.indices, a2.indices) and len(b) == 3
    assert [len(p) for p in random_split(ds, [0.5, 0.25, 0.25])] == [6, 2, 2]  # floors 5,2,2; the remainder goes to the first
    with pytest.raises(InvalidArgumentError, match="sum to 9"):
        random_split(ds, [6, 3])


def test_concat_dataset():
    c = ConcatDataset([Plain(2), Plain(3)]) + Plain(1)
    assert len(c) == 6 and [c[i][1] for i in range(6)] == [0, 1, 0, 1, 2, 0]
    assert c[-1][1] == 0
