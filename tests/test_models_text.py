"""The language-model trainers of ``minigen train <name>`` (registry_text), run end to end on tiny settings."""
import argparse
import json
import os


from minigen.models.registry_text import TEXT_MODEL_HELP, TEXT_MODELS


def _run(name, argv):
    add, run = TEXT_MODELS[name]
    p = argparse.ArgumentParser(prog=f"minigen train {name}")
    add(p)
    args = p.parse_args(argv)
    return run(args)


def _summary(out):
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)


def test_registry_names():
    assert set(TEXT_MODELS) == {"gpt", "char-rnn", "bpe", "ngram", "word2vec", "seq2seq"}
    assert set(TEXT_MODEL_HELP) == set(TEXT_MODELS)
    for add, run in TEXT_MODELS.values():
        p = argparse.ArgumentParser()
        add(p)  # every option parser builds and has defaults
        assert callable(run) and p.parse_args([]) is not None


_GPT_TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--batch-size", "2", "--block-size", "8",
             "--eval-iters", "1", "--eval-interval", "2", "--samples", "20", "--no-progress"]


def test_gpt_cli_trains_resumes_and_samples(tmp_path, capsys):
    out = str(tmp_path / "gpt")
    assert _run("gpt", _GPT_TINY + ["--iters", "2", "--out", out]) == 0
    assert _summary(out)["step"] == 2
    assert _run("gpt", _GPT_TINY + ["--iters", "4", "--out", out, "--resume"]) == 0
    s = _summary(out)
    assert s["step"] == 4 and s["val_loss"] > 0 and s["s_per_iter"] > 0
    for f in ("metrics.jsonl", "metrics.csv", "loss_curve.png", "samples.txt", "checkpoint.safetensors",
              "tokenizer.json", "config.json"):
        assert os.path.exists(os.path.join(out, f)), f
    with open(os.path.join(out, "samples.txt")) as f:
        assert len(f.read()) == 21  # the prompt "\n" + 20 characters
    assert "gpt:" in capsys.readouterr().out


def test_gpt_cli_on_bpe_tokens(tmp_path):
    out = str(tmp_path / "gpt-bpe")
    assert _run("gpt", _GPT_TINY + ["--iters", "1", "--out", out, "--tokenizer", "bpe", "--bpe-vocab", "260"]) == 0
    s = _summary(out)
    assert s["tokenizer"] == "bpe" and s["val_loss_per_char"] < s["val_loss"]  # > 1 char per token
    assert os.path.exists(os.path.join(out, "bpe.json"))


def test_char_rnn_cli(tmp_path):
    out = str(tmp_path / "rnn")
    assert _run("char-rnn", ["--cell", "gru", "--hidden", "8", "--layers", "1", "--batch-size", "4", "--seq-len",
                             "8", "--iters", "2", "--eval-interval", "2", "--eval-batch-size", "2000",
                             "--samples", "10", "--out", out, "--no-progress"]) == 0
    s = _summary(out)
    assert s["cell"] == "gru" and s["step"] == 2 and abs(s["val_bits_per_char"] * 0.6931 - s["val_loss"]) < 1e-3
    assert os.path.exists(os.path.join(out, "samples.txt")) and os.path.exists(os.path.join(out, "loss_curve.png"))


def test_bpe_and_ngram_cli(tmp_path):
    out = str(tmp_path / "bpe")
    assert _run("bpe", ["--vocab-size", "270", "--out", out]) == 0
    s = _summary(out)
    assert s["merges"] == 14 and s["roundtrip_exact"] and s["chars_per_token"] > 1.0
    assert s["first_merges"][0] in (" t", "e ", "th", "he")  # the most frequent English byte pair
    out = str(tmp_path / "ngram")
    assert _run("ngram", ["--orders", "1,3", "--k", "1", "--samples", "30", "--out", out]) == 0
    s = _summary(out)
    rows = {(r["order"], r["smoothing"]): r["val_nll"] for r in s["rows"]}
    assert rows[(3, "kn")] < rows[(1, "kn")] < 4.2  # log(65) = 4.17 is the uniform model
    assert s["best"]["order"] == 3
    with open(os.path.join(out, "results.md")) as f:
        assert "Kneser-Ney" in f.read()


def test_word2vec_cli_and_resume(tmp_path):
    out = str(tmp_path / "w2v")
    base = ["--limit-words", "10000", "--dim", "8", "--min-count", "3", "--batch-size", "512", "--words",
            "you,notaword", "--epochs", "2", "--out", out]
    assert _run("word2vec", base + ["--stop-after", "1"]) == 0
    assert _run("word2vec", base + ["--resume"]) == 0
    out2 = str(tmp_path / "w2v-straight")
    assert _run("word2vec", base[:-1] + [out2]) == 0
    import numpy as np

    np.testing.assert_array_equal(np.load(os.path.join(out, "vectors.npy")), np.load(os.path.join(out2, "vectors.npy")))
    with open(os.path.join(out, "neighbours.txt")) as f:
        text = f.read()
    assert text.startswith("you: ") and "notaword: (not in the vocabulary)" in text
    with open(os.path.join(out, "metrics.jsonl")) as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # resumed log has no duplicates


def test_seq2seq_cli(tmp_path, capsys):
    out = str(tmp_path / "s2s")
    assert _run("seq2seq", ["--max-len", "3", "--d-model", "16", "--nhead", "2", "--layers", "1", "--ff", "16",
                            "--batch-size", "4", "--iters", "2", "--eval-interval", "2", "--eval-size", "10",
                            "--out", out, "--no-progress"]) == 0
    s = _summary(out)
    assert s["step"] == 2 and 0.0 <= s["exact_match"] <= 1.0 and len(s["examples"]) == 10
    assert "->" in capsys.readouterr().out
