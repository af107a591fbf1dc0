"""MPI rank/size detection that degrades to a single process.

mpi4py is imported lazily, and only when the launcher says we are one of several ranks: importing
mpi4py initialises MPI, which is slow and, on some clusters, fails outside `mpirun`/`srun`.  Without a
launcher (or with a launcher reporting size 1) everything runs as rank 0 of 1 with no MPI at all.
"""
from __future__ import annotations

import os
import sys
import traceback

# Environment variables by which common launchers announce the world size.
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS")


def launcher_size() -> int:
    """World size announced by the launcher's environment (1 when not launched by MPI)."""
    for var in _SIZE_VARS:
        value = os.environ.get(var)
        if value and value.isdigit():
            # SLURM_NTASKS is also set inside an sbatch script for the batch step itself, where the
            # CLI runs as one process; only trust it together with a per-task rank variable of srun.
            if var == "SLURM_NTASKS" and "SLURM_PROCID" not in os.environ:
                continue
            return int(value)
    return 1


class MPIUnavailable(RuntimeError):
    """Started by an MPI launcher but mpi4py cannot be imported (a refusal: exit 2)."""


# Per-node rank variables of the common launchers (Slurm srun, Open MPI, MPICH/Hydra, PMIx).
LOCAL_RANK_VARIABLES = ("SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK",
                        "PMIX_LOCAL_RANK")
_LOCAL_SIZE_VARS = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE", "PMIX_LOCAL_SIZE",
                    "SLURM_NTASKS_PER_NODE")


def _first_int(names, env) -> int | None:
    for var in names:
        value = env.get(var, "").strip()
        if value.isdigit():
            return int(value)
    return None


def local_rank(environ=None) -> int | None:
    """The node-local rank set by the launcher (srun, mpirun, mpiexec), None outside one."""
    return _first_int(LOCAL_RANK_VARIABLES, os.environ if environ is None else environ)


def local_size() -> int:
    """Ranks sharing this node (1 when unknown): memory estimates are per node."""
    if launcher_size() <= 1:
        return 1
    return _first_int(_LOCAL_SIZE_VARS, os.environ) or 1


def torch_device(kind: str):
    """A torch device of `kind` for this rank: under an MPI launcher, CUDA rank r of a node gets GPU
    (local rank mod device count), so the ranks of a node do not all share GPU 0."""
    import torch

    if kind != "cuda":
        return torch.device(kind)
    lr = local_rank()
    n = torch.cuda.device_count()
    return torch.device("cuda", lr % n) if lr is not None and n > 0 else torch.device("cuda")


class Comm:
    """The few collective operations the library needs, with serial fall-backs for size 1."""

    def __init__(self, mpi_comm=None):
        self._comm = mpi_comm
        self.rank = mpi_comm.Get_rank() if mpi_comm is not None else 0
        self.size = mpi_comm.Get_size() if mpi_comm is not None else 1

    def barrier(self) -> None:
        if self._comm is not None:
            self._comm.Barrier()

    def bcast(self, obj, root: int = 0):
        return self._comm.bcast(obj, root=root) if self._comm is not None else obj

    def allgather(self, obj) -> list:
        return self._comm.allgather(obj) if self._comm is not None else [obj]

    def any(self, flag: bool) -> bool:
        """Logical OR over ranks (used so every rank takes the same checkpoint/stop decision)."""
        if self._comm is None:
            return bool(flag)
        from mpi4py import MPI

        return bool(self._comm.allreduce(bool(flag), op=MPI.LOR))

    def abort(self, code: int = 1) -> None:
        if self._comm is not None:
            self._comm.Abort(code)

    def __repr__(self) -> str:
        return f"Comm(rank={self.rank}, size={self.size}, mpi={self._comm is not None})"


_WORLD: Comm | None = None


def world() -> Comm:
    """The process's world communicator (created on first call)."""
    global _WORLD
    if _WORLD is None:
        size = launcher_size()
        if size <= 1:
            _WORLD = Comm()
        else:
            try:
                from mpi4py import MPI
            except ImportError as exc:
                # Running R copies without MPI would make every copy compute (and write) chain block 0.
                raise MPIUnavailable(
                    f"started as one of {size} MPI ranks, but mpi4py is not installed: "
                    "pip install 'qcdhpc[mpi]' (or run without mpirun/srun)") from exc
            _WORLD = Comm(MPI.COMM_WORLD)
    return _WORLD


def split_range(n: int, size: int, rank: int) -> tuple[int, int]:
    """Contiguous block [begin, end) of n items owned by `rank`; the first n % size ranks get one extra.

    E.g. 10 chains on 4 ranks: [0,3) [3,6) [6,8) [8,10).
    """
    q, r = divmod(n, size)
    begin = rank * q + min(rank, r)
    return begin, begin + q + (1 if rank < r else 0)


def collective(comm: Comm, fn, *args, **kwargs):
    """fn(*args, **kwargs) on every rank.  Under MPI an exception on one rank that the others do not
    raise too would leave them waiting in the next collective forever, so it ends all ranks with
    MPI_Abort (its exit code: 75 for a signal, 1 otherwise).  Exceptions marked `collective` (every
    rank raises them together: a collective stop or failure decision) and refusals are re-raised."""
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        if comm.size > 1 and not getattr(exc, "collective", False) and not isinstance(exc, SystemExit):
            if not hasattr(exc, "exit_code"):
                traceback.print_exc()
            else:
                sys.stderr.write(f"qcdhpc: {exc}\n")
            sys.stderr.write(f"rank {comm.rank}: aborting all {comm.size} ranks\n")
            sys.stderr.flush()
            comm.abort(getattr(exc, "exit_code", 1))
        raise
