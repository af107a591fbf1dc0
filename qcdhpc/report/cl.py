"""Report sections of the complex-Langevin family (qcdhpc/report/render.py's interface).

Two kinds of directory (written by workflows/rules/cl.smk):

    QUARTIC/observables.json   `qcdhpc measure` of the quartic walkers (theory cl-quartic):
                               μ₂…μ₈, κ₂…κ₈ against exact, diagnostics; QUARTIC/plots/*.png
    QUARTIC/table.json         `qcdhpc cl-table`: the seeds' table exact / CL / SBM / EBM / MCMC-EBM
                               (optional), QUARTIC/table_plots/*.png
    SCAN/mu_<μ>/observables.json   `qcdhpc measure` of Bose-gas runs (theory cl-bose), one per μ

The scan section tabulates ⟨n⟩ and ⟨φ*φ⟩ against μ with the free (λ = 0) lattice density at the same
μ, the checks (runaways, max |Im φ|, the |K| tail, the boundary terms at Y_max), draws n(μ), and
locates the onset: the μ where n first crosses ONSET_N (linear interpolation between scan points),
next to the free onset cosh μ₀ = 1 + m²/2 (Aarts, PRL 102 (2009) 131601).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..observables.format import sigma_text, value_error
from .render import relative, save_figure

ONSET_N = 0.1  # lattice units; far above the thermal density below onset on 4^4 (≲ 0.03)
_MOMENTS = [f"{t}{o}_{p}" for t in ("mu", "kappa") for o in (2, 4, 6, 8) for p in ("re", "im")]


def _load(path: Path, theory: str) -> dict:
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable measure JSON ({exc})") from None
    if not isinstance(res, dict) or res.get("theory") != theory or not isinstance(res.get("observables"), dict):
        raise ValueError(f"{path}: not the measure JSON of a {theory} walkers file")
    return res


def _theory(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("theory")
    except (OSError, ValueError, AttributeError):
        return None


def _scan_points(d: Path) -> list[Path]:
    return sorted(p for p in d.glob("mu_*/observables.json"))


def claims(d: Path) -> bool:
    obs = d / "observables.json"
    if obs.is_file():
        return _theory(obs) == "cl-quartic"
    pts = _scan_points(d)
    return bool(pts) and _theory(pts[0]) == "cl-bose"


def _is_scan(d: Path) -> bool:
    return not (d / "observables.json").is_file()


def check(d: Path) -> None:
    if _is_scan(d):
        for p in _scan_points(d):
            _load(p, "cl-bose")
    else:
        _load(d / "observables.json", "cl-quartic")
        t = d / "table.json"
        if t.exists():
            try:
                tab = json.loads(t.read_text(encoding="utf-8"))
                assert tab.get("format") == "qcdhpc.cl-table" and isinstance(tab.get("rows"), dict)
            except (OSError, ValueError, AssertionError, AttributeError):
                raise ValueError(f"{t}: not a table written by qcdhpc cl-table") from None


def inputs(d: Path) -> list[Path]:
    files = _scan_points(d) if _is_scan(d) else [d / "observables.json", d / "table.json"]
    for f in list(files):
        try:
            files += [Path(s) for s in json.loads(f.read_text()).get("inputs", []) if isinstance(s, str)]
        except (OSError, ValueError, AttributeError):
            pass
    return files


def blocks(d: Path, report_dir: Path) -> list:
    return _scan_blocks(d, report_dir) if _is_scan(d) else _quartic_blocks(d, report_dir)


def _boundary_items(diag: dict) -> list[str]:
    items = []
    for name, b in (diag.get("boundary_terms") or {}).items():
        a = b.get("at_max", {})
        items.append(f"boundary term B[{name}](Y_max) = {value_error(a.get('re'), a.get('re_error'))} "
                     f"+ i {value_error(a.get('im'), a.get('im_error'))} ({sigma_text(a.get('sigma'))}σ from 0)")
    return items


def _checks(res: dict) -> list[str]:
    diag = res.get("diagnostics", {})
    tail = ((diag.get("drift_histogram") or {}).get("tail") or {}).get("verdict", "—")
    return [f"runaway walkers: {res.get('n_runaway')} of {res.get('n_walkers')}",
            f"max |Im z| = {diag.get('max_abs_im', float('nan')):.3g}", f"|K| histogram tail: {tail}",
            *_boundary_items(diag)]


def _figures(d: Path, report_dir: Path, sub: str, captions: dict) -> list:
    out = []
    for f in sorted((d / sub).glob("*.png")) if (d / sub).is_dir() else []:
        cap = next((c for k, c in captions.items() if k in f.name), f.stem)
        out.append(("figure", relative(f, report_dir), cap))
    return out


def _quartic_blocks(d: Path, report_dir: Path) -> list:
    from ..cl import moments_table as mt

    res = _load(d / "observables.json", "cl-quartic")
    p, lv, obs = res.get("params", {}), res.get("langevin", {}), res["observables"]
    s = p.get("sigma", [float("nan")] * 2)
    out = [("h2", f"Complex Langevin: quartic model σ₀ = {s[0]:g}{s[1]:+g}i, λ = {p.get('lam')}"),
           ("p", f"{res.get('n_walkers')} walkers × {res.get('n_records')} records, scheme {lv.get('scheme')}, "
                 f"ε = {lv.get('dt')}{' adaptive' if lv.get('adaptive') else ''}, every {lv.get('every')} steps; "
                 f"errors: {res.get('error_method')}. Exact: quadrature on the real line (qcdhpc.cl.exact).")]
    rows = [[k, value_error(q.get("value"), q.get("error")), f"{q['exact']:.6f}" if "exact" in q else "—",
             sigma_text(q.get("sigma"))] for k, q in obs.items() if k in _MOMENTS]
    out += [("table", ["", "CL", "exact", "σ"], rows), ("list", _checks(res))]
    out += _figures(d, report_dir, "plots", {"drift": "|K| histogram", "boundary": "boundary terms B(Y)"})
    t = d / "table.json"
    if t.exists():
        tab = json.loads(t.read_text(encoding="utf-8"))
        lines = mt.markdown(tab)
        head = [c.strip() for c in lines[0].strip("|").split("|")]
        body = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
        M = max((len(v) for v in tab.get("files", {}).values()), default=0)
        out += [("h2", "Diffusion models on the CL samples: the seeds' table"),
                ("p", f"{M} independently trained models per row; value(stat)(sys): stat = error of the "
                      "model-averaged mean, sys = spread over the models; [deviation from exact in "
                      f"√(stat² + sys²)]. Largest SBM/EBM deviation over μ₂…μ₈: {mt.worst_sigma(tab):.1f}σ."),
                ("table", head, body)]
        out += _figures(d, report_dir, "table_plots", {"curl_sbm": "curl of the SBM score (mean over models)",
                                                       "curl_ebm": "curl of the EBM score (≡ 0)",
                                                       "density": "EBM p_θ ∝ exp(−E_θ)",
                                                       "marginals": "marginals of p_θ against CL"})
    return out


def scan_rows(d: Path) -> list[dict]:
    """One dict per μ of a Bose-gas scan directory, sorted by μ."""
    from ..cl import exact

    rows = []
    for f in _scan_points(d):
        res = _load(f, "cl-bose")
        p, obs = res.get("params", {}), res["observables"]
        mu, m = float(p["mu"]), float(p["m"])
        free = None
        if abs(mu) < math.acosh(1 + m * m / 2):
            try:
                free = exact.free_bose_density(int(p["N"]), int(p["d"]), m, mu)
            except (ValueError, ZeroDivisionError):
                free = None
        rows.append({"mu": mu, "params": p, "n": obs.get("density_re"), "n_im": obs.get("density_im"),
                     "phi2": obs.get("phi2_re"), "free_n": free, "res": res, "dir": f.parent})
    return sorted(rows, key=lambda r: r["mu"])


def onset(rows: list[dict], threshold: float = ONSET_N):
    """μ where n first crosses `threshold` (linear interpolation), None if it never does."""
    for a, b in zip(rows, rows[1:]):
        na, nb = a["n"]["value"], b["n"]["value"]
        if na < threshold <= nb:
            return a["mu"] + (threshold - na) * (b["mu"] - a["mu"]) / (nb - na)
    return None


def _n_plot(rows, path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mu = [r["mu"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    ax[0].errorbar(mu, [r["n"]["value"] for r in rows], [r["n"]["error"] for r in rows], fmt="o-", ms=4, label="CL")
    fr = [(r["mu"], r["free_n"]) for r in rows if r["free_n"] is not None]
    if fr:
        ax[0].plot(*zip(*fr), "k--", lw=1, label="free (λ = 0), exact")
    ax[0].set_xlabel("μ")
    ax[0].set_ylabel("⟨n⟩")
    ax[0].legend(fontsize=8)
    ax[1].errorbar(mu, [r["phi2"]["value"] for r in rows], [r["phi2"]["error"] for r in rows], fmt="s-", ms=4)
    ax[1].set_xlabel("μ")
    ax[1].set_ylabel("⟨φ*φ⟩")
    fig.tight_layout()
    return save_figure(fig, path)


def _scan_blocks(d: Path, report_dir: Path) -> list:
    rows = scan_rows(d)
    p = rows[0]["params"]
    m = float(p["m"])
    mu0, mu_c = math.acosh(1 + m * m / 2), onset(rows)
    head = ["μ", "⟨n⟩", "Im ⟨n⟩", "free ⟨n⟩ (λ=0)", "⟨φ*φ⟩", "runaway", "max ∣Im φ∣", "∣K∣ tail",
            "B[density](Y_max)", "B[phi2](Y_max)"]
    body = []
    for r in rows:
        diag = r["res"].get("diagnostics", {})
        bt = diag.get("boundary_terms", {})
        b = lambda k: value_error(bt.get(k, {}).get("at_max", {}).get("re"),  # noqa: E731
                                  bt.get(k, {}).get("at_max", {}).get("re_error"))
        tail = ((diag.get("drift_histogram") or {}).get("tail") or {}).get("verdict", "—")
        body.append([f"{r['mu']:g}", value_error(r["n"]["value"], r["n"]["error"]),
                     value_error(r["n_im"]["value"], r["n_im"]["error"]),
                     "—" if r["free_n"] is None else f"{r['free_n']:.3g}",
                     value_error(r["phi2"]["value"], r["phi2"]["error"]), str(r["res"].get("n_runaway")),
                     f"{diag.get('max_abs_im', float('nan')):.3g}",
                     "exp. or faster" if tail.startswith("falls off") else tail, b("density"), b("phi2")])
    lv = rows[0]["res"].get("langevin", {})
    out = [("h2", f"Complex Langevin: Bose gas {p['N']}^{p['d']}, m = {p['m']}, λ = {p['lam']} — ⟨n⟩(μ)"),
           ("p", f"{rows[0]['res'].get('n_walkers')} configurations × {rows[0]['res'].get('n_records')} records per μ, "
                 f"scheme {lv.get('scheme')}, ε = {lv.get('dt')}; errors: {rows[0]['res'].get('error_method')}. "
                 f"Onset (n = {ONSET_N} crossing, linear between scan points "
                 f"{max(r['mu'] for r in rows if r['mu'] <= mu_c):g} and {min(r['mu'] for r in rows if r['mu'] >= mu_c):g}): "
                 f"μ ≈ {mu_c:.3f}" if mu_c is not None else
                 f"No onset (n < {ONSET_N}) in the scanned range." ),
           ("p", f"Free lattice onset cosh μ₀ = 1 + m²/2: μ₀ = {mu0:.4f}. Below onset n is μ-independent at "
                 "T = 0 (Silver Blaze); at N_t = N the thermal tail of the lightest mode is left, which the "
                 "free column shows for λ = 0. The boundary terms at Y_max include the O(ε²) stationary bias "
                 "of the Heun scheme (docs/results.md), not only the boundary contribution."),
           ("table", head, body)]
    fig = _n_plot(rows, d / "n_of_mu.png")
    if fig is not None:
        out.append(("figure", relative(fig, report_dir), f"⟨n⟩ and ⟨φ*φ⟩ against μ, {p['N']}^{p['d']}"))
    return out
