"""Training loop (score_sde `run_lib.train`, EDM-style run directory), resumable and optionally DDP.

Run directory `out_dir/`:
    config.json     the options (TrainConfig) + data shape/stats, written once
    log.jsonl       one line per epoch: epoch, step, loss, lr, grad_norm, time_s, samples_per_s
    checkpoint.pt   model, EMA, optimizer, (grad scaler), epoch, step, RNG states, log — atomic
    model.pt        final EMA model (model_io format; or at `model_path`)
    loss.png        loss curve
Resume (resume=True) restores checkpoint.pt and continues bit-identically (same device and build):
the data order of epoch e depends only on (seed, e) (DistributedSampler), the training noise on a
torch.Generator whose state is checkpointed, and the learning rate on the global step only.
SIGTERM/SIGUSR1/SIGINT (Slurm's time-limit warning, scancel, Ctrl-C) stop the run at the end of the
current epoch: checkpoint.pt is written (whatever checkpoint_every says) and `Interrupted` is raised
(CLI exit 75, qcdhpc.run.signals): rerun with resume=True to continue.  Epochs are the unit because the
checkpoint is per epoch; a signal's lead time must cover one epoch plus the checkpoint write.
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
import pickle
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..run.signals import EXIT_INTERRUPTED, SignalCatcher
from . import distributed
from .ema import EMA
from .losses import dsm_loss
from .model_io import build_model, save_model

# options that may change on resume (everything else must match the checkpoint)
_RESUMABLE_CHANGES = {"epochs", "checkpoint_every", "device"}


@dataclass
class TrainConfig:
    sde: str = "ve"                       # "ve" (the seeds') or "vp"
    sde_params: dict = field(default_factory=dict)  # e.g. {"sigma": 25.0}; empty = SDE defaults
    net: str = "unet"                     # "unet" (lattices), "mlp" (toy / flat data: a score MLP) or
                                          # "energy" (flat data: score = −∇E, E = ½‖v_θ‖², energy.py)
    channels: int = 32                    # unet base channels
    depth: int = 2                        # unet down-samplings (L must be divisible by 2**depth)
    n_res: int = 1                        # unet residual blocks per level
    global_context: bool = False          # unet: global-pooling path at the bottleneck (networks.UNet)
    hidden: int = 128                     # mlp width
    n_layers: int = 3                     # mlp hidden layers
    baseline: str = "none"                # "gaussian": add the data's Gaussian (two-point) score;
                                          # "gaussian+m": and the data's M distribution for k = 0
    epochs: int = 100
    batch: int = 64                       # per rank
    lr: float = 2e-4
    warmup: int = 100                     # linear lr warm-up steps (score_sde: 5000 for images)
    grad_clip: float = 1.0                # max global grad norm; 0 disables
    ema_decay: float = 0.999
    eps_t: float = 1e-5                   # t ~ U(eps_t, 1)
    zero_mode_weight: float = 1.0         # weight of the k = 0 (magnetisation) mode in the loss (losses.py)
    precond: str = "eps"                  # "eps": score = F/s (the seeds'); "edm": EDM preconditioning
                                          # (c_skip prior part + λ = 1/c_out² loss weight, networks.ScoreModel)
    t_sampling: str = "uniform"           # training times: "uniform" t, or by noise level "log-uniform" /
                                          # "lognormal" (EDM) in s/α (losses.sample_times)
    z2: bool = False                      # random φ → −φ augmentation
    z2_equivariant: bool = False          # exactly odd score, F(x) → ½[F(x) − F(−x)] (networks.ScoreModel)
    translate: bool = False               # random periodic-translation augmentation (2D fields)
    seed: int = 0
    amp: str = "none"                     # "none" | "bf16" | "fp16": CUDA autocast only
    checkpoint_every: int = 1             # epochs
    device: str = "auto"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self) -> None:
        """ValueError naming the first option out of range (before any work: an `epochs=0` run would
        otherwise write an untrained model, a bad seed fail after the network was built)."""
        ints = {"epochs": 1, "batch": 1, "warmup": 0, "checkpoint_every": 1}
        ints.update({"channels": 1, "depth": 0, "n_res": 1} if self.net == "unet" else {"hidden": 1, "n_layers": 1})
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{name} must be an integer >= {low} (got {value!r})")
        if self.net not in ("unet", "mlp", "energy"):
            raise ValueError(f"net must be unet, mlp or energy (got {self.net!r})")
        if not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be positive and finite (got {self.lr})")
        if not 0 <= self.grad_clip <= math.inf:  # 0 (or inf) disables clipping; NaN is refused
            raise ValueError(f"grad_clip must be >= 0 (0 disables clipping; got {self.grad_clip})")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1) (got {self.ema_decay})")
        if not 0 < self.zero_mode_weight < math.inf:
            raise ValueError(f"zero_mode_weight must be positive and finite (got {self.zero_mode_weight})")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or not 0 <= self.seed < 2 ** 63:
            raise ValueError(f"seed must be an integer in [0, 2**63) (got {self.seed!r})")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"amp must be none, bf16 or fp16 (got {self.amp!r})")
        if self.t_sampling not in ("uniform", "log-uniform", "lognormal"):
            raise ValueError(f"t_sampling must be uniform, log-uniform or lognormal (got {self.t_sampling!r})")
        if self.precond not in ("eps", "edm"):
            raise ValueError(f"precond must be eps or edm (got {self.precond!r})")
        if self.precond == "edm" and self.baseline != "none":
            raise ValueError(f"precond edm takes no baseline (got baseline {self.baseline!r}): its c_skip term "
                             "is already the Gaussian prior part")


class Interrupted(RuntimeError):
    """Training stopped on a signal after writing checkpoint.pt; rerun with resume=True to continue."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, ckpt_path: Path, signame: str, epoch: int, epochs: int):
        self.checkpoint = ckpt_path
        super().__init__(f"{signame} received: checkpoint written after epoch {epoch} of {epochs} in "
                         f"{ckpt_path}; rerun the same command with --resume to continue")


def _data_tensor(data) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data)
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"training data needs shape (n, ...) with n >= 1, got {tuple(x.shape)}")
    x = x.to(torch.float32).contiguous()
    if not torch.isfinite(x).all():
        raise ValueError("training data contains NaN or inf")
    return x


def _write_json_atomic(path, obj):
    from ..io.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def plot_loss(log: list, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([r["epoch"] for r in log], [r["loss"] for r in log], marker="." if len(log) < 50 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("DSM loss (per site)")
    ax.set_yscale("log")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _check_prior_width(x_all: torch.Tensor, sde, zero_mean: bool) -> None:
    """Warn when the prior N(0, s(1)²) is narrower than the data along its widest direction.

    The reverse SDE starts from the prior; along a direction where the data spread exceeds s(1) it
    cannot reach the data (Song & Ermon 2020, technique 1: σ_max ~ the largest distance in the data).
    For stationary lattice fields the widest directions are Fourier modes with variance P(k); in the
    broken phase P(0) = V⟨M²⟩ is huge (32×32, κ = 0.5: √P(0) ≈ 155 against the seeds' s(1) = 9.84)."""
    from .networks import GaussianScore

    p_max = float(GaussianScore(tuple(x_all.shape[1:])).fit(x_all, zero_mean=zero_mean).power.max())
    alpha1, s1 = (float(v) for v in sde.marginal_coeffs(torch.tensor([sde.T], dtype=torch.float64)))
    if alpha1 ** 2 * p_max > 0.1 * s1 ** 2:
        warnings.warn(f"the prior N(0, {s1:.3g}²) is too narrow for these data: their widest Fourier mode has "
                      f"std √P(k) = {p_max ** 0.5:.3g} (× α(1) = {alpha1:.3g}); sampling will not reach them. "
                      f"Use the VE SDE with --sigma-max ≳ {3 * alpha1 * p_max ** 0.5:.3g}", stacklevel=3)


# what torch.load(weights_only=True) raises on a file that is not a (complete) torch file: random bytes
# (UnpicklingError, KeyError/IndexError/UnicodeDecodeError from the legacy format's header), a zero-byte
# file (EOFError), a truncated zip (RuntimeError from the zip reader, OSError from a seek past its end)
_TORCH_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, OSError, KeyError, IndexError, ValueError)
_CHECKPOINT_TYPES = {"config": dict, "data_shape": list, "epoch": int, "step": int, "model": dict, "ema": dict,
                     "optimizer": dict, "scaler": dict, "rng": list, "torch_rng": torch.Tensor, "log": list}


def _load_checkpoint(path: Path, dev) -> dict:
    """checkpoint.pt, checked to have the structure _train writes; ValueError saying why not."""
    what = f"{path} is not a qcdhpc training checkpoint"
    if not path.is_file():
        raise ValueError(f"{what} (not a regular file)")
    try:
        ck = torch.load(path, map_location=dev, weights_only=True)
    except _TORCH_LOAD_ERRORS as exc:
        if isinstance(exc, pickle.UnpicklingError):  # torch's own text advises weights_only=False: no
            reason = "not a torch file of tensors and plain data"
        else:
            reason = str(exc).splitlines()[0][:200] if str(exc) else "empty or truncated file"
        raise ValueError(f"{what} (unreadable: {type(exc).__name__}: {reason})") from None
    if not isinstance(ck, dict):
        raise ValueError(f"{what} (a {type(ck).__name__}, not a dict)")
    missing = [k for k in _CHECKPOINT_TYPES if k not in ck]
    if missing:
        raise ValueError(f"{what} (no {', '.join(missing)})")
    wrong = [k for k, t in _CHECKPOINT_TYPES.items() if not isinstance(ck[k], t) or (t is int and isinstance(ck[k], bool))]
    ema = ck["ema"]
    if not wrong and not (isinstance(ema.get("shadow"), dict) and {"decay", "num_updates"} <= ema.keys()):
        wrong = ["ema"]
    if not wrong and not all(isinstance(r, torch.Tensor) for r in ck["rng"]):
        wrong = ["rng"]
    if wrong:
        raise ValueError(f"{what} (wrong type of {', '.join(wrong)})")
    return ck


def _weights_mismatch(ck: dict, model_state: dict) -> str | None:
    """Why the checkpoint's model/EMA weights cannot be loaded into this network, or None."""
    for name, state in (("model", ck["model"]), ("ema", ck["ema"]["shadow"])):
        if state.keys() != model_state.keys() or any(
                not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape for k, v in model_state.items()):
            return f"its {name} weights do not match the network of these options"
    return None


def _epoch_order(sampler) -> torch.Tensor:
    """The indices DistributedSampler(shuffle=True, drop_last=False) yields for its epoch, as a tensor
    (the same permutation and padding; without its Python list, which costs ~1 GB at 10⁷ samples)."""
    n, total = len(sampler.dataset), sampler.total_size
    g = torch.Generator()
    g.manual_seed(sampler.seed + sampler.epoch)
    idx = torch.randperm(n, generator=g)
    if total > n:
        idx = torch.cat([idx] * (-(-total // n)))[:total]
    return idx[sampler.rank:total:sampler.num_replicas]


def train(data, config: TrainConfig, out_dir, resume: bool = False, progress: bool = True,
          meta: dict | None = None, model_path=None, restart_stale: bool = False) -> dict:
    """Train a score model on `data` (n, *site_shape); returns a summary dict (rank 0's view).

    meta: plain-type metadata stored in model.pt (e.g. the training ensemble's couplings).
    restart_stale (with resume): a checkpoint written with other options or other data is renamed
    checkpoint.stale.pt and training starts over, instead of raising ValueError — what a workflow
    wants after its configuration or its training ensemble changed (a Slurm requeue with the same
    inputs still resumes)."""
    with SignalCatcher() as sig:
        return _train(data, config, Path(out_dir), resume, progress, meta, model_path, sig, restart_stale)


def _train(data, config: TrainConfig, out_dir: Path, resume: bool, progress: bool, meta: dict | None,
           model_path, sig: SignalCatcher, restart_stale: bool = False) -> dict:
    model_path = Path(model_path) if model_path is not None else out_dir / "model.pt"
    ckpt_path = out_dir / "checkpoint.pt"
    config.check()
    info = distributed.setup(config.device)
    dev = info.device
    x_all = _data_tensor(data)
    n, site_shape = x_all.shape[0], tuple(x_all.shape[1:])
    if config.translate and len(site_shape) != 2:
        raise ValueError("translate augmentation needs 2D fields (n, L0, L1)")
    stats = {"mean": float(x_all.mean()), "std": float(x_all.std()) if x_all.numel() > 1 else 0.0,
             "rms": float(x_all.pow(2).mean().sqrt()), "n": int(n)}
    cfg = config.to_dict()

    torch.manual_seed(config.seed)  # network initialisation: a function of the seed only
    model, sde = build_model(cfg, site_shape, sigma_data=max(stats["rms"], 1e-8))
    cfg["sde_params"] = sde.params()  # resolved defaults, so model.pt is self-describing
    with torch.no_grad():  # shape check (e.g. L not divisible by 2**depth): a clear error before any work
        try:
            model.backbone(torch.zeros(1, *site_shape), torch.full((1,), 0.5))
        except RuntimeError as exc:  # a shape torch's layers reject (ValueError: ours, already clear)
            raise ValueError(f"the {config.net} network does not fit data of site shape {site_shape} "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    # Z₂ as the data's symmetry (augmentation or an odd score): μ = 0, the data Z₂-symmetrised
    z2_symmetric = config.z2 or config.z2_equivariant
    if model.baseline is not None:  # μ, P(k) from the training data, before the EMA copies the buffers
        model.baseline.fit(x_all, zero_mean=z2_symmetric)
    if len(site_shape) == 2 and info.is_main:
        _check_prior_width(x_all, sde, z2_symmetric)
    model.to(dev)
    ema = EMA(model, config.ema_decay)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    use_amp = config.amp != "none" and dev.type == "cuda"
    if config.amp not in ("none", "bf16", "fp16"):
        raise ValueError(f"amp must be none, bf16 or fp16 (got {config.amp!r})")
    if config.amp != "none" and not use_amp and info.is_main:
        warnings.warn("amp is CUDA-only; training in float32 on CPU", stacklevel=2)
    amp_dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and config.amp == "fp16")
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(np.random.SeedSequence([config.seed, info.rank, 0x64736d]).generate_state(1)[0]))

    start_epoch, step, log = 0, 0, []
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{ckpt_path} exists: pass resume=True (--resume) to continue that run, "
                              f"or choose another output directory")
    diff, foreign = [], None
    if resume and ckpt_path.exists():
        try:
            ck = _load_checkpoint(ckpt_path, dev)
        except ValueError as exc:
            foreign = str(exc)
        else:
            defaults = TrainConfig().to_dict()  # options added after the checkpoint was written
            diff = [f"{k}: {ck['config'].get(k, defaults.get(k))!r} (checkpoint) vs {v!r} (now)"
                    for k, v in cfg.items()
                    if k not in _RESUMABLE_CHANGES and ck["config"].get(k, defaults.get(k)) != v]
            if ck["data_shape"] != [n, *site_shape]:
                diff.append(f"data shape {ck['data_shape']} vs {[n, *site_shape]}")
            elif "data_stats" in ck and ck["data_stats"] != stats:  # same shape, other configurations
                diff.append(f"data statistics {ck['data_stats']} vs {stats}")
            if not diff and _weights_mismatch(ck, model.state_dict()):
                foreign = f"{ckpt_path}: {_weights_mismatch(ck, model.state_dict())}"
            if not diff and not foreign and int(ck["epoch"]) > config.epochs:
                raise ValueError(f"{ckpt_path} has already trained {int(ck['epoch'])} epochs, more than the "
                                 f"{config.epochs} asked for: pass epochs >= {int(ck['epoch'])} (--epochs) "
                                 f"to resume it, or choose another output directory")
    if foreign and not restart_stale:
        raise ValueError(f"{foreign}; delete it, or pass restart_stale=True (--restart-stale) to move it to "
                         f"checkpoint.stale.pt and start over")
    if resume and ckpt_path.exists() and (diff or foreign):
        if not restart_stale:
            raise ValueError(f"{ckpt_path}: cannot resume with different options/data: " + "; ".join(diff)
                             + "; pass restart_stale=True (--restart-stale) to move it aside and start over")
        distributed.barrier(info)  # every rank has read the old checkpoint before it is moved
        if info.is_main:
            ckpt_path.replace(ckpt_path.with_name("checkpoint.stale.pt"))
            why = foreign or f"{ckpt_path} was written with different options/data ({'; '.join(diff)})"
            warnings.warn(f"{why}: moved to checkpoint.stale.pt, training starts over", stacklevel=2)
        distributed.barrier(info)
    elif resume and ckpt_path.exists():
        rng = ck["rng"]
        try:  # the structure was checked: this fails only for a hand-made or damaged checkpoint
            model.load_state_dict(ck["model"])
            ema.load_state_dict(ck["ema"])
            opt.load_state_dict(ck["optimizer"])
            scaler.load_state_dict(ck["scaler"])
            if len(rng) == info.world_size:
                gen.set_state(rng[info.rank].cpu())
            torch.set_rng_state(ck["torch_rng"].cpu())
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
            raise ValueError(f"{ckpt_path}: its states do not fit the network and optimiser of these options "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); delete it "
                             f"to start over") from None
        if len(rng) != info.world_size and info.is_main:
            warnings.warn(f"checkpoint was written by {len(rng)} ranks, now {info.world_size}: "
                          "training noise re-seeded (the run stays valid but is not bit-identical)")
        start_epoch, step, log = int(ck["epoch"]), int(ck["step"]), list(ck["log"])

    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(out_dir / "config.json", {"config": cfg, "data_shape": [n, *site_shape],
                                                     "data_stats": stats, "meta": meta or {},
                                                     "world_size": info.world_size})
        with open(out_dir / "log.jsonl", "w") as f:  # rewritten from the checkpoint's log on resume
            f.writelines(json.dumps(r) + "\n" for r in log)

    net = model
    if info.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)
    from torch.utils.data.distributed import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                 seed=config.seed, drop_last=False)
    x_dev = x_all.to(dev) if dev.type == "cuda" and x_all.numel() * 4 < 2 ** 31 else x_all
    epochs = range(start_epoch, config.epochs)
    bar = None
    if progress and info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=config.epochs, initial=start_epoch, desc="training", unit="epoch")
    t_start = time.perf_counter()
    for epoch in epochs:
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        order = _epoch_order(sampler)
        loss_sum, gn_sum, nb = 0.0, 0.0, 0
        model.train()
        for idx in order.split(config.batch):
            x0 = x_dev[idx.to(x_dev.device)].to(dev, non_blocking=True)
            lr = config.lr * min(1.0, (step + 1) / max(1, config.warmup))
            for group in opt.param_groups:
                group["lr"] = lr
            with torch.autocast(device_type=dev.type, dtype=amp_dtype, enabled=use_amp):
                loss = dsm_loss(net, sde, x0, config.eps_t, config.z2, config.translate, gen,
                                config.zero_mode_weight, config.t_sampling)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                config.grad_clip if config.grad_clip > 0 else math.inf)
            scaler.step(opt)
            scaler.update()
            ema.update(model)
            step += 1
            loss_sum, gn_sum, nb = loss_sum + float(loss.detach()), gn_sum + float(gn), nb + 1
        dt = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "step": step, "loss": distributed.mean_over_ranks(loss_sum / nb, info),
               "lr": lr, "grad_norm": gn_sum / nb, "time_s": round(dt, 4),
               "samples_per_s": round(len(order) * info.world_size / dt, 1)}
        log.append(row)
        # Every rank must stop after the same epoch (DDP collectives): the flags travel with the RNG
        # states, which are gathered every epoch anyway.  A signal seen by any rank stops all.
        gathered = distributed.all_gather_object((gen.get_state().cpu(), sig.caught), info)
        rngs = [g[0] for g in gathered]
        caught = next((g[1] for g in gathered if g[1] is not None), None)
        stop = caught is not None and epoch + 1 < config.epochs
        if info.is_main:
            with open(out_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            if stop or (epoch + 1) % max(1, config.checkpoint_every) == 0 or epoch + 1 == config.epochs:
                from ..io.atomic import atomic_path

                ck = {"config": cfg, "data_shape": [n, *site_shape], "data_stats": stats,
                      "epoch": epoch + 1, "step": step,
                      "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                      "scaler": scaler.state_dict(), "rng": rngs, "torch_rng": torch.get_rng_state(),
                      "log": log}
                with atomic_path(ckpt_path) as tmp:
                    torch.save(ck, tmp)
        if bar is not None:
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            bar.update(1)
        if stop:
            if bar is not None:
                bar.close()
            distributed.barrier(info)  # the checkpoint is on disk before any rank exits
            distributed.cleanup(info)
            raise Interrupted(ckpt_path, caught if caught == sig.caught else f"{caught} (another rank)",
                              epoch + 1, config.epochs)
    if bar is not None:
        bar.close()

    summary = {"out_dir": str(out_dir), "model": str(model_path), "epochs": config.epochs, "steps": step,
               "final_loss": log[-1]["loss"] if log else None, "world_size": info.world_size, "rank": info.rank,
               "device": str(dev), "time_s": round(time.perf_counter() - t_start, 3)}
    if info.is_main:
        final = build_model(cfg, site_shape, sigma_data=max(stats["rms"], 1e-8))[0]
        ema.copy_to(final)
        save_model(model_path, final, cfg, [n, *site_shape], stats, meta)
        if log:
            plot_loss(log, out_dir / "loss.png")
    distributed.barrier(info)
    distributed.cleanup(info)
    return summary
