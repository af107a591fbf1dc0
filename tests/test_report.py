"""The comparison report: number formatting, compatibility, and a full report from real files."""
import json
import subprocess
import sys

import pytest

from qcdhpc.report.phi4 import fmt, n_sigma, write_report


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
    assert fmt(v, e) == out


def test_n_sigma():
    assert n_sigma({"value": 1.0, "error": 0.3}, {"value": 1.5, "error": 0.4}) == pytest.approx(1.0)
    assert n_sigma({"value": 1.0, "error": 0.0}, {"value": 1.0, "error": 0.0}) is None
    assert n_sigma(None, {"value": 1.0, "error": 0.1}) is None


def run(*args):
    subprocess.run([sys.executable, "-m", "qcdhpc", *args], check=True, capture_output=True)


def test_report_from_measured_point(tmp_path):
    point = tmp_path / "results" / "sym"
    point.mkdir(parents=True)
    common = ["--L", "8", "--kappa", "0.2", "--lam", "0.02", "--nchains", "2", "--ntraj", "40",
              "--therm", "20", "--nmd", "5", "--quiet"]
    run("hmc", *common, "--seed", "1", "--out", str(point / "hmc_train.h5"))
    run("hmc", *common, "--seed", "2", "--out", str(point / "hmc_test.h5"))
    run("hmc", *common, "--seed", "3", "--out", str(point / "dm_samples.h5"))  # stands in for DM samples
    run("measure", str(point / "hmc_train.h5"), str(point / "hmc_test.h5"), str(point / "dm_samples.h5"),
        "--labels", "hmc_train,hmc_test,dm_samples", "--out", str(point / "observables.json"),
        "--plots", str(point / "plots"), "--quiet")
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
