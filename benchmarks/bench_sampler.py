"""Diffusion-model sampler vs HMC: configurations per second that count as independent.

HMC produces a Markov chain: consecutive configurations are correlated, and an average over N of them
has the error of N / (2 tau_int) independent ones (Gamma-method, docs/observables.md).  A diffusion
model (DM) draws independent configurations by construction, but must be trained first (one-off).

Figures of merit, per point (L, kappa, lambda):

    HMC:  r_HMC = (B / t_traj) / (2 tau_int,max)    independent configurations / s
    DM:   r_DM  = n / t_sample                       generated configurations / s

t_traj: wall seconds for one trajectory of all B chains (`qcdhpc._kernels.hmc_trajectories`, median of
timed calls of many trajectories each, as benchmarks/bench_hmc.py); tau_int,max: the largest integrated
autocorrelation time, in trajectories, of the per-trajectory series M, |M|, M^2 (chi = V<M^2>) and the
action density S/V, from the Gamma-method (pyerrors, Wolff's window S = 2, the B chains as replicas) on a
run of --ntraj trajectories per chain measured after every trajectory (after --therm thermalisation
trajectories).  t_sample: wall seconds of `qcdhpc.diffusion.sampling.iter_samples` (the code behind
`qcdhpc sample`) for n configurations with the chosen sampler, steps and batch, median of --repeats.

One-off DM cost: T_train (wall seconds of `qcdhpc.diffusion.train.train`, the code behind
`qcdhpc train`, on n_train HMC configurations of the first kappa at that L), and the HMC cost of those
training configurations, T_data = n_train / r_HMC.  Break-even: DM (one-off + sampling) needs less time
than HMC for N independent configurations when

    N > N* = T_one-off / (1/r_HMC - 1/r_DM),      only if r_DM > r_HMC (else: never),

reported for T_one-off = T_train and for T_train + T_data.  HMC thermalisation is not charged to HMC.

What this does NOT establish: that the DM's samples are right.  The sampling cost depends on the
network size, L, sampler and steps, not on the weights or on kappa, so the timing holds for any model of
that shape; a quickly trained model (the default here) is generally NOT accurate.  Generated
configurations are only worth their rate if they pass the physics checks of docs/results.md (chi_2, U_L
within 2 sigma of an independent HMC test set, distribution distances; `qcdhpc measure`).  Near
criticality a DM may need a larger network, more training and more steps to pass, which moves r_DM and
T_train; pass --model PATH (a validated model.pt, e.g. results/<point>/model/model.pt of the workflow)
to time that model instead of training one here.

Threads: HMC and DM sampling are timed with each of --threads (default: 1 and all logical CPUs); the
Gamma-method run and training use the largest.  OMP_NUM_THREADS is set before torch or the kernel is imported.
As bench_hmc.py, the script re-executes itself with MALLOC_MMAP_MAX_=0 and a large
MALLOC_TRIM_THRESHOLD_ (helps torch, i.e. the DM side) unless --plain-malloc.

    python benchmarks/bench_sampler.py                          # default: L=16, kappa 0.21 0.25 0.26
    python benchmarks/bench_sampler.py --quick                  # smoke run, < 1 min
    python benchmarks/bench_sampler.py --L 16 32 --kappa 0.24 0.26 0.27 0.28 --no-dm   # tau_int/U_L scan
    python benchmarks/bench_sampler.py --model results/symmetric/model/model.pt --kappa 0.21
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

PHYSICS_NOTE = ("DM samples count only if they pass the physics checks (docs/results.md: chi_2, U_L vs an "
                "independent HMC test set within 2 sigma, distribution distances via `qcdhpc measure`); "
                "this benchmark times the sampler, it does not validate it")
PRIMARIES = ("M", "absM", "M2", "s")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--L", type=int, nargs="+", default=[16], help="lattice sizes (L x L)")
    ap.add_argument("--kappa", type=float, nargs="+", default=[0.21, 0.25, 0.26])
    ap.add_argument("--lam", type=float, default=0.022)
    g = ap.add_argument_group("HMC")
    g.add_argument("--chains", type=int, default=16, help="chains B per kernel call")
    g.add_argument("--therm", type=int, default=1000, help="thermalisation trajectories per chain")
    g.add_argument("--ntraj", type=int, default=4000, help="measured trajectories per chain (Gamma-method)")
    g.add_argument("--nmd", type=int, default=10)
    g.add_argument("--tau", type=float, default=1.0)
    g.add_argument("--integrator", choices=("leapfrog", "omelyan"), default="omelyan",
                   help="omelyan (default, as workflows/config) or leapfrog")
    g.add_argument("--threads", type=int, nargs="+", default=None,
                   help="thread counts for the timings (default: 1 and all logical CPUs)")
    g.add_argument("--target", type=float, default=0.3, help="seconds per timed HMC call (approx.)")
    g.add_argument("--repeats", type=int, default=3, help="timed calls per point; the median is kept")
    g.add_argument("--seed", type=int, default=1)
    g = ap.add_argument_group("diffusion model")
    g.add_argument("--no-dm", action="store_true", help="HMC side only (e.g. a tau_int / U_L scan)")
    g.add_argument("--model", help="time this trained model.pt (its L must be in --L) instead of training one")
    g.add_argument("--train-n", type=int, default=2000, help="training configurations (from the HMC run)")
    g.add_argument("--epochs", type=int, default=20)
    g.add_argument("--train-batch", type=int, default=64)
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--sde", choices=("ve", "vp"), default="ve")
    g.add_argument("--channels", type=int, default=16, help="U-Net base channels (workflow default: 16)")
    g.add_argument("--depth", type=int, default=2, help="U-Net down-samplings (workflow default: 2)")
    g.add_argument("--steps", type=int, default=200, help="sampler steps (workflow default: 200)")
    g.add_argument("--sampler", choices=("em", "pc", "ode"), default="em")
    g.add_argument("--n-sample", type=int, default=512, help="configurations per timed sampling call")
    g.add_argument("--sample-batch", type=int, default=256, help="sampler batch (qcdhpc sample default: 256)")
    g.add_argument("--dm-repeats", type=int, default=2, help="timed sampling calls; the median is kept")
    g.add_argument("--device", default="cpu", help="DM device: cpu | cuda | auto (HMC runs on the CPU)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run < 1 min: L 16, kappa 0.21 0.26, 8 chains, 300+600 trajectories, tiny DM")
    ap.add_argument("--plain-malloc", action="store_true", help="keep glibc's default malloc settings")
    ap.add_argument("--out", default="results/bench_sampler.json", help="JSON output file")
    args = ap.parse_args(argv)
    if args.quick:
        args.L, args.kappa, args.chains, args.therm, args.ntraj = [16], [0.21, 0.26], 8, 300, 600
        args.target, args.repeats, args.dm_repeats = 0.1, 1, 1
        args.train_n, args.epochs, args.channels, args.steps = 256, 2, 8, 20
        args.n_sample, args.sample_batch = 128, 128
        args.threads = args.threads or [1]
    args.threads = args.threads or sorted({1, os.cpu_count() or 1})
    if (min(args.L) < 4 or args.chains < 1 or args.ntraj < 20 or args.therm < 0 or args.nmd < 1
            or min(args.threads) < 1 or args.repeats < 1 or args.dm_repeats < 1 or args.steps < 1 or args.n_sample < 1):
        ap.error("need L >= 4, chains >= 1, ntraj >= 20, therm >= 0, nmd, threads, repeats, steps, n-sample >= 1")
    return args


from bench_hmc import MALLOC_TUNED, cpu_name, reexec_with_tuned_malloc  # noqa: E402  (same directory)


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


# ------------------------------------------------------------------------------------------- HMC ----

class Chains:
    """B chains advanced by the kernel; trajectory counter shared so the Philox stream never repeats."""

    def __init__(self, K, np, L, kappa, args):
        self.K, self.args, self.t = K, args, 0
        # white noise of about the symmetric phase's amplitude; thermalisation does the rest
        self.phi = np.random.default_rng(args.seed).normal(scale=0.8, size=(args.chains, L, L))
        self.kw = dict(kappa=kappa, lam=args.lam, nmd=args.nmd, tau=args.tau, integrator=args.integrator,
                       seed=args.seed, chain_offset=0)

    def run(self, ntraj):
        dH, acc = self.K.hmc_trajectories(self.phi, **self.kw, traj_offset=self.t, ntraj=ntraj)
        self.t += ntraj
        return dH, acc


def tau_int_run(ch, np, args, L, kappa, n_keep):
    """Measure M, |M|, M^2, M^4, S/V after every trajectory; keep n_keep configurations for training.

    Returns ({name: (B, ntraj) array}, acceptance, kept configurations (n, L, L) float32, seconds)."""
    from qcdhpc.observables.phi4 import action_density

    B, n = args.chains, args.ntraj
    series = {k: np.empty((B, n)) for k in ("M", "s")}
    every = max(1, (B * n) // max(1, n_keep)) if n_keep else 0
    keep, acc_sum = [], 0.0
    t0 = time.perf_counter()
    for t in range(n):
        _, acc = ch.run(1)
        acc_sum += float(acc.mean())
        series["M"][:, t] = ch.phi.reshape(B, -1).mean(axis=1)
        series["s"][:, t] = action_density(ch.phi, kappa, args.lam)
        if every and (t + 1) % every == 0 and len(keep) * B < n_keep:
            keep.append(ch.phi.astype(np.float32))
    dt = time.perf_counter() - t0
    M = series["M"]
    series.update(absM=np.abs(M), M2=M * M, M4=M ** 4)
    kept = np.concatenate(keep)[:n_keep] if keep else None
    return series, acc_sum / n, kept, dt


def gamma_analysis(series, volume):
    """tau_int +- error of each primary and chi = V<M^2>, U_L with Gamma-method errors."""
    from qcdhpc.observables import errors

    obs = {k: errors.primary({f"chain{c}": v[c] for c in range(len(v))}, "hmc") for k, v in series.items()}
    taus = {}
    for k in PRIMARIES:
        o = obs[k]
        o.gamma_method(S=2.0)
        taus[k] = {"tau_int": float(o.e_tauint["hmc"]), "dtau_int": float(o.e_dtauint["hmc"]),
                   "value": float(o.value), "error": float(o.dvalue)}
    derived = {"chi2_full": volume * obs["M2"], "UL": 1 - obs["M4"] / (3 * obs["M2"] * obs["M2"]),
               "absM": obs["absM"], "action_density": obs["s"]}
    phys = {k: errors.summary(v) for k, v in derived.items()}
    return taus, phys


def time_hmc(ch, K, args, nthreads):
    """Seconds per trajectory of all B chains (median of calibrated calls), as bench_hmc.measure."""
    K.set_num_threads(nthreads)
    ch.run(1)
    n = 1
    while True:
        t0 = time.perf_counter()
        ch.run(n)
        dt = time.perf_counter() - t0
        if dt >= min(0.05, args.target) or n >= 1 << 20:
            break
        n *= 4
    ntraj = max(1, round(n * args.target / dt))
    times = timed(lambda: ch.run(ntraj), args.repeats)
    return ntraj, times


# -------------------------------------------------------------------------------------------- DM ----

def train_model(data, args, L, kappa, out_dir, torch):
    from qcdhpc.diffusion.train import TrainConfig, train

    torch.set_num_threads(max(args.threads))

    cfg = TrainConfig(sde=args.sde, net="unet", channels=args.channels, depth=args.depth,
                      epochs=args.epochs, batch=args.train_batch, lr=args.lr, z2=True, translate=True,
                      seed=args.seed, device=args.device)
    t0 = time.perf_counter()
    summary = train(data, cfg, out_dir, progress=False,
                    meta={"training_ensemble": {"kappa": kappa, "lam": args.lam, "L": [L, L]}})
    return time.perf_counter() - t0, summary


def model_training_time(path: Path):
    """Training wall time of a model written by `qcdhpc train`, from its run directory's log.jsonl."""
    for run_dir in (path.parent, path.with_suffix(".run")):
        log = run_dir / "log.jsonl"
        if log.is_file():
            rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
            return sum(r.get("time_s", 0.0) for r in rows), str(log)
    return None, None


def time_sampler(path, args, torch, nthreads):
    from qcdhpc.diffusion.distributed import resolve_device
    from qcdhpc.diffusion.model_io import load_model
    from qcdhpc.diffusion.sampling import iter_samples

    torch.set_num_threads(nthreads)
    device = resolve_device(args.device)
    net, sde, cfg = load_model(path, map_location=device)
    shape = tuple(cfg["data_shape"][1:])

    def go(n, steps):
        for x in iter_samples(net, sde, n, shape, args.sampler, steps, batch_size=args.sample_batch,
                              denoise=True, seed=args.seed, device=device):
            if not torch.isfinite(x).all():
                raise RuntimeError("sampler produced NaN/inf")
        if device.type == "cuda":
            torch.cuda.synchronize()

    go(min(args.n_sample, args.sample_batch), 2)  # warm-up: allocations, thread pool, kernels
    times = timed(lambda: go(args.n_sample, args.steps), args.dm_repeats)
    nparams = sum(p.numel() for p in net.parameters())
    return times, shape, cfg, nparams, device.type


def break_even(one_off, r_hmc, r_dm):
    """Smallest N where one_off + N/r_dm < N/r_hmc; None if the DM never catches up."""
    if r_dm <= r_hmc or one_off is None:
        return None
    return one_off / (1.0 / r_hmc - 1.0 / r_dm)


# ------------------------------------------------------------------------------------------ main ----



def fmt_n(x):
    return "never" if x is None else f"{x:.3g}"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if not args.plain_malloc:
        reexec_with_tuned_malloc(__file__, argv)
    tmax = max(args.threads)  # the tau_int run and training use the most threads timed
    os.environ["OMP_NUM_THREADS"] = str(tmax)
    load0 = os.getloadavg()
    t_start = time.perf_counter()
    import numpy as np
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
    from qcdhpc import __version__
    from qcdhpc import _kernels as K

    model_L = None
    if args.model and not args.no_dm:
        from qcdhpc.diffusion.model_io import read_model_file

        model_L = read_model_file(args.model)["data_shape"][1]
        if model_L not in args.L:
            print(f"error: --model has L={model_L}, not in --L {args.L}", file=sys.stderr)
            return 2

    meta = dict(
        benchmark="DM sampler vs HMC independent configurations",
        figure_of_merit="HMC: (B/t_traj)/(2 tau_int,max) independent configs/s; DM: n/t_sample configs/s",
        cpu=cpu_name(), logical_cpus=os.cpu_count(), threads=args.threads, loadavg_at_start=list(load0),
        python=platform.python_version(), numpy=np.__version__, torch=torch.__version__, qcdhpc=__version__,
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"), command=" ".join(
            ["python", "benchmarks/bench_sampler.py", *argv]),
        malloc=("glibc default" if args.plain_malloc
                else " ".join(f"{k}={v}" for k, v in MALLOC_TUNED.items())),
        physics_note=PHYSICS_NOTE,
        **{k: getattr(args, k) for k in ("lam", "chains", "therm", "ntraj", "nmd", "tau", "integrator",
                                          "target", "repeats", "seed", "model", "train_n", "epochs",
                                          "train_batch", "lr", "sde", "channels", "depth", "steps", "sampler",
                                          "n_sample", "sample_batch", "dm_repeats", "device", "quick")},
    )
    print(f"# {meta['cpu']}, {os.cpu_count()} logical CPUs, load average {load0[0]:.2f} {load0[1]:.2f} "
          f"{load0[2]:.2f}; HMC: {args.chains} chains, {args.integrator} nmd={args.nmd} tau={args.tau}, "
          f"{args.therm}+{args.ntraj} traj/chain, float64; lambda={args.lam}")
    print(f"# NOTE: {PHYSICS_NOTE}")

    points, models = [], {}
    workdir = Path(tempfile.mkdtemp(prefix="bench_sampler_"))
    for L in args.L:
        for kappa in args.kappa:
            V = L * L
            K.set_num_threads(tmax)
            ch = Chains(K, np, L, kappa, args)
            t0 = time.perf_counter()
            for start in range(0, args.therm, 100):  # in blocks of <= 100 trajectories
                ch.run(min(100, args.therm - start))
            t_therm = time.perf_counter() - t0
            need = 0 if (args.no_dm or args.model or L in models) else args.train_n
            series, acc, kept, t_meas = tau_int_run(ch, np, args, L, kappa, need)
            taus, phys = gamma_analysis(series, V)
            slow = max(PRIMARIES, key=lambda k: taus[k]["tau_int"])
            tau_max, dtau_max = taus[slow]["tau_int"], taus[slow]["dtau_int"]
            hmc = {}
            for nt in args.threads:
                ntraj, times = time_hmc(ch, K, args, nt)
                t_traj = statistics.median(times) / ntraj
                hmc[nt] = dict(ntraj_per_call=ntraj, seconds=times, t_traj=t_traj,
                               traj_per_s=args.chains / t_traj,
                               indep_per_s=args.chains / t_traj / (2 * tau_max),
                               indep_per_s_range=[args.chains / t_traj / (2 * (tau_max + s * dtau_max))
                                                  for s in (1, -1)] if tau_max > dtau_max else None,
                               loadavg=os.getloadavg()[0])
            pt = dict(L=L, kappa=kappa, lam=args.lam, acceptance=acc, therm_seconds=t_therm,
                      measure_seconds=t_meas, tau_int=taus, slowest=slow, tau_int_max=tau_max,
                      dtau_int_max=dtau_max, physics=phys,
                      hmc={str(k): v for k, v in hmc.items()})
            tau_txt = "  ".join(f"{k}={taus[k]['tau_int']:.2f}({taus[k]['dtau_int']:.2f})" for k in PRIMARIES)
            print(f"L={L} kappa={kappa}: acc={acc:.3f} chi=V<M^2>={phys['chi2_full']['value']:.3g}"
                  f"({phys['chi2_full']['error']:.2g}) U_L={phys['UL']['value']:.3f}({phys['UL']['error']:.3f}) "
                  f"<|M|>={phys['absM']['value']:.3f}  tau_int[traj]: {tau_txt}", flush=True)
            # DM: one model per L (its cost does not depend on kappa): trained on the first kappa's configs
            if not args.no_dm and L not in models:
                if args.model and L == model_L:
                    t_tr, log = model_training_time(Path(args.model))
                    models[L] = dict(path=str(Path(args.model).resolve()), train_seconds=t_tr, train_log=log,
                                     trained_here=False, n_train=None)
                elif not args.model:
                    out_dir = workdir / f"L{L}"
                    t_tr, summ = train_model(kept, args, L, kappa, out_dir, torch)
                    models[L] = dict(path=summ["model"], train_seconds=t_tr, trained_here=True,
                                     train_threads=max(args.threads), epochs=args.epochs,
                                     n_train=int(len(kept)), train_kappa=kappa,
                                     final_loss=summ["final_loss"], train_device=summ["device"])
                    print(f"  DM trained here: {len(kept)} configs of kappa={kappa}, {args.epochs} epochs, "
                          f"U-Net c={args.channels} d={args.depth}, {args.sde}: {t_tr:.1f} s "
                          f"(final loss {summ['final_loss']:.4f})", flush=True)
                if L in models:
                    models[L]["sampling"] = {}
                    for nt in args.threads:
                        times, shape, cfg, nparams, dev = time_sampler(models[L]["path"], args, torch, nt)
                        med = statistics.median(times)
                        models[L]["sampling"][str(nt)] = dict(seconds=times, configs_per_s=args.n_sample / med,
                                                              loadavg=os.getloadavg()[0])
                    models[L].update(params=nparams, net=f"{cfg['net']} c={cfg['channels']} d={cfg['depth']}",
                                     sde=cfg["sde"], device=dev, steps=args.steps, sampler=args.sampler)
            points.append(pt)

    # comparison table
    rows = []
    print()
    print(f"# independent configurations per second; DM: {args.sampler}, {args.steps} steps, batch "
          f"{args.sample_batch}, n={args.n_sample} per timed call; break-even N* = one-off / (1/r_HMC - 1/r_DM)")
    head = (f"{'L':>4}{'kappa':>7}{'tau_max':>16}{'slowest':>8}{'thr':>4}{'HMC traj/s':>12}{'HMC indep/s':>13}"
            f"{'DM conf/s':>11}{'DM/HMC':>9}{'T_train s':>10}{'N*(train)':>11}{'N*(+data)':>11}")
    print(head)
    for pt in points:
        m = models.get(pt["L"])
        for nt in args.threads:
            h = pt["hmc"][str(nt)]
            r_hmc = h["indep_per_s"]
            row = dict(L=pt["L"], kappa=pt["kappa"], threads=nt, tau_int_max=pt["tau_int_max"],
                       dtau_int_max=pt["dtau_int_max"], slowest=pt["slowest"], hmc_traj_per_s=h["traj_per_s"],
                       hmc_indep_per_s=r_hmc)
            dm_txt = f"{'-':>11}{'-':>9}{'-':>10}{'-':>11}{'-':>11}"
            if m and "sampling" in m:
                r_dm = m["sampling"][str(nt)]["configs_per_s"]
                t_tr = m["train_seconds"]
                n_tr = m["n_train"] or 0
                t_data = n_tr / r_hmc if n_tr else 0.0
                ne1 = break_even(t_tr, r_hmc, r_dm)
                ne2 = break_even(None if t_tr is None else t_tr + t_data, r_hmc, r_dm)
                row.update(dm_configs_per_s=r_dm, dm_over_hmc=r_dm / r_hmc, train_seconds=t_tr,
                           train_data_hmc_seconds=t_data, break_even_train=ne1, break_even_train_plus_data=ne2)
                ttxt = "?" if t_tr is None else f"{t_tr:.0f}"
                dm_txt = (f"{r_dm:>11.3g}{r_dm / r_hmc:>9.2g}{ttxt:>10}{fmt_n(ne1):>11}{fmt_n(ne2):>11}")
            rows.append(row)
            tau_txt = f"{pt['tau_int_max']:.2f}({pt['dtau_int_max']:.2f})"
            print(f"{pt['L']:>4}{pt['kappa']:>7.3f}{tau_txt:>16}{pt['slowest']:>8}{nt:>4}{h['traj_per_s']:>12.4g}"
                  f"{r_hmc:>13.4g}" + dm_txt)
    print(f"# NOTE: {PHYSICS_NOTE}")
    load1 = os.getloadavg()
    meta.update(loadavg_at_end=list(load1), wall_seconds=time.perf_counter() - t_start)
    print(f"# load average at start {load0[0]:.2f}, at end {load1[0]:.2f}; {meta['wall_seconds']:.0f} s")
    for m in models.values():
        m.pop("path", None) if m.get("trained_here") else None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(dict(meta=meta, points=points, models={str(k): v for k, v in models.items()},
                                   table=rows), indent=1, default=lambda o: None) + "\n")
    tmp.replace(out)
    print(f"# written {out}")
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
