"""Recurrent cells and whole-sequence recurrent layers, written from their gate equations.

Notation: x_t input at step t, h_{t-1} previous hidden state, sigma the logistic sigmoid,
* elementwise product, W x = x @ W^T (PyTorch's weight layout).

Elman RNN (``tanh`` or ``relu``)::

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

LSTM (Hochreiter & Schmidhuber, 1997; forget gate of Gers et al., 2000), gates stacked i, f, g, o::

    [i, f, g, o]_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh;   i, f, o = sigma(.),  g = tanh(.)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

GRU (Cho et al., 2014), gates stacked r, z, n (PyTorch's; b_hn sits inside the reset product)::

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh (W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

The cells (``rnn_tanh_cell``, ``lstm_cell``, ``gru_cell``) and the time loop
(:func:`rnn_layer_reference`) are compositions of differentiable ops: autograd through them is
backpropagation through time, to any order.

:class:`LSTMSequence` and :class:`GRUSequence` are one layer over the whole sequence as a single op.
Their forward is the ``lstm_seq_forward`` / ``gru_seq_forward`` kernel (``dispatch.get``), else the
array reference of this file (:func:`lstm_seq_forward_ref`, :func:`gru_seq_forward_ref`, the oracles
those kernels must equal); their ``backward`` is backpropagation through time written with Tensor ops
(the gates recomputed from the inputs, so ``create_graph=True`` differentiates it again); their
``fast_backward`` is the same recurrence by the fused kernel (``lstm_seq_backward`` / ``gru_seq_backward``).
:func:`rnn_layer` picks the fused op where its forward kernel applies and the reference loop otherwise.
"""
from __future__ import annotations

from ..autograd.function import Function
from ..backend import get_array_module
from ..kernels import dispatch
from .activation import relu, sigmoid, tanh
from .linalg import linear
from .shape import cat, flip, reshape, stack, transpose

__all__ = []  # used by minigen.nn's RNN modules; PyTorch has no functional names for these


# ====================================================================== cells (differentiable compositions)
def _rnn_step(xw, h, w_hh, b_hh, act):
    """h' = act(xw + W_hh h + b_hh), where xw = W_ih x + b_ih is already computed."""
    return act(xw + linear(h, w_hh, b_hh))


def rnn_tanh_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = tanh(W_ih x + b_ih + W_hh h + b_hh)."""
    return _rnn_step(linear(x, w_ih, b_ih), h, w_hh, b_hh, tanh)


def rnn_relu_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = relu(W_ih x + b_ih + W_hh h + b_hh)."""
    return _rnn_step(linear(x, w_ih, b_ih), h, w_hh, b_hh, relu)


def _lstm_gates(xw, h, w_hh, b_hh):
    """[i, f, g, o] = activations of xw + W_hh h + b_hh (xw = W_ih x + b_ih already computed)."""
    z = xw + linear(h, w_hh, b_hh)
    H = h.shape[-1]
    return sigmoid(z[..., 0:H]), sigmoid(z[..., H:2 * H]), tanh(z[..., 2 * H:3 * H]), sigmoid(z[..., 3 * H:4 * H])


def _lstm_step(xw, state, w_hh, b_hh):
    """One LSTM step from the precomputed input projection xw = W_ih x + b_ih (gates i, f, g, o)."""
    h, c = state
    i, f, g, o = _lstm_gates(xw, h, w_hh, b_hh)
    c_new = f * c + i * g
    h_new = o * tanh(c_new)
    return h_new, c_new


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step: returns (h', c') with
    [i, f, g, o] = W_ih x + b_ih + W_hh h + b_hh;  i, f, o = sigma(.), g = tanh(.);
    c' = f * c + i * g;  h' = o * tanh(c')."""
    return _lstm_step(linear(x, w_ih, b_ih), (h, c), w_hh, b_hh)


def _gru_gates(xw, h, w_hh, b_hh):
    """(r, z, n, W_hn h + b_hn) of a GRU step (xw = W_ih x + b_ih already computed)."""
    hw = linear(h, w_hh, b_hh)
    H = h.shape[-1]
    r = sigmoid(xw[..., 0:H] + hw[..., 0:H])
    z = sigmoid(xw[..., H:2 * H] + hw[..., H:2 * H])
    hn = hw[..., 2 * H:3 * H]
    return r, z, tanh(xw[..., 2 * H:3 * H] + r * hn), hn


def _gru_step(xw, h, w_hh, b_hh):
    """One GRU step from the precomputed input projection xw = W_ih x + b_ih (gates r, z, n)."""
    _, z, n, _ = _gru_gates(xw, h, w_hh, b_hh)
    return (1 - z) * n + z * h


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step: r = sigma(W_ir x + b_ir + W_hr h + b_hr), z = sigma(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h."""
    return _gru_step(linear(x, w_ih, b_ih), h, w_hh, b_hh)


_STEPS = {
    "RNN_TANH": lambda xw, s, w, b: _rnn_step(xw, s, w, b, tanh),
    "RNN_RELU": lambda xw, s, w, b: _rnn_step(xw, s, w, b, relu),
    "LSTM": _lstm_step,
    "GRU": _gru_step,
}
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# ====================================================================== one layer over a sequence
def rnn_layer(mode, x, state, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False):
    """Run one layer in one direction over a time-major sequence.

    x: (T, B, I); state: h (B, H), or (h, c) for LSTM.
    Returns (outputs, final_state): outputs (T, B, H), the hidden state at every step
    (in input order, also for ``reverse=True``, which walks t = T-1 .. 0).

    An LSTM or GRU layer runs as one fused op (:class:`LSTMSequence`, :class:`GRUSequence`) where the
    ``lstm_seq_forward`` / ``gru_seq_forward`` kernel applies; otherwise, and always as the reference,
    the loop of differentiable ops of :func:`rnn_layer_reference`.
    """
    if mode == "GRU" and _fused("gru_seq_forward", x, [state], w_ih, w_hh, b_ih, b_hh):
        xs = flip(x, 0) if reverse else x
        y = GRUSequence.apply(xs, state, w_ih, w_hh, b_ih, b_hh)
        return (flip(y, 0) if reverse else y), y[x.shape[0] - 1]
    if mode == "LSTM" and _fused("lstm_seq_forward", x, list(state), w_ih, w_hh, b_ih, b_hh):
        h0, c0 = state
        xs = flip(x, 0) if reverse else x
        out = LSTMSequence.apply(xs, h0, c0, w_ih, w_hh, b_ih, b_hh)
        T = x.shape[0]
        y = out[0:T]
        return (flip(y, 0) if reverse else y), (out[T - 1], out[T])
    return rnn_layer_reference(mode, x, state, w_ih, w_hh, b_ih, b_hh, reverse)


def _fused(name, x, states, w_ih, w_hh, b_ih, b_hh):
    """Whether the whole-sequence op runs: its forward kernel applies to these arrays (one array type and
    dtype throughout, both biases or none, a non-empty (T, B, I) input)."""
    if x.ndim != 3 or x.shape[0] == 0 or (b_ih is None) != (b_hh is None):
        return False
    arrays = [x.array, w_ih.array, w_hh.array] + [h.array for h in states] + \
        ([b_ih.array, b_hh.array] if b_ih is not None else [])
    if len({type(a) for a in arrays}) != 1 or len({a.dtype for a in arrays}) != 1:
        return False  # mixed NumPy/CuPy arrays (the reference raises the device error) or mixed dtypes
    return dispatch.applies(name, *arrays[:3])


def rnn_layer_reference(mode, x, state, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False):
    """The time loop of :func:`rnn_layer` in plain differentiable ops (the reference and the oracle)."""
    step = _STEPS[mode]
    xw = linear(x, w_ih, b_ih)          # the input projection of all steps at once: (T, B, G*H)
    T = x.shape[0]
    outs = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        state = step(xw[t], state, w_hh, b_hh)
        outs[t] = state[0] if mode == "LSTM" else state
    return stack(outs, 0), state


# ====================================================================== array references of the sequence kernels
def _sigmoid(xp, v):
    """sigma(v) = 1 / (1 + e^-v), written as (1 + tanh(v / 2)) / 2 (no overflow for large |v|)."""
    return 0.5 * (1.0 + xp.tanh(0.5 * v))


def lstm_seq_forward_ref(x, w_ih, w_hh, bias=None, h0=None, c0=None):
    """The reference of the ``lstm_seq_forward`` kernels on arrays (the LSTM equations, a loop over t).

    x (T, B, I), W_ih (4H, I), W_hh (4H, H), bias (4H,) = b_ih + b_hh or None, h0 / c0 (B, H) or None (zeros).
    Returns (y = (h_1..h_T) (T, B, H), h_T, c_T, saved) with saved = (hs (T+1, B, H) incl. h_0,
    cs (T+1, B, H) incl. c_0, acts (T, B, 4H) = [i, f, g, o] after their nonlinearities, tanh(c) (T, B, H)),
    what the ``lstm_seq_backward`` kernel reads.
    """
    xp = get_array_module(x)
    T, B, _ = x.shape
    H = w_hh.shape[1]
    hs = xp.zeros((T + 1, B, H), x.dtype)
    cs = xp.zeros((T + 1, B, H), x.dtype)
    if h0 is not None:
        hs[0] = h0
    if c0 is not None:
        cs[0] = c0
    acts = xp.empty((T, B, 4 * H), x.dtype)
    tcs = xp.empty((T, B, H), x.dtype)
    xw = x @ w_ih.T + (0 if bias is None else bias)
    for t in range(T):
        z = xw[t] + hs[t] @ w_hh.T
        acts[t, :, :2 * H] = _sigmoid(xp, z[:, :2 * H])                 # i, f
        acts[t, :, 2 * H:3 * H] = xp.tanh(z[:, 2 * H:3 * H])            # g
        acts[t, :, 3 * H:] = _sigmoid(xp, z[:, 3 * H:])                 # o
        i, f, g, o = (acts[t, :, k * H:(k + 1) * H] for k in range(4))
        cs[t + 1] = f * cs[t] + i * g
        tcs[t] = xp.tanh(cs[t + 1])
        hs[t + 1] = o * tcs[t]
    return hs[1:], hs[T].copy(), cs[T].copy(), (hs, cs, acts, tcs)


def gru_seq_forward_ref(x, w_ih, w_hh, b_ih=None, b_hh=None, h0=None):
    """The reference of the ``gru_seq_forward`` kernel on arrays (the GRU equations, a loop over t).

    x (T, B, I), W_ih (3H, I), W_hh (3H, H), b_ih / b_hh (3H,) or None, h0 (B, H) or None (zeros).
    Returns (y = (h_1..h_T) (T, B, H), saved) with saved = (hs (T+1, B, H) incl. h_0, acts (T, B, 3H) = [r, z, n],
    ghs (T, B, 3H) = h_{t-1} W_hh^T + b_hh), what the ``gru_seq_backward`` kernel reads.
    """
    xp = get_array_module(x)
    T, B, _ = x.shape
    H = w_hh.shape[1]
    hs = xp.zeros((T + 1, B, H), x.dtype)
    if h0 is not None:
        hs[0] = h0
    acts = xp.empty((T, B, 3 * H), x.dtype)
    ghs = xp.empty((T, B, 3 * H), x.dtype)
    gis = x @ w_ih.T + (0 if b_ih is None else b_ih)
    for t in range(T):
        gi, gh = gis[t], hs[t] @ w_hh.T + (0 if b_hh is None else b_hh)
        ghs[t] = gh
        acts[t, :, :2 * H] = _sigmoid(xp, gi[:, :2 * H] + gh[:, :2 * H])                        # r, z
        acts[t, :, 2 * H:] = xp.tanh(gi[:, 2 * H:] + acts[t, :, :H] * gh[:, 2 * H:])           # n
        z, n = acts[t, :, H:2 * H], acts[t, :, 2 * H:]
        hs[t + 1] = (1 - z) * n + z * hs[t]
    return hs[1:], (hs, acts, ghs)


# ====================================================================== the whole-sequence ops
def _weight_grads(dG, inputs, h_prev, need_w, need_b):
    """dW_ih = dG^T x, dW_hh = dG^T h_{t-1} (summed over t and the batch), db = sum dG, from the gate
    gradients dG (T, B, G*H) and the per-step inputs / previous hidden states."""
    T, B, GH = dG.shape
    dGf = reshape(dG, (T * B, GH))
    dw_ih = transpose(dGf, 0, 1) @ reshape(inputs, (T * B, inputs.shape[-1])) if need_w[0] else None
    dw_hh = transpose(dGf, 0, 1) @ reshape(h_prev, (T * B, h_prev.shape[-1])) if need_w[1] else None
    db = dGf.sum(0) if need_b else None
    return dw_ih, dw_hh, db


class LSTMSequence(Function):
    """One LSTM layer (one direction) over a whole sequence as a single op.

    forward: the LSTM equations (module docstring) for t = 1..T by the ``lstm_seq_forward`` kernel, else
    :func:`lstm_seq_forward_ref`; the result packs the hidden states and the final cell state into one
    array, out = [h_1, ..., h_T, c_T] of shape (T + 1, B, H); the incoming gradient likewise, [gy_1..gy_T, gc].
    backward (backpropagation through time; the gates recomputed from the inputs), for t = T..1 with
    dh = 0 and dc = gc entering step T:

        dh_t += gy_t;   dc_t += dh_t o_t (1 - tanh^2 c_t)
        dz_t = [dc_t g_t i_t (1 - i_t), dc_t c_{t-1} f_t (1 - f_t), dc_t i_t (1 - g_t^2), dh_t tanh(c_t) o_t (1 - o_t)]
        dh_{t-1} = dz_t W_hh,   dc_{t-1} = dc_t f_t
        dx_t = dz_t W_ih,  dW_ih = sum_t dz_t^T x_t,  dW_hh = sum_t dz_t^T h_{t-1},  db_ih = db_hh = sum_t dz_t
    fast_backward: the same recurrence by the ``lstm_seq_backward`` kernel.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        fwd = dispatch.get("lstm_seq_forward", x, w_ih, w_hh) or lstm_seq_forward_ref
        y, _, c_T, ctx.state = fwd(x, w_ih, w_hh, None if b_ih is None else b_ih + b_hh, h0, c0)
        T = y.shape[0]
        out = get_array_module(y).empty((T + 1,) + tuple(y.shape[1:]), dtype=y.dtype)
        out[:T] = y
        out[T] = c_T
        return out

    @staticmethod
    def backward(ctx, g):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = ctx.args
        need = ctx.needs_input_grad
        T = x.shape[0]
        xw = linear(x, w_ih, b_ih)
        h, c, steps = h0, c0, []
        for t in range(T):  # the forward again, as Tensor ops
            i, f, gg, o = _lstm_gates(xw[t], h, w_hh, b_hh)
            c_new = f * c + i * gg
            tc = tanh(c_new)
            steps.append((h, c, i, f, gg, o, tc))
            h, c = o * tc, c_new
        dh, dc, dz = None, g[T], [None] * T
        for t in range(T - 1, -1, -1):
            h_prev, c_prev, i, f, gg, o, tc = steps[t]
            dh = g[t] if dh is None else dh + g[t]
            dc = dc + dh * o * (1 - tc * tc)
            dz[t] = cat([dc * gg * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - gg * gg),
                         dh * tc * o * (1 - o)], -1)
            dh, dc = dz[t] @ w_hh, dc * f
        dG = stack(dz, 0)
        dx = dG @ w_ih if need[0] else None
        dw_ih, dw_hh, db = _weight_grads(dG, x, stack([s[0] for s in steps], 0), need[3:5], need[5] or need[6])
        return dx, dh, dc, dw_ih, dw_hh, db, db

    @staticmethod
    def fast_backward(ctx, g):
        x, _, _, w_ih, w_hh, b_ih, _ = ctx.args
        bwd = dispatch.get("lstm_seq_backward", g, x.array, w_ih.array)
        if bwd is None:
            return NotImplemented
        T = g.shape[0] - 1
        dx, dw_ih, dw_hh, db, dh0, dc0 = bwd(g[:T], None, g[T], x.array, w_ih.array, w_hh.array, ctx.state,
                                             need_bias=b_ih is not None)
        grads = (dx, dh0, dc0, dw_ih, dw_hh, db, db)
        return tuple(a if n else None for a, n in zip(grads, ctx.needs_input_grad))


class GRUSequence(Function):
    """One GRU layer (one direction) over a whole sequence as a single op.

    forward: the GRU equations (module docstring) for t = 1..T by the ``gru_seq_forward`` kernel, else
    :func:`gru_seq_forward_ref`; the result is (h_1, ..., h_T), (T, B, H); the incoming gradient (gy_1..gy_T).
    backward (backpropagation through time; the gates recomputed from the inputs; a = W_ih x_t + b_ih and
    b = W_hh h_{t-1} + b_hh the two projections), for t = T..1 with dh = 0 entering step T:

        dh_t += gy_t;   dn = dh_t (1 - z_t) (1 - n_t^2);   dz = dh_t (h_{t-1} - n_t) z_t (1 - z_t)
        dr = dn b_n r_t (1 - r_t);   da_t = [dr, dz, dn],   db_t = [dr, dz, dn r_t]
        dh_{t-1} = dh_t z_t + db_t W_hh
        dx_t = da_t W_ih,  dW_ih = sum_t da_t^T x_t,  dW_hh = sum_t db_t^T h_{t-1},  db_ih = sum da,  db_hh = sum db
    fast_backward: the same recurrence by the ``gru_seq_backward`` kernel.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):
        fwd = dispatch.get("gru_seq_forward", x, w_ih, w_hh) or gru_seq_forward_ref
        y, ctx.state = fwd(x, w_ih, w_hh, b_ih, b_hh, h0)
        return y

    @staticmethod
    def backward(ctx, g):
        x, h0, w_ih, w_hh, b_ih, b_hh = ctx.args
        need = ctx.needs_input_grad
        T = x.shape[0]
        xw = linear(x, w_ih, b_ih)
        h, steps = h0, []
        for t in range(T):  # the forward again, as Tensor ops
            r, z, n, hn = _gru_gates(xw[t], h, w_hh, b_hh)
            steps.append((h, r, z, n, hn))
            h = (1 - z) * n + z * h
        dh, da, db = None, [None] * T, [None] * T
        for t in range(T - 1, -1, -1):
            h_prev, r, z, n, hn = steps[t]
            dh = g[t] if dh is None else dh + g[t]
            dn = dh * (1 - z) * (1 - n * n)
            dz = dh * (h_prev - n) * z * (1 - z)
            dr = dn * hn * r * (1 - r)
            da[t], db[t] = cat([dr, dz, dn], -1), cat([dr, dz, dn * r], -1)
            dh = dh * z + db[t] @ w_hh
        dA, dB = stack(da, 0), stack(db, 0)
        h_prev = stack([s[0] for s in steps], 0)
        dx = dA @ w_ih if need[0] else None
        dw_ih, _, db_ih = _weight_grads(dA, x, h_prev, (need[2], False), need[4])
        _, dw_hh, db_hh = _weight_grads(dB, x, h_prev, (False, need[3]), need[5])
        return dx, dh, dw_ih, dw_hh, db_ih, db_hh

    @staticmethod
    def fast_backward(ctx, g):
        x, _, w_ih, w_hh, b_ih, _ = ctx.args
        bwd = dispatch.get("gru_seq_backward", g, x.array, w_ih.array)
        if bwd is None:
            return NotImplemented
        dx, dw_ih, dw_hh, dbi, dbh, dh0 = bwd(g, None, x.array, w_ih.array, w_hh.array, ctx.state,
                                              need_bias=b_ih is not None)
        grads = (dx, dh0, dw_ih, dw_hh, dbi, dbh)
        return tuple(a if n else None for a, n in zip(grads, ctx.needs_input_grad))
