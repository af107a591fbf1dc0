"""Measurement of container files: read, choose the error method, lay out the result (JSON of
docs/data_formats.md §4), and compare several ensembles side by side.

Files are read with qcdhpc.io.containers.open_container (kinds "fields" and "samples"; legacy ensemble
files too).  The observables are those of the file's theory (theories.py; φ⁴: phi4.py).  Error method
per file ("auto"): the Γ-method when the configurations form Markov chains, i.e. a "fields" container
whose chains hold more than one configuration each; otherwise ("samples" containers, or one
configuration per chain) they are independent and we use the delete-one jackknife (errors.py).  The
HMC history (acceptance, ⟨e^{−ΔH}⟩) is analysed, with the Γ-method on the per-trajectory series of
each chain, only when the container records one (/history/hmc); otherwise those keys are null.

Every measurement also keeps the pyerrors Obs of its primaries' means and derived quantities
(Measurement.obs), written by `qcdhpc measure --out` beside the JSON so that later fits keep all
correlations.  pyerrors ensemble names are the measurement's name (its label: distinct names for
distinct files, so Obs of different files combine as independent).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import distributions, errors, theories
from .format import n_sigma

METHODS = ("auto", "gamma", "jackknife")
HMC_HISTORY = ("acceptance", "exp_minus_dH")  # what an HMC history (/history/hmc: dH, accepted) gives
SCHEMA_VERSION = 2  # of the measure JSON (1: unversioned, with the |M|-subtracted χ₂ named "chi2")
FORMAT = "qcdhpc.observables"


@dataclass
class _FileData:
    """Per-replica primaries and history of one file (memory: O(n · L0) numbers, no fields)."""
    path: str
    theory: object            # the observable module (theories.py)
    series: dict              # {primary: {replica: (n_r,) or (n_r, L0)}}
    history: dict | None      # {"acceptance": {replica: ...}, "exp_minus_dH": {...}} or None
    shape: tuple
    attrs: dict
    n: int
    independent: bool         # samples are independent draws (no Markov chain structure)
    field_hist: dict


@dataclass
class Measurement:
    result: dict                                 # the JSON layout
    samples: dict = field(default_factory=dict)  # per-configuration series of the histograms / distances
    obs: dict | None = None                      # pyerrors Obs: {"primaries": {...}, "observables": {...}}
    theory: object = None                        # the observable module (theories.py)
    name: str = "ens"                            # pyerrors ensemble name of its Obs


def ensemble_name(label) -> str:
    """A pyerrors ensemble name from a label ('|' separates ensemble and replica there)."""
    name = str(label).replace("|", "_").strip()
    return name or "ens"


def _hmc_history(c, prefix: str) -> dict | None:
    """Post-thermalisation acceptance and e^{−ΔH} per chain, from a Markov ensemble's /history/hmc."""
    h = c.history.get("hmc") if c.kind == "fields" else None
    if h is None or "dH" not in h or "accepted" not in h:
        return None
    therm = int(h.attrs.get("n_therm", 0))
    dH, accepted = h["dH"], h["accepted"]
    if dH.ndim != 2 or dH.shape[1] <= therm:
        return None
    return {"acceptance": {f"{prefix}chain{c_}": accepted[c_, therm:].astype(np.float64)
                           for c_ in range(accepted.shape[0])},
            "exp_minus_dH": {f"{prefix}chain{c_}": np.exp(-dH[c_, therm:].astype(np.float64))
                             for c_ in range(dH.shape[0])}}


def _read(path, prefix: str = "", bins: int = distributions.DEFAULT_BINS) -> _FileData:
    from ..io.containers import open_container

    try:
        with open_container(path, kinds=("fields", "samples")) as c:
            return _read_container(c, path, prefix, bins)
    except OSError as exc:  # a damaged chunk found while reading (the layout was valid)
        raise ValueError(f"{path}: cannot read the configurations ({exc})") from None


def _read_container(c, path, prefix: str, bins: int) -> _FileData:
    theory = theories.observables_for(c.theory, path)
    if c.kind not in getattr(theory, "KINDS", ("fields", "samples")):
        raise ValueError(f"{path}: theory {c.theory!r} has no observables for {c.kind} files")
    attrs = {k: v for k, v in c.attrs.items() if k != "next_traj"}  # per-chain counters: noise here
    n = len(c)
    if n == 0:
        raise ValueError(f"{path}: no configurations")
    shape = tuple(c.site_shape)
    try:
        theory.check_layout(shape, c.configs.dtype)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    blocks, lo, hi = [], math.inf, -math.inf
    for start, block in c.iter_chunks():  # streams: memory is one chunk of configurations
        bmin, bmax = float(block.min()), float(block.max())
        if not (math.isfinite(bmin) and math.isfinite(bmax)):
            raise ValueError(f"{path}: configurations {start}..{start + len(block) - 1} hold non-finite "
                             "values (NaN or inf)")
        blocks.append(theory.primaries(block, attrs))
        lo, hi = min(lo, bmin), max(hi, bmax)
    hist = distributions.FieldHistogram(lo, hi, bins)
    for _, block in c.iter_chunks():  # second pass: the bins need the range of the field
        hist.add(block)
    per_config = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    chains = np.unique(c.chain)
    independent = c.kind == "samples" or len(chains) == n
    series = {k: {} for k in per_config}
    for ch in chains:
        rows = np.flatnonzero(c.chain == ch)
        rows = rows[np.argsort(c.traj[rows], kind="stable")]  # Monte Carlo order within the chain
        for k, v in per_config.items():
            series[k][f"{prefix}chain{ch}"] = v[rows]
    return _FileData(str(path), theory, series, _hmc_history(c, prefix), shape, attrs, n, independent,
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


def _analyse(datas, method: str, name: str) -> tuple[dict, str, dict]:
    """({quantity: summary}, method, {"primaries": Obs, "observables": Obs}) of the merged replicas."""
    theory = datas[0].theory
    series = {k: {} for k in datas[0].series}
    for d in datas:
        for k, by_rep in d.series.items():
            series[k].update(by_rep)
    shape = datas[0].shape
    derive = lambda m: theory.derive(m, shape)  # noqa: E731
    method = _method(datas, method)
    if method == "gamma":
        res, prim, derived = errors.gamma_with_obs(series, derive, name)
    else:  # independent samples: the replica split carries no information, concatenate
        flat = {k: np.concatenate([by_rep[r] for r in sorted(by_rep)]) for k, by_rep in series.items()}
        res, prim, derived = errors.jackknife_with_obs(flat, derive, name)
    histories = [d.history for d in datas if d.history is not None]
    for q in theory.HISTORY:
        if len(histories) == len(datas) and q in HMC_HISTORY:
            merged = {}
            for h in histories:
                merged.update(h[q])
            o = errors.primary(merged, f"{name}.traj")  # trajectories: another sampling of the chains
            res[q] = errors.summary(o)
            derived[q] = o
        else:
            res[q] = None  # no HMC history (generated samples): not applicable
            derived[q] = None
    return res, method, {"primaries": prim, "observables": derived}


def _layout(datas, res: dict, method: str, source, params: dict, bins: int) -> tuple[dict, dict]:
    theory = datas[0].theory
    observables = {q: res.get(q) for q in (*theory.MAIN, *theory.HISTORY)}
    extras = {q: res[q] for q in theory.SCALAR_EXTRAS}
    for q in theory.VECTOR_EXTRAS:
        extras[q] = {"t": list(range(len(res[q]["value"]))), **res[q]}
    n_replicas = sum(len(next(iter(d.series.values()))) for d in datas)
    samples, dists = {}, {}
    for key, primary in theory.DISTRIBUTIONS.items():
        if primary in datas[0].series:
            samples[key] = np.concatenate([np.concatenate(list(d.series[primary].values())) for d in datas])
            dists[key] = distributions.histogram(samples[key], bins)
    if len(datas) == 1:
        dists[theory.FIELD_HISTOGRAM] = datas[0].field_hist
    result = {"theory": theory.NAME, "observables": observables, "extras": extras, "distributions": dists,
              "n": sum(d.n for d in datas), "n_chains": n_replicas, "error_method": method,
              "L": [int(s) for s in datas[0].shape], "source": source, "params": params}
    return result, samples


def measure_file(path, method: str = "auto", bins: int = distributions.DEFAULT_BINS,
                 name: str | None = None) -> Measurement:
    """Measure one ensemble or sample file (docs/data_formats.md §4).  `name`: the pyerrors ensemble
    name of its Obs (default: the file's stem)."""
    name = ensemble_name(name if name is not None else Path(path).stem)
    d = _read(path, bins=bins)
    res, method, obs = _analyse([d], method, name)
    result, samples = _layout([d], res, method, str(path), d.attrs, bins)
    return Measurement(result, samples, obs, d.theory, name)


def measure_combined(paths, method: str = "auto", bins: int = distributions.DEFAULT_BINS,
                     name: str | None = None) -> Measurement:
    """Several files as replicas of ONE ensemble (MPI shards, extra runs; their theory, lattice and
    couplings must agree).  Replicas are named file{i}.chain{c}; `params` holds the attributes common
    to all files, differing ones (e.g. seed) as lists."""
    paths = [str(p) for p in paths]
    if len(paths) == 1:
        return measure_file(paths[0], method, bins, name)
    name = ensemble_name(name if name is not None else "combined")
    datas = [_read(p, f"file{i}.", bins) for i, p in enumerate(paths)]
    theories_ = {d.theory.NAME for d in datas}
    if len(theories_) > 1:
        raise ValueError(f"cannot combine {', '.join(paths)}: they are of different theories "
                         f"({', '.join(sorted(theories_))})")
    for key in ("L", *getattr(datas[0].theory, "COUPLINGS", ())):
        values = {repr(d.attrs.get(key)) for d in datas}
        if len(values) > 1:
            raise ValueError(f"cannot combine {', '.join(paths)}: they differ in {key} ({', '.join(values)})")
    if len({d.shape for d in datas}) > 1:
        raise ValueError(f"cannot combine {', '.join(paths)}: lattices differ ({[d.shape for d in datas]})")
    params = {}
    for key in datas[0].attrs:
        values = [d.attrs.get(key) for d in datas]
        params[key] = values[0] if all(v == values[0] for v in values) else values
    res, method, obs = _analyse(datas, method, name)
    result, samples = _layout(datas, res, method, paths, params, bins)
    return Measurement(result, samples, obs, datas[0].theory, name)


def measure_files(paths, method: str = "auto") -> dict:
    """JSON dict of `measure_combined` (one file, or several as replicas of one ensemble)."""
    return measure_combined(paths, method).result


def _scalar(result: dict, key: str):
    return result["observables"].get(key) if key in result["observables"] else result["extras"].get(key)


def compare(measurements, labels) -> dict:
    """Side-by-side JSON of several ensembles, with per-observable compatibility (n_sigma) and
    distribution distances (KS, Hellinger of the theory's DISTRIBUTIONS) of each against the first."""
    if len(set(labels)) != len(labels):
        raise ValueError(f"the ensembles need distinct labels, got {', '.join(labels)} (use --labels)")
    names = {m.theory.NAME for m in measurements}
    if len(names) > 1:
        raise ValueError(f"cannot compare ensembles of different theories ({', '.join(sorted(names))})")
    ref, theory = measurements[0], measurements[0].theory
    ensembles = [{"label": lab, **m.result} for lab, m in zip(labels, measurements)]
    compat, dist = {}, {}
    for lab, m in zip(labels[1:], measurements[1:]):
        compat[lab] = {k: n_sigma(_scalar(ref.result, k), _scalar(m.result, k))
                       for k in (*theory.MAIN, *theory.HISTORY, *theory.SCALAR_EXTRAS)}
        dist[lab] = {}
        for k in theory.DISTRIBUTIONS:
            if k in ref.samples and k in m.samples:
                ta = (_scalar(ref.result, k) or {}).get("tau_int", 0.5)
                tb = (_scalar(m.result, k) or {}).get("tau_int", 0.5)
                dist[lab][k] = distributions.compare(ref.samples[k], m.samples[k], ta, tb)
    return {"theory": theory.NAME, "ensembles": ensembles, "reference": labels[0], "compatibility": compat,
            "distribution_distance": dist}


def input_paths(paths) -> list[str]:
    """Absolute paths of the measured files (the JSON's `inputs`: what a rerun must measure again)."""
    return [str(Path(p).resolve()) for p in paths]


def document(result: dict, paths) -> dict:
    """The measure JSON: `result` (one measurement or a comparison) under its format header; `paths`
    are the measured files."""
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "inputs": input_paths(paths), **result}


def pyerrors_tree(measurements, labels=None) -> dict:
    """What the pyerrors file holds: one measurement's {"primaries", "observables"} (pe.Obs, lists of
    them for vector quantities, None where not formed), or {"ensembles": {label: that}}."""
    if labels is None:
        return measurements[0].obs
    return {"ensembles": {lab: m.obs for lab, m in zip(labels, measurements)}}


def pyerrors_description(measurements) -> dict:
    """Metadata of the pyerrors file: its pyerrors ensembles and how to reproduce the JSON's errors."""
    sources = []
    for m in measurements:
        src = m.result["source"]
        sources += input_paths(src if isinstance(src, list) else [src])
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "theory": measurements[0].theory.NAME,
            "sources": sources,
            "error_method": {m.name: m.result["error_method"] for m in measurements},
            "errors": "Obs.gamma_method(S=2) for error_method gamma (Markov chains; ensemble NAME, "
                      "per-trajectory history NAME.traj); S=0 for jackknife (independent samples)"}


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
