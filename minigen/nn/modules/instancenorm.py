"""``torch.nn.modules.instancenorm`` path: the instance-norm layers (defined in :mod:`.normalization`)."""
from .normalization import InstanceNorm1d, InstanceNorm2d  # noqa: F401

__all__ = ["InstanceNorm1d", "InstanceNorm2d"]
