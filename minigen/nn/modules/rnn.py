"""Recurrent layers: RNN, LSTM, GRU and their cells (PyTorch's modules and parameter names).

The equations and the ops they run are in :mod:`minigen.ops.rnn` (the cells ``rnn_tanh_cell``,
``lstm_cell``, ``gru_cell``; one layer over a sequence, :func:`~minigen.ops.rnn.rnn_layer`, which runs
the fused whole-sequence LSTM/GRU op where its kernel applies). In short, with W x = x @ W^T::

    Elman:  h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)          (or relu)
    LSTM:   [i, f, g, o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh;  c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)
    GRU:    r, z = sigma(...);  n = tanh(W_in x_t + b_in + r (W_hn h_{t-1} + b_hn));  h_t = (1 - z) n + z h_{t-1}

Parameters (PyTorch's names, so state dicts interchange): for layer k and
direction suffix s ('' or '_reverse'): ``weight_ih_l{k}{s}`` (G*H, input), ``weight_hh_l{k}{s}``
(G*H, H), ``bias_ih_l{k}{s}``, ``bias_hh_l{k}{s}`` (G*H,), G = 1 (RNN), 4 (LSTM), 3 (GRU).
All initialised U(-1/sqrt(H), 1/sqrt(H)).
"""
from __future__ import annotations

import math

from .. import functional as F
from .. import init
from ...errors import InvalidArgumentError, ShapeError
from ...argcheck import (check_choice, check_device, check_fits_memory, check_flag, check_float_dtype,
                         check_probability, check_size, brief, check_float_tensor)
from ...ops.rnn import GATES, gru_cell, lstm_cell, rnn_layer, rnn_relu_cell, rnn_tanh_cell
from ...tensor import Tensor, zeros
from ._common import new_param
from .module import Module

__all__ = ["RNNCellBase", "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "RNN", "LSTM", "GRU"]


# ====================================================================== cells
class RNNCellBase(Module):
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        op = type(self).__name__
        self.input_size, self.hidden_size = check_size(input_size, op, "input_size"), check_size(hidden_size, op,
                                                                                                  "hidden_size")
        self.bias = check_flag(bias, op, "bias")
        check_float_dtype(dtype, op)
        check_device(device, op)
        G = self._gates * self.hidden_size
        self.weight_ih = new_param(G, input_size, dtype=dtype, device=device)
        self.weight_hh = new_param(G, hidden_size, dtype=dtype, device=device)
        if bias:
            self.bias_ih = new_param(G, dtype=dtype, device=device)
            self.bias_hh = new_param(G, dtype=dtype, device=device)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self, generator=None):
        std = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for p in self.parameters():
            init.uniform_(p, -std, std, generator=generator)

    def _prepare(self, x, hx):
        check_float_tensor(x, type(self).__name__)
        if x.ndim not in (1, 2):
            raise ShapeError(f"{type(self).__name__} expects a 1-d or 2-d input (batch, input_size), "
                             f"got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"{type(self).__name__}: input has {x.shape[-1]} features, expected "
                             f"input_size={self.input_size} (shape {tuple(x.shape)})")
        batched = x.ndim == 2
        if not batched:
            x = x.reshape(1, self.input_size)
        return x, batched

    def _state(self, x, h, batched, name="hx"):
        if h is None:
            return zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        check_float_tensor(h, type(self).__name__, name)
        want = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        if tuple(h.shape) != want:
            raise ShapeError(f"{type(self).__name__}: {name} has shape {tuple(h.shape)}, expected {want}")
        return h if batched else h.reshape(1, self.hidden_size)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    """One Elman step: h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu.
    ``forward(input (B, I) or (I,), hx=None) -> h'``."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise InvalidArgumentError(f"unknown nonlinearity {nonlinearity!r} (expected 'tanh' or 'relu')")
        self.__dict__["nonlinearity"] = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, x, hx=None):
        x, batched = self._prepare(x, hx)
        h = self._state(x, hx, batched)
        cell = rnn_tanh_cell if self.nonlinearity == "tanh" else rnn_relu_cell
        h = cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h if batched else h.reshape(self.hidden_size)


class LSTMCell(RNNCellBase):
    """One LSTM step (see :func:`lstm_cell`). ``forward(input, (h, c)=None) -> (h', c')``."""

    _gates = 4

    def forward(self, x, hx=None):
        x, batched = self._prepare(x, hx)
        if hx is None:
            h = c = self._state(x, None, batched)
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise InvalidArgumentError(f"LSTMCell expects the state as a pair (h, c), got {brief(hx)}")
            h, c = self._state(x, hx[0], batched, "h"), self._state(x, hx[1], batched, "c")
        h, c = lstm_cell(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if not batched:
            h, c = h.reshape(self.hidden_size), c.reshape(self.hidden_size)
        return h, c


class GRUCell(RNNCellBase):
    """One GRU step (see :func:`gru_cell`). ``forward(input, hx=None) -> h'``."""

    _gates = 3

    def forward(self, x, hx=None):
        x, batched = self._prepare(x, hx)
        h = self._state(x, hx, batched)
        h = gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h if batched else h.reshape(self.hidden_size)


# ====================================================================== multi-layer
class RNNBase(Module):
    """Multi-layer (optionally bidirectional) recurrent network over a whole sequence.

    Input (T, B, I) (``batch_first=False``), (B, T, I) (``batch_first=True``) or (T, I) unbatched.
    Initial state h_0 (num_layers * D, B, H) (D = 2 if bidirectional), zeros if not given; LSTM
    takes and returns the pair (h, c). Returns (output, h_n): output holds the last layer's
    hidden state at every step, (T, B, D * H) (directions concatenated), h_n the final state of
    every layer and direction. ``dropout`` is applied to each layer's output except the last's,
    in training mode only.
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__()
        op = type(self).__name__
        check_choice(mode, op, "mode", tuple(GATES))
        dropout = check_probability(dropout, op, "dropout")
        input_size = check_size(input_size, op, "input_size")
        hidden_size = check_size(hidden_size, op, "hidden_size", minimum=1)
        num_layers = check_size(num_layers, op, "num_layers", minimum=1)
        bias, batch_first = check_flag(bias, op, "bias"), check_flag(batch_first, op, "batch_first")
        bidirectional = check_flag(bidirectional, op, "bidirectional")
        check_float_dtype(dtype, op)
        check_device(device, op)
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, bidirectional
        D = 2 if bidirectional else 1
        G = GATES[mode] * self.hidden_size
        check_fits_memory(num_layers * D * G * (max(input_size, hidden_size * D) + hidden_size + 2), 4, op,
                          "the weights")
        self._flat_names = []
        for layer in range(self.num_layers):
            for d in range(D):
                sfx = "_reverse" if d == 1 else ""
                inp = self.input_size if layer == 0 else self.hidden_size * D
                names = [f"weight_ih_l{layer}{sfx}", f"weight_hh_l{layer}{sfx}"]
                setattr(self, names[0], new_param(G, inp, dtype=dtype, device=device))
                setattr(self, names[1], new_param(G, self.hidden_size, dtype=dtype, device=device))
                if bias:
                    names += [f"bias_ih_l{layer}{sfx}", f"bias_hh_l{layer}{sfx}"]
                    setattr(self, names[2], new_param(G, dtype=dtype, device=device))
                    setattr(self, names[3], new_param(G, dtype=dtype, device=device))
                self._flat_names.append(names)
        self.reset_parameters()

    def reset_parameters(self, generator=None):
        std = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -std, std, generator=generator)

    def flatten_parameters(self):
        """No-op (PyTorch compacts cuDNN weights here)."""

    def _weights(self, layer, d):
        names = self._flat_names[layer * (2 if self.bidirectional else 1) + d]
        w = [getattr(self, n) for n in names]
        return w if self.bias else w + [None, None]

    def _check_state(self, h, want, name):
        check_float_tensor(h, type(self).__name__, name)
        if tuple(h.shape) != want:
            raise ShapeError(f"{type(self).__name__}: expected {name} of shape {want}, got {tuple(h.shape)}")

    def forward(self, x, hx=None):
        from ..utils.rnn import PackedSequence, packed_rnn_forward

        if isinstance(x, PackedSequence):  # variable-length batch: each sequence runs for its own length
            return packed_rnn_forward(self, x, hx)
        check_float_tensor(x, type(self).__name__)
        if x.ndim not in (2, 3):
            raise ShapeError(f"{type(self).__name__} expects a 3-d (batched) or 2-d (unbatched) input, "
                             f"got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"{type(self).__name__}: input has {x.shape[-1]} features, expected "
                             f"input_size={self.input_size} (shape {tuple(x.shape)})")
        batched = x.ndim == 3
        if not batched:
            x = x.reshape(x.shape[0], 1, x.shape[1])
        elif self.batch_first:
            x = x.transpose(0, 1)
        T, B = x.shape[0], x.shape[1]
        D = 2 if self.bidirectional else 1
        LD, H = self.num_layers * D, self.hidden_size
        is_lstm = self.mode == "LSTM"
        want = (LD, B, H) if batched else (LD, H)
        if hx is None:
            h0 = zeros(LD, B, H, dtype=x.dtype, device=x.device)
            c0 = h0 if is_lstm else None
        elif is_lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise InvalidArgumentError(f"LSTM expects the initial state as a pair (h_0, c_0), got {brief(hx)}")
            h0, c0 = hx
            self._check_state(h0, want, "h_0")
            self._check_state(c0, want, "c_0")
            if not batched:
                h0, c0 = h0.reshape(LD, 1, H), c0.reshape(LD, 1, H)
        else:
            if not isinstance(hx, Tensor):  # e.g. an LSTM's (h, c) pair given to a GRU
                raise InvalidArgumentError(f"{type(self).__name__} expects the initial state h_0 as one Tensor, "
                                           f"got {brief(hx)}")
            h0, c0 = hx, None
            self._check_state(h0, want, "h_0")
            if not batched:
                h0 = h0.reshape(LD, 1, H)
        h_n, c_n = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                state = (h0[k], c0[k]) if is_lstm else h0[k]
                out, state = rnn_layer(self.mode, layer_in, state, *self._weights(layer, d), reverse=(d == 1))
                outs.append(out)
                if is_lstm:
                    h_n.append(state[0])
                    c_n.append(state[1])
                else:
                    h_n.append(state)
            layer_in = outs[0] if D == 1 else F.cat(outs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, True)
        output = layer_in
        h_n = F.stack(h_n, 0)
        c_n = F.stack(c_n, 0) if is_lstm else None
        if not batched:
            output = output.reshape(T, D * H)
            h_n = h_n.reshape(LD, H)
            c_n = c_n.reshape(LD, H) if is_lstm else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, ((h_n, c_n) if is_lstm else h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN, h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) per layer (``nonlinearity`` 'tanh'
    or 'relu'); see :class:`RNNBase` for shapes."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise InvalidArgumentError(f"unknown nonlinearity {nonlinearity!r} (expected 'tanh' or 'relu')")
        self.__dict__["nonlinearity"] = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, device, dtype)

    def extra_repr(self):
        s = super().extra_repr()
        return s + (f", nonlinearity={self.nonlinearity}" if self.nonlinearity != "tanh" else "")


class LSTM(RNNBase):
    """Multi-layer LSTM (gate equations in the module docstring); ``forward(x, (h_0, c_0)=None)``
    returns ``(output, (h_n, c_n))``. See :class:`RNNBase` for shapes."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        if proj_size:
            raise InvalidArgumentError("LSTM proj_size is not supported by minigen")
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)


class GRU(RNNBase):
    """Multi-layer GRU (gate equations in the module docstring); ``forward(x, h_0=None)`` returns
    ``(output, h_n)``. See :class:`RNNBase` for shapes."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)
