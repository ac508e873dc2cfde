"""``torch.nn.modules.upsampling`` path: the upsampling layers (defined in :mod:`.pooling`)."""
from .pooling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d  # noqa: F401

__all__ = ["Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d"]
