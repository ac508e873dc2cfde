"""``minigen train seq2seq``: the Transformer encoder-decoder of :mod:`minigen.models.seq2seq` on a toy task
made on the fly.

The task (:func:`reverse_batch`): x = a random digit string of length ``min_len..max_len``, y = x reversed
(``--task sort``: the digits sorted). Training minimises the teacher-forced cross-entropy over the non-padding
target tokens with AdamW (lr 1e-3, betas (0.9, 0.98)), warmup + cosine, grad-norm clip 1; success is the
exact-match accuracy of greedy decoding (:func:`exact_match`: the whole decoded string equals the target) on a
fixed held-out set. ``--iters N`` is where the run stops; ``--resume`` continues from any stop point.

``minigen sample RUN_DIR --input 31415``: the model's greedy output for a digit string.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

from . import _common as C

NAME = "seq2seq"
HELP = "Transformer encoder-decoder on a generated task (reverse a digit string)"
DATA_PARALLEL = ("every rank generates the same N x --batch-size task strings per step (the run's seeded "
                 "generator) and trains on its own rows (the loss is each rank's mean over its target tokens, "
                 "then averaged over the ranks); rank 0 evaluates and writes")

__all__ = ["NAME", "HELP", "Seq2SeqConfig", "reverse_batch", "exact_match", "train_seq2seq", "add_arguments", "run",
           "add_sample_arguments", "sample"]


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
    lr_decay_iters: int = None  # default: max_iters
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_size: int = 1000
    log_interval: int = 10
    seed: int = 7


def reverse_batch(batch_size: int, min_len: int, max_len: int, generator=None, task: str = "reverse"):
    """A batch of the toy task: (src (B, max_len), tgt_in (B, max_len + 1), tgt_out (B, max_len + 1)).

    src = digits then PAD; tgt_out = f(digits) then EOS then PAD; tgt_in = BOS + tgt_out[:-1]
    (teacher forcing). ``task``: 'reverse' (f = reversal) or 'sort' (f = sorted digits).
    """
    import numpy as np

    from ..models.seq2seq import BOS, EOS, PAD
    from ..random import _gen
    from ..tensor import Tensor

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


def exact_match(model, src, tgt_out) -> dict:
    """Greedy-decode ``src`` and compare with ``tgt_out``: exact-match (whole sequence incl. EOS) and token accuracy."""
    import numpy as np

    from ..models.seq2seq import PAD
    from ..tensor import Tensor

    tgt = np.asarray(tgt_out.array if isinstance(tgt_out, Tensor) else tgt_out)
    pred = model.greedy_decode(src, tgt.shape[1])
    mask = tgt != PAD
    seq_ok = ((pred == tgt) | ~mask).all(1)
    return {"exact_match": float(seq_ok.mean()), "token_acc": float((pred == tgt)[mask].mean())}


class _TaskBatches:
    """Fresh batches of the toy task without end (resumable: the Trainer saves the generator state)."""

    def __init__(self, cfg: Seq2SeqConfig, generator, batch_size=None):
        self.cfg, self.generator, self.batches_done = cfg, generator, 0
        self.batch_size = int(batch_size or cfg.batch_size)

    def __iter__(self):
        c = self.cfg
        while True:
            self.batches_done += 1
            yield reverse_batch(self.batch_size, c.min_len, c.max_len, self.generator, c.task)

    def state_dict(self):
        return {"batches_done": self.batches_done}

    def load_state_dict(self, st):
        self.batches_done = int(st["batches_done"])


def _ddp_loss(net, model, src, tgt_in, tgt_out):
    """``model.loss`` with the forward through the DistributedDataParallel wrapper ``net``."""
    from ..nn import functional as F

    logits = net(src, tgt_in)
    B, T, V = logits.shape
    return F.cross_entropy(logits.reshape(B * T, V), tgt_out.reshape(B * T), ignore_index=model.pad_id)


def build_model(cfg: Seq2SeqConfig):
    from ..models.seq2seq import VOCAB, Seq2SeqTransformer

    return Seq2SeqTransformer(VOCAB, cfg.d_model, cfg.nhead, cfg.num_encoder_layers, cfg.num_decoder_layers,
                              cfg.dim_feedforward, cfg.dropout, max_len=cfg.max_len + 2)


def _show(row):
    return "".join(str(int(t)) for t in row if t < 10)


def train_seq2seq(cfg: Seq2SeqConfig, out_dir: str, resume: bool = False, progress=None, n_examples: int = 10,
                  args=None, dp=None):
    """Train on freshly generated batches; evaluate exact match on a fixed held-out set. ``dp``: a
    :class:`minigen.train.DataParallel` (``cfg.batch_size`` strings per process). Returns (model, summary)."""
    import minigen as mg
    from .. import optim
    from ..data import plot_curves
    from ..train import Trainer

    os.makedirs(out_dir, exist_ok=True)
    mg.manual_seed(cfg.seed)
    model = build_model(cfg)
    opt = optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.0)
    decay = cfg.lr_decay_iters or cfg.max_iters
    sched = optim.lr_scheduler.WarmupCosineLR(opt, min(cfg.warmup_iters, decay), decay, min_lr=cfg.min_lr)
    loader = C.train_loader(_TaskBatches(cfg, mg.Generator().manual_seed(cfg.seed + 1),
                                         C.global_batch(cfg.batch_size, dp)), dp)
    net = model if dp is None else dp.wrap(model)
    # the held-out set: a different stream of random strings (seed), fixed for the whole run
    ev_src, _, ev_out = reverse_batch(cfg.eval_size, cfg.min_len, cfg.max_len,
                                      mg.Generator().manual_seed(cfg.seed + 1000), cfg.task)

    def loss_fn(batch):
        return model.loss(*batch) if net is model else _ddp_loss(net, model, *batch)

    def eval_fn():
        return exact_match(model, ev_src, ev_out)

    if args is not None:
        C.write_config(out_dir, NAME, args, config=asdict(cfg))
    else:
        C.write_json({"recipe": NAME, "args": {}, "config": asdict(cfg)}, os.path.join(out_dir, C.CONFIG))
    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out_dir, scheduler=sched, eval_fn=C.rng_isolated(eval_fn),
                      epochs=None, max_steps=cfg.max_iters, log_every=cfg.log_interval,
                      eval_every=cfg.eval_interval, checkpoint_every=cfg.eval_interval, grad_clip=cfg.grad_clip,
                      progress=progress, data_parallel=dp)
    if not resume:
        C.fresh_log(trainer)
    t0 = time.perf_counter()
    res = trainer.fit(resume=resume)
    elapsed = time.perf_counter() - t0
    if not C.dp_main(dp):  # the other ranks of a data-parallel run write nothing
        return model, {"step": res["step"], "interrupted": res["interrupted"]}
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
    lines = [f"{_show(s):>{cfg.max_len}} -> {_show(p):<{cfg.max_len}} {'ok' if _show(p) == _show(o) else 'WRONG'}"
             for s, p, o in zip(src.array, pred, out.array)]
    with open(os.path.join(out_dir, "samples.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    summary = {"task": cfg.task, "step": res["step"], "exact_match": res.get("exact_match"),
               "token_acc": res.get("token_acc"), "elapsed_s": elapsed, "interrupted": res["interrupted"],
               "resumed": res.get("resumed", False), "params": sum(p.numel() for p in model.parameters()),
               "loss_curve": curve, "checkpoint": res["checkpoint"], "examples": lines}
    C.write_json(summary, os.path.join(out_dir, "summary.json"))
    return model, summary


def add_arguments(p):
    C.add_run_arguments(p, "out/seq2seq", seed=7, device=False)
    p.add_argument("--iters", type=int, default=1500, help="train up to this iteration (default 1500)")
    p.add_argument("--eval-interval", type=int, default=250,
                   help="evaluate and save a checkpoint every N iterations (default 250)")
    p.add_argument("--task", choices=["reverse", "sort"], default="reverse", help="default reverse")
    p.add_argument("--min-len", type=int, default=1, help="shortest digit string (default 1)")
    p.add_argument("--max-len", type=int, default=10, help="longest digit string (default 10)")
    p.add_argument("--d-model", type=int, default=64, help="default 64")
    p.add_argument("--nhead", type=int, default=4, help="default 4")
    p.add_argument("--layers", type=int, default=2, help="encoder and decoder layers each (default 2)")
    p.add_argument("--ff", type=int, default=256, help="feed-forward width (default 256)")
    p.add_argument("--dropout", type=float, default=0.0, help="default 0")
    p.add_argument("--batch-size", type=int, default=64, help="default 64")
    p.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3)")
    p.add_argument("--warmup", type=int, default=100, help="default 100")
    p.add_argument("--lr-decay-iters", type=int, default=None, help="end of the cosine decay (default: --iters)")
    p.add_argument("--eval-size", type=int, default=1000, help="held-out strings for exact match (default 1000)")


def run(args):
    cfg = Seq2SeqConfig(task=args.task, min_len=args.min_len, max_len=args.max_len, d_model=args.d_model,
                        nhead=args.nhead, num_encoder_layers=args.layers, num_decoder_layers=args.layers,
                        dim_feedforward=args.ff, dropout=args.dropout, batch_size=args.batch_size,
                        max_iters=args.iters, lr=args.lr, warmup_iters=args.warmup,
                        lr_decay_iters=args.lr_decay_iters, eval_interval=args.eval_interval,
                        eval_size=args.eval_size, seed=args.seed)
    _, summary = train_seq2seq(cfg, args.out, resume=args.resume, progress=C.progress_flag(args), args=args,
                               dp=C.data_parallel(args))
    if not C.is_main_process():
        return 130 if summary["interrupted"] else 0
    print("\n".join(summary["examples"]))
    C.print_summary("seq2seq", summary, args.out)
    return C.exit_code(summary)


def add_sample_arguments(p):
    p.add_argument("--input", default=None,
                   help="digit strings to transform, comma-separated (default: --n random strings)")


def sample(args):
    import numpy as np

    import minigen as mg
    from ..errors import InvalidArgumentError
    from ..models.seq2seq import PAD

    cfg = Seq2SeqConfig(**C.read_config(args.run_dir)["config"])
    model = C.load_checkpoint_model(args.run_dir, build_model(cfg))
    if args.input:
        strings = [s.strip() for s in str(args.input).split(",") if s.strip()]
        bad = [s for s in strings if not s.isdigit() or len(s) > cfg.max_len]
        if bad:
            raise InvalidArgumentError(f"--input: digit strings of at most {cfg.max_len} digits, got {bad}")
        src = np.full((len(strings), cfg.max_len), PAD, dtype=np.int64)
        for i, s in enumerate(strings):
            src[i, :len(s)] = [int(c) for c in s]
    else:
        src = reverse_batch(args.n or 10, cfg.min_len, cfg.max_len, mg.Generator().manual_seed(args.seed),
                            cfg.task)[0].numpy()
    pred = model.greedy_decode(src, cfg.max_len + 1)
    lines = [f"{_show(s):>{cfg.max_len}} -> {_show(p)}" for s, p in zip(src, pred)]
    path = C.sample_path(args, "sample.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"({cfg.task}; written to {path})")
    return 0
