"""qcdhpc measure: estimators against direct formulas and exact free-field results; Γ-method errors
checked on AR(1) chains (τ_int and coverage); jackknife for independent samples; JSON layouts; the
pyerrors file.

The ensembles are written here with qcdhpc.io.containers (no HMC run needed): Markov chains of exact
free-field draws, x_t = ρ x_{t−1} + √(1−ρ²) η_t with η_t ~ exp(−½φᵀKφ) — stationary, with the exact
free-field distribution and a known autocorrelation — and a synthetic HMC history."""
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.signal import lfilter

from qcdhpc.io.atomic import atomic_h5
from qcdhpc.io.containers import create_fields, create_history, create_samples, open_container, write_rows
from qcdhpc.observables import correlator, distributions, errors, measure, phi4

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
NAMES = {"M", "absM", "chi2_full", "chi2_absM_conn", "UL", "action_density", "acceptance", "exp_minus_dH"}
TOP = {"format", "schema_version", "inputs", "theory", "pyerrors", "observables", "extras", "distributions", "n",
       "n_chains", "error_method", "L", "source", "params"}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "qcdhpc", "measure", *map(str, args)], env=ENV, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def free_draws(rng, n, L, kappa):
    """n exact draws of the free field S = ½φᵀKφ, K(p) = 2 − 4κ(cos p0 + cos p1): φ = F⁻¹[F(ξ)/√K]."""
    p0, p1 = 2 * np.pi * np.arange(L[0]) / L[0], 2 * np.pi * np.arange(L[1]) / L[1]
    Kp = 2 - 4 * kappa * (np.cos(p0)[:, None] + np.cos(p1)[None, :])
    xi = rng.standard_normal((n, *L))
    return np.fft.ifft2(np.fft.fft2(xi) / np.sqrt(Kp)).real


def write_fields(path, *, L=(8, 8), nchains=3, nsave=40, therm=10, kappa=0.2, lam=0.02, rho=0.5, seed=1,
                 history=True, theory="phi4"):
    """A fields container: `nchains` AR(1) chains of exact free-field draws (rows trajectory-major),
    and an HMC history with ΔH ~ N(μ, 2μ) (so ⟨e^{−ΔH}⟩ = 1 exactly), accepted with min(1, e^{−ΔH})."""
    rng = np.random.default_rng(seed)
    x = free_draws(rng, nchains, L, kappa)
    cfg = np.empty((nsave, nchains, *L))
    for t in range(nsave):
        x = rho * x + math.sqrt(1 - rho**2) * free_draws(rng, nchains, L, kappa)
        cfg[t] = x
    n, ntraj = nchains * nsave, therm + nsave
    with atomic_h5(path) as f:
        create_fields(f, n=n, site_shape=L, dtype="float64", nchains=nchains, theory=theory,
                      attrs={"kappa": kappa, "lam": lam, "L": list(L), "seed": seed, "nsave": nsave})
        write_rows(f, 0, cfg.reshape(n, *L), np.tile(np.arange(nchains), nsave),
                   np.repeat(therm + np.arange(nsave), nchains))
        if history:
            dH = rng.normal(0.05, math.sqrt(0.1), (nchains, ntraj))
            g = create_history(f, "hmc", {"dH": ((nchains, ntraj), "float64"),
                                          "accepted": ((nchains, ntraj), "uint8")}, {"n_therm": therm})
            g["dH"][...] = dH
            g["accepted"][...] = rng.random((nchains, ntraj)) < np.exp(-np.maximum(dH, 0))
    return path


def write_samples(path, configs, attrs=None, theory="phi4"):
    """A samples container (independent generated configurations) with a sampler record."""
    with atomic_h5(path) as f:
        create_samples(f, n=len(configs), site_shape=configs.shape[1:], dtype=configs.dtype, theory=theory,
                       attrs={"kappa": 0.2, "lam": 0.02, **(attrs or {})})
        write_rows(f, 0, configs)
        create_history(f, "sampler", attrs={"model": "test"})
    return path


def _history(path):
    with open_container(path) as c:
        h = c.history["hmc"]
        t = h.attrs["n_therm"]
        return h["dH"][:, t:], h["accepted"][:, t:]


@pytest.fixture(scope="module")
def ensembles(tmp_path_factory):
    d = tmp_path_factory.mktemp("measure")
    return [write_fields(d / f"s{seed}.h5", seed=seed) for seed in (1, 2)]


@pytest.fixture(scope="module")
def samples_file(ensembles, tmp_path_factory):
    """A legacy generated-samples file as `qcdhpc sample` wrote it before containers had kinds: one
    "chain" and placeholder /hmc datasets, which must not be reported as HMC data."""
    path = tmp_path_factory.mktemp("gen") / "gen.h5"
    configs = _configs(ensembles[1])
    with h5py.File(path, "w") as g:
        g["configs"] = configs
        g["chain"] = np.zeros(len(configs), np.int64)
        g["traj"] = np.arange(len(configs))
        g["hmc/dH"], g["hmc/accepted"] = np.zeros((1, len(configs))), np.ones((1, len(configs)), np.uint8)
        g.attrs.update(format="qcdhpc.ensemble", format_version=1, kind="diffusion-samples",
                       kappa=0.2, lam=0.02, L=[8, 8])
    return path


def _action_by_hand(phi, kappa, lam):
    """S of each configuration, site by site: Σ_x[−2κ Σ_μ φ(x)φ(x+μ̂) + (1−2λ)φ(x)² + λφ(x)⁴]."""
    B, L0, L1 = phi.shape
    S = np.zeros(B)
    for x0 in range(L0):
        for x1 in range(L1):
            f = phi[:, x0, x1]
            hop = f * phi[:, (x0 + 1) % L0, x1] + f * phi[:, x0, (x1 + 1) % L1]
            S += -2 * kappa * hop + (1 - 2 * lam) * f**2 + lam * f**4
    return S


# --- estimators --------------------------------------------------------------------------------------

def test_values_match_direct_formulas(ensembles):
    res = measure.measure_files([ensembles[0]])
    assert set(res["observables"]) == NAMES and res["n"] == 120 and res["source"] == str(ensembles[0])
    assert res["params"]["kappa"] == 0.2 and res["params"]["L"] == [8, 8] and res["error_method"] == "gamma"
    phi = _configs(ensembles[0])
    dH, acc = _history(ensembles[0])
    V = 64
    M = phi.mean(axis=(1, 2))
    o = {k: v["value"] for k, v in res["observables"].items()}
    assert o["M"] == pytest.approx(M.mean(), rel=1e-12, abs=1e-15)
    assert o["absM"] == pytest.approx(np.abs(M).mean(), rel=1e-12)
    assert o["chi2_full"] == pytest.approx(V * (M**2).mean(), rel=1e-12)
    assert o["chi2_absM_conn"] == pytest.approx(V * ((M**2).mean() - np.abs(M).mean() ** 2), rel=1e-10)
    assert res["extras"]["chi2_conn"]["value"] == pytest.approx(V * ((M**2).mean() - M.mean() ** 2), rel=1e-10)
    assert o["UL"] == pytest.approx(1 - (M**4).mean() / (3 * (M**2).mean() ** 2), rel=1e-10)
    S = _action_by_hand(phi, kappa=0.2, lam=0.02)  # vectorised estimator == the sum site by site
    assert o["action_density"] == pytest.approx(S.mean() / V, rel=1e-12)
    assert o["acceptance"] == pytest.approx(acc.mean(), rel=1e-12)
    assert o["exp_minus_dH"] == pytest.approx(np.exp(-dH).mean(), rel=1e-12)
    # C(t) by the definition, without FFT: (1/L0) Σ_x0 φ̄(x0) φ̄(x0+t)
    bar = phi.mean(axis=2)
    C = [np.mean([(bar[:, x] * bar[:, (x + t) % 8]).mean() for x in range(8)]) for t in range(8)]
    assert res["extras"]["C_t"]["value"] == pytest.approx(C, rel=1e-10)
    assert res["extras"]["phi2"]["value"] == pytest.approx((phi**2).mean(), rel=1e-12)
    for name, v in res["observables"].items():
        assert np.isfinite(v["error"]) and v["error"] >= 0 and v["tau_int"] > 0, name
    assert res["observables"]["chi2_full"]["error"] > 0
    e = res["observables"]["exp_minus_dH"]  # ⟨e^{-ΔH}⟩ = 1 within errors (ΔH ~ N(μ, 2μ))
    assert abs(e["value"] - 1) < 4 * e["error"] + 1e-6


def test_torch_batches_and_cosh_mass():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((5, 6, 4))
    for f in (phi4.magnetisation, correlator.timeslice_correlator, lambda c: phi4.action_density(c, 0.2, 0.1)):
        assert np.allclose(f(torch.from_numpy(x)), f(x), rtol=1e-14, atol=0)
    # a single cosh gives m_eff = m at every t, for even and odd L0 (the solver is exact, not log-ratio)
    for L0 in (8, 9, 16):
        C = np.cosh(0.37 * (np.arange(L0) - L0 / 2))
        assert correlator.effective_mass(C) == pytest.approx(np.full(L0 // 2, 0.37), rel=1e-10)
    assert np.isnan(correlator.effective_mass(np.array([1.0, 2.0, 1.0, 0.5]))[0])  # C rises: no mass


# --- free field: exact results reproduced within 3σ of our own errors ---------------------------------

def _free_exact(L0, L1, kappa):
    """S = ½φᵀKφ ⇒ ⟨φ_x φ_y⟩ = K⁻¹_xy = (1/V) Σ_p e^{ip(x−y)} / K(p), K(p) = 2 − 4κ(cos p0 + cos p1).
    Averaging x1, y1 over a time slice keeps only p1 = 0:  C(t) = (1/V) Σ_p0 cos(p0 t) / K(p0, 0)."""
    V = L0 * L1
    p0, p1 = 2 * np.pi * np.arange(L0) / L0, 2 * np.pi * np.arange(L1) / L1
    Kp = 2 - 4 * kappa * (np.cos(p0)[:, None] + np.cos(p1)[None, :])
    C = (np.cos(np.outer(np.arange(L0), p0)) / Kp[:, 0]).sum(axis=1) / V
    # Σ_p0 cos(p0 t)/(a − b cos p0) ∝ cosh(E(t − L0/2)) exactly, cosh E = a/b = (2 − 4κ)/(4κ)
    return {"chi2_full": 1 / (2 - 8 * kappa), "phi2": (1 / Kp).mean(), "C_t": C,
            "action_density": 0.5,  # equipartition: ⟨½φᵀKφ⟩ = V/2
            "m_eff": np.full(L0 // 2, np.arccosh((1 - 2 * kappa) / (2 * kappa)))}


@pytest.mark.parametrize("L", [(8, 8), (12, 6)])
def test_free_field_exact(tmp_path, L):
    kappa = 0.2
    path = write_fields(tmp_path / "free.h5", L=L, kappa=kappa, lam=0.0, nchains=8, nsave=1500, rho=0.5,
                        history=False)
    res = measure.measure_file(path).result
    assert res["error_method"] == "gamma" and res["observables"]["acceptance"] is None
    exact = _free_exact(*L, kappa)
    q = {**res["observables"], **res["extras"]}
    for name in ("chi2_full", "phi2", "action_density"):
        v, e = q[name]["value"], q[name]["error"]
        assert abs(v - exact[name]) < 3 * e, (name, v, e, exact[name])
    assert q["chi2_full"]["error"] < 0.05 * exact["chi2_full"]  # resolving: a 15% error would fail
    # |M|-subtracted ≠ V⟨M²⟩; the ⟨M⟩-subtracted one is V⟨M²⟩ where ⟨M⟩ = 0
    assert abs(q["chi2_absM_conn"]["value"] - exact["chi2_full"]) > 10 * q["chi2_absM_conn"]["error"]
    assert abs(q["chi2_conn"]["value"] - exact["chi2_full"]) < 3 * q["chi2_conn"]["error"]
    # AR(1) of exact draws: τ_int of M is (1+ρ)/(2(1−ρ)) = 1.5
    assert q["M"]["tau_int"] == pytest.approx(1.5, rel=0.25)
    v, e = np.array(q["C_t"]["value"]), np.array(q["C_t"]["error"])
    assert np.all(np.abs(v - exact["C_t"]) < 3 * e), (v, e, exact["C_t"])
    assert v.sum() == pytest.approx(q["chi2_full"]["value"] / L[1], rel=1e-10)  # Σ_t C(t) = V⟨M²⟩/L1
    conn = np.array(q["C_t_absM_conn"]["value"])  # Σ_t C_absM_conn(t) = chi2_absM_conn/L1
    assert conn.sum() == pytest.approx(q["chi2_absM_conn"]["value"] / L[1], rel=1e-8)
    n = 3  # m_eff where C is still well measured
    v, e = np.array(q["m_eff"]["value"][:n]), np.array(q["m_eff"]["error"][:n])
    assert np.all(np.abs(v - exact["m_eff"][:n]) < 3 * e) and np.all(e < 0.1), (v, e, exact["m_eff"])


# --- Γ-method on AR(1) chains: x_t = ρ x_{t−1} + √(1−ρ²) ε_t, τ_int = (1+ρ)/(2(1−ρ)) -------------------

def _ar1(rng, rho, n, chains=None):
    shape = (n,) if chains is None else (n, chains)
    eps = rng.standard_normal(shape)
    eps[1:] *= math.sqrt(1 - rho**2)  # x_0 ~ N(0,1): stationary from the start
    return lfilter([1.0], [1.0, -rho], eps, axis=0)


@pytest.mark.parametrize("rho", [0.7, 0.9])
def test_tau_int_of_ar1(rho):
    exact = (1 + rho) / (2 * (1 - rho))
    pulls = []
    for seed in range(12):
        o = errors.primary({"chain0": _ar1(np.random.default_rng(seed), rho, 50_000)}, "ar")
        o.gamma_method(S=2)
        tau, dtau = o.e_tauint["ar"], o.e_dtauint["ar"]
        assert dtau < 0.1 * exact
        pulls.append((tau - exact) / dtau)
    pulls = np.array(pulls)
    # each matches within its error (|pull| < 3), and the errors are of the right size: the pulls
    # average to 0 within 3/√12 and ~68% are below 1 (a τ_int off by 10%, or dtau off by 2×, fails)
    assert np.all(np.abs(pulls) < 3), pulls
    assert abs(pulls.mean()) < 3 / math.sqrt(len(pulls)), pulls
    assert 0.4 <= np.mean(np.abs(pulls) < 1) <= 0.95, pulls


def test_error_of_mean_coverage_ar1():
    """400 independent AR(1) chains (ρ = 0.8, 2000 steps, true mean 0): |mean| < error should hold for
    68.3% of them (binomial σ = 2.3%).  The naive error σ/√N is too small by √(2τ_int) = 3 and covers ~26%."""
    X = _ar1(np.random.default_rng(42), 0.8, 2000, chains=400)
    res = [errors.summary(errors.primary({"chain0": X[:, j]}, f"rep{j}")) for j in range(400)]
    cover = np.mean([abs(r["value"]) < r["error"] for r in res])
    naive = np.mean(np.abs(X.mean(axis=0)) < X.std(axis=0, ddof=1) / math.sqrt(2000))
    assert abs(cover - 0.683) < 0.05, cover
    assert abs(naive - 0.683) > 0.05, naive
    assert np.median([r["tau_int"] for r in res]) == pytest.approx(4.5, rel=0.15)


# --- jackknife for independent samples ------------------------------------------------------------------

def test_jackknife_ratio_matches_delta_method():
    """R = ⟨x⟩/⟨y⟩ of correlated Gaussians.  Delta method: σ_R² = (1/N)[V_x/ȳ² − 2x̄C_xy/ȳ³ + x̄²V_y/ȳ⁴]."""
    rng = np.random.default_rng(7)
    N, r = 20_000, 0.9
    z = rng.standard_normal((N, 2))
    x, y = 2.0 + z[:, 0], 1.5 + 0.8 * (r * z[:, 0] + math.sqrt(1 - r**2) * z[:, 1])
    res = errors.jackknife({"x": x, "y": y}, lambda m: {"R": m["x"] / m["y"]})["R"]
    xb, yb = x.mean(), y.mean()
    cov = np.cov(x, y)
    delta = math.sqrt((cov[0, 0] / yb**2 - 2 * xb * cov[0, 1] / yb**3 + xb**2 * cov[1, 1] / yb**4) / N)
    assert res["value"] == pytest.approx(xb / yb, rel=1e-12) and res["tau_int"] == 0.5
    assert res["error"] == pytest.approx(delta, rel=0.02)
    # resampling numerator and denominator separately (ignoring their correlation) is wrong here
    uncorrelated = math.sqrt((cov[0, 0] / yb**2 + xb**2 * cov[1, 1] / yb**4) / N)
    assert abs(uncorrelated / res["error"] - 1) > 0.5


def test_samples_file_uses_jackknife(samples_file, tmp_path):
    out = tmp_path / "gen.json"
    r = _cli(samples_file, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert set(res) == TOP and res["error_method"] == "jackknife" and res["n"] == 120
    assert set(res["observables"]) == NAMES
    assert res["observables"]["acceptance"] is None and res["observables"]["exp_minus_dH"] is None
    for name in NAMES - {"acceptance", "exp_minus_dH"}:
        assert res["observables"][name]["tau_int"] == 0.5 and res["observables"][name]["error"] > 0, name
    # same configurations, same values as when read as a Markov ensemble; M by hand with σ/√N
    with h5py.File(samples_file) as f:
        M = f["configs"][()].mean(axis=(1, 2))
    m = res["observables"]["M"]
    assert m["value"] == pytest.approx(M.mean(), rel=1e-12)
    assert m["error"] == pytest.approx(M.std(ddof=1) / math.sqrt(len(M)), rel=1e-10)  # jackknife of a mean
    # minimal sample file: /configs and /chain = arange(n) only (every sample its own chain, no /hmc)
    minimal = tmp_path / "minimal.h5"
    with h5py.File(minimal, "w") as g:
        g["configs"], g["chain"] = _configs(samples_file), np.arange(120)
        g.attrs.update(format="qcdhpc.ensemble", format_version=1, kind="diffusion-samples", kappa=0.2, lam=0.02)
    res2 = measure.measure_file(minimal).result
    assert res2["error_method"] == "jackknife" and res2["observables"]["acceptance"] is None
    assert res2["observables"]["UL"] == pytest.approx(res["observables"]["UL"], rel=1e-12)
    # the same configurations in a samples container, and in a fields container with one
    # configuration per chain: independent both, same numbers
    res3 = measure.measure_file(write_samples(tmp_path / "new.h5", _configs(samples_file))).result
    one = tmp_path / "one_per_chain.h5"
    with atomic_h5(one) as f:
        create_fields(f, n=120, site_shape=(8, 8), dtype="float64", nchains=120, theory="phi4",
                      attrs={"kappa": 0.2, "lam": 0.02})
        write_rows(f, 0, _configs(samples_file), np.arange(120), np.zeros(120, np.int64))
    res4 = measure.measure_file(one).result
    for r_ in (res3, res4):
        assert r_["error_method"] == "jackknife" and r_["observables"]["exp_minus_dH"] is None
        for name in NAMES - {"acceptance", "exp_minus_dH"}:
            assert r_["observables"][name]["value"] == pytest.approx(res["observables"][name]["value"], rel=1e-12)
            assert r_["observables"][name]["error"] == pytest.approx(res["observables"][name]["error"], rel=1e-10)


def test_markov_vs_independent_from_the_container_kind(ensembles, tmp_path):
    """A fields file without /history/hmc is still Markov (Γ-method) and reports no HMC history; a
    samples file is independent whatever its history holds."""
    nohist = write_fields(tmp_path / "nohist.h5", seed=1, history=False)
    a, b = measure.measure_file(ensembles[0]).result, measure.measure_file(nohist).result
    assert a["error_method"] == b["error_method"] == "gamma"
    assert a["observables"]["acceptance"] is not None and b["observables"]["acceptance"] is None
    assert b["observables"]["chi2_full"] == a["observables"]["chi2_full"]


# --- CLI ------------------------------------------------------------------------------------------------

def test_cli_single_file_json_and_plots(ensembles, tmp_path):
    out, plots = tmp_path / "obs.json", tmp_path / "plots"
    r = _cli(ensembles[0], "--out", out, "--plots", plots)
    assert r.returncode == 0, r.stderr
    assert "chi2_full" in r.stdout and "tau_int" in r.stdout
    res = json.loads(out.read_text())
    assert set(res) == TOP and set(res["observables"]) == NAMES
    assert all(set(v) == {"value", "error", "tau_int"} for v in res["observables"].values())
    assert len(res["extras"]["C_t"]["value"]) == 8 and len(res["extras"]["m_eff"]["t"]) == 4
    assert {"M", "phi", "action_density"} <= set(res["distributions"])
    assert {p.name for p in plots.iterdir()} >= {"hist_M.png", "hist_phi.png", "correlator.png"}


def test_cli_side_by_side(ensembles, samples_file, tmp_path):
    out = tmp_path / "cmp.json"
    r = _cli(*ensembles, samples_file, "--labels", "train,test,gen", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "train" in r.stdout and "σ gen" in r.stdout
    res = json.loads(out.read_text())
    assert set(res) == {"format", "schema_version", "inputs", "theory", "pyerrors", "ensembles", "reference",
                        "compatibility", "distribution_distance"}
    assert res["inputs"] == [str(Path(p).resolve()) for p in (*ensembles, samples_file)]
    assert res["format"] == "qcdhpc.observables" and res["schema_version"] == measure.SCHEMA_VERSION
    assert [e["label"] for e in res["ensembles"]] == ["train", "test", "gen"] and res["reference"] == "train"
    assert [e["error_method"] for e in res["ensembles"]] == ["gamma", "gamma", "jackknife"]
    assert all(set(e["observables"]) == NAMES for e in res["ensembles"])
    assert set(res["compatibility"]) == {"test", "gen"}
    a, b = (res["ensembles"][i]["observables"]["chi2_absM_conn"] for i in (0, 1))
    assert res["compatibility"]["test"]["chi2_absM_conn"] == pytest.approx(
        abs(a["value"] - b["value"]) / math.hypot(a["error"], b["error"]))
    assert res["compatibility"]["gen"]["acceptance"] is None
    d = res["distribution_distance"]["gen"]["M"]
    assert set(d) == {"ks_D", "ks_p_eff", "hellinger"} and 0 <= d["ks_D"] <= 1 and 0 <= d["hellinger"] <= 1
    # gen holds test's configurations: same values and same distances to train, its own errors
    t, g = res["ensembles"][1], res["ensembles"][2]
    assert g["observables"]["UL"]["value"] == pytest.approx(t["observables"]["UL"]["value"], rel=1e-12)
    for k in ("M", "action_density"):
        for m in ("ks_D", "hellinger"):
            assert res["distribution_distance"]["gen"][k][m] == pytest.approx(res["distribution_distance"]["test"][k][m])


def test_distances_catch_shape_not_moments():
    """Same mean and variance, different shape (double peak vs Gaussian): moments agree, KS does not."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal(20_000)
    b = rng.choice([-1.0, 1.0], 20_000) * 0.95 + 0.3122 * rng.standard_normal(20_000)  # var 0.9025+0.0975
    assert abs(a.var() - b.var()) < 0.05 and abs(a.mean() - b.mean()) < 0.05
    bad, good = distributions.compare(a, b), distributions.compare(a, rng.standard_normal(20_000))
    assert bad["ks_p_eff"] < 1e-6 and good["ks_p_eff"] > 1e-3
    assert bad["hellinger"] > 5 * good["hellinger"]


def test_cli_combine_files_as_replicas(ensembles, tmp_path):
    out = tmp_path / "obs.json"
    r = _cli(*ensembles, "--combine", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert set(res) == TOP and set(res["observables"]) == NAMES
    assert res["n"] == 240 and res["n_chains"] == 6 and res["source"] == [str(p) for p in ensembles]
    assert res["params"]["seed"] == [1, 2] and res["params"]["kappa"] == 0.2


def test_clear_errors(tmp_path, ensembles, samples_file):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    r = _cli(foreign)
    assert r.returncode == 2 and "foreign.h5: not a qcdhpc file" in r.stderr
    assert "Traceback" not in r.stderr
    r = _cli(*ensembles, "--labels", "a")
    assert r.returncode == 2 and "--labels has 1 names for 2" in r.stderr
    r = _cli(*ensembles, "--labels", "a,a")
    assert r.returncode == 2 and "distinct labels" in r.stderr
    short = write_fields(tmp_path / "short.h5", L=(4, 4), nchains=2, nsave=3, therm=0)
    with pytest.raises(ValueError, match="needs >= 5 samples per chain"):
        measure.measure_files([short])
    other = write_fields(tmp_path / "other.h5", kappa=0.25 - 1e-3, nchains=1, nsave=10, therm=0)
    with pytest.raises(ValueError, match="differ in kappa"):
        measure.measure_files([ensembles[0], other])
    with pytest.raises(ValueError, match="cannot combine independent samples with Markov chains"):
        measure.measure_files([ensembles[0], samples_file])


def test_theory_chooses_the_observables(tmp_path, ensembles):
    """measure takes the observable set of the container's theory attribute and refuses others."""
    from qcdhpc.observables import theories

    assert theories.observables_for("phi4") is phi4
    for theory, reason in (("qcd", "no observables for theory 'qcd'"), (None, "names no theory")):
        path = write_fields(tmp_path / f"{theory}.h5", nsave=5, theory=theory)
        r = _cli(path)
        assert r.returncode == 2 and reason in r.stderr and "Traceback" not in r.stderr, r.stderr
    # complex fields are a layout the φ⁴ estimators refuse (by the theory module, not a crash)
    path = tmp_path / "complex.h5"
    with atomic_h5(path) as f:
        create_fields(f, n=10, site_shape=(4, 4), dtype="complex128", nchains=1, theory="phi4", attrs={})
        write_rows(f, 0, np.ones((10, 4, 4), complex), np.zeros(10, np.int64), np.arange(10))
    r = _cli(path)
    assert r.returncode == 2 and "need a real field" in r.stderr


def test_observables_do_not_import_physics_or_generators():
    """qcdhpc.observables knows neither the φ⁴ simulation code nor how samples were made."""
    code = ("import sys, qcdhpc.observables.measure, qcdhpc.observables.theories as t; t.observables_for('phi4'); "
            "bad = [m for m in sys.modules if m.startswith(('qcdhpc.phi4', 'qcdhpc.diffusion', 'qcdhpc.run', "
            "'qcdhpc._kernels', 'torch'))]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# --- the pyerrors file ----------------------------------------------------------------------------------

def _load_pyerrors(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import pyerrors as pe
    return pe, pe.input.json.load_json_dict(str(path), verbose=False, full_output=True)


def _same_as_json(q_json, o, S):
    if q_json is None:
        assert o is None
        return
    o.gamma_method(S=S)
    assert o.value == pytest.approx(q_json["value"], rel=1e-12, abs=1e-15)
    assert o.dvalue == pytest.approx(q_json["error"], rel=1e-9, abs=1e-15)


def test_pyerrors_file_loads_back_with_the_same_values_and_errors(ensembles, samples_file, tmp_path):
    out = tmp_path / "obs.json"
    r = _cli(*ensembles, samples_file, "--labels", "train,test,gen", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    pe_file = tmp_path / "obs.pyerrors.json.gz"
    assert res["pyerrors"] == pe_file.name and pe_file.exists()
    pe, d = _load_pyerrors(pe_file)
    assert d["description"]["format"] == "qcdhpc.observables"
    assert d["description"]["error_method"] == {"train": "gamma", "test": "gamma", "gen": "jackknife"}
    for e in res["ensembles"]:
        tree = d["obsdata"]["ensembles"][e["label"]]
        S = 2.0 if e["error_method"] == "gamma" else 0.0
        for name, q in e["observables"].items():
            _same_as_json(q, tree["observables"][name], S)
        for name in ("chi2_conn", "phi2"):
            _same_as_json(e["extras"][name], tree["observables"][name], S)
        for name in ("C_t", "m_eff"):
            for t, o in enumerate(tree["observables"][name]):
                v = e["extras"][name]["value"][t]
                _same_as_json(None if v is None else {"value": v, "error": e["extras"][name]["error"][t]}, o, S)
        assert set(tree["primaries"]) >= {"M", "M2", "M4", "absM", "Ct", "s"}
        if e["label"] == "train":  # correlations kept: χ₂ = V⟨M²⟩ from the primary equals the derived one
            chi = 64 * tree["primaries"]["M2"] - tree["observables"]["chi2_full"]
            chi.gamma_method()
            assert abs(chi.value) < 1e-12 and chi.dvalue < 1e-12
            assert tree["observables"]["M"].mc_names == ["train"]
            assert tree["observables"]["acceptance"].mc_names == ["train.traj"]
    # Obs of different files are independent (distinct pyerrors ensembles): their difference has the
    # errors in quadrature, as the JSON's compatibility says
    a, b = (d["obsdata"]["ensembles"][k]["observables"]["UL"] for k in ("train", "test"))
    diff = a - b
    diff.gamma_method(S=2)
    assert abs(diff.value) / diff.dvalue == pytest.approx(res["compatibility"]["test"]["UL"], rel=1e-9)


def test_pyerrors_file_of_a_single_measurement(ensembles, tmp_path):
    out = tmp_path / "single.json"
    r = _cli(ensembles[0], "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    _, d = _load_pyerrors(tmp_path / "single.pyerrors.json.gz")
    for name, q in res["observables"].items():
        _same_as_json(q, d["obsdata"]["observables"][name], 2.0)
    assert d["obsdata"]["observables"]["M"].mc_names == ["s1"]  # the file's stem names the ensemble
    # a rerun replaces both files (they are ours); a foreign file in the pyerrors file's place is kept
    assert _cli(ensembles[0], "--out", out, "--quiet").returncode == 0
    (tmp_path / "single.pyerrors.json.gz").write_text("my notes")
    r = _cli(ensembles[0], "--out", out, "--quiet")
    assert r.returncode == 2 and "pyerrors" in r.stderr
    assert (tmp_path / "single.pyerrors.json.gz").read_text() == "my notes"


def _configs(path):
    with open_container(path) as c:
        return c.configs[()]
