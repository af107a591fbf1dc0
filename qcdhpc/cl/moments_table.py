"""The seeds' moments/cumulants table of the CL quartic model: exact, CL, SBM, EBM, MCMC-EBM.

Rows (generative-ai-meets-physics.txt, the table of μ₂…μ₈ and κ₂…κ₈):

    exact      quadrature of exp(−S) on the real line (qcdhpc.cl.exact)
    CL         the walkers' measure JSON (`qcdhpc measure CL.h5`: jackknife over walkers)
    SBM        samples of M independently trained score models (`qcdhpc sample MODEL --sampler em`)
    EBM        samples of M energy models, same sampler
    MCMC-EBM   Metropolis-adjusted Langevin on exp(−E_θ) of the same energy models (`--sampler mala`)

Model rows are value(stat)(sys) over the M models (qcdhpc.cl.learned.ensemble_table: stat = the
error of the model-averaged mean, sys = the spread over models as in the seeds), and the deviation
from exact in units of √(stat² + sys²).  Samples are (n, 2) points (x, y) = (Re z, Im z) in `samples`
containers of theory cl-quartic; every file must be of the CL run's σ₀ and λ.

`build_table` returns plain data (written as TABLE.json by `qcdhpc cl-table`), `markdown` the table.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import learned

ROWS = ("SBM", "EBM", "MCMC-EBM")
ORDERS = (2, 4, 6, 8)
TABLE_FORMAT = "qcdhpc.cl-table"


def _close(a, b) -> bool:
    return abs(complex(a) - complex(b)) <= 1e-12 * max(1.0, abs(complex(b)))


def read_cl(path) -> dict:
    """The CL row and the action from a cl-quartic measure JSON (ValueError naming the file)."""
    import json

    try:
        res = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"--cl {path}: no such file (run qcdhpc measure CL.h5 --out {path})") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"--cl {path}: not a readable measure JSON ({exc})") from None
    if not isinstance(res, dict) or res.get("theory") != "cl-quartic" or res.get("source") != "walkers":
        raise ValueError(f"--cl {path}: not the measure JSON of a cl-quartic walkers file")
    obs, par = res.get("observables"), res.get("params", {})
    try:
        sigma, lam = complex(*par["sigma"]), float(par["lam"])
        row = {k: {"value": float(obs[k]["value"]), "error": float(obs[k]["error"])}
               for k in obs if k.startswith(("mu", "kappa"))}
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"--cl {path}: lacks params.sigma/lam or {{value, error}} moments") from None
    return {"sigma": sigma, "lam": lam, "row": row, "n_walkers": res.get("n_walkers"),
            "n_runaway": res.get("n_runaway")}


def read_samples(path, sigma: complex, lam: float) -> np.ndarray:
    """The (n, 2) points of a cl-quartic samples file of the same action (ValueError otherwise)."""
    from ..io.containers import open_container

    try:
        with open_container(path, kinds=("samples",)) as c:
            theory = c.attrs.get("theory")
            if isinstance(theory, bytes):
                theory = theory.decode()
            if theory != "cl-quartic" or tuple(c.site_shape) != (2,):
                raise ValueError(f"{path}: samples of theory {theory!r}, site shape {tuple(c.site_shape)}; "
                                 "a cl-quartic model's (n, 2) samples are needed")
            s, la = c.attrs.get("sigma"), c.attrs.get("lam")
            if s is None or la is None or not (_close(complex(*np.ravel(s)), sigma) and _close(la, lam)):
                raise ValueError(f"{path}: samples of σ₀ = {s}, λ = {la}; the CL run has σ₀ = {sigma}, λ = {lam}")
            x = np.asarray(c.configs[...], dtype=np.float64)
    except (OSError, KeyError) as exc:
        raise ValueError(f"{path}: not a readable samples container ({exc})") from None
    if x.shape[0] < 100:
        raise ValueError(f"{path}: {x.shape[0]} samples; at least 100 are needed for errors")
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: non-finite samples")
    return x


def build_table(cl_json, rows: dict, extra: dict | None = None) -> dict:
    """rows: {"SBM": [samples.h5, …], "EBM": […], "MCMC-EBM": […]} (empty lists are left out)."""
    cl = read_cl(cl_json)
    exact = learned.exact_reference(cl["sigma"], cl["lam"])
    out = {"format": TABLE_FORMAT, "version": 1, "sigma": [cl["sigma"].real, cl["sigma"].imag],
           "lam": cl["lam"], "cl": cl["row"], "cl_walkers": cl["n_walkers"], "cl_runaway": cl["n_runaway"],
           "exact": {f"{t}{o}_{p}": float(getattr(exact[t][o - 1], "real" if p == "re" else "imag"))
                     for t in ("mu", "kappa") for o in ORDERS for p in ("re", "im")},
           "rows": {}, "files": {}}
    for name, files in rows.items():
        if not files:
            continue
        per_model = [learned.point_moments(read_samples(f, cl["sigma"], cl["lam"])) for f in files]
        out["rows"][name] = learned.ensemble_table(per_model, exact)
        out["files"][name] = [str(f) for f in files]
    out.update(extra or {})
    return out


def worst_sigma(table: dict, rows=("SBM", "EBM"), tag: str = "mu") -> float:
    """The largest deviation from exact (combined σ) over the given rows' μ₂…μ₈ (or κ)."""
    devs = [q["sigma"] for r in rows if r in table["rows"]
            for k, q in table["rows"][r].items() if k.startswith(tag) and q.get("sigma") is not None]
    return max(devs) if devs else float("nan")


def markdown(table: dict, tag: str = "mu") -> list[str]:
    """The table as markdown lines: exact, CL, and every model row with [deviation in σ]."""
    from ..observables.format import value_error

    keys = [f"{tag}{o}_{p}" for o in ORDERS for p in ("re", "im")]
    sym = "μ" if tag == "mu" else "κ"
    head = [f"{'Re' if k.endswith('re') else 'Im'} {sym}{k[len(tag):-3]}" for k in keys]
    lines = ["| | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|",
             "| exact | " + " | ".join(f"{table['exact'][k]:.6f}" for k in keys) + " |",
             "| CL | " + " | ".join(value_error(table["cl"][k]["value"], table["cl"][k]["error"])
                                   if k in table["cl"] else "—" for k in keys) + " |"]
    for name, tab in table["rows"].items():
        M = len(table["files"].get(name, [])) or "?"
        lines.append(f"| {name} ({M} models) | " + " | ".join(
            f"{learned.fmt2(tab[k]['value'], tab[k]['stat'], tab[k]['sys'])} [{tab[k]['sigma']:.1f}σ]"
            for k in keys) + " |")
    return lines
