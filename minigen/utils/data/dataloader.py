"""``torch.utils.data.dataloader`` path: :class:`DataLoader`, ``default_collate``, ``get_worker_info``."""
from ...data.dataloader import (  # noqa: F401
    DataLoader, WorkerInfo, default_collate, default_convert, get_worker_info,
)

__all__ = ["DataLoader", "WorkerInfo", "default_collate", "default_convert", "get_worker_info"]
