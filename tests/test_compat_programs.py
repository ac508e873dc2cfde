"""Programs in the style of public PyTorch examples (tests/compat_programs.py) run on torch and, with only
their import lines changed, on minigen: same weights, data and noise -> same losses and final weights."""
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.dirname(__file__))
import compat_programs as cp  # noqa: E402


def _data(name):
    rng = np.random.default_rng(0)
    if name == "vae":
        return {"x": rng.random((48, 1, 28, 28), dtype=np.float32), "eps": rng.standard_normal((48, 20)).astype(
            np.float32), "z": rng.standard_normal((4, 20)).astype(np.float32)}
    if name == "mnist_cnn_adadelta":
        x = rng.random((16, 1, 28, 28), dtype=np.float32)
        return {"x": (x - 0.1307) / 0.3081, "y": rng.integers(0, 10, 16), "tx": rng.random((8, 1, 28, 28),
                dtype=np.float32), "ty": rng.integers(0, 10, 8)}
    if name == "word_lstm_lm":
        return {"train": rng.integers(0, 50, 120), "val": rng.integers(0, 50, 40), "rnn_type": np.array("LSTM")}
    if name == "transformer_lm":
        return {"tokens": rng.integers(0, 30, 100)}
    if name == "forward_forward":
        y = rng.integers(0, 10, 40)
        return {"x": rng.random((40, 64), dtype=np.float32), "y": y, "y_neg": (y + rng.integers(1, 10, 40)) % 10}
    if name == "gat":
        a = (rng.random((16, 16)) < 0.2).astype(np.float32)
        return {"features": (rng.random((16, 10)) < 0.4).astype(np.float32), "labels": rng.integers(0, 3, 16),
                "adj": np.maximum(a, a.T), "perm": rng.permutation(16)}
    if name == "regression":
        return {"W": (rng.standard_normal((4, 1)) * 5).astype(np.float32),
                "b": (rng.standard_normal(1) * 5).astype(np.float32),
                "x": rng.standard_normal((20, 32)).astype(np.float32) * 0.5}
    if name == "translation":
        src = rng.integers(3, 20, (7, 4))
        src[5:, 1] = 1  # padding
        tgt = rng.integers(3, 22, (6, 4))
        tgt[0] = 2
        tgt[4:, 2] = 1
        return {"src": src, "tgt": tgt}
    if name == "super_resolution":
        return {"lo": rng.random((2, 1, 8, 8), dtype=np.float32), "hi": rng.random((2, 1, 24, 24), dtype=np.float32)}
    if name == "fast_neural_style":
        return {"x": rng.random((2, 3, 16, 16), dtype=np.float32), "style": rng.random((1, 3, 16, 16),
                dtype=np.float32)}
    if name == "reinforce":
        return {"states": rng.standard_normal((3, 10, 4)), "actions": rng.integers(0, 2, (3, 10)),
                "rewards": rng.random((3, 10))}
    if name == "time_sequence_lbfgs":  # sine waves with random phase, as the time-series example builds them
        x = np.arange(16)[None, :] + rng.integers(-20, 20, (8, 1))
        return {"waves": np.sin(x / 1.0 / 4).astype(np.float64)}
    if name == "micrograd_engine":
        return {}
    if name == "dcgan":
        return {"images": rng.uniform(-1, 1, (4, 3, 64, 64)).astype(np.float32),
                "noise": rng.standard_normal((1, 4, 16, 1, 1)).astype(np.float32),
                "fixed_noise": rng.standard_normal((3, 16, 1, 1)).astype(np.float32)}
    if name.startswith("nanogpt"):
        return {"tokens": rng.integers(0, 40, 400).astype(np.uint16), "ix": rng.integers(0, 380, (6, 3)),
                "flash": np.array(name == "nanogpt_flash")}
    if name == "packed_sentence_lm":
        return {"sentences": [rng.integers(1, 30, n) for n in (7, 3, 9, 5, 2)]}
    raise KeyError(name)


def _init_state(tmod, name):
    torch.manual_seed(0)
    if name == "micrograd_engine":
        return {}
    model = {"forward_forward": lambda: tmod.Net([64, 32, 32]),
             "gat": lambda: tmod.GAT(10, 8, 4, 3, concat=True),
             "regression": lambda: tmod.torch.nn.Linear(4, 1),
             "translation": lambda: tmod.Seq2SeqTransformer(2, 2, 16, 2, 20, 22, dim_feedforward=32, dropout=0.0),
             "super_resolution": lambda: tmod.Net(3), "fast_neural_style": lambda: tmod.TransformerNet(),
             "reinforce": lambda: tmod.Policy(),
             "time_sequence_lbfgs": lambda: tmod.Sequence().double(),
             "transformer_lm": lambda: tmod.TransformerModel(30, 16, 2, 32, 2, dropout=0.0),
             "dcgan": lambda: tmod.Both(), "nanogpt_flash": lambda: tmod.GPT(tmod.GPTConfig(flash=True)),
             "nanogpt_manual": lambda: tmod.GPT(tmod.GPTConfig(flash=False)), "vae": lambda: tmod.VAE(),
             "mnist_cnn_adadelta": lambda: tmod.Net(),
             "word_lstm_lm": lambda: tmod.RNNModel("LSTM", 50, 16, 24, 2, dropout=0.0),
             "packed_sentence_lm": lambda: tmod.SentenceLM(30, 8, 12)}[name]()
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _run(name, patched=True):
    src = cp.PROGRAMS[name]
    tmod = cp.load(src, f"torch_{name}")
    msrc = cp.port(src)
    if patched:
        msrc = cp.apply_patches(msrc, name)
    mmod = cp.load(msrc, f"minigen_{name}")
    init = _init_state(tmod, name)
    data = _data(name)
    # torch.compile would spend minutes in inductor on these CPUs: the torch run skips it (minigen's is the identity)
    tout = tmod.main({k: v.copy() for k, v in init.items()}, dict(data, compile=False))
    mout = mmod.main({k: v.copy() for k, v in init.items()}, data)
    return tout, mout


def test_port_changes_only_import_lines():
    src = cp.PROGRAMS["word_lstm_lm"]
    ported = cp.port(src)
    changed = [(a, b) for a, b in zip(src.splitlines(), ported.splitlines()) if a != b]
    assert changed and all(a.startswith(("import torch", "from torch")) for a, _ in changed)
    assert "import minigen as torch" in ported and "torch.nn.utils.clip_grad_norm_" in ported


@pytest.mark.parametrize("name", sorted(cp.PROGRAMS))
def test_program_matches_torch(name):
    tout, mout = _run(name)
    np.testing.assert_allclose(mout["losses"], tout["losses"], rtol=2e-4, atol=1e-5, err_msg=name)
    assert sorted(mout["state"]) == sorted(tout["state"])
    for k, v in tout["state"].items():
        np.testing.assert_allclose(mout["state"][k], v, rtol=2e-3, atol=2e-5, err_msg=f"{name}: {k}")


@pytest.mark.parametrize("name", sorted(n for n, p in cp.PATCHES.items() if p))
def test_program_runs_with_the_import_lines_alone(name, tmp_path):
    """Runs the unpatched minigen port in a fresh interpreter (so submodules that other tests imported do not
    help it). Expected to fail while the program still needs a patch; passing means the patch can go."""
    import pickle
    import subprocess

    why = "; ".join(w for _, _, w in cp.PATCHES[name])
    tmod = cp.load(cp.PROGRAMS[name], f"torch_{name}")
    with open(tmp_path / "inputs.pkl", "wb") as f:  # test inputs only (NumPy arrays), not a checkpoint
        pickle.dump((_init_state(tmod, name), _data(name)), f)
    code = ("import sys, pickle; sys.path.insert(0, %r); import compat_programs as cp; "
            "init, data = pickle.load(open(%r, 'rb')); "
            "cp.load(cp.port(cp.PROGRAMS[%r]), 'unpatched').main(init, data)"
            % (os.path.dirname(__file__), str(tmp_path / "inputs.pkl"), name))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        pytest.xfail(f"still needs: {why} ({last[:200]})")
    pytest.fail(f"{name} now runs unedited: delete its PATCHES entry ({why})")
