"""A small, explicit training helper (not a framework) and the MNIST classifier recipe.

:class:`Trainer` runs the loop everybody writes by hand, and nothing more::

    for each epoch, for each batch:
        optimizer.zero_grad(); loss = loss_fn(batch); loss.backward()
        (clip gradients); optimizer.step(); scheduler.step()
        every log_every steps: a metrics row (mean loss, lr, samples/s) -> metrics.jsonl + metrics.csv
        every eval_every steps (and at each epoch end): eval_fn() -> a 'val' metrics row
        every checkpoint_every steps (and at each epoch end): save the training state

What you pass in stays yours: the model, the optimizer, the loader and two
functions — ``loss_fn(batch) -> loss`` (or ``(loss, {name: value})``) and
``eval_fn() -> {name: value}`` (run under ``no_grad`` with ``model.eval()``).

Checkpoints (one file, ``<out_dir>/checkpoint.safetensors``, replaced atomically,
so it always holds the latest complete state) contain the model, optimizer and
scheduler state dicts, minigen's RNG state, the loader's position in its epoch
and the step/epoch counters: ``fit(resume=True)`` continues exactly where the
saved run was, bit for bit on the CPU.

Ctrl-C during ``fit`` finishes the current step, saves a checkpoint and returns
(``result['interrupted'] is True``); a second Ctrl-C stops sooner. Whatever stops the
run — a second Ctrl-C, a ``KeyboardInterrupt`` raised by your own code, one delivered to a
``fit`` that runs outside the main thread — the checkpoint it leaves is always **one
consistent step**: the parameters, optimizer, scheduler, RNG, loader position and
counters of the same moment of an uninterrupted run, so resuming continues it bit for bit.
Each step goes through these phases, and an interrupt in each is handled so:

- *before the update* (fetching the batch, forward, backward, clipping): roll back — the
  RNG, the loader position and the model's buffers (e.g. BatchNorm running statistics,
  updated by the forward) are restored from a snapshot taken before the step, and that
  state is saved; the resumed run redoes the step;
- *the update* (``optimizer.step()``, the scheduler step, advancing the counters): a
  Ctrl-C signal is deferred until the update is complete and counted; an exception raised
  after ``optimizer.step()`` returned rolls forward (the scheduler's step is redone from
  its pre-step state, the step is counted) and saves; one raised *inside*
  ``optimizer.step()`` (parameters possibly half-updated) saves nothing, and the previous
  checkpoint stays;
- *the end of an epoch* (closing the loader's epoch, counting it, an epoch scheduler's
  step): rolled forward like the update;
- *after the update* (logging, evaluation, checkpointing): the state is consistent and is
  saved. Evaluation runs with the RNG state saved and restored around it, so it never
  shifts the training's random stream; an evaluation cut short is re-run on resume.

(The metrics log of an interrupted step may lack that step's train row; the trained
values never differ.) ``trainer.request_stop()`` does what a first Ctrl-C does, from any
thread. Limits: a subclass whose ``_train_step`` updates parameters must set
``self._in_update = True`` before its first update and ``False`` after its last (as
``AdversarialTrainer`` does); state kept in ``extra_state`` is saved as it is, not rolled
back; an interrupt that lands inside the interrupt handling itself propagates out of
``fit``, leaving the checkpoint file as it was (writes are atomic).

**Data parallelism.** ``Trainer(..., data_parallel=DataParallel(seed))`` in a world of several processes
(``mpiexec -n N``, :class:`DataParallel`): the loss_fn forwards through ``dp.wrap(model)``, the loader yields
this rank's rows of each global batch (``dp.shard_loader``); the Trainer reseeds minigen's global generator per
(seed, step, rank), weights an uneven shard's loss, all-reduces ``[loss * rows, rows, stop flag]`` once per
step (the logged loss is the global batch's; a stop asked on any rank stops every rank after the same step),
lets rank 0 alone evaluate (its metrics broadcast), log and write checkpoints, and treats a second Ctrl-C as an
abort of the whole job (no rollback checkpoint: the ranks may be in different phases). Without
``data_parallel`` (or in a world of one) nothing of this runs: the loop is the single-process one, bit for bit.

The second half of this module is the recipe behind ``minigen train mlp|cnn``:
an MLP and a LeNet-style CNN trained on the bundled MNIST 9k/1k split.
"""
from __future__ import annotations

import copy
import csv
import json
import math
import os
import signal
import sys
import threading
import time

import numpy as np

from . import backend
from .errors import InvalidArgumentError
from .io import load as _load, save as _save
from .random import get_rng_state, set_rng_state
from .tensor import Tensor

__all__ = ["Trainer", "MetricsLogger", "DataParallel", "ShardedLoader", "clip_grad_norm", "batch_size_of",
           "accuracy", "MLP", "LeNet", "mnist_model", "train_mnist"]

CHECKPOINT = "checkpoint.safetensors"
_END = object()  # the end of a loader's epoch


# ----------------------------------------------------------------------------- metrics log
class MetricsLogger:
    """Metric rows to ``<out_dir>/<name>.jsonl`` (one JSON object per line) and ``<name>.csv``.

    Every row has a ``split`` ('train', 'val', ...) and a ``step``. The CSV has the
    union of all columns seen so far (a new column rewrites the CSV from the rows).
    ``truncate(step)`` drops rows after ``step`` (used on resume, so the log matches
    the checkpoint). ``write=False`` keeps the rows in memory only and touches no file (the
    ranks other than 0 of a data-parallel run).
    """

    def __init__(self, out_dir, name="metrics", write=True):
        self.jsonl_path = os.path.join(out_dir, name + ".jsonl")
        self.csv_path = os.path.join(out_dir, name + ".csv")
        self.rows = []
        self.columns = []
        self.write = bool(write)
        if self.write and os.path.exists(self.jsonl_path):
            with open(self.jsonl_path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if line:
                        try:
                            self.rows.append(json.loads(line))
                        except json.JSONDecodeError:
                            break  # a half-written last line from a crash
            self._rewrite()

    def _add_columns(self, row) -> bool:
        new = [k for k in row if k not in self.columns]
        self.columns.extend(new)
        return bool(new)

    def _rewrite(self):
        self.columns = []
        for r in self.rows:
            self._add_columns(r)
        if not self.write:
            return
        with open(self.jsonl_path, "w", encoding="utf-8") as f:
            for r in self.rows:
                f.write(json.dumps(r) + "\n")
        with open(self.csv_path, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns)
            w.writeheader()
            w.writerows(self.rows)

    def log(self, row: dict) -> None:
        row = {k: _jsonable(v) for k, v in row.items()}
        self.rows.append(row)
        if not self.write:
            self._add_columns(row)
            return
        with open(self.jsonl_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self._add_columns(row) or not os.path.exists(self.csv_path):
            self._rewrite()
        else:
            with open(self.csv_path, "a", encoding="utf-8", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns).writerow(row)

    def truncate(self, step: int) -> None:
        self.rows = [r for r in self.rows if r.get("step", 0) <= step]
        self._rewrite()

    def series(self, key: str, split: str = "train"):
        """``[(step, value), ...]`` of one metric."""
        return [(r["step"], r[key]) for r in self.rows if r.get("split") == split and r.get(key) is not None]


def _jsonable(v):
    if isinstance(v, Tensor):
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# ----------------------------------------------------------------------------- small helpers
def batch_size_of(batch) -> int:
    """Number of samples in a batch: the length of its first Tensor/array (1 if none)."""
    if isinstance(batch, (Tensor, np.ndarray)):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for b in batch:
            n = batch_size_of(b)
            if n:
                return n
    return 0


def clip_grad_norm(parameters, max_norm: float) -> float:
    """Scale all gradients so their joint L2 norm is at most ``max_norm``; returns the norm before clipping.

    ``total = sqrt(sum_p ||g_p||^2)``; if ``total > max_norm`` every ``g_p`` is
    multiplied by ``max_norm / (total + 1e-6)`` (PyTorch's ``clip_grad_norm_``).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(sum(float((g.array.astype(np.float64) ** 2).sum()) for g in grads))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g.array *= g.array.dtype.type(coef)
    return total


def accuracy(logits, target) -> float:
    """Fraction of rows whose argmax equals the target."""
    pred = backend.to_numpy(logits.detach().array).argmax(-1)
    return float((pred == backend.to_numpy(target.array)).mean())


# ----------------------------------------------------------------------------- data parallelism
class DataParallel:
    """The data-parallel world of one training run: which rank this process is, of how many, and the few
    collective steps a training loop needs (PyTorch DDP's conventions).

    Built after the process group exists (``minigen.distributed.init_from_env()`` or ``init_process_group``);
    without one, or in a world of one process, it is *inactive*: every method is the identity (``wrap`` returns
    the module, ``shard_loader`` the loader, ``all_sum`` its input), so a single-process run is unchanged.

    How a run is split over W processes (all of them hold the whole model):

    - **parameters**: :meth:`wrap` puts the model in a ``DistributedDataParallel`` (rank 0's parameters and
      buffers broadcast at construction, gradients averaged during the backward);
    - **data**: every rank draws the same *global* batch of ``W * B`` samples (``B`` = the per-process batch,
      :meth:`global_batch`) from the same seeded loader and keeps its own rows (:meth:`shard`:
      rows ``[r*N/W, (r+1)*N/W)`` of a global batch of N rows). The shards are disjoint and cover the global batch,
      so W processes x B see exactly the samples of one process x W*B, in the same order of steps;
    - **loss weight**: a shard of n_r of the N rows gets weight ``W * n_r / N`` on its mean loss (1 for equal
      shards), so the averaged gradient is the gradient of the mean over the whole global batch even when the
      last batch of an epoch does not split evenly (a rank with no row gets one row at weight 0);
    - **randomness** (dropout, noise, augmentation): the global generator is reseeded at every step with
      (seed, step, rank) (:meth:`seed_step`): different on every rank, reproducible, and independent of where a
      run was stopped and resumed;
    - **stopping**: :meth:`all_sum` of a stop flag once per step, so a Ctrl-C, a time budget or ``request_stop``
      on any rank stops every rank after the same step;
    - **files**: only rank 0 (:attr:`is_main`) writes (checkpoints, logs, pictures, samples).
    """

    def __init__(self, seed=0):
        from . import distributed as dist

        if dist.is_initialized():
            self.rank, self.world = int(dist.get_rank()), int(dist.get_world_size())
        else:
            self.rank, self.world = 0, 1
        self.seed = int(seed)
        self._shard = None  # (weight, rows) of the latest shard handed out

    def __repr__(self):
        return f"DataParallel(rank={self.rank}, world={self.world})"

    @property
    def active(self) -> bool:
        """True when there is more than one process."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that writes files)."""
        return self.rank == 0

    # ---- model and data
    def wrap(self, module, **kw):
        """``DistributedDataParallel(module, **kw)`` in a world of several processes, else ``module`` itself."""
        if not self.active:
            return module
        from .nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module, **kw)

    def global_batch(self, batch_size) -> int:
        """The number of samples of one step over all processes: ``world * batch_size``."""
        return int(batch_size) * self.world

    def bounds(self, n):
        """``(lo, hi)``: this rank's rows of a global batch of ``n`` rows (equal shares when W divides n)."""
        return (self.rank * n) // self.world, ((self.rank + 1) * n) // self.world

    def shard(self, batch):
        """This rank's rows of a global ``batch`` (Tensors and arrays whose first dimension is the batch's length,
        inside tuples, lists and dicts; other leaves are kept). Records the loss weight (class docstring)."""
        if not self.active:
            return batch
        n = batch_size_of(batch)
        lo, hi = self.bounds(n)
        rows = hi - lo
        if rows == 0:  # fewer rows than processes: a placeholder row that does not count
            lo, hi = 0, 1
        self._shard = (self.world * rows / n if n else 0.0, rows)
        return _take_rows(batch, n, lo, hi)

    def pop_shard(self, batch):
        """``(loss weight, rows that count)`` of the latest :meth:`shard` (``(1.0, len(batch))`` if none)."""
        info, self._shard = self._shard, None
        return info if info is not None else (1.0, batch_size_of(batch))

    def shard_loader(self, loader):
        """``loader`` (yielding global batches) as a :class:`ShardedLoader` of this rank's rows; ``loader`` itself
        in a world of one."""
        return ShardedLoader(loader, self) if self.active else loader

    # ---- randomness
    def seed_step(self, step) -> None:
        """Reseed minigen's global generator for ``step`` on this rank (only when active): a stream of its own
        per (seed, step, rank)."""
        if self.active:
            from .random import manual_seed

            state = np.random.SeedSequence([self.seed % 2**63, int(step), self.rank]).generate_state(2, np.uint32)
            manual_seed(int(state[0]) << 32 | int(state[1]))

    # ---- collectives (identity when inactive)
    def all_sum(self, values):
        """The element-wise sum over the ranks of a list of numbers, as a float64 NumPy array."""
        arr = np.asarray(values, dtype=np.float64).reshape(-1).copy()
        if self.active:
            from . import distributed as dist

            t = Tensor._make(arr)
            dist.all_reduce(t, dist.ReduceOp.SUM)
            arr = t.array
        return arr

    def any(self, flag) -> bool:
        """True on every rank when ``flag`` is true on some rank."""
        return bool(self.all_sum([1.0 if flag else 0.0])[0] > 0)

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` (JSON-serialisable) on every rank."""
        if not self.active:
            return obj
        from . import distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean_dict(self, d):
        """Each number of ``d`` averaged over the ranks that have it (rank 0's keys, in its order)."""
        if not self.active:
            return d
        from . import distributed as dist

        mine = {k: _jsonable(v) for k, v in d.items()}
        every = [None] * self.world
        dist.all_gather_object(every, mine)
        out = {}
        for k, v in every[0].items():
            vals = [e[k] for e in every if isinstance(e.get(k), (int, float)) and not isinstance(e.get(k), bool)]
            out[k] = sum(vals) / len(vals) if vals and isinstance(v, (int, float)) and not isinstance(v, bool) else v
        return out

    def barrier(self) -> None:
        if self.active:
            from . import distributed as dist

            dist.barrier()

    def main_first(self):
        """A context: rank 0 runs the block first (e.g. writes a cache file), the others after it."""
        import contextlib

        @contextlib.contextmanager
        def ctx():
            if self.active and not self.is_main:
                self.barrier()
            try:
                yield
            finally:
                if self.active and self.is_main:
                    self.barrier()

        return ctx()

    def gather_rows(self, t, dim=0):
        """Concatenate every rank's ``t`` along ``dim`` (rank order): e.g. the whole global batch's carried state."""
        if not self.active:
            return t
        from . import distributed as dist

        xp_arr = np.ascontiguousarray(np.moveaxis(backend.to_numpy(t.array if isinstance(t, Tensor) else t), dim, 0))
        counts = [None] * self.world
        dist.all_gather_object(counts, int(xp_arr.shape[0]))
        pieces = [Tensor._make(np.empty((int(c),) + xp_arr.shape[1:], xp_arr.dtype)) for c in counts]
        dist.all_gather(pieces, Tensor._make(xp_arr))
        full = np.concatenate([backend.to_numpy(p.array) for p in pieces], axis=0)
        return Tensor._make(np.moveaxis(full, 0, dim))

    def rows(self, t, dim=0):
        """This rank's share of ``t`` along ``dim`` (the inverse of :meth:`gather_rows` for equal shares)."""
        if not self.active:
            return t
        lo, hi = self.bounds(t.shape[dim])
        idx = [slice(None)] * len(t.shape)
        idx[dim] = slice(lo, hi)
        return t[tuple(idx)]


def _take_rows(obj, n, lo, hi):
    if isinstance(obj, (Tensor, np.ndarray)):
        return obj[lo:hi] if obj.ndim and obj.shape[0] == n else obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*(_take_rows(o, n, lo, hi) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_take_rows(o, n, lo, hi) for o in obj)
    if isinstance(obj, dict):
        return {k: _take_rows(v, n, lo, hi) for k, v in obj.items()}
    return obj


class ShardedLoader:
    """A loader of global batches seen through one rank: yields :meth:`DataParallel.shard` of each batch of
    ``loader``. Length, ``generator``, ``batch_size`` and the resumable state are the wrapped loader's (plus the
    global batch size, so a resume with another global batch can say so)."""

    def __init__(self, loader, dp):
        self.loader, self.dp = loader, dp

    def __iter__(self):
        for batch in self.loader:
            yield self.dp.shard(batch)

    def __len__(self):
        return len(self.loader)

    @property
    def generator(self):
        return getattr(self.loader, "generator", None)

    @property
    def batch_size(self):
        return getattr(self.loader, "batch_size", None)

    def state_dict(self):
        st = dict(self.loader.state_dict()) if hasattr(self.loader, "state_dict") else {}
        if self.batch_size is not None:
            st["global_batch_size"] = int(self.batch_size)
        return st

    def load_state_dict(self, st):
        if hasattr(self.loader, "load_state_dict"):
            self.loader.load_state_dict({k: v for k, v in st.items() if k != "global_batch_size"})


# ----------------------------------------------------------------------------- Trainer
class Trainer:
    """The training loop with logging, evaluation, checkpoints, resume and clean Ctrl-C (module docstring)."""

    def __init__(self, model, optimizer, loss_fn, train_loader, *, out_dir, scheduler=None, eval_fn=None,
                 epochs=1, max_steps=None, log_every=10, eval_every=None, checkpoint_every=None,
                 grad_clip=None, progress=None, scheduler_interval="step", monitor="val_loss",
                 extra_state=None, checkpoint_name=CHECKPOINT, log_name="metrics", data_parallel=None):
        if epochs is None and max_steps is None:
            raise InvalidArgumentError("Trainer: give epochs or max_steps")
        if scheduler_interval not in ("step", "epoch"):
            raise InvalidArgumentError(f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}")
        self.model, self.optimizer, self.loss_fn, self.loader = model, optimizer, loss_fn, train_loader
        self.scheduler, self.eval_fn = scheduler, eval_fn
        self.epochs = epochs if epochs is not None else 10**9
        self.max_steps = max_steps
        self.log_every, self.eval_every, self.checkpoint_every = log_every, eval_every, checkpoint_every
        self.grad_clip = grad_clip
        self.progress = progress
        self.scheduler_interval, self.monitor = scheduler_interval, monitor
        self.extra_state = extra_state  # an object with state_dict()/load_state_dict(), saved too
        # a DataParallel of several processes (else None: the single-process loop, unchanged)
        self.dp = data_parallel if data_parallel is not None and data_parallel.active else None
        self.out_dir = os.fspath(out_dir)
        os.makedirs(self.out_dir, exist_ok=True)
        self.checkpoint_path = os.path.join(self.out_dir, checkpoint_name)
        self.logger = MetricsLogger(self.out_dir, log_name, write=self.dp is None or self.dp.is_main)
        self.step = 0
        self.epoch = 0
        self.last_eval = {}
        self._stop = False
        self._stop_requested = False  # data-parallel runs: a stop asked on this rank, agreed at the next step
        self._phase = None       # where the step in progress is (see the module docstring)
        self._snapshot = None    # state from before the step in progress (rollback / roll-forward)
        self._next_step = 0      # the step counter once the step in progress is complete
        self._abort_pending = False  # a second Ctrl-C arrived during an update: stop right after it
        self._eval_pending = False   # an evaluation was started and has not finished
        self._eval_rng = None
        self._next_epoch, self._epoch_iter = 0, None
        self.interrupt_phase = None  # where the last interrupt landed (fit's result names it too)
        self._last_eval = -1
        self._last_saved = -1
        self._shard_weight = 1.0  # data-parallel: the loss weight of this rank's shard of the step's batch

    def request_stop(self) -> None:
        """Ask a running ``fit`` (e.g. in another thread, where no Ctrl-C handler can be installed) to finish its
        current step, save a checkpoint and return, as a first Ctrl-C does. In a data-parallel run every rank
        stops after the same step (the request is agreed on at the end of the step in progress)."""
        if self.dp is not None:
            self._stop_requested = True
        else:
            self._stop = True

    # ---- phases
    @property
    def _in_update(self) -> bool:
        """True while parameters are being updated (subclasses set it around their own update code)."""
        return self._phase in ("update", "scheduler")

    @_in_update.setter
    def _in_update(self, value) -> None:
        if value:
            self._phase = "update"
        elif self._phase in ("update", "scheduler"):
            self._phase = "updated"

    def _take_snapshot(self) -> dict:
        gen = getattr(self.loader, "generator", None)
        named_buffers = getattr(self.model, "named_buffers", None)
        return {
            "rng": get_rng_state(),
            "loader": self.loader.state_dict() if hasattr(self.loader, "state_dict") else None,
            "loader_generator": gen.get_state() if gen is not None else None,
            "buffers": ({k: b.detach().clone() for k, b in named_buffers() if b is not None}
                        if callable(named_buffers) else {}),
            "scheduler": copy.deepcopy(self.scheduler.state_dict()) if self.scheduler is not None else None,
        }

    def _commit(self) -> None:
        """The step is complete: count it (idempotent), leave the update phase, act on a deferred Ctrl-C."""
        self.step = self._next_step
        self._phase = None
        self._snapshot = None
        if self._abort_pending:
            self._abort_pending = False
            raise KeyboardInterrupt

    # ---- state
    def state_dict(self, rng_state=None, loader_state=None, loader_generator_state=None, buffers=None) -> dict:
        """The full training state, as saved in the checkpoint (the keyword arguments substitute snapshot
        values: a rollback saves the RNG, loader and buffers from before the interrupted step)."""
        gen = getattr(self.loader, "generator", None)
        model = self.model.state_dict()
        if buffers:
            model = type(model)((k, buffers.get(k, v)) for k, v in model.items())
        return {
            "model": model,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": rng_state if rng_state is not None else get_rng_state(),
            "loader": loader_state if loader_state is not None else (
                self.loader.state_dict() if hasattr(self.loader, "state_dict") else None),
            "loader_generator": loader_generator_state if loader_generator_state is not None else (
                gen.get_state() if gen is not None else None),
            "extra": self.extra_state.state_dict() if self.extra_state is not None else None,
            "step": self.step,
            "epoch": self.epoch,
            "last_eval": self.last_eval,
            "eval_pending": bool(self._eval_pending),
        }

    def load_state_dict(self, state: dict) -> None:
        missing = [k for k in ("model", "optimizer", "rng", "step", "epoch")
                   if not isinstance(state, dict) or k not in state]
        if missing:
            from .errors import CheckpointError

            raise CheckpointError(f"not a training state saved by Trainer: missing {missing} (got "
                                  f"{sorted(state)[:8] if isinstance(state, dict) else type(state).__name__})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        if state.get("loader") is not None and hasattr(self.loader, "load_state_dict"):
            self.loader.load_state_dict(self._adapt_loader_state(state["loader"]))
        gen = getattr(self.loader, "generator", None)
        if gen is not None and state.get("loader_generator") is not None:
            gen.set_state(state["loader_generator"])
        if self.extra_state is not None and state.get("extra") is not None:
            self.extra_state.load_state_dict(state["extra"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.last_eval = dict(state.get("last_eval") or {})
        self._eval_pending = bool(state.get("eval_pending", False))

    def _adapt_loader_state(self, st):
        """A loader position saved with another global batch size (a data-parallel run resumed on another number
        of processes x batch): the same epoch, at the first batch not entirely seen (a few samples of the
        epoch may be seen twice; a note says how many)."""
        saved = st.get("global_batch_size") if isinstance(st, dict) else None
        now = getattr(self.loader, "batch_size", None)
        done = st.get("batches_done") if isinstance(st, dict) else None
        if not saved or not now or saved == now or not done:
            return st
        try:
            len(self.loader)
        except TypeError:  # an endless stream of random batches: its position has no epoch to keep
            return st
        seen = int(done) * int(saved)
        st = dict(st, batches_done=seen // int(now))
        if seen % int(now):
            print(f"resume: the checkpoint's global batch is {saved} samples, this run's is {now}: continuing the "
                  f"epoch after {st['batches_done']} batches of {now} ({seen % int(now)} samples of it are seen "
                  "again)", file=sys.stderr)
        return st

    def save_checkpoint(self, path=None, **kw) -> str:
        """Write the training state (data-parallel runs: every rank computes it, rank 0 alone writes it)."""
        path = path or self.checkpoint_path
        state = self.state_dict(**kw)
        if self.dp is not None and not self.dp.is_main:
            return path
        phase, self._phase = self._phase, "saving"  # a second Ctrl-C waits for the write (atomic anyway)
        try:
            _save(state, path)
        finally:
            self._phase = phase
        return path

    def resume(self, path=None) -> bool:
        """Load the checkpoint (default: the latest in ``out_dir``); False when there is none."""
        path = path or self.checkpoint_path
        if not os.path.exists(path):
            return False
        self.load_state_dict(_load(path))
        self.logger.truncate(self.step)
        return True

    # ---- pieces of the loop
    def _lr(self):
        try:
            return float(self.optimizer.param_groups[0]["lr"])
        except (AttributeError, IndexError, KeyError, TypeError):
            return None

    def evaluate(self) -> dict:
        if self.eval_fn is None:
            return {}
        from .autograd import no_grad

        was_training = getattr(self.model, "training", True)
        self._eval_rng = get_rng_state()  # evaluation never shifts the training's random stream
        self._eval_pending = True         # (while True, the state to save has the RNG of _eval_rng)
        self.model.eval()
        try:
            with no_grad():
                # data-parallel: rank 0 evaluates (the replicas are equal), the others receive its metrics
                metrics = dict(self.eval_fn()) if self.dp is None or self.dp.is_main else {}
        finally:
            self.model.train(was_training)
            set_rng_state(self._eval_rng)
        self._eval_pending = False
        metrics = {k: _jsonable(v) for k, v in metrics.items()}
        if self.dp is not None:
            metrics = self.dp.broadcast_object(metrics)
        self.last_eval = metrics
        self.logger.log({"split": "val", "step": self.step, "epoch": self.epoch, **metrics})
        if self.scheduler is not None and type(self.scheduler).__name__ == "ReduceLROnPlateau":
            if metrics.get(self.monitor) is not None:
                self.scheduler.step(metrics[self.monitor])
        return metrics

    def _train_step(self, batch):
        """One step: ``(loss value, extra metrics)``. Subclasses that update parameters set ``self._in_update``
        to True just before their first update and to False right after their last one."""
        self.optimizer.zero_grad()
        out = self.loss_fn(batch)
        loss, extra = (out if isinstance(out, tuple) else (out, {}))
        if self.dp is not None and self._shard_weight != 1.0:  # an uneven shard (DataParallel docstring)
            (loss * self._shard_weight).backward()
        else:
            loss.backward()
        if self.grad_clip:
            clip_grad_norm([p for g in self.optimizer.param_groups for p in g["params"]], self.grad_clip)
        value = float(loss.item())
        self._in_update = True
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "step" \
                and type(self.scheduler).__name__ != "ReduceLROnPlateau":
            self._phase = "scheduler"  # the optimizer's update is complete
            self.scheduler.step()
        self._in_update = False
        return value, extra

    def _install_sigint(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self.dp is not None:  # data-parallel: agreed on by every rank after this step; a second one aborts
                if self._stop_requested:
                    raise KeyboardInterrupt
                self._stop_requested = True
                print(f"\nCtrl-C (rank {self.dp.rank}): every rank stops after this step and rank 0 saves a "
                      "checkpoint (Ctrl-C again aborts the job)", file=sys.stderr, flush=True)
                return
            if self._stop:  # second Ctrl-C: stop now, unless an update or a checkpoint write is under way
                if self._phase in ("update", "scheduler", "updated", "saving", "epoch_end", "epoch_scheduler"):
                    self._abort_pending = True
                    return
                raise KeyboardInterrupt
            self._stop = True
            print("\nCtrl-C: finishing this step and saving a checkpoint (Ctrl-C again to abort)",
                  file=sys.stderr, flush=True)

        try:
            return signal.signal(signal.SIGINT, handler)
        except ValueError:
            return None

    def _reached_max(self):
        return self.max_steps is not None and self.step >= self.max_steps

    def _loader_exhausted(self):
        """Whether the loader just handed out the last batch of its epoch."""
        try:
            return self.loader.state_dict()["batches_done"] >= len(self.loader)
        except (AttributeError, TypeError, KeyError):
            return False

    def _evaluate_once(self):
        if self.eval_fn is not None and self._last_eval != self.step:
            self._last_eval = self.step
            self.evaluate()

    def _save_once(self):
        if self._last_saved != self.step or self._stop:
            self._last_saved = self.step
            self.save_checkpoint()

    def _total_steps(self):
        try:
            n = len(self.loader) * self.epochs
        except TypeError:
            n = None
        if self.max_steps is not None:
            n = self.max_steps if n is None else min(n, self.max_steps)
        return n

    def _finish_epoch(self) -> None:
        """The end of an epoch (phase "epoch_end"): close the loader's epoch (so the saved position reads "epoch
        done", not "last batch taken", which resuming would count again), count it, step an epoch scheduler.
        Safe to call again after an interrupt in the middle: each part is idempotent or redone from the snapshot."""
        for _ in self._epoch_iter:  # (nothing is left: the generator just finishes)
            break
        self.epoch = self._next_epoch
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self._phase = "epoch_scheduler"
            self.scheduler.step()
        self._phase, self._snapshot, self._epoch_iter = None, None, None
        if self._abort_pending:
            self._abort_pending = False
            raise KeyboardInterrupt

    def _save_interrupted(self) -> None:
        """After a KeyboardInterrupt: save the consistent state of the phase it landed in (module docstring)."""
        phase, snap = self._phase, self._snapshot
        self._abort_pending = False  # (we are stopping anyway)
        self.interrupt_phase = {None: "between steps", "pre": "before the update", "update": "inside the update",
                                "scheduler": "scheduler step", "updated": "update complete",
                                "saving": "checkpoint write", "epoch_end": "epoch end",
                                "epoch_scheduler": "epoch end"}.get(phase, str(phase))
        if self._eval_pending and phase is None:
            self.interrupt_phase = "evaluation"
        if phase == "update":
            print(f"interrupted inside the update of step {self._next_step}: parameters may be half-updated, so "
                  "no checkpoint was written (the previous one is kept)", file=sys.stderr)
            return
        kw = {}
        if self._eval_pending and phase is None:  # interrupted inside an evaluation: its RNG draws never count
            kw = {"rng_state": self._eval_rng}
        if phase == "pre" and snap is not None:  # roll back to the state from before the step
            kw = {"rng_state": snap["rng"], "loader_state": snap["loader"],
                  "loader_generator_state": snap["loader_generator"], "buffers": snap["buffers"]}
        elif phase == "scheduler" and snap is not None:  # roll forward: redo the scheduler's step from its state
            self.scheduler.load_state_dict(snap["scheduler"])
            self.scheduler.step()
            self.step = self._next_step
        elif phase == "updated":  # roll forward: the update is complete, count it
            self.step = self._next_step
        elif phase == "epoch_end":  # roll forward: finish the epoch's end
            self._finish_epoch()
        elif phase == "epoch_scheduler" and snap is not None:
            self.scheduler.load_state_dict(snap["scheduler"])
            self._phase = "epoch_end"
            self._finish_epoch()
        self._phase, self._snapshot = None, None
        self.save_checkpoint(**kw)

    # ---- the loop
    def fit(self, resume=False) -> dict:
        """Train; ``resume=True`` (or a path) first loads the latest checkpoint if there is one.

        Returns ``{'step', 'epoch', 'interrupted', 'interrupt_phase', 'resumed', 'checkpoint', 'train_loss',
        'elapsed_s', **last eval}`` (``interrupt_phase``: where an interrupt landed, e.g. 'before the update').
        """
        resumed = False
        if resume:
            resumed = self.resume(resume if isinstance(resume, (str, os.PathLike)) else None)
        self._stop = self._stop_requested = False
        self._phase, self._snapshot, self._abort_pending = None, None, False
        t_start = time.perf_counter()
        win_loss, win_n, win_samples, win_t = 0.0, 0, 0, time.perf_counter()
        last_loss = None
        interrupted = False
        bar = None
        from .autograd import is_grad_enabled, set_grad_enabled

        grad_mode = is_grad_enabled()
        old_handler = None
        try:
            old_handler = self._install_sigint()
            progress = self.progress if self.progress is not None else sys.stderr.isatty()
            from tqdm.auto import tqdm

            if self.dp is not None and not self.dp.is_main:
                progress = False
            bar = tqdm(total=self._total_steps(), initial=self.step, disable=not progress, unit="step",
                       dynamic_ncols=True, leave=False, file=sys.stderr)
            self.model.train()
            self._last_saved = self.step if resumed else -1
            self._last_eval = self.step if (resumed and self.last_eval and not self._eval_pending) else -1
            if resumed and self._eval_pending:  # the saved run was interrupted inside an evaluation: redo it
                self._evaluate_once()
            while self.epoch < self.epochs and not self._reached_max():
                self._snapshot = self._take_snapshot()
                self._phase = "pre"
                it = iter(self.loader)  # (may draw the epoch's shuffle seed: rolled back if interrupted)
                self._phase, self._snapshot = None, None
                epoch_done = False
                while True:
                    # the state from before this step: an interrupt before its update rolls back to it
                    self._snapshot = self._take_snapshot()
                    self._phase = "pre"
                    batch = next(it, _END)  # (no inner try: an interrupt at a `try:` line can skip the outer one)
                    if batch is _END:  # the epoch is over: from here its end is rolled forward if interrupted
                        self._next_epoch, self._epoch_iter = self.epoch + 1, it
                        self._phase = "epoch_end"
                        epoch_done = True
                        break
                    self._next_step = self.step + 1
                    if self.dp is not None:
                        self.dp.seed_step(self.step)
                        self._shard_weight, rows = self.dp.pop_shard(batch)
                    loss, extra = self._train_step(batch)
                    self._commit()
                    n_samples = batch_size_of(batch)
                    if self.dp is not None:  # the global batch's mean loss and size; a stop asked on any rank
                        tot = self.dp.all_sum([loss * rows, rows, 1.0 if self._stop_requested else 0.0])
                        loss = float(tot[0] / tot[1]) if tot[1] else loss
                        n_samples = int(tot[1])
                        self._stop = bool(tot[2] > 0)
                    last_loss = loss
                    win_loss += loss
                    win_n += 1
                    win_samples += n_samples
                    if self.log_every and self.step % self.log_every == 0:
                        if self.dp is not None:  # (a collective: every rank, at every log step)
                            extra = self.dp.mean_dict(extra)
                        dt = time.perf_counter() - win_t
                        row = {"split": "train", "step": self.step, "epoch": self.epoch, "loss": win_loss / win_n,
                               "lr": self._lr(), "samples_per_s": win_samples / dt if dt > 0 else None,
                               "elapsed_s": time.perf_counter() - t_start, **extra}
                        self.logger.log(row)
                        bar.set_postfix(loss=f"{win_loss / win_n:.4f}",
                                        samples_s=f"{win_samples / dt:.0f}" if dt > 0 else "-")
                        win_loss, win_n, win_samples, win_t = 0.0, 0, 0, time.perf_counter()
                    bar.update(1)
                    if self.eval_every and self.step % self.eval_every == 0:
                        self._evaluate_once()
                    if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                        self._save_once()
                    if self._stop:
                        break
                    if self._reached_max():
                        epoch_done = self._loader_exhausted()
                        if epoch_done:  # the last batch of the epoch: its end is done below, as after a full pass
                            self._snapshot = self._take_snapshot()
                            self._next_epoch, self._epoch_iter = self.epoch + 1, it
                            self._phase = "epoch_end"
                        break
                if self._stop:
                    interrupted = True
                    break
                if epoch_done:
                    self._finish_epoch()
                    if self.eval_fn is not None and not self.eval_every:
                        self._evaluate_once()
                    self._save_once()
            if not interrupted and self.step > 0:
                self._evaluate_once()
            self._save_once()
        except KeyboardInterrupt:
            if self.dp is not None:  # a second Ctrl-C in a data-parallel run: the ranks may be anywhere; abort
                raise
            interrupted = True
            self._save_interrupted()
        finally:
            if old_handler is not None:  # first: the process-wide state
                signal.signal(signal.SIGINT, old_handler)
            # an interrupt raised where a `with no_grad()` block calls its __exit__ (or inside a `finally`)
            # skips that restoring code: put the modes back here, as a completed run leaves them
            set_grad_enabled(grad_mode)
            if interrupted:
                self.model.train()
            if bar is not None:
                bar.close()
        return {"step": self.step, "epoch": self.epoch, "interrupted": interrupted, "resumed": resumed,
                "interrupt_phase": self.interrupt_phase if interrupted else None,
                "checkpoint": self.checkpoint_path if os.path.exists(self.checkpoint_path) else None,
                "train_loss": last_loss, "elapsed_s": time.perf_counter() - t_start, **self.last_eval}


# ============================================================================= MNIST recipe
def _nn():
    from . import nn

    return nn


def MLP(hidden=128, n_classes=10, in_features=784):
    """Flatten -> Linear(784, h) -> ReLU -> Linear(h, h) -> ReLU -> Linear(h, 10)."""
    nn = _nn()
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, n_classes))


def LeNet(n_classes=10):
    """LeNet-5 style for 1x28x28 input (ReLU and max-pooling instead of the original tanh and subsampling).

    conv 5x5 (1->6, pad 2) -> ReLU -> maxpool 2 -> conv 5x5 (6->16) -> ReLU -> maxpool 2 -> 16*5*5
    -> Linear 120 -> ReLU -> Linear 84 -> ReLU -> Linear 10.
    """
    nn = _nn()
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def mnist_model(kind: str, hidden=128):
    if kind == "mlp":
        return MLP(hidden)
    if kind == "cnn":
        return LeNet()
    raise InvalidArgumentError(f"unknown MNIST model {kind!r} (expected 'mlp' or 'cnn')")


def train_mnist(kind="mlp", epochs=3, batch_size=64, lr=1e-3, hidden=128, out="out/mnist", resume=False, seed=0,
                limit=None, val_limit=None, progress=None, device=None, log_every=20, quiet=False):
    """Train an MNIST classifier on the bundled 9k/1k split; writes metrics, a loss curve and a checkpoint to ``out``.

    Returns the Trainer's result dict plus ``val_acc``/``val_loss`` and the paths written.
    """
    import minigen as mg
    from .data import BundledMNIST, DataLoader, Subset, plot_curves
    from .nn import functional as F
    from .optim import Adam

    mg.manual_seed(seed)
    train_ds, val_ds = BundledMNIST("train"), BundledMNIST("val")
    if limit:
        train_ds = Subset(train_ds, range(min(int(limit), len(train_ds))))
    if val_limit:
        val_ds = Subset(val_ds, range(min(int(val_limit), len(val_ds))))
    loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True,
                        generator=mg.Generator().manual_seed(seed), device=device)
    val_loader = DataLoader(val_ds, batch_size=500, device=device)
    model = mnist_model(kind, hidden)
    if device is not None:
        model.to(device)
    opt = Adam(model.parameters(), lr=lr)

    def loss_fn(batch):
        x, y = batch
        logits = model(x)
        return F.cross_entropy(logits, y)

    def eval_fn():
        tot_loss, correct, n = 0.0, 0, 0
        for x, y in val_loader:
            logits = model(x)
            tot_loss += float(F.cross_entropy(logits, y, reduction="sum").item())
            correct += int(round(accuracy(logits, y) * len(y)))
            n += len(y)
        return {"val_loss": tot_loss / n, "val_acc": correct / n}

    log_every = max(1, min(log_every, len(loader) // 2))  # a curve even for a short run
    trainer = Trainer(model, opt, loss_fn, loader, out_dir=out, eval_fn=eval_fn, epochs=epochs,
                      log_every=log_every, progress=progress)
    t0 = time.perf_counter()
    res = trainer.fit(resume=resume)
    res["wall_s"] = time.perf_counter() - t0
    curves = {"train loss": trainer.logger.series("loss", "train")}
    if trainer.logger.series("val_loss", "val"):
        curves["val loss"] = trainer.logger.series("val_loss", "val")
    if curves["train loss"]:
        res["loss_curve"] = plot_curves(curves, os.path.join(out, "loss.png"), title=f"MNIST {kind}",
                                        ylabel="cross-entropy")
    res["metrics"] = trainer.logger.jsonl_path
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump({k: v for k, v in res.items() if isinstance(v, (int, float, str, bool, type(None)))}, f,
                  indent=1)
    if not quiet:
        status = "interrupted" if res["interrupted"] else "done"
        print(f"{kind}: {status} after {res['step']} steps ({res['epoch']} epochs) in {res['wall_s']:.1f}s; "
              f"val accuracy {res.get('val_acc', float('nan')):.4f}, val loss {res.get('val_loss', float('nan')):.4f}")
        print("wrote " + ", ".join(p for p in (res["metrics"], res.get("loss_curve"), res["checkpoint"]) if p))
    return res
