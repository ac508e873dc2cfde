"""``minigen train word2vec``: skip-gram with negative sampling (:mod:`minigen.models.word2vec`) on the words of
tiny-shakespeare, trained by minibatch SGD with the C tool's linearly decayed learning rate
(:func:`train_word2vec`); writes the vectors, the vocabulary and the nearest neighbours of ``--words``.
``--stop-after N`` stops after N epochs (``--resume`` continues, bit for bit).

``minigen sample RUN_DIR --words king,love``: the nearest neighbours of words, from the checkpoint.
"""
from __future__ import annotations

import math
import os
import sys
import time

from . import _common as C

NAME = "word2vec"
HELP = "Word2Vec skip-gram with negative sampling on tiny-shakespeare; nearest neighbours"
DATA_PARALLEL = ("every rank draws the same subsampled, shuffled pairs and negatives (the run's seeded generator) "
                 "and takes its rows of each global batch of N x --batch-size pairs; the embedding gradients are "
                 "averaged dense and the summed-step update uses the global batch size; rank 0 writes")

_QUERY = "king,queen,love,romeo,thou,blood,good,day,father,war"


def train_word2vec(sentences_or_ids, itos=None, counts=None, dim=100, window=5, negatives=5, epochs=1,
                   batch_size=1024, lr=0.025, min_lr=1e-4, sample=1e-3, min_count=5, generator=None,
                   log=None, progress=False, out_dir=None, resume=False, stop_after=None, dp=None):
    """Train a :class:`Word2Vec` by minibatch SGD on the mean loss, learning rate decayed linearly.

    ``sentences_or_ids``: a list of words (tokens; the vocabulary is built with ``min_count``) or an
    array of word ids with ``itos``/``counts`` given. ``lr`` is per pair, as in the C tool, which
    applies one SGD step per pair: here the steps of a batch of pairs are summed and applied at once
    (``param -= lr * batch_size * grad(mean loss)``), like the C tool's lock-free threads. On a
    vocabulary of a few thousand words a row rarely occurs twice in a batch and this is the C tool's
    update; on a tiny vocabulary (tens of words) the same row is hit by hundreds of pairs per batch
    and the summed step is that many times larger: lower ``lr`` or ``batch_size`` there.

    With ``out_dir``, a checkpoint (model, vocabulary, step, RNG state) is written after every epoch
    to ``out_dir/checkpoint.safetensors`` and ``resume=True`` continues from it (the same run, exactly).
    ``stop_after``: stop after that many epochs of this call (a checkpoint is there to resume from).
    ``dp`` (a :class:`minigen.train.DataParallel`): ``batch_size`` pairs per process; every rank draws the same
    pairs and negatives for the global batch and trains on its rows (the update is the global batch's), rank 0
    alone writes the checkpoint; the records hold the global batch's mean loss.
    Returns the model (with ``model.itos`` set) and a list of {step, epoch, loss, lr, time} records.
    """
    import numpy as np

    from ..autograd.grad_mode import no_grad
    from ..errors import CheckpointError
    from ..io import load as _load, save as _save
    from ..models.word2vec import Word2Vec, build_vocab, skipgram_pairs, subsample
    from ..random import _gen

    g = _gen(generator)
    rng = g.numpy
    if itos is None:
        words = list(sentences_or_ids)
        itos, counts = build_vocab(words, min_count)
        stoi = {w: i for i, w in enumerate(itos)}
        ids = np.array([stoi[w] for w in words if w in stoi], dtype=np.int64)
    else:
        ids = np.asarray(sentences_or_ids, dtype=np.int64)
        counts = np.asarray(counts if counts is not None else np.bincount(ids, minlength=len(itos)))
    V = len(itos)
    model = Word2Vec(V, dim, generator=g)
    model.itos = list(itos)
    active = dp is not None and dp.active
    net = dp.wrap(model) if active else model
    batch_size = batch_size * dp.world if active else batch_size  # from here: the global batch
    noise = counts.astype(np.float64) ** 0.75
    noise_cdf = np.cumsum(noise / noise.sum())
    # the number of steps, for the linear decay (estimated from one pass of subsampling + windows)
    est_pairs = len(subsample(ids, counts, sample, np.random.default_rng(0))) * (window + 1)
    total_steps = max(1, epochs * math.ceil(est_pairs / batch_size))
    history, step, start_epoch, t0 = [], 0, 0, time.time()
    ckpt = os.path.join(out_dir, "checkpoint.safetensors") if out_dir else None
    if resume and ckpt and os.path.exists(ckpt):
        st = _load(ckpt)
        if list(st["itos"]) != model.itos:
            raise CheckpointError(f"{ckpt}: the checkpoint was trained on a different vocabulary")
        model.load_state_dict(st["model"])
        g.set_state(st["rng"])
        step, start_epoch, history = int(st["step"]), int(st["epoch"]), list(st["history"])
    bar = None
    if progress and (not active or dp.is_main):
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=min(step, total_steps), desc="word2vec", unit="step")
    last = epochs if stop_after is None else min(epochs, start_epoch + int(stop_after))
    for ep in range(start_epoch, last):
        kept = subsample(ids, counts, sample, rng)
        c_all, o_all = skipgram_pairs(kept, window, rng)
        perm = rng.permutation(len(c_all))
        c_all, o_all = c_all[perm], o_all[perm]
        for s in range(0, len(c_all), batch_size):
            c, o = c_all[s:s + batch_size], o_all[s:s + batch_size]
            neg = np.minimum(np.searchsorted(noise_cdf, rng.random((len(c), negatives))), V - 1)
            if active:  # this rank's rows of the global batch, its mean loss weighted by its share
                n_all = len(c)
                c, o, neg = dp.shard((c, o, neg))
                weight, rows = dp.pop_shard(c)
                loss = net(c, o, neg)
                model.zero_grad()
                (loss * weight).backward() if weight != 1.0 else loss.backward()
                loss_value = float(dp.all_sum([float(loss.item()) * rows])[0] / n_all)
                c = c_all[s:s + batch_size]  # (the update below is the global batch's: lr * N * mean gradient)
            else:
                loss = model(c, o, neg)
                model.zero_grad()
                loss.backward()
            a = max(min_lr, lr * (1.0 - step / total_steps))
            with no_grad():
                # lr * (sum of the per-pair gradients) = lr * batch * grad(mean loss)
                for p in (model.in_embed, model.out_embed):
                    p.array -= (a * len(c)) * p.grad.array
            step += 1
            if step % 50 == 0 or s + batch_size >= len(c_all):
                value = loss_value if active else float(loss.item())
                rec = {"split": "train", "step": step, "epoch": ep, "loss": value, "lr": a, "time": time.time() - t0}
                history.append(rec)
                if log is not None:
                    log(rec)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.item()):.4f}")
        if ckpt and (not active or dp.is_main):
            _save({"model": model.state_dict(), "itos": model.itos, "rng": g.get_state(), "step": step,
                   "epoch": ep + 1, "history": history}, ckpt)
    if bar is not None:
        bar.close()
    return model, history


def add_arguments(p):
    C.add_run_arguments(p, "out/word2vec", seed=0, device=False)
    p.add_argument("--dim", type=int, default=64, help="vector size (default 64)")
    p.add_argument("--window", type=int, default=5, help="max context distance (default 5)")
    p.add_argument("--negatives", type=int, default=5, help="noise words per pair (default 5)")
    p.add_argument("--epochs", type=int, default=10, help="default 10")
    p.add_argument("--batch-size", type=int, default=1024, help="pairs per step (default 1024)")
    p.add_argument("--lr", type=float, default=0.025,
                   help="per-pair SGD learning rate, decayed linearly (default 0.025)")
    p.add_argument("--min-count", type=int, default=5, help="ignore rarer words (default 5)")
    p.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold t (default 1e-3)")
    p.add_argument("--words", default=_QUERY, help="words whose nearest neighbours are listed")
    p.add_argument("--limit-words", type=int, default=None, help="train on the first N words only (quick runs)")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after N epochs of this run (continue later with --resume)")


def _neighbours(model, words, k=8):
    lines, neigh = [], {}
    for w in [w.strip() for w in words.split(",") if w.strip()]:
        try:
            nn_ = model.most_similar(w, k)
        except KeyError:
            lines.append(f"{w}: (not in the vocabulary)")
            continue
        neigh[w] = nn_
        lines.append(f"{w}: " + ", ".join(f"{u} ({c:.2f})" for u, c in nn_))
    return lines, neigh


def run(args):
    import numpy as np

    import minigen as mg
    from ..data import load_shakespeare, plot_curves
    from ..models.word2vec import tokenize_words
    from ..train import MetricsLogger

    os.makedirs(args.out, exist_ok=True)
    C.write_config(args.out, NAME, args)
    words = tokenize_words(load_shakespeare())[:args.limit_words]
    logger = MetricsLogger(args.out, write=C.is_main_process())
    ckpt = os.path.join(args.out, C.CHECKPOINT)
    # keep the log rows the checkpoint already covers (resume), or start a fresh log
    logger.truncate(int(mg.load(ckpt)["step"]) if args.resume and os.path.exists(ckpt) else -1)
    t0 = time.perf_counter()
    dp = C.data_parallel(args)
    model, hist = train_word2vec(words, dim=args.dim, window=args.window, negatives=args.negatives,
                                 epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                 min_count=args.min_count, sample=args.sample,
                                 generator=mg.Generator().manual_seed(args.seed),
                                 progress=not args.no_progress and sys.stderr.isatty(), out_dir=args.out,
                                 resume=args.resume, log=logger.log, stop_after=args.stop_after, dp=dp)
    elapsed = time.perf_counter() - t0
    if not dp.is_main:  # the other ranks of a data-parallel run write nothing
        return 0
    plot_curves({"SGNS loss (batch)": [(r["step"], r["loss"]) for r in hist]},
                os.path.join(args.out, "loss_curve.png"), title="word2vec (skip-gram, negative sampling)",
                ylabel="loss per pair")
    lines, neigh = _neighbours(model, args.words)
    with open(os.path.join(args.out, "neighbours.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    np.save(os.path.join(args.out, "vectors.npy"), model.vectors().astype(np.float32))
    with open(os.path.join(args.out, "vocab.txt"), "w") as f:
        f.write("\n".join(model.itos) + "\n")
    summary = {"vocab_size": len(model.itos), "tokens": len(words), "dim": args.dim, "epochs": args.epochs,
               "final_loss": hist[-1]["loss"] if hist else None, "elapsed_s": elapsed, "neighbours": neigh}
    C.write_json(summary, os.path.join(args.out, "summary.json"))
    print("\n".join(lines))
    print(f"word2vec: vocab {len(model.itos)}, final loss {summary['final_loss']:.4f}, {elapsed:.1f} s; "
          f"outputs in {args.out}/")
    return 0


def add_sample_arguments(p):
    p.add_argument("--words", default=_QUERY, help="comma-separated words (default: a few Shakespeare words)")


def sample(args):
    import minigen as mg
    from ..errors import CheckpointError
    from ..models.word2vec import Word2Vec

    path = os.path.join(args.run_dir, C.CHECKPOINT)
    if not os.path.exists(path):
        raise CheckpointError(f"{args.run_dir}: no {C.CHECKPOINT} (train first: minigen train word2vec --out DIR)")
    st = mg.load(path)
    itos = [str(w) for w in st["itos"]]
    dim = int(st["model"]["in_embed"].shape[1])
    model = Word2Vec(len(itos), dim)
    model.load_state_dict(st["model"])
    model.itos = itos
    lines, _ = _neighbours(model, args.words, args.n or 8)
    out = C.sample_path(args, "neighbours_sampled.txt")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"(cosine similarity of the word vectors; written to {out})")
    return 0
