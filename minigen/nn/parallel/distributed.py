"""``DistributedDataParallel``: one model replica per process, gradients averaged during the backward.

Each of the W processes holds the same model and runs forward and backward on its own shard of the batch.
Data parallelism needs every replica to take the same optimizer step, i.e. the gradient of the *global* loss

    L = (1/W) * sum_r L_r,        so   dL/dθ = (1/W) * sum_r dL_r/dθ        (the all-reduce average)

where L_r is rank r's loss on its shard. With equal shards of size B and mean losses this equals the gradient of
the mean loss over the whole batch of W·B samples: W processes × batch B ≈ 1 process × batch W·B.

How the averaging overlaps the backward (PyTorch's Reducer design, in Python):

1. At construction, rank 0's parameters and buffers are broadcast (every replica starts equal); every rank's
   list of parameter names/shapes/dtypes is compared with rank 0's (a mismatched model raises on every rank).
2. Parameters are packed, in reverse order of ``module.parameters()`` (roughly the order in which backward
   produces their gradients), into *buckets*: flat buffers of about ``bucket_cap_mb`` MB (default 25; the first
   bucket is capped at 1 MB so communication starts early).
3. A post-accumulate-grad hook on each parameter copies its finished ``.grad`` into its bucket slot. When a
   bucket's last slot is filled, a *non-blocking* all-reduce of the whole bucket is started (buckets start in
   index order on every rank, as MPI requires), while the engine goes on with the rest of the backward.
4. When the last bucket has started, the hook waits for all of them and writes the averaged buckets back into
   the parameters' ``.grad``. After the first iteration the buckets are rebuilt once in the order in which the
   gradients actually arrived (rank 0's order, broadcast), as PyTorch does.

``no_sync()`` skips steps 3-4 (gradients accumulate locally; the next synchronised backward averages the sum).
The all-reduce runs on a private duplicate of the process group's communicator, so it never interleaves with
collectives the model itself issues (SyncBatchNorm). Every parameter that requires grad must receive a gradient
in each synchronised backward, unless ``find_unused_parameters=True``: then, after each forward, the autograd graph
is walked from the output and the parameters it does not reach are marked ready at once (zero contribution); after
the reduction, parameters unused on every rank keep their ``.grad`` (None stays None), as in PyTorch.
"""
from __future__ import annotations

import contextlib
import time
import weakref

import numpy as np

from ...autograd import is_grad_enabled
from ...backend import get_array_module
from ...distributed.errors import DistributedError
from ...distributed.process_group import NonGroupMember, _host_group, _require
from ...errors import InvalidArgumentError
from ...tensor import Tensor
from ..modules.module import Module

__all__ = ["DistributedDataParallel", "GradBucket", "allreduce_hook"]


def _tensors_in(obj):
    from ...tensor import Tensor

    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors_in(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors_in(o)


def _reachable_leaves(out):
    """ids of the leaf tensors the autograd graph of ``out`` reaches (ops' ``next_nodes`` edges)."""
    reached, seen, stack = set(), set(), []
    for t in _tensors_in(out):
        if t._ctx is not None:
            stack.append(t._ctx)
        elif t.requires_grad:
            reached.add(id(t))
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        nexts = getattr(n, "next_nodes", None)
        if nexts is None:  # a leaf tensor
            reached.add(id(n))
            continue
        stack.extend(p for p in nexts if p is not None)
    return reached

_FIRST_BUCKET_MB = 1.0


class GradBucket:
    """What a communication hook receives (PyTorch's ``GradBucket``): ``buffer()`` the flat gradient Tensor,
    ``index()``, ``parameters()``, ``is_last()``."""

    def __init__(self, index, flat, params, is_last):
        from ...tensor import Tensor

        self._index, self._params, self._last = index, params, is_last
        self._buffer = Tensor._make(flat, False)

    def buffer(self):
        return self._buffer

    def index(self):
        return self._index

    def parameters(self):
        return list(self._params)

    def is_last(self):
        return self._last


def allreduce_hook(process_group, bucket):
    """The default communication hook: start ``all_reduce(bucket, AVG)`` and return its Work."""
    from ...distributed import all_reduce

    return all_reduce(bucket.buffer(), op="avg", group=process_group, async_op=True)


class _Bucket:
    __slots__ = ("index", "params", "offsets", "flat", "pending", "work", "dtype")

    def __init__(self, index, params, xp, dtype):
        self.index, self.params, self.dtype = index, params, dtype
        self.offsets, n = [], 0
        for p in params:
            self.offsets.append(n)
            n += int(p.numel())
        self.flat = xp.zeros(n, dtype=dtype)
        self.pending = len(params)
        self.work = None


def _signature(module):
    params = [[n, list(p.shape), str(p.dtype), bool(p.requires_grad)] for n, p in module.named_parameters()]
    buffers = [[n, list(b.shape), str(b.dtype)] for n, b in module.named_buffers() if b is not None]
    return {"params": params, "buffers": buffers}


def _first_difference(mine, ref):
    for kind in ("params", "buffers"):
        a, b = mine[kind], ref[kind]
        for x, y in zip(a, b):
            if x != y:
                return f"{kind[:-1]} {x} where rank 0 has {y}"
        if len(a) != len(b):
            return f"{len(a)} {kind} where rank 0 has {len(b)}"
    return None


class DistributedDataParallel(Module):
    """Data-parallel wrapper (PyTorch's signature). ``module`` must be the same model on every rank.

    ``process_group``: the ranks to average over (default: the world). ``bucket_cap_mb``: bucket size.
    ``broadcast_buffers``: broadcast rank 0's buffers (e.g. BatchNorm running statistics) before each forward,
    so every replica uses the same ones. ``device_ids``/``output_device``/``dim``/``gradient_as_bucket_view``/
    ``static_graph`` are accepted for compatibility (one device per process; the batch is never split here:
    each rank passes its own shard, e.g. from :class:`minigen.data.DistributedSampler`).
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25.0, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        if not isinstance(module, Module):
            raise InvalidArgumentError(f"DistributedDataParallel wraps a minigen nn.Module, got "
                                       f"{type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise InvalidArgumentError(f"bucket_cap_mb must be positive, got {bucket_cap_mb!r}")
        group = _require(process_group)
        if isinstance(group, NonGroupMember):
            raise InvalidArgumentError("DistributedDataParallel: this rank is not a member of process_group")
        self.module = module
        self.dim = dim
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.require_backward_grad_sync = True
        self.find_unused_parameters = bool(find_unused_parameters)
        self._group = group.dup()  # private communicator: never interleaves with the model's own collectives
        self._params = [p for p in module.parameters() if p.requires_grad]
        self._index = {id(p): i for i, p in enumerate(self._params)}
        self._names = {id(p): n for n, p in module.named_parameters()}
        self._verify_same_model()
        self._sync_module_states()
        self._comm_hook, self._comm_state = allreduce_hook, self._group
        self._build_buckets(list(reversed(range(len(self._params)))))
        self._rebuilt = False
        self._arrival = []
        self._expect = False
        self._reduced = False  # a synchronised reduction finished since the last forward
        self._got_grad = False  # a gradient arrived since the last forward
        self._used = None  # with find_unused_parameters: which parameters this forward's output depends on
        self.comm_stats = {}
        self._register_hooks()

    # ------------------------------------------------------------------ construction
    @property
    def process_group(self):
        return self._group

    def _verify_same_model(self):
        from ...distributed import all_gather_object

        mine = _signature(self.module)
        sigs = [None] * self._group.size
        all_gather_object(sigs, mine, group=self._group)
        bad = []
        for r, s in enumerate(sigs):
            d = _first_difference(s, sigs[0])
            if d is not None:
                bad.append(f"rank {r} has {d}")
        if bad:
            raise DistributedError("DistributedDataParallel expects the same model on every rank, but "
                                   + "; ".join(bad) + " (parameters and buffers are compared by name, shape, dtype)")

    def _sync_module_states(self):
        if self._group.size == 1:
            return
        from ...distributed import broadcast

        tensors = list(self.module.parameters()) + [b for b in self.module.buffers() if b is not None]
        works = [broadcast(t, src=0, group=self._group, async_op=True) for t in tensors]
        for w in works:
            w.wait()

    def _build_buckets(self, order):
        """Pack parameters, in ``order`` (indices into self._params), into per-dtype buckets."""
        cap = self.bucket_cap_mb * 2 ** 20
        first_cap = min(cap, _FIRST_BUCKET_MB * 2 ** 20)
        groups, open_ = [], {}
        for i in order:
            p = self._params[i]
            key = (str(p.dtype), type(p.array).__module__)
            cur = open_.get(key)
            limit = first_cap if (cur is not None and cur is groups[0]) else cap
            nbytes = int(p.numel()) * p.array.itemsize
            if cur is None or (cur[1] > 0 and cur[1] + nbytes > limit):
                cur = [[], 0]
                groups.append(cur)
                open_[key] = cur
            cur[0].append(i)
            cur[1] += nbytes
        self._buckets = []
        self._slot = [None] * len(self._params)
        for b, (idx, _) in enumerate(groups):
            ps = [self._params[i] for i in idx]
            xp = get_array_module(ps[0].array)
            bucket = _Bucket(b, ps, xp, ps[0].dtype)
            for j, i in enumerate(idx):
                self._slot[i] = (bucket, bucket.offsets[j], int(ps[j].numel()))
            self._buckets.append(bucket)

    def _register_hooks(self):
        ref = weakref.ref(self)
        for i, p in enumerate(self._params):
            def hook(param, i=i):
                ddp = ref()
                if ddp is not None:
                    ddp._grad_ready(i, param)
            p.register_post_accumulate_grad_hook(hook)

    def register_comm_hook(self, state, hook):
        """Replace the all-reduce of each bucket: ``hook(state, bucket) -> Work``; once the Work completes, the
        bucket's ``buffer()`` must hold the gradients to use (already averaged)."""
        if not callable(hook):
            raise InvalidArgumentError(f"hook must be callable, got {type(hook).__name__}")
        self._comm_state, self._comm_hook = state, hook

    # ------------------------------------------------------------------ each iteration
    @contextlib.contextmanager
    def no_sync(self):
        """Inside this context, backward accumulates gradients locally without averaging them (gradient
        accumulation); the first synchronised backward after it averages the accumulated sum."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def forward(self, *args, **kwargs):
        if self._expect and self._got_grad:
            missing = [self._names.get(id(p), "?") for i, p in enumerate(self._params) if not self._ready[i]]
            raise DistributedError(
                "DistributedDataParallel: the previous backward did not finish its gradient reduction before this "
                "forward; some parameters got no gradient (unused in the loss?), e.g. "
                + ", ".join(missing[:5]) + ". Pass find_unused_parameters=True, or freeze them with "
                "requires_grad_(False).")
        if self._expect:  # a forward without backward: finish what find_unused_parameters already started
            for b in self._buckets:
                if b.work is not None:
                    b.work.wait()
        if self._arrival and not self._rebuilt:
            self._rebuild_buckets()
        self._expect = bool(is_grad_enabled() and self.require_backward_grad_sync and self._params)
        self._reduced = self._got_grad = False
        self._used = None
        if self._expect:
            for b in self._buckets:
                b.pending, b.work = len(b.params), None
            self._next = 0
            self._ready = [False] * len(self._params)
            self._t_first = None
        if self.broadcast_buffers and self._group.size > 1:
            bufs = [b for b in self.module.buffers() if b is not None]
            if bufs:
                from ...distributed import broadcast

                for w in [broadcast(b, src=0, group=self._group, async_op=True) for b in bufs]:
                    w.wait()
        out = self.module(*args, **kwargs)
        if self._expect and self.find_unused_parameters:
            self._mark_unused(out)
        return out

    def _mark_unused(self, out):
        """find_unused_parameters: parameters the output does not depend on (found by walking the autograd graph
        from the output) are ready now, with a zero gradient in their bucket slot."""
        reached = _reachable_leaves(out)
        self._used = [id(p) in reached for p in self._params]
        for i, used in enumerate(self._used):
            if not used:
                self._ready[i] = True
                if not self._rebuilt:
                    self._arrival.append(i)
                bucket, off, n = self._slot[i]
                bucket.flat[off:off + n] = 0
                bucket.pending -= 1
        self._launch_ready()
        if self._next == len(self._buckets):
            self._finalize()

    def _grad_ready(self, i, param):
        if not self._expect:
            if self._reduced:
                raise DistributedError(
                    f"DistributedDataParallel: parameter {self._names.get(id(param), i)} received a gradient after "
                    f"this iteration's gradients were already averaged (a second backward after one forward?). "
                    f"Run one forward per synchronised backward, or run the earlier backwards under no_sync() "
                    f"(forward and backward inside it)")
            return
        if self._ready[i]:
            raise DistributedError(
                f"DistributedDataParallel: parameter {self._names.get(id(param), i)} received a gradient twice in "
                f"one synchronised backward (two backward calls after one forward? use no_sync() for all but the "
                f"last)")
        self._ready[i] = True
        self._got_grad = True
        if not self._rebuilt:
            self._arrival.append(i)
        bucket, off, n = self._slot[i]
        bucket.flat[off:off + n] = param.grad.array.reshape(-1)
        bucket.pending -= 1
        if bucket.pending == 0:
            self._launch_ready()
        else:
            for b in self._buckets[:self._next]:  # let MPI make progress on what is in flight
                b.work.is_completed()
        if self._next == len(self._buckets):
            self._finalize()

    def _launch_ready(self):
        while self._next < len(self._buckets) and self._buckets[self._next].pending == 0:
            b = self._buckets[self._next]
            if self._t_first is None:
                self._t_first = time.perf_counter()
            b.work = self._comm_hook(self._comm_state, GradBucket(b.index, b.flat, b.params,
                                                                  b.index == len(self._buckets) - 1))
            self._next += 1

    def _finalize(self):
        t0 = time.perf_counter()
        for b in self._buckets:
            b.work.wait()
        t1 = time.perf_counter()
        used = None
        if self._used is not None:  # which parameters got a gradient on some rank
            used = np.array(self._used, np.uint8)
            _host_group(self._group).all_reduce(used, "max").wait()
        for b in self._buckets:
            for p, off in zip(b.params, b.offsets):
                if used is not None and not used[self._index[id(p)]]:
                    continue  # unused on every rank: .grad stays as it was (None stays None), as in PyTorch
                n = int(p.numel())
                if p.grad is None:  # unused here, used elsewhere
                    p.grad = Tensor._make(b.flat[off:off + n].reshape(p.shape).copy(), False)
                else:
                    p.grad.array[...] = b.flat[off:off + n].reshape(p.grad.array.shape)
        self._expect = False
        self._reduced = True
        self.comm_stats = {
            "buckets": len(self._buckets),
            "bytes": int(sum(b.flat.nbytes for b in self._buckets)),
            "first_start": self._t_first,
            "finalize_wait_s": t1 - t0,
            "comm_span_s": max(b.work.completed_at or t1 for b in self._buckets) - self._t_first,
            "done": time.perf_counter(),
        }

    def _rebuild_buckets(self):
        """Once, after the first synchronised backward: order the buckets as the gradients arrived (rank 0's
        order, broadcast so that every rank builds the same buckets)."""
        from ...distributed import broadcast_object_list

        order = [self._arrival if self._group.rank == 0 else []]
        broadcast_object_list(order, src=0, group=self._group)
        order = [int(i) for i in order[0]]
        if sorted(order) == list(range(len(self._params))):
            self._build_buckets(order)
        self._rebuilt = True
        self._arrival = []

    def bucket_sizes(self):
        """Number of parameters in each bucket, in launch order (for tests and tuning)."""
        return [len(b.params) for b in self._buckets]

    def extra_repr(self):
        return f"world_size={self._group.size}, buckets={len(self._buckets)}, bucket_cap_mb={self.bucket_cap_mb}"
