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
    with on_backend(backend):
        dispatch.reset_stats()
        dev = _run(row, _to_device(args))
        used = {k[4:] for k in dispatch.stats() if k.startswith("gpu:")}
    assert used <= set(row.kernels + row.may_use), (row.name, used)
    assume(used)
    _assert_same(dev, ref, what=f"{row.name} GPU kernels on {backend}", **TOL[np.float32])
