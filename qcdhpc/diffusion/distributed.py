"""torch.distributed set-up for training: DDP under torchrun or srun, a single process otherwise.

Detected from the launcher's environment: torchrun sets WORLD_SIZE/RANK/LOCAL_RANK/MASTER_ADDR/
MASTER_PORT; under srun we use SLURM_NTASKS/SLURM_PROCID/SLURM_LOCALID and need MASTER_ADDR exported
by the job script (e.g. the first host of `scontrol show hostnames $SLURM_JOB_NODELIST`; MASTER_PORT
defaults to 29500).  Backend: nccl on CUDA, gloo on CPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class DistInfo:
    enabled: bool
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name, default=0):
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else default


def launcher() -> tuple[int, int, int] | None:
    """(world_size, rank, local_rank) when launched with several ranks, else None."""
    if _env_int("WORLD_SIZE", 1) > 1:
        return _env_int("WORLD_SIZE"), _env_int("RANK"), _env_int("LOCAL_RANK")
    if _env_int("SLURM_NTASKS", 1) > 1 and "SLURM_PROCID" in os.environ and os.environ.get("MASTER_ADDR"):
        return _env_int("SLURM_NTASKS"), _env_int("SLURM_PROCID"), _env_int("SLURM_LOCALID")
    return None


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda requested but torch sees no CUDA device")
    return dev


def setup(device: str = "auto") -> DistInfo:
    dev = resolve_device(device)
    found = launcher()
    if found is None:
        return DistInfo(False, 0, 1, 0, dev)
    world, rank, local = found
    import torch.distributed as dist

    if dev.type == "cuda":
        dev = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    os.environ.setdefault("MASTER_PORT", "29500")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", init_method="env://",
                                rank=rank, world_size=world)
    return DistInfo(True, rank, world, local, dev)


def all_gather_object(obj, info: DistInfo) -> list:
    if not info.enabled:
        return [obj]
    import torch.distributed as dist

    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def mean_over_ranks(value: float, info: DistInfo) -> float:
    return sum(all_gather_object(float(value), info)) / info.world_size


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
