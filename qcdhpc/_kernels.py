"""The Python face of the native kernels: argument checks, allocation, dispatch.

Arrays are numpy arrays or torch tensors (CUDA tensors / cupy arrays with a CUDA
build) and cross into C++ by DLPack, in place, without copies.  The device of
the array picks the backend: ``_qcdhpc_cpu`` (OpenMP, always built) or
``_qcdhpc_cuda`` (built when nvcc was found).  Everything is checked here first
so that mistakes raise a clear ``TypeError``/``ValueError`` naming the argument;
the C++ layer checks again, so nothing reaches a kernel unchecked.

Random numbers follow docs/conventions.md: chain b of a call uses the Philox
key (seed, chain_offset + b); trajectory t uses counters (blk, t, purpose, 0).
"""
from __future__ import annotations

import math

import numpy as np

from . import _qcdhpc_cpu as _cpu

try:  # the CUDA extension is optional: absent when built without nvcc
    from . import _qcdhpc_cuda as _cuda
except ImportError:  # pragma: no cover - depends on the build
    _cuda = None

# Version of the per-chain arithmetic (csrc/include/qcdhpc/config.h, kNumericsVersion): chains
# continued under another version are not bit-identical to unbroken ones, so checkpoints record it.
NUMERICS_VERSION = int(_cpu.numerics_version)
if _cuda is not None and int(_cuda.numerics_version) != NUMERICS_VERSION:  # pragma: no cover
    raise ImportError(f"qcdhpc: the CUDA module ({_cuda.__file__}) was built from other sources than "
                      f"the CPU module (numerics version {_cuda.numerics_version} vs "
                      f"{NUMERICS_VERSION}); rebuild with `make build`")

__all__ = [
    "NUMERICS_VERSION", "available_devices", "cuda_built", "set_num_threads", "get_num_threads", "philox4x64_10",
    "fill_normal", "action", "force", "md_integrate", "hmc_trajectories",
]

INTEGRATORS = ("leapfrog", "omelyan")
RNG_MOMENTUM, RNG_ACCEPT = 0, 1
_DEVICE_NAMES = {1: "cpu", 2: "cuda", 3: "cuda_host", 13: "cuda_managed"}


def cuda_built() -> bool:
    """True if the CUDA extension was compiled into this installation."""
    return _cuda is not None


def available_devices() -> list[str]:
    """Devices the kernels can run on now: always 'cpu', plus 'cuda' with a GPU."""
    devs = ["cpu"]
    if _cuda is not None and _cuda.device_count() > 0:
        devs.append("cuda")
    return devs


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


# ---------------------------------------------------------------- checks ----

def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _device_of(x, name: str) -> str:
    if not hasattr(x, "__dlpack_device__"):
        raise TypeError(f"{name}: expected a numpy array or torch tensor (DLPack), got {type(x).__name__}")
    dev_type, _ = x.__dlpack_device__()
    return _DEVICE_NAMES.get(int(dev_type), f"dlpack-device-{int(dev_type)}")


def _backend(x, name: str):
    dev = _device_of(x, name)
    if dev == "cpu":
        return _cpu
    if dev == "cuda":
        if _cuda is None:
            raise RuntimeError(f"{name} is a CUDA array but qcdhpc was built without CUDA "
                               "(no nvcc at build time); move it to the CPU or rebuild")
        if _cuda.device_count() == 0:
            raise RuntimeError(f"{name} is a CUDA array but no CUDA device is usable")
        return _cuda
    raise ValueError(f"{name}: arrays on device '{dev}' are not supported (cpu or cuda)")


def _dtype_name(x) -> str:
    return str(x.dtype).replace("torch.", "")


def _check_field(phi, name: str = "phi"):
    be = _backend(phi, name)
    if _dtype_name(phi) not in ("float32", "float64"):
        raise TypeError(f"{name}: dtype must be float32 or float64, got {_dtype_name(phi)}")
    shape = tuple(phi.shape)
    if len(shape) != 3:
        raise ValueError(f"{name}: expected shape (batch, L0, L1), got {shape}")
    if shape[0] < 1 or shape[1] < 2 or shape[2] < 2:
        raise ValueError(f"{name}: need batch >= 1 and L0, L1 >= 2, got {shape}")
    if _is_torch(phi):
        if not phi.is_contiguous():
            raise ValueError(f"{name}: tensor must be contiguous (call .contiguous())")
        if phi.requires_grad:
            raise ValueError(f"{name}: kernels update in place; pass a tensor without requires_grad")
    elif isinstance(phi, np.ndarray):
        if not phi.flags.c_contiguous:
            raise ValueError(f"{name}: array must be C-contiguous (np.ascontiguousarray)")
        if not phi.flags.writeable:
            raise ValueError(f"{name}: array is read-only")
    return be


def _check_like(x, phi, name: str):
    _check_field(x, name)
    if tuple(x.shape) != tuple(phi.shape) or _dtype_name(x) != _dtype_name(phi):
        raise ValueError(f"{name}: must match the field's shape {tuple(phi.shape)} and dtype "
                         f"{_dtype_name(phi)}, got {tuple(x.shape)} {_dtype_name(x)}")
    if _device_of(x, name) != _device_of(phi, "phi"):
        raise ValueError(f"{name}: must be on the same device as phi")


def _finite(value, name: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value}")
    return v


def _uint64(value, name: str) -> int:
    v = int(value)
    if not 0 <= v < 2**64:
        raise ValueError(f"{name} must be in [0, 2^64), got {value}")
    return v


def _empty_like_batch(phi, shape, dtype: str):
    """An output array of the same library and device as phi."""
    if _is_torch(phi):
        import torch

        return torch.empty(shape, dtype=getattr(torch, dtype), device=phi.device)
    return np.empty(shape, dtype=dtype)


# ------------------------------------------------------------- kernels ------

def fill_normal(out, *, seed: int, chain_offset: int = 0, traj: int = 0, purpose: int = RNG_MOMENTUM):
    """Fill a field (B, L0, L1) with N(0,1) Philox draws; returns ``out``."""
    be = _check_field(out, "out")
    be.fill_normal(out, _uint64(seed, "seed"), _uint64(chain_offset, "chain_offset"),
                   _uint64(traj, "traj"), _uint64(purpose, "purpose"))
    return out


def action(phi, *, kappa: float, lam: float, out=None):
    """The phi^4 action S of each chain, float64 of shape (B,)."""
    be = _check_field(phi)
    if out is None:
        out = _empty_like_batch(phi, (phi.shape[0],), "float64")
    be.action(phi, _finite(kappa, "kappa"), _finite(lam, "lam"), out)
    return out


def force(phi, *, kappa: float, lam: float, out=None):
    """The force F = -dS/dphi, same shape and dtype as phi."""
    be = _check_field(phi)
    if out is None:
        out = _empty_like_batch(phi, tuple(phi.shape), _dtype_name(phi))
    _check_like(out, phi, "out")
    be.force(phi, _finite(kappa, "kappa"), _finite(lam, "lam"), out)
    return out


def _check_integrator(integrator: str) -> str:
    if integrator not in INTEGRATORS:
        raise ValueError(f"integrator must be one of {INTEGRATORS}, got {integrator!r}")
    return integrator


def md_integrate(phi, mom, *, kappa: float, lam: float, eps: float, nmd: int, integrator: str = "leapfrog"):
    """nmd molecular-dynamics steps of size eps on (phi, mom), in place."""
    be = _check_field(phi)
    _check_like(mom, phi, "mom")
    if int(nmd) < 0:
        raise ValueError(f"nmd must be >= 0, got {nmd}")
    be.md_integrate(phi, mom, _finite(kappa, "kappa"), _finite(lam, "lam"), _finite(eps, "eps"),
                    int(nmd), _check_integrator(integrator))
    return phi, mom


def hmc_trajectories(phi, *, kappa: float, lam: float, nmd: int, tau: float, integrator: str = "leapfrog",
                     seed: int, chain_offset: int = 0, traj_offset: int = 0, ntraj: int = 1,
                     dH=None, acc=None):
    """Run ``ntraj`` HMC trajectories on each of the B chains of ``phi`` in place.

    Returns ``(dH, acc)``: float64 and uint8 arrays of shape (B, ntraj) with the
    energy violation and the Metropolis decision of every trajectory.
    """
    be = _check_field(phi)
    ntraj = int(ntraj)
    if ntraj < 1:
        raise ValueError(f"ntraj must be >= 1, got {ntraj}")
    if int(nmd) < 1:
        raise ValueError(f"nmd must be >= 1, got {nmd}")
    tau = _finite(tau, "tau")
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    B = phi.shape[0]
    if dH is None:
        dH = _empty_like_batch(phi, (B, ntraj), "float64")
    if acc is None:
        acc = _empty_like_batch(phi, (B, ntraj), "uint8")
    for arr, name in ((dH, "dH"), (acc, "acc")):
        if _device_of(arr, name) != _device_of(phi, "phi"):
            raise ValueError(f"{name}: must be on the same device as phi")
        if tuple(arr.shape) != (B, ntraj):
            raise ValueError(f"{name}: expected shape {(B, ntraj)}, got {tuple(arr.shape)}")
    be.hmc_trajectories(phi, _finite(kappa, "kappa"), _finite(lam, "lam"), int(nmd), tau,
                        _check_integrator(integrator), _uint64(seed, "seed"),
                        _uint64(chain_offset, "chain_offset"), _uint64(traj_offset, "traj_offset"),
                        ntraj, dH, acc)
    return dH, acc
