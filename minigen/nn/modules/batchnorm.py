"""``torch.nn.modules.batchnorm`` path: the batch-norm layers (defined in :mod:`.normalization`)."""
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d  # noqa: F401

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]
