"""Microbenchmark of whole phi^4 HMC trajectories: C++ CPU kernel vs batched torch vs numpy.

All three run the same trajectory (qcdhpc.phi4.reference documents it): momentum refresh, ``nmd``
MD steps (leapfrog by default) of the action of issue 2, Metropolis accept/reject, for B independent
chains on an L x L lattice, in one call for ``ntraj`` trajectories.

Figure of merit -- site-updates per second:

    R = B * V * nmd * ntraj / seconds,      V = L^2,

i.e. how many (site, MD step) pairs are advanced per second, the refresh and Metropolis costs being
shared out over the MD steps of their trajectory.  It is independent of B and L for a code that is
bound by per-site work, and exposes per-call overhead (small B, small L) and cache effects (large L)
when it is not.

Baselines are the reference in ``qcdhpc.phi4.reference``: what a user would write without the
kernel, vectorised over the batch with ``torch.roll`` / ``np.roll`` and merged half-kicks.  By
default they draw their random numbers natively (``torch.randn``, ``Generator.standard_normal``),
which is faster than the kernel's Philox stream emulated in numpy; ``--baseline-rng philox`` uses
the latter (bit-compatible with the kernel, slower baselines).

Timing: per (implementation, L, B) one warm-up call, a calibration of ``ntraj`` so that one call
takes about ``--target`` seconds, then ``--repeats`` timed calls (time.perf_counter); the median is
reported.  Per core by default: OMP_NUM_THREADS=1 is set before the kernel or torch is imported and
torch.set_num_threads(1); ``--threads N`` sets both to N.

Allocator: the baselines allocate fresh temporaries of B*V*8 bytes for every operation.  glibc serves
blocks above its mmap threshold with mmap/munmap, so every temporary of a large batch costs page
faults, which are expensive in virtual machines (torch at L=128, B=16 runs 10x slower for it here).
By default the script therefore re-executes itself with MALLOC_MMAP_MAX_=0 and a large
MALLOC_TRIM_THRESHOLD_ (heap memory is reused, never returned), which helps the baselines and not
the kernel (it allocates nothing per step): the conservative choice for the kernel's speed-up.
``--plain-malloc`` measures with glibc's defaults, as a user would get them.

    python benchmarks/bench_hmc.py                      # full run (L 32, 128; B 1..256), ~3 min
    python benchmarks/bench_hmc.py --quick              # smoke run, < 30 s
    python benchmarks/bench_hmc.py --L 32 --batch 16 64 --impl kernel torch --out results/x.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

IMPLS = ("kernel", "torch", "numpy")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--L", type=int, nargs="+", default=[32, 128], help="lattice sizes (L x L)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4, 16, 64, 256], help="chains per call")
    ap.add_argument("--impl", nargs="+", choices=IMPLS, default=list(IMPLS))
    ap.add_argument("--nmd", type=int, default=10)
    ap.add_argument("--tau", type=float, default=1.0)
    ap.add_argument("--kappa", type=float, default=0.21)
    ap.add_argument("--lam", type=float, default=0.022)
    ap.add_argument("--integrator", choices=("leapfrog", "omelyan"), default="leapfrog")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--baseline-rng", choices=("native", "philox"), default="native",
                    help="random numbers of the torch/numpy baselines (see module docstring)")
    ap.add_argument("--threads", type=int, default=1, help="OpenMP/torch threads (default 1: per core)")
    ap.add_argument("--target", type=float, default=0.3, help="seconds per timed call (approx.)")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per point; the median is kept")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: L 32 128, B 1 16, --target 0.1 (overrides --L/--batch/--target)")
    ap.add_argument("--plain-malloc", action="store_true",
                    help="keep glibc's default malloc settings (see module docstring)")
    ap.add_argument("--out", default="results/bench_hmc.json", help="JSON output file")
    args = ap.parse_args(argv)
    if args.quick:
        args.L, args.batch, args.target = [32, 128], [1, 16], 0.1
    if min(args.L) < 2 or min(args.batch) < 1 or args.nmd < 1 or args.threads < 1 or args.repeats < 1:
        ap.error("need L >= 2, batch >= 1, nmd >= 1, threads >= 1, repeats >= 1")
    return args


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_runner(impl, phi, args, K, R, np, torch):
    """A function run(ntraj) advancing ``phi`` by ntraj trajectories with implementation ``impl``.

    Each call continues the chains (traj_offset advances), as a production run would; acceptance is
    collected so that the table can show all three did the same physics.
    """
    state = {"t": 0, "acc": []}
    common = dict(kappa=args.kappa, lam=args.lam, nmd=args.nmd, tau=args.tau,
                  integrator=args.integrator, seed=1234, chain_offset=0)
    rng = None
    if args.baseline_rng == "native":
        rng = torch.Generator().manual_seed(1234) if impl == "torch" else np.random.default_rng(1234)

    def run(ntraj):
        if impl == "kernel":
            _, acc = K.hmc_trajectories(phi, **common, traj_offset=state["t"], ntraj=ntraj)
        else:
            _, acc = R.hmc_trajectories(phi, **common, traj_offset=state["t"], ntraj=ntraj, rng=rng)
        state["t"] += ntraj
        state["acc"].append(float(np.asarray(acc, dtype=np.float64).mean()))

    return run, state


def measure(run, target, repeats):
    run(1)  # warm-up: first touch of the arrays, lazy initialisation, thread pools
    n = 1
    while True:  # calibrate: grow ntraj until one call is long enough to time reliably
        t0 = time.perf_counter()
        run(n)
        dt = time.perf_counter() - t0
        if dt >= min(0.05, target) or n >= 1 << 20:
            break
        n *= 4
    ntraj = max(1, round(n * target / dt))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(ntraj)
        times.append(time.perf_counter() - t0)
    return ntraj, times


MALLOC_TUNED = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}


def reexec_with_tuned_malloc(script: str, argv: list[str]) -> None:
    """glibc reads its malloc tunables at process start: re-execute `script` once with them set
    (a no-op when they already are).  Shared by the benchmarks of this directory."""
    if any(os.environ.get(k) != v for k, v in MALLOC_TUNED.items()):
        os.execve(sys.executable, [sys.executable, os.path.abspath(script), *argv], {**os.environ, **MALLOC_TUNED})


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if not args.plain_malloc:
        reexec_with_tuned_malloc(__file__, argv)
    # OpenMP reads OMP_NUM_THREADS when its runtime starts, i.e. at the first import of the kernel or
    # torch: set it before either is imported.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
    from qcdhpc import __version__
    from qcdhpc.phi4 import reference as R

    torch.set_num_threads(args.threads)
    K = None
    if "kernel" in args.impl:
        try:
            from qcdhpc import kernels
            from qcdhpc.kernels import phi4 as K

            kernels.set_num_threads(args.threads)
        except ImportError as exc:
            print(f"warning: kernel not importable ({exc}); timing the baselines only", file=sys.stderr)
            args.impl = [i for i in args.impl if i != "kernel"]

    np_dtype = np.dtype(args.dtype)
    meta = dict(
        benchmark="phi4 HMC trajectory", figure_of_merit="site-updates/s = B*V*nmd*ntraj/seconds",
        cpu=cpu_name(), logical_cpus=os.cpu_count(), threads=args.threads,
        loadavg_at_start=os.getloadavg()[0],
        python=platform.python_version(), numpy=np.__version__, torch=torch.__version__,
        qcdhpc=__version__, date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        **{k: getattr(args, k) for k in ("nmd", "tau", "kappa", "lam", "integrator", "dtype",
                                          "baseline_rng", "target", "repeats")},
        malloc=("glibc default" if args.plain_malloc
                else " ".join(f"{k}={v}" for k, v in MALLOC_TUNED.items())),
    )
    print(f"# {meta['cpu']}, {args.threads} thread(s); {args.integrator}, nmd={args.nmd}, "
          f"{args.dtype}, baselines with {args.baseline_rng} RNG, malloc: {meta['malloc']}; "
          f"Msite-updates/s (median of {args.repeats})")
    cols = "".join(f"{i:>10}" for i in args.impl)
    ratios = [i for i in ("torch", "numpy") if "kernel" in args.impl and i in args.impl]
    print(f"{'L':>5}{'B':>6}{cols}" + "".join(f"{'kernel/' + i:>14}" for i in ratios) + "   acceptance")

    results = []
    for L in args.L:
        for B in args.batch:
            # white noise of about the equilibrium amplitude at kappa=0.21, lam=0.022 (rms phi ~ 0.8):
            # a much smaller start is rejected for many trajectories at L=128 with leapfrog, nmd=10
            start = np.random.default_rng(0).normal(scale=0.8, size=(B, L, L)).astype(np_dtype)
            rate, accs = {}, []
            for impl in args.impl:
                phi = torch.from_numpy(start.copy()) if impl == "torch" else start.copy()
                run, state = make_runner(impl, phi, args, K, R, np, torch)
                ntraj, times = measure(run, args.target, args.repeats)
                med = statistics.median(times)
                rate[impl] = B * L * L * args.nmd * ntraj / med
                accs.append(statistics.fmean(state["acc"]))
                # the median is reported; the best repeat is kept too, as a bound less sensitive to
                # other processes on a shared machine (noise only ever adds time)
                results.append(dict(impl=impl, L=L, B=B, ntraj=ntraj, seconds_median=med,
                                    seconds=times, site_updates_per_s=rate[impl],
                                    site_updates_per_s_best=B * L * L * args.nmd * ntraj / min(times),
                                    acceptance=accs[-1]))
            line = f"{L:>5}{B:>6}" + "".join(f"{rate[i] / 1e6:>10.2f}" for i in args.impl)
            line += "".join(f"{rate['kernel'] / rate[i]:>14.1f}" for i in ratios)
            print(line + "   " + " ".join(f"{a:.2f}" for a in accs), flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(dict(meta=meta, results=results), indent=1) + "\n")
    tmp.replace(out)  # atomic: never a half-written JSON where a finished one is expected
    print(f"# written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
