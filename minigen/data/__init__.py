"""``minigen.data``: datasets, the DataLoader, MNIST / Fashion-MNIST, text corpora, image utilities.

- :mod:`~minigen.data.dataset`: ``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``, ``random_split``;
- :mod:`~minigen.data.dataloader`: ``DataLoader`` (batching, seeded shuffling, resumable, worker processes),
  samplers, collate, ``get_worker_info``; the same names are importable as ``minigen.utils.data``;
- :mod:`~minigen.data.mnist`: the IDX format, ``MNIST`` / ``FashionMNIST`` (download + MD5 + cache),
  ``BundledMNIST`` / ``load_mnist_bundled`` (the real 10k set shipped with the package, 9k/1k split);
- :mod:`~minigen.data.text`: tiny-shakespeare, ``CharTokenizer``, nanoGPT's ``get_batch``, ``BPTTIterator``;
- :mod:`~minigen.data.images`: ``save_image_grid`` (PNG), ``plot_curves`` (PNG, headless matplotlib);
- :mod:`~minigen.data.audio`: WAV read/write and the Free Spoken Digit Dataset (``FSDD``; a CC BY-SA subset ships).
"""
from .dataset import (  # noqa: F401
    Dataset, TensorDataset, Subset, ConcatDataset, random_split, DataError, DatasetNotFoundError, IterableDataset,
    ChainDataset, StackDataset,
)
from .dataloader import (  # noqa: F401
    DataLoader, default_collate, default_convert, Sampler, SequentialSampler, RandomSampler, SubsetRandomSampler,
    BatchSampler,
    WeightedRandomSampler, get_worker_info, WorkerInfo, DataLoaderWorkerError, DataLoaderTimeoutError,
)
from .mnist import (  # noqa: F401
    read_idx, write_idx, data_root, download_dataset, MNIST, FashionMNIST, BundledMNIST, load_mnist_bundled,
    MNIST_RESOURCES, FASHION_MNIST_RESOURCES,
)
from .text import (  # noqa: F401
    load_shakespeare, shakespeare_splits, CharTokenizer, get_batch, batchify, BPTTIterator,
)
from .images import make_grid, save_image_grid, plot_curves  # noqa: F401
from .distributed import DistributedSampler  # noqa: F401
from .audio import FSDD, load_fsdd, download_fsdd, read_wav, write_wav, fsdd_manifest  # noqa: F401

__all__ = [
    "Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "DataError", "DatasetNotFoundError",
    "IterableDataset", "ChainDataset", "StackDataset",
    "DataLoader", "default_collate", "default_convert", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
    "BatchSampler", "WeightedRandomSampler", "get_worker_info", "WorkerInfo", "DataLoaderWorkerError",
    "DataLoaderTimeoutError", "read_idx", "write_idx", "data_root", "download_dataset", "MNIST", "FashionMNIST",
    "BundledMNIST", "load_mnist_bundled", "MNIST_RESOURCES", "FASHION_MNIST_RESOURCES", "load_shakespeare",
    "shakespeare_splits", "CharTokenizer", "get_batch", "batchify", "BPTTIterator", "make_grid", "save_image_grid",
    "plot_curves", "DistributedSampler", "FSDD", "load_fsdd", "download_fsdd", "read_wav", "write_wav", "fsdd_manifest",
]
