"""Checkpoint segments: the on-disk state of a run in progress.

While a run producing OUT.h5 is in progress, OUT.h5 does not exist; its work lives in

    OUT.h5.partial/run.json               the run's parameters (written once, before any segment)
    OUT.h5.partial/rank{r:04d}/seg{k:06d}.h5

Each segment is written atomically (io.atomic) and is self-contained: the arrays produced since the
previous segment plus whatever state the caller needs to continue from its end.  Segments are
therefore either complete or absent, and the newest segment of a rank is always a valid restart point.
What the arrays mean is up to the caller; this module only stores, lists, reads and prunes them.
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_h5, atomic_write_text, is_temp
from ..io.containers import read_attrs, set_attrs

SEGMENT_FORMAT = "qcdhpc.segment"
_SEG_RE = re.compile(r"^seg(\d{6})\.h5$")


def partial_dir(out) -> Path:
    """Directory holding the segments of a run whose final output is `out`."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def write_manifest(root, info: dict) -> None:
    Path(root).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(root) / "run.json", json.dumps(info, indent=1, sort_keys=True) + "\n")


def read_manifest(root) -> dict | None:
    path = Path(root) / "run.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt run manifest ({exc})") from None


class SegmentStore:
    """The segments of one rank."""

    def __init__(self, root, rank: int):
        self.root = Path(root)
        self.rank = rank
        self.dir = self.root / f"rank{rank:04d}"

    def path(self, k: int) -> Path:
        return self.dir / f"seg{k:06d}.h5"

    def indices(self) -> list[int]:
        """Indices of the complete segments, ascending (temporaries of a killed write are ignored)."""
        if not self.dir.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.dir.iterdir()
                      if not is_temp(p) and (m := _SEG_RE.match(p.name)))

    def last(self) -> int | None:
        idx = self.indices()
        return idx[-1] if idx else None

    def write(self, k: int, arrays: dict, attrs: dict) -> Path:
        """Atomically write segment k holding `arrays` (name -> array; "a/b" makes groups) and `attrs`."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.path(k)
        with atomic_h5(path) as f:
            for name, array in arrays.items():
                f.create_dataset(name, data=np.asarray(array))
            set_attrs(f, {"format": SEGMENT_FORMAT, "segment": k, "rank": self.rank, **attrs})
        return path

    def read(self, k: int) -> tuple[dict, dict]:
        """(arrays, attrs) of segment k, fully loaded (a segment is bounded in size by construction)."""
        import h5py

        path = self.path(k)
        arrays: dict = {}
        try:
            with h5py.File(path, "r") as f:
                attrs = read_attrs(f)
                f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                             if isinstance(obj, h5py.Dataset) else None)
        except OSError as exc:
            raise ValueError(f"{path}: cannot read checkpoint segment ({exc})") from None
        if attrs.get("format") != SEGMENT_FORMAT:
            raise ValueError(f"{path}: not a {SEGMENT_FORMAT} file")
        return arrays, attrs

    def read_attrs(self, k: int) -> dict:
        import h5py

        with h5py.File(self.path(k), "r") as f:
            return read_attrs(f)

    def discard_after(self, k: int | None) -> None:
        """Delete the segments after k (all of them if k is None): used to realign ranks on resume."""
        for j in self.indices():
            if k is None or j > k:
                self.path(j).unlink()


def ranks_present(root) -> list[int]:
    """Ranks with a segment directory under `root`."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(int(p.name[4:]) for p in root.iterdir()
                  if p.is_dir() and p.name.startswith("rank") and p.name[4:].isdigit())


def has_segments(root) -> bool:
    return any(SegmentStore(root, r).indices() for r in ranks_present(root))


def is_empty(root) -> bool:
    """Nothing worth keeping in `root`: no manifest and no segment (a run killed before its first
    write leaves only the lock and temporaries)."""
    return not (Path(root) / "run.json").exists() and not has_segments(root)


def clear(root) -> None:
    """Remove the manifest and every segment from `root` (not its lock)."""
    root = Path(root)
    with contextlib.suppress(FileNotFoundError):
        (root / "run.json").unlink()
    for r in ranks_present(root):
        shutil.rmtree(SegmentStore(root, r).dir)


def remove_partial(root) -> None:
    shutil.rmtree(root, ignore_errors=False)
