"""Recurrent layers: gate equations by hand, gradcheck, and torch.nn.RNN/LSTM/GRU with the same weights."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen import nn
from minigen.errors import InvalidArgumentError, ShapeError
from conftest import requires_torch
from nn_testutil import compare_with_torch, few, gradcheck_module

seeds = st.integers(0, 2 ** 31 - 1)


def rnd(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def t64(a, grad=True):
    return mg.tensor(a, dtype=mg.float64, requires_grad=grad)


def sig(z):
    return 1 / (1 + np.exp(-z))


# ------------------------------------------------------------------ hand-computed cells
def test_lstm_cell_by_hand():
    H, I = 2, 3
    cell = nn.LSTMCell(I, H, dtype=mg.float64)
    w_ih, w_hh, b_ih, b_hh = (p.detach().numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))
    x, h, c = rnd(1, 1, I), rnd(2, 1, H), rnd(3, 1, H)
    z = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, g, o = sig(z[:, :H]), sig(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sig(z[:, 3 * H:])
    c2 = f * c + i * g
    h2 = o * np.tanh(c2)
    hm, cm = cell(t64(x, False), (t64(h, False), t64(c, False)))
    np.testing.assert_allclose(hm.detach().numpy(), h2, rtol=1e-12)
    np.testing.assert_allclose(cm.detach().numpy(), c2, rtol=1e-12)


def test_gru_cell_by_hand():
    H, I = 2, 3
    cell = nn.GRUCell(I, H, dtype=mg.float64)
    w_ih, w_hh, b_ih, b_hh = (p.detach().numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))
    x, h = rnd(1, 1, I), rnd(2, 1, H)
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    r = sig(gi[:, :H] + gh[:, :H])
    z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])  # b_hn inside the reset product
    h2 = (1 - z) * n + z * h
    np.testing.assert_allclose(cell(t64(x, False), t64(h, False)).detach().numpy(), h2, rtol=1e-12)


def test_rnn_cell_by_hand_and_unbatched():
    cell = nn.RNNCell(2, 3, nonlinearity="relu", dtype=mg.float64)
    w_ih, w_hh, b_ih, b_hh = (p.detach().numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))
    x, h = rnd(1, 2), rnd(2, 3)
    want = np.maximum(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 0)
    np.testing.assert_allclose(cell(t64(x, False), t64(h, False)).detach().numpy(), want, rtol=1e-12)
    assert cell(t64(x, False)).shape == (3,)  # unbatched input, zero initial state
    with pytest.raises(ShapeError, match="input_size"):
        cell(mg.randn(4, 5, dtype=mg.float64))
    with pytest.raises(InvalidArgumentError):
        nn.RNNCell(2, 3, nonlinearity="sigmoid")


def test_cells_gradcheck():
    x, h, c = t64(rnd(1, 2, 3)), t64(rnd(2, 2, 2)), t64(rnd(3, 2, 2))
    gradcheck_module(nn.RNNCell(3, 2, dtype=mg.float64), x, h)
    gradcheck_module(nn.GRUCell(3, 2, dtype=mg.float64), x, h)
    m = nn.LSTMCell(3, 2, dtype=mg.float64)
    from minigen.testing import gradcheck

    gradcheck(lambda x, h, c, *p: m(x, (h, c)), (x, h, c, *m.parameters()))


def test_rnn_layer_equals_cell_loop():
    """LSTM (one layer) over a sequence == the LSTMCell applied step by step with the same weights."""
    lstm = nn.LSTM(3, 2, dtype=mg.float64)
    cell = nn.LSTMCell(3, 2, dtype=mg.float64)
    cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})
    x = t64(rnd(0, 4, 2, 3), False)
    out, (h, c) = lstm(x)
    hh = cc = mg.zeros(2, 2, dtype=mg.float64)
    for t in range(4):
        hh, cc = cell(x[t], (hh, cc))
        np.testing.assert_allclose(out[t].detach().numpy(), hh.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(h[0].detach().numpy(), hh.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(c[0].detach().numpy(), cc.detach().numpy(), rtol=1e-12)


# ------------------------------------------------------------------ gradcheck multi-layer
@pytest.mark.parametrize("cls,kw", [(nn.RNN, dict(nonlinearity="tanh")), (nn.LSTM, {}), (nn.GRU, {})])
def test_multilayer_gradcheck(cls, kw):
    m = cls(2, 2, num_layers=2, batch_first=True, bidirectional=(cls is nn.RNN), dtype=mg.float64, **kw)
    x = t64(rnd(0, 2, 3, 2))
    D = 2 if cls is nn.RNN else 1
    h0 = t64(rnd(1, 2 * D, 2, 2))
    if cls is nn.LSTM:
        from minigen.testing import gradcheck

        c0 = t64(rnd(2, 2, 2, 2))
        ps = list(m.parameters())
        gradcheck(lambda x, h0, c0, *p: (lambda o: (o[0], o[1][0], o[1][1]))(m(x, (h0, c0))), (x, h0, c0, *ps))
    else:
        gradcheck_module(m, x, h0)


# ------------------------------------------------------------------ torch
@requires_torch
@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_two_layers_vs_torch(cls, batch_first):
    import torch

    kw = dict(num_layers=2, batch_first=batch_first)
    x = rnd(5, 2, 6, 3) if batch_first else rnd(5, 6, 2, 3)
    compare_with_torch(getattr(nn, cls)(3, 4, **kw), getattr(torch.nn, cls)(3, 4, **kw), [x])


@requires_torch
@given(cls=st.sampled_from(["RNN", "LSTM", "GRU"]), layers=st.integers(1, 2), batch_first=st.booleans(),
       bidir=st.booleans(), bias=st.booleans(), with_state=st.booleans(), seed=seeds)
def test_vs_torch(cls, layers, batch_first, bidir, bias, with_state, seed):
    import torch

    kw = dict(num_layers=layers, batch_first=batch_first, bidirectional=bidir, bias=bias)
    m, t = getattr(nn, cls)(3, 4, **kw), getattr(torch.nn, cls)(3, 4, **kw)
    T, B = 5, 2
    x = rnd(seed, B, T, 3) if batch_first else rnd(seed, T, B, 3)
    inputs = [x]
    D = 2 if bidir else 1
    if with_state:
        inputs.append(rnd(seed + 1, layers * D, B, 4))
        if cls == "LSTM":
            inputs.append(rnd(seed + 2, layers * D, B, 4))
    if cls == "LSTM" and with_state:
        call = lambda m, xs: m(xs[0], (xs[1], xs[2]))  # noqa: E731
    else:
        call = None
    compare_with_torch(m, t, inputs, call=call, tcall=call)


@requires_torch
def test_unbatched_and_relu_vs_torch():
    import torch

    compare_with_torch(nn.RNN(3, 4, 2, nonlinearity="relu"), torch.nn.RNN(3, 4, 2, nonlinearity="relu"),
                       [rnd(0, 5, 3)])
    compare_with_torch(nn.LSTM(3, 4, bidirectional=True), torch.nn.LSTM(3, 4, bidirectional=True),
                       [rnd(1, 5, 3), rnd(2, 2, 4), rnd(3, 2, 4)],
                       call=lambda m, xs: m(xs[0], (xs[1], xs[2])), tcall=lambda m, xs: m(xs[0], (xs[1], xs[2])))
    for cls in ("RNNCell", "LSTMCell", "GRUCell"):
        compare_with_torch(getattr(nn, cls)(3, 2), getattr(torch.nn, cls)(3, 2), [rnd(4, 4, 3)])
        compare_with_torch(getattr(nn, cls)(3, 2, bias=False), getattr(torch.nn, cls)(3, 2, bias=False),
                           [rnd(4, 3)])


@requires_torch
def test_parameter_names_and_order_match_torch():
    import torch

    for cls in ("RNN", "LSTM", "GRU"):
        m = getattr(nn, cls)(3, 4, num_layers=2, bidirectional=True)
        t = getattr(torch.nn, cls)(3, 4, num_layers=2, bidirectional=True)
        assert [k for k, _ in m.named_parameters()] == [k for k, _ in t.named_parameters()]
        assert all(tuple(p.shape) == tuple(q.shape) for p, q in zip(m.parameters(), t.parameters()))
        assert repr(m) == repr(t)


def test_dropout_between_layers_and_errors():
    m = nn.LSTM(3, 4, num_layers=3, dropout=0.5).double()
    x = t64(rnd(0, 5, 2, 3), False)
    m.eval()
    a = m(x)[0].detach().numpy()
    np.testing.assert_array_equal(a, m(x)[0].detach().numpy())  # eval: deterministic, no dropout
    m.train()
    mg.manual_seed(0)
    b = m(x)[0].detach().numpy()
    mg.manual_seed(1)
    c = m(x)[0].detach().numpy()
    assert not np.allclose(a, b) and not np.allclose(b, c)
    one = nn.LSTM(3, 4, num_layers=1, dropout=0.5).double()  # dropout only *between* layers: none here
    one.train()
    np.testing.assert_array_equal(one(x)[0].detach().numpy(), one.eval()(x)[0].detach().numpy())
    with pytest.raises(ShapeError, match="h_0"):
        nn.GRU(3, 4)(x, mg.zeros(2, 2, 4, dtype=mg.float64))
    with pytest.raises(InvalidArgumentError, match="pair"):
        nn.LSTM(3, 4).double()(x, mg.zeros(1, 2, 4, dtype=mg.float64))
    with pytest.raises(ShapeError, match="input_size"):
        nn.RNN(2, 4)(x)
    with pytest.raises(InvalidArgumentError):
        nn.LSTM(3, 4, dropout=2.0)


# ------------------------------------------------------------------ fused LSTM sequence kernel == reference
try:
    from minigen.kernels import dispatch as _dispatch

    HAS_KERNELS = _dispatch.available()
except Exception:  # no kernels package
    _dispatch, HAS_KERNELS = None, False


def _lstm_run(m, x, h0, c0, mode):
    with _dispatch.set_mode(mode):
        for p in list(m.parameters()) + [x, h0, c0]:
            p.grad = None
        out, (h, c) = m(x, (h0, c0))
        v = rnd(9, *out.shape)
        ((out * mg.tensor(v)).sum() + (h * 2).sum() + (c * 3).sum()).backward()
        return [t.detach().numpy() for t in (out, h, c)] + [t.grad.numpy() for t in [x, h0, c0, *m.parameters()]]


@pytest.mark.skipif(not HAS_KERNELS, reason="kernels (Numba) not available")
@pytest.mark.parametrize("bidirectional", [False, True])
def test_fused_lstm_matches_reference(bidirectional):
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=bidirectional, dtype=mg.float64)
    D = 2 if bidirectional else 1
    x, h0, c0 = t64(rnd(0, 6, 2, 3)), t64(rnd(1, 2 * D, 2, 4)), t64(rnd(2, 2 * D, 2, 4))
    _dispatch.reset_stats()
    fused = _lstm_run(m, x, h0, c0, "numba")
    assert _dispatch.stats().get("lstm_seq_forward", 0) == 2 * D  # the kernel really ran
    ref = _lstm_run(m, x, h0, c0, "reference")
    for a, b in zip(fused, ref):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not HAS_KERNELS, reason="kernels (Numba) not available")
def test_fused_lstm_second_order():
    """create_graph=True through the fused op follows the reference equations (gradgradcheck)."""
    from minigen.testing import gradgradcheck

    m = nn.LSTM(2, 2, dtype=mg.float64)
    w = list(m.parameters())
    x = t64(rnd(3, 3, 1, 2))
    with _dispatch.set_mode("numba"):
        gradgradcheck(lambda x, w0: m(x)[0], (x, w[0]))



# ------------------------------------------------------------------ the whole-sequence ops (minigen.ops.rnn)
from minigen.ops import rnn as R  # noqa: E402


def _seq_args(seed, kind, T=4, B=2, I=3, H=3, bias=True):
    G = 4 if kind == "LSTM" else 3
    shapes = [(T, B, I), (B, H)] + ([(B, H)] if kind == "LSTM" else []) + [(G * H, I), (G * H, H)]
    shapes += [(G * H,), (G * H,)] if bias else []
    args = [t64(rnd(seed + i, *s) * 0.7) for i, s in enumerate(shapes)]
    return args if bias else args + [None, None]


def _seq_op(kind):
    return R.LSTMSequence.apply if kind == "LSTM" else R.GRUSequence.apply


@pytest.mark.parametrize("mode", ["kernels", "reference"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("bias", [True, False])
def test_sequence_op_fast_backward_equals_formula(mode, kind, bias):
    """LSTMSequence / GRUSequence: fast_backward (the BPTT kernel) == backward (the vector-Jacobian product of
    the reference loop), kernels forced and on the reference (then fast_backward declines)."""
    from test_ops_conv import assert_paths_equal

    args = _seq_args(1, kind, bias=bias)
    tensors = [a for a in args if a is not None]
    op = _seq_op(kind)

    def fn(*ts):
        it = iter(ts)
        return op(*[next(it) if a is not None else None for a in args])

    assert_paths_equal(fn, tensors, mode, f"{kind.lower()}_seq_backward")


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_sequence_op_forward_equals_reference_loop(kind):
    """Forward by the kernel and by the array reference == the loop of differentiable cell ops."""
    args = _seq_args(2, kind)
    if kind == "LSTM":
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = args
        y, (_, c_T) = R.rnn_layer_reference("LSTM", x, (h0, c0), w_ih, w_hh, b_ih, b_hh)
        want = np.concatenate([y.detach().numpy(), c_T.detach().numpy()[None]], 0)
    else:
        x, h0, w_ih, w_hh, b_ih, b_hh = args
        want = R.rnn_layer_reference("GRU", x, h0, w_ih, w_hh, b_ih, b_hh)[0].detach().numpy()
    for ctx in (_dispatch.use_kernels, _dispatch.use_reference):
        with ctx():
            got = _seq_op(kind)(*args).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@given(kind=st.sampled_from(["LSTM", "GRU"]), T=st.integers(1, 3), B=st.integers(1, 2), I=st.integers(1, 2),
       H=st.integers(1, 2), bias=st.booleans(), seed=seeds, mode=st.sampled_from(["use_kernels", "use_reference"]))
def test_sequence_op_gradcheck_and_gradgradcheck(kind, T, B, I, H, bias, seed, mode):
    from minigen.testing import gradcheck, gradgradcheck

    args = _seq_args(seed % 1000, kind, T, B, I, H, bias)
    tensors = [a for a in args if a is not None]
    op = _seq_op(kind)

    def fn(*ts):
        it = iter(ts)
        return op(*[next(it) if a is not None else None for a in args])

    with getattr(_dispatch, mode)():
        assert gradcheck(fn, tensors)
        assert gradgradcheck(fn, tensors)


def test_sequence_op_gradient_of_an_argument_computed_from_another():
    """c0 = 2 * h0: the op's gradient w.r.t. h0 is its own partial derivative (the chain rule adds 2 * dc0
    once, outside the op), on both backward paths."""
    x, h0, _, w_ih, w_hh, b_ih, b_hh = _seq_args(4, "LSTM")
    v = mg.tensor(rnd(5, 5, 2, 3))

    def loss(create_graph):
        c0 = h0 * 2
        out = R.LSTMSequence.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        return mg.grad((out * v).sum(), [h0], create_graph=create_graph)[0].detach().numpy()

    y, (_, c_T) = R.rnn_layer_reference("LSTM", x, (h0, h0 * 2), w_ih, w_hh, b_ih, b_hh)
    want = mg.grad((mg.cat([y, c_T.reshape(1, 2, 3)], 0) * v).sum(), [h0])[0].numpy()
    for ctx in (_dispatch.use_kernels, _dispatch.use_reference):
        with ctx():
            np.testing.assert_allclose(loss(False), want, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(loss(True), want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_fused_gru_matches_reference(bidirectional):
    m = nn.GRU(3, 4, num_layers=2, bidirectional=bidirectional, dtype=mg.float64)
    D = 2 if bidirectional else 1
    x, h0 = t64(rnd(0, 6, 2, 3)), t64(rnd(1, 2 * D, 2, 4))

    def run(ctx):
        with ctx():
            for p in list(m.parameters()) + [x, h0]:
                p.grad = None
            out, h = m(x, h0)
            ((out * mg.tensor(rnd(9, *out.shape))).sum() + (h * 2).sum()).backward()
            return [out.detach().numpy(), h.detach().numpy()] + [t.grad.numpy() for t in [x, h0, *m.parameters()]]

    _dispatch.reset_stats()
    fused = run(_dispatch.use_kernels)
    if HAS_KERNELS:
        assert _dispatch.stats().get("gru_seq_forward", 0) == 2 * D
    for a, b in zip(fused, run(_dispatch.use_reference)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
