"""``minigen train bpe``: train the byte-level BPE tokenizer of :mod:`minigen.models.bpe` and measure it.

Learns merges on a text (default: the first 90% of tiny-shakespeare), saves them as ``bpe.json`` and reports
the compression on the held-out rest (characters and bytes per token), the first and last merges and how an
example is cut (``example.txt``). Deterministic: nothing to resume.

``minigen sample RUN_DIR --text TEXT``: the tokens of a text under the saved merges.
"""
from __future__ import annotations

import os
import time

from . import _common as C

NAME = "bpe"
HELP = "train a byte-level BPE tokenizer (tiny-shakespeare by default), save it as JSON"
#: why ``--ddp N`` is refused (see :func:`minigen.recipes._common.start_data_parallel`)
DATA_PARALLEL = False
NO_DATA_PARALLEL = "BPE training is a greedy sequence of pair merges, not gradient steps"


def add_arguments(p):
    p.add_argument("--vocab-size", type=int, default=512, help="256 bytes + merges (default 512)")
    p.add_argument("--text", default=None, help="a UTF-8 text file to train on (default: tiny-shakespeare, "
                                                "first 90%%; the last 10%% measures compression)")
    p.add_argument("--no-pretokenize", action="store_true", help="let merges cross word boundaries")
    p.add_argument("--out", default="out/bpe", help="output folder (default out/bpe)")


def run(args):
    from ..data import load_shakespeare
    from ..errors import InvalidArgumentError
    from ..models.bpe import DEFAULT_PATTERN, BPETokenizer
    from ..train import MetricsLogger

    os.makedirs(args.out, exist_ok=True)
    if args.text:
        with open(args.text, encoding="utf-8") as f:
            text = f.read()
    else:
        text = load_shakespeare()
    C.write_config(args.out, NAME, args)
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
    if tok.decode(ids) != held:
        raise InvalidArgumentError("BPE round trip failed: decode(encode(text)) != text")
    nbytes = len(held.encode("utf-8"))
    summary = {"vocab_size": tok.vocab_size, "merges": len(tok.merges), "train_chars": n, "train_s": t_train,
               "heldout_chars": len(held), "heldout_tokens": len(ids), "chars_per_token": len(held) / max(len(ids), 1),
               "bytes_per_token": nbytes / max(len(ids), 1), "encode_s": t_enc, "roundtrip_exact": True,
               "first_merges": [tok.token_str(256 + i) for i in range(min(30, len(tok.merges)))],
               "last_merges": [tok.token_str(256 + i) for i in range(max(0, len(tok.merges) - 30), len(tok.merges))],
               "tokenizer": path}
    C.write_json(summary, os.path.join(args.out, "summary.json"))
    logger = MetricsLogger(args.out)
    logger.truncate(-1)
    logger.log({"split": "val", "step": len(tok.merges),
                **{k: v for k, v in summary.items() if not isinstance(v, list)}})
    example = held[:200]
    pieces = _pieces(tok, example)
    with open(os.path.join(args.out, "example.txt"), "w", encoding="utf-8") as f:
        f.write(example + "\n\n" + "|".join(pieces) + "\n")
    C.print_summary("bpe", summary, args.out)
    print("first merges:", " ".join(repr(s) for s in summary["first_merges"][:15]))
    print("segmentation:", "|".join(pieces[:40]))
    return 0


def _pieces(tok, text):
    return [tok.token_str(i).replace("\n", "\\n") for i in tok.encode(text)]


def add_sample_arguments(p):
    p.add_argument("--text", default="To be, or not to be: that is the question.",
                   help="the text to cut into tokens (default: a line of Hamlet)")


def sample(args):
    from ..errors import CheckpointError
    from ..models.bpe import BPETokenizer

    path = os.path.join(args.run_dir, "bpe.json")
    if not os.path.exists(path):
        raise CheckpointError(f"{args.run_dir}: no bpe.json (train first: minigen train bpe --out DIR)")
    tok = BPETokenizer.load(path)
    ids = tok.encode(args.text)
    line = "|".join(_pieces(tok, args.text))
    out = C.sample_path(args, "sample.txt")
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"{args.text}\n{line}\n{' '.join(map(str, ids))}\n")
    print(line)
    print(f"{len(args.text)} characters -> {len(ids)} tokens ({len(args.text) / max(len(ids), 1):.2f} chars/token); "
          f"written to {out}")
    return 0
