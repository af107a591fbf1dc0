"""The comparison report: number formatting, compatibility, and a full report from measured files."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qcdhpc.io.atomic import atomic_h5
from qcdhpc.io.containers import create_fields, create_history, create_samples, write_rows
from qcdhpc.observables.format import n_sigma, sigma_text, value_error
from qcdhpc.report.phi4 import fmt, write_report

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@pytest.mark.parametrize("v,e,out", [
    (2.516, 0.0457, "2.516(46)"),
    (0.0012, 0.0007, "0.00120(70)"),
    (-0.0198, 0.1035, "-0.02(10)"),
    (123.4, 5.6, "123.4(56)"),
    (1234.0, 56.0, "1234(56)"),
    (12345.0, 567.0, "12340(570)"),
    (5.0, 99.7, "0(100)"),
    (1.0, 0.0996, "1.00(10)"),
    (3.0, None, "3"),
    (None, None, "—"),
])
def test_fmt(v, e, out):
    assert fmt(v, e) == out == value_error(v, e)  # one formatter for measure's tables and the report


def test_n_sigma():
    assert n_sigma({"value": 1.0, "error": 0.3}, {"value": 1.5, "error": 0.4}) == pytest.approx(1.0)
    assert n_sigma({"value": 1.0, "error": 0.0}, {"value": 1.0, "error": 0.0}) is None
    assert n_sigma(None, {"value": 1.0, "error": 0.1}) is None
    assert n_sigma({"value": 1.0, "error": None}, {"value": 1.0, "error": 0.1}) is None  # unknown error
    assert sigma_text(None) == "—" and sigma_text(1.26) == "1.3"


def run(*args):
    r = subprocess.run([sys.executable, "-m", "qcdhpc", *args], capture_output=True, text=True, env=ENV,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr


def write_ensemble(path, seed, nchains=2, nsave=20, L=8, samples=False):
    """A small φ⁴-like container: Gaussian fields around 0.1, AR(1) in Monte Carlo time per chain
    (fields, with an HMC history), or independent (samples, standing in for DM samples)."""
    rng = np.random.default_rng(seed)
    n = nchains * nsave
    x = rng.standard_normal((nchains, L, L))
    cfg = np.empty((nsave, nchains, L, L))
    for t in range(nsave):
        x = 0.5 * x + math.sqrt(0.75) * rng.standard_normal((nchains, L, L))
        cfg[t] = 0.1 + 0.5 * x
    attrs = {"kappa": 0.2, "lam": 0.02, "L": [L, L], "seed": seed}
    with atomic_h5(path) as f:
        if samples:
            create_samples(f, n=n, site_shape=(L, L), dtype="float64", theory="phi4", attrs=attrs)
            write_rows(f, 0, cfg.reshape(n, L, L))
            return path
        create_fields(f, n=n, site_shape=(L, L), dtype="float64", nchains=nchains, theory="phi4", attrs=attrs)
        write_rows(f, 0, cfg.reshape(n, L, L), np.tile(np.arange(nchains), nsave), np.repeat(np.arange(nsave), nchains))
        g = create_history(f, "hmc", {"dH": ((nchains, nsave), "float64"), "accepted": ((nchains, nsave), "uint8")},
                           {"n_therm": 0})
        g["dH"][...] = rng.normal(0.05, math.sqrt(0.1), (nchains, nsave))
        g["accepted"][...] = 1
    return path


def measured_point(point):
    point.mkdir(parents=True)
    write_ensemble(point / "hmc_train.h5", 1)
    write_ensemble(point / "hmc_test.h5", 2)
    write_ensemble(point / "dm_samples.h5", 3, samples=True)
    run("measure", str(point / "hmc_train.h5"), str(point / "hmc_test.h5"), str(point / "dm_samples.h5"),
        "--labels", "hmc_train,hmc_test,dm_samples", "--out", str(point / "observables.json"),
        "--plots", str(point / "plots"), "--quiet")
    return point


def test_report_from_measured_point(tmp_path):
    point = measured_point(tmp_path / "results" / "sym")
    md, html = write_report([point], tmp_path / "results" / "report.md")
    text = md.read_text()
    for row in ("Training (HMC)", "Testing (HMC)", "Generated (DM)", "χ₂ = V⟨M²⟩", "U_L"):
        assert row in text
    # the test row is the reference: no σ entries; the others have numbers
    lines = [ln for ln in text.splitlines() if ln.startswith("| Generated")]
    assert lines and "—" not in lines[0].split("|")[-2]
    assert "plots/hist_M.png" in text and (point / "plots" / "configurations.png").exists()
    assert "<table>" in html.read_text()
    obs = json.loads((point / "observables.json").read_text())
    assert [e["label"] for e in obs["ensembles"]] == ["hmc_train", "hmc_test", "dm_samples"]
    assert [e["error_method"] for e in obs["ensembles"]] == ["gamma", "gamma", "jackknife"]
    # the CLI: a rerun replaces its own report
    for _ in range(2):
        run("report", str(point), "--out", str(tmp_path / "results" / "report.md"))
    assert (tmp_path / "results" / "report.md").read_text().startswith("<!-- qcdhpc report -->")


def test_report_reads_schema_1_observables(tmp_path):
    """observables.json written before the format header (|M|-subtracted χ₂ named "chi2") still reports."""
    point = measured_point(tmp_path / "old")
    obs = json.loads((point / "observables.json").read_text())
    for key in ("format", "schema_version", "inputs", "theory", "pyerrors"):
        del obs[key]
    for e in obs["ensembles"]:
        del e["theory"]
        e["observables"]["chi2"] = e["observables"].pop("chi2_absM_conn")
    (point / "observables.json").write_text(json.dumps(obs))
    md, _ = write_report([point], tmp_path / "report.md")
    assert "Generated (DM)" in md.read_text()
