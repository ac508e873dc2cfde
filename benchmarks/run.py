"""minigen benchmark suite: kernels vs reference vs NumPy vs PyTorch CPU eager, side by side in one run.

    python benchmarks/run.py                  # everything, at 1 and at 2 threads (minigen and torch alike)
    python benchmarks/run.py --quick          # fewer repeats, no reference column at the 2nd count, no cold start
    python benchmarks/run.py --only conv,models --threads 1,2,4
    python benchmarks/run.py --only convrule --threads 1 --no-write   # re-measure the conv algorithm rule

Threads: every row runs at each count of ``--threads`` (default ``1,2``) in one process, set at run time
for minigen with ``mg.set_num_threads`` (BLAS through threadpoolctl + the kernel pool;
minigen/kernels/threads.py) and for PyTorch with ``torch.set_num_threads``; the columns of all the
counts take turns repeat by repeat. The header records the CPU model, its vector ISA (AVX2 / AVX-512 /
AMX), the BLAS library, version and threading layer (threadpoolctl), and each thread count's clock.

Memory: for every model row the peak resident memory of the training step is measured in a FRESH
subprocess per library (minigen's child never imports torch): after one warm-up step (libraries loaded,
kernels compiled, optimizer state allocated), the process's peak RSS over 3 more steps, and that peak
minus the RSS just before them (the steps' own working memory: activations, gradients, column matrices),
read from /proc/self/status (VmHWM, reset through /proc/self/clear_refs). The memory table's ratio
compares the steps' own peaks.

Writes benchmarks/results/results.json and benchmarks/results/results.md (command, machine, versions,
thread count and load average at the top). Every row times the SAME inputs in every column, after
warm-up; the table shows the min and the median of the repeats (ms) and the ratio minigen/PyTorch of
the mins (< 1: faster).

Clocks: each repeat is timed with both the wall clock and the process CPU clock, and the columns of a
row take turns repeat by repeat (interleaved), so a change of load hits them alike. On a shared, loaded
machine the wall clock mostly measures who else is running (a 2-core box at load 10 gives a process
a fraction of a core, in time slices longer than many benchmark batches); the CPU clock counts only
the time this process ran. With one thread (``--threads 1``) CPU time equals wall time on an idle
machine, so the table's headline uses the CPU clock then (``--clock auto``), and shows the wall-clock
ratio next to it; with several threads it uses the wall clock (CPU time would add the threads up).

Columns:
- ``minigen (kernels)``: minigen with ``MINIGEN_KERNELS=auto`` (the Numba kernels where they apply);
- ``minigen (reference)``: the same code with ``dispatch.use_reference()`` (the NumPy reference ops);
- ``NumPy``: a hand-written NumPy version where that is meaningful (matmul);
- ``PyTorch``: torch CPU eager with ``torch.set_num_threads`` = the Numba thread count.
Rows marked "[kernel]" time the kernels directly on arrays (array in, array out) against the NumPy
reference formula on arrays. Rows marked "[minigen]" go through minigen Tensors, autograd and (for
models) nn/optim.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import minigen as mg  # noqa: E402
from minigen.kernels import dispatch, threads  # noqa: E402

try:
    if os.environ.get("MINIGEN_BENCH_NO_TORCH"):  # the cold-start child times minigen alone
        raise ImportError
    import torch  # noqa: E402
    import torch.nn.functional as TF  # noqa: E402
except Exception:  # torch is optional
    torch = None

RESULTS = os.path.join(ROOT, "benchmarks", "results")


# ================================================================== timing
CLOCK = ["cpu"]  # "cpu" or "wall": the clock of the headline columns (set in main)


def _calibrate(fn, min_time=0.03, warmup=2):
    """Calls per batch so that a batch lasts about ``min_time`` CPU seconds (from calls timed until 10 ms
    have passed, so that one preempted call cannot skew it), after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    calls, t0 = 0, time.process_time()
    while True:
        fn()
        calls += 1
        el = time.process_time() - t0
        if el >= 0.01 or calls >= 1000:
            break
    return max(1, int(min_time / max(el / calls, 1e-7)))


def _batch(fn, number):
    """(wall ms, cpu ms) per call over one batch of ``number`` calls."""
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(number):
        fn()
    w1, c1 = time.perf_counter(), time.process_time()
    return (w1 - w0) / number * 1e3, (c1 - c0) / number * 1e3


SETTLE_S = 0.15
_last_threads = [1]


def _settle():
    """Wait until the thread pools of the column measured before have gone to sleep, whenever that column or
    this one runs on several threads.

    OpenBLAS's idle threads keep spinning (sched_yield) for about 2**28 cycles (~0.1 s) after a call, and
    OpenMP pools spin briefly too; on a 2-core machine the next column's threads would share the cores with
    them (the 2-thread PyTorch column used to read 5 ms for a 0.3 ms sgemm 256 right after minigen's). A
    1-thread column right after a 2-thread one is hit as well, and on the CPU clock more than on the wall
    clock: process CPU time counts the spinning pool threads of the same process (minigen's 1-thread sgemm
    1024 read 17.2 ms against NumPy's 14.8 ms that way; alone, both take 12.8 ms)."""
    n = threads.get_num_threads()
    if max(n, _last_threads[0]) > 1:
        time.sleep(SETTLE_S)
    _last_threads[0] = n


def timeit_interleaved(fns, repeat=7):
    """Time several callables side by side: after calibrating each, the repeats take turns (column 1,
    column 2, ..., then again), so a change of load on the shared machine hits every column alike.
    ``fns``: {key: (fn, context_factory or None)}. Returns {key: {'wall': (min, median), 'cpu': (min, median)}}
    (or {key: Exception} for a column that failed)."""
    import contextlib

    res, numbers = {}, {}
    for key, (fn, ctx) in fns.items():
        try:
            with (ctx() if ctx else contextlib.nullcontext()):
                numbers[key] = _calibrate(fn)
            res[key] = {"wall": [], "cpu": []}
        except Exception as e:  # a failing column is reported, not fatal
            res[key] = e
    for _ in range(repeat):
        for key, (fn, ctx) in fns.items():
            if isinstance(res[key], Exception):
                continue
            try:
                with (ctx() if ctx else contextlib.nullcontext()):
                    _settle()
                    w, c = _batch(fn, numbers[key])
                res[key]["wall"].append(w)
                res[key]["cpu"].append(c)
            except Exception as e:
                res[key] = e
    for key, r in res.items():
        if not isinstance(r, Exception):
            res[key] = {clk: (min(v), statistics.median(v)) for clk, v in r.items()}
    return res


class _Threads:
    """Context: minigen (BLAS + kernel pool) and torch both at ``n`` threads; optionally the reference mode."""

    def __init__(self, n, reference=False):
        self.n, self.reference, self.mode = n, reference, None

    def __call__(self):
        return self

    def __enter__(self):
        threads.set_num_threads(self.n)
        if torch is not None:
            torch.set_num_threads(self.n)
        if self.reference:
            self.mode = dispatch.use_reference()
            self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        if self.mode is not None:
            self.mode.__exit__(*exc)
            self.mode = None
        return False


def _clock(n):
    """The headline clock at n threads: CPU time at 1 thread (immune to the load of a shared box), else wall."""
    return CLOCK[0] if CLOCK[0] != "auto" else ("cpu" if n == 1 else "wall")


class Suite:
    def __init__(self, repeat, thread_counts=(1, 2), quick=False):
        self.rows = []
        self.repeat = repeat
        self.thread_counts = tuple(thread_counts)
        self.quick = quick
        self.rss = False  # peak memory of the model rows in fresh processes (main sets it)

    def row(self, group, name, kernels=None, reference=None, numpy=None, torch_fn=None, note="", extra=None,
            unit="ms"):
        """Time the columns at every thread count, all interleaved. The row keeps, per count n,
        ``r["threads"][n] = {column: {min, median}, ratio_vs_torch, ...}`` on that count's clock, and at the
        top level the first count's values (the keys earlier versions wrote)."""
        r = {"group": group, "name": name, "note": note, "unit": unit, "threads": {}}
        fns = {}
        for i, n in enumerate(self.thread_counts):
            for key, fn in (("minigen_kernels", kernels), ("minigen_reference", reference), ("numpy", numpy),
                            ("torch", torch_fn)):
                if fn is None or (key == "minigen_reference" and i > 0 and self.quick):
                    continue
                fns[(n, key)] = (fn, _Threads(n, reference=key == "minigen_reference"))
        res = timeit_interleaved(fns, self.repeat)
        for i, n in enumerate(self.thread_counts):
            clock = _clock(n)
            d = {"clock": clock}
            for key in ("minigen_kernels", "minigen_reference", "numpy", "torch"):
                t = res.get((n, key))
                d[key] = d[key + "_wall"] = d[key + "_cpu"] = None
                if t is None:
                    continue
                if isinstance(t, Exception):
                    r["note"] = (r["note"] + f" [{key}@{n} failed: {type(t).__name__}: {str(t)[:120]}]").strip()
                    continue
                for clk in ("wall", "cpu"):
                    d[f"{key}_{clk}"] = {"min": t[clk][0], "median": t[clk][1]}
                d[key] = d[f"{key}_{clock}"]
            for clk in ("wall", "cpu"):
                k, t = d[f"minigen_kernels_{clk}"], d[f"torch_{clk}"]
                d[f"ratio_vs_torch_{clk}"] = (k["min"] / t["min"]) if k and t else None
                d[f"ratio_vs_torch_median_{clk}"] = (k["median"] / t["median"]) if k and t else None
                k, f = d[f"minigen_kernels_{clk}"], d[f"minigen_reference_{clk}"]
                d[f"speedup_vs_reference_{clk}"] = (f["min"] / k["min"]) if k and f else None
            d["ratio_vs_torch"] = d[f"ratio_vs_torch_{clock}"]
            d["ratio_vs_torch_median"] = d[f"ratio_vs_torch_median_{clock}"]
            r["threads"][n] = d
            if i == 0:
                r.update({k: v for k, v in d.items()})
        if len(self.thread_counts) > 1:  # scaling from the first to the last count, on the wall clock
            a, b = r["threads"][self.thread_counts[0]], r["threads"][self.thread_counts[-1]]
            for key in ("minigen_kernels", "torch"):
                if a[key + "_wall"] and b[key + "_wall"]:
                    r[f"scaling_{key}"] = a[key + "_wall"]["min"] / b[key + "_wall"]["min"]
        if extra:
            r.update(extra(r))
        self.rows.append(r)
        _print_row(r)
        return r


def _fmt(c):
    return "—" if c is None else f"{c['min']:.3f} / {c['median']:.3f}"


def _ratio(v):
    return "—" if v is None else f"{v:.2f}"


def _print_row(r):
    per = r.get("threads") or {None: r}
    for n, d in per.items():
        ratio = _ratio(d.get("ratio_vs_torch"))
        if d.get("ratio_vs_torch_wall") is not None:
            ratio += f" (wall {_ratio(d['ratio_vs_torch_wall'])})"
        tag = f"{n}T " if n is not None else ""
        print(f"  {tag}{r['name']:<58} k {_fmt(d.get('minigen_kernels')):>20}  "
              f"ref {_fmt(d.get('minigen_reference')):>20}  np {_fmt(d.get('numpy')):>18}  "
              f"torch {_fmt(d.get('torch')):>18}  ratio {ratio}  {r['note']}", flush=True)


def tt(a, grad=False):
    return torch.tensor(a, requires_grad=grad) if torch is not None else None


# ================================================================== micro benchmarks
def bench_tiny(S):
    a, b, c = (mg.tensor(np.random.rand(16).astype(np.float32), requires_grad=True) for _ in range(3))

    def mg_step():
        (a * b + c).sum().backward()

    ta, tb, tc = (torch.rand(16, requires_grad=True) for _ in range(3)) if torch else (None,) * 3

    def t_step():
        (ta * tb + tc).sum().backward()

    S.row("micro", "tiny-op overhead: (a*b+c).sum() fwd+bwd, 16 elements [minigen]", mg_step, mg_step, None,
          t_step if torch else None, note="target ratio <= 0.5")


def bench_sgemm(S):
    for n in (64, 256, 1024):
        A = np.random.rand(n, n).astype(np.float32)
        B = np.random.rand(n, n).astype(np.float32)
        ma, mb = mg.tensor(A), mg.tensor(B)
        flop = 2.0 * n ** 3
        TA, TB = (torch.tensor(A), torch.tensor(B)) if torch else (None, None)

        def extra(r, flop=flop):
            out = {}
            for key in ("minigen_kernels", "numpy", "torch"):
                if r[key]:
                    out[f"gflops_{key}"] = flop / (r[key]["min"] * 1e-3) / 1e9
            if r["minigen_kernels"] and r["numpy"]:
                out["fraction_of_numpy"] = r["numpy"]["min"] / r["minigen_kernels"]["min"]
            return out

        S.row("micro", f"sgemm {n}x{n} float32 [minigen mg.matmul]", lambda: ma @ mb, lambda: ma @ mb,
              lambda: A @ B, (lambda: TA @ TB) if torch else None, extra=extra,
              note="target (n=1024): >= 0.95 of NumPy GFLOP/s" if n == 1024 else "")


def bench_conv(S):
    """conv2d forward + backward (dx and dw for an upstream gradient) through minigen's op, kernels on/off."""
    F = mg.nn.functional
    shapes = [("DCGAN D conv1 (64,1,28,28)->64 5x5 s2 p2", (64, 1, 28, 28), (64, 1, 5, 5), 2, 2),
              ("DCGAN D conv2 (64,64,14,14)->128 5x5 s2 p2", (64, 64, 14, 14), (128, 64, 5, 5), 2, 2),
              ("DCGAN G output conv (64,32,28,28)->1 5x5 p2", (64, 32, 28, 28), (1, 32, 5, 5), 1, 2),
              ("LeNet conv1 (64,1,28,28)->6 5x5", (64, 1, 28, 28), (6, 1, 5, 5), 1, 0),
              ("LeNet conv2 (64,6,12,12)->16 5x5", (64, 6, 12, 12), (16, 6, 5, 5), 1, 0)]
    for name, xs, ws, s, p in shapes:
        xa = np.random.randn(*xs).astype(np.float32)
        wa = (np.random.randn(*ws) * 0.05).astype(np.float32)
        x, w = mg.tensor(xa, requires_grad=True), mg.tensor(wa, requires_grad=True)
        ga = np.random.randn(*F.conv2d(x, w, stride=s, padding=p).shape).astype(np.float32)
        g = mg.tensor(ga)

        def mg_conv(x=x, w=w, g=g, s=s, p=p):
            F.conv2d(x, w, stride=s, padding=p).backward(g)

        tf = None
        if torch:
            tx, tw, tg = torch.tensor(xa, requires_grad=True), torch.tensor(wa, requires_grad=True), torch.tensor(ga)

            def tf(tx=tx, tw=tw, tg=tg, s=s, p=p):
                TF.conv2d(tx, tw, stride=s, padding=p).backward(tg)

        S.row("micro", f"conv2d fwd+bwd {name} [minigen]", mg_conv, mg_conv, None, tf, note="target ratio <= 1.0")

    # the generator's transposed convolution (DCGAN G: 128x7x7 -> 64x14x14)
    za = np.random.randn(64, 128, 7, 7).astype(np.float32)
    wa = (np.random.randn(128, 64, 5, 5) * 0.05).astype(np.float32)
    z, w = mg.tensor(za, requires_grad=True), mg.tensor(wa, requires_grad=True)
    ga = np.random.randn(64, 64, 14, 14).astype(np.float32)
    g = mg.tensor(ga)

    def mg_convt():
        F.conv_transpose2d(z, w, stride=2, padding=2, output_padding=1).backward(g)

    tf = None
    if torch:
        tz, tw, tg = torch.tensor(za, requires_grad=True), torch.tensor(wa, requires_grad=True), torch.tensor(ga)

        def tf():
            TF.conv_transpose2d(tz, tw, stride=2, padding=2, output_padding=1).backward(tg)

    S.row("micro", "conv_transpose2d fwd+bwd DCGAN G (64,128,7,7)->64 5x5 s2 p2 op1 [minigen]", mg_convt, mg_convt,
          None, tf)


CONV_RULE_SHAPES = [  # (N, C, H, W, O, k, stride, pad): the shapes the direct-vs-im2col rule was measured on
    *[(64, 32, 28, 28, O, 5, 1, 2) for O in (1, 2, 4, 8, 16, 32)],
    *[(64, 64, 14, 14, O, 5, 2, 2) for O in (1, 4, 8)],
    *[(8, 32, 28, 28, O, 5, 1, 2) for O in (1, 4, 8)],
    (64, 6, 12, 12, 16, 5, 1, 0), (64, 1, 28, 28, 6, 5, 1, 0), (64, 16, 14, 14, 16, 3, 1, 1),
    (64, 3, 32, 32, 8, 3, 1, 1), (64, 64, 8, 8, 4, 3, 1, 1)]


def bench_conv_rule(S):
    """The measurement behind the conv algorithm rule (minigen/kernels/cpu_conv_direct.py, ``direct_worth``):
    each map (forward, input gradient, weight gradient) by the direct kernel and by im2col + BLAS on arrays,
    interleaved, at each thread count. Rows: ``[kernel]`` times; ``ratio`` here = direct / im2col (< 1: the
    direct loops win); the note says what the rule picks for the shape."""
    from minigen.kernels import cpu_conv as K, cpu_conv_direct as D

    rng = np.random.default_rng(0)
    for (N, C, H, W, O, k, s, p) in CONV_RULE_SHAPES:
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = (rng.standard_normal((O, C, k, k)) * 0.1).astype(np.float32)
        y = K.conv2d_forward(x, w, s, p)
        g = rng.standard_normal(y.shape).astype(np.float32)
        maps = {"forward": (lambda: K.conv2d_forward(x, w, s, p), lambda: D.conv2d_forward_direct(x, w, s, p),
                            D._worth_forward(x, w, (s, s))),
                "input": (lambda: K.conv2d_backward_input(g, w, (H, W), s, p),
                          lambda: D.conv2d_backward_input_direct(g, w, (H, W), s, p), D._worth_input(g, w, (s, s))),
                "weight": (lambda: K.conv2d_backward_weight(x, g, (k, k), s, p),
                           lambda: D.conv2d_backward_weight_direct(x, g, (k, k), s, p),
                           D._worth_weight(x, g, (s, s), (k, k)))}
        for which, (im2col, direct, picked) in maps.items():
            # the "torch" column holds im2col, so that `ratio` reads direct / im2col
            S.row("conv rule", f"{which} ({N},{C},{H},{W})->{O} {k}x{k} s{s} p{p}: direct vs im2col [kernel]",
                  direct, None, None, im2col,
                  note=f"PyTorch column = im2col + BLAS; rule picks {'direct' if picked else 'im2col'}")


def bench_attention(S):
    from minigen.kernels import cpu_attention as A

    for T in (64, 256):
        B, H, D = 12, 4, 32
        q, k, v = (np.random.randn(B, H, T, D).astype(np.float32) for _ in range(3))
        dout = np.random.randn(B, H, T, D).astype(np.float32)
        scale = 1 / math.sqrt(D)
        mask = np.tril(np.ones((T, T), bool))

        def kern():
            o, lse = A.sdpa_forward(q, k, v, True)
            A.sdpa_backward(dout, q, k, v, o, lse, True)

        def ref():  # materialised softmax in NumPy, forward + backward
            s = np.where(mask, q @ k.transpose(0, 1, 3, 2) * scale, -np.inf)
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            p @ v
            dv = p.transpose(0, 1, 3, 2) @ dout  # noqa: F841
            dp = dout @ v.transpose(0, 1, 3, 2)
            ds = p * (dp - (dp * p).sum(-1, keepdims=True))
            ds @ k * scale
            ds.transpose(0, 1, 3, 2) @ q * scale

        tf = None
        if torch:
            tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
            tdo = torch.tensor(dout)

            def tf():
                TF.scaled_dot_product_attention(tq, tk, tv, is_causal=True).backward(tdo)

        S.row("micro", f"attention fwd+bwd B12 H4 T{T} D32 causal [kernel]", kern, ref, None, tf,
              note="target ratio <= 1.0")
        # through minigen's op
        mq, mk, mv = (mg.tensor(a, requires_grad=True) for a in (q, k, v))
        mdo = mg.tensor(dout)

        def mg_attn():
            mg.nn.functional.scaled_dot_product_attention(mq, mk, mv, is_causal=True).backward(mdo)

        S.row("micro", f"attention fwd+bwd B12 H4 T{T} D32 causal via F.scaled_dot_product_attention [minigen]",
              mg_attn, mg_attn, None, tf)


def _sig(v):
    return 1 / (1 + np.exp(-v))


def bench_lstm(S):
    from minigen.kernels import cpu_rnn as R

    B, I, H, T = 32, 256, 256, 64
    x = np.random.randn(B, I).astype(np.float32)
    h = np.random.randn(B, H).astype(np.float32)
    c = np.random.randn(B, H).astype(np.float32)
    w_ih = (np.random.randn(4 * H, I) * 0.05).astype(np.float32)
    w_hh = (np.random.randn(4 * H, H) * 0.05).astype(np.float32)
    b = np.zeros(4 * H, np.float32)
    dh = np.random.randn(B, H).astype(np.float32)

    def kern():
        gates = x @ w_ih.T + h @ w_hh.T + b
        hn, cn, acts, tc = R.lstm_cell_forward(gates, c)
        dg, dcp = R.lstm_cell_backward(dh, None, acts, c, tc)
        dg @ w_ih, dg @ w_hh, dg.T @ x, dg.T @ h  # noqa: B018

    def ref():
        gates = x @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = np.split(gates, 4, axis=1)
        i, f, g, o = _sig(i), _sig(f), np.tanh(g), _sig(o)
        cn = f * c + i * g
        tc = np.tanh(cn)
        dct = dh * o * (1 - tc * tc)
        dg = np.concatenate([dct * g * i * (1 - i), dct * c * f * (1 - f), dct * i * (1 - g * g),
                             dh * tc * o * (1 - o)], 1)
        dg @ w_ih, dg @ w_hh, dg.T @ x, dg.T @ h  # noqa: B018

    tf = None
    if torch:
        cell = torch.nn.LSTMCell(I, H)
        tx, th, tc_ = torch.tensor(x), torch.tensor(h), torch.tensor(c)
        tdh = torch.tensor(dh)

        def tf():
            hn, cn = cell(tx, (th, tc_))
            hn.backward(tdh)

    S.row("micro", "LSTM cell fwd+bwd B32 I256 H256 [kernel]", kern, ref, None, tf)

    xs = np.random.randn(T, B, I).astype(np.float32)
    dy = np.random.randn(T, B, H).astype(np.float32)
    w_ih2 = (np.random.randn(4 * H, H) * 0.05).astype(np.float32)

    def kern_seq():
        y1, _, _, s1 = R.lstm_seq_forward(xs, w_ih, w_hh, b)
        y2, _, _, s2 = R.lstm_seq_forward(y1, w_ih2, w_hh, b)
        d1 = R.lstm_seq_backward(dy, None, None, y1, w_ih2, w_hh, s2)[0]
        R.lstm_seq_backward(d1, None, None, xs, w_ih, w_hh, s1)

    def ref_layer(xx, wi, wh, dyy):
        hh = np.zeros((B, H), np.float32)
        cc = np.zeros((B, H), np.float32)
        xw = (xx.reshape(T * B, -1) @ wi.T + b).reshape(T, B, 4 * H)
        cache, ys = [], []
        for t in range(T):
            gts = xw[t] + hh @ wh.T
            i, f, g, o = np.split(gts, 4, axis=1)
            i, f, g, o = _sig(i), _sig(f), np.tanh(g), _sig(o)
            cp = cc
            cc = f * cc + i * g
            tcc = np.tanh(cc)
            hh = o * tcc
            cache.append((i, f, g, o, cp, tcc, hh))
            ys.append(hh)
        dhh = np.zeros((B, H), np.float32)
        dcc = np.zeros((B, H), np.float32)
        dgs = np.empty((T, B, 4 * H), np.float32)
        for t in reversed(range(T)):
            i, f, g, o, cp, tcc, _ = cache[t]
            dhh = dhh + dyy[t]
            dct = dcc + dhh * o * (1 - tcc * tcc)
            dgs[t] = np.concatenate([dct * g * i * (1 - i), dct * cp * f * (1 - f), dct * i * (1 - g * g),
                                     dhh * tcc * o * (1 - o)], 1)
            dcc = dct * f
            dhh = dgs[t] @ wh
        dG = dgs.reshape(T * B, -1)
        return np.stack(ys), (dG @ wi).reshape(T, B, -1), dG.T @ xx.reshape(T * B, -1)

    def ref_seq():
        y1 = ref_layer(xs, w_ih, w_hh, np.zeros_like(dy))[0]  # forward of layer 1 (its backward below)
        _, d1, _ = ref_layer(y1, w_ih2, w_hh, dy)
        ref_layer(xs, w_ih, w_hh, d1)

    tf = None
    if torch:
        lstm = torch.nn.LSTM(I, H, 2)
        txs, tdy = torch.tensor(xs), torch.tensor(dy)

        def tf():
            y, _ = lstm(txs)
            y.backward(tdy)

    S.row("micro", "LSTM sequence 2x256, seq 64, batch 32, fwd+bwd [kernel]", kern_seq, ref_seq, None, tf,
          note="reference: Python loop of NumPy ops per step (its forward runs twice: ~1.2x overstated)")

    # GRU layer through nn.GRU (the fused GRUSequence op; reference: the per-step loop of differentiable ops)
    gru = mg.nn.GRU(I, H, 2)
    gx = mg.tensor(xs, requires_grad=True)
    gdy = mg.tensor(dy)

    def mg_gru():
        gru(gx)[0].backward(gdy)

    tf = None
    if torch:
        tgru = torch.nn.GRU(I, H, 2)
        tgx = torch.tensor(xs, requires_grad=True)

        def tf():
            tgru(tgx)[0].backward(tdy)

    S.row("micro", "GRU sequence 2x256, seq 64, batch 32, fwd+bwd via nn.GRU [minigen]", mg_gru, mg_gru, None, tf)


def bench_norm_ce(S):
    from minigen.kernels import cpu_norm as N
    from minigen.kernels import cpu_softmax as SM

    x = np.random.randn(12 * 64, 128).astype(np.float32)
    w = np.random.randn(128).astype(np.float32)
    bb = np.random.randn(128).astype(np.float32)
    g = np.random.randn(12 * 64, 128).astype(np.float32)

    def kern():
        y, m, r = N.layer_norm_forward(x, w, bb, 1e-5)
        N.layer_norm_backward(g, x, w, m, r)

    def ref():
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        rs = 1 / np.sqrt(var + 1e-5)
        xh = (x - mu) * rs
        xh * w + bb  # noqa: B018
        gw = g * w
        rs * (gw - gw.mean(-1, keepdims=True) - xh * (gw * xh).mean(-1, keepdims=True))  # noqa: B018
        (g * xh).sum(0), g.sum(0)  # noqa: B018

    tf = None
    if torch:
        tx = torch.tensor(x, requires_grad=True)
        tw, tb = torch.tensor(w, requires_grad=True), torch.tensor(bb, requires_grad=True)
        tg = torch.tensor(g)

        def tf():
            TF.layer_norm(tx, (128,), tw, tb).backward(tg)

    S.row("micro", "layer_norm fwd+bwd (768, 128) [kernel]", kern, ref, None, tf)

    mx = mg.tensor(x, requires_grad=True)
    mw, mb = mg.tensor(w, requires_grad=True), mg.tensor(bb, requires_grad=True)
    mgg = mg.tensor(g)

    def mg_ln():
        mg.nn.functional.layer_norm(mx, (128,), mw, mb).backward(mgg)

    S.row("micro", "layer_norm fwd+bwd (768, 128) via F.layer_norm [minigen]", mg_ln, mg_ln, None, tf)

    logits = np.random.randn(32 * 64, 65).astype(np.float32)
    tgt = np.random.randint(0, 65, 32 * 64)

    def kern_ce():
        SM.cross_entropy(logits, tgt)

    def ref_ce():
        s = logits - logits.max(-1, keepdims=True)
        lp = s - np.log(np.exp(s).sum(-1, keepdims=True))
        -lp[np.arange(len(tgt)), tgt].mean()  # noqa: B018
        d = np.exp(lp)
        d[np.arange(len(tgt)), tgt] -= 1
        d / len(tgt)  # noqa: B018

    tf = None
    if torch:
        tl = torch.tensor(logits, requires_grad=True)
        ttg = torch.tensor(tgt)

        def tf():
            TF.cross_entropy(tl, ttg).backward()

    S.row("micro", "cross-entropy fwd+bwd (2048, 65) [kernel]", kern_ce, ref_ce, None, tf)
    ml = mg.tensor(logits, requires_grad=True)
    mt = mg.tensor(tgt)

    def mg_ce():
        mg.nn.functional.cross_entropy(ml, mt).backward()

    S.row("micro", "cross-entropy fwd+bwd (2048, 65) via F.cross_entropy [minigen]", mg_ce, mg_ce, None, tf)


def bench_adam(S):
    sizes = [400_000, 300_000, 200_000, 100_000, 48_576] + [1000] * 0  # 1,048,576 parameters in 5 tensors
    ps = [mg.nn.Parameter(mg.tensor(np.random.randn(n).astype(np.float32))) for n in sizes]
    for p in ps:
        p.grad = mg.tensor(np.random.randn(*p.shape).astype(np.float32))
    opt = mg.optim.Adam(ps, lr=1e-3)
    tf = None
    if torch:
        tps = [torch.nn.Parameter(torch.randn(n)) for n in sizes]
        for p in tps:
            p.grad = torch.randn_like(p)
        topt = torch.optim.Adam(tps, lr=1e-3)
        tf = topt.step
    S.row("micro", "Adam step over 1M params (5 tensors) via mg.optim.Adam [minigen]", opt.step, opt.step, None, tf,
          note="torch: default (foreach) Adam")


# ================================================================== model steps
def _torch_threads():
    return torch.get_num_threads() if torch else None


# ================================================================== peak memory per workload (fresh processes)
RSS_SCRIPT = textwrap.dedent("""
    import os, sys, json
    sys.path.insert(0, {root!r} + "/benchmarks")
    import run
    run.threads.set_num_threads({n})
    if run.torch is not None:
        run.torch.set_num_threads({n})
    name, mk, tk, _ = run.MODELS[{index}]
    step = (mk if {lib!r} == "minigen" else tk)()
    step()  # warm-up: libraries loaded, kernels compiled / loaded from the cache

    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the current RSS
        reset = True
    except OSError:
        reset = False
    import gc
    gc.collect()
    before = status("VmRSS")  # model, optimizer state and inputs built, one step run
    for _ in range(3):
        step()
    print("RSS_JSON", json.dumps({{"before": before, "peak": status("VmHWM"), "reset": reset}}))
""")


def measure_rss(index, lib, n):
    """{before, peak, step_peak} bytes of MODELS[index]'s step for ``lib`` ('minigen' or 'torch') at ``n``
    threads, in a fresh process (minigen's child does not import torch)."""
    env = dict(os.environ)
    if lib == "minigen":
        env["MINIGEN_BENCH_NO_TORCH"] = "1"
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT.format(root=ROOT, index=index, lib=lib, n=n)],
                         env=env, capture_output=True, text=True, cwd=ROOT, timeout=900)
    for line in out.stdout.splitlines():
        if line.startswith("RSS_JSON"):
            d = json.loads(line.split(" ", 1)[1])
            d["step_peak"] = d["peak"] - d["before"]
            return d
    raise RuntimeError(out.stderr[-300:])


def model_vae():
    nn, F = mg.nn, mg.nn.functional

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
            self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

        def forward(self, x, eps):
            h = F.relu(self.fc1(x))
            mu, logvar = self.fc21(h), self.fc22(h)
            z = mu + eps * (0.5 * logvar).exp()
            return F.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar

    m = VAE()
    opt = mg.optim.Adam(m.parameters(), lr=1e-3)
    x = mg.tensor(np.random.rand(128, 784).astype(np.float32))
    eps = mg.tensor(np.random.randn(128, 20).astype(np.float32))

    def step():
        opt.zero_grad()
        r, mu, lv = m(x, eps)
        loss = F.binary_cross_entropy(r, x, reduction="sum") - 0.5 * (1 + lv - mu * mu - lv.exp()).sum()
        loss.backward()
        opt.step()

    return step


def torch_vae():
    tn = torch.nn

    class VAE(tn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = tn.Linear(784, 400), tn.Linear(400, 20), tn.Linear(400, 20)
            self.fc3, self.fc4 = tn.Linear(20, 400), tn.Linear(400, 784)

        def forward(self, x, eps):
            h = TF.relu(self.fc1(x))
            mu, logvar = self.fc21(h), self.fc22(h)
            z = mu + eps * (0.5 * logvar).exp()
            return torch.sigmoid(self.fc4(TF.relu(self.fc3(z)))), mu, logvar

    m = VAE()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = torch.rand(128, 784)
    eps = torch.randn(128, 20)

    def step():
        opt.zero_grad()
        r, mu, lv = m(x, eps)
        loss = TF.binary_cross_entropy(r, x, reduction="sum") - 0.5 * (1 + lv - mu * mu - lv.exp()).sum()
        loss.backward()
        opt.step()

    return step


def _dcgan_modules(nn):
    """The DCGAN of the issue's table: a 64-channel G (7x7 -> 14x14 -> 28x28 transposed convs, then the
    final 32 -> 1 channel 5x5 conv), a 64/128-channel D."""
    G = nn.Sequential(nn.Linear(100, 64 * 7 * 7), nn.BatchNorm1d(64 * 7 * 7), nn.ReLU(),
                      nn.Unflatten(1, (64, 7, 7)),
                      nn.ConvTranspose2d(64, 64, 5, 2, 2, output_padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                      nn.ConvTranspose2d(64, 32, 5, 2, 2, output_padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                      nn.Conv2d(32, 1, 5, 1, 2), nn.Tanh())
    D = nn.Sequential(nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.2),
                      nn.Conv2d(64, 128, 5, 2, 2), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
                      nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
    return G, D


def _gan_step(lib, F, G, D, optG, optD, real, z, ones, zeros):
    optD.zero_grad()
    fake = G(z)
    lossD = F.binary_cross_entropy_with_logits(D(real), ones) + \
        F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
    lossD.backward()
    optD.step()
    optG.zero_grad()
    lossG = F.binary_cross_entropy_with_logits(D(fake), ones)
    lossG.backward()
    optG.step()


def model_dcgan():
    G, D = _dcgan_modules(mg.nn)
    oG = mg.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    oD = mg.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = mg.tensor(np.random.rand(64, 1, 28, 28).astype(np.float32) * 2 - 1)
    z = mg.tensor(np.random.randn(64, 100).astype(np.float32))
    ones, zeros = mg.ones(64, 1), mg.zeros(64, 1)
    return lambda: _gan_step(mg, mg.nn.functional, G, D, oG, oD, real, z, ones, zeros)


def torch_dcgan():
    G, D = _dcgan_modules(torch.nn)
    oG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    oD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(64, 1, 28, 28) * 2 - 1
    z = torch.randn(64, 100)
    ones, zeros = torch.ones(64, 1), torch.zeros(64, 1)
    return lambda: _gan_step(torch, TF, G, D, oG, oD, real, z, ones, zeros)


def _charlstm(nn, lib, idx, tgt):
    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(65, 256)
            self.lstm = nn.LSTM(256, 256, 2, batch_first=True)
            self.head = nn.Linear(256, 65)

        def forward(self, x):
            h, _ = self.lstm(self.emb(x))
            return self.head(h)

    m = CharLSTM()
    opt = lib.optim.Adam(m.parameters(), lr=2e-3)
    F = lib.nn.functional

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(m(idx).reshape(-1, 65), tgt.reshape(-1))
        loss.backward()
        opt.step()

    return step


def model_charlstm():
    idx = np.random.randint(0, 65, (32, 64))
    return _charlstm(mg.nn, mg, mg.tensor(idx), mg.tensor(np.random.randint(0, 65, (32, 64))))


def torch_charlstm():
    return _charlstm(torch.nn, torch, torch.randint(0, 65, (32, 64)), torch.randint(0, 65, (32, 64)))


def model_gpt():
    from minigen.models.gpt import GPT, GPTConfig

    m = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False))
    opt = mg.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    idx = mg.tensor(np.random.randint(0, 65, (12, 64)))
    tgt = mg.tensor(np.random.randint(0, 65, (12, 64)))

    def step():
        opt.zero_grad()
        _, loss = m(idx, tgt)
        loss.backward()
        opt.step()

    return step


def torch_gpt():
    tn = torch.nn
    E, Hh, L, T, V = 128, 4, 4, 64, 65

    class Block(tn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = tn.LayerNorm(E, bias=False), tn.LayerNorm(E, bias=False)
            self.qkv, self.proj = tn.Linear(E, 3 * E, bias=False), tn.Linear(E, E, bias=False)
            self.fc, self.fc2 = tn.Linear(E, 4 * E, bias=False), tn.Linear(4 * E, E, bias=False)

        def forward(self, x):
            B = x.shape[0]
            q, k, v = self.qkv(self.ln1(x)).split(E, 2)
            q, k, v = (t.view(B, T, Hh, E // Hh).transpose(1, 2) for t in (q, k, v))
            y = TF.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, E)
            x = x + self.proj(y)
            return x + self.fc2(TF.gelu(self.fc(self.ln2(x))))

    class GPT(tn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = tn.Embedding(V, E), tn.Embedding(T, E)
            self.h = tn.ModuleList([Block() for _ in range(L)])
            self.ln_f = tn.LayerNorm(E, bias=False)
            self.head = tn.Linear(E, V, bias=False)
            self.head.weight = self.wte.weight

        def forward(self, idx, tgt):
            x = self.wte(idx) + self.wpe(torch.arange(T))
            for b in self.h:
                x = b(x)
            return TF.cross_entropy(self.head(self.ln_f(x)).view(-1, V), tgt.view(-1))

    m = GPT()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    idx, tgt = torch.randint(0, V, (12, T)), torch.randint(0, V, (12, T))

    def step():
        opt.zero_grad()
        m(idx, tgt).backward()
        opt.step()

    return step


MODELS = [("VAE 784-400-20, batch 128: one train step (fwd+bwd+Adam)", model_vae, torch_vae, "<= 0.9"),
          ("DCGAN 28x28, batch 64: D step + G step (64-ch G, 64/128-ch D, final 32->1 conv)", model_dcgan,
           torch_dcgan, "<= 1.0"),
          ("char-LSTM 2x256, seq 64, batch 32: one train step", model_charlstm, torch_charlstm, "<= 0.9"),
          ("baby GPT L4 H4 E128 T64 B12: one iteration (AdamW)", model_gpt, torch_gpt, "<= 1.0")]


def bench_models(S):
    for name, mk, tk, target in MODELS:
        try:
            step = mk()
            step()
        except Exception as e:  # nn/optim/models not there (yet), or failing
            S.rows.append({"group": "model", "name": name + " [minigen]", "minigen_kernels": None,
                           "minigen_reference": None, "numpy": None, "torch": None, "ratio_vs_torch": None,
                           "unit": "ms", "note": f"skipped: {type(e).__name__}: {str(e)[:160]}"})
            _print_row(S.rows[-1])
            traceback.print_exc(limit=3)
            continue
        tstep = tk() if torch else None
        r = S.row("model", name + " [minigen]", step, step, None, tstep, note=f"target ratio {target}")
        if S.rss:
            idx = [m[0] for m in MODELS].index(name)
            mem = {}
            for lib in ("minigen", "torch") if torch else ("minigen",):
                try:
                    mem[lib] = measure_rss(idx, lib, S.thread_counts[0])
                except Exception as e:  # reported, not fatal
                    mem[lib] = {"error": f"{type(e).__name__}: {str(e)[:160]}"}
            r["memory"] = mem
            m, t = mem.get("minigen", {}), mem.get("torch", {})
            if "step_peak" in m and "step_peak" in t:
                r["memory_ratio_step"] = m["step_peak"] / max(t["step_peak"], 1)
                r["memory_ratio_process"] = m["peak"] / max(t["peak"], 1)
            print(f"    memory: {json.dumps(mem)}", flush=True)


# ================================================================== cold start
COLD_SCRIPT = textwrap.dedent("""
    import time, sys
    t0 = time.perf_counter()
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {root!r} + "/benchmarks")
    import numpy as np
    import minigen as mg
    from run import model_gpt   # run.py skips `import torch` here (MINIGEN_BENCH_NO_TORCH)
    assert "torch" not in sys.modules
    step = model_gpt()
    step()
    print("FIRST_STEP_S", time.perf_counter() - t0, time.process_time())
""")


def _cold_run(env):
    """(wall s from spawning the process to the end of step 1, wall s inside the child, child CPU s)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", COLD_SCRIPT.format(root=ROOT)], env=env, capture_output=True,
                         text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    inner = None
    for line in out.stdout.splitlines():
        if line.startswith("FIRST_STEP_S"):
            inner = float(line.split()[1])
    if inner is None:
        raise RuntimeError(out.stderr[-300:])
    return wall, inner, cpu


def bench_cold_start(S, repeat=3):
    """Time to the end of the first baby-GPT training step in a fresh process, without `import torch`:
    with an empty Numba cache (every kernel compiled) and with the cache the previous run filled.
    Columns: the whole process (spawn to end of step 1: interpreter start, imports, model build, kernel
    compilation or cache loading, step 1); min / median of ``repeat`` runs (the empty-cache runs each
    get a fresh cache directory). The note gives the child's CPU time and the time inside the child."""
    res = {}
    runs = {"empty Numba cache": [], "warm Numba cache": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, NUMBA_CACHE_DIR=d, MINIGEN_BENCH_NO_TORCH="1")
            env.pop("MINIGEN_KERNELS", None)
            try:
                runs["empty Numba cache"].append(_cold_run(env))
                runs["warm Numba cache"].append(_cold_run(env))
            except Exception as e:
                print("cold start failed:", e)
    for label, rs in runs.items():
        if not rs:
            S.rows.append({"group": "cold start", "name": f"time to first baby-GPT step, {label}",
                           "minigen_kernels": None, "note": "failed"})
            continue
        walls = sorted(r[0] for r in rs)
        cpu = min(r[2] for r in rs)
        inner = min(r[1] for r in rs)
        val = {"min": walls[0] * 1e3, "median": statistics.median(walls) * 1e3}
        res[label] = walls[0]
        S.rows.append({"group": "cold start", "name": f"time to first baby-GPT step, {label} (process spawn to "
                       "end of step 1, no torch import)", "minigen_kernels": val, "minigen_kernels_wall": val,
                       "minigen_kernels_cpu": {"min": cpu * 1e3, "median": cpu * 1e3}, "minigen_reference": None,
                       "numpy": None, "torch": None, "ratio_vs_torch": None, "unit": "ms", "clock": "wall",
                       "note": f"wall clock; child CPU {cpu:.2f} s, inside the child {inner:.2f} s; n={len(rs)}"
                       + ("; target <= 2 s (warm)" if "warm" in label else "")})
        _print_row(S.rows[-1])
    return res


# ================================================================== report
def machine_info():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numba

    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "platform": platform.platform(),
            "cpu": cpu, "isa": vector_isa(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "torch": torch.__version__ if torch else "absent",
            "blas": threads.blas_info(), "torch_blas": _torch_blas(),
            "threads": threads.get_num_threads(), "torch_threads": _torch_threads(),
            "kernel_mode": dispatch.mode(), "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "clock": CLOCK[0]}
    return info


def vector_isa():
    """The widest vector ISA from /proc/cpuinfo: 'AVX-512 (+ BF16, FP16, AMX)', 'AVX2', ... ('?' when unknown)."""
    from minigen.backends.cpu import cpu_flags

    flags = cpu_flags()
    if flags is None:
        return "?"
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "AVX" if "avx" in flags else \
        "SSE" if "sse2" in flags else "?"
    extra = [name for flag, name in (("avx512_bf16", "BF16"), ("avx512_fp16", "FP16"), ("amx_tile", "AMX"))
             if flag in flags and isa == "AVX-512"]
    return isa + (" (+ " + ", ".join(extra) + ")" if extra else "")


def _torch_blas():
    if torch is None:
        return None
    cfg = torch.__config__.show()
    for key in ("BLAS_INFO=", "USE_MKL"):
        for part in cfg.replace(",", "\n").splitlines():
            if key in part:
                return part.split(":")[-1].strip()
    return None


def _blas_text(info):
    b = info.get("blas") or []
    return ", ".join(f"{x['library']} {x['version']} ({x['threading_layer']}, {x.get('architecture')})" for x in b) \
        or "not visible (threadpoolctl missing)"


def _mb(v):
    return "—" if v is None else f"{v / 2**20:.0f}"


def write_reports(rows, info, command):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "results.json"), "w") as f:
        json.dump({"command": command, "machine": info, "rows": rows}, f, indent=1, default=str)
    counts = info.get("thread_counts") or [info.get("threads")]
    clocks = ", ".join(f"{n} thread{'s' if n != 1 else ''}: **{_clock(n)}**" for n in counts)
    L = ["# minigen benchmark results", "",
         f"Command: `{command}`  ", f"Date: {info['date']}  ",
         f"CPU: **{info['cpu']}**, vector ISA **{info.get('isa')}**, {info['cores']} cores, {info['platform']}  ",
         f"BLAS (minigen, through NumPy): {_blas_text(info)}; PyTorch: {info.get('torch_blas') or '?'}  ",
         f"Versions: Python {info['python']}, NumPy {info['numpy']}, Numba {info['numba']}, PyTorch {info['torch']}  ",
         f"Threads: each row at {', '.join(map(str, counts))} thread(s), minigen through `mg.set_num_threads` (BLAS + "
         "kernel pool), PyTorch through `torch.set_num_threads`, the same count for both, all columns interleaved  ",
         f"Load average at start: {_load(info['load_average'])}, at end: {_load(info.get('load_average_end'))} "
         "(a shared machine)  ",
         f"Clock per thread count: {clocks} (CPU = process CPU time, immune to other load at 1 thread; wall with "
         "several threads, where CPU time would add the threads up; see benchmarks/run.py).", "",
         "Times in ms, `min / median` of the repeats after warm-up. `ratio` = minigen (kernels) / PyTorch of the "
         "mins on that count's clock (< 1: minigen faster), `med` the same for the medians; `k/ref` = speedup of the "
         "kernels over minigen's NumPy reference path (first thread count); `scaling` = wall time at "
         f"{counts[0]} / at {counts[-1]} threads.", "",
         "Targets met / missed and what limits the misses (with profiles): [notes.md](notes.md).", ""]
    head = "| group | benchmark |"
    sep = "|---|---|"
    for n in counts:
        head += f" minigen {n}T | PyTorch {n}T | ratio {n}T | med {n}T |"
        sep += "---|---|---|---|"
    head += " k/ref | NumPy | scaling mg / torch | note |"
    sep += "---|---|---|---|"
    L += [head, sep]
    for r in rows:
        note = r.get("note", "")
        if "gflops_minigen_kernels" in r:
            g = [f"{k.replace('gflops_', '')}: {r[k]:.1f}" for k in r if k.startswith("gflops_")]
            note = (note + " GFLOP/s " + ", ".join(g)).strip()
            if "fraction_of_numpy" in r:
                note += f"; fraction of NumPy {r['fraction_of_numpy']:.2f}"
        line = f"| {r['group']} | {r['name']} |"
        per = r.get("threads") or {}
        for n in counts:
            d = per.get(n, per.get(str(n), r if not per and n == counts[0] else {}))
            line += (f" {_fmt(d.get('minigen_kernels'))} | {_fmt(d.get('torch'))} | {_ratio(d.get('ratio_vs_torch'))} |"
                     f" {_ratio(d.get('ratio_vs_torch_median'))} |")
        d0 = per.get(counts[0], r)
        scal = f"{_ratio(r.get('scaling_minigen_kernels'))} / {_ratio(r.get('scaling_torch'))}"
        line += (f" {_ratio(d0.get('speedup_vs_reference_' + d0.get('clock', 'cpu')))} | {_fmt(d0.get('numpy'))} |"
                 f" {scal} | {note} |")
        L.append(line)
    mem_rows = [r for r in rows if r.get("memory")]
    if mem_rows:
        L += ["", f"## Peak resident memory per workload (fresh process per library, {counts[0]} thread(s))", "",
              "MB. `step` = peak during 3 steps minus the RSS after a warm-up step (the steps' own working memory), "
              "`process` = the process's peak RSS over those steps (libraries included: PyTorch's alone are a few "
              "hundred MB). Target: step peak <= 1.2x PyTorch's.", "",
              "| workload | minigen step | PyTorch step | ratio | minigen process | PyTorch process | ratio |",
              "|---|---|---|---|---|---|---|"]
        for r in mem_rows:
            m, t = r["memory"].get("minigen", {}), r["memory"].get("torch", {})
            L.append(f"| {r['name']} | {_mb(m.get('step_peak'))} | {_mb(t.get('step_peak'))} | "
                     f"{_ratio(r.get('memory_ratio_step'))} | {_mb(m.get('peak'))} | {_mb(t.get('peak'))} | "
                     f"{_ratio(r.get('memory_ratio_process'))} |")
    with open(os.path.join(RESULTS, "results.md"), "w") as f:
        f.write("\n".join(L) + "\n")


def _load(la):
    return "—" if not la else ", ".join(f"{v:.1f}" for v in la)


GROUPS = {"tiny": bench_tiny, "sgemm": bench_sgemm, "conv": bench_conv, "attention": bench_attention,
          "lstm": bench_lstm, "norm": bench_norm_ce, "adam": bench_adam, "models": bench_models,
          "cold": bench_cold_start, "convrule": bench_conv_rule}
DEFAULT_OFF = ("convrule",)  # run only when named in --only (re-measuring the conv rule on a new CPU)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="3 repeats instead of 7, the reference column at the first thread count only, no cold start")
    ap.add_argument("--only", default="", help="comma-separated groups: " + ",".join(GROUPS))
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--clock", choices=("auto", "cpu", "wall"), default="auto",
                    help="clock of the headline columns (auto: cpu with 1 thread, else wall); both are recorded")
    ap.add_argument("--threads", default="1,2",
                    help="comma-separated thread counts; every row runs at each (minigen via mg.set_num_threads, "
                         "torch via torch.set_num_threads), default 1,2")
    ap.add_argument("--no-rss", action="store_true", help="skip the per-workload peak-memory subprocesses")
    args = ap.parse_args(argv)
    counts = [int(v) for v in str(args.threads).split(",") if v.strip()]
    if not counts or min(counts) < 1:
        ap.error("--threads: positive integers, e.g. 1,2")
    np.random.seed(0)
    mg.manual_seed(0)
    if torch is not None:
        torch.manual_seed(0)
    CLOCK[0] = args.clock
    threads.set_num_threads(counts[0])
    if torch is not None:
        torch.set_num_threads(counts[0])
    info = machine_info()
    info["thread_counts"] = counts
    print(json.dumps(info, default=str))
    S = Suite(3 if args.quick else 7, counts, quick=args.quick)
    S.rss = not args.no_rss
    only = [g for g in args.only.split(",") if g]
    for name, fn in GROUPS.items():
        if only and name not in only:
            continue
        if args.quick and name == "cold" and not only:
            continue
        if name in DEFAULT_OFF and not only:
            continue
        print(f"[{name}]", flush=True)
        try:
            fn(S)
        except Exception:
            traceback.print_exc()
    info["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    if not args.no_write:
        write_reports(S.rows, info, "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    return S.rows


if __name__ == "__main__":
    main()
