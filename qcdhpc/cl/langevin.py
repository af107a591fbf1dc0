"""Complex-Langevin runs on the generic run machinery (qcdhpc/run/driver.py), written into `walkers`
containers (qcdhpc/io/containers.py): the quartic one-site model (QuarticCLRun, the states are
recorded) and the relativistic Bose gas on an N^d lattice (BoseCLRun, the kernel's per-record
observables n, φ*φ and K_max are recorded; the fields themselves are too large to keep).

Why the result does not depend on how the run was executed: walker (or configuration) w's step s draws
its noise from Philox with key (seed, w) and a counter derived from s (inside the kernel,
qcdhpc.kernels.cl); every walker starts at z = 0 (φ = 0); a checkpoint stores the exact state (z or φ,
Langevin time, runaway flag, ⟨K_max⟩ and its running sums).  So the split of walkers over MPI ranks,
the checkpoint interval and kill/resume cycles change nothing.

Phases per walker: `therm` steps whose records only serve the adaptive step (⟨K_max⟩ = mean K_max over
the thermalisation records, Aarts–James–Seiler–Stamatescu, PLB 687 (2010) 154; with --adaptive these
steps are already adaptive, with K̄ = √(2/ε̄): the drift never moves a walker further than the noise's
√(2ε̄) in one step), then `steps` recorded
ones, one record every `every` steps: the state (or its observables) before the update and that
update's step ε (the Langevin-time weight).  Walkers that run away (non-finite or |z| > the kernel's
bound) are frozen by the kernel; their count is recorded and measure leaves them out (and says so).
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
from .params import BoseCLParams, LangevinParams, QuarticCLParams

ALGORITHM = "langevin"
RNG = "philox4x64-10"
STATE_COMMON = ("t", "runaway", "kbar", "ksum", "kcount")


def numerics_version() -> int:
    from ..kernels import cl as kernels

    return int(kernels.NUMERICS_VERSION)


class LangevinRun(SegmentedRun):
    """What a complex-Langevin run of independent walkers does, whatever the model: segments of whole
    records, thermalisation (⟨K_max⟩ for the adaptive step), runaway accounting, the merge of the
    ranks' segments into one walkers container.  A model subclass says what a walker's state is
    (`initial_state`), how the kernel advances it (`advance`), and what is recorded (`RECORDS`)."""

    lockstep = True
    THEORY = ""
    # record name -> (dataset path in the container, dtype); the first with path "configs" is the state
    RECORDS: dict = {}
    what = "walkers"

    def __init__(self, params: LangevinParams, out, *, checkpoint_every: int = 10000, **kwargs):
        super().__init__(out, **kwargs)
        self.p = params
        if int(checkpoint_every) < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        # segments end on record boundaries: a multiple of `every`
        self.checkpoint_every = -(-int(checkpoint_every) // params.every) * params.every
        if params.walkers < self.comm.size:
            raise ValueError(f"{self.what} ({params.walkers}) < number of MPI ranks ({self.comm.size})")
        per_rank = -(-params.walkers // self.comm.size)
        chunk = min(self.checkpoint_every, params.therm + params.steps) // params.every + 1
        rec_bytes = sum(np.dtype(dt).itemsize for _, dt in self.RECORDS.values()) + 8
        resources.check_fits(ranks.local_size() * per_rank * (chunk * rec_bytes * 3 + 3 * self.state_bytes())
                             + params.walkers * params.nrec * rec_bytes,
                             f"{params.walkers} {self.what} x {params.nrec} records")
        resources.check_disk(self.out, params.walkers * params.nrec * rec_bytes, f"the {self.what} file")
        self.n_runaway = 0
        self.prepare()

    # -- what a model provides -------------------------------------------------------------------
    def state_bytes(self) -> int:
        return 16

    def initial_state(self, n: int) -> dict:
        raise NotImplementedError

    def advance(self, state: dict, w0: int, step: int, nsteps: int, adaptive: bool):
        """Run the kernel: ({record name: (n, nrec) array}, kmax (n, nrec), weights (n, nrec))."""
        raise NotImplementedError

    def model_attrs(self) -> dict:
        return {}

    # -- the run machinery's hooks ---------------------------------------------------------------
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
            state = {"t": np.zeros(n), "runaway": np.zeros(n, np.uint8), "kbar": np.zeros(n),
                     "ksum": np.zeros(n), "kcount": np.zeros(1, np.int64), **self.initial_state(n)}
            return state, 0, 0
        arrays, attrs = store.read(common)
        if json.loads(attrs["params"]) != self.p.to_dict():
            raise ValueError(f"{store.path(common)}: parameters differ from {self.partial}/run.json")
        if list(arrays["state/walker"]) != list(walkers):
            raise ValueError(f"{store.path(common)}: holds other {self.what} than this rank runs")
        names = [k.removeprefix("state/") for k in arrays if k.startswith("state/") and k != "state/walker"]
        state = {k: np.ascontiguousarray(arrays[f"state/{k}"]) for k in names}
        return state, int(attrs["step_end"]), common + 1

    def work(self, store, comm, sig) -> None:
        p = self.p
        w0, w1 = ranks.split_range(p.walkers, comm.size, comm.rank)
        walkers = range(w0, w1)
        state, step, seg = self._restore(store, walkers)
        total = p.therm + p.steps
        bar = None
        if comm.rank == 0 and self.progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=total, initial=step, unit="step", desc=f"cl {self.out.name}")
        try:
            while step < total:
                thermalising = step < p.therm
                end = min(p.therm if thermalising else total, (step // self.checkpoint_every + 1) * self.checkpoint_every)
                if thermalising and p.adaptive:
                    # before ⟨K_max⟩ is known, cap the drift's displacement ε|K| at the noise's √(2ε̄):
                    # K̄ = √(2/ε̄), so a walker far out cannot jump further (a fixed step would run away
                    # exactly where the adaptive step is asked for); production uses the measured ⟨K_max⟩
                    state["kbar"] = np.full_like(state["kbar"], np.sqrt(2.0 / p.dt))
                records, kmax, weights = self.advance(state, w0, step, end - step, p.adaptive)
                if thermalising:
                    k = np.where(np.isfinite(kmax), kmax, 0.0)
                    for j in range(k.shape[1]):  # record by record: the same sum however segments cut it
                        state["ksum"] += k[:, j]
                    state["kcount"][0] += k.shape[1]
                    if end == p.therm and p.adaptive:
                        kbar = state["ksum"] / max(int(state["kcount"][0]), 1)
                        # a walker that ran away during thermalisation stays frozen: any K̄ > 0 will do
                        state["kbar"] = np.where(np.isfinite(kbar) & (kbar > 0), kbar, 1.0)
                    records = {k: v[:, :0] for k, v in records.items()}
                    weights = weights[:, :0]
                stop = sig.caught is not None
                lost = int(np.count_nonzero(state["runaway"]))
                if comm.size > 1:
                    flags = comm.allgather((stop, lost))
                    stop, lost = any(f[0] for f in flags), sum(f[1] for f in flags)
                if lost == p.walkers:
                    raise RunFailed(f"every one of the {p.walkers} {self.what} ran away by step {end} (non-finite "
                                    "or beyond the bound): reduce --dt, or use --adaptive")
                if bar is not None:
                    bar.update(end - step)
                arrays = {"weights": weights, **{f"rec/{k}": v for k, v in records.items()},
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

    def create_output(self, f) -> None:
        raise NotImplementedError

    def merge(self, f) -> None:
        from ..run.segments import SegmentStore

        p = self.p
        W, nrec = p.walkers, p.nrec
        self.create_output(f)
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
                n = a["weights"].shape[1]
                for name, (path, _) in self.RECORDS.items():
                    f[path][w0:w1, col:col + n] = a[f"rec/{name}"]
                f["weight"][w0:w1, col:col + n] = a["weights"]
                col, step, last = col + n, sa["step_end"], a
            if step != p.therm + p.steps or col != nrec or last is None:
                raise ValueError(f"{store.dir}: segments end at step {step} with {col} records, "
                                 f"expected {p.therm + p.steps} and {nrec}")
            hist["runaway"][w0:w1] = last["state/runaway"]
            hist["langevin_time"][w0:w1] = last["state/t"]
            hist["kbar"][w0:w1] = last["state/kbar"]
            self.merge_final_state(hist, last, w0, w1)
            self.n_runaway += int(np.count_nonzero(last["state/runaway"]))
        hist.attrs["n_runaway"] = self.n_runaway

    def merge_final_state(self, hist, last, w0, w1) -> None:
        """Per-model extras of the last segment into /history/langevin (none by default)."""

    def common_attrs(self) -> dict:
        return {"algorithm": ALGORITHM, "nwalkers": self.p.walkers, "rng": RNG, "numerics": self.numerics(),
                "mpi_size": self.comm.size, **self.model_attrs(), **provenance(self.command)}

    def summary(self) -> dict:
        with open_container(self.out, kinds=("walkers",)) as c:
            h = c.history[ALGORITHM]
            return {"out": str(self.out), "walkers": len(c), "records": c.nrecords,
                    "n_runaway": int(h.attrs.get("n_runaway", 0)), "status": self.mode}


class QuarticCLRun(LangevinRun):
    """`params.walkers` walkers of the quartic model S = σ₀z²/2 + λz⁴/4 into `out` (states recorded)."""

    kind = "cl-quartic"
    THEORY = "cl-quartic"
    RECORDS = {"z": ("configs", np.complex128)}

    def __init__(self, params: QuarticCLParams, out, **kwargs):
        self.model = params.model
        super().__init__(params, out, **kwargs)

    def initial_state(self, n: int) -> dict:
        return {"z": np.zeros(n, np.complex128)}

    def advance(self, state, w0, step, nsteps, adaptive):
        from ..kernels import cl as K

        p = self.p
        res = K.quartic_langevin(state["z"], sigma=p.sigma, lam=p.lam, dt=p.dt, nsteps=nsteps, every=p.every,
                                 scheme=p.scheme, seed=p.seed, walker_offset=w0, step_offset=step, n_y=p.n_y,
                                 kbar=state["kbar"] if adaptive else None, t=state["t"], runaway=state["runaway"])
        records, weights = np.asarray(res.records), np.asarray(res.weights)
        return {"z": records}, np.abs(self.model.drift(records)), weights

    def model_attrs(self) -> dict:
        return {"sigma": [self.p.sigma.real, self.p.sigma.imag], "lam": self.p.lam}

    def create_output(self, f) -> None:
        create_walkers(f, nwalkers=self.p.walkers, nrecords=self.p.nrec, site_shape=(), dtype=np.complex128,
                       theory=self.THEORY, attrs=self.common_attrs())


def boundary_integrands(model, phi):
    """(L_c φ*φ, L_c n, max_{a,x} |Im φ_{a,x}|) per configuration of phi (B, 2, N, ..., N): the integrands
    of the boundary terms (observables/cl_diagnostics.py) with L_c = Σ_{a,x} (∂_{a,x} + K_{a,x}) ∂_{a,x}:

        φ*φ = (1/2V) Σ φ_a(x)²:  L_c φ*φ = 2 + (1/V) Σ_{a,x} K_a(x) φ_a(x)
        n (Aarts 2009 B4), bilinear in neighbouring sites (∂² n = 0):  L_c n = Σ_{a,x} K_a(x) ∂n/∂φ_a(x),
            V ∂n/∂φ₁(x) = sinh μ (f₁ + b₁) − i cosh μ (f₂ − b₂),  V ∂n/∂φ₂(x) = sinh μ (f₂ + b₂) + i cosh μ (f₁ − b₁)
        with f = φ(x + 0̂), b = φ(x − 0̂) (0̂: the time direction, the first lattice axis)."""
    import math

    from ..kernels import cl as kernels

    K = np.asarray(kernels.bose_drift(np.ascontiguousarray(phi), N=model.N, d=model.d, m=model.m, lam=model.lam,
                                      mu=model.mu)).reshape(phi.shape)  # = model.drift(phi), compiled
    V, d = model.volume, model.d
    lat = tuple(range(-d, 0))
    lc_phi2 = 2.0 + (K * phi).sum(axis=(-d - 1, *lat)) / V
    t_ax = -d
    p1, p2 = phi[:, 0], phi[:, 1]
    f1, b1 = np.roll(p1, -1, axis=t_ax), np.roll(p1, 1, axis=t_ax)
    f2, b2 = np.roll(p2, -1, axis=t_ax), np.roll(p2, 1, axis=t_ax)
    sh, ch = math.sinh(model.mu), math.cosh(model.mu)
    dn1 = sh * (f1 + b1) - 1j * ch * (f2 - b2)
    dn2 = sh * (f2 + b2) + 1j * ch * (f1 - b1)
    lc_n = (K[:, 0] * dn1 + K[:, 1] * dn2).sum(axis=lat) / V
    imax = np.abs(phi.imag).reshape(phi.shape[0], -1).max(axis=1)
    return lc_phi2, lc_n, imax


class BoseCLRun(LangevinRun):
    """`params.walkers` independent Bose-gas configurations on an N^d lattice into `out`: per record the
    density n (Aarts 2009 eq. B4), φ*φ (B5), K_max = max_{a,x} |K_a(x)|, and the boundary-term
    integrands L_c φ*φ, L_c n with the cut variable max_{a,x} |Im φ| (boundary_integrands); the final
    fields go to /history/langevin/final_fields (a starting point for longer runs)."""

    kind = "cl-bose"
    THEORY = "cl-bose"
    RECORDS = {"density": ("observables/density", np.complex128), "phi2": ("observables/phi2", np.complex128),
               "kmax": ("observables/kmax", np.float64), "lc_phi2": ("observables/lc_phi2", np.complex128),
               "lc_density": ("observables/lc_density", np.complex128), "imax": ("observables/imax", np.float64)}
    what = "configurations"

    def __init__(self, params: BoseCLParams, out, **kwargs):
        self.model = params.model
        super().__init__(params, out, **kwargs)

    def state_bytes(self) -> int:
        return 2 * self.model.volume * 16

    def initial_state(self, n: int) -> dict:
        return {"phi": np.zeros((n, 2, self.model.volume), np.complex128)}

    def advance(self, state, w0, step, nsteps, adaptive):
        from ..kernels import cl as K

        p = self.p
        kw = dict(N=p.N, d=p.d, m=p.m, lam=p.lam, mu=p.mu, dt=p.dt, every=p.every, scheme=p.scheme, seed=p.seed,
                  field_offset=w0, n_y=p.n_y, kbar=state["kbar"] if adaptive else None, t=state["t"],
                  runaway=state["runaway"])
        if step < p.therm:  # thermalisation: one call, only K_max is used
            res = K.bose_langevin(state["phi"], nsteps=nsteps, step_offset=step, **kw)
            dens, phi2, kmax, weights = (np.asarray(a) for a in res)
            return {"density": dens, "phi2": phi2, "kmax": kmax, **self._empty(dens)}, kmax, weights
        # production: one call per record (the kernel gives the same bits however a run is cut), so the
        # boundary-term integrands L_c O of the state before each recorded update can be formed here
        parts = []
        for r in range(nsteps // p.every):
            lco = boundary_integrands(self.model, state["phi"].reshape((-1, *self.model.shape)))
            res = K.bose_langevin(state["phi"], nsteps=p.every, step_offset=step + r * p.every, **kw)
            parts.append((*(np.asarray(a)[:, 0] for a in res), *lco))
        cols = [np.stack(c, axis=1) for c in zip(*parts)]
        dens, phi2, kmax, weights, lc_phi2, lc_density, imax = cols
        frozen = weights == 0  # runaway configurations: their records are dropped anyway
        imax = np.where(frozen, np.nan, imax)
        return ({"density": dens, "phi2": phi2, "kmax": kmax, "lc_phi2": lc_phi2, "lc_density": lc_density,
                 "imax": imax}, kmax, weights)

    @staticmethod
    def _empty(like):
        n = like.shape[0]
        return {"lc_phi2": np.zeros((n, 0), np.complex128), "lc_density": np.zeros((n, 0), np.complex128),
                "imax": np.zeros((n, 0))}

    def model_attrs(self) -> dict:
        p = self.p
        return {"N": p.N, "d": p.d, "m": p.m, "lam": p.lam, "mu": p.mu}

    def create_output(self, f) -> None:
        p = self.p
        create_walkers(f, nwalkers=p.walkers, nrecords=p.nrec, site_shape=self.model.shape, dtype=np.complex128,
                       theory=self.THEORY, attrs=self.common_attrs(), states=False,
                       observables={name: dt for name, (_, dt) in self.RECORDS.items()})

    def merge_final_state(self, hist, last, w0, w1) -> None:
        if "final_fields" not in hist:
            hist.create_dataset("final_fields", shape=(self.p.walkers, *self.model.shape), dtype=np.complex128)
        hist["final_fields"][w0:w1] = last["state/phi"].reshape((w1 - w0, *self.model.shape))
