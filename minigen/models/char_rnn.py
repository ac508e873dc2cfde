"""Character-level recurrent language models: vanilla RNN, LSTM, GRU (Karpathy's char-rnn recipe).

The model reads one character at a time and predicts the next,
P(X) = prod_t P(x_{t+1} | x_<=t) = prod_t softmax(W_hy h_t + b_y)[x_{t+1}], with the hidden state
h_t computed by a stack of ``num_layers`` recurrent layers (x_t = one-hot character for layer 1,
the hidden state of the layer below for the others):

    RNN:   h_t = tanh(W_h [h_{t-1}, x_t] + b_h)          (W_h [h, x] = W_hh h + W_ih x; b_h = b_ih + b_hh)
    LSTM:  i_t = sigma(W_i [h_{t-1}, x_t] + b_i)          input gate
           f_t = sigma(W_f [h_{t-1}, x_t] + b_f)          forget gate
           g_t = tanh (W_g [h_{t-1}, x_t] + b_g)          candidate
           o_t = sigma(W_o [h_{t-1}, x_t] + b_o)          output gate
           c_t = f_t * c_{t-1} + i_t * g_t,   h_t = o_t * tanh(c_t)
    GRU:   r_t = sigma(W_r [h_{t-1}, x_t] + b_r),  z_t = sigma(W_z [h_{t-1}, x_t] + b_z)
           n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn)),  h_t = (1 - z_t) * n_t + z_t * h_{t-1}

The recurrences are ``minigen.nn.RNN / LSTM / GRU`` (PyTorch's weight layout, gates i,f,g,o and r,z,n).

Training is truncated back-propagation through time (char-rnn's defaults): the training stream
is cut into ``batch_size`` parallel rows, each step takes the next ``seq_len`` characters of every
row, the hidden state is carried over from the previous chunk but *detached* (gradients stop at the
chunk boundary), loss = mean cross-entropy per character, RMSprop(lr 2e-3, alpha 0.95), every gradient
element clipped to [-5, 5] (char-rnn clamps values, not the norm), parameters initialised
U(-0.08, 0.08) and the LSTM forget-gate biases set to 1 (as char-rnn does to help remembering early on).
Validation loss is measured on the whole held-out split, carrying the state through it.
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
from .sampling import sample_logits

__all__ = ["CharRNN", "CharRNNConfig", "train_char_rnn", "evaluate_stream"]

_CELLS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


class CharRNN(nn.Module):
    """Embedding (one-hot by default) -> ``num_layers`` RNN/LSTM/GRU layers -> Linear(hidden, vocab).

    ``forward(x (B, T) ids, state=None) -> (logits (B, T, V), state)``; ``state`` is h (layers, B, H),
    or (h, c) for the LSTM.
    """

    def __init__(self, vocab_size: int, hidden_size: int = 128, num_layers: int = 2, cell: str = "lstm",
                 dropout: float = 0.0, embed_dim=None, init_range: float = 0.08, generator=None):
        super().__init__()
        cell = cell.lower()
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
        self.vocab_size, self.hidden_size, self.num_layers, self.cell = int(vocab_size), hidden_size, num_layers, cell
        self.embed_dim = embed_dim
        in_size = vocab_size if embed_dim is None else embed_dim
        if embed_dim is not None:
            self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = getattr(nn, _CELLS[cell])(in_size, hidden_size, num_layers=num_layers, batch_first=True,
                                             dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        g = _gen(generator)
        with no_grad():
            for _, p in self.named_parameters():
                nn.init.uniform_(p, -init_range, init_range, generator=g)
            if cell == "lstm":
                H = hidden_size
                for k in range(num_layers):
                    for b in ("bias_ih", "bias_hh"):
                        p = getattr(self.rnn, f"{b}_l{k}")
                        p.array[H:2 * H] = 0.5  # b_ih + b_hh = 1 on the forget gate
        self._eye = None

    def _inputs(self, x):
        if self.embed_dim is not None:
            return self.embed(x)
        # one-hot rows: x_t = e_{char}; W_ih x_t picks a column, as an embedding would
        xp = x.xp
        if self._eye is None or type(self._eye) is not type(x.array):
            self._eye = xp.eye(self.vocab_size, dtype=self.decoder.weight.dtype)
        return Tensor._make(self._eye[x.array])

    def forward(self, x, state=None):
        x = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.int64))
        out, state = self.rnn(self._inputs(x), state)
        return self.decoder(self.drop(out)), state

    def init_state(self, batch_size: int):
        from ..tensor import zeros

        h = zeros(self.num_layers, batch_size, self.hidden_size, dtype=self.decoder.weight.dtype)
        return (h, zeros(*h.shape, dtype=h.dtype)) if self.cell == "lstm" else h

    @staticmethod
    def detach_state(state):
        if state is None:
            return None
        if isinstance(state, tuple):
            return tuple(s.detach() for s in state)
        return state.detach()

    def generate(self, prime, max_new_tokens: int, temperature: float = 1.0, top_k=None, top_p=None,
                 generator=None):
        """Feed ``prime`` (a 1-d list of ids, at least one), then sample ``max_new_tokens`` ids one at a time."""
        prime = [int(i) for i in np.asarray(prime).reshape(-1)]
        if not prime:
            raise ValueError("generate needs at least one priming token")
        was = self.training
        self.eval()
        out = list(prime)
        try:
            with no_grad():
                logits, state = self(Tensor._make(np.array([prime], dtype=np.int64)))
                for _ in range(int(max_new_tokens)):
                    nxt = int(np.asarray(sample_logits(logits.array[:, -1, :], temperature, top_k, top_p,
                                                       generator))[0])
                    out.append(nxt)
                    logits, state = self(Tensor._make(np.array([[nxt]], dtype=np.int64)), state)
        finally:
            self.train(was)
        return out


def evaluate_stream(model, ids, batch_size: int = 50, seq_len: int = 50) -> float:
    """Mean cross-entropy per character (nats) over the whole stream, carrying the state (BPTT order)."""
    from ..data import BPTTIterator

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


class _Stream:
    """The BPTT chunks of the training stream as a resumable loader (epochs repeat the stream)."""

    def __init__(self, ids, batch_size, seq_len):
        from ..data import BPTTIterator

        self.it = BPTTIterator(ids, batch_size, seq_len, drop_last=True)
        self.batches_done = 0

    def __len__(self):
        return len(self.it)

    def __iter__(self):
        skip = self.batches_done
        for k, b in enumerate(self.it):
            if k < skip:
                continue
            self.batches_done = k + 1
            yield b
        self.batches_done = 0

    def state_dict(self):
        return {"batches_done": self.batches_done}

    def load_state_dict(self, st):
        self.batches_done = int(st["batches_done"])


class _Carry:
    """The hidden state carried between chunks; saved in checkpoints so a resumed run is exact."""

    def __init__(self):
        self.state = None

    def state_dict(self):
        if self.state is None:
            return {"kind": "none"}
        if isinstance(self.state, tuple):
            return {"kind": "pair", "h": self.state[0], "c": self.state[1]}
        return {"kind": "single", "h": self.state}

    def load_state_dict(self, st):
        k = st.get("kind")
        self.state = None if k == "none" else ((st["h"], st["c"]) if k == "pair" else st["h"])


def train_char_rnn(cfg: CharRNNConfig, train_ids, val_ids, vocab_size: int, out_dir: str, resume: bool = False,
                   progress=None, decode=None, prime=None, sample_tokens: int = 500, temperature: float = 0.8,
                   top_k=None, top_p=None):
    """Truncated-BPTT training; writes metrics, checkpoint, loss curve, samples and a summary.

    Returns (model, summary, sample text).
    """
    import minigen as mg
    from .. import optim
    from ..data import plot_curves
    from ..train import Trainer

    os.makedirs(out_dir, exist_ok=True)
    mg.manual_seed(cfg.seed)
    model = CharRNN(vocab_size, cfg.hidden_size, cfg.num_layers, cfg.cell, cfg.dropout,
                    generator=mg.Generator().manual_seed(cfg.seed))
    opt = optim.RMSprop(model.parameters(), lr=cfg.lr, alpha=cfg.alpha, eps=1e-8)
    if cfg.clip_mode == "value" and cfg.grad_clip:
        c = float(cfg.grad_clip)
        for p in model.parameters():  # clamp each parameter's (summed) gradient of the step
            p.register_hook(lambda g, c=c: g.clamp(-c, c))
    elif cfg.clip_mode not in ("value", "norm"):
        raise ValueError(f"clip_mode must be 'value' or 'norm', got {cfg.clip_mode!r}")
    loader = _Stream(train_ids, cfg.batch_size, cfg.seq_len)
    carry = _Carry()

    def loss_fn(batch):
        x, y = batch
        if loader.batches_done == 1:  # a new pass over the stream starts from a zero state
            carry.state = None
        logits, state = model(x, carry.state)
        carry.state = model.detach_state(state)
        k = y.numel()
        return F.cross_entropy(logits.reshape(k, -1), y.reshape(k))

    def eval_fn():
        return {"val_loss": evaluate_stream(model, val_ids, cfg.eval_batch_size, cfg.seq_len)}

    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(asdict(cfg), f, indent=1)
    epochs = math.ceil(cfg.max_iters / len(loader))
    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out_dir, eval_fn=eval_fn, epochs=epochs,
                      max_steps=cfg.max_iters, log_every=cfg.log_interval, eval_every=cfg.eval_interval,
                      checkpoint_every=cfg.eval_interval,
                      grad_clip=cfg.grad_clip if cfg.clip_mode == "norm" else None, progress=progress,
                      extra_state=carry)
    t0 = time.perf_counter()
    res = trainer.fit(resume=resume)
    elapsed = time.perf_counter() - t0
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
    rates = [r["samples_per_s"] for r in rows if r.get("split") == "train" and r.get("samples_per_s")]
    s_iter = float(np.median([cfg.batch_size / x for x in rates])) if rates else elapsed / max(res["step"], 1)
    summary = {"cell": cfg.cell, "step": res["step"], "val_loss": res.get("val_loss"),
               "val_bits_per_char": (res["val_loss"] / math.log(2)) if res.get("val_loss") is not None else None,
               "elapsed_s": elapsed, "s_per_iter": s_iter, "interrupted": res["interrupted"],
               "params": sum(p.numel() for p in model.parameters()), "loss_curve": curve,
               "checkpoint": res["checkpoint"]}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return model, summary, text
