"""Signals from the first instruction of a command to its final rename: exit 75, never 143/138.

Slurm sends SIGTERM (scancel, the time limit) or the signal chosen with `--signal` (our templates:
SIGUSR1, forwarded to the stage) before it kills a job; the templates requeue a job that exits with
EXIT_INTERRUPTED (sysexits EX_TEMPFAIL) and rerun it with --resume.  So every phase must end that way:

* `install()` (the CLI's first action) turns SIGTERM/SIGUSR1/SIGINT into an `Interrupted` exception
  raised at once.  That is right wherever nothing is lost by stopping: start-up and checks (nothing
  written yet), the final merge (it writes a temporary, removed on the way out, and the checkpoint
  segments stay, so the rerun merges again).
* Inside a work loop (`SignalCatcher`, a *deferred* section) the signal only sets a flag (`caught`,
  the signal's name) that the loop checks at its next safe point — after a kernel batch, an epoch, a
  sampling batch — where it writes a checkpoint and raises `Interrupted` itself.  A second SIGINT
  interrupts immediately (KeyboardInterrupt), so Ctrl-C twice still stops a slow loop.

Light (no numpy/torch): imported before anything heavy.
"""
from __future__ import annotations

import signal
import threading

EXIT_INTERRUPTED = 75  # sysexits EX_TEMPFAIL: "temporary failure, retry" — rerun with --resume
SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class Interrupted(RuntimeError):
    """A stop signal ended the command; whatever was done is checkpointed (or nothing was started).
    `collective`: every MPI rank raises it together (a decision taken in a collective), so no rank
    needs to abort the others."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, collective: bool = False):
        super().__init__(message)
        self.collective = collective


class _State:
    installed = False
    depth = 0                    # nesting of deferred sections
    caught: str | None = None    # signal seen inside the current deferred section
    previous: dict = {}


def _handler(signum, frame):
    name = signal.Signals(signum).name
    if _State.depth > 0:
        if _State.caught is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        _State.caught = name
        return
    raise Interrupted(f"{name} received; nothing is lost: rerun the same command (with --resume "
                      "where the verb has it) to continue")


def install() -> None:
    """Handle the stop signals in this process from now on (main thread only; idempotent)."""
    if _State.installed or threading.current_thread() is not threading.main_thread():
        return
    for s in SIGNALS:
        _State.previous[s] = signal.signal(s, _handler)
    _State.installed = True


def uninstall() -> None:
    """Restore the handlers found by install() (tests calling the CLI in-process use this)."""
    if not _State.installed:
        return
    for s, old in _State.previous.items():
        signal.signal(s, old)
    _State.previous, _State.installed = {}, False


class SignalCatcher:
    """A deferred section: stop signals set `caught` instead of raising; checked between units of
    work.  Usable without install() (library callers): the handlers are then installed for the
    section and restored after it."""

    def __init__(self):
        self._installed_here = False

    @property
    def caught(self) -> str | None:
        return _State.caught

    def __enter__(self):
        if not _State.installed:
            install()
            self._installed_here = _State.installed
        if _State.depth == 0:
            _State.caught = None
        _State.depth += 1
        return self

    def __exit__(self, *exc):
        _State.depth -= 1
        if _State.depth == 0:
            _State.caught = None
        if self._installed_here:
            uninstall()
