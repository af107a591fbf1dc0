"""Measurement of ensemble files: read, choose the error method, lay out the result (JSON of
docs/data_formats.md §4), and compare several ensembles side by side.

Error method per file ("auto"): Γ-method when the configurations come from Markov chains, i.e. the
file is not a sample file (attribute kind ending in "-samples", e.g. "diffusion-samples") and its
chains hold more than one configuration each; otherwise the samples are independent and we use the
delete-one jackknife (errors.py).  The HMC history (acceptance, ⟨e^{−ΔH}⟩) is always analysed with
the Γ-method on the per-trajectory series of each chain; files without one report null there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import distributions, errors, phi4

CONFIG_ENSEMBLE = "ens"     # pyerrors ensemble name of per-configuration samples
HISTORY_ENSEMBLE = "traj"   # ... and of per-trajectory samples (a different sampling of the chains)
METHODS = ("auto", "gamma", "jackknife")


@dataclass
class _FileData:
    """Per-replica primaries and history of one file (memory: O(n · L0) numbers, no fields)."""
    path: str
    series: dict              # {primary: {replica: (n_r,) or (n_r, L0)}}
    history: dict | None      # {"acceptance": {replica: ...}, "exp_minus_dH": {...}} or None
    volume: int
    shape: tuple
    attrs: dict
    n: int
    independent: bool         # samples are independent draws (no Markov chain structure)
    phi_hist: dict


@dataclass
class Measurement:
    result: dict                                 # the JSON layout
    samples: dict = field(default_factory=dict)  # per-configuration M and S/V, for distribution distances


def _read(path, prefix: str = "", bins: int = distributions.DEFAULT_BINS) -> _FileData:
    from ..io.ensemble import open_ensemble

    with open_ensemble(path) as ens:
        attrs = {k: v for k, v in ens.attrs.items() if k != "next_traj"}  # per-chain counters: noise here
        kappa, lam = attrs.get("kappa"), attrs.get("lam")
        kappa, lam = (float(kappa), float(lam)) if kappa is not None and lam is not None else (None, None)
        n = len(ens)
        if n == 0:
            raise ValueError(f"{path}: no configurations")
        shape = tuple(ens.configs.shape[1:])
        if len(shape) != 2:
            raise ValueError(f"{path}: configurations of shape {shape}, expected (L0, L1)")
        blocks, lo, hi = [], math.inf, -math.inf
        for _, block in ens.iter_chunks():  # streams: memory is one chunk of configurations
            blocks.append(phi4.primaries(block, kappa, lam))
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
        hist = distributions.FieldHistogram(lo, hi, bins)
        for _, block in ens.iter_chunks():  # second pass: the bins need the range of φ
            hist.add(block)
        per_config = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
        chains = np.unique(ens.chain)
        sample_file = str(attrs.get("kind", "")).endswith("-samples")
        independent = sample_file or len(chains) == n
        series = {k: {} for k in per_config}
        for c in chains:
            rows = np.flatnonzero(ens.chain == c)
            rows = rows[np.argsort(ens.traj[rows], kind="stable")]  # Monte Carlo order within the chain
            for k, v in per_config.items():
                series[k][f"{prefix}chain{c}"] = v[rows]
        history = None
        # A direct sampler has no Metropolis step; `qcdhpc sample` writes placeholder /hmc datasets
        # (ΔH = 0, accepted = 1, attribute hmc_history = "none") which must not be reported as HMC data.
        if ens.dH is not None and ens.dH.size and not sample_file and attrs.get("hmc_history") != "none":
            therm = ens.n_therm
            history = {
                "acceptance": {f"{prefix}chain{c}": ens.accepted[c, therm:].astype(np.float64)
                               for c in range(ens.accepted.shape[0])},
                "exp_minus_dH": {f"{prefix}chain{c}": np.exp(-ens.dH[c, therm:]) for c in range(ens.dH.shape[0])},
            }
    return _FileData(str(path), series, history, int(np.prod(shape)), shape, attrs, n, independent,
                     hist.result())


def _method(datas, method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"error method must be one of {', '.join(METHODS)}, got {method!r}")
    if method != "auto":
        return method
    kinds = {d.independent for d in datas}
    if len(kinds) > 1:
        raise ValueError("cannot combine independent samples with Markov chains: "
                         + ", ".join(f"{d.path} ({'independent' if d.independent else 'Markov'})" for d in datas))
    return "jackknife" if kinds.pop() else "gamma"


def _analyse(datas, method: str) -> tuple[dict, str]:
    """{name: summary} of all quantities of the merged replicas of `datas`."""
    series = {k: {} for k in datas[0].series}
    for d in datas:
        for k, by_rep in d.series.items():
            series[k].update(by_rep)
    volume = datas[0].volume
    derive = lambda m: phi4.derive(m, volume)  # noqa: E731
    method = _method(datas, method)
    if method == "gamma":
        res = errors.gamma(series, derive, CONFIG_ENSEMBLE)
    else:  # independent samples: the replica split carries no information, concatenate
        flat = {k: np.concatenate([by_rep[r] for r in sorted(by_rep)]) for k, by_rep in series.items()}
        res = errors.jackknife(flat, derive)
    histories = [d.history for d in datas if d.history is not None]
    for name in phi4.HISTORY:
        if len(histories) == len(datas):
            merged = {}
            for h in histories:
                merged.update(h[name])
            res[name] = errors.summary(errors.primary(merged, HISTORY_ENSEMBLE))
        else:
            res[name] = None  # no HMC history (generated samples): not applicable
    return res, method


def _layout(datas, res: dict, method: str, source, params: dict) -> Measurement:
    L0 = datas[0].shape[0]
    observables = {name: res.get(name) for name in (*phi4.MAIN, *phi4.HISTORY)}
    extras = {name: res[name] for name in phi4.SCALAR_EXTRAS}
    for name in phi4.VECTOR_EXTRAS:
        extras[name] = {"t": list(range(len(res[name]["value"]))), **res[name]}
    n_replicas = sum(len(d.series["M"]) for d in datas)
    samples = {"M": np.concatenate([np.concatenate(list(d.series["M"].values())) for d in datas])}
    if "s" in datas[0].series:
        samples["action_density"] = np.concatenate([np.concatenate(list(d.series["s"].values())) for d in datas])
    dists = {"M": distributions.histogram(samples["M"]), "phi": datas[0].phi_hist if len(datas) == 1 else None}
    if "action_density" in samples:
        dists["action_density"] = distributions.histogram(samples["action_density"])
    if dists["phi"] is None:
        del dists["phi"]
    result = {"observables": observables, "extras": extras, "distributions": dists,
              "n": sum(d.n for d in datas), "n_chains": n_replicas, "error_method": method,
              "L": [int(L0), int(datas[0].shape[1])], "source": source, "params": params}
    return Measurement(result, samples)


def measure_file(path, method: str = "auto", bins: int = distributions.DEFAULT_BINS) -> Measurement:
    """Measure one ensemble or sample file (docs/data_formats.md §4)."""
    d = _read(path, bins=bins)
    res, method = _analyse([d], method)
    return _layout([d], res, method, str(path), d.attrs)


def measure_combined(paths, method: str = "auto", bins: int = distributions.DEFAULT_BINS) -> Measurement:
    """Several files as replicas of ONE ensemble (MPI shards, extra runs; their L, kappa, lam must
    agree).  Replicas are named file{i}.chain{c}; `params` holds the attributes common to all files,
    differing ones (e.g. seed) as lists."""
    paths = [str(p) for p in paths]
    if len(paths) == 1:
        return measure_file(paths[0], method, bins)
    datas = [_read(p, f"file{i}.", bins) for i, p in enumerate(paths)]
    for key in ("L", "kappa", "lam"):
        values = {repr(d.attrs.get(key)) for d in datas}
        if len(values) > 1:
            raise ValueError(f"cannot combine {', '.join(paths)}: they differ in {key} ({', '.join(values)})")
    if len({d.shape for d in datas}) > 1:
        raise ValueError(f"cannot combine {', '.join(paths)}: lattices differ ({[d.shape for d in datas]})")
    params = {}
    for key in datas[0].attrs:
        values = [d.attrs.get(key) for d in datas]
        params[key] = values[0] if all(v == values[0] for v in values) else values
    res, method = _analyse(datas, method)
    return _layout(datas, res, method, paths, params)


def measure_files(paths, method: str = "auto") -> dict:
    """JSON dict of `measure_combined` (one file, or several as replicas of one ensemble)."""
    return measure_combined(paths, method).result


def n_sigma(a: dict | None, b: dict | None):
    """|a − b| / √(σ_a² + σ_b²) of two {value, error} results (None when not comparable)."""
    if not a or not b:
        return None
    d = abs(a["value"] - b["value"])
    s = math.hypot(a["error"], b["error"])
    if not (math.isfinite(d) and math.isfinite(s)):
        return None
    if s == 0:
        return 0.0 if d == 0 else None
    return d / s


def compare(measurements, labels) -> dict:
    """Side-by-side JSON of several ensembles, with per-observable compatibility (n_sigma) and
    distribution distances (KS, Hellinger on M and S/V) of each against the first."""
    ref, ref_label = measurements[0], labels[0]
    ensembles = [{"label": lab, **m.result} for lab, m in zip(labels, measurements)]
    compat, dist = {}, {}
    scalar = lambda r, k: r["observables"].get(k) if k in r["observables"] else r["extras"].get(k)  # noqa: E731
    for lab, m in zip(labels[1:], measurements[1:]):
        compat[lab] = {k: n_sigma(scalar(ref.result, k), scalar(m.result, k))
                       for k in (*phi4.MAIN, *phi4.HISTORY, *phi4.SCALAR_EXTRAS)}
        dist[lab] = {}
        for k in ("M", "action_density"):
            if k in ref.samples and k in m.samples:
                ta = (scalar(ref.result, k) or {}).get("tau_int", 0.5)
                tb = (scalar(m.result, k) or {}).get("tau_int", 0.5)
                dist[lab][k] = distributions.compare(ref.samples[k], m.samples[k], ta, tb)
    return {"ensembles": ensembles, "reference": ref_label, "compatibility": compat,
            "distribution_distance": dist}


def json_safe(x):
    """NaN/inf → None and numpy scalars → Python, recursively (strict JSON has no NaN)."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x
