"""The φ⁴ report: HMC training set vs independent HMC test set vs diffusion-model samples.

One section per physics point (a directory written by the workflow, layout in docs/workflow.md):

    POINT/observables.json   `qcdhpc measure` of [hmc_train, hmc_test, dm_samples] (side by side)
    POINT/plots/*.png        measure's figures (histograms of M, φ, S/V; C(t); m_eff)
    POINT/model/loss.png     the training loss curve, POINT/model/log.jsonl its data
    POINT/*.h5               the ensembles themselves (for pictures of configurations)

The table has the seeds' columns (⟨M⟩, χ₂ = V⟨M²⟩, U_L) plus ⟨|M|⟩ and S/V, each with its error, and
the compatibility of every row with the HMC test set in standard deviations, |a−b|/√(σa²+σb²)
(numbers formatted by qcdhpc/observables/format.py, as in `qcdhpc measure`'s tables).

`load_point` refuses (ValueError naming the file) an observables.json that is not the JSON of a φ⁴
`qcdhpc measure` run: truncated or malformed text, another format or theory, missing keys.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..observables.format import n_sigma, sigma_text, value_error

# (key in measure JSON, column title) — chi2_full is the seeds' χ₂ (docs/observables.md)
COLUMNS = (("M", "⟨M⟩"), ("chi2_full", "χ₂ = V⟨M²⟩"), ("UL", "U_L"), ("absM", "⟨|M|⟩"),
           ("action_density", "S/V"))
ROW_NAMES = {"hmc_train": "Training (HMC)", "hmc_test": "Testing (HMC)", "dm_samples": "Generated (DM)"}
MEASURE_FORMAT = "qcdhpc.observables"
MEASURE_SCHEMA = 2  # newest measure JSON this report reads (1: before the format header)
from .render import MARK, html_path, is_report, relative as _relative, save_figure  # noqa: F401  (re-exported)


def _number(x) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


def _check_ensemble(ens, where: str) -> None:
    if not isinstance(ens, dict) or not isinstance(ens.get("observables"), dict):
        raise ValueError(f"{where} has no 'observables' object")
    obs = ens["observables"]
    for key, _ in COLUMNS:
        if key not in obs:
            raise ValueError(f"{where} lacks observables.{key} (a φ⁴ measure result has it)")
        q = obs[key]
        if q is not None and not (isinstance(q, dict) and _number(q.get("value")) and _number(q.get("error"))):
            raise ValueError(f"{where}: observables.{key} is not a {{value, error}} result")
    if not isinstance(ens.get("n"), int):
        raise ValueError(f"{where} lacks the number of configurations 'n'")


def load_point(point) -> dict:
    """The measure JSON of a point directory, checked to have what the report uses."""
    path = Path(point) / "observables.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"no observables.json in {point} (run qcdhpc measure first)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from None
    try:
        res = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); truncated, or not written by qcdhpc measure") from None
    if not isinstance(res, dict):
        raise ValueError(f"{path}: not a qcdhpc measure result (a JSON object is expected)")
    fmt_, version = res.get("format", MEASURE_FORMAT), res.get("schema_version", 1)
    if fmt_ != MEASURE_FORMAT:
        raise ValueError(f"{path}: format {fmt_!r}, expected {MEASURE_FORMAT!r}")
    if not isinstance(version, int) or not 1 <= version <= MEASURE_SCHEMA:
        raise ValueError(f"{path}: measure schema_version {version!r} is not supported "
                         f"(this report reads 1..{MEASURE_SCHEMA})")
    if res.get("theory", "phi4") != "phi4":
        raise ValueError(f"{path}: observables of theory {res.get('theory')!r}; this report is for phi4")
    if "ensembles" in res:
        if not isinstance(res["ensembles"], list) or not res["ensembles"]:
            raise ValueError(f"{path}: 'ensembles' is not a non-empty list")
        for i, ens in enumerate(res["ensembles"]):
            _check_ensemble(ens, f"{path}: ensemble {i}")
            if not isinstance(ens.get("label"), str):
                raise ValueError(f"{path}: ensemble {i} has no label")
        dist = res.get("distribution_distance", {})
        if not isinstance(dist, dict) or not all(isinstance(v, dict) for v in dist.values()):
            raise ValueError(f"{path}: 'distribution_distance' is not an object of objects")
    else:
        _check_ensemble(res, str(path))
    return res


def report_inputs(points) -> list[Path]:
    """Files the report reads: each point's observables.json and the ensembles it names."""
    files = []
    for p in points:
        files.append(Path(p) / "observables.json")
        try:
            res = json.loads(files[-1].read_text())
            for ens in res.get("ensembles", [res]):
                src = ens.get("source")
                files += [Path(s) for s in (src if isinstance(src, list) else [src]) if isinstance(s, str)]
        except (OSError, ValueError, AttributeError, TypeError):
            pass  # load_point says what is wrong with it
    return files


def fmt(value, error) -> str:
    """value(error) of a table cell (qcdhpc.observables.format.value_error)."""
    return value_error(value, error)


def _label(ens: dict) -> str:
    return ROW_NAMES.get(ens.get("label", ""), ens.get("label", "?"))


def _config_figure(point: Path, ensembles: list[dict], out: Path, n_show: int = 4) -> Path | None:
    """A row of configurations from each ensemble file: what the generator draws, by eye.  Files that
    are gone or fail validation are left out; None when none is left."""
    import matplotlib
    import numpy as np

    from ..io.containers import open_container

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for ens in ensembles:
        src = ens.get("source")
        src = src[0] if isinstance(src, list) else src
        if not (isinstance(src, str) and Path(src).exists()):
            continue
        try:
            with open_container(src, kinds=("fields", "samples")) as c:
                if len(c) == 0 or len(c.site_shape) != 2:
                    continue
                # evenly spread through the file (for HMC: through the Markov chain)
                idx = [int(i) for i in (len(c) - 1) * (1 + 2 * np.arange(n_show)) // (2 * n_show)]
                rows.append((_label(ens), [np.real(c.configs[i]) for i in idx]))
        except (ValueError, OSError):
            continue
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), n_show, figsize=(1.9 * n_show, 1.9 * len(rows)), squeeze=False)
    for row, (lab, imgs) in enumerate(rows):
        lim = max(float(abs(im).max()) for im in imgs) or 1.0
        for col, im in enumerate(imgs):
            ax = axes[row, col]
            ax.imshow(im, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(lab, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)


def point_section(point: Path, report_dir: Path) -> dict:
    """Everything the report says about one physics point, as plain data."""
    point = Path(point)
    res = load_point(point)
    ensembles = res["ensembles"] if "ensembles" in res else [dict(res, label="hmc_train")]
    params = ensembles[0].get("params", {})
    test = next((e for e in ensembles if e.get("label") == "hmc_test"), None)
    rows = []
    for ens in ensembles:
        obs = ens["observables"]
        cells = [fmt((obs.get(k) or {}).get("value"), (obs.get(k) or {}).get("error")) for k, _ in COLUMNS]
        sig = [None if ens is test or test is None else n_sigma(obs.get(k), test["observables"].get(k))
               for k, _ in COLUMNS[:3]]
        rows.append({"name": _label(ens), "n": ens.get("n"), "cells": cells, "n_sigma": sig,
                     "method": ens.get("error_method")})
    figures = []
    _config_figure(point, ensembles, point / "plots" / "configurations.png")
    for name, caption in (("plots/hist_M.png", "Distribution of the magnetisation M"),
                          ("plots/configurations.png", "Configurations (same colour scale per row)"),
                          ("model/loss.png", "Diffusion-model training loss"),
                          ("plots/hist_action_density.png", "Distribution of the action density S/V"),
                          ("plots/correlator.png", "Zero-momentum correlator C(t)")):
        if (point / name).exists():
            figures.append({"path": _relative(point / name, report_dir), "caption": caption})
    distances = res.get("distribution_distance", {})
    return {"name": point.name, "params": params, "rows": rows, "figures": figures,
            "distances": distances, "L": ensembles[0].get("L")}


INTRO = ("Errors: Γ-method with τ_int per chain for HMC (pyerrors), delete-one jackknife for "
         "independent DM samples. χ₂ = V⟨M²⟩, U_L = 1 − ⟨M⁴⟩/(3⟨M²⟩²) (docs/observables.md). "
         "Last columns: distance to the HMC test set in standard deviations.")


def _describe(section: dict) -> str:
    p = section["params"]
    keys = ("L", "kappa", "lam", "nchains", "ntraj", "therm", "every", "nmd", "tau", "integrator")
    return ", ".join(f"{k} = {p[k]}" for k in keys if k in p)


# --- the report's family interface (qcdhpc/report/render.py) ---

def claims(point: Path) -> bool:
    """A φ⁴ point: observables.json of theory phi4 (or of the schema-1 files, which had no theory)."""
    import json

    f = Path(point) / "observables.json"
    if not f.is_file():
        return False
    try:
        return json.loads(f.read_text(encoding="utf-8")).get("theory", "phi4") == "phi4"
    except (OSError, ValueError, AttributeError):
        return True  # unreadable: load_point says why


def check(point: Path) -> None:
    load_point(point)


def inputs(point: Path) -> list[Path]:
    return report_inputs([point])


def blocks(point: Path, report_dir: Path) -> list:
    s = point_section(point, report_dir)
    head = ["data set", "N"] + [t for _, t in COLUMNS] + [f"σ vs test: {t}" for _, t in COLUMNS[:3]]
    rows = [[r["name"], r["n"], *r["cells"], *[sigma_text(x) for x in r["n_sigma"]]] for r in s["rows"]]
    out = [("h2", s["name"]), ("p", _describe(s)), ("p", INTRO), ("table", head, rows)]
    items = []
    for lab, d in s["distances"].items():
        parts = [f"{k}: KS D = {v.get('ks_D', float('nan')):.3f}, Hellinger = {v.get('hellinger', float('nan')):.3f}"
                 for k, v in d.items() if isinstance(v, dict)]
        if parts:
            items.append(f"distribution distance of {ROW_NAMES.get(lab, lab)} from the training set — " + "; ".join(parts))
    if items:
        out.append(("list", items))
    out += [("figure", f["path"], f["caption"]) for f in s["figures"]]
    return out


def write_report(points, out_md, title: str = "qcdhpc report") -> tuple[Path, Path]:
    """Write OUT.md and OUT.html for the given directories (qcdhpc.report.render.write_report)."""
    from .render import write_report as _write

    return _write(points, out_md, title=title)
