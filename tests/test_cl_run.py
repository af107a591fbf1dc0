"""Complex Langevin runs (`qcdhpc cl`) on the generic run machinery, and their measurement: exact
results, reproducibility under checkpointing and kill/resume, refusals."""
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

from qcdhpc.cl import exact
from qcdhpc.cli.main import main
from qcdhpc.io.containers import open_container
from qcdhpc.run.signals import EXIT_INTERRUPTED

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
SMALL = ["cl", "--walkers", "600", "--therm", "200", "--steps", "2000", "--every", "10", "--dt", "0.01",
         "--seed", "4", "--quiet"]


def measured(path, tmp_path) -> dict:
    out = tmp_path / (Path(path).stem + ".json")
    assert main(["measure", str(path), "--out", str(out), "--quiet"]) == 0
    return json.loads(out.read_text())["observables"]


def test_quartic_moments_match_quadrature(tmp_path):
    """σ₀ = 1 + i, λ = 1 (the seeds' model), Heun at ε = 0.01: μ₂, μ₄ (re, im) within 3σ of exact."""
    out = tmp_path / "q.h5"
    assert main([*SMALL, "--walkers", "2000", "--out", str(out)]) == 0
    obs = measured(out, tmp_path)
    ex = exact.moments(1 + 1j, 1.0)
    for n in (2, 4):
        for part, get in (("re", np.real), ("im", np.imag)):
            q = obs[f"mu{n}_{part}"]
            assert q["exact"] == pytest.approx(float(get(ex[n])), abs=1e-12)
            assert abs(q["value"] - q["exact"]) < 3 * q["error"], (n, part, q)
    with open_container(out) as c:
        assert c.kind == "walkers" and c.theory == "cl-quartic" and c.configs.shape == (2000, 200)
        assert c.configs.dtype == np.complex128 and np.all(c.weight[()] == 0.01)
        assert c.history["langevin"].attrs["n_runaway"] == 0


def test_real_gaussian_action_gives_unit_variance(tmp_path):
    """σ₀ = 1, λ = 0: a real Gaussian, ⟨x²⟩ = 1 and ⟨x⁴⟩ = 3 (Heun's O(ε²) bias is ~1e-4 here)."""
    out = tmp_path / "g.h5"
    # --seed 5 (the last --seed wins): under the version-2 noise stream (cl numerics 2) seed 4 is a
    # 3.8 sigma realisation of <x^2> here -- the worst of 300 seeds checked, whose pulls have mean
    # -0.07 and standard deviation 1.01 -- so this test would test luck rather than the kernel.
    assert main([*SMALL, "--seed", "5", "--sigma", "1", "--lam", "0", "--out", str(out)]) == 0
    obs = measured(out, tmp_path)
    assert abs(obs["mu2_re"]["value"] - 1.0) < 3 * obs["mu2_re"]["error"]
    assert abs(obs["mu4_re"]["value"] - 3.0) < 3 * obs["mu4_re"]["error"]
    assert abs(obs["mu2_im"]["value"]) < 1e-12  # real noise on a real action: z stays real


def test_independent_of_checkpoints_and_adaptive_weights(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    args = [*SMALL, "--walkers", "50", "--adaptive"]
    assert main([*args, "--out", str(a), "--checkpoint-every", "30"]) == 0
    assert main([*args, "--out", str(b), "--checkpoint-every", "100000"]) == 0
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for name in ("configs", "weight", "history/langevin/kbar", "history/langevin/langevin_time"):
            np.testing.assert_array_equal(fa[name][()], fb[name][()], err_msg=name)
        w = fa["weight"][()]
        assert np.all(w > 0) and np.all(w <= 0.01) and w.min() < 0.01  # ε_n = min(ε, ε K̄/K_max)
        assert np.all(fa["history/langevin/kbar"][()] > 0)


def test_sigterm_then_resume_is_bit_identical(tmp_path):
    ref, out = tmp_path / "ref.h5", tmp_path / "run.h5"
    args = [*SMALL, "--walkers", "40", "--checkpoint-every", "100", "--checkpoint-seconds", "0"]
    assert main([*args, "--out", str(ref)]) == 0
    slow = ("import sys, time; import qcdhpc.kernels.cl as K; f = K.quartic_langevin; "
            "K.quartic_langevin = lambda *a, **k: (time.sleep(0.05), f(*a, **k))[1]; "
            "from qcdhpc.cli.main import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", slow, *args, "--out", str(out)], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seg = tmp_path / "run.h5.partial" / "rank0000" / "seg000003.h5"
    deadline = time.monotonic() + 60
    while not seg.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert not out.exists()
    assert main([*args, "--out", str(out)]) == 2  # needs --resume
    assert main([*args, "--out", str(out), "--resume", "--dt", "0.02"]) == 2  # other parameters
    assert main([*args, "--out", str(out), "--resume"]) == 0
    with h5py.File(ref) as fa, h5py.File(out) as fb:
        for name in ("configs", "weight", "history/langevin/langevin_time"):
            np.testing.assert_array_equal(fa[name][()], fb[name][()], err_msg=name)


@pytest.mark.parametrize("argv,needle", [
    (["--sigma", "abc"], "not a complex number"),
    (["--sigma", "nan"], "finite"),
    (["--lam", "-1"], "lam"),
    (["--sigma", "-1", "--lam", "0"], "Re"),
    (["--dt", "0"], "dt must be > 0"),
    (["--dt", "inf"], "dt must be a finite"),
    (["--steps", "2005"], "multiple of every"),
    (["--n-y", "-1"], "n_y must be >= 0"),
    (["--walkers", "0"], "walkers must be >= 1"),
    (["--seed", str(2**64)], "seed"),
    (["--therm", "0", "--adaptive"], "thermalisation"),
])
def test_bad_cl_input_refused(tmp_path, capsys, argv, needle):
    assert main([*SMALL, *argv, "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and needle.lower() in err.lower(), err
    assert list(tmp_path.iterdir()) == []
