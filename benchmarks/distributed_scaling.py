"""Data-parallel scaling on this machine: minigen DDP (MPI) vs PyTorch DDP (gloo), 1 and 2 processes.

For the baby-GPT training step (nanoGPT's CPU config: L4 H4 E128 T64, AdamW) and the DCGAN step (D step + G step,
Adam, batch 64 at 28x28), at world sizes 1 and 2, each process 1 thread:

- **strong scaling**: the global batch is fixed (GPT 12, DCGAN 64) and split over the processes;
  efficiency = T(1) / (W * T(W)) in time per global batch... i.e. T(1) / T(W) / W with T the step time.
- **weak scaling**: the batch per process is fixed; efficiency = T(1) / T(W).

Columns: median step time (ms), samples/s over all processes, efficiency, and the all-reduce: the time of one
blocking all-reduce of all the model's gradients (measured alone, same processes, same library), and its share
of the step; for minigen also the *exposed* all-reduce time per step (what the backward waited for at its end,
after the overlap with the backward) from ``DistributedDataParallel.comm_stats``. W = 1 runs the plain model
(no DDP): the baseline. minigen and PyTorch rows come from the same invocation, one after the other.

Run (a 2-core machine: nothing else should run, 1 thread per process)::

    python benchmarks/distributed_scaling.py                # full: writes benchmarks/results/distributed.md
    python benchmarks/distributed_scaling.py --tiny         # 2 steps, small batches: checks that it runs

Workers are launched as ``mpiexec -n W python benchmarks/distributed_scaling.py worker ...``; the PyTorch
workers are started by the same mpiexec (they read their rank from PMI_RANK/PMI_SIZE) and connect with gloo
over 127.0.0.1 (PyTorch's transport, only for the anchor).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

GPT_CFG = dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False)


# ----------------------------------------------------------------------------- models (same in both libraries)
def _dcgan(nn):
    G = nn.Sequential(nn.Linear(100, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
                      nn.Unflatten(1, (128, 7, 7)),
                      nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                      nn.ConvTranspose2d(64, 1, 5, 2, 2, output_padding=1), nn.Tanh())
    D = nn.Sequential(nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.2),
                      nn.Conv2d(64, 128, 5, 2, 2), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
                      nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
    return G, D


def _gan_step(F, G, D, optG, optD, real, z, ones, zeros):
    optD.zero_grad()
    fake = G(z)
    lossD = F.binary_cross_entropy_with_logits(D(real), ones) + \
        F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
    lossD.backward()
    optD.step()
    optG.zero_grad()
    # the G step passes through D without averaging D's gradients (they are zeroed before D's next step):
    # under DDP, D.no_sync() -- as the trainers do -- so a step all-reduces G once and D once
    with (D.no_sync() if hasattr(D, "no_sync") else contextlib.nullcontext()):
        lossG = F.binary_cross_entropy_with_logits(D(fake), ones)
        lossG.backward()
    optG.step()


def _data(model, B, rank):
    rng = np.random.default_rng(1234 + rank)
    if model == "gpt":
        return rng.integers(0, 65, (B, 64)), rng.integers(0, 65, (B, 64))
    return (rng.random((B, 1, 28, 28), np.float32) * 2 - 1), rng.standard_normal((B, 100)).astype(np.float32)


def _minigen_step(model, B, rank, ddp):
    import minigen as mg
    from minigen.nn.parallel import DistributedDataParallel as DDP

    wrap = (lambda m, **kw: DDP(m, **kw)) if ddp else (lambda m, **kw: m)
    a, b = _data(model, B, rank)
    if model == "gpt":
        from minigen.models.gpt import GPT, GPTConfig

        mg.manual_seed(0)
        net = GPT(GPTConfig(**GPT_CFG))
        m = wrap(net)
        opt = mg.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
        idx, tgt = mg.tensor(a), mg.tensor(b)

        def step():
            opt.zero_grad()
            _, loss = m(idx, tgt)
            loss.backward()
            opt.step()

        return step, [m] if ddp else [], list(net.parameters())
    mg.manual_seed(0)
    G, D = _dcgan(mg.nn)
    Gw, Dw = wrap(G, broadcast_buffers=False), wrap(D, broadcast_buffers=False)
    oG = mg.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    oD = mg.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real, z = mg.tensor(a), mg.tensor(b)
    ones, zeros = mg.ones(B, 1), mg.zeros(B, 1)
    return (lambda: _gan_step(mg.nn.functional, Gw, Dw, oG, oD, real, z, ones, zeros),
            [Gw, Dw] if ddp else [], list(G.parameters()) + list(D.parameters()))


def _torch_step(model, B, rank, ddp):
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    wrap = (lambda m, **kw: DDP(m, **kw)) if ddp else (lambda m, **kw: m)
    a, b = _data(model, B, rank)
    torch.manual_seed(0)
    if model == "gpt":
        from benchmarks.gpt_torch import torch_gpt
        from minigen.models.gpt import GPTConfig

        net = torch_gpt(GPTConfig(**GPT_CFG))
        m = wrap(net)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
        idx, tgt = torch.from_numpy(a), torch.from_numpy(b)

        def step():
            opt.zero_grad()
            out = m(idx, tgt)
            loss = out[1] if isinstance(out, tuple) else out
            loss.backward()
            opt.step()

        return step, list(net.parameters())
    G, D = _dcgan(torch.nn)
    Gw, Dw = wrap(G, broadcast_buffers=False), wrap(D, broadcast_buffers=False)
    oG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    oD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real, z = torch.from_numpy(a), torch.from_numpy(b)
    ones, zeros = torch.ones(B, 1), torch.zeros(B, 1)
    return (lambda: _gan_step(torch.nn.functional, Gw, Dw, oG, oD, real, z, ones, zeros),
            list(G.parameters()) + list(D.parameters()))


def worker(a):
    rank = int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", 0)))
    W = int(os.environ.get("PMI_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE", 1)))
    ddp = W > 1
    times, exposed = [], []
    if a.lib == "minigen":
        import minigen.distributed as dist

        dist.init_process_group("mpi", timeout=300)
        step, ddps, params = _minigen_step(a.model, a.batch, rank, ddp)
        for i in range(a.warmup + a.steps):
            dist.barrier()
            t0 = time.perf_counter()
            step()
            t1 = time.perf_counter()
            if i >= a.warmup:
                times.append(t1 - t0)
                exposed.append(sum(d.comm_stats.get("finalize_wait_s", 0.0) for d in ddps))
        nbytes = sum(p.array.nbytes for p in params)
        import minigen as mg

        flat = mg.zeros(nbytes // 4)
        ar = []
        for i in range(max(3, a.steps // 2)):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(flat, op="avg")
            ar.append(time.perf_counter() - t0)
        gathered = [None] * W
        dist.all_gather_object(gathered, [float(np.median(times)), float(np.median(exposed)), float(np.median(ar))])
    else:
        import torch
        import torch.distributed as tdist

        torch.set_num_threads(1)
        if ddp:
            tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{a.port}", rank=rank, world_size=W)
        step, params = _torch_step(a.model, a.batch, rank, ddp)
        for i in range(a.warmup + a.steps):
            if ddp:
                tdist.barrier()
            t0 = time.perf_counter()
            step()
            t1 = time.perf_counter()
            if i >= a.warmup:
                times.append(t1 - t0)
        nbytes = sum(p.numel() * 4 for p in params)
        ar = []
        if ddp:
            flat = torch.zeros(nbytes // 4)
            for i in range(max(3, a.steps // 2)):
                tdist.barrier()
                t0 = time.perf_counter()
                tdist.all_reduce(flat)
                ar.append(time.perf_counter() - t0)
            gathered = [None] * W
            tdist.all_gather_object(gathered, [float(np.median(times)), float("nan"), float(np.median(ar))])
            tdist.destroy_process_group()
        else:
            gathered = [[float(np.median(times)), float("nan"), 0.0]]
    if rank == 0:
        step_s = max(g[0] for g in gathered)  # the slowest rank sets the pace
        res = dict(lib=a.lib, model=a.model, world=W, batch=a.batch, step_s=step_s,
                   exposed_s=float(np.nanmax([g[1] for g in gathered])) if ddp and a.lib == "minigen" else None,
                   allreduce_s=max(g[2] for g in gathered) if ddp else 0.0, grad_bytes=int(nbytes))
        os.write(1, ("RESULT " + json.dumps(res) + "\n").encode())


# ----------------------------------------------------------------------------- the communication model
ALPHA_S = 5e-6  # per-message latency assumed for the latency term (an RDMA fabric; TCP is nearer 25-50 us)

# step times measured on one CPU thread (benchmarks/results/results.md, AMD EPYC, minigen with kernels)
CPU_STEP_S = {"baby GPT (L4 H4 E128, B12)": 0.0764, "DCGAN (G+D, B64)": 0.2908, "VAE MLP (B128)": 0.0103,
              "char-LSTM 2x256 (B32)": 0.2423}


def zoo_sizes():
    """(name, parameter count) of the zoo's models at their default configurations (counted live)."""
    import minigen as mg
    from minigen.models import char_rnn, cgan, dcgan, gan, gpt, seq2seq, stylegan, vae, wavenet, word2vec

    n = lambda m: int(sum(p.numel() for p in m.parameters()))  # noqa: E731
    return [
        ("baby GPT (L4 H4 E128, B12)", n(gpt.GPT(gpt.GPTConfig()))),
        ("GPT GPU config (L6 H6 E384 T256)", n(gpt.GPT(gpt.GPTConfig(block_size=256, n_layer=6, n_head=6,
                                                                     n_embd=384)))),
        ("DCGAN (G+D, B64)", n(dcgan.build_dcgan())),
        ("GAN (Goodfellow MLP G+D)", n(gan.GAN(gan.MLPGenerator(), gan.MLPDiscriminator()))),
        ("cGAN (G+D)", n(mg.nn.ModuleList([cgan.ConditionalGenerator(), cgan.ConditionalDiscriminator()]))),
        ("StyleGAN-style (G+D)", n(mg.nn.ModuleList([stylegan.StyleGenerator(), stylegan.StyleDiscriminator()]))),
        ("VAE MLP (B128)", n(vae.build_vae())),
        ("char-LSTM 2x256 (B32)", n(char_rnn.CharRNN(65, 256, 2))),
        ("seq2seq Transformer", n(seq2seq.Seq2SeqTransformer())),
        ("WaveNet", n(wavenet.WaveNet())),
        ("Word2Vec (10k words x 100)", n(word2vec.Word2Vec(10000))),
    ]


def ring_allreduce_s(nbytes, workers, gbit_s, alpha=ALPHA_S):
    """(bandwidth term, latency term) of a ring all-reduce: 2(N-1)/N * bytes / bandwidth and 2(N-1) * alpha."""
    if workers == 1:
        return 0.0, 0.0
    return 2 * (workers - 1) / workers * nbytes / (gbit_s * 1e9 / 8), 2 * (workers - 1) * alpha


def cost_model_markdown():
    rows = ["| model | params | float32 MB | " + " | ".join(f"{g} Gb/s N={w}" for g in (25, 200) for w in (8, 64, 512))
            + " | step for 90% (25 Gb/s, N=512) |", "|---|---|---|" + "---|" * 6 + "---|"]
    for name, p in zoo_sizes():
        nbytes = 4 * p
        cells = []
        for g in (25, 200):
            for w in (8, 64, 512):
                bw, lat = ring_allreduce_s(nbytes, w, g)
                cells.append(f"{bw * 1e3:.2f} + {lat * 1e3:.2f}")
        bw, lat = ring_allreduce_s(nbytes, 512, 25)
        rows.append(f"| {name} | {p / 1e6:.2f} M | {nbytes / 2**20:.1f} | " + " | ".join(cells)
                    + f" | {9 * (bw + lat) * 1e3:.0f} ms |")
    eff = ["| model (1 CPU thread per worker) | step ms | " + " | ".join(f"N={w} {g} Gb/s" for g in (25, 200)
                                                                         for w in (8, 64, 512)) + " |",
           "|---|---|" + "---|" * 6]
    sizes = dict(zoo_sizes())
    for name, t in CPU_STEP_S.items():
        cells = []
        for g in (25, 200):
            for w in (8, 64, 512):
                bw, lat = ring_allreduce_s(4 * sizes[name], w, g)
                cells.append(f"{t / (t + bw + lat):.2f}")
        eff.append(f"| {name} | {t * 1e3:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n\n" + "\n".join(eff) + "\n"


# ----------------------------------------------------------------------------- driver
def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_one(lib, model, world, batch, steps, warmup):
    exe = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    exe = exe if os.path.exists(exe) else shutil.which("mpiexec")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    cmd = [exe, "-n", str(world), sys.executable, os.path.abspath(__file__), "worker", "--lib", lib, "--model",
           model, "--batch", str(batch), "--steps", str(steps), "--warmup", str(warmup), "--port", str(_free_port())]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd")
    w = sub.add_parser("worker")
    w.add_argument("--lib", choices=["minigen", "torch"], required=True)
    w.add_argument("--model", choices=["gpt", "dcgan"], required=True)
    w.add_argument("--batch", type=int, required=True)
    w.add_argument("--steps", type=int, default=20)
    w.add_argument("--warmup", type=int, default=3)
    w.add_argument("--port", type=int, default=29511)
    p.add_argument("--tiny", action="store_true", help="2 steps on small batches: check that everything runs")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--libs", default="minigen,torch")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "distributed.md"))
    sub.add_parser("costmodel", help="print the ring all-reduce projections (docs/DISTRIBUTED.md) and exit")
    a = p.parse_args(argv)
    if a.cmd == "worker":
        return worker(a)
    if a.cmd == "costmodel":
        print(cost_model_markdown())
        return 0
    steps, warmup = (2, 1) if a.tiny else (a.steps, 3)
    batches = {"gpt": 4 if a.tiny else 12, "dcgan": 8 if a.tiny else 64}
    libs = [x for x in a.libs.split(",") if x]
    load0 = os.getloadavg()
    rows = []
    for model in ("gpt", "dcgan"):
        G = batches[model]
        plan = [(1, G, "base"), (2, G // 2, "strong"), (2, G, "weak")]
        for lib in libs:
            base = None
            for world, b, mode in plan:
                res = run_one(lib, model, world, b, steps, warmup)
                res["mode"] = mode
                if mode == "base":
                    base = res["step_s"]
                res["eff"] = (base / res["step_s"] / 1.0 if mode == "weak" else
                              base / (res["step_s"] * world)) if mode != "base" else 1.0
                res["samples_s"] = world * b / res["step_s"]
                rows.append(res)
                print(json.dumps(res), flush=True)
    load1 = os.getloadavg()
    if a.tiny:
        print("tiny run: nothing written")
        return 0
    import torch

    import minigen

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    flags = next((ln for ln in open("/proc/cpuinfo") if ln.startswith("flags")), "")
    isa = "AVX-512" if "avx512f" in flags else ("AVX2" if "avx2" in flags else "SSE")
    lines = [
        "# Data-parallel scaling: minigen DDP (MPI) vs PyTorch DDP (gloo)", "",
        f"Command: `python benchmarks/distributed_scaling.py --steps {a.steps}`  ",
        f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}  ",
        f"Machine: {cpu} ({isa}), {os.cpu_count()} cores, {platform.platform()}  ",
        f"Versions: Python {platform.python_version()}, NumPy {np.__version__}, minigen {minigen.__version__}, "
        f"PyTorch {torch.__version__}, mpi4py {__import__('mpi4py').__version__} "
        f"({__import__('mpi4py.MPI', fromlist=['MPI']).Get_library_version().splitlines()[0].strip()})  ",
        "Threads: 1 per process (OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS=1, torch.set_num_threads(1))  ",
        f"Load average at start: {load0[0]:.2f}, at end: {load1[0]:.2f} (a shared 2-core machine)", "",
        "Step time = median over the steps after warm-up of the slowest rank. Strong: global batch fixed, "
        "efficiency = T1 / (W·TW). Weak: batch per process fixed, efficiency = T1 / TW. `all-reduce` = one "
        "blocking all-reduce of all gradients (same byte count) timed alone; `share` = all-reduce / step. "
        "`exposed` (minigen) = time the backward waited at its end for the bucket all-reduces (the rest overlapped "
        "the backward).", "",
        "| model | library | mode | procs | batch/proc | step ms | samples/s | efficiency | grad MB | all-reduce ms "
        "| share | exposed ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ex = f"{r['exposed_s'] * 1e3:.2f}" if r.get("exposed_s") is not None else "—"
        ar = f"{r['allreduce_s'] * 1e3:.2f}" if r["world"] > 1 else "—"
        sh = f"{r['allreduce_s'] / r['step_s']:.1%}" if r["world"] > 1 else "—"
        lines.append(f"| {r['model']} | {r['lib']} | {r['mode']} | {r['world']} | {r['batch']} | "
                     f"{r['step_s'] * 1e3:.1f} | {r['samples_s']:.1f} | {r['eff']:.2f} | "
                     f"{r['grad_bytes'] / 2**20:.2f} | {ar} | {sh} | {ex} |")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
