"""Atomic file creation: a reader sees either no file or a complete one, never a partial one.

The file is written under a hidden temporary name in the *same directory* (os.replace is atomic only
within one filesystem), flushed and fsync'ed, then renamed over the final path; the directory is fsync'ed
so the rename itself survives a crash.  On any exception the temporary file is removed.  A process
killed with SIGKILL can leave a `.NAME.tmp-*` file behind, but never a file at the final path.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


def temp_path(path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def is_temp(path) -> bool:
    """Whether `path` is a leftover temporary of `atomic_*` (to be ignored or cleaned up)."""
    name = Path(path).name
    return name.startswith(".") and ".tmp-" in name


def fsync_path(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path) -> None:
    # Some filesystems refuse fsync on a directory; the rename is still atomic there.
    with contextlib.suppress(OSError):
        fsync_path(path)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path to write; on success it is fsync'ed and renamed to `path`.  A missing
    parent directory is created (as `--out results/x/y.json` on the command line implies), so the
    result of a long computation is not lost to a directory that did not exist yet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_h5(path, **kwargs):
    """Yield an open, writable h5py.File that appears at `path` only once complete and closed."""
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", **kwargs) as f:
            yield f
        # closing the file (above) flushes HDF5's own buffers before atomic_path fsyncs and renames


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
