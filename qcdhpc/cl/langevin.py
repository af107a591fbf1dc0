"""Complex-Langevin runs of the quartic one-site model on the generic run machinery
(qcdhpc/run/driver.py), written into a `walkers` container (qcdhpc/io/containers.py).

Why the result does not depend on how the run was executed: walker w's step s draws its noise from
Philox with key (seed, w) and a counter derived from s (inside the kernel, qcdhpc.kernels.cl); every
walker starts at z = 0; a checkpoint stores the exact state (z, Langevin time, runaway flag, ⟨K_max⟩).
So the split of walkers over MPI ranks, the checkpoint interval and kill/resume cycles change nothing.

Phases per walker: `therm` steps whose records only serve the adaptive step (⟨K_max⟩ = mean |K(z)|
over the thermalisation records, Aarts–James–Seiler–Stamatescu, PLB 687 (2010) 154), then `steps`
recorded ones, one record every `every` steps: the state before the update and that update's step ε
(the Langevin-time weight).  Walkers that run away (non-finite or |z| > the kernel's bound) are frozen
by the kernel; their count is recorded and measure leaves them out (and says so).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..io.containers import create_history, create_walkers, open_container
from ..run import ranks, resources
from ..run.driver import RunFailed, SegmentedRun
from ..run.provenance import provenance
from ..run.signals import Interrupted
from .params import QuarticCLParams

THEORY, ALGORITHM = "cl-quartic", "langevin"
KIND = "cl-quartic"
RNG = "philox4x64-10"


def numerics_version() -> int:
    from ..kernels import cl as kernels

    return int(kernels.NUMERICS_VERSION)


class QuarticCLRun(SegmentedRun):
    """One run of `params.walkers` walkers into `out`; constructor validates, run() works."""

    kind = KIND
    lockstep = True

    def __init__(self, params: QuarticCLParams, out, *, checkpoint_every: int = 10000, **kwargs):
        super().__init__(out, **kwargs)
        self.p = params
        if int(checkpoint_every) < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        # segments end on record boundaries: a multiple of `every`
        self.checkpoint_every = -(-int(checkpoint_every) // params.every) * params.every
        if params.walkers < self.comm.size:
            raise ValueError(f"walkers ({params.walkers}) < number of MPI ranks ({self.comm.size})")
        per_rank = -(-params.walkers // self.comm.size)
        chunk = min(self.checkpoint_every, params.therm + params.steps) // params.every + 1
        resources.check_fits(ranks.local_size() * per_rank * chunk * 16 * 3 + params.walkers * params.nrec * 24,
                             f"{params.walkers} walkers x {params.nrec} records")
        resources.check_disk(self.out, params.walkers * params.nrec * 24, "the walkers file")
        self.n_runaway = 0
        self.prepare()

    def params(self) -> dict:
        return self.p.to_dict()

    def numerics(self) -> dict:
        return {"cl": numerics_version()}

    def output_params(self, path: Path) -> dict:
        with open_container(path, kinds=("walkers",)) as c:
            return json.loads(c.history[ALGORITHM].attrs["params"])

    def _restore(self, store, walkers: range):
        """(state dict, next step, next segment index)."""
        last = store.last() if self.mode == "resume" else None
        common = min(self.comm.allgather(-1 if last is None else last))
        store.discard_after(common if common >= 0 else None)
        n = len(walkers)
        if common < 0:
            state = {"z": np.zeros(n, np.complex128), "t": np.zeros(n), "runaway": np.zeros(n, np.uint8),
                     "kbar": np.zeros(n), "ksum": np.zeros(n), "kcount": np.zeros(1, np.int64)}
            return state, 0, 0
        arrays, attrs = store.read(common)
        if json.loads(attrs["params"]) != self.p.to_dict():
            raise ValueError(f"{store.path(common)}: parameters differ from {self.partial}/run.json")
        if list(arrays["state/walker"]) != list(walkers):
            raise ValueError(f"{store.path(common)}: holds other walkers than this rank runs")
        state = {k: np.ascontiguousarray(arrays[f"state/{k}"]) for k in ("z", "t", "runaway", "kbar", "ksum", "kcount")}
        return state, int(attrs["step_end"]), common + 1

    def work(self, store, comm, sig) -> None:
        from ..kernels import cl as K

        p = self.p
        w0, w1 = ranks.split_range(p.walkers, comm.size, comm.rank)
        walkers = range(w0, w1)
        state, step, seg = self._restore(store, walkers)
        total = p.therm + p.steps
        bar = None
        if comm.rank == 0 and self.progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=total, initial=step, unit="step", desc=f"cl {self.out.name}")
        model = p.model
        try:
            while step < total:
                thermalising = step < p.therm
                end = min(p.therm if thermalising else total, (step // self.checkpoint_every + 1) * self.checkpoint_every)
                # thermalisation runs at the bare step; production adaptively when asked
                adaptive = p.adaptive and not thermalising
                res = K.quartic_langevin(state["z"], sigma=p.sigma, lam=p.lam, dt=p.dt, nsteps=end - step,
                                         every=p.every, scheme=p.scheme, seed=p.seed, walker_offset=w0,
                                         step_offset=step, n_y=p.n_y,
                                         kbar=state["kbar"] if adaptive else None, t=state["t"],
                                         runaway=state["runaway"])
                records, weights = np.asarray(res.records), np.asarray(res.weights)
                if thermalising:
                    k = np.abs(model.drift(records))
                    k = np.where(np.isfinite(k), k, 0.0)
                    for j in range(k.shape[1]):  # record by record: the same sum however segments cut it
                        state["ksum"] += k[:, j]
                    state["kcount"][0] += records.shape[1]
                    if end == p.therm and p.adaptive:
                        kbar = state["ksum"] / max(int(state["kcount"][0]), 1)
                        # a walker that ran away during thermalisation stays frozen: any K̄ > 0 will do
                        state["kbar"] = np.where(np.isfinite(kbar) & (kbar > 0), kbar, 1.0)
                    records = records[:, :0]
                    weights = weights[:, :0]
                stop = sig.caught is not None
                lost = int(np.count_nonzero(state["runaway"]))
                if comm.size > 1:
                    flags = comm.allgather((stop, lost))
                    stop, lost = any(f[0] for f in flags), sum(f[1] for f in flags)
                if lost == p.walkers:
                    raise RunFailed(f"every walker ran away by step {end} (non-finite or |z| beyond the "
                                    "bound): reduce --dt, or use --adaptive")
                if bar is not None:
                    bar.update(end - step)
                arrays = {"records": records, "weights": weights,
                          **{f"state/{k}": v for k, v in state.items()},
                          "state/walker": np.arange(w0, w1, dtype=np.int64)}
                store.write(seg, arrays, {"params": p.to_dict(), "step_begin": step, "step_end": end,
                                          "walker_begin": w0, "walker_end": w1})
                self.segment_written()
                seg, step = seg + 1, end
                if stop and step < total:
                    raise Interrupted(f"{sig.caught or 'signal on another rank'} received: checkpoint "
                                      f"written after step {step} of {total} in {self.partial}; rerun the "
                                      "same command with --resume to continue", collective=True)
        finally:
            if bar is not None:
                bar.close()

    def merge(self, f) -> None:
        from ..run.segments import SegmentStore

        p = self.p
        W, nrec = p.walkers, p.nrec
        attrs = {"algorithm": ALGORITHM, "sigma": [p.sigma.real, p.sigma.imag], "lam": p.lam,
                 "nwalkers": W, "rng": RNG, "numerics": self.numerics(), "mpi_size": self.comm.size,
                 **provenance(self.command)}
        create_walkers(f, nwalkers=W, nrecords=nrec, site_shape=(), dtype=np.complex128, theory=THEORY,
                       attrs=attrs)
        hist = create_history(f, ALGORITHM, {"runaway": ((W,), np.uint8), "langevin_time": ((W,), np.float64),
                                             "kbar": ((W,), np.float64)},
                              {"params": p.to_dict(), "scheme": p.scheme, "dt": p.dt, "adaptive": p.adaptive,
                               "n_y": p.n_y, "therm": p.therm, "every": p.every})
        for r in range(self.comm.size):
            store = SegmentStore(self.partial, r)
            w0, w1 = ranks.split_range(W, self.comm.size, r)
            col, step, last = 0, 0, None
            for k in store.indices():
                a, sa = store.read(k)
                if sa["step_begin"] != step or (sa["walker_begin"], sa["walker_end"]) != (w0, w1):
                    raise ValueError(f"{store.path(k)}: does not continue the previous segment")
                n = a["records"].shape[1]
                f["configs"][w0:w1, col:col + n] = a["records"]
                f["weight"][w0:w1, col:col + n] = a["weights"]
                col, step, last = col + n, sa["step_end"], a
            if step != p.therm + p.steps or col != nrec or last is None:
                raise ValueError(f"{store.dir}: segments end at step {step} with {col} records, "
                                 f"expected {p.therm + p.steps} and {nrec}")
            hist["runaway"][w0:w1] = last["state/runaway"]
            hist["langevin_time"][w0:w1] = last["state/t"]
            hist["kbar"][w0:w1] = last["state/kbar"]
            self.n_runaway += int(np.count_nonzero(last["state/runaway"]))
        hist.attrs["n_runaway"] = self.n_runaway

    def summary(self) -> dict:
        with open_container(self.out, kinds=("walkers",)) as c:
            h = c.history[ALGORITHM]
            return {"out": str(self.out), "walkers": len(c), "records": c.configs.shape[1],
                    "n_runaway": int(h.attrs.get("n_runaway", 0)), "status": self.mode}
