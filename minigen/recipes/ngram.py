"""``minigen train ngram``: the n-gram LMs of :mod:`minigen.models.ngram` on tiny-shakespeare (nanoGPT's 90/10 split).

Fits every order in ``--orders`` with interpolated Kneser-Ney and with add-k for every ``--k``, writes the
validation perplexity table (``results.md``, ``metrics.jsonl``, ``loss_curve.png``), then saves the counts of
the Kneser-Ney model of ``--sample-order`` (default: the best) as ``ngram.safetensors`` and samples from it.
Counting is deterministic: there is nothing to resume.

``minigen sample RUN_DIR [--prime TEXT] [--temperature T]``: text from the saved model.
"""
from __future__ import annotations

import math
import os
import time

from . import _common as C

NAME = "ngram"
HELP = "n-gram LMs (add-k, interpolated Kneser-Ney): validation perplexity table on tiny-shakespeare"
#: why ``--ddp N`` is refused (see :func:`minigen.recipes._common.start_data_parallel`)
DATA_PARALLEL = False
NO_DATA_PARALLEL = ("an n-gram model is fitted by counting (deterministic, no gradient steps to average); it "
                    "takes seconds in one process")
MODEL_FILE = "ngram.safetensors"


def add_arguments(p):
    p.add_argument("--orders", default="1,2,3,4,5,6,7", help="n-gram orders to evaluate (default 1..7)")
    p.add_argument("--k", default="1,0.1,0.01", help="add-k values to evaluate (default 1,0.1,0.01)")
    p.add_argument("--tokenizer", choices=["char", "bpe"], default="char", help="tokens (default characters)")
    p.add_argument("--bpe-vocab", type=int, default=512, help="with --tokenizer bpe (default 512)")
    p.add_argument("--sample-order", type=int, default=None,
                   help="order of the KN model to save and sample from (default: best)")
    p.add_argument("--samples", type=int, default=500, help="tokens to generate (default 500)")
    p.add_argument("--seed", type=int, default=0, help="random seed for sampling")
    p.add_argument("--out", default="out/ngram", help="output folder (default out/ngram)")


def run(args):
    import minigen as mg
    from ..data import plot_curves
    from ..errors import InvalidArgumentError
    from ..models.ngram import NGramLM
    from ..train import MetricsLogger
    from .gpt import text_data

    os.makedirs(args.out, exist_ok=True)
    tr, va, V, encode, decode, cpt = text_data(args.tokenizer, args.bpe_vocab, args.out)
    try:
        orders = [int(x) for x in args.orders.split(",")]
        ks = [float(x) for x in args.k.split(",")]
    except ValueError:
        raise InvalidArgumentError(f"--orders / --k: comma-separated numbers, got {args.orders!r} / {args.k!r}") \
            from None
    C.write_config(args.out, NAME, args, vocab_size=int(V))
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
    mg.save(lm.state_dict(), os.path.join(args.out, MODEL_FILE))
    ids = lm.generate(encode("\n"), args.samples, generator=mg.Generator().manual_seed(args.seed))
    text = decode(ids)
    with open(os.path.join(args.out, "samples.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    C.write_json({"rows": rows, "best": best, "tokenizer": args.tokenizer, "saved_order": n_s},
                 os.path.join(args.out, "summary.json"))
    print(f"best: order {best['order']} KN: val {best['val_nll']:.4f} nats/token, perplexity {best['val_ppl']:.3f}")
    print(f"---- sample (order {n_s}, Kneser-Ney) ----\n{text}\n----------------")
    print(f"outputs in {args.out}/")
    return 0


def add_sample_arguments(p):
    p.add_argument("--prime", default="\n", help="text the sample starts from (default a newline)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1; 0 = greedy)")


def sample(args):
    import minigen as mg
    from ..errors import CheckpointError
    from ..models.ngram import NGramLM
    from .gpt import load_tokenizer

    cfg = C.read_config(args.run_dir)
    path = os.path.join(args.run_dir, MODEL_FILE)
    if not os.path.exists(path):
        raise CheckpointError(f"{args.run_dir}: no {MODEL_FILE} (train first: minigen train ngram --out DIR)")
    lm = NGramLM.from_state_dict(mg.load(path))
    _, encode, decode = load_tokenizer(args.run_dir, cfg["args"].get("tokenizer", "char"))
    n = args.n or 500
    prime = encode(args.prime) if args.prime else []
    ids = lm.generate(prime, n, temperature=args.temperature, generator=mg.Generator().manual_seed(args.seed))
    text = decode(ids)
    out = C.sample_path(args, "sample.txt")
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    print(f"---- order {lm.order} Kneser-Ney, written to {out}")
    return 0
