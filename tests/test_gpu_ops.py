"""Every op family on the GPU backend gives the CPU result: forward values and first-order gradients.

Each case runs on the CPU, then on ``device="cuda"`` from the same inputs, and compares the output and
the gradient of ``sum(out * w)`` w.r.t. every float input. Backends: ``emulated`` (minigen's CuPy
stand-in, :mod:`minigen.kernels.gpu_emulate`: catches NumPy-only code paths, host/device mixing,
CuPy-missing functions, and runs the CUDA kernels on the CPU) always; ``cuda`` (a real GPU) when
``mg.cuda.is_available()``, else skipped.

Inputs are float64 (so a GPU kernel or reduction order cannot hide a wrong formula behind float32
noise; tolerance 1e-9) plus a float32 pass over the ops that have fused GPU kernels (tolerance 1e-5).
"""
import numpy as np
import pytest

import minigen as mg
import minigen.nn.functional as F
from cupy_emulator import compiler_available, on_backend, real_gpu_available

requires_gpu = pytest.mark.skipif(not real_gpu_available(), reason="no CUDA GPU (CuPy + an NVIDIA device)")
requires_cxx = pytest.mark.skipif(not compiler_available(), reason="no C++ compiler for the kernel emulation")
BACKENDS = [pytest.param("emulated", marks=requires_cxx), pytest.param("cuda", marks=requires_gpu)]

# Cases that need the core patches of docs/gpu_patches/ (NumPy-only code paths found by these tests);
# ``minigen.backend.device_scope`` comes with them, so its presence says the patch set is applied.
PATCHED = hasattr(mg.backend, "device_scope")
NEEDS_PATCH = {"array_operands": "ops/elementwise, ops/pointwise", "gaussian_nll_cosine": "ops/elementwise",
               "normalize": "ops/elementwise", "repeat_interleave_counts": "ops/manipulation"}


def _maybe_xfail(name):
    if name in NEEDS_PATCH and not PATCHED:
        pytest.xfail(f"needs docs/gpu_patches ({NEEDS_PATCH[name]}): NumPy-only code path on device data")


@pytest.fixture(params=BACKENDS)
def gpu(request):
    with on_backend(request.param) as cp:
        yield cp


# ---------------------------------------------------------------- input specs
def _make(spec, rng, dtype):
    kind, shape = spec[0], spec[1]
    if kind == "f":       # float, any sign
        return rng.standard_normal(shape).astype(dtype)
    if kind == "pos":     # strictly positive, away from 0
        return (rng.random(shape) + 0.5).astype(dtype)
    if kind == "unit":    # inside (-0.9, 0.9)
        return ((rng.random(shape) * 2 - 1) * 0.9).astype(dtype)
    if kind == "prob":    # inside (0.05, 0.95)
        return (rng.random(shape) * 0.9 + 0.05).astype(dtype)
    if kind == "int":     # integers in [0, high)
        return rng.integers(0, spec[2], shape).astype(np.int64)
    if kind == "bool":
        return rng.random(shape) < 0.5
    raise ValueError(kind)


def f(*shape):
    return ("f", shape)


def pos(*shape):
    return ("pos", shape)


def unit(*shape):
    return ("unit", shape)


def prob(*shape):
    return ("prob", shape)


def ints(high, *shape):
    return ("int", shape, high)


def mask(*shape):
    return ("bool", shape)


CASES = {
    # elementwise / pointwise
    "add_broadcast": (lambda a, b: a + b, [f(3, 4), f(4)]),
    "sub_mul_div": (lambda a, b: (a - b) * a / (b * b + 1), [f(2, 3), f(2, 3)]),
    "pow_exp_log": (lambda a, b: a ** b + mg.exp(b) + mg.log(a), [pos(5), f(5)]),
    "scalar_ops": (lambda a: 2.0 - a * 3 + 1 / (a * a + 1) + a ** 2, [f(4, 2)]),
    "trig": (lambda a: mg.sin(a) + mg.cos(a) * mg.tan(a * 0.3) + mg.atan(a), [f(6)]),
    "inverse_trig": (lambda a: mg.asin(a) + mg.acos(a) + mg.atanh(a), [unit(6)]),
    "hyperbolic": (lambda a: mg.sinh(a) + mg.cosh(a) + mg.asinh(a), [f(6)]),
    "sqrt_rsqrt_log": (lambda a: mg.sqrt(a) + mg.rsqrt(a) + mg.log1p(a) + mg.log2(a) + mg.log10(a), [pos(7)]),
    "expm1_exp2": (lambda a: mg.expm1(a) + mg.exp2(a) + mg.square(a) + mg.reciprocal(a * a + 1), [f(7)]),
    "erf_erfc": (lambda a: mg.erf(a) + mg.erfc(a), [f(8)]),
    "abs_sign_round": (lambda a: mg.abs(a) * mg.sign(a) + mg.floor(a) + mg.ceil(a) + mg.round(a) + mg.trunc(a)
                       + mg.frac(a), [f(9)]),
    "max_min_clamp": (lambda a, b: mg.maximum(a, b) + mg.minimum(a, b) + mg.clamp(a, -0.5, 0.5)
                      + mg.fmax(a, b) + mg.fmin(a, b), [f(3, 3), f(3, 3)]),
    "floor_div_rem": (lambda a, b: mg.remainder(a, b) + mg.fmod(a, b) + mg.floor_divide(a, b), [f(6), pos(6)]),
    "lerp_atan2_hypot": (lambda a, b: mg.lerp(a, b, 0.3) + mg.atan2(a, b) + mg.hypot(a, b) + mg.logaddexp(a, b),
                         [f(5), f(5)]),
    "where_cmp": (lambda a, b: mg.where(a > b, a, b * 2) + (a >= 0).float() + mg.isclose(a, b).double(),
                  [f(4, 3), f(4, 3)]),
    "nan_to_num": (lambda a: mg.nan_to_num(a / (a - a)) + a, [f(4)]),
    "logical": (lambda m, n: (mg.logical_and(m, n) | mg.logical_xor(m, n)).double()
                + mg.logical_not(m).double(), [mask(5), mask(5)]),
    # activations
    "softmax_last": (lambda a: F.softmax(a, -1) * 3 + F.log_softmax(a, -1), [f(3, 7)]),
    "softmax_dim0": (lambda a: F.softmax(a, 0) + F.softmin(a, 1), [f(4, 5)]),
    "activations_1": (lambda a: F.sigmoid(a) + F.tanh(a) + F.relu(a) + F.relu6(a * 4) + F.leaky_relu(a, 0.1)
                      + F.elu(a) + F.selu(a) + F.celu(a), [f(10)]),
    "activations_2": (lambda a: F.gelu(a) + F.gelu(a, approximate="tanh") + F.silu(a) + F.mish(a) + F.softplus(a)
                      + F.logsigmoid(a), [f(10)]),
    "activations_3": (lambda a: F.hardtanh(a) + F.hardsigmoid(a) + F.hardswish(a) + F.softsign(a)
                      + F.tanhshrink(a) + F.threshold(a, 0.1, -1.0), [f(10)]),
    "glu": (lambda a: F.glu(a, -1), [f(3, 8)]),
    # reductions
    "sum_mean": (lambda a: a.sum() + a.mean(0).sum() + a.sum((0, 2), keepdim=True).sum(), [f(2, 3, 4)]),
    "var_std": (lambda a: a.var(1) + a.std(1, unbiased=False), [f(3, 5)]),
    "prod_logsumexp": (lambda a: mg.prod(a, 1) + mg.logsumexp(a, 1), [pos(3, 4)]),
    "max_min_dim": (lambda a: a.max(1)[0] + a.min(0)[0].sum() + mg.amax(a, 1) + mg.amin(a, 1), [f(4, 6)]),
    "argmax_argmin": (lambda a: (mg.argmax(a, 1) + mg.argmin(a, 0).sum()).double(), [f(4, 6)]),
    "norms": (lambda a: mg.norm(a) + mg.norm(a, 1, dim=1).sum() + mg.norm(a, float("inf")), [f(3, 4)]),
    "cumsum_cumprod": (lambda a: mg.cumsum(a, 1) + mg.cumprod(a, 1), [pos(3, 4)]),
    "all_any_count": (lambda m: (mg.all(m, 1).double() + mg.any(m, 1).double() + mg.count_nonzero(m, 1).double()),
                      [mask(3, 6)]),
    # shape / manipulation
    "reshape_permute": (lambda a: a.reshape(6, 4).T.permute(1, 0).reshape(2, 12) * 2, [f(2, 3, 4)]),
    "getitem_basic": (lambda a: a[1:, ::2] * 3 + a[0, None, :2].sum(), [f(4, 5)]),
    "getitem_adv": (lambda a, i: a[i] + a[i, 1:2], [f(5, 3), ints(5, 7)]),
    "getitem_mask": (lambda a, m: a[m].sum() + a * 0, [f(4, 3), mask(4, 3)]),
    "cat_stack_split": (lambda a, b: mg.cat([a, b], 1) + mg.stack([a, b], 0).sum(0).repeat(1, 2)
                        + mg.cat(mg.split(mg.cat([a, b], 1), 2, 1), 1), [f(3, 2), f(3, 2)]),
    "squeeze_flip_roll": (lambda a: mg.flip(a, 0).unsqueeze(0).squeeze(0) + mg.roll(a, 1, 1)
                          + a.flatten().reshape(3, 4), [f(3, 4)]),
    "tril_triu_repeat": (lambda a: mg.tril(a) + mg.triu(a, 1) + mg.repeat_interleave(a, 2, 0)[::2], [f(4, 4)]),
    "repeat_interleave_counts": (lambda a, c: a[mg.repeat_interleave(c % 3)].sum(0) * a, [f(4, 3), ints(5, 4)]),
    "array_operands": (lambda a: a + a.array + a.array * a + mg.maximum(a, a.array) + mg.where(a > 0, a.array, a),
                       [f(3, 4)]),
    "pad_modes": (lambda a: F.pad(a, (1, 2)).sum() + F.pad(a, (1, 1), mode="reflect").sum()
                  + F.pad(a, (2, 1), mode="replicate").sum() + F.pad(a, (1, 1), mode="circular").sum(), [f(2, 3, 5)]),
    "narrow_select_chunk": (lambda a: a.narrow(1, 1, 2).sum() + a.select(0, 1) + mg.chunk(a, 2, 1)[1].sum()
                            + mg.tensor_split(a, 3, 1)[0].sum(), [f(3, 3)]),
    "setitem": (lambda a: _setitem(a), [f(4, 3)]),
    # indexing
    "gather_scatter": (lambda a, i: mg.gather(a, 1, i) + mg.scatter_add(a * 0, 1, i, a)[:, :2].sum()
                       + mg.scatter(a, 1, i, 0.5)[:, :2], [f(4, 5), ints(5, 4, 2)]),
    "index_select_add": (lambda a, i: mg.index_select(a, 0, i) + mg.index_add(a, 0, i[:4] % 4, a).sum(), [f(4, 3),
                                                                                                         ints(4, 6)]),
    "masked": (lambda a, m: mg.masked_fill(a, m, 2.0) + mg.masked_select(a, m).sum(), [f(3, 4), mask(3, 4)]),
    "embedding": (lambda w, i: F.embedding(i, w) * 2, [f(7, 3), ints(7, 2, 5)]),
    "one_hot": (lambda i: F.one_hot(i, 6).double() * 1.5, [ints(6, 5)]),
    # linear algebra
    "matmul_batched": (lambda a, b: a @ b, [f(2, 3, 4), f(4, 5)]),
    "linear_bilinear": (lambda x, w, b, w2: F.linear(x, w, b) + F.bilinear(x, x, w2).sum(), [f(4, 3), f(5, 3), f(5),
                                                                                             f(2, 3, 3)]),
    "mm_bmm_mv": (lambda a, b, c: mg.mm(a, b).sum() + mg.bmm(c, c.transpose(1, 2)).sum() + mg.mv(a, b[:, 0]),
                  [f(3, 4), f(4, 2), f(2, 3, 3)]),
    "einsum_tensordot": (lambda a, b: mg.einsum("ij,jk->ik", a, b) + mg.tensordot(a, b, 1) + mg.outer(a[:, 0], b[0]),
                         [f(3, 4), f(4, 2)]),
    "addmm_baddbmm": (lambda c, a, b: mg.addmm(c, a, b, beta=0.5, alpha=2.0), [f(3, 2), f(3, 4), f(4, 2)]),
    # normalisation and dropout
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (6,), w, b), [f(3, 4, 6), f(6), f(6)]),
    "layer_norm_noaffine": (lambda x: F.layer_norm(x, (4, 6)), [f(2, 4, 6)]),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [f(4, 3, 5), f(3), f(3)]),
    "group_instance_rms": (lambda x: F.group_norm(x, 2) + F.instance_norm(x) + F.rms_norm(x, (5,)), [f(2, 4, 5)]),
    "normalize": (lambda x: F.normalize(x, dim=1), [f(3, 4)]),
    # convolution and pooling
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [f(2, 3, 6, 5), f(4, 3, 3, 3), f(4)]),
    "conv2d_groups_dilation": (lambda x, w: F.conv2d(x, w, groups=2, dilation=2, padding=2), [f(1, 4, 6, 6),
                                                                                              f(4, 2, 3, 3)]),
    "conv1d": (lambda x, w: F.conv1d(x, w, padding=1), [f(2, 3, 7), f(2, 3, 3)]),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
                         [f(1, 2, 4, 4), f(2, 3, 3, 3)]),
    "max_pool": (lambda x: F.max_pool2d(x, 2) .sum() + F.max_pool2d(x, 3, 2, 1) + F.max_pool1d(x[0], 2).sum(),
                 [f(2, 2, 6, 6)]),
    "avg_pool": (lambda x: F.avg_pool2d(x, 3, 2, 1) + F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                 [f(2, 2, 6, 6)]),
    "adaptive_pool": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)) + F.adaptive_max_pool2d(x, (2, 3)), [f(2, 2, 5, 7)]),
    "interpolate": (lambda x: F.interpolate(x, scale_factor=2, mode="nearest").sum()
                    + F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=False).sum(), [f(1, 2, 3, 4)]),
    # attention
    "sdpa": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v), [f(2, 2, 5, 8), f(2, 2, 6, 8), f(2, 2, 6, 8)]),
    "sdpa_causal": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                    [f(1, 3, 7, 4), f(1, 3, 7, 4), f(1, 3, 7, 4)]),
    "sdpa_bool_mask": (lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
                       [f(2, 4, 3), f(2, 5, 3), f(2, 5, 3), mask(4, 5)]),
    # losses
    "mse_l1_huber": (lambda a, b: F.mse_loss(a, b) + F.l1_loss(a, b) + F.smooth_l1_loss(a, b) + F.huber_loss(a, b),
                     [f(3, 4), f(3, 4)]),
    "bce": (lambda p, y, x: F.binary_cross_entropy(p, y) + F.binary_cross_entropy_with_logits(x, y),
            [prob(4, 3), prob(4, 3), f(4, 3)]),
    "cross_entropy": (lambda x, t: F.cross_entropy(x, t) + F.cross_entropy(x, t, label_smoothing=0.1, reduction="sum"),
                      [f(6, 5), ints(5, 6)]),
    "cross_entropy_weight_ignore": (lambda x, t, w: F.cross_entropy(x, t * 0 + mg.where(t > 3, -100, t), weight=w),
                                    [f(8, 5), ints(5, 8), pos(5)]),
    "nll_kl": (lambda x, t, y: F.nll_loss(F.log_softmax(x, 1), t)
               + F.kl_div(F.log_softmax(x, 1), y, reduction="batchmean"), [f(5, 4), ints(4, 5), prob(5, 4)]),
    "gaussian_nll_cosine": (lambda a, b, v: F.gaussian_nll_loss(a, b, v) + F.cosine_similarity(a, b).sum(),
                            [f(4, 3), f(4, 3), pos(4, 3)]),
}


def _setitem(a):
    b = a * 1.0
    b[1:3] = a[:2] * 2
    b[0, 0] = 5.0
    return b


def _run(fn, specs, arrays, device):
    ts = []
    for spec, arr in zip(specs, arrays):
        t = mg.tensor(arr, device=device)
        if spec[0] in ("f", "pos", "unit", "prob"):
            t.requires_grad_(True)
        ts.append(t)
    out = fn(*ts)
    w = mg.tensor(np.random.default_rng(7).standard_normal(out.shape).astype(out.dtype), device=device)
    leaves = [t for t in ts if t.requires_grad]
    grads = []
    if out.requires_grad and leaves:
        grads = mg.grad((out * w).sum(), leaves, allow_unused=True)
    return out, grads


def _compare(name, dtype, tol):
    fn, specs = CASES[name]
    rng = np.random.default_rng(abs(hash(name)) % 2 ** 32)
    arrays = [_make(s, rng, dtype) for s in specs]
    out_c, g_c = _run(fn, specs, arrays, "cpu")
    out_g, g_g = _run(fn, specs, arrays, "cuda")
    assert out_g.device.type == "cuda", f"{name}: result left the GPU ({out_g.device})"
    assert out_g.shape == out_c.shape and out_g.dtype == out_c.dtype
    np.testing.assert_allclose(out_g.detach().cpu().numpy(), out_c.detach().numpy(), rtol=tol, atol=tol,
                               err_msg=f"{name}: forward")
    assert len(g_c) == len(g_g)
    for i, (a, b) in enumerate(zip(g_c, g_g)):
        if a is None:
            assert b is None or not np.any(b.cpu().numpy())
            continue
        assert b.device.type == "cuda", f"{name}: gradient {i} left the GPU"
        np.testing.assert_allclose(b.cpu().numpy(), a.numpy(), rtol=tol, atol=tol, err_msg=f"{name}: grad {i}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_cpu_float64(gpu, name):
    _maybe_xfail(name)
    _compare(name, np.float64, 1e-9)


KERNEL_OPS = ["softmax_last", "layer_norm", "layer_norm_noaffine", "sdpa", "sdpa_causal", "cross_entropy",
              "cross_entropy_weight_ignore", "activations_2", "matmul_batched", "conv2d"]


@pytest.mark.parametrize("name", KERNEL_OPS)
def test_op_matches_cpu_float32(gpu, name):
    _maybe_xfail(name)
    _compare(name, np.float32, 2e-5)


def test_the_emulation_catches_host_arrays_in_device_ops(gpu):
    """The oracle itself: mixing a NumPy array into a device op raises, as CuPy does."""
    cp = gpu
    a = cp.ones(3)
    with pytest.raises(TypeError):
        a + np.ones(3)
    with pytest.raises(TypeError):
        np.asarray(a)
    assert isinstance(a.sum(), cp.ndarray)
