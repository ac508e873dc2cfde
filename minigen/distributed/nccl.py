"""The ``"nccl"`` backend: NCCL through ``cupy.cuda.nccl``, one GPU per process.

Start-up (as ChainerMN did): MPI gives every process its rank; rank 0 asks NCCL for a unique id
(``nccl.get_unique_id()``) and broadcasts it over MPI; each process then creates its
``NcclCommunicator(world_size, uid, rank)`` on the GPU picked by its rank on its node. The bytes of the
collectives then travel by NCCL (NVLink / PCIe / InfiniBand / its own sockets between nodes), not by MPI.

Collectives are enqueued on a dedicated CUDA stream that first waits for the current stream's work (so the
inputs are ready); the returned :class:`~minigen.distributed.Work` completes when an event recorded after the
NCCL call has fired, and ``wait()`` also makes the current stream wait for it. Tensors must be CuPy arrays on this
process's GPU (a CPU tensor raises DeviceError). NCCL has no int16/bool/bitwise ops: int16 travels as int32,
bool as uint8 (OR = MAX, AND = MIN); BAND/BOR/BXOR raise. Uneven all_gather/reduce_scatter and gather/scatter
are built from grouped broadcasts/reduces/send/recv.

Status: written against CuPy's documented ``cupy.cuda.nccl`` API and importable without a GPU; it has NOT been
run on a GPU yet (see docs/DISTRIBUTED.md).
"""
from __future__ import annotations

import numpy as np

from ..errors import DeviceError, InvalidArgumentError
from .process_group import ProcessGroup, Work


class NCCLProcessGroup(ProcessGroup):
    backend = "nccl"

    def __init__(self, mpi_group, device_id=None):
        try:
            import cupy
            from cupy.cuda import nccl
        except Exception as e:  # pragma: no cover - needs CuPy
            raise DeviceError(f"the 'nccl' backend needs CuPy with NCCL (pip install 'minigen[gpu]'): {e}")
        self.cupy, self.nccl, self.mpi = cupy, nccl, mpi_group
        super().__init__(mpi_group.rank, mpi_group.size, mpi_group.timeout, mpi_group.ranks)
        try:
            ndev = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # no driver / no device
            raise DeviceError(f"the 'nccl' backend needs a GPU; CUDA reports: {e}") from None
        if ndev == 0:  # pragma: no cover
            raise DeviceError("the 'nccl' backend needs a GPU; this process sees none")
        self.device_id = int(device_id) if device_id is not None else mpi_group.local_rank % ndev
        cupy.cuda.Device(self.device_id).use()
        uid = nccl.get_unique_id() if self.rank == 0 else ()
        uid = tuple(np.frombuffer(mpi_group.broadcast_bytes(np.asarray(uid, np.int8).tobytes()
                                                            if self.rank == 0 else b"", 0), np.int8).tolist())
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._types = {np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
                       np.dtype(np.float64): nccl.NCCL_FLOAT64, np.dtype(np.int8): nccl.NCCL_INT8,
                       np.dtype(np.uint8): nccl.NCCL_UINT8, np.dtype(np.int32): nccl.NCCL_INT32,
                       np.dtype(np.int64): nccl.NCCL_INT64}

    def destroy(self):
        if getattr(self, "comm", None) is not None:
            self.comm.destroy()
            self.comm = None
        self.mpi.destroy()

    @property
    def local_rank(self):
        return self.mpi.local_rank

    def dup(self, timeout=None):
        return NCCLProcessGroup(self.mpi.dup(timeout), device_id=self.device_id)

    # ------------------------------------------------------------------ helpers
    def _check(self, arr):
        if type(arr) is np.ndarray:
            raise DeviceError("the 'nccl' backend works on GPU tensors; this tensor is on the CPU "
                              "(move it with .cuda(), or use the 'mpi' backend for CPU tensors)")
        if arr.device.id != self.device_id:
            raise DeviceError(f"tensor on cuda:{arr.device.id} but this process's NCCL communicator is on "
                              f"cuda:{self.device_id}")

    def _buf(self, arr):
        """(contiguous flat buffer, NCCL type, write-back)."""
        cp = self.cupy
        self._check(arr)
        buf = arr if arr.flags.c_contiguous else cp.ascontiguousarray(arr)
        back = None
        if buf.dtype == np.bool_:
            buf = buf.view(np.uint8)
        elif buf.dtype == np.int16:
            back, buf = buf.dtype, buf.astype(np.int32)
        flat = buf.reshape(-1)
        same = back is None and flat.data.ptr == arr.data.ptr and arr.flags.c_contiguous

        def writeback():
            if not same:
                src = flat if back is None else flat.astype(back)
                if arr.dtype == np.bool_ and src.dtype == np.uint8:
                    src = src.view(np.bool_)
                arr[...] = src.reshape(arr.shape)

        return flat, self._types[flat.dtype], writeback

    def _op(self, op, dtype):
        n = self.nccl
        if op in ("band", "bor", "bxor"):
            raise InvalidArgumentError(f"NCCL has no bitwise reduction (ReduceOp.{op.upper()})")
        if np.dtype(dtype) == np.bool_:
            return {"sum": n.NCCL_MAX, "max": n.NCCL_MAX, "product": n.NCCL_MIN, "min": n.NCCL_MIN}[op]
        if op == "avg":
            return getattr(n, "NCCL_AVG", n.NCCL_SUM)
        return {"sum": n.NCCL_SUM, "product": n.NCCL_PROD, "min": n.NCCL_MIN, "max": n.NCCL_MAX}[op]

    def _launch(self, what, issue, finish=None, keep=()):
        cp = self.cupy
        cur = cp.cuda.get_current_stream()
        self.stream.wait_event(cur.record())
        issue(self.stream.ptr)
        done = self.stream.record()

        def fin():
            cp.cuda.get_current_stream().wait_event(done)
            if finish is not None:
                with self.stream:
                    finish()

        return Work(lambda: done.done, fin, what=what, group=self, keep=keep)

    # ------------------------------------------------------------------ collectives on CuPy arrays
    def all_reduce(self, arr, op="sum"):
        flat, t, writeback = self._buf(arr)
        nop = self._op(op, arr.dtype)
        emulate_avg = op == "avg" and not hasattr(self.nccl, "NCCL_AVG")

        def finish():
            if emulate_avg:
                flat[...] /= self.size
            writeback()

        return self._launch(f"all_reduce({op}, {arr.dtype}, {arr.size} elements)",
                            lambda s: self.comm.allReduce(flat.data.ptr, flat.data.ptr, flat.size, t, nop, s),
                            finish, (flat,))

    def reduce(self, arr, dst, op="sum"):
        flat, t, writeback = self._buf(arr)
        nop = self._op(op, arr.dtype)
        emulate_avg = op == "avg" and not hasattr(self.nccl, "NCCL_AVG")

        def finish():
            if self.rank == dst:
                if emulate_avg:
                    flat[...] /= self.size
                writeback()

        return self._launch(f"reduce({op}, dst={dst})",
                            lambda s: self.comm.reduce(flat.data.ptr, flat.data.ptr, flat.size, t, nop, dst, s),
                            finish, (flat,))

    def broadcast(self, arr, src):
        flat, t, writeback = self._buf(arr)
        return self._launch(f"broadcast(src={src})",
                            lambda s: self.comm.broadcast(flat.data.ptr, flat.data.ptr, flat.size, t, src, s),
                            writeback, (flat,))

    def all_gather(self, outs, arr):
        cp = self.cupy
        send, t, _ = self._buf(arr)
        counts = [int(o.size) for o in outs]
        displs = list(np.cumsum([0] + counts[:-1]))
        recv = cp.empty(sum(counts), send.dtype)

        def issue(s):
            if len(set(counts)) == 1:
                self.comm.allGather(send.data.ptr, recv.data.ptr, counts[0], t, s)
                return
            self.nccl.groupStart()  # uneven pieces: every rank broadcasts its own piece
            for r in range(self.size):
                src = send.data.ptr if r == self.rank else recv[displs[r]:].data.ptr
                self.comm.broadcast(src, recv[displs[r]:].data.ptr, counts[r], t, r, s)
            self.nccl.groupEnd()

        def finish():
            for o, d, c in zip(outs, displs, counts):
                piece = recv[d:d + c]
                o[...] = (piece.view(np.bool_) if o.dtype == np.bool_ else piece.astype(o.dtype)).reshape(o.shape)

        return self._launch("all_gather", issue, finish, (send, recv))

    def reduce_scatter(self, out, ins, op="sum"):
        cp = self.cupy
        for i in ins:
            self._check(i)
        counts = [int(i.size) for i in ins]
        send = cp.concatenate([self._buf(i)[0] for i in ins])
        rbuf, t, writeback = self._buf(out)
        nop = self._op(op, out.dtype)
        displs = list(np.cumsum([0] + counts[:-1]))
        emulate_avg = op == "avg" and not hasattr(self.nccl, "NCCL_AVG")

        def issue(s):
            if len(set(counts)) == 1:
                self.comm.reduceScatter(send.data.ptr, rbuf.data.ptr, counts[0], t, nop, s)
                return
            self.nccl.groupStart()  # uneven pieces: one reduce per destination rank
            for r in range(self.size):
                dst = rbuf.data.ptr if r == self.rank else send[displs[r]:].data.ptr
                self.comm.reduce(send[displs[r]:].data.ptr, dst, counts[r], t, nop, r, s)
            self.nccl.groupEnd()

        def finish():
            if emulate_avg:
                rbuf[...] /= self.size
            writeback()

        return self._launch(f"reduce_scatter({op})", issue, finish, (send, rbuf))

    def gather(self, arr, outs, dst):
        cp = self.cupy
        send, t, _ = self._buf(arr)
        bufs = [cp.empty(int(o.size), send.dtype) for o in outs] if self.rank == dst else []

        def issue(s):
            self.nccl.groupStart()
            if self.rank == dst:
                for r, b in enumerate(bufs):
                    if r == dst:
                        b[...] = send
                    else:
                        self.comm.recv(b.data.ptr, b.size, t, r, s)
            else:
                self.comm.send(send.data.ptr, send.size, t, dst, s)
            self.nccl.groupEnd()

        def finish():
            for o, b in zip(outs or [], bufs):
                o[...] = (b.view(np.bool_) if o.dtype == np.bool_ else b.astype(o.dtype)).reshape(o.shape)

        return self._launch(f"gather(dst={dst})", issue, finish, (send, *bufs))

    def scatter(self, arr, ins, src):
        rbuf, t, writeback = self._buf(arr)
        sends = [self._buf(i)[0] for i in ins] if self.rank == src else []

        def issue(s):
            self.nccl.groupStart()
            if self.rank == src:
                for r, b in enumerate(sends):
                    if r == src:
                        rbuf[...] = b
                    else:
                        self.comm.send(b.data.ptr, b.size, t, r, s)
            else:
                self.comm.recv(rbuf.data.ptr, rbuf.size, t, src, s)
            self.nccl.groupEnd()

        return self._launch(f"scatter(src={src})", issue, writeback, (rbuf, *sends))

    def barrier(self):
        self.cupy.cuda.get_current_stream().synchronize()
        return self.mpi.barrier()
