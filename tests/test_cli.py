"""CLI: light imports, refusals with exit code 2 and a reason, no work done on refusal."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def qcdhpc(*args):
    return subprocess.run([sys.executable, "-m", "qcdhpc", *args], env=ENV, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_help_does_not_import_heavy_modules():
    code = ("import sys\nfrom qcdhpc.cli.main import main\n"
            "for argv in (['--help'], ['hmc', '--help'], ['measure', '--help']):\n"
            "    try: main(argv)\n    except SystemExit: pass\n"
            "print(sorted(m for m in ('torch', 'h5py', 'numpy', 'mpi4py') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    assert "--checkpoint-every" in r.stdout and "--resume" in r.stdout


def test_version():
    r = qcdhpc("--version")
    assert r.returncode == 0 and r.stdout.startswith("qcdhpc ")


@pytest.mark.parametrize("args, reason", [
    (["--L", "1"], "L0 must be >= 2"),
    (["--L0", "8"], "give --L, or both --L0 and --L1"),
    (["--nmd", "0"], "nmd must be >= 1"),
    (["--tau", "0"], "tau must be > 0"),
    (["--kappa", "inf"], "kappa must be finite"),
    (["--lam", "nan"], "lam must be finite"),
    (["--integrator", "euler"], "unknown integrator 'euler'"),
    (["--checkpoint-every", "0"], "checkpoint_every must be >= 1"),
])
def test_bad_parameters_refused_before_work(tmp_path, args, reason):
    out = tmp_path / "x.h5"
    base = {"--L": "8", "--kappa": "0.2", "--lam": "0.02"}
    if "--L0" in args:
        base.pop("--L")
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    r = qcdhpc("hmc", *[t for kv in base.items() for t in kv], "--out", str(out), "--quiet")
    assert r.returncode == 2
    assert reason in r.stderr and "Traceback" not in r.stderr and "usage: qcdhpc hmc" in r.stderr
    assert list(tmp_path.iterdir()) == []  # no output, no .partial


def test_unavailable_device_refused(tmp_path):
    from qcdhpc import _kernels as K

    if "cuda" in K.available_devices():
        pytest.skip("a CUDA device is available")
    r = qcdhpc("hmc", "--L", "8", "--kappa", "0.2", "--lam", "0.02", "--device", "cuda",
               "--out", str(tmp_path / "x.h5"))
    assert r.returncode == 2 and "device 'cuda' is not available" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_hmc_then_measure(tmp_path):
    out = tmp_path / "e.h5"
    r = qcdhpc("hmc", "--L", "6", "--kappa", "0.2", "--lam", "0.02", "--nchains", "2", "--ntraj", "12",
               "--therm", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "written" in r.stdout and "24 configurations from 2 chains" in r.stdout
    r = qcdhpc("measure", str(out), "--out", str(tmp_path / "obs.json"))
    assert r.returncode == 0, r.stderr
    assert "chi2_full" in r.stdout and (tmp_path / "obs.json").exists()
