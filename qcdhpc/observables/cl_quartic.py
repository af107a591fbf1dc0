"""Observables of complex-Langevin walkers of the quartic model S = σ₀z²/2 + λz⁴/4 (theory
"cl-quartic", a `walkers` container): complex moments μ_n = ⟨zⁿ⟩, n = 1..8, and cumulants κ₂…κ₈.

Estimators: each walker's Langevin-time-weighted average Σ_r ε_r z_rⁿ / Σ_r ε_r over its records (the
state before each update weighted by that update's step, so adaptive steps are averaged correctly);
walkers are independent, so the ensemble value is the mean over walkers and its error the delete-one
jackknife over walkers (cumulants are nonlinear in the moments: jackknifed as a whole).  Walkers that
ran away are left out and counted.  Real and imaginary parts are reported separately as
`mu2_re`, `mu2_im`, …, `kappa8_im`, each {value, error}, next to the exact value (quadrature,
qcdhpc.cl.exact) and the deviation in σ.
"""
from __future__ import annotations

import numpy as np

NAME = "cl-quartic"
KINDS = ("walkers", "samples")  # measured whole (measure_container), not by per-configuration primaries
ORDERS = tuple(range(1, 9))
MOMENTS = (2, 4, 6, 8)
CUMULANTS = (2, 4, 6, 8)


def _cumulants(mu: np.ndarray) -> np.ndarray:
    """κ_1..κ_8 from raw moments μ_1..μ_8 (last axis), by κ_n = μ_n − Σ_{m=1}^{n−1} C(n−1, m−1) κ_m μ_{n−m}."""
    from math import comb

    mu = np.asarray(mu)
    k = np.zeros_like(mu)
    m = lambda n: mu[..., n - 1]  # noqa: E731
    for n in range(1, mu.shape[-1] + 1):
        k[..., n - 1] = m(n) - sum(comb(n - 1, j - 1) * k[..., j - 1] * m(n - j) for j in range(1, n))
    return k


WALKER_BLOCK_ELEMENTS = 4_000_000  # records per block of the per-walker averages (64 MB of complex128)
DIAG_ELEMENTS = 20_000_000  # records the diagnostics use at most (≈ 2 GB of temporaries)


def _walker_series(c):
    """(z (W, R) complex, weights (W, R), runaway (W,) bool, source) of a walkers container, or of a
    samples container of (x, y) pairs (a diffusion model's draws: each sample one walker, weight 1)."""
    if c.kind == "samples":
        xy = np.asarray(c.configs[()], dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"{c.path}: cl-quartic samples must be (x, y) pairs, shape (n, 2); got {xy.shape}")
        z = (xy[:, 0] + 1j * xy[:, 1])[:, None]
        bad = ~np.isfinite(z[:, 0])
        return z, np.ones(z.shape), bad, "samples"
    if c.configs is None or c.site_shape != ():
        raise ValueError(f"{c.path}: cl-quartic walkers must record the states z, one complex number each")
    hist = c.history.get("langevin")
    runaway = (hist["runaway"].astype(bool) if hist is not None and "runaway" in hist
               else np.zeros(len(c), bool))
    return c.configs, c.weight, runaway, "walkers"  # HDF5 datasets: read in blocks of walkers below


def _params(c):
    sigma = complex(*c.attrs["sigma"]) if isinstance(c.attrs.get("sigma"), list) else None
    lam = c.attrs.get("lam")
    return sigma, (None if lam is None else float(lam))


def measure_container(c) -> dict:
    """The JSON result of one walkers (or (x, y) samples) container (see module docstring)."""
    zall, wall, runaway, source = _walker_series(c)
    W = zall.shape[0]
    per_walker = np.empty((W, len(ORDERS)), np.complex128)
    block = max(1, min(4096, WALKER_BLOCK_ELEMENTS // max(1, zall.shape[1])))
    for start in range(0, W, block):  # bounded memory: blocks of walkers read from the file
        zb, wb = np.asarray(zall[start:start + block]), np.asarray(wall[start:start + block])
        zb = np.where(wb > 0, zb, 0.0)
        norm = wb.sum(axis=1)
        pw = np.stack([(wb * zb ** n).sum(axis=1) for n in ORDERS], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_walker[start:start + len(zb)] = pw / norm[:, None]
    good = ~runaway & np.isfinite(per_walker).all(axis=1)
    x = per_walker[good]
    n = len(x)
    if n < 2:
        raise ValueError(f"{c.path}: fewer than 2 {source} that did not run away ({int((~good).sum())} of {W} did)")
    mean = x.mean(axis=0)
    loo = (x.sum(axis=0)[None, :] - x) / (n - 1)  # delete-one means
    jk = lambda est: np.sqrt((n - 1) / n * ((est - est.mean(axis=0)) ** 2).sum(axis=0))  # noqa: E731
    mu_err = (jk(loo.real), jk(loo.imag))
    kap, kap_loo = _cumulants(mean), _cumulants(loo)
    ka_err = (jk(kap_loo.real), jk(kap_loo.imag))

    sigma, lam = _params(c)
    exact_mu = exact_ka = None
    if sigma is not None and lam is not None:
        from ..cl import exact  # the theory's exact reference (quadrature on the real line)

        exact_mu = exact.moments(sigma, lam, orders=ORDERS)
        exact_ka = {k: v for k, v in zip(ORDERS, _cumulants(np.array([exact_mu[o] for o in ORDERS])))}
    obs = {}
    for tag, orders, val, err, ex in (("mu", MOMENTS, mean, mu_err, exact_mu), ("kappa", CUMULANTS, kap, ka_err, exact_ka)):
        for o in orders:
            for part, get in (("re", np.real), ("im", np.imag)):
                v = float(get(val[o - 1]))
                e = float((err[0] if part == "re" else err[1])[o - 1])
                q = {"value": v, "error": e}
                if ex is not None:
                    q["exact"] = float(get(ex[o]))
                    q["sigma"] = abs(v - q["exact"]) / e if e > 0 else None
                obs[f"{tag}{o}_{part}"] = q
    hist = c.history.get("langevin") if source == "walkers" else None
    diagnostics = None
    if source == "walkers" and sigma is not None and lam is not None:
        # the |K| histogram and boundary terms from the first good walkers up to a memory bound
        # (DIAG_ELEMENTS records); their number is recorded
        idx = np.flatnonzero(good)[:max(2, DIAG_ELEMENTS // max(1, zall.shape[1]))]
        diagnostics = _diagnostics(np.asarray(zall[idx]), np.asarray(wall[idx]), sigma, lam)
        diagnostics["walkers"] = int(len(idx))
    return {"format": "qcdhpc.observables", "schema_version": 2, "theory": NAME, "source": source,
            "observables": obs, "n_walkers": int(n), "n_runaway": int((~good).sum()),
            "n_records": int(zall.shape[1]),
            "error_method": f"jackknife over {source}", "params": {"sigma": c.attrs.get("sigma"), "lam": lam},
            "langevin": dict(hist.attrs) if hist is not None else None, "diagnostics": diagnostics}


BOUNDARY_ORDERS = (2, 4)


def _diagnostics(z, w, sigma, lam) -> dict:
    """|K| histogram, boundary terms B_{zⁿ}(Y) (n = 2, 4) and max |Im z| (cl_diagnostics.py)."""
    from ..cl.models import Quartic
    from .cl_diagnostics import boundary_curve, drift_histogram

    K = Quartic(sigma, lam).drift(z)
    imag = np.abs(z.imag)
    bts = {}
    for n in BOUNDARY_ORDERS:  # L_c zⁿ = n(n−1)zⁿ⁻² + n zⁿ⁻¹ K(z)
        lco = n * (n - 1) * z ** (n - 2) + n * z ** (n - 1) * K
        bts[f"z{n}"] = boundary_curve(lco, imag, w)
    return {"drift_histogram": drift_histogram(np.abs(K), w), "boundary_terms": bts,
            "max_abs_im": float(imag[w > 0].max()) if (w > 0).any() else None}


def extrapolate(results: list, power: int | None = None) -> dict:
    """ε → 0 of measure results of runs that differ only in the step ε: a weighted least-squares fit
    O(ε) = O₀ + c ε^p per observable (p = 1 for Euler, 2 for Heun, from the runs' scheme, or `power`),
    the runs independent (their own errors).  With three or more runs, also χ²/dof of the fit.
    Returns {"power", "dt": [...], "observables": {name: {value, error, exact, sigma, chi2_dof}}}."""
    if len(results) < 2:
        raise ValueError("the ε → 0 extrapolation needs runs at two or more step sizes")
    lang = [r.get("langevin") or {} for r in results]
    if any(not lg for lg in lang):
        raise ValueError("the ε → 0 extrapolation needs complex-Langevin walkers files (not samples)")
    schemes = {lg.get("scheme") for lg in lang}
    if len(schemes) != 1:
        raise ValueError(f"the runs use different schemes ({', '.join(sorted(map(str, schemes)))}): extrapolate "
                         "one scheme at a time")
    if any(lg.get("adaptive") for lg in lang):
        raise ValueError("the ε → 0 extrapolation needs fixed-step runs (an adaptive run has no single ε)")
    keys = ("params",)
    if any(r[k] != results[0][k] for r in results for k in keys):
        raise ValueError("the runs differ in more than the step (sigma, lam must agree)")
    dt = np.array([float(lg["dt"]) for lg in lang])
    if len(set(dt.tolist())) < 2:
        raise ValueError(f"the runs need at least two different steps (got dt = {sorted(set(dt.tolist()))})")
    p = power if power is not None else (1 if schemes == {"euler"} else 2)
    X = np.stack([np.ones_like(dt), dt ** p], axis=1)
    out = {}
    for name, q0 in results[0]["observables"].items():
        y = np.array([r["observables"][name]["value"] for r in results])
        e = np.array([r["observables"][name]["error"] for r in results])
        if not (e > 0).all():
            continue
        A = X / e[:, None]
        cov = np.linalg.inv(A.T @ A)
        coef = cov @ (A.T @ (y / e))
        q = {"value": float(coef[0]), "error": float(np.sqrt(cov[0, 0])), "slope": float(coef[1]),
             "slope_error": float(np.sqrt(cov[1, 1]))}
        if len(dt) > 2:
            q["chi2_dof"] = float((((y - X @ coef) / e) ** 2).sum() / (len(dt) - 2))
        if "exact" in q0:
            q["exact"] = q0["exact"]
            q["sigma"] = abs(q["value"] - q["exact"]) / q["error"]
        out[name] = q
    return {"format": "qcdhpc.observables", "schema_version": 2, "theory": NAME, "source": "extrapolation",
            "extrapolation": {"power": p, "scheme": schemes.pop(), "dt": dt.tolist()}, "observables": out,
            "runs": results, "params": results[0]["params"]}


def print_table(res: dict) -> None:
    from .format import value_error

    src = res.get("source", "walkers")
    if src == "extrapolation":
        ex = res["extrapolation"]
        print(f"ε → 0: fit O₀ + c ε^{ex['power']} ({ex['scheme']}) to dt = {', '.join(f'{d:g}' for d in ex['dt'])}")
    else:
        print(f"{res['n_walkers']} {src} ({res['n_runaway']} ran away) x {res['n_records']} records, "
              f"errors: {res['error_method']}")
    label = {"walkers": "CL", "samples": "model", "extrapolation": "CL ε→0"}[src]
    print(f"{'':<10} {label:>22} {'exact':>12} {'σ':>6}")
    for name, q in res["observables"].items():
        s = q.get("sigma")
        print(f"{name:<10} {value_error(q['value'], q['error']):>22} "
              f"{q.get('exact', float('nan')):>12.6f} {('—' if s is None else f'{s:.1f}'):>6}")
    diag = res.get("diagnostics")
    if diag:
        tail = (diag.get("drift_histogram") or {}).get("tail") or {}
        print(f"max |Im z| = {diag.get('max_abs_im'):.3g};  |K| tail: {tail.get('verdict', 'too few records')}")
        for name, b in (diag.get("boundary_terms") or {}).items():
            last = b["at_max"]
            print(f"boundary term B[{name}](Y_max) = {value_error(last['re'], last['re_error'])} "
                  f"+ i {value_error(last['im'], last['im_error'])}  ({last['sigma']:.1f}σ from 0)")
