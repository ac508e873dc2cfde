"""``minigen.distributed``: data-parallel training across processes and machines, on MPI or NCCL.

PyTorch's ``torch.distributed`` names and semantics, built on existing communication libraries (minigen
ships no transport of its own):

- backend ``"mpi"``: ``mpi4py`` over whatever MPI started the job (``pip install 'minigen[distributed]'``
  installs mpi4py + MPICH, ``mpiexec`` included). CPU tensors.
- backend ``"nccl"``: NCCL through ``cupy.cuda.nccl``, one GPU per process, bootstrapped over MPI.

Start N processes with ``mpiexec -n N python train.py``; in each::

    import minigen.distributed as dist
    dist.init_process_group("mpi")          # or dist.init_from_env(): only if started by mpiexec
    model = mg.nn.parallel.DistributedDataParallel(model)
    sampler = mg.data.DistributedSampler(dataset)   # each rank its shard

Collectives (in place on Tensors; ``async_op=True`` returns a :class:`Work` with ``wait()``):
``all_reduce`` (SUM/AVG/PRODUCT/MIN/MAX), ``reduce``, ``broadcast``, ``all_gather`` / ``all_gather_into_tensor``,
``reduce_scatter`` / ``reduce_scatter_tensor``, ``gather``, ``scatter``, ``barrier``; object collectives
(``all_gather_object``, ``broadcast_object_list``) carry JSON, never pickle. Every wait is bounded by the group's
timeout; an uncaught exception on any rank aborts the whole MPI job (see :func:`init_process_group`).
``python -m minigen.distributed.launch -n N script.py`` / :func:`minigen.distributed.launch.relaunch` hand a program
to mpiexec. See docs/DISTRIBUTED.md.
"""
from .errors import DistributedError  # noqa: F401
from .process_group import (  # noqa: F401
    ReduceOp, Work, ProcessGroup, MPIProcessGroup, NonGroupMember, init_process_group, destroy_process_group,
    is_initialized, is_available, is_mpi_available, is_nccl_available, get_rank, get_world_size, get_backend,
    get_local_rank, new_group, barrier, all_gather_object, broadcast_object_list, init_from_env, launched_by_mpi,
    env_world_size,
)
from .collectives import (  # noqa: F401
    all_reduce, reduce, broadcast, all_gather, all_gather_into_tensor, reduce_scatter, reduce_scatter_tensor,
    gather, scatter,
)
from . import functional  # noqa: F401

__all__ = [
    "DistributedError", "ReduceOp", "Work", "ProcessGroup", "MPIProcessGroup", "NonGroupMember",
    "init_process_group", "destroy_process_group", "is_initialized", "is_available", "is_mpi_available",
    "is_nccl_available", "get_rank", "get_world_size", "get_backend", "get_local_rank", "new_group", "barrier",
    "all_gather_object", "broadcast_object_list", "init_from_env", "launched_by_mpi", "env_world_size",
    "all_reduce", "reduce", "broadcast", "all_gather", "all_gather_into_tensor", "reduce_scatter",
    "reduce_scatter_tensor", "gather", "scatter", "functional",
]
