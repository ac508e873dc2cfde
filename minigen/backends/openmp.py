"""``torch.backends.openmp``: minigen's Numba kernels use Numba's own threading layer, not PyTorch's OpenMP
runtime, so ``is_available()`` is False."""

__all__ = ["is_available"]


def is_available() -> bool:
    return False
