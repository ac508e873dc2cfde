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

The LSTM is the standard one written above (Hochreiter & Schmidhuber 1997 with the forget gate of Gers et al.
2000, no peepholes: the cell ``torch.nn.LSTM`` and Karpathy's char-rnn use). The source article prints an
unusual variant of the LSTM equations; minigen keeps the standard LSTM, so its weights, numbers and
checkpoints correspond one to one to PyTorch's ``nn.LSTM`` and to the char-rnn results it is compared with.

Parameters are initialised U(-0.08, 0.08) and the LSTM forget-gate biases set to 1 (b_ih + b_hh on the
f rows; as char-rnn does to help remembering early on). Training (truncated back-propagation through time
with char-rnn's defaults) is :mod:`minigen.recipes.char_rnn`.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..errors import InvalidArgumentError
from ..random import _gen
from ..tensor import Tensor
from .sampling import sample_logits

__all__ = ["CharRNN"]

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
            raise InvalidArgumentError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
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
            raise InvalidArgumentError("CharRNN.generate needs at least one priming token")
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
