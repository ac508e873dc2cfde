"""``minigen train <model> --ddp N`` and ``mpiexec -n N python -m minigen train ...``: the CLI trainers in real
processes (MPICH's mpiexec from the virtual environment).

How the data sharding is made identical to one process: with W processes and ``--batch-size B`` every rank
builds the same seeded loader of *global* batches of W*B samples (the loader a single-process run with
``--batch-size W*B`` builds) and keeps rows ``[r*N/W, (r+1)*N/W)`` of each (``minigen.train.DataParallel``).
The union of the shards is the single-process batch, the loss of a shard is weighted by its share of the rows
(exact even for an epoch's uneven last batch), so W x B and 1 x W*B differ only by float32 summation order.

This file is also a worker script: ``mpiexec -n 2 python tests/test_distributed_cli.py stop OUT`` (the agreed
stop). Everything that needs MPI skips cleanly without mpi4py or mpiexec (``pip install mpi4py mpich``).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np

try:
    import pytest
except ImportError:  # the worker processes do not need pytest
    pytest = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREADS = dict(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_distributed_ddp import _have_mpi, _mpiexec  # noqa: E402  (one way to find MPI for every MPI test)


def _env():
    env = dict(os.environ)
    env.update(THREADS)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    for v in ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
              "MV2_COMM_WORLD_RANK"):
        env.pop(v, None)  # never inherit an MPI job's identity
    return env


def minigen(*args, timeout=300):
    """``python -m minigen <args>`` (``--ddp N`` re-runs it under mpiexec); the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "minigen", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=_env(), cwd=ROOT)


def mpiexec(n, *argv, timeout=300):
    """``mpiexec -n n python <argv>``; the CompletedProcess."""
    exe = _mpiexec()
    cmd = [exe, "-n", str(n)]
    ver = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in ver or "OpenRTE" in ver:
        cmd += ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    return subprocess.run(cmd + [sys.executable, *map(str, argv)], capture_output=True, text=True, timeout=timeout,
                          env=_env(), cwd=ROOT)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-5000:]}"
    return r


def weights(out):
    import minigen as mg

    st = mg.load(os.path.join(out, "checkpoint.safetensors"))
    return {k: v.numpy().astype(np.float64) for k, v in st["model"].items()}, st


def assert_same_weights(a, b, rtol=2e-5, atol=1e-6):
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)


def max_diff(a, b):
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


# tiny configurations: a few seconds per run
MLP = ["--limit", "101", "--hidden", "16", "--no-progress", "--log-every", "1"]
GPT = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--eval-interval", "2",
       "--eval-iters", "2", "--samples", "0", "--warmup", "1", "--lr-decay-iters", "6", "--no-progress"]
SMOKE = {
    "gpt": GPT + ["--iters", "2", "--batch-size", "2"],
    "mlp": MLP + ["--max-steps", "2", "--batch-size", "8"],
    "dcgan": ["--max-steps", "2", "--batch-size", "4", "--limit", "64", "--g-width", "16", "--d-width", "8",
              "--classifier", "none", "--no-progress"],
    "vae": ["--max-steps", "2", "--batch-size", "4", "--limit", "64", "--hidden", "16", "--no-progress"],
}


if pytest is not None:
    needs_mpi = pytest.mark.skipif(not _have_mpi(), reason="needs mpi4py and mpiexec (pip install mpi4py mpich)")

    # ------------------------------------------------------------------ (a) runs, one checkpoint, rank 0 writes
    @needs_mpi
    @pytest.mark.parametrize("model", sorted(SMOKE))
    def test_ddp_2_runs_and_rank0_writes_one_checkpoint(model, tmp_path):
        out = tmp_path / model
        args = SMOKE[model]
        r = ok(minigen("train", model, "--out", out, "--ddp", 2, *args))
        # started as 2 processes (rank 0 announces it once), and only rank 0 printed its summary
        assert len(re.findall(r"2 data-parallel processes \(mpi\)", r.stderr)) == 1, r.stderr
        assert r.stdout.count("outputs in") == 1, r.stdout
        files = sorted(os.listdir(out))
        assert [f for f in files if f.endswith(".safetensors") and "checkpoint" in f] == ["checkpoint.safetensors"]
        assert not [f for f in files if "rank" in f or f.endswith(".tmp")], files
        _, st = weights(out)
        assert int(st["step"]) == 2
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["args"]["ddp"] == 2

    @needs_mpi
    def test_mpiexec_without_ddp_runs_the_same_as_ddp(tmp_path):
        """``mpiexec -n 2 python -m minigen train mlp`` joins the world from the MPI environment: the same weights
        as ``--ddp 2`` (same command otherwise)."""
        args = SMOKE["mlp"]
        ok(minigen("train", "mlp", "--out", tmp_path / "a", "--ddp", 2, *args))
        r = ok(mpiexec(2, "-m", "minigen", "train", "mlp", "--out", tmp_path / "b", *args))
        assert "2 data-parallel processes" in r.stderr
        a, _ = weights(tmp_path / "a")
        b, _ = weights(tmp_path / "b")
        assert max_diff(a, b) == 0.0  # the same processes doing the same thing: bit for bit

    # ------------------------------------------------------------------ (b) equivalence with one process x 2B
    @needs_mpi
    def test_mlp_two_processes_batch_B_equal_one_process_batch_2B(tmp_path):
        """97 images, 2 x 8 per step = 16: 6 full steps + a last batch of 1 row per epoch (rank 1 takes it, rank 0
        runs a placeholder row at weight 0, rank 1's loss gets weight 2); 2 epochs = 14 Adam steps."""
        common = MLP + ["--epochs", "2", "--limit", "97"]
        ok(minigen("train", "mlp", "--out", tmp_path / "ddp", "--ddp", 2, "--batch-size", 8, *common))
        ok(minigen("train", "mlp", "--out", tmp_path / "one", "--batch-size", 16, *common))
        ok(minigen("train", "mlp", "--out", tmp_path / "half", "--batch-size", 8, "--max-steps", 14, *common))
        a, sa = weights(tmp_path / "ddp")
        b, sb = weights(tmp_path / "one")
        c, _ = weights(tmp_path / "half")
        assert int(sa["step"]) == int(sb["step"]) == 14 and int(sa["epoch"]) == int(sb["epoch"]) == 2
        assert_same_weights(a, b)
        assert max_diff(a, c) > 100 * max_diff(a, b)  # another batch would not pass: the check can fail
        # the logged loss is the global batch's mean
        la = [json.loads(x)["loss"] for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
              if json.loads(x).get("split") == "train"]
        lb = [json.loads(x)["loss"] for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()
              if json.loads(x).get("split") == "train"]
        np.testing.assert_allclose(la, lb, rtol=1e-5)

    @needs_mpi
    def test_gpt_two_processes_batch_B_equal_one_process_batch_2B(tmp_path):
        ok(minigen("train", "gpt", "--out", tmp_path / "ddp", "--ddp", 2, "--batch-size", 3, "--iters", 4, *GPT))
        ok(minigen("train", "gpt", "--out", tmp_path / "one", "--batch-size", 6, "--iters", 4, *GPT))
        ok(minigen("train", "gpt", "--out", tmp_path / "half", "--batch-size", 3, "--iters", 4, *GPT))
        a, sa = weights(tmp_path / "ddp")
        b, sb = weights(tmp_path / "one")
        c, _ = weights(tmp_path / "half")
        assert int(sa["step"]) == int(sb["step"]) == 4
        assert_same_weights(a, b)
        assert max_diff(a, c) > 100 * max_diff(a, b)
        # rank 0's loss estimates use the global batch: the same protocol as the single-process run
        va = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
        vb = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in va if r["split"] == "val"] == [2, 4]
        np.testing.assert_allclose([r["val_loss"] for r in va if r["split"] == "val"],
                                   [r["val_loss"] for r in vb if r["split"] == "val"], rtol=1e-5)

    # ------------------------------------------------------------------ (c) resume on another world size
    @needs_mpi
    @pytest.mark.parametrize("first,then", [(2, 1), (1, 2)])
    def test_resume_across_world_sizes_continues_the_run(first, then, tmp_path):
        """3 steps on ``first`` processes, then ``--resume`` up to 7 on ``then`` processes, the global batch kept
        (2 x 8 = 1 x 16): the step counter goes on and the weights equal one uninterrupted 7-step run."""
        common = MLP

        def run(world, steps, *extra):
            ddp = ["--ddp", 2, "--batch-size", 8] if world == 2 else ["--batch-size", 16]
            return ok(minigen("train", "mlp", "--out", tmp_path / "run", "--max-steps", steps, *ddp, *common, *extra))

        run(first, 3)
        _, s3 = weights(tmp_path / "run")
        assert int(s3["step"]) == 3
        run(then, 7, "--resume")
        a, s7 = weights(tmp_path / "run")
        assert int(s7["step"]) == 7
        ok(minigen("train", "mlp", "--out", tmp_path / "ref", "--max-steps", 7, "--batch-size", 16, *common))
        b, _ = weights(tmp_path / "ref")
        assert_same_weights(a, b)
        steps = [json.loads(x)["step"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
                 if json.loads(x).get("split") == "train"]
        assert steps == list(range(1, 8))  # the log continues where the checkpoint was

    @needs_mpi
    def test_resume_with_another_global_batch_keeps_the_epoch_position(tmp_path):
        """2 processes x 8 for 3 steps (48 images), then 1 process x 8 (another global batch): the epoch goes on
        from image 48 (6 batches of 8 done), the step counter from 3."""
        common = MLP
        ok(minigen("train", "mlp", "--out", tmp_path / "run", "--max-steps", 3, "--ddp", 2, "--batch-size", 8,
                   *common))
        _, st = weights(tmp_path / "run")
        assert st["loader"]["batches_done"] == 3 and st["loader"]["global_batch_size"] == 16
        ok(minigen("train", "mlp", "--out", tmp_path / "run", "--max-steps", 4, "--batch-size", 8, "--resume",
                   *common))
        _, st = weights(tmp_path / "run")
        assert int(st["step"]) == 4 and st["loader"]["batches_done"] == 7

    @needs_mpi
    def test_char_rnn_resume_two_to_one_keeps_the_carried_state_of_every_row(tmp_path):
        """The checkpoint of a 2-process char-rnn run holds the hidden state of all 2 x 4 rows; one process x 8
        resumes it and ends equal to the uninterrupted single-process run."""
        common = ["--hidden", "16", "--layers", "1", "--seq-len", "8", "--samples", "0", "--no-progress",
                  "--eval-interval", "2", "--eval-batch-size", "400"]
        ok(minigen("train", "char-rnn", "--out", tmp_path / "run", "--iters", 3, "--ddp", 2, "--batch-size", 4,
                   *common))
        _, st = weights(tmp_path / "run")
        assert tuple(st["extra"]["h"].shape) == (1, 8, 16)
        ok(minigen("train", "char-rnn", "--out", tmp_path / "run", "--iters", 5, "--batch-size", 8, "--resume",
                   *common))
        ok(minigen("train", "char-rnn", "--out", tmp_path / "ref", "--iters", 5, "--batch-size", 8, *common))
        a, sa = weights(tmp_path / "run")
        b, _ = weights(tmp_path / "ref")
        assert int(sa["step"]) == 5
        assert_same_weights(a, b, rtol=1e-4, atol=1e-6)

    # ------------------------------------------------------------------ stop: every rank after the same step
    @needs_mpi
    def test_a_stop_on_one_rank_stops_every_rank_after_the_same_step(tmp_path):
        r = ok(mpiexec(2, __file__, "stop", tmp_path))
        assert re.search(r"^OK rank 0 step 3$", r.stdout, re.M) and re.search(r"^OK rank 1 step 3$", r.stdout, re.M), \
            r.stdout + r.stderr
        _, st = weights(tmp_path)
        assert int(st["step"]) == 3

    @needs_mpi
    def test_ctrl_c_stops_both_ranks_after_the_same_step_and_rank0_saves_it(tmp_path):
        """Ctrl-C to ``minigen train gpt --ddp 2`` (mpiexec forwards it to every rank): exit 130, both ranks agree
        on the last step, rank 0's checkpoint holds it, and ``--resume`` continues from it."""
        import signal
        import time

        out = tmp_path / "run"
        argv = [sys.executable, "-m", "minigen", "train", "gpt", "--out", str(out), "--iters", "100000",
                "--eval-interval", "100000", "--batch-size", "2", "--ddp", "2", *GPT[:8], "--samples", "0",
                "--no-progress"]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
        try:
            t0 = time.monotonic()
            while not ((out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().strip()):
                assert p.poll() is None and time.monotonic() - t0 < 120, "the run did not start"
                time.sleep(0.2)
            p.send_signal(signal.SIGINT)  # the same process: --ddp execs mpiexec in place
            stdout, stderr = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
        assert p.returncode == 130, stderr[-3000:]
        assert "Ctrl-C (rank 0)" in stderr and "Ctrl-C (rank 1)" in stderr, stderr[-3000:]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["interrupted"] is True
        _, st = weights(out)
        assert int(st["step"]) == summary["step"] > 0
        ok(minigen("train", "gpt", "--out", out, "--iters", summary["step"] + 2, "--batch-size", 4, "--resume",
                   *GPT[:8], "--samples", "0", "--no-progress"))
        _, st = weights(out)
        assert int(st["step"]) == summary["step"] + 2

    # ------------------------------------------------------------------ (d) trainers that cannot, bad launches
    @pytest.mark.parametrize("model", ["ngram", "bpe"])
    def test_ddp_on_a_trainer_without_gradient_steps_is_a_clear_error(model, tmp_path):
        r = minigen("train", model, "--out", tmp_path, "--ddp", 2)
        assert r.returncode == 1, r.stderr
        assert f"minigen: error: minigen train {model} cannot run data-parallel (--ddp 2)" in r.stderr
        assert "Traceback" not in r.stderr
        assert not os.listdir(tmp_path)  # refused before anything ran

    @needs_mpi
    def test_mpiexec_of_a_trainer_without_gradient_steps_is_a_clear_error(tmp_path):
        r = mpiexec(2, "-m", "minigen", "train", "ngram", "--out", tmp_path)
        assert r.returncode != 0
        assert r.stderr.count("cannot run data-parallel (an MPI job of 2 processes)") == 2, r.stderr

    @needs_mpi
    def test_ddp_n_under_an_mpi_job_of_another_size_is_a_clear_error(tmp_path):
        r = mpiexec(2, "-m", "minigen", "train", "mlp", "--out", tmp_path, "--ddp", 3)
        assert r.returncode != 0
        assert "--ddp 3 but mpiexec started 2 processes" in r.stderr

    # ------------------------------------------------------------------ (e) no mpi4py
    def test_ddp_without_mpi4py_is_a_clear_error(monkeypatch, capsys, tmp_path):
        import minigen.distributed as dist
        import minigen.distributed.launch as launch
        from minigen import cli

        monkeypatch.setattr(dist, "is_mpi_available", lambda: False)
        monkeypatch.setattr(launch, "relaunch", lambda *a, **k: pytest.fail("relaunch must not be reached"))
        for v in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK"):
            monkeypatch.delenv(v, raising=False)
        code = cli.main(["train", "mlp", "--out", str(tmp_path / "x"), "--ddp", "2"])
        err = capsys.readouterr().err
        assert code == 1
        assert "minigen: error: --ddp 2 needs mpi4py and an MPI library: pip install 'minigen[distributed]'" in err

    def test_ddp_without_mpiexec_is_a_clear_error(monkeypatch, capsys, tmp_path):
        import minigen.distributed as dist
        import minigen.distributed.launch as launch
        from minigen import cli

        monkeypatch.setattr(dist, "is_mpi_available", lambda: True)
        monkeypatch.setattr(launch.sys, "executable", str(tmp_path / "bin" / "python"))  # no mpiexec beside it
        monkeypatch.setattr(launch.shutil, "which", lambda name: None)                   # nor on PATH
        monkeypatch.setattr(launch.os, "execve", lambda *a: pytest.fail("must not exec"))
        for v in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK"):
            monkeypatch.delenv(v, raising=False)
        code = cli.main(["train", "gpt", "--out", str(tmp_path / "x"), "--ddp", "2"])
        err = capsys.readouterr().err
        assert code == 1
        assert "minigen: error: mpiexec not found: pip install 'minigen[distributed]'" in err

    def test_ddp_one_is_a_plain_single_process_run(tmp_path):
        """``--ddp 1`` needs no MPI and trains exactly as without it."""
        args = SMOKE["mlp"]
        ok(minigen("train", "mlp", "--out", tmp_path / "a", "--ddp", 1, *args))
        ok(minigen("train", "mlp", "--out", tmp_path / "b", *args))
        a, _ = weights(tmp_path / "a")
        b, _ = weights(tmp_path / "b")
        assert max_diff(a, b) == 0.0

    # ------------------------------------------------------------------ --help, and the sharding itself
    def test_help_says_the_batch_is_per_process(capsys):
        from minigen import cli

        with pytest.raises(SystemExit):
            cli.main(["train", "gpt", "--help"])
        out = re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))  # (argparse breaks lines at hyphens)
        assert "--ddp N" in out and "--batch-size is per process" in out and "N x batch-size samples" in out
        with pytest.raises(SystemExit):
            cli.main(["train", "ngram", "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert "--ddp N not available for this trainer" in out

    def test_shards_are_disjoint_cover_the_batch_and_weight_uneven_rows():
        import minigen as mg
        from minigen.train import DataParallel

        x = mg.tensor(np.arange(10 * 3, dtype=np.float32).reshape(10, 3))
        y = np.arange(10)
        for world, n in ((2, 10), (3, 10), (4, 3)):
            rows, total_w, got = [], 0.0, []
            for rank in range(world):
                dp = DataParallel()
                dp.rank, dp.world = rank, world
                bx, by = dp.shard((x[:n], y[:n]))
                w, k = dp.pop_shard(bx)
                assert bx.shape[0] == by.shape[0] == max(k, 1)
                np.testing.assert_array_equal(bx.numpy()[:, 0] // 3, by)  # the rows of x and y stay paired
                if k:
                    got.extend(by.tolist())
                rows.append(k)
                total_w += w
                assert w == pytest.approx(world * k / n)
            assert got == list(range(n))  # disjoint, in order, covering the global batch
            assert total_w == pytest.approx(world)  # the weighted mean of the shard means = the global mean
            assert max(rows) - min(rows) <= 1


# ============================================================================ worker (run under mpiexec)
def w_stop(out):
    """A Trainer on 2 ranks where only rank 1 asks to stop, during step 3: both ranks stop after step 3."""
    import minigen as mg
    import minigen.distributed as dist
    from minigen.data import DataLoader, TensorDataset
    from minigen.train import DataParallel, Trainer

    dist.init_process_group("mpi")
    dp = DataParallel(seed=0)
    mg.manual_seed(0)
    model = mg.nn.Linear(3, 1)
    net = dp.wrap(model)
    rng = np.random.default_rng(0)
    ds = TensorDataset(mg.tensor(rng.standard_normal((64, 3)).astype(np.float32)),
                       mg.tensor(rng.standard_normal((64, 1)).astype(np.float32)))
    loader = dp.shard_loader(DataLoader(ds, batch_size=dp.global_batch(4), shuffle=True,
                                        generator=mg.Generator().manual_seed(0)))
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    trainer = None

    def loss_fn(batch):
        xb, yb = batch
        if dp.rank == 1 and trainer.step == 2:  # inside step 3 (steps done: 2)
            trainer.request_stop()
        return ((net(xb) - yb) ** 2).mean()

    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out, epochs=5, log_every=1, progress=False,
                      data_parallel=dp)
    res = trainer.fit()
    assert res["interrupted"], res
    os.write(1, f"OK rank {dp.rank} step {res['step']}\n".encode())
    dist.destroy_process_group()


if __name__ == "__main__":
    {"stop": w_stop}[sys.argv[1]](*sys.argv[2:])
