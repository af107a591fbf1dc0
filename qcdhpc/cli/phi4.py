"""`qcdhpc hmc`: the φ⁴ family's verbs (HMC ensembles of 2D lattice φ⁴)."""
from __future__ import annotations

import shlex

from .common import refuse, run_segmented

VERBS = ("hmc",)


def add_parsers(sub) -> None:
    p = sub.add_parser("hmc", help="generate a φ⁴ HMC ensemble into an HDF5 file",
                       description="Generate a 2D lattice φ⁴ ensemble with HMC (resumable, MPI-parallel: "
                                   "under mpirun/srun the chains are split over the ranks).")
    g = p.add_argument_group("lattice and action")
    g.add_argument("--L", type=int, help="lattice extent L (L×L)")
    g.add_argument("--L0", type=int, help="extent of direction 0 (default L)")
    g.add_argument("--L1", type=int, help="extent of direction 1 (default L)")
    g.add_argument("--kappa", type=float, required=True, help="hopping parameter κ")
    g.add_argument("--lam", type=float, required=True,
                   help="quartic coupling λ >= 0 (λ = 0 needs |κ| < 1/4: a bounded free field)")
    g = p.add_argument_group("Monte Carlo")
    g.add_argument("--nchains", type=int, default=1, help="total number of chains, over all ranks (1)")
    g.add_argument("--ntraj", type=int, default=100, help="post-thermalisation trajectories per chain (100)")
    g.add_argument("--therm", type=int, default=100, help="thermalisation trajectories, not saved (100)")
    g.add_argument("--every", type=int, default=1, help="save one configuration per k trajectories (1)")
    g.add_argument("--nmd", type=int, default=10, help="molecular-dynamics steps per trajectory (10)")
    g.add_argument("--tau", type=float, default=1.0, help="trajectory length (1.0)")
    g.add_argument("--integrator", default="omelyan", help="leapfrog | omelyan (omelyan)")
    g.add_argument("--seed", type=int, default=0, help="Philox seed, 0 <= seed < 2^64 (0)")
    g.add_argument("--start", default="hot",
                   help="hot: φ = 0.1·N(0,1); cold: φ = ±v, the constant-field minimum of S, + on even and "
                        "− on odd chains (use cold deep in the broken phase) (hot)")
    g.add_argument("--dtype", default="float64", help="float32 | float64 (float64)")
    g.add_argument("--device", default="cpu",
                   help="cpu | cuda (cpu); under MPI, rank r of a node uses GPU r mod (GPUs per node)")
    g = p.add_argument_group("output and checkpoints")
    g.add_argument("--out", required=True, help="output ensemble FILE.h5 (appears only when complete)")
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from FILE.h5.partial (safe to pass always)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing qcdhpc FILE.h5 at the end (never other files)")
    g.add_argument("--checkpoint-every", type=int, default=100, metavar="N",
                   help="write a checkpoint segment every N trajectories (100)")
    g.add_argument("--checkpoint-seconds", type=float, default=600.0, metavar="S",
                   help="... and at least every S seconds; 0 disables (600)")
    g.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run_hmc, subparser=p)


def run_hmc(args, parser=None) -> int:
    from ..phi4.params import HMCParams

    if args.L is None and (args.L0 is None or args.L1 is None):
        return refuse(args, "give --L, or both --L0 and --L1", "hmc")
    L = (args.L0 if args.L0 is not None else args.L, args.L1 if args.L1 is not None else args.L)
    try:
        params = HMCParams(L=L, kappa=args.kappa, lam=args.lam, nchains=args.nchains, ntraj=args.ntraj,
                           therm=args.therm, every=args.every, nmd=args.nmd, tau=args.tau,
                           integrator=args.integrator, seed=args.seed, dtype=args.dtype,
                           device=args.device, start=args.start)
    except ValueError as exc:
        return refuse(args, str(exc), "hmc")

    from ..phi4.hmc import HMCRun

    code, summary, comm = run_segmented(args, "hmc", lambda comm: HMCRun(
        params, args.out, resume=args.resume, overwrite=args.overwrite, checkpoint_every=args.checkpoint_every,
        checkpoint_seconds=args.checkpoint_seconds, progress=not args.quiet,
        command=shlex.join(["qcdhpc", *args.argv]), comm=comm))
    if code is not None:
        return code
    if comm.rank == 0 and not args.quiet:
        done = "is already complete (nothing to resume)" if summary["status"] == "complete" else "written"
        print(f"{summary['out']} {done}: {summary['n']} configurations from {summary['nchains']} chains, "
              f"acceptance {summary['acceptance']:.3f}, <exp(-dH)> {summary['exp_minus_dH']:.4f}")
    return 0
