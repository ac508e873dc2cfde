"""``DistributedSampler``: each of ``num_replicas`` processes iterates its own shard of the dataset.

Per epoch e, all ranks draw the same permutation of range(n) from a NumPy PCG64 stream seeded with
``seed + e`` (the shared seed; without ``shuffle``, the identity). Then

- ``drop_last=False`` (default): the list is padded with its own first elements up to
  total = ceil(n / R) * R (repeating them as often as needed), so every rank gets the same count total / R;
- ``drop_last=True``: it is cut to total = floor(n / R) * R, dropping the tail;

and rank r takes positions r, r + R, r + 2R, ... of it. Over the R ranks the shards are disjoint (up to the
padding) and cover the dataset; every rank sees the same number of samples, so the same number of batches, so
no rank waits forever in a gradient all-reduce the others never start. Call ``set_epoch(e)`` before each
epoch, or every epoch repeats the same order (PyTorch's semantics).
"""
from __future__ import annotations

import numbers

import numpy as np

from ..errors import InvalidArgumentError
from .dataloader import Sampler

__all__ = ["DistributedSampler"]


def _int(v, what, lo):
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < lo:
        raise InvalidArgumentError(f"DistributedSampler: {what} must be an int >= {lo}, got {v!r}")
    return int(v)


class DistributedSampler(Sampler):
    """PyTorch's ``DistributedSampler(dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
    drop_last=False)``. ``num_replicas``/``rank`` default to the world size and rank of the initialised
    process group (1 and 0 when there is none)."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist

            ini = dist.is_initialized()
            if num_replicas is None:
                num_replicas = dist.get_world_size() if ini else 1
            if rank is None:
                rank = dist.get_rank() if ini else 0
        self.num_replicas = _int(num_replicas, "num_replicas", 1)
        self.rank = _int(rank, "rank", 0)
        if self.rank >= self.num_replicas:
            raise InvalidArgumentError(f"DistributedSampler: rank {rank} is not in [0, {self.num_replicas - 1}] "
                                       f"(num_replicas={self.num_replicas})")
        try:
            n = len(dataset)
        except TypeError:
            raise InvalidArgumentError(f"DistributedSampler: dataset must have a length (a Dataset, a list, a "
                                       f"range...), got {type(dataset).__name__}") from None
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.seed = _int(seed, "seed", 0)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        if self.drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = _int(epoch, "epoch", 0)

    def global_indices(self):
        """The permuted, padded (or cut) index list that the ranks share out, for this epoch."""
        n = len(self.dataset)
        if self.shuffle:
            idx = np.random.Generator(np.random.PCG64(self.seed + self.epoch)).permutation(n)
        else:
            idx = np.arange(n)
        if self.total_size > n:  # pad with the first elements, repeated as often as needed
            reps = -(-(self.total_size - n) // max(n, 1))
            idx = np.concatenate([idx] + [idx] * reps)[:self.total_size] if n else idx
        return idx[:self.total_size]

    def __iter__(self):
        return iter(self.global_indices()[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self):
        return self.num_samples

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.set_epoch(state["epoch"])
        self.seed = _int(state["seed"], "seed", 0)
