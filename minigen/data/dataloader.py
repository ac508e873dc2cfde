"""``DataLoader``: batches from a dataset, in order or shuffled, as minigen Tensors.

One epoch = one pass of ``for batch in loader``. The pieces (PyTorch's design):

- a *sampler* yields dataset indices: :class:`SequentialSampler` (0, 1, 2, ...),
  :class:`RandomSampler` (a fresh random permutation each epoch),
  :class:`SubsetRandomSampler`, :class:`WeightedRandomSampler`;
- a :class:`BatchSampler` groups them into lists of ``batch_size`` (the last one
  shorter, or dropped with ``drop_last=True``);
- ``collate_fn`` turns the list of samples into one batch; :func:`default_collate`
  stacks arrays/tensors/numbers into Tensors and recurses into tuples, lists and dicts.

Shuffling is reproducible: at the start of each epoch :class:`RandomSampler` draws
one 63-bit seed from its generator (``generator=`` or minigen's default generator,
so ``mg.manual_seed`` fixes it) and permutes with a NumPy PCG64 stream built from
that seed. The loader remembers that seed and how many batches it has handed out,
so ``loader.state_dict()`` saved in a checkpoint lets a resumed run continue the
*same* epoch at the next batch (``load_state_dict``), bit for bit.

Worker processes (``num_workers > 0``), PyTorch's protocol:

- the parent walks the sampler and sends batch *k*'s index list to worker
  ``k mod num_workers`` (at most ``prefetch_factor * num_workers`` batches in
  flight); each worker loads and collates its batches and sends them back on one
  shared result queue; the parent hands them out in sampler order (``in_order``);
- seeding: each epoch (or once, with ``persistent_workers=True``) the parent draws a
  63-bit ``base_seed`` from the loader's generator, *after* the sampler's seed, so
  the first epoch's order equals the ``num_workers=0`` order. Worker *w* then seeds
  minigen's default generator and Python's ``random`` with ``base_seed + w``, and
  NumPy's global ``np.random`` with a 32-bit word derived from ``(base_seed, w)``;
  :func:`get_worker_info` inside a worker returns its ``id``, ``num_workers``,
  ``seed`` and ``dataset`` copy; ``worker_init_fn(worker_id)`` runs after seeding;
- an exception raised while loading a batch (or in ``worker_init_fn``) is re-raised
  in the parent, as the same exception type when it can be rebuilt from a message
  (else :class:`DataLoaderWorkerError`), with the text "Caught <Type> in DataLoader
  worker process <w>" and the worker's traceback; a worker that dies (killed, segfault)
  raises :class:`DataLoaderWorkerError` naming it and its exit code; ``timeout > 0``
  raises :class:`DataLoaderTimeoutError` when no batch arrives in that many seconds;
- shutdown: when the epoch ends, the loop is left early (the iterator is closed or
  garbage collected) or an error is raised, the workers are told to stop, joined,
  and terminated if they do not exit within 5 seconds; with ``persistent_workers``
  they live until the loader is deleted (or ``loader.shutdown_workers()``). Workers
  also exit on their own when the parent process disappears;
- ``pin_memory`` / ``pin_memory_device`` are accepted and do nothing: minigen has no
  page-locked host buffers (a CPU batch is already where a NumPy op reads it; a
  ``device='cuda'`` loader copies each batch with CuPy);
- the start method is ``multiprocessing_context`` (a name or a context), by default
  ``'fork'`` where the platform has it (the dataset is not pickled), else the
  platform default (then the dataset, ``collate_fn`` and ``worker_init_fn`` must be
  picklable). Batches travel as NumPy arrays, re-wrapped as Tensors in the parent.

Resuming (``state_dict`` / ``load_state_dict``) works the same with workers: the
order is exact; with workers the state also holds the epoch's ``worker_base_seed``,
so a resumed epoch reseeds its workers identically (their random streams restart
from that seed at the resumed batch).
"""
from __future__ import annotations

import collections.abc
import itertools
import multiprocessing
import numbers
import os
import pickle
import queue
import random as _pyrandom
import sys
import time
import traceback

import numpy as np

from .. import backend
from ..argcheck import check_flag, check_generator
from ..errors import DTypeError, InvalidArgumentError, MinigenError, ShapeError
from ..random import _gen
from ..tensor import Tensor
from .dataset import IterableDataset

__all__ = ["DataLoader", "default_collate", "default_convert", "Sampler", "SequentialSampler", "RandomSampler",
           "BatchSampler", "SubsetRandomSampler", "WeightedRandomSampler", "get_worker_info", "WorkerInfo",
           "DataLoaderWorkerError", "DataLoaderTimeoutError"]


class DataLoaderWorkerError(MinigenError, RuntimeError):
    """A DataLoader worker process failed: it raised an exception that cannot be rebuilt in the parent,
    or it died (the message names the worker and its exit code)."""


class DataLoaderTimeoutError(MinigenError, RuntimeError):
    """No batch arrived from the DataLoader workers within ``timeout`` seconds."""


# ----------------------------------------------------------------------------- collate
def _stack(arrays, what):
    shapes = {tuple(a.shape) for a in arrays}
    if len(shapes) != 1:
        raise ShapeError(f"default_collate: cannot stack {what} of different shapes {sorted(shapes)} into a batch; "
                         "pad them or pass a collate_fn")
    xp = backend.get_array_module(arrays[0])
    return xp.stack(arrays)


def _scalars(batch, dtype):
    """Number samples as one (B,) Tensor of ``dtype``; samples of other types are a DTypeError."""
    if any(not isinstance(b, (numbers.Number, np.generic)) or isinstance(b, complex) for b in batch):
        raise DTypeError(f"default_collate: the samples mix numbers with {sorted({type(b).__name__ for b in batch})}; "
                         "pass a collate_fn")
    try:
        return Tensor._make(np.array(batch, dtype=dtype))
    except (TypeError, ValueError, OverflowError) as e:
        raise DTypeError(f"default_collate: cannot batch the numbers as {np.dtype(dtype)} ({e})") from None


def default_collate(batch):
    """Merge a list of samples into a batch.

    - Tensors / NumPy arrays of equal shape -> one Tensor with a new first dim;
    - Python ints -> int64, floats -> float64, bools -> bool Tensors of shape (B,);
      NumPy scalars keep their dtype;
    - strings (and None) -> a plain list;
    - dicts -> a dict of collated values; tuples/lists/namedtuples -> the same
      container of collated fields (samples must have equal lengths).
    """
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise InvalidArgumentError("default_collate expects a non-empty list of samples")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor._make(_stack([b.array if isinstance(b, Tensor) else np.asarray(b) for b in batch], "tensors"))
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "USO":
            return list(batch)
        return Tensor._make(_stack([np.asarray(b) for b in batch], "arrays"))
    if isinstance(elem, np.generic):
        return _scalars(batch, elem.dtype)
    if isinstance(elem, bool):
        return _scalars(batch, np.bool_)
    if isinstance(elem, numbers.Integral):
        return _scalars(batch, np.int64)
    if isinstance(elem, numbers.Real):
        return _scalars(batch, np.float64)
    if isinstance(elem, (str, bytes)) or elem is None:
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        if any(not isinstance(d, collections.abc.Mapping) or any(k not in d for k in elem) for d in batch):
            raise InvalidArgumentError(f"default_collate: the samples are not all dicts with the keys {sorted(elem)!r}"[:300])
        return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(f)) for f in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(not isinstance(b, collections.abc.Sequence) or isinstance(b, (str, bytes)) for b in batch):
            raise InvalidArgumentError("default_collate: the samples mix sequences with other types; pass a collate_fn")
        n = len(elem)
        if any(len(b) != n for b in batch):
            raise ShapeError(f"default_collate: samples have different lengths {sorted({len(b) for b in batch})}")
        fields = [default_collate(list(f)) for f in zip(*batch)]
        return tuple(fields) if isinstance(elem, tuple) else fields
    raise InvalidArgumentError(f"default_collate: don't know how to batch samples of type {type(elem).__name__}; "
                               "pass a collate_fn")


def default_convert(data):
    """What an unbatched loader (``batch_size=None``, no ``collate_fn``) does to each sample, as PyTorch:
    NumPy arrays (of numbers) and NumPy scalars become Tensors; dicts, namedtuples, tuples and lists are
    converted field by field; everything else (Python numbers, strings, Tensors) is left as it is."""
    if isinstance(data, np.ndarray):
        return list(data) if data.dtype.kind in "USO" else Tensor._make(data)
    if isinstance(data, np.generic):
        return Tensor._make(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(v) for v in data))
    if isinstance(data, (list, tuple)):
        return type(data)(default_convert(v) for v in data)
    return data


def _to_device(obj, device):
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_to_device(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


# ----------------------------------------------------------------------------- samplers
class Sampler:
    """Yields dataset indices; ``len(sampler)`` is how many."""

    def __iter__(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self):  # pragma: no cover - abstract
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A new random permutation of the indices each epoch (or ``num_samples`` draws with replacement).

    Each ``iter()`` draws one seed from ``generator``; ``last_seed`` is the seed of
    the latest epoch, and ``iter_with_seed(seed)`` replays an epoch exactly.
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = check_flag(replacement, "RandomSampler", "replacement")
        self._num_samples = num_samples
        self.generator = check_generator(generator, "RandomSampler")
        self.last_seed = None
        if num_samples is not None and (not isinstance(num_samples, numbers.Integral) or num_samples <= 0):
            raise InvalidArgumentError(f"RandomSampler: num_samples must be a positive int, got {num_samples!r}")
        if num_samples is not None and not replacement:
            raise InvalidArgumentError("RandomSampler: num_samples is only meaningful with replacement=True")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def draw_seed(self) -> int:
        return int(_gen(self.generator).numpy.integers(0, 2**63 - 1))

    def iter_with_seed(self, seed: int):
        self.last_seed = int(seed)
        rng = np.random.Generator(np.random.PCG64(self.last_seed))
        n = len(self.data_source)
        if self.replacement:
            idx = rng.integers(0, n, size=self.num_samples)
        else:
            idx = rng.permutation(n)
        return iter(idx.tolist())

    def __iter__(self):
        return self.iter_with_seed(self.draw_seed())

    def __len__(self):
        return self.num_samples


def _index_array(indices, op):
    """``indices`` (a sequence of ints, an int array or Tensor) as a flat int64 array; InvalidArgumentError else."""
    if isinstance(indices, Tensor):
        indices = backend.to_numpy(indices.array)
    try:
        a = np.asarray(indices)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"{op}: indices must be a sequence of ints, got {type(indices).__name__} "
                                   f"({e})") from None
    if a.size and a.dtype.kind not in "iu":
        raise InvalidArgumentError(f"{op}: indices must be ints, got dtype {a.dtype}")
    return a.astype(np.int64).reshape(-1)


class SubsetRandomSampler(Sampler):
    """The given indices, in a random order each epoch."""

    def __init__(self, indices, generator=None):
        self.indices = _index_array(indices, "SubsetRandomSampler")
        self.generator = check_generator(generator, "SubsetRandomSampler")

    def __iter__(self):
        perm = _gen(self.generator).numpy.permutation(len(self.indices))
        return iter(self.indices[perm].tolist())

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn from ``[0, len(weights))`` with probability ``weights[i] / sum(weights)``
    (with replacement by default; without it, each index at most once). A new draw each epoch."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, numbers.Integral) or isinstance(num_samples, bool) or num_samples <= 0:
            raise InvalidArgumentError(f"WeightedRandomSampler: num_samples must be a positive int, "
                                       f"got {num_samples!r}")
        try:
            w = np.asarray(backend.to_numpy(weights.array) if isinstance(weights, Tensor) else weights,
                           dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"WeightedRandomSampler: weights must be a sequence of numbers, "
                                       f"got {weights!r}") from None
        if w.ndim != 1 or w.size == 0:
            raise ShapeError(f"WeightedRandomSampler: weights must be a non-empty 1-d sequence, got shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise InvalidArgumentError("WeightedRandomSampler: weights must be finite, non-negative, "
                                       "with a positive sum")
        if not replacement and num_samples > np.count_nonzero(w):
            raise InvalidArgumentError(f"WeightedRandomSampler: cannot draw {num_samples} samples without "
                                       f"replacement from {np.count_nonzero(w)} non-zero weights")
        self.weights = w
        self.num_samples = int(num_samples)
        self.replacement = bool(replacement)
        self.generator = generator

    def __iter__(self):
        rng = _gen(self.generator).numpy
        idx = rng.choice(len(self.weights), size=self.num_samples, replace=self.replacement,
                         p=self.weights / self.weights.sum())
        return iter(idx.tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Groups a sampler's indices into lists of ``batch_size`` (last one shorter unless ``drop_last``)."""

    def __init__(self, sampler, batch_size, drop_last=False):
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size <= 0:
            raise InvalidArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)

    def _batches(self, it):
        batch = []
        for i in it:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __iter__(self):
        return self._batches(iter(self.sampler))

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)



# ----------------------------------------------------------------------------- worker processes
_POLL_S = 0.2        # how often a waiting parent checks that its workers are alive / a worker its parent
_JOIN_TIMEOUT_S = 5.0


class WorkerInfo:
    """What :func:`get_worker_info` returns inside a worker: ``id``, ``num_workers``, ``seed``, ``dataset``
    (read-only, as in PyTorch)."""

    __initialized = False

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.__keys = tuple(kwargs)
        self.__initialized = True

    def __setattr__(self, key, val):
        if self.__initialized:
            raise InvalidArgumentError(f"cannot assign attributes to {type(self).__name__} objects")
        return super().__setattr__(key, val)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__keys)})"


_worker_info = None


def get_worker_info():
    """Inside a DataLoader worker process: its :class:`WorkerInfo` (``id``, ``num_workers``, ``seed``,
    ``dataset``); in the main process: ``None``."""
    return _worker_info


class _Arr:
    """A Tensor in transit between processes: its NumPy array (Tensors themselves are never pickled)."""

    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a

    def __getstate__(self):
        return self.a

    def __setstate__(self, a):
        self.a = a


def _pack(obj):
    if isinstance(obj, Tensor):
        return _Arr(backend.to_numpy(obj.detach().array))
    if isinstance(obj, dict):
        return {k: _pack(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_pack(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_pack(v) for v in obj)
    return obj


def _unpack(obj):
    if isinstance(obj, _Arr):
        return Tensor._make(obj.a)
    if isinstance(obj, dict):
        return {k: _unpack(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_unpack(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unpack(v) for v in obj)
    return obj


class _WorkerFailure:
    """An exception caught in a worker, carried to the parent as text (+ its type when picklable)."""

    def __init__(self, worker_id, where):
        exc = sys.exc_info()[1]
        self.worker_id = worker_id
        self.where = where
        self.type_name = type(exc).__name__
        self.text = traceback.format_exc()
        try:
            pickle.loads(pickle.dumps(type(exc)))
            self.exc_type = type(exc)
        except Exception:  # a type the parent cannot import: fall back to DataLoaderWorkerError
            self.exc_type = None

    def reraise(self):
        msg = (f"Caught {self.type_name} in DataLoader worker process {self.worker_id}{self.where}.\n"
               f"Original {self.text}")
        err = None
        if self.exc_type is not None:
            try:
                err = self.exc_type(msg)
            except Exception:
                err = None
        if not isinstance(err, BaseException):
            err = DataLoaderWorkerError(msg)
        raise err


def _numpy_seed(base_seed, worker_id):
    return int(np.random.SeedSequence([worker_id, base_seed & 0xFFFFFFFF, base_seed >> 32]).generate_state(1)[0])


class _StreamEnd:
    """A worker's answer once its copy of an iterable-style dataset is exhausted."""

    def __init__(self, worker_id):
        self.worker_id = worker_id


def _next_from_stream(stream, collate_fn, batch_size, drop_last):
    """The next batch of an iterable-style dataset's iterator (``batch_size`` None: the next sample), or
    ``_StreamEnd`` when it is exhausted (or, with ``drop_last``, only a short batch is left)."""
    if batch_size is None:
        try:
            sample = next(stream)
        except StopIteration:
            return _StreamEnd(None)
        return (collate_fn or default_convert)(sample)
    batch = list(itertools.islice(stream, batch_size))
    if not batch or (drop_last and len(batch) < batch_size):
        return _StreamEnd(None)
    return (collate_fn or default_collate)(batch)


def _fetch(dataset, item, collate_fn, auto_collation, use_fetch):
    if not auto_collation:
        return (collate_fn or default_convert)(dataset[item])
    if use_fetch:
        return dataset.fetch_batch(item)
    return (collate_fn or default_collate)([dataset[i] for i in item])


def _worker_loop(dataset, index_queue, result_queue, done_event, collate_fn, auto_collation, use_fetch,
                 base_seed, worker_init_fn, worker_id, num_workers, parent_pid, stream_args=None):
    """The body of worker process ``worker_id``: seed, init, then load the batches it is sent until told to stop
    (``None``), until ``done_event`` is set, or until the parent process is gone."""
    global _worker_info
    import signal

    from .. import random as mg_random

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it then stops us
    seed = base_seed + worker_id
    _pyrandom.seed(seed)
    mg_random.manual_seed(seed)
    np.random.seed(_numpy_seed(base_seed, worker_id))
    _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
    init_failure = None
    stream, stream_epoch = None, None  # iterable-style datasets: this worker's iterator and its epoch
    if worker_init_fn is not None:
        try:
            worker_init_fn(worker_id)
        except Exception:
            init_failure = _WorkerFailure(worker_id, " (in worker_init_fn)")
    try:
        while True:
            try:
                task = index_queue.get(timeout=_POLL_S)
            except queue.Empty:
                if done_event.is_set() or os.getppid() != parent_pid:
                    break
                continue
            if task is None:
                break
            if done_event.is_set():
                continue
            epoch, k, item = task
            if init_failure is not None:
                out, init_failure = init_failure, None
            else:
                try:
                    if stream_args is not None:
                        if stream_epoch != epoch:
                            stream, stream_epoch = iter(dataset), epoch
                        data = _next_from_stream(stream, collate_fn, *stream_args)
                    else:
                        data = _fetch(dataset, item, collate_fn, auto_collation, use_fetch)
                    if isinstance(data, _StreamEnd):
                        out = _StreamEnd(worker_id)
                    else:
                        out = pickle.dumps(_pack(data), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:
                    out = _WorkerFailure(worker_id, "")
            result_queue.put((epoch, k, out))
    except KeyboardInterrupt:  # pragma: no cover
        pass
    if done_event.is_set():
        result_queue.cancel_join_thread()  # nobody reads what is left: do not block our exit on it


def _mp_context(ctx):
    if ctx is None:
        methods = multiprocessing.get_all_start_methods()
        return multiprocessing.get_context("fork" if "fork" in methods else None)
    if isinstance(ctx, str):
        if ctx not in multiprocessing.get_all_start_methods():
            raise InvalidArgumentError(f"DataLoader: multiprocessing_context {ctx!r} is not available here; "
                                       f"choose one of {multiprocessing.get_all_start_methods()}")
        return multiprocessing.get_context(ctx)
    if not hasattr(ctx, "Process"):
        raise InvalidArgumentError(f"DataLoader: multiprocessing_context must be a start-method name or a "
                                   f"multiprocessing context, got {type(ctx).__name__}")
    return ctx


class _WorkerPool:
    """The worker processes of one loader (one epoch, or every epoch with ``persistent_workers``)."""

    def __init__(self, loader, base_seed):
        ctx = _mp_context(loader.multiprocessing_context)
        self.loader = loader
        self.base_seed = int(base_seed)
        self.n = loader.num_workers
        self.result_queue = ctx.Queue()
        self.done_event = ctx.Event()
        self.index_queues, self.workers = [], []
        self.closed = False
        self.epoch = 0
        auto = loader.batch_sampler is not None
        stream_args = (loader.batch_size, loader.drop_last) if loader._iterable else None
        try:
            for w in range(self.n):
                q = ctx.Queue()
                q.cancel_join_thread()
                p = ctx.Process(target=_worker_loop, name=f"minigen-DataLoader-worker-{w}",
                                args=(loader.dataset, q, self.result_queue, self.done_event, loader.collate_fn,
                                      auto, loader._use_fetch, self.base_seed, loader.worker_init_fn, w, self.n,
                                      os.getpid(), stream_args))
                p.daemon = True
                p.start()
                self.index_queues.append(q)
                self.workers.append(p)
        except BaseException:
            self.shutdown()
            raise

    @property
    def pids(self):
        return [p.pid for p in self.workers]

    def run_epoch(self, index_iter):
        """Yield the batches of ``index_iter`` loaded by the workers (in order unless ``in_order=False``)."""
        if self.closed:
            raise DataLoaderWorkerError("DataLoader workers were shut down")
        self.epoch += 1
        epoch, loader = self.epoch, self.loader
        cycle = itertools.cycle(range(self.n))
        active = set(range(self.n))  # iterable-style datasets: workers whose stream has not ended
        sent = received = 0
        pending = {}  # batch number -> payload that arrived early
        if index_iter is None:  # iterable-style: every task means "your next batch"
            index_iter = itertools.repeat(None)

        def send():
            nonlocal sent
            if not active:
                return False
            try:
                item = next(index_iter)
            except StopIteration:
                return False
            w = next(cycle)
            while w not in active:
                w = next(cycle)
            self.index_queues[w].put((epoch, sent, item))
            sent += 1
            return True

        for _ in range(loader.prefetch_factor * self.n):
            if not send():
                break
        while received < sent:
            if loader.in_order and received in pending:
                out = pending.pop(received)
            else:
                ep, k, out = self._get()
                if ep != epoch:
                    continue  # left over from an epoch that was abandoned (persistent workers)
                if loader.in_order and k != received:
                    pending[k] = out
                    continue
            received += 1
            if isinstance(out, _StreamEnd):
                active.discard(out.worker_id)
                send()  # keep the other streams' pipeline full
                continue
            send()
            if isinstance(out, _WorkerFailure):
                self.shutdown()
                out.reraise()
            yield _unpack(pickle.loads(out))

    def _get(self):
        timeout = self.loader.timeout
        deadline = None if timeout <= 0 else time.monotonic() + timeout
        while True:
            wait = _POLL_S if deadline is None else max(0.0, min(_POLL_S, deadline - time.monotonic()))
            try:
                return self.result_queue.get(timeout=wait)
            except queue.Empty:
                pass
            dead = [(w, p.pid, p.exitcode) for w, p in enumerate(self.workers) if not p.is_alive()]
            if dead:
                self.shutdown()
                what = ", ".join(f"worker {w} (pid {pid}) exit code {code}" for w, pid, code in dead)
                raise DataLoaderWorkerError(f"DataLoader worker process(es) exited unexpectedly: {what}")
            if deadline is not None and time.monotonic() >= deadline:
                self.shutdown()
                raise DataLoaderTimeoutError(f"DataLoader timed out after {timeout} seconds waiting for a batch "
                                             f"from its {self.n} worker(s)")

    def shutdown(self):
        """Stop every worker: signal, join (5 s), terminate the stragglers, close the queues. Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self.done_event.set()
            for q in self.index_queues:
                try:
                    q.put(None)
                except Exception:  # pragma: no cover
                    pass
            for p in self.workers:
                p.join(timeout=_JOIN_TIMEOUT_S)
            for p in self.workers:
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=1.0)
            for q in self.index_queues:
                q.close()
            self.result_queue.cancel_join_thread()
            self.result_queue.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __del__(self):
        self.shutdown()


# ----------------------------------------------------------------------------- loader
class DataLoader:
    """Iterate over ``dataset`` in batches of minigen Tensors.

    Arguments (PyTorch's names and defaults): ``batch_size`` (None: no batching, yield
    samples), ``shuffle`` (a new permutation each epoch, drawn from ``generator`` or the
    default generator), ``sampler`` / ``batch_sampler`` (custom index order),
    ``num_workers`` (0: load in this process; N: N worker processes, see the module
    docstring), ``collate_fn`` (default :func:`default_collate`; :func:`default_convert` without
    batching), ``pin_memory``
    (accepted, a no-op: see the module docstring), ``drop_last`` (drop the last
    incomplete batch), ``timeout`` (seconds to wait for a worker's batch, 0 = forever),
    ``worker_init_fn``, ``multiprocessing_context``, ``generator``, ``prefetch_factor``
    (batches in flight per worker, default 2; only with workers), ``persistent_workers``
    (keep the workers across epochs), ``pin_memory_device``, ``in_order`` (False: hand
    out batches as workers finish them). minigen adds ``device`` (move each batch
    there, e.g. ``'cuda'``).

    With the default collate, datasets that define ``fetch_batch(indices)``
    (TensorDataset, the MNIST datasets, Subsets of them) are gathered in one call.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True, device=None):
        shuffle = bool(shuffle) if shuffle is not None else False
        if not isinstance(dataset, IterableDataset) and not hasattr(dataset, "__getitem__"):
            raise InvalidArgumentError(f"DataLoader: dataset must be a Dataset (with __getitem__ and __len__) or "
                                       f"an IterableDataset, got {type(dataset).__name__}")
        if (not isinstance(dataset, IterableDataset) and sampler is None and batch_sampler is None
                and not hasattr(dataset, "__len__")):
            raise InvalidArgumentError(f"DataLoader: a map-style dataset without __len__ ({type(dataset).__name__}) "
                                       "needs a sampler or batch_sampler")
        self.dataset = dataset
        self.generator = generator
        self.device = None if device is None else backend.as_device(device)
        if not isinstance(num_workers, numbers.Integral) or isinstance(num_workers, bool) or num_workers < 0:
            raise InvalidArgumentError(f"DataLoader: num_workers must be a non-negative int, got {num_workers!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise InvalidArgumentError("DataLoader: prefetch_factor can only be given with num_workers > 0 "
                                       "(it is the number of batches each worker loads ahead)")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and (not isinstance(prefetch_factor, numbers.Integral)
                                            or isinstance(prefetch_factor, bool) or prefetch_factor < 1):
            raise InvalidArgumentError(f"DataLoader: prefetch_factor must be a positive int, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise InvalidArgumentError("DataLoader: persistent_workers needs num_workers > 0")
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"DataLoader: timeout must be a number of seconds, got {timeout!r}") from None
        if timeout < 0:
            raise InvalidArgumentError(f"DataLoader: timeout must be non-negative, got {timeout}")
        if worker_init_fn is not None and not callable(worker_init_fn):
            raise InvalidArgumentError("DataLoader: worker_init_fn must be callable")
        if num_workers > 0:
            _mp_context(multiprocessing_context)  # check it now, not at the first iter()
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle:
                raise InvalidArgumentError("DataLoader with an IterableDataset: shuffle must be False (a stream "
                                           "has no index order to permute; shuffle inside the dataset)")
            if sampler is not None or batch_sampler is not None:
                raise InvalidArgumentError("DataLoader with an IterableDataset: sampler and batch_sampler must be "
                                           "None (batches are consecutive samples of the stream)")
            if batch_size is None and drop_last:
                raise InvalidArgumentError("DataLoader: drop_last needs a batch_size")
            self._init_iterable(dataset, batch_size, drop_last, collate_fn)
        elif batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise InvalidArgumentError(
                    "DataLoader: batch_sampler is mutually exclusive with batch_size, shuffle, sampler and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise InvalidArgumentError("DataLoader: drop_last needs a batch_size")
        if not self._iterable:
            if sampler is not None and shuffle:
                raise InvalidArgumentError("DataLoader: sampler is mutually exclusive with shuffle")
            if sampler is None:
                sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
            if batch_sampler is None and batch_size is not None:
                batch_sampler = BatchSampler(sampler, batch_size, drop_last)
            self.sampler = sampler
            self.batch_sampler = batch_sampler
            self.batch_size = batch_size
            self.drop_last = bool(drop_last)
            self.collate_fn = collate_fn
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)  # accepted; a no-op in minigen (see the module docstring)
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = bool(persistent_workers)
        self.in_order = bool(in_order)
        self._use_fetch = (collate_fn is None and self.batch_sampler is not None and hasattr(dataset, "fetch_batch"))
        # progress of the latest epoch, for state_dict(): its sampler seed and batches handed out
        self._epoch_seed = None
        self._worker_seed = None
        self._batches_done = 0
        self._epoch_active = False
        self._resume = None
        self._pool = None

    def _init_iterable(self, dataset, batch_size, drop_last, collate_fn):
        if batch_size is not None and (not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool)
                                       or batch_size <= 0):
            raise InvalidArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
        self.sampler = None
        self.batch_sampler = None
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn

    def __len__(self):
        if self._iterable:  # the dataset's own length (TypeError if it has none), in batches
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    # ---- resumable state
    def state_dict(self) -> dict:
        """Where the current epoch stands: ``{'epoch_seed', 'batches_done'}`` (a finished epoch: 0 batches);
        with workers also ``'worker_base_seed'``."""
        if not self._epoch_active:
            st = {"epoch_seed": None, "batches_done": 0}
        else:
            st = {"epoch_seed": self._epoch_seed, "batches_done": int(self._batches_done)}
        if self.num_workers > 0:
            st["worker_base_seed"] = self._worker_seed if self._epoch_active else None
        return st

    def load_state_dict(self, state: dict) -> None:
        """Make the next ``iter()`` continue the saved epoch: same order, skipping the batches already done."""
        if not isinstance(state, dict):
            raise InvalidArgumentError(f"DataLoader.load_state_dict expects the dict state_dict() returned, got "
                                       f"{type(state).__name__}")
        for key in ("batches_done", "epoch_seed", "worker_base_seed"):
            v = state.get(key)
            if v is not None and (not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0):
                raise InvalidArgumentError(f"DataLoader.load_state_dict: {key!r} must be a non-negative int or None, "
                                           f"got {v!r}")
        done = int(state.get("batches_done") or 0)
        self._check_state_fits(state, done)
        if done == 0 and state.get("epoch_seed") is None:
            self._resume = None
        else:
            self._resume = (state.get("epoch_seed"), done, state.get("worker_base_seed"))

    def _check_state_fits(self, state, done):
        """Refuse a state this loader cannot continue (another loader's): a shuffled epoch's seed for a loader
        that does not shuffle (or no seed for one that does, mid-epoch), or more batches done than an epoch
        of this loader has. Either would silently yield a different epoch, or nothing."""
        shuffles = isinstance(self.sampler, RandomSampler)
        seed = state.get("epoch_seed")
        if seed is not None and not shuffles:
            raise InvalidArgumentError("DataLoader.load_state_dict: the state holds a shuffled epoch's seed but "
                                       "this loader does not shuffle (a state from another loader?)")
        if seed is None and done > 0 and shuffles:
            raise InvalidArgumentError(f"DataLoader.load_state_dict: the state is {done} batches into an epoch "
                                       "without a shuffle seed, but this loader shuffles (a state from another "
                                       "loader?)")
        if done > 0:
            try:
                n = len(self)
            except TypeError:  # a stream without a length: nothing to compare with
                return
            if done > n:
                raise InvalidArgumentError(f"DataLoader.load_state_dict: the state has {done} batches done but an "
                                           f"epoch of this loader has {n} (a state from another loader?)")

    def _index_iter(self, seed):
        it_src = self.sampler
        if isinstance(it_src, RandomSampler):
            if seed is None:
                seed = it_src.draw_seed()
            self._epoch_seed = seed
            idx_iter = it_src.iter_with_seed(seed)
        else:
            self._epoch_seed = None
            idx_iter = iter(it_src)
        if self.batch_sampler is None:
            return idx_iter
        if isinstance(self.batch_sampler, BatchSampler) and self.batch_sampler.sampler is self.sampler:
            return self.batch_sampler._batches(idx_iter)
        return iter(self.batch_sampler)

    def __iter__(self):
        seed, skip, wseed = self._resume if self._resume is not None else (None, 0, None)
        self._resume = None
        if self._iterable:
            return self._iter_stream(skip, wseed)
        it = self._index_iter(seed)
        if self.num_workers > 0:
            if wseed is None:  # a resumed epoch brings its own; persistent workers keep theirs
                if self.persistent_workers and self._pool is not None and not self._pool.closed:
                    wseed = self._pool.base_seed
                else:
                    wseed = int(_gen(self.generator).numpy.integers(0, 2**63 - 1))
            self._worker_seed = int(wseed)
        self._batches_done = 0
        self._epoch_active = True
        for _ in range(skip):  # resume: skip the batches already trained on, without loading them
            try:
                next(it)
            except StopIteration:
                break
            self._batches_done += 1
        if self.num_workers > 0:
            return self._generate_workers(it)
        return self._generate(it)

    def _generate(self, it):
        ds, collate = self.dataset, self.collate_fn
        for item in it:
            if self.batch_sampler is None:
                batch = (collate or default_convert)(ds[item])
            elif self._use_fetch:
                batch = ds.fetch_batch(item)
            else:
                batch = (collate or default_collate)([ds[i] for i in item])
            if self.device is not None:
                batch = _to_device(batch, self.device)
            self._batches_done += 1
            yield batch
        self._epoch_active = False

    def _iter_stream(self, skip, wseed):
        """An epoch over an iterable-style dataset; a resumed epoch re-reads and drops the first ``skip``
        batches (a stream cannot seek)."""
        self._epoch_seed = None
        if self.num_workers > 0:
            if wseed is None:  # a resumed epoch brings its own; persistent workers keep theirs
                if self.persistent_workers and self._pool is not None and not self._pool.closed:
                    wseed = self._pool.base_seed
                else:
                    wseed = int(_gen(self.generator).numpy.integers(0, 2**63 - 1))
            self._worker_seed = int(wseed)
        self._batches_done = 0
        self._epoch_active = True
        gen = self._generate_workers(None) if self.num_workers > 0 else self._generate_stream()
        return self._drop_first(gen, skip) if skip else gen

    def _drop_first(self, gen, skip):
        for _ in range(skip):
            try:
                next(gen)
            except StopIteration:
                return
        yield from gen

    def _generate_stream(self):
        stream = iter(self.dataset)
        while True:
            batch = _next_from_stream(stream, self.collate_fn, self.batch_size, self.drop_last)
            if isinstance(batch, _StreamEnd):
                break
            if self.device is not None:
                batch = _to_device(batch, self.device)
            self._batches_done += 1
            yield batch
        self._epoch_active = False

    def _generate_workers(self, it):
        if self._pool is not None and (self._pool.closed or not self.persistent_workers
                                       or self._pool.base_seed != self._worker_seed):
            self._pool.shutdown()
            self._pool = None
        if self._pool is None:
            self._pool = _WorkerPool(self, self._worker_seed)
        pool = self._pool
        try:
            for batch in pool.run_epoch(it):
                if self.device is not None:
                    batch = _to_device(batch, self.device)
                self._batches_done += 1
                yield batch
            self._epoch_active = False
        finally:
            if not self.persistent_workers:
                pool.shutdown()
                if self._pool is pool:
                    self._pool = None

    def shutdown_workers(self) -> None:
        """Stop this loader's worker processes now (persistent workers otherwise live as long as the loader)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __del__(self):
        pool = self.__dict__.get("_pool")
        if pool is not None:
            pool.shutdown()

    def __getstate__(self):
        st = dict(self.__dict__)
        st["_pool"] = None
        return st
