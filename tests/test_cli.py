"""The ``minigen`` command line: --help everywhere, info, train mlp/cnn end to end, registry, demo."""
import json
import os
import subprocess
import sys
import types

import pytest

from minigen import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


@pytest.mark.parametrize("argv", [[], ["info"], ["train"], ["train", "mlp"], ["train", "cnn"], ["demo"]])
def test_help_on_every_subcommand(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv + ["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: minigen")
    if argv[:1] == ["train"] and len(argv) == 2:
        for opt in ("--epochs", "--batch-size", "--lr", "--out", "--resume", "--seed"):
            assert opt in out
        assert ("--hidden" in out) == (argv[1] == "mlp")
    if argv == ["train"]:
        assert "mlp" in out and "cnn" in out


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


def test_train_mlp_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "mlp"
    assert cli.main(["train", "mlp", "--limit", "500", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "val accuracy" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["val_acc"] > 0.25  # chance is 0.10; 8 Adam steps on 500 images get well above it
    assert summary["step"] == 8 and summary["epoch"] == 1
    for f in ("metrics.jsonl", "metrics.csv", "loss.png", "checkpoint.safetensors"):
        assert (out / f).exists(), f
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert any(r["split"] == "val" and "val_acc" in r for r in rows)
    # --resume continues from epoch 1 to epoch 2 and improves
    assert cli.main(["train", "mlp", "--limit", "500", "--epochs", "2", "--out", str(out), "--resume",
                     "--no-progress"]) == 0
    s2 = json.loads((out / "summary.json").read_text())
    assert s2["resumed"] and s2["step"] == 16 and s2["val_loss"] < summary["val_loss"]


def test_train_cnn_runs(tmp_path, capsys):
    out = tmp_path / "cnn"
    assert cli.main(["train", "cnn", "--limit", "128", "--epochs", "1", "--batch-size", "32", "--out", str(out),
                     "--no-progress"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["step"] == 4 and 0.0 <= s["val_acc"] <= 1.0 and s["val_loss"] < 2.35  # below log(10) = 2.303 + noise


def test_registry_plugin(monkeypatch, capsys):
    calls = []

    def add(p):
        p.add_argument("--size", type=int, default=1)

    def run(args):
        calls.append(args.size)
        return 0

    fake = types.ModuleType("minigen.models.registry")
    fake.TRAINERS = {"toy": (add, run, "a toy trainer")}
    monkeypatch.setitem(sys.modules, "minigen.models.registry", fake)
    monkeypatch.setattr(cli, "TRAINERS", dict(cli.TRAINERS))
    assert cli.main(["train", "toy", "--size", "3"]) == 0 and calls == [3]
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "a toy trainer" in capsys.readouterr().out


def test_broken_registry_warns_but_cli_works(monkeypatch, capsys):
    def broken_import():
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_import_registry", broken_import)
    assert cli.main(["info"]) == 0
    cap = capsys.readouterr()
    assert "numpy" in cap.out and "registry failed to import (RuntimeError: boom)" in cap.err
