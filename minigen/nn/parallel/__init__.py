"""``minigen.nn.parallel``: data-parallel training across processes (``DistributedDataParallel``,
``SyncBatchNorm``), on top of :mod:`minigen.distributed`."""
from .distributed import DistributedDataParallel, GradBucket, allreduce_hook  # noqa: F401
from .sync_batchnorm import SyncBatchNorm  # noqa: F401

__all__ = ["DistributedDataParallel", "GradBucket", "allreduce_hook", "SyncBatchNorm"]
