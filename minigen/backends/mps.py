"""``torch.backends.mps``: Apple's Metal backend, which minigen does not have (both queries are False)."""

__all__ = ["is_available", "is_built"]


def is_available() -> bool:
    return False


def is_built() -> bool:
    return False
