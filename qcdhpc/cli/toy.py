"""`qcdhpc toy-cumulants --out table.json`: the seeds' double-Gaussian cumulant table (VE vs VP)."""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from .common import refuse

SDES = ("ve", "vp")


def _refuse(args, message: str) -> int:
    return refuse(args, " ".join(str(message).split()), command="toy-cumulants")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "toy-cumulants", help="double-Gaussian cumulant check of VE and VP diffusion models",
        description="Train VE and VP diffusion models (MLP score) on samples of P0(x) = ½[N(1, 0.25²) + "
                    "N(−1, 0.25²)], sample them, and print κ2, κ4, κ6, κ8 with bootstrap errors next to "
                    "the exact 1.0625, −2, 16, −272 and the training data (the seeds' table).")
    p.add_argument("--out", help="write the table as JSON here (a file path; an earlier table is replaced, "
                                 "any other existing file is refused)")
    p.add_argument("--sdes", default="ve,vp", help="comma-separated SDEs, each ve or vp (ve,vp)")
    p.add_argument("--n-train", type=int, default=100_000, help="training samples, >= 2 (100000)")
    p.add_argument("--epochs", type=int, default=30, help=">= 1 (30)")
    p.add_argument("--batch", type=int, default=512,
                   help=">= 1 (512); larger than --n-train: one batch of all samples per epoch")
    p.add_argument("--lr", type=float, default=2e-3, help="> 0 (2e-3)")
    p.add_argument("--hidden", type=int, default=128, help="MLP width, >= 1 (128)")
    p.add_argument("--n-layers", type=int, default=3, help="MLP hidden layers, >= 1 (3)")
    p.add_argument("--n-samples", type=int, default=100_000, help="generated samples, >= 2 (100000)")
    p.add_argument("--steps", type=int, default=200, help="sampler steps, >= 1 (200)")
    p.add_argument("--sampler", choices=("em", "pc", "ode"), default="em")
    p.add_argument("--seed", type=int, default=0, help="in [0, 2**63) (0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=lambda args, parser=None: run(args), subparser=p)
    return p


def _option_problem(args, sdes) -> str | None:
    for flag, value, low in (("--n-train", args.n_train, 2), ("--epochs", args.epochs, 1), ("--batch", args.batch, 1),
                             ("--hidden", args.hidden, 1), ("--n-layers", args.n_layers, 1),
                             ("--n-samples", args.n_samples, 2), ("--steps", args.steps, 1)):
        if value < low:
            return f"{flag} must be >= {low} (got {value})"
    if not 0 < args.lr < math.inf:
        return f"--lr must be positive and finite (got {args.lr})"
    from ..run.resources import check_fits

    # the training set and the samples (float64 copies for the cumulants), the MLP's weights with Adam's
    # two moments and gradients, and one batch of activations through the layers
    weights = (args.hidden * args.hidden * max(args.n_layers - 1, 0) + 4 * args.hidden) * 4 * 4
    activations = min(args.batch, args.n_train) * args.hidden * (args.n_layers + 2) * 4 * 3
    try:
        check_fits(args.n_train * 8 * 3 + args.n_samples * 8 * 3 + weights + activations,
                   f"--n-train {args.n_train}, --n-samples {args.n_samples}, --hidden {args.hidden}")
    except ValueError as exc:
        return str(exc)
    if not 0 <= args.seed < 2 ** 63:
        return f"--seed must be in [0, 2**63) (got {args.seed})"
    if not sdes:
        return f"--sdes {args.sdes!r}: give at least one of {', '.join(SDES)}"
    unknown = [s for s in sdes if s not in SDES]
    if unknown:
        return f"--sdes: unknown SDE {unknown[0]!r}; choose from {', '.join(SDES)}"
    return None


def _out_problem(out: Path) -> str | None:
    """Checked before minutes of training: --out must be a (new, or earlier table's) file in a writable
    directory."""
    from ..diffusion.toy import is_cumulant_table
    from .train import write_problem

    if os.path.lexists(out):
        if out.is_dir():
            return f"--out {out} is a directory; give a file path"
        if not out.is_file():
            return f"--out {out} exists and is not a regular file (a device, FIFO or broken link)"
        if not is_cumulant_table(out):
            return f"--out {out} exists and is not a toy-cumulants table; it is not replaced"
    problem = write_problem(out.parent)
    return f"--out: {problem}" if problem else None


def run(args) -> int:
    from ..diffusion.toy import cumulant_table

    sdes = tuple(s.strip() for s in args.sdes.split(",") if s.strip())
    problem = _option_problem(args, sdes) or (_out_problem(Path(args.out)) if args.out is not None else None)
    if problem:
        return _refuse(args, problem)
    cumulant_table(out=args.out, sdes=sdes, n_train=args.n_train, epochs=args.epochs, batch=args.batch,
                   lr=args.lr, hidden=args.hidden, n_layers=args.n_layers, n_samples=args.n_samples,
                   steps=args.steps, sampler=args.sampler, seed=args.seed, progress=not args.quiet)
    if args.out:
        print(f"wrote {args.out}")
    return 0
