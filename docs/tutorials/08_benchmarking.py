# %% [markdown]
# # Benchmarking minigen against PyTorch, honestly
#
# A speed comparison is easy to get wrong. The rules this tutorial follows (and `benchmarks/run.py`
# follows for the README's table):
#
# 1. **Same thread count** for every library: BLAS, Numba and torch each have their own pool, and the
#    library with more threads "wins". Set them before the libraries load.
# 2. **Same inputs, same result**: check both sides compute the same numbers first.
# 3. **Warm-up**: the first call pays for compilation (Numba), allocation and caches; time it
#    separately, never mixed in.
# 4. **Interleave**: time A and B alternately, round by round, in a shuffled order, so that a slow
#    moment of a shared machine hits both, not one.
# 5. **Report min and median of many repeats, and the ratio** $t_\text{minigen} / t_\text{torch}$
#    measured side by side. On a shared machine an absolute time means little; a ratio measured in the
#    same run is the figure.

# %%
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = "1"          # before numpy / numba / torch are imported in this process

import platform
import time
import numpy as np
import minigen as mg
import minigen.nn.functional as F

try:
    import torch
    torch.set_num_threads(1)
    HAVE_TORCH = True
except ImportError:                # torch is optional: compare with a hand-written NumPy version instead
    HAVE_TORCH = False
import numba

cpu = platform.processor() or platform.machine()
if os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
print("CPU:", cpu, "| cores:", os.cpu_count())
print("threads: numba", numba.get_num_threads(), "| torch", torch.get_num_threads() if HAVE_TORCH else "-",
      "| BLAS via OPENBLAS_NUM_THREADS =", os.environ["OPENBLAS_NUM_THREADS"])
print("minigen", mg.__version__ if hasattr(mg, "__version__") else "", "| numpy", np.__version__,
      "| torch", torch.__version__ if HAVE_TORCH else "not installed")

# %% [markdown]
# ## The workload: one MLP layer, forward and backward
#
# $y = \operatorname{GELU}(xW^\top + b)$, loss $= \sum y$, gradients for $x$, $W$, $b$ — with $x$ of
# shape (256, 512) and $W$ (512, 512). First: the same numbers on both sides.

# %%
rng = np.random.default_rng(0)
x_np = rng.standard_normal((256, 512)).astype(np.float32)
w_np = (rng.standard_normal((512, 512)) / 512 ** 0.5).astype(np.float32)
b_np = rng.standard_normal(512).astype(np.float32)


def step_minigen():
    x, w, b = (mg.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
    F.gelu(F.linear(x, w, b)).sum().backward()
    return w.grad.array


if HAVE_TORCH:
    def step_other():
        x, w, b = (torch.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        torch.nn.functional.gelu(torch.nn.functional.linear(x, w, b)).sum().backward()
        return w.grad.numpy()
    OTHER = "PyTorch"
else:
    from math import erf, sqrt
    _erf = np.vectorize(erf)

    def step_other():
        z = x_np @ w_np.T + b_np
        cdf = 0.5 * (1 + _erf(z / sqrt(2)))
        dz = cdf + z * np.exp(-z * z / 2) / sqrt(2 * np.pi)
        return dz.T @ x_np
    OTHER = "NumPy by hand"

print(f"max |dW minigen - dW {OTHER}| =", float(np.abs(step_minigen() - step_other()).max()))

# %% [markdown]
# ## Warm-up, then interleaved timing
#
# The very first minigen call may compile Numba kernels (from the on-disk cache, or from scratch);
# we time it on its own. Then 30 rounds, each timing both sides once in a random order.

# %%
t0 = time.perf_counter(); step_minigen(); first = time.perf_counter() - t0
for _ in range(3):                       # warm-up both sides
    step_minigen(); step_other()

times = {"minigen": [], OTHER: []}
order_rng = np.random.default_rng(1)
for rnd in range(30):
    pair = [("minigen", step_minigen), (OTHER, step_other)]
    order_rng.shuffle(pair)
    for name, fn in pair:
        t0 = time.perf_counter()
        fn()
        times[name].append(time.perf_counter() - t0)

for name, ts in times.items():
    print(f"{name:>14}: min {min(ts) * 1e3:6.2f} ms, median {np.median(ts) * 1e3:6.2f} ms")
ratio_min = min(times["minigen"]) / min(times[OTHER])
ratios = np.array(times["minigen"]) / np.array(times[OTHER])   # per round: both timed in the same moment
print(f"first minigen call (warm-up excluded above): {first * 1e3:.1f} ms")
print(f"ratio minigen / {OTHER}: of the mins {ratio_min:.2f}; per-round median {np.median(ratios):.2f} "
      f"(rounds range {ratios.min():.2f}..{ratios.max():.2f})")

# %% [markdown]
# ## Look at the distribution, not just one number
#
# Every point is one timing. The spread is the machine's noise (other processes, frequency changes);
# the per-round ratio cancels much of it because both sides ran back to back.

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(8, 3))
for name, ts in times.items():
    axes[0].plot(np.array(ts) * 1e3, "o-", ms=3, lw=0.7, label=name)
axes[0].set_xlabel("round")
axes[0].set_ylabel("ms")
axes[0].legend(fontsize=8)
axes[0].set_title("interleaved timings")
axes[1].hist(ratios, bins=12)
axes[1].axvline(1, color="0.3", ls="--")
axes[1].set_xlabel(f"minigen / {OTHER} per round")
axes[1].set_title("ratio (< 1: minigen faster)")
fig.tight_layout()

# %% [markdown]
# ## A second workload: per-op overhead
#
# With tiny tensors the arithmetic is free and what is measured is the framework: Python dispatch, graph
# recording, the backward walk. $(a \cdot b + c)$ summed, forward and backward, on 16 elements.

# %%
a16, b16, c16 = (rng.standard_normal(16).astype(np.float32) for _ in range(3))


def tiny_minigen():
    a, b = mg.tensor(a16, requires_grad=True), mg.tensor(b16, requires_grad=True)
    (a * b + mg.tensor(c16)).sum().backward()


def tiny_other():
    if HAVE_TORCH:
        a, b = torch.tensor(a16, requires_grad=True), torch.tensor(b16, requires_grad=True)
        (a * b + torch.tensor(c16)).sum().backward()
    else:
        (a16 * b16 + c16).sum()


for _ in range(50):
    tiny_minigen(); tiny_other()
tt = {"minigen": [], OTHER: []}
for rnd in range(200):
    for name, fn in ((("minigen", tiny_minigen), (OTHER, tiny_other)) if rnd % 2 else
                     ((OTHER, tiny_other), ("minigen", tiny_minigen))):
        t0 = time.perf_counter(); fn(); tt[name].append(time.perf_counter() - t0)
for name, ts in tt.items():
    print(f"{name:>14}: min {min(ts) * 1e6:6.1f} us, median {np.median(ts) * 1e6:6.1f} us")
print(f"ratio of the mins: {min(tt['minigen']) / min(tt[OTHER]):.2f}")

# %% [markdown]
# What to take away: quote the ratio with the thread count, the CPU and the library versions, as the
# README's benchmark table does; rerun it on your machine (`python benchmarks/run.py --threads 1`)
# before believing it there.
