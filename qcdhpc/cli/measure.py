"""`qcdhpc measure`: observables of ensemble / sample files with honest errors (docs/observables.md).

One file: a table and {"observables", "extras", "distributions", "n", ..., "source", "params"}.
Several files: side by side against the first (compatibility in σ, KS / Hellinger distances), JSON
{"ensembles": [...], "reference", "compatibility", "distribution_distance"}; or, with --combine,
one ensemble made of all files' chains (MPI shards, extra runs of the same parameters).
numpy, h5py, pyerrors and matplotlib are imported only when the command runs.
"""
from __future__ import annotations

import json
import math

from functools import partial

from .common import refuse

_refuse = partial(refuse, command="measure")  # also right when run(args) is called directly

# Rows of the table: the required observables, then the scalar extras.
ROWS = ("M", "absM", "chi2", "chi2_full", "chi2_conn", "UL", "action_density", "phi2", "phi4",
        "acceptance", "exp_minus_dH")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "measure", help="φ⁴ observables of ensembles with Γ-method / jackknife errors",
        description="Measure ⟨M⟩, ⟨|M|⟩, χ₂, V⟨M²⟩, Binder U_L, S/V, C(t), m_eff, histograms, and for HMC "
                    "files the acceptance and ⟨exp(-ΔH)⟩. Markov chains: Γ-method (pyerrors), one replica "
                    "per chain; independent samples (kind=*-samples, or one configuration per chain): "
                    "delete-one jackknife. Several files are shown side by side against the first, or "
                    "with --combine merged as replicas of one ensemble.")
    p.add_argument("files", nargs="+", metavar="FILE.h5")
    p.add_argument("--out", help="write the results as JSON here (without --out the JSON goes to stdout "
                                 "instead of the table)")
    p.add_argument("--labels", help="comma-separated names of the files in the table/JSON (default: file names)")
    p.add_argument("--combine", action="store_true",
                   help="treat all files as replicas (chains) of ONE ensemble instead of comparing them")
    p.add_argument("--plots", metavar="DIR", help="write histograms of M, φ, S/V and C(t), m_eff plots here")
    p.add_argument("--errors", choices=("auto", "gamma", "jackknife"), default="auto",
                   help="error method: auto = Γ-method for Markov chains, jackknife for independent samples")
    p.add_argument("--bins", type=int, default=50, help="histogram bins (50)")
    p.add_argument("--quiet", action="store_true", help="do not print the table")
    p.set_defaults(func=lambda args, parser=None: run(args), subparser=p)




def _fmt(q) -> str:
    """value(error) in the last two significant digits of the error, e.g. 2.516(46)."""
    if not q or q.get("value") is None:
        return "—"
    v, e = q["value"], q.get("error")
    if e is None or not math.isfinite(e) or e <= 0:
        return f"{v:.6g}"
    d = max(0, 1 - math.floor(math.log10(e)))
    return f"{v:.{d}f}({round(e * 10 ** d)})"


def _row_of(res: dict, name: str):
    return res["observables"].get(name) if name in res["observables"] else res["extras"].get(name)


def _print_single(res: dict) -> None:
    print(f"{res['source']}: {res['n']} configurations, {res['n_chains']} chains, errors: {res['error_method']}")
    print(f"{'observable':<15} {'value':>14} {'error':>11} {'tau_int':>8}")
    for name in ROWS:
        q = _row_of(res, name)
        if q is None:
            print(f"{name:<15} {'—':>14}")
            continue
        e, t = q["error"], q["tau_int"]
        print(f"{name:<15} {q['value']:>14.6g} {e if e is not None else float('nan'):>11.3g} "
              f"{t if t is not None else float('nan'):>8.2f}")
    m = res["extras"]["m_eff"]
    shown = [f"{_fmt({'value': v, 'error': e})}" for v, e in list(zip(m["value"], m["error"]))[:4]]
    print(f"{'m_eff(t=0..3)':<15} {', '.join(shown)}")


def _print_side_by_side(cmp: dict) -> None:
    labels = [e["label"] for e in cmp["ensembles"]]
    w = max(16, *(len(lab) + 2 for lab in labels))
    head = f"{'observable':<15}" + "".join(f"{lab:>{w}}" for lab in labels)
    head += "".join(f"{'σ ' + lab:>{w}}" for lab in labels[1:])
    print(head)
    for name in ROWS:
        cells = [_fmt(_row_of(e, name)) for e in cmp["ensembles"]]
        sig = [cmp["compatibility"][lab].get(name) for lab in labels[1:]]
        print(f"{name:<15}" + "".join(f"{c:>{w}}" for c in cells)
              + "".join(f"{('—' if s is None else f'{s:.2f}'):>{w}}" for s in sig))
    print(f"{'n (chains)':<15}" + "".join(f"{str(e['n']) + ' (' + str(e['n_chains']) + ')':>{w}}"
                                         for e in cmp["ensembles"]))
    print(f"{'errors':<15}" + "".join(f"{e['error_method']:>{w}}" for e in cmp["ensembles"]))
    print(f"distribution distance to {labels[0]} (KS D, p with n_eff = n/2τ_int, Hellinger):")
    for lab in labels[1:]:
        for k, d in cmp["distribution_distance"][lab].items():
            print(f"  {lab:<{w}} {k:<15} D={d['ks_D']:.4f}  p_eff={d['ks_p_eff']:.3g}  H={d['hellinger']:.4f}")


def run(args) -> int:
    from pathlib import Path

    from ..observables import measure

    labels = args.labels.split(",") if args.labels else None
    if labels is not None and len(labels) != (1 if args.combine else len(args.files)):
        return _refuse(args, f"--labels has {len(labels)} names for "
                             f"{1 if args.combine else len(args.files)} ensemble(s)")
    if args.bins < 1:
        return _refuse(args, f"--bins must be >= 1, got {args.bins}")
    try:
        if args.combine or len(args.files) == 1:
            result = measure.measure_combined(args.files, args.errors, args.bins).result
            if labels:
                result["label"] = labels[0]
            labels = labels or [Path(args.files[0]).stem if len(args.files) == 1 else "combined"]
        else:
            ms = [measure.measure_file(f, args.errors, args.bins) for f in args.files]
            labels = labels or [Path(f).stem for f in args.files]
            result = measure.compare(ms, labels)
    except (ValueError, FileNotFoundError) as exc:
        return _refuse(args, str(exc))
    result = measure.json_safe(result)
    text = json.dumps(result, indent=1, allow_nan=False)
    if args.plots:
        from ..observables.plots import write_plots

        per_file = result["ensembles"] if "ensembles" in result else [result]
        write_plots(per_file, labels, args.plots)
    if not args.out:
        print(text)
        return 0
    from ..io.atomic import atomic_write_text

    atomic_write_text(args.out, text + "\n")
    if not args.quiet:
        if "ensembles" in result:
            _print_side_by_side(result)
        else:
            _print_single(result)
        print(f"(wrote {args.out}{'; plots in ' + args.plots if args.plots else ''})")
    return 0
