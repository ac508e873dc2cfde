"""Process groups: who is in the world, and the library that moves the bytes between them.

minigen has no transport of its own. A process group wraps a communicator of an existing library:

- ``"mpi"``: an MPI communicator through ``mpi4py`` (CPU arrays; MPICH or Open MPI, whatever ``mpiexec`` started
  the job). Every collective is issued *non-blocking* (``Iallreduce``, ``Ibcast``, ``Iallgatherv``...) and
  returns a :class:`Work`; the blocking form is ``Work.wait()`` right away. Waiting polls ``MPI_Testall`` (which
  also drives MPI's progress engine) against a deadline, so a rank whose peer crashed or hangs raises
  :class:`DistributedError` instead of waiting forever.
- ``"nccl"``: NCCL through ``cupy.cuda.nccl`` for GPU arrays (see :mod:`minigen.distributed.nccl`); MPI is still
  used to start it (the NCCL unique id is broadcast over MPI) and for the object collectives.

Array-level methods live here (``all_reduce(arr, op)`` ...); :mod:`minigen.distributed.collectives` is the
Tensor-level, PyTorch-named front end.
"""
from __future__ import annotations

import datetime
import json
import os
import sys
import time
import traceback

import numpy as np

from ..errors import InvalidArgumentError
from .errors import DistributedError

DEFAULT_TIMEOUT_S = 1800.0  # PyTorch's default process-group timeout: 30 minutes


class ReduceOp:
    """Reduction operators (PyTorch's ``ReduceOp`` names). ``AVG`` = ``SUM`` / world size (floating dtypes only).

    On ``bool`` tensors ``SUM``/``MAX``/``BOR`` are a logical OR and ``PRODUCT``/``MIN``/``BAND`` a logical AND.
    Strings (``"sum"``, ``"avg"``, ...) are accepted wherever a ``ReduceOp`` is.
    """

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"
    ALL = ("sum", "avg", "product", "min", "max", "band", "bor", "bxor")

    @staticmethod
    def check(op, dtype=None) -> str:
        name = str(op).lower()
        if name.startswith("reduceop."):
            name = name[len("reduceop."):]
        if name == "prod":
            name = "product"
        if name not in ReduceOp.ALL:
            raise InvalidArgumentError(f"unknown reduce op {op!r}; expected one of {', '.join(ReduceOp.ALL)}")
        if dtype is not None:
            from ..errors import DTypeError

            kind = np.dtype(dtype).kind
            if name == "avg" and kind != "f":
                raise DTypeError(f"ReduceOp.AVG needs a floating-point tensor, got dtype {np.dtype(dtype)}")
            if name in ("band", "bor", "bxor") and kind not in "iub":
                raise DTypeError(f"ReduceOp.{name.upper()} needs an integer or bool tensor, got dtype {np.dtype(dtype)}")
        return name


def _seconds(timeout) -> float:
    if timeout is None:
        env = os.environ.get("MINIGEN_DIST_TIMEOUT")
        return float(env) if env else DEFAULT_TIMEOUT_S
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    t = float(timeout)
    if not t > 0:
        raise InvalidArgumentError(f"timeout must be positive, got {timeout!r}")
    return t


class Work:
    """A collective in flight (PyTorch's ``Work``): ``wait()`` blocks until it is complete (or raises
    :class:`DistributedError` after the group's timeout), ``is_completed()`` asks without blocking.

    ``started_at`` / ``completed_at`` are ``time.perf_counter()`` stamps (``completed_at`` is when this process
    observed completion), ``wait_s`` the time spent blocked in ``wait()``; DDP and the benchmarks read them.
    """

    def __init__(self, test, finish=None, *, what="collective", group=None, timeout=None, keep=()):
        self._test = test
        self._finish = finish
        self._done = False
        self._keep = keep  # buffers that must stay alive until the backend is done with them
        self.what = what
        self.group = group
        self.timeout = _seconds(timeout) if timeout is not None else (group.timeout if group else DEFAULT_TIMEOUT_S)
        self.started_at = time.perf_counter()
        self.completed_at = None
        self.wait_s = 0.0

    def _complete(self):
        self._done = True
        self.completed_at = time.perf_counter()
        fin, self._finish, self._keep = self._finish, None, ()
        if fin is not None:
            fin()

    def is_completed(self) -> bool:
        if not self._done and self._test():
            self._complete()
        return self._done

    def wait(self, timeout=None) -> bool:
        if self._done:
            return True
        limit = self.timeout if timeout is None else _seconds(timeout)
        t0 = time.perf_counter()
        deadline = time.monotonic() + limit
        spins, pause = 0, 2e-5
        while not self._test():
            spins += 1
            if spins > 1000:  # spin ~a millisecond first (latency), then back off to sleeps of up to 1 ms
                if time.monotonic() > deadline:
                    self.wait_s += time.perf_counter() - t0
                    raise self._timeout_error(limit)
                time.sleep(pause)
                pause = min(pause * 2, 1e-3)
        self.wait_s += time.perf_counter() - t0
        self._complete()
        return True

    def _timeout_error(self, limit):
        g = self.group
        where = f"rank {g.rank} of {g.size} ({g.backend})" if g is not None else "this rank"
        return DistributedError(
            f"{self.what} timed out after {limit:.1f} s on {where}: at least one other rank has not joined it. "
            f"It may have crashed, be stuck, or be calling a different collective (or the same one with other "
            f"shapes); the other ranks' output says which. The limit is init_process_group(timeout=...) or the "
            f"MINIGEN_DIST_TIMEOUT environment variable (seconds)."
        )

    def exception(self):
        return None

    def __repr__(self):
        return f"<Work {self.what} {'completed' if self._done else 'in flight'}>"


class ProcessGroup:
    """A set of ranks and the backend that connects them. ``rank``/``size`` are this process's rank in the group
    and the group's size; ``ranks`` the members' ranks in the world group."""

    backend = "none"

    def __init__(self, rank, size, timeout=None, ranks=None):
        self.rank, self.size = int(rank), int(size)
        self.timeout = _seconds(timeout)
        self.ranks = list(range(self.size)) if ranks is None else list(ranks)

    def __repr__(self):
        return f"<ProcessGroup backend={self.backend} rank={self.rank} size={self.size}>"


def _is_numpy(a) -> bool:
    return type(a) is np.ndarray


class MPIProcessGroup(ProcessGroup):
    """A process group over an ``mpi4py`` communicator (which it owns and frees on :meth:`destroy`)."""

    backend = "mpi"

    def __init__(self, comm, timeout=None, ranks=None):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm
        super().__init__(comm.Get_rank(), comm.Get_size(), timeout, ranks)
        self._dtype_ok = {}
        self._local_rank = None

    # ------------------------------------------------------------------ helpers
    @property
    def local_rank(self) -> int:
        """This process's rank among the group's processes on the same node (MPI_COMM_TYPE_SHARED)."""
        if self._local_rank is None:
            node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED, key=self.rank)
            self._local_rank = node.Get_rank()
            node.Free()
        return self._local_rank

    def dup(self, timeout=None) -> "MPIProcessGroup":
        """A new group with the same members on a duplicated communicator (collective over the group)."""
        return MPIProcessGroup(self.comm.Dup(), self.timeout if timeout is None else timeout, self.ranks)

    def destroy(self):
        if self.comm is not None and self.comm != self.MPI.COMM_NULL:
            try:
                self.comm.Free()
            except Exception:  # already finalised at interpreter exit
                pass
        self.comm = None

    def _mpi_supports(self, dtype) -> bool:
        dt = np.dtype(dtype)
        ok = self._dtype_ok.get(dt)
        if ok is None:
            from mpi4py.util.dtlib import from_numpy_dtype

            try:
                ok = from_numpy_dtype(dt) != self.MPI.DATATYPE_NULL
            except Exception:
                ok = False
            self._dtype_ok[dt] = ok
        return ok

    def _stage(self, arr, op=None):
        """A flat, contiguous NumPy buffer MPI can reduce, and a function that writes it back into ``arr``.

        bool travels as uint8 (OR = MAX, AND = MIN); a dtype the MPI library lacks (float16 in some builds) as
        float32; a CuPy array through host memory (this backend is not assumed CUDA-aware); a strided array
        through a contiguous copy."""
        host = arr if _is_numpy(arr) else arr.get()
        buf, back = host, None
        if not buf.flags.c_contiguous:
            buf = np.ascontiguousarray(buf)
        if buf.dtype == np.bool_:
            buf = buf.view(np.uint8)
        elif not self._mpi_supports(buf.dtype):
            back = buf.dtype
            buf = buf.astype(np.float32 if buf.dtype.kind == "f" else np.int64)
        flat = buf.reshape(-1)
        same = _is_numpy(arr) and back is None and np.shares_memory(flat, arr)

        def writeback():
            if same:
                return
            src = flat if back is None else flat.astype(back)
            src = src.view(np.bool_) if arr.dtype == np.bool_ and src.dtype == np.uint8 else src
            if _is_numpy(arr):
                arr[...] = src.reshape(arr.shape)
            else:
                import cupy

                arr[...] = cupy.asarray(src.reshape(arr.shape))

        return flat, writeback

    def _mpi_op(self, op, dtype):
        MPI = self.MPI
        if np.dtype(dtype) == np.bool_:
            return {"sum": MPI.MAX, "max": MPI.MAX, "bor": MPI.MAX, "product": MPI.MIN, "min": MPI.MIN,
                    "band": MPI.MIN, "bxor": MPI.BXOR}[op]
        return {"sum": MPI.SUM, "avg": MPI.SUM, "product": MPI.PROD, "min": MPI.MIN, "max": MPI.MAX,
                "band": MPI.BAND, "bor": MPI.BOR, "bxor": MPI.BXOR}[op]

    def _work(self, reqs, finish, what, keep=()):
        Testall = self.MPI.Request.Testall
        return Work(lambda: Testall(reqs), finish, what=what, group=self, keep=keep)

    # ------------------------------------------------------------------ collectives on arrays
    def all_reduce(self, arr, op="sum"):
        buf, writeback = self._stage(arr, op)
        req = self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self._mpi_op(op, arr.dtype))

        def finish():
            if op == "avg":
                buf[...] /= self.size
            writeback()

        return self._work([req], finish, f"all_reduce({op}, {arr.dtype}, {arr.size} elements)", (buf,))

    def reduce(self, arr, dst, op="sum"):
        buf, writeback = self._stage(arr, op)
        mop = self._mpi_op(op, arr.dtype)
        if self.rank == dst:
            req = self.comm.Ireduce(self.MPI.IN_PLACE, buf, op=mop, root=dst)
        else:
            req = self.comm.Ireduce(buf, None, op=mop, root=dst)

        def finish():
            if self.rank == dst:
                if op == "avg":
                    buf[...] /= self.size
                writeback()

        return self._work([req], finish, f"reduce({op}, dst={dst}, {arr.dtype}, {arr.size} elements)", (buf,))

    def broadcast(self, arr, src):
        buf, writeback = self._stage(arr)
        req = self.comm.Ibcast(buf, root=src)
        return self._work([req], writeback, f"broadcast(src={src}, {arr.dtype}, {arr.size} elements)", (buf,))

    def all_gather(self, outs, arr):
        """``outs[i]`` receives rank i's ``arr`` (sizes may differ from rank to rank)."""
        send, _ = self._stage(arr)
        counts = [int(o.size) for o in outs]
        displs = list(np.cumsum([0] + counts[:-1]))
        recv = np.empty(sum(counts), send.dtype)
        if len(set(counts)) == 1:
            req = self.comm.Iallgather(send, recv)
        else:
            req = self.comm.Iallgatherv(send, [recv, (counts, displs)])

        def finish():
            for o, d, c in zip(outs, displs, counts):
                _write_flat(o, recv[d:d + c])

        return self._work([req], finish, f"all_gather({arr.dtype}, counts {counts})", (send, recv))

    def reduce_scatter(self, out, ins, op="sum"):
        """``out`` = op over ranks of every rank's ``ins[self.rank]`` (the pieces may differ in size)."""
        counts = [int(i.size) for i in ins]
        staged = [self._stage(i)[0] for i in ins]
        send = np.concatenate(staged) if staged else np.empty(0)
        rbuf, writeback = self._stage(out)
        mop = self._mpi_op(op, out.dtype)
        if len(set(counts)) == 1:
            req = self.comm.Ireduce_scatter_block(send, rbuf, op=mop)
        else:
            req = self.comm.Ireduce_scatter(send, rbuf, recvcounts=counts, op=mop)

        def finish():
            if op == "avg":
                rbuf[...] /= self.size
            writeback()

        return self._work([req], finish, f"reduce_scatter({op}, {out.dtype}, counts {counts})", (send, rbuf))

    def gather(self, arr, outs, dst):
        send, _ = self._stage(arr)
        if self.rank == dst:
            counts = [int(o.size) for o in outs]
            displs = list(np.cumsum([0] + counts[:-1]))
            recv = np.empty(sum(counts), send.dtype)
            req = self.comm.Igatherv(send, [recv, (counts, displs)], root=dst)

            def finish():
                for o, d, c in zip(outs, displs, counts):
                    _write_flat(o, recv[d:d + c])

            keep = (send, recv)
        else:
            req = self.comm.Igatherv(send, None, root=dst)
            finish, keep = None, (send,)
        return self._work([req], finish, f"gather(dst={dst}, {arr.dtype}, {arr.size} elements)", keep)

    def scatter(self, arr, ins, src):
        rbuf, writeback = self._stage(arr)
        if self.rank == src:
            counts = [int(i.size) for i in ins]
            displs = list(np.cumsum([0] + counts[:-1]))
            send = np.concatenate([self._stage(i)[0] for i in ins]) if ins else np.empty(0, rbuf.dtype)
            req = self.comm.Iscatterv([send, (counts, displs)], rbuf, root=src)
            keep = (send, rbuf)
        else:
            req = self.comm.Iscatterv(None, rbuf, root=src)
            keep = (rbuf,)
        return self._work([req], writeback, f"scatter(src={src}, {arr.dtype}, {arr.size} elements)", keep)

    def barrier(self):
        return self._work([self.comm.Ibarrier()], None, "barrier")

    # ------------------------------------------------------------------ objects (JSON, never pickle)
    def all_gather_bytes(self, data: bytes):
        """Every rank's ``data`` (list of bytes, by rank), with the group's timeout."""
        n = np.array([len(data)], np.int64)
        sizes = np.empty(self.size, np.int64)
        self._work([self.comm.Iallgather(n, sizes)], None, "all_gather_object (sizes)").wait()
        counts = [int(s) for s in sizes]
        displs = list(np.cumsum([0] + counts[:-1]))
        send = np.frombuffer(data, np.uint8).copy() if data else np.empty(0, np.uint8)
        recv = np.empty(sum(counts), np.uint8)
        self._work([self.comm.Iallgatherv(send, [recv, (counts, displs)])], None, "all_gather_object").wait()
        return [recv[d:d + c].tobytes() for d, c in zip(displs, counts)]

    def broadcast_bytes(self, data, src):
        n = np.array([len(data) if self.rank == src else 0], np.int64)
        self._work([self.comm.Ibcast(n, root=src)], None, "broadcast_object_list (size)").wait()
        buf = np.frombuffer(data, np.uint8).copy() if self.rank == src else np.empty(int(n[0]), np.uint8)
        self._work([self.comm.Ibcast(buf, root=src)], None, "broadcast_object_list").wait()
        return buf.tobytes()


def _write_flat(out, flat):
    """Write a flat NumPy piece into ``out`` (NumPy or CuPy), restoring bool and dtype."""
    src = flat
    if out.dtype == np.bool_ and src.dtype == np.uint8:
        src = src.view(np.bool_)
    src = src.astype(out.dtype, copy=False).reshape(out.shape)
    if _is_numpy(out):
        out[...] = src
    else:
        import cupy

        out[...] = cupy.asarray(src)


class NonGroupMember(ProcessGroup):
    """What :func:`new_group` returns on ranks outside the group: collectives on it do nothing, ranks are -1."""

    backend = "none"

    def __init__(self):
        super().__init__(-1, -1)


# ---------------------------------------------------------------------- the default (world) group
_WORLD = None
_PREV_EXCEPTHOOK = None


def _require(group=None) -> ProcessGroup:
    if group is not None:
        return group
    if _WORLD is None:
        raise DistributedError(
            "the default process group is not initialised: call minigen.distributed.init_process_group('mpi') "
            "(or init_from_env()) first, and start the program with mpiexec -n N")
    return _WORLD


def _host_group(group):
    """The MPI group under ``group`` (itself for "mpi"; the bootstrap group for "nccl"): for small host-side
    collectives (counts, flags) that need no GPU."""
    return group if isinstance(group, MPIProcessGroup) else group.mpi


def is_mpi_available() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_nccl_available() -> bool:
    try:
        from cupy.cuda import nccl  # noqa: F401
    except Exception:
        return False
    return bool(getattr(nccl, "available", True))


def is_available() -> bool:
    """True when some backend can be used (PyTorch's ``torch.distributed.is_available``)."""
    return is_mpi_available()


def is_initialized() -> bool:
    return _WORLD is not None


def _mpi_world():
    if not is_mpi_available():
        raise DistributedError(
            "the 'mpi' backend needs mpi4py and an MPI library: pip install 'minigen[distributed]' "
            "(= pip install mpi4py mpich), then start the program with mpiexec -n N python ...")
    from mpi4py import MPI

    return MPI


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", *, device_id=None, abort_on_exception=True):
    """Join the world: every process started by ``mpiexec -n N`` calls this once (PyTorch's signature).

    ``backend``: ``"mpi"`` (default; CPU arrays) or ``"nccl"`` (one GPU per process, chosen by the process's
    rank on its node unless ``device_id`` is given). ``init_method``/``store``/``group_name`` exist for PyTorch
    compatibility and must be left unset: the MPI launcher already told every process who the others are.
    ``world_size``/``rank``, when given, are checked against MPI's. ``timeout`` (seconds or a ``timedelta``;
    default ``MINIGEN_DIST_TIMEOUT`` or 30 min) bounds every wait on a collective. With
    ``abort_on_exception`` (default) an uncaught exception on any rank prints its traceback and calls
    ``MPI_Abort``, which ends every rank of the job instead of leaving them blocked in a collective.
    """
    global _WORLD, _PREV_EXCEPTHOOK
    if _WORLD is not None:
        raise DistributedError("init_process_group was called twice: the default process group already exists "
                               "(call destroy_process_group() first)")
    backend = (backend or os.environ.get("MINIGEN_DIST_BACKEND") or "mpi").lower()
    if backend not in ("mpi", "nccl"):
        raise InvalidArgumentError(f"backend must be 'mpi' or 'nccl', got {backend!r} (minigen ships no transport "
                                   f"of its own: gloo/tcp stores are not supported)")
    if init_method not in (None, "env://") or store is not None:
        raise InvalidArgumentError("init_method/store are not used: start the processes with mpiexec, which "
                                   "tells every process the others' addresses")
    MPI = _mpi_world()
    world = MPIProcessGroup(MPI.COMM_WORLD.Dup(), timeout)
    if world_size not in (-1, None) and int(world_size) != world.size:
        world.destroy()
        raise InvalidArgumentError(f"world_size={world_size} but mpiexec started {world.size} processes")
    if rank not in (-1, None) and int(rank) != world.rank:
        world.destroy()
        raise InvalidArgumentError(f"rank={rank} but MPI gave this process rank {world.rank}")
    if backend == "nccl":
        from .nccl import NCCLProcessGroup

        try:
            world = NCCLProcessGroup(world, device_id=device_id)
        except BaseException:
            world.destroy()
            raise
    _WORLD = world
    if abort_on_exception and world.size > 1 and _PREV_EXCEPTHOOK is None:
        _PREV_EXCEPTHOOK = sys.excepthook
        sys.excepthook = _abort_on_uncaught
    return None


def _abort_on_uncaught(exc_type, exc, tb):
    """sys.excepthook while a multi-process group exists: report, then end the whole MPI job."""
    rank = _WORLD.rank if _WORLD is not None else "?"
    size = _WORLD.size if _WORLD is not None else "?"
    try:
        msg = (f"[minigen.distributed] rank {rank} of {size}: uncaught {exc_type.__name__}; aborting the MPI job "
               f"so that the other ranks do not wait for it forever\n"
               + "".join(traceback.format_exception(exc_type, exc, tb)))
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(2, msg.encode(errors="replace"))  # one write: the launcher forwards it whole
        time.sleep(0.5)  # give the launcher time to forward it before MPI_Abort tears the job down
    finally:
        from mpi4py import MPI

        MPI.COMM_WORLD.Abort(1)


def destroy_process_group(group=None):
    """Free the default group (or ``group``); MPI itself stays initialised until the interpreter exits."""
    global _WORLD, _PREV_EXCEPTHOOK
    if group is not None and group is not _WORLD:
        if hasattr(group, "destroy"):
            group.destroy()
        return
    if _WORLD is None:
        raise DistributedError("destroy_process_group: no default process group is initialised")
    _WORLD.destroy()
    _WORLD = None
    if _PREV_EXCEPTHOOK is not None:
        sys.excepthook = _PREV_EXCEPTHOOK
        _PREV_EXCEPTHOOK = None


def get_rank(group=None) -> int:
    """This process's rank in ``group`` (default: the world); -1 on a rank outside ``group``."""
    return _require(group).rank


def get_world_size(group=None) -> int:
    """Number of processes in ``group`` (default: the world); -1 on a rank outside ``group``."""
    return _require(group).size


def get_backend(group=None) -> str:
    return _require(group).backend


def get_local_rank() -> int:
    """This process's rank among the processes on its node (use it to pick a GPU)."""
    g = _require()
    mpi = g if isinstance(g, MPIProcessGroup) else g.mpi
    return mpi.local_rank


def new_group(ranks=None, timeout=None, backend=None):
    """A group of some of the world's ranks (all of them by default). Every rank of the world must call it,
    in the same order; ranks outside ``ranks`` get a :class:`NonGroupMember`."""
    world = _require()
    mpi = world if isinstance(world, MPIProcessGroup) else world.mpi
    ranks = list(range(world.size)) if ranks is None else sorted(int(r) for r in ranks)
    bad = [r for r in ranks if not 0 <= r < world.size]
    if bad or len(set(ranks)) != len(ranks):
        raise InvalidArgumentError(f"new_group: ranks {ranks} must be distinct ranks of a world of size {world.size}")
    member = world.rank in ranks
    comm = mpi.comm.Split(0 if member else mpi.MPI.UNDEFINED, key=world.rank)
    if not member:
        return NonGroupMember()
    group = MPIProcessGroup(comm, world.timeout if timeout is None else timeout, ranks)
    if (backend or world.backend) == "nccl":
        from .nccl import NCCLProcessGroup

        group = NCCLProcessGroup(group, device_id=getattr(world, "device_id", None))
    return group


def barrier(group=None, async_op=False):
    """Block until every rank of the group has reached this call (``async_op=True``: return a Work)."""
    g = _require(group)
    if isinstance(g, NonGroupMember):
        return None
    w = g.barrier()
    if async_op:
        return w
    w.wait()
    return None


def all_gather_object(object_list, obj, group=None):
    """``object_list[i]`` = rank i's ``obj``. Objects travel as JSON (no pickle): str, numbers, bool, None,
    lists and dicts with str keys."""
    g = _require(group)
    if isinstance(g, NonGroupMember):
        return None
    if len(object_list) != g.size:
        raise InvalidArgumentError(f"all_gather_object: object_list has {len(object_list)} entries, the group has "
                                   f"{g.size} ranks")
    mpi = g if isinstance(g, MPIProcessGroup) else g.mpi
    for i, b in enumerate(mpi.all_gather_bytes(_to_json(obj))):
        object_list[i] = json.loads(b.decode())
    return None


def broadcast_object_list(object_list, src=0, group=None):
    """Replace ``object_list``'s entries on every rank by rank ``src``'s (JSON, as in all_gather_object)."""
    g = _require(group)
    if isinstance(g, NonGroupMember):
        return None
    mpi = g if isinstance(g, MPIProcessGroup) else g.mpi
    data = mpi.broadcast_bytes(_to_json(list(object_list)) if g.rank == src else b"", src)
    got = json.loads(data.decode())
    if len(got) != len(object_list):
        raise InvalidArgumentError(f"broadcast_object_list: rank {src} sent {len(got)} objects, this rank's list "
                                   f"has {len(object_list)} entries")
    object_list[:] = got
    return None


def _to_json(obj) -> bytes:
    try:
        return json.dumps(obj, sort_keys=True).encode()
    except TypeError as e:
        raise InvalidArgumentError(f"object collectives carry JSON-serialisable objects only (no pickle): {e}")


# ---------------------------------------------------------------------- launch
_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK", "MPI_LOCALRANKID")
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


def launched_by_mpi() -> bool:
    """True when an MPI launcher (mpiexec/mpirun of MPICH, Open MPI, MVAPICH, Intel MPI; srun with PMI/PMIx)
    started this process: it sets one of PMI_RANK, PMIX_RANK, OMPI_COMM_WORLD_RANK, MV2_COMM_WORLD_RANK."""
    return any(v in os.environ for v in _RANK_VARS)


def env_world_size() -> int:
    """The world size the launcher announced (1 when not launched by MPI), read without initialising MPI."""
    for v in _SIZE_VARS:
        if v in os.environ:
            try:
                return int(os.environ[v])
            except ValueError:
                pass
    return 1


def init_from_env(backend=None, timeout=None, **kwargs) -> bool:
    """Join the MPI world if this process was started by an MPI launcher; do nothing otherwise.

    Returns True when the default process group exists afterwards (created now or earlier), False for a plain
    single-process run. Trainers call it once at start-up, so ``mpiexec -n N python -m minigen train ...`` runs N
    data-parallel replicas and ``python -m minigen train ...`` runs one, with the same code. ``backend`` defaults to
    ``MINIGEN_DIST_BACKEND`` or ``"mpi"``.
    """
    if is_initialized():
        return True
    if not launched_by_mpi():
        return False
    init_process_group(backend=backend, timeout=timeout, **kwargs)
    return True
