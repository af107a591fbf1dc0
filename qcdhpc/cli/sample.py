"""`qcdhpc sample MODEL.pt --n N --steps K --sampler em|pc|ode --out samples.h5`.

The output has the layout of an HMC ensemble (docs/data_formats.md §1) so `qcdhpc measure` reads it:
/configs (n, L0, L1); all samples form one "chain" (/chain = 0) in sampling order (/traj = 0..n−1):
they are independent draws, so the Γ-method finds τ_int ≈ 0.5 (measure needs ≥ 5 samples per chain,
which one-chain-per-sample would violate).  /hmc/dH = 0 and /hmc/accepted = 1 (a direct sampler has
no accept/reject step; attribute `hmc_history = "none"` says so), n_therm = 0.

Checkpoints: every finished batch is written atomically to OUT.h5.partial/batch{b}.h5 with the options
and the model file's SHA-256.  SIGTERM/SIGUSR1/SIGINT stop the run after the current batch (exit 75,
qcdhpc.interrupt); `--resume` continues from the first missing batch — batch b's draws depend only on
(seed, b), so the result equals an unbroken run bit for bit.  At the end the batches are merged into
OUT.h5 (atomic) and the partial directory is removed.
"""
from __future__ import annotations

import argparse
import sys
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
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output file (and a partial run made with other options)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUT.h5.partial (same model and options)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=lambda args, parser=None: run(args), subparser=p)
    return p




def _sha256(path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _done_batches(partial: Path, options: str) -> int | None:
    """Number of leading batches in `partial` made with `options` (None: made with other options)."""
    import h5py

    k = 0
    while (partial / f"batch{k}.h5").exists():
        try:
            with h5py.File(partial / f"batch{k}.h5", "r") as f:
                if f.attrs["options"] != options:
                    return None
        except (OSError, KeyError):  # unreadable (cannot happen with atomic writes): redo from here
            break
        k += 1
    return k


def run(args) -> int:
    import datetime
    import json
    import shlex
    import shutil
    import time

    import h5py
    import numpy as np

    from ..diffusion.distributed import resolve_device
    from ..diffusion.model_io import load_model
    from ..diffusion.sampling import iter_samples
    from ..interrupt import EXIT_INTERRUPTED, SignalCatcher
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

    # what the draws depend on (not the device: CPU and GPU round differently, so a resumed run must
    # stay on the device it started on)
    options = json.dumps({"model_sha256": _sha256(args.model), "n": args.n, "steps": args.steps,
                          "sampler": args.sampler, "batch": args.batch, "seed": args.seed,
                          "denoise": not args.no_denoise, "snr": args.snr, "ode_method": args.ode_method,
                          "device": device.type}, sort_keys=True)
    partial = out.with_name(out.name + ".partial")
    first = 0
    if partial.exists():
        done = _done_batches(partial, options)
        if not args.resume and not args.overwrite:
            return _refuse(args, f"{partial} holds an interrupted run: pass --resume to continue it "
                                 f"(or --overwrite to discard it)")
        if done is None and not args.overwrite:
            return _refuse(args, f"{partial} was made with another model or other options: pass "
                                 f"--overwrite to discard it")
        if done is None or not args.resume:
            shutil.rmtree(partial)
        else:
            first = done
    partial.mkdir(parents=True, exist_ok=True)

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
    nbatch = -(-args.n // args.batch)
    t0 = time.perf_counter()
    with SignalCatcher() as sig:
        b = first
        for block in iter_samples(net, sde, args.n, site_shape, args.sampler, args.steps,
                                  batch_size=args.batch, denoise=not args.no_denoise, seed=args.seed,
                                  device=device, progress=not args.quiet, snr=args.snr,
                                  method=args.ode_method, first_batch=first):
            x = block.numpy().astype(np.float32)
            if not np.isfinite(x).all():
                raise RuntimeError("the sampler produced NaN/inf (too few --steps, or a broken model)")
            with atomic_h5(partial / f"batch{b}.h5") as f:
                f.create_dataset("configs", data=x)
                f.attrs["options"] = options
            b += 1
            if sig.caught is not None and b < nbatch:
                print(f"qcdhpc sample: {sig.caught} received: {b} of {nbatch} batches are in {partial}; "
                      f"rerun the same command with --resume to continue", file=sys.stderr)
                return EXIT_INTERRUPTED
    with atomic_h5(out) as f:
        create_ensemble(f, n=args.n, site_shape=site_shape, dtype=np.float32, nchains=1, ntraj_total=args.n,
                        n_therm=0, attrs=attrs)
        start = 0
        for k in range(nbatch):
            with h5py.File(partial / f"batch{k}.h5", "r") as g:
                x = g["configs"][:]
            write_configs(f, start, x, np.zeros(len(x), np.int64), np.arange(start, start + len(x)))
            start += len(x)
        write_history(f, 0, 0, np.zeros((1, args.n)), np.ones((1, args.n), np.uint8))
        f.attrs["sample_time_s"] = round(time.perf_counter() - t0, 3)  # of this invocation
    shutil.rmtree(partial)
    if not args.quiet:
        dt = time.perf_counter() - t0
        print(f"{out} written: {args.n} configurations {site_shape} ({args.sampler}, {args.steps} steps) in "
              f"{dt:.1f} s = {(args.n - first * args.batch) / dt:.1f} configurations/s on {device}")
    return 0
