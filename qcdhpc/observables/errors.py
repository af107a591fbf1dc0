"""Γ-method error analysis (Wolff 2004) through pyerrors.

Each Monte Carlo chain is one *replica* of an ensemble (pyerrors name "ENSEMBLE|chainC"), so
autocorrelations are estimated within chains and chains are combined as independent.  Derived
quantities are built with Obs arithmetic, which propagates errors (and correlations between primary
observables of the same ensemble) automatically; call `summary` to run the analysis.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

MIN_SAMPLES = 5  # pyerrors refuses replicas with fewer samples


def _pe():
    # pyerrors imports scipy.odr, deprecated in recent SciPy: not our users' concern, keep output clean.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import pyerrors

    return pyerrors


def primary(samples_by_chain: dict, ensemble: str):
    """pe.Obs of the mean of a primary observable from {replica label: samples in Monte Carlo order}
    (labels like "chain3" give pyerrors names "ENSEMBLE|chain3")."""
    pe = _pe()
    short = {c: len(s) for c, s in samples_by_chain.items() if len(s) < MIN_SAMPLES}
    if short:
        raise ValueError(f"Γ-method needs >= {MIN_SAMPLES} samples per chain; chains with fewer: "
                         f"{short} (run longer, or save more often with a smaller --every)")
    chains = sorted(samples_by_chain)
    return pe.Obs([np.asarray(samples_by_chain[c], dtype=np.float64) for c in chains],
                  [f"{ensemble}|{c}" for c in chains])


def summary(obs, S: float = 2.0) -> dict:
    """{"value", "error", "tau_int"} of an Obs after the Γ-method (S = Wolff's window parameter).

    tau_int is that of the ensemble contributing most to the error (there is one per ensemble; a
    zero-variance observable, e.g. acceptance 1 everywhere, reports error 0 and tau_int 0.5).
    """
    obs.gamma_method(S=S)
    tau = 0.5
    if obs.e_tauint:
        main = max(obs.e_dvalue, key=lambda e: obs.e_dvalue[e]) if obs.e_dvalue else None
        tau = float(obs.e_tauint.get(main, 0.5))
    error = float(obs.dvalue)
    return {"value": float(obs.value), "error": error if math.isfinite(error) else float("nan"),
            "tau_int": tau if math.isfinite(tau) else float("nan")}
