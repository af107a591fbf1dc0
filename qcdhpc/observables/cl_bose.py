"""Observables of complex-Langevin runs of the relativistic Bose gas at chemical potential μ (theory
"cl-bose", a `walkers` container of per-record observables written by `qcdhpc cl --model bose`;
Aarts, PRL 102 (2009) 131601, and JHEP 05 (2009) 052 for the lattice action and observables).

Observables: the density ⟨n⟩ (eq. B4; real in the exact theory, Im ⟨n⟩ = 0 within errors is a check)
and ⟨φ*φ⟩ (B5), as `density_re`, `density_im`, `phi2_re`, `phi2_im`, each {value, error, tau_int}.

Estimators: Langevin-time-weighted averages Σ_r ε_r O_r / Σ_r ε_r.  Each configuration is one
replica of a Markov chain in Langevin time, so the error is the Γ-method (pyerrors; Wolff,
hep-lat/0306017) with the configurations as replicas of one ensemble, applied to the ratio of the
weighted sums (exact for adaptive steps, where ε_r varies).  Configurations that ran away are left
out and counted.

Exact references next to the values: ⟨n⟩ = 0 at μ = 0 (charge conjugation), and at λ = 0, |μ| < μ_c
the lattice Fourier sums of qcdhpc.cl.exact (free_bose_density, free_bose_phi2) for the same lattice.

Diagnostics (cl_diagnostics.py): the histogram of K_max with its tail verdict; the boundary terms of
φ*φ and n against the cut-off Y on max_{a,x} |Im φ|; the largest max |Im φ| seen; runaways.
"""
from __future__ import annotations

import numpy as np

NAME = "cl-bose"
KINDS = ("walkers",)
OBSERVABLES = ("density", "phi2")


def _exact(params: dict) -> dict:
    from ..cl import exact

    N, d, m, lam, mu = (params.get(k) for k in ("N", "d", "m", "lam", "mu"))
    out = {}
    if mu == 0:
        out["density"] = 0.0
    if lam == 0 and m is not None and mu is not None:
        out["density"] = exact.free_bose_density(N, d, m, mu)
        out["phi2"] = exact.free_bose_phi2(N, d, m, mu)
    return out


def measure_container(c) -> dict:
    from . import errors
    from .cl_diagnostics import boundary_curve, drift_histogram

    need = ("density", "phi2", "kmax")
    if c.configs is not None or any(k not in c.observables for k in need):
        raise ValueError(f"{c.path}: cl-bose files record the observables {', '.join(need)} per record "
                         "(/observables), written by `qcdhpc cl --model bose`")
    w = np.asarray(c.weight[()])
    obs = {k: np.asarray(v[()]) for k, v in c.observables.items()}
    hist = c.history.get("langevin")
    W = w.shape[0]
    runaway = hist["runaway"].astype(bool) if hist is not None and "runaway" in hist else np.zeros(W, bool)
    good = ~runaway & (w > 0).all(axis=1) & np.isfinite(obs["density"]).all(axis=1) & np.isfinite(obs["phi2"]).all(axis=1)
    if good.sum() < 1:
        raise ValueError(f"{c.path}: every configuration ran away ({int(runaway.sum())} of {W}): no observables")
    params = {k: c.attrs.get(k) for k in ("N", "d", "m", "lam", "mu")}
    reps = [f"config{i}" for i in np.flatnonzero(good)]
    series = {"w": {r: w[i] for r, i in zip(reps, np.flatnonzero(good))}}
    for name in OBSERVABLES:
        x = obs[name]
        for part, get in (("re", np.real), ("im", np.imag)):
            series[f"{name}_{part}"] = {r: w[i] * get(x[i]) for r, i in zip(reps, np.flatnonzero(good))}
    derive = lambda m: {k: m[k] / m["w"] for k in m if k != "w"}  # noqa: E731  (weighted averages)
    label = f"cl-bose N{params['N']} d{params['d']} mu{params['mu']}"
    res = errors.gamma(series, derive, label)
    ex = _exact(params)
    for name in OBSERVABLES:
        if name in ex:
            res[f"{name}_re"]["exact"] = ex[name]
            res[f"{name}_im"]["exact"] = 0.0
        for part in ("re", "im"):
            q = res[f"{name}_{part}"]
            if "exact" not in q and part == "im":
                q["exact"] = 0.0  # both are real in the exact theory
            if "exact" in q:
                q["sigma"] = abs(q["value"] - q["exact"]) / q["error"] if q["error"] > 0 else None
    wg = w[good]
    diagnostics = {"drift_histogram": drift_histogram(obs["kmax"][good], wg)}
    if "imax" in c.observables:
        imax = obs["imax"][good]
        diagnostics["boundary_terms"] = {
            "phi2": boundary_curve(obs["lc_phi2"][good], imax, wg),
            "density": boundary_curve(obs["lc_density"][good], imax, wg)}
        diagnostics["max_abs_im"] = float(np.nanmax(imax)) if imax.size else None
    return {"format": "qcdhpc.observables", "schema_version": 2, "theory": NAME, "source": "walkers",
            "observables": res, "n_walkers": int(good.sum()), "n_runaway": int((~good).sum()),
            "n_records": int(w.shape[1]), "error_method": "Γ-method, configurations as replicas",
            "params": params, "langevin": dict(hist.attrs) if hist is not None else None,
            "diagnostics": diagnostics}


def print_table(res: dict) -> None:
    from .format import value_error

    p = res["params"]
    print(f"Bose gas {p['N']}^{p['d']}, m = {p['m']}, λ = {p['lam']}, μ = {p['mu']}: {res['n_walkers']} "
          f"configurations ({res['n_runaway']} ran away) x {res['n_records']} records, errors: {res['error_method']}")
    print(f"{'':<11} {'CL':>20} {'τ_int':>7} {'exact':>10} {'σ':>5}")
    for name, q in res["observables"].items():
        s, ex = q.get("sigma"), q.get("exact")
        print(f"{name:<11} {value_error(q['value'], q['error']):>20} {q['tau_int']:>7.1f} "
              f"{('—' if ex is None else f'{ex:.6f}'):>10} {('—' if s is None else f'{s:.1f}'):>5}")
    diag = res.get("diagnostics") or {}
    tail = (diag.get("drift_histogram") or {}).get("tail") or {}
    if diag.get("max_abs_im") is not None:
        print(f"max |Im φ| = {diag['max_abs_im']:.3g};  K_max tail: {tail.get('verdict', 'too few records')}")
    for name, b in (diag.get("boundary_terms") or {}).items():
        last = b["at_max"]
        print(f"boundary term B[{name}](Y_max) = {value_error(last['re'], last['re_error'])} "
              f"+ i {value_error(last['im'], last['im_error'])}  ({last['sigma']:.1f}σ from 0)")
