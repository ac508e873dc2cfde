"""``minigen train gpt``: nanoGPT's "baby GPT" recipe for the GPT of :mod:`minigen.models.gpt` on tiny-shakespeare.

``BABY_CONFIG``: block 64, batch 12, 4 layers, 4 heads, 128 channels, no dropout, no biases,
AdamW(lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on the 2-d weights), warmup 100 + cosine to 1e-4 at
``--lr-decay-iters`` (default ``--iters``, 2000), grad-norm clip 1.0, train/val loss estimated on the 90/10 split
every ``eval_interval`` iterations (each estimate from batches drawn by a generator seeded with the step, so an
estimate depends only on the weights, never on when earlier estimates ran).

**Stopping and resuming.** ``--iters N`` is where this run stops. The batches come from a generator saved in
the checkpoint, the learning rate is a function of the step and of ``--warmup`` / ``--lr-decay-iters``, so
``--iters 15`` then ``--iters 40 --resume`` runs steps 15..39; with the same ``--lr-decay-iters`` it is bit for
bit the uninterrupted ``--iters 40`` run (a resumed run takes its schedule from the options it is given: with
the default ``--lr-decay-iters`` = ``--iters`` the second run decays over 40 steps where the first decayed
over 15).

``minigen sample RUN_DIR [--prompt TEXT] [--temperature T] [--top-k K] [--top-p P] [--no-cache]``: text from
the run's checkpoint and tokenizer, with the KV cache (``--no-cache``: the full forward every step); prints
tokens per second.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field

from . import _common as C

NAME = "gpt"
HELP = "GPT char-LM on tiny-shakespeare (decoder-only Transformer; nanoGPT's baby config by default)"
DATA_PARALLEL = ("every rank draws the same N x --batch-size random windows per step (the run's seeded "
                 "generator) and trains on its own rows of them; rank 0 estimates the losses and writes")

BABY_CONFIG = dict(block_size=64, batch_size=12, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False,
                   max_iters=2000, lr=1e-3, min_lr=1e-4, warmup_iters=100, lr_decay_iters=2000,
                   beta1=0.9, beta2=0.99, weight_decay=0.1, grad_clip=1.0, eval_interval=250, eval_iters=200)

__all__ = ["NAME", "HELP", "BABY_CONFIG", "TrainConfig", "RandomBatches", "estimate_loss", "train_gpt",
           "add_arguments", "run", "add_sample_arguments", "sample"]


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

    def model_config(self, vocab_size):
        from ..models.gpt import GPTConfig

        return GPTConfig(vocab_size=int(vocab_size), block_size=self.block_size, n_layer=self.n_layer,
                         n_head=self.n_head, n_embd=self.n_embd, dropout=self.dropout, bias=self.bias,
                         tie_weights=self.tie_weights)


class RandomBatches:
    """nanoGPT's sampler as an endless resumable loader: random (x, y) windows of ``data``.

    ``generator`` draws the window offsets (the Trainer saves its state, so a resumed run draws the same
    batches); ``state_dict()`` records how many batches were handed out. It has no length: the run's
    ``max_steps`` ends it, so stopping early never marks an "epoch" done.
    """

    def __init__(self, data, block_size, batch_size, generator):
        self.tokens, self.block_size, self.batch_size = data, int(block_size), int(batch_size)
        self.generator = generator
        self.batches_done = 0

    def __iter__(self):
        from ..data import get_batch

        while True:
            self.batches_done += 1
            yield get_batch(self.tokens, self.block_size, self.batch_size, generator=self.generator)

    def state_dict(self):
        return {"batches_done": self.batches_done}

    def load_state_dict(self, st):
        self.batches_done = int(st["batches_done"])


def estimate_loss(model, splits: dict, block_size: int, batch_size: int, eval_iters: int, generator=None) -> dict:
    """nanoGPT's estimate: the mean loss over ``eval_iters`` random batches of each split, in eval mode."""
    import numpy as np

    from ..autograd.grad_mode import no_grad
    from ..data import get_batch
    from ..random import _gen

    g = _gen(generator)
    out = {}
    was = model.training
    model.eval()
    try:
        with no_grad():
            for name, data in splits.items():
                out[name] = float(np.mean([model(*get_batch(data, block_size, batch_size, generator=g))[1].item()
                                           for _ in range(eval_iters)]))
    finally:
        model.train(was)
    return out


def _schedule(opt, cfg):
    """WarmupCosineLR whose saved state is only the step: the horizon comes from the options of each run."""
    from ..optim.lr_scheduler import WarmupCosineLR

    class Schedule(WarmupCosineLR):
        def state_dict(self):
            return {"last_epoch": self.last_epoch, "_step_count": self._step_count}

        def load_state_dict(self, st):
            self.last_epoch, self._step_count = int(st["last_epoch"]), int(st["_step_count"])
            for g, lr in zip(self.optimizer.param_groups, self.get_lr()):
                g["lr"] = lr
            self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    return Schedule(opt, min(cfg.warmup_iters, cfg.lr_decay_iters), cfg.lr_decay_iters, min_lr=cfg.min_lr)


def train_gpt(cfg: TrainConfig, train_ids, val_ids, vocab_size: int, out_dir: str, resume: bool = False,
              progress=None, decode=None, sample_tokens: int = 500, checkpoint_every: int = None,
              temperature: float = 0.8, top_k=None, top_p=None, args=None, name=NAME, dp=None):
    """Train a GPT with nanoGPT's recipe up to step ``cfg.max_iters``; writes metrics.jsonl/csv, checkpoint,
    loss curve, samples, ``config.json`` (``args``: the CLI options; else the config) and ``summary.json``.
    ``dp``: a :class:`minigen.train.DataParallel` (``cfg.batch_size`` windows per process and step).

    Returns (model, summary dict (final train/val loss estimates, seconds per iteration, paths), sample text).
    """
    import numpy as np

    import minigen as mg
    from .. import optim
    from ..data import plot_curves
    from ..models.gpt import GPT
    from ..train import Trainer

    os.makedirs(out_dir, exist_ok=True)
    mg.manual_seed(cfg.seed)
    mcfg = cfg.model_config(vocab_size)
    model = GPT(mcfg, generator=mg.Generator().manual_seed(cfg.seed))
    opt = optim.AdamW(model.param_groups(cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    sched = _schedule(opt, cfg)
    loader = C.train_loader(RandomBatches(train_ids, cfg.block_size, C.global_batch(cfg.batch_size, dp),
                                          mg.Generator().manual_seed(cfg.seed + 1)), dp)
    net = model if dp is None else dp.wrap(model)

    def loss_fn(batch):
        return net(*batch)[1]

    def eval_fn():
        g = mg.Generator().manual_seed(cfg.seed + 2 + 7919 * trainer.step)
        est = estimate_loss(model, {"train": train_ids, "val": val_ids}, cfg.block_size,
                            C.global_batch(cfg.batch_size, dp), cfg.eval_iters, g)  # (rank 0: the global batch)
        return {"train_loss_est": est["train"], "val_loss": est["val"]}

    config = {"model": asdict(mcfg), "train": asdict(cfg)}
    if args is not None:
        C.write_config(out_dir, name, args, **config)
    else:
        C.write_json({"recipe": name, "args": {}, **config}, os.path.join(out_dir, C.CONFIG))
    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out_dir, scheduler=sched, eval_fn=C.rng_isolated(eval_fn),
                      epochs=None, max_steps=cfg.max_iters, log_every=cfg.log_interval,
                      eval_every=cfg.eval_interval, checkpoint_every=checkpoint_every or cfg.eval_interval,
                      grad_clip=cfg.grad_clip, progress=progress, data_parallel=dp)
    if not resume:
        C.fresh_log(trainer)
    t0 = time.perf_counter()
    res = trainer.fit(resume=resume)
    elapsed = time.perf_counter() - t0
    if not C.dp_main(dp):  # the other ranks of a data-parallel run write nothing
        return model, {"step": res["step"], "interrupted": res["interrupted"]}, None
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
    s_iter = C.median_step_time(trainer.logger, C.global_batch(cfg.batch_size, dp)) or elapsed / max(res["step"], 1)
    summary = {"step": res["step"], "val_loss": res.get("val_loss"), "train_loss_est": res.get("train_loss_est"),
               "elapsed_s": elapsed, "s_per_iter": s_iter, "interrupted": res["interrupted"],
               "resumed": res.get("resumed", False), "params": model.num_parameters(), "loss_curve": curve_path,
               "checkpoint": res["checkpoint"]}
    C.write_json(summary, os.path.join(out_dir, "summary.json"))
    return model, summary, sample_text


# ----------------------------------------------------------------------------- data
def text_data(tokenizer, bpe_vocab, out, write=True):
    """(train_ids, val_ids, vocab_size, encode, decode, chars_per_val_token) for the chosen tokenizer; the
    tokenizer is saved in ``out`` (``tokenizer.json`` or ``bpe.json``) unless ``write`` is False."""
    import numpy as np

    from ..data import CharTokenizer, load_shakespeare
    from ..models.bpe import BPETokenizer

    text = load_shakespeare()
    n = int(len(text) * 0.9)
    if tokenizer == "char":
        tok = CharTokenizer.fit(text)
        ids = tok.encode_array(text)
        if write:
            tok.save(os.path.join(out, "tokenizer.json"))
        return ids[:n], ids[n:], tok.vocab_size, tok.encode, tok.decode, 1.0
    path = os.path.join(out, "bpe.json")
    if os.path.exists(path):
        tok = BPETokenizer.load(path)
    else:
        tok = BPETokenizer.train(text[:n], bpe_vocab)  # merges learnt on the training split only
        if write:
            tok.save(path)
    tr = np.array(tok.encode(text[:n]), dtype=np.int64)
    va = np.array(tok.encode(text[n:]), dtype=np.int64)
    return tr, va, tok.vocab_size, tok.encode, tok.decode, (len(text) - n) / len(va)


def load_tokenizer(run_dir, tokenizer):
    """(vocab_size, encode, decode) of the tokenizer a text run saved."""
    from ..data import CharTokenizer
    from ..errors import CheckpointError
    from ..models.bpe import BPETokenizer

    path = os.path.join(run_dir, "tokenizer.json" if tokenizer == "char" else "bpe.json")
    if not os.path.exists(path):
        raise CheckpointError(f"{run_dir}: no {os.path.basename(path)} (the tokenizer of this run)")
    tok = CharTokenizer.load(path) if tokenizer == "char" else BPETokenizer.load(path)
    return tok.vocab_size, tok.encode, tok.decode


# ----------------------------------------------------------------------------- CLI
def add_arguments(p):
    B = BABY_CONFIG
    C.add_run_arguments(p, "out/gpt", seed=1337, device=False)
    p.add_argument("--iters", type=int, default=B["max_iters"],
                   help=f"train up to this iteration (default {B['max_iters']}; --resume continues to it)")
    p.add_argument("--eval-interval", type=int, default=B["eval_interval"],
                   help=f"evaluate and save a checkpoint every N iterations (default {B['eval_interval']})")
    p.add_argument("--batch-size", type=int, default=B["batch_size"], help=f"default {B['batch_size']}")
    p.add_argument("--block-size", type=int, default=B["block_size"],
                   help=f"context length (default {B['block_size']})")
    p.add_argument("--n-layer", type=int, default=B["n_layer"], help=f"default {B['n_layer']}")
    p.add_argument("--n-head", type=int, default=B["n_head"], help=f"default {B['n_head']}")
    p.add_argument("--n-embd", type=int, default=B["n_embd"], help=f"default {B['n_embd']}")
    p.add_argument("--dropout", type=float, default=B["dropout"], help=f"default {B['dropout']}")
    p.add_argument("--bias", action="store_true", help="biases in Linear and LayerNorm (default: none, as nanoGPT)")
    p.add_argument("--no-tie", action="store_true", help="do not tie the output head to the token embedding")
    p.add_argument("--lr", type=float, default=B["lr"], help=f"peak AdamW learning rate (default {B['lr']})")
    p.add_argument("--min-lr", type=float, default=B["min_lr"], help=f"default {B['min_lr']}")
    p.add_argument("--warmup", type=int, default=B["warmup_iters"],
                   help=f"warmup iterations (default {B['warmup_iters']})")
    p.add_argument("--lr-decay-iters", type=int, default=None, help="end of the cosine decay (default: --iters)")
    p.add_argument("--weight-decay", type=float, default=B["weight_decay"],
                   help=f"on 2-d weights (default {B['weight_decay']})")
    p.add_argument("--grad-clip", type=float, default=B["grad_clip"],
                   help=f"max gradient norm (default {B['grad_clip']})")
    p.add_argument("--eval-iters", type=int, default=B["eval_iters"],
                   help=f"batches per loss estimate (default {B['eval_iters']})")
    p.add_argument("--tokenizer", choices=["char", "bpe"], default="char",
                   help="characters (default) or byte-level BPE")
    p.add_argument("--bpe-vocab", type=int, default=512, help="BPE vocabulary size with --tokenizer bpe (default 512)")
    p.add_argument("--prompt", default="\n", help="text the samples start from (default a newline)")
    p.add_argument("--torch-compare", action="store_true",
                   help="also train the PyTorch twin (benchmarks/gpt_torch.py; needs torch and a source checkout)")
    C.add_text_sampling_arguments(p, samples=500)


def _config(a):
    return TrainConfig(block_size=a.block_size, batch_size=a.batch_size, n_layer=a.n_layer, n_head=a.n_head,
                       n_embd=a.n_embd, dropout=a.dropout, bias=a.bias, tie_weights=not a.no_tie, max_iters=a.iters,
                       lr=a.lr, min_lr=a.min_lr, warmup_iters=a.warmup, lr_decay_iters=a.lr_decay_iters or a.iters,
                       weight_decay=a.weight_decay, grad_clip=a.grad_clip, eval_interval=a.eval_interval,
                       eval_iters=a.eval_iters, seed=a.seed)


def run(args):
    import numpy as np

    import minigen as mg

    os.makedirs(args.out, exist_ok=True)
    dp = C.data_parallel(args)
    with dp.main_first():  # rank 0 writes the tokenizer (a BPE's merges) before the others read it
        tr, va, V, encode, decode, cpt = text_data(args.tokenizer, args.bpe_vocab, args.out, write=dp.is_main)
    cfg = _config(args)
    if dp.is_main:
        print(f"gpt: {args.tokenizer} tokens, vocab {V}, train {len(tr):,} / val {len(va):,} tokens"
              + (f"; {dp.world} processes x batch {cfg.batch_size}" if dp.active else ""), file=sys.stderr)
    prompt = encode(args.prompt) if args.prompt else [0]
    model, summary, _ = train_gpt(cfg, tr, va, V, args.out, resume=args.resume, progress=C.progress_flag(args),
                                  decode=decode, sample_tokens=0, args=args, dp=dp)
    if not dp.is_main:
        return 130 if summary["interrupted"] else 0
    if args.samples:
        out = model.generate(np.array([prompt], dtype=np.int64), args.samples, args.temperature, args.top_k,
                             args.top_p, generator=mg.Generator().manual_seed(cfg.seed + 3))
        text = decode(out.numpy()[0].tolist())
        with open(os.path.join(args.out, "samples.txt"), "w", encoding="utf-8") as f:
            f.write(text)
        print("---- sample ----\n" + text + "\n----------------")
    summary["tokenizer"] = args.tokenizer
    if args.tokenizer == "bpe" and summary.get("val_loss") is not None:
        # per-character loss, comparable to the char models: nats/token * tokens/char
        summary["val_loss_per_char"] = summary["val_loss"] / cpt
    if args.torch_compare:
        summary["torch"] = C.benchmarks_module("gpt_torch").train_gpt_torch(cfg, tr, va, V)
    C.write_json(summary, os.path.join(args.out, "summary.json"))
    C.print_summary("gpt", summary, args.out)
    if "torch" in summary:
        print("torch: " + json.dumps(summary["torch"], indent=1))
    return C.exit_code(summary)


def add_sample_arguments(p):
    p.add_argument("--prompt", default="\n", help="text the sample starts from (default a newline)")
    C.add_text_sampling_arguments(p)
    p.add_argument("--no-cache", action="store_true", help="no KV cache: the full forward at every step")


def load_model(run_dir, device=None):
    """(model, tokenizer name) of a GPT run: its config.json + the checkpoint's weights."""
    from ..models.gpt import GPT, GPTConfig

    cfg = C.read_config(run_dir)
    model = C.load_checkpoint_model(run_dir, GPT(GPTConfig(**cfg["model"])))
    if device:
        model.to(device)
    return model, cfg["args"].get("tokenizer", "char")


def sample(args):
    import numpy as np

    import minigen as mg

    model, tokenizer = load_model(args.run_dir, args.device)
    _, encode, decode = load_tokenizer(args.run_dir, tokenizer)
    n = args.n or 500
    prompt = encode(args.prompt) if args.prompt else [0]
    model.generate(np.array([prompt], dtype=np.int64), 2, use_cache=not args.no_cache)  # warm-up (kernel compiles)
    t0 = time.perf_counter()
    out = model.generate(np.array([prompt], dtype=np.int64), n, args.temperature, args.top_k, args.top_p,
                         generator=mg.Generator().manual_seed(args.seed), use_cache=not args.no_cache)
    dt = time.perf_counter() - t0
    text = decode(out.numpy()[0].tolist())
    path = C.sample_path(args, "sample.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    print(f"---- {n} tokens in {dt:.2f} s ({n / dt:.0f} tokens/s, KV cache {'off' if args.no_cache else 'on'}); "
          f"written to {path}", file=sys.stderr)
    return 0
