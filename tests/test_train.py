"""The training helper: logging, checkpoints, resume bit for bit, Ctrl-C."""
import csv
import json
import os
import signal

import numpy as np
import pytest

import minigen as mg
from minigen.data import DataLoader, TensorDataset
from minigen.errors import CheckpointError
from minigen.train import MetricsLogger, Trainer, clip_grad_norm


def _setup(seed_model=0, n=40, bs=8):
    """A small regression model with dropout (so the RNG matters), Adam, StepLR, a shuffled loader."""
    nn, optim = mg.nn, mg.optim
    rng = np.random.default_rng(123)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x @ rng.standard_normal((4, 2)) + 0.1).astype(np.float32)
    mg.manual_seed(seed_model)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 2))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    sched = optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    loader = DataLoader(TensorDataset(x, y), batch_size=bs, shuffle=True, generator=mg.Generator().manual_seed(7))

    def loss_fn(batch):
        xb, yb = batch
        return mg.nn.functional.mse_loss(model(xb), yb)

    def eval_fn():
        return {"val_loss": float(mg.nn.functional.mse_loss(model(mg.Tensor(x)), mg.Tensor(y)).item())}

    return model, opt, sched, loader, loss_fn, eval_fn


def _trainer(out, max_steps=None, epochs=3, seed_model=0, loss_hook=None, **kw):
    model, opt, sched, loader, loss_fn, eval_fn = _setup(seed_model)
    def fn(batch):
        if loss_hook is not None:
            loss_hook(tr)
        return loss_fn(batch)
    tr = Trainer(model, opt, fn, loader, out_dir=out, scheduler=sched, eval_fn=eval_fn, epochs=epochs,
                 max_steps=max_steps, log_every=2, progress=False, **kw)
    return tr


def _params(tr):
    return {k: v.numpy().copy() for k, v in tr.model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_fit_logs_evaluates_and_checkpoints(tmp_path):
    tr = _trainer(tmp_path, epochs=3)
    res = tr.fit()
    assert res["step"] == 15 and res["epoch"] == 3 and not res["interrupted"]
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10, 12, 14]
    assert [(r["step"], r["epoch"]) for r in val] == [(5, 1), (10, 2), (15, 3)]  # one eval per epoch
    assert train[0]["lr"] == 1e-2 and train[-1]["lr"] == pytest.approx(1e-2 * 0.5 ** 3)  # StepLR(4) at step 14
    assert all(r["samples_per_s"] > 0 for r in train)
    assert val[-1]["val_loss"] < val[0]["val_loss"]
    with open(tmp_path / "metrics.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == len(rows) and {"loss", "val_loss", "lr", "step"} <= set(csv_rows[0])
    ck = mg.load(tmp_path / "checkpoint.safetensors")
    assert ck["step"] == 15 and ck["epoch"] == 3 and set(ck) >= {"model", "optimizer", "scheduler", "rng", "loader"}
    assert _same({k: v.numpy() for k, v in ck["model"].items()}, _params(tr))
    assert res["val_loss"] == val[-1]["val_loss"]


def test_resume_is_bit_identical(tmp_path):
    full = _trainer(tmp_path / "full", max_steps=13)
    full.fit()
    # half the run (step 6: in the middle of the second epoch), then fresh objects with another init
    half = _trainer(tmp_path / "half", max_steps=6)
    assert half.fit()["step"] == 6
    mg.manual_seed(999)
    mg.rand(5)  # disturb the global RNG: the checkpoint must restore it
    rest = _trainer(tmp_path / "half", max_steps=13, seed_model=1)
    assert not _same(_params(rest), _params(half))
    res = rest.fit(resume=True)
    assert res["resumed"] and res["step"] == 13
    assert _same(_params(rest), _params(full))
    sd_a, sd_b = full.optimizer.state_dict(), rest.optimizer.state_dict()
    for k in sd_a["state"]:
        for name, v in sd_a["state"][k].items():
            w = sd_b["state"][k][name]
            assert np.array_equal(np.asarray(v.numpy() if hasattr(v, "numpy") else v),
                                  np.asarray(w.numpy() if hasattr(w, "numpy") else w))
    # the log of the resumed run equals the uninterrupted one, except timings and the final eval of the first half
    def strip(path):
        return [{k: v for k, v in json.loads(line).items() if k not in ("samples_per_s", "elapsed_s")}
                for line in open(path)]
    resumed_log = strip(tmp_path / "half" / "metrics.jsonl")
    assert {"split": "val", "step": 6, "epoch": 1, "val_loss": resumed_log[4]["val_loss"]} == resumed_log[4]
    assert resumed_log[:4] + resumed_log[5:] == strip(tmp_path / "full" / "metrics.jsonl")


def test_ctrl_c_signal_saves_and_resumes(tmp_path):
    full = _trainer(tmp_path / "full", max_steps=12)
    full.fit()

    def hook(tr):
        if tr.step == 4:  # during step 5: like a user pressing Ctrl-C
            signal.raise_signal(signal.SIGINT)

    tr = _trainer(tmp_path / "run", max_steps=12, loss_hook=hook)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler (SIG_IGN when pytest runs in the background)
    res = tr.fit()
    assert res["interrupted"] and res["step"] == 5  # the step in progress was finished
    assert mg.load(tmp_path / "run" / "checkpoint.safetensors")["step"] == 5
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    again = _trainer(tmp_path / "run", max_steps=12, seed_model=3)
    assert again.fit(resume=True)["step"] == 12
    assert _same(_params(again), _params(full))


def test_keyboard_interrupt_mid_step_saves_previous_state(tmp_path):
    full = _trainer(tmp_path / "full", max_steps=9)
    full.fit()

    def hook(tr):
        if tr.step == 7:
            mg.rand(3)  # the interrupted step already consumed randomness...
            raise KeyboardInterrupt  # ...and dies before its update

    tr = _trainer(tmp_path / "run", max_steps=9, loss_hook=hook)
    res = tr.fit()
    assert res["interrupted"] and res["step"] == 7
    again = _trainer(tmp_path / "run", max_steps=9, seed_model=2)
    again.fit(resume=True)
    assert _same(_params(again), _params(full))


def test_interrupt_inside_optimizer_step_keeps_old_checkpoint(tmp_path):
    tr = _trainer(tmp_path, max_steps=10, checkpoint_every=3)
    real_step = tr.optimizer.step

    def step():
        if tr.step == 4:
            raise KeyboardInterrupt
        real_step()

    tr.optimizer.step = step
    res = tr.fit()
    assert res["interrupted"] and mg.load(tmp_path / "checkpoint.safetensors")["step"] == 3


def test_progress_bar_off_when_not_a_tty(tmp_path, capsys):
    tr = _trainer(tmp_path / "a", max_steps=3, )
    tr.progress = None  # auto: stderr is captured, so not a TTY
    tr.fit()
    assert "step" not in capsys.readouterr().err
    tr2 = _trainer(tmp_path / "b", max_steps=3)
    tr2.progress = True
    tr2.fit()
    err = capsys.readouterr().err
    assert "/3 [" in err and "loss=" in err and "samples_s=" in err  # a bar with loss and throughput


def test_load_into_model_of_other_shape_lists_differences(tmp_path):
    nn = mg.nn
    a = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    mg.save(a.state_dict(), tmp_path / "a.safetensors")
    b = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 5), nn.Linear(5, 2))  # 0.* fit, 1.* differ, 2.* missing
    before = b[0].weight.detach().numpy().copy()
    with pytest.raises(CheckpointError) as e:
        b.load_state_dict(mg.load(tmp_path / "a.safetensors"))
    msg = str(e.value)
    assert "1.weight" in msg and "(2, 3)" in msg and "(5, 3)" in msg
    assert "2.weight" in msg and "2.bias" in msg and "0.weight" not in msg
    assert np.array_equal(b[0].weight.detach().numpy(), before)  # nothing was loaded, not even the keys that fit


def test_metrics_logger_columns_and_truncate(tmp_path):
    lg = MetricsLogger(tmp_path)
    lg.log({"split": "train", "step": 1, "loss": 2.0})
    lg.log({"split": "train", "step": 2, "loss": 1.0})
    lg.log({"split": "val", "step": 2, "acc": mg.tensor(0.5)})  # new column: CSV rewritten with it
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["split", "step", "loss", "acc"] and rows[2]["acc"] == "0.5"
    assert lg.series("loss") == [(1, 2.0), (2, 1.0)]
    lg.truncate(1)
    again = MetricsLogger(tmp_path)
    assert again.rows == [{"split": "train", "step": 1, "loss": 2.0}]
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"split": "tr')  # a half-written line from a crash is dropped
    assert len(MetricsLogger(tmp_path).rows) == 1


def test_clip_grad_norm_hand_case():
    a = mg.Tensor(np.zeros(2, np.float32), requires_grad=True)
    b = mg.Tensor(np.zeros(1, np.float32), requires_grad=True)
    a.grad = mg.Tensor(np.array([3.0, 0.0], np.float32))
    b.grad = mg.Tensor(np.array([4.0], np.float32))
    assert clip_grad_norm([a, b], 1.0) == pytest.approx(5.0)  # sqrt(9 + 16)
    assert np.allclose(a.grad.numpy(), [0.6, 0.0], atol=1e-6) and np.allclose(b.grad.numpy(), [0.8], atol=1e-6)
    assert clip_grad_norm([a, b], 10.0) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(b.grad.numpy(), [0.8], atol=1e-6)  # under the limit: unchanged


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    tr = _trainer(tmp_path, max_steps=2)
    res = tr.fit(resume=True)
    assert not res["resumed"] and res["step"] == 2
    assert os.path.exists(tmp_path / "checkpoint.safetensors")
