"""`qcdhpc sample MODEL.pt --n N --steps K --sampler em|pc|ode --out samples.h5`.

The output has the layout of an HMC ensemble (docs/data_formats.md §1) so `qcdhpc measure` reads it:
/configs (n, L0, L1); all samples form one "chain" (/chain = 0) in sampling order (/traj = 0..n−1):
they are independent draws, so the Γ-method finds τ_int ≈ 0.5 (measure needs ≥ 5 samples per chain,
which one-chain-per-sample would violate).  /hmc/dH = 0 and /hmc/accepted = 1 (a direct sampler has
no accept/reject step; attribute `hmc_history = "none"` says so), n_therm = 0.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from functools import partial

from .common import refuse

_refuse = partial(refuse, command="sample")  # also right when run(args) is called directly



def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sample", help="generate configurations with a trained diffusion model",
        description="Sample independent configurations from a diffusion model written by `qcdhpc train` "
                    "into an HDF5 file with the ensemble layout (readable by `qcdhpc measure`).")
    p.add_argument("model", metavar="MODEL.pt")
    p.add_argument("--n", type=int, required=True, help="number of configurations")
    p.add_argument("--steps", type=int, default=500, help="sampler time steps (500)")
    p.add_argument("--sampler", choices=("em", "pc", "ode"), default="em",
                   help="em: Euler–Maruyama reverse SDE; pc: + Langevin corrector; ode: probability flow")
    p.add_argument("--out", required=True, metavar="samples.h5", help="output file (appears when complete)")
    p.add_argument("--batch", type=int, default=256, help="samples per batch (256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (auto)")
    p.add_argument("--snr", type=float, default=0.16, help="Langevin corrector signal-to-noise ratio (pc)")
    p.add_argument("--ode-method", choices=("heun", "rk45"), default="heun",
                   help="heun: fixed-step float64; rk45: scipy solve_ivp adaptive (ode)")
    p.add_argument("--no-denoise", action="store_true", help="skip the final Tweedie denoising step")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=lambda args, parser=None: run(args), subparser=p)
    return p




def run(args) -> int:
    import datetime
    import shlex
    import time

    import numpy as np

    from ..diffusion.distributed import resolve_device
    from ..diffusion.model_io import load_model
    from ..diffusion.sampling import iter_samples
    from ..io.atomic import atomic_h5
    from ..io.ensemble import create_ensemble, write_configs, write_history

    if args.n < 1 or args.steps < 1 or args.batch < 1:
        return _refuse(args, "--n, --steps and --batch must be >= 1")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        return _refuse(args, f"{out} exists (pass --overwrite to replace it)")
    try:
        device = resolve_device(args.device)
        net, sde, cfg = load_model(args.model, map_location=device)
    except (ValueError, FileNotFoundError) as exc:
        return _refuse(args, str(exc))
    site_shape = tuple(cfg["data_shape"][1:])
    train_ens = cfg.get("meta", {}).get("training_ensemble", {})
    from ..phi4.ensemble import code_version  # the one definition of the version string

    attrs = {"kind": "diffusion-samples", "L": list(site_shape),
             **{k: train_ens[k] for k in ("kappa", "lam") if k in train_ens},
             "model": str(Path(args.model).resolve()), "sde": cfg["sde"], "sampler": args.sampler,
             "steps": args.steps, "seed": args.seed, "batch": args.batch, "denoise": not args.no_denoise,
             "snr": args.snr if args.sampler == "pc" else None,
             "ode_method": args.ode_method if args.sampler == "ode" else None,
             "training_ensemble": train_ens or None, "hmc_history": "none",
             "nchains": 1, "dtype": "float32", "device": device.type, "code_version": code_version(),
             "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "command": shlex.join(["qcdhpc", *getattr(args, "argv", ["sample", args.model])])}
    t0 = time.perf_counter()
    with atomic_h5(out) as f:
        create_ensemble(f, n=args.n, site_shape=site_shape, dtype=np.float32, nchains=1, ntraj_total=args.n,
                        n_therm=0, attrs=attrs)
        start = 0
        for block in iter_samples(net, sde, args.n, site_shape, args.sampler, args.steps,
                                  batch_size=args.batch, denoise=not args.no_denoise, seed=args.seed,
                                  device=device, progress=not args.quiet, snr=args.snr,
                                  method=args.ode_method):
            x = block.numpy().astype(np.float32)
            if not np.isfinite(x).all():
                raise RuntimeError("the sampler produced NaN/inf (too few --steps, or a broken model)")
            write_configs(f, start, x, np.zeros(len(x), np.int64), np.arange(start, start + len(x)))
            start += len(x)
        write_history(f, 0, 0, np.zeros((1, args.n)), np.ones((1, args.n), np.uint8))
        f.attrs["sample_time_s"] = round(time.perf_counter() - t0, 3)
    if not args.quiet:
        dt = time.perf_counter() - t0
        print(f"{out} written: {args.n} configurations {site_shape} ({args.sampler}, {args.steps} steps) in "
              f"{dt:.1f} s = {args.n / dt:.1f} configurations/s on {device}")
    return 0
