"""``minigen.utils.data``: PyTorch's ``torch.utils.data`` names, re-exported from :mod:`minigen.data`.

Everything here is the object defined in :mod:`minigen.data.dataset` /
:mod:`minigen.data.dataloader` (one implementation, two import paths).
``DistributedSampler`` comes from :mod:`minigen.data.distributed` and is imported on
first use; where that module (or something it imports) is absent, asking for it raises
``AttributeError`` naming the cause (so ``hasattr`` answers False).
"""
from ...data.dataset import (  # noqa: F401
    ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset, TensorDataset, random_split,
)
from ...data.dataloader import (  # noqa: F401
    BatchSampler, DataLoader, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler, WorkerInfo, default_collate, default_convert, get_worker_info,
)
from . import dataloader, dataset, sampler  # noqa: F401

__all__ = ["BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "IterableDataset",
           "RandomSampler", "Sampler", "SequentialSampler", "StackDataset", "Subset", "SubsetRandomSampler",
           "TensorDataset", "WeightedRandomSampler", "WorkerInfo", "default_collate", "default_convert",
           "get_worker_info", "random_split"]


def __getattr__(name):
    if name in ("DistributedSampler", "distributed"):
        import importlib

        try:
            mod = importlib.import_module("minigen.data.distributed")
        except ImportError as e:  # absent, or its own dependencies are: hasattr() must answer False, not raise
            raise AttributeError(f"module 'minigen.utils.data' has no attribute {name!r} "
                                 f"(minigen.data.distributed cannot be imported: {e})") from e
        if name == "distributed":
            from . import distributed
            return distributed
        return mod.DistributedSampler
    raise AttributeError(f"module 'minigen.utils.data' has no attribute {name!r}")
