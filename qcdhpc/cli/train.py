"""`qcdhpc train ENSEMBLE.h5 --out RUN_DIR|MODEL.pt`: train a score-based diffusion model on an ensemble.

Registered by cli/main.py through add_parser(subparsers); run(args) returns the exit code: 0, 2 (refused),
or 75 (qcdhpc.interrupt.EXIT_INTERRUPTED) when SIGTERM/SIGUSR1/SIGINT stopped it after an epoch with
checkpoint.pt written — rerun the same command with --resume, as `qcdhpc hmc`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from .common import refuse

SEED_LIMIT = 2 ** 63  # seeds are integers in [0, 2**63): what numpy's SeedSequence and torch both take
RUN_FILES = ("config.json", "log.jsonl", "checkpoint.pt", "checkpoint.stale.pt", "loss.png", "model.pt")


def _refuse(args, message: str) -> int:
    """refuse() as `qcdhpc train` (also right when run(args) is called directly), on one line."""
    return refuse(args, " ".join(str(message).split()), command="train")

PHYSICS_ATTRS = ("L", "kappa", "lam", "sigma", "theory", "container", "seed", "code_version")  # copied into model.pt meta


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
                   help="run directory (model at RUN_DIR/model.pt), or MODEL.pt (run directory MODEL.run/); "
                        "a new or empty directory, or the run directory of an earlier `qcdhpc train` "
                        "(with --resume)")
    g = p.add_argument_group("model")
    g.add_argument("--sde", choices=("ve", "vp"), default="ve", help="forward SDE (ve: the seeds' σ=25)")
    g.add_argument("--sigma-max", type=float, metavar="S",
                   help="VE only: geometric noise schedule s(t) ≈ σ_min (σ_max/σ_min)^t (score_sde) instead of "
                        "the seeds' σ=25 (s(1) = 9.84). σ_max must exceed the data's spread along its widest "
                        "direction (training warns when it does not): needed in the broken phase")
    g.add_argument("--sigma-min", type=float, metavar="S", help="VE with --sigma-max only (0.01)")
    g.add_argument("--net", choices=("unet", "mlp", "energy"),
                   help="unet: periodic U-Net score (lattice fields; the default for fields/samples files); "
                        "mlp: score MLP (SBM; the default for cl-quartic walkers files, trained on the points "
                        "(x, y)); energy: energy MLP, score = -grad E with E = |v|^2/2 (EBM; point data)")
    g.add_argument("--hidden", type=int, default=128, help="mlp/energy width, >= 1 (128)")
    g.add_argument("--n-layers", type=int, default=3, help="mlp/energy hidden layers, >= 1 (3)")
    g.add_argument("--eps-t", type=float, default=1e-5, metavar="T",
                   help="smallest diffusion time of training, t ~ U(T, 1), in (0, 1) (1e-5)")
    g.add_argument("--channels", type=int, default=32, help="U-Net base channels, >= 1 (32)")
    g.add_argument("--depth", type=int, default=2, help="U-Net down-samplings, >= 0; L %% 2**depth == 0 (2)")
    g.add_argument("--n-res", type=int, default=1, help="residual blocks per level, >= 1 (1)")
    g.add_argument("--global-context", action=argparse.BooleanOptionalAction, default=True,
                   help="global-pooling path at the U-Net bottleneck, so the network sees the "
                        "magnetisation M of the whole lattice (needed in the broken phase; default on)")
    g.add_argument("--baseline", choices=("none", "gaussian", "gaussian+m"), default="none",
                   help="gaussian: score = exact score of the Gaussian field with the data's two-point "
                        "function + the network (which then learns only the interaction); gaussian+m: "
                        "the same with the data's own distribution of the magnetisation M for the k = 0 "
                        "mode (needed in the broken phase); none: the network alone, as in the seeds (none)")
    g.add_argument("--precond", choices=("eps", "edm"),
                   help="network parametrisation: eps: score = F/s (the seeds'; the default for lattice fields); "
                        "edm: EDM preconditioning, score = -x/(s^2+sd^2) + sd F/(s sqrt(s^2+sd^2)) with EDM's "
                        "loss weight (the default for walkers/point data without --baseline: removes the too-wide-marginal bias "
                        "of the eps score at large noise); no --baseline with edm")
    g.add_argument("--t-sampling", choices=("uniform", "log-uniform", "lognormal"), default="uniform",
                   help="training times: uniform in t (the seeds'), or by noise level s/alpha: log-uniform, "
                        "lognormal (EDM's ln s ~ N(-1.2, 1.2^2)); a reweighting of the loss over noise levels (uniform)")
    g.add_argument("--z2-equivariant", action=argparse.BooleanOptionalAction, default=False,
                   help="exactly Z2-odd score, score(-x) = -score(x), by averaging the network over "
                        "phi -> -phi (twice the network cost); keeps the two vacua of the broken phase "
                        "equally weighted, which augmentation alone does not guarantee (off)")
    g.add_argument("--zero-mode-weight", type=float, default=1.0, metavar="W",
                   help="weight of the k = 0 Fourier mode (the magnetisation M) in the DSM loss, which is "
                        "otherwise 1/V of it; W = V makes M count as much as all other modes (1)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=100, help="total epochs, >= 1 (100)")
    g.add_argument("--batch", type=int, default=64,
                   help="batch size per rank, >= 1 (64); a rank with fewer training configurations than "
                        "this trains on all of them as one batch per epoch (the batch is clamped, not refused)")
    g.add_argument("--lr", type=float, default=2e-4, help="peak learning rate, > 0 (2e-4)")
    g.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps, >= 0 (100)")
    g.add_argument("--grad-clip", type=float, default=1.0, help="max global gradient norm, > 0 (1.0)")
    g.add_argument("--ema-decay", type=float, default=0.999, help="EMA decay in [0, 1) (0.999)")
    g.add_argument("--z2", action=argparse.BooleanOptionalAction, default=True,
                   help="random φ → −φ augmentation (default on)")
    g.add_argument("--translate", action=argparse.BooleanOptionalAction, default=None,
                   help="random periodic-translation augmentation (default on for lattice fields; refused "
                        "for point data, which have no translations)")
    g.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none",
                   help="CUDA autocast (bf16/fp16 need a CUDA device)")
    g.add_argument("--max-configs", type=int,
                   help="train on the first N >= 1 configurations only (walkers files: N points, thinned "
                        "evenly along each walker's records)")
    g.add_argument("--seed", type=int, default=0, help="in [0, 2**63) (0)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (auto)")
    g.add_argument("--checkpoint-every", type=int, default=1, metavar="EPOCHS", help=">= 1 (1)")
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


def _option_problem(args) -> str | None:
    """What is wrong with the numeric and device options (no file is looked at), or None."""
    for flag, value, low in (("--epochs", args.epochs, 1), ("--batch", args.batch, 1), ("--warmup", args.warmup, 0),
                             ("--channels", args.channels, 1), ("--depth", args.depth, 0),
                             ("--n-res", args.n_res, 1), ("--checkpoint-every", args.checkpoint_every, 1),
                             ("--hidden", args.hidden, 1), ("--n-layers", args.n_layers, 1),
                             ("--max-configs", args.max_configs, 1)):
        if value is not None and value < low:
            return f"{flag} must be >= {low} (got {value})"
    for flag, value in (("--lr", args.lr), ("--grad-clip", args.grad_clip),
                        ("--zero-mode-weight", args.zero_mode_weight)):
        if not 0 < value < math.inf:
            return f"{flag} must be positive and finite (got {value})"
    if not 0 <= args.ema_decay < 1:
        return f"--ema-decay must be in [0, 1) (got {args.ema_decay})"
    if not 0 < args.eps_t < 1:
        return f"--eps-t must be in (0, 1) (got {args.eps_t})"
    if not 0 <= args.seed < SEED_LIMIT:
        return f"--seed must be in [0, 2**63) (got {args.seed})"
    if args.sigma_max is None and args.sigma_min is not None:
        return "--sigma-min needs --sigma-max (the geometric VE schedule)"
    if args.sigma_max is not None:
        if args.sde != "ve":
            return "--sigma-max/--sigma-min apply to the VE SDE only"
        sigma_min = 0.01 if args.sigma_min is None else args.sigma_min
        if not 0 < sigma_min < args.sigma_max < math.inf:
            return f"need 0 < --sigma-min < --sigma-max < inf (got {sigma_min}, {args.sigma_max})"
    return _device_problem(args)


def _device_problem(args) -> str | None:
    import torch

    from ..diffusion.distributed import resolve_device

    try:
        dev = resolve_device(args.device)
    except RuntimeError:  # torch.device("gpu")
        return f"--device must be auto, cpu, cuda or cuda:N (got {args.device!r})"
    except ValueError as exc:  # cuda without CUDA
        return f"--device {args.device}: {exc}"
    if dev.type not in ("cpu", "cuda"):
        return f"--device must be auto, cpu, cuda or cuda:N (got {args.device!r})"
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        return f"--device {args.device}: torch sees {torch.cuda.device_count()} CUDA device(s)"
    if args.amp != "none" and dev.type != "cuda":
        return f"--amp {args.amp} needs a CUDA device (--device {args.device} trains on {dev.type})"
    return None


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # also through links
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def _is_run_dir(path: Path) -> bool:
    """An empty directory, or one `qcdhpc train` wrote (checkpoint.pt, or its config.json)."""
    if not any(path.iterdir()) or (path / "checkpoint.pt").exists():
        return True
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and "config" in cfg and "data_shape" in cfg


def write_problem(target: Path) -> str | None:
    """Whether `target` (a directory, existing or to be made) can be created and written in (nothing is
    created): run.outputs.check_writable_dir's reason, or None if fine."""
    from ..run.outputs import check_writable_dir

    try:
        check_writable_dir(target, "--out")
    except ValueError as exc:
        return str(exc).removeprefix("--out: ")
    return None


def _out_problem(args, run_dir: Path, model_path: Path) -> str | None:
    """What is wrong with the input path and --out (nothing is created), or None."""
    ens = Path(args.ensemble)
    if not ens.exists():
        return f"{ens}: no such ensemble file"
    if not ens.is_file():
        return f"{ens} is not a regular file (an ensemble is an HDF5 file)"
    for out in (model_path, run_dir, *(run_dir / name for name in RUN_FILES)):
        if _same_path(out, ens):
            return f"--out {args.out} would write {out}, which is the input ensemble {ens}"
    ckpt = run_dir / "checkpoint.pt"
    if os.path.lexists(model_path) and not model_path.is_file():
        return f"--out: {model_path} exists and is not a regular file (a directory, device or broken link)"
    if os.path.lexists(run_dir):
        if not run_dir.is_dir():
            return f"--out: {run_dir} exists and is not a directory (the run directory)"
        if not _is_run_dir(run_dir):
            return (f"--out: {run_dir} is a directory, but not a qcdhpc run directory (no checkpoint.pt, no "
                    f"config.json of `qcdhpc train`); choose a new or empty directory")
    if os.path.lexists(ckpt) and not ckpt.is_file():
        return f"{ckpt} is not a qcdhpc training checkpoint (not a regular file); remove it"
    if ckpt.exists() and not args.resume:
        return f"{ckpt} exists: pass --resume to continue that run, or choose another --out"
    if model_path.exists() and not ckpt.exists() and not (args.resume and args.restart_stale):
        return (f"{model_path} exists and {ckpt} does not (nothing to resume): training would replace that "
                f"model; delete it or choose another --out")
    for directory in dict.fromkeys((run_dir, model_path.parent)):
        problem = write_problem(directory)
        if problem:
            return f"--out: {problem}"
    return None


def _is_main_rank() -> bool:
    from ..diffusion.distributed import launcher

    found = launcher()
    return found is None or found[1] == 0


def run(args) -> int:
    from ..diffusion.train import Interrupted, TrainConfig, train
    from ..io.containers import open_container

    problem = _option_problem(args)
    run_dir, model_path = out_paths(args.out)
    problem = problem or _out_problem(args, run_dir, model_path)
    if problem:
        return _refuse(args, problem)
    try:
        with open_container(args.ensemble, kinds=("fields", "samples", "walkers")) as ens:
            attrs = ens.attrs
            points = ens.kind == "walkers"
            if points:  # complex-Langevin walkers: the points (x, y) of the records (qcdhpc.cl.learned)
                from ..cl.learned import training_points

                data, cl_info = training_points(ens, args.max_configs)
                n = len(data)
            else:
                n = len(ens) if args.max_configs is None else min(args.max_configs, len(ens))
                data = ens.configs[:n]
    except (ValueError, FileNotFoundError) as exc:
        return _refuse(args, str(exc))
    net = args.net or ("mlp" if points else "unet")
    if points:
        if net == "unet":
            return _refuse(args, f"--net unet needs lattice fields; {args.ensemble} holds point data (x, y): "
                                 "use --net mlp (score model) or --net energy (energy model)")
        if args.translate:
            return _refuse(args, "--translate: point data (x, y) have no translation symmetry (omit it)")
        if args.baseline not in ("none", "gaussian"):
            return _refuse(args, f"--baseline {args.baseline} needs lattice fields; point data take none or gaussian "
                                 "(the Gaussian of the data's covariance)")
        translate = False
        precond = args.precond or ("edm" if args.baseline == "none" else "eps")  # edm takes no baseline
    else:
        precond = args.precond or "eps"
        translate = True if args.translate is None else args.translate
        if net != "unet":
            return _refuse(args, f"--net {net} is for point data (walkers files); lattice fields train the unet")
        if data.ndim != 3:
            return _refuse(args, f"{args.ensemble}: /configs has shape {data.shape}, need (n, L0, L1)")
        if n < 1:
            return _refuse(args, f"{args.ensemble}: no configurations to train on")
        bad = [f"L{i} = {L}" for i, L in enumerate(data.shape[1:]) if args.depth >= L.bit_length() or L % 2 ** args.depth]
        if bad:
            m = f"2**{args.depth}" + (f" = {2 ** args.depth}" if args.depth <= 30 else "")
            return _refuse(args, f"--depth {args.depth}: the lattice extents must be multiples of {m}, but "
                                 f"{', '.join(bad)} (use a smaller --depth)")
    if precond == "edm" and args.baseline != "none":
        return _refuse(args, f"--precond edm takes no --baseline (got --baseline {args.baseline}): its skip term "
                             "is already the Gaussian prior part; use --precond eps with a baseline")
    meta = {"training_ensemble": {k: attrs[k] for k in PHYSICS_ATTRS if k in attrs},
            "source": str(Path(args.ensemble).resolve()), "n_train": int(n)}
    if points:
        meta["training_points"] = cl_info
    sde_params = {}
    if args.sigma_max is not None:
        from ..diffusion.sde import VESDE

        sigma_min = 0.01 if args.sigma_min is None else args.sigma_min
        try:
            sde_params = VESDE.from_sigma_range(sigma_min, args.sigma_max).params()
        except ValueError as exc:
            return _refuse(args, f"--sigma-min/--sigma-max: {exc}")
    config = TrainConfig(sde=args.sde, sde_params=sde_params, net=net, hidden=args.hidden, n_layers=args.n_layers,
                         eps_t=args.eps_t, channels=args.channels, depth=args.depth, n_res=args.n_res,
                         global_context=args.global_context, zero_mode_weight=args.zero_mode_weight,
                         z2_equivariant=args.z2_equivariant,
                         baseline=args.baseline, precond=precond, t_sampling=args.t_sampling,
                         epochs=args.epochs, batch=args.batch, lr=args.lr, warmup=args.warmup,
                         grad_clip=args.grad_clip, ema_decay=args.ema_decay, z2=args.z2,
                         translate=translate, seed=args.seed, amp=args.amp,
                         checkpoint_every=args.checkpoint_every, device=args.device)
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
