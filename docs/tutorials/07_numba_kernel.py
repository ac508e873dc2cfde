# %% [markdown]
# # Writing a Numba kernel, registering it, and proving it equals the reference
#
# Every minigen op has a plain-NumPy **reference**: the formula as readable code, and the oracle for
# anything faster. A kernel is an optional fast path beside it, held in one registry
# (`minigen.kernels.dispatch`) with three promises: `requires` (which arrays it handles), `worth` (the
# input size from which it pays) and `reference` (its **contract**: the function it must equal).
#
# Our example: softplus, $y = \log(1 + e^x)$. The NumPy way, `np.logaddexp(0, x)`, is already one call;
# a kernel can still win by doing the work in one pass with no temporaries. The stable form avoids
# overflow for large $x$:
#
# $$\log(1 + e^{x}) = \max(x, 0) + \log\!\big(1 + e^{-|x|}\big).$$
#
# One more detail belongs to the contract: PyTorch's `softplus` (and so minigen's) returns $x$ itself when
# $x > 20$ (its `threshold`), where $\log(1 + e^{-x}) < 3\cdot 10^{-9}$. A kernel that forgot it would be off
# by that much: invisible in float32, but many ulps in float64, and the property test below finds it.

# %%
import math
import numba
import numpy as np
import minigen as mg
import minigen.nn.functional as F
from minigen.kernels import dispatch


@numba.njit(cache=False, fastmath=False)
def _softplus_loop(x, y):
    for i in range(x.size):
        v = x[i]
        # PyTorch's softplus (beta 1, threshold 20) returns x itself above the threshold
        y[i] = v if v > 20.0 else max(v, 0.0) + math.log1p(math.exp(-abs(v)))


def _float_contiguous(x):
    return x.dtype in (np.float32, np.float64) and x.flags.c_contiguous


@dispatch.register("tutorial_softplus_forward", requires=_float_contiguous, worth=lambda x: x.size >= 4096,
                   reference="minigen.ops.activation:softplus")
def softplus_kernel(x):
    """y = x if x > 20 else max(x, 0) + log1p(exp(-|x|)), elementwise, in one pass."""
    y = np.empty_like(x)
    _softplus_loop(x.reshape(-1), y.reshape(-1))
    return y


print("registered:", "tutorial_softplus_forward" in dispatch.kernel_names())
print("contract:  ", dispatch.contract("tutorial_softplus_forward"))

# %% [markdown]
# `dispatch.get(name, *arrays)` is the one lookup every op makes: it hands out the kernel when the mode
# allows it and the kernel's rules hold, and `None` (run the reference) otherwise.

# %%
small, big = np.zeros(10, np.float32), np.zeros(10_000, np.float32)
print("auto, 10 elements:     ", dispatch.get("tutorial_softplus_forward", small))
print("auto, 10,000 elements: ", dispatch.get("tutorial_softplus_forward", big) is softplus_kernel)
print("int64 input:           ", dispatch.get("tutorial_softplus_forward", np.zeros(10_000, np.int64)))
with dispatch.use_reference():
    print("MINIGEN_KERNELS=reference:", dispatch.get("tutorial_softplus_forward", big))
with dispatch.use_kernels():
    print("MINIGEN_KERNELS=numba, 10 elements:", dispatch.get("tutorial_softplus_forward", small) is softplus_kernel)

# %% [markdown]
# ## Proving it: a property test against the contract
#
# The contract names the reference as `module:qualname`; we resolve it and let Hypothesis search for an
# input where the two differ: arrays of any length (0 included), with values from tiny to huge
# (overflow territory for a naive $\log(1 + e^x)$), in float32 and float64. The tolerance is a few ulps
# of the dtype, not a loose one: a wrong formula (try `math.log(1 + math.exp(v))`) fails at $x \gtrsim 89$
# in float32.

# %%
import importlib
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

mod_name, _, qual = dispatch.contract("tutorial_softplus_forward").partition(":")
reference = getattr(importlib.import_module(mod_name), qual)


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from([np.float32, np.float64]).flatmap(
    lambda dt: arrays(dt, st.integers(0, 300), elements=st.floats(-1e4, 1e4, width=32))))
def test_kernel_equals_reference(x):
    got = softplus_kernel(x)
    want = reference(mg.tensor(x)).array
    assert got.dtype == want.dtype == x.dtype
    eps = np.finfo(x.dtype).eps
    np.testing.assert_allclose(got, want, rtol=4 * eps, atol=4 * eps)


test_kernel_equals_reference()
print("Hypothesis: 300 random arrays, kernel == reference within 4 ulps")


@numba.njit
def _naive_loop(x, y):
    for i in range(x.size):
        y[i] = math.log(1.0 + math.exp(x[i]))


naive = np.empty(1, np.float32)
_naive_loop(np.array([100.0], np.float32), naive)
print("the naive formula at x=100 (float32):", naive[0], " reference:", reference(mg.tensor([100.0])).item())

# %% [markdown]
# ## Does it pay?
#
# A kernel is registered only where it measurably beats the reference. A quick check at three sizes
# (min of repeats; tutorial 8 shows how to measure properly):

# %%
import time
import matplotlib.pyplot as plt

rows = []
for n in (1_000, 100_000, 1_000_000):
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    t_ref, t_k = [], []
    for _ in range(7):
        t0 = time.perf_counter(); np.logaddexp(0, x); t_ref.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); softplus_kernel(x); t_k.append(time.perf_counter() - t0)
    rows.append((n, min(t_ref) * 1e6, min(t_k) * 1e6))
    print(f"n={n:>9,}: NumPy reference {min(t_ref) * 1e6:9.1f} us, kernel {min(t_k) * 1e6:9.1f} us, "
          f"ratio {min(t_k) / min(t_ref):.2f}")
fig, ax = plt.subplots(figsize=(5, 3))
ns = [r[0] for r in rows]
ax.loglog(ns, [r[1] for r in rows], "o-", label="np.logaddexp(0, x)")
ax.loglog(ns, [r[2] for r in rows], "s-", label="Numba kernel")
ax.set_xlabel("elements")
ax.set_ylabel("microseconds (min of 7)")
ax.legend()
ax.set_title("softplus forward, float32")
