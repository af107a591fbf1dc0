"""Generation of φ⁴ HMC ensembles: batches of chains on the kernel, streamed to checkpoint segments,
merged into one HDF5 ensemble at the end.  Resumable, MPI-parallel, bit-reproducible.

Why the result does not depend on how the run was executed: chain c's trajectory t draws its random
numbers from Philox with key (seed, c) and a counter derived from t (inside the kernel); the start field
is a function of (seed, c) only; a checkpoint stores the exact field.  So batching, the number of MPI
ranks, checkpoint intervals and kill/resume cycles change nothing in the output arrays.

Run life cycle for output OUT.h5 (see docs/data_formats.md):
  1. checks (parameters, device, existing files) — refused before any work;
  2. every rank runs its contiguous block of chains, writing OUT.h5.partial/rank{r}/seg{k}.h5 atomically
     each `checkpoint_every` trajectories (or `checkpoint_seconds`, or when a segment's buffer is full);
  3. on SIGTERM/SIGUSR1/SIGINT: finish the current batch, write a segment, raise Interrupted (CLI exit 75);
  4. after a barrier rank 0 merges all segments into OUT.h5 (atomic) and removes OUT.h5.partial.
"""
from __future__ import annotations

import datetime
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..io import checkpoint as ckpt
from ..io.atomic import atomic_h5
from ..interrupt import EXIT_INTERRUPTED, SignalCatcher
from ..io.ensemble import create_ensemble, open_ensemble, write_configs, write_history
from ..parallel import mpi
from .params import HMCParams

KIND = "phi4-hmc"
RNG = "philox4x64-10"
HOT_START_TAG = 0x686F74  # "hot": separates the start-field stream from the kernel's (seed, chain) keys
HOT_START_WIDTH = 0.1
MAX_SEGMENT_BYTES = 256 << 20  # a segment is also cut when its configuration buffer reaches this size


class Interrupted(RuntimeError):
    """The run stopped on a signal after writing a checkpoint; rerun with resume=True to continue."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, out: Path, signame: str, traj: int, total: int):
        self.out = out
        super().__init__(f"{signame} received: checkpoint written after trajectory {traj} of {total} "
                         f"per chain in {ckpt.partial_dir(out)}; rerun the same command with --resume "
                         "to continue")


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


def code_version() -> str:
    """qcdhpc version, plus `git describe` when running from a git checkout."""
    try:
        desc = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"],
                              cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        desc = ""
    return f"{__version__}+git.{desc}" if desc else __version__


def _numerics_version() -> int:
    """The compiled kernels' arithmetic version (csrc/include/qcdhpc/config.h, kNumericsVersion)."""
    from .. import _kernels as K  # the native module: imported only where it is needed

    return K.NUMERICS_VERSION


def _numpy(x) -> np.ndarray:
    """A host numpy copy of a numpy array or (possibly CUDA) torch tensor."""
    if isinstance(x, np.ndarray):
        return x.copy()
    return x.detach().cpu().numpy()


def _params_diff(recorded: dict, now: dict) -> list[str]:
    return [f"{k}: {recorded.get(k)!r} (recorded) vs {now.get(k)!r} (now)"
            for k in sorted(set(recorded) | set(now)) if recorded.get(k) != now.get(k)]


class EnsembleRun:
    """One ensemble generation.  The constructor validates everything (raising ValueError or
    FileExistsError before any work); run() does the work and returns a summary dict."""

    def __init__(self, params: HMCParams, out, *, resume: bool = False, overwrite: bool = False,
                 checkpoint_every: int = 100, checkpoint_seconds: float = 600.0, progress: bool = True,
                 command: str | None = None, comm: mpi.Comm | None = None):
        from .. import _kernels as K

        self.params, self.out = params, Path(out)
        self.partial = ckpt.partial_dir(self.out)
        self.checkpoint_every, self.checkpoint_seconds = int(checkpoint_every), float(checkpoint_seconds)
        self.progress = progress
        self.command = command if command is not None else shlex.join(sys.argv)
        self.comm = comm or mpi.world()
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        if not self.checkpoint_seconds >= 0:
            raise ValueError(f"checkpoint_seconds must be >= 0, got {checkpoint_seconds}")
        if params.nchains < self.comm.size:
            raise ValueError(f"nchains ({params.nchains}) < number of MPI ranks ({self.comm.size}): "
                             "every rank needs at least one chain")
        if params.device not in K.available_devices():
            raise ValueError(f"device {params.device!r} is not available (this build has: "
                             f"{', '.join(K.available_devices())})")
        # Only rank 0 looks at the files, so that ranks cannot disagree (or race with its manifest).
        mode = error = None
        if self.comm.rank == 0:
            try:
                mode = self._check_files(resume, overwrite)
            except (ValueError, FileExistsError) as exc:
                error = exc
        mode, error = self.comm.bcast((mode, error))
        if error is not None:
            raise error
        self.mode = mode  # "fresh" | "resume" | "complete"

    def manifest(self) -> dict:
        return {"format": ckpt.SEGMENT_FORMAT, "kind": KIND, "params": self.params.to_dict(),
                "mpi_size": self.comm.size, "kernel_numerics": _numerics_version()}

    def _check_files(self, resume: bool, overwrite: bool) -> str:
        p = self.params.to_dict()
        if self.partial.exists():
            if not resume:
                raise FileExistsError(
                    f"{self.partial} exists: an interrupted run of {self.out}. Rerun with --resume to "
                    f"continue it, or delete {self.partial} to start over")
            recorded = ckpt.read_manifest(self.partial)
            if recorded is not None:  # no manifest: killed before its first write, nothing to keep
                diff = _params_diff(recorded.get("params", {}), p)
                if diff:
                    raise ValueError(f"cannot resume {self.partial}: parameters differ from the "
                                     "interrupted run: " + "; ".join(diff))
                if recorded.get("mpi_size") != self.comm.size:
                    raise ValueError(f"cannot resume {self.partial}: it was run on "
                                     f"{recorded.get('mpi_size')} MPI ranks, now {self.comm.size}; "
                                     "resume with the same number of ranks")
                numerics_then = recorded.get("kernel_numerics", 1)  # manifests before it was recorded: 1
                numerics_now = _numerics_version()
                if numerics_then != numerics_now:
                    raise ValueError(
                        f"cannot resume {self.partial}: it was generated with kernel numerics version "
                        f"{numerics_then}, this build has {numerics_now} (the per-chain arithmetic "
                        "changed, csrc/include/qcdhpc/config.h), so the continued chains would not "
                        "be bit-identical to an unbroken run. Finish it with the qcdhpc version that "
                        f"started it, or delete {self.partial} to start over")
                return "resume"
        elif self.out.exists():
            if resume:  # a requeued job whose previous incarnation already finished
                with open_ensemble(self.out) as ens:
                    diff = _params_diff({k: ens.attrs.get(k) for k in p}, p)
                if diff:
                    raise ValueError(f"{self.out} exists with different parameters: " + "; ".join(diff))
                return "complete"
            if not overwrite:
                raise FileExistsError(f"{self.out} exists; pass --overwrite to replace it")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        ckpt.write_manifest(self.partial, self.manifest())
        return "fresh"

    # -- the work ------------------------------------------------------------------------------------
    def run(self) -> dict:
        if self.mode != "complete":
            self._generate()
            self.comm.barrier()  # all segments on disk
            if self.comm.rank == 0:
                self._merge()
                ckpt.remove_partial(self.partial)
            self.comm.barrier()  # nobody reports success before the file exists
        return self.summary()

    def _restore(self, store: ckpt.SegmentStore, chains: range):
        """(phi, next trajectory, next segment index) to continue from."""
        p = self.params
        last = store.last() if self.mode == "resume" else None
        # A SIGKILL can hit ranks between their writes of segment k; segment k means the same
        # trajectory on every rank, so all continue from the newest segment that every rank has.
        lasts = self.comm.allgather(-1 if last is None else last)
        common = min(lasts)
        store.discard_after(common if common >= 0 else None)
        if common < 0:
            return start_fields(p, chains), 0, 0
        arrays, attrs = store.read(common)
        if attrs.get("params") and _params_diff(json.loads(attrs["params"]), p.to_dict()):
            raise ValueError(f"{store.path(common)}: parameters differ from {self.partial}/run.json")
        if list(arrays["state/chain"]) != list(chains):
            raise ValueError(f"{store.path(common)}: holds chains {arrays['state/chain'].tolist()}, "
                             f"this rank runs {list(chains)}")
        phi = np.ascontiguousarray(arrays["state/phi"], dtype=p.dtype)
        return phi, int(attrs["traj_end"]), common + 1

    def _generate(self) -> None:
        from .. import _kernels as K

        p, comm = self.params, self.comm
        c0, c1 = mpi.split_range(p.nchains, comm.size, comm.rank)
        chains = range(c0, c1)
        store = ckpt.SegmentStore(self.partial, comm.rank)
        phi, t, seg = self._restore(store, chains)
        if p.device == "cuda":
            import torch

            phi = torch.from_numpy(phi).to("cuda")
        total = p.ntraj_total
        bar = None
        if comm.rank == 0 and self.progress and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=total, initial=t, unit="traj", desc=f"hmc {self.out.name}")

        saved: list[tuple[int, np.ndarray]] = []  # (trajectory, configs of this rank's chains)
        dHs: list[np.ndarray] = []
        accs: list[np.ndarray] = []
        seg_begin, seg_time = t, time.monotonic()
        with SignalCatcher() as sig:
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
                dHs.append(_numpy(dH))
                accs.append(_numpy(acc))
                if bar is not None:
                    bar.update(end - t)
                t = end
                if p.is_saved(t - 1):
                    saved.append((t - 1, _numpy(phi)))

                # Every rank must take the same decision (segment k = same trajectory everywhere).
                want = (time.monotonic() - seg_time >= self.checkpoint_seconds > 0
                        or sum(c.nbytes for _, c in saved) >= MAX_SEGMENT_BYTES)
                stop = sig.caught is not None
                if comm.size > 1:
                    flags = comm.allgather((want, stop))
                    want, stop = any(f[0] for f in flags), any(f[1] for f in flags)
                if want or stop or t % self.checkpoint_every == 0 or t == total:
                    self._write_segment(store, seg, chains, phi, t, seg_begin, saved, dHs, accs)
                    seg, seg_begin, seg_time = seg + 1, t, time.monotonic()
                    saved, dHs, accs = [], [], []
                if stop and t < total:
                    if bar is not None:
                        bar.close()
                    raise Interrupted(self.out, sig.caught or "signal on another rank", t, total)
        if bar is not None:
            bar.close()

    def _write_segment(self, store, k, chains, phi, t, seg_begin, saved, dHs, accs) -> None:
        p = self.params
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

    def _merge(self) -> None:
        """Stream every rank's segments into OUT.h5 (atomic), one segment in memory at a time."""
        p = self.params
        total, n = p.ntraj_total, p.nchains * p.nsave
        attrs = {
            "kind": KIND, **p.to_dict(), "rng": RNG, "next_traj": np.full(p.nchains, total, np.int64),
            "nsave": p.nsave, "init": start_description(p),
            "code_version": code_version(), "kernel_numerics": _numerics_version(),
            "mpi_size": self.comm.size, "command": self.command,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        written = 0
        with atomic_h5(self.out) as f:
            create_ensemble(f, n=n, site_shape=p.L, dtype=p.dtype, nchains=p.nchains,
                            ntraj_total=total, n_therm=p.therm, attrs=attrs)
            for r in range(self.comm.size):
                store = ckpt.SegmentStore(self.partial, r)
                c0, c1 = mpi.split_range(p.nchains, self.comm.size, r)
                t_expected = 0
                for k in store.indices():
                    a, sa = store.read(k)
                    if sa["traj_begin"] != t_expected or (sa["chain_begin"], sa["chain_end"]) != (c0, c1):
                        raise ValueError(f"{store.path(k)}: does not continue the previous segment "
                                         f"(expected trajectory {t_expected}, chains {c0}..{c1 - 1})")
                    write_history(f, c0, sa["traj_begin"], a["dH"], a["accepted"])
                    t_expected = sa["traj_end"]
                    B = c1 - c0
                    for j in range(0, len(a["traj"]), B):  # one block of B chains per saved trajectory
                        row = p.save_index(int(a["traj"][j])) * p.nchains + c0
                        write_configs(f, row, a["configs"][j:j + B], a["chain"][j:j + B], a["traj"][j:j + B])
                        written += B
                if t_expected != total:
                    raise ValueError(f"{store.dir}: segments end at trajectory {t_expected}, not {total}")
            if written != n:
                raise ValueError(f"{self.partial}: {written} configurations found, expected {n}")

    def summary(self) -> dict:
        if self.comm.rank != 0:
            return {"out": str(self.out)}
        with open_ensemble(self.out) as ens:
            acc = ens.accepted[:, ens.n_therm:]
            dH = ens.dH[:, ens.n_therm:]
            return {"out": str(self.out), "n": len(ens), "nchains": int(ens.attrs["nchains"]),
                    "acceptance": float(acc.mean()), "exp_minus_dH": float(np.exp(-dH).mean()),
                    "status": self.mode}


def generate(params: HMCParams, out, **kwargs) -> dict:
    """Generate an ensemble into `out` (see EnsembleRun for the keyword options)."""
    return EnsembleRun(params, out, **kwargs).run()
