"""Model files: one torch.save'd dict of tensors and plain Python types, so loading works with
torch.load(weights_only=True) (no pickled code is executed from a file someone sent you).

    {"format": "qcdhpc.diffusion", "format_version": 1,
     "config": TrainConfig as a dict (+ "sde_params"), "model": EMA state_dict,
     "data_shape": [n, *site_shape], "data_stats": {"mean", "std", "rms", "n"}, "meta": {...}}
"""
from __future__ import annotations

from pathlib import Path

import torch

from .networks import GaussianScore, PointGaussianScore, ScoreModel, build_backbone
from .sde import get_sde

FORMAT = "qcdhpc.diffusion"
FORMAT_VERSION = 1
BASELINES = ("none", "gaussian", "gaussian+m")


def backbone_kwargs(config: dict, site_shape) -> dict:
    if config["net"] == "unet":
        # files written before global_context existed: a plain U-Net
        return {"channels": config["channels"], "depth": config["depth"], "n_res": config["n_res"],
                "global_context": bool(config.get("global_context", False))}
    dim = 1  # mlp, energy: flat data
    for s in site_shape:
        dim *= int(s)
    return {"dim": dim, "hidden": config["hidden"], "n_layers": config["n_layers"]}


def build_model(config: dict, site_shape, sigma_data: float = 1.0):
    """(ScoreModel, sde) described by a config dict (TrainConfig fields + sde_params)."""
    sde = get_sde(config["sde"], **config.get("sde_params", {}))
    kind = config.get("baseline", "none")  # files written before the option existed: no baseline
    points = config["net"] in ("mlp", "energy") and len(site_shape) == 1
    precond = config.get("precond", "eps")  # files written before the option existed: ε-parametrisation
    if points and kind not in ("none", "gaussian"):
        raise ValueError(f"baseline {kind!r} needs lattice fields; point data take none or gaussian")
    point_baseline = PointGaussianScore(int(site_shape[0])) if points and kind == "gaussian" else None
    if config["net"] == "energy":  # EBM: score = −∇E (energy.py); the Gaussian baseline adds its energy
        from .energy import EnergyMLP, EnergyScoreModel

        if kind != "none" and point_baseline is None:
            raise ValueError("the energy network takes the Gaussian baseline of point data only")
        return EnergyScoreModel(EnergyMLP(**backbone_kwargs(config, site_shape)), sde, sigma_data,
                                odd=bool(config.get("z2_equivariant", False)), baseline=point_baseline,
                                precond=precond), sde
    backbone = build_backbone(config["net"], **backbone_kwargs(config, site_shape))
    if kind not in BASELINES:
        raise ValueError(f"unknown score baseline {kind!r}; choose one of {', '.join(BASELINES)}")
    baseline = point_baseline or (GaussianScore(site_shape, zero_mode=kind == "gaussian+m") if kind != "none" else None)
    # files written before z2_equivariant existed: no group averaging
    return ScoreModel(backbone, sde, sigma_data, baseline, odd=bool(config.get("z2_equivariant", False)),
                      precond=precond), sde


def save_model(path, model: ScoreModel, config: dict, data_shape, data_stats: dict, meta: dict | None = None):
    """Write a model file atomically (temp file in the same directory + os.replace)."""
    from ..io.atomic import atomic_path

    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    blob = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": dict(config), "model": state,
            "data_shape": [int(s) for s in data_shape], "data_stats": dict(data_stats),
            "meta": dict(meta or {})}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def read_model_file(path, map_location="cpu") -> dict:
    """The raw dict of a model file, validated; ValueError naming the file if foreign or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # zip/pickle errors, or objects weights_only refuses to unpickle
        raise ValueError(f"{path}: not a readable {FORMAT} model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        fmt = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path}: not a {FORMAT} model file (format {fmt!r})")
    if blob.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {blob.get('format_version')} is newer than this qcdhpc "
                         f"reads ({FORMAT_VERSION})")
    missing = [k for k in ("config", "model", "data_shape", "data_stats") if k not in blob]
    if missing:
        raise ValueError(f"{path}: corrupt {FORMAT} model file, missing {', '.join(missing)}")
    return blob


def load_model(path, map_location="cpu"):
    """(net, sde, config) from a model file; net is a ScoreModel (score(x, t)) — an
    energy.EnergyScoreModel (also energy(x, t)) for net "energy" — in eval mode, with
    the EMA weights.  config also carries "data_shape", "data_stats" and "meta" of the file."""
    blob = read_model_file(path, map_location)
    config = dict(blob["config"])
    net, sde = build_model(config, blob["data_shape"][1:], blob["data_stats"].get("rms", 1.0))
    try:
        net.load_state_dict(blob["model"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match the network its config describes ({exc})") from None
    config.update(data_shape=blob["data_shape"], data_stats=blob["data_stats"], meta=blob.get("meta", {}))
    return net.to(map_location).eval(), sde, config
