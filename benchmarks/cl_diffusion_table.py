"""SBM / EBM / MCMC-EBM moments of the CL quartic model against exact (issue #13 item 6).

    python benchmarks/cl_diffusion_table.py CL.h5 --models 10 --out results/cl_table     (full)
    python benchmarks/cl_diffusion_table.py CL.h5 --small --out results/cl_small         (≈ 3 min)

Trains `--models` SBMs (net mlp) and EBMs (net energy) with seeds 0..M-1 on the walkers file's
points (EDM preconditioning by default, `--precond`), samples each (`--sampler`, default the
probability-flow ODE, Heun, on a grid uniform in ln s, stopping at `--eps` without denoising: VE
noise is circular, so ⟨(z + n)ᵏ⟩ = ⟨zᵏ⟩ at any noise level); the EBMs also by MALA on
exp(−E_θ(·, t_min)) (MCMC-EBM) and by grid quadrature of p_θ ∝ exp(−E_θ(·, t_min)), t_min = `--t-min`
(default `--eps`).  Writes table.json, table.md and the plots (curl of the SBM/EBM scores, p_θ,
marginals).  Uses the library calls the CLI uses (diffusion.train, sampling, energy.mala_batches,
cl.learned).
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch


def _fmt1(value, err):
    """value(err), err's leading digit (the CL row: walkers are independent, the jackknife blocks
    of point_moments hold whole walkers)."""
    d = max(0, -int(np.floor(np.log10(err)))) if err > 0 else 4
    return f"{value:.{d}f}({round(err * 10 ** d)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("walkers")
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true",
                    help="≈ 3-minute version: 2 models of each, 10 epochs, 10⁵ points, 2·10⁴ samples")
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--precond", choices=("eps", "edm"), default="edm")
    ap.add_argument("--t-sampling", choices=("uniform", "log-uniform", "lognormal"), default="uniform")
    ap.add_argument("--n-samples", type=int, default=50_000)
    ap.add_argument("--sampler", choices=("em", "ode"), default="ode")
    ap.add_argument("--time-grid", choices=("t", "log-s"), default="log-s")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--eps", type=float, default=0.0356,
                    help="sampler end time (VE σ=25: 0.0356 is s = 0.2), no denoising")
    ap.add_argument("--t-min", type=float, help="time of p_θ ∝ exp(−E_θ(·, t_min)) for MALA and the grid (--eps)")
    ap.add_argument("--mala-step", type=float, default=0.005)
    ap.add_argument("--burn-in", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    if a.small:
        a.models, a.epochs, a.points, a.n_samples, a.burn_in = 2, 10, 100_000, 20_000, 200
    t_min = a.eps if a.t_min is None else a.t_min
    for name in ("models", "epochs", "points", "batch", "hidden", "n_samples", "steps", "threads"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if not (0 < a.eps < 1 and 0 < t_min < 1 and a.lr > 0 and a.mala_step > 0 and a.burn_in >= 0):
        ap.error("need 0 < --eps, --t-min < 1, --lr > 0, --mala-step > 0, --burn-in >= 0")
    torch.set_num_threads(a.threads)
    from qcdhpc.cl import learned
    from qcdhpc.diffusion.energy import mala_batches
    from qcdhpc.diffusion.model_io import load_model
    from qcdhpc.diffusion.sampling import sample
    from qcdhpc.diffusion.train import TrainConfig, train
    from qcdhpc.io.containers import open_container

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with open_container(a.walkers, kinds=("walkers",)) as c:
        pts, info = learned.training_points(c, a.points)
        sigma, lam = complex(*c.attrs["sigma"]), float(c.attrs["lam"])
    ex = learned.exact_reference(sigma, lam)
    rows, models, timing = {"SBM": [], "EBM": [], "MCMC-EBM": [], "EBM-grid": []}, {"mlp": [], "energy": []}, {}
    grid = learned.Grid()
    for net in ("mlp", "energy"):
        t0 = time.perf_counter()
        for m in range(a.models):
            run = out / "runs" / f"{net}_{m}"
            shutil.rmtree(run, ignore_errors=True)
            cfg = TrainConfig(sde="ve", net=net, hidden=a.hidden, epochs=a.epochs, batch=a.batch, lr=a.lr,
                              z2=True, seed=m, device="cpu", precond=a.precond, t_sampling=a.t_sampling)
            train(torch.from_numpy(pts), cfg, run, progress=False)
            model, sde, _ = load_model(run / "model.pt")
            models[net].append(model)
            x = sample(model, sde, a.n_samples, (2,), a.sampler, a.steps, eps=a.eps, batch_size=25_000,
                       seed=1000 + m, denoise=False, time_grid=a.time_grid)
            rows["SBM" if net == "mlp" else "EBM"].append(learned.point_moments(x.numpy()))
            if net == "energy":
                acc = prop = 0
                xs = []
                for b, ac, pr in mala_batches(model, sde, a.n_samples, (2,), 25_000, step=a.mala_step,
                                              burn_in=a.burn_in, thin=1, seed=2000 + m, t_min=t_min):
                    xs.append(b)
                    acc, prop = acc + ac, prop + pr
                r = learned.point_moments(torch.cat(xs).numpy())
                r["acceptance"] = acc / prop
                rows["MCMC-EBM"].append(r)
                d = learned.density_on_grid(model, grid, t=t_min)
                rows["EBM-grid"].append({"mu": d["mu"], "kappa": d["kappa"], "mu_err": 0 * d["mu"],
                                         "kappa_err": 0 * d["kappa"]})
        timing[net] = time.perf_counter() - t0
        print(f"{net}: {a.models} models in {timing[net]:.0f} s", flush=True)
    tables = {k: learned.ensemble_table(v, ex) for k, v in rows.items()}
    cl = learned.point_moments(pts)  # the training points (errors: as independent, an underestimate)
    lines = ["| | " + " | ".join(f"{t} μ{o} {p}" for t in ("Re",) for o in (2, 4, 6, 8) for p in ("",)) + " |"]
    hdr = [f"{p} μ{o}" for o in (2, 4, 6, 8) for p in ("Re", "Im")]
    lines = ["| | " + " | ".join(hdr) + " |", "|---" * (len(hdr) + 1) + "|",
             "| exact | " + " | ".join(f"{tables['SBM'][f'mu{o}_{p}']['exact']:.6f}" for o in (2, 4, 6, 8)
                                      for p in ("re", "im")) + " |",
             "| CL (training points) | " + " | ".join(
                 _fmt1(f(cl["mu"][o - 1]), f(cl["mu_err"][o - 1])) for o in (2, 4, 6, 8)
                 for f in (np.real, np.imag)) + " |"]
    for name, tab in tables.items():
        lines.append(f"| {name} | " + " | ".join(
            f"{learned.fmt2(q['value'], q['stat'], q['sys'])}" + (f" [{q['sigma']:.1f}σ]" if q["sigma"] is not None else "")
            for k, q in tab.items() if k.startswith("mu")) + " |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    (out / "table.json").write_text(json.dumps({"tables": tables, "timing_s": timing, "args": vars(a),
                                                "training_points": info,
                                                "mala_acceptance": [r["acceptance"] for r in rows["MCMC-EBM"]]},
                                               indent=1, default=float) + "\n")
    for net in ("mlp", "energy"):
        learned.plot_curl(learned.curl_on_grid(models[net], grid, t=a.eps), grid, out / f"curl_{net}.png",
                          title=f"curl of the {'SBM' if net == 'mlp' else 'EBM'} score")
    d = learned.density_on_grid(models["energy"][0], grid, t=t_min)
    learned.plot_density(d, grid, out / "ebm_density.png")
    learned.plot_marginals(d, grid, pts, out / "marginals.png")
    print("\n".join(lines))
    print(json.dumps(timing))


if __name__ == "__main__":
    main()
