"""The seeds' double-Gaussian check of how well a DM reconstructs higher cumulants.

P_0(x) = ½[N(μ_0, σ_0²) + N(−μ_0, σ_0²)], W[j] = ½σ_0² j² + log cosh(μ_0 j), hence
κ_2 = μ_0² + σ_0², κ_4 = −2μ_0⁴, κ_6 = 16μ_0⁶, κ_8 = −272μ_0⁸
(μ_0 = 1, σ_0 = 0.25: 1.0625, −2, 16, −272).  The VE forward process leaves κ_{n>2} unchanged while
VP damps them by f(t,0)^n (seeds; Arts, Habib, Wang, Zhou, MLST 6 (2025) 025004), which the seeds
credit for VE reconstructing them slightly better.
"""
from __future__ import annotations

import math
import os
import platform
import tempfile
import time

import numpy as np

MU0, SIGMA0 = 1.0, 0.25
ORDERS = (2, 4, 6, 8)
FORMAT = "qcdhpc.toy-cumulants"  # the table's "format" key (tables written before it: "exact" + "rows")


def moments_to_cumulants(mu: np.ndarray) -> np.ndarray:
    """Raw moments mu[0..N] (mu[0] = 1) -> cumulants k[0..N] by
    κ_n = μ_n − Σ_{m=1}^{n−1} C(n−1, m−1) κ_m μ_{n−m}
    (the seeds' recursion, here without assuming a vanishing mean).  Works on (..., N+1) arrays."""
    mu = np.asarray(mu, dtype=np.float64)
    k = np.zeros_like(mu)
    for n in range(1, mu.shape[-1]):
        k[..., n] = mu[..., n] - sum(math.comb(n - 1, m - 1) * k[..., m] * mu[..., n - m] for m in range(1, n))
    return k


def exact_cumulants(mu0: float = MU0, sigma0: float = SIGMA0, orders=ORDERS) -> dict:
    """Exact κ_n of the double Gaussian from its moments E[(±μ_0 + σ_0 z)^n] (z ~ N(0,1))."""
    N = max(orders)
    z_mom = [0.0 if k % 2 else float(np.prod(np.arange(k - 1, 0, -2))) for k in range(N + 1)]  # (k−1)!!
    mu = np.array([sum(math.comb(n, k) * mu0 ** (n - k) * sigma0 ** k * z_mom[k] for k in range(n + 1))
                   * (1.0 if n % 2 == 0 else 0.0) for n in range(N + 1)])
    k = moments_to_cumulants(mu)
    return {f"kappa{n}": float(k[n]) for n in orders}


def sample_double_gaussian(n: int, seed: int = 0, mu0: float = MU0, sigma0: float = SIGMA0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.choice([-mu0, mu0], size=n) + sigma0 * rng.standard_normal(n)).astype(np.float32)


def cumulants(x, orders=ORDERS, n_boot: int = 200, seed: int = 0) -> dict:
    """{"kappaN": {"value", "error"}} from samples: moments → cumulants, bootstrap standard errors
    (the cumulants are nonlinear in the moments, so the bootstrap resamples the whole estimator)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    N = max(orders)
    powers = x[:, None] ** np.arange(N + 1)[None, :]
    k = moments_to_cumulants(powers.mean(axis=0))
    rng = np.random.default_rng(seed)
    boot = np.empty((n_boot, N + 1))
    for b in range(n_boot):
        boot[b] = moments_to_cumulants(powers[rng.integers(0, len(x), len(x))].mean(axis=0))
    err = boot.std(axis=0, ddof=1)
    return {f"kappa{n}": {"value": float(k[n]), "error": float(err[n])} for n in orders}


def fmt(value: float, error: float) -> str:
    """value(error) with the error's leading digit, like the seeds' table: 1.0692(6), -272.7(6)."""
    if not (error > 0 and math.isfinite(error)):
        return f"{value:.4g}"
    d = max(0, -int(math.floor(math.log10(error))))
    e = round(error * 10 ** d)
    if e >= 10:
        d, e = max(0, d - 1), round(error * 10 ** max(0, d - 1))
    return f"{value:.{d}f}({e})"


def run_double_gaussian(sde_name: str, n_train: int = 100_000, epochs: int = 30, n_samples: int = 100_000,
                        steps: int = 200, sampler: str = "em", seed: int = 0, batch: int = 512,
                        lr: float = 2e-3, hidden: int = 128, n_layers: int = 3, ema_decay: float = 0.999,
                        out_dir=None, progress: bool = False, data=None) -> dict:
    """Train a DM (MLPScore) on P_0 samples, sample, and return a table row with the cumulants."""
    import torch

    from .model_io import load_model
    from .sampling import sample
    from .train import TrainConfig, train

    data = sample_double_gaussian(n_train, seed) if data is None else data
    cfg = TrainConfig(sde=sde_name, net="mlp", hidden=hidden, n_layers=n_layers, epochs=epochs, batch=batch,
                      lr=lr, warmup=100, ema_decay=ema_decay, seed=seed, checkpoint_every=max(1, epochs),
                      device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = out_dir if out_dir is not None else tmp
        t0 = time.perf_counter()
        summary = train(data, cfg, run_dir, progress=progress)
        t1 = time.perf_counter()
        net, sde, _ = load_model(os.path.join(run_dir, "model.pt"))
        x = sample(net, sde, n_samples, (), sampler, steps=steps, batch_size=min(n_samples, 50_000),
                   seed=seed + 1, progress=progress)
        t2 = time.perf_counter()
    return {"name": {"ve": "Variance expanding", "vp": "Variance preserving (DDPM)"}.get(sde_name, sde_name),
            "sde": sde_name, "cumulants": cumulants(x.numpy()), "final_loss": summary["final_loss"],
            "train_time_s": round(t1 - t0, 1), "sample_time_s": round(t2 - t1, 1),
            "settings": {"n_train": n_train, "epochs": epochs, "steps_trained": summary["steps"],
                         "n_samples": n_samples, "sampler": sampler, "sampling_steps": steps, "batch": batch,
                         "lr": lr, "hidden": hidden, "n_layers": n_layers, "ema_decay": ema_decay,
                         "seed": seed, "torch_threads": torch.get_num_threads()}}


def hardware() -> dict:
    import torch

    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "device": "cpu"}


def cumulant_table(out=None, sdes=("ve", "vp"), print_table: bool = True, **kwargs) -> dict:
    """The seeds' 'Comparison of the two schemes' table: exact, data, and one row per SDE.
    kwargs go to run_double_gaussian; the JSON is written atomically to `out` if given."""
    unknown = [s for s in sdes if s not in ("ve", "vp")]
    if not sdes or unknown:
        raise ValueError(f"sdes must be a non-empty selection of ve, vp (got {tuple(sdes)!r})")
    t0 = time.perf_counter()
    n_train, seed = kwargs.get("n_train", 100_000), kwargs.get("seed", 0)
    data = sample_double_gaussian(n_train, seed)
    rows = [{"name": "Data", "sde": None, "cumulants": cumulants(data)}]
    rows += [run_double_gaussian(s, data=data, **kwargs) for s in sdes]
    result = {"format": FORMAT, "exact": exact_cumulants(), "rows": rows, "mu0": MU0, "sigma0": SIGMA0,
              "total_time_s": round(time.perf_counter() - t0, 1), "hardware": hardware()}
    if print_table:
        print(format_table(result))
    if out is not None:
        import json

        from ..io.atomic import atomic_write_text

        atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    return result


def is_cumulant_table(path) -> bool:
    """Whether `path` holds a table cumulant_table wrote (so --out may replace it)."""
    import json

    try:
        with open(path, "rb") as f:
            obj = json.loads(f.read(16 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(obj, dict) and (obj.get("format") == FORMAT or {"exact", "rows"} <= obj.keys())


def format_table(result: dict) -> str:
    head = f"{'':<28}" + "".join(f"{'κ' + str(n):>13}" for n in ORDERS)
    lines = [head, f"{'Exact':<28}" + "".join(f"{result['exact'][f'kappa{n}']:>13.6g}" for n in ORDERS)]
    for r in result["rows"]:
        c = r["cumulants"]
        lines.append(f"{r['name']:<28}" + "".join(f"{fmt(c[f'kappa{n}']['value'], c[f'kappa{n}']['error']):>13}"
                                                 for n in ORDERS))
    hw = result["hardware"]
    times = ", ".join(f"{r['sde']}: train {r['train_time_s']} s + sample {r['sample_time_s']} s"
                      for r in result["rows"] if r["sde"])
    lines.append(f"({times}; total {result['total_time_s']} s on {hw['cpu_count']} CPU cores, "
                 f"{hw['torch_threads']} torch threads, {hw['processor']})")
    return "\n".join(lines)
