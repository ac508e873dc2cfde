"""DistributedSampler (no processes needed: num_replicas/rank are given explicitly)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigen.data import DataLoader, DistributedSampler, TensorDataset
from minigen.errors import InvalidArgumentError


def shards(n, R, **kw):
    return [list(DistributedSampler(range(n), num_replicas=R, rank=r, **kw)) for r in range(R)]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), R=st.integers(1, 7), shuffle=st.booleans(), drop_last=st.booleans(),
       seed=st.integers(0, 5), epoch=st.integers(0, 3))
def test_shards_equal_length_cover_and_follow_the_definition(n, R, shuffle, drop_last, seed, epoch):
    ss = []
    for r in range(R):
        s = DistributedSampler(range(n), num_replicas=R, rank=r, shuffle=shuffle, seed=seed, drop_last=drop_last)
        s.set_epoch(epoch)
        ss.append(list(s))
        assert len(ss[-1]) == len(s)
    per = n // R if drop_last else -(-n // R)
    assert all(len(x) == per for x in ss)  # every rank the same count: the same number of batches
    # the definition: one shared permutation (seed + epoch), padded/cut to R * per, rank r takes r, r+R, ...
    perm = np.random.Generator(np.random.PCG64(seed + epoch)).permutation(n) if shuffle else np.arange(n)
    full = np.resize(perm, R * per) if n else perm[:0]
    for r in range(R):
        assert ss[r] == full[r::R].tolist()
    got = sorted(i for x in ss for i in x)
    if drop_last:  # disjoint, only the tail (fewer than R samples) is dropped
        assert len(set(got)) == len(got) == R * per and n - len(got) < R
    else:  # every sample seen; only the padding repeats (fewer than R duplicates)
        assert set(got) == set(range(n)) and len(got) - n < R


def test_padding_repeats_the_first_samples():
    assert shards(5, 3, shuffle=False) == [[0, 3], [1, 4], [2, 0]]
    assert shards(1, 3, shuffle=False) == [[0], [0], [0]]
    assert shards(5, 3, shuffle=False, drop_last=True) == [[0], [1], [2]]


def test_set_epoch_reshuffles_identically_on_every_rank():
    a = DistributedSampler(range(20), num_replicas=2, rank=0, seed=3)
    b = DistributedSampler(range(20), num_replicas=2, rank=1, seed=3)
    e0 = (list(a), list(b))
    assert list(a) == e0[0]  # without set_epoch: the same order again (PyTorch's semantics)
    a.set_epoch(1)
    b.set_epoch(1)
    e1 = (list(a), list(b))
    assert e1 != e0 and sorted(e1[0] + e1[1]) == list(range(20))
    assert DistributedSampler(range(20), 2, 0, seed=10).global_indices().tolist() != a.global_indices().tolist()
    st = a.state_dict()
    c = DistributedSampler(range(20), num_replicas=2, rank=0)
    c.load_state_dict(st)
    assert list(c) == e1[0]


def test_with_a_dataloader_every_rank_gets_the_same_number_of_batches():
    import minigen as mg

    ds = TensorDataset(mg.arange(11))
    counts = []
    seen = []
    for r in range(3):
        dl = DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, num_replicas=3, rank=r, shuffle=False))
        batches = [b[0].array.tolist() for b in dl]
        counts.append(len(batches))
        seen += sum(batches, [])
    assert counts == [2, 2, 2] and set(seen) == set(range(11))


def test_defaults_without_a_process_group_are_one_replica():
    import minigen.distributed as dist

    if dist.is_initialized():
        pytest.skip("a process group exists in this process")
    s = DistributedSampler(range(4), shuffle=False)
    assert (s.num_replicas, s.rank, list(s)) == (1, 0, [0, 1, 2, 3])


@pytest.mark.parametrize("kw,pat", [
    (dict(num_replicas=0, rank=0), "num_replicas must be an int >= 1"),
    (dict(num_replicas=2, rank=2), r"rank 2 is not in \[0, 1\]"),
    (dict(num_replicas=2, rank=-1), "rank must be an int >= 0"),
    (dict(num_replicas=2.0, rank=0), "num_replicas must be an int"),
    (dict(num_replicas=2, rank=0, seed=-1), "seed must be an int >= 0"),
])
def test_bad_arguments_raise(kw, pat):
    with pytest.raises(InvalidArgumentError, match=pat):
        DistributedSampler(range(4), **kw)
    with pytest.raises(InvalidArgumentError, match="epoch"):
        DistributedSampler(range(4), 1, 0).set_epoch(-1)
    with pytest.raises(InvalidArgumentError, match="dataset must have a length.*got int"):
        DistributedSampler(5, 1, 0)
