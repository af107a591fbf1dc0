"""The Python faces of the native kernels: the shared runtime and argument checks here, one module
per physics family (``qcdhpc.kernels.phi4``, later ``cl``, ``tov``, ...).

Arrays are numpy arrays or torch tensors (CUDA tensors / cupy arrays with a CUDA build) and cross
into C++ by DLPack, in place, without copies.  The device of an array picks the backend:
``_qcdhpc_cpu`` (OpenMP, always built) or ``_qcdhpc_cuda`` (built when nvcc was found), and its
device index the GPU (a tensor on ``cuda:1`` runs on GPU 1).  All arrays of one call must be on one
device.  Everything is checked here first so that mistakes raise a clear ``TypeError`` /
``ValueError`` naming the argument; the C++ layer (csrc/python/array_view.h) checks again, so
nothing reaches a kernel unchecked.  Nothing heavier than numpy is imported here: torch only when a
torch tensor is passed.
"""
from __future__ import annotations

import contextlib
import math
import os

import numpy as np

from .. import _qcdhpc_cpu as _cpu

try:  # the CUDA extension is optional: absent when built without nvcc
    from .. import _qcdhpc_cuda as _cuda
except ImportError:  # pragma: no cover - depends on the build
    _cuda = None

# Numerics version of each family's per-chain arithmetic (csrc/include/qcdhpc/<family>/version.h):
# chains continued under another version are not bit-identical to unbroken ones, so checkpoints
# record their family's version (docs/conventions.md, "Numerics versions").
NUMERICS_VERSIONS: dict[str, int] = {str(k): int(v) for k, v in dict(_cpu.numerics_versions).items()}
if _cuda is not None and {str(k): int(v) for k, v in dict(_cuda.numerics_versions).items()} != NUMERICS_VERSIONS:
    raise ImportError(f"qcdhpc: the CUDA module ({_cuda.__file__}) was built from other sources than the "
                      f"CPU module (numerics versions {dict(_cuda.numerics_versions)} vs {NUMERICS_VERSIONS}); "
                      "rebuild with `make build`")  # pragma: no cover

__all__ = [
    "NUMERICS_VERSIONS", "cuda_built", "available_devices", "cuda_device_count", "set_num_threads",
    "get_num_threads", "philox4x64_10", "empty_cache", "cache_stats", "local_rank", "local_device_index",
    "phi4", "cl",
]

_DEVICE_NAMES = {1: "cpu", 2: "cuda", 3: "cuda_host", 13: "cuda_managed"}
# Launcher variables holding the node-local rank, in the order they are read (Slurm, Open MPI,
# MPICH/Intel MPI, PMI-1/2, PMIx).
from ..run.ranks import LOCAL_RANK_VARIABLES, local_rank  # noqa: E402 (one definition, with MPI)


# ----------------------------------------------------------------- runtime --

def cuda_built() -> bool:
    """True if the CUDA extension was compiled into this installation."""
    return _cuda is not None


def cuda_device_count() -> int:
    """Visible CUDA devices (0 without a CUDA build, driver or GPU)."""
    return int(_cuda.device_count()) if _cuda is not None else 0


def available_devices() -> list[str]:
    """Devices the kernels can run on now: always 'cpu', plus 'cuda' with a GPU."""
    return ["cpu"] + (["cuda"] if cuda_device_count() > 0 else [])


def set_num_threads(n: int) -> None:
    """OpenMP threads of the CPU kernels."""
    if int(n) < 1:
        raise ValueError("number of threads must be >= 1")
    _cpu.set_num_threads(int(n))


def get_num_threads() -> int:
    return _cpu.get_num_threads()


def philox4x64_10(counter, key) -> tuple[int, int, int, int]:
    """One Philox4x64-10 block (the host instance of the device function)."""
    c = [int(x) for x in counter]
    k = [int(x) for x in key]
    if len(c) != 4 or len(k) != 2:
        raise ValueError("counter needs 4 words and key 2 words")
    return _cpu.philox4x64_10(*c, *k)


def empty_cache() -> None:
    """Give the cached CUDA scratch blocks back to the devices (a no-op without CUDA).

    Kernel calls take their scratch arrays from a caching pool (csrc/cuda/runtime_cuda.cpp), so
    repeated calls do not cudaMalloc/cudaFree; the cache is also emptied at exit."""
    if _cuda is not None:
        _cuda.empty_cache()


def cache_stats() -> dict[str, int]:
    """What the CUDA scratch cache holds: cached_bytes, in_use_bytes, device_allocs, reuses."""
    src = _cuda if _cuda is not None else _cpu
    return {str(k): int(v) for k, v in dict(src.cache_stats()).items()}


def local_device_index(n_devices: int | None = None, environ=None) -> int | None:
    """The GPU this process should use: its node-local MPI rank (``local_rank``) modulo the number of
    visible CUDA devices (``n_devices``, default ``cuda_device_count()``).  None when no launcher set a
    local rank or no CUDA device is visible.  E.g. ``torch.device("cuda", local_device_index())``."""
    rank = local_rank(environ)
    if rank is None:
        return None
    n = cuda_device_count() if n_devices is None else int(n_devices)
    return rank % n if n > 0 else None


# ------------------------------------------------------------------ checks --
# The argument checks every family's face uses; they mirror csrc/python/array_view.h (TensorSpec).

def is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def device_of(x, name: str) -> tuple[str, int]:
    """(device type, index) of a DLPack producer: ('cpu', 0), ('cuda', 1), ..."""
    if not hasattr(x, "__dlpack_device__"):
        raise TypeError(f"{name}: expected a numpy array or torch tensor (DLPack), got {type(x).__name__}")
    dev_type, index = x.__dlpack_device__()
    return _DEVICE_NAMES.get(int(dev_type), f"dlpack-device-{int(dev_type)}"), int(index)


def device_str(device: tuple[str, int]) -> str:
    return "cpu" if device[0] == "cpu" else f"{device[0]}:{device[1]}"


def backend_of(x, name: str):
    """The native module (``_qcdhpc_cpu`` / ``_qcdhpc_cuda``) for the device of ``x``."""
    dev, index = device_of(x, name)
    if dev == "cpu":
        return _cpu
    if dev == "cuda":
        if _cuda is None:
            raise RuntimeError(f"{name} is a CUDA array but qcdhpc was built without CUDA "
                               "(no nvcc at build time); move it to the CPU or rebuild")
        n = _cuda.device_count()
        if n == 0:
            raise RuntimeError(f"{name} is a CUDA array but no CUDA device is usable")
        if not 0 <= index < n:
            raise ValueError(f"{name} is on cuda:{index} but only {n} CUDA device(s) are visible")
        return _cuda
    raise ValueError(f"{name}: arrays on device '{dev}' are not supported (cpu or cuda)")


def dtype_name(x) -> str:
    return str(x.dtype).replace("torch.", "")


def _alternatives(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _extent_text(dims, min_extent) -> str:
    """'batch >= 1 and L0, L1 >= 2': consecutive axes with the same minimum grouped."""
    groups: list[tuple[list[str], int]] = []
    for d, m in zip(dims, min_extent):
        if groups and groups[-1][1] == m:
            groups[-1][0].append(d)
        else:
            groups.append(([d], m))
    return " and ".join(f"{', '.join(ds)} >= {m}" for ds, m in groups)


def check_array(x, name: str, *, dims, dtypes, min_extent=None, writable: bool = True):
    """Check ``x`` like a TensorSpec (name, axis names, allowed dtypes, minimum extents): device, dtype,
    rank, extents, layout (and, for in-place kernels, writability).  Returns its backend module."""
    be = backend_of(x, name)
    if dtype_name(x) not in dtypes:
        raise TypeError(f"{name}: dtype must be {_alternatives(dtypes)}, got {dtype_name(x)}")
    shape = tuple(x.shape)
    if len(shape) != len(dims):
        raise ValueError(f"{name}: expected shape ({', '.join(dims)}{',' if len(dims) == 1 else ''}), got {shape}")
    if min_extent is not None and any(s < m for s, m in zip(shape, min_extent)):
        raise ValueError(f"{name}: need {_extent_text(dims, min_extent)}, got {shape}")
    if is_torch(x):
        if not x.is_contiguous():
            raise ValueError(f"{name}: tensor must be contiguous (call .contiguous())")
        if writable and x.requires_grad:
            raise ValueError(f"{name}: kernels update in place; pass a tensor without requires_grad")
    elif isinstance(x, np.ndarray):
        if not x.flags.c_contiguous:
            raise ValueError(f"{name}: array must be C-contiguous (np.ascontiguousarray)")
        if writable and not x.flags.writeable:
            raise ValueError(f"{name}: array is read-only")
    return be


def check_same_device(x, ref, name: str, ref_name: str = "phi") -> None:
    """All arrays of one call live on one device (type and index)."""
    dx, dr = device_of(x, name), device_of(ref, ref_name)
    if dx[0] != dr[0]:
        raise ValueError(f"{name}: must be on the same device as {ref_name} "
                         f"({device_str(dx)} vs {device_str(dr)})")
    if dx != dr:
        raise ValueError(f"{name}: is on {device_str(dx)} but {ref_name} is on {device_str(dr)}; "
                         "all arrays of one call must be on one device")


def check_like(x, ref, name: str, ref_name: str = "phi", **spec) -> None:
    """``x`` passes ``check_array(**spec)`` and has the shape, dtype and device of ``ref``."""
    check_same_device(x, ref, name, ref_name)
    check_array(x, name, **spec)
    if tuple(x.shape) != tuple(ref.shape) or dtype_name(x) != dtype_name(ref):
        raise ValueError(f"{name}: must match {ref_name}'s shape {tuple(ref.shape)} and dtype "
                         f"{dtype_name(ref)}, got {tuple(x.shape)} {dtype_name(x)}")


def finite(value, name: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value}")
    return v


def uint64(value, name: str) -> int:
    v = int(value)
    if not 0 <= v < 2**64:
        raise ValueError(f"{name} must be in [0, 2^64), got {value}")
    return v


def empty_like_device(ref, shape, dtype: str):
    """An output array of the same library and device (index included) as ``ref``."""
    if is_torch(ref):
        import torch

        return torch.empty(shape, dtype=getattr(torch, dtype), device=ref.device)
    return np.empty(shape, dtype=dtype)


def on_device(x):
    """Context in which ``x``'s GPU is current for its library (torch exports a CUDA tensor by DLPack
    only while its device is current); a no-op for CPU arrays."""
    if is_torch(x) and x.device.type == "cuda":
        import torch

        return torch.cuda.device(x.device)
    return contextlib.nullcontext()


from . import phi4  # noqa: E402  (the family faces use the checks above)
from . import cl  # noqa: E402
