"""The PyTorch twin of minigen's GPT (:mod:`minigen.models.gpt`), for comparisons: same modules, same parameter
names, same initial weights, same batches.

- :func:`torch_gpt` builds the twin (copying a minigen GPT's weights);
- :func:`train_gpt_torch` trains it with the GPT recipe's schedule on the same batches
  (``minigen train gpt --torch-compare`` calls it, from a source checkout);
- :func:`compare_step_time` times one training step of each, interleaved, same thread count.

Run as a script for a quick side-by-side step-time comparison::

    python benchmarks/gpt_torch.py [--steps 30] [--threads 1]

Needs torch (an optional dependency: minigen never imports this module itself).
"""
from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from a source checkout
    sys.path.insert(0, _ROOT)

from minigen.models.gpt import GPT, GPTConfig  # noqa: E402
from minigen.recipes.gpt import TrainConfig  # noqa: E402

__all__ = ["torch_gpt", "train_gpt_torch", "compare_step_time"]

def torch_gpt(mcfg: GPTConfig, init_from: "GPT" = None):
    """A PyTorch module equal to :class:`GPT` parameter for parameter (same names); ``forward(idx, targets)``
    returns the loss. ``init_from``: a minigen GPT whose weights are copied in (default: one built with
    seed 1337). Needs torch."""
    import torch
    import minigen as mg

    tnn, TF = torch.nn, torch.nn.functional
    C, H = mcfg.n_embd, mcfg.n_head

    class TAttn(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = tnn.Linear(C, 3 * C, bias=mcfg.bias)
            self.c_proj = tnn.Linear(C, C, bias=mcfg.bias)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.c_attn(x).reshape(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
            p = mcfg.dropout if self.training else 0.0
            y = TF.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            return TF.dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)), p, self.training)

    class TMLP(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = tnn.Linear(C, 4 * C, bias=mcfg.bias)
            self.c_proj = tnn.Linear(4 * C, C, bias=mcfg.bias)

        def forward(self, x):
            return TF.dropout(self.c_proj(TF.gelu(self.c_fc(x))), mcfg.dropout, self.training)

    class TBlock(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = tnn.LayerNorm(C, bias=mcfg.bias), TAttn()
            self.ln_2, self.mlp = tnn.LayerNorm(C, bias=mcfg.bias), TMLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class TGPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.wte = tnn.Embedding(mcfg.vocab_size, C)
            self.wpe = tnn.Embedding(mcfg.block_size, C)
            self.h = tnn.ModuleList([TBlock() for _ in range(mcfg.n_layer)])
            self.ln_f = tnn.LayerNorm(C, bias=mcfg.bias)
            self.lm_head = tnn.Linear(C, mcfg.vocab_size, bias=False)
            if mcfg.tie_weights:
                self.lm_head.weight = self.wte.weight

        def forward(self, idx, targets):
            B, T = idx.shape
            x = TF.dropout(self.wte(idx) + self.wpe(torch.arange(T)), mcfg.dropout, self.training)
            for blk in self.h:
                x = blk(x)
            logits = self.lm_head(self.ln_f(x))
            return TF.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))

    ref = init_from if init_from is not None else GPT(mcfg, generator=mg.Generator().manual_seed(1337))
    model = TGPT()
    sd = {k: torch.from_numpy(np.array(v.numpy())) for k, v in ref.state_dict().items()}
    missing = model.load_state_dict(sd, strict=False)
    if missing.missing_keys:
        raise RuntimeError(f"torch twin: parameters not initialised from minigen: {missing.missing_keys}")
    return model


def train_gpt_torch(cfg: TrainConfig, train_ids, val_ids, vocab_size: int, threads=None, log=None) -> dict:
    """Train the same model in PyTorch (if installed): same initial weights, same batches, same schedule.

    The PyTorch model mirrors :class:`GPT` module for module (same parameter names), starts from the
    weights minigen's ``GPT`` gets with the same seed, sees the same batches in the same order and is
    evaluated on the same random batches, so the two loss curves differ only by floating-point
    arithmetic. ``threads``: torch's intra-op threads (default: ``OPENBLAS_NUM_THREADS`` if set, as
    NumPy's BLAS then uses that many, else torch's default). Returns the measured numbers.
    """
    import torch
    import minigen as mg
    from minigen.data import get_batch

    if threads is None and os.environ.get("OPENBLAS_NUM_THREADS"):
        threads = int(os.environ["OPENBLAS_NUM_THREADS"])
    if threads:
        torch.set_num_threads(int(threads))
    mcfg = GPTConfig(vocab_size=int(vocab_size), block_size=cfg.block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
                     n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias, tie_weights=cfg.tie_weights)
    model = torch_gpt(mcfg, GPT(mcfg, generator=mg.Generator().manual_seed(cfg.seed)))  # minigen's initial weights
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    warm = min(cfg.warmup_iters, cfg.lr_decay_iters)

    def lr_at(t):
        if t < warm:
            return cfg.lr * (t + 1) / (warm + 1)
        if t > cfg.lr_decay_iters or cfg.lr_decay_iters == warm:
            return cfg.min_lr
        r = (t - warm) / (cfg.lr_decay_iters - warm)
        return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * r)) * (cfg.lr - cfg.min_lr)

    batches = mg.Generator().manual_seed(cfg.seed + 1)
    eval_gen = mg.Generator().manual_seed(cfg.seed + 2)

    def tb(pair):
        return tuple(torch.from_numpy(np.asarray(t.array)) for t in pair)

    def estimate():
        model.eval()
        out = {}
        with torch.no_grad():
            for name, data in (("train", train_ids), ("val", val_ids)):
                out[name] = float(np.mean([model(*tb(get_batch(data, cfg.block_size, cfg.batch_size, eval_gen))).item()
                                           for _ in range(cfg.eval_iters)]))
        model.train()
        return out

    times, evals = [], []
    t_all = time.perf_counter()
    for it in range(cfg.max_iters):
        x, y = tb(get_batch(train_ids, cfg.block_size, cfg.batch_size, batches))
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        times.append(time.perf_counter() - t0)
        step = it + 1
        if step % cfg.eval_interval == 0 or step == cfg.max_iters:
            est = estimate()
            evals.append({"step": step, "train_loss_est": est["train"], "val_loss": est["val"]})
            if log is not None:
                log(evals[-1])
    return {"val_loss": evals[-1]["val_loss"], "train_loss_est": evals[-1]["train_loss_est"],
            "s_per_iter": float(np.median(times)), "train_time_s": float(np.sum(times)),
            "elapsed_s": time.perf_counter() - t_all, "threads": torch.get_num_threads(), "evals": evals}


def compare_step_time(cfg: TrainConfig, train_ids, vocab_size: int, steps: int = 30, warmup: int = 3,
                      threads: int = 1) -> dict:
    """Time one training step (forward, backward, clip, AdamW) of minigen's GPT and of its PyTorch twin,
    interleaved on the same batches (so both see the same machine load), same thread count.

    Returns the min and median seconds per step of each and the median ratio minigen / torch.
    """
    import torch
    import minigen as mg
    from minigen import optim
    from minigen.data import get_batch
    from minigen.train import clip_grad_norm

    torch.set_num_threads(int(threads))
    mcfg = GPTConfig(vocab_size=int(vocab_size), block_size=cfg.block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
                     n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias, tie_weights=cfg.tie_weights)
    m = GPT(mcfg, generator=mg.Generator().manual_seed(cfg.seed))
    t = torch_gpt(mcfg, m)
    opt = optim.AdamW(m.param_groups(cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    topt = torch.optim.AdamW([{"params": [p for p in t.parameters() if p.dim() >= 2], "weight_decay": cfg.weight_decay},
                              {"params": [p for p in t.parameters() if p.dim() < 2], "weight_decay": 0.0}],
                             lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    g = mg.Generator().manual_seed(0)
    tm, tt = [], []
    for i in range(warmup + steps):
        x, y = get_batch(train_ids, cfg.block_size, cfg.batch_size, g)
        t0 = time.perf_counter()
        _, loss = m(x, y)
        opt.zero_grad()
        loss.backward()
        clip_grad_norm(m.parameters(), cfg.grad_clip)
        opt.step()
        t1 = time.perf_counter()
        tl = t(torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy()))
        topt.zero_grad(set_to_none=True)
        tl.backward()
        torch.nn.utils.clip_grad_norm_(t.parameters(), cfg.grad_clip)
        topt.step()
        t2 = time.perf_counter()
        if i >= warmup:
            tm.append(t1 - t0)
            tt.append(t2 - t1)
    ratio = [a / b for a, b in zip(tm, tt)]
    return {"minigen_min_s": min(tm), "minigen_median_s": float(np.median(tm)), "torch_min_s": min(tt),
            "torch_median_s": float(np.median(tt)), "median_ratio": float(np.median(ratio)), "steps": steps,
            "threads": threads}


def main(argv=None):
    import argparse

    from minigen.data import CharTokenizer, load_shakespeare

    ap = argparse.ArgumentParser(description="minigen GPT vs its PyTorch twin: seconds per training step")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    text = load_shakespeare()
    tok = CharTokenizer.fit(text)
    r = compare_step_time(TrainConfig(), tok.encode_array(text), tok.vocab_size, steps=a.steps, threads=a.threads)
    for k, v in r.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
