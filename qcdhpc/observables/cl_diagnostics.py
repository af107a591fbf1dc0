"""Correctness diagnostics of complex-Langevin runs, shared by every CL theory (cl_quartic.py, cl_bose.py).

Complex Langevin converges to the right answer only if the distribution P(x, y) of the process falls
off fast enough in the imaginary directions; two checks a user expects to see next to every result:

* The drift criterion (Nagata, Nishimura, Shimasaki, PRD 94 (2016) 114515): the histogram p(u) of the
  drift magnitude u = |K| (u = K_max on a lattice) must fall off exponentially or faster; a power-law
  tail p(u) ~ u^−α signals wrong convergence.  `drift_histogram` gives p(u) on logarithmic bins and
  fits an exponential log p = a − b·u between the 90th and 99th percentile; the verdict compares the
  number of records beyond u_j = u₉₉ + j/b, j = 1..6, with the exponential's prediction (a tail
  heavier than exponential exceeds it by more than 4σ + 3 records somewhere).
* Boundary terms (Scherzer, Seiler, Sexty, Stamatescu, PRD 99 (2019) 014512; PRD 101 (2020) 014501):
  for an observable O the Langevin operator L_c = (∂_z + K)∂_z gives
        B_O(Y) = ⟨(L_c O)(z) Θ(Y − |Im z|)⟩,
  which must go to 0 as the cut-off Y grows (at Y = ∞ it is d⟨O⟩/dt, zero in equilibrium, and a
  plateau away from 0 at large Y is the boundary term that biases CL).  For O = zⁿ,
  L_c zⁿ = n(n−1) zⁿ⁻² + n zⁿ⁻¹ K(z).  `boundary_curve` takes per-walker series of L_c O and |Im z|
  and returns B(Y) on a grid of Y with jackknife errors over walkers (walkers are independent).
"""
from __future__ import annotations

import numpy as np


def _fit(x, y):
    """Least squares y = a + b·x: (b, R²)."""
    A = np.stack([np.ones_like(x), x], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    ss = float(((y - y.mean()) ** 2).sum())
    return float(coef[1]), (1.0 - float((resid ** 2).sum()) / ss) if ss > 0 else 1.0


def drift_histogram(u, weights=None, bins: int = 40) -> dict:
    """{"edges", "density", "u_max", "tail": {"exp_rate", "checks": [{u, expected,
    observed}], "verdict"}} of the drift magnitudes u (any shape; non-finite entries and weight 0 dropped)."""
    u = np.asarray(u, dtype=np.float64).ravel()
    w = np.ones_like(u) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    keep = np.isfinite(u) & (w > 0) & (u > 0)
    u, w = u[keep], w[keep]
    if u.size < 10:
        return {"edges": [], "density": [], "u_max": float(u.max()) if u.size else None, "tail": None}
    lo, hi = np.quantile(u, 1e-4), u.max()
    edges = np.geomspace(max(lo, 1e-300), hi * (1 + 1e-12), bins + 1)
    counts, _ = np.histogram(u, bins=edges, weights=w)
    density = counts / (w.sum() * np.diff(edges))
    centres = np.sqrt(edges[1:] * edges[:-1])
    q90, q99 = np.quantile(u, [0.9, 0.99])
    tail = None
    tc, te = np.histogram(u[(u >= q90) & (u <= q99)], bins=10, range=(q90, q99))  # linear bins for the fit
    sel = tc > 0
    if sel.sum() >= 3 and q99 > q90:
        tx = 0.5 * (te[1:] + te[:-1])
        b = -_fit(tx[sel], np.log(tc[sel]))[0]  # log p = a − b·u on the 90th–99th percentile
        if b > 0:
            # Compare the records beyond u_j = q99 + j/b (j = 1..6) with what that exponential predicts,
            # P(u > u_j) = P(u > q99)·e^{−j}: a power-law (or any heavier-than-exponential) tail exceeds
            # the prediction more and more with j; an exponential matches it, a Gaussian falls short.
            wt = w.sum()
            p99 = float(w[u > q99].sum() / wt)
            checks = []
            heavy = False
            for j in range(1, 7):
                expected = wt * p99 * np.exp(-j) * (u.size / wt)  # in records
                observed = int(np.count_nonzero(u > q99 + j / b))
                checks.append({"u": float(q99 + j / b), "expected": float(expected), "observed": observed})
                heavy |= observed > expected + 4.0 * np.sqrt(expected) + 3.0
            tail = {"exp_rate": float(b), "checks": checks,
                    "verdict": ("heavier than exponential: check convergence" if heavy
                                else "falls off exponentially or faster")}
    return {"edges": edges.tolist(), "density": density.tolist(), "u_max": float(hi), "tail": tail}


def boundary_curve(lco, imag, weights, n_y: int = 24, y_max: float | None = None) -> dict:
    """B(Y) = ⟨L_c O · Θ(Y − |Im z|)⟩ for Y on a grid up to the largest |Im z| (or `y_max`).

    lco (W, R) complex: L_c O at each record; imag (W, R): |Im z| (or a lattice's max_x |Im φ_x|);
    weights (W, R): Langevin-time weights (0 for dropped records).  Each walker's time average, then the
    mean over walkers and its delete-one jackknife error (real and imaginary parts).  Returns
    {"Y", "re", "re_error", "im", "im_error"} (lists) and "at_max" = the last point {re, re_error, im,
    im_error, "sigma"}: its distance from 0 in units of its error (the larger of the two parts)."""
    lco = np.asarray(lco, np.complex128)
    imag = np.asarray(imag, np.float64)
    w = np.asarray(weights, np.float64)
    ok = np.isfinite(lco) & np.isfinite(imag) & (w > 0)
    w = np.where(ok, w, 0.0)
    lco, imag = np.where(ok, lco, 0.0), np.where(ok, imag, 0.0)
    norm = w.sum(axis=1)
    good = norm > 0
    lco, imag, w, norm = lco[good], imag[good], w[good], norm[good]
    top = float(imag.max()) if imag.size else 0.0
    Y = np.linspace(0.0, top if y_max is None else float(y_max), n_y + 1)[1:] if top > 0 else np.array([1.0])
    Y[-1] = max(Y[-1], top)  # the last point includes every record
    W = len(norm)
    per = np.empty((W, len(Y)), np.complex128)
    for j, y in enumerate(Y):
        per[:, j] = (w * lco * (imag <= y)).sum(axis=1) / norm
    mean = per.mean(axis=0)
    if W > 1:
        loo = (per.sum(axis=0)[None, :] - per) / (W - 1)
        err = lambda x: np.sqrt((W - 1) / W * ((x - x.mean(axis=0)) ** 2).sum(axis=0))  # noqa: E731
        er, ei = err(loo.real), err(loo.imag)
    else:
        er = ei = np.full(len(Y), np.nan)
    last = {"re": float(mean[-1].real), "re_error": float(er[-1]), "im": float(mean[-1].imag),
            "im_error": float(ei[-1])}
    with np.errstate(divide="ignore", invalid="ignore"):
        s = [abs(last["re"]) / last["re_error"] if last["re_error"] > 0 else 0.0,
             abs(last["im"]) / last["im_error"] if last["im_error"] > 0 else 0.0]
    last["sigma"] = float(max(s))
    return {"Y": Y.tolist(), "re": mean.real.tolist(), "re_error": er.tolist(), "im": mean.imag.tolist(),
            "im_error": ei.tolist(), "at_max": last}


def plot_diagnostics(result: dict, outdir, stem: str) -> list:
    """|K| histogram (log-log) and the boundary-term curves of a CL result into outdir; the paths."""
    from pathlib import Path

    from .plots import _plt

    plt = _plt()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    diag = result.get("diagnostics") or {}
    h = diag.get("drift_histogram")
    if h and h.get("edges"):
        fig, ax = plt.subplots(figsize=(5, 3.6))
        e = np.asarray(h["edges"])
        d = np.asarray(h["density"])
        c = np.sqrt(e[1:] * e[:-1])
        ax.loglog(c[d > 0], d[d > 0], "o-", ms=3)
        ax.set_xlabel("|K|" if result.get("theory") == "cl-quartic" else "K_max")
        ax.set_ylabel("p")
        t = h.get("tail") or {}
        ax.set_title(f"drift magnitude: {t.get('verdict', '')}", fontsize=9)
        fig.tight_layout()
        p = outdir / f"{stem}_drift_hist.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)
    bts = diag.get("boundary_terms") or {}
    if bts:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for name, b in bts.items():
            Y = np.asarray(b["Y"])
            for part, ls in (("re", "-"), ("im", "--")):
                ax.errorbar(Y, b[part], yerr=b[f"{part}_error"], ls=ls, capsize=2, label=f"{part} B[{name}]")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xlabel("cut-off Y on |Im z|")
        ax.set_ylabel("B(Y)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = outdir / f"{stem}_boundary_terms.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)
    return paths
