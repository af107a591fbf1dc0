"""Memory estimates: a run that cannot fit is refused before it allocates (exit 2), instead of dying
in numpy with a traceback or being OOM-killed after hours.

The budget is the memory this process may still use: the smaller of MemAvailable (/proc/meminfo) and
the cgroup limit minus its current usage (containers, Slurm jobs).  QCDHPC_MEMORY_LIMIT (bytes, or
with a K/M/G/T suffix) overrides it, e.g. for tests or to leave room for other jobs on a node.
"""
from __future__ import annotations

import os
from pathlib import Path

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_bytes(text: str) -> int:
    s = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = s[-1:] if s[-1:] in _SUFFIX and s[-1:] else ""
    value = float(s[:-1] if unit else s)
    if not value >= 0:
        raise ValueError(f"not a memory size: {text!r}")
    return int(value * _SUFFIX[unit])


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit == "max" or int(limit) >= 1 << 60:
                continue
            return int(limit) - int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
    return None


def available_bytes() -> int | None:
    """Bytes this process can still allocate (None: unknown, e.g. not Linux)."""
    env = os.environ.get("QCDHPC_MEMORY_LIMIT")
    if env:
        return parse_bytes(env)
    known = [v for v in (_meminfo_available(), _cgroup_room()) if v is not None]
    return min(known) if known else None


def human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"  # pragma: no cover


def check_fits(nbytes: float, what: str, *, fraction: float = 0.9) -> None:
    """Refuse (ValueError) when `nbytes` exceed `fraction` of the available memory."""
    room = available_bytes()
    if room is not None and nbytes > fraction * room:
        raise ValueError(f"{what} needs about {human(nbytes)} of memory, but only {human(room)} is "
                         "available (set QCDHPC_MEMORY_LIMIT to override the estimate)")


def check_disk(path, nbytes: float, what: str) -> None:
    """Refuse when the filesystem of `path` cannot hold `nbytes` more (the output and its segments)."""
    import shutil

    directory = Path(path).resolve().parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return
    if nbytes > free:
        raise ValueError(f"{what} needs about {human(nbytes)} of disk in {directory}, only {human(free)} "
                         "is free")
