"""Recurrent layers written from their gate equations: RNN, LSTM, GRU and their cells.

Notation: x_t input at step t, h_{t-1} previous hidden state, sigma the logistic
sigmoid, * elementwise product, W x = x @ W^T (PyTorch's weight layout).

Elman RNN (``nonlinearity`` tanh or relu)::

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

LSTM (Hochreiter & Schmidhuber, 1997; forget gate of Gers et al., 2000). The
weights stack the four gates in the order i, f, g, o (PyTorch's)::

    i_t = sigma(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate
    f_t = sigma(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate
    g_t = tanh (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)      candidate cell
    o_t = sigma(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

GRU (Cho et al., 2014), gates in the order r, z, n (PyTorch's; note b_hn sits
inside the reset product)::

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)      reset gate
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)      update gate
    n_t = tanh (W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Every gradient comes from autograd through these equations (backpropagation
through time). The cell math is one small function per cell (``rnn_tanh_cell``,
``lstm_cell``, ``gru_cell``) and the time loop one function per layer
(``rnn_layer``): a fused kernel can replace either. The layer computes the
input projection W_ih x + b_ih for all steps in one matrix product, then runs
the recurrence.

Parameters (PyTorch's names, so state dicts interchange): for layer k and
direction suffix s ('' or '_reverse'): ``weight_ih_l{k}{s}`` (G*H, input), ``weight_hh_l{k}{s}``
(G*H, H), ``bias_ih_l{k}{s}``, ``bias_hh_l{k}{s}`` (G*H,), G = 1 (RNN), 4 (LSTM), 3 (GRU).
All initialised U(-1/sqrt(H), 1/sqrt(H)).
"""
from __future__ import annotations

import math

from .. import functional as F
from .. import init
from ...autograd.engine import grad as _autograd_grad
from ...autograd.function import Function
from ...autograd.grad_mode import STATE, enable_grad
from ...backend import get_array_module
from ...errors import InvalidArgumentError, ShapeError
from ...tensor import Tensor, zeros
from ._common import new_param
from .module import Module

__all__ = ["rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell", "rnn_layer", "rnn_layer_reference",
           "LSTMSequence", "GRUSequence", "RNNCellBase", "RNNCell",
           "LSTMCell", "GRUCell", "RNNBase", "RNN", "LSTM", "GRU"]


# ====================================================================== cell math
def _rnn_step(xw, h, w_hh, b_hh, act):
    """h' = act(xw + W_hh h + b_hh), where xw = W_ih x + b_ih is already computed."""
    return act(xw + F.linear(h, w_hh, b_hh))


def rnn_tanh_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = tanh(W_ih x + b_ih + W_hh h + b_hh)."""
    return _rnn_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh, F.tanh)


def rnn_relu_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = relu(W_ih x + b_ih + W_hh h + b_hh)."""
    return _rnn_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh, F.relu)


def _lstm_step(xw, state, w_hh, b_hh):
    """One LSTM step from the precomputed input projection xw = W_ih x + b_ih (gates i, f, g, o)."""
    h, c = state
    gates = xw + F.linear(h, w_hh, b_hh)
    H = h.shape[-1]
    i = F.sigmoid(gates[..., 0:H])
    f = F.sigmoid(gates[..., H:2 * H])
    g = F.tanh(gates[..., 2 * H:3 * H])
    o = F.sigmoid(gates[..., 3 * H:4 * H])
    c_new = f * c + i * g
    h_new = o * F.tanh(c_new)
    return h_new, c_new


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step: returns (h', c') with
    [i, f, g, o] = W_ih x + b_ih + W_hh h + b_hh;  i, f, o = sigma(.), g = tanh(.);
    c' = f * c + i * g;  h' = o * tanh(c')."""
    return _lstm_step(F.linear(x, w_ih, b_ih), (h, c), w_hh, b_hh)


def _gru_step(xw, h, w_hh, b_hh):
    """One GRU step from the precomputed input projection xw = W_ih x + b_ih (gates r, z, n)."""
    hw = F.linear(h, w_hh, b_hh)
    H = h.shape[-1]
    r = F.sigmoid(xw[..., 0:H] + hw[..., 0:H])
    z = F.sigmoid(xw[..., H:2 * H] + hw[..., H:2 * H])
    n = F.tanh(xw[..., 2 * H:3 * H] + r * hw[..., 2 * H:3 * H])
    return (1 - z) * n + z * h


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step: r = sigma(W_ir x + b_ir + W_hr h + b_hr), z = sigma(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h."""
    return _gru_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh)


_STEPS = {
    "RNN_TANH": lambda xw, s, w, b: _rnn_step(xw, s, w, b, F.tanh),
    "RNN_RELU": lambda xw, s, w, b: _rnn_step(xw, s, w, b, F.relu),
    "LSTM": _lstm_step,
    "GRU": _gru_step,
}
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def rnn_layer(mode, x, state, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False):
    """Run one layer in one direction over a time-major sequence.

    x: (T, B, I); state: h (B, H), or (h, c) for LSTM.
    Returns (outputs, final_state): outputs (T, B, H), the hidden state at every step
    (in input order, also for ``reverse=True``, which walks t = T-1 .. 0).

    An LSTM or GRU layer on NumPy arrays runs the fused whole-sequence kernel when the kernel switch
    allows it (``minigen.kernels.dispatch``; see :class:`LSTMSequence`, :class:`GRUSequence`); otherwise,
    and always as the reference, the Python loop of :func:`rnn_layer_reference`.
    """
    if mode == "GRU" and x.shape[0] > 0:
        kernels = _seq_kernels("gru", x, [state], w_ih, w_hh, b_ih, b_hh)
        if kernels is not None:
            xs = F.flip(x, 0) if reverse else x
            y = GRUSequence.apply(xs, state, w_ih, w_hh, b_ih, b_hh, kernels)
            h_n = y[x.shape[0] - 1]
            return (F.flip(y, 0) if reverse else y), h_n
    if mode == "LSTM" and x.shape[0] > 0:
        kernels = _lstm_seq_kernels(x, state, w_ih, w_hh, b_ih, b_hh)
        if kernels is not None:
            h0, c0 = state
            xs = F.flip(x, 0) if reverse else x
            out = LSTMSequence.apply(xs, h0, c0, w_ih, w_hh, b_ih, b_hh, kernels)
            T = x.shape[0]
            y = out[0:T]
            h_n, c_n = out[T - 1], out[T]
            return (F.flip(y, 0) if reverse else y), (h_n, c_n)
    return rnn_layer_reference(mode, x, state, w_ih, w_hh, b_ih, b_hh, reverse)


def rnn_layer_reference(mode, x, state, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False):
    """The time loop of :func:`rnn_layer` in plain differentiable ops (the reference and the oracle)."""
    step = _STEPS[mode]
    xw = F.linear(x, w_ih, b_ih)          # the input projection of all steps at once: (T, B, G*H)
    T = x.shape[0]
    outs = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        state = step(xw[t], state, w_hh, b_hh)
        outs[t] = state[0] if mode == "LSTM" else state
    return F.stack(outs, 0), state


# ====================================================================== fused LSTM sequence
def _lstm_seq_kernels(x, state, w_ih, w_hh, b_ih, b_hh):
    """(forward, backward) kernels of a whole LSTM layer, or None (reference mode, no Numba, CuPy...)."""
    try:
        from ...kernels import dispatch
    except Exception:
        return None
    h0, c0 = state
    arrays = [x.array, w_ih.array, w_hh.array, h0.array, c0.array] + ([b_ih.array, b_hh.array] if b_ih is not None else [])
    if len({type(a) for a in arrays}) != 1 or len({a.dtype for a in arrays}) != 1:
        return None  # mixed NumPy/CuPy arrays (the op raises the device error) or mixed dtypes
    if (b_ih is None) != (b_hh is None) or x.ndim != 3:
        return None
    try:
        fwd = dispatch.get("lstm_seq_forward", *arrays[:3])
        bwd = dispatch.get("lstm_seq_backward", *arrays[:3]) if fwd is not None else None
    except Exception:
        return None
    return None if fwd is None or bwd is None else (fwd, bwd)


def _seq_kernels(kind, x, states, w_ih, w_hh, b_ih, b_hh):
    """(forward, backward) kernels ``{kind}_seq_forward/backward`` of a whole layer, or None."""
    try:
        from ...kernels import dispatch
    except Exception:
        return None
    arrays = [x.array, w_ih.array, w_hh.array] + [h.array for h in states] + \
        ([b_ih.array, b_hh.array] if b_ih is not None else [])
    if len({type(a) for a in arrays}) != 1 or len({a.dtype for a in arrays}) != 1:
        return None  # mixed NumPy/CuPy arrays (the op raises the device error) or mixed dtypes
    if (b_ih is None) != (b_hh is None) or x.ndim != 3:
        return None
    try:
        fwd = dispatch.get(f"{kind}_seq_forward", *arrays[:3])
        bwd = dispatch.get(f"{kind}_seq_backward", *arrays[:3]) if fwd is not None else None
    except Exception:
        return None
    return None if fwd is None or bwd is None else (fwd, bwd)


class GRUSequence(Function):
    """One GRU layer (one direction) over a whole sequence as a single op, computed by the fused kernel.

    forward: the GRU equations (module docstring) for t = 1..T; the result is (h_1, ..., h_T), (T, B, H).
    backward: backpropagation through time by the fused kernel (dx, dh_0, dW_ih, dW_hh, db_ih, db_hh)
    when no graph of the backward is being recorded; with ``create_graph=True`` the gradients are those
    of :func:`rnn_layer_reference` recomputed from the same inputs (higher-order gradients follow the
    reference equations), as :class:`LSTMSequence`.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, kernels):
        fwd, bwd = kernels
        y, saved = fwd(x, w_ih, w_hh, b_ih, b_hh, h0)
        ctx.saved, ctx.bwd = saved, bwd
        return y

    @staticmethod
    def backward(ctx, g):
        x, h0, w_ih, w_hh, b_ih, b_hh, _ = ctx.args
        need = [ctx.next_nodes[i] is not None for i in range(6)]
        if not STATE.enabled:  # first order: the fused BPTT kernel
            dx, dw_ih, dw_hh, dbi, dbh, dh0 = ctx.bwd(g.array, None, x.array, w_ih.array, w_hh.array, ctx.saved,
                                                      need_bias=b_ih is not None)
            grads = [dx, dh0, dw_ih, dw_hh, dbi, dbh]
            return tuple(Tensor._make(a) if n else None for a, n in zip(grads, need)) + (None,)
        with enable_grad():  # a graph of the backward is wanted: differentiate the reference loop
            y, _ = rnn_layer_reference("GRU", x, h0, w_ih, w_hh, b_ih, b_hh)
        args = [x, h0, w_ih, w_hh, b_ih, b_hh]
        wrt = [a for a, n in zip(args, need) if n]
        gs = list(_autograd_grad([y], wrt, grad_outputs=[g], create_graph=True, allow_unused=True))
        res = []
        for a, n in zip(args, need):
            gi = gs.pop(0) if n else None
            res.append(gi if gi is not None or not n else a * 0)
        return tuple(res) + (None,)


class LSTMSequence(Function):
    """One LSTM layer (one direction) over a whole sequence as a single op, computed by the fused kernel.

    forward: the LSTM equations (module docstring) for t = 1..T; the result packs the hidden states
    and the final cell state into one array, out = [h_1, ..., h_T, c_T]  of shape (T + 1, B, H).
    backward: backpropagation through time by the fused kernel (dx, dW_ih, dW_hh, db, dh_0, dc_0)
    when no graph of the backward is being recorded; with ``create_graph=True`` the gradients are
    those of :func:`rnn_layer_reference` recomputed from the same inputs, so higher-order gradients
    follow the reference equations.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, kernels):
        fwd, bwd = kernels
        bias = None if b_ih is None else b_ih + b_hh
        y, _, c_T, saved = fwd(x, w_ih, w_hh, bias, h0, c0)
        T = y.shape[0]
        out = get_array_module(y).empty((T + 1,) + tuple(y.shape[1:]), dtype=y.dtype)
        out[:T] = y
        out[T] = c_T
        ctx.saved, ctx.bwd = saved, bwd
        return out

    @staticmethod
    def backward(ctx, g):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, _ = ctx.args
        need = [ctx.next_nodes[i] is not None for i in range(7)]
        if not STATE.enabled:  # first order: the fused BPTT kernel
            gd = g.array
            T = gd.shape[0] - 1
            dx, dw_ih, dw_hh, db, dh0, dc0 = ctx.bwd(gd[:T], None, gd[T], x.array, w_ih.array, w_hh.array, ctx.saved,
                                                     need_bias=b_ih is not None)
            grads = [dx, dh0, dc0, dw_ih, dw_hh, db, db]
            return tuple(Tensor._make(a) if n else None for a, n in zip(grads, need)) + (None,)
        # a graph of the backward is wanted: differentiate the reference loop from the same inputs
        with enable_grad():
            y, (_, c_T) = rnn_layer_reference("LSTM", x, (h0, c0), w_ih, w_hh, b_ih, b_hh)
            out = F.cat([y, c_T.reshape((1,) + tuple(c_T.shape))], 0)
        args = [x, h0, c0, w_ih, w_hh, b_ih, b_hh]
        wrt = [a for a, n in zip(args, need) if n]
        gs = list(_autograd_grad([out], wrt, grad_outputs=[g], create_graph=True, allow_unused=True))
        res = []
        for a, n in zip(args, need):
            gi = gs.pop(0) if n else None
            res.append(gi if gi is not None or not n else a * 0)
        return tuple(res) + (None,)


# ====================================================================== cells
class RNNCellBase(Module):
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bias
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
        if not 0 <= dropout <= 1:
            raise InvalidArgumentError(f"dropout should be a number in [0, 1], got {dropout}")
        if int(num_layers) < 1 or int(hidden_size) < 1:
            raise InvalidArgumentError(f"num_layers and hidden_size must be positive, got {num_layers}, {hidden_size}")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        D = 2 if bidirectional else 1
        G = _GATES[mode] * self.hidden_size
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
        if tuple(h.shape) != want:
            raise ShapeError(f"{type(self).__name__}: expected {name} of shape {want}, got {tuple(h.shape)}")

    def forward(self, x, hx=None):
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
                raise InvalidArgumentError("LSTM expects the initial state as a pair (h_0, c_0)")
            h0, c0 = hx
            self._check_state(h0, want, "h_0")
            self._check_state(c0, want, "c_0")
            if not batched:
                h0, c0 = h0.reshape(LD, 1, H), c0.reshape(LD, 1, H)
        else:
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
