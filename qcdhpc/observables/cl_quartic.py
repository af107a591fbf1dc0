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
KINDS = ("walkers",)  # measured whole (measure_container), not by per-configuration primaries
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


def measure_container(c) -> dict:
    """The JSON result of one walkers container (see module docstring)."""
    z = c.configs
    w = c.weight
    W = z.shape[0]
    hist = c.history.get("langevin")
    runaway = hist["runaway"].astype(bool) if hist is not None and "runaway" in hist else np.zeros(W, bool)
    per_walker = np.empty((W, len(ORDERS)), np.complex128)
    for start in range(0, W, 4096):  # bounded memory: blocks of walkers
        zb, wb = z[start:start + 4096], w[start:start + 4096]
        zb = np.where(wb > 0, zb, 0.0)
        norm = wb.sum(axis=1)
        pw = np.stack([(wb * zb ** n).sum(axis=1) for n in ORDERS], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_walker[start:start + len(zb)] = pw / norm[:, None]
    good = ~runaway & np.isfinite(per_walker).all(axis=1)
    x = per_walker[good]
    n = len(x)
    if n < 2:
        raise ValueError(f"{c.path}: fewer than 2 walkers that did not run away ({int(runaway.sum())} of {W} did)")
    mean = x.mean(axis=0)
    loo = (x.sum(axis=0)[None, :] - x) / (n - 1)  # delete-one means
    jk = lambda est: np.sqrt((n - 1) / n * ((est - est.mean(axis=0)) ** 2).sum(axis=0))  # noqa: E731
    mu_err = (jk(loo.real), jk(loo.imag))
    kap, kap_loo = _cumulants(mean), _cumulants(loo)
    ka_err = (jk(kap_loo.real), jk(kap_loo.imag))

    sigma = complex(*c.attrs["sigma"]) if isinstance(c.attrs.get("sigma"), list) else None
    lam = c.attrs.get("lam")
    exact_mu = exact_ka = None
    if sigma is not None and lam is not None:
        from ..cl import exact  # the theory's exact reference (quadrature on the real line)

        exact_mu = exact.moments(sigma, float(lam), orders=ORDERS)
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
    return {"format": "qcdhpc.observables", "schema_version": 2, "theory": NAME, "observables": obs,
            "n_walkers": int(n), "n_runaway": int((~good).sum()), "n_records": int(z.shape[1]),
            "error_method": "jackknife over walkers", "params": {k: c.attrs.get(k) for k in ("sigma", "lam")},
            "langevin": dict(hist.attrs) if hist is not None else None}


def print_table(res: dict) -> None:
    from .format import value_error

    print(f"{res['n_walkers']} walkers ({res['n_runaway']} ran away) x {res['n_records']} records, "
          f"errors: {res['error_method']}")
    print(f"{'':<8} {'CL':>22} {'exact':>12} {'σ':>6}")
    for name, q in res["observables"].items():
        s = q.get("sigma")
        print(f"{name:<8} {value_error(q['value'], q['error']):>22} "
              f"{q.get('exact', float('nan')):>12.6f} {('—' if s is None else f'{s:.1f}'):>6}")
