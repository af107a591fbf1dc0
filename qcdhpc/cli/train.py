"""`qcdhpc train ENSEMBLE.h5 --out RUN_DIR|MODEL.pt`: train a score-based diffusion model on an ensemble.

Registered by cli/main.py through add_parser(subparsers); run(args) returns the exit code: 0, 2 (refused),
or 75 (qcdhpc.interrupt.EXIT_INTERRUPTED) when SIGTERM/SIGUSR1/SIGINT stopped it after an epoch with
checkpoint.pt written — rerun the same command with --resume, as `qcdhpc hmc`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from functools import partial

from .common import refuse

_refuse = partial(refuse, command="train")  # also right when run(args) is called directly

PHYSICS_ATTRS = ("L", "kappa", "lam", "kind", "seed", "code_version")  # copied into model.pt meta


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a diffusion model on the configurations of an ensemble",
        description="Train a score-based diffusion model (VE or VP SDE, periodic U-Net, EMA) on /configs of "
                    "an ensemble file. Under torchrun/srun with several ranks it trains with "
                    "DistributedDataParallel. Writes a run directory (config.json, log.jsonl, checkpoint.pt, "
                    "loss.png) and the final EMA model (loaded with weights_only=True by `qcdhpc sample`). "
                    "On SIGTERM, SIGUSR1 or SIGINT it finishes the current epoch, writes checkpoint.pt and "
                    "exits 75: rerun the same command with --resume to continue.")
    p.add_argument("ensemble", metavar="ENSEMBLE.h5")
    p.add_argument("--out", required=True, metavar="RUN_DIR|MODEL.pt",
                   help="run directory (model at RUN_DIR/model.pt), or MODEL.pt (run directory MODEL.run/)")
    g = p.add_argument_group("model")
    g.add_argument("--sde", choices=("ve", "vp"), default="ve", help="forward SDE (ve: the seeds' σ=25)")
    g.add_argument("--sigma-max", type=float, metavar="S",
                   help="VE only: geometric noise schedule s(t) ≈ σ_min (σ_max/σ_min)^t (score_sde) instead of "
                        "the seeds' σ=25 (s(1) = 9.84). σ_max must exceed the data's spread along its widest "
                        "direction (training warns when it does not): needed in the broken phase")
    g.add_argument("--sigma-min", type=float, default=0.01, metavar="S", help="VE with --sigma-max (0.01)")
    g.add_argument("--channels", type=int, default=32, help="U-Net base channels (32)")
    g.add_argument("--depth", type=int, default=2, help="U-Net down-samplings; L %% 2**depth == 0 (2)")
    g.add_argument("--n-res", type=int, default=1, help="residual blocks per level (1)")
    g.add_argument("--global-context", action=argparse.BooleanOptionalAction, default=True,
                   help="global-pooling path at the U-Net bottleneck, so the network sees the "
                        "magnetisation M of the whole lattice (needed in the broken phase; default on)")
    g.add_argument("--baseline", choices=("none", "gaussian", "gaussian+m"), default="none",
                   help="gaussian: score = exact score of the Gaussian field with the data's two-point "
                        "function + the network (which then learns only the interaction); gaussian+m: "
                        "the same with the data's own distribution of the magnetisation M for the k = 0 "
                        "mode (needed in the broken phase); none: the network alone, as in the seeds (none)")
    g.add_argument("--z2-equivariant", action=argparse.BooleanOptionalAction, default=False,
                   help="exactly Z2-odd score, score(-x) = -score(x), by averaging the network over "
                        "phi -> -phi (twice the network cost); keeps the two vacua of the broken phase "
                        "equally weighted, which augmentation alone does not guarantee (off)")
    g.add_argument("--zero-mode-weight", type=float, default=1.0, metavar="W",
                   help="weight of the k = 0 Fourier mode (the magnetisation M) in the DSM loss, which is "
                        "otherwise 1/V of it; W = V makes M count as much as all other modes (1)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=100)
    g.add_argument("--batch", type=int, default=64, help="batch size per rank (64)")
    g.add_argument("--lr", type=float, default=2e-4)
    g.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps (100)")
    g.add_argument("--grad-clip", type=float, default=1.0)
    g.add_argument("--ema-decay", type=float, default=0.999)
    g.add_argument("--z2", action=argparse.BooleanOptionalAction, default=True,
                   help="random φ → −φ augmentation (default on)")
    g.add_argument("--translate", action=argparse.BooleanOptionalAction, default=True,
                   help="random periodic-translation augmentation (default on)")
    g.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none", help="CUDA autocast")
    g.add_argument("--max-configs", type=int, help="train on the first N configurations only")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="auto | cpu | cuda (auto)")
    g.add_argument("--checkpoint-every", type=int, default=1, metavar="EPOCHS")
    g.add_argument("--resume", action="store_true", help="continue from the run directory's checkpoint.pt")
    g.add_argument("--restart-stale", action="store_true",
                   help="with --resume: if checkpoint.pt was written with other options or data, move it to "
                        "checkpoint.stale.pt and start over instead of refusing (the workflow's choice)")
    g.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=lambda args, parser=None: run(args), subparser=p)
    return p




def out_paths(out) -> tuple[Path, Path]:
    """(run directory, model path) for --out."""
    out = Path(out)
    if out.suffix == ".pt":
        return out.with_suffix(".run"), out
    return out, out / "model.pt"


def _is_main_rank() -> bool:
    from ..diffusion.distributed import launcher

    found = launcher()
    return found is None or found[1] == 0


def run(args) -> int:
    from ..diffusion.train import Interrupted, TrainConfig, train
    from ..io.ensemble import open_ensemble

    if args.max_configs is not None and args.max_configs < 1:
        return _refuse(args, "--max-configs must be >= 1")
    try:
        with open_ensemble(args.ensemble) as ens:
            n = len(ens) if args.max_configs is None else min(args.max_configs, len(ens))
            data = ens.configs[:n]
            attrs = ens.attrs
    except (ValueError, FileNotFoundError) as exc:
        return _refuse(args, str(exc))
    if data.ndim != 3:
        return _refuse(args, f"{args.ensemble}: /configs has shape {data.shape}, need (n, L0, L1)")
    meta = {"training_ensemble": {k: attrs[k] for k in PHYSICS_ATTRS if k in attrs},
            "source": str(Path(args.ensemble).resolve()), "n_train": int(n)}
    if not (0 < args.zero_mode_weight < float("inf")):
        return _refuse(args, f"--zero-mode-weight must be positive and finite (got {args.zero_mode_weight})")
    sde_params = {}
    if args.sigma_max is not None:
        if args.sde != "ve":
            return _refuse(args, "--sigma-max/--sigma-min apply to the VE SDE only")
        if not (0 < args.sigma_min < args.sigma_max < float("inf")):
            return _refuse(args, f"need 0 < --sigma-min < --sigma-max (got {args.sigma_min}, {args.sigma_max})")
        from ..diffusion.sde import VESDE

        sde_params = VESDE.from_sigma_range(args.sigma_min, args.sigma_max).params()
    config = TrainConfig(sde=args.sde, sde_params=sde_params, net="unet", channels=args.channels, depth=args.depth, n_res=args.n_res,
                         global_context=args.global_context, zero_mode_weight=args.zero_mode_weight,
                         z2_equivariant=args.z2_equivariant,
                         baseline=args.baseline,
                         epochs=args.epochs, batch=args.batch, lr=args.lr, warmup=args.warmup,
                         grad_clip=args.grad_clip, ema_decay=args.ema_decay, z2=args.z2,
                         translate=args.translate, seed=args.seed, amp=args.amp,
                         checkpoint_every=args.checkpoint_every, device=args.device)
    run_dir, model_path = out_paths(args.out)
    try:
        summary = train(data, config, run_dir, resume=args.resume, progress=not args.quiet, meta=meta,
                        model_path=model_path, restart_stale=args.restart_stale)
    except (ValueError, FileExistsError) as exc:
        return _refuse(args, str(exc))
    except Interrupted as exc:
        if _is_main_rank():
            print(f"qcdhpc train: interrupted: {exc}", file=sys.stderr)
        return exc.exit_code
    if not args.quiet and summary["rank"] == 0:
        print(f"{model_path} written: {n} configurations, {summary['epochs']} epochs ({summary['steps']} "
              f"steps), final loss {summary['final_loss']:.4f}, {summary['time_s']:.1f} s on "
              f"{summary['device']} x{summary['world_size']}; run directory {run_dir}")
    return 0
