"""Engine behaviour: accumulation, retain_graph, freed graphs, mg.grad, higher order, long chains,
the version counter, grad modes, hooks, retain_grad, detach, anomaly mode, to_dot."""
import time

import numpy as np
import pytest
from hypothesis import given

import minigen as mg
from minigen.errors import AnomalyError, AutogradError, InplaceError, ShapeError
from minigen.testing import gradgradcheck
from minigen.testing.strategies import floats, tensors

from conftest import requires_torch


def t64(values, requires_grad=True):
    return mg.tensor(values, dtype=mg.float64, requires_grad=requires_grad)


def _line_of(marker):
    """Line number of the line of this file containing ``marker`` (for anomaly messages)."""
    with open(__file__) as f:
        for i, line in enumerate(f, start=1):
            if marker in line and "_line_of" not in line:
                return i
    raise LookupError(marker)


# ------------------------------------------------------------------ accumulation / retain_graph
def test_gradients_accumulate_across_backward_calls():
    x = t64([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0, 9.0])
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0, 3.0])


def test_shared_subexpression_gradient_sums_over_paths():
    x = t64([2.0])
    y = x * x            # used twice below
    z = y * y + y        # dz/dx = (2y + 1) * 2x = (8 + 1) * 4 = 36
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [36.0])


def test_retain_graph_allows_second_backward():
    x = t64([1.0, -2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1)
    np.testing.assert_allclose(g1, np.exp([1.0, -2.0]) * (1 + np.array([1.0, -2.0])))


def test_backward_through_freed_graph_raises():
    x = t64([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(AutogradError, match="second time"):
        y.backward()


def test_nonscalar_backward_needs_gradient():
    x = t64([1.0, 2.0])
    y = x * 2.0
    with pytest.raises(AutogradError, match=r"shape \(2,\)"):
        y.backward()
    y.backward(mg.tensor([1.0, 10.0], dtype=mg.float64))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])


def test_backward_gradient_of_wrong_shape_raises():
    x = t64([1.0, 2.0])
    with pytest.raises(ShapeError, match=r"\(3,\).*\(2,\)"):
        (x * 2.0).backward(mg.ones(3, dtype=mg.float64))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(AutogradError, match="does not require grad"):
        mg.ones(2).sum().backward()


# ------------------------------------------------------------------ mg.grad
def test_grad_returns_gradients_without_touching_dot_grad():
    x, y = t64([1.0, 2.0]), t64([3.0, 4.0])
    gx, gy = mg.grad((x * y).sum(), (x, y))
    np.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(gy.numpy(), [1.0, 2.0])
    assert x.grad is None and y.grad is None


def test_grad_allow_unused():
    x, unused = t64([1.0, 2.0]), t64([5.0])
    out = (x * x).sum()
    with pytest.raises(AutogradError, match="allow_unused"):
        mg.grad(out, (x, unused), retain_graph=True)
    gx, gu = mg.grad(out, (x, unused), allow_unused=True)
    assert gu is None
    np.testing.assert_allclose(gx.numpy(), [2.0, 4.0])


def test_grad_with_grad_outputs_for_nonscalar():
    x = t64([1.0, 2.0, 3.0])
    (g,) = mg.grad(x * x, x, grad_outputs=mg.tensor([1.0, 0.0, -1.0], dtype=mg.float64))
    np.testing.assert_allclose(g.numpy(), [2.0, 0.0, -6.0])


def test_higher_order_third_derivative_of_x4():
    x = t64([0.5, -1.5, 2.0])
    y = (x ** 4).sum()
    (g1,) = mg.grad(y, x, create_graph=True)
    (g2,) = mg.grad(g1.sum(), x, create_graph=True)
    (g3,) = mg.grad(g2.sum(), x)
    xv = np.array([0.5, -1.5, 2.0])
    np.testing.assert_allclose(g1.detach().numpy(), 4 * xv ** 3)
    np.testing.assert_allclose(g2.detach().numpy(), 12 * xv ** 2)
    np.testing.assert_allclose(g3.numpy(), 24 * xv)


def test_create_graph_backward_accumulates_differentiable_grad():
    x = t64([3.0])
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad            # 3x^2 with a graph
    (gg,) = mg.grad(x.grad.sum(), x)       # d(3x^2)/dx = 6x
    np.testing.assert_allclose(gg.numpy(), [18.0])


@given(tensors(shape=(3,), elements=floats(0.5, 2.0)))
def test_gradgradcheck_of_a_composite(x):
    assert gradgradcheck(lambda a: (a * a.exp() / (a + 3.0)).sum(), (x,))


def test_long_chain_of_ten_thousand_ops_no_recursion_limit():
    x = t64([1.0])
    y = x
    for _ in range(5000):
        y = y * 1.0001
        y = y + 0.0
    t0 = time.perf_counter()
    y.sum().backward()
    elapsed = time.perf_counter() - t0
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 5000], rtol=1e-9)
    assert elapsed < 10.0


# ------------------------------------------------------------------ in place and the version counter
def test_modifying_saved_tensor_in_place_raises_inplace_error():
    x = t64([1.0, 2.0])
    y = x * 1.0
    z = y * y           # saves y
    y.add_(1.0)         # bumps y's version
    with pytest.raises(InplaceError, match=r"MulBackward.*version 0 when saved, 1 now"):
        z.sum().backward()


def test_modifying_saved_output_in_place_raises():
    x = t64([1.0, 2.0])
    y = x.exp()         # exp saves its output
    y.mul_(2.0)
    with pytest.raises(InplaceError):
        y.sum().backward()


def test_in_place_on_view_bumps_shared_version():
    x = t64([[1.0, 2.0], [3.0, 4.0]])
    y = x * 1.0
    z = y * y           # saves y
    v = y[0]            # a view of y
    with mg.no_grad():
        v.mul_(0.0)
    assert y._version() == 1
    with pytest.raises(InplaceError):
        z.sum().backward()


def test_in_place_on_leaf_requiring_grad_raises():
    x = t64([1.0, 2.0])
    with pytest.raises(AutogradError, match="leaf"):
        x.add_(1.0)
    with pytest.raises(AutogradError, match="leaf"):
        x[0] = 5.0
    with mg.no_grad():  # allowed without recording (an optimiser step)
        x.sub_(1.0)
    np.testing.assert_allclose(x.detach().numpy(), [0.0, 1.0])


def test_in_place_op_gradients_follow_rebinding():
    x, w = t64([1.0, 2.0]), t64([3.0, -1.0])
    y = x * 2.0
    y += w               # y = 2x + w   (add needs no saved values)
    y -= x               # y = x + w
    z = y * y            # saves the rebound y
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (np.array([1.0, 2.0]) + [3.0, -1.0]))
    np.testing.assert_allclose(w.grad.numpy(), 2 * (np.array([1.0, 2.0]) + [3.0, -1.0]))


def test_in_place_mul_on_non_leaf_is_differentiable():
    x, w = t64([1.0, 2.0]), t64([3.0, -1.0])
    y = x * 2.0
    y.mul_(w)            # y = 2 x w
    y.mul_(3.0)          # y = 6 x w
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([3.0, -1.0]))
    np.testing.assert_allclose(w.grad.numpy(), 6 * np.array([1.0, 2.0]))


# ------------------------------------------------------------------ grad modes
def test_no_grad_enable_grad_set_grad_enabled():
    x = t64([1.0])
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        assert not (x * 2).requires_grad
        with mg.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert mg.is_grad_enabled()
    with mg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    mg.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        mg.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_grad_mode_decorators_and_exceptions_restore_state():
    x = t64([1.0])

    @mg.no_grad()
    def f(a):
        return a * 2

    @mg.set_grad_enabled(False)
    def g(a):
        return a * 2

    assert not f(x).requires_grad and not g(x).requires_grad
    assert mg.is_grad_enabled()
    with pytest.raises(ValueError):
        with mg.no_grad():
            raise ValueError("boom")
    assert mg.is_grad_enabled()


# ------------------------------------------------------------------ hooks / retain_grad / detach
def test_hooks_on_leaf_and_intermediate():
    x = t64([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    y = x * 3.0
    y.register_hook(lambda g: g * 10.0)    # replaces dL/dy
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])
    np.testing.assert_allclose(seen[0], [30.0, 30.0])


def test_register_hook_needs_requires_grad():
    with pytest.raises(AutogradError):
        mg.ones(2).register_hook(lambda g: g)


def test_retain_grad_on_non_leaf():
    x = t64([1.0, 2.0])
    y = x * x
    y.retain_grad()
    z = y * y   # dz/dy = 2y
    z.sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [2.0, 8.0])
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.array([1.0, 2.0]) ** 3)
    w = x * 1.0
    (w * 2).sum().backward()
    assert w.grad is None  # not retained


def test_detach_shares_storage_and_stops_gradient():
    x = t64([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.array, x.array)
    d.array[0] = 7.0
    assert x.detach().numpy()[0] == 7.0
    d.add_(1.0)
    assert x._version() == 1           # the version counter is shared too
    y = (x * x.detach()).sum()          # gradient only through the first factor
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [8.0, 3.0])


def test_numpy_of_requires_grad_tensor_raises():
    with pytest.raises(AutogradError, match="detach"):
        t64([1.0]).numpy()


# ------------------------------------------------------------------ anomaly mode / to_dot
def test_anomaly_forward_names_op_and_user_line():
    x = t64([1.0, 2.0])
    with mg.autograd.detect_anomaly():
        with pytest.raises(AnomalyError) as ei:
            with np.errstate(all="ignore"):
                mg.log(x - 2.0)  # ANOMALY-FWD
    msg = str(ei.value)
    assert "Log" in msg
    assert __file__.rstrip("c") in msg or "test_autograd.py" in msg
    assert f"line {_line_of('# ANOMALY-FWD')}" in msg
    assert not mg.autograd.is_anomaly_enabled()


def test_anomaly_off_lets_nan_through():
    x = t64([1.0])
    with np.errstate(all="ignore"):
        y = mg.log(x - 2.0)
    assert np.isnan(y.detach().numpy()).all()


def test_anomaly_backward_names_op_and_forward_line():
    x = t64([0.0, 1.0])
    with mg.autograd.detect_anomaly():
        y = x ** 0.5  # ANOMALY-BWD   (finite forward, infinite derivative at 0)
        with pytest.raises(AnomalyError) as ei:
            with np.errstate(all="ignore"):
                y.sum().backward()
    msg = str(ei.value)
    assert "backward" in msg and "Pow" in msg
    assert f"line {_line_of('# ANOMALY-BWD')}" in msg


def test_to_dot_contains_op_names_and_leaves():
    x = t64([1.0, 2.0])
    x.name = "x"
    y = (x.exp() * x).sum()
    dot = mg.autograd.to_dot(y)
    assert dot.startswith("digraph")
    for op in ("ExpBackward", "MulBackward", "SumBackward"):
        assert op in dot
    assert "x\\n(2,)" in dot
    assert dot.count("->") >= 4


# ------------------------------------------------------------------ torch oracle on a composite graph
@requires_torch
@given(tensors(shape=(2, 3), elements=floats(0.2, 2.0), noncontiguous=None))
def test_composite_gradients_match_torch(x):
    import torch

    def f(lib, a):
        b = lib.exp(a) * a
        c = b / (a + 1.0)
        return (c * c).sum() + lib.log(a).mean()

    (g,) = mg.grad(f(mg, x), x, create_graph=True)
    (gg,) = mg.grad(g.sum(), x)
    tx = torch.tensor(np.asarray(x.array), requires_grad=True)
    (tg,) = torch.autograd.grad(f(torch, tx), tx, create_graph=True)
    (tgg,) = torch.autograd.grad(tg.sum(), tx)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-10)
