"""`qcdhpc sample MODEL.pt --n N --steps K --sampler em|pc|ode --out samples.h5`.

The output is a `samples` container (docs/data_formats.md §1): /configs (n, L0, L1) float32 and
/history/sampler (the options); `qcdhpc measure` treats the samples as independent draws.  The run
is qcdhpc.diffusion.sample_run.SampleRun on the generic run machinery: checkpoint segments of one
batch each in OUT.h5.partial, exit 75 on SIGTERM/SIGUSR1/SIGINT, `--resume` continues bit-identically,
MPI ranks split the batches.
"""
from __future__ import annotations

import argparse

from functools import partial

from .common import refuse, run_segmented

_refuse = partial(refuse, command="sample")  # also right when run(args) is called directly



def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sample", help="generate configurations with a trained diffusion model",
        description="Sample independent configurations from a diffusion model written by `qcdhpc train` "
                    "into an HDF5 file with the ensemble layout (readable by `qcdhpc measure`).")
    p.add_argument("model", metavar="MODEL.pt")
    p.add_argument("--n", type=int, required=True, help="number of configurations")
    p.add_argument("--steps", type=int, default=500, help="sampler time steps (500)")
    p.add_argument("--sampler", choices=("em", "pc", "ode", "mala"), default="em",
                   help="em: Euler–Maruyama reverse SDE; pc: + Langevin corrector; ode: probability flow; "
                        "mala: Metropolis-adjusted Langevin on exp(-E(x, t_min)) of an energy model (MCMC-EBM)")
    p.add_argument("--out", required=True, metavar="samples.h5", help="output file (appears when complete)")
    p.add_argument("--batch", type=int, default=256, help="samples per batch (256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (auto)")
    p.add_argument("--snr", type=float, default=0.16, help="Langevin corrector signal-to-noise ratio (pc)")
    p.add_argument("--ode-method", choices=("heun", "rk45"), default="heun",
                   help="heun: fixed-step float64; rk45: scipy solve_ivp adaptive (ode)")
    p.add_argument("--no-denoise", action="store_true", help="skip the final Tweedie denoising step")
    p.add_argument("--eps", type=float, metavar="T",
                   help="end time of the em/pc/ode samplers and the time t_min of mala's exp(-E(x, t_min)) "
                        "(default: the SDE's, 1e-5 VE / 1e-3 VP)")
    p.add_argument("--time-grid", choices=("t", "log-s"),
                   help="em/pc/ode time steps uniform in t, or in ln s (every step shrinks the noise by the same "
                        "factor); default log-s for models trained with --precond edm, t otherwise")
    g = p.add_argument_group("mala (energy models only)")
    g.add_argument("--mala-step", type=float, default=0.05, metavar="H",
                   help="proposal x' = x - H grad E + sqrt(2H) xi (0.05)")
    g.add_argument("--burn-in", type=int, default=500, help="MALA steps before the first record (500)")
    g.add_argument("--thin", type=int, default=10, help="MALA steps between records of a chain (10)")
    g.add_argument("--chains", type=int, metavar="C",
                   help="chains per batch (default: --batch, one record each: independent draws)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output file (and a partial run made with other options)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUT.h5.partial (same model and options)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=lambda args, parser=None: run(args), subparser=p)
    return p




def run(args) -> int:
    import shlex

    from ..diffusion.distributed import resolve_device
    from ..diffusion.sample_run import SampleRun
    from ..run import ranks

    for name in ("n", "steps", "batch"):
        if getattr(args, name) < 1:
            return _refuse(args, f"--{name} must be >= 1, got {getattr(args, name)}")
    if not 0 <= args.seed < 2**63:
        return _refuse(args, f"--seed must be in [0, 2^63), got {args.seed}")
    if not (0 < args.snr < float("inf")):
        return _refuse(args, f"--snr must be positive and finite, got {args.snr}")
    if not (0 < args.mala_step < float("inf")):
        return _refuse(args, f"--mala-step must be positive and finite, got {args.mala_step}")
    for name, low in (("burn_in", 0), ("thin", 1), ("chains", 1)):
        value = getattr(args, name)
        if value is not None and value < low:
            return _refuse(args, f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    try:
        device = resolve_device(args.device)
    except (ValueError, RuntimeError) as exc:  # torch: "Invalid device string"
        return _refuse(args, f"--device {args.device!r}: {str(exc).splitlines()[0]}")
    if device.type == "cuda" and device.index is None:
        device = ranks.torch_device("cuda")  # MPI local rank -> GPU
    code, summary, comm = run_segmented(args, "sample", lambda comm: SampleRun(
        args.model, args.out, n=args.n, steps=args.steps, sampler=args.sampler, batch=args.batch, seed=args.seed,
        denoise=not args.no_denoise, snr=args.snr, ode_method=args.ode_method, device=device,
        eps=args.eps, time_grid=args.time_grid, mala_step=args.mala_step, burn_in=args.burn_in, thin=args.thin, chains=args.chains,
        resume=args.resume, overwrite=args.overwrite, progress=not args.quiet, comm=comm,
        command=shlex.join(["qcdhpc", *getattr(args, "argv", ["sample", args.model])])),
        errors=(ValueError, FileNotFoundError, FileExistsError))
    if code is not None:
        return code
    if comm.rank == 0 and not args.quiet:
        if summary["status"] == "complete":
            print(f"{args.out} is already complete (nothing to resume)")
        else:
            rate = summary["drawn"] / summary["time_s"] if summary["time_s"] > 0 else float("nan")
            print(f"{args.out} written: {args.n} configurations ({args.sampler}, {args.steps} steps); "
                  f"{summary['drawn']} drawn now in {summary['time_s']:.1f} s = {rate:.1f} configurations/s "
                  f"on {device}")
    return 0
