"""Engine before/after: the same workloads on two source trees of minigen, side by side on one machine.

    python benchmarks/before_after.py --before /path/to/old/checkout --after . [--threads 1] [--rounds 3]

Each workload runs in a fresh subprocess per tree (so each tree imports its own minigen), the two trees
alternate round by round (interleaved: drift of a shared machine hits both), each measurement is the median
process CPU time per iteration after warm-up, and the table reports min/median over rounds and the ratio
after/before (< 1: the new engine is faster). Only the public API both trees share is used.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

WORKLOADS = {
    "tiny-op (a*b+c).sum() fwd+bwd, 16 elements": """
a = mg.randn(16, requires_grad=True); b = mg.randn(16, requires_grad=True); c = mg.randn(16, requires_grad=True)
def step():
    (a * b + c).sum().backward()
""",
    "MLP 784-400-20 (VAE encoder size), batch 128, Adam step": """
model = mg.nn.Sequential(mg.nn.Linear(784, 400), mg.nn.ReLU(), mg.nn.Linear(400, 20))
opt = mg.optim.Adam(model.parameters(), lr=1e-3)
x = mg.randn(128, 784)
def step():
    opt.zero_grad()
    (model(x) ** 2).mean().backward()
    opt.step()
""",
    "conv2d 5x5 s2 fwd+bwd (64, 64, 14, 14) -> 128": """
x = mg.randn(64, 64, 14, 14, requires_grad=True); w = mg.randn(128, 64, 5, 5, requires_grad=True)
def step():
    F.conv2d(x, w, stride=2, padding=2).sum().backward()
""",
    "DCGAN-style D: conv 1->64->128 + linear, batch 64, fwd+bwd": """
c1 = mg.nn.Conv2d(1, 64, 5, 2, 2); c2 = mg.nn.Conv2d(64, 128, 5, 2, 2); fc = mg.nn.Linear(128 * 7 * 7, 1)
x = mg.randn(64, 1, 28, 28)
def step():
    h = F.leaky_relu(c2(F.leaky_relu(c1(x), 0.2)), 0.2)
    fc(h.reshape(64, -1)).mean().backward()
""",
    "causal attention fwd+bwd B12 H4 T64 D32": """
q, k, v = (mg.randn(12, 4, 64, 32, requires_grad=True) for _ in range(3))
def step():
    F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
""",
    "LSTM 2x256, T64, batch 32, fwd+bwd": """
lstm = mg.nn.LSTM(65, 256, num_layers=2, batch_first=True)
x = mg.randn(32, 64, 65)
def step():
    out, _ = lstm(x)
    out.sum().backward()
""",
    "Transformer block (E128 H4 T64 B12) fwd+bwd": """
layer = mg.nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True, norm_first=True)
x = mg.randn(12, 64, 128, requires_grad=True)
def step():
    layer(x).sum().backward()
""",
    "layer_norm + cross_entropy fwd+bwd (768, 128) / (2048, 65)": """
x = mg.randn(768, 128, requires_grad=True); w = mg.ones(128, requires_grad=True); b = mg.zeros(128, requires_grad=True)
logits = mg.randn(2048, 65, requires_grad=True); y = mg.randint(0, 65, (2048,))
def step():
    (F.layer_norm(x, (128,), w, b).sum() + F.cross_entropy(logits, y)).backward()
""",
}

RUNNER = r"""
import sys, time, json, statistics
sys.path.insert(0, sys.argv[1])
import minigen as mg
import minigen.nn.functional as F
mg.manual_seed(0)
SETUP
for _ in range(3):
    step()
n, t0 = 0, time.process_time()
while time.process_time() - t0 < 0.3:
    step(); n += 1
n = max(3, min(n, 10000))
ts = []
for _ in range(7):
    t0 = time.process_time()
    for _ in range(n):
        step()
    ts.append((time.process_time() - t0) / n)
print(json.dumps({"median": statistics.median(ts), "min": min(ts), "file": mg.__file__}))
"""


def run_one(tree, setup, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    code = RUNNER.replace("SETUP", setup)
    out = subprocess.run([sys.executable, "-c", code, os.path.abspath(tree)], capture_output=True, text=True,
                         env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{tree}: {out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if not res["file"].startswith(os.path.abspath(tree)):
        raise RuntimeError(f"{tree}: imported minigen from {res['file']} instead")
    return res


def _ms(seconds):
    """Milliseconds with 4 significant digits (sub-millisecond workloads keep their microseconds)."""
    return f"{seconds * 1e3:.4g}"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True, help="source tree of the old engine (a checkout)")
    ap.add_argument("--after", default=".", help="source tree of the new engine (default: this checkout)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="substring filter on workload names")
    ap.add_argument("--out", default=None, help="write the markdown table here too")
    args = ap.parse_args(argv)
    rows = []
    for name, setup in WORKLOADS.items():
        if args.only and args.only not in name:
            continue
        before, after = [], []
        for _ in range(args.rounds):
            before.append(run_one(args.before, setup, args.threads)["median"])
            after.append(run_one(args.after, setup, args.threads)["median"])
        rb, ra = sorted(before)[len(before) // 2], sorted(after)[len(after) // 2]
        rows.append((name, min(before), rb, min(after), ra, ra / rb))
        print(f"{name}: before {_ms(rb)} ms, after {_ms(ra)} ms, ratio {ra / rb:.2f}", flush=True)
    lines = [f"CPU: {cpu_model()}; threads {args.threads}; {args.rounds} interleaved rounds; process CPU time per "
             f"iteration (median of 7 timed blocks of up to 10,000 iterations per round); command: `python benchmarks/before_after.py "
             f"--before {args.before} --after {args.after} --threads {args.threads} --rounds {args.rounds}`", "",
             "| workload | before ms (min / median) | after ms (min / median) | after / before |",
             "|---|---|---|---|"]
    for name, bmin, bmed, amin, amed, r in rows:
        lines.append(f"| {name} | {_ms(bmin)} / {_ms(bmed)} | {_ms(amin)} / {_ms(amed)} | {r:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text + "\n\n")


if __name__ == "__main__":
    main()
