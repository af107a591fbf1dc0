"""The CL branch end to end: `qcdhpc cl-table` against exact, the report's CL sections (quartic model,
Bose-gas scan with its onset), refusals, and the Snakemake branch at a tiny size."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qcdhpc.io.atomic import atomic_h5
from qcdhpc.io.containers import create_samples, open_container
from qcdhpc.report import cl as report_cl

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
ENV.pop("QCDHPC_MEMORY_LIMIT", None)


def qcdhpc(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "qcdhpc", *map(str, args)], env=ENV, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def ok(r):
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r


def refused(r, *reasons):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for reason in reasons:
        assert reason in lines[0], lines[0]


@pytest.fixture(scope="module")
def quartic(tmp_path_factory):
    d = tmp_path_factory.mktemp("quartic")
    ok(qcdhpc("cl", "--model", "quartic", "--walkers", 3000, "--therm", 500, "--steps", 4000, "--every", 20,
              "--seed", 5, "--out", d / "cl.h5", "--quiet"))
    ok(qcdhpc("measure", d / "cl.h5", "--out", d / "observables.json", "--plots", d / "plots"))
    return d


def write_points(path, pts, sigma=(1.0, 1.0), lam=1.0):
    with atomic_h5(path) as f:
        create_samples(f, n=len(pts), site_shape=(2,), dtype="float64", theory="cl-quartic",
                       attrs={"sigma": list(sigma), "lam": lam})
        f["configs"][...] = pts


def test_cl_table_of_cl_points_matches_exact(quartic, tmp_path):
    """Samples that *are* CL points (independent walkers, three disjoint sets as three 'models'): every
    row must agree with the quadrature within its errors, and the table files are written."""
    with open_container(quartic / "cl.h5", kinds=("walkers",)) as c:
        z = np.asarray(c.configs[:, ::5])  # (W, R/5) complex: thinned records, walkers independent
    z = np.stack([z.real, z.imag], axis=-1)  # (W, R/5, 2) = (x, y)
    files = []
    for i, block in enumerate(np.array_split(z, 3)):
        files.append(tmp_path / f"s{i}.h5")
        write_points(files[-1], block.reshape(-1, 2))
    r = ok(qcdhpc("cl-table", "--cl", quartic / "observables.json", "--sbm", *files, "--out", tmp_path / "t.json"))
    assert "largest SBM/EBM deviation" in r.stdout
    tab = json.loads((tmp_path / "t.json").read_text())
    sbm = tab["rows"]["SBM"]
    assert set(tab["exact"]) == set(sbm) and len(sbm["mu2_re"]["models"]) == 3
    assert abs(tab["exact"]["mu2_re"] - 0.428142) < 1e-6 and abs(tab["exact"]["mu8_im"] + 1.393359) < 1e-6
    # records of one walker are correlated (errors are per-point jackknife blocks): allow 4σ
    assert max(q["sigma"] for k, q in sbm.items() if k.startswith("mu")) < 4
    assert (tmp_path / "t.md").read_text().startswith("<!-- qcdhpc cl-table -->")
    ok(qcdhpc("cl-table", "--cl", quartic / "observables.json", "--sbm", *files, "--out", tmp_path / "t.json"))

    # refusals: another action's samples, no rows, --out an input, a walkers file as --cl
    write_points(tmp_path / "other.h5", z[:50].reshape(-1, 2), sigma=(1.0, 0.5))
    refused(qcdhpc("cl-table", "--cl", quartic / "observables.json", "--ebm", tmp_path / "other.h5",
                   "--out", tmp_path / "u.json"), "σ₀")
    refused(qcdhpc("cl-table", "--cl", quartic / "observables.json", "--out", tmp_path / "u.json"), "at least one row")
    refused(qcdhpc("cl-table", "--cl", quartic / "observables.json", "--sbm", files[0], "--out", files[0]), "input")
    refused(qcdhpc("cl-table", "--cl", quartic / "cl.h5", "--sbm", files[0], "--out", tmp_path / "u.json"),
            "measure JSON")
    assert not (tmp_path / "u.json").exists()


def test_onset_interpolation():
    rows = [{"mu": m, "n": {"value": n}} for m, n in ((1.0, 0.03), (1.1, 0.07), (1.2, 0.3))]
    assert report_cl.onset(rows, 0.1) == pytest.approx(1.1 + 0.03 / 0.23 * 0.1)
    assert report_cl.onset(rows, 5.0) is None


def test_report_sections_quartic_and_bose_scan(quartic, tmp_path):
    scan = tmp_path / "bose_N4"
    for mu in (0.5, 1.5):
        d = scan / f"mu_{mu:g}"
        d.mkdir(parents=True)
        ok(qcdhpc("cl", "--model", "bose", "--N", 4, "--d", 4, "--mu", mu, "--walkers", 4, "--therm", 300,
                  "--steps", 2000, "--seed", 1, "--out", d / "cl.h5", "--quiet"))
        ok(qcdhpc("measure", d / "cl.h5", "--out", d / "observables.json"))
    q = tmp_path / "quartic"
    shutil.copytree(quartic, q)
    ok(qcdhpc("report", q, scan, "--out", tmp_path / "report.md"))
    md = (tmp_path / "report.md").read_text()
    assert "quartic model σ₀ = 1+1i" in md and "| mu4_re |" in md and "runaway walkers: 0 of 3000" in md
    assert "Bose gas 4^4" in md and "Onset (n = 0.1 crossing, linear between scan points 0.5 and 1.5): μ ≈ 0." in md and (scan / "n_of_mu.png").exists()
    rows = report_cl.scan_rows(scan)
    assert [r["mu"] for r in rows] == [0.5, 1.5]
    assert rows[0]["n"]["value"] < 0.02 < 2.0 < rows[1]["n"]["value"]  # below / far above onset
    # a directory of another theory's observables is refused by name
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "observables.json").write_text(json.dumps({"theory": "qcd", "observables": {}}))
    refused(qcdhpc("report", tmp_path / "junk", "--out", tmp_path / "r2.md"), "theory 'qcd'")


@pytest.mark.skipif(shutil.which("snakemake", path=str(Path(sys.executable).parent)) is None,
                    reason="snakemake not installed")
def test_workflow_cl_branch_tiny(tmp_path):
    """rules/cl.smk alone (no φ⁴ points): CL -> measure -> 1 SBM + 1 EBM -> samples -> cl-table; a
    2-point Bose scan; the report has the three CL sections."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"""results: {tmp_path / 'res'}
qcdhpc: {sys.executable} -m qcdhpc
cl:
  threads: 1
  quartic:
    {{sigma: "1+1j", lam: 1, walkers: 1000, therm: 200, steps: 2000, every: 10, dt: 0.01, scheme: heun, seed: 3,
     models: 1, train: {{epochs: 1, batch: 512, lr: 0.002, hidden: 16, n_layers: 1, points: 5000, threads: 1}},
     sample: {{n: 500, steps: 20, eps: 0.0025, mala_step: 0.005, burn_in: 20, batch: 500}}}}
  bose:
    N2: {{N: 2, d: 2, m: 1, lam: 1, mus: [0, 1.5], walkers: 2, therm: 100, steps: 500, every: 10, dt: 0.01,
         scheme: heun, seed: 1}}
""")
    snake = Path(sys.executable).parent / "snakemake"
    r = subprocess.run([str(snake), "-s", str(ROOT / "workflows" / "Snakefile"), "--configfile", str(cfg),
                        "--cores", "2", "--directory", str(tmp_path)], env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    md = (tmp_path / "res" / "report.md").read_text()
    for title in ("quartic model", "the seeds' table", "Bose gas 2^2"):
        assert title in md
    tab = json.loads((tmp_path / "res" / "cl" / "quartic" / "table.json").read_text())
    assert set(tab["rows"]) == {"SBM", "EBM", "MCMC-EBM"}
