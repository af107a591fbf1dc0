"""The phi^4 family's kernels (csrc/include/qcdhpc/phi4/, bound as ``_qcdhpc_<backend>.phi4``):
checks, output allocation, backend and GPU by the arrays' device.

Fields are (B, L0, L1) float32/float64 arrays, B independent chains.  Random numbers follow
docs/conventions.md: chain b of a call uses the Philox key (seed, chain_offset + b); trajectory t
uses counters (blk, t, purpose, 0).  ``NUMERICS_VERSION`` is this family's numerics version
(csrc/include/qcdhpc/phi4/version.h): recorded by checkpoints, a resume refuses another.
"""
from __future__ import annotations

from . import (NUMERICS_VERSIONS, check_array, check_like, check_same_device, dtype_name, empty_like_device,
               finite, on_device, uint64)

__all__ = ["NUMERICS_VERSION", "INTEGRATORS", "RNG_MOMENTUM", "RNG_ACCEPT",
           "fill_normal", "action", "force", "md_integrate", "hmc_trajectories"]

NUMERICS_VERSION: int = NUMERICS_VERSIONS["phi4"]
INTEGRATORS = ("leapfrog", "omelyan")
RNG_MOMENTUM, RNG_ACCEPT = 0, 1  # counter word 2 (csrc/include/qcdhpc/mc/streams.h)

_FIELD = dict(dims=("batch", "L0", "L1"), dtypes=("float32", "float64"), min_extent=(1, 2, 2))


def _check_field(phi, name: str = "phi"):
    """The family submodule (``_qcdhpc_cpu.phi4`` / ``_qcdhpc_cuda.phi4``) for a checked field."""
    return check_array(phi, name, **_FIELD).phi4


def _check_integrator(integrator: str) -> str:
    if integrator not in INTEGRATORS:
        raise ValueError(f"integrator must be one of {INTEGRATORS}, got {integrator!r}")
    return integrator


def fill_normal(out, *, seed: int, chain_offset: int = 0, traj: int = 0, purpose: int = RNG_MOMENTUM):
    """Fill a field (B, L0, L1) with N(0,1) Philox draws; returns ``out``."""
    be = _check_field(out, "out")
    with on_device(out):
        be.fill_normal(out, uint64(seed, "seed"), uint64(chain_offset, "chain_offset"),
                       uint64(traj, "traj"), uint64(purpose, "purpose"))
    return out


def action(phi, *, kappa: float, lam: float, out=None):
    """The phi^4 action S of each chain, float64 of shape (B,)."""
    be = _check_field(phi)
    if out is None:
        out = empty_like_device(phi, (phi.shape[0],), "float64")
    check_same_device(out, phi, "out")
    check_array(out, "out", dims=("batch",), dtypes=("float64",))
    if tuple(out.shape) != (phi.shape[0],):
        raise ValueError(f"out: expected shape {(phi.shape[0],)}, got {tuple(out.shape)}")
    with on_device(phi):
        be.action(phi, finite(kappa, "kappa"), finite(lam, "lam"), out)
    return out


def force(phi, *, kappa: float, lam: float, out=None):
    """The force F = -dS/dphi, same shape and dtype as phi."""
    be = _check_field(phi)
    if out is None:
        out = empty_like_device(phi, tuple(phi.shape), dtype_name(phi))
    check_like(out, phi, "out", **_FIELD)
    with on_device(phi):
        be.force(phi, finite(kappa, "kappa"), finite(lam, "lam"), out)
    return out


def md_integrate(phi, mom, *, kappa: float, lam: float, eps: float, nmd: int, integrator: str = "leapfrog"):
    """nmd molecular-dynamics steps of size eps on (phi, mom), in place."""
    be = _check_field(phi)
    check_like(mom, phi, "mom", **_FIELD)
    if int(nmd) < 0:
        raise ValueError(f"nmd must be >= 0, got {nmd}")
    with on_device(phi):
        be.md_integrate(phi, mom, finite(kappa, "kappa"), finite(lam, "lam"), finite(eps, "eps"),
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
    tau = finite(tau, "tau")
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    B = phi.shape[0]
    if dH is None:
        dH = empty_like_device(phi, (B, ntraj), "float64")
    if acc is None:
        acc = empty_like_device(phi, (B, ntraj), "uint8")
    for arr, name in ((dH, "dH"), (acc, "acc")):
        check_same_device(arr, phi, name)
        if tuple(arr.shape) != (B, ntraj):
            raise ValueError(f"{name}: expected shape {(B, ntraj)}, got {tuple(arr.shape)}")
    with on_device(phi):
        be.hmc_trajectories(phi, finite(kappa, "kappa"), finite(lam, "lam"), int(nmd), tau,
                            _check_integrator(integrator), uint64(seed, "seed"),
                            uint64(chain_offset, "chain_offset"), uint64(traj_offset, "traj_offset"),
                            ntraj, dH, acc)
    return dH, acc
