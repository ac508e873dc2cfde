"""Command-line trainers of the language models: ``minigen train <name> [options]``.

``TEXT_MODELS`` maps a name to ``(add_arguments(parser), run(args) -> exit code)``;
``TEXT_MODEL_HELP`` has a one-line description of each. Names:

- ``gpt``       decoder-only Transformer char-LM (nanoGPT's baby recipe by default; ``--tokenizer bpe``)
- ``char-rnn``  RNN / LSTM / GRU char-LM with truncated BPTT (``--cell rnn|lstm|gru``)
- ``bpe``       train a byte-level BPE tokenizer, report compression, save JSON
- ``ngram``     n-gram LMs (add-k, interpolated Kneser-Ney): the perplexity table on the validation split
- ``word2vec``  skip-gram with negative sampling on tiny-shakespeare words; nearest neighbours
- ``seq2seq``   Transformer encoder-decoder on a generated task (reverse / sort a digit string)

Every trainer writes into ``--out``: ``metrics.jsonl`` (+ ``.csv``), a ``checkpoint.safetensors``
(``--resume`` continues from it), ``loss_curve.png``, what a person wants to look at (generated text,
neighbours, decoded examples) and ``summary.json`` with the measured numbers. All data is the text
bundled with minigen (tiny-shakespeare, nanoGPT's 90/10 split) or generated on the fly.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

__all__ = ["TEXT_MODELS", "TEXT_MODEL_HELP"]


def _common(p, out, iters=None, eval_interval=None):
    p.add_argument("--out", default=out, help=f"output folder (default {out})")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out if there is one")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")
    if iters is not None:
        p.add_argument("--iters", type=int, default=iters, help=f"training iterations (default {iters})")
    if eval_interval is not None:
        p.add_argument("--eval-interval", type=int, default=eval_interval,
                       help=f"evaluate every N iterations (default {eval_interval})")


def _progress(args):
    return False if args.no_progress else None


def _sampling_args(p, temperature=0.8):
    p.add_argument("--samples", type=int, default=500, help="how many tokens to generate at the end (default 500)")
    p.add_argument("--temperature", type=float, default=temperature,
                   help=f"sampling temperature (default {temperature}; 0 = greedy)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens only")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling: the smallest set with mass >= p")


def _print_summary(name, summary, out):
    show = {k: v for k, v in summary.items() if not isinstance(v, (list, dict))}
    print(f"{name}: " + json.dumps(show, indent=1))
    print(f"outputs in {out}/")


def _done(summary):
    if summary.get("interrupted"):
        print("interrupted: checkpoint saved; continue with --resume", file=sys.stderr)
        return 130
    return 0


# ============================================================================ gpt
def _gpt_args(p):
    from .gpt import BABY_CONFIG as B

    _common(p, "out/gpt", iters=B["max_iters"], eval_interval=B["eval_interval"])
    p.add_argument("--batch-size", type=int, default=B["batch_size"], help=f"default {B['batch_size']}")
    p.add_argument("--block-size", type=int, default=B["block_size"],
                   help=f"context length (default {B['block_size']})")
    p.add_argument("--n-layer", type=int, default=B["n_layer"], help=f"default {B['n_layer']}")
    p.add_argument("--n-head", type=int, default=B["n_head"], help=f"default {B['n_head']}")
    p.add_argument("--n-embd", type=int, default=B["n_embd"], help=f"default {B['n_embd']}")
    p.add_argument("--dropout", type=float, default=B["dropout"], help=f"default {B['dropout']}")
    p.add_argument("--bias", action="store_true", help="biases in Linear and LayerNorm (default: none, as nanoGPT)")
    p.add_argument("--no-tie", action="store_true", help="do not tie the output head to the token embedding")
    p.add_argument("--lr", type=float, default=B["lr"], help=f"peak AdamW learning rate (default {B['lr']})")
    p.add_argument("--min-lr", type=float, default=B["min_lr"], help=f"default {B['min_lr']}")
    p.add_argument("--warmup", type=int, default=B["warmup_iters"],
                   help=f"warmup iterations (default {B['warmup_iters']})")
    p.add_argument("--lr-decay-iters", type=int, default=None, help="end of the cosine decay (default: --iters)")
    p.add_argument("--weight-decay", type=float, default=B["weight_decay"],
                   help=f"on 2-d weights (default {B['weight_decay']})")
    p.add_argument("--grad-clip", type=float, default=B["grad_clip"],
                   help=f"max gradient norm (default {B['grad_clip']})")
    p.add_argument("--eval-iters", type=int, default=B["eval_iters"],
                   help=f"batches per loss estimate (default {B['eval_iters']})")
    p.add_argument("--tokenizer", choices=["char", "bpe"], default="char",
                   help="characters (default) or byte-level BPE")
    p.add_argument("--bpe-vocab", type=int, default=512, help="BPE vocabulary size with --tokenizer bpe (default 512)")
    p.add_argument("--prompt", default="\n", help="text the samples start from (default a newline)")
    p.add_argument("--torch-compare", action="store_true",
                   help="also train the same model in PyTorch on the same batches (needs torch) and report both")
    _sampling_args(p)


def _text_data(tokenizer, bpe_vocab, out):
    """(train_ids, val_ids, vocab_size, encode, decode, chars_per_val_token) for the chosen tokenizer."""
    import numpy as np

    from ..data import CharTokenizer, load_shakespeare

    text = load_shakespeare()
    n = int(len(text) * 0.9)
    if tokenizer == "char":
        tok = CharTokenizer.fit(text)
        ids = tok.encode_array(text)
        tok.save(os.path.join(out, "tokenizer.json"))
        return ids[:n], ids[n:], tok.vocab_size, tok.encode, tok.decode, 1.0
    from .bpe import BPETokenizer

    path = os.path.join(out, "bpe.json")
    if os.path.exists(path):
        tok = BPETokenizer.load(path)
    else:
        tok = BPETokenizer.train(text[:n], bpe_vocab)  # merges learnt on the training split only
        tok.save(path)
    tr = np.array(tok.encode(text[:n]), dtype=np.int64)
    va = np.array(tok.encode(text[n:]), dtype=np.int64)
    return tr, va, tok.vocab_size, tok.encode, tok.decode, (len(text) - n) / len(va)


def _run_gpt(args):
    import numpy as np

    from .gpt import TrainConfig, train_gpt

    os.makedirs(args.out, exist_ok=True)
    tr, va, V, encode, decode, cpt = _text_data(args.tokenizer, args.bpe_vocab, args.out)
    cfg = TrainConfig(block_size=args.block_size, batch_size=args.batch_size, n_layer=args.n_layer,
                      n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout, bias=args.bias,
                      tie_weights=not args.no_tie, max_iters=args.iters, lr=args.lr, min_lr=args.min_lr,
                      warmup_iters=args.warmup, lr_decay_iters=args.lr_decay_iters or args.iters,
                      weight_decay=args.weight_decay, grad_clip=args.grad_clip, eval_interval=args.eval_interval,
                      eval_iters=args.eval_iters, seed=1337 if args.seed is None else args.seed)
    print(f"gpt: {args.tokenizer} tokens, vocab {V}, train {len(tr):,} / val {len(va):,} tokens", file=sys.stderr)
    prompt = encode(args.prompt) if args.prompt else [0]
    model, summary, _ = train_gpt(cfg, tr, va, V, args.out, resume=args.resume, progress=_progress(args),
                                  decode=decode, sample_tokens=0)
    if args.samples:
        import minigen as mg

        out = model.generate(np.array([prompt], dtype=np.int64), args.samples, args.temperature, args.top_k,
                             args.top_p, generator=mg.Generator().manual_seed(cfg.seed + 3))
        text = decode(out.numpy()[0].tolist())
        with open(os.path.join(args.out, "samples.txt"), "w", encoding="utf-8") as f:
            f.write(text)
        print("---- sample ----\n" + text + "\n----------------")
    summary["tokenizer"] = args.tokenizer
    if args.tokenizer == "bpe" and summary.get("val_loss") is not None:
        # per-character loss, comparable to the char models: nats/token * tokens/char
        summary["val_loss_per_char"] = summary["val_loss"] / cpt
    if args.torch_compare:
        from .gpt import train_gpt_torch

        summary["torch"] = train_gpt_torch(cfg, tr, va, V)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    _print_summary("gpt", summary, args.out)
    if "torch" in summary:
        print("torch: " + json.dumps(summary["torch"], indent=1))
    return _done(summary)


# ============================================================================ char-rnn
def _char_rnn_args(p):
    _common(p, "out/char-rnn", iters=1000, eval_interval=200)
    p.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="lstm", help="recurrent cell (default lstm)")
    p.add_argument("--hidden", type=int, default=128, help="hidden units per layer (default 128)")
    p.add_argument("--layers", type=int, default=2, help="default 2")
    p.add_argument("--dropout", type=float, default=0.0, help="between layers (default 0)")
    p.add_argument("--batch-size", type=int, default=50, help="parallel streams (default 50)")
    p.add_argument("--seq-len", type=int, default=50, help="BPTT length (default 50)")
    p.add_argument("--lr", type=float, default=2e-3, help="RMSprop learning rate (default 2e-3)")
    p.add_argument("--alpha", type=float, default=0.95, help="RMSprop decay (default 0.95)")
    p.add_argument("--grad-clip", type=float, default=5.0, help="gradient clip (default 5)")
    p.add_argument("--clip-mode", choices=["value", "norm"], default="value",
                   help="clamp each gradient element (char-rnn, default) or the global norm")
    p.add_argument("--eval-batch-size", type=int, default=100,
                   help="parallel streams when scoring the validation split (default 100)")
    p.add_argument("--prime", default="\n", help="text the samples start from")
    _sampling_args(p)


def _run_char_rnn(args):
    from ..data import shakespeare_splits
    from .char_rnn import CharRNNConfig, train_char_rnn

    os.makedirs(args.out, exist_ok=True)
    tr, va, tok = shakespeare_splits()
    tok.save(os.path.join(args.out, "tokenizer.json"))
    cfg = CharRNNConfig(cell=args.cell, hidden_size=args.hidden, num_layers=args.layers, dropout=args.dropout,
                        batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr, alpha=args.alpha,
                        grad_clip=args.grad_clip, clip_mode=args.clip_mode, max_iters=args.iters,
                        eval_interval=args.eval_interval, eval_batch_size=args.eval_batch_size,
                        seed=123 if args.seed is None else args.seed)
    _, summary, text = train_char_rnn(cfg, tr, va, tok.vocab_size, args.out, resume=args.resume,
                                      progress=_progress(args), decode=tok.decode,
                                      prime=tok.encode(args.prime) if args.prime else None,
                                      sample_tokens=args.samples, temperature=args.temperature, top_k=args.top_k,
                                      top_p=args.top_p)
    if text:
        print("---- sample ----\n" + text + "\n----------------")
    _print_summary(f"char-{args.cell}", summary, args.out)
    return _done(summary)


# ============================================================================ bpe
def _bpe_args(p):
    p.add_argument("--vocab-size", type=int, default=512, help="256 bytes + merges (default 512)")
    p.add_argument("--text", default=None, help="a UTF-8 text file to train on (default: tiny-shakespeare, "
                                                "first 90%%; the last 10%% measures compression)")
    p.add_argument("--no-pretokenize", action="store_true", help="let merges cross word boundaries")
    p.add_argument("--out", default="out/bpe", help="output folder (default out/bpe)")


def _run_bpe(args):
    from ..data import load_shakespeare
    from .bpe import DEFAULT_PATTERN, BPETokenizer

    os.makedirs(args.out, exist_ok=True)
    if args.text:
        with open(args.text, encoding="utf-8") as f:
            text = f.read()
    else:
        text = load_shakespeare()
    n = int(len(text) * 0.9)
    t0 = time.perf_counter()
    tok = BPETokenizer.train(text[:n], args.vocab_size, pattern=None if args.no_pretokenize else DEFAULT_PATTERN)
    t_train = time.perf_counter() - t0
    path = os.path.join(args.out, "bpe.json")
    tok.save(path)
    held = text[n:]
    t0 = time.perf_counter()
    ids = tok.encode(held)
    t_enc = time.perf_counter() - t0
    assert tok.decode(ids) == held, "BPE round trip failed"
    nbytes = len(held.encode("utf-8"))
    summary = {"vocab_size": tok.vocab_size, "merges": len(tok.merges), "train_chars": n, "train_s": t_train,
               "heldout_chars": len(held), "heldout_tokens": len(ids), "chars_per_token": len(held) / len(ids),
               "bytes_per_token": nbytes / len(ids), "encode_s": t_enc, "roundtrip_exact": True,
               "first_merges": [tok.token_str(256 + i) for i in range(min(30, len(tok.merges)))],
               "last_merges": [tok.token_str(256 + i) for i in range(max(0, len(tok.merges) - 30), len(tok.merges))],
               "tokenizer": path}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    from ..train import MetricsLogger

    logger = MetricsLogger(args.out)
    logger.truncate(-1)
    logger.log({"split": "val", "step": len(tok.merges),
                **{k: v for k, v in summary.items() if not isinstance(v, list)}})
    example = held[:200]
    pieces = [tok.token_str(i).replace("\n", "\\n") for i in tok.encode(example)]
    with open(os.path.join(args.out, "example.txt"), "w", encoding="utf-8") as f:
        f.write(example + "\n\n" + "|".join(pieces) + "\n")
    _print_summary("bpe", summary, args.out)
    print("first merges:", " ".join(repr(s) for s in summary["first_merges"][:15]))
    print("segmentation:", "|".join(pieces[:40]))
    return 0


# ============================================================================ ngram
def _ngram_args(p):
    p.add_argument("--orders", default="1,2,3,4,5,6,7", help="n-gram orders to evaluate (default 1..7)")
    p.add_argument("--k", default="1,0.1,0.01", help="add-k values to evaluate (default 1,0.1,0.01)")
    p.add_argument("--tokenizer", choices=["char", "bpe"], default="char", help="tokens (default characters)")
    p.add_argument("--bpe-vocab", type=int, default=512, help="with --tokenizer bpe (default 512)")
    p.add_argument("--sample-order", type=int, default=None,
                   help="order of the KN model to sample from (default: best)")
    p.add_argument("--samples", type=int, default=500, help="tokens to generate (default 500)")
    p.add_argument("--seed", type=int, default=0, help="random seed for sampling")
    p.add_argument("--out", default="out/ngram", help="output folder (default out/ngram)")


def _run_ngram(args):
    import minigen as mg

    from ..data import plot_curves
    from .ngram import NGramLM

    os.makedirs(args.out, exist_ok=True)
    tr, va, V, encode, decode, cpt = _text_data(args.tokenizer, args.bpe_vocab, args.out)
    orders = [int(x) for x in args.orders.split(",")]
    ks = [float(x) for x in args.k.split(",")]
    from ..train import MetricsLogger

    logger = MetricsLogger(args.out)
    logger.truncate(-1)
    rows = []
    lines = [f"n-gram LMs on tiny-shakespeare ({args.tokenizer} tokens, vocab {V}; train {len(tr):,} / "
             f"val {len(va):,} tokens): validation cross-entropy (nats/token) and perplexity", "",
             "| order | smoothing | val nats/token | val perplexity | fit+eval s |", "|---|---|---|---|---|"]
    for n in orders:
        for sm, k in [("kn", None)] + [("add-k", k) for k in ks]:
            t0 = time.perf_counter()
            lm = NGramLM(n, V, sm, k=k or 1.0).fit(tr)
            nll = lm.nll(va)
            dt = time.perf_counter() - t0
            name = "interpolated Kneser-Ney" if sm == "kn" else f"add-k (k={k:g})"
            rows.append({"order": n, "smoothing": sm, "k": k, "val_nll": nll, "val_ppl": math.exp(nll), "seconds": dt,
                         **({"val_nll_per_char": nll / cpt} if args.tokenizer == "bpe" else {})})
            logger.log({"split": "val", "step": len(rows), **rows[-1]})
            lines.append(f"| {n} | {name} | {nll:.4f} | {math.exp(nll):.3f} | {dt:.2f} |")
            print(lines[-1], flush=True)
    best = min((r for r in rows if r["smoothing"] == "kn"), key=lambda r: r["val_nll"])
    lines += ["", f"best: order {best['order']} Kneser-Ney, {best['val_nll']:.4f} nats/token "
                  f"(perplexity {best['val_ppl']:.3f})"]
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    curves = {"Kneser-Ney": [(r["order"], r["val_nll"]) for r in rows if r["smoothing"] == "kn"]}
    for k in ks:
        curves[f"add-k {k:g}"] = [(r["order"], r["val_nll"]) for r in rows if r["k"] == k]
    plot_curves(curves, os.path.join(args.out, "loss_curve.png"), title="n-gram LM, validation",
                xlabel="order n", ylabel="cross-entropy (nats/token)")
    n_s = args.sample_order or best["order"]
    lm = NGramLM(n_s, V, "kn").fit(tr)
    ids = lm.generate(encode("\n"), args.samples, generator=mg.Generator().manual_seed(args.seed))
    text = decode(ids)
    with open(os.path.join(args.out, "samples.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump({"rows": rows, "best": best, "tokenizer": args.tokenizer}, f, indent=1)
    print(f"best: order {best['order']} KN: val {best['val_nll']:.4f} nats/token, perplexity {best['val_ppl']:.3f}")
    print(f"---- sample (order {n_s}, Kneser-Ney) ----\n{text}\n----------------")
    print(f"outputs in {args.out}/")
    return 0


# ============================================================================ word2vec
_W2V_QUERY = "king,queen,love,romeo,thou,blood,good,day,father,war"


def _w2v_args(p):
    _common(p, "out/word2vec")
    p.add_argument("--dim", type=int, default=64, help="vector size (default 64)")
    p.add_argument("--window", type=int, default=5, help="max context distance (default 5)")
    p.add_argument("--negatives", type=int, default=5, help="noise words per pair (default 5)")
    p.add_argument("--epochs", type=int, default=10, help="default 10")
    p.add_argument("--batch-size", type=int, default=1024, help="pairs per step (default 1024)")
    p.add_argument("--lr", type=float, default=0.025,
                   help="per-pair SGD learning rate, decayed linearly (default 0.025)")
    p.add_argument("--min-count", type=int, default=5, help="ignore rarer words (default 5)")
    p.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold t (default 1e-3)")
    p.add_argument("--words", default=_W2V_QUERY, help="words whose nearest neighbours are listed")
    p.add_argument("--limit-words", type=int, default=None, help="train on the first N words only (quick runs)")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after N epochs of this run (continue later with --resume)")


def _run_w2v(args):
    import numpy as np

    import minigen as mg

    from ..data import load_shakespeare, plot_curves
    from ..train import MetricsLogger
    from .word2vec import tokenize_words, train_word2vec

    os.makedirs(args.out, exist_ok=True)
    words = tokenize_words(load_shakespeare())[:args.limit_words]
    logger = MetricsLogger(args.out)
    ckpt = os.path.join(args.out, "checkpoint.safetensors")
    # keep the log rows the checkpoint already covers (resume), or start a fresh log
    logger.truncate(int(mg.load(ckpt)["step"]) if args.resume and os.path.exists(ckpt) else -1)
    t0 = time.perf_counter()
    model, hist = train_word2vec(words, dim=args.dim, window=args.window, negatives=args.negatives,
                                 epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                 min_count=args.min_count, sample=args.sample,
                                 generator=mg.Generator().manual_seed(0 if args.seed is None else args.seed),
                                 progress=not args.no_progress and sys.stderr.isatty(), out_dir=args.out,
                                 resume=args.resume, log=logger.log, stop_after=args.stop_after)
    elapsed = time.perf_counter() - t0
    plot_curves({"SGNS loss (batch)": [(r["step"], r["loss"]) for r in hist]},
                os.path.join(args.out, "loss_curve.png"), title="word2vec (skip-gram, negative sampling)",
                ylabel="loss per pair")
    lines, neigh = [], {}
    for w in [w.strip() for w in args.words.split(",") if w.strip()]:
        try:
            nn_ = model.most_similar(w, 8)
        except KeyError:
            lines.append(f"{w}: (not in the vocabulary)")
            continue
        neigh[w] = nn_
        lines.append(f"{w}: " + ", ".join(f"{u} ({c:.2f})" for u, c in nn_))
    with open(os.path.join(args.out, "neighbours.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    np.save(os.path.join(args.out, "vectors.npy"), model.vectors().astype(np.float32))
    with open(os.path.join(args.out, "vocab.txt"), "w") as f:
        f.write("\n".join(model.itos) + "\n")
    summary = {"vocab_size": len(model.itos), "tokens": len(words), "dim": args.dim, "epochs": args.epochs,
               "final_loss": hist[-1]["loss"] if hist else None, "elapsed_s": elapsed, "neighbours": neigh}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("\n".join(lines))
    print(f"word2vec: vocab {len(model.itos)}, final loss {summary['final_loss']:.4f}, {elapsed:.1f} s; "
          f"outputs in {args.out}/")
    return 0


# ============================================================================ seq2seq
def _s2s_args(p):
    _common(p, "out/seq2seq", iters=1500, eval_interval=250)
    p.add_argument("--task", choices=["reverse", "sort"], default="reverse", help="default reverse")
    p.add_argument("--min-len", type=int, default=1, help="shortest digit string (default 1)")
    p.add_argument("--max-len", type=int, default=10, help="longest digit string (default 10)")
    p.add_argument("--d-model", type=int, default=64, help="default 64")
    p.add_argument("--nhead", type=int, default=4, help="default 4")
    p.add_argument("--layers", type=int, default=2, help="encoder and decoder layers each (default 2)")
    p.add_argument("--ff", type=int, default=256, help="feed-forward width (default 256)")
    p.add_argument("--dropout", type=float, default=0.0, help="default 0")
    p.add_argument("--batch-size", type=int, default=64, help="default 64")
    p.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3)")
    p.add_argument("--warmup", type=int, default=100, help="default 100")
    p.add_argument("--eval-size", type=int, default=1000, help="held-out strings for exact match (default 1000)")


def _run_s2s(args):
    from .seq2seq import Seq2SeqConfig, train_seq2seq

    cfg = Seq2SeqConfig(task=args.task, min_len=args.min_len, max_len=args.max_len, d_model=args.d_model,
                        nhead=args.nhead, num_encoder_layers=args.layers, num_decoder_layers=args.layers,
                        dim_feedforward=args.ff, dropout=args.dropout, batch_size=args.batch_size,
                        max_iters=args.iters, lr=args.lr, warmup_iters=args.warmup,
                        eval_interval=args.eval_interval, eval_size=args.eval_size,
                        seed=7 if args.seed is None else args.seed)
    _, summary = train_seq2seq(cfg, args.out, resume=args.resume, progress=_progress(args))
    print("\n".join(summary["examples"]))
    _print_summary("seq2seq", summary, args.out)
    return _done(summary)


TEXT_MODELS = {
    "gpt": (_gpt_args, _run_gpt),
    "char-rnn": (_char_rnn_args, _run_char_rnn),
    "bpe": (_bpe_args, _run_bpe),
    "ngram": (_ngram_args, _run_ngram),
    "word2vec": (_w2v_args, _run_w2v),
    "seq2seq": (_s2s_args, _run_s2s),
}

TEXT_MODEL_HELP = {
    "gpt": "GPT char-LM on tiny-shakespeare (decoder-only Transformer; nanoGPT's baby config by default)",
    "char-rnn": "RNN/LSTM/GRU char-LM on tiny-shakespeare with truncated BPTT (char-rnn defaults)",
    "bpe": "train a byte-level BPE tokenizer (tiny-shakespeare by default), save it as JSON",
    "ngram": "n-gram LMs (add-k, interpolated Kneser-Ney): validation perplexity table on tiny-shakespeare",
    "word2vec": "Word2Vec skip-gram with negative sampling on tiny-shakespeare; nearest neighbours",
    "seq2seq": "Transformer encoder-decoder on a generated task (reverse a digit string)",
}
