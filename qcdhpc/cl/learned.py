"""Diffusion models learned from complex-Langevin samples of the quartic model (theory "cl-quartic").

The CL distribution p(x, y) of z = x + iy is real and non-negative but has no closed form; a
score-based (SBM, net "mlp") or energy-based (EBM, net "energy") diffusion model trained on the CL
points (x, y) learns it (Arts, Habibi, Wang, Zhou, arXiv:2510.01328).  Here:

- `training_points`: the (n, 2) float32 training data of a walkers container: (x, y) of every record
  of every walker that did not run away (fixed-step files only: their Langevin-time weights are all
  equal, so the records are equally weighted draws; adaptive-step files are refused).
- `point_moments`: μ_n = ⟨(x + iy)ⁿ⟩ and cumulants κ_n from independent points, with standard errors.
- `ensemble_table`: value(stat)(sys) over independently trained models.
- `Grid`, `density_on_grid`: p_θ(x, y) = exp(−E_θ(x, y, t_min)) / ∫∫ exp(−E_θ), its marginals
  p_x = ∫dy p_θ, p_y = ∫dx p_θ, and moments ∫∫ dx dy p_θ (x + iy)ⁿ by the trapezoid rule.
- `curl_on_grid`: ∂_x s_y − ∂_y s_x of a model's score (autograd), the non-conservativeness of an SBM
  (≡ 0 for an EBM: s = −∇E), averaged over models.
- `plot_*`: matplotlib figures (heatmaps of p_θ and of the curl; marginals against the CL histogram).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

THEORY = "cl-quartic"
MOMENTS = (2, 4, 6, 8)


# ------------------------------------------------------------------ training data ---

def training_points(c, max_points: int | None = None) -> tuple[np.ndarray, dict]:
    """(points (n, 2) float32 [x, y], info) from an open walkers container `c` of theory cl-quartic.
    max_points: keep at most that many, thinned evenly along each walker's records (the records
    are autocorrelated, so thinning loses little); ValueError saying why a file cannot be used."""
    if c.kind != "walkers":
        raise ValueError(f"{c.path}: holds {c.kind!r} data, complex-Langevin training needs a walkers container")
    if c.theory != THEORY:
        raise ValueError(f"{c.path}: walkers of theory {c.theory!r}; only {THEORY!r} point data are supported")
    if tuple(c.configs.shape[2:]) != ():
        raise ValueError(f"{c.path}: walkers of site shape {tuple(c.configs.shape[2:])}; the quartic model "
                         "has one complex variable per walker")
    hist = c.history.get("langevin")
    W, R = c.configs.shape[:2]
    weight = np.asarray(c.weight[...])
    if (hist is not None and bool(hist.attrs.get("adaptive", False))) or \
            (weight.size and not np.allclose(weight, weight.flat[0], rtol=1e-12, atol=0)):
        raise ValueError(f"{c.path}: adaptive-step walkers (unequal Langevin-time weights); training "
                         "needs equally weighted records: rerun `qcdhpc cl` without --adaptive")
    runaway = (np.asarray(hist["runaway"]).astype(bool) if hist is not None and "runaway" in hist
               else np.zeros(W, bool))
    good = np.flatnonzero(~runaway)
    if len(good) == 0:
        raise ValueError(f"{c.path}: every one of its {W} walkers ran away; nothing to train on")
    if R < 1:
        raise ValueError(f"{c.path}: no records")
    stride = 1
    if max_points is not None and len(good) * R > max_points:
        stride = -(-len(good) * R // int(max_points))
    z = np.asarray(c.configs[:, ::stride])[good] if stride <= R else None
    if z is None:  # fewer points than walkers: one record (the last) of evenly spaced walkers
        keep = good[np.linspace(0, len(good) - 1, int(max_points)).astype(int)]
        z = np.asarray(c.configs[:, R - 1])[keep][:, None]
    z = z.reshape(-1)
    if max_points is not None:
        z = z[:int(max_points)]
    if not np.isfinite(z).all():
        raise ValueError(f"{c.path}: non-finite records among walkers that did not run away")
    pts = np.stack([z.real, z.imag], axis=1).astype(np.float32)
    info = {"n_walkers": int(W), "n_runaway": int(runaway.sum()), "n_records": int(R), "stride": int(stride),
            "n_points": int(len(pts))}
    return pts, info


# --------------------------------------------------------------------- moments ---

def _cumulants(mu: np.ndarray) -> np.ndarray:
    """κ_1..κ_N from raw moments μ_1..μ_N (last axis)."""
    k = np.zeros_like(mu)
    for n in range(1, mu.shape[-1] + 1):
        k[..., n - 1] = mu[..., n - 1] - sum(math.comb(n - 1, j - 1) * k[..., j - 1] * mu[..., n - j - 1]
                                             for j in range(1, n))
    return k


def point_moments(points, n_blocks: int = 50) -> dict:
    """{"mu": (8,) complex μ_1..μ_8, "kappa": (8,) complex, "mu_err"/"kappa_err": (8,) complex with the
    standard errors of the real and imaginary parts as real and imaginary parts} from independent
    points (n, 2); errors by the jackknife over `n_blocks` blocks (cumulants: as a whole)."""
    p = np.asarray(points, dtype=np.float64)
    z = p[:, 0] + 1j * p[:, 1]
    n = len(z)
    nb = max(2, min(n_blocks, n))
    powers = np.stack([z ** k for k in range(1, 9)], axis=1)
    blocks = np.stack([b.sum(axis=0) for b in np.array_split(powers, nb)])
    counts = np.array([len(b) for b in np.array_split(powers, nb)])
    mu = powers.mean(axis=0)
    loo = (blocks.sum(axis=0)[None] - blocks) / (n - counts)[:, None]

    def jk(est):
        f = lambda a: np.sqrt((nb - 1) / nb * ((a - a.mean(axis=0)) ** 2).sum(axis=0))  # noqa: E731
        return f(est.real) + 1j * f(est.imag)

    return {"mu": mu, "kappa": _cumulants(mu), "mu_err": jk(loo), "kappa_err": jk(_cumulants(loo)), "n": n}


def exact_reference(sigma, lam) -> dict:
    """{"mu": (8,), "kappa": (8,)} complex exact values (qcdhpc.cl.exact, quadrature)."""
    from . import exact

    m = exact.moments(complex(sigma), float(lam), orders=range(1, 9))
    mu = np.array([m[k] for k in range(1, 9)], dtype=np.complex128)
    return {"mu": mu, "kappa": _cumulants(mu)}


def ensemble_table(per_model: list, exact: dict | None = None) -> dict:
    """Combine point_moments of M independently trained models (each on its own samples):
    value = mean over models; stat = the statistical error of that mean (√(Σ stat²)/M);
    sys = the standard deviation over models (ddof 1; the seeds' "(sys)" from 10 models); combined
    σ = √(stat² + sys²); and, against `exact`, the deviation in units of σ.  Also sem_sys = sys/√M
    (the error of the mean over models), reported, not used for σ.  Keys mu2_re, …, kappa8_im."""
    M = len(per_model)
    out = {}
    for tag in ("mu", "kappa"):
        vals = np.stack([r[tag] for r in per_model])
        errs = np.stack([r[f"{tag}_err"] for r in per_model])
        for o in MOMENTS:
            for part, get in (("re", np.real), ("im", np.imag)):
                v = get(vals[:, o - 1])
                stat = float(np.sqrt((get(errs[:, o - 1]) ** 2).sum()) / M)
                sys = float(v.std(ddof=1)) if M > 1 else 0.0
                q = {"value": float(v.mean()), "stat": stat, "sys": sys, "sem_sys": sys / math.sqrt(M),
                     "error": math.hypot(stat, sys), "models": [float(a) for a in v]}
                if exact is not None:
                    q["exact"] = float(get(exact[tag][o - 1]))
                    q["sigma"] = abs(q["value"] - q["exact"]) / q["error"] if q["error"] > 0 else None
                out[f"{tag}{o}_{part}"] = q
    return out


def fmt2(value: float, stat: float, sys: float) -> str:
    """value(stat)(sys) with the digits of the smaller error's leading digit (seeds' style)."""
    small = min(e for e in (stat, sys) if e > 0) if (stat > 0 or sys > 0) else 0.0
    if not small > 0:
        return f"{value:.4g}"
    d = max(0, -int(math.floor(math.log10(small))))
    return f"{value:.{d}f}({round(stat * 10 ** d)})({round(sys * 10 ** d)})"


# ----------------------------------------------------------------------- grids ---

@dataclass
class Grid:
    """A uniform (nx, ny) grid on [x0, x1] × [y0, y1]; `points` (nx·ny, 2) in 'ij' order."""
    x0: float = -2.5
    x1: float = 2.5
    y0: float = -1.5
    y1: float = 1.5
    nx: int = 201
    ny: int = 121

    @property
    def x(self):
        return np.linspace(self.x0, self.x1, self.nx)

    @property
    def y(self):
        return np.linspace(self.y0, self.y1, self.ny)

    @property
    def points(self):
        X, Y = np.meshgrid(self.x, self.y, indexing="ij")
        return np.stack([X.ravel(), Y.ravel()], axis=1)

    def integrate(self, f: np.ndarray):
        """∫∫ f dx dy (trapezoid) of f (nx, ny, ...)."""
        return np.trapezoid(np.trapezoid(f, self.y, axis=1), self.x, axis=0)


def _t(model, B, t=None):
    import torch

    t = model.sde.eps_sample if t is None else float(t)
    return torch.full((B,), t, dtype=torch.float32)


def energy_on_grid(model, grid: Grid, t: float | None = None, chunk: int = 65536) -> np.ndarray:
    """E_θ(x, y, t) (default t = sde.eps_sample) on the grid, (nx, ny) float64."""
    import torch

    pts = torch.as_tensor(grid.points, dtype=torch.float32)
    out = []
    with torch.no_grad():
        for a in pts.split(chunk):
            out.append(model.energy(a, _t(model, len(a), t)).double().numpy())
    return np.concatenate(out).reshape(grid.nx, grid.ny)


def density_from_energy(E: np.ndarray, grid: Grid) -> dict:
    """Normalised p = e^{−E}/∫∫e^{−E} on the grid, marginals p_x (nx,), p_y (ny,), and moments
    μ_1..μ_8 = ∫∫ p (x + iy)ⁿ (complex (8,)), κ from them."""
    w = np.exp(-(E - E.min()))
    p = w / grid.integrate(w)
    X, Y = np.meshgrid(grid.x, grid.y, indexing="ij")
    Z = X + 1j * Y
    mu = np.array([grid.integrate(p * Z ** k) for k in range(1, 9)])
    return {"p": p, "p_x": np.trapezoid(p, grid.y, axis=1), "p_y": np.trapezoid(p, grid.x, axis=0),
            "mu": mu, "kappa": _cumulants(mu)}


def density_on_grid(model, grid: Grid | None = None, t: float | None = None) -> dict:
    """density_from_energy of an energy model's E_θ(·, t_min) (plus "E")."""
    grid = grid or Grid()
    if not hasattr(model, "energy"):
        raise ValueError("p_θ ∝ exp(−E_θ) needs an energy model (net energy); a score model has no energy")
    E = energy_on_grid(model, grid, t)
    return {"E": E, **density_from_energy(E, grid)}


def curl_of(score_fn, pts, t):
    """∂_x s_y − ∂_y s_x at points (B, 2) (torch), by autograd through score_fn(x, t)."""
    import torch

    with torch.enable_grad():
        x = pts.detach().clone().requires_grad_(True)
        s = score_fn(x, t)
        dsy = torch.autograd.grad(s[:, 1].sum(), x, retain_graph=True)[0]
        dsx = torch.autograd.grad(s[:, 0].sum(), x)[0]
    return (dsy[:, 0] - dsx[:, 1]).detach()


def curl_on_grid(models, grid: Grid | None = None, t: float | None = None, chunk: int = 16384) -> dict:
    """{"curl": mean over models of ∂_x s_y − ∂_y s_x (nx, ny), "curl_std": their spread,
    "score": mean score (nx, ny, 2)} of each model's score at time t (default sde.eps_sample)."""
    import torch

    grid = grid or Grid()
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    pts = torch.as_tensor(grid.points, dtype=torch.float32)
    curls, scores = [], []
    for m in models:
        c, s = [], []
        for a in pts.split(chunk):
            tt = _t(m, len(a), t)
            c.append(curl_of(m, a, tt).double().numpy())
            with torch.no_grad():
                s.append(m(a, tt).double().numpy())
        curls.append(np.concatenate(c).reshape(grid.nx, grid.ny))
        scores.append(np.concatenate(s).reshape(grid.nx, grid.ny, 2))
    curls = np.stack(curls)
    return {"curl": curls.mean(0), "curl_std": curls.std(0), "score": np.stack(scores).mean(0),
            "n_models": len(models)}


# ----------------------------------------------------------------------- plots ---

def _save(fig, path):
    from ..io.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def plot_density(dens: dict, grid: Grid, path, title: str = "EBM: p_θ ∝ exp(−E_θ)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ext = (grid.x0, grid.x1, grid.y0, grid.y1)
    for ax, key, lab in ((axes[0], "E", "E_θ(x, y)"), (axes[1], "p", "p_θ(x, y)")):
        a = dens[key] - (dens[key].min() if key == "E" else 0)
        if key == "E":
            a = np.minimum(a, 12.0)
        im = ax.imshow(a.T, origin="lower", extent=ext, aspect="auto", cmap="viridis")
        fig.colorbar(im, ax=ax)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(lab)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_curl(curl: dict, grid: Grid, path, title: str = "curl of the score") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    v = float(np.abs(curl["curl"]).max()) or 1.0
    im = ax.imshow(curl["curl"].T, origin="lower", extent=(grid.x0, grid.x1, grid.y0, grid.y1), aspect="auto",
                   cmap="RdBu_r", vmin=-v, vmax=v)
    fig.colorbar(im, ax=ax, label="∂ₓs_y − ∂_y s_x")
    ax.set_title(f"{title} ({curl['n_models']} models)")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_marginals(dens: dict, grid: Grid, cl_points, path, samples: dict | None = None) -> None:
    """p_x, p_y of the EBM against histograms of the CL points (and of model samples)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for i, (ax, axis, pm) in enumerate(zip(axes, (grid.x, grid.y), (dens["p_x"], dens["p_y"]))):
        bins = np.linspace(axis[0], axis[-1], 81)
        ax.hist(np.asarray(cl_points)[:, i], bins=bins, density=True, histtype="stepfilled", alpha=0.3,
                color="gray", label="CL")
        for name, pts in (samples or {}).items():
            ax.hist(np.asarray(pts)[:, i], bins=bins, density=True, histtype="step", label=name)
        ax.plot(axis, pm, "k-", lw=1.2, label="EBM p_θ (grid)")
        ax.set_xlabel("xy"[i])
        ax.set_ylabel(f"p_{'xy'[i]}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
