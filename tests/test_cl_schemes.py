"""Step-size behaviour and correctness diagnostics of complex Langevin for the quartic model
(σ₀ = 1 + i, λ = 1): Euler's bias is O(ε) and Heun's O(ε²) (measured, not assumed), the adaptive step
keeps runs stable where a fixed step runs away, measure's ε → 0 extrapolation, the |K| histogram
and boundary-term diagnostics, and the measurement of (x, y) samples containers."""
import json

import h5py
import numpy as np
import pytest

from qcdhpc.cl import exact
from qcdhpc.cli.main import main
from qcdhpc.io.containers import create_history, create_samples
from qcdhpc.kernels import cl as K
from qcdhpc.observables.cl_diagnostics import boundary_curve, drift_histogram

EXACT_MU2 = exact.moments(1 + 1j, 1.0, orders=(2,))[2]


def mu2_bias(dt, scheme, walkers=8000, T=100.0, therm=5.0, seed=1):
    """(Re μ₂(ε) − exact, its error) from `walkers` walkers over Langevin time T."""
    z, t, ra = np.zeros(walkers, np.complex128), np.zeros(walkers), np.zeros(walkers, np.uint8)
    n0 = int(round(therm / dt))
    K.quartic_langevin(z, sigma=1 + 1j, lam=1.0, dt=dt, nsteps=n0, every=n0, scheme=scheme, seed=seed, t=t, runaway=ra)
    n, every = int(round(T / dt)), max(1, int(round(0.1 / dt)))
    r = K.quartic_langevin(z, sigma=1 + 1j, lam=1.0, dt=dt, nsteps=n, every=every, scheme=scheme, seed=seed,
                           step_offset=n0, t=t, runaway=ra)
    assert r.n_runaway == 0
    per_walker = (np.asarray(r.records) ** 2).mean(axis=1).real
    return per_walker.mean() - EXACT_MU2.real, per_walker.std(ddof=1) / np.sqrt(walkers)


@pytest.mark.parametrize("scheme, dts, order", [("euler", (0.08, 0.04, 0.02), 1), ("heun", (0.16, 0.08, 0.04), 2)])
def test_step_bias_order(scheme, dts, order):
    """Fit |bias| = c ε^p through three steps (weighted, in logs): p within 0.4 of the scheme's order and
    more than 0.6 from the other one.  (Heun's higher orders make p ≈ 2.3 at these ε.)"""
    b, e = np.array([mu2_bias(dt, scheme) for dt in dts]).T
    assert np.all(np.abs(b) > 3 * e), (b, e)  # each bias resolved
    lx, ly, w = np.log(dts), np.log(np.abs(b)), (np.abs(b) / e) ** 2
    p = np.polyfit(lx, ly, 1, w=np.sqrt(w))[0]
    assert abs(p - order) < 0.4 and abs(p - (3 - order)) > 0.6, (scheme, p, b, e)
    if scheme == "euler":  # the measured slope dμ₂/dε ≈ 0.30 (real part)
        assert 0.25 < b[-1] / dts[-1] < 0.36


def test_adaptive_step_keeps_walkers_where_fixed_step_runs_away(tmp_path):
    args = ["cl", "--walkers", "400", "--therm", "200", "--steps", "2000", "--every", "10", "--dt", "0.22",
            "--scheme", "euler", "--seed", "1", "--quiet"]
    fixed, adaptive = tmp_path / "fixed.h5", tmp_path / "adaptive.h5"
    assert main([*args, "--out", str(fixed)]) == 0
    assert main([*args, "--adaptive", "--out", str(adaptive)]) == 0
    res = {}
    for f in (fixed, adaptive):
        js = tmp_path / f"{f.stem}.json"
        assert main(["measure", str(f), "--out", str(js), "--quiet"]) == 0
        res[f.stem] = json.loads(js.read_text())
        with h5py.File(f) as h:
            assert h["history/langevin"].attrs["n_runaway"] == res[f.stem]["n_runaway"]
    assert res["fixed"]["n_runaway"] > 100  # counted and reported ...
    assert all(q["value"] is not None and np.isfinite(q["value"]) for q in res["fixed"]["observables"].values())
    assert res["adaptive"]["n_runaway"] == 0  # ... where the adaptive step keeps every walker


def test_every_walker_running_away_fails_the_run(tmp_path, capsys):
    out = tmp_path / "x.h5"
    code = main(["cl", "--walkers", "50", "--therm", "0", "--steps", "500", "--every", "10", "--dt", "0.8",
                 "--scheme", "euler", "--quiet", "--out", str(out)])
    assert code == 1 and not out.exists()
    assert "ran away" in capsys.readouterr().err


def test_extrapolate_dt(tmp_path, capsys):
    """Two Euler runs (ε = 0.04, 0.02): the linear ε → 0 limit of Re μ₂ is within 3σ of exact while the
    ε = 0.04 run alone is many σ off; mixing schemes is refused."""
    files = []
    for dt in ("0.04", "0.02"):
        f = tmp_path / f"e{dt}.h5"
        assert main(["cl", "--walkers", "3000", "--therm", "200", "--steps", "4000", "--every", "10", "--dt", dt,
                     "--scheme", "euler", "--seed", "3", "--quiet", "--out", str(f)]) == 0
        files.append(str(f))
    js = tmp_path / "ex.json"
    assert main(["measure", *files, "--extrapolate-dt", "--out", str(js), "--quiet"]) == 0
    res = json.loads(js.read_text())
    assert res["extrapolation"]["power"] == 1 and res["extrapolation"]["dt"] == [0.04, 0.02]
    q, q0 = res["observables"]["mu2_re"], res["runs"][0]["observables"]["mu2_re"]
    assert abs(q["value"] - q["exact"]) < 3 * q["error"], q
    assert abs(q0["value"] - q0["exact"]) > 5 * q0["error"], q0
    assert 0.2 < q["slope"] < 0.4
    heun = tmp_path / "h.h5"
    assert main(["cl", "--walkers", "50", "--therm", "0", "--steps", "100", "--every", "10", "--quiet",
                 "--out", str(heun)]) == 0
    capsys.readouterr()
    assert main(["measure", files[0], str(heun), "--extrapolate-dt", "--out", str(tmp_path / "bad.json")]) == 2
    assert "schemes" in capsys.readouterr().err
    assert main(["measure", *files, "--out", str(tmp_path / "bad.json")]) == 2  # several without the flag
    assert not (tmp_path / "bad.json").exists()


def test_drift_histogram_tells_exponential_from_power_law():
    rng = np.random.default_rng(1)
    assert drift_histogram(np.abs(rng.standard_normal(100_000)))["tail"]["verdict"].startswith("falls off")
    assert drift_histogram(rng.exponential(size=100_000))["tail"]["verdict"].startswith("falls off")
    assert drift_histogram(rng.pareto(3.0, size=100_000) + 1)["tail"]["verdict"].startswith("heavier")


def test_boundary_curve_is_the_cut_average():
    """B(Y) is the time-weighted average of L_c O over records with |Im z| <= Y; the last point is the
    full average (jackknife over walkers)."""
    rng = np.random.default_rng(0)
    lco = rng.standard_normal((50, 40)) + 1j * rng.standard_normal((50, 40))
    im = rng.random((50, 40))
    w = np.full((50, 40), 0.01)
    b = boundary_curve(lco, im, w, n_y=4)
    assert b["Y"][-1] == pytest.approx(im.max())
    assert b["re"][-1] == pytest.approx(lco.real.mean()) and b["im"][-1] == pytest.approx(lco.imag.mean())
    y1 = b["Y"][0]
    assert b["re"][0] == pytest.approx(((lco.real * (im <= y1)).mean(axis=1)).mean())
    assert b["re_error"][-1] == pytest.approx(lco.real.mean(axis=1).std(ddof=1) / np.sqrt(50), rel=1e-9)


def test_quartic_diagnostics_in_measure(tmp_path):
    out = tmp_path / "q.h5"
    assert main(["cl", "--walkers", "1000", "--therm", "200", "--steps", "2000", "--every", "10", "--dt", "0.01",
                 "--seed", "2", "--quiet", "--out", str(out)]) == 0
    js, plots = tmp_path / "q.json", tmp_path / "plots"
    assert main(["measure", str(out), "--out", str(js), "--plots", str(plots), "--quiet"]) == 0
    d = json.loads(js.read_text())["diagnostics"]
    assert 0 < d["max_abs_im"] < 1.0  # real noise: the walkers stay in a strip around the real axis
    assert d["drift_histogram"]["tail"]["verdict"].startswith("falls off")
    for name in ("z2", "z4"):
        last = d["boundary_terms"][name]["at_max"]
        assert last["sigma"] < 4, (name, last)
    assert sorted(p.name for p in plots.iterdir()) == ["q_boundary_terms.png", "q_drift_hist.png"]


def test_samples_container_of_xy_pairs_is_measured(tmp_path):
    """A samples container of (x, y) pairs (what a diffusion model of CL samples writes) gives the
    moments of z = x + iy with jackknife errors over samples."""
    rng = np.random.default_rng(4)
    xy = np.stack([rng.normal(0.6, 0.4, 5000), rng.normal(-0.1, 0.2, 5000)], axis=1).astype(np.float32)
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        create_samples(f, n=len(xy), site_shape=(2,), dtype=np.float32, theory="cl-quartic",
                       attrs={"sigma": [1.0, 1.0], "lam": 1.0})
        f["configs"][...] = xy
        create_history(f, "sampler", attrs={"sampler": "test"})
    js = tmp_path / "s.json"
    assert main(["measure", str(path), "--out", str(js), "--quiet"]) == 0
    res = json.loads(js.read_text())
    z = xy[:, 0].astype(np.float64) + 1j * xy[:, 1]
    for n in (2, 4):
        assert res["observables"][f"mu{n}_re"]["value"] == pytest.approx((z ** n).mean().real, rel=1e-12)
        assert res["observables"][f"mu{n}_im"]["value"] == pytest.approx((z ** n).mean().imag, rel=1e-12)
    err = res["observables"]["mu2_re"]["error"]
    assert err == pytest.approx((z ** 2).real.std(ddof=1) / np.sqrt(len(z)), rel=1e-6)
    assert res["source"] == "samples" and res["observables"]["mu2_re"]["exact"] == pytest.approx(EXACT_MU2.real)
