"""``minigen.utils``: the paths of PyTorch's ``torch.utils`` that model code imports.

- :mod:`minigen.utils.data`: ``DataLoader``, ``Dataset``, ``TensorDataset``, ``Subset``,
  ``random_split``, the samplers and ``get_worker_info`` (the same objects as
  :mod:`minigen.data`, so ``from torch.utils.data import DataLoader`` ports as
  ``from minigen.utils.data import DataLoader``).
"""
from . import data  # noqa: F401

__all__ = ["data"]
