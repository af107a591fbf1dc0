"""Basic φ⁴ observables of ensembles, with Γ-method errors (conventions in docs/conventions.md).

Per configuration:  M = (1/V) Σ_x φ(x),  s = S/V with S = Σ_x[-2κΣ_μ φφ_μ + (1-2λ)φ² + λφ⁴].
Ensemble averages (errors propagated from the primary means ⟨M⟩, ⟨|M|⟩, ⟨M²⟩, ⟨M⁴⟩, ⟨s⟩):
    chi2_full = V⟨M²⟩,   chi2 = V(⟨M²⟩ - ⟨|M|⟩²),   UL = U_L = 1 - ⟨M⁴⟩ / (3⟨M²⟩²)
Per trajectory after thermalisation, when the file has an HMC history:
    acceptance = ⟨accepted⟩,   exp_minus_dH = ⟨e^{-ΔH}⟩ (= 1 for an exact algorithm)

Works on arrays (`measure_arrays`) so it does not care how the samples were made; `measure_files`
adds reading from ensemble files (io.ensemble) with bounded memory.
"""
from __future__ import annotations

import numpy as np

from . import errors

CONFIG_ENSEMBLE = "ens"     # pyerrors ensemble name of per-configuration samples
HISTORY_ENSEMBLE = "traj"   # ... and of per-trajectory samples (a different sampling of the chains)


def magnetisation(configs) -> np.ndarray:
    """M = (1/V) Σ_x φ(x) of each configuration of a (n, L0, L1) stack, float64."""
    configs = np.asarray(configs)
    return configs.reshape(len(configs), -1).mean(axis=1, dtype=np.float64)


def action_density(configs, kappa: float, lam: float) -> np.ndarray:
    """S/V of each configuration of a (n, L0, ..., ) stack (periodic, any dimension), float64."""
    phi = np.asarray(configs, dtype=np.float64)
    phi2 = phi * phi
    hop = sum(phi * np.roll(phi, -1, axis=mu) for mu in range(1, phi.ndim))
    s = -2.0 * kappa * hop + (1.0 - 2.0 * lam) * phi2 + lam * phi2 * phi2
    return s.reshape(len(phi), -1).mean(axis=1)


def measure_arrays(M: dict, s: dict, volume: int, dH: dict | None = None, accepted: dict | None = None) -> dict:
    """Observables from per-replica series in Monte Carlo order.

    M, s: {replica label: per-configuration M and S/V}; dH, accepted: {replica label: per-trajectory
    ΔH and accept flags after thermalisation} or None.  Returns {name: {"value","error","tau_int"}}.
    """
    m = errors.primary(M, CONFIG_ENSEMBLE)
    am = errors.primary({c: np.abs(v) for c, v in M.items()}, CONFIG_ENSEMBLE)
    m2 = errors.primary({c: v**2 for c, v in M.items()}, CONFIG_ENSEMBLE)
    m4 = errors.primary({c: v**4 for c, v in M.items()}, CONFIG_ENSEMBLE)
    obs = {
        "M": m,
        "absM": am,
        "chi2_full": volume * m2,
        "chi2": volume * (m2 - am * am),
        "UL": 1 - m4 / (3 * m2 * m2),
        "action_density": errors.primary(s, CONFIG_ENSEMBLE),
    }
    if dH is not None and accepted is not None:
        obs["acceptance"] = errors.primary(accepted, HISTORY_ENSEMBLE)
        obs["exp_minus_dH"] = errors.primary({c: np.exp(-v) for c, v in dH.items()}, HISTORY_ENSEMBLE)
    return {name: errors.summary(o) for name, o in obs.items()}


def _read_series(path, label_prefix: str):
    """Per-chain series of one ensemble file, each chain sorted by trajectory."""
    from ..io.ensemble import open_ensemble

    with open_ensemble(path) as ens:
        kappa, lam = float(ens.attrs["kappa"]), float(ens.attrs["lam"])
        n = len(ens)
        volume = int(np.prod(ens.configs.shape[1:]))
        Mall, sall = np.empty(n), np.empty(n)
        for start, block in ens.iter_chunks():  # streams: memory is one chunk of configurations
            Mall[start:start + len(block)] = magnetisation(block)
            sall[start:start + len(block)] = action_density(block, kappa, lam)
        M, s = {}, {}
        for c in np.unique(ens.chain):
            rows = np.flatnonzero(ens.chain == c)
            rows = rows[np.argsort(ens.traj[rows], kind="stable")]
            M[f"{label_prefix}chain{c}"], s[f"{label_prefix}chain{c}"] = Mall[rows], sall[rows]
        therm = ens.n_therm
        dH = {f"{label_prefix}chain{c}": ens.dH[c, therm:] for c in range(ens.dH.shape[0])}
        acc = {f"{label_prefix}chain{c}": ens.accepted[c, therm:].astype(np.float64)
               for c in range(ens.accepted.shape[0])}
        attrs = {k: v for k, v in ens.attrs.items() if k != "next_traj"}  # per-chain counters: noise here
    return M, s, dH, acc, volume, attrs, n


def measure_files(paths) -> dict:
    """Measure one ensemble file, or several files combined as replicas of one ensemble (their
    lattice and couplings must agree).  Returns the JSON layout of docs/data_formats.md:
    {"observables": {name: {"value", "error", "tau_int"}}, "n": N, "source": path(s), "params": {...}}
    ("params" holds the attributes common to all files; differing ones become lists, e.g. seeds)."""
    paths = [str(p) for p in paths]
    M, s, dH, acc, volumes, attrs_all, n = {}, {}, {}, {}, set(), [], 0
    for i, path in enumerate(paths):
        prefix = f"file{i}." if len(paths) > 1 else ""
        Mi, si, dHi, acci, vol, attrs, ni = _read_series(path, prefix)
        M.update(Mi), s.update(si), dH.update(dHi), acc.update(acci)
        volumes.add(vol), attrs_all.append(attrs)
        n += ni
    for key in ("L", "kappa", "lam"):
        values = {repr(a.get(key)) for a in attrs_all}
        if len(values) > 1:
            raise ValueError(f"cannot combine {', '.join(paths)}: they differ in {key} ({', '.join(values)})")
    params = {}
    for key in attrs_all[0]:
        values = [a.get(key) for a in attrs_all]
        params[key] = values[0] if all(v == values[0] for v in values) else values
    return {"observables": measure_arrays(M, s, volumes.pop(), dH, acc), "n": n,
            "source": paths[0] if len(paths) == 1 else paths, "params": params}
