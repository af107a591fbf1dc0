"""qcdhpc measure: estimators agree with direct numpy formulas; JSON layout; errors from pyerrors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from qcdhpc import _kernels as K
from qcdhpc.observables import phi4 as obs
from qcdhpc.phi4 import HMCParams, generate

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
NAMES = {"M", "absM", "chi2_full", "chi2", "UL", "action_density", "acceptance", "exp_minus_dH"}


@pytest.fixture(scope="module")
def ensembles(tmp_path_factory):
    d = tmp_path_factory.mktemp("measure")
    paths = []
    for seed in (1, 2):
        p = HMCParams(L=8, kappa=0.2, lam=0.02, nchains=3, ntraj=40, therm=10, every=1, nmd=8, seed=seed)
        generate(p, d / f"s{seed}.h5", progress=False)
        paths.append(d / f"s{seed}.h5")
    return paths


def test_values_match_direct_formulas(ensembles):
    res = obs.measure_files([ensembles[0]])
    assert set(res["observables"]) == NAMES and res["n"] == 120 and res["source"] == str(ensembles[0])
    assert res["params"]["kappa"] == 0.2 and res["params"]["L"] == [8, 8]
    with h5py.File(ensembles[0]) as f:
        phi, dH, acc = f["configs"][()], f["hmc/dH"][:, 10:], f["hmc/accepted"][:, 10:]
    V = 64
    M = phi.mean(axis=(1, 2))
    o = {k: v["value"] for k, v in res["observables"].items()}
    assert o["M"] == pytest.approx(M.mean(), rel=1e-12, abs=1e-15)
    assert o["absM"] == pytest.approx(np.abs(M).mean(), rel=1e-12)
    assert o["chi2_full"] == pytest.approx(V * (M**2).mean(), rel=1e-12)
    assert o["chi2"] == pytest.approx(V * ((M**2).mean() - np.abs(M).mean() ** 2), rel=1e-10)
    assert o["UL"] == pytest.approx(1 - (M**4).mean() / (3 * (M**2).mean() ** 2), rel=1e-10)
    S = K.action(np.ascontiguousarray(phi), kappa=0.2, lam=0.02)  # numpy formula == kernel action
    assert o["action_density"] == pytest.approx(S.mean() / V, rel=1e-12)
    assert o["acceptance"] == pytest.approx(acc.mean(), rel=1e-12)
    assert o["exp_minus_dH"] == pytest.approx(np.exp(-dH).mean(), rel=1e-12)
    for name, v in res["observables"].items():
        assert np.isfinite(v["error"]) and v["error"] >= 0 and v["tau_int"] > 0, name
    assert res["observables"]["chi2_full"]["error"] > 0
    # ⟨e^{-ΔH}⟩ = 1 within errors (exact HMC)
    e = res["observables"]["exp_minus_dH"]
    assert abs(e["value"] - 1) < 4 * e["error"] + 1e-6


def test_cli_json_layout_and_combined_files(ensembles, tmp_path):
    out = tmp_path / "obs.json"
    r = subprocess.run([sys.executable, "-m", "qcdhpc", "measure", *map(str, ensembles), "--out", str(out),
                        "--quiet"], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert set(res) == {"observables", "n", "source", "params"}
    assert set(res["observables"]) == NAMES
    assert all(set(v) == {"value", "error", "tau_int"} for v in res["observables"].values())
    assert res["n"] == 240 and res["source"] == [str(p) for p in ensembles]
    assert res["params"]["seed"] == [1, 2] and res["params"]["kappa"] == 0.2


def test_clear_errors(tmp_path, ensembles):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    r = subprocess.run([sys.executable, "-m", "qcdhpc", "measure", str(foreign)], env=ENV, cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "foreign.h5: not a qcdhpc.ensemble file" in r.stderr
    assert "Traceback" not in r.stderr
    p = HMCParams(L=4, kappa=0.2, lam=0.02, nchains=2, ntraj=3, therm=0, seed=1)
    generate(p, tmp_path / "short.h5", progress=False)
    with pytest.raises(ValueError, match="needs >= 5 samples per chain"):
        obs.measure_files([tmp_path / "short.h5"])
    other = tmp_path / "other.h5"
    generate(HMCParams(L=8, kappa=0.25, lam=0.02, nchains=1, ntraj=10, therm=0), other, progress=False)
    with pytest.raises(ValueError, match="differ in kappa"):
        obs.measure_files([ensembles[0], other])
