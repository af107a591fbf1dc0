"""Zero-momentum two-point function and effective mass (definitions in docs/observables.md).

Per configuration, with the time-slice average φ̄(x0) = (1/L1) Σ_{x1} φ(x0, x1):

    c(t) = (1/L0) Σ_{x0} φ̄(x0) φ̄(x0 + t)         (periodic in x0, t = 0 … L0−1)

so C(t) = ⟨c(t)⟩ and c(t) = c(L0 − t) configuration by configuration.  On a periodic lattice a single
state of energy m gives C(t) ∝ cosh(m (t − L0/2)), so the effective mass m_eff(t) solves

    C(t) / C(t+1) = cosh(m (t − L0/2)) / cosh(m (t + 1 − L0/2)),      0 ≤ t < (L0 − 1)/2.

(For t ≥ (L0−1)/2 the ratio is the mirror image; at t = (L0−1)/2 it is identically 1.)
"""
from __future__ import annotations

import numpy as np

from .arrays import as_numpy


def timeslice_correlator(configs) -> np.ndarray:
    """c(t) of each configuration of a (B, L0, L1) batch (numpy or torch): float64 (B, L0).

    By the convolution theorem Σ_{x0} φ̄(x0) φ̄(x0+t) = IFFT(|FFT φ̄|²)(t): O(L0 log L0) per config.
    """
    phi = as_numpy(configs)
    bar = phi.mean(axis=2, dtype=np.float64)  # φ̄(x0), (B, L0)
    L0 = bar.shape[1]
    f = np.fft.rfft(bar, axis=1)
    return np.fft.irfft(f * np.conj(f), n=L0, axis=1) / L0


def n_meff(L0: int) -> int:
    """Number of times t = 0, 1, … with a defined cosh effective mass: 2t < L0 − 1, i.e. L0 // 2."""
    return L0 // 2


def _log_cosh(x):
    # log cosh x = |x| + log(1 + e^{−2|x|}) − log 2, no overflow for large |x|.
    a = np.abs(x)
    return a + np.log1p(np.exp(-2.0 * a)) - np.log(2.0)


def solve_cosh_mass(ratio, t, L0: int, iterations: int = 200):
    """m ≥ 0 with cosh(m u)/cosh(m w) = ratio, u = t − L0/2, w = t + 1 − L0/2 (|u| = |w| + 1 for
    t < (L0−1)/2).  Vectorised over `ratio` and `t`; NaN where ratio ≤ 1 (no solution: noise).

    h(m) = log cosh(m u) − log cosh(m w) is increasing from h(0) = 0, and h(m) ≥ m(|u| − |w|) − log 2
    = m − log 2, so the root lies in [0, log(ratio) + log 2]: bisection there converges always.
    """
    ratio = np.asarray(ratio, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    u, w = t - L0 / 2.0, t + 1.0 - L0 / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        target = np.log(ratio)
        lo = np.zeros(np.broadcast(ratio, t).shape)
        hi = np.where(ratio > 1, target + np.log(2.0) + 1.0, np.nan)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            above = _log_cosh(mid * u) - _log_cosh(mid * w) > target
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
    return np.where(ratio > 1, 0.5 * (lo + hi), np.nan)


def _dratio_dm(m, t, L0):
    """d/dm [cosh(m u)/cosh(m w)] (implicit-function derivative dm/dr = 1 / this)."""
    u, w = t - L0 / 2.0, t + 1.0 - L0 / 2.0
    return (u * np.sinh(m * u) * np.cosh(m * w) - w * np.cosh(m * u) * np.sinh(m * w)) / np.cosh(m * w) ** 2


def effective_mass(C, L0: int | None = None):
    """m_eff(t), t = 0 … n_meff(L0)−1, from C(t) on the last axis.

    C: float array (..., L0) — e.g. jackknife samples — or an object array of pe.Obs (L0,).
    For Obs the error is propagated by the implicit-function theorem: with r = C(t)/C(t+1),
        ∂m/∂C(t) = (dm/dr) / C(t+1),   ∂m/∂C(t+1) = −(dm/dr) r / C(t+1),   dm/dr = 1/(dr/dm),
    handed to pyerrors as the manual gradient of a derived observable (so τ_int and the
    correlations of C(t) and C(t+1) are accounted for).  Undefined points are NaN.
    """
    C = np.asarray(C)
    L0 = C.shape[-1] if L0 is None else L0
    ts = np.arange(n_meff(L0))
    if C.dtype != object:
        with np.errstate(invalid="ignore", divide="ignore"):
            return solve_cosh_mass(C[..., ts] / C[..., ts + 1], ts, L0)
    from .errors import _pe

    pe = _pe()
    out = np.empty(len(ts), dtype=object)
    for t in ts:
        a, b = C[t], C[t + 1]
        r = a.value / b.value if b.value != 0 else np.nan
        m = float(solve_cosh_mass(r, t, L0))
        if not np.isfinite(m):
            out[t] = np.nan
            continue
        dm_dr = 1.0 / _dratio_dm(m, t, L0)
        out[t] = pe.derived_observable(lambda x, _m=m, **kw: np.float64(_m), [a, b],
                                       man_grad=[dm_dr / b.value, -dm_dr * r / b.value])
    return out
