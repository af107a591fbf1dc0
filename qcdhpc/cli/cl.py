"""`qcdhpc cl`: the complex-Langevin family's verb: walkers of the quartic one-site model, or lattice
configurations of the relativistic Bose gas at chemical potential μ."""
from __future__ import annotations

import shlex

from .common import refuse, run_segmented

VERBS = ("cl", "cl-table")


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "cl", help="complex Langevin: quartic-model walkers or Bose-gas lattices into an HDF5 walkers file",
        description="Complex Langevin on the single-source CPU/CUDA kernel: Euler or Heun, real or complex "
                    "noise, optional adaptive step. --model quartic: S = σ₀z²/2 + λz⁴/4 (complex σ₀; seeds: "
                    "σ₀ = 1+1j, λ = 1), the walkers' states are recorded; `qcdhpc measure OUT.h5` gives μ₂…μ₈ "
                    "and κ₂…κ₈ next to exact values. --model bose: the relativistic Bose gas at chemical "
                    "potential μ on an N^d lattice (Aarts PRL 102 (2009) 131601), the density n, φ*φ and K_max "
                    "are recorded per configuration. Resumable and MPI-parallel like `hmc` (walkers or "
                    "configurations split over ranks).")
    p.add_argument("--model", choices=("quartic", "bose"), default="quartic", help="the action (quartic)")
    g = p.add_argument_group("quartic model")
    g.add_argument("--sigma", default="1+1j", help="complex σ₀, e.g. 1+1j (1+1j)")
    g.add_argument("--lam", type=float, default=1.0, help="quartic coupling λ >= 0, both models (1)")
    g = p.add_argument_group("Bose gas")
    g.add_argument("--N", type=int, default=4, help="lattice extent N >= 2 (4)")
    g.add_argument("--d", type=int, default=4, help="dimensions 1..4, the first is Euclidean time (4)")
    g.add_argument("--m", type=float, default=1.0, help="mass m >= 0 (1)")
    g.add_argument("--mu", type=float, default=0.0, help="chemical potential μ (0)")
    g = p.add_argument_group("Langevin")
    g.add_argument("--walkers", type=int, default=None,
                   help="independent walkers (quartic, 10000) or configurations (bose, 16), over all ranks")
    g.add_argument("--therm", type=int, default=1000, help="steps before recording (1000)")
    g.add_argument("--steps", type=int, default=20000, help="recorded steps per walker, a multiple of --every (20000)")
    g.add_argument("--every", type=int, default=10, help="one record every k steps (10)")
    g.add_argument("--dt", type=float, default=0.01, help="step ε (the bare step with --adaptive) (0.01)")
    g.add_argument("--scheme", choices=("euler", "heun"), default="heun",
                   help="euler: O(ε) bias; heun: second-order stochastic Runge-Kutta (heun)")
    g.add_argument("--n-y", type=float, default=0.0, metavar="NY",
                   help="complex noise N_y >= 0 (N_x = 1 + N_y); 0 = real noise (0)")
    g.add_argument("--adaptive", action="store_true",
                   help="adaptive step ε_n = min(ε, ε<K_max>/K_max(n)), <K_max> from thermalisation "
                        "(Aarts-James-Seiler-Stamatescu 2010)")
    g.add_argument("--seed", type=int, default=0, help="Philox seed, 0 <= seed < 2^64 (0)")
    g = p.add_argument_group("output and checkpoints")
    g.add_argument("--out", required=True, help="output walkers FILE.h5 (appears only when complete)")
    g.add_argument("--resume", action="store_true", help="continue an interrupted run (safe to pass always)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing qcdhpc FILE.h5 at the end")
    g.add_argument("--checkpoint-every", type=int, default=10000, metavar="N",
                   help="a checkpoint segment every N steps (10000)")
    g.add_argument("--checkpoint-seconds", type=float, default=600.0, metavar="S",
                   help="... and at least every S seconds; 0 disables (600)")
    g.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_cl, subparser=p)

    t = sub.add_parser(
        "cl-table", help="the seeds' moments table of the CL quartic model: exact, CL, SBM, EBM, MCMC-EBM",
        description="Moments μ₂…μ₈ and cumulants κ₂…κ₈ of the quartic model from the CL walkers' measure JSON "
                    "and from the samples of M independently trained models per row; model rows are "
                    "value(stat)(sys) (stat: error of the model-averaged mean; sys: spread over the models) "
                    "with the deviation from exact in σ. With --sbm-models/--ebm-models, figures: the curl "
                    "of the learned scores (averaged over models) and p_θ ∝ exp(−E_θ) with its marginals.")
    t.add_argument("--cl", required=True, metavar="CL.json", help="`qcdhpc measure` JSON of the walkers file")
    for flag, row in (("--sbm", "SBM"), ("--ebm", "EBM"), ("--mcmc", "MCMC-EBM")):
        t.add_argument(flag, nargs="+", default=[], metavar="SAMPLES.h5", help=f"samples of the {row} row, one file per model")
    t.add_argument("--sbm-models", nargs="+", default=[], metavar="MODEL.pt", help="for the curl figure")
    t.add_argument("--ebm-models", nargs="+", default=[], metavar="MODEL.pt", help="for the curl and p_θ figures")
    t.add_argument("--walkers", metavar="CL.h5", help="the walkers file, for the CL points in the marginals figure")
    t.add_argument("--t-min", type=float, default=0.0025, help="diffusion time of the figures' score/energy (0.0025)")
    t.add_argument("--out", required=True, metavar="TABLE.json", help="also writes TABLE.md beside it")
    t.add_argument("--plots", metavar="DIR", help="figure directory")
    t.set_defaults(func=run_cl_table, subparser=t)


def run_cl_table(args, parser=None) -> int:
    import json
    import math
    from pathlib import Path

    from ..cl import moments_table as mt
    from ..run.outputs import check_output

    inputs = [args.cl, *args.sbm, *args.ebm, *args.mcmc, *args.sbm_models, *args.ebm_models]
    out = Path(args.out)
    try:
        if not (args.sbm or args.ebm or args.mcmc):
            raise ValueError("give the samples of at least one row (--sbm, --ebm or --mcmc)")
        if not (math.isfinite(args.t_min) and 0 < args.t_min < 1):
            raise ValueError(f"--t-min {args.t_min}: a diffusion time in (0, 1) is needed")
        if out.suffix.lower() == ".md":
            raise ValueError(f"--out {out}: give TABLE.json; TABLE.md is written beside it")
        ours = lambda p: _is_table(p)  # noqa: E731
        check_output(out, inputs=inputs, is_ours=ours, what="--out")
        check_output(out.with_suffix(".md"), inputs=inputs, is_ours=_is_table_md, what="--out (its .md twin)")
        for m in [*args.sbm_models, *args.ebm_models, *( [args.walkers] if args.walkers else [])]:
            if not Path(m).is_file():
                raise ValueError(f"{m}: no such file")
        table = mt.build_table(args.cl, {"SBM": args.sbm, "EBM": args.ebm, "MCMC-EBM": args.mcmc})
    except ValueError as exc:
        return refuse(args, str(exc), "cl-table")
    from ..io.atomic import atomic_write_text

    if args.plots:
        table["figures"] = _table_figures(args, Path(args.plots))
    atomic_write_text(out, json.dumps(table, indent=1, default=float) + "\n")
    md = [MD_MARK] + mt.markdown(table) + [""] + mt.markdown(table, tag="kappa")
    atomic_write_text(out.with_suffix(".md"), "\n".join(md) + "\n")
    print("\n".join(mt.markdown(table)))
    print(f"largest SBM/EBM deviation over μ₂…μ₈: {mt.worst_sigma(table):.1f}σ  (wrote {out})")
    return 0


MD_MARK = "<!-- qcdhpc cl-table -->"


def _is_table_md(path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().strip() == MD_MARK
    except OSError:
        return False


def _is_table(path) -> bool:
    import json

    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f).get("format") == "qcdhpc.cl-table"
    except (OSError, ValueError, AttributeError):
        return False


def _table_figures(args, plots) -> dict:
    """Curl of the SBM/EBM scores and the EBM's p_θ with marginals (qcdhpc.cl.learned)."""
    from ..cl import learned
    from ..diffusion.model_io import load_model

    plots.mkdir(parents=True, exist_ok=True)
    grid, figs = learned.Grid(), {}
    for name, files in (("sbm", args.sbm_models), ("ebm", args.ebm_models)):
        if not files:
            continue
        models = [load_model(f)[0] for f in files]
        path = plots / f"curl_{name}.png"
        learned.plot_curl(learned.curl_on_grid(models, grid, t=args.t_min), grid, path,
                          title=f"curl of the {name.upper()} score, mean of {len(models)} models")
        figs[f"curl_{name}"] = str(path)
        if name == "ebm":
            d = learned.density_on_grid(models[0], grid, t=args.t_min)
            learned.plot_density(d, grid, plots / "ebm_density.png")
            figs["ebm_density"] = str(plots / "ebm_density.png")
            if args.walkers:
                from ..io.containers import open_container

                with open_container(args.walkers, kinds=("walkers",)) as c:
                    pts, _ = learned.training_points(c, 100_000)
                learned.plot_marginals(d, grid, pts, plots / "marginals.png")
                figs["marginals"] = str(plots / "marginals.png")
    return figs


def run_cl(args, parser=None) -> int:
    from ..cl.params import BoseCLParams, QuarticCLParams, parse_complex

    common = dict(therm=args.therm, steps=args.steps, every=args.every, dt=args.dt, scheme=args.scheme,
                  n_y=args.n_y, adaptive=args.adaptive, seed=args.seed)
    try:
        if args.model == "quartic":
            params = QuarticCLParams(sigma=parse_complex(args.sigma), lam=args.lam,
                                     walkers=10000 if args.walkers is None else args.walkers, **common)
        else:
            params = BoseCLParams(N=args.N, d=args.d, m=args.m, lam=args.lam, mu=args.mu,
                                  walkers=16 if args.walkers is None else args.walkers, **common)
    except ValueError as exc:
        return refuse(args, str(exc), "cl")
    from ..cl.langevin import BoseCLRun, QuarticCLRun

    Run = QuarticCLRun if args.model == "quartic" else BoseCLRun
    code, summary, comm = run_segmented(args, "cl", lambda comm: Run(
        params, args.out, resume=args.resume, overwrite=args.overwrite, checkpoint_every=args.checkpoint_every,
        checkpoint_seconds=args.checkpoint_seconds, progress=not args.quiet,
        command=shlex.join(["qcdhpc", *args.argv]), comm=comm))
    if code is not None:
        return code
    if comm.rank == 0 and not args.quiet:
        done = "is already complete" if summary["status"] == "complete" else "written"
        what = "walkers" if args.model == "quartic" else "configurations"
        print(f"{summary['out']} {done}: {summary['walkers']} {what} x {summary['records']} records, "
              f"{summary['n_runaway']} ran away")
    return 0
