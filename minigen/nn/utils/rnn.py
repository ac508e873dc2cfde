r"""Variable-length sequences for recurrent networks (``torch.nn.utils.rnn``'s names and semantics).

A batch of B sequences of lengths L_0 >= L_1 >= ... (sorted longest first) is *packed*
time step by time step: step t holds the rows of the sequences still running at t,

    batch_sizes[t] = #{b : L_b > t},     data = concat_t  x[t, 0:batch_sizes[t]]

so ``data`` has sum_b L_b rows and no padding. :class:`PackedSequence` also carries
``sorted_indices`` (the order that sorted the batch by decreasing length; None when the
caller's batch was already sorted) and ``unsorted_indices`` (its inverse), so results can
be put back in the caller's order.

- :func:`pad_sequence`: list of (L_i, *) tensors -> (L_max, B, *) (or (B, L_max, *)) padded;
- :func:`pack_padded_sequence` / :func:`pad_packed_sequence`: padded <-> packed;
- :func:`pack_sequence`, :func:`unpad_sequence`, :func:`unpack_sequence`;
- :func:`packed_rnn_forward`: an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` over a packed batch: each
  sequence runs for its own length only, the final state h_n of sequence b is its state after
  step L_b - 1 (for the reverse direction: after step 0, having started at step L_b - 1).

Every function is built from differentiable ops (slicing, ``cat``, ``stack``,
``index_select``), so gradients flow through packing and unpacking.
"""
from __future__ import annotations

import collections.abc
import numbers

import numpy as np

from .. import functional as F
from ...errors import InvalidArgumentError, ShapeError
from ...tensor import Tensor, full, tensor as _tensor

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "unpad_sequence", "pack_sequence", "unpack_sequence", "packed_rnn_forward"]


def _as_index_tensor(idx):
    if idx is None:
        return None
    if isinstance(idx, Tensor):
        return idx
    return _tensor(np.asarray(idx, dtype=np.int64))


class PackedSequence(collections.namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices",
                                                               "unsorted_indices"])):
    """A packed batch of variable-length sequences (see the module docstring).

    ``data``: (sum of lengths, *) Tensor; ``batch_sizes``: int64 Tensor (T,) on the CPU;
    ``sorted_indices`` / ``unsorted_indices``: int64 Tensors (B,) or None.
    Build it with :func:`pack_padded_sequence` or :func:`pack_sequence`, not by hand.
    """

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            raise InvalidArgumentError("PackedSequence needs batch_sizes; build it with pack_padded_sequence")
        bs = batch_sizes if isinstance(batch_sizes, Tensor) else _tensor(np.asarray(batch_sizes, dtype=np.int64))
        sorted_indices = _as_index_tensor(sorted_indices)
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, bs, sorted_indices, _as_index_tensor(unsorted_indices))

    @property
    def is_cuda(self):
        return self.data.device.type == "cuda"

    def to(self, *args, **kwargs):
        """A PackedSequence with ``data`` moved/cast by ``data.to(...)`` (the index tensors follow the device)."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        return type(self)(data, self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    def cpu(self):
        return self.to("cpu")

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    def is_pinned(self):
        return False

    def _sizes(self):
        return [int(b) for b in self.batch_sizes.numpy().tolist()]


def invert_permutation(permutation):
    """The inverse permutation q with q[p[i]] = i (None stays None)."""
    if permutation is None:
        return None
    p = np.asarray(permutation.to("cpu").numpy() if isinstance(permutation, Tensor) else permutation,
                   dtype=np.int64)
    q = np.empty_like(p)
    q[p] = np.arange(p.size, dtype=np.int64)
    return _tensor(q)


def _lengths_list(lengths, what):
    if isinstance(lengths, Tensor):
        arr = lengths.detach().to("cpu").numpy()
    else:
        arr = np.asarray(list(lengths) if not isinstance(lengths, np.ndarray) else lengths)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise InvalidArgumentError(f"{what}: lengths must be a 1-d sequence of ints, got {arr!r}")
    return [int(v) for v in arr.tolist()]


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch ``input`` (T, B, *) (``batch_first``: (B, T, *)) whose sequence b has
    ``lengths[b]`` valid steps. With ``enforce_sorted=True`` the lengths must be non-increasing;
    otherwise the batch is sorted here and the permutation kept in the result."""
    if not isinstance(input, Tensor):
        raise InvalidArgumentError(f"pack_padded_sequence: input must be a Tensor, got {type(input).__name__}")
    lens = _lengths_list(lengths, "pack_padded_sequence")
    if input.ndim < 2:
        raise ShapeError(f"pack_padded_sequence: input must be at least 2-d (T, B, *), got shape {tuple(input.shape)}")
    x = input.transpose(0, 1) if batch_first else input
    T, B = x.shape[0], x.shape[1]
    if len(lens) != B:
        raise ShapeError(f"pack_padded_sequence: {len(lens)} lengths for a batch of {B} (input shape "
                         f"{tuple(input.shape)}, batch_first={batch_first})")
    if B and min(lens) <= 0:
        raise InvalidArgumentError(f"pack_padded_sequence: every length must be > 0, got {lens}")
    if B and max(lens) > T:
        raise ShapeError(f"pack_padded_sequence: a length of {max(lens)} exceeds the {T} time steps of the input")
    if enforce_sorted:
        if any(lens[i] < lens[i + 1] for i in range(B - 1)):
            raise InvalidArgumentError(f"pack_padded_sequence: lengths {lens} must be sorted in decreasing order "
                                       "when enforce_sorted=True (pass enforce_sorted=False to sort here)")
        sorted_indices = None
    else:
        order = sorted(range(B), key=lambda b: -lens[b])  # stable: ties keep the caller's order
        sorted_indices = _tensor(np.asarray(order, dtype=np.int64))
        lens = [lens[b] for b in order]
        x = F.index_select(x, 1, sorted_indices.to(x.device))
    steps = max(lens) if B else 0
    batch_sizes = [sum(1 for L in lens if L > t) for t in range(steps)]
    data = F.cat([x[t, 0:batch_sizes[t]] for t in range(steps)], 0)
    return PackedSequence(data, batch_sizes, sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Undo :func:`pack_padded_sequence`: returns ``(padded, lengths)`` with padded (T, B, *)
    (``batch_first``: (B, T, *)), T = ``total_length`` or the longest length, the padding filled with
    ``padding_value``, and ``lengths`` an int64 Tensor, both in the caller's original batch order."""
    if not isinstance(sequence, PackedSequence):
        raise InvalidArgumentError(f"pad_packed_sequence expects a PackedSequence, got {type(sequence).__name__}")
    sizes = sequence._sizes()
    data = sequence.data
    T = len(sizes)
    B = sizes[0] if sizes else 0
    if total_length is not None:
        if total_length < T:
            raise InvalidArgumentError(f"pad_packed_sequence: total_length={total_length} is less than the longest "
                                       f"sequence length {T}")
    feat = tuple(data.shape[1:])
    rows, off = [], 0
    for t, bs in enumerate(sizes):
        chunk = data[off:off + bs]
        off += bs
        if bs < B:
            chunk = F.cat([chunk, full((B - bs,) + feat, padding_value, dtype=data.dtype, device=data.device)], 0)
        rows.append(chunk)
    pad_T = T if total_length is None else int(total_length)
    for _ in range(pad_T - T):
        rows.append(full((B,) + feat, padding_value, dtype=data.dtype, device=data.device))
    out = F.stack(rows, 0)
    lengths = np.array([sum(1 for bs in sizes if bs > b) for b in range(B)], dtype=np.int64)
    if sequence.unsorted_indices is not None:
        out = F.index_select(out, 1, sequence.unsorted_indices.to(out.device))
        lengths = lengths[sequence.unsorted_indices.to("cpu").numpy()]
    if batch_first:
        out = out.transpose(0, 1)
    return out, _tensor(lengths)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack tensors of shapes (L_i, *) into (L_max, B, *) (``batch_first``: (B, L_max, *)), filling with
    ``padding_value`` after each sequence (``padding_side='left'``: before it)."""
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise InvalidArgumentError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise InvalidArgumentError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    bad = [type(q).__name__ for q in sequences if not isinstance(q, Tensor)]
    if bad:
        raise InvalidArgumentError(f"pad_sequence: sequences must be Tensors, got {', '.join(sorted(set(bad)))}")
    trail = tuple(sequences[0].shape[1:])
    for s in sequences:
        if not isinstance(s, Tensor) or s.ndim < 1 or tuple(s.shape[1:]) != trail:
            raise ShapeError("pad_sequence: sequences must be Tensors of shape (L_i, *) with equal trailing "
                             f"dimensions, got shapes {[tuple(getattr(q, 'shape', ())) for q in sequences]}")
    L = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        n = L - s.shape[0]
        if n:
            pad = full((n,) + trail, padding_value, dtype=s.dtype, device=s.device)
            s = F.cat([s, pad] if padding_side == "right" else [pad, s], 0)
        padded.append(s)
    return F.stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of unpadded sequences (L_b, *) of a padded batch (inverse of :func:`pad_sequence`)."""
    lens = _lengths_list(lengths, "unpad_sequence")
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    if len(lens) != x.shape[0]:
        raise ShapeError(f"unpad_sequence: {len(lens)} lengths for a batch of {x.shape[0]}")
    return [x[b, 0:L] for b, L in enumerate(lens)]


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of (L_i, *) tensors: ``pack_padded_sequence(pad_sequence(sequences), lengths)``."""
    sequences = list(sequences)
    if not all(isinstance(s, Tensor) and s.ndim >= 1 for s in sequences):
        raise InvalidArgumentError("pack_sequence: sequences must be Tensors of shape (L_i, *), got "
                                   f"{[type(s).__name__ for s in sequences]}")
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """The list of (L_b, *) tensors of a packed batch, in the caller's original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


# ----------------------------------------------------------------------------- recurrent nets over packed input
def _cell(mode):
    from ..modules import rnn as R

    if mode == "LSTM":
        return lambda x, st, w_ih, w_hh, b_ih, b_hh: R.lstm_cell(x, st[0], st[1], w_ih, w_hh, b_ih, b_hh)
    return {"RNN_TANH": R.rnn_tanh_cell, "RNN_RELU": R.rnn_relu_cell, "GRU": R.gru_cell}[mode]


def _run_packed_direction(cell, is_lstm, data, sizes, state, weights, reverse):
    """One layer, one direction over packed rows. ``state``: h (B, H) or (h, c). Returns (packed outputs,
    final state). Active rows at step t are 0 .. sizes[t]-1; rows past them keep their state (already final
    going forward, still the initial state going backward)."""
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
    outs = [None] * len(sizes)
    steps = range(len(sizes) - 1, -1, -1) if reverse else range(len(sizes))
    for t in steps:
        bs = sizes[t]
        x_t = data[offsets[t]:offsets[t + 1]]
        if is_lstm:
            h, c = state
            h_new, c_new = cell(x_t, (h[0:bs], c[0:bs]), *weights)
            if bs < h.shape[0]:
                h_new, c_new = F.cat([h_new, h[bs:]], 0), F.cat([c_new, c[bs:]], 0)
            state = (h_new, c_new)
            outs[t] = h_new[0:bs]
        else:
            h_new = cell(x_t, state[0:bs], *weights)
            outs[t] = h_new
            state = F.cat([h_new, state[bs:]], 0) if bs < state.shape[0] else h_new
    return F.cat(outs, 0), state


def packed_rnn_forward(module, input, hx=None):
    """``module(input)`` for an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` and a :class:`PackedSequence` ``input``:
    returns ``(PackedSequence output, h_n)`` (LSTM: ``(output, (h_n, c_n))``) exactly as PyTorch does, h_n in
    the caller's batch order. Uses the same weights and cell equations as the module (reference loop)."""
    if not isinstance(input, PackedSequence):
        raise InvalidArgumentError(f"packed_rnn_forward expects a PackedSequence, got {type(input).__name__}")
    mode = module.mode
    is_lstm = mode == "LSTM"
    sizes = input._sizes()
    data = input.data
    if data.ndim != 2 or data.shape[-1] != module.input_size:
        raise ShapeError(f"{type(module).__name__}: packed data must be (N, input_size={module.input_size}), got "
                         f"shape {tuple(data.shape)}")
    B = sizes[0]
    D = 2 if module.bidirectional else 1
    LD, H = module.num_layers * D, module.hidden_size
    if hx is None:
        h0 = full((LD, B, H), 0.0, dtype=data.dtype, device=data.device)
        c0 = h0 if is_lstm else None
    else:
        if is_lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise InvalidArgumentError("LSTM expects the initial state as a pair (h_0, c_0)")
            h0, c0 = hx
        else:
            h0, c0 = hx, None
        for name, h in (("h_0", h0), ("c_0", c0)):
            if h is not None and not isinstance(h, Tensor):
                raise InvalidArgumentError(f"{type(module).__name__}: {name} must be a Tensor, got {type(h).__name__}")
            if h is not None and tuple(h.shape) != (LD, B, H):
                raise ShapeError(f"{type(module).__name__}: expected {name} of shape {(LD, B, H)}, "
                                 f"got {tuple(h.shape)}")
        if input.sorted_indices is not None:
            order = input.sorted_indices.to(h0.device)
            h0 = F.index_select(h0, 1, order)
            c0 = F.index_select(c0, 1, order.to(c0.device)) if is_lstm else None
    cell = _cell(mode)
    h_n, c_n = [], []
    layer_in = data
    for layer in range(module.num_layers):
        outs = []
        for d in range(D):
            sfx = "_reverse" if d == 1 else ""
            w = [getattr(module, f"weight_ih_l{layer}{sfx}"), getattr(module, f"weight_hh_l{layer}{sfx}")]
            w += ([getattr(module, f"bias_ih_l{layer}{sfx}"), getattr(module, f"bias_hh_l{layer}{sfx}")]
                  if module.bias else [None, None])
            k = layer * D + d
            state = (h0[k], c0[k]) if is_lstm else h0[k]
            out, state = _run_packed_direction(cell, is_lstm, layer_in, sizes, state, w, reverse=(d == 1))
            outs.append(out)
            if is_lstm:
                h_n.append(state[0])
                c_n.append(state[1])
            else:
                h_n.append(state)
        layer_in = outs[0] if D == 1 else F.cat(outs, -1)
        if module.dropout > 0 and module.training and layer < module.num_layers - 1:
            layer_in = F.dropout(layer_in, module.dropout, True)
    h_n = F.stack(h_n, 0)
    c_n = F.stack(c_n, 0) if is_lstm else None
    if input.unsorted_indices is not None:
        back = input.unsorted_indices.to(h_n.device)
        h_n = F.index_select(h_n, 1, back)
        c_n = F.index_select(c_n, 1, back) if is_lstm else None
    output = PackedSequence(layer_in, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
    return output, ((h_n, c_n) if is_lstm else h_n)
