"""``mg.cuda``: the CUDA devices minigen can use (through CuPy), and the GPU-only glue.

    mg.cuda.is_available()        # CuPy importable and at least one NVIDIA GPU
    mg.cuda.device_count(), mg.cuda.current_device(), mg.cuda.set_device(1), mg.cuda.get_device_name()
    with mg.cuda.device(1): ...   # make GPU 1 current inside the block
    mg.cuda.synchronize()         # wait for the queued GPU work (timing!)
    mg.cuda.manual_seed(0)        # seed only the GPU random stream (mg.manual_seed seeds CPU and GPU)

Importing minigen, and everything on the CPU, never needs CuPy: this module imports it lazily and every
function here answers sensibly without it (``is_available()`` False, ``device_count()`` 0; the ones
that need a GPU raise :class:`~minigen.errors.DeviceError`).

Glue: importing this module registers the fused flash-attention op (:class:`FlashAttention`, kernels in
``minigen.kernels.gpu_attention``) as a fast path of ``F.scaled_dot_product_attention`` for tensors on
a GPU. (``minigen.backend`` imports this module when it first finds CuPy.) The other GPU kernels need
no glue: ops ask ``minigen.kernels.dispatch`` for a kernel by name, and it answers with the CUDA
version for CuPy arrays.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd.function import Function
from .autograd.grad_mode import STATE
from .errors import DeviceError
from .tensor import Tensor

__all__ = ["is_available", "device_count", "current_device", "set_device", "device", "synchronize",
           "get_device_name", "get_device_capability", "manual_seed", "manual_seed_all", "seed",
           "memory_allocated", "empty_cache", "FlashAttention"]


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


# ====================================================================== fused attention on the GPU
def _kernels():
    try:
        from .kernels import dispatch
    except Exception:
        return None
    return dispatch


class FlashAttention(Function):
    """out = softmax(q k^T * scale [+ causal mask]) v by the fused GPU kernels (no T x T matrix in memory).

    forward: ``minigen.kernels.gpu_attention.sdpa_forward`` (online softmax; saves lse = logsumexp of the
    scores per query row).
    backward (first order, no graph recorded): the fused kernel recomputes p_ij = exp(s_ij - lse_i):
        dv_j = sum_i p_ij g_i,  ds_ij = p_ij (g_i.v_j - sum_e g_ie out_ie),
        dq_i = scale sum_j ds_ij k_j,  dk_j = scale sum_i ds_ij q_i
    backward with ``create_graph=True``: the same formulas written with differentiable Tensor ops
    (P = softmax(q k^T scale + M); dV = P^T g; dP = g V^T; dS = P (dP - sum(dP P, -1)); dQ = dS K scale;
    dK = dS^T Q scale), so higher-order gradients exist.
    """

    @staticmethod
    def forward(ctx, q, k, v, causal, scale, kernels):
        fwd, bwd = kernels
        out, lse = fwd(q, k, v, causal, scale)
        ctx.lse, ctx.out_arr, ctx.bwd = lse, out, bwd
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, causal, scale, _ = ctx.args
        need = [ctx.next_nodes[i] is not None for i in range(3)]
        if not STATE.enabled:
            grads = ctx.bwd(g.array, q.array, k.array, v.array, ctx.out_arr, ctx.lse, causal, scale)
            return tuple(Tensor._make(a) if n else None for a, n in zip(grads, need)) + (None, None, None)
        from .ops.activation import softmax

        xp = backend.get_array_module(q.array)
        s = (q @ k.transpose(-2, -1)) * scale
        if causal:
            L, S = q.shape[-2], k.shape[-2]
            keep = xp.tril(xp.ones((L, S), dtype=bool))
            s = s + Tensor._make(xp.where(keep, 0.0, -np.inf).astype(q.dtype))
        p = softmax(s, -1)
        dv = p.transpose(-2, -1) @ g if need[2] else None
        dp = g @ v.transpose(-2, -1)
        ds = p * (dp - (dp * p).sum(-1, keepdim=True))
        dq = (ds @ k) * scale if need[0] else None
        dk = (ds.transpose(-2, -1) @ q) * scale if need[1] else None
        return dq, dk, dv, None, None, None


def gpu_sdpa(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa, generator):
    """The fast path registered with ``minigen.ops.attention.register_sdpa_kernel`` (validated arguments).

    Takes tensors on a GPU without an attn_mask, without dropout and without broadcasting / GQA head
    expansion, when the kernel switch allows kernels (not ``MINIGEN_KERNELS=reference``); everything else
    returns NotImplemented and runs the differentiable reference."""
    if backend.cupy_module() is None or isinstance(q.array, np.ndarray):
        return NotImplemented
    if attn_mask is not None or dropout_p > 0.0:
        return NotImplemented
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]) or q.dtype != k.dtype or q.dtype != v.dtype:
        return NotImplemented
    if q.device != k.device or q.device != v.device:
        return NotImplemented  # the reference raises the device error
    dispatch = _kernels()
    if dispatch is None:
        return NotImplemented
    fwd = dispatch.get("sdpa_forward", q.array, k.array, v.array)
    bwd = dispatch.get("sdpa_backward", q.array, q.array, k.array, v.array) if fwd is not None else None
    if fwd is None or bwd is None:
        return NotImplemented
    return FlashAttention.apply(q, k, v, bool(is_causal), float(scale), (fwd, bwd))


def _register():
    from .ops import attention

    if gpu_sdpa not in attention._KERNELS:
        attention.register_sdpa_kernel(gpu_sdpa)


_register()
