"""The optimizers added for PyTorch parity (Adadelta, Adamax, NAdam, RAdam, LBFGS) checked step by step
against torch.optim on identical parameters and gradients (skipped without torch), plus their own checks."""
import math

import numpy as np
import pytest

import minigen as mg
from minigen.errors import InvalidArgumentError

try:
    import torch
except ImportError:  # torch is an optional oracle: its comparisons skip, the rest still runs
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (optional oracle)")

CASES = [
    ("Adadelta", {}),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
    ("Adadelta", dict(maximize=True)),
    ("Adamax", {}),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.05)),
    ("Adamax", dict(maximize=True)),
    ("NAdam", {}),
    ("NAdam", dict(lr=0.01, betas=(0.85, 0.95), weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", {}),
    ("RAdam", dict(lr=0.01, betas=(0.5, 0.6), weight_decay=0.1)),   # rho_t > 5 after a few steps
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.7), weight_decay=0.1, decoupled_weight_decay=True)),
    ("Rprop", {}),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2), maximize=True)),
    ("ASGD", {}),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=3, weight_decay=0.1)),
    ("ASGD", dict(t0=0, maximize=True)),
    ("Adafactor", {}),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-20, 1e-2), d=1.5, weight_decay=0.1, maximize=True)),
]


def _run_pair(name, kw, dtype, steps=12, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (5,), ()]
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    mp = [mg.nn.Parameter(mg.tensor(a.copy())) for a in init]
    tp = [torch.nn.Parameter(torch.tensor(a.copy())) for a in init]
    mo = getattr(mg.optim, name)(mp, **kw)
    to = getattr(torch.optim, name)(tp, **kw)
    for step in range(steps):
        for a, b in zip(mp, tp):
            g = rng.standard_normal(a.shape).astype(dtype) * (0.1 if step % 3 else 3.0)
            a.grad = mg.tensor(g.copy())
            b.grad = torch.tensor(g.copy())
        mo.step()
        to.step()
        yield step, [a.detach().numpy().copy() for a in mp], [b.detach().numpy().copy() for b in tp], mo, to


@needs_torch
@pytest.mark.parametrize("name,kw", CASES)
def test_matches_torch_step_by_step_float64(name, kw):
    for step, ms, ts, _, _ in _run_pair(name, kw, np.float64):
        for a, b in zip(ms, ts):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"{name} {kw} step {step + 1}")


@needs_torch
@pytest.mark.parametrize("name,kw", CASES)
def test_matches_torch_step_by_step_float32(name, kw):
    for step, ms, ts, _, _ in _run_pair(name, kw, np.float32):
        for a, b in zip(ms, ts):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6, err_msg=f"{name} {kw} step {step + 1}")


@needs_torch
@pytest.mark.parametrize("name,kw", CASES[::3])
def test_state_matches_torch_and_round_trips(name, kw):
    *_, (step, ms, ts, mo, to) = list(_run_pair(name, kw, np.float64, steps=5))
    msd, tsd = mo.state_dict(), to.state_dict()
    assert sorted(msd["state"]) == sorted(tsd["state"])
    for k in tsd["state"]:
        assert sorted(msd["state"][k]) == sorted(tsd["state"][k])
        for key, tv in tsd["state"][k].items():
            mv = msd["state"][k][key]
            mv = mv.numpy() if isinstance(mv, mg.Tensor) else np.asarray(mv)
            np.testing.assert_allclose(mv, tv.numpy() if hasattr(tv, "numpy") else tv, rtol=1e-12, err_msg=key)
    # a fresh optimizer loaded from the state dict continues exactly like the original
    params2 = [mg.nn.Parameter(mg.tensor(a.copy())) for a in ms]
    mo2 = getattr(mg.optim, name)(params2, **kw)
    mo2.load_state_dict(msd)
    g = [np.full(a.shape, 0.3) for a in ms]
    for p, gg in zip(mo.param_groups[0]["params"], g):
        p.grad = mg.tensor(gg)
    for p, gg in zip(params2, g):
        p.grad = mg.tensor(gg)
    mo.step()
    mo2.step()
    for a, b in zip(mo.param_groups[0]["params"], params2):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@needs_torch
def test_defaults_match_torch():
    import inspect

    for name in ("Adadelta", "Adamax", "NAdam", "RAdam", "LBFGS", "Rprop", "ASGD", "Adafactor"):
        ts = inspect.signature(getattr(torch.optim, name).__init__).parameters
        ms = inspect.signature(getattr(mg.optim, name).__init__).parameters
        for k, p in ts.items():
            assert k in ms, f"{name} lacks argument {k}"
            if p.default is not inspect.Parameter.empty and k not in ("foreach", "differentiable", "capturable"):
                assert ms[k].default == p.default, f"{name}.{k}: {ms[k].default} != {p.default}"


def test_bad_hyperparameters_raise_minigen_errors():
    p = [mg.nn.Parameter(mg.zeros(2))]
    with pytest.raises(InvalidArgumentError, match="rho"):
        mg.optim.Adadelta(p, rho=1.5)
    with pytest.raises(InvalidArgumentError, match="beta"):
        mg.optim.Adamax(p, betas=(1.0, 0.9))
    with pytest.raises(InvalidArgumentError, match="learning rate"):
        mg.optim.NAdam(p, lr=-1)
    with pytest.raises(InvalidArgumentError, match="epsilon"):
        mg.optim.RAdam(p, eps=-1)
    with pytest.raises(InvalidArgumentError, match="line_search_fn"):
        mg.optim.LBFGS(p, line_search_fn="armijo")
    with pytest.raises(InvalidArgumentError, match="groups"):
        mg.optim.LBFGS([{"params": p}, {"params": [mg.nn.Parameter(mg.zeros(1))]}])
    with pytest.raises(InvalidArgumentError, match="closure"):
        mg.optim.LBFGS(p).step()


def test_adadelta_hand_computed_first_step():
    # v = 0.1 g^2, delta = sqrt(eps)/sqrt(v + eps) g, p -= lr delta  (u = 0 before the first step)
    p = mg.nn.Parameter(mg.tensor([1.0, -2.0], dtype=mg.float64))
    p.grad = mg.tensor([0.5, 4.0], dtype=mg.float64)
    mg.optim.Adadelta([p], lr=1.0, rho=0.9, eps=1e-6).step()
    g = np.array([0.5, 4.0])
    delta = math.sqrt(1e-6) / np.sqrt(0.1 * g * g + 1e-6) * g
    np.testing.assert_allclose(p.detach().numpy(), np.array([1.0, -2.0]) - delta, rtol=1e-14)


# ------------------------------------------------------------------ LBFGS
def _rosen_pair(dtype, seed):
    rng = np.random.default_rng(seed)
    x0 = (rng.standard_normal(6) * 0.5 + 1.0).astype(dtype)
    A = rng.standard_normal((4, 6)).astype(dtype)

    def f(lib, x, a):
        # Rosenbrock chain + a least-squares term (mixed curvature)
        r = (1 - x[:-1]) ** 2 + 10 * (x[1:] - x[:-1] ** 2) ** 2
        return r.sum() + 0.5 * (lib.matmul(a, x) ** 2).sum()

    return x0, A, f


@needs_torch
@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
@pytest.mark.parametrize("kw", [dict(), dict(lr=0.5, max_iter=7, history_size=3), dict(max_iter=4, max_eval=6)])
def test_lbfgs_matches_torch(line_search, kw):
    x0, A, f = _rosen_pair(np.float64, 1)
    mx = mg.nn.Parameter(mg.tensor(x0.copy()))
    tx = torch.nn.Parameter(torch.tensor(x0.copy()))
    ma, ta = mg.tensor(A), torch.tensor(A)
    mo = mg.optim.LBFGS([mx], line_search_fn=line_search, **kw)
    to = torch.optim.LBFGS([tx], line_search_fn=line_search, **kw)

    def mclosure():
        mo.zero_grad()
        loss = f(mg, mx, ma)
        loss.backward()
        return loss

    def tclosure():
        to.zero_grad()
        loss = f(torch, tx, ta)
        loss.backward()
        return loss

    for outer in range(4):
        ml = mo.step(mclosure)
        tl = to.step(tclosure)
        np.testing.assert_allclose(float(ml.item()), float(tl.item()), rtol=1e-10)
        np.testing.assert_allclose(mx.detach().numpy(), tx.detach().numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=f"step {outer}")
        ms, ts = mo.state[mx], to.state[tx]
        assert ms["func_evals"] == ts["func_evals"] and ms["n_iter"] == ts["n_iter"]
        assert len(ms["old_dirs"]) == len(ts["old_dirs"])


@needs_torch
def test_lbfgs_float32_close_to_torch_and_converges():
    x0, A, f = _rosen_pair(np.float32, 2)
    mx = mg.nn.Parameter(mg.tensor(x0.copy()))
    tx = torch.nn.Parameter(torch.tensor(x0.copy()))
    ma, ta = mg.tensor(A), torch.tensor(A)
    mo = mg.optim.LBFGS([mx], line_search_fn="strong_wolfe", max_iter=5)
    to = torch.optim.LBFGS([tx], line_search_fn="strong_wolfe", max_iter=5)

    def closure(opt, lib, x, a):
        def c():
            opt.zero_grad()
            loss = f(lib, x, a)
            loss.backward()
            return loss
        return c

    first = None
    for _ in range(3):
        ml = float(mo.step(closure(mo, mg, mx, ma)).item())
        to.step(closure(to, torch, tx, ta))
        first = ml if first is None else first
        np.testing.assert_allclose(mx.detach().numpy(), tx.detach().numpy(), rtol=1e-3, atol=1e-4)
    assert float(f(mg, mx, ma).item()) < first


@pytest.mark.parametrize("make", [
    lambda p: mg.optim.LBFGS(p, max_iter="a"), lambda p: mg.optim.LBFGS(p, history_size=None),
    lambda p: mg.optim.LBFGS(p, max_eval=0), lambda p: mg.optim.LBFGS(p, tolerance_grad="x"),
    lambda p: mg.optim.NAdam(p, betas=3), lambda p: mg.optim.RAdam(p, betas=(0.9,)),
    lambda p: mg.optim.Adamax(p, betas=("a", 0.9)), lambda p: mg.optim.Adadelta(p, rho="x"),
    lambda p: mg.optim.Adadelta(p, lr=-1.0), lambda p: mg.optim.NAdam(p, momentum_decay=-1),
])
def test_bad_arguments_raise_invalid_argument(make):
    with pytest.raises(InvalidArgumentError):
        make([mg.nn.Parameter(mg.zeros(2))])


# ------------------------------------------------------------------ swa_utils
def _bn_net(lib, dtype):
    nn_ = lib.nn
    return nn_.Sequential(nn_.Linear(3, 4), nn_.BatchNorm1d(4), nn_.ReLU(), nn_.Linear(4, 2)).to(dtype)


@needs_torch
@pytest.mark.parametrize("kind", ["swa", "ema_multi", "ema_single", "swa_single"])
@pytest.mark.parametrize("use_buffers", [False, True])
def test_averaged_model_matches_torch(kind, use_buffers):
    from minigen.optim import swa_utils as MS
    from torch.optim import swa_utils as TS

    mg.manual_seed(0)
    m = _bn_net(mg, mg.float64)
    t = _bn_net(torch, torch.float64)
    t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in m.state_dict().items()})
    fns = {"swa": ({}, {}), "ema_multi": (dict(multi_avg_fn=MS.get_ema_multi_avg_fn(0.9)),
                                          dict(multi_avg_fn=TS.get_ema_multi_avg_fn(0.9))),
           "ema_single": (dict(avg_fn=MS.get_ema_avg_fn(0.8)), dict(avg_fn=TS.get_ema_avg_fn(0.8))),
           "swa_single": (dict(avg_fn=MS.get_swa_avg_fn()), dict(avg_fn=TS.get_swa_avg_fn()))}[kind]
    ma = MS.AveragedModel(m, use_buffers=use_buffers, **fns[0])
    ta = TS.AveragedModel(t, use_buffers=use_buffers, **fns[1])
    mo, to = mg.optim.SGD(m.parameters(), lr=0.1), torch.optim.SGD(t.parameters(), lr=0.1)
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.standard_normal((6, 3))
        mo.zero_grad()
        to.zero_grad()
        m(mg.tensor(x)).square().sum().backward()
        t(torch.tensor(x)).square().sum().backward()
        mo.step()
        to.step()
        ma.update_parameters(m)
        ta.update_parameters(t)
    msd, tsd = ma.state_dict(), ta.state_dict()
    assert list(msd) == list(tsd)
    for k, v in tsd.items():
        np.testing.assert_allclose(np.asarray(msd[k].numpy(), dtype=np.float64), v.numpy().astype(np.float64),
                                   rtol=1e-10, atol=1e-12, err_msg=k)
    x = rng.standard_normal((5, 3))
    ma.eval()
    ta.eval()
    np.testing.assert_allclose(ma(mg.tensor(x)).detach().numpy(), ta(torch.tensor(x)).detach().numpy(), rtol=1e-10)


@needs_torch
def test_update_bn_matches_torch():
    from minigen.optim import swa_utils as MS
    from torch.optim import swa_utils as TS

    mg.manual_seed(2)
    m = _bn_net(mg, mg.float64)
    t = _bn_net(torch, torch.float64)
    t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in m.state_dict().items()})
    rng = np.random.default_rng(3)
    data = rng.standard_normal((20, 3))
    ml = mg.data.DataLoader(mg.data.TensorDataset(data, np.zeros(20)), batch_size=6)
    tl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(data), torch.zeros(20)), batch_size=6)
    m.eval()
    t.eval()
    MS.update_bn(ml, m)
    TS.update_bn(tl, t)
    assert not m.training and m[1].momentum == t[1].momentum
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(np.asarray(m.state_dict()[k].numpy(), dtype=np.float64),
                                   v.numpy().astype(np.float64), rtol=1e-10, err_msg=k)


@needs_torch
@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("epochs", [0, 1, 4])
def test_swalr_matches_torch(strategy, epochs):
    from minigen.optim import swa_utils as MS
    from torch.optim import swa_utils as TS

    mp = [mg.nn.Parameter(mg.zeros(2)), mg.nn.Parameter(mg.zeros(1))]
    tp = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))]
    mo = mg.optim.SGD([{"params": mp[:1]}, {"params": mp[1:], "lr": 0.5}], lr=0.1)
    to = torch.optim.SGD([{"params": tp[:1]}, {"params": tp[1:], "lr": 0.5}], lr=0.1)
    ms = MS.SWALR(mo, swa_lr=[0.05, 0.01], anneal_epochs=epochs, anneal_strategy=strategy)
    ts = TS.SWALR(to, swa_lr=[0.05, 0.01], anneal_epochs=epochs, anneal_strategy=strategy)
    for _ in range(7):
        np.testing.assert_allclose(ms.get_last_lr(), ts.get_last_lr(), rtol=1e-12)
        mo.step()
        to.step()
        ms.step()
        ts.step()


def test_swa_utils_errors():
    from minigen.optim import swa_utils as MS

    with pytest.raises(InvalidArgumentError):
        MS.get_ema_multi_avg_fn(1.5)
    with pytest.raises(InvalidArgumentError, match="not both"):
        MS.AveragedModel(mg.nn.Linear(2, 2), avg_fn=MS.get_swa_avg_fn(), multi_avg_fn=MS.get_swa_multi_avg_fn())
    a = MS.AveragedModel(mg.nn.Linear(2, 2))
    with pytest.raises(InvalidArgumentError, match="do not match"):
        a.update_parameters(mg.nn.Linear(3, 2))
    with pytest.raises(InvalidArgumentError, match="anneal_strategy"):
        MS.SWALR(mg.optim.SGD([mg.nn.Parameter(mg.zeros(1))], lr=0.1), swa_lr=0.1, anneal_strategy="exp")
    with pytest.raises(InvalidArgumentError):
        MS.update_bn([], None)


def test_adafactor_factored_state_round_trip_and_checks():
    p = mg.nn.Parameter(mg.tensor(np.arange(12.0).reshape(3, 4)))
    p.grad = mg.ones(3, 4, dtype=mg.float64)
    opt = mg.optim.Adafactor([p])
    opt.step()
    sd = opt.state_dict()
    assert tuple(sd["state"][0]["row_var"].shape) == (3, 1) and tuple(sd["state"][0]["col_var"].shape) == (1, 4)
    opt2 = mg.optim.Adafactor([mg.nn.Parameter(mg.zeros(3, 4, dtype=mg.float64))])
    opt2.load_state_dict(sd)
    np.testing.assert_array_equal(list(opt2.state.values())[0]["col_var"].numpy(), sd["state"][0]["col_var"].numpy())
    bad = {"state": {0: {**sd["state"][0], "row_var": mg.zeros(4, 1)}}, "param_groups": sd["param_groups"]}
    with pytest.raises(InvalidArgumentError, match="row_var"):
        opt2.load_state_dict(bad)
    with pytest.raises(InvalidArgumentError, match="beta2_decay"):
        mg.optim.Adafactor([p], beta2_decay=0.5)
    with pytest.raises(InvalidArgumentError, match="d should be"):
        mg.optim.Adafactor([p], d=0.5)
