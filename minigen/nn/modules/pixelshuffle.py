"""``torch.nn.modules.pixelshuffle`` path: ``PixelShuffle`` / ``PixelUnshuffle`` (defined in :mod:`.pooling`)."""
from .pooling import PixelShuffle, PixelUnshuffle  # noqa: F401

__all__ = ["PixelShuffle", "PixelUnshuffle"]
