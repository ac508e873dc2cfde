"""MultiheadAttention, Transformer layers/stacks and positional encodings: formulas by hand, gradcheck,
and torch.nn with the same weights."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen import nn
from minigen.errors import InvalidArgumentError, ShapeError
from conftest import requires_torch
from nn_testutil import compare_with_torch, gradcheck_module

seeds = st.integers(0, 2 ** 31 - 1)


def rnd(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def t64(a, grad=True):
    return mg.tensor(a, dtype=mg.float64, requires_grad=grad)


def test_mha_single_head_by_hand():
    E = 3
    m = nn.MultiheadAttention(E, 1, batch_first=True, dtype=mg.float64)
    W = m.in_proj_weight.detach().numpy()
    b = rnd(9, 3 * E)
    with mg.no_grad():
        m.in_proj_bias.array[...] = b
    Wo, bo = m.out_proj.weight.detach().numpy(), m.out_proj.bias.detach().numpy()
    q_in, kv_in = rnd(1, 1, 2, E), rnd(2, 1, 4, E)
    q = q_in[0] @ W[:E].T + b[:E]
    k = kv_in[0] @ W[E:2 * E].T + b[E:2 * E]
    v = kv_in[0] @ W[2 * E:].T + b[2 * E:]
    s = q @ k.T / math.sqrt(E)
    s[:, 1] = -np.inf  # key 1 padded
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    want = p @ v @ Wo.T + bo
    kpm = mg.tensor([[False, True, False, False]])
    out, w = m(t64(q_in, False), t64(kv_in, False), t64(kv_in, False), key_padding_mask=kpm)
    np.testing.assert_allclose(out.detach().numpy()[0], want, rtol=1e-10)
    np.testing.assert_allclose(w.detach().numpy()[0], p, rtol=1e-10)
    out2, w2 = m(t64(q_in, False), t64(kv_in, False), t64(kv_in, False), key_padding_mask=kpm, need_weights=False)
    assert w2 is None
    np.testing.assert_allclose(out2.detach().numpy()[0], want, rtol=1e-10)  # the SDPA path agrees


def test_mha_gradcheck():
    m = nn.MultiheadAttention(4, 2, dtype=mg.float64)
    x = t64(rnd(0, 3, 2, 4))
    mask = mg.tensor(np.triu(np.ones((3, 3), bool), 1))
    gradcheck_module(m, x, x, x)
    from minigen.testing import gradcheck

    gradcheck(lambda x, *p: m(x, x, x, attn_mask=mask, need_weights=False)[0], (x, *m.parameters()))
    c = nn.MultiheadAttention(4, 2, kdim=3, vdim=2, batch_first=True, dtype=mg.float64)
    gradcheck_module(c, t64(rnd(1, 2, 2, 4)), t64(rnd(2, 2, 3, 3)), t64(rnd(3, 2, 3, 2)))


@requires_torch
@given(batch_first=st.booleans(), need_weights=st.booleans(), average=st.booleans(), bias=st.booleans(),
       mask_kind=st.sampled_from([None, "bool", "float", "causal", "3d"]), kpm=st.sampled_from([None, "bool", "float"]),
       seed=seeds)
def test_mha_self_attention_vs_torch(batch_first, need_weights, average, bias, mask_kind, kpm, seed):
    import torch

    E, H, L, N = 4, 2, 3, 2
    m = nn.MultiheadAttention(E, H, bias=bias, batch_first=batch_first)
    t = torch.nn.MultiheadAttention(E, H, bias=bias, batch_first=batch_first)
    x = rnd(seed, N, L, E) if batch_first else rnd(seed, L, N, E)
    rng = np.random.default_rng(seed)
    am = None
    if mask_kind == "bool" or mask_kind == "causal":
        am = np.triu(np.ones((L, L), bool), 1)
    elif mask_kind == "float":
        am = rng.standard_normal((L, L))
    elif mask_kind == "3d":
        am = rng.standard_normal((N * H, L, L))
    kp = None
    if kpm == "bool":
        kp = np.zeros((N, L), bool)
        kp[0, -1] = True
    elif kpm == "float":
        kp = rng.standard_normal((N, L))
    causal = mask_kind == "causal"

    def run(mod, xs, lib):
        conv = (lambda a: None if a is None else (mg.tensor(a) if lib == "mg" else torch.tensor(a)))
        return mod(xs[0], xs[0], xs[0], key_padding_mask=conv(kp), attn_mask=conv(am), need_weights=need_weights,
                   average_attn_weights=average, is_causal=causal)

    compare_with_torch(m, t, [x], call=lambda m, xs: run(m, xs, "mg"), tcall=lambda t, xs: run(t, xs, "torch"))


@requires_torch
def test_mha_cross_attention_kdim_vdim_unbatched_vs_torch():
    import torch

    m = nn.MultiheadAttention(4, 2, kdim=3, vdim=5)
    t = torch.nn.MultiheadAttention(4, 2, kdim=3, vdim=5)
    assert [k for k, _ in m.named_parameters()] == [k for k, _ in t.named_parameters()]
    q, k, v = rnd(0, 2, 3, 4), rnd(1, 6, 3, 3), rnd(2, 6, 3, 5)
    compare_with_torch(m, t, [q, k, v])
    compare_with_torch(nn.MultiheadAttention(4, 4), torch.nn.MultiheadAttention(4, 4),
                       [rnd(3, 2, 4), rnd(4, 5, 4), rnd(5, 5, 4)])  # unbatched (L, E)
    assert list(nn.MultiheadAttention(4, 2).state_dict()) == list(torch.nn.MultiheadAttention(4, 2).state_dict())


def test_mha_errors_and_causal_shortcut():
    with pytest.raises(InvalidArgumentError, match="divisible"):
        nn.MultiheadAttention(5, 2)
    m = nn.MultiheadAttention(4, 2, batch_first=True).double()
    x = t64(rnd(0, 2, 3, 4), False)
    with pytest.raises(ShapeError, match="key_padding_mask"):
        m(x, x, x, key_padding_mask=mg.zeros(2, 4, dtype=mg.bool))
    with pytest.raises(ShapeError, match="attn_mask"):
        m(x, x, x, attn_mask=mg.zeros(2, 2))
    # is_causal without a mask == an explicit causal mask, on both paths
    causal = nn.modules.transformer.causal_mask(3, dtype=mg.float64)
    a = m(x, x, x, attn_mask=causal)[0].detach().numpy()
    np.testing.assert_allclose(m(x, x, x, is_causal=True)[0].detach().numpy(), a, rtol=1e-12)
    np.testing.assert_allclose(m(x, x, x, is_causal=True, need_weights=False)[0].detach().numpy(), a, rtol=1e-12)
    # query 0 sees only key 0: changing later keys does not change output 0
    x2 = x.detach().numpy().copy()
    x2[:, 1:] += 1
    b = m(x, t64(x2, False), t64(x2, False), is_causal=True)[0].detach().numpy()
    np.testing.assert_allclose(b[:, 0], a[:, 0], rtol=1e-12)


@requires_torch
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_decoder_layers_vs_torch(norm_first, activation, batch_first):
    import torch

    kw = dict(dim_feedforward=6, dropout=0.0, activation=activation, batch_first=batch_first, norm_first=norm_first)
    src = rnd(0, 2, 3, 4) if batch_first else rnd(0, 3, 2, 4)
    tgt = rnd(1, 2, 2, 4) if batch_first else rnd(1, 2, 2, 4)
    mask = np.triu(np.full((2, 2), -np.inf), 1)
    compare_with_torch(nn.TransformerEncoderLayer(4, 2, **kw), torch.nn.TransformerEncoderLayer(4, 2, **kw), [src])
    conv = {"mg": mg.tensor, "torch": torch.tensor}

    def dec(lib):
        return lambda mod, xs: mod(xs[0], xs[1], tgt_mask=conv[lib](mask))

    compare_with_torch(nn.TransformerDecoderLayer(4, 2, **kw), torch.nn.TransformerDecoderLayer(4, 2, **kw),
                       [tgt, src], call=dec("mg"), tcall=dec("torch"))


@requires_torch
def test_stacks_vs_torch():
    import torch

    kw = dict(dim_feedforward=5, dropout=0.0, batch_first=True)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, **kw), 2, norm=nn.LayerNorm(4))
    tenc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(4, 2, **kw), 2, norm=torch.nn.LayerNorm(4),
                                       enable_nested_tensor=False)
    assert list(enc.state_dict()) == list(tenc.state_dict())
    # deep copies: both layers start equal (as torch)
    np.testing.assert_array_equal(enc.layers[0].linear1.weight.detach().numpy(),
                                  enc.layers[1].linear1.weight.detach().numpy())
    src = rnd(0, 2, 3, 4)
    kpm = np.array([[False, False, True], [False, False, False]])
    compare_with_torch(enc, tenc, [src], call=lambda m, xs: m(xs[0], src_key_padding_mask=mg.tensor(kpm)),
                       tcall=lambda m, xs: m(xs[0], src_key_padding_mask=torch.tensor(kpm)))
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, **kw), 2)
    tdec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(4, 2, **kw), 2)
    mask = nn.Transformer.generate_square_subsequent_mask(2, dtype=mg.float64)
    compare_with_torch(dec, tdec, [rnd(1, 2, 2, 4), src],
                       call=lambda m, xs: m(xs[0], xs[1], tgt_mask=mask),
                       tcall=lambda m, xs: m(xs[0], xs[1], tgt_mask=torch.tensor(mask.numpy())))
    full = nn.Transformer(4, 2, 1, 1, 5, dropout=0.0)
    tfull = torch.nn.Transformer(4, 2, 1, 1, 5, dropout=0.0)
    assert list(full.state_dict()) == list(tfull.state_dict())
    compare_with_torch(full, tfull, [rnd(2, 3, 2, 4), rnd(3, 2, 2, 4)])
    np.testing.assert_array_equal(mask.numpy(), torch.nn.Transformer.generate_square_subsequent_mask(2).numpy())


def test_encoder_layer_gradcheck_and_dropout_modes():
    layer = nn.TransformerEncoderLayer(2, 2, dim_feedforward=2, dropout=0.0, norm_first=True, activation="gelu",
                                       dtype=mg.float64)
    gradcheck_module(layer, t64(rnd(0, 3, 1, 2)))
    dec = nn.TransformerDecoderLayer(2, 1, dim_feedforward=2, dropout=0.0, batch_first=True, dtype=mg.float64)
    gradcheck_module(dec, t64(rnd(4, 1, 2, 2)), t64(rnd(5, 1, 3, 2)))
    gradcheck_module(nn.SinusoidalPositionalEncoding(4, max_len=5).double(), t64(rnd(6, 3, 1, 4)))
    drop = nn.TransformerEncoderLayer(4, 2, dim_feedforward=3, dropout=0.5).double()
    x = t64(rnd(1, 3, 2, 4), False)
    drop.eval()
    np.testing.assert_array_equal(drop(x).detach().numpy(), drop(x).detach().numpy())
    drop.train()
    assert not np.allclose(drop(x).detach().numpy(), drop.eval()(x).detach().numpy())


def test_sinusoidal_positional_encoding():
    pe = nn.SinusoidalPositionalEncoding(6, max_len=10, batch_first=True).double()
    assert "pe" not in pe.state_dict()  # recomputed, not saved
    x = mg.zeros(1, 4, 6, dtype=mg.float64)
    y = pe(x).detach().numpy()[0]
    for pos in range(4):
        for i in range(3):
            assert y[pos, 2 * i] == pytest.approx(math.sin(pos / 10000 ** (2 * i / 6)), abs=1e-7)
            assert y[pos, 2 * i + 1] == pytest.approx(math.cos(pos / 10000 ** (2 * i / 6)), abs=1e-7)
    np.testing.assert_allclose(pe(x[:, :2], offset=2).detach().numpy()[0], y[2:4])
    tm = nn.SinusoidalPositionalEncoding(5, max_len=8)  # odd d_model, time-major
    assert tm(mg.zeros(3, 2, 5)).shape == (3, 2, 5)
    with pytest.raises(ShapeError, match="max_len"):
        pe(mg.zeros(1, 11, 6))


def test_learned_positional_encoding():
    lpe = nn.LearnedPositionalEncoding(8, 4, batch_first=True, dtype=mg.float64)
    assert list(lpe.state_dict()) == ["weight"]
    assert abs(lpe.weight.detach().numpy().std() - 0.02) < 0.01
    x = t64(rnd(0, 2, 5, 4))
    y = lpe(x)
    np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy() + lpe.weight.detach().numpy()[None, :5])
    gradcheck_module(lpe, x)
    y.sum().backward()
    g = lpe.weight.grad.numpy()
    assert (g[:5] == 2).all() and not g[5:].any()  # rows past T get no gradient
    with pytest.raises(ShapeError):
        lpe(mg.zeros(1, 9, 4, dtype=mg.float64))
