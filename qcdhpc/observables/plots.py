"""Figures of one or several measured ensembles (matplotlib, Agg: no display needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _step(ax, hist: dict, label: str) -> None:
    edges, density = np.asarray(hist["edges"]), np.asarray(hist["density"])
    ax.stairs(density, edges, label=label)


def write_plots(results: list[dict], labels: list[str], outdir) -> list[Path]:
    """hist_M.png (all ensembles overlaid), hist_phi.png, hist_action_density.png, correlator.png (C(t)
    with errors, log scale), m_eff.png — those whose quantities the results have.  `results` are the
    per-file JSON dicts of measure.py.  Returns the files written."""
    plt = _plt()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []

    for key, fname, xlabel in (("M", "hist_M.png", "M = (1/V) Σ φ"), ("phi", "hist_phi.png", "φ(x)"),
                               ("action_density", "hist_action_density.png", "S/V")):
        if not any(res["distributions"].get(key) for res in results):
            continue  # not a quantity of these files' theory (or no couplings for S/V)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for res, lab in zip(results, labels):
            if res["distributions"].get(key):
                _step(ax, res["distributions"][key], lab)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density")
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(outdir / fname, dpi=120)
        plt.close(fig)
        written.append(outdir / fname)

    for key, fname, ylabel, log in (("C_t", "correlator.png", "C(t)", True), ("m_eff", "m_eff.png", "m_eff(t)", False)):
        if not all(key in res["extras"] for res in results):
            continue
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for i, (res, lab) in enumerate(zip(results, labels)):
            q = res["extras"][key]
            t = np.asarray(q["t"], dtype=float) + 0.08 * i  # offset so error bars of ensembles don't overlap
            v = np.array([np.nan if x is None else x for x in q["value"]], dtype=float)
            e = np.array([np.nan if x is None else x for x in q["error"]], dtype=float)
            ax.errorbar(t, v, yerr=e, fmt="o", ms=3, capsize=2, label=lab)
        if log:
            ax.set_yscale("symlog", linthresh=1e-4)
        ax.set_xlabel("t")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(outdir / fname, dpi=120)
        plt.close(fig)
        written.append(outdir / fname)
    return written
