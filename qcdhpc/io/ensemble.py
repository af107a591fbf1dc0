"""The qcdhpc HDF5 ensemble container (format documented in docs/data_formats.md).

Generic: a stack of configurations with the chain and trajectory each came from, the per-trajectory
Monte Carlo history (ΔH, accept flag) of every chain, and free-form root attributes supplied by the
caller (the physics module decides what they mean).

    /configs        (n, *site_shape)   run dtype, trajectory-major then chain (canonical order)
    /chain          (n,) int64         global chain index of each configuration
    /traj           (n,) int64         0-based trajectory that produced it
    /hmc/dH         (nchains, ntraj_total) float64   every trajectory, thermalisation included
    /hmc/accepted   (nchains, ntraj_total) uint8     attribute n_therm = leading thermalisation columns
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "qcdhpc.ensemble"
FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 20  # ~1 MiB chunks: large enough for throughput, small enough for per-chain reads


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


def create_ensemble(f, *, n: int, site_shape, dtype, nchains: int, ntraj_total: int, n_therm: int,
                    attrs: dict) -> None:
    """Create the (fixed-size) datasets of an ensemble of `n` configurations in the open file `f`."""
    dtype = np.dtype(dtype)
    site_shape = tuple(int(s) for s in site_shape)
    per_config = dtype.itemsize * int(np.prod(site_shape))
    rows = max(1, min(n, CHUNK_BYTES // per_config))
    f.create_dataset("configs", shape=(n, *site_shape), dtype=dtype, chunks=(rows, *site_shape))
    f.create_dataset("chain", shape=(n,), dtype=np.int64)
    f.create_dataset("traj", shape=(n,), dtype=np.int64)
    hmc = f.create_group("hmc")
    hmc.create_dataset("dH", shape=(nchains, ntraj_total), dtype=np.float64)
    hmc.create_dataset("accepted", shape=(nchains, ntraj_total), dtype=np.uint8)
    hmc.attrs["n_therm"] = int(n_therm)
    set_attrs(f, {"format": FORMAT, "format_version": FORMAT_VERSION, **attrs})


def write_configs(f, start: int, configs, chain, traj) -> None:
    """Write a contiguous block of configurations at rows start .. start+len(configs)."""
    stop = start + len(configs)
    f["configs"][start:stop] = configs
    f["chain"][start:stop] = chain
    f["traj"][start:stop] = traj


def write_history(f, chain_begin: int, traj_begin: int, dH, accepted) -> None:
    """Write the ΔH / accept history of chains chain_begin.. for trajectories traj_begin.. ."""
    dH = np.asarray(dH)
    c, t = dH.shape
    f["hmc/dH"][chain_begin:chain_begin + c, traj_begin:traj_begin + t] = dH
    f["hmc/accepted"][chain_begin:chain_begin + c, traj_begin:traj_begin + t] = accepted


class Ensemble:
    """Read access to an ensemble file.  Use as a context manager, or call close().

    configs is the h5py dataset (read lazily, e.g. ens.configs[i:j]); chain, traj, dH, accepted are
    numpy arrays (small: one number per configuration or per trajectory); attrs is a plain dict.
    Sample files (attribute kind ending in "-samples") may lack /chain (then arange(n): independent
    samples), /traj (row order) and /hmc (then dH and accepted are None).
    """

    def __init__(self, path):
        import h5py

        self.path = Path(path)
        try:
            self._f = h5py.File(self.path, "r")
        except (OSError, ValueError) as exc:  # h5py raises OSError for missing, truncated, non-HDF5
            raise ValueError(f"{self.path}: cannot open as an HDF5 ensemble file ({exc})") from None
        try:
            self.attrs = read_attrs(self._f)
            fmt = self.attrs.get("format")
            if fmt != FORMAT:
                raise ValueError(f"{self.path}: not a {FORMAT} file (format attribute is {fmt!r})")
            version = self.attrs.get("format_version")
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise ValueError(f"{self.path}: format_version {version!r} is not supported "
                                 f"(this qcdhpc reads <= {FORMAT_VERSION})")
            # Sample files (kind "...-samples", e.g. from a generative model) need only /configs: they
            # have no Monte Carlo history, and without /chain every sample is its own chain.
            samples = str(self.attrs.get("kind", "")).endswith("-samples")
            required = ("configs",) if samples else ("configs", "chain", "traj", "hmc/dH", "hmc/accepted")
            missing = [k for k in required if k not in self._f]
            if missing:
                raise ValueError(f"{self.path}: corrupt ensemble file, missing {', '.join(missing)}")
            self.configs = self._f["configs"]
            n = self.configs.shape[0]
            self.chain = self._f["chain"][()] if "chain" in self._f else np.arange(n, dtype=np.int64)
            self.traj = self._f["traj"][()] if "traj" in self._f else np.arange(n, dtype=np.int64)
            has_history = "hmc/dH" in self._f and "hmc/accepted" in self._f
            self.dH = self._f["hmc/dH"][()] if has_history else None          # None: no MC history
            self.accepted = self._f["hmc/accepted"][()] if has_history else None
            self.n_therm = int(self._f["hmc"].attrs.get("n_therm", 0)) if has_history else 0
        except OSError as exc:  # a damaged dataset or attribute inside an openable file
            self._f.close()
            raise ValueError(f"{self.path}: corrupt ensemble file ({exc})") from None
        except BaseException:
            self._f.close()
            raise

    def __len__(self) -> int:
        return self.configs.shape[0]

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


def open_ensemble(path) -> Ensemble:
    return Ensemble(path)
