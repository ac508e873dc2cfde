"""``torch.utils.data.distributed`` path: ``DistributedSampler`` from :mod:`minigen.data.distributed`."""
from ...data.distributed import *  # noqa: F401,F403
from ...data.distributed import DistributedSampler  # noqa: F401

__all__ = ["DistributedSampler"]
