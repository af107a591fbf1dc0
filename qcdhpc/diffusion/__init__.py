"""Score-based diffusion models for lattice fields (physics-agnostic: trains on arrays).

One concept per file, after score_sde_pytorch (Song et al., ICLR 2021) and EDM (Karras et al.,
NeurIPS 2022): `sde` (forward SDEs), `losses` (denoising score matching), `networks` (score
networks), `ema`, `sampling` (reverse-SDE / PC / probability-flow samplers), `train` (resumable,
optionally distributed training loop), `model_io` (weights_only model files), `toy` (the seeds'
double-Gaussian cumulant check).  This package never imports `qcdhpc.phi4`.
"""
from .sde import SDE, VESDE, VPSDE, get_sde

__all__ = ["SDE", "VESDE", "VPSDE", "get_sde"]
