"""The relativistic Bose gas at chemical potential μ under complex Langevin (`qcdhpc cl --model bose`):
the free gas against its exact lattice Fourier sum, μ = 0 (a real action) against an independent
numpy HMC of the same action, the boundary-term integrands against finite differences, resume and
refusals."""
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from qcdhpc.cl import exact
from qcdhpc.cl.langevin import boundary_integrands
from qcdhpc.cl.models import BoseGas
from qcdhpc.cli.main import main
from qcdhpc.io.containers import open_container


def run_and_measure(tmp_path, name, *args):
    out = tmp_path / f"{name}.h5"
    assert main(["cl", "--model", "bose", *args, "--out", str(out), "--quiet"]) == 0
    js = tmp_path / f"{name}.json"
    assert main(["measure", str(out), "--out", str(js), "--quiet"]) == 0
    return out, json.loads(js.read_text())


def test_free_gas_matches_fourier_sum(tmp_path):
    """λ = 0, μ = 0.5 < μ_c on 4⁴: ⟨n⟩ and ⟨φ*φ⟩ within 3σ of the exact sums (qcdhpc.cl.exact),
    Im parts consistent with 0; the measure JSON carries the exact values."""
    _, res = run_and_measure(tmp_path, "free", "--N", "4", "--d", "4", "--lam", "0", "--mu", "0.5",
                             "--walkers", "8", "--therm", "1000", "--steps", "12000", "--every", "10",
                             "--dt", "0.005", "--seed", "2")
    obs = res["observables"]
    assert obs["density_re"]["exact"] == pytest.approx(exact.free_bose_density(4, 4, 1.0, 0.5), rel=1e-12)
    assert obs["phi2_re"]["exact"] == pytest.approx(exact.free_bose_phi2(4, 4, 1.0, 0.5), rel=1e-12)
    for name in ("density_re", "density_im", "phi2_re", "phi2_im"):
        q = obs[name]
        assert q["error"] > 0 and abs(q["value"] - q["exact"]) < 3 * q["error"], (name, q)
    assert obs["density_re"]["value"] > 5 * obs["density_re"]["error"]  # a nonzero thermal density, resolved
    assert res["n_runaway"] == 0 and res["diagnostics"]["max_abs_im"] > 0


def numpy_hmc_phi2(g: BoseGas, chains=64, ntraj=1500, nmd=8, tau=1.0, therm=300, seed=0):
    """⟨φ*φ⟩ of the μ = 0 (real) action by a plain numpy HMC on real fields, using only the model's action
    and drift (qcdhpc.cl.models) — no kernel, no Langevin.  Error: over independent chains."""
    rng = np.random.default_rng(seed)
    phi = np.zeros((chains, *g.shape))
    axes = tuple(range(1, phi.ndim))
    S = lambda p: g.action(p).real  # noqa: E731
    F = lambda p: g.drift(p).real  # noqa: E731  (K = −∂S/∂φ)
    s0, h, obs = S(phi), tau / nmd, []
    for t in range(ntraj):
        pi = rng.standard_normal(phi.shape)
        H0 = s0 + 0.5 * (pi ** 2).sum(axis=axes)
        q, p = phi.copy(), pi + 0.5 * h * F(phi)
        for k in range(nmd):
            q = q + h * p
            p = p + (h if k < nmd - 1 else 0.5 * h) * F(q)
        s1 = S(q)
        acc = rng.random(chains) < np.exp(np.minimum(0.0, H0 - s1 - 0.5 * (p ** 2).sum(axis=axes)))
        phi[acc], s0 = q[acc], np.where(acc, s1, s0)
        if t >= therm:
            obs.append(g.phi2(phi).real)
    per_chain = np.array(obs).mean(axis=0)
    return per_chain.mean(), per_chain.std(ddof=1) / np.sqrt(chains)


def test_mu0_matches_independent_hmc(tmp_path):
    """μ = 0 makes the action real: CL is then real Langevin, and ⟨φ*φ⟩ must agree with an exact
    (Metropolis-corrected) HMC of the same action on 4² at m = λ = 1."""
    g = BoseGas(4, 2, 1.0, 1.0, 0.0)
    ref, ref_err = numpy_hmc_phi2(g)
    _, res = run_and_measure(tmp_path, "mu0", "--N", "4", "--d", "2", "--mu", "0", "--walkers", "32",
                             "--therm", "1000", "--steps", "20000", "--every", "10", "--dt", "0.005", "--seed", "5")
    q = res["observables"]["phi2_re"]
    assert abs(q["value"] - ref) < 3 * np.hypot(q["error"], ref_err), (q, ref, ref_err)
    assert res["observables"]["density_re"]["value"] == 0.0  # sinh 0 = 0 and fields stay real
    assert res["observables"]["phi2_im"]["value"] == 0.0


def test_boundary_integrands_match_finite_differences():
    """L_c O = Σ_{a,x} (∂² O + K ∂O) for O = φ*φ and n, against central differences of the model's
    holomorphic observables at a random complex configuration (N = 3, d = 2, μ = 0.7)."""
    g = BoseGas(3, 2, 0.8, 0.6, 0.7)
    rng = np.random.default_rng(3)
    phi = rng.standard_normal(g.shape) + 0.3j * rng.standard_normal(g.shape)
    K = g.drift(phi)
    h = 1e-4
    want = {}
    for name, O in (("phi2", g.phi2), ("density", g.density)):
        total = 0.0
        for idx in np.ndindex(*g.shape):
            e = np.zeros(g.shape)
            e[idx] = h
            op, om, o0 = O(phi + e), O(phi - e), O(phi)
            total += (op - 2 * o0 + om) / h ** 2 + K[idx] * (op - om) / (2 * h)
        want[name] = total
    lc_phi2, lc_n, imax = boundary_integrands(g, phi[None])
    assert lc_phi2[0] == pytest.approx(want["phi2"], abs=1e-6)
    assert lc_n[0] == pytest.approx(want["density"], abs=1e-6)
    assert imax[0] == pytest.approx(np.abs(phi.imag).max())


def test_checkpoint_interval_changes_nothing(tmp_path):
    args = ["cl", "--model", "bose", "--N", "4", "--d", "3", "--mu", "1.1", "--walkers", "3", "--therm", "100",
            "--steps", "600", "--every", "20", "--dt", "0.01", "--adaptive", "--seed", "9", "--quiet"]
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert main([*args, "--out", str(a)]) == 0
    assert main([*args, "--checkpoint-every", "60", "--out", str(b)]) == 0
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for name in ("weight", *(f"observables/{k}" for k in fa["observables"]),
                     "history/langevin/final_fields", "history/langevin/kbar"):
            assert np.array_equal(fa[name][()], fb[name][()], equal_nan=True), name
    with open_container(a) as c:
        assert c.kind == "walkers" and c.theory == "cl-bose" and c.configs is None
        assert c.site_shape == (2, 4, 4, 4) and len(c) == 3 and c.nrecords == 30
        assert len(set(np.round(c.weight[0], 12))) > 1  # adaptive: the steps vary


@pytest.mark.parametrize("argv, needle", [
    (["--lam", "0", "--mu", "1.2"], "mu_c"),
    (["--d", "5"], "d"),
    (["--N", "1"], "N"),
    (["--m", "nan"], "m"),
    (["--mu", "inf"], "mu"),
    (["--m", "-1"], "m"),
])
def test_bad_bose_input_refused(tmp_path, capsys, argv, needle):
    out = tmp_path / "x.h5"
    assert main(["cl", "--model", "bose", *argv, "--out", str(out), "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and needle in err[0], err  # usage, then one line that names the fault
    assert not out.exists() and not Path(f"{out}.partial").exists()
