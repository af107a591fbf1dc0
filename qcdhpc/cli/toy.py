"""`qcdhpc toy-cumulants --out table.json`: the seeds' double-Gaussian cumulant table (VE vs VP)."""
from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "toy-cumulants", help="double-Gaussian cumulant check of VE and VP diffusion models",
        description="Train VE and VP diffusion models (MLP score) on samples of P0(x) = ½[N(1, 0.25²) + "
                    "N(−1, 0.25²)], sample them, and print κ2, κ4, κ6, κ8 with bootstrap errors next to "
                    "the exact 1.0625, −2, 16, −272 and the training data (the seeds' table).")
    p.add_argument("--out", help="write the table as JSON here")
    p.add_argument("--sdes", default="ve,vp", help="comma-separated SDEs (ve,vp)")
    p.add_argument("--n-train", type=int, default=100_000)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--n-layers", type=int, default=3)
    p.add_argument("--n-samples", type=int, default=100_000)
    p.add_argument("--steps", type=int, default=200, help="sampler steps (200)")
    p.add_argument("--sampler", choices=("em", "pc", "ode"), default="em")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=lambda args, parser=None: run(args), subparser=p)
    return p


def run(args) -> int:
    from ..diffusion.toy import cumulant_table

    sdes = tuple(s.strip() for s in args.sdes.split(",") if s.strip())
    cumulant_table(out=args.out, sdes=sdes, n_train=args.n_train, epochs=args.epochs, batch=args.batch,
                   lr=args.lr, hidden=args.hidden, n_layers=args.n_layers, n_samples=args.n_samples,
                   steps=args.steps, sampler=args.sampler, seed=args.seed, progress=not args.quiet)
    if args.out:
        print(f"wrote {args.out}")
    return 0
