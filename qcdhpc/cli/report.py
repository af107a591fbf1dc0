"""`qcdhpc report`: the comparison report (markdown + HTML) of workflow point directories."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write the HMC-vs-DM comparison report of physics points",
                       description="Tables (⟨M⟩, χ₂, U_L with errors and compatibility in σ) and figures "
                                   "for each point directory of the workflow (docs/workflow.md).")
    p.add_argument("points", nargs="+", metavar="POINT_DIR")
    p.add_argument("--out", required=True, metavar="REPORT.md", help="also writes REPORT.html beside it")
    p.add_argument("--title", default="qcdhpc φ⁴ report: HMC vs diffusion model")
    p.set_defaults(func=lambda args, parser=None: run(args), subparser=p)


def run(args) -> int:
    from pathlib import Path

    from ..report.phi4 import write_report

    missing = [p for p in args.points if not (Path(p) / "observables.json").exists()]
    if missing:
        args.subparser.error(f"no observables.json in: {', '.join(missing)} (run qcdhpc measure first)")
    md, html = write_report(args.points, args.out, title=args.title)
    print(f"report: {md}\n        {html}")
    return 0
