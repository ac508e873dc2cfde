"""``minigen demo``: the README's first command. Trains small generative models on the data shipped with the
package and writes what they made, and what was measured, to ``out/``.

Four parts, in order (``--parts`` picks some), with step budgets set for about five minutes on an idle
2-core CPU at the default ``--minutes 5`` (every budget scales with ``--minutes``):

1. ``classifier`` — the MNIST CNN that scores generated digits (:mod:`minigen.models.classifier`, trained by
   :mod:`minigen.recipes.classifier`), 300 steps
   (about two epochs of the 9k training images; ~97% validation accuracy, the full recipe of
   ``minigen train classifier`` reaches 98.7%); its weights are cached in ``out/classifier`` and reused.
2. ``dcgan`` — a small DCGAN (generator width 64, discriminator 32, batch 32) for 600 steps (about two
   epochs); its samples are scored by the classifier (mean max-probability, class entropy, Inception-like
   score).
3. ``vae`` — the PyTorch example's VAE (784-400-20) for 10 epochs: validation negative ELBO per image.
4. ``gpt`` — a char-level GPT (nanoGPT's baby config: 4 layers, 4 heads, 128 channels, block 64) on
   tiny-shakespeare for 600 iterations: validation loss and 500 generated characters.

Outputs: ``out/<part>/`` (metrics.jsonl, loss_curve.png, checkpoint, sample grids / text), the scorer's
predictions on validation digits (``mnist_val_predictions.png`` / ``.txt``), and ``summary.json`` +
``summary.md`` with every measured number and the wall time of each part.
"""
from __future__ import annotations

import json
import os
import sys
import time

__all__ = ["add_demo_arguments", "run_demo", "PARTS", "BUDGET"]

PARTS = ("classifier", "dcgan", "vae", "gpt")
# training steps at --minutes 5. Measured on the 2-core reference machine (lightly loaded): ~0.25 s/step
# classifier, ~0.12 s/step DCGAN (batch 32), ~0.02 s/step VAE, ~0.15 s/iteration GPT; a whole run took
# 442 s wall / 424 CPU-s while other jobs shared the machine (load 5-14).
BUDGET = {"classifier": 300, "dcgan": 600, "vae_epochs": 10, "gpt": 600}


def add_demo_arguments(parser) -> None:
    parser.add_argument("--out", default="out", help="output folder (default out/)")
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="time budget on a 2-core CPU; every part's training steps scale with it (default 5)")
    parser.add_argument("--device", default=None, help="cpu (default) or cuda (the GPT part runs on the CPU)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated parts to run (default all: {','.join(PARTS)})")
    parser.add_argument("--limit", type=int, default=None,
                        help="quick check: train on the first N images only (and score few samples)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _steps(base, scale, lo=1):
    return max(lo, int(round(base * scale)))


def run_demo(args) -> int:
    parts = [p.strip() for p in str(args.parts).split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        print(f"minigen demo: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    out = args.out
    os.makedirs(out, exist_ok=True)
    scale = max(float(args.minutes), 0.0) / 5.0
    progress = False if args.no_progress else None
    quick = args.limit is not None
    summary = {"minutes": args.minutes, "device": args.device or "cpu", "seed": args.seed, "limit": args.limit,
               "parts": {}}
    t_all = time.perf_counter()
    print(f"minigen demo: {', '.join(parts)} -> {out}/ (budget ~{args.minutes:g} min on 2 CPU cores)")
    scorer_dir = os.path.join(out, "classifier")

    if "classifier" in parts:
        summary["parts"]["classifier"] = _classifier(args, scorer_dir, scale, progress)
        if summary["parts"]["classifier"].get("interrupted"):
            return _finish(summary, out, t_all, 130)
    if "dcgan" in parts:
        s = _dcgan(args, out, scorer_dir, scale, progress, quick)
        summary["parts"]["dcgan"] = s
        if s.get("interrupted"):
            return _finish(summary, out, t_all, 130)
    if "vae" in parts:
        s = _vae(args, out, scale, progress)
        summary["parts"]["vae"] = s
        if s.get("interrupted"):
            return _finish(summary, out, t_all, 130)
    if "gpt" in parts:
        s = _gpt(args, out, scale, progress, quick)
        summary["parts"]["gpt"] = s
        if s.get("interrupted"):
            return _finish(summary, out, t_all, 130)
    return _finish(summary, out, t_all, 0)


# ----------------------------------------------------------------------------- the parts
def _header(i, text):
    print(f"\n[{i}] {text}", flush=True)


def _classifier(args, folder, scale, progress):
    from .recipes.classifier import WEIGHTS, load_classifier, train_classifier

    _header(1, "MNIST scoring CNN")
    t0 = time.perf_counter()
    cached = os.path.join(folder, "summary.json")
    s = None
    if load_classifier(folder) is not None and os.path.exists(cached) and not args.limit:
        with open(cached) as f:
            s = json.load(f)
        if s.get("limit"):   # a quick-check classifier (trained on a few images) is not reused
            s = None
    if s is not None:
        print(f"using the cached classifier in {folder}/ (val accuracy {s.get('val_acc', float('nan')):.4f}); "
              f"delete {os.path.join(folder, WEIGHTS)} to retrain")
        s["cached"] = True
    else:
        steps = _steps(BUDGET["classifier"], scale)
        model, s = train_classifier(folder, epochs=99, max_steps=steps, seed=args.seed, limit=args.limit,
                                    device=args.device, progress=progress)
        s["cached"] = False
    s["part_wall_s"] = time.perf_counter() - t0
    _predictions_picture(folder, args.out, args.device)
    return s


def _predictions_picture(folder, out, device):
    """64 validation digits as a PNG, with the classifier's predictions in a text file beside it."""
    import numpy as np

    from .data import BundledMNIST, save_image_grid
    from .recipes.classifier import load_classifier

    model = load_classifier(folder, device)
    if model is None:
        return
    val = BundledMNIST("val")
    pred = model.probs(val.images[:64]).argmax(1)
    save_image_grid(val.images[:64], os.path.join(out, "mnist_val_predictions.png"), nrow=8)
    rows = [" ".join(str(p) for p in pred[i:i + 8]) for i in range(0, 64, 8)]
    with open(os.path.join(out, "mnist_val_predictions.txt"), "w", encoding="utf-8") as f:
        f.write("the scoring classifier's predicted digits for mnist_val_predictions.png (row by row)\n"
                + "\n".join(rows) + "\n")
    print(f"wrote {out}/mnist_val_predictions.png ({int((pred == val.labels[:64]).sum())}/64 predicted correctly)")
    return np.asarray(pred)


def _dcgan(args, out, scorer_dir, scale, progress, quick):
    from .recipes.dcgan import train_dcgan

    _header(2, "DCGAN on MNIST")
    t0 = time.perf_counter()
    has_scorer = os.path.exists(os.path.join(scorer_dir, "classifier.safetensors"))
    s = train_dcgan(os.path.join(out, "dcgan"), epochs=99, batch_size=32, g_width=64, d_width=32, seed=args.seed,
                    max_steps=_steps(BUDGET["dcgan"], scale), limit=args.limit, device=args.device, progress=progress,
                    classifier=scorer_dir if has_scorer else "none", score_samples=100 if quick else 1000)
    s["part_wall_s"] = time.perf_counter() - t0
    return s


def _vae(args, out, scale, progress):
    from .recipes.vae import train_vae

    _header(3, "VAE (784-400-20) on MNIST")
    t0 = time.perf_counter()
    epochs = _steps(BUDGET["vae_epochs"], scale)
    _, s = train_vae(os.path.join(out, "vae"), epochs=epochs, seed=args.seed, limit=args.limit, device=args.device,
                     progress=progress, max_steps=2 if args.limit else None)
    s["part_wall_s"] = time.perf_counter() - t0
    return s


def _gpt(args, out, scale, progress, quick):
    from .data import CharTokenizer, load_shakespeare
    from .recipes.gpt import TrainConfig, train_gpt

    _header(4, "char-GPT on tiny-shakespeare")
    t0 = time.perf_counter()
    folder = os.path.join(out, "gpt")
    os.makedirs(folder, exist_ok=True)
    text = load_shakespeare()
    n = int(len(text) * 0.9)
    tok = CharTokenizer.fit(text)
    ids = tok.encode_array(text)
    tok.save(os.path.join(folder, "tokenizer.json"))
    iters = _steps(BUDGET["gpt"], scale, lo=2)
    cfg = TrainConfig(max_iters=iters, lr_decay_iters=iters, warmup_iters=min(100, iters // 10),
                      eval_interval=max(iters // 3, 1), eval_iters=2 if quick else 40, seed=1337 + args.seed)
    if args.device not in (None, "cpu"):
        print("(the GPT part trains on the CPU: minigen.recipes.gpt.train_gpt takes no device)")
    model, s, sample = train_gpt(cfg, ids[:n], ids[n:], tok.vocab_size, folder, progress=progress,
                                 decode=tok.decode, sample_tokens=60 if quick else 500)
    s["iters"] = iters
    s["sample"] = sample
    s["part_wall_s"] = time.perf_counter() - t0
    if sample:
        print("---- generated text ----\n" + sample[:300] + ("..." if len(sample) > 300 else "") + "\n---------------")
    return s


# ----------------------------------------------------------------------------- summary
def _fmt(v, nd=3):
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def _finish(summary, out, t_all, code):
    summary["total_wall_s"] = time.perf_counter() - t_all
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, default=str)
    P = summary["parts"]
    lines = ["# minigen demo: measured numbers", "",
             f"Budget `--minutes {summary['minutes']:g}`, device {summary['device']}, seed {summary['seed']}"
             + (f", quick check on {summary['limit']} images" if summary["limit"] else "")
             + f"; total wall time {summary['total_wall_s']:.0f} s.", "",
             "| part | what was measured | value | steps | wall s |", "|---|---|---|---|---|"]
    if "classifier" in P:
        c = P["classifier"]
        real = c.get("real_val_scores") or {}
        lines.append(f"| classifier | MNIST val accuracy (1k images){' (cached)' if c.get('cached') else ''} | "
                     f"{_fmt(c.get('val_acc'), 4)} | {_fmt(c.get('step'))} | {_fmt(c.get('part_wall_s'), 0)} |")
        lines.append(f"| classifier | real val digits: IS / mean max-prob / class entropy | "
                     f"{_fmt(real.get('inception_score'), 2)} / {_fmt(real.get('mean_max_prob'))} / "
                     f"{_fmt(real.get('class_entropy'))} | | |")
    if "dcgan" in P:
        d = P["dcgan"]
        sc = d.get("scores") or {}
        lines.append(f"| dcgan | samples: IS / mean max-prob / class entropy (max 2.303) | "
                     f"{_fmt(sc.get('score_is'), 2)} / {_fmt(sc.get('score_max_prob'))} / "
                     f"{_fmt(sc.get('score_entropy'))} | {_fmt(d.get('step'))} | {_fmt(d.get('part_wall_s'), 0)} |")
    if "vae" in P:
        v = P["vae"]
        lines.append(f"| vae | val negative ELBO per image (BCE + KL) | {_fmt(v.get('val_loss'), 2)} "
                     f"({_fmt(v.get('val_bce'), 2)} + {_fmt(v.get('val_kl'), 2)}) | {_fmt(v.get('step'))} | "
                     f"{_fmt(v.get('part_wall_s'), 0)} |")
    if "gpt" in P:
        g = P["gpt"]
        lines.append(f"| gpt | val cross-entropy (nats/char) | {_fmt(g.get('val_loss'))} | {_fmt(g.get('step'))} | "
                     f"{_fmt(g.get('part_wall_s'), 0)} |")
    lines += ["", "## Pictures and text", ""]
    if "classifier" in P:
        lines.append("- `mnist_val_predictions.png` (+ `.txt`): validation digits and the scorer's predictions; "
                     "`classifier/loss_curve.png`")
    if "dcgan" in P:
        lines.append("- `dcgan/samples.png` (latest grid; one `samples_*.png` per epoch), `dcgan/loss_curve.png`, "
                     "`dcgan/score_curve.png`")
    if "vae" in P:
        lines.append("- `vae/reconstructions.png` (rows: originals, reconstructions), `vae/samples.png`, "
                     "`vae/loss_curve.png`")
    if "gpt" in P:
        lines.append("- `gpt/samples.txt`, `gpt/loss_curve.png`")
        if P["gpt"].get("sample"):
            lines += ["", "Generated text (first 400 characters):", "", "```", P["gpt"]["sample"][:400], "```"]
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines[:len(lines)]).split("## Pictures")[0].rstrip())
    print(f"\ndemo finished in {summary['total_wall_s']:.1f}s; results in {out}/summary.md and {out}/summary.json")
    return code
