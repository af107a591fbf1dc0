"""Error analysis of Monte Carlo averages and of functions of them (docs/observables.md, "Errors").

Two methods, one interface.  The input is a set of *primaries* — per-sample series (scalar, shape
(n,), or vector, shape (n, k)) in Monte Carlo order, one series per replica (chain) — and a *derive*
function that maps the primaries' means to the quantities of interest (χ₂, U_L, C(t), m_eff, ...).
`derive` is written once with ordinary arithmetic and works on both representations below.

* Markov chains: Γ-method (Wolff, hep-lat/0306017) through pyerrors.  Each chain is one replica of
  the pyerrors ensemble ("ens|chain3"), so autocorrelations are estimated within chains and chains
  are combined as independent.  The primaries' means are `pe.Obs`, `derive` does Obs arithmetic,
  and pyerrors propagates the errors linearly with all correlations between the primaries
  (the Γ-method of the projected fluctuations  δf = Σ_a ∂f/∂Ā_a δA_a):  never naive.
* Independent samples (generated ones): delete-one jackknife.  All primaries drop the *same* sample
  together, so a ratio ⟨x⟩/⟨y⟩ sees the x–y correlation; the error is
      σ²(f) = (N−1)/N Σ_i (f_(i) − f̄_(·))²,   f_(i) = f(means without sample i),
  and tau_int is reported as 0.5 (no autocorrelation by construction).  The value is f(full means),
  as for the Γ-method (no jackknife bias correction: the bias is O(1/N), far below the error).

Results are {"value", "error", "tau_int"} per quantity (lists for vector quantities).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

MIN_SAMPLES = 5  # pyerrors refuses replicas with fewer samples
TAU_INDEPENDENT = 0.5  # τ_int of uncorrelated samples (Γ(t) = 0 for t ≠ 0)


def _pe():
    # pyerrors imports scipy.odr, deprecated in recent SciPy: not our users' concern, keep output clean.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import pyerrors

    return pyerrors


def primary(samples_by_chain: dict, ensemble: str):
    """pe.Obs of the mean of a scalar primary from {replica label: samples in Monte Carlo order}
    (labels like "chain3" give pyerrors names "ENSEMBLE|chain3")."""
    pe = _pe()
    short = {c: len(s) for c, s in samples_by_chain.items() if len(s) < MIN_SAMPLES}
    if short:
        raise ValueError(f"Γ-method needs >= {MIN_SAMPLES} samples per chain; chains with fewer: "
                         f"{short} (run longer, or save more often with a smaller --every)")
    chains = sorted(samples_by_chain)
    return pe.Obs([np.asarray(samples_by_chain[c], dtype=np.float64) for c in chains],
                  [f"{ensemble}|{c}" for c in chains])


def gamma_means(series: dict, ensemble: str) -> dict:
    """{name: Obs} (scalar primaries) or {name: object array of Obs} (vector primaries) from
    series = {name: {replica: array (n_r,) or (n_r, k)}}."""
    out = {}
    for name, by_rep in series.items():
        first = np.asarray(next(iter(by_rep.values())))
        if first.ndim == 1:
            out[name] = primary(by_rep, ensemble)
        else:
            out[name] = np.array([primary({r: np.asarray(v)[:, j] for r, v in by_rep.items()}, ensemble)
                                  for j in range(first.shape[1])], dtype=object)
    return out


def _finite_or_nan(x) -> float:
    x = float(x)
    return x if math.isfinite(x) else float("nan")


def summary(obs, S: float = 2.0) -> dict:
    """{"value", "error", "tau_int"} of an Obs after the Γ-method (S = Wolff's window parameter).

    tau_int is that of the ensemble contributing most to the error.  All our per-configuration data
    form one pyerrors ensemble ("ens", its chains are replicas), so this is pyerrors' τ_int of that
    ensemble, estimated from the replica-combined autocorrelation function Γ(t) of the (projected)
    fluctuations.  A zero-variance observable reports error 0 and tau_int 0.5; a quantity that could
    not be formed (e.g. m_eff where C(t)/C(t+1) ≤ 1) is NaN throughout.  Object arrays (vector
    quantities) give lists.
    """
    if isinstance(obs, np.ndarray):
        parts = [summary(o, S) for o in obs.ravel()]
        return {k: [p[k] for p in parts] for k in ("value", "error", "tau_int")}
    pe = _pe()
    if not isinstance(obs, pe.Obs):  # a plain number: not formed from data (NaN) or exact
        v = _finite_or_nan(obs)
        return {"value": v, "error": float("nan") if math.isnan(v) else 0.0, "tau_int": float("nan")}
    obs.gamma_method(S=S)
    tau = TAU_INDEPENDENT
    if obs.e_tauint:
        main = max(obs.e_dvalue, key=lambda e: obs.e_dvalue[e]) if obs.e_dvalue else None
        tau = float(obs.e_tauint.get(main, TAU_INDEPENDENT))
    return {"value": _finite_or_nan(obs.value), "error": _finite_or_nan(obs.dvalue),
            "tau_int": _finite_or_nan(tau)}


def gamma(series: dict, derive, ensemble: str, S: float = 2.0) -> dict:
    """Γ-method: {name: summary} of derive({primary: Obs mean}) (see module docstring)."""
    return {name: summary(o, S) for name, o in derive(gamma_means(series, ensemble)).items()}


def jackknife(series: dict, derive) -> dict:
    """Delete-one jackknife of derive(means) for independent samples.

    series = {name: array (N,) or (N, k)} (all with the same N; replicas already concatenated: the
    order of independent samples is irrelevant).  Every primary drops the same sample i, so ratios
    and other nonlinear functions see the correlations between their inputs.
    """
    N = {len(v) for v in series.values()}
    if len(N) != 1:
        raise ValueError(f"jackknife: primaries of different lengths {sorted(N)}")
    N = N.pop()
    if N < 2:
        raise ValueError(f"jackknife needs >= 2 samples, got {N}")
    full, loo = {}, {}
    for name, x in series.items():
        x = np.asarray(x, dtype=np.float64)
        total = x.sum(axis=0)
        full[name] = total / N
        loo[name] = (total - x) / (N - 1)  # mean without sample i, row i: shape (N, ...)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = derive(full)
        samples = derive(loo)
    out = {}
    for name, v in values.items():
        v = np.asarray(v, dtype=np.float64)
        s = np.asarray(samples[name], dtype=np.float64)
        err = np.sqrt((N - 1) / N * ((s - s.mean(axis=0)) ** 2).sum(axis=0))
        tau = np.where(np.isfinite(v), TAU_INDEPENDENT, np.nan)
        if v.ndim == 0:
            out[name] = {"value": _finite_or_nan(v), "error": _finite_or_nan(err), "tau_int": float(tau)}
        else:
            out[name] = {"value": [_finite_or_nan(a) for a in v], "error": [_finite_or_nan(a) for a in err],
                         "tau_int": [_finite_or_nan(a) for a in tau]}
    return out
