"""qcdhpc HDF5 containers, one layout per *kind* (docs/data_formats.md §1).  Knows no physics.

Every file has the root attributes ``format = "qcdhpc"``, ``container`` (the kind below),
``schema_version`` (of that kind), ``theory`` (e.g. "phi4", free-form) and the producer's own
attributes.  What produced the data is recorded under ``/history/<algorithm>`` (``hmc``,
``sampler``, ``langevin``, ...), never as placeholder datasets of another algorithm.

    fields    Markov-chain field ensembles (HMC):
              /configs (n, *site) real or complex   /chain (n,) int64   /traj (n,) int64
              root attribute nchains; /history/hmc/{dH, accepted} (nchains, ntraj_total), attr n_therm
    samples   independent generated samples (a diffusion model, a flow):
              /configs (n, *site); /history/sampler (attributes; optional per-sample datasets of length n)
    walkers   Langevin walkers recorded along their trajectories (complex Langevin):
              /weight (nwalkers, nrecords) float64: the Langevin time step of the update after each
              record (averages are Langevin-time weighted); and what was recorded, at least one of
              /configs (nwalkers, nrecords, *site): the states (one-site models), and
              /observables/<name> (nwalkers, nrecords): per-record measurements, when the states are
              too large to keep (lattice fields; schema 2; root attribute site_shape);
              optional /time (nwalkers, nrecords) float64
    table     one row per item (a TOV star, a reconstruction):
              /columns/<name> (n, ...) each, root attribute columns (ordered names), n_rows

Opening validates the layout: every required dataset is a dataset (not a group), with the length,
shape and dtype the kind and the attributes imply.  A file that fails is refused with a ValueError that
names the file and the fault.  Files of the earlier single layout (``format = "qcdhpc.ensemble"``,
version 1: HMC ensembles and sample files with placeholder ``/hmc`` datasets) are read as ``fields``
or ``samples``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "qcdhpc"
KINDS = ("fields", "samples", "walkers", "table")
SCHEMA_VERSION = {"fields": 2, "samples": 2, "walkers": 2, "table": 1}
LEGACY_FORMAT = "qcdhpc.ensemble"  # format_version 1: before containers had kinds
CHUNK_BYTES = 1 << 20  # ~1 MiB chunks: large enough for throughput, small enough for per-chain reads
REAL = ("float32", "float64")
FIELD_DTYPES = REAL + ("complex64", "complex128")


# ------------------------------------------------------------------ attributes ---

def encode_attr(value):
    """Python value -> something h5py stores as an attribute (dicts as JSON; None is not stored)."""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return json.dumps(list(value))
    return value


def decode_attr(value):
    """h5py attribute -> plain Python (so values compare and serialise to JSON cleanly)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def set_attrs(obj, attrs: dict) -> None:
    for key, value in attrs.items():
        if value is not None:
            obj.attrs[key] = encode_attr(value)


def read_attrs(obj) -> dict:
    return {key: decode_attr(value) for key, value in obj.attrs.items()}


# ---------------------------------------------------------------------- writing ---

def _root(f, kind: str, theory: str | None, attrs: dict) -> None:
    set_attrs(f, {"format": FORMAT, "container": kind, "schema_version": SCHEMA_VERSION[kind],
                  "theory": theory, **attrs})


def _chunked(f, name: str, shape, dtype, lead: int) -> None:
    """A dataset chunked in blocks of whole items along its first `lead` axes (~CHUNK_BYTES)."""
    dtype = np.dtype(dtype)
    per_item = dtype.itemsize * int(np.prod(shape[lead:], dtype=np.int64))
    rows = max(1, min(shape[lead - 1] if shape[lead - 1] else 1, CHUNK_BYTES // max(per_item, 1)))
    chunks = (*([1] * (lead - 1)), rows, *shape[lead:]) if all(shape) else None
    f.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks)


def create_fields(f, *, n: int, site_shape, dtype, nchains: int, theory: str, attrs: dict) -> None:
    """Fixed-size datasets of a Markov-chain ensemble of n configurations (rows trajectory-major,
    chain-minor) in the open file `f`.  The algorithm's history is added with create_history."""
    dtype = _field_dtype(dtype)
    site = tuple(int(s) for s in site_shape)
    _chunked(f, "configs", (int(n), *site), dtype, lead=1)
    f.create_dataset("chain", shape=(int(n),), dtype=np.int64)
    f.create_dataset("traj", shape=(int(n),), dtype=np.int64)
    _root(f, "fields", theory, {**attrs, "nchains": int(nchains)})


def create_samples(f, *, n: int, site_shape, dtype, theory: str | None, attrs: dict) -> None:
    """Dataset of n independent generated configurations; the sampler's record: create_history."""
    dtype = _field_dtype(dtype)
    _chunked(f, "configs", (int(n), *(int(s) for s in site_shape)), dtype, lead=1)
    _root(f, "samples", theory, attrs)


def create_walkers(f, *, nwalkers: int, nrecords: int, site_shape, dtype, theory: str, attrs: dict,
                   timed: bool = False, observables: dict | None = None, states: bool = True) -> None:
    """Datasets of nwalkers Langevin walkers recorded nrecords times each: /weight, /configs (the states;
    not when `states` is False), /observables/<name> for {name: dtype} in `observables`, and /time when
    `timed`."""
    shape = (int(nwalkers), int(nrecords), *(int(s) for s in site_shape))
    if not states and not observables:
        raise ValueError("a walkers container records the states, observables, or both")
    if states:
        _chunked(f, "configs", shape, _field_dtype(dtype), lead=2)
    f.create_dataset("weight", shape=shape[:2], dtype=np.float64)
    if observables:
        g = f.create_group("observables")
        for name, odt in observables.items():
            g.create_dataset(name, shape=shape[:2], dtype=np.dtype(odt))
    if timed:
        f.create_dataset("time", shape=shape[:2], dtype=np.float64)
    _root(f, "walkers", theory, {**attrs, "site_shape": [int(s) for s in site_shape]})


def create_table(f, *, columns: dict, n_rows: int, theory: str | None, attrs: dict) -> None:
    """Columns {name: dtype or (dtype, trailing shape)} of a table with n_rows rows."""
    g = f.create_group("columns")
    for name, spec in columns.items():
        dtype, trailing = (spec, ()) if not isinstance(spec, tuple) else spec
        g.create_dataset(name, shape=(int(n_rows), *trailing), dtype=np.dtype(dtype))
    _root(f, "table", theory, {**attrs, "columns": list(columns), "n_rows": int(n_rows)})


def create_history(f, algorithm: str, datasets: dict | None = None, attrs: dict | None = None):
    """/history/<algorithm>: datasets {name: (shape, dtype)} (filled by the caller) and attributes."""
    g = f.require_group("history").create_group(algorithm)
    for name, (shape, dtype) in (datasets or {}).items():
        g.create_dataset(name, shape=tuple(int(s) for s in shape), dtype=np.dtype(dtype))
    set_attrs(g, attrs or {})
    return g


def write_rows(f, start: int, configs, chain=None, traj=None) -> None:
    """Write a contiguous block of configurations (and, for fields, their chain/trajectory) at row
    `start`."""
    stop = start + len(configs)
    f["configs"][start:stop] = configs
    if chain is not None:
        f["chain"][start:stop] = chain
        f["traj"][start:stop] = traj


def _field_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.name not in FIELD_DTYPES:
        raise ValueError(f"configuration dtype must be one of {', '.join(FIELD_DTYPES)}, got {dtype}")
    return dtype


# ---------------------------------------------------------------------- reading ---

class History:
    """One algorithm's record: attributes, and datasets read on first access (`h["dH"]`)."""

    def __init__(self, group):
        self._g = group
        self.attrs = read_attrs(group)
        self.names = sorted(k for k in group.keys())

    def __contains__(self, name) -> bool:
        return name in self.names

    def __getitem__(self, name) -> np.ndarray:
        return self._g[name][()]

    def shape(self, name) -> tuple:
        return tuple(self._g[name].shape)


class Container:
    """Read access to a qcdhpc HDF5 file of any kind.  Use as a context manager, or call close().

    kind, attrs (plain dict), theory; `configs` is the h5py dataset (read lazily, e.g. c.configs[i:j])
    for fields / samples / walkers; `chain`, `traj` numpy arrays for fields (samples: one replica in
    sampling order, chain 0 and traj = row); `history` {algorithm: History}; `columns` for tables.
    """

    def __init__(self, path, kinds=None):
        import h5py

        self.path = Path(path)
        try:
            self._f = h5py.File(self.path, "r")
        except (OSError, ValueError) as exc:  # h5py raises OSError for missing, truncated, non-HDF5
            raise ValueError(f"{self.path}: cannot open as an HDF5 qcdhpc file ({_short(exc)})") from None
        try:
            self.attrs = read_attrs(self._f)
            self._identify()
            if kinds is not None and self.kind not in kinds:
                raise ValueError(f"{self.path}: holds {self.kind!r} data, this needs "
                                 f"{' or '.join(repr(k) for k in kinds)}")
            self._validate()
        except OSError as exc:  # a damaged dataset or attribute inside an openable file
            self._f.close()
            raise ValueError(f"{self.path}: corrupt file ({_short(exc)})") from None
        except BaseException:
            self._f.close()
            raise

    # -- identification ---------------------------------------------------------------------
    def _identify(self) -> None:
        fmt = self.attrs.get("format")
        self.legacy = fmt == LEGACY_FORMAT
        if self.legacy:
            version = self.attrs.get("format_version")
            if version != 1:
                raise ValueError(f"{self.path}: {LEGACY_FORMAT} format_version {version!r} is not supported")
            self.kind = "samples" if str(self.attrs.get("kind", "")).endswith("-samples") else "fields"
            self.schema_version = 1
            self.theory = "phi4"
            return
        if fmt != FORMAT:
            raise ValueError(f"{self.path}: not a qcdhpc file (format attribute is {fmt!r})")
        self.kind = self.attrs.get("container")
        if self.kind not in KINDS:
            raise ValueError(f"{self.path}: unknown container kind {self.kind!r} (known: {', '.join(KINDS)})")
        self.schema_version = self.attrs.get("schema_version")
        if not isinstance(self.schema_version, int) or not 1 <= self.schema_version <= SCHEMA_VERSION[self.kind]:
            raise ValueError(f"{self.path}: {self.kind} schema_version {self.schema_version!r} is not "
                             f"supported (this qcdhpc reads 1..{SCHEMA_VERSION[self.kind]})")
        self.theory = self.attrs.get("theory")

    # -- validation -----------------------------------------------------------------------
    def _dataset(self, name: str, *, ndim_min: int = 1, dtypes=None):
        import h5py

        if name not in self._f:
            raise ValueError(f"{self.path}: corrupt {self.kind} file, missing /{name}")
        d = self._f[name]
        if not isinstance(d, h5py.Dataset):
            raise ValueError(f"{self.path}: corrupt {self.kind} file, /{name} is a group, not a dataset")
        if d.ndim < ndim_min:
            raise ValueError(f"{self.path}: /{name} has shape {d.shape}, needs at least {ndim_min} axes")
        if dtypes is not None and d.dtype.name not in dtypes:
            raise ValueError(f"{self.path}: /{name} has dtype {d.dtype}, expected {' or '.join(dtypes)}")
        return d

    def _expect_shape(self, name: str, d, shape) -> None:
        if tuple(d.shape) != tuple(shape):
            raise ValueError(f"{self.path}: /{name} has shape {tuple(d.shape)}, expected {tuple(shape)} "
                             f"from the other datasets and attributes")

    def _validate(self) -> None:
        self.history: dict = {}
        self.columns: dict = {}
        if self.kind == "table":
            return self._validate_table()
        self.observables: dict = {}
        if self.kind == "walkers" and "configs" not in self._f and "observables" in self._f:
            self.configs = None  # observables only (schema 2)
            return self._validate_walkers()
        self.configs = self._dataset("configs", ndim_min=2,
                                     dtypes=FIELD_DTYPES)
        n = self.configs.shape[0]
        declared = self.attrs.get("dtype")
        if declared is not None and declared != self.configs.dtype.name:
            raise ValueError(f"{self.path}: /configs has dtype {self.configs.dtype}, the dtype "
                             f"attribute says {declared}")
        L = self.attrs.get("L")
        site = tuple(self.configs.shape[2:] if self.kind == "walkers" else self.configs.shape[1:])
        if isinstance(L, list) and tuple(L) != site:
            raise ValueError(f"{self.path}: /configs holds sites of shape {site}, attribute L says {tuple(L)}")
        if self.kind == "fields":
            self._validate_fields(n)
        elif self.kind == "samples":
            self.chain = np.zeros(n, dtype=np.int64)
            self.traj = np.arange(n, dtype=np.int64)
            self._read_histories(per_item=n)
        else:
            self._validate_walkers()

    def _validate_fields(self, n: int) -> None:
        for name in ("chain", "traj"):
            self._expect_shape(name, self._dataset(name, dtypes=("int64", "int32")), (n,))
        self.chain = self._f["chain"][()].astype(np.int64)
        self.traj = self._f["traj"][()].astype(np.int64)
        nchains = self.attrs.get("nchains")
        if isinstance(nchains, int):
            if n and (self.chain.min() < 0 or self.chain.max() >= nchains):
                raise ValueError(f"{self.path}: /chain has entries outside 0..{nchains - 1}")
            nsave = self.attrs.get("nsave")
            if isinstance(nsave, int) and n != nchains * nsave:
                raise ValueError(f"{self.path}: {n} configurations, attributes say nchains × nsave = "
                                 f"{nchains} × {nsave}")
        if n and np.any(self.traj < 0):
            raise ValueError(f"{self.path}: /traj has negative entries")
        if self.legacy:
            self._read_legacy_hmc(nchains)
        else:
            self._read_histories(per_item=None)
        hmc = self.history.get("hmc")
        if hmc is not None:
            for name, dtype in (("dH", ("float64", "float32")), ("accepted", ("uint8", "bool"))):
                if name not in hmc:
                    raise ValueError(f"{self.path}: corrupt fields file, missing /history/hmc/{name}")
                d = hmc._g[name]
                if d.ndim != 2 or d.dtype.name not in dtype:
                    raise ValueError(f"{self.path}: /history/hmc/{name} must be 2-D {' or '.join(dtype)}, "
                                     f"got {d.shape} {d.dtype}")
            if hmc.shape("dH") != hmc.shape("accepted"):
                raise ValueError(f"{self.path}: /history/hmc/dH and accepted differ in shape")
            if isinstance(nchains, int) and hmc.shape("dH")[0] != nchains:
                raise ValueError(f"{self.path}: /history/hmc/dH has {hmc.shape('dH')[0]} chains, "
                                 f"attribute nchains is {nchains}")
            ntraj = hmc.shape("dH")[1]
            if n and self.traj.max() >= ntraj:
                raise ValueError(f"{self.path}: /traj refers to trajectory {int(self.traj.max())}, "
                                 f"the history has {ntraj}")
            n_therm = hmc.attrs.get("n_therm", 0)
            if not isinstance(n_therm, int) or not 0 <= n_therm <= ntraj:
                raise ValueError(f"{self.path}: /history/hmc n_therm {n_therm!r} outside 0..{ntraj}")

    def _read_legacy_hmc(self, nchains) -> None:
        import h5py

        g = self._f.get("hmc")
        if self.attrs.get("hmc_history") == "none" or g is None:
            return
        if not isinstance(g, h5py.Group):
            raise ValueError(f"{self.path}: corrupt ensemble file, /hmc is not a group")
        self.history["hmc"] = History(g)

    def _read_histories(self, per_item: int | None) -> None:
        import h5py

        root = self._f.get("history")
        if root is None:
            return
        if not isinstance(root, h5py.Group):
            raise ValueError(f"{self.path}: /history is not a group")
        for name, g in root.items():
            if not isinstance(g, h5py.Group):
                raise ValueError(f"{self.path}: /history/{name} is not a group")
            h = History(g)
            if per_item is not None:  # samples: per-sample records have one entry per sample
                for k in h.names:
                    if not isinstance(g[k], h5py.Dataset) or g[k].shape[:1] != (per_item,):
                        raise ValueError(f"{self.path}: /history/{name}/{k} must have {per_item} rows")
            self.history[name] = h

    def _validate_walkers(self) -> None:
        import h5py

        self.weight = self._dataset("weight", dtypes=("float64",))
        if self.weight.ndim != 2:
            raise ValueError(f"{self.path}: /weight has shape {self.weight.shape}, expected (nwalkers, nrecords)")
        shape = self.weight.shape
        if self.configs is not None:
            self._expect_shape("weight", self.weight, self.configs.shape[:2])
        g = self._f.get("observables")
        if g is not None:
            if not isinstance(g, h5py.Group):
                raise ValueError(f"{self.path}: /observables is not a group")
            for name in g:
                d = self._dataset(f"observables/{name}")
                self._expect_shape(f"observables/{name}", d, shape)
                self.observables[name] = d
        if "time" in self._f:
            self._expect_shape("time", self._dataset("time", dtypes=("float64",)), shape)
        self._read_histories(per_item=None)

    def _validate_table(self) -> None:
        import h5py

        names = self.attrs.get("columns")
        if isinstance(names, str):
            names = json.loads(names)
        n_rows = self.attrs.get("n_rows")
        g = self._f.get("columns")
        if not isinstance(g, h5py.Group) or not isinstance(names, list) or not isinstance(n_rows, int):
            raise ValueError(f"{self.path}: corrupt table file (needs /columns, attributes columns and n_rows)")
        for name in names:
            d = self._dataset(f"columns/{name}")
            if d.shape[:1] != (n_rows,):
                raise ValueError(f"{self.path}: /columns/{name} has {d.shape[0]} rows, n_rows is {n_rows}")
            self.columns[name] = d
        self._read_histories(per_item=None)

    # -- access -----------------------------------------------------------------------------
    def __len__(self) -> int:
        if self.kind == "table":
            return int(self.attrs["n_rows"])
        if self.configs is None:
            return self.weight.shape[0]
        return self.configs.shape[0]

    @property
    def nrecords(self) -> int:
        """Records per walker (walkers containers)."""
        return int(self.weight.shape[1])

    @property
    def site_shape(self) -> tuple:
        if self.configs is None:
            return tuple(self.attrs.get("site_shape") or ())
        return tuple(self.configs.shape[2:] if self.kind == "walkers" else self.configs.shape[1:])

    def iter_chunks(self, rows: int | None = None):
        """Yield (start, configs[start:start+rows]) blocks in file order, bounded memory."""
        rows = rows or max(1, self.configs.chunks[0] if self.configs.chunks else 256)
        for start in range(0, len(self), rows):
            yield start, self.configs[start:start + rows]

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _short(exc) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def open_container(path, kinds=None) -> Container:
    """Open and validate a qcdhpc HDF5 file; `kinds` restricts the accepted kinds."""
    return Container(path, kinds)


def is_ours(path) -> bool:
    """Whether `path` is a qcdhpc HDF5 file (of any kind and version): what --overwrite may replace."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return decode_attr(f.attrs.get("format")) in (FORMAT, LEGACY_FORMAT)
    except (OSError, ValueError):
        return False
