"""Batched input: observables accept numpy arrays or torch tensors of shape (B, L0, L1)."""
from __future__ import annotations

import numpy as np


def as_numpy(configs) -> np.ndarray:
    """A (B, ...) batch as a numpy array; torch tensors (any device) are copied to the host."""
    if hasattr(configs, "detach") and hasattr(configs, "cpu"):
        configs = configs.detach().cpu().numpy()
    return np.asarray(configs)
