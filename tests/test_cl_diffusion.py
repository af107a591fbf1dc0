"""Score- and energy-based diffusion models of complex-Langevin points (qcdhpc.diffusion.energy,
qcdhpc.cl.learned, `qcdhpc train|sample` on cl-quartic walkers files).  Fast: tiny models."""
import json
import math
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from qcdhpc.cl import learned
from qcdhpc.cli.main import main
from qcdhpc.diffusion.energy import EnergyMLP, EnergyScoreModel, mala
from qcdhpc.diffusion.sde import VESDE
from qcdhpc.io.containers import open_container


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(min(n, 2))
    yield
    torch.set_num_threads(n)


def _ebm(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    m = EnergyScoreModel(EnergyMLP(dim=2, hidden=16, n_layers=2), VESDE(), sigma_data=0.5).to(dtype)
    with torch.no_grad():  # a non-trivial energy (the output layer starts small)
        m.backbone.out.weight.mul_(10)
    return m.eval()


def test_ebm_score_is_minus_grad_energy_by_finite_differences():
    m = _ebm()
    x = torch.randn(5, 2, dtype=torch.float64)
    for tv in (1e-3, 0.3):
        t = torch.full((5,), tv, dtype=torch.float64)
        with torch.no_grad():
            s = m(x, t)
        h = 1e-6
        fd = torch.stack([(m.energy(x + h * e, t) - m.energy(x - h * e, t)) / (2 * h)
                          for e in torch.eye(2, dtype=torch.float64)], dim=1)
        assert torch.allclose(s, -fd, rtol=1e-6, atol=1e-6 * float(fd.detach().abs().max()))
    # the energy is ½‖v‖² under the documented scaling: E = φ(c_in x, t) / (c_in s)
    a, std = m.sde.marginal_coeffs(t)
    c_in = 1 / torch.sqrt(a ** 2 * 0.25 + std ** 2)
    phi = 0.5 * m.backbone(x * c_in[:, None], t).pow(2).sum(1)
    assert torch.allclose(m.energy(x, t), phi / (c_in * std))
    # training mode: the score is differentiable in the weights (create_graph)
    m.train()
    m(x, t).pow(2).sum().backward()
    assert m.backbone.out.weight.grad is not None and m.backbone.out.weight.grad.abs().sum() > 0


def test_curl_vanishes_for_ebm_and_not_for_a_rotational_field():
    grid = learned.Grid(-1.5, 1.5, -1, 1, 31, 21)
    m = _ebm(dtype=torch.float32)
    c = learned.curl_on_grid([m, _ebm(1, torch.float32)], grid)
    scale = float(np.abs(c["score"]).max())
    assert np.abs(c["curl"]).max() < 1e-4 * scale and c["n_models"] == 2

    class Rot(torch.nn.Module):  # s = −x + ω (−y, x): curl = 2ω
        sde = VESDE()

        def forward(self, x, t):
            return -x + 0.7 * torch.stack([-x[:, 1], x[:, 0]], dim=1)

    r = learned.curl_on_grid(Rot(), grid)
    assert np.allclose(r["curl"], 1.4, atol=1e-5)


def test_grid_density_and_moments_of_a_gaussian_energy():
    a, b = 0.5, 0.1  # x ~ N(0, a), y ~ N(0, b): z = x + iy Gaussian, ⟨z²⟩ = a − b, ⟨zⁿ⟩ = (n−1)!!(a − b)^{n/2}
    grid = learned.Grid(-6, 6, -3, 3, 481, 241)
    X, Y = np.meshgrid(grid.x, grid.y, indexing="ij")
    d = learned.density_from_energy(X ** 2 / (2 * a) + Y ** 2 / (2 * b) + 3.0, grid)
    assert abs(grid.integrate(d["p"]) - 1) < 1e-12
    assert np.allclose(np.trapezoid(d["p_x"], grid.x), 1) and np.allclose(np.trapezoid(d["p_y"], grid.y), 1)
    assert np.allclose(d["p_x"], np.exp(-grid.x ** 2 / (2 * a)) / math.sqrt(2 * math.pi * a), atol=1e-8)
    for n in (2, 4, 6, 8):
        exact = math.prod(range(n - 1, 0, -2)) * (a - b) ** (n // 2)
        assert abs(d["mu"][n - 1] - exact) < 1e-8, n
    assert abs(d["mu"][0]) < 1e-12 and abs(d["kappa"][3]) < 1e-8  # Gaussian: κ₄ = 0


def test_mala_reproduces_a_gaussian():
    a, b = 0.5, 0.1
    gen = torch.Generator().manual_seed(0)
    energy = lambda x: x[:, 0] ** 2 / (2 * a) + x[:, 1] ** 2 / (2 * b)  # noqa: E731
    x, acc, prop, recs = mala(energy, torch.zeros(4000, 2, dtype=torch.float64), 300, 0.05, gen, record_every=0)
    x, acc2, prop2, recs = mala(energy, x, 200, 0.05, gen, record_every=20)
    pts = torch.cat(recs).numpy()
    r = learned.point_moments(pts)
    for n in (2, 4):
        exact = math.prod(range(n - 1, 0, -2)) * (a - b) ** (n // 2)
        err = abs(r["mu_err"][n - 1].real) * 3  # records of one chain are correlated: generous
        assert abs(r["mu"][n - 1].real - exact) < 4 * err + 0.01, (n, r["mu"][n - 1])
    assert abs(pts[:, 0].var() - a) < 0.03 and abs(pts[:, 1].var() - b) < 0.01
    assert 0.5 < (acc + acc2) / (prop + prop2) < 1.0


def test_epoch_order_equals_distributed_sampler():
    from torch.utils.data.distributed import DistributedSampler

    from qcdhpc.diffusion.train import _epoch_order

    for n, ws, rank in ((10, 1, 0), (10, 3, 2), (2, 5, 4)):
        s = DistributedSampler(range(n), num_replicas=ws, rank=rank, shuffle=True, seed=7, drop_last=False)
        s.set_epoch(3)
        assert _epoch_order(s).tolist() == list(iter(s))


# ------------------------------------------------------------------------------------ the CLI ---

def _run(capsys, argv):
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def clfile(tmp_path_factory):
    out = tmp_path_factory.mktemp("cl") / "cl.h5"
    code = main(["cl", "--model", "quartic", "--sigma", "1+1j", "--lam", "1", "--walkers", "64", "--steps",
                 "400", "--therm", "100", "--dt", "0.01", "--every", "10", "--seed", "2", "--out", str(out),
                 "--quiet"])
    assert code == 0 and out.is_file()
    return out


TRAIN = ["--epochs", "2", "--batch", "256", "--hidden", "16", "--n-layers", "2", "--device", "cpu", "--quiet"]


@pytest.mark.parametrize("net", ["mlp", "energy"])
def test_train_sample_round_trip_on_walkers(capsys, tmp_path, clfile, net):
    code, err = _run(capsys, ["train", clfile, "--net", net, "--out", tmp_path / "run", *TRAIN])
    assert code == 0, err
    from qcdhpc.diffusion.model_io import load_model

    model, sde, cfg = load_model(tmp_path / "run" / "model.pt")
    te = cfg["meta"]["training_ensemble"]
    assert te["theory"] == "cl-quartic" and te["sigma"] == [1.0, 1.0] and te["lam"] == 1.0
    assert cfg["data_shape"] == [64 * 40, 2] and cfg["translate"] is False
    assert hasattr(model, "energy") == (net == "energy")
    samplers = [["--sampler", "em", "--eps", "0.01"]]
    if net == "energy":
        samplers.append(["--sampler", "mala", "--burn-in", "20", "--thin", "2", "--chains", "50"])
    for k, extra in enumerate(samplers):
        out = tmp_path / f"s{k}.h5"
        code, err = _run(capsys, ["sample", tmp_path / "run" / "model.pt", "--n", "300", "--steps", "20",
                                  "--batch", "128", "--out", out, "--quiet", "--device", "cpu", *extra])
        assert code == 0, err
        with open_container(out, kinds=("samples",)) as c:
            x = c.configs[...]
            assert c.theory == "cl-quartic" and c.site_shape == (2,) and x.shape == (300, 2)
            assert x.dtype == np.float32 and np.isfinite(x).all()
            assert c.attrs["sigma"] == [1.0, 1.0] and c.attrs["lam"] == 1.0 and "L" not in c.attrs
            h = c.history["sampler"].attrs
            if extra[1] == "mala":
                assert h["sampler"] == "mala" and 0 < h["acceptance_rate"] <= 1 and h["proposed"] > 0
                assert h["burn_in"] == 20 and h["thin"] == 2


def _copy(src, dst, edit):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def test_cl_refusals(capsys, tmp_path, clfile):
    def runaway(f):
        f["history/langevin/runaway"][...] = 1

    def adaptive(f):
        f["history/langevin"].attrs["adaptive"] = True

    cases = [
        (["train", _copy(clfile, tmp_path / "ra.h5", runaway), "--out", tmp_path / "r1", *TRAIN],
         "train", "every one of its 64 walkers ran away"),
        (["train", _copy(clfile, tmp_path / "ad.h5", adaptive), "--out", tmp_path / "r2", *TRAIN],
         "train", "adaptive-step walkers"),
        (["train", clfile, "--translate", "--out", tmp_path / "r3", *TRAIN], "train", "no translation symmetry"),
        (["train", clfile, "--net", "unet", "--out", tmp_path / "r4", *TRAIN], "train", "--net unet needs lattice"),
        (["train", clfile, "--baseline", "gaussian+m", "--out", tmp_path / "r5", *TRAIN], "train",
         "needs lattice fields"),
    ]
    for argv, verb, reason in cases:
        code, err = _run(capsys, argv)
        lines = [ln for ln in err.splitlines() if "error:" in ln]
        assert code == 2 and len(lines) == 1 and reason in lines[0] and "Traceback" not in err, err
        assert not (tmp_path / "r1" / "model.pt").exists()
    code, err = _run(capsys, ["train", clfile, "--net", "mlp", "--out", tmp_path / "sbm", *TRAIN])
    assert code == 0, err
    for extra, reason in ((["--sampler", "mala"], "--sampler mala samples exp(-E) of an energy model"),
                          (["--sampler", "mala", "--mala-step", "0"], "--mala-step must be positive"),
                          (["--thin", "0"], "--thin must be >= 1"), (["--eps", "2"], "--eps must be in")):
        code, err = _run(capsys, ["sample", tmp_path / "sbm" / "model.pt", "--n", "10", "--out",
                                  tmp_path / "x.h5", "--quiet", *extra])
        lines = [ln for ln in err.splitlines() if "error:" in ln]
        assert code == 2 and len(lines) == 1 and reason in lines[0], err
        assert not (tmp_path / "x.h5").exists()


def test_precond_time_grid_cli(capsys, tmp_path, clfile):
    """Point data train with --precond edm by default (recorded in model.pt); sample uses the log-s
    time grid for such models; bad values and edm with a baseline are refused (exit 2, one line)."""
    from qcdhpc.diffusion.model_io import load_model

    code, err = _run(capsys, ["train", clfile, "--out", tmp_path / "edm", "--t-sampling", "lognormal", *TRAIN])
    assert code == 0, err
    model, _, cfg = load_model(tmp_path / "edm" / "model.pt")
    assert cfg["precond"] == "edm" and model.precond == "edm" and cfg["t_sampling"] == "lognormal"
    code, err = _run(capsys, ["train", clfile, "--precond", "eps", "--out", tmp_path / "eps", *TRAIN])
    assert code == 0, err
    assert load_model(tmp_path / "eps" / "model.pt")[2]["precond"] == "eps"
    code, err = _run(capsys, ["train", clfile, "--baseline", "gaussian", "--out", tmp_path / "g", *TRAIN])
    assert code == 0, err  # a baseline without --precond: eps (edm takes none)
    assert load_model(tmp_path / "g" / "model.pt")[2]["precond"] == "eps"
    for argv, reason in ((["--precond", "edm", "--baseline", "gaussian"], "--precond edm takes no --baseline"),
                         (["--precond", "x"], "invalid choice"), (["--t-sampling", "x"], "invalid choice")):
        code, err = _run(capsys, ["train", clfile, "--out", tmp_path / "bad", *TRAIN, *argv])
        lines = [ln for ln in err.splitlines() if "error:" in ln]
        assert code == 2 and len(lines) == 1 and reason in lines[0] and "Traceback" not in err, err
        assert not (tmp_path / "bad" / "model.pt").exists()
    for run, grid in (("edm", "log-s"), ("eps", None)):
        out = tmp_path / f"{run}.h5"
        code, err = _run(capsys, ["sample", tmp_path / run / "model.pt", "--n", "50", "--steps", "10", "--eps",
                                  "0.03", "--out", out, "--quiet", "--device", "cpu"])
        assert code == 0, err
        with open_container(out, kinds=("samples",)) as c:
            assert np.isfinite(c.configs[...]).all()
            assert json.loads(c.history["sampler"].attrs["options"]).get("time_grid") == grid
    code, err = _run(capsys, ["sample", tmp_path / "eps" / "model.pt", "--n", "10", "--time-grid", "x",
                              "--out", tmp_path / "x.h5", "--quiet"])
    assert code == 2 and "invalid choice" in err


def test_log_s_time_grid():
    from qcdhpc.diffusion.sampling import _time_grid
    from qcdhpc.diffusion.sde import VPSDE

    for sde in (VESDE(), VPSDE()):
        ts = _time_grid(sde, 50, 0.01, "cpu", "log-s")
        assert ts[0] == sde.T and ts[-1] == 0.01 and (ts[1:] < ts[:-1]).all()
        a, s = sde.marginal_coeffs(ts)
        r = torch.diff(torch.log(s / a))
        assert torch.allclose(r, r[0].expand_as(r), rtol=1e-9)
        assert torch.equal(_time_grid(sde, 50, 0.01, "cpu"), torch.linspace(sde.T, 0.01, 51, dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown time grid"):
        _time_grid(VESDE(), 5, 0.01, "cpu", "x")
