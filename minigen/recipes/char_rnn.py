"""``minigen train char-rnn``: Karpathy's char-rnn recipe for :class:`minigen.models.char_rnn.CharRNN`.

Truncated back-propagation through time: the training split of tiny-shakespeare (nanoGPT's 90/10 split) is
cut into ``batch_size`` parallel rows, each step takes the next ``seq_len`` characters of every row, the hidden state is carried over from the previous chunk but *detached* (gradients stop at the
chunk boundary), loss = mean cross-entropy per character, RMSprop(lr 2e-3, alpha 0.95), every gradient
element clipped to [-5, 5] (char-rnn clamps values, not the norm; ``--clip-mode norm`` clips the global norm).
Validation loss is measured on the whole held-out split, carrying the state through it
(:func:`evaluate_stream`). ``--iters N`` is where the run stops; ``--resume`` continues from any stop point
bit for bit (the carried state and the position in the stream are in the checkpoint).

``minigen sample RUN_DIR [--prime TEXT] [--temperature T]``: text from the checkpoint.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass

from . import _common as C

NAME = "char-rnn"
HELP = "RNN/LSTM/GRU char-LM on tiny-shakespeare with truncated BPTT (char-rnn defaults)"
DATA_PARALLEL = ("the stream is cut into N x --batch-size rows and rank r trains on rows [r*B, (r+1)*B), carrying "
                 "their hidden state (the checkpoint holds all rows' state, gathered); --clip-mode value clamps the "
                 "averaged gradient; rank 0 evaluates and writes")

__all__ = ["NAME", "HELP", "CharRNNConfig", "evaluate_stream", "train_char_rnn", "add_arguments", "run",
           "add_sample_arguments", "sample"]


@dataclass
class CharRNNConfig:
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.0
    batch_size: int = 50
    seq_len: int = 50
    lr: float = 2e-3
    alpha: float = 0.95
    grad_clip: float = 5.0
    clip_mode: str = "value"    # 'value' (char-rnn) or 'norm'
    max_iters: int = 1000
    eval_interval: int = 200
    eval_batch_size: int = 50
    log_interval: int = 10
    seed: int = 123


def evaluate_stream(model, ids, batch_size: int = 50, seq_len: int = 50) -> float:
    """Mean cross-entropy per character (nats) over the whole stream, carrying the state (BPTT order)."""
    from ..autograd.grad_mode import no_grad
    from ..data import BPTTIterator
    from ..nn import functional as F

    was = model.training
    model.eval()
    total, n = 0.0, 0
    state = None
    try:
        with no_grad():
            for x, y in BPTTIterator(ids, batch_size, seq_len):
                logits, state = model(x, state)
                k = y.numel()
                total += float(F.cross_entropy(logits.reshape(k, -1), y.reshape(k)).item()) * k
                n += k
    finally:
        model.train(was)
    return total / n


class _Stream:
    """The BPTT chunks of the training stream, repeated without end, as a resumable loader.

    ``state_dict`` = ``{'pass', 'batches_done'}``: which pass over the stream and how far into it."""

    def __init__(self, ids, batch_size, seq_len):
        from ..data import BPTTIterator

        self.it = BPTTIterator(ids, batch_size, seq_len, drop_last=True)
        self.n = len(self.it)
        self.batches_done = 0

    def __iter__(self):
        while True:
            skip = self.batches_done % self.n
            for k, b in enumerate(self.it):
                if k < skip:
                    continue
                self.batches_done += 1
                yield b

    def state_dict(self):
        return {"batches_done": self.batches_done}

    def load_state_dict(self, st):
        self.batches_done = int(st["batches_done"])


class _Carry:
    """The hidden state carried between chunks; saved in checkpoints so a resumed run is exact.

    A step's forward computes the next state as ``pending``; it becomes ``state`` only inside the optimizer's
    step (:meth:`commit`), so a checkpoint written after an interrupt that the Trainer rolls back (one before
    the update) holds the state from before that step, and one after the update holds the new state.
    """

    def __init__(self, dp=None, global_rows=None):
        self.state = None
        self.pending = None
        self.dp = dp if dp is not None and dp.active else None  # data-parallel: this rank holds its rows only
        self.global_rows = global_rows  # (data-parallel) the rows of the whole stream: world x batch

    def commit(self):
        self.state, self.pending = self.pending, None

    def state_dict(self):
        if self.state is None:
            return {"kind": "none"}
        rows = (lambda t: t) if self.dp is None else (lambda t: self.dp.gather_rows(t, dim=1))  # (L, B, H)
        if isinstance(self.state, tuple):
            return {"kind": "pair", "h": rows(self.state[0]), "c": rows(self.state[1])}
        return {"kind": "single", "h": rows(self.state)}

    def load_state_dict(self, st):
        k = st.get("kind")
        self.state = None if k == "none" else ((st["h"], st["c"]) if k == "pair" else st["h"])
        self.pending = None
        if self.dp is not None and self.state is not None:
            import minigen as mg

            h = self.state[0] if isinstance(self.state, tuple) else self.state
            if int(h.shape[1]) != self.global_rows:
                print(f"char-rnn: the checkpoint carries {int(h.shape[1])} rows, this run has {self.global_rows}: "
                      "the rows start again from a zero state", file=sys.stderr)
                self.state = None  # the stream was cut for another global batch
                return
            share = (lambda t: self.dp.rows(t if hasattr(t, "shape") else mg.tensor(t), dim=1))
            self.state = tuple(share(t) for t in self.state) if isinstance(self.state, tuple) else share(self.state)


def build_model(cfg: CharRNNConfig, vocab_size):
    import minigen as mg
    from ..models.char_rnn import CharRNN

    return CharRNN(vocab_size, cfg.hidden_size, cfg.num_layers, cfg.cell, cfg.dropout,
                   generator=mg.Generator().manual_seed(cfg.seed))


def train_char_rnn(cfg: CharRNNConfig, train_ids, val_ids, vocab_size: int, out_dir: str, resume: bool = False,
                   progress=None, decode=None, prime=None, sample_tokens: int = 500, temperature: float = 0.8,
                   top_k=None, top_p=None, args=None, dp=None):
    """Truncated-BPTT training up to step ``cfg.max_iters``; writes metrics, checkpoint, loss curve, samples,
    config and a summary. ``dp``: a :class:`minigen.train.DataParallel` (``cfg.batch_size`` rows per process).
    Returns (model, summary, sample text)."""
    import minigen as mg
    from .. import optim
    from ..data import plot_curves
    from ..errors import InvalidArgumentError
    from ..nn import functional as F
    from ..train import Trainer

    os.makedirs(out_dir, exist_ok=True)
    mg.manual_seed(cfg.seed)
    model = build_model(cfg, vocab_size)
    active = dp is not None and dp.active
    carry = _Carry(dp, C.global_batch(cfg.batch_size, dp))
    # data-parallel + value clipping: clamp the averaged gradient (as one process clamps its whole batch's)
    clamp_after = float(cfg.grad_clip) if active and cfg.clip_mode == "value" and cfg.grad_clip else None

    class RMSprop(optim.RMSprop):
        def step(self, closure=None):  # the carried state advances with the parameters, in the same update
            if clamp_after is not None:
                for p in model.parameters():
                    if p.grad is not None:
                        p.grad.array[...] = p.grad.array.clip(-clamp_after, clamp_after)
            out = super().step(closure)
            carry.commit()
            return out

    opt = RMSprop(model.parameters(), lr=cfg.lr, alpha=cfg.alpha, eps=1e-8)
    if cfg.clip_mode == "value" and cfg.grad_clip and not active:
        c = float(cfg.grad_clip)
        for p in model.parameters():  # clamp each parameter's (summed) gradient of the step
            p.register_hook(lambda g, c=c: g.clamp(-c, c))
    elif cfg.clip_mode not in ("value", "norm"):
        raise InvalidArgumentError(f"clip_mode must be 'value' or 'norm', got {cfg.clip_mode!r}")
    stream = _Stream(train_ids, C.global_batch(cfg.batch_size, dp), cfg.seq_len)
    loader = C.train_loader(stream, dp)
    net = model if dp is None else dp.wrap(model)

    def loss_fn(batch):
        x, y = batch
        start = carry.state
        if stream.batches_done % stream.n == 1 or stream.n == 1:  # a new pass starts from a zero state
            start = None
        logits, state = net(x, start)
        carry.pending = model.detach_state(state)
        k = y.numel()
        return F.cross_entropy(logits.reshape(k, -1), y.reshape(k))

    def eval_fn():
        return {"val_loss": evaluate_stream(model, val_ids, cfg.eval_batch_size, cfg.seq_len)}

    if args is not None:
        C.write_config(out_dir, NAME, args, config=asdict(cfg), vocab_size=int(vocab_size))
    else:
        C.write_json({"recipe": NAME, "args": {}, "config": asdict(cfg), "vocab_size": int(vocab_size)},
                     os.path.join(out_dir, C.CONFIG))
    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out_dir, eval_fn=C.rng_isolated(eval_fn), epochs=None,
                      max_steps=cfg.max_iters, log_every=cfg.log_interval, eval_every=cfg.eval_interval,
                      checkpoint_every=cfg.eval_interval,
                      grad_clip=cfg.grad_clip if cfg.clip_mode == "norm" else None, progress=progress,
                      extra_state=carry, data_parallel=dp)
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
    curves = {"train loss (chunk)": tr}
    if va:
        curves["val loss (full split)"] = va
    curve = plot_curves(curves, os.path.join(out_dir, "loss_curve.png"), title=f"char-{cfg.cell}",
                        ylabel="cross-entropy (nats/char)")
    text = None
    if sample_tokens:
        p = list(prime) if prime is not None else [int(train_ids[0])]
        ids = model.generate(p, sample_tokens, temperature, top_k, top_p, mg.Generator().manual_seed(cfg.seed + 1))
        text = decode(ids) if decode is not None else " ".join(map(str, ids))
        with open(os.path.join(out_dir, "samples.txt"), "w", encoding="utf-8") as f:
            f.write(text)
    s_iter = C.median_step_time(trainer.logger, C.global_batch(cfg.batch_size, dp)) or elapsed / max(res["step"], 1)
    summary = {"cell": cfg.cell, "step": res["step"], "val_loss": res.get("val_loss"),
               "val_bits_per_char": (res["val_loss"] / math.log(2)) if res.get("val_loss") is not None else None,
               "elapsed_s": elapsed, "s_per_iter": s_iter, "interrupted": res["interrupted"],
               "resumed": res.get("resumed", False), "params": sum(p.numel() for p in model.parameters()),
               "loss_curve": curve, "checkpoint": res["checkpoint"]}
    C.write_json(summary, os.path.join(out_dir, "summary.json"))
    return model, summary, text


def add_arguments(p):
    C.add_run_arguments(p, "out/char-rnn", seed=123, device=False)
    p.add_argument("--iters", type=int, default=1000, help="train up to this iteration (default 1000)")
    p.add_argument("--eval-interval", type=int, default=200,
                   help="evaluate and save a checkpoint every N iterations (default 200)")
    p.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="lstm", help="recurrent cell (default lstm)")
    p.add_argument("--hidden", type=int, default=128, help="hidden units per layer (default 128)")
    p.add_argument("--layers", type=int, default=2, help="default 2")
    p.add_argument("--dropout", type=float, default=0.0, help="between layers (default 0)")
    p.add_argument("--batch-size", type=int, default=50, help="parallel streams (default 50)")
    p.add_argument("--seq-len", type=int, default=50, help="BPTT length (default 50)")
    p.add_argument("--lr", type=float, default=2e-3, help="RMSprop learning rate (default 2e-3)")
    p.add_argument("--alpha", type=float, default=0.95, help="RMSprop decay (default 0.95)")
    p.add_argument("--grad-clip", type=float, default=5.0, help="gradient clip (default 5)")
    p.add_argument("--clip-mode", choices=["value", "norm"], default="value",
                   help="clamp each gradient element (char-rnn, default) or the global norm")
    p.add_argument("--eval-batch-size", type=int, default=100,
                   help="parallel streams when scoring the validation split (default 100)")
    p.add_argument("--prime", default="\n", help="text the samples start from")
    C.add_text_sampling_arguments(p, samples=500)


def run(args):
    from ..data import shakespeare_splits

    os.makedirs(args.out, exist_ok=True)
    tr, va, tok = shakespeare_splits()
    dp = C.data_parallel(args)
    if dp.is_main:
        tok.save(os.path.join(args.out, "tokenizer.json"))
    cfg = CharRNNConfig(cell=args.cell, hidden_size=args.hidden, num_layers=args.layers, dropout=args.dropout,
                        batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr, alpha=args.alpha,
                        grad_clip=args.grad_clip, clip_mode=args.clip_mode, max_iters=args.iters,
                        eval_interval=args.eval_interval, eval_batch_size=args.eval_batch_size, seed=args.seed)
    _, summary, text = train_char_rnn(cfg, tr, va, tok.vocab_size, args.out, resume=args.resume,
                                      progress=C.progress_flag(args), decode=tok.decode,
                                      prime=tok.encode(args.prime) if args.prime else None,
                                      sample_tokens=args.samples, temperature=args.temperature, top_k=args.top_k,
                                      top_p=args.top_p, args=args, dp=dp)
    if not dp.is_main:
        return 130 if summary["interrupted"] else 0
    if text:
        print("---- sample ----\n" + text + "\n----------------")
    C.print_summary(f"char-{args.cell}", summary, args.out)
    return C.exit_code(summary)


def add_sample_arguments(p):
    p.add_argument("--prime", default="\n", help="text the sample starts from (default a newline)")
    C.add_text_sampling_arguments(p)


def sample(args):
    import minigen as mg
    from ..data import CharTokenizer
    from ..errors import CheckpointError

    cfg = C.read_config(args.run_dir)
    tok_path = os.path.join(args.run_dir, "tokenizer.json")
    if not os.path.exists(tok_path):
        raise CheckpointError(f"{args.run_dir}: no tokenizer.json (the tokenizer of this run)")
    tok = CharTokenizer.load(tok_path)
    model = C.load_checkpoint_model(args.run_dir, build_model(CharRNNConfig(**cfg["config"]), cfg["vocab_size"]))
    n = args.n or 500
    prime = tok.encode(args.prime) if args.prime else [0]
    ids = model.generate(prime, n, args.temperature, args.top_k, args.top_p, mg.Generator().manual_seed(args.seed))
    text = tok.decode(ids)
    path = C.sample_path(args, "sample.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    print(f"---- written to {path}")
    return 0
