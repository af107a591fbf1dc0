"""The φ⁴ report: HMC training set vs independent HMC test set vs diffusion-model samples.

One section per physics point (a directory written by the workflow, layout in docs/workflow.md):

    POINT/observables.json   `qcdhpc measure` of [hmc_train, hmc_test, dm_samples] (side by side)
    POINT/plots/*.png        measure's figures (histograms of M, φ, S/V; C(t); m_eff)
    POINT/model/loss.png     the training loss curve, POINT/model/log.jsonl its data
    POINT/*.h5               the ensembles themselves (for pictures of configurations)

The table has the seeds' columns (⟨M⟩, χ₂ = V⟨M²⟩, U_L) plus ⟨|M|⟩ and S/V, each with its error, and
the compatibility of every row with the HMC test set in standard deviations, |a−b|/√(σa²+σb²).
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

# (key in measure JSON, column title) — chi2_full is the seeds' χ₂ (docs/observables.md)
COLUMNS = (("M", "⟨M⟩"), ("chi2_full", "χ₂ = V⟨M²⟩"), ("UL", "U_L"), ("absM", "⟨|M|⟩"),
           ("action_density", "S/V"))
ROW_NAMES = {"hmc_train": "Training (HMC)", "hmc_test": "Testing (HMC)", "dm_samples": "Generated (DM)"}


def fmt(value, error) -> str:
    """value(error) with two significant digits of the error, e.g. 2.516(46)."""
    if value is None:
        return "—"
    if error is None or not math.isfinite(error) or error <= 0:
        return f"{value:.4g}"
    digits = max(0, 1 - int(math.floor(math.log10(error))))
    scaled = round(error * 10**digits)
    if scaled >= 100:  # rounding carried into a third digit (e.g. 0.0996 -> 100)
        digits -= 1
        scaled = round(error * 10**digits)
    if digits <= 0:  # errors >= 10: both rounded to the error's second significant digit
        return f"{round(value, digits):.0f}({round(error, digits):.0f})"
    return f"{value:.{digits}f}({scaled})"


def n_sigma(a: dict | None, b: dict | None):
    if not a or not b or a.get("value") is None or b.get("value") is None:
        return None
    var = (a.get("error") or 0.0) ** 2 + (b.get("error") or 0.0) ** 2
    return abs(a["value"] - b["value"]) / math.sqrt(var) if var > 0 else None


def _label(ens: dict) -> str:
    return ROW_NAMES.get(ens.get("label", ""), ens.get("label", "?"))


def _config_figure(point: Path, ensembles: list[dict], out: Path, n_show: int = 4) -> Path | None:
    """A row of configurations from each ensemble file: what the generator draws, by eye."""
    import h5py
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for ens in ensembles:
        src = ens.get("source")
        src = src[0] if isinstance(src, list) else src
        if src and Path(src).exists():
            files.append((_label(ens), Path(src)))
    if not files:
        return None
    fig, axes = plt.subplots(len(files), n_show, figsize=(1.9 * n_show, 1.9 * len(files)), squeeze=False)
    for row, (lab, path) in enumerate(files):
        with h5py.File(path, "r") as f:
            cfg = f["configs"]
            # evenly spread through the file (for HMC: through the Markov chain)
            idx = [int(i) for i in (len(cfg) - 1) * (1 + 2 * np.arange(n_show)) // (2 * n_show)]
            imgs = [cfg[i] for i in idx]
        lim = max(float(abs(im).max()) for im in imgs)
        for col, im in enumerate(imgs):
            ax = axes[row, col]
            ax.imshow(im, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(lab, fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _relative(path: Path, base: Path) -> str:
    """Figure links relative to the report, so the results directory can be moved as a whole."""
    path, base = Path(path).resolve(), Path(base).resolve()
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


def point_section(point: Path, report_dir: Path) -> dict:
    """Everything the report says about one physics point, as plain data."""
    point = Path(point)
    res = json.loads((point / "observables.json").read_text())
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


def _md_table(section: dict) -> list[str]:
    head = ["data set", "N"] + [t for _, t in COLUMNS] + [f"σ vs test: {t}" for _, t in COLUMNS[:3]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in section["rows"]:
        sig = ["—" if s is None else f"{s:.1f}" for s in r["n_sigma"]]
        lines.append("| " + " | ".join([r["name"], str(r["n"]), *r["cells"], *sig]) + " |")
    return lines


def _describe(section: dict) -> str:
    p = section["params"]
    keys = ("L", "kappa", "lam", "nchains", "ntraj", "therm", "every", "nmd", "tau", "integrator")
    return ", ".join(f"{k} = {p[k]}" for k in keys if k in p)


def write_report(points, out_md, title: str = "qcdhpc φ⁴ report") -> tuple[Path, Path]:
    """Write OUT.md and OUT.html for the given point directories; returns both paths."""
    out_md = Path(out_md)
    report_dir = out_md.parent
    sections = [point_section(Path(p), report_dir) for p in points]
    md = [f"# {title}", "",
          "Errors: Γ-method with τ_int per chain for HMC (pyerrors), delete-one jackknife for "
          "independent DM samples. χ₂ = V⟨M²⟩, U_L = 1 − ⟨M⁴⟩/(3⟨M²⟩²) (docs/observables.md). "
          "Last columns: distance to the HMC test set in standard deviations.", ""]
    for s in sections:
        md += [f"## {s['name']}", "", _describe(s), ""] + _md_table(s) + [""]
        for lab, d in s["distances"].items():
            parts = [f"{k}: KS D = {v.get('ks_D', float('nan')):.3f}, Hellinger = {v.get('hellinger', float('nan')):.3f}"
                     for k, v in d.items() if isinstance(v, dict)]
            if parts:
                md.append(f"- distribution distance of {ROW_NAMES.get(lab, lab)} from the training set — " + "; ".join(parts))
        md.append("")
        for f in s["figures"]:
            md += [f"![{f['caption']}]({f['path']})", f"*{f['caption']}*", ""]
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(md) + "\n")

    esc = html.escape
    h = [f"<!doctype html><meta charset='utf-8'><title>{esc(title)}</title>",
         "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
         "img{max-width:32em;margin:4px}figure{display:inline-block}</style>",
         f"<h1>{esc(title)}</h1><p>{esc(md[2])}</p>"]
    for s in sections:
        head = ["data set", "N"] + [t for _, t in COLUMNS] + [f"σ vs test: {t}" for _, t in COLUMNS[:3]]
        h.append(f"<h2>{esc(s['name'])}</h2><p>{esc(_describe(s))}</p><table><tr>"
                 + "".join(f"<th>{esc(c)}</th>" for c in head) + "</tr>")
        for r in s["rows"]:
            sig = ["—" if x is None else f"{x:.1f}" for x in r["n_sigma"]]
            h.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in [r["name"], r["n"], *r["cells"], *sig]) + "</tr>")
        h.append("</table>")
        for f in s["figures"]:
            h.append(f"<figure><img src='{esc(f['path'])}'><figcaption>{esc(f['caption'])}</figcaption></figure>")
    out_html = out_md.with_suffix(".html")
    out_html.write_text("\n".join(h) + "\n")
    return out_md, out_html
