"""φ⁴ observables: per-configuration estimators and the functions of their means (docs/observables.md).

The observable set of the theory "phi4" (theories.py): `measure` calls `check_layout`, `primaries`
and `derive`, and lays out the result by MAIN / HISTORY / SCALAR_EXTRAS / VECTOR_EXTRAS.

Per configuration (batched: arrays or torch tensors of shape (B, L0, L1)):
    M = (1/V) Σ_x φ(x),   s = S/V with S = Σ_x[−2κΣ_μ φφ_μ + (1−2λ)φ² + λφ⁴],
    φ² and φ⁴ site averages, and the time-slice correlator c(t) (correlator.py).
Ensemble quantities, as functions of the primary means (`derive`):
    chi2_full = V⟨M²⟩,   chi2_conn = V(⟨M²⟩ − ⟨M⟩²),   chi2_absM_conn = V(⟨M²⟩ − ⟨|M|⟩²),
    UL = 1 − ⟨M⁴⟩/(3⟨M²⟩²),   C(t) = ⟨c(t)⟩,   C_absM_conn(t) = C(t) − ⟨|M|⟩²,   m_eff(t) from C(t).
`derive` is plain arithmetic, so the same code runs on pyerrors Obs (Γ-method) and on jackknife
samples (errors.py): the error of every derived quantity is propagated, never estimated naively.

This module does not know how the samples were made (HMC, diffusion model, ...).
"""
from __future__ import annotations

import numpy as np

from . import correlator
from .arrays import as_numpy

NAME = "phi4"
# Quantities every measurement reports (flat {value, error, tau_int}); the rest are "extras".
MAIN = ("M", "absM", "chi2_full", "chi2_absM_conn", "UL", "action_density")
HISTORY = ("acceptance", "exp_minus_dH")  # from the HMC history (measure.py), null for files without one
SCALAR_EXTRAS = ("chi2_conn", "phi2", "phi4")
VECTOR_EXTRAS = ("C_t", "C_t_absM_conn", "m_eff", "m_eff_absM_conn")
# `qcdhpc measure`'s table: scalar rows, then the first entries of these vectors.
TABLE_ROWS = ("M", "absM", "chi2_full", "chi2_conn", "chi2_absM_conn", "UL", "action_density", "phi2",
              "phi4", "acceptance", "exp_minus_dH")
TABLE_VECTORS = ("m_eff",)
# Histograms and distribution distances: {result key: per-configuration primary}; FIELD_HISTOGRAM is the
# key of the 1-point distribution of the field over all sites.
DISTRIBUTIONS = {"M": "M", "action_density": "s"}
FIELD_HISTOGRAM = "phi"
COUPLINGS = ("kappa", "lam")  # attributes that must agree for files to be combined as replicas


def check_layout(site_shape: tuple, dtype) -> None:
    """Refuse (ValueError) configurations φ⁴'s estimators are not written for: real fields on L0 × L1."""
    if len(site_shape) != 2:
        raise ValueError(f"configurations of shape {tuple(site_shape)}, expected (L0, L1)")
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"configurations of dtype {np.dtype(dtype)}, the φ⁴ observables need a real field")


def magnetisation(configs) -> np.ndarray:
    """M = (1/V) Σ_x φ(x) of each configuration of a (B, L0, L1) batch, float64 (B,)."""
    configs = as_numpy(configs)
    return configs.reshape(len(configs), -1).mean(axis=1, dtype=np.float64)


def action_density(configs, kappa: float, lam: float) -> np.ndarray:
    """S/V of each configuration of a (B, L0, ...) batch (periodic, any dimension), float64 (B,)."""
    phi = as_numpy(configs).astype(np.float64, copy=False)
    phi2 = phi * phi
    hop = sum(phi * np.roll(phi, -1, axis=mu) for mu in range(1, phi.ndim))  # forward links, once each
    s = -2.0 * kappa * hop + (1.0 - 2.0 * lam) * phi2 + lam * phi2 * phi2
    return s.reshape(len(phi), -1).mean(axis=1)


def site_moment(configs, k: int) -> np.ndarray:
    """(1/V) Σ_x φ(x)^k of each configuration, float64 (B,): the k-th moment of the 1-point distribution."""
    phi = as_numpy(configs).astype(np.float64, copy=False)
    return (phi ** k).reshape(len(phi), -1).mean(axis=1)


def couplings(params: dict | None) -> tuple:
    """(κ, λ) from a file's attributes, (None, None) when either is missing."""
    params = params or {}
    kappa, lam = params.get("kappa"), params.get("lam")
    if kappa is None or lam is None:
        return None, None
    return float(kappa), float(lam)


def primaries(configs, params: dict | None = None) -> dict:
    """Per-configuration primaries of a batch: {name: (B,) or (B, L0) float64}.

    params: the file's attributes; "s" (action density) only when they hold κ (`kappa`) and λ (`lam`).
    The powers of M are separate primaries because ⟨M²⟩ ≠ ⟨M⟩²: each is averaged over the ensemble
    before any nonlinear function is taken.
    """
    kappa, lam = couplings(params)
    M = magnetisation(configs)
    out = {"M": M, "absM": np.abs(M), "M2": M * M, "M4": M ** 4,
           "phi2": site_moment(configs, 2), "phi4": site_moment(configs, 4),
           "Ct": correlator.timeslice_correlator(configs)}
    if kappa is not None and lam is not None:
        out["s"] = action_density(configs, kappa, lam)
    return out


def _column(x):
    """Scalar mean → broadcastable against a vector mean: Obs stay as they are, float arrays of
    jackknife samples (N,) become (N, 1)."""
    from .errors import _pe

    return x if isinstance(x, _pe().Obs) else np.asarray(x, dtype=np.float64)[..., None]


def derive(m: dict, site_shape: tuple) -> dict:
    """Ensemble quantities from the primaries' means m (Obs, or float arrays of jackknife samples)."""
    V = int(np.prod(site_shape))
    out = {
        "M": m["M"],
        "absM": m["absM"],
        "chi2_full": V * m["M2"],
        "chi2_absM_conn": V * (m["M2"] - m["absM"] * m["absM"]),
        "UL": 1 - m["M4"] / (3 * m["M2"] * m["M2"]),
    }
    if "s" in m:
        out["action_density"] = m["s"]
    out["chi2_conn"] = V * (m["M2"] - m["M"] * m["M"])
    out["phi2"], out["phi4"] = m["phi2"], m["phi4"]
    Ct = m["Ct"]
    # ⟨φ⟩ = 0 exactly on a finite lattice (Z₂), so C(t) itself is the connected correlator; in the
    # broken phase chains sit in one vacuum and the constant ≈ v² ≈ ⟨|M|⟩² is removed in C_absM_conn.
    Ct_conn = Ct - _column(m["absM"] * m["absM"])
    L0 = np.shape(Ct)[-1]
    out["C_t"], out["C_t_absM_conn"] = Ct, Ct_conn
    out["m_eff"] = correlator.effective_mass(Ct, L0)
    out["m_eff_absM_conn"] = correlator.effective_mass(Ct_conn, L0)
    return out
