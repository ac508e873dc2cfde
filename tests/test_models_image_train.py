"""The image recipes end to end on tiny settings: CLI, outputs, exact resume, scoring, sampling, demo."""
import argparse
import json
import os

import numpy as np
import pytest

from minigen import cli
from minigen.io import load
from cupy_emulator import compiler_available, on_backend, real_gpu_available
from minigen import recipes
from minigen.recipes import classifier

TINY = ["--limit", "64", "--batch-size", "16", "--no-progress", "--log-every", "1"]


def _summary(out):
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)


IMAGE = ["gan", "dcgan", "cgan", "wgan-gp", "stylegan", "vae", "classifier", "cnn", "mlp"]


def _config(out):
    with open(os.path.join(out, "config.json")) as f:
        return json.load(f)


def test_every_recipe_follows_the_convention(capsys):
    for name in recipes.names():
        mod = recipes.load(name)
        assert mod.NAME == name and mod.HELP
        p = argparse.ArgumentParser()
        mod.add_arguments(p)
        a = p.parse_args([])
        assert callable(mod.run) and callable(mod.sample) and a is not None, name
        if hasattr(a, "out"):
            assert a.out.startswith("out/"), name
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in IMAGE) and "gpt" in out and "unavailable" not in out


def test_gan_cli_minimax_writes_outputs(tmp_path):
    out = str(tmp_path / "gan")
    args = ["train", "gan", "--out", out, "--max-steps", "3", "--g-hidden", "16", "--d-hidden", "8",
            "--g-loss", "minimax", "--d-steps", "2", "--classifier", "none"] + TINY
    assert cli.main(args) == 0
    assert cli.main(args) == 0    # a second run without --resume starts a fresh log in the same folder
    s = _summary(out)
    c = _config(out)
    assert s["step"] == 3 and c["recipe"] == "gan" and c["args"]["g_loss"] == "minimax" and c["args"]["d_steps"] == 2
    for f in ("metrics.jsonl", "metrics.csv", "loss_curve.png", "samples.png", "checkpoint.safetensors",
              "config.json"):
        assert os.path.exists(os.path.join(out, f)), f
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    train = [r for r in rows if r["split"] == "train"]
    assert len(train) == 3 and all({"d_loss", "g_loss", "D(x)", "D(G(z))"} <= set(r) for r in train)
    assert all(0 < r["D(x)"] < 1 for r in train)


def _params(path):
    return {k: np.asarray(v.numpy()) for k, v in load(path)["model"].items()}


def test_dcgan_resume_is_exact(tmp_path):
    """2 steps, then --resume to 4 steps == 4 steps in one go (same parameters, same optimizer state, bit for bit)."""
    common = ["--g-width", "8", "--d-width", "4", "--classifier", "none"] + TINY
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert cli.main(["train", "dcgan", "--out", a, "--max-steps", "2"] + common) == 0
    assert cli.main(["train", "dcgan", "--out", a, "--max-steps", "4", "--resume"] + common) == 0
    assert cli.main(["train", "dcgan", "--out", b, "--max-steps", "4"] + common) == 0
    pa, pb = _params(os.path.join(a, "checkpoint.safetensors")), _params(os.path.join(b, "checkpoint.safetensors"))
    assert pa.keys() == pb.keys() and len(pa) > 10
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)
    sa = _summary(a)
    assert sa["resumed"] and sa["step"] == 4
    opt = load(os.path.join(a, "checkpoint.safetensors"))["optimizer"]
    assert set(opt) == {"D", "G"}          # both optimizers are saved
    rows = [json.loads(line) for line in open(os.path.join(a, "metrics.jsonl"))]
    assert [r["step"] for r in rows if r["split"] == "train"] == [1, 2, 3, 4]


@pytest.mark.parametrize("preset", ["pytorch-examples", "article"])
def test_dcgan_presets_train_and_sample(tmp_path, preset):
    """A tiny run of each preset through ``minigen train``; the config records the preset's resolved values."""
    out = str(tmp_path / preset)
    assert cli.main(["train", "dcgan", "--preset", preset, "--out", out, "--max-steps", "2", "--g-width", "8",
                     "--d-width", "4", "--classifier", "none"] + TINY) == 0
    a = _config(out)["args"]
    want = {"pytorch-examples": (2e-4, 0.5, 1e-8, False), "article": (1e-4, 0.9, 1e-7, True)}[preset]
    assert (a["preset"], a["lr"], a["beta1"], a["adam_eps"], a["keep_every_epoch"]) == (preset,) + want
    assert a["batch_size"] == 16                                     # given on the command line: wins
    params = _params(os.path.join(out, "checkpoint.safetensors"))
    n_convt = sum(1 for k, v in params.items() if k.startswith("G.net") and v.ndim == 4)
    assert n_convt == 4 and all(np.isfinite(v).all() for v in params.values())
    # the article's G keeps its width (8) in every transposed conv; pytorch-examples halves it
    widths = [v.shape[1] for k, v in sorted(params.items()) if k.startswith("G.net") and k.endswith("weight")
              and v.ndim == 4][:3]
    assert widths == ([8, 8, 8] if preset == "article" else [4, 2, 1])
    grid = str(tmp_path / "grid.png")
    assert cli.main(["sample", out, "--n", "8", "--out", grid]) == 0 and os.path.exists(grid)


def test_dcgan_article_batch_size_is_128_by_default():
    from minigen.recipes import dcgan as recipe

    p = argparse.ArgumentParser()
    recipe.add_arguments(p)
    a = recipe.resolve_preset(p.parse_args(["--preset", "article"]))
    assert (a.batch_size, a.lr, a.g_width, a.d_width, a.nz) == (128, 1e-4, 128, 64, 100)
    a = recipe.resolve_preset(p.parse_args([]))
    assert (a.preset, a.batch_size, a.lr, a.beta1, a.keep_every_epoch) == ("pytorch-examples", 64, 2e-4, 0.5, False)
    a = recipe.resolve_preset(p.parse_args(["--preset", "article", "--no-keep-every-epoch", "--lr", "3e-4"]))
    assert (a.keep_every_epoch, a.lr) == (False, 3e-4)


def test_keep_every_epoch_keeps_one_checkpoint_per_epoch(tmp_path):
    """3 epochs -> checkpoint_epoch001..003 kept (none overwritten), each the state at its epoch end."""
    out = str(tmp_path / "art")
    common = ["--preset", "article", "--g-width", "8", "--d-width", "4", "--classifier", "none", "--limit", "32",
              "--batch-size", "16", "--no-progress"]                       # 2 steps per epoch
    assert cli.main(["train", "dcgan", "--out", out, "--epochs", "3"] + common) == 0
    kept = sorted(f for f in os.listdir(out) if f.startswith("checkpoint_epoch"))
    assert kept == [f"checkpoint_epoch{e:03d}.safetensors" for e in (1, 2, 3)]
    states = [load(os.path.join(out, f)) for f in kept]
    assert [(s["epoch"], s["step"]) for s in states] == [(1, 2), (2, 4), (3, 6)]
    g = [np.asarray(s["model"]["G.net.0.weight"].numpy()) for s in states]
    assert not np.array_equal(g[0], g[1]) and not np.array_equal(g[1], g[2])      # G saved after every epoch
    assert {k.split(".")[0] for k in states[0]["model"]} == {"G", "D"}             # ... and D
    last = _params(os.path.join(out, "checkpoint.safetensors"))
    np.testing.assert_array_equal(last["G.net.0.weight"], g[2])
    assert _summary(out)["epoch_checkpoints"] == [os.path.join(out, f) for f in kept]
    # the other preset overwrites one checkpoint (unless asked)
    other = str(tmp_path / "pe")
    assert cli.main(["train", "dcgan", "--out", other, "--epochs", "2"] + common[2:]) == 0
    assert not [f for f in os.listdir(other) if f.startswith("checkpoint_epoch")]


@pytest.fixture(scope="module")
def tiny_scorer(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("scorer"))
    classifier.train_classifier(folder, epochs=1, max_steps=3, batch_size=16, width=4, hidden=8, limit=64,
                                progress=False, quiet=True)
    return folder


def test_classifier_cache_round_trip(tiny_scorer):
    m = classifier.load_classifier(tiny_scorer)
    s = _summary(tiny_scorer)
    assert m is not None and not m.training and s["step"] == 3 and 0.0 <= s["val_acc"] <= 1.0
    assert set(s["real_val_scores"]) >= {"inception_score", "mean_max_prob", "class_entropy"}
    assert classifier.load_classifier(os.path.join(tiny_scorer, "nothing-here")) is None
    assert classifier.load_or_train_classifier("none") is None
    x = np.random.default_rng(0).random((5, 1, 28, 28)).astype(np.float32)
    m2 = classifier.load_or_train_classifier(tiny_scorer)   # cached: no training
    np.testing.assert_array_equal(m.probs(x), m2.probs(x))


def test_cgan_scored_with_label_accuracy(tmp_path, tiny_scorer):
    out = str(tmp_path / "cgan")
    assert cli.main(["train", "cgan", "--out", out, "--max-steps", "2", "--g-width", "8", "--d-width", "4",
                     "--classifier", tiny_scorer, "--score-samples", "20"] + TINY) == 0
    s = _summary(out)
    assert 0.0 <= s["label_accuracy"] <= 1.0
    sc = s["scores"]
    assert 1.0 <= sc["score_is"] <= 10.0 and 0.1 <= sc["score_max_prob"] <= 1.0
    assert 0.0 <= sc["score_entropy"] <= np.log(10) + 1e-9 and len(sc["class_freq"]) == 10
    assert os.path.exists(os.path.join(out, "score_curve.png"))
    from PIL import Image

    assert Image.open(os.path.join(out, "samples.png")).size == (10 * 30 + 2, 10 * 30 + 2)   # a row per digit


def test_wgan_gp_logs_wasserstein_estimate_and_penalty(tmp_path):
    out = str(tmp_path / "wgan")
    assert cli.main(["train", "wgan-gp", "--out", out, "--max-steps", "2", "--g-width", "8", "--d-width", "4",
                     "--n-critic", "2", "--classifier", "none"] + TINY) == 0
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl")) if '"train"' in line]
    assert len(rows) == 2 and all(r["gp"] >= 0 and np.isfinite(r["w_estimate"]) for r in rows)
    assert _config(out)["args"]["n_critic"] == 2


def test_stylegan_writes_style_mixing_pngs(tmp_path):
    out = str(tmp_path / "sg")
    assert cli.main(["train", "stylegan", "--out", out, "--max-steps", "2", "--width", "8", "--d-width", "4",
                     "--z-dim", "8", "--w-dim", "8", "--r1-every", "1", "--mixing-prob", "1",
                     "--classifier", "none"] + TINY) == 0
    s = _summary(out)
    for k in ("style_mixing_coarse", "style_mixing_middle", "style_mixing_fine"):
        assert os.path.exists(s[k]), k
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl")) if '"train"' in line]
    assert all(r["r1"] >= 0 for r in rows)      # R1 every step with --r1-every 1
    from PIL import Image

    assert Image.open(s["style_mixing_coarse"]).size == (7 * 30 + 2, 6 * 30 + 2)   # (1 + 6) x (1 + 5) cells


def test_stylegan_keeps_an_ema_generator_and_samples_from_it(tmp_path):
    from minigen.recipes import stylegan as recipe

    out = str(tmp_path / "sg")
    common = ["--width", "8", "--d-width", "4", "--z-dim", "8", "--w-dim", "8", "--classifier", "none"] + TINY
    assert cli.main(["train", "stylegan", "--out", out, "--max-steps", "3", "--skip", "1"] + common) == 0
    p = _params(os.path.join(out, "checkpoint.safetensors"))
    g = {k[2:]: v for k, v in p.items() if k.startswith("G.")}
    e = {k[6:]: v for k, v in p.items() if k.startswith("G_ema.")}
    assert g.keys() == e.keys() and "synthesis.to_rgb_7.weight" in e          # --skip 1: the skip generator
    # early in training the ramp-up keeps the half-life at 5% of the images seen: G_ema follows G closely,
    # but it is an average, not a copy
    assert any(not np.array_equal(g[k], e[k]) for k in g)
    assert all(np.allclose(g[k], e[k], rtol=0.05, atol=0.05) for k in g)
    model = recipe.build_model(argparse.Namespace(**_config(out)["args"]))
    assert recipe.sampler(model) is model.G_ema
    plain = str(tmp_path / "plain")
    assert cli.main(["train", "stylegan", "--out", plain, "--max-steps", "1", "--ema-half-life", "0", "--skip", "0"]
                    + common) == 0
    p = _params(os.path.join(plain, "checkpoint.safetensors"))
    assert not any(k.startswith("G_ema.") or "to_rgb_7" in k for k in p)
    assert cli.main(["sample", plain, "--mix", "fine", "--out", str(tmp_path / "mix.png")]) == 0
    assert _png_size(str(tmp_path / "mix.png")) == (7 * 30 + 2, 6 * 30 + 2)   # (1 + 6 B columns) x (1 + 5 A rows)


def test_vae_cli_latent_2_pictures_and_resume(tmp_path):
    out = str(tmp_path / "vae")
    args = ["train", "vae", "--out", out, "--latent-dim", "2", "--hidden", "16"] + TINY
    assert cli.main(args + ["--max-steps", "2"]) == 0
    assert cli.main(args + ["--max-steps", "3", "--resume"]) == 0
    s = _summary(out)
    assert s["step"] == 3 and s["val_loss"] == pytest.approx(s["val_bce"] + s["val_kl"], rel=1e-6)
    for f in ("reconstructions.png", "samples.png", "latent_map.png", "latent_scatter.png", "loss_curve.png"):
        assert os.path.exists(os.path.join(out, f)), f
    assert cli.main(["train", "vae", "--out", str(tmp_path / "cvae"), "--arch", "conv", "--width", "2",
                     "--max-steps", "1"] + TINY) == 0


def test_vae_evaluation_protocol_is_fixed():
    from minigen.models.vae import MLPVAE
    from minigen.recipes.vae import evaluate_vae

    m = MLPVAE(latent_dim=3, hidden=8)
    x = np.random.default_rng(0).random((20, 1, 28, 28)).astype(np.float32)
    a, b = evaluate_vae(m, x, batch_size=7), evaluate_vae(m, x, batch_size=20)
    assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)    # one fixed eps per image
    assert evaluate_vae(m, x, seed=1)["val_loss"] != a["val_loss"]


def test_demo_quick_run(tmp_path, capsys):
    import math
    import wave

    from minigen.demo import PARTS, WAVENET_DIGITS

    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--minutes", "0.01", "--limit", "64", "--no-progress"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert set(s["parts"]) == {"classifier", "dcgan", "vae", "wavenet", "gpt"} == set(PARTS)
    assert s["parts"]["dcgan"]["scores"]["score_is"] >= 1.0
    assert s["parts"]["gpt"]["val_loss"] > 0 and s["parts"]["vae"]["val_loss"] > 0
    for f in ("summary.md", "mnist_val_predictions.png", "dcgan/samples.png", "vae/reconstructions.png",
              "gpt/samples.txt", "classifier/classifier.safetensors", "wavenet/waveform.png",
              "wavenet/spectrogram.png", "wavenet/loss_curve.png", "wavenet/checkpoint.safetensors"):
        assert (out / f).exists(), f
    w = s["parts"]["wavenet"]
    # the bundled FSDD subset only: 40 training recordings, the 20 test recordings scored from their first sample
    assert w["data_source"] == "bundled" and w["train_recordings"] == 40 and w["eval_recordings"] == 20
    assert w["steps"] == 1 and w["part_wall_s"] > 0
    assert math.isfinite(w["val_nll_nats"]) and 0 < w["val_nll_nats"] < 8
    assert w["val_nll_bits"] == pytest.approx(w["val_nll_nats"] / math.log(2))
    b = w["baselines"]
    assert 0 < b["bigram_nats"] < b["unigram_nats"] < math.log(256)   # the baselines on the same samples
    assert len(w["generation"]["files"]) == len(WAVENET_DIGITS)
    for d in WAVENET_DIGITS:
        with wave.open(str(out / "wavenet" / f"wavenet_digit{d}.wav"), "rb") as f:
            assert (f.getframerate(), f.getnchannels(), f.getsampwidth(), f.getnframes()) == (8000, 1, 2, 400)
    md = (out / "summary.md").read_text()
    assert "| dcgan |" in md and "| gpt |" in md
    row = next(line for line in md.splitlines() if line.startswith("| wavenet | test NLL"))
    assert f"{w['val_nll_nats']:.3f} ({w['val_nll_bits']:.3f})" in row
    assert f"{b['bigram_nats']:.3f}" in md and "wavenet/spectrogram.png" in md
    printed = capsys.readouterr().out
    assert "demo finished" in printed and "not intelligible" in printed and "mu-law bigram" in printed
    assert cli.main(["demo", "--out", str(out), "--parts", "nope"]) == 2


def test_demo_wavenet_part_alone(tmp_path):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--minutes", "0.01", "--limit", "8", "--parts", "wavenet",
                     "--no-progress", "--seed", "1"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert list(s["parts"]) == ["wavenet"]
    # the part's folder is an ordinary run folder: `minigen sample` reads it
    assert cli.main(["sample", str(out / "wavenet"), "--digits", "5", "--seconds", "0.01",
                     "--out", str(tmp_path / "more")]) == 0
    assert (tmp_path / "more" / "wavenet_digit5.wav").exists()


def test_demo_wavenet_part_ctrl_c(tmp_path, monkeypatch):
    from minigen.recipes import wavenet as W

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(W, "run", interrupted)
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--parts", "wavenet,gpt", "--limit", "8", "--no-progress"]) == 130
    s = json.loads((out / "summary.json").read_text())
    assert list(s["parts"]) == ["wavenet"] and s["parts"]["wavenet"]["interrupted"] is True   # gpt never started
    assert "| wavenet | test NLL" in (out / "summary.md").read_text()


_GPU_BACKENDS = [pytest.param("emulated", marks=pytest.mark.skipif(not compiler_available(),
                                                                    reason="no C++ compiler for the GPU emulation")),
                 pytest.param("cuda", marks=pytest.mark.skipif(not real_gpu_available(), reason="no CUDA GPU"))]


@pytest.mark.parametrize("backend", _GPU_BACKENDS)
def test_image_trainers_on_the_gpu_backend(backend, tmp_path):
    """--device cuda reaches every tensor: models, batches, noise, labels, style-mixing masks, the scorer."""
    tiny = ["--epochs", "1", "--max-steps", "1", "--limit", "32", "--batch-size", "16", "--no-progress",
            "--device", "cuda"]
    cls = str(tmp_path / "cls")
    with on_backend(backend):
        assert cli.main(["train", "classifier", "--out", cls, "--width", "4", "--hidden", "8"] + tiny) == 0
        assert cli.main(["train", "cgan", "--out", str(tmp_path / "cgan"), "--g-width", "8", "--d-width", "4",
                         "--classifier", cls, "--score-samples", "20"] + tiny) == 0
        s = _summary(str(tmp_path / "cgan"))
        assert s["scores"]["score_is"] >= 1.0 and s["label_accuracy"] is not None
        assert cli.main(["train", "wgan-gp", "--out", str(tmp_path / "wgan"), "--g-width", "8", "--d-width", "4",
                         "--n-critic", "1", "--classifier", "none"] + tiny) == 0
        assert cli.main(["train", "stylegan", "--out", str(tmp_path / "sg"), "--width", "8", "--d-width", "4",
                         "--z-dim", "8", "--w-dim", "8", "--r1-every", "1", "--mixing-prob", "1",
                         "--classifier", "none"] + tiny) == 0
        assert cli.main(["sample", str(tmp_path / "sg"), "--n", "4", "--truncation", "0.7", "--device", "cuda"]) == 0
        assert cli.main(["train", "vae", "--out", str(tmp_path / "vae"), "--latent-dim", "2", "--hidden", "8"]
                        + tiny) == 0
        v = _summary(str(tmp_path / "vae"))
        assert np.isfinite(v["val_loss"]) and os.path.exists(v["latent_map"])


# ----------------------------------------------------------------------------- minigen sample
def _png_size(path):
    from PIL import Image

    return Image.open(path).size


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """One tiny run of every image recipe (2 steps), to sample from."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    small = {"gan": ["--g-hidden", "16", "--d-hidden", "8"], "dcgan": ["--g-width", "8", "--d-width", "4"],
             "cgan": ["--g-width", "8", "--d-width", "4"], "wgan-gp": ["--g-width", "8", "--d-width", "4",
                                                                       "--n-critic", "1"],
             "stylegan": ["--width", "8", "--d-width", "4", "--z-dim", "8", "--w-dim", "8"],
             "vae": ["--latent-dim", "2", "--hidden", "16"], "classifier": ["--width", "4", "--hidden", "8"],
             "cnn": ["--width", "4", "--hidden", "8"], "mlp": ["--hidden", "8"]}
    for name, opts in small.items():
        out = str(root / name)
        scorer = ["--classifier", "none"] if name in ("gan", "dcgan", "cgan", "wgan-gp", "stylegan") else []
        assert cli.main(["train", name, "--out", out, "--max-steps", "2"] + scorer + opts + TINY) == 0, name
        runs[name] = out
    return runs


@pytest.mark.parametrize("name", ["gan", "dcgan", "wgan-gp", "vae"])
def test_sample_writes_an_image_grid_without_training(tiny_runs, name, tmp_path, capsys):
    run = tiny_runs[name]
    ckpt = os.path.join(run, "checkpoint.safetensors")
    before = (os.path.getmtime(ckpt), open(os.path.join(run, "metrics.jsonl")).read())
    out = str(tmp_path / "grid.png")
    assert cli.main(["sample", run, "--n", "16", "--out", out, "--seed", "3"]) == 0
    assert _png_size(out) == (8 * 30 + 2, 2 * 30 + 2)           # 16 images, 8 per row
    assert (os.path.getmtime(ckpt), open(os.path.join(run, "metrics.jsonl")).read()) == before   # no training
    again = str(tmp_path / "again.png")
    assert cli.main(["sample", run, "--n", "16", "--out", again, "--seed", "3"]) == 0
    assert open(out, "rb").read() == open(again, "rb").read()   # seeded
    other = str(tmp_path / "other.png")
    assert cli.main(["sample", run, "--n", "16", "--out", other, "--seed", "4"]) == 0
    assert open(out, "rb").read() != open(other, "rb").read()


def test_sample_generator_equals_the_trained_generator(tiny_runs, tmp_path):
    """The grid comes from the checkpoint's weights: G rebuilt by the recipe, weights loaded, G(z) by hand."""
    from PIL import Image

    import minigen as mg
    from minigen.models.dcgan import build_dcgan

    run = tiny_runs["dcgan"]
    a = _config(run)["args"]
    model = build_dcgan(a["nz"], a["g_width"], a["d_width"], a["seed"] + 1)   # other init: must be overwritten
    model.load_state_dict(load(os.path.join(run, "checkpoint.safetensors"))["model"])
    model.eval()
    with mg.no_grad():
        z = mg.randn(2, a["nz"], generator=mg.Generator().manual_seed(5))
        want = ((model.G(z).numpy() + 1) / 2).clip(0, 1)
    out = str(tmp_path / "two.png")
    assert cli.main(["sample", run, "--n", "2", "--out", out, "--seed", "5"]) == 0
    got = np.asarray(Image.open(out).convert("L"), dtype=np.float64)
    np.testing.assert_allclose(got[2:30, 2:30] / 255.0, want[0, 0], atol=2 / 255)


def test_sample_cgan_rows_are_the_requested_digits(tiny_runs, tmp_path):
    out = str(tmp_path / "digits.png")
    assert cli.main(["sample", tiny_runs["cgan"], "--digits", "3,7", "--n", "5", "--out", out]) == 0
    assert _png_size(out) == (5 * 30 + 2, 2 * 30 + 2)
    assert cli.main(["sample", tiny_runs["cgan"], "--digits", "3,12"]) == 1     # a clear error, no traceback


def test_sample_stylegan_truncation_and_mixing(tiny_runs, tmp_path):
    run = tiny_runs["stylegan"]
    outs = {}
    for psi in ("1", "0.5", "0"):
        outs[psi] = str(tmp_path / f"psi{psi}.png")
        assert cli.main(["sample", run, "--n", "8", "--truncation", psi, "--out", outs[psi]]) == 0
    assert open(outs["1"], "rb").read() != open(outs["0.5"], "rb").read()
    mix = str(tmp_path / "mix.png")
    assert cli.main(["sample", run, "--mix", "coarse", "--out", mix]) == 0
    assert _png_size(mix) == (7 * 30 + 2, 6 * 30 + 2)
    # --no-noise: the per-pixel noise maps at 0 (a grid and a mixing grid; the default names say so)
    assert cli.main(["sample", run, "--n", "8", "--no-noise"]) == 0
    assert cli.main(["sample", run, "--mix", "fine", "--no-noise"]) == 0
    assert os.path.exists(os.path.join(run, "samples_psi1_nonoise.png"))
    assert _png_size(os.path.join(run, "style_mixing_fine_psi1_nonoise.png")) == (7 * 30 + 2, 6 * 30 + 2)


@pytest.mark.parametrize("name", ["classifier", "cnn", "mlp"])
def test_sample_classifier_writes_digits_and_predictions(tiny_runs, name, tmp_path):
    out = str(tmp_path / "pred.png")
    assert cli.main(["sample", tiny_runs[name], "--n", "16", "--out", out]) == 0
    lines = open(str(tmp_path / "pred.txt")).read().splitlines()
    assert len(lines) == 3 and all(len(r.split()) == 8 and all(c.isdigit() for c in r.split()) for r in lines[1:])


def test_sample_needs_a_run_folder(tmp_path, capsys):
    assert cli.main(["sample", str(tmp_path)]) == 1
    assert "no config.json" in capsys.readouterr().err
    (tmp_path / "config.json").write_text(json.dumps({"model": "dcgan"}))      # written by an older minigen
    assert cli.main(["sample", str(tmp_path)]) == 1
    assert "names no recipe" in capsys.readouterr().err


# ----------------------------------------------------------------------------- resume from any stop point
def test_classifier_resume_from_a_stop_point_mid_epoch(tmp_path):
    """--max-steps 3, then --max-steps 7 --resume == 7 steps at once (an evaluation at step 3 changes nothing)."""
    common = ["--width", "4", "--hidden", "8", "--shift", "1"] + TINY
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert cli.main(["train", "classifier", "--out", a, "--max-steps", "3"] + common) == 0
    assert cli.main(["train", "classifier", "--out", a, "--max-steps", "7", "--resume"] + common) == 0
    assert cli.main(["train", "classifier", "--out", b, "--max-steps", "7"] + common) == 0
    pa, pb = _params(os.path.join(a, "checkpoint.safetensors")), _params(os.path.join(b, "checkpoint.safetensors"))
    assert _summary(a)["step"] == 7 and pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


def test_stylegan_resume_is_exact(tmp_path):
    """The lazy-R1 counter and the mixing draws are part of the saved state: 1 + 2 steps == 3 steps."""
    common = ["--width", "8", "--d-width", "4", "--z-dim", "8", "--w-dim", "8", "--r1-every", "2",
              "--classifier", "none"] + TINY
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert cli.main(["train", "stylegan", "--out", a, "--max-steps", "1"] + common) == 0
    assert cli.main(["train", "stylegan", "--out", a, "--max-steps", "3", "--resume"] + common) == 0
    assert cli.main(["train", "stylegan", "--out", b, "--max-steps", "3"] + common) == 0
    pa, pb = _params(os.path.join(a, "checkpoint.safetensors")), _params(os.path.join(b, "checkpoint.safetensors"))
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


def test_stylegan_step_leaves_d_untouched_by_the_g_step():
    """The G step freezes D's weights (no gradients for them) and gives requires_grad back; the D update is the
    same as without the freeze (D's gradients are cleared before the next D step anyway)."""
    import minigen as mg
    from minigen import optim
    from minigen.models.stylegan import StyleDiscriminator, StyleGenerator
    from minigen.recipes import stylegan as recipe

    mg.manual_seed(0)
    G, D = StyleGenerator(4, 4, 8, 1, tanh=True, up="transposed"), StyleDiscriminator(4)
    og, od = optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.99)), optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99))
    step = recipe.stylegan_step(G, D, og, od, 4, r1_every=1, mixing_prob=0.5)
    seen = {}
    d_step = od.step

    def record_then_step():                 # D's gradients when the D update is made
        seen.update({id(p): p.grad.numpy().copy() for p in D.parameters()})
        d_step()

    od.step = record_then_step
    out = step((mg.rand(4, 1, 28, 28), None))
    assert {"d_loss", "g_loss", "r1"} <= set(out)
    assert all(p.requires_grad for p in D.parameters()) and all(p.requires_grad for p in G.parameters())
    # after the G step D's gradients are still exactly those of its own update: the G step added nothing
    assert len(seen) == len(list(D.parameters()))
    for p in D.parameters():
        np.testing.assert_array_equal(p.grad.numpy(), seen[id(p)])
    assert all(p.grad is not None and np.abs(p.grad.numpy()).sum() > 0 for p in G.synthesis.convs[0].parameters())


def test_stylegan_recipe_defaults_and_old_run_configs():
    """The recipe's defaults are the measured equal-CPU configuration (width 48, the up blocks' conv before the
    upsampling, noise strengths at lr x 0.1); a run config from before these options (no 'up', no
    'noise_lr_mul') rebuilds the generator it trained: bilinear upsampling first, noise lr x 1."""
    from minigen.recipes import stylegan as recipe

    p = argparse.ArgumentParser()
    recipe.add_arguments(p)
    a = p.parse_args([])
    assert (a.width, a.up, a.noise_lr_mul, a.d_kernel, a.g_output) == (48, "after", 0.1, 5, "tanh")
    G = recipe.build_model(a).G
    assert [c.up for c in G.synthesis.convs] == [None, None, "after", None, "after", None]
    assert all(c.noise_lr_mul == 0.1 for c in G.synthesis.convs) and G.synthesis.const.shape == (1, 48, 7, 7)
    old = vars(p.parse_args(["--width", "8"]))
    del old["up"], old["noise_lr_mul"], old["d_kernel"]
    G = recipe.build_model(argparse.Namespace(**old)).G
    assert G.synthesis.up == "bilinear" and all(c.up is None and c.noise_lr_mul == 1.0 for c in G.synthesis.convs)


def test_classifier_resume_from_a_stop_point_at_an_epoch_end(tmp_path):
    """--max-steps 4 ends exactly on the last batch of epoch 1: the resumed run must not count that epoch end
    twice (nor step the per-epoch lr schedule twice)."""
    common = ["--width", "4", "--hidden", "8"] + TINY       # 64 images / 16 = 4 batches per epoch
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert cli.main(["train", "classifier", "--out", a, "--max-steps", "4"] + common) == 0
    assert cli.main(["train", "classifier", "--out", a, "--max-steps", "8", "--resume"] + common) == 0
    assert cli.main(["train", "classifier", "--out", b, "--max-steps", "8"] + common) == 0
    ca, cb = load(os.path.join(a, "checkpoint.safetensors")), load(os.path.join(b, "checkpoint.safetensors"))
    assert ca["epoch"] == cb["epoch"] == 2
    pa, pb = _params(os.path.join(a, "checkpoint.safetensors")), _params(os.path.join(b, "checkpoint.safetensors"))
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


_SMALL = {"gan": ["--g-hidden", "16", "--d-hidden", "8", "--d-steps", "2"], "cgan": ["--g-width", "8", "--d-width", "4"],
          "wgan-gp": ["--g-width", "8", "--d-width", "4", "--n-critic", "2"],
          "vae": ["--latent-dim", "2", "--hidden", "16"], "mlp": ["--hidden", "8"],
          "cnn": ["--width", "4", "--hidden", "8"]}


@pytest.mark.parametrize("name", sorted(_SMALL))
def test_every_image_recipe_resumes_bit_identically(tmp_path, name):
    """--max-steps 2, then --max-steps 5 --resume == --max-steps 5 at once (stops mid-epoch and past an epoch end)."""
    scorer = ["--classifier", "none"] if name in ("gan", "cgan", "wgan-gp") else []
    common = _SMALL[name] + scorer + ["--limit", "48"] + TINY[2:]      # 48 images / 16 = 3 batches per epoch
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert cli.main(["train", name, "--out", a, "--max-steps", "2"] + common) == 0
    assert cli.main(["train", name, "--out", a, "--max-steps", "5", "--resume"] + common) == 0
    assert cli.main(["train", name, "--out", b, "--max-steps", "5"] + common) == 0
    ca, cb = load(os.path.join(a, "checkpoint.safetensors")), load(os.path.join(b, "checkpoint.safetensors"))
    assert ca["step"] == cb["step"] == 5 and ca["epoch"] == cb["epoch"] == 1
    pa, pb = _params(os.path.join(a, "checkpoint.safetensors")), _params(os.path.join(b, "checkpoint.safetensors"))
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)
