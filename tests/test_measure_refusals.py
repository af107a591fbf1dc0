"""`qcdhpc measure` and `qcdhpc report` refuse what would destroy an input, fail after the work, or
cannot be read: exit 2, one line `qcdhpc CMD: error: ...`, no traceback, inputs byte for byte unchanged,
nothing written (and an earlier result kept)."""
import gzip
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from qcdhpc.io.atomic import atomic_h5
from qcdhpc.io.containers import create_fields, create_history, write_rows

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
ENV.pop("QCDHPC_MEMORY_LIMIT", None)


def qcdhpc(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "qcdhpc", *map(str, args)], env={**ENV, **(env or {})},
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(directory) -> dict:
    """{relative path: sha256} of every file under `directory` (what a refusal must leave alone)."""
    directory = Path(directory)
    return {str(p.relative_to(directory)): sha(p) for p in sorted(directory.rglob("*")) if p.is_file()}


def assert_refused(r, *reasons):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "error:" in r.stderr and "Traceback" not in r.stderr, r.stderr
    for reason in reasons:
        assert reason in r.stderr, r.stderr


def write_fields(path, nchains=2, nsave=10, L=4, seed=0):
    rng = np.random.default_rng(seed)
    n = nchains * nsave
    with atomic_h5(path) as f:
        create_fields(f, n=n, site_shape=(L, L), dtype="float64", nchains=nchains, theory="phi4",
                      attrs={"kappa": 0.2, "lam": 0.02, "L": [L, L], "nsave": nsave})
        write_rows(f, 0, rng.standard_normal((n, L, L)), np.tile(np.arange(nchains), nsave),
                   np.repeat(np.arange(nsave), nchains))
        g = create_history(f, "hmc", {"dH": ((nchains, nsave), "float64"), "accepted": ((nchains, nsave), "uint8")},
                           {"n_therm": 0})
        g["dH"][...] = rng.normal(0.05, math.sqrt(0.1), (nchains, nsave))
        g["accepted"][...] = 1
    return path


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """An ensemble X.h5, a user's notes.txt, an earlier result obs.json (+ its pyerrors file), and a
    point directory P measured by `qcdhpc measure` (measured once, copied for each test)."""
    d = tmp_path_factory.mktemp("measured")
    write_fields(d / "X.h5")
    (d / "notes.txt").write_text("not a qcdhpc file\n")
    r = qcdhpc("measure", d / "X.h5", "--out", d / "obs.json", "--quiet")
    assert r.returncode == 0, r.stderr
    p = d / "P"
    p.mkdir()
    for name, seed in (("hmc_train", 1), ("hmc_test", 2), ("dm_samples", 3)):
        write_fields(p / f"{name}.h5", seed=seed)
    r = qcdhpc("measure", *(p / f"{n}.h5" for n in ("hmc_train", "hmc_test", "dm_samples")),
               "--labels", "hmc_train,hmc_test,dm_samples", "--out", p / "observables.json", "--quiet")
    assert r.returncode == 0, r.stderr
    return d


def _moved(data: bytes, old: Path, new: Path) -> bytes:
    return data.replace(str(old).encode(), str(new).encode())


@pytest.fixture
def work(measured, tmp_path):
    """A fresh copy of `measured` (without the point directory); the results name the copied X.h5."""
    for name in ("X.h5", "notes.txt"):
        shutil.copy2(measured / name, tmp_path / name)
    (tmp_path / "obs.json").write_bytes(_moved((measured / "obs.json").read_bytes(), measured, tmp_path))
    twin = gzip.decompress((measured / "obs.pyerrors.json.gz").read_bytes())
    (tmp_path / "obs.pyerrors.json.gz").write_bytes(gzip.compress(_moved(twin, measured, tmp_path)))
    return tmp_path


# --- measure: outputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("out,reason", [
    ("X.h5", "is also an input"),
    (".", "is a directory"),
    ("/dev/null", "not a regular file"),
    ("notes.txt", "is not a file qcdhpc wrote"),
    ("notes.txt/obs.json", "notes.txt"),   # the output directory cannot exist (even for root)
])
def test_measure_refuses_outputs(work, out, reason):
    before = snapshot(work)
    r = qcdhpc("measure", work / "X.h5", "--out", out if out.startswith("/") else work / out)
    assert_refused(r, reason)
    assert snapshot(work) == before  # input and earlier result unchanged, nothing new


def test_measure_replaces_only_a_rerun_of_itself(work):
    """An existing result is replaced by a rerun of the same measurement (from any directory), never by
    the measurement of other files, and its pyerrors file neither (`--out obs` names obs.json's twin)."""
    write_fields(work / "Y.h5", seed=5)
    before = snapshot(work)
    for out in ("obs.json", "obs"):
        assert_refused(qcdhpc("measure", work / "Y.h5", "--out", work / out), "holds the measurement of other files")
        assert snapshot(work) == before
    r = subprocess.run([sys.executable, "-m", "qcdhpc", "measure", "X.h5", "--out", "obs.json", "--quiet"],
                       env=ENV, cwd=work, capture_output=True, text=True, timeout=120)  # relative paths: a rerun
    assert r.returncode == 0, r.stderr
    assert json.loads((work / "obs.json").read_text())["inputs"] == [str(work / "X.h5")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_measure_refuses_read_only_output_directory(work):
    ro = work / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert_refused(qcdhpc("measure", work / "X.h5", "--out", ro / "obs.json"), "cannot write in")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_measure_refuses_pyerrors_twin_that_is_not_ours(work):
    (work / "new.pyerrors.json.gz").write_bytes(b"someone's data")
    before = snapshot(work)
    assert_refused(qcdhpc("measure", work / "X.h5", "--out", work / "new.json"), "pyerrors file")
    assert snapshot(work) == before


@pytest.mark.parametrize("plots,reason", [("notes.txt", "--plots"), ("notes.txt/plots", "--plots"),
                                          ("X.h5", "is an input")])
def test_measure_refuses_plots_path(work, plots, reason):
    before = snapshot(work)
    r = qcdhpc("measure", work / "X.h5", "--out", work / "obs.json", "--plots", work / plots)
    assert_refused(r, reason)
    assert snapshot(work) == before


# --- measure: memory ------------------------------------------------------------------------------------

def test_measure_refuses_huge_bins_quickly(work):
    before = snapshot(work)
    t0 = time.monotonic()
    r = qcdhpc("measure", work / "X.h5", "--out", work / "obs.json", "--bins", "100000000",
               env={"QCDHPC_MEMORY_LIMIT": "16G"})
    assert_refused(r, "--bins 100000000", "memory")
    assert time.monotonic() - t0 < 30  # refused from the estimate, not after allocating
    assert snapshot(work) == before
    # the same machine's real budget refuses it too (on anything below ~100 GiB free)
    r = qcdhpc("measure", work / "X.h5", "--bins", "100000000")
    if r.returncode != 0:
        assert_refused(r, "memory")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for the peak RSS")
def test_histogram_memory_estimate_is_honest(work):
    """Peak memory of a --bins run exceeds that of a 50-bin run by less than the estimate (and by a
    sizeable part of it): each in its own process."""
    from qcdhpc.observables.distributions import histogram_bytes

    def peak(bins, out):
        code = f"""
import argparse
from qcdhpc.cli import measure
p = argparse.ArgumentParser(); measure.add_parser(p.add_subparsers())
args = p.parse_args(["measure", {str(work / "X.h5")!r}, "--out", {str(out)!r}, "--bins", "{bins}", "--quiet"])
assert measure.run(args) == 0
# VmHWM: this process's peak RSS (ru_maxrss would carry the parent's across fork + exec)
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) * 1024)
"""
        r = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        return int(r.stdout.split()[-1])

    bins = 300_000
    grown = peak(bins, work / "b.json") - peak(50, work / "a.json")
    estimate = histogram_bytes(bins, 3)
    assert 0.2 * estimate < grown < estimate, (grown, estimate)


# --- measure: inputs that fail validation ----------------------------------------------------------------

def _configs_as_group(path):
    with h5py.File(path, "w") as f:
        f.attrs.update(format="qcdhpc", container="fields", schema_version=2, theory="phi4", nchains=1)
        f.create_group("configs")
        f["chain"] = np.zeros(4, np.int64)
        f["traj"] = np.arange(4)


def _short_chain(path):
    with atomic_h5(path) as f:
        create_fields(f, n=400, site_shape=(4, 4), dtype="float64", nchains=4, theory="phi4",
                      attrs={"kappa": 0.2, "lam": 0.02})
        write_rows(f, 0, np.zeros((400, 4, 4)), np.tile(np.arange(4), 100), np.repeat(np.arange(100), 4))
        del f["chain"]
        f["chain"] = np.zeros(5, np.int64)


def _truncated(path):
    write_fields(path, nsave=50, L=8)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("make,reason", [
    (_configs_as_group, "/configs is a group, not a dataset"),
    (_short_chain, "/chain has shape (5,), expected (400,)"),
    (_truncated, "cannot open as an HDF5 qcdhpc file"),
])
def test_measure_refuses_invalid_containers(work, make, reason):
    bad = work / "bad.h5"
    make(bad)
    before = snapshot(work)
    r = qcdhpc("measure", bad, "--out", work / "new.json")
    assert_refused(r, "bad.h5", reason)
    assert snapshot(work) == before  # no JSON, no pyerrors file appears
    # also among good files, and as a rerun that would replace the earlier obs.json: nothing is written
    assert_refused(qcdhpc("measure", work / "X.h5", bad, "--out", work / "cmp.json"), reason)
    (work / "obs.pyerrors.json.gz").unlink()
    with open(work / "obs.json", "r+") as f:  # as if obs.json were the result of X.h5 and bad.h5
        text = f.read().replace('"inputs": [', f'"inputs": ["{bad}", ', 1)
        f.seek(0)
        f.write(text)
    before = snapshot(work)
    assert_refused(qcdhpc("measure", work / "X.h5", bad, "--out", work / "obs.json"), reason)
    assert snapshot(work) == before


# --- report ---------------------------------------------------------------------------------------------

@pytest.fixture
def point(measured, work):
    """work/P: a measured point whose observables.json names its ensembles by their new place."""
    p = work / "P"
    shutil.copytree(measured / "P", p)
    obs = p / "observables.json"
    obs.write_bytes(_moved(obs.read_bytes(), measured, work))
    return p


@pytest.mark.parametrize("out,reason", [
    ("P/observables.json", "is also an input"),
    ("P/hmc_train.h5", "is also an input"),
    ("P", "is a directory"),
    ("notes.txt", "is not a file qcdhpc wrote"),
    ("report.html", "give the markdown path"),
    ("notes.txt/report.md", "notes.txt"),
])
def test_report_refuses_outputs(work, point, out, reason):
    before = snapshot(work)
    assert_refused(qcdhpc("report", point, "--out", work / out), reason)
    assert snapshot(work) == before


def _truncate(text):
    return text[: len(text) // 2]


def _drop_ul(text):
    res = json.loads(text)
    del res["ensembles"][1]["observables"]["UL"]
    return json.dumps(res)


@pytest.mark.parametrize("edit,reason", [
    (_truncate, "not valid JSON"),
    (lambda t: "", "not valid JSON"),
    (lambda t: "[1, 2, 3]", "a JSON object is expected"),
    (lambda t: json.dumps({"n": 3}), "no 'observables' object"),
    (_drop_ul, "ensemble 1 lacks observables.UL"),
    (lambda t: t.replace('"schema_version": 2', '"schema_version": 99'), "schema_version 99"),
    (lambda t: t.replace('"theory": "phi4"', '"theory": "qcd"'), "theory 'qcd'"),
])
def test_report_refuses_unreadable_observables(work, point, edit, reason):
    obs = point / "observables.json"
    obs.write_text(edit(obs.read_text()))
    before = snapshot(work)
    assert_refused(qcdhpc("report", point, "--out", work / "report.md"), "observables.json", reason)
    assert snapshot(work) == before


def test_report_refuses_point_without_observables(work):
    (work / "empty").mkdir()
    assert_refused(qcdhpc("report", work / "empty", "--out", work / "report.md"), "no observables.json")
    assert not (work / "report.md").exists()
