"""Microbenchmark of complex Langevin steps: C++ CPU kernel vs the numpy (and, for the Bose gas, torch)
reference of ``qcdhpc.cl.reference``, at 1 and 2 threads, in one run.

Figures of merit:

    quartic   walker-steps/s = W * nsteps / seconds              (W = 10^4 ... 10^6 walkers)
    Bose gas  site-steps/s   = B * N^d * nsteps / seconds        (d = 4, N = 4 ... 8, B configurations)

The kernel (``qcdhpc.kernels.cl``) and the baselines run the same scheme (default: stochastic Heun,
fixed step, real noise; ``--adaptive`` adds the adaptive step, ``--n-y`` complex noise) with
records every ``--every`` steps.  The baselines draw their noise natively (numpy's
``Generator.standard_normal``, ``torch.randn``), which is cheaper than the kernel's Philox stream:
the conservative choice for the kernel's speed-up.  numpy runs single-threaded whatever the setting,
so it is timed once and its rate used for the ratios at every thread count; the kernel's OpenMP and
torch's intra-op threads are set per point (``kernels.set_num_threads``, ``torch.set_num_threads``).

Timing: per point one warm-up call, a calibration of nsteps so one call takes about ``--target``
seconds, then ``--repeats`` timed calls; the median is reported (the best repeat is kept too).
As in bench_hmc.py the script re-executes itself with glibc's mmap threshold off
(``--plain-malloc`` keeps the defaults), which helps the baselines, not the kernel.

    python benchmarks/bench_cl.py                  # full run, a few minutes
    python benchmarks/bench_cl.py --quick          # smoke run, < 1 min
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

from bench_hmc import MALLOC_TUNED, cpu_name, measure, reexec_with_tuned_malloc  # noqa: E402  (same directory)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--walkers", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--N", type=int, nargs="+", default=[4, 6, 8], help="Bose gas extents (N^d sites)")
    ap.add_argument("--d", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16, help="Bose-gas configurations per call")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scheme", choices=("euler", "heun"), default="heun")
    ap.add_argument("--adaptive", action="store_true", help="adaptive step (kbar = 1.5 x the start's K_max)")
    ap.add_argument("--n-y", type=float, default=0.0, help="complex noise N_y (0: real noise)")
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--dt", type=float, default=0.01)
    ap.add_argument("--target", type=float, default=0.3, help="seconds per timed call (approx.)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", nargs="+", choices=("quartic", "bose"), default=["quartic", "bose"])
    ap.add_argument("--quick", action="store_true", help="W 1e4 1e5; N 4 6; --target 0.1")
    ap.add_argument("--plain-malloc", action="store_true")
    ap.add_argument("--out", default="results/bench_cl.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.walkers, args.N, args.target = [10_000, 100_000], [4, 6], 0.1
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if not args.plain_malloc:
        reexec_with_tuned_malloc(__file__, argv)
    os.environ["OMP_NUM_THREADS"] = str(max(args.threads))  # before OpenMP starts (kernel or torch import)
    import numpy as np
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from qcdhpc import __version__, kernels
    from qcdhpc.cl import reference as R
    from qcdhpc.kernels import cl as K

    sigma, lam = 1 + 1j, 1.0
    bose = dict(m=1.0, lam=1.0, mu=0.5)
    common = dict(dt=args.dt, every=args.every, scheme=args.scheme, n_y=args.n_y)
    meta = dict(
        benchmark="complex Langevin steps",
        figures_of_merit={"quartic": "walker-steps/s = W*nsteps/s", "bose": "site-steps/s = B*N^d*nsteps/s"},
        cpu=cpu_name(), logical_cpus=os.cpu_count(), loadavg_at_start=os.getloadavg()[0],
        python=platform.python_version(), numpy=np.__version__, torch=torch.__version__, qcdhpc=__version__,
        cl_numerics=K.NUMERICS_VERSION, date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        quartic=dict(sigma=str(sigma), lam=lam), bose=dict(d=args.d, B=args.batch, **bose),
        adaptive=args.adaptive, baseline_noise="native", target=args.target, repeats=args.repeats,
        malloc="glibc default" if args.plain_malloc else " ".join(f"{k}={v}" for k, v in MALLOC_TUNED.items()),
        **common,
    )
    print(f"# {meta['cpu']}; {args.scheme}, dt={args.dt}, every={args.every}, adaptive={args.adaptive}, "
          f"n_y={args.n_y}; baselines with native RNG; M steps/s (median of {args.repeats})")
    results = []

    def point(model, size, impl, threads, run, per_step):
        kernels.set_num_threads(threads)
        torch.set_num_threads(threads)
        nsteps, times = measure(run, args.target, args.repeats)
        med = statistics.median(times)
        rec = dict(model=model, size=size, impl=impl, threads=threads, nsteps=nsteps, seconds_median=med,
                   seconds=times, rate=per_step * nsteps / med, rate_best=per_step * nsteps / min(times))
        results.append(rec)
        return rec["rate"]

    if "quartic" in args.models:
        print(f"{'walkers':>9}{'thr':>4}{'kernel':>10}{'numpy':>10}{'kernel/numpy':>14}")
        for W in args.walkers:
            z0 = 0.3 * np.random.default_rng(0).normal(size=W).astype(np.complex128)
            kbar = 1.5 * float(K.quartic_kmax(z0, sigma, lam).mean()) if args.adaptive else None
            kw = dict(sigma=sigma, lam=lam, kbar=kbar, **common)
            ref_state = {"z": z0.copy(), "k": 0}

            def run_numpy(n, s=ref_state):
                out = R.quartic_langevin(s["z"], nsteps=n, step_offset=s["k"], noise="native", seed=s["k"], **kw)
                s["z"], s["k"] = out[2], s["k"] + n

            rate_np = point("quartic", W, "numpy", 1, run_numpy, W)
            for thr in args.threads:
                state = {"z": z0.copy(), "k": 0, "t": np.zeros(W), "r": np.zeros(W, np.uint8)}

                def run_kernel(n, s=state):
                    K.quartic_langevin(s["z"], nsteps=n, step_offset=s["k"], seed=1, t=s["t"], runaway=s["r"], **kw)
                    s["k"] += n

                rate_k = point("quartic", W, "kernel", thr, run_kernel, W)
                print(f"{W:>9}{thr:>4}{rate_k / 1e6:>10.2f}{rate_np / 1e6:>10.2f}{rate_k / rate_np:>14.1f}", flush=True)

    if "bose" in args.models:
        print(f"{'N^d':>9}{'thr':>4}{'kernel':>10}{'numpy':>10}{'torch':>10}{'kernel/numpy':>14}{'kernel/torch':>14}")
        for N in args.N:
            V, B = N**args.d, args.batch
            p0 = 0.3 * np.random.default_rng(0).normal(size=(B, 2, V)).astype(np.complex128)
            model = dict(N=N, d=args.d, **bose)
            kbar = 1.5 * float(K.bose_kmax(p0, **model).mean()) if args.adaptive else None
            kw = dict(kbar=kbar, **model, **common)
            ref_state = {"p": p0.copy(), "k": 0}

            def run_numpy(n, s=ref_state):
                out = R.bose_langevin(s["p"], nsteps=n, step_offset=s["k"], noise="native", seed=s["k"], **kw)
                s["p"], s["k"] = out[4], s["k"] + n

            rate_np = point("bose", f"{N}^{args.d}", "numpy", 1, run_numpy, B * V)
            for thr in args.threads:
                tstate = {"p": torch.from_numpy(p0.copy()), "k": 0}

                def run_torch(n, s=tstate):
                    out = R.bose_langevin_torch(s["p"], nsteps=n, noise="native", seed=s["k"], **kw)
                    s["p"], s["k"] = out[4], s["k"] + n

                rate_t = point("bose", f"{N}^{args.d}", "torch", thr, run_torch, B * V)
                state = {"p": p0.copy(), "k": 0, "t": np.zeros(B), "r": np.zeros(B, np.uint8)}

                def run_kernel(n, s=state):
                    K.bose_langevin(s["p"], nsteps=n, step_offset=s["k"], seed=1, t=s["t"], runaway=s["r"], **kw)
                    s["k"] += n

                rate_k = point("bose", f"{N}^{args.d}", "kernel", thr, run_kernel, B * V)
                print(f"{f'{N}^{args.d}':>9}{thr:>4}{rate_k / 1e6:>10.2f}{rate_np / 1e6:>10.2f}{rate_t / 1e6:>10.2f}"
                      f"{rate_k / rate_np:>14.1f}{rate_k / rate_t:>14.1f}", flush=True)

    ratios = []
    for r in results:
        if r["impl"] != "kernel":
            continue
        for base in ("numpy", "torch"):
            b = [x for x in results if x["model"] == r["model"] and x["size"] == r["size"] and x["impl"] == base
                 and (base == "numpy" or x["threads"] == r["threads"])]
            if b:
                ratios.append(dict(model=r["model"], size=r["size"], threads=r["threads"], baseline=base,
                                   baseline_threads=b[0]["threads"], speedup=r["rate"] / b[0]["rate"]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(dict(meta=meta, results=results, ratios=ratios), indent=1) + "\n")
    tmp.replace(out)
    print(f"# written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
