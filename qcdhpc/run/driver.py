"""The life cycle every resumable, MPI-parallel producer of one output file shares (docs/architecture.md).

A family subclasses `SegmentedRun` and writes only its physics: how a rank starts or restores its
state, one unit of work, what a segment holds, and how segments merge into the output container.
This class does the rest, identically for HMC ensembles, diffusion-model sampling, complex-Langevin
walkers and TOV tables:

  1. checks before any work, on rank 0, broadcast to all: the output path (never an input, a
     directory or a foreign file: run/outputs.py), the lock on OUT.partial (one writer: run/lock.py),
     and the run mode:
        fresh     nothing to continue (a stale, empty OUT.partial is reused);
        resume    OUT.partial/run.json records the same kind, parameters, rank count and numerics
                  versions (per family: a change in one family's arithmetic refuses only its runs);
        complete  --resume of a run whose output already exists with these parameters (a requeued
                  job whose previous incarnation finished): nothing to do;
     segments without a run.json are refused, never deleted;
  2. `work(store, items, comm)` on every rank inside a deferred-signal section: the subclass loops,
     calling `self.segment_due()` / `self.stop_requested()` (collective where the layout is lock-step);
  3. after a barrier rank 0 merges the segments into OUT (a temporary renamed at the end; a signal
     there raises Interrupted at once: the segments stay, the rerun merges again) and removes
     OUT.partial; a final barrier, so no rank reports success before the file exists.
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from ..io.atomic import atomic_h5
from ..io.containers import is_ours
from . import ranks, segments
from .lock import RunLock
from .outputs import check_output
from .signals import Interrupted, SignalCatcher


class RunFailed(RuntimeError):
    """The computation went wrong (non-finite numbers, ...): exit 1; the checkpoint written before the
    failure is kept."""

    exit_code = 1
    collective = True  # raised by every rank together (the decision is taken in a collective)


def params_diff(recorded: dict, now: dict) -> list[str]:
    return [f"{k}: {recorded.get(k)!r} (recorded) vs {now.get(k)!r} (now)"
            for k in sorted(set(recorded) | set(now)) if recorded.get(k) != now.get(k)]


class SegmentedRun:
    """Subclasses set `kind` and implement params(), numerics(), output_params(), work(), merge();
    optionally summary(), memory_estimate()."""

    kind = "run"
    lockstep = True  # segment k ends at the same point on every rank (e.g. HMC trajectories)

    def __init__(self, out, *, inputs=(), resume: bool = False, overwrite: bool = False,
                 checkpoint_seconds: float = 600.0, progress: bool = True, command: str | None = None,
                 comm: ranks.Comm | None = None):
        self.out = Path(out)
        if self.out.name in ("", ".", ".."):
            raise ValueError(f"--out {str(out)!r} is not a file name")
        self.inputs = tuple(Path(p) for p in inputs)
        self.partial = segments.partial_dir(self.out)
        self.resume, self.overwrite = bool(resume), bool(overwrite)
        self.checkpoint_seconds = float(checkpoint_seconds)
        if not self.checkpoint_seconds >= 0:
            raise ValueError(f"checkpoint_seconds must be >= 0, got {checkpoint_seconds}")
        self.progress = progress
        self.command = command if command is not None else shlex.join(sys.argv)
        self.comm = comm or ranks.world()
        self.lock = RunLock(self.partial)
        self._seg_time = time.monotonic()
        self.mode: str | None = None

    # -- subclass interface --------------------------------------------------------------------
    def params(self) -> dict:
        """What the output depends on (JSON-serialisable): compared on resume."""
        raise NotImplementedError

    def numerics(self) -> dict:
        """{family: numerics version} of the native arithmetic the output depends on."""
        return {}

    def output_params(self, path: Path) -> dict:
        """params() as recorded in an existing output file (for the 'complete' check)."""
        raise NotImplementedError

    def work(self, store: segments.SegmentStore, comm: ranks.Comm, sig: SignalCatcher) -> None:
        raise NotImplementedError

    def merge(self, f) -> None:
        """Write the output container into the open h5py file f from all ranks' segments."""
        raise NotImplementedError

    def summary(self) -> dict:
        return {"out": str(self.out), "status": self.mode}

    # -- life cycle ------------------------------------------------------------------------------
    def manifest(self) -> dict:
        return {"format": segments.SEGMENT_FORMAT, "kind": self.kind, "params": self.params(),
                "mpi_size": self.comm.size, "numerics": self.numerics()}

    def prepare(self) -> "SegmentedRun":
        """Step 1 (collective).  Raises ValueError / FileExistsError (exit 2) on every rank."""
        mode = error = None
        if self.comm.rank == 0:
            try:
                mode = self._decide()
            except (ValueError, FileExistsError) as exc:
                self._drop_lock()
                error = exc
            except BaseException:  # a signal during the checks (Interrupted), ...
                self._drop_lock()
                raise
        mode, error = self.comm.bcast((mode, error))
        if error is not None:
            raise error
        self.mode = mode
        return self

    def _drop_lock(self) -> None:
        """Release the lock; remove OUT.partial if locking it was all that put it there."""
        if self.lock.held and self.partial.is_dir() and segments.is_empty(self.partial):
            segments.remove_partial(self.partial)
        self.lock.release()

    def _decide(self) -> str:
        check_output(self.out, inputs=self.inputs, replace=True, is_ours=is_ours)
        self.lock.acquire()
        recorded = segments.read_manifest(self.partial)
        if recorded is not None and self.overwrite and not (self.resume and self._resumable(recorded)):
            # --overwrite: replace the output, and with it an interrupted run that cannot continue
            # into this one (other parameters, or no --resume)
            print(f"qcdhpc: discarding the interrupted run in {self.partial} (--overwrite)", file=sys.stderr)
            segments.clear(self.partial)
            recorded = None
        if recorded is not None:
            if not self.resume:
                raise FileExistsError(
                    f"{self.partial} holds an interrupted run of {self.out}: rerun with --resume to "
                    f"continue it, or delete {self.partial} to start over")
            self._check_resumable(recorded)
            return "resume"
        if segments.has_segments(self.partial):
            raise ValueError(f"{self.partial} has checkpoint segments but no run.json, so they cannot be "
                             f"checked against this run; delete {self.partial} to start over")
        if self.out.exists():
            if self.resume:  # a requeued job whose previous incarnation already finished
                diff = params_diff(self.output_params(self.out), self.params())
                if diff:
                    raise ValueError(f"{self.out} exists with different parameters: " + "; ".join(diff))
                return "complete"
            if not self.overwrite:
                raise FileExistsError(f"{self.out} exists; pass --overwrite to replace it")
        segments.write_manifest(self.partial, self.manifest())
        return "fresh"

    def _check_resumable(self, recorded: dict) -> None:
        if recorded.get("kind") != self.kind:
            raise ValueError(f"cannot resume {self.partial}: it holds a {recorded.get('kind')!r} run, "
                             f"this is {self.kind!r}")
        diff = params_diff(recorded.get("params", {}), self.params())
        if diff:
            raise ValueError(f"cannot resume {self.partial}: parameters differ from the interrupted "
                             "run: " + "; ".join(diff))
        if recorded.get("mpi_size") != self.comm.size:
            raise ValueError(f"cannot resume {self.partial}: it was run on {recorded.get('mpi_size')} "
                             f"MPI ranks, now {self.comm.size}; resume with the same number of ranks")
        then, now = self.recorded_numerics(recorded), self.numerics()
        changed = {fam: (then.get(fam), v) for fam, v in now.items() if then.get(fam) != v}
        if changed:
            what = ", ".join(f"{fam} {a} -> {b}" for fam, (a, b) in changed.items())
            raise ValueError(
                f"cannot resume {self.partial}: the kernels' numerics version changed ({what}), so the "
                "continued run would not be bit-identical to an unbroken one. Finish it with the "
                f"qcdhpc version that started it, or delete {self.partial} to start over")

    def _resumable(self, recorded: dict) -> bool:
        try:
            self._check_resumable(recorded)
        except ValueError:
            return False
        return True

    def recorded_numerics(self, recorded: dict) -> dict:
        """Numerics versions in a manifest (subclasses map older manifest layouts here)."""
        return recorded.get("numerics", {})

    def run(self) -> dict:
        """Steps 2 and 3 (collective); returns summary() on rank 0."""
        if self.mode is None:
            self.prepare()
        try:
            if self.mode != "complete":
                store = segments.SegmentStore(self.partial, self.comm.rank)
                with SignalCatcher() as sig:
                    self.work(store, self.comm, sig)
                    # a signal that came after the last safe point: the work is all in segments,
                    # so stop now (75) rather than start a merge the scheduler may kill midway
                    if self.stop_requested(sig):
                        raise Interrupted(f"{sig.caught or 'signal on another rank'} received after the "
                                          f"last segment; all work is in {self.partial}: rerun with "
                                          "--resume to merge it", collective=self.lockstep)
                self.comm.barrier()  # all segments on disk
                if self.comm.rank == 0:
                    with atomic_h5(self.out) as f:
                        self.merge(f)
                    segments.remove_partial(self.partial)
                self.comm.barrier()  # nobody reports success before the file exists
        finally:
            if self.comm.rank == 0:
                self._drop_lock()
        return self.summary() if self.comm.rank == 0 else {"out": str(self.out)}

    # -- helpers for work() -----------------------------------------------------------------
    def stop_requested(self, sig: SignalCatcher) -> bool:
        """Whether a stop signal reached this rank (or, lock-step, any rank): collective then."""
        stop = sig.caught is not None
        return self.comm.any(stop) if self.lockstep and self.comm.size > 1 else stop

    def time_for_segment(self) -> bool:
        """Whether checkpoint_seconds have passed since the last segment (rank-local)."""
        return time.monotonic() - self._seg_time >= self.checkpoint_seconds > 0

    def segment_written(self) -> None:
        self._seg_time = time.monotonic()
