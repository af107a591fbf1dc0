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


def _jackknife_core(series: dict, derive):
    """(N, full means, leave-one-out means, derive(full), derive(leave-one-out)) of `series`."""
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
    return N, full, loo, values, samples


def _jackknife_summary(N: int, value, samples) -> dict:
    v = np.asarray(value, dtype=np.float64)
    s = np.asarray(samples, dtype=np.float64)
    err = np.sqrt((N - 1) / N * ((s - s.mean(axis=0)) ** 2).sum(axis=0))
    tau = np.where(np.isfinite(v), TAU_INDEPENDENT, np.nan)
    if v.ndim == 0:
        return {"value": _finite_or_nan(v), "error": _finite_or_nan(err), "tau_int": float(tau)}
    return {"value": [_finite_or_nan(a) for a in v], "error": [_finite_or_nan(a) for a in err],
            "tau_int": [_finite_or_nan(a) for a in tau]}


def jackknife(series: dict, derive) -> dict:
    """Delete-one jackknife of derive(means) for independent samples.

    series = {name: array (N,) or (N, k)} (all with the same N; replicas already concatenated: the
    order of independent samples is irrelevant).  Every primary drops the same sample i, so ratios
    and other nonlinear functions see the correlations between their inputs.
    """
    N, _, _, values, samples = _jackknife_core(series, derive)
    return {name: _jackknife_summary(N, v, samples[name]) for name, v in values.items()}


def jackknife_obs(value, loo, ensemble: str):
    """pe.Obs on `ensemble` carrying the delete-one jackknife samples `loo` (N,) of a quantity with
    full-sample value `value`, as pyerrors.import_jackknife builds it (in O(N) memory): its deltas are
    the pseudo-values N·f̄ − (N−1)·f_(i), so Obs arithmetic keeps the jackknife correlations of all
    quantities of one ensemble, and gamma_method(S=0) gives exactly the jackknife error.
    None where the value could not be formed (NaN)."""
    value = float(value)
    loo = np.asarray(loo, dtype=np.float64)
    if not math.isfinite(value) or not np.all(np.isfinite(loo)):
        return None
    pe = _pe()
    N = len(loo)
    pseudo = loo.sum() - (N - 1) * loo
    mean = float(pseudo.mean())
    o = pe.Obs([pseudo - mean], [ensemble], means=[mean])
    o._value = value  # as pe.import_jackknife: the value is f(full means), not the pseudo-value mean
    return o


def _as_obs_tree(x, value=None, loo=None, ensemble=None):
    """Vector results → lists; jackknife results (value, loo) → Obs via jackknife_obs."""
    if value is not None:
        v = np.asarray(value, dtype=np.float64)
        s = np.asarray(loo, dtype=np.float64)
        if v.ndim == 0:
            return jackknife_obs(v, s, ensemble)
        return [jackknife_obs(v[j], s[:, j], ensemble) for j in range(v.shape[0])]
    if isinstance(x, np.ndarray):
        return [_as_obs_tree(e) for e in x.ravel()]
    return x


def jackknife_with_obs(series: dict, derive, ensemble: str) -> tuple[dict, dict, dict]:
    """`jackknife` plus the pyerrors Obs of the primaries' means and of the derived quantities
    ({name: Obs | [Obs | None, ...] | None}) for the pyerrors file (dump_obs)."""
    N, full, loo, values, samples = _jackknife_core(series, derive)
    res = {name: _jackknife_summary(N, v, samples[name]) for name, v in values.items()}
    prim = {k: _as_obs_tree(None, full[k], loo[k], ensemble) for k in series}
    derived = {k: _as_obs_tree(None, v, samples[k], ensemble) for k, v in values.items()}
    return res, prim, derived


def gamma_with_obs(series: dict, derive, ensemble: str, S: float = 2.0) -> tuple[dict, dict, dict]:
    """`gamma` plus the Obs of the primaries' means and of the derived quantities (dump_obs)."""
    means = gamma_means(series, ensemble)
    derived = derive(means)
    res = {name: summary(o, S) for name, o in derived.items()}
    return res, {k: _as_obs_tree(v) for k, v in means.items()}, {k: _as_obs_tree(v) for k, v in derived.items()}


# ------------------------------------------------------------------------- the pyerrors file ---

OBS_FILE_MARK = "qcdhpc.observables pyerrors"  # in the description: files measure may replace


def _plain(tree):
    """Obs stay; numbers that are not Obs (NaN: not formed) become None; numpy arrays become lists."""
    pe = _pe()
    if isinstance(tree, dict):
        return {str(k): _plain(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple, np.ndarray)):
        return [_plain(v) for v in tree]
    if isinstance(tree, pe.Obs) or tree is None or isinstance(tree, str):
        return tree
    return None


def dump_obs(path, obs_tree: dict, description: dict) -> None:
    """Write `obs_tree` (nested dicts of Obs / lists of Obs) with pyerrors' dump_dict_to_json, gzipped,
    atomically at `path` (read back with pyerrors.input.json.load_json_dict(path))."""
    import os
    from pathlib import Path

    from ..io.atomic import atomic_path

    pe = _pe()
    text = {"mark": OBS_FILE_MARK, **description}
    with atomic_path(path) as tmp:
        staged = Path(f"{tmp}.json.gz")  # pyerrors appends .json.gz to names that lack it
        try:
            pe.input.json.dump_dict_to_json(_plain(obs_tree), str(staged), description=text, indent=0, gz=True)
            os.replace(staged, tmp)
        finally:
            staged.unlink(missing_ok=True)


def _obs_file_head(path) -> bytes | None:
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as f:
            head = f.read(1 << 20)  # the description precedes the Obs data
    except (OSError, EOFError, zlib.error):
        return None
    ok = b'"program"' in head and b"pyerrors" in head and OBS_FILE_MARK.encode() in head
    return head if ok else None


def is_obs_file(path) -> bool:
    """Whether `path` is a pyerrors file measure wrote (so a rerun may replace it)."""
    return _obs_file_head(path) is not None


def obs_file_sources(path) -> list | None:
    """The input files recorded in the description of a pyerrors file measure wrote (None: unknown)."""
    import json

    head = _obs_file_head(path)
    key = b'"sources":'
    if head is None or key not in head:
        return None
    text = head[head.index(key) + len(key):].decode("utf-8", errors="replace").lstrip()
    try:
        sources, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    return sources if isinstance(sources, list) else None
