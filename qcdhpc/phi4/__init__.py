"""Lattice φ⁴ theory in 2D: parameters, ensemble generation (HMC on the C++/CUDA kernels).

Action (dimensionless): S = Σ_x [ -2κ Σ_μ φ(x)φ(x+μ̂) + (1-2λ) φ(x)² + λ φ(x)⁴ ], periodic.

`HMCParams` is light; `generate` / `EnsembleRun` load numpy, h5py and the kernels on first use, so that
importing this package (e.g. for CLI argument checks) stays cheap.
"""
from .params import HMCParams

__all__ = ["HMCParams", "EnsembleRun", "Interrupted", "generate"]


def __getattr__(name):
    if name in ("EnsembleRun", "Interrupted", "generate", "EXIT_INTERRUPTED"):
        from . import ensemble

        return getattr(ensemble, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
