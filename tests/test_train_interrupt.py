"""Trainer: an interrupt at any phase of a step leaves one consistent step on disk, and resuming from it
equals the uninterrupted run bit for bit (parameters, BatchNorm buffers, optimizer moments, scheduler, RNG).

Each case injects a KeyboardInterrupt (or a double Ctrl-C signal) at one phase of step K, checks that the
checkpoint is exactly the uninterrupted run's state at the step it claims, then resumes with fresh objects
(another init, a disturbed global RNG) and compares the end state with the uninterrupted run.
"""
import signal
import threading

import numpy as np
import pytest

import minigen as mg
import minigen.train as mtrain
from minigen.data import DataLoader, Dataset
from minigen.train import Trainer

N = 13            # steps; 5 batches per epoch, so the run crosses two epoch boundaries
K = 7             # the step that gets interrupted (the 2nd batch of the 2nd epoch)
CKPT_EVERY = 3    # a checkpoint at steps 3, 6, 9, 12 (and epoch ends)


class _Data(Dataset):
    """36 samples; ``hook(i)`` runs on every item read (to inject an interrupt inside the loader)."""

    def __init__(self):
        rng = np.random.default_rng(5)
        self.x = rng.standard_normal((36, 4)).astype(np.float32)
        self.y = (self.x @ rng.standard_normal((4, 2))).astype(np.float32)
        self.hook = None

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        if self.hook is not None:
            self.hook(i)
        return self.x[i], self.y[i]


def _trainer(out, seed_model=0, max_steps=N, eval_hook=None, interval="step"):
    nn = mg.nn
    data = _Data()
    mg.manual_seed(seed_model)
    # BatchNorm: the forward updates buffers; Dropout: the forward draws from the global RNG
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 2))
    opt = mg.optim.Adam(model.parameters(), lr=1e-2)
    sched = mg.optim.lr_scheduler.StepLR(opt, step_size=3 if interval == "step" else 1, gamma=0.7)
    loader = DataLoader(data, batch_size=8, shuffle=True, generator=mg.Generator().manual_seed(3))
    holder = {}

    def loss_fn(batch):
        xb, yb = batch
        return mg.nn.functional.mse_loss(model(xb), yb)

    def eval_fn():
        noise = mg.randn(36, 4) * 0.01  # an evaluation that draws randomness
        if eval_hook is not None:
            eval_hook(holder["tr"])
        return {"val_loss": float(mg.nn.functional.mse_loss(model(mg.Tensor(data.x) + noise),
                                                            mg.Tensor(data.y)).item())}

    tr = Trainer(model, opt, loss_fn, loader, out_dir=out, scheduler=sched, eval_fn=eval_fn, epochs=100,
                 max_steps=max_steps, log_every=2, eval_every=4, checkpoint_every=CKPT_EVERY, progress=False,
                 scheduler_interval=interval)
    holder["tr"] = tr
    tr.data = data
    return tr


def _arrays(obj, prefix=""):
    """Flatten a nested state into {path: np.ndarray or python value} for exact comparison."""
    out = {}
    if isinstance(obj, mg.Tensor):
        out[prefix] = obj.detach().numpy().copy()
    elif isinstance(obj, np.ndarray):
        out[prefix] = obj.copy()
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_arrays(v, f"{prefix}/{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_arrays(v, f"{prefix}/{i}"))
    else:
        out[prefix] = obj
    return out


def _same(a, b):
    a, b = _arrays(a), _arrays(b)
    assert a.keys() == b.keys(), set(a) ^ set(b)
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], (k, a[k], b[k])
    return True


_REF = {}


def _reference(tmp_path_factory, steps, interval="step"):
    """The uninterrupted run's training state after ``steps`` steps (cached)."""
    if (steps, interval) not in _REF:
        tr = _trainer(tmp_path_factory.mktemp(f"ref{steps}"), max_steps=steps, interval=interval)
        tr.fit()
        st = tr.state_dict()
        _REF[steps, interval] = {k: st[k] for k in ("model", "optimizer", "scheduler", "rng", "loader",
                                                    "loader_generator", "step", "epoch")}
    return _REF[steps, interval]


BATCHES = 5  # per epoch (36 samples, batch 8)


def _position(st):
    """(epoch, epoch seed, batches done) with "the epoch's last batch is done" and "the next epoch has not
    started" as one position: a checkpoint written right after an epoch's last step and one written after the
    epoch-end bookkeeping are the same point of the run."""
    ld = st["loader"]
    if ld["epoch_seed"] is not None and ld["batches_done"] >= BATCHES:
        return (st["epoch"] + 1, None, 0)
    return (st["epoch"], ld["epoch_seed"], ld["batches_done"])


def _exhausted(st):
    ld = st["loader"]
    return ld["epoch_seed"] is not None and ld["batches_done"] >= BATCHES


def _without_lr(opt_state):
    return {**opt_state, "param_groups": [{k: v for k, v in g.items() if k != "lr"} for g in opt_state["param_groups"]]}


def _same_state(ck, ref):
    """The checkpoint is the uninterrupted run's state at the same step."""
    core = ("model", "optimizer", "scheduler", "rng", "step")
    if _exhausted(ck) != _exhausted(ref):
        # one is saved after the epoch's last step, the other after that epoch's end (which includes an epoch
        # scheduler's step): the same point except for the lr the pending epoch end will set (the resume check
        # that follows covers the lr trajectory)
        core = ("model", "rng", "step")
        _same(_without_lr(ck["optimizer"]), _without_lr(ref["optimizer"]))
    _same({k: ck[k] for k in core}, {k: ref[k] for k in core})
    ld = ck["loader"]
    if ld["epoch_seed"] is not None and ld["batches_done"] == 0:
        # the next epoch has begun (its shuffle seed drawn from the loader's generator) but no batch was taken:
        # the same point as "not begun"; the resume check that follows shows it continues identically
        assert ck["epoch"] == _position(ref)[0]
        return
    assert _position(ck) == _position(ref)
    _same(ck["loader_generator"], ref["loader_generator"])


def _check_saved_and_resume(tmp_path, tmp_path_factory, run_dir, expect_step, interval="step"):
    ck = mg.load(run_dir / "checkpoint.safetensors")
    assert ck["step"] == expect_step
    _same_state(ck, _reference(tmp_path_factory, expect_step, interval))
    mg.manual_seed(4321)
    mg.rand(7)  # disturb the global RNG: the checkpoint restores it
    again = _trainer(run_dir, seed_model=1, interval=interval)
    res = again.fit(resume=True)
    assert res["resumed"] and res["step"] == N and not res["interrupted"]
    _same({k: v for k, v in again.state_dict().items() if k in ("model", "optimizer", "scheduler", "rng", "step",
                                                                "epoch", "loader")},
          {k: v for k, v in _reference(tmp_path_factory, N, interval).items()
           if k in ("model", "optimizer", "scheduler", "rng", "step", "epoch", "loader")})


class _Once:
    def __init__(self):
        self.fired = False

    def __call__(self):
        if self.fired:
            return False
        self.fired = True
        return True


def _at_k(tr):
    # tr._next_step is the step in progress while it runs
    return tr._phase is not None and tr._next_step == K


# each case: (name, installer(tr) -> None, expected saved step)
def _loss_raises(tr):
    once = _Once()
    orig = tr.loss_fn

    def fn(batch):
        loss = orig(batch)  # the forward has run: dropout drew randomness, BatchNorm updated its buffers
        if _at_k(tr) and once():
            raise KeyboardInterrupt
        return loss
    tr.loss_fn = fn


def _backward_raises(tr):
    once = _Once()
    orig = tr.loss_fn

    def fn(batch):
        loss = orig(batch)
        if _at_k(tr):
            def hook(g):
                if once():
                    raise KeyboardInterrupt
                return g
            loss.register_hook(hook)
        return loss
    tr.loss_fn = fn


def _loader_raises(tr):
    once = _Once()
    tr.data.hook = lambda i: (_ for _ in ()).throw(KeyboardInterrupt) if (tr._phase == "pre" and tr.step == K - 1
                                                                          and once()) else None


def _wrap(obj, name, before=None, after=None):
    orig = getattr(obj, name)

    def wrapped(*a, **kw):
        if before is not None:
            before()
        out = orig(*a, **kw)
        if after is not None:
            after()
        return out
    setattr(obj, name, wrapped)


def _raise_if(tr, once, phase_ok=True):
    def f():
        if _at_k(tr) and phase_ok and once():
            raise KeyboardInterrupt
    return f


def _opt_before(tr):
    _wrap(tr.optimizer, "step", before=_raise_if(tr, _Once()))


def _opt_after(tr):
    _wrap(tr.optimizer, "step", after=_raise_if(tr, _Once()))


def _sched_before(tr):
    _wrap(tr.scheduler, "step", before=_raise_if(tr, _Once()))


def _sched_after(tr):
    _wrap(tr.scheduler, "step", after=_raise_if(tr, _Once()))


def _after_train_step(tr):
    # the case: the update is complete, the counters have not advanced yet
    _wrap(tr, "_train_step", after=_raise_if(tr, _Once()))


def _in_log(tr):
    once = _Once()
    _wrap(tr.logger, "log", before=lambda: (tr.step == K + 1 and once()) and (_ for _ in ()).throw(KeyboardInterrupt))


def _in_eval(tr):
    pass  # the evaluation hook is passed to _trainer by the test (eval_hook)


def _in_checkpoint(tr):
    once = _Once()
    real = mtrain._save

    def save(state, path):
        if state["step"] == 9 and once():  # step 9's periodic checkpoint
            raise KeyboardInterrupt
        return real(state, path)
    tr._patch_save = save


CASES = [
    ("loader", _loader_raises, K - 1),        # inside next(batch): roll back
    ("loss_fn", _loss_raises, K - 1),         # after the forward: roll back (RNG, buffers, loader)
    ("backward", _backward_raises, K - 1),    # inside backward: roll back
    ("optimizer.step before", _opt_before, 6),  # inside the update: nothing saved, the step-6 checkpoint stays
    ("optimizer.step after", _opt_after, 6),
    ("scheduler.step before", _sched_before, K),  # optimizer done: roll forward
    ("scheduler.step after", _sched_after, K),
    ("after _train_step", _after_train_step, K),  # update done, counters not advanced: roll forward
    ("logging", _in_log, K + 1),              # after the step: consistent, saved as is
    ("evaluation", _in_eval, 8),              # eval at step 8 interrupted: saved at 8, eval redone on resume
    ("checkpoint write", _in_checkpoint, 9),
]


PHASE_OF = {"loader": "before the update", "loss_fn": "before the update", "backward": "before the update",
            "optimizer.step before": "inside the update", "optimizer.step after": "inside the update",
            "scheduler.step before": "scheduler step", "scheduler.step after": "scheduler step",
            "after _train_step": "update complete", "logging": "between steps", "evaluation": "evaluation",
            "checkpoint write": "between steps"}


@pytest.mark.parametrize("name, install, expect", CASES, ids=[c[0] for c in CASES])
def test_interrupt_at_each_phase_resumes_bit_identically(tmp_path, tmp_path_factory, monkeypatch, name, install,
                                                         expect):
    once = _Once()

    def eval_hook(tr):
        if name == "evaluation" and tr.step == 8 and once():
            raise KeyboardInterrupt

    run = tmp_path / "run"
    tr = _trainer(run, eval_hook=eval_hook)
    install(tr)
    if hasattr(tr, "_patch_save"):
        monkeypatch.setattr(mtrain, "_save", tr._patch_save)
    res = tr.fit()
    monkeypatch.undo()
    assert res["interrupted"], name
    assert res["interrupt_phase"] == PHASE_OF[name]
    _check_saved_and_resume(tmp_path, tmp_path_factory, run, expect)
    if name == "evaluation":  # the interrupted evaluation was redone on resume: the log has its row
        rows = mtrain.MetricsLogger(run).rows
        assert [r["step"] for r in rows if r["split"] == "val"].count(8) == 1


def _double_ctrl_c(tr, where):
    once = _Once()

    def press_twice():
        if _at_k(tr) and once():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)

    if where == "optimizer":
        _wrap(tr.optimizer, "step", before=press_twice)
    elif where == "scheduler":
        _wrap(tr.scheduler, "step", after=press_twice)
    else:
        orig = tr.loss_fn

        def fn(batch):
            loss = orig(batch)
            press_twice()
            return loss
        tr.loss_fn = fn


@pytest.mark.parametrize("where, expect", [("optimizer", K), ("scheduler", K), ("loss", K - 1)])
def test_second_ctrl_c_is_deferred_until_the_update_is_counted(tmp_path, tmp_path_factory, where, expect):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals need the main thread")
    run = tmp_path / "run"
    tr = _trainer(run)
    _double_ctrl_c(tr, where)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler (SIG_IGN when pytest runs as a background job)
    res = tr.fit()
    assert res["interrupted"] and signal.getsignal(signal.SIGINT) is before  # the handler is restored
    _check_saved_and_resume(tmp_path, tmp_path_factory, run, expect)


@pytest.mark.parametrize("name, install, expect", [CASES[1], CASES[7]], ids=["loss_fn", "after _train_step"])
def test_interrupt_when_fit_runs_in_a_thread(tmp_path, tmp_path_factory, name, install, expect):
    run = tmp_path / "run"
    tr = _trainer(run)
    install(tr)
    out = {}
    th = threading.Thread(target=lambda: out.update(tr.fit()))
    th.start()
    th.join(120)
    assert out.get("interrupted"), out
    _check_saved_and_resume(tmp_path, tmp_path_factory, run, expect)


def test_request_stop_from_another_thread(tmp_path, tmp_path_factory):
    run = tmp_path / "run"
    tr = _trainer(run)
    _wrap(tr.optimizer, "step", after=lambda: tr.request_stop() if _at_k(tr) else None)
    res = tr.fit()
    assert res["interrupted"] and res["step"] == K  # the step in progress is finished, then saved
    _check_saved_and_resume(tmp_path, tmp_path_factory, run, K)


def _async_raise(thread, exc=KeyboardInterrupt):
    import ctypes

    n = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc))
    return n == 1


def test_interrupt_delivered_to_the_fit_thread_at_random_moments(tmp_path, tmp_path_factory):
    """A KeyboardInterrupt delivered asynchronously to the thread running fit (between any two bytecodes) at a
    random moment: whatever is on disk afterwards is one consistent step of the uninterrupted run, and resuming
    from it ends bit-identical to the uninterrupted run."""
    import os
    import random
    import time

    pytest.importorskip("ctypes")
    trials = int(os.environ.get("MINIGEN_ASYNC_TRIALS", "24"))
    rnd = random.Random(99)
    spans = []
    for i in range(2):  # the first run may include one-off warm-up costs: time the second
        t0 = time.perf_counter()
        _trainer(tmp_path / f"timing{i}").fit()
        spans.append(time.perf_counter() - t0)
    span = spans[-1]
    outcomes = {}
    for trial in range(trials):
        run = tmp_path / f"run{trial}"
        tr = _trainer(run)
        result = {}

        def target():
            try:
                result.update(tr.fit())
            except KeyboardInterrupt:  # landed inside the interrupt handling itself: fit re-raised
                result["escaped"] = True

        th = threading.Thread(target=target)
        th.start()
        time.sleep(rnd.uniform(0, span))
        delivered = th.is_alive() and _async_raise(th)
        th.join(120)
        assert not th.is_alive()
        ck_path = run / "checkpoint.safetensors"
        saved = mg.load(ck_path)["step"] if ck_path.exists() else None
        kind = ("not delivered" if not delivered else "escaped fit" if result.get("escaped")
                else f"interrupted: {result['interrupt_phase']}" if result.get("interrupted") else "finished first")
        outcomes[kind] = outcomes.get(kind, 0) + 1
        if saved is None:
            continue
        _same_state(mg.load(ck_path), _reference(tmp_path_factory, saved))
        if saved < N:
            again = _trainer(run, seed_model=1)
            assert again.fit(resume=True)["step"] == N
            end, ref = again.state_dict(), _reference(tmp_path_factory, N)
            _same({k: end[k] for k in ("model", "optimizer", "scheduler", "rng", "epoch", "loader")},
                  {k: ref[k] for k in ("model", "optimizer", "scheduler", "rng", "epoch", "loader")})
    print(f"{trials} async interrupts: {outcomes}")
    assert sum(outcomes.values()) == trials


@pytest.mark.parametrize("interval", ["step", "epoch"])
@pytest.mark.parametrize("stop", range(1, N))
def test_stop_at_every_step_then_resume(tmp_path, tmp_path_factory, stop, interval):
    """max_steps=stop, then resume to N: equal to the uninterrupted run, epoch counter and an epoch scheduler
    included (a stop on an epoch's last step used to count that epoch's end twice on resume)."""
    run = tmp_path / "run"
    assert _trainer(run, max_steps=stop, interval=interval).fit()["step"] == stop
    _check_saved_and_resume(tmp_path, tmp_path_factory, run, stop, interval)


def _fit_with_interrupt_at_line(tr, target, lines=None):
    """Run ``tr.fit()`` raising KeyboardInterrupt at the ``target``-th line executed in minigen/train.py
    (0: never; ``lines``, a list, receives (function, line number) of each); returns (fit result or
    {'escaped': True}, number of such lines executed)."""
    import sys

    count = [0]
    fname = mtrain.__file__

    def local(frame, event, arg):
        if event == "line":
            count[0] += 1
            if lines is not None:
                lines.append((frame.f_code.co_name, frame.f_lineno))
            if count[0] == target:
                raise KeyboardInterrupt  # raised in the traced frame, at this line; tracing then stops
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename == fname else None

    handler = signal.getsignal(signal.SIGINT)
    sys.settrace(tracer)
    try:
        res = tr.fit()
    except KeyboardInterrupt:
        res = {"escaped": True}
    finally:
        sys.settrace(None)
        if signal.getsignal(signal.SIGINT) is not handler:  # an interrupt inside fit's own `finally` skipped it
            res["handler_left"] = True
            signal.signal(signal.SIGINT, handler)
    return res, count[0]


@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_interrupt_at_any_line_of_the_trainer(tmp_path, tmp_path_factory, interval):
    """A KeyboardInterrupt raised at the n-th executed line of the Trainer's code, for n drawn over the whole
    run (MINIGEN_LINE_TRIALS=all: every line): the checkpoint is one consistent step, resuming matches.
    With a per-step and with a per-epoch scheduler (whose step is part of the epoch's end)."""
    import os
    import random

    lines = []
    _, total = _fit_with_interrupt_at_line(_trainer(tmp_path / "count", interval=interval), 0, lines)
    # fit's protected block: from the `try:` after the Ctrl-C handler is installed to its `finally:`
    src = open(mtrain.__file__).read().splitlines()
    blk_start = next(i for i, t in enumerate(src, 1) if "old_handler = self._install_sigint()" in t)
    blk_end = next(i for i in range(blk_start, len(src)) if src[i - 1].startswith("        finally:"))
    assert src[blk_start - 2].strip() == "try:"  # (an interrupt at the `try:` line itself is outside it)
    want = os.environ.get("MINIGEN_LINE_TRIALS", "30")
    targets = range(1, total + 1) if want == "all" else sorted(random.Random(5).sample(range(1, total + 1), int(want)))
    outcomes = {}
    for n in targets:
        run = tmp_path / f"line{n}"
        tr = _trainer(run, interval=interval)
        res, _ = _fit_with_interrupt_at_line(tr, n)
        assert mg.is_grad_enabled() and tr.model.training, n  # fit leaves the modes as a finished run does
        if res.get("escaped"):  # only from fit's setup before its protected block, or its finally/return
            fn, line = lines[n - 1]
            assert fn == "_install_sigint" or (fn == "fit" and not blk_start <= line < blk_end), (n, fn, line)
        kind = "escaped fit" if res.get("escaped") else (
            f"interrupted: {res['interrupt_phase']}" if res.get("interrupted") else "finished")
        outcomes[kind] = outcomes.get(kind, 0) + 1
        ck_path = run / "checkpoint.safetensors"
        if not ck_path.exists():
            continue
        ck = mg.load(ck_path)
        _same_state(ck, _reference(tmp_path_factory, ck["step"], interval))
        if ck["step"] < N:
            again = _trainer(run, seed_model=1, interval=interval)
            assert again.fit(resume=True)["step"] == N
            end, ref = again.state_dict(), _reference(tmp_path_factory, N, interval)
            _same({k: end[k] for k in ("model", "optimizer", "scheduler", "rng", "epoch", "loader")},
                  {k: ref[k] for k in ("model", "optimizer", "scheduler", "rng", "epoch", "loader")})
    print(f"{len(targets)} of {total} Trainer lines interrupted: {outcomes}")
