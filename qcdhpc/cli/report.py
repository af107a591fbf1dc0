"""`qcdhpc report`: the comparison report (markdown + HTML) of workflow point directories.

One section per directory: a φ⁴ point (POINT/observables.json), the CL quartic directory
(observables.json of the walkers + table.json of `qcdhpc cl-table`), or a Bose-gas scan (mu_*/
observables.json); qcdhpc/report/render.py picks the family.  Refused before anything is written
(exit 2, one line on stderr): a directory no family claims or whose files are unreadable (truncated,
malformed, missing keys), and an --out that is
a directory, a device, an input (a point's observables.json or one of its ensembles), a file that is
not a report qcdhpc wrote, or lies in a directory that cannot be written; likewise its HTML twin.
"""
from __future__ import annotations

from functools import partial

from .common import refuse

_refuse = partial(refuse, command="report")


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write the report of workflow result directories (φ⁴ points, CL)",
                       description="Tables and figures for each result directory of the workflow "
                                   "(docs/workflow.md): φ⁴ points (⟨M⟩, χ₂, U_L of HMC and DM with errors and "
                                   "compatibility in σ), the CL quartic model (moments against exact, "
                                   "diagnostics, the SBM/EBM table), Bose-gas scans (⟨n⟩(μ), onset, checks).")
    p.add_argument("points", nargs="+", metavar="DIR")
    p.add_argument("--out", required=True, metavar="REPORT.md", help="also writes REPORT.html beside it")
    p.add_argument("--title", default="qcdhpc report: Monte Carlo, models and exact results")
    p.set_defaults(func=lambda args, parser=None: run(args), subparser=p)


def _check(args):
    from pathlib import Path

    from ..report.render import check, html_path, is_report, report_inputs
    from ..run.outputs import check_output

    for p in args.points:
        check(p)
    out = Path(args.out)
    if out.suffix.lower() in (".html", ".htm"):
        raise ValueError(f"--out {out}: give the markdown path (REPORT.md); REPORT.html is written beside it")
    inputs = report_inputs(args.points)
    check_output(out, inputs=inputs, is_ours=is_report, what="--out")
    check_output(html_path(out), inputs=inputs, is_ours=is_report, what="--out (its HTML twin)")


def run(args) -> int:
    from ..report.render import write_report

    try:
        _check(args)
    except ValueError as exc:
        return _refuse(args, str(exc))
    md, html = write_report(args.points, args.out, title=args.title)
    print(f"report: {md}\n        {html}")
    return 0
