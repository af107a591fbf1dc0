"""Graceful stop of the resumable stages (`qcdhpc hmc`, `qcdhpc train`) on a signal.

Slurm sends SIGTERM (scancel, the time limit) or the signal chosen with `--signal` (our templates:
SIGUSR1 to the batch shell, forwarded to the stage) before it kills a job.  The stages turn these into
a flag that they check at their next safe point (HMC: after a kernel batch; training: after an epoch),
write a checkpoint and exit with EXIT_INTERRUPTED, which the sbatch templates read as "checkpointed,
requeue and rerun with --resume".  Kept here, light (no numpy/torch), so both stages share one
convention.
"""
from __future__ import annotations

import signal
import threading

EXIT_INTERRUPTED = 75  # sysexits EX_TEMPFAIL: "temporary failure, retry" — rerun with --resume


class SignalCatcher:
    """Turn SIGTERM/SIGUSR1/SIGINT into a flag (`caught`: the signal's name) checked between units of
    work; the previous handlers are restored on exit.  A second SIGINT interrupts immediately
    (KeyboardInterrupt), so Ctrl-C twice still stops a stage that is slow to reach its safe point."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)

    def __init__(self):
        self.caught: str | None = None
        self._old: dict = {}

    def _handler(self, signum, frame):
        if self.caught is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.caught = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers only install there
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)
