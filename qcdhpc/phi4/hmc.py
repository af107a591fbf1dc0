"""φ⁴ HMC ensembles on the generic run machinery (qcdhpc/run/driver.py): batches of chains on the
kernel, streamed to checkpoint segments, merged into one `fields` container (qcdhpc/io/containers.py).

Why the result does not depend on how the run was executed: chain c's trajectory t draws its random
numbers from Philox with key (seed, c) and a counter derived from t (inside the kernel); the start field
is a function of (seed, c) only; a checkpoint stores the exact field.  So batching, the number of MPI
ranks, checkpoint intervals and kill/resume cycles change nothing in the output arrays.

What is φ⁴-specific here: start fields, the kernel batch loop (a batch ends at the next save point or
checkpoint boundary), the segment contents (configurations, ΔH and accept history, the exact field),
the merge into /configs + /history/hmc, the memory estimate and the non-finite ΔH guard.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..io.containers import create_fields, create_history, open_container, write_rows
from ..run import ranks, resources
from ..run.driver import RunFailed, SegmentedRun
from ..run.provenance import provenance
from ..run.signals import Interrupted
from .params import HMCParams

THEORY, ALGORITHM = "phi4", "hmc"
KIND = "phi4-hmc"  # run kind in OUT.partial/run.json
RNG = "philox4x64-10"
HOT_START_TAG = 0x686F74  # "hot": separates the start-field stream from the kernel's (seed, chain) keys
HOT_START_WIDTH = 0.1
MAX_SEGMENT_BYTES = 256 << 20  # a segment is also cut when its configuration buffer reaches this size
# Arrays of B·V values a rank holds at once: the field, the kernel's saved field, momenta and ping-pong
# buffer, the host copy for a segment, and h5py's write buffer.
FIELD_COPIES = 6


def hot_start(params: HMCParams, chains: range) -> np.ndarray:
    """Start fields φ = 0.1·N(0,1) for the given global chains, a function of (seed, chain) only."""
    phi = np.empty((len(chains), *params.L), dtype=params.dtype)
    for i, c in enumerate(chains):
        ss = np.random.SeedSequence([params.seed, c, HOT_START_TAG])
        phi[i] = HOT_START_WIDTH * np.random.Generator(np.random.Philox(ss)).standard_normal(params.L)
    return phi


def cold_start(params: HMCParams, chains: range) -> np.ndarray:
    """Constant start fields φ = (−1)^c v (params.vacuum) for the given global chains c: both vacua
    of the broken phase are populated whatever the split of chains over ranks."""
    signs = np.where(np.arange(chains.start, chains.stop) % 2 == 0, 1.0, -1.0)
    return np.broadcast_to((signs * params.vacuum)[:, None, None],
                           (len(chains), *params.L)).astype(params.dtype)


def start_fields(params: HMCParams, chains: range) -> np.ndarray:
    return cold_start(params, chains) if params.start == "cold" else hot_start(params, chains)


def start_description(params: HMCParams) -> str:
    if params.start == "cold":
        return f"cold: (-1)^chain * v, v = {params.vacuum!r} (minimum of the constant-field action)"
    return f"hot: {HOT_START_WIDTH}*N(0,1), numpy Philox(SeedSequence([seed, chain, {HOT_START_TAG:#x}]))"


def numerics_version() -> int:
    """The compiled φ⁴ kernels' arithmetic version (csrc/include/qcdhpc/phi4/version.h)."""
    from ..kernels import phi4 as kernels  # the native module: imported only where it is needed

    return int(kernels.NUMERICS_VERSION)


def _numpy(x) -> np.ndarray:
    """A host numpy copy of a numpy array or (possibly CUDA) torch tensor."""
    if isinstance(x, np.ndarray):
        return x.copy()
    return x.detach().cpu().numpy()


def memory_estimate(params: HMCParams, nranks_on_node: int, nranks: int) -> int:
    """Bytes the ranks of one node hold at once (fields, segment buffer, merge on rank 0)."""
    itemsize = np.dtype(params.dtype).itemsize
    chains_per_rank = -(-params.nchains // nranks)
    field = chains_per_rank * params.volume * itemsize
    saved = min(MAX_SEGMENT_BYTES, params.nsave * field) + field  # one segment's configurations
    return nranks_on_node * (FIELD_COPIES * field + saved) + saved  # + rank 0's merge of one segment


class HMCRun(SegmentedRun):
    """One ensemble generation.  The constructor validates everything (ValueError / FileExistsError
    before any work, on every rank); run() does the work and returns a summary dict on rank 0."""

    kind = KIND
    lockstep = True

    def __init__(self, params: HMCParams, out, *, checkpoint_every: int = 100, **kwargs):
        from ..kernels import available_devices

        super().__init__(out, **kwargs)
        self.p = params
        self.checkpoint_every = int(checkpoint_every)
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        if params.nchains < self.comm.size:
            raise ValueError(f"nchains ({params.nchains}) < number of MPI ranks ({self.comm.size}): "
                             "every rank needs at least one chain")
        if params.device not in available_devices():
            raise ValueError(f"device {params.device!r} is not available (this build has: "
                             f"{', '.join(available_devices())})")
        resources.check_fits(memory_estimate(params, ranks.local_size(), self.comm.size),
                             f"an ensemble of {params.nchains} chains of {params.L[0]}x{params.L[1]} "
                             f"{params.dtype} on {self.comm.size} rank(s)")
        resources.check_disk(self.out, params.nchains * params.nsave * params.volume
                             * np.dtype(params.dtype).itemsize, "the ensemble file")
        self.prepare()

    # -- SegmentedRun interface ---------------------------------------------------------------
    def params(self) -> dict:
        return self.p.to_dict()

    def numerics(self) -> dict:
        return {THEORY: numerics_version()}

    def recorded_numerics(self, recorded: dict) -> dict:
        if "numerics" in recorded:
            return recorded["numerics"]
        return {THEORY: recorded.get("kernel_numerics", 1)}  # manifests of qcdhpc <= 0.2 (one version)

    def output_params(self, path: Path) -> dict:
        with open_container(path, kinds=("fields",)) as c:
            return {k: c.attrs.get(k) for k in self.p.to_dict()}

    def _restore(self, store, chains: range):
        """(phi, next trajectory, next segment index) to continue from."""
        p = self.p
        last = store.last() if self.mode == "resume" else None
        # A SIGKILL can hit ranks between their writes of segment k; segment k means the same
        # trajectory on every rank, so all continue from the newest segment that every rank has.
        common = min(self.comm.allgather(-1 if last is None else last))
        store.discard_after(common if common >= 0 else None)
        if common < 0:
            return start_fields(p, chains), 0, 0
        arrays, attrs = store.read(common)
        if attrs.get("params") and json.loads(attrs["params"]) != p.to_dict():
            raise ValueError(f"{store.path(common)}: parameters differ from {self.partial}/run.json")
        if list(arrays["state/chain"]) != list(chains):
            raise ValueError(f"{store.path(common)}: holds chains {arrays['state/chain'].tolist()}, "
                             f"this rank runs {list(chains)}")
        phi = np.ascontiguousarray(arrays["state/phi"], dtype=p.dtype)
        return phi, int(attrs["traj_end"]), common + 1

    def work(self, store, comm, sig) -> None:
        from ..kernels import phi4 as K

        p = self.p
        c0, c1 = ranks.split_range(p.nchains, comm.size, comm.rank)
        chains = range(c0, c1)
        phi, t, seg = self._restore(store, chains)
        if p.device == "cuda":
            import torch

            phi = torch.from_numpy(phi).to(ranks.torch_device("cuda"))
        total = p.ntraj_total
        bar = None
        if comm.rank == 0 and self.progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=total, initial=t, unit="traj", desc=f"hmc {self.out.name}")

        saved: list[tuple[int, np.ndarray]] = []  # (trajectory, configs of this rank's chains)
        dHs: list[np.ndarray] = []
        accs: list[np.ndarray] = []
        seg_begin = t
        try:
            while t < total:
                # A batch ends at the next save point, checkpoint boundary, or the end of the run.
                if t < p.therm:
                    next_save = p.therm + p.every
                else:
                    next_save = p.therm + ((t - p.therm) // p.every + 1) * p.every
                next_ckpt = (t // self.checkpoint_every + 1) * self.checkpoint_every
                end = min(next_save, next_ckpt, total)
                dH, acc = K.hmc_trajectories(
                    phi, kappa=p.kappa, lam=p.lam, nmd=p.nmd, tau=p.tau, integrator=p.integrator,
                    seed=p.seed, chain_offset=c0, traj_offset=t, ntraj=end - t)
                dH = _numpy(dH)
                bad = self._nonfinite(dH, c0, t)
                # Every rank must take the same decisions (segment k = same trajectory everywhere).
                want = self.time_for_segment() or sum(c.nbytes for _, c in saved) >= MAX_SEGMENT_BYTES
                stop = sig.caught is not None
                if comm.size > 1:
                    flags = comm.allgather((want, stop, bad))
                    want, stop = any(f[0] for f in flags), any(f[1] for f in flags)
                    bad = next((f[2] for f in flags if f[2]), None)
                if bad:
                    raise RunFailed(f"{bad}; the checkpoint up to trajectory {seg_begin} is kept in "
                                    f"{self.partial}, but resuming would repeat this: reduce the step "
                                    "tau/nmd, or check kappa and lam")
                dHs.append(dH)
                accs.append(_numpy(acc))
                if bar is not None:
                    bar.update(end - t)
                t = end
                if p.is_saved(t - 1):
                    saved.append((t - 1, _numpy(phi)))
                if want or stop or t % self.checkpoint_every == 0 or t == total:
                    self._write_segment(store, seg, chains, phi, t, seg_begin, saved, dHs, accs)
                    self.segment_written()
                    seg, seg_begin = seg + 1, t
                    saved, dHs, accs = [], [], []
                if stop and t < total:
                    raise Interrupted(
                        f"{sig.caught or 'signal on another rank'} received: checkpoint written after "
                        f"trajectory {t} of {total} per chain in {self.partial}; rerun the same command "
                        "with --resume to continue", collective=True)
        finally:
            if bar is not None:
                bar.close()

    @staticmethod
    def _nonfinite(dH: np.ndarray, c0: int, t: int) -> str | None:
        """A description of the first non-finite ΔH of the batch (a diverged trajectory), or None.
        A non-finite field shows here too: its energy, hence ΔH, is not finite."""
        bad = ~np.isfinite(dH)
        if not bad.any():
            return None
        b, k = map(int, np.argwhere(bad)[0])
        return (f"chain {c0 + b}, trajectory {t + k}: dH = {dH[b, k]} (the molecular dynamics diverged; "
                f"{int(bad.sum())} non-finite dH in this batch)")

    def _write_segment(self, store, k, chains, phi, t, seg_begin, saved, dHs, accs) -> None:
        p = self.p
        B = len(chains)
        configs = (np.concatenate([c for _, c in saved]) if saved
                   else np.empty((0, *p.L), dtype=p.dtype))
        arrays = {
            # rows trajectory-major, chain-minor, like the merged file
            "configs": configs,
            "chain": np.tile(np.arange(chains.start, chains.stop, dtype=np.int64), len(saved)),
            "traj": np.repeat(np.array([tr for tr, _ in saved], dtype=np.int64), B),
            "dH": np.concatenate(dHs, axis=1) if dHs else np.empty((B, 0)),
            "accepted": np.concatenate(accs, axis=1) if accs else np.empty((B, 0), np.uint8),
            "state/phi": _numpy(phi),
            "state/chain": np.arange(chains.start, chains.stop, dtype=np.int64),
            "state/next_traj": np.full(B, t, dtype=np.int64),
        }
        store.write(k, arrays, {"params": p.to_dict(), "traj_begin": seg_begin, "traj_end": t,
                                "chain_begin": chains.start, "chain_end": chains.stop})

    def merge(self, f) -> None:
        """Stream every rank's segments into the output, one segment in memory at a time."""
        from ..run.segments import SegmentStore

        p = self.p
        total, n = p.ntraj_total, p.nchains * p.nsave
        attrs = {**p.to_dict(), "algorithm": ALGORITHM, "rng": RNG, "nsave": p.nsave,
                 "next_traj": np.full(p.nchains, total, np.int64), "init": start_description(p),
                 "numerics": self.numerics(), "mpi_size": self.comm.size, **provenance(self.command)}
        create_fields(f, n=n, site_shape=p.L, dtype=p.dtype, nchains=p.nchains, theory=THEORY, attrs=attrs)
        h = create_history(f, ALGORITHM, {"dH": ((p.nchains, total), np.float64),
                                          "accepted": ((p.nchains, total), np.uint8)},
                           {"n_therm": p.therm, "integrator": p.integrator, "nmd": p.nmd, "tau": p.tau})
        written = 0
        for r in range(self.comm.size):
            store = SegmentStore(self.partial, r)
            c0, c1 = ranks.split_range(p.nchains, self.comm.size, r)
            t_expected = 0
            for k in store.indices():
                a, sa = store.read(k)
                if sa["traj_begin"] != t_expected or (sa["chain_begin"], sa["chain_end"]) != (c0, c1):
                    raise ValueError(f"{store.path(k)}: does not continue the previous segment "
                                     f"(expected trajectory {t_expected}, chains {c0}..{c1 - 1})")
                t0, t1 = sa["traj_begin"], sa["traj_end"]
                h["dH"][c0:c1, t0:t1] = a["dH"]
                h["accepted"][c0:c1, t0:t1] = a["accepted"]
                t_expected = t1
                B = c1 - c0
                for j in range(0, len(a["traj"]), B):  # one block of B chains per saved trajectory
                    row = p.save_index(int(a["traj"][j])) * p.nchains + c0
                    write_rows(f, row, a["configs"][j:j + B], a["chain"][j:j + B], a["traj"][j:j + B])
                    written += B
            if t_expected != total:
                raise ValueError(f"{store.dir}: segments end at trajectory {t_expected}, not {total}")
        if written != n:
            raise ValueError(f"{self.partial}: {written} configurations found, expected {n}")

    def summary(self) -> dict:
        with open_container(self.out, kinds=("fields",)) as c:
            h = c.history[ALGORITHM]
            therm = h.attrs.get("n_therm", 0)
            acc, dH = h["accepted"][:, therm:], h["dH"][:, therm:]
            return {"out": str(self.out), "n": len(c), "nchains": int(c.attrs["nchains"]),
                    "acceptance": float(acc.mean()), "exp_minus_dH": float(np.exp(-dH).mean()),
                    "status": self.mode}


def generate(params: HMCParams, out, **kwargs) -> dict:
    """Generate an ensemble into `out` (see HMCRun and SegmentedRun for the keyword options)."""
    return HMCRun(params, out, **kwargs).run()
