"""The language-model recipes (``minigen train gpt|char-rnn|bpe|ngram|word2vec|seq2seq``) end to end on tiny
settings through the CLI: outputs, resume from any stop point, and ``minigen sample`` from every run."""
import json
import os

import numpy as np
import pytest

import minigen as mg
from minigen import cli, recipes


def _summary(out):
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)


def _weights(out):
    return {k: np.asarray(v) for k, v in mg.load(os.path.join(out, "checkpoint.safetensors"))["model"].items()}


def test_recipe_names():
    text = {"gpt", "char-rnn", "bpe", "ngram", "word2vec", "seq2seq"}
    assert text <= set(recipes.names())
    assert recipes.module_name("char-rnn") == "char_rnn" and recipes.load("char_rnn").NAME == "char-rnn"
    with pytest.raises(KeyError, match="unknown recipe"):
        recipes.module_name("nope")


_GPT_TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--batch-size", "2", "--block-size", "8",
             "--eval-iters", "1", "--eval-interval", "2", "--samples", "20", "--no-progress"]


def test_gpt_cli_trains_resumes_and_samples(tmp_path, capsys):
    out = str(tmp_path / "gpt")
    assert cli.main(["train", "gpt"] + _GPT_TINY + ["--iters", "2", "--out", out]) == 0
    assert _summary(out)["step"] == 2
    assert cli.main(["train", "gpt"] + _GPT_TINY + ["--iters", "4", "--out", out, "--resume"]) == 0
    s = _summary(out)
    assert s["step"] == 4 and s["val_loss"] > 0 and s["s_per_iter"] > 0
    for f in ("metrics.jsonl", "metrics.csv", "loss_curve.png", "samples.txt", "checkpoint.safetensors",
              "tokenizer.json", "config.json"):
        assert os.path.exists(os.path.join(out, f)), f
    with open(os.path.join(out, "samples.txt")) as f:
        assert len(f.read()) == 21  # the prompt "\n" + 20 characters
    assert "gpt:" in capsys.readouterr().out
    # minigen sample: the same text with and without the KV cache, seeded
    a, b = str(tmp_path / "a.txt"), str(tmp_path / "b.txt")
    assert cli.main(["sample", out, "--n", "30", "--prompt", "ROMEO:", "--out", a, "--seed", "2"]) == 0
    assert cli.main(["sample", out, "--n", "30", "--prompt", "ROMEO:", "--out", b, "--seed", "2", "--no-cache"]) == 0
    ta, tb = open(a).read(), open(b).read()
    assert ta == tb and ta.startswith("ROMEO:") and len(ta) == 36
    assert "tokens/s" in capsys.readouterr().err


def test_gpt_iters_15_then_40_resume_runs_steps_15_to_39(tmp_path):
    """issue 16: `--iters 15` then `--iters 40 --resume` used to do zero steps. With the same schedule
    (--lr-decay-iters 40) the split run equals the uninterrupted one bit for bit; with the default schedule
    (decay over --iters) it still runs steps 15..39."""
    base = _GPT_TINY + ["--samples", "0", "--eval-interval", "10", "--warmup", "5"]
    a, b, c = str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c")
    sched = ["--lr-decay-iters", "40"]
    assert cli.main(["train", "gpt", "--out", a, "--iters", "15"] + base + sched) == 0
    assert cli.main(["train", "gpt", "--out", a, "--iters", "40", "--resume"] + base + sched) == 0
    assert cli.main(["train", "gpt", "--out", b, "--iters", "40"] + base + sched) == 0
    assert _summary(a)["step"] == 40 and _summary(a)["resumed"]
    wa, wb = _weights(a), _weights(b)
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    rows = [json.loads(line) for line in open(os.path.join(a, "metrics.jsonl"))]
    assert [r["step"] for r in rows if r["split"] == "train"] == [10, 20, 30, 40]   # one row per 10 steps
    assert cli.main(["train", "gpt", "--out", c, "--iters", "15"] + base) == 0
    assert cli.main(["train", "gpt", "--out", c, "--iters", "40", "--resume"] + base) == 0
    assert mg.load(os.path.join(c, "checkpoint.safetensors"))["step"] == 40


def test_gpt_cli_on_bpe_tokens(tmp_path):
    out = str(tmp_path / "gpt-bpe")
    assert cli.main(["train", "gpt"] + _GPT_TINY + ["--iters", "1", "--out", out, "--tokenizer", "bpe",
                                                      "--bpe-vocab", "260"]) == 0
    s = _summary(out)
    assert s["tokenizer"] == "bpe" and s["val_loss_per_char"] < s["val_loss"]  # > 1 char per token
    assert os.path.exists(os.path.join(out, "bpe.json"))
    assert cli.main(["sample", out, "--n", "5", "--prompt", "the"]) == 0
    assert open(os.path.join(out, "sample.txt")).read().startswith("the")


_RNN = ["--cell", "gru", "--hidden", "8", "--layers", "1", "--batch-size", "4", "--seq-len", "8",
        "--eval-batch-size", "2000", "--no-progress"]


def test_char_rnn_cli_resume_and_sample(tmp_path):
    out, ref = str(tmp_path / "rnn"), str(tmp_path / "ref")
    assert cli.main(["train", "char-rnn"] + _RNN + ["--iters", "3", "--eval-interval", "2", "--samples", "10",
                                                     "--out", out]) == 0
    s = _summary(out)
    assert s["cell"] == "gru" and s["step"] == 3 and abs(s["val_bits_per_char"] * 0.6931 - s["val_loss"]) < 1e-3
    assert os.path.exists(os.path.join(out, "samples.txt")) and os.path.exists(os.path.join(out, "loss_curve.png"))
    # 3 (not a checkpoint multiple) then --resume to 5 == 5 at once, bit for bit
    assert cli.main(["train", "char-rnn"] + _RNN + ["--iters", "5", "--eval-interval", "2", "--samples", "0",
                                                     "--out", out, "--resume"]) == 0
    assert cli.main(["train", "char-rnn"] + _RNN + ["--iters", "5", "--eval-interval", "2", "--samples", "0",
                                                     "--out", ref]) == 0
    wa, wb = _weights(out), _weights(ref)
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    path = str(tmp_path / "s.txt")
    assert cli.main(["sample", out, "--n", "12", "--prime", "KING", "--out", path, "--temperature", "0"]) == 0
    text = open(path).read()
    assert text.startswith("KING") and len(text) == 16


def test_bpe_and_ngram_cli_and_sample(tmp_path, capsys):
    out = str(tmp_path / "bpe")
    assert cli.main(["train", "bpe", "--vocab-size", "270", "--out", out]) == 0
    s = _summary(out)
    assert s["merges"] == 14 and s["roundtrip_exact"] and s["chars_per_token"] > 1.0
    assert s["first_merges"][0] in (" t", "e ", "th", "he")  # the most frequent English byte pair
    capsys.readouterr()
    assert cli.main(["sample", out, "--text", "the thing"]) == 0
    pieces = capsys.readouterr().out.splitlines()[0].split("|")
    assert "".join(pieces) == "the thing" and len(pieces) < 9
    out = str(tmp_path / "ngram")
    assert cli.main(["train", "ngram", "--orders", "1,3", "--k", "1", "--samples", "30", "--out", out]) == 0
    s = _summary(out)
    rows = {(r["order"], r["smoothing"]): r["val_nll"] for r in s["rows"]}
    assert rows[(3, "kn")] < rows[(1, "kn")] < 4.2  # log(65) = 4.17 is the uniform model
    assert s["best"]["order"] == 3 and s["saved_order"] == 3
    with open(os.path.join(out, "results.md")) as f:
        assert "Kneser-Ney" in f.read()
    path = str(tmp_path / "ng.txt")
    assert cli.main(["sample", out, "--n", "25", "--prime", "First", "--out", path]) == 0
    assert open(path).read().startswith("First") and len(open(path).read()) == 30


def test_word2vec_cli_resume_and_sample(tmp_path, capsys):
    out = str(tmp_path / "w2v")
    base = ["--limit-words", "10000", "--dim", "8", "--min-count", "3", "--batch-size", "512", "--words",
            "you,notaword", "--epochs", "2", "--out", out]
    assert cli.main(["train", "word2vec"] + base + ["--stop-after", "1"]) == 0
    assert cli.main(["train", "word2vec"] + base + ["--resume"]) == 0
    out2 = str(tmp_path / "w2v-straight")
    assert cli.main(["train", "word2vec"] + base[:-1] + [out2]) == 0
    np.testing.assert_array_equal(np.load(os.path.join(out, "vectors.npy")), np.load(os.path.join(out2, "vectors.npy")))
    with open(os.path.join(out, "neighbours.txt")) as f:
        text = f.read()
    assert text.startswith("you: ") and "notaword: (not in the vocabulary)" in text
    with open(os.path.join(out, "metrics.jsonl")) as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # resumed log has no duplicates
    capsys.readouterr()
    assert cli.main(["sample", out, "--words", "you", "--n", "3"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("you: ") and line.count("(") == 3
    assert line == text.splitlines()[0].split(", ")[0] + line[len(text.splitlines()[0].split(", ")[0]):]


def test_seq2seq_cli_resume_and_sample(tmp_path, capsys):
    out, ref = str(tmp_path / "s2s"), str(tmp_path / "ref")
    opts = ["--max-len", "3", "--d-model", "16", "--nhead", "2", "--layers", "1", "--ff", "16", "--batch-size", "4",
            "--eval-interval", "2", "--eval-size", "10", "--lr-decay-iters", "5", "--no-progress"]
    assert cli.main(["train", "seq2seq", "--iters", "3", "--out", out] + opts) == 0
    s = _summary(out)
    assert s["step"] == 3 and 0.0 <= s["exact_match"] <= 1.0 and len(s["examples"]) == 10
    assert "->" in capsys.readouterr().out
    assert cli.main(["train", "seq2seq", "--iters", "5", "--out", out, "--resume"] + opts) == 0
    assert cli.main(["train", "seq2seq", "--iters", "5", "--out", ref] + opts) == 0
    wa, wb = _weights(out), _weights(ref)
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    capsys.readouterr()
    assert cli.main(["sample", out, "--input", "123,9"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("->")[0].strip() == "123" and lines[1].split("->")[0].strip() == "9"
    assert cli.main(["sample", out, "--input", "12a"]) == 1
