"""Ensemble generation: streaming segments, kill/resume bit-identity, file-state rules.

The kill tests run the real CLI in a subprocess whose kernel calls are slowed down (a wrapper that
sleeps before each batch, results unchanged), so that the signal reliably lands mid-run.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import qcdhpc._kernels as K
from qcdhpc.phi4 import HMCParams
from qcdhpc.phi4.hmc import HMCRun, cold_start, generate, hot_start
from qcdhpc.run.signals import EXIT_INTERRUPTED

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
ARGS = ["--L", "8", "--kappa", "0.22", "--lam", "0.02", "--nchains", "3", "--ntraj", "120",
        "--therm", "10", "--every", "2", "--seed", "11", "--checkpoint-every", "10",
        "--checkpoint-seconds", "0", "--quiet"]
SLOW = ("import sys, time; import qcdhpc._kernels as K; f = K.hmc_trajectories; "
        "K.hmc_trajectories = lambda *a, **k: (time.sleep(0.03), f(*a, **k))[1]; "
        "from qcdhpc.cli.main import main; sys.exit(main(sys.argv[1:]))")
DATASETS = ("configs", "chain", "traj", "history/hmc/dH", "history/hmc/accepted")


def cli(*args, slow=False, **kw):
    pre = ["-c", SLOW] if slow else ["-m", "qcdhpc"]
    return [sys.executable, *pre, "hmc", *ARGS, *args], dict(env=ENV, cwd=ROOT, **kw)


def run_cli(*args):
    cmd, kw = cli(*args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def assert_identical(a, b):
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for name in DATASETS:
            assert fa[name].dtype == fb[name].dtype
            np.testing.assert_array_equal(fa[name][()], fb[name][()], err_msg=name)


def wait_for(path, proc, timeout=30.0):
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, "run finished before it could be interrupted"
        assert time.monotonic() - t0 < timeout, f"{path} did not appear"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    out = tmp_path_factory.mktemp("unbroken") / "ref.h5"
    r = run_cli("--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_layout_and_attributes(unbroken):
    with h5py.File(unbroken) as f:
        n = 3 * 60
        assert f["configs"].shape == (n, 8, 8) and f["configs"].dtype == np.float64
        # canonical order: trajectory-major, chain-minor; saved after therm+every, therm+2*every, ...
        assert f["chain"][:6].tolist() == [0, 1, 2, 0, 1, 2]
        assert f["traj"][:6].tolist() == [11, 11, 11, 13, 13, 13] and f["traj"][-1] == 129
        assert f["history/hmc/dH"].shape == (3, 130) and f["history/hmc/accepted"].dtype == np.uint8
        assert f["history/hmc"].attrs["n_therm"] == 10 and "hmc" not in f  # no placeholder layout
        a = f.attrs
        assert a["format"] == "qcdhpc" and a["container"] == "fields" and a["schema_version"] == 2
        assert a["theory"] == "phi4" and a["algorithm"] == "hmc" and a["nchains"] == 3
        assert list(a["L"]) == [8, 8] and a["kappa"] == 0.22 and a["therm"] == 10 and a["every"] == 2
        assert a["rng"] == "philox4x64-10" and list(a["next_traj"]) == [130] * 3 and a["mpi_size"] == 1
        assert a["command"].startswith("qcdhpc hmc --L 8") and a["code_version"] and a["created"]
        assert json.loads(a["numerics"]) == {"phi4": K.NUMERICS_VERSION}
        # chains run on different streams
        assert not np.array_equal(f["configs"][0], f["configs"][1])
    assert not Path(str(unbroken) + ".partial").exists()


def test_sigkill_then_resume_is_bit_identical(tmp_path, unbroken):
    out = tmp_path / "killed.h5"
    cmd, kw = cli("--out", str(out), slow=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    wait_for(tmp_path / "killed.h5.partial" / "rank0000" / "seg000001.h5", proc)
    proc.kill()
    proc.wait()
    assert not out.exists()  # no file where the finished one is expected
    # without --resume the leftover is refused with the way out
    r = run_cli("--out", str(out))
    assert r.returncode == 2 and "--resume" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert_identical(out, unbroken)
    assert not (tmp_path / "killed.h5.partial").exists()


def test_sigterm_checkpoints_exits_75_and_resumes(tmp_path, unbroken):
    out = tmp_path / "term.h5"
    cmd, kw = cli("--out", str(out), slow=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    wait_for(tmp_path / "term.h5.partial" / "rank0000" / "seg000000.h5", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "SIGTERM received" in err and "--resume" in err and "Traceback" not in err
    assert not out.exists()
    # resuming with different physics is refused
    r = run_cli("--out", str(out), "--resume", "--seed", "12")
    assert r.returncode == 2 and "seed: 11 (recorded) vs 12 (now)" in r.stderr
    # ... and so is resuming under other kernel arithmetic (here: a manifest from before the
    # version was recorded, i.e. version 1), which could not continue the chains bit for bit
    manifest = tmp_path / "term.h5.partial" / "run.json"
    info = json.loads(manifest.read_text())
    assert info["numerics"] == {"phi4": K.NUMERICS_VERSION} and K.NUMERICS_VERSION >= 2
    manifest.write_text(json.dumps({**info, "numerics": {"phi4": K.NUMERICS_VERSION - 1}}))
    r = run_cli("--out", str(out), "--resume")
    assert r.returncode == 2 and f"phi4 {K.NUMERICS_VERSION - 1} -> {K.NUMERICS_VERSION}" in r.stderr
    assert "Traceback" not in r.stderr
    # a manifest of qcdhpc <= 0.2 (one global version, absent = 1) is read as the phi4 version
    manifest.write_text(json.dumps({k: v for k, v in info.items() if k != "numerics"}))
    r = run_cli("--out", str(out), "--resume")
    assert r.returncode == 2 and "phi4 1 ->" in r.stderr
    assert (tmp_path / "term.h5.partial" / "rank0000" / "seg000000.h5").exists()  # nothing lost
    manifest.write_text(json.dumps(info))
    r = run_cli("--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert_identical(out, unbroken)
    # a requeued job passing --resume again finds the run complete and leaves it alone
    mtime = out.stat().st_mtime_ns
    r = run_cli("--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert out.stat().st_mtime_ns == mtime and not (tmp_path / "term.h5.partial").exists()


def test_existing_output_needs_overwrite(tmp_path):
    p = HMCParams(L=4, kappa=0.2, lam=0.0, nchains=2, ntraj=6, therm=2, every=1, seed=3)
    out = tmp_path / "o.h5"
    generate(p, out, progress=False, comm=None)
    with pytest.raises(FileExistsError, match="--overwrite"):
        HMCRun(p, out, progress=False)
    before = h5py.File(out).attrs["created"]
    generate(p, out, overwrite=True, progress=False)
    assert h5py.File(out).attrs["created"] >= before


def test_independent_of_batching_and_checkpoints(tmp_path):
    """Same seed: checkpoint interval, dtype handling and the start field do not change the result."""
    p = HMCParams(L=(4, 6), kappa=0.2, lam=0.05, nchains=2, ntraj=9, therm=3, every=3, seed=7,
                  integrator="leapfrog", dtype="float32")
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    generate(p, a, checkpoint_every=1, progress=False)
    generate(p, b, checkpoint_every=1000, progress=False)
    assert_identical(a, b)
    with h5py.File(a) as f:
        assert f["configs"].shape == (6, 4, 6) and f["configs"].dtype == np.float32
    # the start field depends only on (seed, chain)
    np.testing.assert_array_equal(hot_start(p, range(1, 2))[0], hot_start(p, range(0, 2))[1])


def test_cold_start_is_the_constant_field_minimum():
    from scipy.optimize import minimize_scalar

    for kappa, lam in ((0.5, 0.022), (0.3, 0.1), (0.27, 0.5)):
        p = HMCParams(L=(4, 6), kappa=kappa, lam=lam, start="cold")
        # independent: minimise S of a constant field numerically (S/V = (1 − 2λ − 4κ)φ² + λφ⁴)
        s = lambda v: float(np.sum(-2 * kappa * 2 * v * v + (1 - 2 * lam) * v * v + lam * v ** 4))
        best = minimize_scalar(s, bounds=(0.0, 50.0), method="bounded", options={"xatol": 1e-10})
        assert p.vacuum == pytest.approx(best.x, rel=1e-6)
        phi = cold_start(p, range(3, 6))  # chains 3, 4, 5: −v, +v, −v whatever the rank split
        np.testing.assert_array_equal(phi[:, 0, 0], [-p.vacuum, p.vacuum, -p.vacuum])
        assert np.all(phi == phi[:, :1, :1])
    assert HMCParams(L=4, kappa=0.21, lam=0.022, start="cold").vacuum == 0.0  # symmetric phase
    assert HMCParams(L=4, kappa=0.24, lam=0.0).vacuum == 0.0
    with pytest.raises(ValueError, match="unbounded"):  # a free field needs |κ| < 1/4
        HMCParams(L=4, kappa=0.3, lam=0.0)
    with pytest.raises(ValueError, match="unknown start 'warm'"):
        HMCParams(L=4, kappa=0.2, lam=0.0, start="warm")


def test_cold_start_broken_phase_is_reproducible_across_seeds(tmp_path):
    """Deep in the broken phase (κ = 0.5, the seeds' point) hot starts freeze into wrapping domain
    walls that differ from seed to seed (docs/results.md); cold-started chains stay in their vacuum,
    so two independent ensembles agree on ⟨|M|⟩ and each chain keeps the sign it started with."""
    absm = []
    for seed in (1, 2):
        p = HMCParams(L=16, kappa=0.5, lam=0.022, nchains=4, ntraj=60, therm=20, every=2, seed=seed,
                      start="cold")
        generate(p, tmp_path / f"c{seed}.h5", progress=False)
        with h5py.File(tmp_path / f"c{seed}.h5") as f:
            m = f["configs"][:].mean(axis=(1, 2))
            chain = f["chain"][:]
            assert f.attrs["start"] == "cold" and f.attrs["init"].startswith("cold")
        assert np.all(np.sign(m) == np.where(chain % 2 == 0, 1, -1))  # no tunnelling, no walls
        absm.append(np.abs(m))
    (a, b) = absm
    err = np.hypot(a.std() / np.sqrt(a.size / 5), b.std() / np.sqrt(b.size / 5))  # ≤ 5 configs per τ_int
    assert abs(a.mean() - b.mean()) < 4 * err + 1e-3, (a.mean(), b.mean(), err)
    assert 0.8 * 4.87 < a.mean() < 1.05 * 4.87  # ≈ the tree-level vacuum, slightly reduced by fluctuations


@pytest.mark.gpu
def test_cuda_run_independent_of_checkpoints(tmp_path):
    """The driver's CUDA path (torch tensors on the device): same bit-reproducibility as on CPU."""
    p = HMCParams(L=8, kappa=0.2, lam=0.02, nchains=4, ntraj=10, therm=3, every=2, seed=5, device="cuda")
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    generate(p, a, checkpoint_every=1, progress=False)
    generate(p, b, checkpoint_every=1000, progress=False)
    assert_identical(a, b)
    with h5py.File(a) as f:
        assert f.attrs["device"] == "cuda" and f["configs"].shape == (20, 8, 8)
