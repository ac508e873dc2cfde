"""Train the MNIST MLP and LeNet-style CNN with minigen and with PyTorch, side by side, on the bundled 9k/1k split.

Both frameworks get the same initial weights (minigen's, copied into torch), the
same batches in the same order (one shuffled permutation per epoch, drawn once),
Adam(lr=1e-3), batch 64, and the same thread count (``torch.set_num_threads`` =
Numba's thread count, which is also what OpenBLAS uses here). Epochs alternate
between the frameworks (minigen epoch e, torch epoch e, ...) so that load from
other processes on a shared machine hits both alike. Reported per model: the
validation accuracy after the last epoch, and the time per training epoch (min and
median over epochs; evaluation excluded), with the minigen / torch ratio.

    python benchmarks/train_mnist_vs_torch.py --epochs 3 --out benchmarks/results/train_mnist.md [--threads N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def _early_threads():
    """--threads N must be in the environment before NumPy/OpenBLAS and Numba start their thread pools."""
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            n = sys.argv[i + 1]
        elif a.startswith("--threads="):
            n = a.split("=", 1)[1]
        else:
            continue
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[var] = n


_early_threads()

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import minigen as mg  # noqa: E402
from minigen.data import load_mnist_bundled  # noqa: E402
from minigen.train import mnist_model  # noqa: E402


def torch_model(kind, hidden):
    import torch.nn as tnn

    if kind == "mlp":
        return tnn.Sequential(tnn.Flatten(), tnn.Linear(784, hidden), tnn.ReLU(), tnn.Linear(hidden, hidden),
                              tnn.ReLU(), tnn.Linear(hidden, 10))
    return tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))


def copy_weights(mg_model, t_model):
    import torch

    sd = {k: torch.from_numpy(v.numpy().copy()) for k, v in mg_model.state_dict().items()}
    t_model.load_state_dict(sd, strict=True)


def run_minigen_epoch(model, opt, x, y, batches):
    F = mg.nn.functional
    model.train()
    t0 = time.perf_counter()
    for idx in batches:
        xb, yb = mg.Tensor(x[idx]), mg.Tensor(y[idx])
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0, float(loss.item())


def run_torch_epoch(model, opt, x, y, batches):
    import torch
    import torch.nn.functional as tF

    model.train()
    t0 = time.perf_counter()
    for idx in batches:
        ti = torch.from_numpy(idx)
        xb, yb = x[ti], y[ti]
        opt.zero_grad()
        loss = tF.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0, float(loss.item())


def eval_minigen(model, x, y):
    model.eval()
    correct = 0
    with mg.no_grad():
        for s in range(0, len(x), 500):
            logits = model(mg.Tensor(x[s:s + 500])).numpy()
            correct += int((logits.argmax(-1) == y[s:s + 500]).sum())
    return correct / len(x)


def eval_torch(model, x, y):
    import torch

    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[s:s + 500]).argmax(-1) for s in range(0, len(x), 500)])
    return float((pred == y).float().mean())


def bench(kind, epochs, batch_size, lr, hidden, seed, threads, log):
    import torch

    xtr, ytr = load_mnist_bundled("train")
    xva, yva = load_mnist_bundled("val")
    tx, ty = torch.from_numpy(xtr), torch.from_numpy(ytr)
    tvx, tvy = torch.from_numpy(xva), torch.from_numpy(yva)

    mg.manual_seed(seed)
    m_model = mnist_model(kind, hidden)
    t_model = torch_model(kind, hidden)
    copy_weights(m_model, t_model)
    m_opt = mg.optim.Adam(m_model.parameters(), lr=lr)
    t_opt = torch.optim.Adam(t_model.parameters(), lr=lr)

    rng = np.random.default_rng(seed)
    # warm-up (Numba compilation, allocator): a few steps on copies of the models, not counted
    w_m, w_t = mnist_model(kind, hidden), torch_model(kind, hidden)
    warm = [np.arange(i * batch_size, (i + 1) * batch_size) for i in range(3)]
    run_minigen_epoch(w_m, mg.optim.Adam(w_m.parameters(), lr=lr), xtr, ytr, warm)
    run_torch_epoch(w_t, torch.optim.Adam(w_t.parameters(), lr=lr), tx, ty, warm)

    times_m, times_t, loss_m, loss_t = [], [], None, None
    for e in range(epochs):
        perm = rng.permutation(len(xtr))
        batches = [perm[i:i + batch_size] for i in range(0, len(perm), batch_size)]
        order = (0, 1) if e % 2 == 0 else (1, 0)
        for who in order:
            if who == 0:
                dt, loss_m = run_minigen_epoch(m_model, m_opt, xtr, ytr, batches)
                times_m.append(dt)
            else:
                dt, loss_t = run_torch_epoch(t_model, t_opt, tx, ty, batches)
                times_t.append(dt)
        acc_m, acc_t = eval_minigen(m_model, xva, yva), eval_torch(t_model, tvx, tvy)
        log(f"  {kind} epoch {e + 1}: minigen {times_m[-1]:.2f}s (val acc {acc_m:.4f}, last loss {loss_m:.4f}) | "
            f"torch {times_t[-1]:.2f}s (val acc {acc_t:.4f}, last loss {loss_t:.4f})")
    return {"kind": kind, "acc_m": acc_m, "acc_t": acc_t, "min_m": min(times_m), "med_m": statistics.median(times_m),
            "min_t": min(times_t), "med_t": statistics.median(times_t), "epochs": epochs,
            "steps": len(batches)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for NumPy/OpenBLAS, Numba and torch (default: Numba's default)")
    ap.add_argument("--out", default=None, help="write the markdown results here")
    ap.add_argument("--append", action="store_true", help="append to --out instead of replacing it")
    args = ap.parse_args(argv)

    import torch

    from minigen.info import collect
    from minigen.kernels import dispatch

    threads = args.threads or dispatch.num_threads()
    torch.set_num_threads(threads)
    info = collect()
    lines = []

    def log(s):
        print(s, flush=True)
        lines.append(s)

    cmd = "python benchmarks/train_mnist_vs_torch.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results = [bench(k, args.epochs, args.batch_size, args.lr, args.hidden, args.seed, threads, log)
               for k in args.models.split(",")]
    md = [("## " if args.append else "# ") + "MNIST training: minigen vs PyTorch (bundled 9k train / 1k val)", "",
          "```", cmd.strip(), "```", "",
          f"Machine: {info['platform']}, {info['cpu_count']} CPUs (shared with other jobs: timings are noisy; the "
          f"ratio measured side by side is the figure). numpy {info['numpy']} ({info['blas']}), numba "
          f"{info['numba']}, torch {torch.__version__}, {threads} threads for both (torch.set_num_threads), "
          f"minigen kernels mode '{info['kernels_mode']}'.", "",
          f"Same initial weights, same batches in the same order, Adam lr={args.lr}, batch {args.batch_size}, "
          f"{args.epochs} epochs; the frameworks alternate epoch by epoch. Time = one training epoch "
          f"({results[0]['steps']} steps), evaluation excluded.", "",
          "| model | minigen val acc | torch val acc | minigen s/epoch (min / median) | "
          "torch s/epoch (min / median) | ratio minigen/torch (min) |",
          "|---|---|---|---|---|---|"]
    for r in results:
        md.append(f"| {r['kind']} | {r['acc_m']:.4f} | {r['acc_t']:.4f} | {r['min_m']:.2f} / {r['med_m']:.2f} | "
                  f"{r['min_t']:.2f} / {r['med_t']:.2f} | {r['min_m'] / r['min_t']:.1f}x |")
    md += ["", "Per-epoch log:", "", "```"] + lines + ["```", ""]
    text = "\n".join(md)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "a" if args.append else "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
