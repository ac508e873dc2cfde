"""Transformer encoder-decoder: the toy data, causality / padding invariances, greedy decoding, torch oracle."""
import math

import numpy as np
import pytest

import minigen as mg
from conftest import requires_torch
from minigen.models.seq2seq import BOS, EOS, PAD, Seq2SeqTransformer
from minigen.recipes.seq2seq import Seq2SeqConfig, exact_match, reverse_batch, train_seq2seq


def test_reverse_batch_layout():
    src, tin, tout = reverse_batch(64, 1, 5, mg.Generator().manual_seed(0))
    src, tin, tout = src.numpy(), tin.numpy(), tout.numpy()
    assert src.shape == (64, 5) and tin.shape == tout.shape == (64, 6)
    for s, i, o in zip(src, tin, tout):
        digits = s[s != PAD]
        n = len(digits)
        assert 1 <= n <= 5 and (s[n:] == PAD).all() and (digits < 10).all()
        assert o[:n].tolist() == digits[::-1].tolist() and o[n] == EOS and (o[n + 1:] == PAD).all()
        assert i[0] == BOS and i[1:n + 1].tolist() == o[:n].tolist()  # teacher forcing: shifted right
    _, _, so = reverse_batch(8, 3, 3, mg.Generator().manual_seed(1), task="sort")
    s2, _, _ = reverse_batch(8, 3, 3, mg.Generator().manual_seed(1), task="sort")
    assert (so.numpy()[:, :3] == np.sort(s2.numpy(), 1)).all()


def _model():
    mg.manual_seed(0)
    return Seq2SeqTransformer(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32,
                              max_len=16).double()


def test_causal_decoder_and_padding_invariance():
    m = _model()
    src = np.array([[3, 1, 4, 1, PAD, PAD]])
    tin = np.array([[BOS, 1, 4, 1, 3]])
    a = m(src, tin).detach().numpy()
    tin2 = tin.copy()
    tin2[0, 3] = 9
    b = m(src, tin2).detach().numpy()
    np.testing.assert_array_equal(a[0, :3], b[0, :3])  # positions < 3 cannot see target token 3
    assert np.abs(a[0, 3:] - b[0, 3:]).max() > 1e-6
    # extra padding in the source changes nothing (padding keys are masked out of every attention)
    c = m(np.array([[3, 1, 4, 1, PAD, PAD, PAD, PAD]]), tin).detach().numpy()
    np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-12)
    # but every real source token matters (cross-attention)
    d = m(np.array([[3, 1, 4, 2, PAD, PAD]]), tin).detach().numpy()
    assert np.abs(a - d).max() > 1e-6


def test_loss_is_teacher_forced_cross_entropy_over_non_pad():
    m = _model()
    src, tin, tout = reverse_batch(4, 1, 4, mg.Generator().manual_seed(3))
    z = m(src, tin).detach().numpy()
    lp = z - z.max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    t = tout.numpy()
    mask = t != PAD
    ref = -np.take_along_axis(lp, np.where(mask, t, 0)[..., None], -1)[..., 0][mask].mean()
    assert math.isclose(m.loss(src, tin, tout).item(), ref, rel_tol=1e-10)


def test_greedy_decode_by_hand():
    m = _model()
    src = np.array([[5, 2, 7, PAD], [1, PAD, PAD, PAD]])
    out = m.greedy_decode(src, 5)
    for b in range(2):
        ys = [BOS]
        for _ in range(5):
            nxt = int(m(src[b:b + 1], np.array([ys])).detach().numpy()[0, -1].argmax())
            ys.append(nxt)
            if nxt == EOS:
                break
        want = ys[1:] + [PAD] * (6 - len(ys))
        assert out[b].tolist() == want
    r = exact_match(m, mg.tensor(src), np.array([[7, 2, 5, EOS, PAD], [1, EOS, PAD, PAD, PAD]]))
    assert 0.0 <= r["exact_match"] <= 1.0 and 0.0 <= r["token_acc"] <= 1.0


@requires_torch
@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_matches_torch_transformer_with_same_weights():
    import torch

    m = _model()
    tm = torch.nn.Transformer(16, 2, 1, 1, 32, dropout=0.0, batch_first=True, norm_first=True).double()
    sd = {k[len("transformer."):]: torch.from_numpy(v.numpy()) for k, v in m.state_dict().items()
          if k.startswith("transformer.")}
    tm.load_state_dict(sd)
    src = np.array([[3, 1, 4, 1, PAD], [2, 7, PAD, PAD, PAD]])
    tin = np.array([[BOS, 1, 4, 1], [BOS, 7, 2, PAD]])
    E_s, E_t = m.src_embed.weight.detach().numpy(), m.tgt_embed.weight.detach().numpy()
    pe = m.pos.pe.numpy().astype(np.float64)
    xs = torch.from_numpy(E_s[src] * 4.0 + pe[:5])  # sqrt(d_model) = 4
    xt = torch.from_numpy(E_t[tin] * 4.0 + pe[:4])
    y = tm(xs, xt, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64),
           src_key_padding_mask=torch.from_numpy(src == PAD), memory_key_padding_mask=torch.from_numpy(src == PAD))
    ref = y.detach().numpy() @ m.out.weight.detach().numpy().T + m.out.bias.detach().numpy()
    np.testing.assert_allclose(m(src, tin).detach().numpy(), ref, rtol=1e-9, atol=1e-10)


def test_training_learns_short_reversal(tmp_path):
    cfg = Seq2SeqConfig(min_len=1, max_len=2, d_model=32, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                        dim_feedforward=64, batch_size=32, max_iters=60, warmup_iters=10, lr=5e-3,
                        eval_interval=60, eval_size=100, log_interval=10)
    _, s = train_seq2seq(cfg, str(tmp_path), progress=False, n_examples=3)
    assert s["step"] == 60 and s["token_acc"] > 0.5  # chance is about 1/11; 0.66 measured
    assert (tmp_path / "samples.txt").exists() and (tmp_path / "loss_curve.png").exists()
