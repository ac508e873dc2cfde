"""Optimizers: several steps against the update rule written out here by hand, against torch.optim step for
step (same params, same grads), param groups, zero_grad, closures, state_dict round trips.
Every check runs on the NumPy reference update and, where the kernels are available, on the fused kernels."""
import copy
import math

import numpy as np
import pytest

import minigen as mg
from minigen import nn, optim
from minigen.errors import InvalidArgumentError
from conftest import requires_torch

try:
    from minigen.kernels import dispatch

    MODES = ["reference"] + (["numba"] if dispatch.available() else [])
except Exception:  # no kernels package: the reference path only
    dispatch = None
    MODES = ["reference"]

SHAPES = [(3, 2), (4,)]
STEPS = 5


@pytest.fixture(params=MODES)
def mode(request):
    if dispatch is None:
        yield request.param
        return
    with dispatch.set_mode(request.param):
        yield request.param


def grads_seq(seed=0, n=STEPS):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(n)]


def init_params(seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def run_minigen(make_opt, params0, grads, groups=False):
    ps = [nn.Parameter(mg.tensor(p.copy(), dtype=mg.float64)) for p in params0]
    opt = make_opt([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.05}] if groups else ps)
    out = []
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = mg.tensor(g, dtype=mg.float64)
        opt.step()
        out.append([p.detach().numpy().copy() for p in ps])
    return out, opt, ps


# ------------------------------------------------------------------ the update rules, by hand
def sgd_ref(params, grads, lr, momentum=0.0, dampening=0.0, wd=0.0, nesterov=False, maximize=False):
    ps = [p.copy() for p in params]
    bufs = [None] * len(ps)
    out = []
    for gs in grads:
        for i, g in enumerate(gs):
            d = -g if maximize else g
            d = d + wd * ps[i]
            if momentum:
                bufs[i] = d.copy() if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * d
                d = d + momentum * bufs[i] if nesterov else bufs[i]
            ps[i] = ps[i] - lr * d
        out.append([p.copy() for p in ps])
    return out


def adam_ref(params, grads, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, amsgrad=False, decoupled=False, maximize=False):
    ps = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    vmax = [np.zeros_like(p) for p in ps]
    out = []
    for t, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            g = -g if maximize else g
            if decoupled:
                ps[i] = ps[i] * (1 - lr * wd)
            else:
                g = g + wd * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            vmax[i] = np.maximum(vmax[i], v[i])
            vv = vmax[i] if amsgrad else v[i]
            m_hat = m[i] / (1 - b1 ** t)
            v_hat = vv / (1 - b2 ** t)
            ps[i] = ps[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append([p.copy() for p in ps])
    return out


def rmsprop_ref(params, grads, lr, alpha=0.99, eps=1e-8, wd=0.0, momentum=0.0, centered=False):
    ps = [p.copy() for p in params]
    s = [np.zeros_like(p) for p in ps]
    a = [np.zeros_like(p) for p in ps]
    b = [np.zeros_like(p) for p in ps]
    out = []
    for gs in grads:
        for i, g in enumerate(gs):
            g = g + wd * ps[i]
            s[i] = alpha * s[i] + (1 - alpha) * g * g
            if centered:
                a[i] = alpha * a[i] + (1 - alpha) * g
                denom = np.sqrt(s[i] - a[i] ** 2) + eps
            else:
                denom = np.sqrt(s[i]) + eps
            if momentum:
                b[i] = momentum * b[i] + g / denom
                ps[i] = ps[i] - lr * b[i]
            else:
                ps[i] = ps[i] - lr * g / denom
        out.append([p.copy() for p in ps])
    return out


def adagrad_ref(params, grads, lr, lr_decay=0.0, wd=0.0, init_acc=0.0, eps=1e-10):
    ps = [p.copy() for p in params]
    s = [np.full_like(p, init_acc) for p in ps]
    out = []
    for t, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            g = g + wd * ps[i]
            clr = lr / (1 + (t - 1) * lr_decay)
            s[i] = s[i] + g * g
            ps[i] = ps[i] - clr * g / (np.sqrt(s[i]) + eps)
        out.append([p.copy() for p in ps])
    return out


CASES = [
    ("SGD", dict(lr=0.1), sgd_ref, dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9), sgd_ref, dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01), sgd_ref,
     dict(lr=0.1, momentum=0.9, dampening=0.3, wd=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.5, nesterov=True, maximize=True), sgd_ref,
     dict(lr=0.1, momentum=0.5, nesterov=True, maximize=True)),
    ("Adam", dict(lr=0.01), adam_ref, dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True), adam_ref,
     dict(lr=0.01, b1=0.8, b2=0.9, wd=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, eps=1e-3), adam_ref, dict(lr=0.01, maximize=True, eps=1e-3)),
    ("AdamW", dict(lr=0.01), adam_ref, dict(lr=0.01, wd=0.01, decoupled=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.5, amsgrad=True), adam_ref,
     dict(lr=0.01, wd=0.5, decoupled=True, amsgrad=True)),
    ("RMSprop", dict(lr=0.01), rmsprop_ref, dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1), rmsprop_ref,
     dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, wd=0.1)),
    ("Adagrad", dict(lr=0.1), adagrad_ref, dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.5), adagrad_ref,
     dict(lr=0.1, lr_decay=0.1, wd=0.1, init_acc=0.5)),
]
IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize("name,kw,ref,refkw", CASES, ids=IDS)
def test_against_hand_formula(mode, name, kw, ref, refkw):
    p0, gs = init_params(), grads_seq()
    got, _, _ = run_minigen(lambda ps: getattr(optim, name)(ps, **kw), p0, gs)
    want = ref(p0, gs, **refkw)
    for step, (a, b) in enumerate(zip(got, want)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14, err_msg=f"step {step}")


def test_one_step_by_hand():
    """Single numbers worked out on paper."""
    p = nn.Parameter(mg.tensor([1.0], dtype=mg.float64))
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    for g in (2.0, 2.0):
        p.grad = mg.tensor([g], dtype=mg.float64)
        opt.step()
    # step 1: b = 2, p = 1 - 1 = 0;  step 2: b = 0.9 * 2 + 2 = 3.8, p = 0 - 1.9 = -1.9
    assert p.detach().numpy().tolist() == [pytest.approx(-1.9, abs=1e-15)]
    q = nn.Parameter(mg.tensor([0.0], dtype=mg.float64))
    adam = optim.Adam([q], lr=0.1)
    q.grad = mg.tensor([3.0], dtype=mg.float64)
    adam.step()
    # t = 1: m_hat = g, v_hat = g^2, step = lr * g / (|g| + eps) = 0.1 * 3 / (3 + 1e-8)
    assert q.detach().numpy()[0] == pytest.approx(-0.1 * 3 / (3 + 1e-8), abs=1e-15)


@requires_torch
@pytest.mark.parametrize("name,kw,ref,refkw", CASES, ids=IDS)
def test_against_torch_step_for_step(mode, name, kw, ref, refkw):
    import torch

    p0, gs = init_params(2), grads_seq(3)
    got, opt, _ = run_minigen(lambda ps: getattr(optim, name)(ps, **kw), p0, gs, groups=True)
    tps = [torch.tensor(p.copy(), requires_grad=True) for p in p0]
    topt = getattr(torch.optim, name)([{"params": [tps[0]]}, {"params": [tps[1]], "lr": 0.05}], **kw)
    for step, g in enumerate(gs):
        for p, gi in zip(tps, g):
            p.grad = torch.tensor(gi)
        topt.step()
        for x, p in zip(got[step], tps):
            np.testing.assert_allclose(x, p.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"step {step}")
    # same state-dict layout: keys of the param groups and of the per-parameter state
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in tsd["param_groups"]]
    assert set(sd["state"]) == set(tsd["state"])
    for i in sd["state"]:
        assert set(sd["state"][i]) == set(tsd["state"][i]), (sd["state"][i].keys(), tsd["state"][i].keys())
        for k, v in sd["state"][i].items():
            tv = tsd["state"][i][k]
            np.testing.assert_allclose(np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=float),
                                       tv.numpy() if hasattr(tv, "numpy") else tv, rtol=1e-12, atol=1e-14)


@requires_torch
def test_load_torch_optimizer_state_and_continue():
    """A torch.optim.Adam state dict (same layout) loads into minigen's Adam and training continues identically."""
    import torch

    p0, gs = init_params(4), grads_seq(5, 6)
    tps = [torch.tensor(p.copy(), requires_grad=True) for p in p0]
    topt = torch.optim.Adam(tps, lr=0.02, amsgrad=True)
    for g in gs[:3]:
        for p, gi in zip(tps, g):
            p.grad = torch.tensor(gi)
        topt.step()
    ps = [nn.Parameter(mg.tensor(p.detach().numpy().copy())) for p in tps]
    opt = optim.Adam(ps, lr=0.5, amsgrad=True)
    opt.load_state_dict(topt.state_dict())
    assert opt.param_groups[0]["lr"] == 0.02 and opt.state[ps[0]]["step"] == 3
    for g in gs[3:]:
        for p, gi in zip(tps, g):
            p.grad = torch.tensor(gi)
        topt.step()
        for p, gi in zip(ps, g):
            p.grad = mg.tensor(gi)
        opt.step()
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(amsgrad=True)),
                                     ("AdamW", {}), ("RMSprop", dict(centered=True, momentum=0.1)),
                                     ("Adagrad", {})])
def test_state_dict_round_trip_resumes_bit_identically(mode, name, kw):
    p0, gs = init_params(6), grads_seq(7, 6)
    full, _, _ = run_minigen(lambda ps: getattr(optim, name)(ps, **kw), p0, gs, groups=True)
    half, opt, ps = run_minigen(lambda ps: getattr(optim, name)(ps, **kw), p0, gs[:3], groups=True)
    # a checkpoint made of plain data: NumPy arrays and Python numbers, parameters by index
    sd = opt.state_dict()
    saved = {"state": {i: {k: (v.numpy().copy() if isinstance(v, mg.Tensor) else v) for k, v in st.items()}
                       for i, st in sd["state"].items()},
             "param_groups": copy.deepcopy(sd["param_groups"])}
    ps2 = [nn.Parameter(mg.tensor(p.detach().numpy().copy())) for p in ps]
    opt2 = getattr(optim, name)([{"params": [ps2[0]]}, {"params": [ps2[1]], "lr": 123.0}], **kw)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[1]["lr"] == 0.05
    for g in gs[3:]:
        for p, gi in zip(ps2, g):
            p.grad = mg.tensor(gi, dtype=mg.float64)
        opt2.step()
    for a, b in zip(full[-1], ps2):
        np.testing.assert_array_equal(a, b.detach().numpy())
    # loading copies: later steps of opt2 do not touch the saved arrays
    st0 = saved["state"][0]
    key = [k for k in st0 if k != "step"][0]
    assert not np.shares_memory(opt2.state[ps2[0]][key].array, st0[key])


def test_param_groups_zero_grad_closure_and_errors():
    a, b = nn.Parameter(mg.ones(2)), nn.Parameter(mg.ones(3))
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 1.0}], lr=0.1, momentum=0.0)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 1.0
    assert opt.param_groups[1]["momentum"] == 0.0 and opt.param_groups[1]["params"] == [b]
    c = nn.Parameter(mg.ones(1))
    opt.add_param_group({"params": [c], "lr": 0.5})
    assert len(opt.param_groups) == 3
    with pytest.raises(InvalidArgumentError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    (a.sum() + (b * 2).sum()).backward()
    loss = opt.step(closure=lambda: 7.0)
    assert loss == 7.0
    np.testing.assert_allclose(a.detach().numpy(), [0.9, 0.9])
    np.testing.assert_allclose(b.detach().numpy(), [-1.0, -1.0, -1.0])
    assert c.detach().numpy().tolist() == [1.0]  # no grad: untouched
    opt.zero_grad(set_to_none=False)
    assert a.grad is not None and not a.grad.numpy().any()
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(InvalidArgumentError, match="empty"):
        optim.Adam([])
    with pytest.raises(InvalidArgumentError, match="learning rate"):
        optim.SGD([a], lr=-1)
    with pytest.raises(InvalidArgumentError, match="beta"):
        optim.Adam([a], betas=(1.0, 0.9))
    with pytest.raises(InvalidArgumentError, match="Nesterov"):
        optim.SGD([a], lr=0.1, nesterov=True)
    with pytest.raises(InvalidArgumentError, match="non-leaf"):
        optim.SGD([a * 2], lr=0.1)
    with pytest.raises(InvalidArgumentError, match="single Tensor"):
        optim.SGD(a, lr=0.1)
    with pytest.raises(InvalidArgumentError, match="parameter group"):
        opt.load_state_dict({"state": {}, "param_groups": [{"params": [0]}]})
    assert "SGD (" in repr(opt) and "Parameter Group 2" in repr(opt)


def test_version_counter_bumped_by_step():
    """An update changes the parameter under any graph that saved it: autograd must notice."""
    w = nn.Parameter(mg.ones(2))
    opt = optim.SGD([w], lr=0.1)
    y = (w * w).sum()
    w.grad = mg.ones(2)
    opt.step()
    from minigen.errors import InplaceError

    with pytest.raises(InplaceError):
        y.backward()


def test_training_reduces_loss():
    mg.manual_seed(0)
    x = mg.randn(64, 3)
    y = x @ mg.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    for name, kw in [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.05)), ("RMSprop", dict(lr=0.05)),
                     ("Adagrad", dict(lr=0.5)), ("AdamW", dict(lr=0.05))]:
        model = nn.Linear(3, 1)
        opt = getattr(optim, name)(model.parameters(), **kw)
        first = None
        for _ in range(60):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            first = first if first is not None else loss.item()
        assert loss.item() < 0.05 * first, name
