"""io: atomic writes never leave a partial file; ensemble container round trip; clear errors."""
import h5py
import numpy as np
import pytest

from qcdhpc.io.atomic import atomic_h5, atomic_write_text, is_temp
from qcdhpc.io.containers import create_fields, create_history, open_container, write_rows
from qcdhpc.run import segments as ckpt


def test_atomic_h5_success_and_failure(tmp_path):
    out = tmp_path / "a.h5"
    with atomic_h5(out) as f:
        f["x"] = np.arange(3)
        assert not out.exists()  # nothing at the final path while writing
    with h5py.File(out) as f:
        assert f["x"][()].tolist() == [0, 1, 2]
    with pytest.raises(RuntimeError):
        with atomic_h5(out) as f:
            f["y"] = np.arange(5)
            raise RuntimeError("killed while writing")
    with h5py.File(out) as f:  # old file untouched, temporary removed
        assert "y" not in f
    assert [p.name for p in tmp_path.iterdir()] == ["a.h5"]


def test_atomic_write_creates_missing_directories(tmp_path):
    out = tmp_path / "results" / "diffusion" / "table.json"  # neither directory exists yet
    atomic_write_text(out, "{}\n")
    assert out.read_text() == "{}\n"
    assert [p.name for p in out.parent.iterdir()] == ["table.json"]


def _small_ensemble(path, n=6, nchains=2):
    with atomic_h5(path) as f:
        create_fields(f, n=n, site_shape=(4, 4), dtype="float32", nchains=nchains, theory="test",
                      attrs={"L": [4, 4], "meta": {"a": 1}, "skip": None})
        write_rows(f, 0, np.ones((n, 4, 4), np.float32), np.arange(n) % nchains, np.arange(n) // nchains)
        h = create_history(f, "hmc", {"dH": ((nchains, 5), np.float64), "accepted": ((nchains, 5), np.uint8)},
                           {"n_therm": 2})
        h["dH"][:] = 0.5
        h["accepted"][:] = 1


def test_ensemble_round_trip(tmp_path):
    path = tmp_path / "e.h5"
    _small_ensemble(path)
    with open_container(path) as ens:
        assert len(ens) == 6 and ens.configs.dtype == np.float32 and ens.kind == "fields"
        assert ens.attrs["format"] == "qcdhpc" and ens.schema_version == 2 and ens.theory == "test"
        assert ens.attrs["L"] == [4, 4] and ens.attrs["meta"] == '{"a": 1}' and "skip" not in ens.attrs
        assert ens.chain.tolist() == [0, 1, 0, 1, 0, 1]
        h = ens.history["hmc"]
        assert h.attrs["n_therm"] == 2 and h["dH"].shape == (2, 5) and h["accepted"].dtype == np.uint8
        assert sum(len(b) for _, b in ens.iter_chunks(4)) == 6


def test_foreign_and_corrupt_files_give_clear_errors(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(ValueError, match="foreign.h5: not a qcdhpc file"):
        open_container(foreign)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"this is not HDF5 at all" * 100)
    with pytest.raises(ValueError, match="garbage.h5: cannot open as an HDF5 qcdhpc file"):
        open_container(garbage)
    good = tmp_path / "good.h5"
    _small_ensemble(good)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ValueError, match="truncated.h5"):
        open_container(truncated)
    with pytest.raises(ValueError, match="missing.h5"):
        open_container(tmp_path / "missing.h5")


def test_segment_store(tmp_path):
    root = ckpt.partial_dir(tmp_path / "out.h5")
    assert root.name == "out.h5.partial"
    ckpt.write_manifest(root, {"params": {"x": 1}})
    assert ckpt.read_manifest(root) == {"params": {"x": 1}}
    store = ckpt.SegmentStore(root, rank=3)
    assert store.dir.name == "rank0003" and store.last() is None
    for k in range(3):
        store.write(k, {"configs": np.full((2, 4, 4), k), "state/phi": np.zeros((1, 4, 4))},
                    {"traj_end": 10 * (k + 1), "params": {"x": 1}})
    (store.dir / ".seg000003.h5.tmp-1-abc").write_bytes(b"half written")  # left by a SIGKILL
    assert is_temp(store.dir / ".seg000003.h5.tmp-1-abc")
    assert store.indices() == [0, 1, 2]
    arrays, attrs = store.read(2)
    assert arrays["configs"][0, 0, 0] == 2 and arrays["state/phi"].shape == (1, 4, 4)
    assert attrs["traj_end"] == 30 and attrs["format"] == ckpt.SEGMENT_FORMAT
    store.discard_after(0)
    assert store.indices() == [0]
