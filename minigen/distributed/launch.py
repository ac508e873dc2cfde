"""Start a program as N data-parallel processes, by handing it to ``mpiexec`` (minigen starts no processes of
its own and opens no connections).

From the shell::

    python -m minigen.distributed.launch -n 2 train.py --lr 1e-3            # = mpiexec -n 2 python train.py ...
    python -m minigen.distributed.launch -n 16 --hostfile hosts -m minigen train gpt --batch-size 1

From a program that wants a ``--ddp N`` option (the CLI)::

    from minigen.distributed.launch import relaunch
    relaunch(args.ddp)           # not under mpiexec yet: re-executes this exact command under mpiexec -n N
    dist.init_from_env()         # in each of the N processes: join the world

``relaunch`` uses ``sys.orig_argv`` (the command line as typed, ``-m`` included), so ``python -m minigen ...``
is re-run the same way; in the N processes ``launched_by_mpi()`` is true and ``relaunch`` returns at once.
A hostfile lists one machine per line (MPICH: ``host:slots``; Open MPI: ``host slots=N``); see docs/DISTRIBUTED.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from ..errors import InvalidArgumentError
from .errors import DistributedError
from .process_group import launched_by_mpi


def mpiexec_path() -> str:
    """The ``mpiexec`` next to this Python (the one ``pip install mpich`` put in the virtual environment) or on
    PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    exe = here if os.path.exists(here) else shutil.which("mpiexec")
    if exe is None:
        raise DistributedError("mpiexec not found: pip install 'minigen[distributed]' (mpi4py + mpich), or put an "
                               "MPI installation's mpiexec on PATH")
    return exe


def _is_open_mpi(exe) -> bool:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    except Exception:
        return False
    return "Open MPI" in out or "OpenRTE" in out


def mpiexec_command(nproc, program_argv, hostfile=None, python=None):
    """``[mpiexec, -n, N, (-hostfile F), python, *program_argv]``; Open MPI also gets ``--oversubscribe`` when
    N exceeds this machine's cores and there is no hostfile."""
    if not isinstance(nproc, int) or isinstance(nproc, bool) or nproc < 1:
        raise InvalidArgumentError(f"the number of processes must be an int >= 1, got {nproc!r}")
    exe = mpiexec_path()
    cmd = [exe, "-n", str(nproc)]
    if hostfile is not None:
        if not os.path.isfile(hostfile):
            raise InvalidArgumentError(f"hostfile {hostfile!r} does not exist")
        cmd += ["-hostfile", hostfile]
    if _is_open_mpi(exe):
        if hostfile is None and nproc > (os.cpu_count() or 1):
            cmd.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
    return cmd + [python or sys.executable] + list(program_argv)


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def relaunch(nproc, hostfile=None, argv=None, threads_per_process=None):
    """Re-execute the current command under ``mpiexec -n nproc`` unless MPI already launched this process.

    Returns False at once inside an MPI job (or when ``nproc`` is 1 and there is no hostfile); otherwise it
    replaces this process by mpiexec (never returns). ``argv`` defaults to ``sys.orig_argv[1:]`` (the arguments
    after the Python executable: ``-m minigen train ...`` or ``script.py ...``). ``threads_per_process``: the
    thread count given to each process through OMP/OpenBLAS/MKL/Numba's variables, unless already set (the
    processes of one machine otherwise fight for its cores)."""
    if launched_by_mpi() or (nproc == 1 and hostfile is None):
        return False
    argv = list(getattr(sys, "orig_argv", [sys.executable] + sys.argv)[1:] if argv is None else argv)
    cmd = mpiexec_command(int(nproc), argv, hostfile)
    env = dict(os.environ)
    if threads_per_process is not None:
        for v in THREAD_VARS:
            env.setdefault(v, str(int(threads_per_process)))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minigen.distributed.launch",
                                description="Run a Python program as N data-parallel processes under mpiexec.")
    p.add_argument("-n", "--nproc", type=int, required=True, help="number of processes")
    p.add_argument("--hostfile", default=None, help="machines to run on (default: this one)")
    p.add_argument("-m", dest="module", default=None, help="run a module (python -m MODULE)")
    p.add_argument("program", nargs=argparse.REMAINDER, help="script and its arguments (or the module's)")
    a = p.parse_args(argv)
    prog = (["-m", a.module] if a.module else []) + a.program
    if not prog:
        p.error("give a script or -m MODULE")
    cmd = mpiexec_command(a.nproc, prog, a.hostfile)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
