"""Every row of tests/op_table.py, on every backend.

Backends:

- ``reference``: every op on its NumPy reference (``dispatch.use_reference()``);
- ``numba``: the Numba kernels forced on wherever they apply (``dispatch.use_kernels()``). Generated for the
  rows whose ``kernels`` column is non-empty: :func:`test_kernels_column` proves that the other rows ask
  for no kernel, so on them the numba backend runs exactly the reference code;
- ``emulated``: tensors on ``device="cuda"`` under ``tests/cupy_emulator.py``'s ``emulated_cupy()`` (CuPy
  code paths and the CUDA kernels run on the CPU), for the rows marked ``gpu``;
- ``cuda``: the same on a real GPU (skipped without CuPy and a device).

Checks per row:

- ``test_matches_torch``: forward and vector-Jacobian products equal PyTorch's
  (``minigen.testing.compare_with_torch``; skipped without torch);
- ``test_gradcheck``: autograd vs float64 central differences (on ``numba``: the fused first-order
  kernels, the ops' ``fast_backward``);
- ``test_gradgradcheck``: second derivatives, for the rows marked ``second_order``;
- ``test_kernel_path_equals_reference``: with kernels forced on, forward and first-order gradient equal
  the reference's, in float32 and float64, the create_graph formula gives the same gradient as the fused
  one, and ``dispatch.stats()`` shows every kernel of the row ran;
- ``test_kernels_column``: with kernels forced on, the row asks for no kernel outside its column;
- ``test_device_matches_cpu``: on the GPU backends, forward and gradients equal the CPU's.

Examples per row: a few in the default ``ci`` profile (the module runs in about a minute on 2 cores),
500 under ``MINIGEN_HYPOTHESIS_PROFILE=intense``.
"""
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import minigen as mg
from minigen.kernels import dispatch
from minigen.testing import compare_with_torch, gradcheck, gradgradcheck, to_numpy
from tests.op_table import ALIASES, ROWS, Op

INTENSE = os.environ.get("MINIGEN_HYPOTHESIS_PROFILE", "ci") not in ("ci", "dev")


def examples(n):
    """n examples per row in the ci profile; the profile's own count (500 for intense) otherwise."""
    return settings(max_examples=settings.default.max_examples if INTENSE else n)


requires_numba = pytest.mark.skipif(not dispatch.available(), reason="Numba is not installed (no CPU kernels)")


def _cpu_params(rows):
    out = []
    for r in rows:
        out.append(pytest.param("reference", r, id=f"reference-{r.name}"))
        if r.kernels or r.may_use:
            out.append(pytest.param("numba", r, id=f"numba-{r.name}", marks=requires_numba))
    return out


def _mode(backend):
    return dispatch.use_reference() if backend == "reference" else dispatch.use_kernels()


def _rows(pred):
    return [r for r in ROWS if pred(r)]


def _tensors(args):
    return [a for a in args if isinstance(a, mg.Tensor)]


def _outputs(res):
    if isinstance(res, mg.Tensor):
        return [res]
    out = []
    for r in res if isinstance(res, (tuple, list)) else ():
        out += _outputs(r)
    return out


def _run(row: Op, args, seed=0, create_graph=False):
    """Outputs of the row and the gradients of <v, outputs> w.r.t. every input requiring grad (as arrays)."""
    outs = _outputs(row.call(*args))
    diff = [o for o in outs if o.requires_grad and o.dtype.kind == "f"]
    wrt = [a for a in _tensors(args) if a.requires_grad]
    grads = []
    if diff and wrt:
        rng = np.random.default_rng(seed)
        vs = [mg.tensor(rng.standard_normal(o.shape).astype(to_numpy(o).dtype), device=o.device) for o in diff]
        gs = mg.grad(diff, wrt, grad_outputs=vs, allow_unused=True, create_graph=create_graph)
        grads = [None if g is None else to_numpy(g) for g in gs]
    return [to_numpy(o) for o in outs], grads


def _assert_same(a, b, rtol, atol, what):
    (oa, ga), (ob, gb) = a, b
    assert len(oa) == len(ob)
    for k, (x, y) in enumerate(zip(oa, ob)):
        assert x.shape == y.shape and x.dtype == y.dtype, (what, k, x.shape, y.shape, x.dtype, y.dtype)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"{what}: output {k}")
    for k, (x, y) in enumerate(zip(ga, gb)):
        if x is None or y is None:
            assert x is None and y is None or not np.any(x if x is not None else y), (what, k)
            continue
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"{what}: gradient {k}")


def _cast(args, dtype):
    return tuple(mg.tensor(a.array.astype(dtype), requires_grad=a.requires_grad)
                 if isinstance(a, mg.Tensor) and a.dtype.kind == "f" else a for a in args)


# ------------------------------------------------------------------ the table itself
def test_table_rows_are_well_formed():
    names = [r.name for r in ROWS]
    assert len(set(names)) == len(names)
    known = set(dispatch.kernel_names()) if dispatch.available() else None
    for r in ROWS:
        assert callable(r.fn), r.name
        assert not (r.second_order and not r.differentiable), r.name
        if known is not None:  # (may_use may name kernels of a family not built here)
            assert set(r.kernels) <= known, (r.name, set(r.kernels) - known)
            assert not r.may_use or set(r.may_use) & known, r.name


def test_aliases_are_the_same_function():
    import inspect

    for alias, name in ALIASES.items():
        assert inspect.unwrap(getattr(mg, alias)) is inspect.unwrap(getattr(mg, name)), alias


# ------------------------------------------------------------------ PyTorch
@pytest.mark.parametrize("backend,row", _cpu_params(_rows(lambda r: r.torch is not None)))
@examples(4)
@given(data=st.data())
def test_matches_torch(backend, row, data):
    pytest.importorskip("torch")
    args = data.draw(row.inputs)
    with _mode(backend):
        compare_with_torch(row.call, row.torch_fn(), args, rtol=row.rtol, atol=row.atol,
                           check_dtype=row.check_dtype, check_grad=row.differentiable)


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("backend,row", _cpu_params(_rows(lambda r: r.differentiable and r.gradcheck)))
@examples(4)
@given(data=st.data())
def test_gradcheck(backend, row, data):
    args = data.draw(row.inputs)
    with _mode(backend):
        assert gradcheck(row.call, args)


@pytest.mark.parametrize("backend,row", _cpu_params(_rows(lambda r: r.second_order)))
@examples(2)
@given(data=st.data())
def test_gradgradcheck(backend, row, data):
    args = data.draw(row.inputs)
    with _mode(backend):
        assert gradgradcheck(row.call, args)


# ------------------------------------------------------------------ kernels
TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-10, atol=1e-12)}


@requires_numba
@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in ROWS if r.kernels or r.may_use])
@examples(4)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_kernel_path_equals_reference(row, data, dtype):
    args = _cast(data.draw(row.inputs), dtype)
    with dispatch.use_kernels():
        dispatch.reset_stats()
        kern = _run(row, args)
        used = dispatch.stats()
        formula = _run(row, args, create_graph=True) if row.differentiable else None
    with dispatch.use_reference():
        ref = _run(row, args)
    assert set(row.kernels) <= set(used) <= set(row.kernels + row.may_use), \
        f"{row.name}: declared kernels {row.kernels} (may use {row.may_use}), ran {used}"
    assume(used)  # a may_use row whose kernels did not apply to this draw: nothing to compare
    _assert_same(kern, ref, what=f"{row.name} kernel vs reference", **TOL[dtype])
    if formula is not None:  # the fused first-order gradient (fast_backward) == the backward formula
        _assert_same(kern, formula, what=f"{row.name} fast_backward vs backward", **TOL[dtype])


@requires_numba
@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in ROWS])
@examples(1)
@given(data=st.data())
def test_kernels_column(row, data):
    """The kernels column is exactly what can run: no kernel outside it is handed out."""
    args = data.draw(row.inputs)
    with dispatch.use_kernels():
        dispatch.reset_stats()
        _run(row, args)
        used = dispatch.stats()
    assert set(used) <= set(row.kernels + row.may_use), \
        f"{row.name}: ran kernels {sorted(used)} not in its column {row.kernels + row.may_use}"


# ------------------------------------------------------------------ GPU backends (emulated CuPy, real CuPy)
def _gpu_backend(name):
    from cupy_emulator import compiler_available, real_gpu_available

    if name == "emulated" and not compiler_available():
        pytest.skip("no C++ compiler for the CuPy emulation")
    if name == "cuda" and not real_gpu_available():
        pytest.skip("no CUDA GPU (CuPy + an NVIDIA device)")


def _to_device(args):
    return tuple(mg.tensor(to_numpy(a), device="cuda", requires_grad=a.requires_grad)
                 if isinstance(a, mg.Tensor) else a for a in args)


@pytest.mark.parametrize("backend", ["emulated", "cuda"])
@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in ROWS if r.gpu])
@examples(2)
@given(data=st.data())
def test_device_matches_cpu(backend, row, data):
    _gpu_backend(backend)
    from cupy_emulator import on_backend

    args = data.draw(row.inputs)
    cpu = _run(row, args)
    with on_backend(backend):
        dev = _run(row, _to_device(args))
    _assert_same(dev, cpu, rtol=1e-9, atol=1e-11, what=f"{row.name} on {backend}")


def _gpu_kernel_rows():
    try:
        names = set(dispatch.kernel_names("cupy"))
    except Exception:  # noqa: BLE001  (collection must not fail where the GPU kernel modules cannot load)
        return []
    return [r for r in ROWS if r.gpu and names & set(r.kernels + r.may_use)]


@pytest.mark.parametrize("backend", ["emulated", "cuda"])
@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in _gpu_kernel_rows()])
@examples(2)
@given(data=st.data())
def test_device_kernel_path_equals_reference(backend, row, data):
    """float32 on the GPU backend: the CUDA kernels of the row ran (``gpu:<name>`` in dispatch.stats())
    and give the CPU reference's forward and gradients."""
    _gpu_backend(backend)
    from cupy_emulator import on_backend

    args = _cast(data.draw(row.inputs), np.float32)
    with dispatch.use_reference():
        ref = _run(row, args)
        exact = _run(row, _cast(args, np.float64))  # the same float32 inputs, computed in float64
    with on_backend(backend), dispatch.use_kernels():  # (GPU kernels have no size threshold; this overrides
        dispatch.reset_stats()                         # MINIGEN_KERNELS=reference, which turns them off too)
        dev = _run(row, _to_device(args))
        used = {k[4:] for k in dispatch.stats() if k.startswith("gpu:")}
    assert used <= set(row.kernels + row.may_use), (row.name, used)
    assume(used)
    _assert_as_accurate(dev, ref, exact, what=f"{row.name} GPU kernels on {backend}", **TOL[np.float32])


def _assert_as_accurate(dev, ref, exact, rtol, atol, what):
    """float32 kernel results ``dev`` against the float32 reference ``ref``, judged by the float64 answer
    ``exact``: each element is within (rtol, atol) of ``ref``, or no farther from ``exact`` than 4x the
    reference's own float32 error. (Ill-conditioned inputs -- a near-constant row under a norm, where
    rstd = 1/sqrt(eps) amplifies rounding -- put two float32 computations far apart while both are as
    accurate as float32 allows; the float64 answer says which of them, if either, is wrong.)"""
    (oa, ga), (ob, gb), (oe, ge) = dev, ref, exact
    assert len(oa) == len(ob) == len(oe)
    pairs = [(f"output {k}", x, y, z) for k, (x, y, z) in enumerate(zip(oa, ob, oe))]
    for k, (x, y, z) in enumerate(zip(ga, gb, ge)):
        if x is None or y is None:
            assert x is None and y is None or not np.any(x if x is not None else y), (what, k)
            continue
        pairs.append((f"gradient {k}", x, y, z))
    for name, x, y, z in pairs:
        assert x.shape == y.shape and x.dtype == y.dtype, (what, name, x.shape, y.shape, x.dtype, y.dtype)
        x64, y64, z64 = (np.asarray(v, dtype=np.float64) for v in (x, y, z))
        close = np.isclose(x64, y64, rtol=rtol, atol=atol, equal_nan=True)
        as_good = np.abs(x64 - z64) <= 4 * np.abs(y64 - z64)
        bad = ~(close | as_good)
        assert not bad.any(), (f"{what}: {name}: {int(bad.sum())} element(s) neither within rtol={rtol}, "
                               f"atol={atol} of the float32 reference nor as accurate as it against float64: "
                               f"kernel {x64[bad][:4]}, reference {y64[bad][:4]}, float64 {z64[bad][:4]}")


# ================================================================== kernel-path cases a row cannot express
# (moved from the former tests/test_kernels_wiring.py: layouts, caches, geometries, special values, long
# sequences, strided views, running statistics, modules and optimizers; its table-driven property tests
# are the rows above)
F = mg.nn.functional


def run_both(fn, arrays, requires_grad=None):
    """fn(*tensors) -> Tensor, run with the kernels forced on and on the reference: ((out, grads) kernel path,
    (out, grads) reference path, the kernel path's dispatch.stats())."""
    res, stats = [], None
    for mode in ("numba", "reference"):
        with dispatch.set_mode(mode):
            dispatch.reset_stats()
            ts = [mg.tensor(a, requires_grad=(requires_grad is None or requires_grad[i])) for i, a in enumerate(arrays)]
            out = fn(*ts)
            g = np.random.default_rng(7).standard_normal(out.shape).astype(out.dtype)
            out.backward(mg.tensor(g))
            res.append((out.array.copy(), [None if t.grad is None else t.grad.array.copy() for t in ts]))
            if mode == "numba":
                stats = dispatch.stats()
    return res[0], res[1], stats


def assert_same(k, r, rtol, atol):
    np.testing.assert_allclose(k[0], r[0], rtol=rtol, atol=atol)
    for gk, gr in zip(k[1], r[1]):
        assert (gk is None) == (gr is None)
        if gk is not None:
            np.testing.assert_allclose(gk, gr, rtol=rtol, atol=atol)


def conv_layout(which):
    """Force the im2col conv kernels' column layout: 'auto' (their size rule), 'batch' (batch-innermost when
    N >= 8, whatever the sizes) or 'nchw'."""
    from unittest import mock

    from minigen.kernels import cpu_conv

    rules = {"auto": cpu_conv._batch_inner, "batch": lambda xs, ws, o: xs[0] >= 8, "nchw": lambda xs, ws, o: False}
    return mock.patch.object(cpu_conv, "_batch_inner", rules[which])


CONV_FAMILY = {"conv2d_forward_direct", "conv2d_forward_cols", "conv2d_forward", "conv2d_backward_input",
               "conv2d_backward_input_direct"}


@requires_numba
@pytest.mark.parametrize("layout", ["auto", "batch", "nchw"])
@pytest.mark.parametrize("N,C,O", [(8, 2, 4), (9, 4, 16), (2, 4, 16)])
def test_conv_layouts_kernel_path_equals_reference(layout, N, C, O):
    """Both column layouts of the im2col kernels (batch-innermost at N >= 8) and the direct kernels (few
    output channels), conv2d and conv_transpose2d (whose output padding crops), first order and gradcheck."""
    rng = np.random.default_rng(N * 100 + O)
    x = rng.standard_normal((N, C, 5, 4))
    w, wt = rng.standard_normal((O, C // 2, 3, 2)), rng.standard_normal((C, O // 2 or 1, 3, 2))
    with conv_layout(layout):
        kern, ref, stats = run_both(lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
                                    [x, w])
        assert_same(kern, ref, **TOL[np.float64])
        assert set(stats) & CONV_FAMILY, stats
        kern, ref, stats = run_both(lambda x, w: F.conv_transpose2d(x, w, stride=3, padding=1, output_padding=2),
                                    [x, wt])
        assert_same(kern, ref, **TOL[np.float64])
        assert set(stats) & CONV_FAMILY, stats
        if N == 8:
            xs, ws = mg.tensor(x[:, :, :3, :3], requires_grad=True), mg.tensor(w[:2], requires_grad=True)
            with dispatch.use_kernels():
                assert gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=2), [xs, ws])


@requires_numba
def test_conv1d_and_dcgan_shapes_kernel_path_equals_reference():
    rng = np.random.default_rng(0)
    x1, w1 = rng.standard_normal((2, 3, 11)), rng.standard_normal((4, 3, 3))
    assert_same(*run_both(lambda x, w: F.conv1d(x, w, stride=2, padding=1), [x1, w1])[:2], **TOL[np.float64])
    # DCGAN D conv2 geometry (5x5, stride 2, padding 2) and its generator's transposed conv, float32
    x = rng.standard_normal((8, 16, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((32, 16, 5, 5)) * 0.05).astype(np.float32)
    assert_same(*run_both(lambda x, w: F.conv2d(x, w, stride=2, padding=2), [x, w])[:2], **TOL[np.float32])
    z = rng.standard_normal((8, 32, 7, 7)).astype(np.float32)
    wt = (rng.standard_normal((32, 16, 5, 5)) * 0.05).astype(np.float32)
    kern, ref, _ = run_both(lambda z, w: F.conv_transpose2d(z, w, stride=2, padding=2, output_padding=1), [z, wt])
    assert kern[0].shape == (8, 16, 14, 14)
    assert_same(kern, ref, **TOL[np.float32])


@requires_numba
def test_conv_cols_cache_is_bounded(monkeypatch):
    from minigen.kernels import cpu_conv

    monkeypatch.setattr(cpu_conv, "CACHE_COLS_MAX_BYTES", 0)  # too big to keep: backward rebuilds the columns
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((16, 3, 3, 3))]
    kern, ref, _ = run_both(lambda x, w: F.conv2d(x, w, padding=1), arrays)
    assert_same(kern, ref, **TOL[np.float64])


def test_reference_mode_covers_conv_and_pool():
    x = mg.tensor(np.random.default_rng(3).standard_normal((1, 2, 6, 6)), requires_grad=True)
    w = mg.tensor(np.ones((1, 2, 3, 3)), requires_grad=True)
    with dispatch.use_reference():
        dispatch.reset_stats()
        F.conv2d(x, w, padding=1).sum().backward()
        F.max_pool2d(x, 2).sum().backward()
        F.avg_pool2d(x, 2).sum().backward()
        assert dispatch.stats() == {}


@requires_numba
def test_relu_leaky_kernel_special_values():
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 2.0, -3.0], np.float32)
    with dispatch.use_kernels():
        dispatch.reset_stats()
        r, lk = F.relu(mg.tensor(x)).array, F.leaky_relu(mg.tensor(x), 0.5).array
        assert dispatch.stats().get("masked_linear_forward") == 2
    with dispatch.use_reference():
        np.testing.assert_array_equal(r, F.relu(mg.tensor(x)).array)
        np.testing.assert_array_equal(lk, F.leaky_relu(mg.tensor(x), 0.5).array)
    np.testing.assert_array_equal(lk[1:], [np.inf, -np.inf, -0.0, 0.0, 2.0, -1.5])  # hand values
    assert np.isnan(lk[0])


@requires_numba
@pytest.mark.parametrize("shape,affine", [((4, 3), "both"), ((5, 6, 4), "none"), ((3, 2, 4, 5), "weight"),
                                          ((2, 70), "both")])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_batch_norm_running_stats_kernel_path_equals_reference(shape, affine, dt):
    """The running statistics are updated alike on the kernel path and the reference."""
    rng = np.random.default_rng(shape[1])
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dt)
    arrays = [x] + ([rng.standard_normal(C).astype(dt)] if affine != "none" else []) + \
        ([rng.standard_normal(C).astype(dt)] if affine == "both" else [])
    running = []

    def fn(x, w=None, b=None):
        rm, rv = mg.zeros(C, dtype=x.dtype), mg.ones(C, dtype=x.dtype)
        y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3)
        running.append((rm.array.copy(), rv.array.copy()))
        return y

    kern, ref, stats = run_both(fn, arrays)
    assert_same(kern, ref, **TOL[dt])
    for a, b in zip(*running):
        np.testing.assert_allclose(a, b, **TOL[dt])
    assert stats.get("batch_norm_forward") == 1 and stats.get("batch_norm_backward") == 1


@requires_numba
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gelu_silu_kernel_path_equals_reference_incl_tails(dt):
    import math

    x = np.concatenate([np.linspace(-15, 15, 3001), np.random.default_rng(5).standard_normal(1000)]).astype(dt)
    eps = np.finfo(dt).eps
    for fn, name, exact_erf in ((F.gelu, "gelu", True), (lambda t: F.gelu(t, approximate="tanh"), "gelu", False),
                                (F.silu, "silu", False)):
        kern, ref, stats = run_both(fn, [x])
        # the references lose relative accuracy where 1 + erf (or 1 + tanh) cancels, so: absolute agreement
        # at the scale of the values (the kernels' normal CDF is a fit with relative error ~1e-14, which
        # shows in float64 only: measured up to 4 eps there)
        tol = (32 if dt == np.float64 and exact_erf else 8) * eps * np.maximum(np.abs(x), 1.0)
        assert np.all(np.abs(kern[0] - ref[0]) <= tol)
        assert np.all(np.abs(kern[1][0] - ref[1][0]) <= tol)
        assert (stats.get("gelu_forward_grad") == 1 if exact_erf else
                stats.get(f"{name}_forward") == 1 and stats.get(f"{name}_backward") == 1)
    # ... and the exact GELU kernel keeps relative accuracy in the far negative tail (vs math.erfc)
    y = run_both(F.gelu, [x])[0][0]
    exact = np.array([0.5 * float(v) * math.erfc(-float(v) / math.sqrt(2)) for v in x])
    ok = np.abs(exact) > np.finfo(dt).tiny
    np.testing.assert_allclose(y[ok], exact[ok], rtol=max(4 * eps, 5e-13))


@requires_numba
def test_cross_entropy_kernel_edge_cases():
    # every row ignored: 'mean' is NaN with a zero gradient, on both paths
    x = np.random.default_rng(6).standard_normal((3, 4))
    t = mg.tensor(np.array([-100, -100, -100]))
    kern, ref, stats = run_both(lambda x: F.cross_entropy(x, t), [x])
    assert np.isnan(kern[0]) and np.isnan(ref[0]) and stats.get("cross_entropy") == 1
    np.testing.assert_array_equal(kern[1][0], ref[1][0])
    assert not kern[1][0].any()
    # one class (C = 1) and a batch of 9
    x1 = np.random.default_rng(7).standard_normal((9, 1))
    assert_same(*run_both(lambda x: F.cross_entropy(x, mg.tensor(np.zeros(9, np.int64))), [x1])[:2], **TOL[np.float64])
    # hand case: uniform logits over 4 classes, target 0: loss = log 4, dx = (1/4 - [c == 0]) / 1
    x1 = mg.tensor(np.zeros((1, 4)), requires_grad=True)
    with dispatch.use_kernels():
        loss = F.cross_entropy(x1, mg.tensor(np.array([0])))
        loss.backward()
    assert abs(loss.item() - np.log(4)) < 1e-15
    np.testing.assert_allclose(x1.grad.array, [[-0.75, 0.25, 0.25, 0.25]], rtol=1e-15)


@requires_numba
@pytest.mark.parametrize("Tq,Tk,causal", [(70, 65, False), (64, 70, True), (1, 70, True), (33, 1, False)])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_sdpa_long_sequences_kernel_path_equals_reference(Tq, Tk, causal, dt):
    """Sequences past the kernels' block sizes (the rows use short ones)."""
    rng = np.random.default_rng(Tq + Tk)
    arrays = [rng.standard_normal((2, T, 5)).astype(dt) for T in (Tq, Tk, Tk)]
    kern, ref, stats = run_both(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal), arrays)
    assert_same(kern, ref, **(dict(rtol=1e-4, atol=1e-5) if dt == np.float32 else TOL[dt]))
    assert stats.get("sdpa_forward") == 1 and stats.get("sdpa_backward") == 1


@requires_numba
def test_sdpa_kernel_on_strided_views():
    """q, k, v sliced out of one (B, T, 3, H, D) projection (as the GPT does), a flipped one, a broadcast one."""
    rng = np.random.default_rng(12)
    B, T, H, D = 2, 9, 3, 4
    qkv = rng.standard_normal((B, T, 3, H, D))

    def fn(a):
        t = a.permute(2, 0, 3, 1, 4)  # (3, B, H, T, D) views
        y = F.scaled_dot_product_attention(t[0], t[1], t[2], is_causal=True)
        return y.permute(0, 2, 1, 3).reshape(B * T, H * D)  # the output's memory is (B, T, H, D)

    kern, ref, stats = run_both(fn, [qkv])
    assert_same(kern, ref, **TOL[np.float64])
    assert stats.get("sdpa_forward") == 1
    q = rng.standard_normal((B, H, T, D))
    kv = rng.standard_normal((B, 1, T, D))
    fn2 = lambda q, kv: F.scaled_dot_product_attention(  # noqa: E731  (flipped keys; values broadcast over heads)
        q, kv.flip(2).expand(B, H, T, D), kv.expand(B, H, T, D))
    kern, ref, _ = run_both(fn2, [q, kv])
    assert_same(kern, ref, **TOL[np.float64])


@requires_numba
@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("N,k,s,p,d,ceil", [(1, 2, 2, 0, 1, False), (9, 3, 2, 1, 1, True), (2, 2, 1, 1, 2, False)])
def test_max_pool_kernel_path_equals_reference_with_ties(ties, N, k, s, p, d, ceil):
    """Equal maxima: the first in window order wins on both paths (the rows draw distinct values)."""
    x = np.random.default_rng(N + k).standard_normal((N, 2, 7, 6))
    if ties:
        x = np.round(x)
    for fn in (lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode=ceil), lambda t: F.adaptive_max_pool2d(t, (2, 3))):
        kern, ref, stats = run_both(fn, [x])
        assert_same(kern, ref, **TOL[np.float64])
        assert stats.get("max_pool2d_backward") == 1


@requires_numba
@pytest.mark.parametrize("make", [
    lambda ps: mg.optim.Adam(ps, lr=1e-2, weight_decay=0.1, amsgrad=True),
    lambda ps: mg.optim.Adam(ps, lr=1e-2, maximize=True),
    lambda ps: mg.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    lambda ps: mg.optim.SGD(ps, lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: mg.optim.SGD(ps, lr=1e-2, momentum=0.9, dampening=0.3, maximize=True),
    lambda ps: mg.optim.SGD(ps, lr=1e-2)])
def test_optimizer_kernel_path_equals_reference(make):
    """The fused optimizer steps (adam_step, sgd_step) == the optimizers' reference updates."""
    rng = np.random.default_rng(9)
    init = [rng.standard_normal(s).astype(np.float32) for s in ((50, 100), (5000,), (7, 3))]
    grads = [[rng.standard_normal(a.shape).astype(np.float32) for a in init] for _ in range(4)]
    finals = []
    for mode in ("numba", "reference"):
        with dispatch.set_mode(mode):
            dispatch.reset_stats()
            ps = [mg.nn.Parameter(mg.tensor(a.copy())) for a in init]
            opt = make(ps)
            for gs in grads:
                for p, g in zip(ps, gs):
                    p.grad = mg.tensor(g)
                opt.step()
            finals.append([p.array.copy() for p in ps])
            if mode == "numba":
                assert sum(dispatch.stats().values()) == 4  # the fused step ran every time
    for a, b in zip(*finals):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@requires_numba
@pytest.mark.parametrize("layers,bidir,bias,batch_first,h0", [(1, False, True, False, True), (2, True, False, True, False),
                                                              (2, False, True, True, True)])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gru_module_kernel_path_equals_reference(layers, bidir, bias, batch_first, h0, dt):
    """nn.GRU (stacked, bidirectional, batch_first) on the fused sequence kernels == on the reference loop."""
    rng = np.random.default_rng(layers * 10 + bidir)
    B, T, I, H = 3, 5, 4, 5
    mg.manual_seed(1)
    gru = mg.nn.GRU(I, H, layers, bias=bias, batch_first=batch_first, bidirectional=bidir,
                    dtype=getattr(mg, dt.__name__))
    params = [p.array.copy() for p in gru.parameters()]
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dt)
    hx = rng.standard_normal((layers * (2 if bidir else 1), B, H)).astype(dt)
    results = []
    for mode in ("numba", "reference"):
        with dispatch.set_mode(mode):
            dispatch.reset_stats()
            for p, a in zip(gru.parameters(), params):
                p.array[...] = a
                p.grad = None
            xt = mg.tensor(x, requires_grad=True)
            ht = mg.tensor(hx, requires_grad=True) if h0 else None
            y, hn = gru(xt, ht)
            (y * mg.tensor(np.cos(np.arange(y.numel())).reshape(y.shape).astype(dt))).sum().add((hn * hn).sum()).backward()
            results.append([y.array, hn.array, xt.grad.array] + ([ht.grad.array] if h0 else [])
                           + [p.grad.array for p in gru.parameters()])
            if mode == "numba":
                assert dispatch.stats().get("gru_seq_backward", 0) == layers * (2 if bidir else 1)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, **(dict(rtol=1e-4, atol=1e-5) if dt == np.float32 else TOL[dt]))
