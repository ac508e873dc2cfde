"""char-RNN/LSTM/GRU LM: one step of each cell against its equation, state carrying, sampling, training."""
import math
import os

import numpy as np
import pytest

import minigen as mg
from minigen.models.char_rnn import CharRNN
from minigen.recipes.char_rnn import CharRNNConfig, evaluate_stream, train_char_rnn


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _params(model):
    return {k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()}


def _onehot(i, V):
    e = np.zeros(V)
    e[i] = 1.0
    return e


def test_lstm_steps_match_gate_equations():
    V, H = 4, 3
    m = CharRNN(V, H, num_layers=1, cell="lstm", generator=mg.Generator().manual_seed(0)).double()
    P = _params(m)
    # the forget-gate biases start at 1 in total (char-rnn's initialisation)
    np.testing.assert_allclose(P["rnn.bias_ih_l0"][H:2 * H] + P["rnn.bias_hh_l0"][H:2 * H], 1.0)
    Wi, Wh, b = P["rnn.weight_ih_l0"], P["rnn.weight_hh_l0"], P["rnn.bias_ih_l0"] + P["rnn.bias_hh_l0"]
    seq = [2, 0, 3]
    logits, (hn, cn) = m(mg.tensor([seq]))
    h, c = np.zeros(H), np.zeros(H)
    for t, ch in enumerate(seq):
        z = Wi @ _onehot(ch, V) + Wh @ h + b          # [i, f, g, o] pre-activations
        i, f, g, o = _sig(z[:H]), _sig(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), _sig(z[3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        y = P["decoder.weight"] @ h + P["decoder.bias"]
        np.testing.assert_allclose(logits.detach().numpy()[0, t], y, rtol=1e-10)
    np.testing.assert_allclose(hn.detach().numpy()[0, 0], h, rtol=1e-10)
    np.testing.assert_allclose(cn.detach().numpy()[0, 0], c, rtol=1e-10)


def test_rnn_step_is_tanh_of_concatenated_weights():
    V, H = 5, 4
    m = CharRNN(V, H, num_layers=1, cell="rnn").double()
    P = _params(m)
    W_h = np.concatenate([P["rnn.weight_hh_l0"], P["rnn.weight_ih_l0"]], axis=1)  # W_h [h, x]
    b_h = P["rnn.bias_ih_l0"] + P["rnn.bias_hh_l0"]
    seq = [1, 4, 4, 0]
    logits, hn = m(mg.tensor([seq]))
    h = np.zeros(H)
    for ch in seq:
        h = np.tanh(W_h @ np.concatenate([h, _onehot(ch, V)]) + b_h)
    np.testing.assert_allclose(hn.detach().numpy()[0, 0], h, rtol=1e-10)
    np.testing.assert_allclose(logits.detach().numpy()[0, -1], P["decoder.weight"] @ h + P["decoder.bias"], rtol=1e-10)


def test_gru_step_matches_equations():
    V, H = 3, 2
    m = CharRNN(V, H, num_layers=1, cell="gru").double()
    P = _params(m)
    Wi, Wh, bi, bh = P["rnn.weight_ih_l0"], P["rnn.weight_hh_l0"], P["rnn.bias_ih_l0"], P["rnn.bias_hh_l0"]
    seq = [0, 2, 1]
    _, hn = m(mg.tensor([seq]))
    h = np.zeros(H)
    for ch in seq:
        xi, hh = Wi @ _onehot(ch, V) + bi, Wh @ h + bh
        r, z = _sig(xi[:H] + hh[:H]), _sig(xi[H:2 * H] + hh[H:2 * H])
        n = np.tanh(xi[2 * H:] + r * hh[2 * H:])
        h = (1 - z) * n + z * h
    np.testing.assert_allclose(hn.detach().numpy()[0, 0], h, rtol=1e-10)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_carried_state_equals_one_long_pass(cell):
    m = CharRNN(6, 5, num_layers=2, cell=cell).double()
    x = np.random.default_rng(0).integers(0, 6, size=(2, 9))
    full, _ = m(mg.tensor(x))
    a, st = m(mg.tensor(x[:, :4]))
    b, _ = m(mg.tensor(x[:, 4:]), CharRNN.detach_state(st))
    np.testing.assert_allclose(np.concatenate([a.detach().numpy(), b.detach().numpy()], 1), full.detach().numpy(),
                               rtol=1e-12)
    # evaluate_stream over one row and one chunk = the mean cross-entropy of that single pass
    ids = x[0]
    lg, _ = m(mg.tensor(ids[None, :-1]))
    z = lg.detach().numpy()[0]
    lp = z - z.max(-1, keepdims=True) - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
    ref = -lp[np.arange(8), ids[1:]].mean()
    assert math.isclose(evaluate_stream(m, ids, batch_size=1, seq_len=8), ref, rel_tol=1e-10)


def test_generate_greedy_by_hand():
    m = CharRNN(5, 6, num_layers=1, cell="lstm")
    out = m.generate([1, 2], 4, temperature=0)
    seq = [1, 2]
    for _ in range(4):
        logits, _ = m(mg.tensor([seq]))
        seq.append(int(logits.detach().numpy()[0, -1].argmax()))
    assert out == seq
    with pytest.raises(ValueError, match="priming"):
        m.generate([], 3)
    with pytest.raises(ValueError, match="cell"):
        CharRNN(5, 6, cell="transformer")


def test_training_learns_and_resumes_exactly(tmp_path):
    data = np.array(list(range(6)) * 300, dtype=np.int64)
    tr, va = data[:1500], data[1500:]
    kw = dict(hidden_size=12, num_layers=1, batch_size=4, seq_len=8, eval_batch_size=2, log_interval=2, lr=1e-2)
    _, full, _ = train_char_rnn(CharRNNConfig(max_iters=8, eval_interval=4, **kw), tr, va, 6, str(tmp_path / "a"),
                                progress=False, sample_tokens=0)
    _, part, _ = train_char_rnn(CharRNNConfig(max_iters=4, eval_interval=4, **kw), tr, va, 6, str(tmp_path / "b"),
                                progress=False, sample_tokens=0)
    _, res, text = train_char_rnn(CharRNNConfig(max_iters=8, eval_interval=4, **kw), tr, va, 6,
                                  str(tmp_path / "b"), resume=True, progress=False, sample_tokens=10,
                                  decode=lambda ids: "".join(map(str, ids)))
    assert part["step"] == 4 and res["step"] == 8
    assert res["val_loss"] == full["val_loss"]  # the carried hidden state is restored too
    a = mg.load(str(tmp_path / "a" / "checkpoint.safetensors"))
    b = mg.load(str(tmp_path / "b" / "checkpoint.safetensors"))
    for k in a["model"]:
        np.testing.assert_array_equal(np.asarray(a["model"][k]), np.asarray(b["model"][k]), err_msg=k)
    assert len(text) == 11 and os.path.exists(tmp_path / "b" / "loss_curve.png")
    _, s, _ = train_char_rnn(CharRNNConfig(max_iters=60, eval_interval=60, **kw), tr, va, 6, str(tmp_path / "c"),
                             progress=False, sample_tokens=0)
    assert s["val_loss"] < 0.5  # the cycle is learnt (uniform guessing would be log 6 = 1.79)


@pytest.mark.parametrize("where", ["forward", "backward"])
@pytest.mark.parametrize("stop_at", [3, 6])
def test_interrupt_inside_a_step_resumes_bit_identically(tmp_path, monkeypatch, stop_at, where):
    """A KeyboardInterrupt in the forward or the backward of step ``stop_at``: the Trainer saves the state from
    before that step (the carried hidden state included, which only advances with the optimizer's update, not
    with the forward); resuming gives exactly the uninterrupted run."""
    import minigen.recipes.char_rnn as R

    data = np.array(list(range(6)) * 300, dtype=np.int64)
    tr, va = data[:1500], data[1500:]
    kw = dict(hidden_size=8, num_layers=1, batch_size=4, seq_len=8, eval_batch_size=2, log_interval=2, lr=1e-2,
              max_iters=8, eval_interval=4)
    _, full, _ = train_char_rnn(CharRNNConfig(**kw), tr, va, 6, str(tmp_path / "a"), progress=False, sample_tokens=0)
    real_build = R.build_model

    def build_with_interrupt(cfg, vocab_size):
        model = real_build(cfg, vocab_size)
        calls = [0]

        def tick():
            calls[0] += 1
            if calls[0] == stop_at:
                raise KeyboardInterrupt

        if where == "forward":
            forward = model.forward

            def interrupting_forward(x, state=None):
                if model.training:
                    tick()
                return forward(x, state)

            model.forward = interrupting_forward
        else:
            def interrupting_hook(g):
                tick()
                return g

            model.decoder.bias.register_hook(interrupting_hook)   # one call per backward
        return model

    monkeypatch.setattr(R, "build_model", build_with_interrupt)
    _, part, _ = train_char_rnn(CharRNNConfig(**kw), tr, va, 6, str(tmp_path / "b"), progress=False, sample_tokens=0)
    assert part["interrupted"] and part["step"] == stop_at - 1
    monkeypatch.setattr(R, "build_model", real_build)
    _, res, _ = train_char_rnn(CharRNNConfig(**kw), tr, va, 6, str(tmp_path / "b"), resume=True, progress=False,
                               sample_tokens=0)
    assert res["step"] == 8 and res["val_loss"] == full["val_loss"]
    a = mg.load(str(tmp_path / "a" / "checkpoint.safetensors"))
    b = mg.load(str(tmp_path / "b" / "checkpoint.safetensors"))
    for k in a["model"]:
        np.testing.assert_array_equal(np.asarray(a["model"][k]), np.asarray(b["model"][k]), err_msg=k)
    np.testing.assert_array_equal(np.asarray(a["extra"]["h"]), np.asarray(b["extra"]["h"]))
