"""LR schedulers: closed forms by hand, torch's lr sequences, state_dict round trips."""
import math

import numpy as np
import pytest

import minigen as mg
from minigen import nn, optim
from minigen.optim import lr_scheduler as S
from minigen.errors import InvalidArgumentError
from conftest import requires_torch


def _opt(kind="SGD", lrs=(0.1, 0.02), **kw):
    ps = [nn.Parameter(mg.zeros(1)), nn.Parameter(mg.zeros(1))]
    return getattr(optim, kind)([{"params": [ps[0]], "lr": lrs[0]}, {"params": [ps[1]], "lr": lrs[1]}], **kw)


def _seq(sched, n, metric=None):
    out = [sched.get_last_lr()]
    for i in range(n):
        sched.optimizer.step()
        if metric is None:
            sched.step()
        else:
            sched.step(metric[i])
        out.append(list(sched.get_last_lr()))
    return out


CASES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.001)),
    ("CosineAnnealingWarmRestarts", dict(T_0=4)),
    ("LambdaLR", dict(lr_lambda=lambda e: 1.0 / (1 + e))),
    ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.95)),
    ("ConstantLR", dict(factor=0.5, total_iters=4)),
    ("LinearLR", dict(start_factor=0.25, end_factor=0.9, total_iters=6)),
    ("OneCycleLR", dict(max_lr=[1.0, 0.5], total_steps=16)),
    ("OneCycleLR", dict(max_lr=0.8, total_steps=20, anneal_strategy="linear", three_phase=True, pct_start=0.25)),
    ("OneCycleLR", dict(max_lr=0.8, epochs=3, steps_per_epoch=5, div_factor=10.0, final_div_factor=100.0)),
]


@requires_torch
@pytest.mark.parametrize("name,kw", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_lr_sequence_vs_torch(name, kw):
    import torch

    n = 15 if name == "OneCycleLR" else 25
    ours = _seq(getattr(S, name)(_opt(momentum=0.9), **kw), n)
    tps = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    topt = torch.optim.SGD([{"params": [tps[0]], "lr": 0.1}, {"params": [tps[1]], "lr": 0.02}], momentum=0.9)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    theirs = [tsched.get_last_lr()]
    for _ in range(n):
        topt.step()
        tsched.step()
        theirs.append(list(tsched.get_last_lr()))
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-10, atol=1e-15)


@requires_torch
def test_onecycle_momentum_and_betas_vs_torch():
    import torch

    for kind in ("SGD", "Adam"):
        kw = dict(momentum=0.9) if kind == "SGD" else {}
        opt = _opt(kind, **kw)
        sched = S.OneCycleLR(opt, max_lr=0.5, total_steps=10)
        tps = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
        topt = getattr(torch.optim, kind)([{"params": [tps[0]], "lr": 0.1}, {"params": [tps[1]], "lr": 0.02}], **kw)
        tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.5, total_steps=10)
        for _ in range(9):
            key = "momentum" if kind == "SGD" else "betas"
            for g, tg in zip(opt.param_groups, topt.param_groups):
                np.testing.assert_allclose(np.ravel(g[key]), np.ravel(tg[key]), rtol=1e-12)
            opt.step()
            sched.step()
            topt.step()
            tsched.step()
    with pytest.raises(InvalidArgumentError, match="total_steps"):
        for _ in range(5):
            sched.step()
    with pytest.raises(InvalidArgumentError, match="momentum"):
        S.OneCycleLR(_opt("Adagrad"), max_lr=0.1, total_steps=5)


@requires_torch
def test_reduce_on_plateau_vs_torch():
    import torch

    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    for kw in [dict(patience=2), dict(patience=1, cooldown=2, factor=0.5, min_lr=0.004),
               dict(mode="max", patience=1, threshold=0.1, threshold_mode="abs")]:
        ours = _seq(S.ReduceLROnPlateau(_opt(), **kw), len(metrics), metrics)
        tps = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
        topt = torch.optim.SGD([{"params": [tps[0]], "lr": 0.1}, {"params": [tps[1]], "lr": 0.02}])
        ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
        theirs = [ts.get_last_lr()]
        for m in metrics:
            topt.step()
            ts.step(m)
            theirs.append(list(ts.get_last_lr()))
        np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-12)


def test_closed_forms_by_hand():
    s = S.StepLR(_opt(), step_size=2, gamma=0.1)
    assert [round(x[0], 12) for x in _seq(s, 5)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    c = S.CosineAnnealingLR(_opt(), T_max=4, eta_min=0.0)
    lrs = [x[0] for x in _seq(c, 4)]
    np.testing.assert_allclose(lrs, [0.1 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)], rtol=1e-12)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-15)
    e = S.ExponentialLR(_opt(), gamma=0.5)
    np.testing.assert_allclose([x[1] for x in _seq(e, 3)], [0.02, 0.01, 0.005, 0.0025], rtol=1e-12)
    with pytest.raises(InvalidArgumentError):
        S.StepLR(_opt(), step_size=0)


def test_warmup_cosine_formula():
    """nanoGPT: lr * (t+1)/(warmup+1) during warmup, cosine to min_lr at lr_decay_iters, then min_lr."""
    warm, decay, lr, min_lr = 4, 12, 1e-3, 1e-4
    opt = _opt("AdamW", lrs=(lr, 2 * lr))
    sched = S.WarmupCosineLR(opt, warmup_iters=warm, lr_decay_iters=decay, min_lr=[min_lr, 2 * min_lr])
    got = _seq(sched, 16)
    for t, (a, b) in enumerate(got):
        if t < warm:
            want = lr * (t + 1) / (warm + 1)
        elif t > decay:
            want = min_lr
        else:
            r = (t - warm) / (decay - warm)
            want = min_lr + 0.5 * (1 + math.cos(math.pi * r)) * (lr - min_lr)
        assert a == pytest.approx(want, rel=1e-12)
        assert b == pytest.approx(2 * want, rel=1e-12)
    assert got[warm][0] == pytest.approx(lr) and got[decay][0] == pytest.approx(min_lr)
    assert got[0][0] == pytest.approx(lr / 5)  # first step already moves (no zero-lr step)
    with pytest.raises(InvalidArgumentError):
        S.WarmupCosineLR(_opt(), warmup_iters=5, lr_decay_iters=3)


@pytest.mark.parametrize("make", [
    lambda o: S.StepLR(o, 3, 0.5), lambda o: S.CosineAnnealingLR(o, 10), lambda o: S.OneCycleLR(o, 1.0, 30),
    lambda o: S.WarmupCosineLR(o, 3, 20, 0.001), lambda o: S.LambdaLR(o, lambda e: 0.9 ** e),
    lambda o: S.ReduceLROnPlateau(o, patience=0), lambda o: S.MultiStepLR(o, [2, 4])])
def test_state_dict_round_trip(make):
    """Resume a schedule from its state dict (plain data, as a checkpoint stores it): same lrs afterwards."""
    metrics = [1.0, 2.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.1, 0.2, 0.3, 0.4, 0.5]
    plateau = "Plateau" in type(make(_opt())).__name__
    a = make(_opt(momentum=0.9))
    full = _seq(a, 12, metrics if plateau else None)
    b_opt = _opt(momentum=0.9)
    b = make(b_opt)
    _seq(b, 5, metrics[:5] if plateau else None)
    sd = b.state_dict()
    assert all(not callable(v) for v in sd.values())
    opt_sd = b_opt.state_dict()
    c_opt = _opt(momentum=0.9)
    c_opt.load_state_dict(opt_sd)
    c = make(c_opt)
    c.load_state_dict(sd)
    rest = _seq(c, 7, metrics[5:] if plateau else None)
    np.testing.assert_allclose(np.array(rest), np.array(full[5:]), rtol=1e-12)


def test_resume_requires_initial_lr_and_sequential():
    with pytest.raises(InvalidArgumentError, match="initial_lr"):
        S.StepLR(_opt(), 2, last_epoch=3)
    opt = _opt()
    seq = S.SequentialLR(opt, [S.LinearLR(opt, 0.5, 1.0, total_iters=2), S.ExponentialLR(opt, 0.5)], milestones=[3])
    lrs = [x[0] for x in _seq(seq, 6)]
    np.testing.assert_allclose(lrs, [0.05, 0.075, 0.1, 0.1, 0.05, 0.025, 0.0125], rtol=1e-12)


def test_state_dicts_survive_a_checkpoint_file(tmp_path):
    """Scheduler and optimizer state dicts are plain data: they go through mg.save / mg.load and resume."""
    for make in [lambda o: S.MultiStepLR(o, [2, 4, 4], 0.5), lambda o: S.ReduceLROnPlateau(o, patience=0),
                 lambda o: S.OneCycleLR(o, 1.0, 12), lambda o: S.WarmupCosineLR(o, 2, 8, 0.001)]:
        plateau = "Plateau" in type(make(_opt(momentum=0.9))).__name__
        a = make(_opt(momentum=0.9))
        full = _seq(a, 8, [1.0] * 8 if plateau else None)
        b_opt = _opt(momentum=0.9)
        b = make(b_opt)
        _seq(b, 3, [1.0] * 3 if plateau else None)
        mg.save({"sched": b.state_dict(), "opt": b_opt.state_dict()}, str(tmp_path / "ck.safetensors"))
        d = mg.load(str(tmp_path / "ck.safetensors"))
        c_opt = _opt(momentum=0.9)
        c_opt.load_state_dict(d["opt"])
        c = make(c_opt)
        c.load_state_dict(d["sched"])
        np.testing.assert_allclose(np.array(_seq(c, 5, [1.0] * 5 if plateau else None)), np.array(full[3:]),
                                   rtol=1e-12)


@requires_torch
def test_multistep_loads_torch_counter_state():
    import torch

    p = torch.zeros(1, requires_grad=True)
    t = torch.optim.lr_scheduler.MultiStepLR(torch.optim.SGD([p], lr=0.1), [3, 1, 3], gamma=0.5)
    s = S.MultiStepLR(_opt(), [9], gamma=0.1)
    s.load_state_dict({k: v for k, v in t.state_dict().items() if k in ("milestones", "gamma", "last_epoch")})
    assert s.milestones == [1, 3, 3] and s.gamma == 0.5
