"""``torch.nn.modules.distance`` path: ``CosineSimilarity`` (defined in :mod:`.loss`)."""
from .loss import CosineSimilarity  # noqa: F401

__all__ = ["CosineSimilarity"]
