"""GPT: a decoder-only Transformer language model (Radford et al. 2018/2019), written from its equations.

The model factorises the probability of a sequence left to right,

    P(X) = prod_t P(x_t | x_<t),      P(x_t | x_<t) = softmax(logits_t),

and computes the logits of every position in one pass:

    h_0 = W_te[x] + W_pe[0..T-1]                                  token + learned position embeddings
    for each of the L blocks (pre-norm, residual):
        a   = LayerNorm_1(h)
        q, k, v = a W_q, a W_k, a W_v        split into H heads of size d = C / H
        head = softmax(q k^T / sqrt(d) + M) v,   M_ij = 0 if j <= i else -inf   (causal self-attention)
        h   = h + concat(heads) W_o
        h   = h + W_2 GELU(W_1 LayerNorm_2(h))                     (the MLP, hidden width 4C)
    logits = LayerNorm_f(h) W_head          (W_head = W_te^T when the weights are tied)

and the training loss is the mean cross-entropy  -1/(BT) sum log P(x_{t+1} | x_<=t).
Attention goes through ``F.scaled_dot_product_attention(q, k, v, is_causal=True)``.

Initialisation as GPT-2: weights N(0, 0.02), the residual output projections N(0, 0.02 / sqrt(2L)),
biases zero. AdamW decays the 2-d weights only (matmul weights and the embedding tables, as nanoGPT:
every parameter with dim >= 2), not the biases and LayerNorm gains.

:func:`train_gpt` reproduces nanoGPT's "baby GPT" CPU recipe (``BABY_CONFIG``): block 64, batch 12,
4 layers, 4 heads, 128 channels, no dropout, no biases, AdamW(lr 1e-3, betas (0.9, 0.99), wd 0.1),
warmup 100 + cosine to 1e-4 at 2000 iterations, grad-norm clip 1.0, train/val loss estimated on the
90/10 split every ``eval_interval`` iterations.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..random import _gen
from ..tensor import Tensor
from .sampling import sample_logits

__all__ = ["GPTConfig", "GPT", "CausalSelfAttention", "MLP", "Block", "BABY_CONFIG", "TrainConfig", "train_gpt_torch",
           "torch_gpt", "compare_step_time", "estimate_loss", "train_gpt"]


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    tie_weights: bool = True


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: y = concat_h softmax(q_h k_h^T / sqrt(d) + M) v_h, then W_o."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"n_embd {cfg.n_embd} must be divisible by n_head {cfg.n_head}")
        self.n_head, self.n_embd, self.dropout = cfg.n_head, cfg.n_embd, cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # [W_q W_k W_v] in one matmul
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)      # W_o
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, B: int, T: int):
        """``x``: (B*T, C), the batch and time dims flattened (keeps every matmul 2-d, BLAS's fast case)."""
        C, H = self.n_embd, self.n_head
        qkv = self.c_attn(x).reshape(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)  # (3, B, H, T, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)                       # (B, H, T, d)
        y = y.permute(0, 2, 1, 3).reshape(B * T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """y = W_2 GELU(W_1 x) (hidden width 4C), then dropout."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm Transformer block: h = h + Attn(LN_1(h)); h = h + MLP(LN_2(h)).

    ``forward(x, B, T)`` takes x as (B*T, C): the GPT keeps batch and time flattened between blocks
    so that every Linear is one 2-d matrix product.
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x, B: int, T: int):
        x = x + self.attn(self.ln_1(x), B, T)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The decoder-only Transformer LM (module docstring). ``forward(idx, targets=None) -> (logits, loss)``."""

    def __init__(self, cfg: GPTConfig = None, generator=None, **kwargs):
        super().__init__()
        cfg = cfg if cfg is not None else GPTConfig(**kwargs)
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self._init_weights(generator)
        if cfg.tie_weights:
            self.lm_head.weight = self.wte.weight  # logits = h W_te^T

    def _init_weights(self, generator):
        g = _gen(generator)
        std_proj = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, std_proj, generator=g)
            elif name.endswith(".weight") and p.ndim == 2:
                nn.init.normal_(p, 0.0, 0.02, generator=g)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count (shared tensors once); without the position embeddings by default, as nanoGPT."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def forward(self, idx, targets=None):
        idx = idx if isinstance(idx, Tensor) else Tensor(np.asarray(idx, dtype=np.int64))
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        pos = Tensor._make(idx.xp.arange(T, dtype=np.int64))  # positions 0..T-1, on idx's device
        x = self.drop(self.wte(idx) + self.wpe(pos)).reshape(B * T, self.config.n_embd)
        for block in self.h:
            x = block(x, B, T)
        logits = self.lm_head(self.ln_f(x))  # (B*T, V)
        loss = None
        if targets is not None:
            targets = targets if isinstance(targets, Tensor) else Tensor(np.asarray(targets, dtype=np.int64))
            loss = F.cross_entropy(logits, targets.reshape(B * T))
        return logits.reshape(B, T, -1), loss

    # ---------------------------------------------------------------- optimisation
    def param_groups(self, weight_decay: float):
        """Two AdamW groups: 2-d weights (matmuls, embeddings) decayed; biases and LayerNorm gains not."""
        decay, no_decay = [], []
        for p in self.parameters():
            (decay if p.ndim >= 2 else no_decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    def configure_optimizer(self, weight_decay=0.1, lr=1e-3, betas=(0.9, 0.99)):
        from .. import optim

        return optim.AdamW(self.param_groups(weight_decay), lr=lr, betas=betas)

    # ---------------------------------------------------------------- sampling
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k=None, top_p=None,
                 generator=None):
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T) and return the (B, T + n) ids.

        Each step feeds the last ``block_size`` tokens, takes the logits of the last position and
        samples with :func:`~minigen.models.sampling.sample_logits` (temperature 0 = greedy).
        """
        arr = np.asarray(idx.array if isinstance(idx, Tensor) else idx, dtype=np.int64)
        if arr.ndim == 1:
            arr = arr[None]
        was = self.training
        self.eval()
        try:
            with no_grad():
                for _ in range(int(max_new_tokens)):
                    cond = arr[:, -self.config.block_size:]
                    logits, _ = self(Tensor._make(cond))
                    last = logits.array[:, -1, :]
                    nxt = sample_logits(last, temperature, top_k, top_p, generator)
                    arr = np.concatenate([arr, np.asarray(nxt).reshape(-1, 1)], axis=1)
        finally:
            self.train(was)
        return Tensor._make(arr)


# ============================================================================ training
BABY_CONFIG = dict(block_size=64, batch_size=12, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False,
                   max_iters=2000, lr=1e-3, min_lr=1e-4, warmup_iters=100, lr_decay_iters=2000,
                   beta1=0.9, beta2=0.99, weight_decay=0.1, grad_clip=1.0, eval_interval=250, eval_iters=200)


@dataclass
class TrainConfig:
    block_size: int = 64
    batch_size: int = 12
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    tie_weights: bool = True
    max_iters: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 200
    log_interval: int = 10
    seed: int = 1337
    extra: dict = field(default_factory=dict)


class RandomBatches:
    """nanoGPT's sampler as a resumable loader: ``n_batches`` random (x, y) windows from ``data``.

    ``generator`` draws the window offsets; ``state_dict()`` records how many batches were handed out
    (the Trainer saves the generator state beside it, so a resumed run draws the same batches).
    """

    def __init__(self, data, block_size, batch_size, n_batches, generator):
        self.tokens, self.block_size, self.batch_size = data, int(block_size), int(batch_size)
        self.n_batches, self.generator = int(n_batches), generator
        self.batches_done = 0

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        from ..data import get_batch

        while self.batches_done < self.n_batches:
            self.batches_done += 1
            yield get_batch(self.tokens, self.block_size, self.batch_size, generator=self.generator)

    def state_dict(self):
        return {"batches_done": self.batches_done}

    def load_state_dict(self, st):
        self.batches_done = int(st["batches_done"])


def estimate_loss(model, splits: dict, block_size: int, batch_size: int, eval_iters: int, generator=None) -> dict:
    """nanoGPT's estimate: the mean loss over ``eval_iters`` random batches of each split, in eval mode."""
    from ..data import get_batch

    g = _gen(generator)
    out = {}
    was = model.training
    model.eval()
    try:
        with no_grad():
            for name, data in splits.items():
                losses = [model(*_xy(get_batch(data, block_size, batch_size, generator=g)))[1].item()
                          for _ in range(eval_iters)]
                out[name] = float(np.mean(losses))
    finally:
        model.train(was)
    return out


def _xy(batch):
    x, y = batch
    return x, y


def train_gpt(cfg: TrainConfig, train_ids, val_ids, vocab_size: int, out_dir: str, resume: bool = False,
              progress=None, decode=None, sample_tokens: int = 500, checkpoint_every: int = None,
              temperature: float = 0.8, top_k=None, top_p=None):
    """Train a GPT with nanoGPT's recipe; writes metrics.jsonl/csv, checkpoint, loss curve, samples.

    Returns a summary dict (final train/val loss estimates, seconds per iteration, paths).
    """
    import minigen as mg
    from .. import optim
    from ..data import plot_curves
    from ..train import Trainer

    os.makedirs(out_dir, exist_ok=True)
    mg.manual_seed(cfg.seed)
    mcfg = GPTConfig(vocab_size=int(vocab_size), block_size=cfg.block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
                     n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias, tie_weights=cfg.tie_weights)
    model = GPT(mcfg, generator=mg.Generator().manual_seed(cfg.seed))
    opt = optim.AdamW(model.param_groups(cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    sched = optim.lr_scheduler.WarmupCosineLR(opt, min(cfg.warmup_iters, cfg.lr_decay_iters), cfg.lr_decay_iters,
                                              min_lr=cfg.min_lr)
    loader = RandomBatches(train_ids, cfg.block_size, cfg.batch_size, cfg.max_iters,
                           mg.Generator().manual_seed(cfg.seed + 1))
    eval_gen = mg.Generator().manual_seed(cfg.seed + 2)

    def loss_fn(batch):
        return model(*batch)[1]

    def eval_fn():
        est = estimate_loss(model, {"train": train_ids, "val": val_ids}, cfg.block_size, cfg.batch_size,
                            cfg.eval_iters, eval_gen)
        return {"train_loss_est": est["train"], "val_loss": est["val"]}

    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump({"model": asdict(mcfg), "train": asdict(cfg)}, f, indent=1)
    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out_dir, scheduler=sched, eval_fn=eval_fn,
                      epochs=1, max_steps=cfg.max_iters, log_every=cfg.log_interval, eval_every=cfg.eval_interval,
                      checkpoint_every=checkpoint_every or cfg.eval_interval, grad_clip=cfg.grad_clip,
                      progress=progress, extra_state=_GenState(eval_gen))
    t0 = time.perf_counter()
    start_step = trainer.step
    res = trainer.fit(resume=resume)
    elapsed = time.perf_counter() - t0
    iters_run = res["step"] - (start_step if not res.get("resumed") else 0)
    rows = trainer.logger.rows
    tr = [(r["step"], r["loss"]) for r in rows if r.get("split") == "train" and r.get("loss") is not None]
    va = [(r["step"], r["val_loss"]) for r in rows if r.get("split") == "val" and r.get("val_loss") is not None]
    te = [(r["step"], r["train_loss_est"]) for r in rows if r.get("split") == "val"
          and r.get("train_loss_est") is not None]
    curves = {"train loss (batch)": tr}
    if te:
        curves["train loss (estimate)"] = te
    if va:
        curves["val loss (estimate)"] = va
    curve_path = plot_curves(curves, os.path.join(out_dir, "loss_curve.png"), title="GPT",
                             ylabel="cross-entropy (nats/token)")
    sample_text = None
    if sample_tokens:
        out = model.generate(np.zeros((1, 1), dtype=np.int64), sample_tokens, temperature=temperature, top_k=top_k,
                             top_p=top_p, generator=mg.Generator().manual_seed(cfg.seed + 3))
        ids = out.numpy()[0, 1:]
        sample_text = decode(ids) if decode is not None else " ".join(map(str, ids))
        with open(os.path.join(out_dir, "samples.txt"), "w", encoding="utf-8") as f:
            f.write(sample_text)
    # time per iteration without the evaluations: the median over the logging windows
    rates = [r["samples_per_s"] for r in rows if r.get("split") == "train" and r.get("samples_per_s")]
    s_iter = float(np.median([cfg.batch_size / x for x in rates])) if rates else elapsed / max(iters_run, 1)
    summary = {"step": res["step"], "val_loss": res.get("val_loss"), "train_loss_est": res.get("train_loss_est"),
               "elapsed_s": elapsed, "s_per_iter": s_iter, "interrupted": res["interrupted"],
               "params": model.num_parameters(), "loss_curve": curve_path, "checkpoint": res["checkpoint"]}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return model, summary, sample_text


class _GenState:
    """Saves a Generator's state inside the Trainer's checkpoint (``extra_state``)."""

    def __init__(self, g):
        self.g = g

    def state_dict(self):
        return self.g.get_state()

    def load_state_dict(self, st):
        self.g.set_state(st)


# ============================================================================ PyTorch twin (for comparison)
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
    from ..data import get_batch

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
    from .. import optim
    from ..data import get_batch
    from ..train import clip_grad_norm

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
