"""Lattice φ⁴ theory in 2D: parameters, ensemble generation (HMC on the C++/CUDA kernels).

Action (dimensionless): S = Σ_x [ -2κ Σ_μ φ(x)φ(x+μ̂) + (1-2λ) φ(x)² + λ φ(x)⁴ ], periodic.

    params.py     HMCParams: validated parameters (light: used for CLI checks)
    hmc.py        HMCRun: the ensemble driver on qcdhpc/run (start fields, kernel batches, merge)
    reference.py  numpy/torch reference HMC and exact free-field results, for tests

`generate` / `HMCRun` load numpy, h5py and the kernels on first use, so that importing this package
stays cheap.
"""
from .params import HMCParams

__all__ = ["HMCParams", "HMCRun", "generate"]


def __getattr__(name):
    if name in ("HMCRun", "generate"):
        from . import hmc

        return getattr(hmc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
