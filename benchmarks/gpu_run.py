"""minigen on the GPU vs PyTorch CUDA eager, side by side in one run, same inputs.

    python benchmarks/gpu_run.py                 # on a machine with an NVIDIA GPU, CuPy and torch (CUDA build)
    python benchmarks/gpu_run.py --quick         # fewer repeats
    python benchmarks/gpu_run.py --emulated      # smoke test of this script on the CPU (emulated CuPy,
                                                 # tiny shapes, times meaningless, nothing written)

Writes benchmarks/results/gpu.md (and gpu.json): device, versions, command, then one row per
benchmark with the min and median of the repeats (ms), the ratio minigen / PyTorch of the mins
(< 1: minigen faster) and the issue's target where it has one:

- matmul: >= 0.9 of cuBLAS-through-PyTorch throughput (GFLOP/s shown);
- fused attention fwd+bwd: <= 2x PyTorch ``scaled_dot_product_attention`` (its fastest float32 backend);
- GPT train step: <= 1.5x PyTorch eager.

Shapes: those of the CPU suite (benchmarks/run.py) plus ones that make sense on an H100: sgemm 4096,
attention B64 H6 T256 D64 (nanoGPT's GPU config) and the GPT L6 H6 E384 T256 B64 train step.

Timing: after warm-up, each repeat runs the step ``inner`` times between two device synchronisations
(``mg.cuda.synchronize()`` / ``torch.cuda.synchronize()``) on the wall clock; float32 everywhere;
PyTorch with TF32 matmuls OFF (``torch.backends.cuda.matmul.allow_tf32 = False``), so both sides do
full float32 math.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import minigen as mg  # noqa: E402
import minigen.nn as nn  # noqa: E402
import minigen.nn.functional as F  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF

    TORCH_CUDA = torch.cuda.is_available()
except Exception:  # pragma: no cover - torch missing
    torch, TF, TORCH_CUDA = None, None, False


# ============================================================================ timing
class Suite:
    def __init__(self, repeats, emulated):
        self.repeats, self.emulated, self.rows = repeats, emulated, []

    def _time(self, fn, sync, inner):
        fn()
        sync()
        ts = []
        for _ in range(self.repeats):
            sync()
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            sync()
            ts.append((time.perf_counter() - t0) * 1e3 / inner)
        return {"min": min(ts), "median": statistics.median(ts)}

    def row(self, group, name, mg_fn, torch_fn=None, inner=5, target=None, flop=None, target_kind="ratio<="):
        r = {"group": group, "name": name, "target": target, "minigen": None, "torch": None, "ratio": None}
        try:
            r["minigen"] = self._time(mg_fn, mg.cuda.synchronize, inner)
        except Exception as e:  # keep going: a failing row is reported, not fatal
            r["error"] = f"minigen: {type(e).__name__}: {e}"
            traceback.print_exc()
        if torch_fn is not None and TORCH_CUDA and not self.emulated:
            try:
                r["torch"] = self._time(torch_fn, torch.cuda.synchronize, inner)
            except Exception as e:
                r["error"] = r.get("error", "") + f" torch: {type(e).__name__}: {e}"
        if r["minigen"] and r["torch"]:
            r["ratio"] = r["minigen"]["min"] / r["torch"]["min"]
        if flop and r["minigen"]:
            r["gflops_minigen"] = flop / (r["minigen"]["min"] * 1e-3) / 1e9
            if r["torch"]:
                r["gflops_torch"] = flop / (r["torch"]["min"] * 1e-3) / 1e9
                r["throughput_fraction"] = r["gflops_minigen"] / r["gflops_torch"]
        if target is not None and r["ratio"] is not None:
            value = r.get("throughput_fraction") if target_kind == "fraction>=" else r["ratio"]
            r["meets_target"] = value >= target if target_kind == "fraction>=" else value <= target
            r["target_text"] = (f">= {target} of torch GFLOP/s" if target_kind == "fraction>=" else f"<= {target}x")
        self.rows.append(r)
        m = r["minigen"]["min"] if r["minigen"] else float("nan")
        t = r["torch"]["min"] if r["torch"] else float("nan")
        print(f"{group:10s} {name:62s} minigen {m:9.3f} ms  torch {t:9.3f} ms  ratio "
              f"{r['ratio'] if r['ratio'] is not None else float('nan'):.2f}", flush=True)


def _dev(a):
    return mg.tensor(a, device="cuda")


def _tdev(a):
    return torch.tensor(a, device="cuda") if TORCH_CUDA else None


# ============================================================================ micro benchmarks
def bench_matmul(S, small):
    for n in ((64, 128) if small else (256, 1024, 4096)):
        A = np.random.rand(n, n).astype(np.float32)
        B = np.random.rand(n, n).astype(np.float32)
        ma, mb = _dev(A), _dev(B)
        ta, tb = _tdev(A), _tdev(B)
        S.row("matmul", f"sgemm {n}x{n} float32", lambda: ma @ mb, (lambda: ta @ tb) if TORCH_CUDA else None,
              inner=20, flop=2.0 * n ** 3, target=0.9 if n >= 1024 else None, target_kind="fraction>=")
        bs = np.random.rand(32, n // 4, n // 4).astype(np.float32)
        mbs, tbs = _dev(bs), _tdev(bs)
        S.row("matmul", f"bmm 32x{n // 4}x{n // 4} float32", lambda: mbs @ mbs,
              (lambda: tbs @ tbs) if TORCH_CUDA else None, inner=20, flop=2.0 * 32 * (n // 4) ** 3)


def _attn_case(S, B, H, T, D, causal, target):
    q, k, v, g = (np.random.randn(B, H, T, D).astype(np.float32) for _ in range(4))
    mq, mk, mv = (mg.tensor(a, device="cuda", requires_grad=True) for a in (q, k, v))
    mgg = _dev(g)

    def mg_step():
        for t in (mq, mk, mv):
            t.grad = None
        out = F.scaled_dot_product_attention(mq, mk, mv, is_causal=causal)
        out.backward(mgg)

    torch_step = None
    if TORCH_CUDA:
        tq, tk, tv = (torch.tensor(a, device="cuda", requires_grad=True) for a in (q, k, v))
        tg = torch.tensor(g, device="cuda")

        def _torch_step():
            for t in (tq, tk, tv):
                t.grad = None
            TF.scaled_dot_product_attention(tq, tk, tv, is_causal=causal).backward(tg)

        torch_step = _torch_step
    S.row("attention", f"SDPA fwd+bwd B{B} H{H} T{T} D{D}{' causal' if causal else ''}", mg_step, torch_step,
          inner=5, target=target)


def bench_attention(S, small):
    if small:
        _attn_case(S, 1, 2, 16, 8, True, None)
        return
    for T in (64, 256):
        _attn_case(S, 12, 4, T, 32, True, 2.0)     # the CPU suite's shapes
    _attn_case(S, 64, 6, 256, 64, True, 2.0)       # nanoGPT GPU config: B64 H6 T256 D64
    _attn_case(S, 64, 6, 256, 64, False, 2.0)


def bench_norm_ce(S, small):
    R, D, V = (16, 32, 65) if small else (12 * 64, 128, 65)
    for rows in ((R,) if small else (R, 64 * 256)):
        x = np.random.randn(rows, D).astype(np.float32)
        w, b = np.ones(D, np.float32), np.zeros(D, np.float32)
        mx, mw, mb = (mg.tensor(a, device="cuda", requires_grad=True) for a in (x, w, b))

        def mg_ln():
            F.layer_norm(mx, (D,), mw, mb).sum().backward()

        torch_ln = None
        if TORCH_CUDA:
            tx, tw, tb = (torch.tensor(a, device="cuda", requires_grad=True) for a in (x, w, b))

            def _torch_ln():
                TF.layer_norm(tx, (D,), tw, tb).sum().backward()

            torch_ln = _torch_ln
        S.row("norm/ce", f"layer_norm fwd+bwd ({rows}, {D})", mg_ln, torch_ln, inner=10)
        logits = np.random.randn(rows, V).astype(np.float32)
        t = np.random.randint(0, V, rows)
        ml, mt = mg.tensor(logits, device="cuda", requires_grad=True), _dev(t)

        def mg_ce():
            F.cross_entropy(ml, mt).backward()

        torch_ce = None
        if TORCH_CUDA:
            tl, tt = torch.tensor(logits, device="cuda", requires_grad=True), torch.tensor(t, device="cuda")

            def _torch_ce():
                TF.cross_entropy(tl, tt).backward()

            torch_ce = _torch_ce
        S.row("norm/ce", f"cross_entropy fwd+bwd ({rows}, {V})", mg_ce, torch_ce, inner=10)
        ms = mg.tensor(logits, device="cuda", requires_grad=True)
        S.row("norm/ce", f"softmax fwd+bwd ({rows}, {V})", lambda: F.softmax(ms, -1).sum().backward(),
              (lambda: TF.softmax(tl, -1).sum().backward()) if TORCH_CUDA else None, inner=10)


def bench_lstm(S, small):
    B, I, H, T = (2, 8, 8, 4) if small else (32, 256, 256, 64)
    x = np.random.randn(B, T, I).astype(np.float32)
    mg.manual_seed(0)
    m = nn.LSTM(I, H, 2, batch_first=True).to("cuda")
    mx = _dev(x)

    def mg_step():
        y, _ = m(mx)
        y.sum().backward()

    torch_step = None
    if TORCH_CUDA:
        tm = torch.nn.LSTM(I, H, 2, batch_first=True).cuda()
        tx = _tdev(x)

        def _torch_step():
            y, _ = tm(tx)
            y.sum().backward()

        torch_step = _torch_step
    S.row("rnn", f"LSTM 2x{H} layer fwd+bwd B{B} T{T} I{I} (torch: cuDNN)", mg_step, torch_step, inner=3)


def bench_adam(S, small):
    sizes = [1000, 200] if small else [400_000, 300_000, 200_000, 100_000, 48_576]
    ps = [nn.Parameter(mg.tensor(np.random.randn(n).astype(np.float32), device="cuda")) for n in sizes]
    for p in ps:
        p.grad = mg.tensor(np.random.randn(*p.shape).astype(np.float32), device="cuda")
    opt = mg.optim.AdamW(ps, lr=1e-3)
    torch_step = None
    if TORCH_CUDA:
        tps = [torch.nn.Parameter(torch.randn(n, device="cuda")) for n in sizes]
        for p in tps:
            p.grad = torch.randn_like(p)
        topt = torch.optim.AdamW(tps, lr=1e-3)
        torch_step = topt.step
    S.row("optim", f"AdamW step, {sum(sizes):,} params in {len(sizes)} tensors (torch: foreach)", opt.step,
          torch_step, inner=10)


def bench_conv(S, small):
    shapes = ([("tiny", (2, 1, 8, 8), (4, 1, 3, 3), 1, 1)] if small else
              [("DCGAN D conv1 (64,1,28,28)->64 5x5 s2 p2", (64, 1, 28, 28), (64, 1, 5, 5), 2, 2),
               ("DCGAN D conv2 (64,64,14,14)->128 5x5 s2 p2", (64, 64, 14, 14), (128, 64, 5, 5), 2, 2)])
    for name, xs, ws, s, p in shapes:
        x, w = np.random.randn(*xs).astype(np.float32), np.random.randn(*ws).astype(np.float32)
        mx, mw = (mg.tensor(a, device="cuda", requires_grad=True) for a in (x, w))
        torch_step = None
        if TORCH_CUDA:
            tx, tw = (torch.tensor(a, device="cuda", requires_grad=True) for a in (x, w))

            def _torch_step():
                TF.conv2d(tx, tw, stride=s, padding=p).sum().backward()

            torch_step = _torch_step
        S.row("conv", f"conv2d fwd+bwd {name}", lambda: F.conv2d(mx, mw, stride=s, padding=p).sum().backward(),
              torch_step, inner=5)


# ============================================================================ models
def _gpt_pair(L, H, E, T, B, V=65):
    """(minigen step, torch step) for one AdamW train step of the same GPT (no biases, tied head)."""
    from minigen.models.gpt import GPT, GPTConfig

    mg.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=H, n_embd=E, dropout=0.0, bias=False)).to("cuda")
    opt = mg.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    idx_np, tgt_np = np.random.randint(0, V, (B, T)), np.random.randint(0, V, (B, T))
    idx, tgt = _dev(idx_np), _dev(tgt_np)

    def mg_step():
        opt.zero_grad()
        _, loss = m(idx, tgt)
        loss.backward()
        opt.step()

    if not TORCH_CUDA:
        return mg_step, None
    tn = torch.nn

    class Block(tn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = tn.LayerNorm(E, bias=False), tn.LayerNorm(E, bias=False)
            self.qkv, self.proj = tn.Linear(E, 3 * E, bias=False), tn.Linear(E, E, bias=False)
            self.fc, self.fc2 = tn.Linear(E, 4 * E, bias=False), tn.Linear(4 * E, E, bias=False)

        def forward(self, x):
            b = x.shape[0]
            q, k, v = self.qkv(self.ln1(x)).split(E, 2)
            q, k, v = (t.view(b, T, H, E // H).transpose(1, 2) for t in (q, k, v))
            y = TF.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, T, E)
            x = x + self.proj(y)
            return x + self.fc2(TF.gelu(self.fc(self.ln2(x))))

    class TGPT(tn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = tn.Embedding(V, E), tn.Embedding(T, E)
            self.h = tn.ModuleList([Block() for _ in range(L)])
            self.ln_f = tn.LayerNorm(E, bias=False)
            self.head = tn.Linear(E, V, bias=False)
            self.head.weight = self.wte.weight

        def forward(self, i, t):
            x = self.wte(i) + self.wpe(torch.arange(T, device=i.device))
            for blk in self.h:
                x = blk(x)
            return TF.cross_entropy(self.head(self.ln_f(x)).view(-1, V), t.view(-1))

    tm = TGPT().cuda()
    topt = torch.optim.AdamW(tm.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    ti, tt = _tdev(idx_np), _tdev(tgt_np)

    def _torch_step():
        topt.zero_grad()
        tm(ti, tt).backward()
        topt.step()

    return mg_step, _torch_step


def bench_models(S, small):
    if small:
        cases = [("GPT L1 H2 E16 T8 B2: one AdamW iteration", (1, 2, 16, 8, 2), None)]
    else:
        cases = [("baby GPT L4 H4 E128 T64 B12: one AdamW iteration", (4, 4, 128, 64, 12), 1.5),
                 ("GPT L6 H6 E384 T256 B64 (nanoGPT GPU config): one AdamW iteration", (6, 6, 384, 256, 64), 1.5)]
    for name, cfg, target in cases:
        try:
            mg_step, torch_step = _gpt_pair(*cfg)
        except Exception as e:
            S.rows.append({"group": "model", "name": name, "error": f"{type(e).__name__}: {e}", "minigen": None,
                           "torch": None, "ratio": None, "target": target})
            traceback.print_exc()
            continue
        S.row("model", name, mg_step, torch_step, inner=2 if small else 3, target=target)


# ============================================================================ report
def _versions():
    v = {"minigen": mg.__version__, "numpy": np.__version__, "python": platform.python_version()}
    cp = mg.backend.cupy_module()
    v["cupy"] = getattr(cp, "__version__", "?") if cp is not None else None
    if torch is not None:
        v["torch"] = torch.__version__
        v["torch_cuda"] = getattr(torch.version, "cuda", None)
    try:
        rt = cp.cuda.runtime.runtimeGetVersion()
        v["cuda_runtime"] = f"{rt // 1000}.{(rt % 1000) // 10}"
    except Exception:
        pass
    return v


def write_report(S, path_md, command):
    dev = mg.cuda.get_device_name()
    lines = [f"# minigen GPU benchmarks: {dev}", "",
             f"Command: `{command}`  ", f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}  ",
             f"Versions: {json.dumps(_versions())}  ",
             "Times are ms per call (min / median of the repeats, wall clock between device syncs, float32, "
             "TF32 off); ratio = minigen min / PyTorch min (< 1: minigen faster).", "",
             "| group | benchmark | minigen min / med (ms) | PyTorch min / med (ms) | ratio | target | met |",
             "|---|---|---|---|---|---|---|"]
    for r in S.rows:
        m = f"{r['minigen']['min']:.3f} / {r['minigen']['median']:.3f}" if r.get("minigen") else "error"
        t = f"{r['torch']['min']:.3f} / {r['torch']['median']:.3f}" if r.get("torch") else "-"
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else "-"
        if r.get("throughput_fraction") is not None:
            ratio += f" ({r['gflops_minigen']:.0f} vs {r['gflops_torch']:.0f} GFLOP/s)"
        met = {True: "yes", False: "**no**"}.get(r.get("meets_target"), "")
        lines.append(f"| {r['group']} | {r['name']} | {m} | {t} | {ratio} | {r.get('target_text', '')} | {met} |")
    errors = [r for r in S.rows if r.get("error")]
    if errors:
        lines += ["", "Errors:", ""] + [f"- {r['name']}: {r['error']}" for r in errors]
    with open(path_md, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(path_md[:-3] + ".json", "w") as f:
        json.dump({"device": dev, "versions": _versions(), "command": command, "rows": S.rows}, f, indent=1)


GROUPS = {"matmul": bench_matmul, "attention": bench_attention, "norm": bench_norm_ce, "rnn": bench_lstm,
          "optim": bench_adam, "conv": bench_conv, "models": bench_models}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    ap.add_argument("--only", default="", help="comma-separated groups: " + ",".join(GROUPS))
    ap.add_argument("--emulated", action="store_true", help="smoke-test on the CPU with the emulated CuPy")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "gpu.md"))
    args = ap.parse_args(argv)
    ctx = contextlib.nullcontext()
    if args.emulated:
        sys.path.insert(0, os.path.join(ROOT, "tests"))  # the CuPy emulator lives with the tests
        from cupy_emulator import emulated_cupy

        ctx = emulated_cupy()
    with ctx:
        if not mg.cuda.is_available():
            print("no CUDA GPU: minigen.cuda.is_available() is False (install minigen[gpu] on an NVIDIA machine, "
                  "or pass --emulated for a smoke test)")
            return 2
        if torch is not None and TORCH_CUDA:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        S = Suite(2 if args.emulated else (3 if args.quick else 7), args.emulated)
        groups = [g for g in (args.only.split(",") if args.only else GROUPS) if g]
        for g in groups:
            GROUPS[g](S, small=args.emulated)
        if args.emulated:
            failed = [r["name"] for r in S.rows if r.get("error")]
            print("emulated smoke test:", "FAILED " + ", ".join(failed) if failed else "all rows ran")
            return 1 if failed else 0
        cmd = "python benchmarks/gpu_run.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_report(S, args.out, cmd)
        print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
