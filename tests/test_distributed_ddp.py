"""DistributedDataParallel and SyncBatchNorm, in real processes started by mpiexec.

Each test launches ``mpiexec -n W python tests/test_distributed_ddp.py <worker> ...``: this file is also the
worker script (see the bottom). A worker checks its own results with assertions, prints ``OK rank r`` at the
end, and the test requires W such lines and exit status 0, so a failing check on any rank fails the test.
Skipped cleanly when mpi4py or mpiexec are missing (``pip install 'minigen[distributed]'``).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

try:
    import pytest
except ImportError:  # the worker processes do not need pytest
    pytest = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mpiexec():
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def _have_mpi():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return _mpiexec() is not None


def launch(n, script, *args, timeout=180, extra_env=None):
    """Run ``mpiexec -n n python script args`` (1 thread per process); return (CompletedProcess, seconds)."""
    exe = _mpiexec()
    cmd = [exe, "-n", str(n)]
    ver = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in ver or "OpenRTE" in ver:  # Open MPI refuses more processes than cores without this
        cmd += ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    cmd += [sys.executable, script, *map(str, args)]
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.update(extra_env or {})
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    return r, time.monotonic() - t0


def say(msg):
    """One line to stdout in one write() (ranks share the pipe: print's separate writes can interleave)."""
    os.write(1, (msg + "\n").encode())


def assert_ok(r, n):
    msg = f"exit {r.returncode}\n--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-4000:]}"
    assert r.returncode == 0, msg
    for k in range(n):
        assert re.search(rf"^OK rank {k}$", r.stdout, re.M), msg


if pytest is not None:
    pytestmark = pytest.mark.skipif(not _have_mpi(), reason="needs mpi4py and mpiexec (pip install mpi4py mpich)")

    @pytest.mark.parametrize("world,dtype", [(2, "float64"), (2, "float32"), (3, "float64")])
    def test_ddp_matches_one_process_with_the_whole_batch(world, dtype):
        r, _ = launch(world, __file__, "equivalence", dtype)
        assert_ok(r, world)

    def test_ddp_first_bucket_allreduce_starts_before_backward_ends():
        r, _ = launch(2, __file__, "overlap")
        assert_ok(r, 2)

    def test_ddp_detects_a_mismatched_model_on_every_rank():
        r, _ = launch(2, __file__, "mismatch")
        assert_ok(r, 2)
        assert r.stdout.count("mismatch detected") == 2

    def test_ddp_unused_parameter_is_reported():
        r, _ = launch(2, __file__, "unused")
        assert_ok(r, 2)

    def test_ddp_gan_generator_and_discriminator_match_one_process():
        r, _ = launch(2, __file__, "gan")
        assert_ok(r, 2)

    def test_ddp_gpt_with_tied_weights_matches_one_process():
        r, _ = launch(2, __file__, "gpt")
        assert_ok(r, 2)

    def test_checkpoint_by_rank0_resumes_on_another_world_size(tmp_path):
        """Train 3 steps on 2 processes (batch 3 each), rank 0 saves; resume for 3 more on 3 processes (batch 2
        each) and on 1 (batch 6): the same global batch of 6, so all equal one process training 6 steps."""
        ck = str(tmp_path / "ck.safetensors")
        r, _ = launch(2, __file__, "resume", ck, 0, 3)
        assert_ok(r, 2)
        assert os.path.exists(ck)
        for world in (3, 1):
            r, _ = launch(world, __file__, "resume", ck, 3, 6)
            assert_ok(r, world)

    def test_ddp_find_unused_parameters_matches_one_process():
        r, _ = launch(2, __file__, "find_unused")
        assert_ok(r, 2)

    def test_sync_batchnorm_matches_batchnorm_on_the_whole_batch():
        r, _ = launch(2, __file__, "syncbn")
        assert_ok(r, 2)

    @pytest.mark.parametrize("world", [2, 3])
    def test_sync_batchnorm_gradient_across_ranks_equals_central_differences(world):
        r, _ = launch(world, __file__, "gradcheck_syncbn", timeout=300)
        assert_ok(r, world)

    def test_ddp_single_process_world_is_plain_training():
        r, _ = launch(1, __file__, "equivalence", "float64")
        assert_ok(r, 1)


# ============================================================================ workers (run under mpiexec)
def _mlp(mg, dtype, seed, norm=None):
    mg.manual_seed(seed)
    nn = mg.nn
    layers = [nn.Linear(6, 16, dtype=dtype), nn.Tanh()]
    if norm is not None:
        layers = [nn.Linear(6, 16, dtype=dtype), norm(16), nn.Tanh()]
    layers += [nn.Linear(16, 16, dtype=dtype), nn.Tanh(), nn.Linear(16, 3, dtype=dtype)]
    return nn.Sequential(*layers)


def _data(mg, dtype, n, step):
    rng = np.random.default_rng(1000 + step)
    x = rng.standard_normal((n, 6)).astype(dtype)
    y = rng.standard_normal((n, 3)).astype(dtype)
    return mg.tensor(x), mg.tensor(y)


def _params(model):
    return [p.array.copy() for p in model.parameters()]


def _check_replicas_identical(mg, dist, model):
    """All ranks hold bit-identical parameters (the all-reduce gives every rank the same bytes)."""
    W = dist.get_world_size()
    for p in model.parameters():
        outs = [mg.zeros(*p.shape, dtype=p.dtype) for _ in range(W)]
        dist.all_gather(outs, p)
        for o in outs:
            assert o.array.tobytes() == p.array.tobytes(), "replicas diverged"


def w_equivalence(dtype):
    """W processes x batch B == 1 process x batch W*B, after k optimizer steps (SGD with momentum), including
    steps with gradient accumulation under no_sync()."""
    import minigen as mg
    import minigen.distributed as dist
    from minigen.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("mpi", timeout=60)
    r, W = dist.get_rank(), dist.get_world_size()
    B, k = 4, 5
    dt = getattr(mg, dtype)
    F = mg.nn.functional
    # the reference: one process, the whole batch (every rank computes it, no communication)
    ref = _mlp(mg, dt, seed=0)
    opt_ref = mg.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    # the replica: a different seed on every rank but rank 0, so the initial broadcast is exercised
    model = _mlp(mg, dt, seed=r * 7)
    ddp = DDP(model, bucket_cap_mb=0.0005)  # ~500 bytes: several buckets even for this small model
    assert len(ddp.bucket_sizes()) > 2, ddp.bucket_sizes()
    opt = mg.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    for a, b in zip(_params(ref), _params(model)):
        assert a.tobytes() == b.tobytes(), "rank 0's initial parameters were not broadcast"
    for step in range(k):
        micro = 2 if step in (1, 3) else 1  # steps 1 and 3: two micro-batches, the first under no_sync
        opt_ref.zero_grad()
        opt.zero_grad()
        for m in range(micro):
            x, y = _data(mg, dtype, W * B, step * 10 + m)
            F.mse_loss(ref(x), y).backward()
            xs, ys = x[r * B:(r + 1) * B], y[r * B:(r + 1) * B]
            if m < micro - 1:
                with ddp.no_sync():
                    F.mse_loss(ddp(xs), ys).backward()
            else:
                F.mse_loss(ddp(xs), ys).backward()
        opt_ref.step()
        opt.step()
    # tolerance: only the summation order differs (B rows per rank, then the ranks, vs W*B rows at once)
    tol = {"float64": 1e-13, "float32": 1e-6}[dtype]  # seen: 3.4e-16 and 9.4e-8
    worst = 0.0
    for a, b in zip(_params(ref), _params(model)):
        worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b)) / (np.max(np.abs(a)) + 1e-30)))
    assert worst <= tol, f"rank {r}: max relative difference {worst:.3e} > {tol:.0e}"
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(_params(ref), _params(_mlp(mg, dt, seed=0))))
    assert moved > 1e-3, "the parameters did not change: the test would pass vacuously"
    _check_replicas_identical(mg, dist, model)
    say(f"rank {r}: max rel diff {worst:.3e} (tolerance {tol:.0e})")
    say(f"OK rank {r}")


def w_overlap():
    """The first bucket's all-reduce starts while the backward is still running: before the backward of an op
    placed right after the first layer (so it runs near the end of the backward) has run."""
    import minigen as mg
    import minigen.distributed as dist
    from minigen.autograd import Function
    from minigen.nn.parallel import DistributedDataParallel as DDP, allreduce_hook

    dist.init_process_group("mpi", timeout=60)
    r = dist.get_rank()
    events = []

    class Probe(Function):
        """identity whose backward logs when it runs"""

        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            events.append(("probe-backward",))
            return g

    class ProbeLayer(mg.nn.Module):
        def forward(self, x):
            return Probe.apply(x)

    mg.manual_seed(0)
    nn = mg.nn
    model = nn.Sequential(nn.Linear(6, 32), ProbeLayer(), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3))
    ddp = DDP(model, bucket_cap_mb=0.001)

    def logging_hook(state, bucket):
        events.append(("start", bucket.index(), [id(p) for p in bucket.parameters()]))
        return allreduce_hook(state, bucket)

    ddp.register_comm_hook(ddp.process_group, logging_hook)
    first_layer = {id(model[0].weight), id(model[0].bias)}
    for it in range(3):  # iteration 0 with the initial buckets, then with the rebuilt ones
        events.clear()
        x = mg.randn(4, 6)
        loss = ddp(x).pow(2).mean()
        loss.backward()
        events.append(("backward-returned",))
        kinds = [e[0] for e in events]
        probe = kinds.index("probe-backward")
        starts = [i for i, e in enumerate(events) if e[0] == "start"]
        assert starts and starts[0] < probe, f"iteration {it}: no all-reduce started before the end: {kinds}"
        assert events[starts[0]][1] == 0, "bucket 0 must be the first to start"
        # the buckets holding the first layer can only start after the probe (their gradients come last)
        late = [i for i in starts if first_layer & set(events[i][2])]
        assert late and min(late) > probe, kinds
        assert kinds[-1] == "backward-returned" and max(starts) < len(kinds) - 1
        for p in model.parameters():
            assert p.grad is not None
    say(f"rank {r}: events {[e[0] if e[0] != 'start' else 'start%d' % e[1] for e in events]}")
    say(f"OK rank {r}")


def w_mismatch():
    import minigen as mg
    import minigen.distributed as dist
    from minigen.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("mpi", timeout=60)
    r = dist.get_rank()
    model = mg.nn.Sequential(mg.nn.Linear(4, 6 if r == 0 else 5), mg.nn.Linear(6 if r == 0 else 5, 2))
    try:
        DDP(model)
    except dist.DistributedError as e:
        msg = str(e)
        assert "rank 1 has" in msg and "[6, 4]" in msg and "[5, 4]" in msg, msg
        say(f"rank {r}: mismatch detected: {msg}")
    else:
        raise AssertionError("a mismatched model was not detected")
    say(f"OK rank {r}")


def w_unused():
    import minigen as mg
    import minigen.distributed as dist
    from minigen.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("mpi", timeout=60)
    r = dist.get_rank()

    class TwoHeads(mg.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = mg.nn.Linear(3, 2), mg.nn.Linear(3, 2)

        def forward(self, x):
            return self.a(x)  # self.b never gets a gradient

    ddp = DDP(TwoHeads())
    ddp(mg.randn(2, 3)).sum().backward()
    try:
        ddp(mg.randn(2, 3))
    except dist.DistributedError as e:
        assert "b.weight" in str(e) and "no gradient" in str(e), str(e)
    else:
        raise AssertionError("an unfinished reduction was not reported")
    # bucket packing: reverse parameter order, the first bucket capped at 1 MB, then up to bucket_cap_mb
    big = mg.nn.Sequential(*[mg.nn.Linear(512, 512) for _ in range(3)])  # weights of exactly 1 MiB
    assert DDP(big).bucket_sizes() == [1, 5]  # [last bias] (its weight would overflow 1 MiB), then the rest
    assert DDP(big, bucket_cap_mb=1.5).bucket_sizes() == [1, 2, 2, 1]
    # a second backward after one forward would accumulate unaveraged gradients: refused
    lin = DDP(mg.nn.Linear(3, 2))
    loss = lin(mg.randn(2, 3)).sum()
    loss.backward(retain_graph=True)
    try:
        loss.backward()
    except dist.DistributedError as e:
        assert "second backward" in str(e), str(e)
    else:
        raise AssertionError("a second backward after one forward was not reported")
    say(f"OK rank {r}")


def w_gan():
    """A GAN with G and D each in its own DDP (the DCGAN training pattern: D step on real and detached fake, G step
    through D, so D's gradients are averaged in both steps) on 2 x B == one process on 2B, float64."""
    import minigen as mg
    import minigen.distributed as dist
    from minigen.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("mpi", timeout=60)
    r, W = dist.get_rank(), dist.get_world_size()
    B, k = 3, 4
    nn, F = mg.nn, mg.nn.functional

    def build():
        mg.manual_seed(5)
        G = nn.Sequential(nn.Linear(4, 8, dtype=mg.float64), nn.Tanh(), nn.Linear(8, 6, dtype=mg.float64))
        D = nn.Sequential(nn.Linear(6, 8, dtype=mg.float64), nn.LeakyReLU(0.2), nn.Linear(8, 1, dtype=mg.float64))
        return G, D

    def step(G, D, oG, oD, real, z):
        n = real.shape[0]
        ones, zeros = mg.ones(n, 1, dtype=mg.float64), mg.zeros(n, 1, dtype=mg.float64)
        oD.zero_grad()
        fake = G(z)
        lossD = F.binary_cross_entropy_with_logits(D(real), ones) + \
            F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
        lossD.backward()
        oD.step()
        oG.zero_grad()
        F.binary_cross_entropy_with_logits(D(fake), ones).backward()
        oG.step()

    Gr, Dr = build()
    G, D = build()
    Gd, Dd = DDP(G), DDP(D)
    opts_ref = [mg.optim.SGD(m.parameters(), lr=0.05, momentum=0.5) for m in (Gr, Dr)]
    opts = [mg.optim.SGD(m.parameters(), lr=0.05, momentum=0.5) for m in (G, D)]
    for s_ in range(k):
        rng = np.random.default_rng(s_)
        real = mg.tensor(rng.standard_normal((W * B, 6)))
        z = mg.tensor(rng.standard_normal((W * B, 4)))
        step(Gr, Dr, *opts_ref, real, z)
        step(Gd, Dd, *opts, real[r * B:(r + 1) * B], z[r * B:(r + 1) * B])
    for a, b in zip(list(Gr.parameters()) + list(Dr.parameters()), list(G.parameters()) + list(D.parameters())):
        np.testing.assert_allclose(b.array, a.array, rtol=1e-12, atol=1e-14)
    assert Dd.comm_stats["buckets"] >= 1 and Gd.comm_stats["bytes"] == 8 * sum(p.numel() for p in G.parameters())
    say(f"OK rank {r}")


def w_gpt():
    """The zoo's GPT (tied embedding / lm_head weight: one parameter used twice, one hook) under DDP on 2 x B ==
    one process on 2B, float32, 3 SGD steps with buckets rebuilt after the first."""
    import minigen as mg
    import minigen.distributed as dist
    from minigen.models.gpt import GPT, GPTConfig
    from minigen.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("mpi", timeout=120)
    r, W = dist.get_rank(), dist.get_world_size()
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    B = 2

    def build():
        mg.manual_seed(0)
        return GPT(cfg, generator=mg.Generator().manual_seed(0))

    ref, model = build(), build()
    assert model.lm_head.weight is model.wte.weight
    ddp = DDP(model, bucket_cap_mb=0.005)
    o_ref, o = (mg.optim.SGD(m.parameters(), lr=0.5) for m in (ref, model))
    for step in range(3):
        rng = np.random.default_rng(step)
        idx, tgt = mg.tensor(rng.integers(0, 11, (W * B, 8))), mg.tensor(rng.integers(0, 11, (W * B, 8)))
        o_ref.zero_grad()
        ref(idx, tgt)[1].backward()
        o_ref.step()
        o.zero_grad()
        ddp(idx[r * B:(r + 1) * B], tgt[r * B:(r + 1) * B])[1].backward()
        o.step()
    assert ddp._rebuilt and len(ddp.bucket_sizes()) > 1
    worst = max(float(np.abs(a.array - b.array).max()) for a, b in zip(ref.parameters(), model.parameters()))
    assert worst < 1e-6, worst
    say(f"rank {r}: GPT max abs diff {worst:.2e}")
    say(f"OK rank {r}")


def w_resume(path, start, stop):
    """Steps [start, stop) with a global batch of 6 split over the W ranks; start > 0 loads the checkpoint that rank 0
    wrote (model + optimizer, before wrapping in DDP). At the end, rank 0 checks against one process that trained
    steps [0, stop) uninterrupted, and (start == 0) writes the checkpoint."""
    import minigen as mg
    import minigen.distributed as dist
    from minigen.nn.parallel import DistributedDataParallel as DDP

    start, stop = int(start), int(stop)
    dist.init_process_group("mpi", timeout=60)
    r, W = dist.get_rank(), dist.get_world_size()
    G = 6
    B = G // W
    F = mg.nn.functional

    def batch(step):
        rng = np.random.default_rng(100 + step)
        return mg.tensor(rng.standard_normal((G, 6))), mg.tensor(rng.standard_normal((G, 3)))

    model = _mlp(mg, mg.float64, seed=0)
    opt = mg.optim.Adam(model.parameters(), lr=1e-2)
    if start:
        st = mg.load(path)  # every rank reads the same file
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        assert st["step"] == start
    ddp = DDP(model) if W > 1 else model
    for step in range(start, stop):
        x, y = batch(step)
        opt.zero_grad()
        F.mse_loss(ddp(x[r * B:(r + 1) * B]), y[r * B:(r + 1) * B]).backward()
        opt.step()
    if start == 0 and r == 0:  # rank 0 writes, the others wait for it
        mg.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": stop}, path)
    dist.barrier()
    ref = _mlp(mg, mg.float64, seed=0)
    o_ref = mg.optim.Adam(ref.parameters(), lr=1e-2)
    for step in range(stop):
        x, y = batch(step)
        o_ref.zero_grad()
        F.mse_loss(ref(x), y).backward()
        o_ref.step()
    for a, b in zip(ref.parameters(), model.parameters()):
        np.testing.assert_allclose(b.array, a.array, rtol=1e-9, atol=1e-12)
    say(f"OK rank {r}")


def w_find_unused():
    """find_unused_parameters=True: head b is used on rank 1 only, head c on no rank. The parameters equal one
    process minimising the mean of the ranks' losses; c.grad stays None everywhere; rank 0 gets b's averaged
    gradient although its own output does not depend on b."""
    import minigen as mg
    import minigen.distributed as dist
    from minigen.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("mpi", timeout=60)
    r, W = dist.get_rank(), dist.get_world_size()
    B = 3

    class Heads(mg.nn.Module):
        def __init__(self):
            super().__init__()
            mg.manual_seed(3)
            self.a, self.b, self.c = (mg.nn.Linear(3, 2, dtype=mg.float64) for _ in range(3))

        def forward(self, x, use_b):
            y = self.a(x)
            return (y + self.b(x), y) if use_b else (y, y)

    ref, model = Heads(), Heads()
    ddp = DDP(model, find_unused_parameters=True, bucket_cap_mb=0.0001)
    o_ref, o = (mg.optim.SGD(m.parameters(), lr=0.1) for m in (ref, model))
    for step in range(3):
        x = mg.tensor(np.random.default_rng(step).standard_normal((W * B, 3)))
        o_ref.zero_grad()
        (sum(ref(x[k * B:(k + 1) * B], k == 1)[0].pow(2).mean() for k in range(W)) * (1.0 / W)).backward()
        o_ref.step()
        o.zero_grad()
        ddp(x[r * B:(r + 1) * B], r == 1)[0].pow(2).mean().backward()
        assert model.c.weight.grad is None and model.b.weight.grad is not None
        o.step()
        with mg.no_grad():
            ddp(x, False)  # evaluation without gradients: no reduction expected
        ddp(x, False)  # a forward with grad enabled but no backward: the next forward finishes its reduction
    for (n, a), b in zip(ref.named_parameters(), model.parameters()):
        np.testing.assert_allclose(b.array, a.array, rtol=1e-12, atol=1e-14, err_msg=n)
    assert float(np.abs(model.b.weight.array - Heads().b.weight.array).max()) > 1e-4  # b was trained
    say(f"OK rank {r}")


def w_syncbn():
    """DDP + SyncBatchNorm on 2 x B == one process with BatchNorm on 2B: outputs, parameters and running
    statistics after k steps."""
    import minigen as mg
    import minigen.distributed as dist
    from minigen.nn.parallel import DistributedDataParallel as DDP, SyncBatchNorm

    dist.init_process_group("mpi", timeout=60)
    r, W = dist.get_rank(), dist.get_world_size()
    B, k, dtype = 5, 4, "float64"
    F = mg.nn.functional
    ref = _mlp(mg, mg.float64, 0, norm=lambda c: mg.nn.BatchNorm1d(c, dtype=mg.float64))
    opt_ref = mg.optim.SGD(ref.parameters(), lr=0.1)
    model = SyncBatchNorm.convert_sync_batchnorm(
        _mlp(mg, mg.float64, 0, norm=lambda c: mg.nn.BatchNorm1d(c, dtype=mg.float64)))
    assert isinstance(model[1], SyncBatchNorm)
    ddp = DDP(model)
    opt = mg.optim.SGD(ddp.parameters(), lr=0.1)
    for step in range(k):
        x, y = _data(mg, dtype, W * B, step)
        x = x * 3 + 1  # statistics far from (0, 1)
        opt_ref.zero_grad()
        opt.zero_grad()
        out_ref = ref(x)
        F.mse_loss(out_ref, y).backward()
        out = ddp(x[r * B:(r + 1) * B])
        np.testing.assert_allclose(out.array, out_ref.array[r * B:(r + 1) * B], rtol=1e-10, atol=1e-12)
        F.mse_loss(out, y[r * B:(r + 1) * B]).backward()
        opt_ref.step()
        opt.step()
    for (n, a), b in zip(ref.state_dict().items(), model.state_dict().values()):
        np.testing.assert_allclose(np.asarray(b.array, np.float64), np.asarray(a.array, np.float64),
                                   rtol=1e-10, atol=1e-12, err_msg=n)
    # the plain-BatchNorm replica differs (each rank normalises with its own shard's statistics)
    plain = DDP(_mlp(mg, mg.float64, 0, norm=lambda c: mg.nn.BatchNorm1d(c, dtype=mg.float64)))
    x, _ = _data(mg, dtype, W * B, 0)
    o_plain = plain(x[r * B:(r + 1) * B] * 3 + 1).array
    o_ref = _mlp(mg, mg.float64, 0, norm=lambda c: mg.nn.BatchNorm1d(c, dtype=mg.float64))(x * 3 + 1).array
    assert np.max(np.abs(o_plain - o_ref[r * B:(r + 1) * B])) > 1e-6
    say(f"OK rank {r}")


def w_gradcheck_syncbn():
    """Central differences of the *global* function L = sum_r sum(y_r * v_r), y_r = SyncBN(x_r), in float64,
    against backward, for every element of every rank's input (perturbed on one rank at a time while all ranks
    evaluate L together) and for weight and bias (replicated: perturbed on all ranks). Cases drawn by Hypothesis
    (derandomized, so every rank draws the same case): per-rank batch sizes (uneven), channels, 2-d or 3-d input.
    Also the differentiable all_reduce itself: y_r = all_reduce(x_r^2)."""
    import minigen as mg
    import minigen.distributed as dist
    from hypothesis import HealthCheck, assume, given, settings, strategies as st
    from minigen.distributed import functional as dF
    from minigen.nn.parallel import SyncBatchNorm

    dist.init_process_group("mpi", timeout=120)
    r, W = dist.get_rank(), dist.get_world_size()
    h = 1e-6

    def total(v):
        t = mg.tensor(np.array([v]))
        dist.all_reduce(t)
        return float(t.array[0])

    def check(fn, x0, v, params=()):
        """fn: array -> Tensor (differentiable in x and params); compares backward with central differences."""
        def L(x_arr):
            with mg.no_grad():
                return total(float((fn(mg.tensor(x_arr)).array * v).sum()))

        x = mg.tensor(x0.copy(), requires_grad=True)
        (fn(x) * mg.tensor(v)).sum().backward()
        pgrads = []
        for p in params:
            g = p.grad.clone()
            dist.all_reduce(g)  # replicated parameter: the global gradient is the sum over ranks
            pgrads.append(g)
        sizes = [0] * W
        dist.all_gather_object(sizes, int(x0.size))
        num = np.zeros(x0.size)
        for s in range(W):  # rank s perturbs its element i; every rank evaluates the global L
            for i in range(sizes[s]):
                xp, xm = x0.copy().reshape(-1), x0.copy().reshape(-1)
                if r == s:
                    xp[i] += h
                    xm[i] -= h
                d = (L(xp.reshape(x0.shape)) - L(xm.reshape(x0.shape))) / (2 * h)
                if r == s:
                    num[i] = d
        np.testing.assert_allclose(x.grad.array.reshape(-1), num, rtol=1e-5, atol=1e-6, err_msg="d/dx")
        for p, g in zip(params, pgrads):
            flat = p.array.reshape(-1)
            nump = np.zeros(p.numel())
            for i in range(p.numel()):
                old = float(flat[i])
                flat[i] = old + h
                lp = L(x0)
                flat[i] = old - h
                lm = L(x0)
                flat[i] = old
                nump[i] = (lp - lm) / (2 * h)
            np.testing.assert_allclose(g.array, nump, rtol=1e-5, atol=1e-6, err_msg="d/dparam")

    @settings(max_examples=10, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(sizes=st.lists(st.integers(1, 3), min_size=W, max_size=W), C=st.integers(1, 3), L=st.integers(0, 3),
           seed=st.integers(0, 2 ** 16))
    def syncbn_case(sizes, C, L, seed):
        assume(sum(sizes) * max(L, 1) > 1)
        shape = (sizes[r], C) + ((L,) if L else ())
        rng = np.random.default_rng([seed, r])
        x0 = rng.standard_normal(shape) * 2 + 0.5
        v = rng.standard_normal(shape)
        bn = SyncBatchNorm(C, dtype=mg.float64)
        wrng = np.random.default_rng(seed)  # the same weight and bias on every rank
        bn.weight.array[...] = wrng.standard_normal(C)
        bn.bias.array[...] = wrng.standard_normal(C)
        check(bn, x0, v, (bn.weight, bn.bias))

    syncbn_case()
    rng = np.random.default_rng([7, r])
    check(lambda x: dF.all_reduce(x * x), rng.standard_normal((2, 3)), rng.standard_normal((2, 3)))
    check(lambda x: dF.all_reduce(x * x, op="avg"), rng.standard_normal((3,)), rng.standard_normal((3,)))
    say(f"OK rank {r}")


if __name__ == "__main__":
    globals()["w_" + sys.argv[1]](*sys.argv[2:])
