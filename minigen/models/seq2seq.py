"""Transformer encoder-decoder (Vaswani et al. 2017) for sequence-to-sequence, on a toy task made on the fly.

The model factorises the probability of an output y given an input x left to right,

    P(y | x) = prod_t P(y_t | y_<t, x),     P(y_t | y_<t, x) = softmax(W_out d_t),

    memory = Enc(x):  e = sqrt(D) E_src[x] + PE;  per layer (pre-norm):
                      e = e + SelfAttn(LN(e)) (keys restricted to non-padding source tokens)
                      e = e + FFN(LN(e));     memory = LN(e)
    d      = Dec(y_<t, memory):  u = sqrt(D) E_tgt[<bos>, y_1 .. y_{t-1}] + PE;  per layer:
                      u = u + SelfAttn(LN(u))   causal: position t sees positions <= t only
                      u = u + CrossAttn(LN(u), memory)   softmax(Q K_mem^T / sqrt(d_head)) V_mem
                      u = u + FFN(LN(u));       d = LN(u)

with Attn(Q, K, V) = softmax(Q K^T / sqrt(d_head) + M) V per head, PE the sinusoidal position code,
FFN(u) = W_2 ReLU(W_1 u). The blocks are ``minigen.nn.Transformer`` (``norm_first=True``, batch-first).
Training minimises the teacher-forced cross-entropy -1/N sum_t log P(y_t | y_<t, x) over the
non-padding target tokens; decoding is greedy (argmax, one token at a time, until <eos>).

The toy task (:func:`reverse_batch`): x = a random digit string of length ``min_len..max_len``,
y = x reversed. Token ids: digits 0-9, PAD = 10, BOS = 11, EOS = 12. Success is measured by
exact-match accuracy (the whole decoded string equals the reversed input) on a held-out set.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..random import _gen
from ..tensor import Tensor

__all__ = ["PAD", "BOS", "EOS", "VOCAB", "reverse_batch", "Seq2SeqTransformer", "Seq2SeqConfig",
           "exact_match", "train_seq2seq"]

PAD, BOS, EOS = 10, 11, 12
VOCAB = 13


def reverse_batch(batch_size: int, min_len: int, max_len: int, generator=None, task: str = "reverse"):
    """A batch of the toy task: (src (B, max_len), tgt_in (B, max_len + 1), tgt_out (B, max_len + 1)).

    src = digits then PAD; tgt_out = f(digits) then EOS then PAD; tgt_in = BOS + tgt_out[:-1]
    (teacher forcing). ``task``: 'reverse' (f = reversal) or 'sort' (f = sorted digits).
    """
    rng = _gen(generator).numpy
    lens = rng.integers(min_len, max_len + 1, size=batch_size)
    digits = rng.integers(0, 10, size=(batch_size, max_len))
    src = np.full((batch_size, max_len), PAD, dtype=np.int64)
    out = np.full((batch_size, max_len + 1), PAD, dtype=np.int64)
    for b, n in enumerate(lens):
        s = digits[b, :n]
        src[b, :n] = s
        y = s[::-1] if task == "reverse" else np.sort(s)
        out[b, :n] = y
        out[b, n] = EOS
    tin = np.concatenate([np.full((batch_size, 1), BOS, dtype=np.int64), out[:, :-1]], axis=1)
    tin[tin == EOS] = PAD  # the EOS is never an input (positions after it are ignored anyway)
    return Tensor._make(src), Tensor._make(tin), Tensor._make(out)


class Seq2SeqTransformer(nn.Module):
    """Embeddings + sinusoidal positions + ``nn.Transformer`` (pre-norm) + output projection."""

    def __init__(self, vocab_size: int = VOCAB, d_model: int = 64, nhead: int = 4, num_encoder_layers: int = 2,
                 num_decoder_layers: int = 2, dim_feedforward: int = 256, dropout: float = 0.0, max_len: int = 64,
                 pad_id: int = PAD):
        super().__init__()
        self.d_model, self.pad_id, self.vocab_size = d_model, pad_id, vocab_size
        self.src_embed = nn.Embedding(vocab_size, d_model)
        self.tgt_embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.SinusoidalPositionalEncoding(d_model, max_len, dropout=dropout, batch_first=True)
        self.transformer = nn.Transformer(d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward,
                                          dropout, batch_first=True, norm_first=True)
        self.out = nn.Linear(d_model, vocab_size)
        with no_grad():
            nn.init.normal_(self.src_embed.weight, 0.0, d_model ** -0.5)
            nn.init.normal_(self.tgt_embed.weight, 0.0, d_model ** -0.5)

    def _src_pad_mask(self, src):
        return Tensor._make(src.array == self.pad_id)  # True = this key is padding (ignored)

    def encode(self, src):
        x = self.pos(self.src_embed(src) * math.sqrt(self.d_model))
        return self.transformer.encoder(x, src_key_padding_mask=self._src_pad_mask(src))

    def decode(self, tgt_in, memory, src):
        T = tgt_in.shape[1]
        u = self.pos(self.tgt_embed(tgt_in) * math.sqrt(self.d_model))
        causal = nn.Transformer.generate_square_subsequent_mask(T, dtype=u.dtype)
        d = self.transformer.decoder(u, memory, tgt_mask=causal, tgt_is_causal=True,
                                     memory_key_padding_mask=self._src_pad_mask(src))
        return self.out(d)

    def forward(self, src, tgt_in):
        """Teacher-forced logits (B, T, V) for every target position."""
        src = src if isinstance(src, Tensor) else Tensor(np.asarray(src, dtype=np.int64))
        tgt_in = tgt_in if isinstance(tgt_in, Tensor) else Tensor(np.asarray(tgt_in, dtype=np.int64))
        return self.decode(tgt_in, self.encode(src), src)

    def loss(self, src, tgt_in, tgt_out):
        logits = self(src, tgt_in)
        B, T, V = logits.shape
        return F.cross_entropy(logits.reshape(B * T, V), tgt_out.reshape(B * T), ignore_index=self.pad_id)

    def greedy_decode(self, src, max_new_tokens: int):
        """Argmax decoding from <bos>; returns (B, max_new_tokens) ids (after <eos>: PAD)."""
        src = src if isinstance(src, Tensor) else Tensor(np.asarray(src, dtype=np.int64))
        was = self.training
        self.eval()
        try:
            with no_grad():
                memory = self.encode(src)
                B = src.shape[0]
                ys = np.full((B, 1), BOS, dtype=np.int64)
                done = np.zeros(B, dtype=bool)
                for _ in range(int(max_new_tokens)):
                    logits = self.decode(Tensor._make(ys), memory, src)
                    nxt = np.asarray(logits.array[:, -1, :].argmax(-1)).astype(np.int64)
                    nxt = np.where(done, PAD, nxt)
                    done |= nxt == EOS
                    ys = np.concatenate([ys, nxt[:, None]], axis=1)
                    if done.all():
                        break
        finally:
            self.train(was)
        out = np.full((ys.shape[0], max_new_tokens), PAD, dtype=np.int64)
        out[:, :ys.shape[1] - 1] = ys[:, 1:]
        return out


def exact_match(model, src, tgt_out) -> dict:
    """Greedy-decode ``src`` and compare with ``tgt_out``: exact-match (whole sequence incl. EOS) and token accuracy."""
    tgt = np.asarray(tgt_out.array if isinstance(tgt_out, Tensor) else tgt_out)
    pred = model.greedy_decode(src, tgt.shape[1])
    mask = tgt != PAD
    seq_ok = ((pred == tgt) | ~mask).all(1)
    return {"exact_match": float(seq_ok.mean()), "token_acc": float((pred == tgt)[mask].mean())}


@dataclass
class Seq2SeqConfig:
    task: str = "reverse"
    min_len: int = 1
    max_len: int = 10
    d_model: int = 64
    nhead: int = 4
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dim_feedforward: int = 256
    dropout: float = 0.0
    batch_size: int = 64
    max_iters: int = 1500
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_size: int = 1000
    log_interval: int = 10
    seed: int = 7


class _TaskBatches:
    """``n_batches`` fresh batches of the toy task (resumable: the Trainer saves the generator state)."""

    def __init__(self, cfg: Seq2SeqConfig, generator):
        self.cfg, self.generator, self.batches_done = cfg, generator, 0

    def __len__(self):
        return self.cfg.max_iters

    def __iter__(self):
        c = self.cfg
        while self.batches_done < c.max_iters:
            self.batches_done += 1
            yield reverse_batch(c.batch_size, c.min_len, c.max_len, self.generator, c.task)

    def state_dict(self):
        return {"batches_done": self.batches_done}

    def load_state_dict(self, st):
        self.batches_done = int(st["batches_done"])


def train_seq2seq(cfg: Seq2SeqConfig, out_dir: str, resume: bool = False, progress=None, n_examples: int = 10):
    """Train on freshly generated batches; evaluate exact match on a fixed held-out set. Returns (model, summary)."""
    import minigen as mg
    from .. import optim
    from ..data import plot_curves
    from ..train import Trainer

    os.makedirs(out_dir, exist_ok=True)
    mg.manual_seed(cfg.seed)
    model = Seq2SeqTransformer(VOCAB, cfg.d_model, cfg.nhead, cfg.num_encoder_layers, cfg.num_decoder_layers,
                               cfg.dim_feedforward, cfg.dropout, max_len=cfg.max_len + 2)
    opt = optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.0)
    sched = optim.lr_scheduler.WarmupCosineLR(opt, min(cfg.warmup_iters, cfg.max_iters), cfg.max_iters,
                                              min_lr=cfg.min_lr)
    loader = _TaskBatches(cfg, mg.Generator().manual_seed(cfg.seed + 1))
    # the held-out set: a different stream of random strings (seed), fixed for the whole run
    ev_src, _, ev_out = reverse_batch(cfg.eval_size, cfg.min_len, cfg.max_len,
                                      mg.Generator().manual_seed(cfg.seed + 1000), cfg.task)

    def loss_fn(batch):
        return model.loss(*batch)

    def eval_fn():
        return exact_match(model, ev_src, ev_out)

    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(asdict(cfg), f, indent=1)
    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out_dir, scheduler=sched, eval_fn=eval_fn, epochs=1,
                      max_steps=cfg.max_iters, log_every=cfg.log_interval, eval_every=cfg.eval_interval,
                      checkpoint_every=cfg.eval_interval, grad_clip=cfg.grad_clip, progress=progress)
    t0 = time.perf_counter()
    res = trainer.fit(resume=resume)
    elapsed = time.perf_counter() - t0
    rows = trainer.logger.rows
    tr = [(r["step"], r["loss"]) for r in rows if r.get("split") == "train" and r.get("loss") is not None]
    em = [(r["step"], r["exact_match"]) for r in rows if r.get("split") == "val" and r.get("exact_match") is not None]
    curve = plot_curves({"train loss": tr}, os.path.join(out_dir, "loss_curve.png"), title=f"seq2seq ({cfg.task})",
                        ylabel="cross-entropy (nats/token)", logy=True)
    if em:
        plot_curves({"exact match (held-out)": em}, os.path.join(out_dir, "accuracy.png"),
                    title=f"seq2seq ({cfg.task})", ylabel="exact-match accuracy")
    # a few examples to look at
    src, _, out = reverse_batch(n_examples, cfg.min_len, cfg.max_len, mg.Generator().manual_seed(cfg.seed + 2),
                                cfg.task)
    pred = model.greedy_decode(src, cfg.max_len + 1)

    def show(row):
        return "".join(str(int(t)) for t in row if t < 10)

    lines = [f"{show(s):>{cfg.max_len}} -> {show(p):<{cfg.max_len}} {'ok' if show(p) == show(o) else 'WRONG'}"
             for s, p, o in zip(src.array, pred, out.array)]
    with open(os.path.join(out_dir, "samples.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    summary = {"task": cfg.task, "step": res["step"], "exact_match": res.get("exact_match"),
               "token_acc": res.get("token_acc"), "elapsed_s": elapsed, "interrupted": res["interrupted"],
               "params": sum(p.numel() for p in model.parameters()), "loss_curve": curve,
               "checkpoint": res["checkpoint"], "examples": lines}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return model, summary
