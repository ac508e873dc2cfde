"""GPT: attention and the whole forward pass against the equations in NumPy, causality, the KV cache, sampling,
training and resuming from any stop point."""
import math
import os

import numpy as np
import pytest

import minigen as mg
from conftest import requires_torch
from minigen.models.gpt import GPT, GPTConfig, CausalSelfAttention, KVCache
from minigen.recipes.gpt import TrainConfig, train_gpt

_erf = np.vectorize(math.erf)


def _ln(x, g, b=None, eps=1e-5):
    y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * g
    return y if b is None else y + b


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _attention_ref(x, w_attn, w_proj, H):
    """concat_h softmax(q_h k_h^T / sqrt(d) + M) v_h, then W_o; x: (T, C); M_ij = -inf for j > i."""
    T, C = x.shape
    d = C // H
    q, k, v = np.split(x @ w_attn.T, 3, axis=-1)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    heads = []
    for h in range(H):
        sl = slice(h * d, (h + 1) * d)
        p = _softmax(q[:, sl] @ k[:, sl].T / math.sqrt(d) + mask)
        heads.append(p @ v[:, sl])
    return np.concatenate(heads, -1) @ w_proj.T


def _randomise(model, seed=0):
    rng = np.random.default_rng(seed)
    with mg.no_grad():
        for _, p in model.named_parameters():
            p.array[...] = rng.normal(0, 0.5, size=p.shape)
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def test_attention_by_hand_two_tokens():
    # C = 2, one head, W_q = W_k = W_v = W_o = I: q = k = v = x;  out_0 = x_0;
    # out_1 = softmax([x1.x0, x1.x1] / sqrt 2) . [x0, x1]
    att = CausalSelfAttention(GPTConfig(n_embd=2, n_head=1)).double()
    with mg.no_grad():
        att.c_attn.weight.array[...] = np.vstack([np.eye(2)] * 3)
        att.c_proj.weight.array[...] = np.eye(2)
    x = np.array([[1.0, 0.0], [1.0, 2.0]])
    y = att(mg.tensor(x[None])).detach().numpy()[0]   # (B, T, C) = (1, 2, 2)
    s = np.array([1.0, 5.0]) / math.sqrt(2)
    w = np.exp(s) / np.exp(s).sum()
    np.testing.assert_allclose(y, [x[0], w[0] * x[0] + w[1] * x[1]], rtol=1e-12)


def test_multihead_attention_matches_equation():
    cfg = GPTConfig(n_embd=8, n_head=2)
    att = CausalSelfAttention(cfg).double()
    st = _randomise(att)
    x = np.random.default_rng(1).normal(size=(2, 5, 8))
    y = att(mg.tensor(x)).detach().numpy()   # x: (B, T, C) = (2, 5, 8)
    for b in range(2):
        np.testing.assert_allclose(y[b], _attention_ref(x[b], st["c_attn.weight"], st["c_proj.weight"], 2), rtol=1e-10)


@pytest.mark.parametrize("bias,tie", [(False, True), (True, False)])
def test_gpt_forward_matches_numpy_reference(bias, tie):
    cfg = GPTConfig(vocab_size=7, block_size=6, n_layer=2, n_head=2, n_embd=8, bias=bias, tie_weights=tie)
    model = GPT(cfg).double()
    st = _randomise(model, 3)
    idx = np.array([[1, 4, 0, 6, 2], [3, 3, 5, 0, 1]])
    tgt = np.array([[4, 0, 6, 2, 2], [3, 5, 0, 1, 6]])
    logits, loss = model(mg.tensor(idx), mg.tensor(tgt))
    B = lambda k: st.get(k) if bias else None  # noqa: E731
    ref = np.zeros(logits.shape)
    for b in range(2):
        x = st["wte.weight"][idx[b]] + st["wpe.weight"][:5]
        for i in range(2):
            p = f"h.{i}."
            a = _ln(x, st[p + "ln_1.weight"], B(p + "ln_1.bias"))
            if bias:  # biases of q/k/v and of the output projection
                qkv_b, o_b = st[p + "attn.c_attn.bias"], st[p + "attn.c_proj.bias"]
                T, C = a.shape
                q, k, v = np.split(a @ st[p + "attn.c_attn.weight"].T + qkv_b, 3, -1)
                mask = np.triu(np.full((T, T), -np.inf), 1)
                heads = [_softmax(q[:, s] @ k[:, s].T / 2.0 + mask) @ v[:, s] for s in (slice(0, 4), slice(4, 8))]
                x = x + np.concatenate(heads, -1) @ st[p + "attn.c_proj.weight"].T + o_b
            else:
                x = x + _attention_ref(a, st[p + "attn.c_attn.weight"], st[p + "attn.c_proj.weight"], 2)
            m = _ln(x, st[p + "ln_2.weight"], B(p + "ln_2.bias"))
            hdn = m @ st[p + "mlp.c_fc.weight"].T + (st[p + "mlp.c_fc.bias"] if bias else 0)
            gelu = 0.5 * hdn * (1 + _erf(hdn / math.sqrt(2)))
            x = x + gelu @ st[p + "mlp.c_proj.weight"].T + (st[p + "mlp.c_proj.bias"] if bias else 0)
        head = st["wte.weight"] if tie else st["lm_head.weight"]
        ref[b] = _ln(x, st["ln_f.weight"], B("ln_f.bias")) @ head.T
    np.testing.assert_allclose(logits.detach().numpy(), ref, rtol=1e-9, atol=1e-12)
    # loss = mean_t -log softmax(logits_t)[target_t]
    lp = ref - ref.max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    nll = -np.take_along_axis(lp, tgt[..., None], -1).mean()
    assert math.isclose(loss.item(), nll, rel_tol=1e-10)


def test_causality_weight_tying_and_param_groups():
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    model = GPT(cfg)
    assert model.lm_head.weight is model.wte.weight
    n_total = sum(p.numel() for p in model.parameters())
    assert n_total == 11 * 8 + 8 * 8 + (8 * 24 + 8 * 8 + 8 * 32 + 32 * 8) + 3 * 8  # tied head counted once
    idx = np.array([[1, 2, 3, 4, 5]])
    a = model(mg.tensor(idx))[0].detach().numpy()
    idx2 = idx.copy()
    idx2[0, 3] = 9
    b = model(mg.tensor(idx2))[0].detach().numpy()
    np.testing.assert_array_equal(a[0, :3], b[0, :3])  # positions before the change see nothing of it
    assert np.abs(a[0, 3:] - b[0, 3:]).max() > 1e-4
    groups = model.param_groups(0.1)
    assert all(p.ndim == 2 for p in groups[0]["params"]) and all(p.ndim == 1 for p in groups[1]["params"])
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="block_size"):
        model(mg.tensor(np.zeros((1, 9), dtype=np.int64)))


def test_generate_greedy_topk_and_seeded():
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=8))
    start = np.array([[1, 2]])
    out = model.generate(start, 6, temperature=0).detach().numpy()
    assert out.shape == (1, 8) and (out[:, :2] == start).all()
    # greedy by hand: each new token is the argmax of the last position's logits over the last 4 tokens
    seq = [1, 2]
    for _ in range(6):
        logits = model(mg.tensor(np.array([seq[-4:]])))[0].detach().numpy()
        seq.append(int(logits[0, -1].argmax()))
    assert out[0].tolist() == seq
    assert model.generate(start, 6, top_k=1).detach().numpy().tolist() == out.tolist()  # top-1 sampling = greedy
    s1 = model.generate(start, 10, temperature=1.0, top_p=0.9, generator=mg.Generator().manual_seed(5)).detach().numpy()
    s2 = model.generate(start, 10, temperature=1.0, top_p=0.9, generator=mg.Generator().manual_seed(5)).detach().numpy()
    assert (s1 == s2).all() and ((0 <= s1) & (s1 < 5)).all()
    assert model.training  # generate restores the mode


@requires_torch
def test_gradients_match_torch():
    import torch

    cfg = GPTConfig(vocab_size=9, block_size=5, n_layer=1, n_head=2, n_embd=8, bias=True)
    model = GPT(cfg).double()
    st = _randomise(model, 4)
    idx = np.array([[1, 4, 0, 8, 2], [3, 3, 5, 0, 1]])
    tgt = np.array([[4, 0, 8, 2, 2], [3, 5, 0, 1, 6]])
    _, loss = model(mg.tensor(idx), mg.tensor(tgt))
    loss.backward()
    P = {k: torch.tensor(v, requires_grad=True) for k, v in st.items() if k != "lm_head.weight"}
    F = torch.nn.functional
    ti = torch.tensor(idx)
    x = P["wte.weight"][ti] + P["wpe.weight"][:5]
    a = F.layer_norm(x, (8,), P["h.0.ln_1.weight"], P["h.0.ln_1.bias"])
    q, k, v = (a @ P["h.0.attn.c_attn.weight"].T + P["h.0.attn.c_attn.bias"]).split(8, -1)
    q, k, v = (t.reshape(2, 5, 2, 4).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 5, 8)
    x = x + y @ P["h.0.attn.c_proj.weight"].T + P["h.0.attn.c_proj.bias"]
    m = F.layer_norm(x, (8,), P["h.0.ln_2.weight"], P["h.0.ln_2.bias"])
    x = x + F.gelu(m @ P["h.0.mlp.c_fc.weight"].T + P["h.0.mlp.c_fc.bias"]) @ P["h.0.mlp.c_proj.weight"].T \
        + P["h.0.mlp.c_proj.bias"]
    logits = F.layer_norm(x, (8,), P["ln_f.weight"], P["ln_f.bias"]) @ P["wte.weight"].T
    tl = F.cross_entropy(logits.reshape(10, 9), torch.tensor(tgt).reshape(10))
    tl.backward()
    assert math.isclose(loss.item(), tl.item(), rel_tol=1e-10)
    params = dict(model.named_parameters())
    for k, t in P.items():
        np.testing.assert_allclose(params[k].grad.detach().numpy(), t.grad.detach().numpy(), rtol=1e-8, atol=1e-11,
                                   err_msg=k)


def _tiny_cfg(**kw):
    base = dict(block_size=8, batch_size=4, n_layer=1, n_head=2, n_embd=16, max_iters=10, warmup_iters=2,
                lr_decay_iters=10, eval_interval=5, eval_iters=2, log_interval=1, lr=3e-3)
    base.update(kw)
    return TrainConfig(**base)


def test_train_learns_a_pattern_and_resumes_exactly(tmp_path):
    data = np.array([0, 1, 2, 3, 4, 5, 6, 7] * 200, dtype=np.int64)
    tr, va = data[:1400], data[1400:]
    _, full, _ = train_gpt(_tiny_cfg(max_iters=10), tr, va, 8, str(tmp_path / "a"), progress=False,
                           sample_tokens=0)
    _, part, _ = train_gpt(_tiny_cfg(max_iters=6, lr_decay_iters=10), tr, va, 8, str(tmp_path / "b"),
                           progress=False, sample_tokens=0, checkpoint_every=3)
    assert part["step"] == 6
    _, res, text = train_gpt(_tiny_cfg(max_iters=10), tr, va, 8, str(tmp_path / "b"), resume=True,
                             progress=False, sample_tokens=12, decode=lambda ids: "".join(map(str, ids)))
    assert res["step"] == 10
    assert res["val_loss"] == full["val_loss"]  # bit-for-bit the same run
    for f in ("metrics.jsonl", "loss_curve.png", "samples.txt", "summary.json", "checkpoint.safetensors"):
        assert os.path.exists(tmp_path / "b" / f), f
    assert len(text) == 12
    # a longer run learns the cycle: loss far below log(8) = 2.08
    _, s, _ = train_gpt(_tiny_cfg(max_iters=60, lr_decay_iters=60, eval_interval=60, lr=1e-2), tr, va, 8,
                        str(tmp_path / "c"), progress=False, sample_tokens=0)
    assert s["val_loss"] < 0.5


@requires_torch
def test_torch_twin_matches_and_step_timer_runs():
    import torch

    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.gpt_torch import compare_step_time, torch_gpt

    cfg = GPTConfig(vocab_size=9, block_size=6, n_layer=1, n_head=2, n_embd=8)
    model = GPT(cfg)
    twin = torch_gpt(cfg, model)
    idx = np.array([[1, 4, 0, 8, 2, 3]])
    tgt = np.array([[4, 0, 8, 2, 3, 1]])
    _, loss = model(mg.tensor(idx), mg.tensor(tgt))
    assert math.isclose(loss.item(), twin(torch.tensor(idx), torch.tensor(tgt)).item(), rel_tol=1e-5)
    data = np.arange(200) % 9
    r = compare_step_time(_tiny_cfg(block_size=6), data, 9, steps=2, warmup=1)
    assert r["steps"] == 2 and r["minigen_median_s"] > 0 and r["torch_median_s"] > 0


# ============================================================================ KV cache
def _cache_model(**kw):
    cfg = dict(vocab_size=11, block_size=12, n_layer=2, n_head=2, n_embd=16)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg), generator=mg.Generator().manual_seed(3)).eval()


@pytest.mark.parametrize("chunks", [[12], [1] * 12, [5, 1, 1, 3, 2], [4, 4, 4]])
def test_kv_cache_logits_equal_the_full_forward(chunks):
    """Feeding a sequence in chunks through the cache gives the full forward's logits (float32 tolerance)."""
    model = _cache_model()
    idx = np.random.default_rng(0).integers(0, 11, size=(3, 12))
    with mg.no_grad():
        full = model(mg.tensor(idx))[0].numpy()
        cache = KVCache(model.config, 3)
        parts, t = [], 0
        for n in chunks:
            parts.append(model(mg.tensor(idx[:, t:t + n]), cache=cache)[0].numpy())
            t += n
        assert cache.pos == 12
    got = np.concatenate(parts, axis=1)
    np.testing.assert_allclose(got, full, rtol=1e-5, atol=1e-5)
    assert np.abs(got - full).max() < 1e-5 and np.abs(full).max() > 0.01


def test_kv_cache_buffers_hold_the_keys_and_values():
    """cache.k[l][:, h, t] is the key of position t in layer l: k = LN_1(h_l) W_k, split into heads."""
    model = _cache_model(n_layer=1)
    idx = np.array([[1, 5, 2, 7]])
    cache = KVCache(model.config, 1)
    with mg.no_grad():
        model(mg.tensor(idx), cache=cache)
        x = model.wte(mg.tensor(idx)) + model.wpe(mg.tensor(np.arange(4)))
        a = model.h[0].ln_1(x).numpy()[0]                       # (T, C)
    W = model.h[0].attn.c_attn.weight.detach().numpy()            # (3C, C): [W_q; W_k; W_v]
    k = (a @ W[16:32].T).reshape(4, 2, 8).transpose(1, 0, 2)     # (H, T, d)
    v = (a @ W[32:].T).reshape(4, 2, 8).transpose(1, 0, 2)
    np.testing.assert_allclose(cache.k[0][0, :, :4], k, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cache.v[0][0, :, :4], v, rtol=1e-5, atol=1e-6)
    assert not cache.k[0][0, :, 4:].any()                         # nothing written past pos


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_generate_with_and_without_cache_agree(temperature):
    """Same tokens with the cache and without, also past block_size (the window slides, positions re-encoded)."""
    model = _cache_model(block_size=8)
    start = np.array([[1, 2, 3], [4, 5, 6]])
    a = model.generate(start, 20, temperature, generator=mg.Generator().manual_seed(1), use_cache=True).numpy()
    b = model.generate(start, 20, temperature, generator=mg.Generator().manual_seed(1), use_cache=False).numpy()
    assert a.shape == (2, 23) and (a == b).all()
    # the per-step distributions agree too (the logits the coroutine yields)
    with mg.no_grad():
        ca, cb = model.next_logits(start, True), model.next_logits(start, False)
        za, zb = next(ca), next(cb)
        for t in range(3, 23):
            np.testing.assert_allclose(za, zb, rtol=1e-5, atol=1e-5)
            za, zb = ca.send(a[:, t]), cb.send(a[:, t])


def test_cache_past_block_size_is_refused():
    model = _cache_model(block_size=4)
    cache = KVCache(model.config, 1)
    with mg.no_grad():
        model(mg.tensor([[1, 2, 3]]), cache=cache)
        with pytest.raises(ValueError, match="block_size"):
            model(mg.tensor([[1, 2]]), cache=cache)


# ============================================================================ resume from any stop point
def test_resume_from_a_stop_that_is_not_a_checkpoint_multiple(tmp_path):
    """Stop at 7 (checkpoints every 5), resume to 13 == 13 steps at once, bit for bit (weights and Adam state)."""
    data = np.array([0, 1, 2, 3, 4, 5, 6, 7] * 200, dtype=np.int64)
    tr, va = data[:1400], data[1400:]
    kw = dict(lr_decay_iters=13, eval_interval=5, dropout=0.1)   # dropout: the global RNG is resumed too
    train_gpt(_tiny_cfg(max_iters=13, **kw), tr, va, 8, str(tmp_path / "a"), progress=False, sample_tokens=0)
    _, part, _ = train_gpt(_tiny_cfg(max_iters=7, **kw), tr, va, 8, str(tmp_path / "b"), progress=False,
                           sample_tokens=0)
    assert part["step"] == 7
    _, res, _ = train_gpt(_tiny_cfg(max_iters=13, **kw), tr, va, 8, str(tmp_path / "b"), resume=True,
                          progress=False, sample_tokens=0)
    assert res["step"] == 13 and res["resumed"]
    a = mg.load(str(tmp_path / "a" / "checkpoint.safetensors"))
    b = mg.load(str(tmp_path / "b" / "checkpoint.safetensors"))
    for k in a["model"]:
        np.testing.assert_array_equal(np.asarray(a["model"][k]), np.asarray(b["model"][k]), err_msg=k)
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for i in a["optimizer"]["state"]:
        for k, v in a["optimizer"]["state"][i].items():
            np.testing.assert_array_equal(np.asarray(v), np.asarray(b["optimizer"]["state"][i][k]))


def _gpu_backends():
    from cupy_emulator import compiler_available, real_gpu_available

    return [pytest.param("emulated", marks=pytest.mark.skipif(not compiler_available(),
                                                               reason="no C++ compiler for the GPU emulation")),
            pytest.param("cuda", marks=pytest.mark.skipif(not real_gpu_available(), reason="no CUDA GPU"))]


@pytest.mark.parametrize("backend", _gpu_backends())
def test_kv_cache_generation_on_the_gpu_backend(backend):
    """On a CUDA model the cache buffers and the token ids live on the device; same tokens as on the CPU."""
    from cupy_emulator import on_backend

    model = _cache_model(block_size=8)
    start = np.array([[1, 2, 3]])
    want = model.generate(start, 12, 0.0).numpy()
    with on_backend(backend):
        model.to("cuda")
        for cache in (True, False):
            got = model.generate(start, 12, 0.0, use_cache=cache)
            assert (got.numpy() == want).all(), cache
