"""`qcdhpc report`: the comparison report (markdown + HTML) of workflow point directories.

Refused before anything is written (exit 2, one line on stderr): a point without a readable
observables.json of a φ⁴ `qcdhpc measure` run (truncated, malformed, missing keys), and an --out that is
a directory, a device, an input (a point's observables.json or one of its ensembles), a file that is
not a report qcdhpc wrote, or lies in a directory that cannot be written; likewise its HTML twin.
"""
from __future__ import annotations

from functools import partial

from .common import refuse

_refuse = partial(refuse, command="report")


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write the HMC-vs-DM comparison report of physics points",
                       description="Tables (⟨M⟩, χ₂, U_L with errors and compatibility in σ) and figures "
                                   "for each point directory of the workflow (docs/workflow.md).")
    p.add_argument("points", nargs="+", metavar="POINT_DIR")
    p.add_argument("--out", required=True, metavar="REPORT.md", help="also writes REPORT.html beside it")
    p.add_argument("--title", default="qcdhpc φ⁴ report: HMC vs diffusion model")
    p.set_defaults(func=lambda args, parser=None: run(args), subparser=p)


def _check(args):
    from pathlib import Path

    from ..report.phi4 import html_path, is_report, load_point, report_inputs
    from ..run.outputs import check_output

    for p in args.points:
        if not Path(p).is_dir():
            raise ValueError(f"{p} is not a point directory (POINT_DIR/observables.json)")
        load_point(p)
    out = Path(args.out)
    if out.suffix.lower() in (".html", ".htm"):
        raise ValueError(f"--out {out}: give the markdown path (REPORT.md); REPORT.html is written beside it")
    inputs = report_inputs(args.points)
    check_output(out, inputs=inputs, is_ours=is_report, what="--out")
    check_output(html_path(out), inputs=inputs, is_ours=is_report, what="--out (its HTML twin)")


def run(args) -> int:
    from ..report.phi4 import write_report

    try:
        _check(args)
    except ValueError as exc:
        return _refuse(args, str(exc))
    md, html = write_report(args.points, args.out, title=args.title)
    print(f"report: {md}\n        {html}")
    return 0
