"""WaveNet: mu-law companding, causality, receptive field, the gate equation by hand, cached == uncached
generation, gradchecks (float64, under Hypothesis), bad input, and the recipe end to end on a tiny budget."""
import argparse
import math
import os

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from minigen.errors import DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError
from minigen.models.wavenet import (FastWaveNetGenerator, ResidualBlock, WaveNet, WaveNetConfig, mu_law_decode,
                                    mu_law_encode, sample_from_logits)
from minigen.testing import gradcheck


def tiny(num_classes=0, dilations=(1, 2, 4, 8, 1, 2, 4, 8), K=2, Q=256, C=8, G=8, S=8, E=16, seed=0, dtype="float64"):
    mg.manual_seed(seed)
    m = WaveNet(WaveNetConfig(quantization_channels=Q, residual_channels=C, gate_channels=G, skip_channels=S,
                              end_channels=E, kernel_size=K, num_classes=num_classes, cond_channels=4,
                              dilations=list(dilations)))
    return m.double() if dtype == "float64" else m


# ----------------------------------------------------------------------------- mu-law
def test_mu_law_hand_values():
    # q = floor((sign(x) ln(1 + 255|x|) / ln 256 + 1) / 2 * 255 + 1/2)
    x = np.array([-1.0, 0.0, 1.0, 0.5, -0.5, 0.01])
    q = mu_law_encode(x)
    f = lambda v: math.copysign(math.log1p(255 * abs(v)) / math.log(256), v)  # noqa: E731
    expected = [math.floor((f(v) + 1) / 2 * 255 + 0.5) for v in x]
    assert q.tolist() == expected
    assert q.tolist()[:3] == [0, 128, 255]
    assert q.tolist()[3] == 239  # ln(128.5)/ln(256) = 0.87569 -> floor(239.15 + 0.5)
    assert q.dtype == np.int64


def test_mu_law_classes_round_trip_exactly():
    q = np.arange(256)
    np.testing.assert_array_equal(mu_law_encode(mu_law_decode(q)), q)
    x = mu_law_decode(q)
    assert x[0] == -1.0 and x[-1] == 1.0 and np.all(np.diff(x) > 0)
    assert abs(x[128]) < 0.001  # the class of silence decodes to ~0 (q = 128 is y = 1/255, not exactly 0)


@given(st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=1, max_size=50))
def test_mu_law_round_trip_error_at_most_half_a_step(values):
    x = np.array(values)
    y = mu_law_decode(mu_law_encode(x)).astype(np.float64)
    f = lambda v: np.sign(v) * np.log1p(255 * np.abs(v)) / np.log(256)  # noqa: E731
    # rounding to the nearest of the 256 levels, equally spaced 2/255 apart in the companded domain
    assert np.all(np.abs(f(x) - f(y)) <= 1 / 255 + 1e-6)


def test_mu_law_tensor_in_tensor_out_and_errors():
    t = mg.tensor(np.array([0.0, 0.5], dtype=np.float32))
    q = mu_law_encode(t)
    assert isinstance(q, mg.Tensor) and q.array.tolist() == [128, 239]
    assert isinstance(mu_law_decode(q), mg.Tensor)
    np.testing.assert_array_equal(mu_law_encode(np.array([2.0, -3.0])), [255, 0])  # clipped
    with pytest.raises(InvalidArgumentError, match="NaN"):
        mu_law_encode(np.array([0.0, np.nan]))
    with pytest.raises(IndexOutOfRangeError, match="256"):
        mu_law_decode(np.array([0, 256]))
    with pytest.raises(DTypeError, match="integer"):
        mu_law_decode(np.array([0.5]))
    with pytest.raises(DTypeError, match="32768"):
        mu_law_encode(np.array([1000, -2000], dtype=np.int16))  # raw PCM integers are not a [-1, 1] waveform


# ----------------------------------------------------------------------------- causality, receptive field
@pytest.mark.parametrize("num_classes", [0, 3])
def test_causality_by_perturbation(num_classes):
    m = tiny(num_classes)
    rng = np.random.default_rng(0)
    T = 60
    x = rng.integers(0, 256, (2, T))
    lab = np.array([0, 2]) if num_classes else None
    with mg.no_grad():
        base = m(mg.tensor(x), None if lab is None else mg.tensor(lab)).array
        for t0 in (0, 17, 59):
            x2 = x.copy()
            x2[:, t0] = (x2[:, t0] + 101) % 256
            out = m(mg.tensor(x2), None if lab is None else mg.tensor(lab)).array
            np.testing.assert_array_equal(out[:, :, :t0], base[:, :, :t0])  # the past is untouched, exactly
            assert np.abs(out[:, :, t0] - base[:, :, t0]).max() > 1e-6  # x[t0] itself is seen at t0


@pytest.mark.parametrize("K,dilations", [(2, (1, 2, 4, 8, 1, 2, 4, 8)), (3, (1, 2, 4)), (2, (1, 2, 4, 8, 16, 32, 64, 128) * 2)])
def test_receptive_field_size(K, dilations):
    m = tiny(dilations=dilations, K=K, C=4, G=4, S=4, E=8)
    rf = (K - 1) * sum(dilations) + 1
    assert m.receptive_field == rf
    if len(dilations) == 16:
        assert rf == 511  # the default configuration: 2 stacks of 1..128
        assert WaveNet().receptive_field == 511
    # empirically: input t0 influences outputs t0 .. t0 + rf - 1 and nothing after
    T = rf + 20
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (1, T))
    t0 = 5
    x2 = x.copy()
    x2[0, t0] = (x2[0, t0] + 77) % 256
    with mg.no_grad():
        d = np.abs(m(mg.tensor(x2)).array - m(mg.tensor(x)).array).max(axis=1)[0]  # (T,)
    assert np.all(d[:t0] == 0) and d[t0] > 0
    assert np.all(d[t0 + rf:] == 0)  # exactly: out of reach
    # inside the reach every position depends on x[t0]: the Jacobian of the skip sum at t = t0 + rf - 1 (the
    # farthest) with respect to the block stack's input is nonzero exactly at t - rf + 1 .. t. (A perturbation
    # of the output is too small to see at the far end of the deep stack: ~1e-16 next to O(1) values.)
    h = m.input_embed(mg.tensor(x)).transpose(1, 2).detach().requires_grad_(True)
    out, skips = h, None
    for blk in m.blocks:
        out, s = blk(out)
        skips = s if skips is None else skips + s
    t = t0 + rf - 1
    (g,) = mg.grad(skips[:, :, t].sum(), [h])
    reach = np.abs(g.array[0]).max(axis=0)  # (T,)
    assert np.all(reach[t - rf + 1:t + 1] > 0)
    assert np.all(reach[:t - rf + 1] == 0) and np.all(reach[t + 1:] == 0)


# ----------------------------------------------------------------------------- the gate equation by hand
def test_gate_equation_hand_computed():
    # one block, C = G = S = 1, kernel 2, dilation 2:  a_t = w0 x[t-2] + w1 x[t] + b (+ cond)
    blk = ResidualBlock(1, 1, 1, kernel_size=2, dilation=2).double()
    W = np.array([[[0.5, -1.0]],    # W_f: tap on x[t-2], tap on x[t]
                  [[2.0, 0.25]]])   # W_g
    b = np.array([0.1, -0.5])
    blk.dilated.weight.array[...] = W
    blk.dilated.bias.array[...] = b
    blk.res.weight.array[...] = 0.5
    blk.res.bias.array[...] = 0.0
    blk.skip.weight.array[...] = 2.0
    blk.skip.bias.array[...] = 0.1
    x = mg.tensor(np.array([[[1.0, 2.0, 3.0, 4.0]]]))
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    # by hand: x[-2] = x[-1] = 0 (causal zero padding)
    f = [-1.0 * 1 + 0.1, -1.0 * 2 + 0.1, 0.5 * 1 - 1.0 * 3 + 0.1, 0.5 * 2 - 1.0 * 4 + 0.1]   # -0.9 -1.9 -2.4 -2.9
    g = [0.25 * 1 - 0.5, 0.25 * 2 - 0.5, 2.0 * 1 + 0.25 * 3 - 0.5, 2.0 * 2 + 0.25 * 4 - 0.5]  # -0.25 0 2.25 4.5
    z = [math.tanh(fi) * sig(gi) for fi, gi in zip(f, g)]
    with mg.no_grad():
        out, skip = blk(x)
        zz = blk.gate(x).array[0, 0]
    np.testing.assert_allclose(zz, z, rtol=1e-12)
    np.testing.assert_allclose(out.array[0, 0], [1 + 0.5 * z[0], 2 + 0.5 * z[1], 3 + 0.5 * z[2], 4 + 0.5 * z[3]],
                               rtol=1e-12)
    np.testing.assert_allclose(skip.array[0, 0], [2 * zi + 0.1 for zi in z], rtol=1e-12)
    # global conditioning: V h is added inside both halves of the gate
    cond = mg.tensor(np.array([[0.3, -0.2]]))
    zc = [math.tanh(fi + 0.3) * sig(gi - 0.2) for fi, gi in zip(f, g)]
    with mg.no_grad():
        np.testing.assert_allclose(blk.gate(x, cond).array[0, 0], zc, rtol=1e-12)


def test_conditioning_changes_the_output_only_through_the_label():
    m = tiny(num_classes=3)
    x = np.random.default_rng(2).integers(0, 256, (1, 30))
    with mg.no_grad():
        a = m(mg.tensor(x), mg.tensor(np.array([0]))).array
        b = m(mg.tensor(x), mg.tensor(np.array([1]))).array
        a2 = m(mg.tensor(x), mg.tensor(np.array([0]))).array
    np.testing.assert_array_equal(a, a2)
    assert np.abs(a - b).min() > 0  # every position sees the label


# ----------------------------------------------------------------------------- cached == uncached
@pytest.mark.parametrize("K,dilations,num_classes", [(2, (1, 2, 4, 8, 1, 2, 4, 8), 3), (3, (1, 2, 4), 0)])
def test_fast_generator_teacher_forced_equals_forward(K, dilations, num_classes):
    """Feeding a fixed sequence step by step gives the full forward's logits at every t (float64: 1e-10)."""
    m = tiny(num_classes, dilations=dilations, K=K)
    T = 2 * m.receptive_field + 7  # past the ring buffers' wrap-around
    x = np.random.default_rng(3).integers(0, 256, (2, T))
    lab = np.array([1, 2]) if num_classes else None
    gen = FastWaveNetGenerator(m, 2, lab)
    steps = np.stack([gen.step(x[:, t]) for t in range(T)], axis=2)
    with mg.no_grad():
        full = m(mg.tensor(x), None if lab is None else mg.tensor(lab)).array
    np.testing.assert_allclose(steps, full, rtol=0, atol=1e-10)


def test_fast_generator_float32_tolerance():
    """float32: the per-step logits agree with the full forward to 1e-5 (different summation orders)."""
    m = tiny(3, dtype="float32")
    x = np.random.default_rng(4).integers(0, 256, (2, 100))
    gen = FastWaveNetGenerator(m, 2, np.array([0, 1]))
    steps = np.stack([gen.step(x[:, t]) for t in range(100)], axis=2)
    with mg.no_grad():
        full = m(mg.tensor(x), mg.tensor(np.array([0, 1]))).array
    assert steps.dtype == np.float32
    np.testing.assert_allclose(steps, full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("num_classes", [0, 3])
def test_cached_and_uncached_generation_agree(num_classes):
    """Same seed: the same samples, and the same per-step distribution (float64, 1e-10)."""
    m = tiny(num_classes)
    n = m.receptive_field * 3  # long enough for the naive window to slide
    lab = np.array([2, 0]) if num_classes else None
    a, la = m.generate(n, batch_size=2, labels=lab, seed=7, return_logits=True)
    b, lb = m.generate_naive(n, batch_size=2, labels=lab, seed=7, return_logits=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(la, lb, rtol=0, atol=1e-10)
    assert a.shape == (2, n) and la.shape == (2, n, 256)
    # the per-step logits are what the full forward gives on the generated sequence
    seq = np.concatenate([np.full((2, 1), 128), a[:, :-1]], axis=1)
    with mg.no_grad():
        full = m(mg.tensor(seq), None if lab is None else mg.tensor(lab)).array
    np.testing.assert_allclose(la, full.transpose(0, 2, 1), rtol=0, atol=1e-10)
    # different seeds give different audio
    c = m.generate(n, batch_size=2, labels=lab, seed=8)
    assert not np.array_equal(a, c)


def test_sample_from_logits_inverse_cdf():
    logits = np.log(np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]))
    assert sample_from_logits(logits, np.array([0.1, 0.25])).tolist() == [0, 1]
    assert sample_from_logits(logits, np.array([0.6, 0.9999])).tolist() == [2, 2]
    assert sample_from_logits(logits, np.array([0.9, 0.9]), temperature=0).tolist() == [2, 2]
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(InvalidArgumentError):
            sample_from_logits(logits, np.array([0.1, 0.1]), temperature=bad)


# ----------------------------------------------------------------------------- gradients (float64)
@given(seed=st.integers(0, 2 ** 16), T=st.integers(2, 7), K=st.sampled_from([2, 3]))
def test_gradcheck_wavenet_stack(seed, T, K):
    m = tiny(num_classes=3, dilations=(1, 2), K=K, Q=5, C=2, G=2, S=2, E=3, seed=seed)
    params = list(m.parameters())
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.integers(0, 5, (2, T)))
    lab = mg.tensor(rng.integers(0, 3, (2,)))
    assert gradcheck(lambda *ps: m(x, lab), params)


@given(seed=st.integers(0, 2 ** 16), d=st.sampled_from([1, 2, 3]))
def test_gradcheck_residual_block_input_and_condition(seed, d):
    mg.manual_seed(seed)
    blk = ResidualBlock(2, 3, 2, kernel_size=2, dilation=d).double()
    rng = np.random.default_rng(seed)
    h = mg.tensor(rng.standard_normal((2, 2, 6)), requires_grad=True)
    cond = mg.tensor(rng.standard_normal((2, 6)), requires_grad=True)
    assert gradcheck(lambda h, c: blk(h, c), (h, cond))


def test_training_loss_decreases():
    m = tiny(num_classes=0, dtype="float32", C=8, G=8, S=8, E=16)
    # a periodic signal: easy to predict once the model sees one period
    t = np.arange(400)
    x = mu_law_encode(0.5 * np.sin(2 * np.pi * t / 16))[None, :].repeat(2, 0)
    opt = mg.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = m.loss(mg.tensor(x[:, :-1]), mg.tensor(x[:, 1:]))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 5.0  # ~ ln 256 = 5.55 at the start
    assert losses[-1] < 0.5 * losses[0]


# ----------------------------------------------------------------------------- bad input
def test_bad_input_raises_minigen_errors():
    m = tiny(num_classes=3)
    with pytest.raises(ShapeError, match=r"\(B, T\)"):
        m(mg.tensor(np.zeros(5, dtype=np.int64)), mg.tensor(np.array([0])))
    with pytest.raises(DTypeError, match="integer"):
        m(mg.tensor(np.zeros((1, 5))), mg.tensor(np.array([0])))
    with pytest.raises(IndexOutOfRangeError, match="255"):
        m(mg.tensor(np.full((1, 5), 256)), mg.tensor(np.array([0])))
    with pytest.raises(InvalidArgumentError, match="labels"):
        m(mg.tensor(np.zeros((1, 5), dtype=np.int64)))
    with pytest.raises(IndexOutOfRangeError, match="labels"):
        m(mg.tensor(np.zeros((1, 5), dtype=np.int64)), mg.tensor(np.array([3])))
    with pytest.raises(ShapeError, match="labels"):
        m(mg.tensor(np.zeros((2, 5), dtype=np.int64)), mg.tensor(np.array([0])))
    with pytest.raises(InvalidArgumentError, match="unconditional"):
        tiny(0)(mg.tensor(np.zeros((1, 5), dtype=np.int64)), mg.tensor(np.array([0])))
    with pytest.raises(InvalidArgumentError):
        m.generate(5, labels=None)
    with pytest.raises(InvalidArgumentError):
        WaveNetConfig(residual_channels=0)
    with pytest.raises(InvalidArgumentError):
        WaveNetConfig(dilations=[1, 0])
    with pytest.raises(ShapeError):
        m.loss(mg.tensor(np.zeros((1, 5), dtype=np.int64)), mg.tensor(np.zeros((1, 4), dtype=np.int64)),
               mg.tensor(np.array([0])))


# ----------------------------------------------------------------------------- the recipe, tiny budget
def test_recipe_trains_resumes_and_samples(tmp_path):
    from minigen.recipes import wavenet as R

    p = argparse.ArgumentParser()
    R.add_arguments(p)
    out = str(tmp_path / "run")
    argv = ["--out", out, "--bundled", "--batch-size", "2", "--window", "64", "--residual-channels",
            "4", "--gate-channels", "4", "--skip-channels", "4", "--end-channels", "8", "--layers-per-stack", "3",
            "--stacks", "1", "--eval-every", "0", "--checkpoint-every", "1",
            "--log-every", "1"]
    assert R.run(p.parse_args(argv + ["--steps", "2"])) == 0
    for f in ("config.json", "checkpoint.safetensors", "metrics.jsonl", "summary.json", "loss_curve.png"):
        assert os.path.exists(os.path.join(out, f)), f
    import json

    summ = json.load(open(os.path.join(out, "summary.json")))
    assert summ["steps"] == 2 and 0 < summ["val_nll_bits"] < 9
    assert summ["baselines"]["bigram_bits"] < 8.0
    # resume continues to step 3 from the saved state
    assert R.run(p.parse_args(argv + ["--steps", "3", "--resume"])) == 0
    assert json.load(open(os.path.join(out, "summary.json")))["steps"] == 3
    # ... bit for bit: the same weights as 3 uninterrupted steps
    out2 = str(tmp_path / "run2")
    assert R.run(p.parse_args([a if a != out else out2 for a in argv] + ["--steps", "3"])) == 0
    w1, w2 = mg.load(os.path.join(out, "checkpoint.safetensors")), mg.load(os.path.join(out2, "checkpoint.safetensors"))
    for k in w1["model"]:
        np.testing.assert_array_equal(w1["model"][k].array, w2["model"][k].array)
    # sampling from the run folder: one WAV per digit + the two PNGs
    sp = argparse.ArgumentParser()
    sp.add_argument("run_dir")
    sp.add_argument("--n", type=int, default=None)
    sp.add_argument("--out", default=None)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--device", default=None)
    R.add_sample_arguments(sp)
    sdir = str(tmp_path / "samples")
    assert R.sample(sp.parse_args([out, "--out", sdir, "--digits", "3,7", "--seconds", "0.01"])) == 0
    files = sorted(os.listdir(sdir))
    assert files == ["spectrogram.png", "waveform.png", "wavenet_digit3.wav", "wavenet_digit7.wav"]
    from minigen.data.audio import read_wav

    x, sr = read_wav(os.path.join(sdir, "wavenet_digit3.wav"))
    assert sr == 8000 and x.shape == (80,)
