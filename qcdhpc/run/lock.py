"""One writer per run directory (OUT.partial): an exclusive, non-blocking fcntl.flock.

Two `--resume` runs of one --out would otherwise write into the same segment store.  The lock file
lives inside OUT.partial (``.lock``, holding the owner's pid and host); the kernel releases the lock
when its holder dies, so a SIGKILLed run never leaves a stale lock.  Because the finished run removes
OUT.partial, a waiter could lock a file that was just unlinked: after locking we check that the path
still names the locked file and retry otherwise.  Under MPI only rank 0 holds the lock, for all ranks.
"""
from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

LOCK_NAME = ".lock"


class RunLocked(ValueError):
    """Another process holds the run directory (a refusal: exit 2)."""


class RunLock:
    def __init__(self, partial_dir):
        self.dir = Path(partial_dir)
        self.path = self.dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        for _ in range(10):
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunLocked(f"{self.dir} is in use by another qcdhpc process ({owner}); wait for it "
                                "to finish or stop it first") from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
                self._fd = fd
                return self
            os.close(fd)  # the directory was removed and recreated under us: lock the new one
        raise RunLocked(f"{self.dir}: could not lock (the directory keeps changing)")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
