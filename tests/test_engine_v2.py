"""Engine v2 semantics: what a gradient reads, views of non-leaves, .data, hooks, broadcasting in the engine."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen.autograd.function import Function
from minigen.errors import AutogradError, InplaceError, ShapeError
from minigen.testing import gradcheck

torch = None
try:  # optional oracle
    import torch  # noqa: F811
except Exception:  # pragma: no cover
    torch = None
requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (optional oracle)")


def test_zero_through_view_of_non_leaf_keeps_base_gradient():
    x = mg.ones(4, requires_grad=True)
    a = x * 2
    a[0:2].zero_()
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 2, 2])


def test_fill_through_view_of_non_leaf_keeps_base_gradient():
    x = mg.ones(4, requires_grad=True)
    a = x * 3
    a[1:3].fill_(7.0)
    (a * a).sum().backward()
    np.testing.assert_array_equal(a.detach().numpy(), [3, 7, 7, 3])
    np.testing.assert_array_equal(x.grad.numpy(), [18, 0, 0, 18])


@requires_torch
def test_view_edits_match_torch():
    for edit in ("zero_", "fill_", "copy_", "mul_"):
        xs = []
        for lib in (mg, torch):
            x = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
            a = x * x
            v = a[1:3]
            if edit == "zero_":
                v.zero_()
            elif edit == "fill_":
                v.fill_(5.0)
            elif edit == "copy_":
                v.copy_(lib.tensor([9.0, 8.0]))
            else:
                v.mul_(3.0)
            (a * lib.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
            xs.append(np.asarray(x.grad.detach().numpy()))
        np.testing.assert_allclose(xs[0], xs[1], err_msg=edit)


def test_copy_into_inf_nan_gives_source():
    b = mg.tensor([np.inf, np.nan, -np.inf])
    b.copy_(mg.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(b.numpy(), [1, 2, 3])
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a = x.exp() * 0 + np.inf  # a holds inf; its old value's gradient must be exactly 0, not inf * 0
    a.copy_(x * 2)
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2, 2])


def test_data_is_a_detached_tensor_sharing_storage():
    p = mg.nn.Parameter(mg.zeros(3))
    d = p.data
    assert isinstance(d, mg.Tensor) and not d.requires_grad
    assert np.shares_memory(d.array, p.array)
    p.data.add_(mg.ones(3), alpha=-0.5)
    np.testing.assert_array_equal(p.detach().numpy(), [-0.5, -0.5, -0.5])
    p.data = mg.full((3,), 2.0)
    np.testing.assert_array_equal(p.detach().numpy(), [2, 2, 2])
    assert isinstance(p.array, np.ndarray)


def test_data_edit_is_not_seen_by_autograd_like_torch():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    w.data.mul_(10.0)  # PyTorch: not tracked; the backward reads the edited values
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [20, 40])


class _ReadsOnlyOther(Function):
    """y = a * b; da = g * b, db = g * a (declares what each gradient reads)."""

    reads = ((1,), (0,))

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.args
        return g * b, g * a


def test_only_what_a_gradient_reads_is_version_checked():
    w = mg.randn(3, requires_grad=True)
    x = mg.randn(3)  # no grad: only dw = g * x is needed, which reads x, not w
    y = _ReadsOnlyOther.apply(w, x)
    with mg.no_grad():
        w.mul_(2.0)  # w is not read by any needed gradient
    y.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), x.numpy())
    w.grad = None
    y = _ReadsOnlyOther.apply(w, x)
    x.mul_(2.0)  # x is read by dw
    with pytest.raises(InplaceError):
        y.sum().backward()


class _Broadcasting(Function):
    """y = a + b with broadcasting; the backward returns g unreduced and the engine sums it back."""

    reads = ()

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


@given(st.sampled_from([((3, 4), (4,)), ((2, 1, 3), (5, 1)), ((1,), (2, 3)), ((), (2,))]))
def test_engine_undoes_broadcasting(shapes):
    sa, sb = shapes
    a = mg.randn(*sa, dtype=mg.float64, requires_grad=True)
    b = mg.randn(*sb, dtype=mg.float64, requires_grad=True)
    assert gradcheck(lambda p, q: _Broadcasting.apply(p, q) * 1.5, (a, b))
    _Broadcasting.apply(a, b).sum().backward()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape


def test_engine_undoes_broadcasting_with_create_graph():
    a = mg.randn(3, 1, dtype=mg.float64, requires_grad=True)
    b = mg.randn(4, dtype=mg.float64, requires_grad=True)
    y = (_Broadcasting.apply(a, b) ** 2).sum()
    (ga,) = mg.grad(y, [a], create_graph=True)
    assert ga.shape == (3, 1) and ga.requires_grad
    ga.sum().backward()
    assert b.grad is not None and b.grad.shape == (4,)


class _WithFast(Function):
    """y = x^3; dx = 3 x^2 g (backward) and the same on arrays (fast_backward)."""

    calls = []

    @staticmethod
    def forward(ctx, x):
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.args
        _WithFast.calls.append("formula")
        return 3 * x * x * g

    @staticmethod
    def fast_backward(ctx, g):
        _WithFast.calls.append("fast")
        x = ctx.args[0].array
        return (3 * x * x * g,)


def test_engine_chooses_fast_backward_only_without_create_graph():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    _WithFast.calls.clear()
    _WithFast.apply(x).sum().backward()
    assert _WithFast.calls == ["fast"]
    fast = x.grad.numpy().copy()
    x.grad = None
    _WithFast.calls.clear()
    (g,) = mg.grad(_WithFast.apply(x).sum(), [x], create_graph=True)
    assert _WithFast.calls == ["formula"] and g.requires_grad
    np.testing.assert_allclose(g.detach().numpy(), fast)


def test_needs_input_grad_is_set_before_forward():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, a, b):
            seen.append(ctx.needs_input_grad)
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g, g

    a = mg.randn(2, requires_grad=True)
    Probe.apply(a, mg.randn(2))
    with mg.no_grad():
        Probe.apply(a, mg.randn(2))
    assert seen == [(True, False), (False, False)]


def test_post_accumulate_grad_hook_fires_before_backward_ends():
    order = []
    w1 = mg.randn(3, requires_grad=True)
    w2 = mg.randn(3, requires_grad=True)

    class Mark(Function):
        reads = ()

        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            order.append("mark")
            return g

    w2.register_post_accumulate_grad_hook(lambda t: order.append(("w2", t.grad is not None)))
    w1.register_post_accumulate_grad_hook(lambda t: order.append(("w1", t.grad is not None)))
    h = Mark.apply(w1 * 2)        # w1's gradient goes through Mark
    y = (h * 3 + w2).sum()        # w2 is read by the last op: its gradient is complete first
    y.backward()
    assert order.index(("w2", True)) < order.index("mark") < order.index(("w1", True))


def test_hook_returning_wrong_shape_or_type_is_an_error():
    x = mg.randn(3, requires_grad=True)
    x.register_hook(lambda g: mg.zeros(4))
    with pytest.raises(ShapeError):
        (x * 2).sum().backward()
    y = mg.randn(3, requires_grad=True)
    y.register_hook(lambda g: "abc")
    with pytest.raises(AutogradError):
        (y * 2).sum().backward()


def test_tensor_methods_are_declared_in_one_table():
    import inspect

    from minigen.ops import methods

    src = "".join(inspect.getsource(__import__(f"minigen.ops.{m.__name__.split('.')[-1]}", fromlist=["x"]))
                  for m in __import__("minigen.ops", fromlist=["loaded"]).loaded
                  if not m.__name__.endswith("methods"))
    assert "register_method" not in src and "setattr(Tensor" not in src
    for name in methods.SAME_NAME:
        assert callable(getattr(mg.Tensor, name))


def test_no_function_backward_reads_grad_mode():
    import ast
    import pathlib

    root = pathlib.Path(mg.__file__).parent
    offenders = []
    for p in list((root / "ops").glob("*.py")) + list((root / "nn").rglob("*.py")):
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for fn in node.body:
                    if isinstance(fn, ast.FunctionDef) and fn.name in ("forward", "backward", "fast_backward"):
                        s = ast.unparse(fn)
                        if "STATE." in s or "type(ctx)" in s:
                            offenders.append(f"{p.name}:{node.name}.{fn.name}")
    assert offenders == []


def test_inplace_through_reshape_and_transpose_views_of_non_leaf():
    x = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    a = x * x
    a.t()[0].mul_(10.0)      # column 0 of a, through a transpose view
    a.view(3, 2).add_(1.0)   # all of a, through a reshape view
    (a * mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum().backward()
    # a = x^2 with column 0 scaled by 10, plus 1; d/dx (c * a) = c * 2x (* 10 on column 0)
    np.testing.assert_allclose(a.detach().numpy(), [[11, 5, 10], [161, 26, 37]])
    np.testing.assert_allclose(x.grad.numpy(), [[20, 8, 18], [320, 50, 72]])


@requires_torch
def test_inplace_through_views_matches_torch():
    out = []
    for lib in (mg, torch):
        x = lib.tensor([[1.0, -2.0, 3.0], [0.5, 5.0, -6.0]], requires_grad=True)
        a = x * 3.0  # (exp would save its output: PyTorch and minigen both refuse to edit it)
        a.permute(1, 0)[1:].mul_(a.permute(1, 0)[:2].detach().clone())
        a.reshape(6)[::2].zero_()
        (a * a).sum().backward()
        out.append((np.asarray(a.detach().numpy()), np.asarray(x.grad.numpy())))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-6)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-6)


def test_grad_accumulates_in_place_as_torch():
    """A second backward adds into the existing .grad tensor (PyTorch's AccumulateGrad): a reference to the old
    .grad sees the sum; a .grad that records a graph (create_graph) is replaced, not edited."""
    out = []
    libs = [mg] + ([torch] if torch is not None else [])
    for lib in libs:
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        (x * 2.0).sum().backward()
        g0 = x.grad
        (x * x).sum().backward()
        out.append((x.grad is g0, np.asarray(g0.numpy()).copy()))
    assert out[0][0] is True
    np.testing.assert_allclose(out[0][1], [4.0, 6.0])  # 2 + 2x
    if len(out) > 1:
        assert out[1][0] is True
        np.testing.assert_allclose(out[0][1], out[1][1])
    y = mg.tensor([1.0, 2.0], requires_grad=True)
    (y * y).sum().backward(create_graph=True)
    g1 = y.grad
    (y * 3.0).sum().backward()
    assert y.grad is not g1 and g1.requires_grad
    np.testing.assert_allclose(g1.detach().numpy(), [2.0, 4.0])
    np.testing.assert_allclose(y.grad.detach().numpy(), [5.0, 7.0])


def test_first_gradient_moved_into_grad_only_when_nothing_else_sees_it():
    """The engine moves a leaf's finished gradient array into ``.grad`` instead of copying it (PyTorch's
    AccumulateGrad), but only when nothing else holds it: a gradient shared by two leaves (y = a + b hands
    the same upstream array to both), one a hook kept, or one that is a view of another array is copied, so
    the next in-place accumulation cannot change what someone else sees."""
    a = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    b = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.array, b.grad.array)
    (a + b).sum().backward()
    np.testing.assert_array_equal(a.grad.array, [2, 2, 2])
    np.testing.assert_array_equal(b.grad.array, [2, 2, 2])

    kept = []
    w = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    w.register_hook(kept.append)
    (w * 2).sum().backward()
    assert not np.shares_memory(kept[0].array, w.grad.array)
    (w * 2).sum().backward()
    np.testing.assert_array_equal(kept[0].array, [2, 2, 2])  # the hook's tensor was not accumulated into
    np.testing.assert_array_equal(w.grad.array, [4, 4, 4])

    # a Linear layer's weight gradient is a fresh product nobody else holds: it becomes .grad as it is
    lin = mg.nn.Linear(4, 3)
    x = mg.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    lin(x).sum().backward()
    g1 = lin.weight.grad.array
    assert g1.base is None and g1.flags.owndata
    np.testing.assert_allclose(g1, np.ones((3, 1), np.float32) * x.array.sum(0), rtol=1e-6)
    lin(x).sum().backward()  # accumulates in place into that array
    assert lin.weight.grad.array is g1
    np.testing.assert_allclose(g1, 2 * np.ones((3, 1), np.float32) * x.array.sum(0), rtol=1e-6)
    # the bias gradient is the upstream gradient itself (still referenced by the walk): copied, not moved
    assert lin.bias.grad.array.base is None
