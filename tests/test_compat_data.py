"""``minigen.utils.data`` paths and DataLoader worker processes (num_workers > 0): same batches as the
in-process loader, deterministic per-worker seeding, worker_init_fn / get_worker_info, errors re-raised
naming the worker, timeouts, clean shutdown with no leaked processes; torch.utils.data as the oracle
where it has the same behaviour (skipped without torch)."""
import gc
import multiprocessing
import os
import random
import time

import numpy as np
import pytest

import minigen as mg
from minigen.data import DataLoader, Dataset, TensorDataset
from minigen.errors import InvalidArgumentError

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="the worker tests use the fork start method")


def _children():
    return multiprocessing.active_children()  # also reaps finished ones


@pytest.fixture(autouse=True)
def no_leaked_workers():
    before = {p.pid for p in _children()}
    yield
    gc.collect()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [p for p in _children() if p.pid not in before]
        if not left:
            break
        time.sleep(0.05)
    assert not left, f"leaked worker processes: {left}"


class Plain(Dataset):
    """Items (float32 row, int id); no fetch_batch, so workers go through __getitem__ + collate."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.array([i, 2 * i], dtype=np.float32), int(i)


class RandomItems(Dataset):
    """Each item draws from every random source a worker seeds, and reports which worker made it."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        info = mg.data.get_worker_info()
        wid = -1 if info is None else info.id
        seed = -1 if info is None else info.seed
        return (np.array([np.random.rand(), random.random(), float(mg.rand(1).item())]),
                np.array([wid, seed], dtype=np.int64), i)


class Failing(Plain):
    def __getitem__(self, i):
        if i == 7:
            raise ValueError(f"bad sample {i}")
        return super().__getitem__(i)


class Dying(Plain):
    def __getitem__(self, i):
        if i == 5 and mg.data.get_worker_info() is not None:
            os._exit(3)
        return super().__getitem__(i)


class Slow(Plain):
    def __getitem__(self, i):
        if i >= 2:
            time.sleep(1.5)
        return super().__getitem__(i)


def _flat(loader):
    return [[x.tolist() for x in (b if isinstance(b, (list, tuple)) else [b])
             if hasattr(x, "tolist")] for b in loader]


def _batches(loader):
    out = []
    for b in loader:
        out.append(tuple(x.numpy().tolist() if isinstance(x, mg.Tensor) else x for x in b))
    return out


# ------------------------------------------------------------------ import paths
def test_utils_data_paths_are_minigen_data():
    import minigen.utils.data as ud
    from minigen.utils.data import (  # noqa: F401
        BatchSampler, DataLoader as DL, RandomSampler, SequentialSampler, Subset, SubsetRandomSampler,
        TensorDataset as TD, WeightedRandomSampler, get_worker_info, random_split,
    )
    from minigen.utils.data.sampler import Sampler
    from minigen.utils.data.dataset import Dataset as D2

    assert DL is DataLoader and TD is TensorDataset and D2 is Dataset and Sampler is mg.data.Sampler
    assert hasattr(mg, "utils") and mg.utils.data is ud
    assert not hasattr(mg, "surely_not_a_submodule")
    # DistributedSampler comes from minigen.data.distributed when that module exists; never an import error
    has = os.path.exists(os.path.join(os.path.dirname(mg.data.__file__), "distributed.py"))
    assert hasattr(ud, "DistributedSampler") == has
    assert get_worker_info() is None


def test_utils_data_names_cover_torch_utils_data_basics():
    torch = pytest.importorskip("torch")
    import minigen.utils.data as ud

    for name in ["DataLoader", "Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "Sampler",
                 "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
                 "BatchSampler", "default_collate", "get_worker_info"]:
        assert hasattr(torch.utils.data, name) and hasattr(ud, name), name


# ------------------------------------------------------------------ same batches as in-process
@pytest.mark.parametrize("ds_kind", ["tensor", "plain"])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("workers", [1, 3])
def test_workers_give_the_in_process_batches(ds_kind, shuffle, workers):
    n = 23
    ds = TensorDataset(np.arange(n, dtype=np.float32)[:, None], np.arange(n)) if ds_kind == "tensor" else Plain(n)
    ref = _batches(DataLoader(ds, batch_size=4, shuffle=shuffle, generator=mg.Generator().manual_seed(3)))
    got = _batches(DataLoader(ds, batch_size=4, shuffle=shuffle, generator=mg.Generator().manual_seed(3),
                              num_workers=workers, prefetch_factor=1 if workers == 3 else 2))
    assert got == ref
    # batches are minigen Tensors with the dtypes default_collate gives
    b = next(iter(DataLoader(ds, batch_size=4, num_workers=2)))
    assert isinstance(b[0], mg.Tensor) and b[0].dtype == np.float32 and b[1].dtype == np.int64


def test_workers_without_batching_custom_collate_and_out_of_order():
    ds = Plain(10)
    ref = [(a.numpy().tolist(), i) for a, i in DataLoader(ds, batch_size=None)]
    got = [(a.numpy().tolist(), i) for a, i in DataLoader(ds, batch_size=None, num_workers=2)]
    assert got == ref

    def collate(items):
        return {"ids": [i for _, i in items], "x": mg.tensor(np.stack([a for a, _ in items]))}

    got = list(DataLoader(ds, batch_size=3, collate_fn=collate, num_workers=2))
    assert [b["ids"] for b in got] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert got[1]["x"].numpy().tolist() == [[3, 6], [4, 8], [5, 10]]
    unordered = list(DataLoader(ds, batch_size=3, num_workers=3, in_order=False))
    assert sorted(i for b in unordered for i in b[1].numpy().tolist()) == list(range(10))


# ------------------------------------------------------------------ seeding
def _seeded_run(seed, workers=2, epochs=2, persistent=False):
    dl = DataLoader(RandomItems(12), batch_size=3, num_workers=workers, generator=mg.Generator().manual_seed(seed),
                    persistent_workers=persistent)
    return [[(b[0].numpy(), b[1].numpy()) for b in dl] for _ in range(epochs)]


def test_worker_seeding_is_deterministic_and_distinct():
    a, b, c = _seeded_run(0), _seeded_run(0), _seeded_run(1)
    for ea, eb in zip(a, b):
        for (xa, wa), (xb, wb) in zip(ea, eb):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a[0][0][0], c[0][0][0])
    # batch k is loaded by worker k mod 2; each worker's seed is base_seed + worker id
    ep = a[0]
    ids = [int(w[0, 0]) for _, w in ep]
    assert ids == [k % 2 for k in range(len(ep))]
    seeds = {int(w[0, 0]): int(w[0, 1]) for _, w in ep}
    assert seeds[1] == seeds[0] + 1
    # the two workers draw different numbers (NumPy, random and minigen streams all seeded per worker)
    x0 = np.concatenate([x for (x, w) in ep if w[0, 0] == 0])
    x1 = np.concatenate([x for (x, w) in ep if w[0, 0] == 1])
    for col in range(3):
        assert len(set(x0[:, col]) & set(x1[:, col])) == 0
    # a new epoch (fresh workers) gets a new base seed
    assert not np.array_equal(a[0][0][0], a[1][0][0])
    assert a[0][0][1][0, 1] != a[1][0][1][0, 1]


def test_persistent_workers_keep_their_processes_and_seed():
    dl = DataLoader(RandomItems(8), batch_size=2, num_workers=2, persistent_workers=True,
                    generator=mg.Generator().manual_seed(4))
    list(dl)
    pids = dl._pool.pids
    w1 = [b[1].numpy()[0, 1] for b in dl]
    assert dl._pool.pids == pids and all(p.is_alive() for p in dl._pool.workers)
    w2 = [b[1].numpy()[0, 1] for b in dl]
    assert w1 == w2  # same workers, same seeds (their random streams continue)
    dl.shutdown_workers()
    assert dl._pool is None


def test_worker_init_fn_and_worker_info():
    seen = []

    class Report(Plain):
        def __getitem__(self, i):
            info = mg.data.get_worker_info()
            return np.array([info.id, info.num_workers, info.seed, os.getpid(), INIT.get("v", -1)]), i

    def init(wid):
        INIT["v"] = 100 + wid
        info = mg.data.get_worker_info()
        assert info.id == wid and info.dataset is not None

    dl = DataLoader(Report(6), batch_size=2, num_workers=3, generator=mg.Generator().manual_seed(7),
                    worker_init_fn=init)
    for b in dl:
        seen.append(b[0].numpy()[0].tolist())
    assert [s[0] for s in seen] == [0, 1, 2] and all(s[1] == 3 for s in seen)
    assert [s[4] for s in seen] == [100, 101, 102]
    assert len({s[3] for s in seen}) == 3 and os.getpid() not in {s[3] for s in seen}
    assert seen[1][2] == seen[0][2] + 1 and dl.state_dict()["worker_base_seed"] is None
    with pytest.raises(InvalidArgumentError):
        mg.data.WorkerInfo(id=0).id = 3


INIT = {}


# ------------------------------------------------------------------ errors and shutdown
def test_exception_in_worker_reraised_naming_the_worker():
    dl = DataLoader(Failing(12), batch_size=2, num_workers=2)
    got = []
    with pytest.raises(ValueError, match=r"Caught ValueError in DataLoader worker process 1") as ei:
        for b in dl:
            got.append(b[1].numpy().tolist())
    assert "bad sample 7" in str(ei.value) and "Traceback" in str(ei.value)
    assert got == [[0, 1], [2, 3], [4, 5]]
    assert dl._pool is None  # workers stopped (the fixture checks no process is left)


def test_exception_in_worker_init_fn():
    def init(wid):
        raise KeyError(f"no config for worker {wid}")

    with pytest.raises(KeyError, match=r"worker process 0 \(in worker_init_fn\)"):
        list(DataLoader(Plain(4), batch_size=2, num_workers=2, worker_init_fn=init))


def test_unrebuildable_exception_becomes_worker_error():
    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(a, b)

    class DS(Plain):
        def __getitem__(self, i):
            raise Odd(1, 2)

    with pytest.raises(mg.data.DataLoaderWorkerError, match="Caught Odd in DataLoader worker process 0"):
        list(DataLoader(DS(4), batch_size=2, num_workers=1))


def test_dead_worker_is_reported():
    with pytest.raises(mg.data.DataLoaderWorkerError, match=r"worker 0 \(pid \d+\) exit code 3"):
        list(DataLoader(Dying(8), batch_size=2, num_workers=2))


def test_timeout():
    t0 = time.monotonic()
    with pytest.raises(mg.data.DataLoaderTimeoutError, match="0.5 seconds"):
        list(DataLoader(Slow(6), batch_size=1, num_workers=1, timeout=0.5))
    assert time.monotonic() - t0 < 8


def test_leaving_the_loop_early_stops_the_workers():
    dl = DataLoader(Plain(40), batch_size=2, num_workers=2)
    it = iter(dl)
    next(it)
    pool = dl._pool
    pids = pool.pids
    assert all(p.is_alive() for p in pool.workers)
    del it
    gc.collect()
    assert pool.closed and dl._pool is None
    for p in pool.workers:
        assert not p.is_alive() and p.exitcode is not None, pids
    for _ in dl:  # the loader still works afterwards
        break


def test_resume_mid_epoch_with_workers():
    ds = TensorDataset(np.arange(30, dtype=np.float32)[:, None], np.arange(30))
    g = mg.Generator().manual_seed(11)
    dl = DataLoader(ds, batch_size=4, shuffle=True, generator=g, num_workers=2)
    it = iter(dl)
    head = [next(it)[1].numpy().tolist() for _ in range(3)]
    state = dl.state_dict()
    assert state["batches_done"] == 3 and state["worker_base_seed"] is not None
    tail = [b[1].numpy().tolist() for b in it]
    dl2 = DataLoader(ds, batch_size=4, shuffle=True, generator=mg.Generator().manual_seed(99), num_workers=2)
    dl2.load_state_dict(state)
    assert [b[1].numpy().tolist() for b in dl2] == tail
    assert sorted(sum(head + tail, [])) == list(range(30))


def test_argument_checks():
    ds = Plain(4)
    with pytest.raises(InvalidArgumentError, match="prefetch_factor"):
        DataLoader(ds, prefetch_factor=2)
    with pytest.raises(InvalidArgumentError, match="persistent_workers"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(InvalidArgumentError, match="num_workers"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(InvalidArgumentError, match="timeout"):
        DataLoader(ds, timeout=-1)
    with pytest.raises(InvalidArgumentError, match="multiprocessing_context"):
        DataLoader(ds, num_workers=1, multiprocessing_context="no-such-method")
    # pin_memory is accepted and changes nothing
    a = _batches(DataLoader(ds, batch_size=2, pin_memory=True))
    assert a == _batches(DataLoader(ds, batch_size=2))


def test_weighted_random_sampler():
    s = mg.data.WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 400, generator=mg.Generator().manual_seed(0))
    idx = list(s)
    assert len(idx) == len(s) == 400 and set(idx) <= {1, 3}
    assert 0.65 < idx.count(3) / 400 < 0.85
    s2 = mg.data.WeightedRandomSampler([1.0, 1.0, 5.0], 3, replacement=False)
    assert sorted(s2) == [0, 1, 2]
    with pytest.raises(InvalidArgumentError):
        mg.data.WeightedRandomSampler([1.0, -1.0], 2)
    with pytest.raises(InvalidArgumentError):
        mg.data.WeightedRandomSampler([1.0, 0.0], 2, replacement=False)


# ------------------------------------------------------------------ torch as the oracle
def test_same_batches_and_error_text_as_torch():
    torch = pytest.importorskip("torch")
    import torch.utils.data as tud

    class TDS(tud.Dataset):
        def __len__(self):
            return 11

        def __getitem__(self, i):
            if i == 9:
                raise ValueError("bad sample 9")
            return np.array([i, 2 * i], dtype=np.float32), i

    class MDS(mg.data.Dataset):
        __len__ = TDS.__len__
        __getitem__ = TDS.__getitem__

    def run(loader):
        got = []
        it = iter(loader)
        try:
            for x, i in it:
                got.append((x.numpy().tolist(), i.numpy().tolist()))
        except ValueError as e:
            msg = str(e)
        else:  # pragma: no cover
            msg = None
        del it  # torch stops its workers when its iterator goes away
        gc.collect()
        return got, msg

    # one worker: torch's shutdown after a worker error waits ~5 s per worker
    tb, tmsg = run(tud.DataLoader(TDS(), batch_size=3, num_workers=1))
    mb, mmsg = run(DataLoader(MDS(), batch_size=3, num_workers=1))
    assert tb == mb and len(mb) == 3
    # both name the worker the same way
    first = tmsg.splitlines()[0]
    assert first == "Caught ValueError in DataLoader worker process 0."
    assert mmsg.splitlines()[0] == first


# ------------------------------------------------------------------ iterable-style datasets
class Stream(mg.data.IterableDataset):
    """0..n-1 as (float row, id) samples; with workers, each worker reads its own slice (PyTorch's recipe)."""

    def __init__(self, n, shard=True):
        self.n, self.shard = n, shard

    def __iter__(self):
        info = mg.data.get_worker_info()
        lo, step = (0, 1) if info is None or not self.shard else (info.id, info.num_workers)
        for i in range(lo, self.n, step):
            yield np.array([i], dtype=np.float32), i

    def __len__(self):
        return self.n


@pytest.mark.parametrize("workers", [0, 1, 3])
@pytest.mark.parametrize("drop_last", [False, True])
def test_iterable_dataset_batches(workers, drop_last):
    dl = DataLoader(Stream(11), batch_size=3, num_workers=workers, drop_last=drop_last)
    ids = [b[1].numpy().tolist() for b in dl]
    flat = sorted(i for b in ids for i in b)
    if workers <= 1:
        assert ids == ([[0, 1, 2], [3, 4, 5], [6, 7, 8]] + ([] if drop_last else [[9, 10]]))
    else:  # worker w streams w, w+3, ...; batches alternate between workers until their streams end
        assert ids[0] == [0, 3, 6] and ids[1] == [1, 4, 7] and ids[2] == [2, 5, 8]
        assert flat == ([0, 1, 2, 3, 4, 5, 6, 7, 8] if drop_last else list(range(11)))
    assert len(dl) == (3 if drop_last else 4)
    for _ in range(2):  # a second epoch reads the stream again
        assert sorted(i for b in dl for i in b[1].numpy().tolist()) == flat


def test_iterable_dataset_matches_torch():
    torch = pytest.importorskip("torch")
    import torch.utils.data as tud

    class TStream(tud.IterableDataset):
        def __iter__(self):
            info = tud.get_worker_info()
            lo, step = (0, 1) if info is None else (info.id, info.num_workers)
            for i in range(lo, 10, step):
                yield np.array([i], dtype=np.float32), i

    for workers in (0, 2):
        for bs in (None, 4):
            t = [(x.numpy().tolist(), int(i) if bs is None else i.numpy().tolist())
                 for x, i in tud.DataLoader(TStream(), batch_size=bs, num_workers=workers)]
            m = [(x.numpy().tolist(), i if bs is None else i.numpy().tolist())
                 for x, i in DataLoader(Stream(10), batch_size=bs, num_workers=workers)]
            assert m == t, (workers, bs)


def test_iterable_dataset_persistent_resume_and_errors():
    dl = DataLoader(Stream(9), batch_size=2, num_workers=2, persistent_workers=True)
    a = [b[1].numpy().tolist() for b in dl]
    b = [b[1].numpy().tolist() for b in dl]
    assert a == b and sorted(sum(a, [])) == list(range(9))
    dl.shutdown_workers()
    dl = DataLoader(Stream(9), batch_size=2)
    it = iter(dl)
    head = [next(it)[1].numpy().tolist() for _ in range(2)]
    st = dl.state_dict()
    rest = [x[1].numpy().tolist() for x in it]
    dl2 = DataLoader(Stream(9), batch_size=2)
    dl2.load_state_dict(st)
    assert [x[1].numpy().tolist() for x in dl2] == rest and head == [[0, 1], [2, 3]]
    with pytest.raises(InvalidArgumentError, match="shuffle"):
        DataLoader(Stream(3), shuffle=True)
    with pytest.raises(InvalidArgumentError, match="sampler"):
        DataLoader(Stream(3), sampler=[0, 1])
    with pytest.raises(InvalidArgumentError, match="iterable-style"):
        Stream(3)[0]
    chained = Stream(2, shard=False) + Stream(3, shard=False)
    assert isinstance(chained, mg.data.ChainDataset) and len(chained) == 5
    assert [i for _, i in chained] == [0, 1, 0, 1, 2]


def test_stack_dataset():
    a, b = Plain(4), TensorDataset(np.arange(4) * 10)
    s = mg.data.StackDataset(a, b)
    assert len(s) == 4 and s[2][0][1] == 2 and int(s[2][1][0].item()) == 20
    d = mg.data.StackDataset(x=a, y=b)
    assert set(d[1]) == {"x", "y"}
    batch = next(iter(DataLoader(d, batch_size=2, num_workers=1)))
    assert batch["x"][1].numpy().tolist() == [0, 1] and batch["y"][0].numpy().tolist() == [0, 10]
    with pytest.raises(mg.errors.ShapeError):
        mg.data.StackDataset(Plain(2), Plain(3))
    with pytest.raises(InvalidArgumentError):
        mg.data.StackDataset(Plain(2), y=Plain(2))


class Picklable(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return np.array([i], dtype=np.float64), i


def test_spawn_start_method():
    """The non-fork start methods pickle the dataset and re-import minigen in each worker."""
    dl = DataLoader(Picklable(), batch_size=4, num_workers=2, multiprocessing_context="spawn", timeout=120)
    got = [b[1].numpy().tolist() for b in dl]
    assert got == [[0, 1, 2, 3], [4, 5]]


@pytest.mark.parametrize("call", [
    lambda: mg.data.WeightedRandomSampler(["a"], 2), lambda: mg.data.WeightedRandomSampler([1.0], 2.5),
    lambda: mg.data.WeightedRandomSampler([[1.0]], 1), lambda: mg.data.StackDataset(5),
    lambda: mg.data.ChainDataset([1]), lambda: DataLoader(Plain(3), num_workers=1.5),
    lambda: DataLoader(Plain(3), num_workers=1, prefetch_factor=0),
    lambda: DataLoader(Plain(3), num_workers=1, worker_init_fn=3),
    lambda: DataLoader(Plain(3), timeout="soon"),
    lambda: DataLoader(Plain(3), num_workers=1, multiprocessing_context=7),
    lambda: DataLoader(Stream(3), batch_size=0), lambda: DataLoader(Stream(3), batch_size=None, drop_last=True),
])
def test_bad_arguments_raise_minigen_errors(call):
    with pytest.raises(mg.errors.MinigenError):
        call()
