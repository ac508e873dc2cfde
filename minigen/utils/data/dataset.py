"""``torch.utils.data.dataset`` path: the datasets of :mod:`minigen.data.dataset`."""
from ...data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split  # noqa: F401

__all__ = ["ConcatDataset", "Dataset", "Subset", "TensorDataset", "random_split"]
