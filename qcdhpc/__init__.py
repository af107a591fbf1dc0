"""qcdhpc: Monte Carlo ensembles with single-source C++/CUDA kernels, generative models, observables.

Heavy dependencies (torch, h5py, mpi4py) are imported only by the modules that need them.
"""
from ._version import __version__

__all__ = ["__version__"]
