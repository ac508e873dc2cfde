"""nn module paths people import and ``nn.utils.rnn`` (pad/pack/unpack, PackedSequence through
RNN/LSTM/GRU), compared against torch on identical weights (skipped without torch) and gradchecked."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
import minigen.nn as nn
from minigen.errors import InvalidArgumentError, ShapeError
from minigen.nn.utils.rnn import (
    PackedSequence, pack_padded_sequence, pack_sequence, packed_rnn_forward, pad_packed_sequence, pad_sequence,
    unpack_sequence, unpad_sequence,
)
from minigen.testing import gradcheck


# ------------------------------------------------------------------ import paths
def test_module_paths_people_import():
    from minigen.nn.modules.activation import MultiheadAttention, ReLU  # noqa: F401
    from minigen.nn.modules.linear import Linear, Identity  # noqa: F401
    from minigen.nn.modules.batchnorm import BatchNorm1d, BatchNorm2d  # noqa: F401
    from minigen.nn.modules.module import Module  # noqa: F401
    from minigen.nn.parameter import Parameter  # noqa: F401
    from minigen.nn import init  # noqa: F401
    from minigen.nn.utils import clip_grad_norm_  # noqa: F401
    from minigen.nn.utils.rnn import pad_sequence as ps  # noqa: F401
    import minigen.nn.utils.rnn as r

    assert MultiheadAttention is nn.MultiheadAttention and Linear is nn.Linear and Parameter is nn.Parameter
    assert nn.utils.rnn is r and BatchNorm2d is nn.BatchNorm2d
    assert callable(init.kaiming_uniform_) and callable(init.xavier_normal_)
    import minigen.nn.modules.activation as act

    with pytest.raises(AttributeError):
        act.NoSuchLayer  # noqa: B018


# ------------------------------------------------------------------ pad / pack against torch
torch = None


def _torch():
    global torch
    torch = pytest.importorskip("torch")
    return torch


def _seqs(rng, lengths, feat=3):
    return [rng.standard_normal((L, feat)) for L in lengths]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, padding_side):
    T = _torch()
    rng = np.random.default_rng(0)
    seqs = _seqs(rng, [2, 5, 1, 3])
    m = pad_sequence([mg.tensor(s) for s in seqs], batch_first=batch_first, padding_value=-1.5,
                     padding_side=padding_side)
    t = T.nn.utils.rnn.pad_sequence([T.tensor(s) for s in seqs], batch_first=batch_first, padding_value=-1.5,
                                    padding_side=padding_side)
    np.testing.assert_array_equal(m.numpy(), t.numpy())


@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_and_pad_packed_match_torch(enforce_sorted, batch_first):
    T = _torch()
    rng = np.random.default_rng(1)
    lengths = [5, 4, 4, 2, 1] if enforce_sorted else [2, 5, 1, 4, 4]
    x = rng.standard_normal((5, 6, 3))  # (T, B) or (B, T) after the transpose below
    x = x.transpose(1, 0, 2).copy() if not batch_first else x
    if batch_first:
        x = x[:, :6]
    xb = x if batch_first else x
    mp = pack_padded_sequence(mg.tensor(xb), lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    tp = T.nn.utils.rnn.pack_padded_sequence(T.tensor(xb), T.tensor(lengths), batch_first=batch_first,
                                             enforce_sorted=enforce_sorted)
    np.testing.assert_array_equal(mp.data.numpy(), tp.data.numpy())
    assert mp.batch_sizes.numpy().tolist() == tp.batch_sizes.tolist()
    for a, b in ((mp.sorted_indices, tp.sorted_indices), (mp.unsorted_indices, tp.unsorted_indices)):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.numpy().tolist() == b.tolist()
    for total in (None, 7):
        mo, ml = pad_packed_sequence(mp, batch_first=batch_first, padding_value=9.0, total_length=total)
        to, tl = T.nn.utils.rnn.pad_packed_sequence(tp, batch_first=batch_first, padding_value=9.0,
                                                    total_length=total)
        np.testing.assert_array_equal(mo.numpy(), to.numpy())
        assert ml.numpy().tolist() == tl.tolist() and ml.dtype == np.int64
    # pack_sequence / unpack_sequence / unpad_sequence round trips
    seqs = _seqs(rng, lengths)
    ms = pack_sequence([mg.tensor(s) for s in seqs], enforce_sorted=enforce_sorted)
    ts = T.nn.utils.rnn.pack_sequence([T.tensor(s) for s in seqs], enforce_sorted=enforce_sorted)
    np.testing.assert_array_equal(ms.data.numpy(), ts.data.numpy())
    for a, s in zip(unpack_sequence(ms), seqs):
        np.testing.assert_array_equal(a.numpy(), s)
    padded = pad_sequence([mg.tensor(s) for s in seqs], batch_first=True)
    for a, s in zip(unpad_sequence(padded, mg.tensor(lengths), batch_first=True), seqs):
        np.testing.assert_array_equal(a.numpy(), s)


def test_pack_errors():
    x = mg.zeros(4, 2, 3)
    with pytest.raises(InvalidArgumentError, match="decreasing"):
        pack_padded_sequence(x, [2, 4])
    with pytest.raises(ShapeError, match="3 lengths for a batch of 2"):
        pack_padded_sequence(x, [4, 2, 1])
    with pytest.raises(InvalidArgumentError, match="> 0"):
        pack_padded_sequence(x, [4, 0])
    with pytest.raises(ShapeError, match="exceeds"):
        pack_padded_sequence(x, [5, 1])
    with pytest.raises(ShapeError, match="trailing"):
        pad_sequence([mg.zeros(2, 3), mg.zeros(2, 4)])
    with pytest.raises(InvalidArgumentError, match="total_length"):
        pad_packed_sequence(pack_padded_sequence(x, [4, 2]), total_length=3)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.booleans())
def test_gradcheck_pack_then_pad(lengths, batch_first):
    rng = np.random.default_rng(len(lengths))
    Tm = max(lengths)
    shape = (len(lengths), Tm, 2) if batch_first else (Tm, len(lengths), 2)
    x = mg.tensor(rng.standard_normal(shape), requires_grad=True)

    def f(x):
        p = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
        return pad_packed_sequence(PackedSequence(p.data * p.data, p.batch_sizes, p.sorted_indices,
                                                  p.unsorted_indices), batch_first=batch_first)[0]

    assert gradcheck(f, (x,))
    seqs = [mg.tensor(rng.standard_normal((L, 2)), requires_grad=True) for L in lengths]
    assert gradcheck(lambda *s: pad_sequence(list(s), batch_first=batch_first, padding_value=0.5), tuple(seqs))


# ------------------------------------------------------------------ RNNs over packed batches
def _copy_weights(m, t):
    with _torch().no_grad():
        for name, p in t.named_parameters():
            p.copy_(T_from(getattr(m, name)))


def T_from(x):
    return torch.tensor(x.detach().numpy().copy())


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_packed_rnn_matches_torch(kind, bidirectional, enforce_sorted):
    T = _torch()
    rng = np.random.default_rng(2)
    mg.manual_seed(0)
    m = getattr(nn, kind)(3, 4, num_layers=2, bidirectional=bidirectional, dtype=mg.float64)
    t = getattr(T.nn, kind)(3, 4, num_layers=2, bidirectional=bidirectional, dtype=T.float64)
    _copy_weights(m, t)
    lengths = [5, 3, 3, 1] if enforce_sorted else [3, 5, 1, 3]
    x = rng.standard_normal((5, 4, 3))
    D = 2 if bidirectional else 1
    h0 = rng.standard_normal((2 * D, 4, 4))
    c0 = rng.standard_normal((2 * D, 4, 4))
    mx = mg.tensor(x, requires_grad=True)
    tx = T.tensor(x, requires_grad=True)
    mp = pack_padded_sequence(mx, lengths, enforce_sorted=enforce_sorted)
    tp = T.nn.utils.rnn.pack_padded_sequence(tx, T.tensor(lengths), enforce_sorted=enforce_sorted)
    mh = (mg.tensor(h0), mg.tensor(c0)) if kind == "LSTM" else mg.tensor(h0)
    th = (T.tensor(h0), T.tensor(c0)) if kind == "LSTM" else T.tensor(h0)
    mo, ms = packed_rnn_forward(m, mp, mh)
    to, ts = t(tp, th)
    assert isinstance(mo, PackedSequence)
    np.testing.assert_allclose(mo.data.detach().numpy(), to.data.detach().numpy(), rtol=1e-10, atol=1e-12)
    ms = ms if kind == "LSTM" else (ms,)
    ts = ts if kind == "LSTM" else (ts,)
    for a, b in zip(ms, ts):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    # gradients through packing, the recurrence and unpacking
    mout, _ = pad_packed_sequence(mo, batch_first=True)
    tout, _ = T.nn.utils.rnn.pad_packed_sequence(to, batch_first=True)
    w = rng.standard_normal(tuple(tout.shape))
    ((mout * mg.tensor(w)).sum() + ms[0].sum()).backward()
    ((tout * T.tensor(w)).sum() + ts[0].sum()).backward()
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(getattr(m, name).grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)


def _module_accepts_packed():
    m = nn.GRU(2, 2)
    try:
        out, _ = m(pack_sequence([mg.zeros(2, 2), mg.zeros(1, 2)]))
    except Exception:
        return False
    return isinstance(out, PackedSequence)


@pytest.mark.xfail(not _module_accepts_packed(), strict=True,
                   reason="nn.RNNBase.forward does not yet dispatch PackedSequence to packed_rnn_forward "
                          "(a two-line hook in minigen/nn/modules/rnn.py, owned by the lead)")
def test_rnn_module_call_accepts_packed_sequence():
    T = _torch()
    mg.manual_seed(1)
    m = nn.LSTM(3, 4, batch_first=True, dtype=mg.float64)
    t = T.nn.LSTM(3, 4, batch_first=True, dtype=T.float64)
    _copy_weights(m, t)
    seqs = _seqs(np.random.default_rng(3), [4, 2, 3])
    mo, (mh, mc) = m(pack_sequence([mg.tensor(s) for s in seqs], enforce_sorted=False))
    to, (th, tc) = t(T.nn.utils.rnn.pack_sequence([T.tensor(s) for s in seqs], enforce_sorted=False))
    np.testing.assert_allclose(mo.data.detach().numpy(), to.data.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(mh.detach().numpy(), th.detach().numpy(), rtol=1e-10)


def test_packed_rnn_equals_per_sequence_runs():
    """Without torch: each sequence of a packed batch gives what the module gives on that sequence alone."""
    mg.manual_seed(2)
    m = nn.GRU(2, 3, bidirectional=True, dtype=mg.float64)
    rng = np.random.default_rng(4)
    seqs = [mg.tensor(rng.standard_normal((L, 2))) for L in (2, 4, 1)]
    out, h = packed_rnn_forward(m, pack_sequence(seqs, enforce_sorted=False))
    for b, (s, o) in enumerate(zip(seqs, unpack_sequence(out))):
        ro, rh = m(s.reshape(s.shape[0], 1, 2))
        np.testing.assert_allclose(o.detach().numpy(), ro.detach().numpy()[:, 0], rtol=1e-12)
        np.testing.assert_allclose(h.detach().numpy()[:, b], rh.detach().numpy()[:, 0], rtol=1e-12)


@pytest.mark.parametrize("call", [
    lambda: pad_sequence([1, 2]), lambda: pad_sequence([]), lambda: pack_sequence([mg.zeros(2, 1), "x"]),
    lambda: pack_padded_sequence(mg.zeros(3, 2, 1), "ab"), lambda: pack_padded_sequence(mg.zeros(3, 2, 1), [1.5, 1]),
    lambda: pad_packed_sequence(mg.zeros(3)), lambda: unpad_sequence(mg.zeros(3, 2), [1, 2, 3]),
    lambda: packed_rnn_forward(nn.GRU(1, 2), mg.zeros(3)),
    lambda: packed_rnn_forward(nn.GRU(1, 2), pack_sequence([mg.zeros(2, 3)])),
    lambda: packed_rnn_forward(nn.LSTM(1, 2), pack_sequence([mg.zeros(2, 1)]), mg.zeros(1, 1, 2)),
    lambda: packed_rnn_forward(nn.GRU(1, 2), pack_sequence([mg.zeros(2, 1)]), mg.zeros(1, 3, 2)),
    lambda: PackedSequence(mg.zeros(3)), lambda: pack_padded_sequence(mg.zeros(3), [1]),
    lambda: packed_rnn_forward(nn.GRU(1, 2), pack_sequence([mg.zeros(2, 1)]), [1.0]),
    lambda: packed_rnn_forward(nn.LSTM(1, 2), pack_sequence([mg.zeros(2, 1)]), (mg.zeros(1, 1, 2), "c")),
])
def test_bad_input_raises_minigen_errors(call):
    with pytest.raises(mg.errors.MinigenError):
        call()


# ------------------------------------------------------------------ weight_norm / spectral_norm
def _mods(kind, T):
    mg.manual_seed(3)
    if kind == "linear":
        m, t = nn.Linear(4, 3, dtype=mg.float64), T.nn.Linear(4, 3).double()
    elif kind == "conv":
        m, t = nn.Conv2d(2, 3, 3, dtype=mg.float64), T.nn.Conv2d(2, 3, 3).double()
    else:
        m, t = nn.ConvTranspose2d(2, 3, 3, dtype=mg.float64), T.nn.ConvTranspose2d(2, 3, 3).double()
    with T.no_grad():
        for name, p in t.named_parameters():
            p.copy_(T_from(getattr(m, name)))
    x = np.random.default_rng(5).standard_normal((2, 4) if kind == "linear" else (2, 2, 5, 5))
    return m, t, x


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch deprecates its hook version for parametrizations
@pytest.mark.parametrize("kind", ["linear", "conv", "convT"])
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_matches_torch(kind, dim):
    T = _torch()
    m, t, x = _mods(kind, T)
    nn.utils.weight_norm(m, dim=dim)
    T.nn.utils.weight_norm(t, dim=dim)
    assert sorted(k for k, _ in m.named_parameters()) == sorted(k for k, _ in t.named_parameters())
    np.testing.assert_allclose(m.weight_g.detach().numpy(), t.weight_g.detach().numpy(), rtol=1e-12)
    opt_m = mg.optim.SGD(m.parameters(), lr=0.1)
    opt_t = T.optim.SGD(t.parameters(), lr=0.1)
    for _ in range(3):
        ym, yt = m(mg.tensor(x)), t(T.tensor(x))
        np.testing.assert_allclose(ym.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        opt_m.zero_grad()
        opt_t.zero_grad()
        (ym * ym).sum().backward()
        (yt * yt).sum().backward()
        for name, p in t.named_parameters():
            np.testing.assert_allclose(getattr(m, name).grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12)
        opt_m.step()
        opt_t.step()
    nn.utils.remove_weight_norm(m)
    T.nn.utils.remove_weight_norm(t)
    np.testing.assert_allclose(m.weight.detach().numpy(), t.weight.detach().numpy(), rtol=1e-10)
    assert isinstance(m.weight, nn.Parameter) and "weight_g" not in dict(m.named_parameters())


@pytest.mark.parametrize("kind", ["linear", "conv", "convT"])
@pytest.mark.parametrize("n_iter", [1, 3])
def test_spectral_norm_matches_torch(kind, n_iter):
    T = _torch()
    m, t, x = _mods(kind, T)
    nn.utils.spectral_norm(m, n_power_iterations=n_iter)
    T.nn.utils.spectral_norm(t, n_power_iterations=n_iter)
    tsd = {k: v.detach().numpy().copy() for k, v in t.state_dict().items()}
    assert sorted(m.state_dict()) == sorted(tsd)
    m.load_state_dict({k: mg.tensor(v) for k, v in tsd.items()})  # torch's random u, v
    opt_m = mg.optim.SGD(m.parameters(), lr=0.05)
    opt_t = T.optim.SGD(t.parameters(), lr=0.05)
    for _ in range(3):
        ym, yt = m(mg.tensor(x)), t(T.tensor(x))
        np.testing.assert_allclose(ym.detach().numpy(), yt.detach().numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(m.weight_u.numpy(), t.weight_u.numpy(), rtol=1e-9, atol=1e-12)
        opt_m.zero_grad()
        opt_t.zero_grad()
        (ym * ym).sum().backward()
        (yt * yt).sum().backward()
        for name, p in t.named_parameters():
            np.testing.assert_allclose(getattr(m, name).grad.numpy(), p.grad.numpy(), rtol=1e-8, atol=1e-11)
        opt_m.step()
        opt_t.step()
    m.eval()
    t.eval()
    u_before = m.weight_u.numpy().copy()
    np.testing.assert_allclose(m(mg.tensor(x)).detach().numpy(), t(T.tensor(x)).detach().numpy(), rtol=1e-9)
    np.testing.assert_array_equal(m.weight_u.numpy(), u_before)  # no power iteration in eval mode
    nn.utils.remove_spectral_norm(m)
    assert isinstance(m.weight, nn.Parameter) and "weight_u" not in m.state_dict()


def test_spectral_norm_bounds_the_largest_singular_value():
    mg.manual_seed(4)
    m = nn.utils.spectral_norm(nn.Linear(6, 5, dtype=mg.float64), n_power_iterations=30)
    m(mg.zeros(1, 6))
    s = np.linalg.svd(m.weight.detach().numpy(), compute_uv=False)
    np.testing.assert_allclose(s[0], 1.0, rtol=1e-6)


def test_gradcheck_through_norm_hooks():
    rng = np.random.default_rng(6)
    x = mg.tensor(rng.standard_normal((2, 3)))
    mg.manual_seed(7)
    m = nn.utils.weight_norm(nn.Linear(3, 2, dtype=mg.float64))
    g, v = m.weight_g, m.weight_v

    def f(g_, v_):
        m._parameters["weight_g"], m._parameters["weight_v"] = g_, v_
        return m(x)

    assert gradcheck(f, (mg.tensor(g.detach().numpy(), requires_grad=True),
                         mg.tensor(v.detach().numpy(), requires_grad=True)))
    s = nn.utils.spectral_norm(nn.Linear(3, 2, dtype=mg.float64))
    s.eval()  # u, v fixed: W / (u . W v) is a smooth function of W
    w0 = s.weight_orig.detach().numpy()

    def h(w):
        s._parameters["weight_orig"] = w
        return s(x)

    assert gradcheck(h, (mg.tensor(w0, requires_grad=True),))


def test_norm_hook_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(InvalidArgumentError, match="no parameter"):
        nn.utils.weight_norm(m, name="nope")
    nn.utils.weight_norm(m)
    with pytest.raises(InvalidArgumentError, match="two weight_norm"):
        nn.utils.weight_norm(m)
    with pytest.raises(InvalidArgumentError, match="not found"):
        nn.utils.remove_spectral_norm(m)
    with pytest.raises(InvalidArgumentError, match="n_power_iterations"):
        nn.utils.spectral_norm(nn.Linear(2, 2), n_power_iterations=-1)
    with pytest.raises(InvalidArgumentError, match="out of range"):
        nn.utils.spectral_norm(nn.Linear(2, 2), dim=3)


# ------------------------------------------------------------------ parametrize / parametrizations
def _train_compare(m, t, x, T, steps=3, rtol=1e-9):
    opt_m = mg.optim.SGD(m.parameters(), lr=0.05)
    opt_t = T.optim.SGD(t.parameters(), lr=0.05)
    for _ in range(steps):
        ym, yt = m(mg.tensor(x)), t(T.tensor(x))
        np.testing.assert_allclose(ym.detach().numpy(), yt.detach().numpy(), rtol=rtol, atol=1e-12)
        opt_m.zero_grad()
        opt_t.zero_grad()
        (ym * ym).sum().backward()
        (yt * yt).sum().backward()
        tparams = dict(t.named_parameters())
        for name, p in m.named_parameters():
            np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=rtol * 10, atol=1e-11,
                                       err_msg=name)
        opt_m.step()
        opt_t.step()


@pytest.mark.parametrize("kind", ["linear", "conv", "convT"])
@pytest.mark.parametrize("dim", [0, 1, None])
def test_parametrizations_weight_norm_matches_torch(kind, dim):
    T = _torch()
    m, t, x = _mods(kind, T)
    nn.utils.parametrizations.weight_norm(m, dim=dim)
    T.nn.utils.parametrizations.weight_norm(t, dim=dim)
    assert sorted(m.state_dict()) == sorted(t.state_dict())
    _train_compare(m, t, x, T)


@pytest.mark.parametrize("kind", ["linear", "conv", "convT"])
@pytest.mark.parametrize("n_iter", [1, 2])
def test_parametrizations_spectral_norm_matches_torch(kind, n_iter):
    T = _torch()
    m, t, x = _mods(kind, T)
    nn.utils.parametrizations.spectral_norm(m, n_power_iterations=n_iter)
    T.nn.utils.parametrizations.spectral_norm(t, n_power_iterations=n_iter)
    tsd = {k: v.detach().numpy().copy() for k, v in t.state_dict().items()}
    assert sorted(m.state_dict()) == sorted(tsd)
    m.load_state_dict({k: mg.tensor(v) for k, v in tsd.items()})
    _train_compare(m, t, x, T, rtol=1e-8)
    np.testing.assert_allclose(m.parametrizations.weight[0]._u.numpy(),
                               t.parametrizations.weight[0]._u.numpy(), rtol=1e-8)
    m.eval()
    t.eval()
    np.testing.assert_allclose(m(mg.tensor(x)).detach().numpy(), t(T.tensor(x)).detach().numpy(), rtol=1e-8)


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)

    def right_inverse(self, A):
        return A.triu()


class Scale(nn.Module):
    def forward(self, X):
        return 2.0 * X

    def right_inverse(self, X):
        return X / 2.0


class NoInverse(nn.Module):
    def forward(self, X):
        return X + 1.0


def test_custom_parametrization_chain_assign_cache_and_remove():
    T = _torch()
    import torch.nn.utils.parametrize as TP

    mg.manual_seed(0)
    m = nn.Linear(3, 3, dtype=mg.float64)
    t = T.nn.Linear(3, 3).double()
    with T.no_grad():
        t.weight.copy_(T_from(m.weight))
        t.bias.copy_(T_from(m.bias))

    class TSym(T.nn.Module):
        def forward(self, X):
            return X.triu() + X.triu(1).transpose(-1, -2)

        def right_inverse(self, A):
            return A.triu()

    class TScale(T.nn.Module):
        def forward(self, X):
            return 2.0 * X

        def right_inverse(self, X):
            return X / 2.0

    nn.utils.parametrize.register_parametrization(m, "weight", Symmetric())
    nn.utils.parametrize.register_parametrization(m, "weight", Scale())
    TP.register_parametrization(t, "weight", TSym())
    TP.register_parametrization(t, "weight", TScale())
    assert nn.utils.parametrize.is_parametrized(m, "weight") and not nn.utils.parametrize.is_parametrized(m, "bias")
    assert type(m).__name__ == type(t).__name__ == "ParametrizedLinear"
    assert nn.utils.parametrize.type_before_parametrizations(m) is nn.Linear
    w = m.weight.detach().numpy()
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(w, t.weight.detach().numpy(), rtol=1e-12)
    assert sorted(m.state_dict()) == sorted(t.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 3))
    _train_compare(m, t, x, T)
    a = np.arange(9.0).reshape(3, 3)
    m.weight = mg.tensor(a + a.T)  # stored as Symmetric.right_inverse(Scale.right_inverse(W))
    with T.no_grad():
        t.weight = T.tensor(a + a.T)
    np.testing.assert_allclose(m.parametrizations.weight.original.detach().numpy(),
                               t.parametrizations.weight.original.detach().numpy())
    with nn.utils.parametrize.cached():
        assert m.weight is m.weight
    assert m.weight is not m.weight
    nn.utils.parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    TP.remove_parametrizations(t, "weight", leave_parametrized=True)
    assert type(m) is nn.Linear and isinstance(m.weight, nn.Parameter) and "parametrizations" not in m._modules
    np.testing.assert_allclose(m.weight.detach().numpy(), t.weight.detach().numpy())
    with pytest.raises(InvalidArgumentError, match="no parametrization"):
        nn.utils.parametrize.remove_parametrizations(m, "weight")


def test_parametrization_errors():
    class Shrink(nn.Module):
        def forward(self, X):
            return X[:1]

    with pytest.raises(InvalidArgumentError, match="shape"):
        nn.utils.parametrize.register_parametrization(nn.Linear(2, 2), "weight", Shrink())
    m = nn.utils.parametrize.register_parametrization(nn.Linear(2, 2), "weight", Shrink(), unsafe=True)
    assert tuple(m.weight.shape) == (1, 2)
    with pytest.raises(InvalidArgumentError, match="no parameter or buffer"):
        nn.utils.parametrize.register_parametrization(nn.Linear(2, 2), "nope", Scale())
    with pytest.raises(InvalidArgumentError):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    m = nn.utils.parametrize.register_parametrization(nn.Linear(2, 2), "weight", NoInverse())
    with pytest.raises(InvalidArgumentError, match="right_inverse"):
        m.weight = mg.zeros(2, 2)


def test_gradcheck_through_parametrizations():
    rng = np.random.default_rng(8)
    x = mg.tensor(rng.standard_normal((2, 3)))
    mg.manual_seed(9)
    m = nn.utils.parametrizations.weight_norm(nn.Linear(3, 2, dtype=mg.float64), dim=None)
    plist = m.parametrizations.weight
    g0, v0 = plist.original0.detach().numpy(), plist.original1.detach().numpy()

    def f(g, v):
        plist._parameters["original0"], plist._parameters["original1"] = g, v
        return m(x)

    assert gradcheck(f, (mg.tensor(g0, requires_grad=True), mg.tensor(v0, requires_grad=True)))
    s = nn.utils.parametrizations.spectral_norm(nn.Linear(3, 2, dtype=mg.float64))
    s.eval()
    sl = s.parametrizations.weight

    def h(w):
        sl._parameters["original"] = w
        return s(x)

    assert gradcheck(h, (mg.tensor(sl.original.detach().numpy(), requires_grad=True),))


# ------------------------------------------------------------------ fusion, functional_call, paths
@pytest.mark.parametrize("kind", ["conv", "convT", "linear"])
def test_fusion_matches_torch_and_the_unfused_pair(kind):
    T = _torch()
    rng = np.random.default_rng(10)
    m, t, x = _mods(kind, T)
    C = 3
    mb = nn.BatchNorm1d(C, dtype=mg.float64) if kind == "linear" else nn.BatchNorm2d(C, dtype=mg.float64)
    tb = (T.nn.BatchNorm1d(C) if kind == "linear" else T.nn.BatchNorm2d(C)).double()
    stats = {"running_mean": rng.standard_normal(C), "running_var": rng.uniform(0.5, 2, C),
             "weight": rng.standard_normal(C), "bias": rng.standard_normal(C)}
    mb.load_state_dict({**{k: mg.tensor(v) for k, v in stats.items()}, "num_batches_tracked": mg.tensor(3)})
    tb.load_state_dict({**{k: T.tensor(v) for k, v in stats.items()}, "num_batches_tracked": T.tensor(3)})
    for mod in (m, mb, t, tb):
        mod.eval()
    if kind == "linear":
        fm, ft = nn.utils.fuse_linear_bn_eval(m, mb), T.nn.utils.fuse_linear_bn_eval(t, tb)
    else:
        fm = nn.utils.fuse_conv_bn_eval(m, mb, transpose=(kind == "convT"))
        ft = T.nn.utils.fuse_conv_bn_eval(t, tb, transpose=(kind == "convT"))
    np.testing.assert_allclose(fm.weight.detach().numpy(), ft.weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(fm.bias.detach().numpy(), ft.bias.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(fm(mg.tensor(x)).detach().numpy(), mb(m(mg.tensor(x))).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(InvalidArgumentError, match="eval"):
        nn.utils.fuse_conv_bn_eval(nn.Conv2d(1, 3, 1), nn.BatchNorm2d(3))


def test_functional_call_matches_torch():
    T = _torch()
    from torch.func import functional_call as tcall

    mg.manual_seed(11)
    m = nn.Sequential(nn.Linear(3, 4, dtype=mg.float64), nn.Tanh(), nn.Linear(4, 2, dtype=mg.float64))
    t = T.nn.Sequential(T.nn.Linear(3, 4), T.nn.Tanh(), T.nn.Linear(4, 2)).double()
    rng = np.random.default_rng(12)
    new = {"0.weight": rng.standard_normal((4, 3)), "2.bias": rng.standard_normal(2)}
    mp = {k: mg.tensor(v, requires_grad=True) for k, v in new.items()}
    tp = {k: T.tensor(v, requires_grad=True) for k, v in new.items()}
    with T.no_grad():
        for name, p in t.named_parameters():
            p.copy_(T_from(dict(m.named_parameters())[name]))
    x = rng.standard_normal((5, 3))
    ym = nn.utils.stateless.functional_call(m, mp, (mg.tensor(x),))
    yt = tcall(t, tp, (T.tensor(x),))
    np.testing.assert_allclose(ym.detach().numpy(), yt.detach().numpy(), rtol=1e-12)
    ym.sum().backward()
    yt.sum().backward()
    for k in new:
        np.testing.assert_allclose(mp[k].grad.numpy(), tp[k].grad.numpy(), rtol=1e-12)
    assert m[0].weight.grad is None and m[0].weight is dict(m.named_parameters())["0.weight"]  # restored
    with pytest.raises(InvalidArgumentError, match="not a parameter or buffer"):
        nn.utils.stateless.functional_call(m, {"0.nope": mg.zeros(1)}, (mg.tensor(x),))
    with pytest.raises(InvalidArgumentError, match="strict"):
        nn.utils.stateless.functional_call(m, mp, (mg.tensor(x),), strict=True)


def test_nn_utils_paths():
    from minigen.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_  # noqa: F401
    from minigen.nn.utils.convert_parameters import parameters_to_vector  # noqa: F401
    from minigen.nn.utils.parametrize import register_parametrization  # noqa: F401
    from minigen.nn.utils.parametrizations import spectral_norm, weight_norm  # noqa: F401

    assert clip_grad_norm_ is nn.utils.clip_grad_norm_
    conv = nn.Conv2d(1, 2, 3)
    assert nn.utils.convert_conv2d_weight_memory_format(conv, "channels_last") is conv
    with pytest.raises(InvalidArgumentError):
        nn.utils.convert_conv3d_weight_memory_format(3, None)
    assert isinstance(nn.utils.skip_init(nn.Linear, 2, 3, device="meta"), nn.Linear)
    p = nn.Parameter(mg.tensor([3.0, 4.0]))
    p.grad = mg.tensor([3.0, 4.0])
    total = nn.utils.get_total_norm([p.grad])
    nn.utils.clip_grads_with_norm_([p], 1.0, total)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)


def test_every_torch_nn_modules_path_of_a_layer_minigen_has():
    """``from torch.nn.modules.<file> import <Layer>`` ports for every layer minigen has."""
    _torch()
    import importlib
    import pkgutil

    import torch.nn.modules as tm

    missing = []
    for info in pkgutil.iter_modules(tm.__path__):
        if info.name.startswith("_"):
            continue
        tmod = importlib.import_module(f"torch.nn.modules.{info.name}")
        names = [n for n in getattr(tmod, "__all__", []) if hasattr(nn, n)]
        if not names:
            continue
        try:
            mmod = importlib.import_module(f"minigen.nn.modules.{info.name}")
        except ImportError:
            missing += [f"{info.name}.{n}" for n in names]
            continue
        missing += [f"{info.name}.{n}" for n in names if getattr(mmod, n, None) is not getattr(nn, n)]
    assert not missing, missing


# ------------------------------------------------------------------ padding layers
PADS = [(f"{kind}Pad{n}d", n) for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")
        for n in (1, 2, 3)]


@pytest.mark.parametrize("name,n", PADS)
@pytest.mark.parametrize("batched", [True, False])
def test_padding_layers_match_torch(name, n, batched):
    T = _torch()
    from minigen.nn.modules import padding as P

    rng = np.random.default_rng(n)
    shape = ((2,) if batched else ()) + (3,) + (4, 5, 6)[:n]
    x = rng.standard_normal(shape)
    pad = (1, 2, 2, 1, 0, 3)[:2 * n]
    args = (pad, 1.5) if name.startswith("Constant") else (pad,)
    m, t = getattr(P, name)(*args), getattr(T.nn, name)(*args)
    mx = mg.tensor(x, requires_grad=True)
    tx = T.tensor(x, requires_grad=True)
    ym, yt = m(mx), t(tx)
    np.testing.assert_array_equal(ym.detach().numpy(), yt.detach().numpy())
    w = rng.standard_normal(tuple(yt.shape))
    (ym * mg.tensor(w)).sum().backward()
    (yt * T.tensor(w)).sum().backward()
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert repr(m) == repr(t) and tuple(m.padding) == tuple(t.padding)


@pytest.mark.parametrize("name,n", PADS[6:])
def test_gradcheck_padding_layers(name, n):
    from minigen.nn.modules import padding as P

    x = mg.tensor(np.random.default_rng(0).standard_normal((1, 2) + (3, 3, 4)[:n]), requires_grad=True)
    assert gradcheck(getattr(P, name)((1, 2, 1, 0, 2, 1)[:2 * n]), (x,))


def test_padding_errors():
    from minigen.nn.modules import padding as P

    with pytest.raises(InvalidArgumentError, match="4 values"):
        P.ReflectionPad2d((1, 2))
    with pytest.raises(ShapeError, match="3-d or 4-d"):
        P.ZeroPad2d(1)(mg.zeros(5))
    with pytest.raises(InvalidArgumentError, match="non-negative"):
        P.ReplicationPad1d(-1)
