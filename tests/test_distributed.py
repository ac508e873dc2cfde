"""minigen.distributed: collectives against their NumPy definitions, in real processes (mpiexec), at world
sizes 1, 2 and 3 (3 processes on 2 cores: oversubscribed), every dtype, sizes not divisible by the world size;
failures (a rank that raises, is killed, or never joins) end the job with a clear error within a timeout.

This file is also the worker script: ``mpiexec -n W python tests/test_distributed.py <worker> ...``. Workers
check with assertions and print ``OK rank r``; the launcher (tests/test_distributed_ddp.py) requires every rank's
line and exit status 0.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

try:
    import pytest
except ImportError:  # worker processes
    pytest = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_distributed_ddp import _have_mpi, assert_ok, launch, say  # noqa: E402

DTYPES = ["float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"]

if pytest is not None:
    needs_mpi = pytest.mark.skipif(not _have_mpi(), reason="needs mpi4py and mpiexec (pip install mpi4py mpich)")

    @needs_mpi
    @pytest.mark.parametrize("world", [1, 2, 3])
    def test_collectives_equal_numpy_definitions(world):
        r, _ = launch(world, __file__, "collectives", timeout=300)
        assert_ok(r, world)

    @needs_mpi
    def test_rank_that_raises_ends_the_job_with_its_traceback():
        r, secs = launch(2, __file__, "raise_on_rank1", timeout=120)
        assert r.returncode != 0
        assert secs < 60, f"the job took {secs:.0f} s to end"
        assert "ValueError: boom on rank 1" in r.stderr
        assert "rank 1 of 2: uncaught ValueError; aborting the MPI job" in r.stderr
        assert "rank 0 finished" not in r.stdout

    @needs_mpi
    def test_killed_rank_ends_the_job():
        r, secs = launch(2, __file__, "killed_rank1", timeout=120)
        assert r.returncode != 0
        assert secs < 60, f"the job took {secs:.0f} s to end"
        assert "rank 0 finished" not in r.stdout

    @needs_mpi
    def test_rank_that_never_joins_times_out_with_a_clear_error():
        r, secs = launch(2, __file__, "absent_rank1", timeout=120)
        assert r.returncode != 0
        assert secs < 40, f"the job took {secs:.0f} s to end"
        assert "DistributedError: all_reduce(sum, float32, 3 elements) timed out after 2.0 s on rank 0 of 2" in r.stderr
        assert "rank 0 finished" not in r.stdout

    @needs_mpi
    def test_init_from_env_without_a_launcher_is_a_single_process_run():
        import subprocess

        code = ("import minigen.distributed as d; assert not d.launched_by_mpi(); assert d.init_from_env() is False;"
                " assert not d.is_initialized(); d.init_process_group('mpi'); assert d.get_world_size() == 1;"
                " print('single', d.get_rank())")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_", "MPI_LOCAL"))}
        env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
                                            + [p for p in [os.environ.get("PYTHONPATH")] if p])
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0 and "single 0" in r.stdout, r.stderr

    @needs_mpi
    def test_init_from_env_under_mpiexec_joins_the_world():
        r, _ = launch(2, __file__, "from_env")
        assert_ok(r, 2)

    def _run_plain(args, timeout=120):
        import subprocess

        env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_", "MPI_LOCAL"))}
        env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
                                            + [p for p in [os.environ.get("PYTHONPATH")] if p])
        env["OMP_NUM_THREADS"] = "1"
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env)

    @needs_mpi
    def test_relaunch_reexecutes_the_command_under_mpiexec():
        r = _run_plain([__file__, "relaunch", "2"])
        assert_ok(r, 2)

    @needs_mpi
    def test_launch_module_runs_a_script_as_n_processes():
        r = _run_plain(["-m", "minigen.distributed.launch", "-n", "2", __file__, "from_env"])
        assert_ok(r, 2)
        r = _run_plain(["-m", "minigen.distributed.launch", "-n", "0", __file__, "from_env"])
        assert r.returncode != 0 and "must be an int >= 1, got 0" in r.stderr

    @needs_mpi
    def test_nccl_backend_without_cupy_or_gpu_raises_a_device_error():
        code = ("import minigen.distributed as d\n"
                "from minigen.errors import DeviceError\n"
                "try:\n    d.init_process_group('nccl')\n"
                "except DeviceError as e:\n    print('DeviceError:', e)\n"
                "assert not d.is_initialized()\n"
                "d.init_process_group('mpi'); print('mpi after nccl failure', d.get_world_size())\n")
        try:
            import cupy  # noqa: F401

            if cupy.cuda.runtime.getDeviceCount() > 0:
                pytest.skip("a GPU is present: the NCCL backend would start")
        except Exception:
            pass
        r = _run_plain(["-c", code])
        assert r.returncode == 0, r.stderr
        assert "DeviceError: the 'nccl' backend needs" in r.stdout and "mpi after nccl failure 1" in r.stdout

    # ---------------------------------------------------------------- single process, no launcher needed
    def test_work_wait_times_out_with_a_clear_error():
        from minigen.distributed import DistributedError, Work

        w = Work(lambda: False, what="all_reduce(test)", timeout=0.2)
        t0 = time.monotonic()
        with pytest.raises(DistributedError, match=r"all_reduce\(test\) timed out after 0.2 s"):
            w.wait()
        assert time.monotonic() - t0 < 5
        assert not w.is_completed()

    def test_work_completes_and_runs_its_finisher_once():
        from minigen.distributed import Work

        state = {"polls": 0, "fin": 0}

        def poll():
            state["polls"] += 1
            return state["polls"] > 3

        w = Work(poll, lambda: state.__setitem__("fin", state["fin"] + 1), timeout=5)
        assert not w.is_completed()
        assert w.wait() and w.is_completed() and w.wait()
        assert state["fin"] == 1

    def test_reduce_op_names_and_dtype_checks():
        from minigen.distributed import ReduceOp
        from minigen.errors import DTypeError, InvalidArgumentError

        assert ReduceOp.check("SUM") == "sum" and ReduceOp.check(ReduceOp.PRODUCT) == "product"
        assert ReduceOp.check("prod") == "product"
        with pytest.raises(InvalidArgumentError, match="unknown reduce op 'mean'"):
            ReduceOp.check("mean")
        with pytest.raises(DTypeError, match="AVG needs a floating-point tensor, got dtype int32"):
            ReduceOp.check("avg", np.int32)
        with pytest.raises(DTypeError, match="BXOR needs an integer or bool tensor, got dtype float32"):
            ReduceOp.check("bxor", np.float32)

    def test_sync_batchnorm_without_a_group_is_batchnorm_and_gradchecks():
        from hypothesis import given, settings, strategies as st

        import minigen as mg
        from minigen.nn.parallel import SyncBatchNorm
        from minigen.testing import gradcheck

        @settings(max_examples=15, deadline=None)
        @given(n=st.integers(2, 4), c=st.integers(1, 3), l=st.integers(0, 3), seed=st.integers(0, 999))
        def case(n, c, l, seed):
            rng = np.random.default_rng(seed)
            shape = (n, c) + ((l,) if l else ())
            x = mg.tensor(rng.standard_normal(shape) * 2 + 1, requires_grad=True)
            sbn, bn = SyncBatchNorm(c, dtype=mg.float64), mg.nn.BatchNorm1d(c, dtype=mg.float64)
            for m in (sbn, bn):
                m.weight.array[...] = np.linspace(0.5, 1.5, c)
                m.bias.array[...] = np.linspace(-1, 1, c)
            np.testing.assert_allclose(sbn(x).array, bn(x).array, rtol=1e-12, atol=1e-12)
            # gradcheck perturbs the inputs in place, so the layer's own weight and bias are checked too
            assert gradcheck(lambda x, w, b: sbn(x), [x, sbn.weight, sbn.bias])

        case()
        if not mg.distributed.is_initialized():
            from minigen.errors import ShapeError

            with pytest.raises(ShapeError, match="at least 2 dims"):
                SyncBatchNorm(3)(mg.zeros(3))

    def test_calls_before_init_raise_a_clear_error():
        import minigen as mg
        import minigen.distributed as dist

        if dist.is_initialized():
            pytest.skip("a process group exists in this process")
        with pytest.raises(dist.DistributedError, match="not initialised"):
            dist.get_rank()
        with pytest.raises(dist.DistributedError, match="not initialised"):
            dist.all_reduce(mg.zeros(2))


# ============================================================================ workers (run under mpiexec)
def _values(dtype, rank, shape, seed):
    """Rank ``rank``'s input: deterministic, so every rank can compute every other rank's input locally."""
    rng = np.random.default_rng([seed, rank])
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    lo = 0 if np.dtype(dtype).kind == "u" else -3
    return rng.integers(lo, 4, size=shape).astype(dtype)  # small: products of 3 stay in range


def _numpy_reduce(op, xs):
    xs = np.stack(xs)
    if xs.dtype == np.bool_:
        if op in ("sum", "max", "bor"):
            return np.logical_or.reduce(xs, 0)
        if op in ("product", "min", "band"):
            return np.logical_and.reduce(xs, 0)
        return np.logical_xor.reduce(xs, 0)
    f = {"sum": np.add, "avg": np.add, "product": np.multiply, "min": np.minimum, "max": np.maximum,
         "band": np.bitwise_and, "bor": np.bitwise_or, "bxor": np.bitwise_xor}[op]
    out = f.reduce(xs.astype(np.float64) if xs.dtype.kind == "f" else xs, 0)
    if op == "avg":
        out = out / len(xs)
    return out.astype(xs.dtype)


def _ops(dtype):
    kind = np.dtype(dtype).kind
    if kind == "f":
        return ["sum", "avg", "product", "min", "max"]
    if kind == "b":
        return ["sum", "product", "min", "max", "band", "bor", "bxor"]
    return ["sum", "product", "min", "max", "band", "bor", "bxor"]


def _close(got, want, dtype, what):
    if np.dtype(dtype).kind == "f":
        tol = {"float16": 2e-3, "float32": 1e-6, "float64": 1e-14}[dtype]
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol,
                                   atol=tol, err_msg=what)
    else:
        assert got.dtype == want.dtype and np.array_equal(got, want), f"{what}: {got} != {want}"


def w_collectives():
    import minigen as mg
    import minigen.distributed as dist

    dist.init_process_group("mpi", timeout=60)
    r, W = dist.get_rank(), dist.get_world_size()
    shapes = [(), (1,), (7,), (3, 5), (2, 3, 4)]  # 7, 15, 24 elements: not all divisible by 2 or 3
    n_checks = 0
    for di, dtype in enumerate(DTYPES):
        dt = getattr(mg, dtype) if dtype != "bool" else mg.bool_
        for si, shape in enumerate(shapes):
            seed = 100 * di + si
            xs = [_values(dtype, k, shape, seed) for k in range(W)]
            # all_reduce, every op, blocking and async, on a contiguous tensor and a strided view
            for oi, op in enumerate(_ops(dtype)):
                want = _numpy_reduce(op, xs)
                t = mg.tensor(xs[r].copy(), dtype=dt)
                w = dist.all_reduce(t, op=op, async_op=bool(oi % 2))
                if w is not None:
                    assert w.wait() and w.is_completed()
                _close(t.array, want, dtype, f"all_reduce {op} {dtype} {shape}")
                # every rank holds the same bytes
                outs = [mg.zeros(*shape, dtype=dt) for _ in range(W)]
                dist.all_gather(outs, t)
                assert all(o.array.tobytes() == t.array.tobytes() for o in outs), f"{op} {dtype}: ranks differ"
                n_checks += 2
            if len(shape) == 2:
                base = mg.tensor(np.stack([xs[r], xs[r]], -1), dtype=dt)
                view = base[:, :, 0]  # non-contiguous
                dist.all_reduce(view, op="max")
                _close(base.array[:, :, 0], _numpy_reduce("max", xs), dtype, f"strided all_reduce {dtype}")
                _close(base.array[:, :, 1], xs[r], dtype, "the other half of the base is untouched")
                n_checks += 1
            # reduce to every destination
            for dst in range(W):
                t = mg.tensor(xs[r].copy(), dtype=dt)
                dist.reduce(t, dst=dst, op="max")
                _close(t.array, _numpy_reduce("max", xs) if r == dst else xs[r], dtype, f"reduce {dtype}")
                n_checks += 1
            # broadcast from every source
            for src in range(W):
                t = mg.tensor(xs[r].copy(), dtype=dt)
                dist.broadcast(t, src=src, async_op=False)
                _close(t.array, xs[src], dtype, f"broadcast src={src} {dtype} {shape}")
                n_checks += 1
        # all_gather with pieces of different sizes (rank k sends k+2 elements), and into one tensor
        ys = [_values(dtype, k, (k + 2,), 7 + di) for k in range(W)]
        outs = [mg.zeros(k + 2, dtype=dt) for k in range(W)]
        w = dist.all_gather(outs, mg.tensor(ys[r], dtype=dt), async_op=True)
        w.wait()
        for k in range(W):
            _close(outs[k].array, ys[k], dtype, f"uneven all_gather {dtype}")
        zs = [_values(dtype, k, (5,), 11 + di) for k in range(W)]
        out = mg.zeros(W, 5, dtype=dt)
        dist.all_gather_into_tensor(out, mg.tensor(zs[r], dtype=dt))
        _close(out.array, np.stack(zs), dtype, f"all_gather_into_tensor {dtype}")
        # reduce_scatter: piece k has k+1 elements (uneven), then the even tensor form (W*5 elements)
        ins = [[_values(dtype, k, (j + 1,), 13 + di + 17 * j) for j in range(W)] for k in range(W)]
        op = "sum" if dtype != "bool" else "bor"
        o = mg.zeros(r + 1, dtype=dt)
        dist.reduce_scatter(o, [mg.tensor(a, dtype=dt) for a in ins[r]], op=op)
        _close(o.array, _numpy_reduce(op, [ins[k][r] for k in range(W)]), dtype, f"uneven reduce_scatter {dtype}")
        big = [_values(dtype, k, (W * 5,), 19 + di) for k in range(W)]
        o = mg.zeros(5, dtype=dt)
        dist.reduce_scatter_tensor(o, mg.tensor(big[r], dtype=dt), op="max")
        _close(o.array, _numpy_reduce("max", [b[r * 5:(r + 1) * 5] for b in big]), dtype,
               f"reduce_scatter_tensor {dtype}")
        # gather to / scatter from every root
        for root in range(W):
            gl = [mg.zeros(3, dtype=dt) for _ in range(W)] if r == root else None
            dist.gather(mg.tensor(ys[r][:2].repeat(2)[:3] if ys[r].size >= 2 else ys[r], dtype=dt), gl, dst=root)
            if r == root:
                for k in range(W):
                    _close(gl[k].array, ys[k][:2].repeat(2)[:3], dtype, f"gather {dtype}")
            sl = [mg.tensor(_values(dtype, root, (4,), 23 + k), dtype=dt) for k in range(W)] if r == root else None
            t = mg.zeros(4, dtype=dt)
            dist.scatter(t, sl, src=root)
            _close(t.array, _values(dtype, root, (4,), 23 + r), dtype, f"scatter {dtype}")
        n_checks += 4 + 2 * W
    dist.barrier()
    w = dist.barrier(async_op=True)
    w.wait()
    # a subgroup of ranks {0, W-1}: members reduce among themselves, the others get a NonGroupMember
    sub = dist.new_group(sorted({0, W - 1}))
    if r in (0, W - 1):
        assert dist.get_world_size(sub) == len({0, W - 1}) and dist.get_rank(sub) == (0 if r == 0 else 1)
        t = mg.tensor(np.array([float(r + 1)]))
        dist.all_reduce(t, group=sub)
        assert t.array[0] == (1.0 if W == 1 else 1.0 + W), t.array
    else:
        assert isinstance(sub, dist.NonGroupMember) and dist.get_rank(sub) == -1
        assert dist.all_reduce(mg.ones(1), group=sub) is None
    dist.destroy_process_group(sub)
    # bad input names the shapes / ranks involved
    from minigen.errors import DTypeError, InvalidArgumentError, ShapeError

    for call, exc, pat in [
        (lambda: dist.all_reduce(mg.zeros(3, dtype=mg.int32), op="avg"), DTypeError, "AVG"),
        (lambda: dist.broadcast(mg.zeros(3), src=W), InvalidArgumentError, f"src={W}"),
        (lambda: dist.all_gather([mg.zeros(3)] * (W + 1), mg.zeros(3)), InvalidArgumentError, f"{W + 1} tensors"),
        (lambda: dist.all_gather_into_tensor(mg.zeros(W * 3 + 1), mg.zeros(3)), ShapeError, "elements"),
        (lambda: dist.all_reduce(np.zeros(3)), InvalidArgumentError, "minigen Tensor"),
    ]:
        try:
            call()
        except exc as e:
            assert pat in str(e), str(e)
        else:
            raise AssertionError(f"no {exc.__name__} for {pat}")
    dist.destroy_process_group()
    assert not dist.is_initialized()
    say(f"rank {r}: {n_checks} collective checks")
    say(f"OK rank {r}")


def w_raise_on_rank1():
    import minigen as mg
    import minigen.distributed as dist

    dist.init_process_group("mpi")  # default timeout (30 min): only the abort can end rank 0's wait
    if dist.get_rank() == 1:
        raise ValueError("boom on rank 1")
    dist.all_reduce(mg.ones(3))
    say("rank 0 finished")


def w_killed_rank1():
    import signal

    import minigen as mg
    import minigen.distributed as dist

    dist.init_process_group("mpi")
    if dist.get_rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.all_reduce(mg.ones(3))
    say("rank 0 finished")


def w_absent_rank1():
    import minigen as mg
    import minigen.distributed as dist

    dist.init_process_group("mpi", timeout=2.0)
    if dist.get_rank() == 1:
        time.sleep(60)  # alive but never joins (a hang); rank 0's timeout + abort must end the job
    dist.all_reduce(mg.ones(3))
    say("rank 0 finished")


def w_from_env():
    import minigen as mg
    import minigen.distributed as dist

    assert dist.launched_by_mpi() and dist.env_world_size() == 2
    assert dist.init_from_env() is True and dist.init_from_env() is True
    t = mg.ones(2) * (dist.get_rank() + 1)
    dist.all_reduce(t)
    assert t.array.tolist() == [3.0, 3.0]
    assert 0 <= dist.get_local_rank() < 2
    say(f"OK rank {dist.get_rank()}")


def w_relaunch(n):
    import minigen as mg
    import minigen.distributed as dist
    from minigen.distributed.launch import relaunch

    relaunch(int(n))  # not under mpiexec: replaced by mpiexec -n n (this same command); under it: returns
    assert dist.launched_by_mpi() and dist.init_from_env()
    t = mg.ones(1)
    dist.all_reduce(t)
    assert dist.get_world_size() == int(n) and t.array[0] == int(n)
    say(f"OK rank {dist.get_rank()}")


if __name__ == "__main__":
    globals()["w_" + sys.argv[1]](*sys.argv[2:])
