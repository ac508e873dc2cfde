"""``torch.backends.mkldnn`` (oneDNN): not used by minigen; ``enabled`` is stored only, ``is_available()`` False."""

__all__ = ["enabled", "is_available"]

enabled = True


def is_available() -> bool:
    return False
