"""Output paths that cannot destroy inputs: the checks every verb runs before any work.

An output is refused (ValueError, the CLI's exit 2) when it
  * resolves to one of the command's inputs (``measure X.h5 --out X.h5``), also through links;
  * is an existing directory, device node, FIFO or socket (only regular files are ever replaced);
  * exists and is not one of our own kinds while the verb would replace it (``--overwrite`` replaces
    qcdhpc HDF5 files, JSON results we wrote, model files — never a user's other files);
  * lies in a directory that cannot be created or written (probed with a temporary file), so a long
    computation does not end in a write error that loses its result.
Results are always written to a temporary next to the target and renamed (io/atomic.py).
"""
from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_writable_dir(directory: Path, what: str) -> None:
    """The directory exists or can be created, and files can be created in it.  Probed with a
    temporary file in the directory, or in its nearest existing ancestor when it does not exist yet
    (nothing is created on a refusal: the directories are made when the result is written)."""
    directory = Path(directory)
    probe_in = directory
    while not probe_in.exists() and probe_in != probe_in.parent:
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise ValueError(f"{what}: {probe_in} is not a directory, so {directory} cannot be created")
    probe = probe_in / f".qcdhpc-write-probe-{os.getpid()}"
    try:
        with open(probe, "wb"):
            pass
    except OSError as exc:
        raise ValueError(f"{what}: cannot write in {probe_in} ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def check_output(out, *, inputs=(), replace: bool = True, is_ours=None, what: str = "--out",
                 overwrite_flag: str | None = None) -> Path:
    """Validate an output file path; returns it as a Path.

    inputs: paths the command reads (the output must be none of them, nor inside one's .partial);
    replace: whether an existing regular file may be replaced (False: refuse, naming overwrite_flag);
    is_ours: predicate on an existing file — True when it is of a kind the verb may replace.
    """
    out = Path(out)
    if str(out) == "" or out.name in ("", ".", ".."):
        raise ValueError(f"{what}: {str(out)!r} is not a file name")
    for src in inputs:
        src = Path(src)
        if src.exists() and out.exists() and _same(out, src) or out.resolve() == src.resolve():
            raise ValueError(f"{what} {out} is also an input of this command; choose another output path")
    if os.path.lexists(out):
        try:
            st = os.stat(out)
        except OSError:  # a dangling link: replacing the link is not what the user meant
            raise ValueError(f"{what} {out} is a broken symbolic link") from None
        if stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{what} {out} is a directory; give a file path")
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{what} {out} exists and is not a regular file (device, FIFO or socket); "
                             "it is never replaced")
        if not replace:
            hint = f"; pass {overwrite_flag} to replace it" if overwrite_flag else ""
            raise ValueError(f"{out} exists{hint}")
        if is_ours is not None and not is_ours(out):
            raise ValueError(f"{what} {out} exists and is not a file qcdhpc wrote; it is not replaced "
                             "(move it away or choose another path)")
    check_writable_dir(out.parent if str(out.parent) else Path("."), what)
    return out


def is_qcdhpc_json(path) -> bool:
    """A JSON result qcdhpc wrote (measure, toy tables, ...): an object whose "format" starts with
    "qcdhpc" (read from the head of the file), or an older measure result ("observables"/"ensembles")."""
    import json
    import re

    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if re.match(rb'\s*\{\s*"format"\s*:\s*"qcdhpc', head):
        return True
    try:
        if os.path.getsize(path) > (64 << 20):
            return False
        with open(path, "rb") as f:
            obj = json.loads(f.read())
    except (OSError, ValueError):
        return False
    return isinstance(obj, dict) and (str(obj.get("format", "")).startswith("qcdhpc")
                                      or "observables" in obj or "ensembles" in obj)
