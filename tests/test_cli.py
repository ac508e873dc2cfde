"""The ``minigen`` command line: --help everywhere, info, train mlp/cnn end to end, lazy recipe loading,
sample/bench/gradcheck, demo's help."""
import json
import os
import subprocess
import sys
import types

import pytest

from minigen import cli, recipes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


@pytest.mark.parametrize("argv", [[], ["info"], ["train"], ["train", "mlp"], ["train", "cnn"], ["demo"], ["sample"],
                                  ["bench"], ["gradcheck"]])
def test_help_on_every_subcommand(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv + ["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: minigen")
    if argv[:1] == ["train"] and len(argv) == 2:
        for opt in ("--epochs", "--batch-size", "--lr", "--out", "--resume", "--seed"):
            assert opt in out
        assert "--hidden" in out and ("--width" in out) == (argv[1] == "cnn")
    if argv == ["train"]:
        assert all(n in out for n in recipes.names())
    if argv == ["sample"]:
        assert "RUN_DIR" in out and "--n" in out


def test_top_level_help_says_what_demo_does(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for cmd in ("info", "train", "sample", "demo", "bench", "gradcheck"):
        assert cmd in out
    assert "MLP" not in out   # it used to claim that the demo trains an MLP
    assert "DCGAN" in out.upper() and "GPT" in out.upper()


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "usage: minigen" in capsys.readouterr().err
    assert cli.main(["train"]) == 2


def test_info_subprocess_and_json():
    r = _run("-m", "minigen.cli", "info")
    assert r.returncode == 0, r.stderr
    for key in ("python", "numpy", "numba", "minigen", "kernels_backend", "cuda_available", "kernel_threads"):
        assert key in r.stdout
    r = _run("-m", "minigen", "info", "--json")
    info = json.loads(r.stdout)
    import numpy

    assert info["numpy"] == numpy.__version__ and isinstance(info["cuda_available"], bool)
    assert info["python"].count(".") == 2


def test_version_flag(capsys):
    import minigen

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"minigen {minigen.__version__}"


def test_train_mlp_end_to_end_resume_and_sample(tmp_path, capsys):
    out = tmp_path / "mlp"
    assert cli.main(["train", "mlp", "--limit", "500", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "val accuracy" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["val_acc"] > 0.25  # chance is 0.10; 8 Adam steps on 500 images get well above it
    assert summary["step"] == 8 and summary["epoch"] == 1
    for f in ("metrics.jsonl", "metrics.csv", "loss_curve.png", "checkpoint.safetensors", "config.json",
              "classifier.safetensors"):
        assert (out / f).exists(), f
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert any(r["split"] == "val" and "val_acc" in r for r in rows)
    # --resume continues from epoch 1 to epoch 2 and improves
    assert cli.main(["train", "mlp", "--limit", "500", "--epochs", "2", "--out", str(out), "--resume",
                     "--no-progress"]) == 0
    s2 = json.loads((out / "summary.json").read_text())
    assert s2["resumed"] and s2["step"] == 16 and s2["val_loss"] < summary["val_loss"]
    assert cli.main(["sample", str(out), "--n", "8"]) == 0
    assert (out / "predictions.png").exists() and (out / "predictions.txt").exists()
    assert cli.main(["sample", "--n", "8", "--out", str(tmp_path / "p.png"), str(out)]) == 0   # options first
    assert (tmp_path / "p.png").exists()


def test_train_cnn_runs_the_zoo_cnn(tmp_path, capsys):
    out = tmp_path / "cnn"
    assert cli.main(["train", "cnn", "--limit", "128", "--epochs", "1", "--batch-size", "32", "--out", str(out),
                     "--no-progress"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["step"] == 4 and 0.0 <= s["val_acc"] <= 1.0 and s["val_loss"] < 2.35  # below log(10) = 2.303 + noise
    assert s["config"]["arch"] == "cnn" and s["config"]["width"] == 32   # the MNISTClassifier, not a second CNN


def test_recipes_load_lazily_and_a_broken_one_fails_loudly_only_when_used(monkeypatch, capsys):
    broken = types.ModuleType("minigen.recipes.broken_one")

    def explode(name):
        raise ImportError("boom: a missing dependency")

    monkeypatch.setattr(recipes, "RECIPES", recipes.RECIPES + ("broken_one",))
    real_import = recipes.importlib.import_module
    monkeypatch.setattr(recipes.importlib, "import_module",
                        lambda name: explode(name) if name.endswith("broken_one") else real_import(name))
    assert broken  # the module object never gets used: its import fails
    # other commands and other recipes do not touch it
    assert cli.main(["info"]) == 0
    with pytest.raises(SystemExit):
        cli.main(["train", "gpt", "--help"])
    # the list marks it, it does not hide it
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "broken-one" in out and "unavailable: ImportError: boom" in out
    # using it raises the real error
    with pytest.raises(ImportError, match="boom"):
        cli.main(["train", "broken-one"])


def test_load_checks_the_convention(monkeypatch):
    fake = types.ModuleType("minigen.recipes.half_done")
    fake.NAME, fake.HELP = "half-done", "x"
    fake.add_arguments = fake.run = lambda *a: 0
    monkeypatch.setitem(sys.modules, "minigen.recipes.half_done", fake)
    monkeypatch.setattr(recipes, "RECIPES", recipes.RECIPES + ("half_done",))
    with pytest.raises(AttributeError, match="missing sample"):
        recipes.load("half-done")
    fake.sample = lambda a: 0
    fake.NAME = "other"
    with pytest.raises(AttributeError, match="NAME is 'other'"):
        recipes.load("half-done")
    with pytest.raises(KeyError, match="unknown recipe"):
        recipes.load("no-such-recipe")


def test_gradcheck_command(capsys):
    assert cli.main(["gradcheck", "--list"]) == 0
    listed = capsys.readouterr().out.split()[1:]
    assert set(listed) == set(cli.GRADCHECK_OPS) and {"matmul", "conv2d", "layer_norm", "sdpa"} <= set(listed)
    assert cli.main(["gradcheck", "mul", "tanh", "layer_norm", "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count(" ok ") == 6 and "6 passed, 0 failed" in out
    assert cli.main(["gradcheck", "nope"]) == 1
    assert "unknown op" in capsys.readouterr().err


def test_gradcheck_command_catches_a_wrong_gradient(monkeypatch, capsys):
    """A gradient that is wrong must make the command fail (exit 1): the check can fail."""
    def wrong_mul(a, b):
        y = a * 1.0
        if y.requires_grad:
            y.register_hook(lambda g: g * 1.5)   # the gradient reaching a is 1.5x the true one
        return y * b

    real = cli._ops

    def ops():
        table = real()
        table["mul"] = (wrong_mul, table["mul"][1])
        return table

    monkeypatch.setattr(cli, "_ops", ops)
    assert cli.main(["gradcheck", "mul", "--trials", "1"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_gradcheck_all_second_order_subprocess():
    r = _run("-m", "minigen", "gradcheck", "all", "--trials", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(cli.GRADCHECK_OPS)} passed, 0 failed" in r.stdout
    r = _run("-m", "minigen", "gradcheck", "tanh", "softmax", "--second-order", "--trials", "1")
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout + r.stderr


def test_bench_command_runs_a_named_group(monkeypatch, capsys):
    """`minigen bench GROUP` calls benchmarks/run.py's main with --only GROUP (the suite itself is not run here)."""
    from minigen.recipes import _common

    calls = []
    fake = types.SimpleNamespace(GROUPS={"tiny": None, "conv": None}, main=lambda argv: calls.append(argv))
    monkeypatch.setattr(_common, "benchmarks_module", lambda name: fake if name == "run" else None)
    assert cli.main(["bench", "tiny", "--quick", "--no-write"]) == 0
    assert calls == [["--only", "tiny", "--quick", "--no-write"]]
    assert cli.main(["bench"]) == 0 and calls[-1] == []
    assert cli.main(["bench", "nope"]) == 1
    assert "unknown benchmark group" in capsys.readouterr().err


def test_benchmarks_module_finds_the_real_suite():
    from minigen.recipes import _common

    run = _common.benchmarks_module("run")
    assert "tiny" in run.GROUPS and callable(run.main)


def test_resume_from_a_mismatched_or_truncated_checkpoint_is_one_clear_line(tmp_path):
    """issue 16: a bad checkpoint on --resume gives a one-line CheckpointError, exit 1, no Python traceback."""
    out = str(tmp_path / "mlp")
    base = ["-m", "minigen", "train", "mlp", "--limit", "64", "--epochs", "1", "--out", out, "--no-progress"]
    assert _run(*base, "--hidden", "8").returncode == 0
    r = _run(*base, "--hidden", "16", "--resume")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "minigen: error:" in r.stderr and "shape" in r.stderr and "(8, 784)" in r.stderr
    ckpt = os.path.join(out, "checkpoint.safetensors")
    with open(ckpt, "rb") as f:
        head = f.read(3000)
    with open(ckpt, "wb") as f:
        f.write(head)
    r = _run(*base, "--hidden", "8", "--resume")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "truncated" in r.stderr


def test_train_and_sample_wavenet_through_the_cli(tmp_path, capsys):
    """The WaveNet recipe (minigen.recipes.wavenet) is reached like every other: train, then sample audio."""
    out = str(tmp_path / "wn")
    assert cli.main(["train", "wavenet", "--out", out, "--steps", "2", "--batch-size", "2", "--window", "50",
                     "--residual-channels", "4", "--gate-channels", "4", "--skip-channels", "4", "--end-channels", "8",
                     "--layers-per-stack", "2", "--stacks", "1", "--eval-every", "0", "--no-baselines",
                     "--no-progress", "--checkpoint-every", "2"]) == 0
    assert json.load(open(os.path.join(out, "config.json")))["recipe"] == "wavenet"
    assert cli.main(["sample", out, "--digits", "3", "--seconds", "0.05", "--out", str(tmp_path / "audio")]) == 0
    wavs = [f for f in os.listdir(tmp_path / "audio") if f.endswith(".wav")]
    assert len(wavs) == 1 and "3" in wavs[0]
