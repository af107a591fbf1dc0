"""`qcdhpc measure`: observables of ensemble / sample files with honest errors (docs/observables.md).

One file: a table and {"format": "qcdhpc.observables", "schema_version", "theory", "observables",
"extras", "distributions", "n", ..., "source", "params"}.  Several files: side by side against the
first (compatibility in σ, KS / Hellinger distances), JSON {"format", ..., "ensembles": [...],
"reference", "compatibility", "distribution_distance"}; or, with --combine, one ensemble made of all
files' chains (MPI shards, extra runs of the same parameters).  With --out X.json the pyerrors Obs of
the primaries and derived quantities go to X.pyerrors.json.gz beside it (docs/data_formats.md §4).
The observables are those of the files' theory (qcdhpc/observables/theories.py).

Refused before any work (exit 2, nothing written): outputs that are inputs, directories, devices,
files that are not measure results or are the results of other input files (only a rerun of the same
measurement replaces its result), unwritable output directories, a --plots path that is not a writable
directory, --bins whose histograms would not fit in memory; and files that fail validation.
numpy, h5py, pyerrors and matplotlib are imported only when the command runs.
"""
from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

from .common import refuse

_refuse = partial(refuse, command="measure")  # also right when run(args) is called directly


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "measure", help="φ⁴ observables of ensembles with Γ-method / jackknife errors",
        description="Measure the observables of the files' theory (φ⁴: ⟨M⟩, ⟨|M|⟩, χ₂ = V⟨M²⟩ and its "
                    "connected forms, Binder U_L, S/V, C(t), m_eff, histograms), and for files with an HMC "
                    "history the acceptance and ⟨exp(-ΔH)⟩. Markov chains: Γ-method (pyerrors), one replica "
                    "per chain; independent samples (sample containers, or one configuration per chain): "
                    "delete-one jackknife. Several files are shown side by side against the first, or "
                    "with --combine merged as replicas of one ensemble.")
    p.add_argument("files", nargs="+", metavar="FILE.h5")
    p.add_argument("--out", help="write the results as JSON here, and the pyerrors Obs beside it "
                                 "(OUT without .json + .pyerrors.json.gz); without --out the JSON goes to "
                                 "stdout instead of the table")
    p.add_argument("--labels", help="comma-separated names of the files in the table/JSON (default: file names)")
    p.add_argument("--combine", action="store_true",
                   help="treat all files as replicas (chains) of ONE ensemble instead of comparing them")
    p.add_argument("--plots", metavar="DIR", help="write histograms of M, φ, S/V and C(t), m_eff plots here")
    p.add_argument("--errors", choices=("auto", "gamma", "jackknife"), default="auto",
                   help="error method: auto = Γ-method for Markov chains, jackknife for independent samples")
    p.add_argument("--bins", type=int, default=50, help="histogram bins (50)")
    p.add_argument("--extrapolate-dt", action="store_true",
                   help="complex Langevin: fit the runs of FILES (same model, different fixed steps ε) to "
                        "O₀ + c ε^p (p = 1 Euler, 2 Heun) and report O₀ = the ε → 0 limit")
    p.add_argument("--quiet", action="store_true", help="do not print the table")
    p.set_defaults(func=lambda args, parser=None: run(args), subparser=p)




def pyerrors_path(out) -> Path:
    """Where the pyerrors Obs of `--out X.json` go: X.pyerrors.json.gz."""
    out = Path(out)
    stem = out.name[:-len(".json")] if out.name.endswith(".json") and len(out.name) > 5 else out.name
    return out.with_name(f"{stem}.pyerrors.json.gz")


def _row_of(res: dict, name: str):
    return res["observables"].get(name) if name in res["observables"] else res["extras"].get(name)


def _print_single(res: dict, theory) -> None:
    from ..observables.format import result_text

    print(f"{res['source']}: {res['n']} configurations, {res['n_chains']} chains, errors: {res['error_method']}")
    print(f"{'observable':<15} {'value':>14} {'error':>11} {'tau_int':>8}")
    for name in theory.TABLE_ROWS:
        q = _row_of(res, name)
        if q is None:
            print(f"{name:<15} {'—':>14}")
            continue
        e, t = q["error"], q["tau_int"]
        print(f"{name:<15} {q['value']:>14.6g} {e if e is not None else float('nan'):>11.3g} "
              f"{t if t is not None else float('nan'):>8.2f}")
    for name in theory.TABLE_VECTORS:
        m = res["extras"][name]
        shown = [result_text({"value": v, "error": e}) for v, e in list(zip(m["value"], m["error"]))[:4]]
        print(f"{name + '(t=0..3)':<15} {', '.join(shown)}")


def _print_side_by_side(cmp: dict, theory) -> None:
    from ..observables.format import result_text, sigma_text

    labels = [e["label"] for e in cmp["ensembles"]]
    w = max(16, *(len(lab) + 2 for lab in labels))
    head = f"{'observable':<15}" + "".join(f"{lab:>{w}}" for lab in labels)
    head += "".join(f"{'σ ' + lab:>{w}}" for lab in labels[1:])
    print(head)
    for name in theory.TABLE_ROWS:
        cells = [result_text(_row_of(e, name)) for e in cmp["ensembles"]]
        sig = [cmp["compatibility"][lab].get(name) for lab in labels[1:]]
        print(f"{name:<15}" + "".join(f"{c:>{w}}" for c in cells) + "".join(f"{sigma_text(s):>{w}}" for s in sig))
    print(f"{'n (chains)':<15}" + "".join(f"{str(e['n']) + ' (' + str(e['n_chains']) + ')':>{w}}"
                                         for e in cmp["ensembles"]))
    print(f"{'errors':<15}" + "".join(f"{e['error_method']:>{w}}" for e in cmp["ensembles"]))
    print(f"distribution distance to {labels[0]} (KS D, p with n_eff = n/2τ_int, Hellinger):")
    for lab in labels[1:]:
        for k, d in cmp["distribution_distance"][lab].items():
            print(f"  {lab:<{w}} {k:<15} D={d['ks_D']:.4f}  p_eff={d['ks_p_eff']:.3g}  H={d['hellinger']:.4f}")


def _resolved(paths) -> list[str]:
    out = []
    for p in paths:
        for q in (p if isinstance(p, list) else [p]):
            out.append(str(Path(str(q)).resolve()) if isinstance(q, str) else repr(q))
    return sorted(out)


def _sources_of_result(path) -> list[str] | None:
    """The input files an existing measure JSON was made from (None: not a measure JSON): its
    absolute `inputs`, or for files before those were recorded, the `source` paths (as given then,
    resolved here)."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
        if isinstance(obj.get("inputs"), list):
            return _resolved(obj["inputs"])
        parts = obj["ensembles"] if "ensembles" in obj else [obj]
        return _resolved([e["source"] for e in parts])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _sources_of_obs_file(path, obs_file_sources) -> list[str] | None:
    sources = obs_file_sources(path)
    return None if sources is None else _resolved(sources)


def _check_not_another_result(out, files, sources_of, what: str) -> None:
    """An existing output is replaced only by a rerun of the same measurement (same input files);
    the result of other files — or another verb's — is never lost to a mistyped --out."""
    out = Path(out)
    if not out.is_file():
        return  # absent (fine), or a directory / device: check_output says why not
    sources = sources_of(out)
    if sources is not None and set(sources) != set(_resolved(list(map(str, files)))):
        shown = ", ".join(Path(s).name for s in sources)
        raise ValueError(f"{what} {out} holds the measurement of other files ({shown}); it is not "
                         "replaced (move it away or choose another path)")


def _check_outputs(args) -> Path | None:
    """Refuse (ValueError) outputs that would destroy an input or another result, or fail after the
    work; returns the pyerrors path for --out."""
    from ..observables.distributions import histogram_bytes
    from ..observables.errors import is_obs_file, obs_file_sources
    from ..run.outputs import check_output, check_writable_dir, is_qcdhpc_json
    from ..run.resources import check_fits

    pe_path = None
    if args.out:
        is_result = lambda p: is_qcdhpc_json(p) and _sources_of_result(p) is not None  # noqa: E731
        check_output(args.out, inputs=args.files, is_ours=is_result, what="--out")
        _check_not_another_result(args.out, args.files, _sources_of_result, "--out")
        pe_path = pyerrors_path(args.out)
        check_output(pe_path, inputs=[*args.files, args.out], is_ours=is_obs_file,
                     what="--out (its pyerrors file)")
        _check_not_another_result(pe_path, args.files, lambda p: _sources_of_obs_file(p, obs_file_sources),
                                  "--out (its pyerrors file)")
    if args.plots:
        plots = Path(args.plots)
        if any(plots.resolve() == Path(f).resolve() for f in args.files):
            raise ValueError(f"--plots {plots} is an input of this command; give a directory")
        check_writable_dir(plots, "--plots")
    # histograms per file: the theory's per-configuration ones (φ⁴: M, S/V) and the field's own
    n_hist = 3 * (1 if args.combine else len(args.files))
    check_fits(histogram_bytes(args.bins, n_hist), f"--bins {args.bins} ({n_hist} histograms)")
    return pe_path


def _whole_container(args):
    """Theories whose containers are measured whole (theories.py: KINDS, measure_container; e.g. the
    complex-Langevin walkers of cl_quartic.py): the exit code when the input is such a file, else None."""
    from ..io.containers import open_container
    from ..observables import theories

    try:
        with open_container(args.files[0]) as c:
            kind, theory_name = c.kind, c.theory
            theory = None
            if c.kind not in ("fields", "samples") or theory_name in theories.THEORIES:
                theory = theories.observables_for(c.theory, args.files[0])
            if theory is None or not hasattr(theory, "measure_container"):
                return None  # per-configuration primaries (φ⁴ fields and samples)
            if c.kind not in theory.KINDS:
                return _refuse(args, f"{args.files[0]}: measure has no observables for {c.kind} files of "
                                     f"theory {c.theory!r}")
        if args.combine:
            return _refuse(args, f"{kind} files of theory {theory_name!r} are not combined (--combine); "
                                 "measure them one at a time, or several runs of different steps with --extrapolate-dt")
        if len(args.files) > 1 and not args.extrapolate_dt:
            return _refuse(args, f"{kind} files of theory {theory_name!r} are measured one at a time, or "
                                 "several with --extrapolate-dt (runs that differ only in the step)")
        if args.extrapolate_dt and not hasattr(theory, "extrapolate"):
            return _refuse(args, f"theory {theory_name!r} has no ε → 0 extrapolation")
        results = []
        for path in args.files:
            with open_container(path) as c:
                if c.theory != theory_name or c.kind not in theory.KINDS:
                    return _refuse(args, f"{path}: holds {c.kind} data of theory {c.theory!r}, the first file "
                                         f"{kind} of {theory_name!r}")
                results.append(theory.measure_container(c))
        result = theory.extrapolate(results) if args.extrapolate_dt else results[0]
    except (ValueError, FileNotFoundError) as exc:
        return _refuse(args, str(exc))
    from ..observables import measure

    if args.plots:
        from ..observables.cl_diagnostics import plot_diagnostics

        for path, r in zip(args.files, results):
            plot_diagnostics(r, args.plots, Path(path).stem)
        if hasattr(theory, "plot"):
            theory.plot(result, args.plots, Path(args.files[0]).stem)
    result = measure.json_safe(measure.document(result, args.files))
    text = json.dumps(result, indent=1, allow_nan=False)
    if not args.out:
        print(text)
        return 0
    from ..io.atomic import atomic_write_text

    atomic_write_text(args.out, text + "\n")
    if not args.quiet:
        theory.print_table(result)
        print(f"(wrote {args.out})")
    return 0


def run(args) -> int:
    from ..observables import measure

    labels = args.labels.split(",") if args.labels else None
    if labels is not None and len(labels) != (1 if args.combine else len(args.files)):
        return _refuse(args, f"--labels has {len(labels)} names for "
                             f"{1 if args.combine else len(args.files)} ensemble(s)")
    if args.bins < 1:
        return _refuse(args, f"--bins must be >= 1, got {args.bins}")
    if not (args.combine or len(args.files) == 1):
        labels = labels or [Path(f).stem for f in args.files]
        if len(set(labels)) != len(labels):
            return _refuse(args, f"the files need distinct labels, got {', '.join(labels)} (use --labels)")
    try:
        pe_path = _check_outputs(args)
    except ValueError as exc:
        return _refuse(args, str(exc))
    whole = _whole_container(args)
    if whole is not None:
        return whole
    if args.extrapolate_dt:
        return _refuse(args, "--extrapolate-dt applies to complex-Langevin walkers files only")
    try:
        if args.combine or len(args.files) == 1:
            name = labels[0] if labels else (Path(args.files[0]).stem if len(args.files) == 1 else "combined")
            ms = [measure.measure_combined(args.files, args.errors, args.bins, name=name)]
            result = ms[0].result
            if labels:
                result["label"] = labels[0]
            labels = [name]
            tree = measure.pyerrors_tree(ms)
        else:
            ms = [measure.measure_file(f, args.errors, args.bins, name=lab) for f, lab in zip(args.files, labels)]
            result = measure.compare(ms, labels)
            tree = measure.pyerrors_tree(ms, labels)
    except (ValueError, FileNotFoundError) as exc:
        return _refuse(args, str(exc))
    theory = ms[0].theory
    result = measure.json_safe(measure.document(result, args.files))
    if pe_path is not None:
        result["pyerrors"] = pe_path.name
    text = json.dumps(result, indent=1, allow_nan=False)
    if args.plots:
        from ..observables.plots import write_plots

        per_file = result["ensembles"] if "ensembles" in result else [result]
        write_plots(per_file, labels, args.plots)
    if not args.out:
        print(text)
        return 0
    from ..io.atomic import atomic_write_text
    from ..observables.errors import dump_obs

    try:
        dump_obs(pe_path, tree, measure.pyerrors_description(ms))
    except Exception as exc:  # noqa: BLE001 - keep the JSON result whatever pyerrors' export does
        del result["pyerrors"]
        atomic_write_text(args.out, json.dumps(result, indent=1, allow_nan=False) + "\n")
        print(f"qcdhpc measure: error: wrote {args.out}, but not the pyerrors file {pe_path}: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    atomic_write_text(args.out, text + "\n")
    if not args.quiet:
        if "ensembles" in result:
            _print_side_by_side(result, theory)
        else:
            _print_single(result, theory)
        print(f"(wrote {args.out}, {pe_path}{'; plots in ' + args.plots if args.plots else ''})")
    return 0
