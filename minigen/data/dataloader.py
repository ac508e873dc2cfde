"""``DataLoader``: batches from a dataset, in order or shuffled, as minigen Tensors.

One epoch = one pass of ``for batch in loader``. The pieces (PyTorch's design):

- a *sampler* yields dataset indices: :class:`SequentialSampler` (0, 1, 2, ...) or
  :class:`RandomSampler` (a fresh random permutation each epoch);
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
"""
from __future__ import annotations

import collections.abc
import numbers

import numpy as np

from .. import backend
from ..errors import InvalidArgumentError, ShapeError
from ..random import _gen
from ..tensor import Tensor

__all__ = ["DataLoader", "default_collate", "Sampler", "SequentialSampler", "RandomSampler", "BatchSampler",
           "SubsetRandomSampler"]


# ----------------------------------------------------------------------------- collate
def _stack(arrays, what):
    shapes = {tuple(a.shape) for a in arrays}
    if len(shapes) != 1:
        raise ShapeError(f"default_collate: cannot stack {what} of different shapes {sorted(shapes)} into a batch; "
                         "pad them or pass a collate_fn")
    xp = backend.get_array_module(arrays[0])
    return xp.stack(arrays)


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
        return Tensor._make(_stack([b.data if isinstance(b, Tensor) else np.asarray(b) for b in batch], "tensors"))
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "USO":
            return list(batch)
        return Tensor._make(_stack([np.asarray(b) for b in batch], "arrays"))
    if isinstance(elem, np.generic):
        return Tensor._make(np.array(batch, dtype=elem.dtype))
    if isinstance(elem, bool):
        return Tensor._make(np.array(batch, dtype=np.bool_))
    if isinstance(elem, numbers.Integral):
        return Tensor._make(np.array(batch, dtype=np.int64))
    if isinstance(elem, numbers.Real):
        return Tensor._make(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)) or elem is None:
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(f)) for f in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        n = len(elem)
        if any(len(b) != n for b in batch):
            raise ShapeError(f"default_collate: samples have different lengths {sorted({len(b) for b in batch})}")
        fields = [default_collate(list(f)) for f in zip(*batch)]
        return tuple(fields) if isinstance(elem, tuple) else fields
    raise InvalidArgumentError(f"default_collate: don't know how to batch samples of type {type(elem).__name__}; "
                               "pass a collate_fn")


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
        self.replacement = bool(replacement)
        self._num_samples = num_samples
        self.generator = generator
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


class SubsetRandomSampler(Sampler):
    """The given indices, in a random order each epoch."""

    def __init__(self, indices, generator=None):
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.generator = generator

    def __iter__(self):
        perm = _gen(self.generator).numpy.permutation(len(self.indices))
        return iter(self.indices[perm].tolist())

    def __len__(self):
        return len(self.indices)


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


# ----------------------------------------------------------------------------- loader
class DataLoader:
    """Iterate over ``dataset`` in batches of minigen Tensors.

    Arguments (PyTorch's names): ``batch_size`` (None: no batching, yield samples),
    ``shuffle`` (a new permutation each epoch, drawn from ``generator`` or the
    default generator), ``sampler`` / ``batch_sampler`` (custom index order),
    ``drop_last`` (drop the last incomplete batch), ``collate_fn`` (default
    :func:`default_collate`), ``device`` (move each batch there, e.g. ``'cuda'``).

    With the default collate, datasets that define ``fetch_batch(indices)``
    (TensorDataset, the MNIST datasets, Subsets of them) are gathered in one call.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None, generator=None,
                 drop_last=False, collate_fn=None, device=None):
        self.dataset = dataset
        self.generator = generator
        self.device = None if device is None else backend.as_device(device)
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise InvalidArgumentError(
                    "DataLoader: batch_sampler is mutually exclusive with batch_size, shuffle, sampler and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise InvalidArgumentError("DataLoader: drop_last needs a batch_size")
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
        self._use_fetch = collate_fn is None and batch_sampler is not None and hasattr(dataset, "fetch_batch")
        # progress of the latest epoch, for state_dict(): its sampler seed and batches handed out
        self._epoch_seed = None
        self._batches_done = 0
        self._epoch_active = False
        self._resume = None

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    # ---- resumable state
    def state_dict(self) -> dict:
        """Where the current epoch stands: ``{'epoch_seed', 'batches_done'}`` (a finished epoch: 0 batches)."""
        if not self._epoch_active:
            return {"epoch_seed": None, "batches_done": 0}
        return {"epoch_seed": self._epoch_seed, "batches_done": int(self._batches_done)}

    def load_state_dict(self, state: dict) -> None:
        """Make the next ``iter()`` continue the saved epoch: same order, skipping the batches already done."""
        done = int(state.get("batches_done", 0))
        self._resume = None if done == 0 and state.get("epoch_seed") is None else (state.get("epoch_seed"), done)

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
        seed, skip = self._resume if self._resume is not None else (None, 0)
        self._resume = None
        it = self._index_iter(seed)
        self._batches_done = 0
        self._epoch_active = True
        for _ in range(skip):  # resume: skip the batches already trained on, without loading them
            try:
                next(it)
            except StopIteration:
                break
            self._batches_done += 1
        return self._generate(it)

    def _generate(self, it):
        ds, collate = self.dataset, self.collate_fn
        for item in it:
            if self.batch_sampler is None:
                batch = ds[item]
                if collate is not None:
                    batch = collate(batch)
            elif self._use_fetch:
                batch = ds.fetch_batch(item)
            else:
                batch = (collate or default_collate)([ds[i] for i in item])
            if self.device is not None:
                batch = _to_device(batch, self.device)
            self._batches_done += 1
            yield batch
        self._epoch_active = False
