"""Measure where each Numba kernel starts to beat its NumPy reference (the ``worth`` thresholds in dispatch).

    python benchmarks/thresholds.py            # writes benchmarks/results/thresholds.md

For each kernel and a ladder of sizes, times the kernel (array in, array out) and the NumPy reference
formula on the same arrays (min of repeats after warm-up, float32, process CPU time: the machine is
shared and loaded, see benchmarks/run.py) and reports the speedup reference/kernel. The smallest size
from which the kernel keeps winning is the threshold written in the kernel's docstring and used by its
``worth`` rule (most kernels now win at every size measured and have none).
"""
from __future__ import annotations

import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import minigen  # noqa: E402,F401
from minigen.kernels import cpu_activation as A  # noqa: E402
from minigen.kernels import cpu_attention as AT  # noqa: E402
from minigen.kernels import cpu_norm as N  # noqa: E402
from minigen.kernels import cpu_optim as O  # noqa: E402
from minigen.kernels import cpu_softmax as S  # noqa: E402
from minigen.kernels import dispatch  # noqa: E402


def best(fn, repeat=5, min_time=0.02):
    fn()
    calls, t0 = 0, time.process_time()
    while True:
        fn()
        calls += 1
        el = time.process_time() - t0
        if el >= 0.005 or calls >= 1000:
            break
    n = max(1, int(min_time / max(el / calls, 1e-7)))
    out = []
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        out.append((time.process_time() - t0) / n)
    return min(out) * 1e6


def ref_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def ref_ln(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w + b


def ref_gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def ref_gelu_exact(x):
    from minigen.ops.pointwise import erf_array

    return (0.5 * x * (1 + erf_array(x / math.sqrt(2)))).astype(x.dtype, copy=False)


def ref_leaky(x, a):
    pos = x > 0
    return np.where(pos, x, x * a).astype(x.dtype, copy=False), np.where(pos, 1, a).astype(x.dtype)


def ref_ce(x, t):
    s = x - x.max(-1, keepdims=True)
    lp = s - np.log(np.exp(s).sum(-1, keepdims=True))
    loss = -lp[np.arange(len(t)), t].mean()
    d = np.exp(lp)
    d[np.arange(len(t)), t] -= 1
    return loss, d / len(t)


def ref_bn(x, w, b):
    mu = x.mean((0, 2, 3), keepdims=True)
    var = ((x - mu) ** 2).mean((0, 2, 3), keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1)


def ref_attn(q, k, v):
    T = q.shape[-2]
    s = np.where(np.tril(np.ones((T, T), bool)), q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1]), -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def ref_adam(p, g, m, v):
    m *= 0.9
    m += 0.1 * g
    v *= 0.999
    v += 0.001 * g * g
    p -= 1e-3 / (1 - 0.9 ** 3) * m / (np.sqrt(v) / math.sqrt(1 - 0.999 ** 3) + 1e-8)


def main():
    rng = np.random.default_rng(0)
    f32 = np.float32
    lines = ["# Kernel vs NumPy reference crossover (float32, min of repeats, microseconds of process CPU time)", "",
             f"Numba threads: {dispatch.num_threads()}; load average at start: {os.getloadavg()}", "",
             "| kernel | shape | kernel us | reference us | speedup |", "|---|---|---|---|---|"]

    def rec(name, shape, k, r):
        tk, tr = best(k), best(r)
        lines.append(f"| {name} | {shape} | {tk:.1f} | {tr:.1f} | {tr / tk:.2f}x |")
        print(lines[-1], flush=True)

    for R, C in ((1, 16), (4, 64), (16, 64), (64, 256), (768, 64), (64, 1000), (2048, 65)):
        x = rng.standard_normal((R, C)).astype(f32)
        rec("softmax_forward", (R, C), lambda: S.softmax_forward(x), lambda: ref_softmax(x))
    for R, C in ((4, 8), (16, 65), (128, 10), (2048, 65)):
        x = rng.standard_normal((R, C)).astype(f32)
        t = rng.integers(0, C, R)
        rec("cross_entropy (loss+grad)", (R, C), lambda: S.cross_entropy(x, t), lambda: ref_ce(x, t))
    for R, D in ((2, 16), (8, 64), (64, 128), (768, 128)):
        x = rng.standard_normal((R, D)).astype(f32)
        w, b = np.ones(D, f32), np.zeros(D, f32)
        rec("layer_norm_forward", (R, D), lambda: N.layer_norm_forward(x, w, b, 1e-5), lambda: ref_ln(x, w, b))
    for shp in ((4, 4, 4, 4), (8, 16, 8, 8), (64, 64, 14, 14), (64, 128, 7, 7)):
        x = rng.standard_normal(shp).astype(f32)
        w, b = np.ones(shp[1], f32), np.zeros(shp[1], f32)
        rec("batch_norm_forward", shp, lambda: N.batch_norm_forward(x, w, b, 1e-5), lambda: ref_bn(x, w, b))
    for n in (64, 512, 4096, 12 * 64 * 512):
        x = rng.standard_normal(n).astype(f32)
        rec("gelu_forward (tanh)", (n,), lambda: A.gelu_forward(x, "tanh"), lambda: ref_gelu(x))
        rec("gelu_forward (exact)", (n,), lambda: A.gelu_forward(x), lambda: ref_gelu_exact(x))
    for n in (64, 4096, 64 * 64 * 14 * 14):
        x = rng.standard_normal(n).astype(f32)
        rec("masked_linear_forward (leaky_relu 0.2)", (n,), lambda: A.masked_linear_forward(x, 0.2, True),
            lambda: ref_leaky(x, 0.2))
    for T in (4, 16, 64, 256):
        q, k, v = (rng.standard_normal((12, 4, T, 32)).astype(f32) for _ in range(3))
        rec("sdpa_forward causal", (12, 4, T, 32), lambda: AT.sdpa_forward(q, k, v, True), lambda: ref_attn(q, k, v))
    for n in (1000, 100_000, 1_000_000):
        p, g = rng.standard_normal(n).astype(f32), rng.standard_normal(n).astype(f32)
        m, v = np.zeros(n, f32), np.zeros(n, f32)
        rec("adam_step (one tensor)", (n,), lambda: O.adam_step([p], [g], [m], [v], None, 3),
            lambda: ref_adam(p, g, m, v))
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "thresholds.md"), "w") as f:
        f.write("\n".join(lines) + "\n\nCommand: `python benchmarks/thresholds.py`\n")


if __name__ == "__main__":
    main()
