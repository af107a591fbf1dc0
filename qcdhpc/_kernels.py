"""Backwards-compatible face of the native kernels: re-exports ``qcdhpc.kernels`` (runtime) and
``qcdhpc.kernels.phi4`` (the phi^4 family).  New code imports those directly; ``NUMERICS_VERSION``
here is the phi^4 family's.
"""
from __future__ import annotations

from .kernels import (available_devices, cuda_built, empty_cache, get_num_threads, local_device_index,
                      philox4x64_10, set_num_threads)
from .kernels.phi4 import (INTEGRATORS, NUMERICS_VERSION, RNG_ACCEPT, RNG_MOMENTUM, action, fill_normal, force,
                           hmc_trajectories, md_integrate)

__all__ = [
    "NUMERICS_VERSION", "available_devices", "cuda_built", "set_num_threads", "get_num_threads", "philox4x64_10",
    "fill_normal", "action", "force", "md_integrate", "hmc_trajectories",
]
