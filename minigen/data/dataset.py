"""Datasets: anything with ``__len__`` and ``__getitem__`` (PyTorch's map-style protocol).

- :class:`Dataset` is the base class (``ds1 + ds2`` concatenates).
- :class:`TensorDataset` wraps arrays/tensors that share their first dimension;
  item ``i`` is the tuple of their ``i``-th rows.
- :class:`Subset` views a dataset through a list of indices; :func:`random_split`
  cuts a dataset into non-overlapping random subsets.
- :class:`ConcatDataset` chains datasets end to end; :class:`StackDataset` zips datasets of equal
  length (item ``i`` is the tuple, or dict, of their ``i``-th items).
- :class:`IterableDataset` is the base class of *iterable-style* datasets (streams: ``__iter__``
  instead of ``__getitem__``); :class:`ChainDataset` chains them.

A dataset may also define ``fetch_batch(indices)`` returning an already-collated
batch (what :func:`~minigen.data.dataloader.default_collate` would make of
``[ds[i] for i in indices]``). :class:`~minigen.data.DataLoader` uses it when
present: gathering a batch with one fancy-indexing call instead of ``batch_size``
``__getitem__`` calls and a stack is what makes an in-memory dataset fast.
"""
from __future__ import annotations

import bisect
import math
import numbers

import numpy as np

from .. import backend
from ..errors import IndexOutOfRangeError, InvalidArgumentError, MinigenError, ShapeError
from ..random import _gen
from ..tensor import Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset", "StackDataset",
           "random_split", "DataError", "DatasetNotFoundError"]


class DataError(MinigenError, ValueError):
    """A data file that is malformed (bad magic number, wrong size, checksum mismatch...)."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """Dataset files that are not on disk and could not be downloaded (the message says where to put them)."""


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


def _check_map_style(dataset, op):
    """``dataset`` must be map-style (``__len__`` and ``__getitem__``); its length is returned."""
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__") or isinstance(dataset, (str, bytes)):
        raise InvalidArgumentError(f"{op}: expected a map-style dataset (with __len__ and __getitem__), got "
                                   f"{type(dataset).__name__}")
    n = len(dataset)
    if not isinstance(n, numbers.Integral) or n < 0:
        raise InvalidArgumentError(f"{op}: len(dataset) must be a non-negative int, got {n!r}")
    return int(n)


def _dataset_list(datasets, op):
    from ..argcheck import check_iterable

    return check_iterable(datasets, op, "datasets")


class IterableDataset(Dataset):
    """Base class of iterable-style datasets: subclasses define ``__iter__`` (a stream of samples).

    A :class:`~minigen.data.DataLoader` takes ``batch_size`` consecutive samples per batch (no sampler,
    no shuffle). With ``num_workers > 0`` every worker iterates its own copy of the dataset, so a
    dataset that should not be read N times splits the stream itself using
    :func:`~minigen.data.get_worker_info` (``id``, ``num_workers``), as in PyTorch.
    ``ds1 + ds2`` chains two streams (:class:`ChainDataset`).
    """

    def __iter__(self):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __getitem__(self, index):
        raise InvalidArgumentError(f"{type(self).__name__} is an iterable-style dataset: iterate over it, "
                                   "it has no __getitem__")

    def __add__(self, other):
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """Iterable-style datasets one after another (the streams are chained lazily)."""

    def __init__(self, datasets):
        self.datasets = _dataset_list(datasets, "ChainDataset")
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise InvalidArgumentError(f"ChainDataset only chains IterableDatasets, got {type(d).__name__}")

    def __iter__(self):
        for d in self.datasets:
            yield from d

    def __len__(self):
        return sum(len(d) for d in self.datasets)


class StackDataset(Dataset):
    """Datasets of equal length side by side: ``StackDataset(a, b)[i] == (a[i], b[i])``;
    ``StackDataset(x=a, y=b)[i] == {'x': a[i], 'y': b[i]}``."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise InvalidArgumentError("StackDataset takes either datasets as positional arguments (items are "
                                       "tuples) or as keyword arguments (items are dicts), not both")
        if not args and not kwargs:
            raise InvalidArgumentError("StackDataset needs at least one dataset")
        self.datasets = args if args else kwargs
        for d in (args if args else kwargs.values()):
            if not hasattr(d, "__len__") or not hasattr(d, "__getitem__"):
                raise InvalidArgumentError(f"StackDataset: {type(d).__name__} is not a map-style dataset "
                                           "(it needs __len__ and __getitem__)")
        lens = [len(d) for d in (args if args else kwargs.values())]
        if len(set(lens)) != 1:
            raise ShapeError(f"StackDataset: the datasets have different lengths {lens}")
        self._length = lens[0]

    def __len__(self):
        return self._length

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)


def _check_index(index, n, what="dataset"):
    if isinstance(index, Tensor):
        index = index.item()
    if not isinstance(index, numbers.Integral) or isinstance(index, bool):
        raise InvalidArgumentError(f"{what} index must be an int, got {type(index).__name__}")
    index = int(index)
    if index < -n or index >= n:
        raise IndexOutOfRangeError(f"index {index} is out of range for a {what} of length {n}")
    return index % n


def _index_array(indices, n, what="dataset"):
    idx = np.asarray(indices.array if isinstance(indices, Tensor) else indices)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise InvalidArgumentError(f"{what} batch indices must be a 1-d sequence of ints, got {idx!r}")
    idx = idx.astype(np.int64, copy=False)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = idx[(idx < -n) | (idx >= n)][0]
        raise IndexOutOfRangeError(f"index {int(bad)} is out of range for a {what} of length {n}")
    return idx % max(n, 1)


class TensorDataset(Dataset):
    """Rows of tensors (or arrays) that share their first dimension.

    ``TensorDataset(images, labels)[i] == (images[i], labels[i])``. Items are
    minigen Tensors viewing the stored arrays (no copy); the arrays stay on
    the device they were given on.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise InvalidArgumentError("TensorDataset needs at least one tensor")
        arrays = []
        for t in tensors:
            if isinstance(t, Tensor):
                arrays.append(t.detach().array)
            else:
                arrays.append(np.asarray(t))
        for a in arrays:
            if a.ndim == 0:
                raise ShapeError("TensorDataset: every tensor needs a first (sample) dimension, got a 0-d tensor")
        sizes = [a.shape[0] for a in arrays]
        if len(set(sizes)) != 1:
            shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
            raise ShapeError(f"TensorDataset: tensors must have the same first dimension, got shapes {shapes}")
        self.arrays = tuple(arrays)

    @property
    def tensors(self):
        return tuple(Tensor._make(a) for a in self.arrays)

    def __len__(self):
        return self.arrays[0].shape[0]

    def __getitem__(self, index):
        i = _check_index(index, len(self), "TensorDataset")
        return tuple(Tensor._make(a[i]) for a in self.arrays)

    def fetch_batch(self, indices):
        """The collated batch for ``indices``: one fancy-indexing call per stored tensor."""
        idx = _index_array(indices, len(self), "TensorDataset")
        out = []
        for a in self.arrays:
            ix = idx if isinstance(a, np.ndarray) else backend.move_array(idx, backend.device_of_array(a))
            out.append(Tensor._make(a[ix]))
        return tuple(out)


class Subset(Dataset):
    """The items of ``dataset`` at ``indices`` (in that order)."""

    def __init__(self, dataset, indices):
        from ..argcheck import check_iterable

        self.dataset = dataset
        n = _check_map_style(dataset, "Subset")
        raw = (backend.to_numpy(indices.array) if isinstance(indices, Tensor) else indices
               if isinstance(indices, np.ndarray) else check_iterable(indices, "Subset", "indices"))
        try:
            raw = np.asarray(raw)
        except (TypeError, ValueError) as e:  # ragged or non-numeric items
            raise InvalidArgumentError(f"Subset: indices must be a sequence of ints, got {type(indices).__name__} "
                                       f"({e})"[:300]) from None
        if raw.size and raw.dtype.kind not in "iu":
            raise InvalidArgumentError(f"Subset: indices must be ints, got dtype {raw.dtype}")
        idx = raw.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexOutOfRangeError(f"Subset: index {int(bad)} is out of range for a dataset of length {n}")
        self.indices = idx % max(n, 1)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, (list, tuple, np.ndarray)):
            return [self.dataset[int(self.indices[i])] for i in index]
        return self.dataset[int(self.indices[_check_index(index, len(self), "Subset")])]

    def __getattr__(self, name):
        # fetch_batch exists only when the wrapped dataset has it (so DataLoader's check stays honest)
        if name == "fetch_batch" and hasattr(self.dataset, "fetch_batch"):
            return lambda indices: self.dataset.fetch_batch(self.indices[_index_array(indices, len(self), "Subset")])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class ConcatDataset(Dataset):
    """Datasets one after another: indices ``[0, len(a))`` are ``a``, then ``b``..."""

    def __init__(self, datasets):
        self.datasets = _dataset_list(datasets, "ConcatDataset")
        if not self.datasets:
            raise InvalidArgumentError("ConcatDataset needs at least one dataset")
        sizes = [_check_map_style(d, "ConcatDataset") for d in self.datasets]
        self.cumulative_sizes = list(np.cumsum(sizes).tolist())

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        i = _check_index(index, len(self), "ConcatDataset")
        k = bisect.bisect_right(self.cumulative_sizes, i)
        start = 0 if k == 0 else self.cumulative_sizes[k - 1]
        return self.datasets[k][i - start]


def _split_lengths(lengths, n):
    """Integer lengths from ints (must sum to ``n``) or fractions (must sum to 1)."""
    lengths = list(lengths)
    if not lengths:
        raise InvalidArgumentError("random_split: lengths must not be empty")
    if all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in lengths):
        if any(x < 0 for x in lengths):
            raise InvalidArgumentError(f"random_split: lengths must be non-negative, got {lengths}")
        if sum(lengths) != n:
            raise InvalidArgumentError(
                f"random_split: lengths {lengths} sum to {sum(lengths)} but the dataset has {n} items")
        return [int(x) for x in lengths]
    from ..argcheck import check_number

    fr = [check_number(x, "random_split", "a length (an int or a fraction)") for x in lengths]
    if any(f < 0 or f > 1 for f in fr) or not math.isclose(sum(fr), 1.0, abs_tol=1e-6):
        raise InvalidArgumentError(
            f"random_split: fractions must lie in [0, 1] and sum to 1, got {lengths} (sum {sum(fr)})")
    out = [int(math.floor(n * f)) for f in fr]
    # hand the remainder out one by one, first subsets first (as PyTorch does)
    for i in range(n - sum(out)):
        out[i % len(out)] += 1
    return out


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping random :class:`Subset` s.

    ``lengths``: ints summing to ``len(dataset)``, or fractions summing to 1
    (floor of each, remainder handed out round-robin). The permutation is drawn
    from ``generator`` (default: minigen's default generator).
    """
    from ..argcheck import check_generator, check_iterable

    n = _check_map_style(dataset, "random_split")
    sizes = _split_lengths(check_iterable(lengths, "random_split", "lengths"), n)
    perm = _gen(check_generator(generator, "random_split")).numpy.permutation(n)
    out, start = [], 0
    for s in sizes:
        out.append(Subset(dataset, perm[start:start + s]))
        start += s
    return out
