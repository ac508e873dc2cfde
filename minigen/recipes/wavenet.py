"""Recipe: train a digit-conditioned WaveNet on the Free Spoken Digit Dataset, and sample from it.

``minigen train wavenet [options]`` (:func:`run`) and ``minigen sample RUN_DIR`` (:func:`sample`).

**Data.** FSDD at 8 kHz, mu-law 256 classes (:mod:`minigen.models.wavenet`). Each recording
becomes ``u = [silence] + mu_law(audio)`` (one silence sample, class 128, is the "start" input, so
the first real sample is predicted too, exactly as generation starts). Official split: indices
0-4 test, 5-49 train. ``--data-root`` points at a folder with the WAVs (e.g. the full 3,000); without
it the cache (``$MINIGEN_DATA/fsdd/recordings``) is used if it holds the files, else the 60-file
subset bundled with minigen (40 train / 20 test recordings; say ``--download`` to fetch the whole set).

**Training.** Each step draws ``--batch-size`` windows: a random recording (seeded by
``(seed, step)``, so ``--resume`` continues the same stream) and a random run of ``--window`` target
samples in it. The model sees the receptive field before the window too (``receptive_field - 1``
extra inputs whose predictions are not scored), so every scored prediction has its full context
and the loss is the exact per-sample negative log-likelihood; windows at the start of a recording
score everything from its first sample. Loss = mean cross-entropy in nats/sample; Adam, gradient
norm clipped to ``--clip``.

**Evaluation.** ``val_nll`` = sum of -ln p(x_t | x_<t, digit) over every sample of a fixed set of
test recordings (``--eval-indices``: default index 0, i.e. one recording per digit and speaker; 'all':
the whole test split), divided by
their number of samples; reported in nats/sample and bits/sample (= nats / ln 2). Next to it, the
baselines, fitted on the training split and scored on the same recordings: the uniform 8 bits/sample,
mu-law n-grams of order 1 (unigram), 2 (bigram) and 3 (trigram) with add-alpha smoothing (alpha
picked on the training indices 45-49, then refitted on all of train), and a linear-prediction
baseline (order-16 least-squares LPC on the decoded waveform, Gaussian residual whose scale follows
the RMS of the last 32 residuals; the class probability is its mass over the mu-law bin's interval).

**Outputs in --out:** ``config.json`` (model config + training options), ``checkpoint.safetensors``
(``mg.save`` of model/optimizer state dicts and the step; never pickled), ``metrics.jsonl`` / ``.csv``,
``loss_curve.png``, ``summary.json``, and with ``--sample-seconds > 0`` one WAV per digit plus
``waveform.png`` and ``spectrogram.png``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from . import _common as C

NAME = "wavenet"
HELP = "WaveNet on spoken digits (FSDD, 8 kHz mu-law): gated dilated causal convs, digit-conditioned"
DATA_PARALLEL = ("every rank draws the same N x --batch-size windows per step (seeded by (seed, step)) and trains on "
                 "its own rows, its loss weighted by its share of the scored samples (so the averaged gradient is "
                 "the whole batch's); --time-limit and Ctrl-C are agreed on by all ranks; rank 0 evaluates, writes "
                 "and runs the baselines")

CHECKPOINT = C.CHECKPOINT
CONFIG = C.CONFIG
LN2 = math.log(2.0)

__all__ = ["NAME", "HELP", "add_arguments", "run", "add_sample_arguments", "sample", "load_run",
           "prepare_split", "evaluate_nll", "ngram_baseline", "lpc_baseline", "save_audio_plots"]


# ----------------------------------------------------------------------------- arguments
def add_arguments(p):
    C.add_run_arguments(p, "out/wavenet")  # --out --resume --seed --device --no-progress
    p.add_argument("--data-root", default=None,
                   help="folder with FSDD WAVs (or its recordings/ parent); default: the cache if it has them, "
                        "else the bundled 60-file subset")
    p.add_argument("--download", action="store_true", help="download FSDD v1.0.9 into the cache first (online)")
    p.add_argument("--bundled", action="store_true", help="use the bundled 60-file subset even if more is there")
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per step (default 8)")
    p.add_argument("--window", type=int, default=2000, help="scored samples per window (default 2000 = 0.25 s)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip (default 1.0; 0 = off)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="stop training after this many seconds (a checkpoint is saved)")
    p.add_argument("--residual-channels", type=int, default=32)
    p.add_argument("--gate-channels", type=int, default=32)
    p.add_argument("--skip-channels", type=int, default=64)
    p.add_argument("--end-channels", type=int, default=128)
    p.add_argument("--kernel-size", type=int, default=2)
    p.add_argument("--layers-per-stack", type=int, default=8, help="dilations 1..2^(L-1) per stack (default 8)")
    p.add_argument("--stacks", type=int, default=2, help="repetitions of the dilation cycle (default 2)")
    p.add_argument("--unconditional", action="store_true", help="no digit conditioning")
    p.add_argument("--eval-every", type=int, default=100, help="evaluate every N steps (default 100; 0 = end only)")
    p.add_argument("--eval-indices", default="0",
                   help="which test recordings to score: recording indices, e.g. '0' (default: one per digit and "
                        "speaker, 60 with the full set) or '0-4' / 'all' (the whole test split)")
    p.add_argument("--checkpoint-every", type=int, default=50, help="save every N steps (default 50)")
    p.add_argument("--log-every", type=int, default=10, help="a metrics row every N steps (default 10)")
    p.add_argument("--sample-seconds", type=float, default=0.0,
                   help="after training, generate this many seconds per digit (default 0: none)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    p.add_argument("--no-baselines", action="store_true", help="skip the n-gram / LPC baselines")


def add_sample_arguments(p):
    """The options of ``minigen sample RUN_DIR`` beyond the common ``--n`` (clips per digit, default 1),
    ``--out`` (a folder; default RUN_DIR/samples), ``--seed``, ``--device``."""
    p.add_argument("--digits", default="0-9", help="digits to say, e.g. '0-9' or '3,7' (default 0-9)")
    p.add_argument("--seconds", type=float, default=0.75, help="length of each clip (default 0.75)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0; 0 = argmax)")
    p.add_argument("--naive", action="store_true", help="use the uncached generator (slow; for comparison)")


# ----------------------------------------------------------------------------- data
def _load_data(args):
    from ..data.audio import FSDD

    kw = {}
    if getattr(args, "bundled", False):
        kw["bundled"] = True
    elif getattr(args, "data_root", None):
        kw["root"] = args.data_root
    elif getattr(args, "download", False):
        kw["download"] = True
    else:
        from ..data.audio import _wav_names, _cache_dir

        if not _wav_names(_cache_dir()):
            kw["bundled"] = True
    train = FSDD(split="train", **kw)
    test = FSDD(split="test", **kw)
    return train, test


def _parse_indices(spec):
    """'all' -> None; '0' / '0-4' / '0,2' -> a set of recording indices."""
    spec = str(spec).strip().lower()
    if spec in ("all", "", "none"):
        return None
    out = set()
    for part in spec.split(","):
        a, _, b = part.strip().partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def prepare_split(ds, indices=None):
    """``[(u int64 (n+1,), digit), ...]``: u = [silence class] + mu-law classes of each recording.

    ``indices``: keep only the recordings with these FSDD indices (None: all).
    """
    import numpy as np

    from ..models.wavenet import mu_law_encode

    out = []
    for i in range(len(ds)):
        if indices is not None and ds.indices[i] not in indices:
            continue
        q = mu_law_encode(ds.audio(i))
        out.append((np.concatenate([np.array([128], dtype=np.int64), q]), int(ds.digits[i])))
    return out


def make_batch(utts, batch_size, window, rf, rng):
    """Inputs (B, L), targets (B, L) with -100 where not scored, labels (B,). See the module docstring."""
    import numpy as np

    rows = []
    for _ in range(batch_size):
        u, d = utts[int(rng.integers(len(utts)))]
        n = len(u) - 1  # predictions available: targets u[1..n]
        s = int(rng.integers(0, max(0, n - window) + 1))
        e = min(n, s + window)
        c = max(0, s - (rf - 1))
        inp = u[c:e]
        tgt = u[c + 1:e + 1].copy()
        if c > 0:
            tgt[: s - c] = -100  # context only: its own context is incomplete
        rows.append((inp, tgt, d))
    L = max(len(r[0]) for r in rows)
    X = np.full((batch_size, L), 128, dtype=np.int64)
    Y = np.full((batch_size, L), -100, dtype=np.int64)
    for i, (inp, tgt, _) in enumerate(rows):
        X[i, :len(inp)] = inp
        Y[i, :len(tgt)] = tgt
    return X, Y, np.array([r[2] for r in rows], dtype=np.int64)


def evaluate_nll(model, utts, batch_size=10, conditional=True, device=None):
    """Total nats / number of samples over whole recordings (each scored from its first sample)."""
    import numpy as np

    import minigen as mg
    import minigen.nn.functional as F

    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    order = sorted(range(len(utts)), key=lambda i: len(utts[i][0]))  # similar lengths together: less padding
    with mg.no_grad():
        for k in range(0, len(order), batch_size):
            chunk = [utts[i] for i in order[k:k + batch_size]]
            L = max(len(u) for u, _ in chunk) - 1
            X = np.full((len(chunk), L), 128, dtype=np.int64)
            Y = np.full((len(chunk), L), -100, dtype=np.int64)
            for i, (u, _) in enumerate(chunk):
                X[i, :len(u) - 1] = u[:-1]
                Y[i, :len(u) - 1] = u[1:]
            labels = mg.tensor(np.array([d for _, d in chunk], dtype=np.int64), device=device) if conditional else None
            logits = model(mg.tensor(X, device=device), labels)
            loss = F.cross_entropy(logits, mg.tensor(Y, device=device), ignore_index=-100, reduction="sum")
            total += float(loss.item())
            count += int((Y != -100).sum())
    model.train(was_training)
    return total / count, count


# ----------------------------------------------------------------------------- baselines
def _ngram_nll(train_seqs, eval_seqs, order, alpha, Q=256):
    """Add-alpha n-gram over mu-law classes: p(x_t | x_{t-order+1..t-1}) = (c(h, x) + alpha) / (c(h) + Q alpha)."""
    import numpy as np

    def grams(seqs):
        idx = []
        for u in seqs:
            if len(u) < order:
                continue
            code = np.zeros(len(u) - order + 1, dtype=np.int64)
            for j in range(order):
                code = code * Q + u[j:len(u) - order + 1 + j]
            idx.append(code)
        return np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64)

    counts = np.bincount(grams(train_seqs), minlength=Q ** order).astype(np.float64)
    ctx = counts.reshape(-1, Q).sum(axis=1)
    ev = grams(eval_seqs)
    p = (counts[ev] + alpha) / (ctx[ev // Q] + Q * alpha)
    return float(-np.log(p).sum()), int(ev.size)


def ngram_baseline(train_utts, eval_utts, order, alphas=(0.001, 0.01, 0.1, 1.0), tune_utts=None, fit_utts=None):
    """Nats/sample of the best add-alpha mu-law n-gram on ``eval_utts`` (alpha chosen on ``tune_utts``).

    Every sequence is padded at the start with ``order - 1`` more silence classes, so each real sample is
    scored once (the same samples the WaveNet scores). Returns (nats/sample, alpha).
    """
    import numpy as np

    pad = lambda us: [np.concatenate([np.full(order - 1, 128, dtype=np.int64), u]) for u, _ in us]  # noqa: E731
    alpha = alphas[0]
    if tune_utts and fit_utts and len(alphas) > 1:
        best = None
        for a in alphas:
            nats, n = _ngram_nll(pad(fit_utts), pad(tune_utts), order, a)
            if best is None or nats / n < best[0]:
                best = (nats / n, a)
        alpha = best[1]
    nats, n = _ngram_nll(pad(train_utts), pad(eval_utts), order, alpha)
    return nats / n, alpha


def lpc_baseline(train_utts, eval_utts, order=16, window=32, sigma_min=1e-3, Q=256):
    """Linear prediction with an adaptive scale, on the decoded mu-law waveform; returns nats/sample.

    (``train_utts`` may be the fitted coefficients; ``eval_utts=None`` returns the coefficients.)

    ``x_t ~ N(m_t, s_t^2)`` with ``m_t = sum_{i=1..order} a_i x_{t-i}`` (``a`` by least squares on the training
    recordings) and ``s_t = max(sigma_min, sqrt(mean of the last `window` squared residuals))`` (the scale
    follows the loudness, as in adaptive predictive coding). The class probability is the Gaussian mass
    over the class's interval (edges halfway between decoded class values; the outer classes reach +-inf),
    floored at 1e-12.
    """
    import numpy as np

    from ..models.wavenet import mu_law_decode

    levels = mu_law_decode(np.arange(Q)).astype(np.float64)
    edges = np.concatenate([[-np.inf], (levels[1:] + levels[:-1]) / 2, [np.inf]])

    def design(u):
        x = levels[np.concatenate([np.full(order, 128, dtype=np.int64), u])]
        T = len(u) - 1  # targets u[1..]; predictors x_{t-1..t-order}
        return np.stack([x[order - i: order - i + T] for i in range(order)], axis=1), x[order + 1:], u[1:]

    if isinstance(train_utts, np.ndarray):  # already fitted coefficients
        a = train_utts
    else:  # least squares through the normal equations, one recording at a time (little memory)
        XtX, Xty = np.zeros((order, order)), np.zeros(order)
        for u, _ in train_utts:
            X, y, _ = design(u)
            XtX += X.T @ X
            Xty += X.T @ y
        a = np.linalg.solve(XtX + 1e-9 * np.eye(order), Xty)
    if eval_utts is None:
        return a
    total, n = 0.0, 0
    for u, _ in eval_utts:
        Xe, ye, qe = design(u)
        m = Xe @ a
        e2 = np.concatenate([np.zeros(window), (ye - m) ** 2])
        c = np.cumsum(e2)
        s = np.maximum(sigma_min, np.sqrt((c[window - 1:-1] - np.concatenate([[0.0], c[:-window - 1]])) / window))
        lo, hi = (edges[qe] - m) / s, (edges[qe + 1] - m) / s
        upper = lo > 0  # both edges above the mean: the 1 - Phi form, no cancellation
        p = np.where(upper, _ndtr(-lo) - _ndtr(-hi), _ndtr(hi) - _ndtr(lo))
        total += float(-np.log(np.maximum(p, 1e-12)).sum())
        n += len(qe)
    return total / n


def _ndtr(z):
    """Standard normal CDF Phi(z) = erfc(-z / sqrt 2) / 2 (NumPy has no erf; math.erfc per element)."""
    import numpy as np

    erfc = np.frompyfunc(math.erfc, 1, 1)
    return 0.5 * erfc(-np.asarray(z, dtype=np.float64) / math.sqrt(2.0)).astype(np.float64)


def _baselines(train_utts, eval_utts, train_indices):
    """The baselines' nats and bits/sample on ``eval_utts``; n-gram alpha tuned on train indices 45-49."""
    import numpy as np

    out = {"uniform_bits": 8.0}
    idx = np.asarray(train_indices)
    cut = 45 if (idx >= 45).any() and (idx < 45).any() else int(idx.max())  # bundled subset: its last index
    fit = [u for u, i in zip(train_utts, idx) if i < cut]
    hold = [u for u, i in zip(train_utts, idx) if i >= cut]
    for order, name in ((1, "unigram"), (2, "bigram"), (3, "trigram")):
        nats, alpha = ngram_baseline(train_utts, eval_utts, order, tune_utts=hold, fit_utts=fit)
        out[f"{name}_nats"] = nats
        out[f"{name}_bits"] = nats / LN2
        out[f"{name}_alpha"] = alpha
    try:
        a_fit = lpc_baseline(fit, None)
        smin = min((1e-4, 3e-4, 1e-3, 3e-3), key=lambda v: lpc_baseline(a_fit, hold, sigma_min=v))
        nats = lpc_baseline(train_utts, eval_utts, sigma_min=smin)
        out["lpc16_nats"] = nats
        out["lpc16_bits"] = nats / LN2
        out["lpc16_sigma_min"] = smin
    except np.linalg.LinAlgError as e:
        out["lpc16_error"] = str(e)
    return out


# ----------------------------------------------------------------------------- model, checkpoint
def _config_from_args(args, num_classes):
    from ..models.wavenet import WaveNetConfig

    return WaveNetConfig(residual_channels=args.residual_channels, gate_channels=args.gate_channels,
                         skip_channels=args.skip_channels, end_channels=args.end_channels,
                         kernel_size=args.kernel_size, layers_per_stack=args.layers_per_stack, stacks=args.stacks,
                         num_classes=0 if args.unconditional else num_classes)


def load_run(run_dir, device=None):
    """``(model in eval mode, config dict)`` from a run folder (``config.json`` + ``checkpoint.safetensors``)."""
    from ..errors import CheckpointError
    from ..models.wavenet import WaveNet, WaveNetConfig

    cfg = C.read_config(run_dir)
    if cfg["recipe"] != NAME or "model" not in cfg:
        raise CheckpointError(f"{run_dir}: config.json is from recipe {cfg['recipe']!r}, not {NAME!r}")
    model = WaveNet(WaveNetConfig.from_dict(cfg["model"]))
    C.load_checkpoint_model(run_dir, model)
    if device:
        model.to(device)
    return model, cfg


def _save_checkpoint(out, model, opt, step):
    import minigen as mg

    mg.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": int(step)},
            os.path.join(out, CHECKPOINT))


# ----------------------------------------------------------------------------- training
def run(args) -> int:
    import numpy as np

    import minigen as mg
    from ..models.wavenet import WaveNet
    from ..nn import functional as F
    from ..train import MetricsLogger

    out = args.out
    os.makedirs(out, exist_ok=True)
    mg.manual_seed(args.seed)
    dp = C.data_parallel(args)
    say = (lambda *a, **k: print(*a, **k)) if dp.is_main else (lambda *a, **k: None)
    with dp.main_first():  # (--download: rank 0 fills the cache before the others read it)
        train_ds, test_ds = _load_data(args)
    say(f"wavenet: data {train_ds.source} ({train_ds.folder}): {len(train_ds)} train / {len(test_ds)} test "
          "recordings", file=sys.stderr)
    train_utts = prepare_split(train_ds)
    eval_utts = prepare_split(test_ds, indices=_parse_indices(args.eval_indices))
    if not eval_utts:
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(f"--eval-indices {args.eval_indices!r} selects no test recording "
                                   f"(the test split has indices {sorted(set(test_ds.indices))})")
    n_eval = sum(len(u) - 1 for u, _ in eval_utts)

    config = _config_from_args(args, num_classes=10)
    model = WaveNet(config)
    dev = getattr(args, "device", None)
    if dev:
        model.to(dev)
    opt = mg.optim.Adam(model.parameters(), lr=args.lr)
    net = dp.wrap(model, find_unused_parameters=True)  # (the last block's residual output feeds nothing)
    rf = model.receptive_field
    step = 0
    kpath = os.path.join(out, CHECKPOINT)
    logger = MetricsLogger(out, write=dp.is_main)
    if args.resume and os.path.exists(kpath):
        state = mg.load(kpath)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        logger.truncate(step)
        say(f"wavenet: resumed at step {step}", file=sys.stderr)
    elif not args.resume:
        logger.truncate(-1)
    C.write_config(out, NAME, args, model=config.to_dict(), receptive_field=rf, sample_rate=8000,
                   quantization="mu-law 256", data_source=train_ds.source, data_folder=train_ds.folder,
                   train_recordings=len(train_ds), eval_recordings=len(eval_utts), eval_samples=n_eval)
    n_params = sum(int(p.numel()) for p in model.parameters())
    say(f"wavenet: {n_params} parameters, receptive field {rf} samples ({rf / 8:.1f} ms), "
          f"{len(config.dilations)} blocks", file=sys.stderr)

    summary = {"parameters": n_params, "receptive_field": rf, "eval_recordings": len(eval_utts),
               "eval_samples": n_eval, "data_source": train_ds.source, "train_recordings": len(train_ds)}
    if not args.no_baselines and dp.is_main:
        t0 = time.perf_counter()
        summary["baselines"] = _baselines(train_utts, eval_utts, train_ds.indices)
        print(f"wavenet: baselines on the {len(eval_utts)} test recordings ({time.perf_counter() - t0:.1f} s): "
              + ", ".join(f"{k} {v:.3f}" for k, v in summary["baselines"].items() if k.endswith("bits")),
              file=sys.stderr)

    cond = not args.unconditional

    def evaluate():
        t0 = time.perf_counter()
        nats, _ = evaluate_nll(model, eval_utts, conditional=cond, device=dev)
        row = {"split": "val", "step": step, "val_nll_nats": nats, "val_nll_bits": nats / LN2,
               "eval_s": time.perf_counter() - t0}
        logger.log(row)
        print(f"wavenet: step {step} val NLL {nats:.4f} nats/sample = {nats / LN2:.4f} bits/sample", file=sys.stderr)
        return nats

    t_start = time.perf_counter()
    interrupted = False
    acc, acc_n, seen, t_log = 0.0, 0, 0, time.perf_counter()
    params = list(model.parameters())
    model.train()
    stop = C.StopSignal(dp)
    try:
        with stop:
            while step < args.steps:
                over = args.time_limit is not None and time.perf_counter() - t_start > args.time_limit
                if dp.active:  # every rank stops after the same step (a time budget or Ctrl-C on any of them)
                    flags = dp.all_sum([1.0 if over else 0.0, 1.0 if stop.requested else 0.0])
                    over, interrupted = bool(flags[0] > 0), bool(flags[1] > 0)
                    if interrupted:
                        break
                if over:
                    say(f"wavenet: time limit {args.time_limit} s reached at step {step}", file=sys.stderr)
                    break
                rng = np.random.default_rng([args.seed, step])
                X, Y, lab = make_batch(train_utts, dp.global_batch(args.batch_size), args.window, rf, rng)
                n_all = int((Y != -100).sum())
                X, Y, lab = dp.shard((X, Y, lab))
                weight, _ = dp.pop_shard(X)
                n_mine = int((Y != -100).sum()) if weight else 0
                dp.seed_step(step)
                opt.zero_grad()
                if dp.active:  # this rank's mean over its scored samples, weighted by its share of them
                    loss = F.cross_entropy(net(mg.tensor(X, device=dev), mg.tensor(lab, device=dev) if cond else None),
                                           mg.tensor(Y, device=dev))
                    (loss * (dp.world * n_mine / max(n_all, 1))).backward()
                else:
                    loss = model.loss(mg.tensor(X, device=dev), mg.tensor(Y, device=dev),
                                      mg.tensor(lab, device=dev) if cond else None)
                    loss.backward()
                if args.clip and args.clip > 0:
                    mg.nn.utils.clip_grad_norm_(params, args.clip)
                opt.step()
                step += 1
                value = float(loss.item())
                if dp.active:  # the whole batch's mean loss
                    value = float(dp.all_sum([value * n_mine])[0] / max(n_all, 1))
                acc += value
                acc_n += 1
                seen += n_all
                if step % args.log_every == 0 or step == args.steps:
                    dt = time.perf_counter() - t_log
                    logger.log({"split": "train", "step": step, "loss_nats": acc / acc_n,
                                "loss_bits": acc / acc_n / LN2, "samples_per_s": seen / dt if dt > 0 else None,
                                "lr": args.lr})
                    say(f"wavenet: step {step} train {acc / acc_n:.4f} nats/sample ({seen / dt:.0f} samples/s)",
                        file=sys.stderr)
                    acc, acc_n, seen, t_log = 0.0, 0, 0, time.perf_counter()
                if args.checkpoint_every and step % args.checkpoint_every == 0 and dp.is_main:
                    _save_checkpoint(out, model, opt, step)
                if args.eval_every and step % args.eval_every == 0 and step < args.steps and dp.is_main:
                    evaluate()
    except KeyboardInterrupt:
        if dp.active:  # a second Ctrl-C in a data-parallel run: the ranks may be anywhere; end the job
            raise
        interrupted = True
    if not dp.is_main:  # the other ranks of a data-parallel run write nothing
        return 130 if interrupted else 0
    _save_checkpoint(out, model, opt, step)
    summary["train_seconds"] = time.perf_counter() - t_start
    summary["steps"] = step
    summary["interrupted"] = interrupted
    if dp.active:
        summary["processes"] = dp.world
    if interrupted:
        print(f"wavenet: interrupted; checkpoint saved to {kpath} (continue with --resume)", file=sys.stderr)
        _write_summary(out, summary)
        return 130
    nats = evaluate()
    summary["val_nll_nats"] = nats
    summary["val_nll_bits"] = nats / LN2
    try:
        from ..data.images import plot_curves

        curves = {"train (nats/sample)": logger.series("loss_nats", "train")}
        val = logger.series("val_nll_nats", "val")
        if val:
            curves["test NLL (nats/sample)"] = val
        plot_curves(curves, os.path.join(out, "loss_curve.png"), title="WaveNet on FSDD", ylabel="nats/sample")
    except Exception as e:  # a plot must not lose a finished run
        print(f"wavenet: loss curve not written ({type(e).__name__}: {e})", file=sys.stderr)
    if args.sample_seconds and args.sample_seconds > 0:
        res = _generate_and_write(model, out, list(range(10)) if cond else [None], args.sample_seconds,
                                  args.temperature, args.seed, n=1, naive=False)
        summary["generation"] = res
    _write_summary(out, summary)
    print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, dict)}), file=sys.stderr)
    return 0


def _write_summary(out, summary):
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)


# ----------------------------------------------------------------------------- sampling
def _parse_digits(spec):
    spec = str(spec).strip()
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    if not out or any(d < 0 or d > 9 for d in out):
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(f"--digits: expected digits 0-9 like '0-9' or '3,7', got {spec!r}")
    return out


def _generate_and_write(model, out, digits, seconds, temperature, seed, n=1, naive=False):
    import numpy as np

    from ..data.audio import write_wav
    from ..models.wavenet import mu_law_decode

    os.makedirs(out, exist_ok=True)
    T = max(1, int(round(seconds * 8000)))
    labels = [d for d in digits for _ in range(n)]
    cond = model.config.num_classes > 0
    gen = model.generate_naive if naive else model.generate
    t0 = time.perf_counter()
    classes = gen(T, batch_size=len(labels), labels=np.array(labels) if cond else None,
                  temperature=temperature, seed=seed)
    dt = time.perf_counter() - t0
    audio = mu_law_decode(classes)
    files = []
    for i, d in enumerate(labels):
        name = (f"wavenet_digit{d}" if d is not None else "wavenet") + (f"_{i % n}" if n > 1 else "") + ".wav"
        files.append(write_wav(os.path.join(out, name), audio[i]))
    titles = [f"digit {d}" if d is not None else "unconditional" for d in labels]
    save_audio_plots(audio, titles, os.path.join(out, "waveform.png"), os.path.join(out, "spectrogram.png"))
    res = {"clips": len(labels), "samples_per_clip": T, "seconds": dt,
           "samples_per_s_per_clip": T / dt, "samples_per_s_total": T * len(labels) / dt,
           "generator": "naive (uncached)" if naive else "fast (cached queues)", "files": files}
    print(f"wavenet: generated {len(labels)} x {T} samples in {dt:.2f} s with the {res['generator']} generator "
          f"({res['samples_per_s_total']:.0f} samples/s in all, {res['samples_per_s_per_clip']:.0f} per clip); "
          f"wrote {len(files)} WAVs, waveform.png, spectrogram.png in {out}", file=sys.stderr)
    return res


def save_audio_plots(audio, titles, waveform_png, spectrogram_png, sample_rate=8000, title="WaveNet samples"):
    """One panel per clip: the waveform, and a log-magnitude spectrogram (256-point Hann STFT, hop 64; one
    colour scale for all panels: the loudest bin of all clips down to 80 dB below it)."""
    import numpy as np

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    audio = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    n = len(audio)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    specs = [_stft_db(x, sample_rate) for x in audio]
    top = max(float(S.max()) for S, _ in specs)  # one colour scale for all clips: loudness stays comparable
    for kind, path in (("wave", waveform_png), ("spec", spectrogram_png)):
        fig = Figure(figsize=(5.0 * cols, 1.6 * rows + 0.6), dpi=100)
        FigureCanvasAgg(fig)
        for i in range(n):
            ax = fig.add_subplot(rows, cols, i + 1)
            x = audio[i]
            t = np.arange(len(x)) / sample_rate
            if kind == "wave":
                ax.plot(t, x, linewidth=0.5)
                ax.set_ylim(-1, 1)
            else:
                S, f = specs[i]
                ax.imshow(S, origin="lower", aspect="auto", extent=(0, len(x) / sample_rate, 0, f[-1]),
                          cmap="magma", vmin=top - 80, vmax=top)
                ax.set_ylabel("Hz", fontsize=7)
            ax.set_title(titles[i], fontsize=8)
            ax.tick_params(labelsize=6)
        fig.suptitle(f"{title}: " + ("waveform" if kind == "wave" else "spectrogram (dB)"), fontsize=9)
        fig.tight_layout()
        fig.savefig(path)
    return waveform_png, spectrogram_png


def _stft_db(x, sr, n_fft=256, hop=64):
    import numpy as np

    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    win = np.hanning(n_fft)
    frames = np.stack([x[i:i + n_fft] * win for i in range(0, len(x) - n_fft + 1, hop)], axis=1)
    mag = np.abs(np.fft.rfft(frames, axis=0))
    return 20 * np.log10(mag + 1e-6), np.fft.rfftfreq(n_fft, 1 / sr)


def sample(args) -> int:
    """``minigen sample RUN_DIR``: load the run's model and write one WAV per digit + waveform/spectrogram PNGs.

    ``--n`` clips per digit (default 1), ``--out`` a folder (default RUN_DIR/samples), ``--digits``,
    ``--seconds``, ``--temperature``, ``--seed``, ``--naive`` (the uncached generator, for comparison).
    """
    model, _ = load_run(args.run_dir, getattr(args, "device", None))
    out = getattr(args, "out", None) or os.path.join(args.run_dir, "samples")
    cond = model.config.num_classes > 0
    digits = _parse_digits(getattr(args, "digits", "0-9")) if cond else [None]
    _generate_and_write(model, out, digits, getattr(args, "seconds", 0.75), getattr(args, "temperature", 1.0),
                        getattr(args, "seed", 0) or 0, n=max(1, int(getattr(args, "n", None) or 1)),
                        naive=bool(getattr(args, "naive", False)))
    return 0


def main(argv=None) -> int:
    """``python -m minigen.recipes.wavenet train|sample ...`` (the same as the ``minigen`` subcommands)."""
    p = argparse.ArgumentParser(prog="python -m minigen.recipes.wavenet", description=HELP)
    sub = p.add_subparsers(dest="cmd", required=True)
    add_arguments(sub.add_parser("train", help="train on FSDD"))
    sp = sub.add_parser("sample", help="sample from a run folder")
    C.add_sample_arguments(sp)
    add_sample_arguments(sp)
    args = p.parse_args(argv)
    return run(args) if args.cmd == "train" else sample(args)


if __name__ == "__main__":
    sys.exit(main())
