"""``mg.cuda``: the CUDA devices minigen can use (through CuPy), and the GPU-only glue.

    mg.cuda.is_available()        # CuPy importable and at least one NVIDIA GPU
    mg.cuda.device_count(), mg.cuda.current_device(), mg.cuda.set_device(1), mg.cuda.get_device_name()
    with mg.cuda.device(1): ...   # make GPU 1 current inside the block
    mg.cuda.synchronize()         # wait for the queued GPU work (timing!)
    mg.cuda.manual_seed(0)        # seed only the GPU random stream (mg.manual_seed seeds CPU and GPU)

Importing minigen, and everything on the CPU, never needs CuPy: this module imports it lazily and every
function here answers sensibly without it (``is_available()`` False, ``device_count()`` 0; the ones
that need a GPU raise :class:`~minigen.errors.DeviceError`).

GPU kernels need no glue here: ops ask ``minigen.kernels.dispatch`` for a kernel by name, and it
answers with the CUDA version for CuPy arrays.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .errors import DeviceError

__all__ = ["is_available", "device_count", "current_device", "set_device", "device", "synchronize",
           "get_device_name", "get_device_capability", "manual_seed", "manual_seed_all", "seed",
           "memory_allocated", "empty_cache"]


def _cp():
    cp = backend.cupy_module()
    if cp is None:
        raise DeviceError("CUDA is not available: install minigen[gpu] (a CuPy wheel matching your CUDA, e.g. "
                          "cupy-cuda12x) and run on a machine with an NVIDIA GPU; mg.cuda.is_available() says so")
    return cp


def _index(dev) -> int:
    if dev is None:
        return current_device()
    if isinstance(dev, (int, np.integer)) and not isinstance(dev, bool):
        i = int(dev)
    else:
        d = backend.as_device(dev)
        if d.type != "cuda":
            raise DeviceError(f"expected a CUDA device, got {d}")
        i = d.index
    n = device_count()
    if not 0 <= i < n:
        raise DeviceError(f"CUDA device {i} does not exist: this machine has {n} GPU(s)")
    return i


def is_available() -> bool:
    """Whether minigen can run on a GPU here (CuPy importable and a CUDA device present)."""
    return backend.cupy_module() is not None


def device_count() -> int:
    cp = backend.cupy_module()
    return 0 if cp is None else int(cp.cuda.runtime.getDeviceCount())


def current_device() -> int:
    """Index of the current CUDA device (where new GPU arrays go when no index is given)."""
    return int(_cp().cuda.runtime.getDevice())


def set_device(dev) -> None:
    """Make ``dev`` (an int, 'cuda:N' or a Device) the current CUDA device."""
    i = _index(dev)
    _cp().cuda.Device(i).use()


class device:
    """``with mg.cuda.device(1): ...``: GPU 1 is the current device inside the block."""

    def __init__(self, dev):
        self.idx = _index(dev)
        self._ctx = None

    def __enter__(self):
        self._ctx = _cp().cuda.Device(self.idx)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def synchronize(dev=None) -> None:
    """Block until every kernel queued on the device has finished (GPU work is asynchronous)."""
    cp = _cp()
    cp.cuda.Device(_index(dev)).synchronize()


def get_device_name(dev=None) -> str:
    props = _cp().cuda.runtime.getDeviceProperties(_index(dev))
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def get_device_capability(dev=None):
    props = _cp().cuda.runtime.getDeviceProperties(_index(dev))
    return int(props["major"]), int(props["minor"])


def manual_seed(seed: int) -> None:
    """Seed the GPU random stream of the default generator (no-op without CUDA, as PyTorch).

    ``mg.manual_seed(s)`` already seeds both streams: the GPU stream is then created on first GPU use
    from the seeded CPU stream, so a run is reproducible either way."""
    if not is_available():
        return
    from .random import default_generator

    cp = _cp()
    default_generator._cupy = cp.random.default_rng(int(seed))


manual_seed_all = manual_seed


def seed() -> int:
    s = int(np.random.SeedSequence().entropy % (2 ** 63))
    manual_seed(s)
    return s


def memory_allocated(dev=None) -> int:
    """Bytes held by CuPy's memory pool (0 without CUDA)."""
    cp = backend.cupy_module()
    return 0 if cp is None else int(cp.get_default_memory_pool().used_bytes())


def empty_cache() -> None:
    """Return CuPy's cached, unused GPU memory to the driver."""
    cp = backend.cupy_module()
    if cp is not None:
        cp.get_default_memory_pool().free_all_blocks()


def __getattr__(name):
    # torch.cuda.amp.GradScaler / autocast: the same objects as minigen.amp.cuda (disabled-by-default no-ops)
    if name == "amp":
        from .amp import cuda as amp_cuda

        return amp_cuda
    raise AttributeError(f"module 'minigen.cuda' has no attribute {name!r}")
