"""EDM preconditioning (precond="edm") of the point-data score and energy models, its DSM loss weight,
and the circular-noise identity that lets CL moments be read off at a finite noise level."""
import math

import numpy as np
import pytest
import torch

from qcdhpc.diffusion.energy import EnergyMLP, EnergyScoreModel
from qcdhpc.diffusion.losses import dsm_loss
from qcdhpc.diffusion.model_io import build_model
from qcdhpc.diffusion.networks import MLPScore, ScoreModel
from qcdhpc.diffusion.sde import VESDE, VPSDE

SD = 0.625  # σ_data of the models (exact in float32, the buffer's dtype)
V = 0.25  # variance of the Gaussian data (≠ σ_data²: the network has a non-zero job)


def _coeffs(sde, t):
    a, s = sde.marginal_coeffs(t)
    sh, c = s / a, torch.sqrt(a ** 2 * SD ** 2 + s ** 2)
    c_skip, c_out = SD ** 2 / (sh ** 2 + SD ** 2), sh * SD / torch.sqrt(sh ** 2 + SD ** 2)
    return a, s, 1 / c, c_skip, c_out


class OptimalF(torch.nn.Module):
    """F* of EDM for data N(0, V I): D* = E[x̂_0|x] = V/(V + ŝ²) x̂, F* = (D* − c_skip x̂)/c_out."""

    def __init__(self, sde):
        super().__init__()
        self.sde = sde

    def k(self, tau):  # F* = k(t) u with u = c_in x; the backbone sees τ = c_noise ∈ [0, 1], not t
        ends = torch.tensor([1e-5, self.sde.T], dtype=torch.float64)
        a_e, s_e = self.sde.marginal_coeffs(ends)
        lo, hi = torch.log(s_e / a_e)
        t = self.sde.t_of_rel_std(torch.exp(lo + tau * (hi - lo)))
        a, s, c_in, c_skip, c_out = _coeffs(self.sde, t)
        sh = s / a
        return (V / (V + sh ** 2) - c_skip) / (c_out * a * c_in)

    def forward(self, u, t):
        return self.k(t)[:, None] * u

    def phi(self, u, t):  # −∇_u φ = F*
        return -0.5 * self.k(t) * u.pow(2).sum(-1)


@pytest.mark.parametrize("sde", [VESDE(), VPSDE()], ids=["ve", "vp"])
def test_edm_optimal_network_gives_the_exact_gaussian_score(sde):
    x = torch.randn(7, 2, dtype=torch.float64)
    t = torch.tensor([1e-4, 1e-3, 0.01, 0.1, 0.3, 0.7, 1.0], dtype=torch.float64)
    a, s = sde.marginal_coeffs(t)
    exact = -x / (a ** 2 * V + s ** 2)[:, None]
    sm = ScoreModel(OptimalF(sde), sde, SD, precond="edm").double()
    em = EnergyScoreModel(OptimalF(sde), sde, SD, precond="edm").double()
    assert torch.allclose(sm(x, t), exact, rtol=1e-10)
    with torch.no_grad():
        assert torch.allclose(em(x, t), exact, rtol=1e-10)
    # F ≡ 0 is the exact score of N(0, σ_data²): the skip part
    zero = ScoreModel(MLPScore(dim=2, hidden=8, n_layers=1).double(), sde, SD, precond="edm")
    assert torch.allclose(zero(x, t), -x / (a ** 2 * SD ** 2 + s ** 2)[:, None], rtol=1e-12)
    # while under "eps" the same network is not the score (the parametrisations differ)
    assert not torch.allclose(ScoreModel(OptimalF(sde), sde, SD).double()(x, t), exact, rtol=1e-3)


def test_edm_energy_score_is_minus_grad_energy():
    torch.manual_seed(1)
    m = EnergyScoreModel(EnergyMLP(dim=2, hidden=16, n_layers=2), VESDE(), SD, precond="edm").double()
    with torch.no_grad():
        m.backbone.out.weight.mul_(10)
    x = torch.randn(6, 2, dtype=torch.float64)
    for tv in (1e-4, 0.05, 0.8):
        t = torch.full((6,), tv, dtype=torch.float64)
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(m.energy(xg, t).sum(), xg)
        with torch.no_grad():
            s = m(x, t)
        assert torch.allclose(s, -g, rtol=1e-12)
        h = 1e-6
        fd = torch.stack([(m.energy(x + h * e, t) - m.energy(x - h * e, t)) / (2 * h)
                          for e in torch.eye(2, dtype=torch.float64)], dim=1)
        assert torch.allclose(s, -fd.detach(), rtol=1e-5, atol=1e-6 * float(fd.detach().abs().max()))
        # the documented energy: ½ c_in² ‖x‖² + α σ_d φ(c_in x, t) / s
        a, std, c_in, _, _ = _coeffs(m.sde, t)
        from qcdhpc.diffusion.networks import noise_condition
        phi = m.backbone.phi(x * c_in[:, None], noise_condition(m, t, a, std))
        assert torch.allclose(m.energy(x, t), 0.5 * c_in ** 2 * x.pow(2).sum(1) + a * SD * phi / std)


def test_edm_loss_is_the_unit_variance_regression_of_F():
    """w(t)‖s·score + ε‖² = ‖F_θ − F_target‖², F_target = (x̂_0 − c_skip x̂_t)/c_out (EDM eq. 8)."""
    sde = VPSDE()
    torch.manual_seed(0)
    net = MLPScore(dim=2, hidden=16, n_layers=2).double()
    with torch.no_grad():
        net.out.weight.normal_()
    model = ScoreModel(net, sde, SD, precond="edm")
    x0 = torch.randn(4096, 2, dtype=torch.float64) * 0.7
    g = torch.Generator().manual_seed(5)
    loss = dsm_loss(model, sde, x0, 1e-3, generator=g)
    g = torch.Generator().manual_seed(5)  # the same t and noise as dsm_loss draws them
    t = 1e-3 + (1 - 1e-3) * torch.rand(4096, generator=g, dtype=torch.float64)
    z = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    a, s, c_in, c_skip, c_out = _coeffs(sde, t)
    xt = a[:, None] * x0 + s[:, None] * z
    target = (x0 - c_skip[:, None] * xt / a[:, None]) / c_out[:, None]
    from qcdhpc.diffusion.networks import noise_condition

    F = net(xt * c_in[:, None], noise_condition(model, t, a, s))
    ref = (F - target).pow(2).mean()
    assert torch.isclose(loss, ref, rtol=1e-6)  # dsm_loss forms the residual in float32
    # "eps": unweighted, as before
    eps_model = ScoreModel(net, sde, SD)
    assert eps_model.loss_weight(t) is None


def test_precond_defaults_and_refusals():
    cfg = {"sde": "ve", "net": "mlp", "hidden": 8, "n_layers": 1}
    assert build_model(cfg, (2,))[0].precond == "eps"  # files written before the option: unchanged
    assert build_model({**cfg, "precond": "edm"}, (2,))[0].precond == "edm"
    assert build_model({**cfg, "net": "energy", "precond": "edm"}, (2,))[0].precond == "edm"
    with pytest.raises(ValueError, match="unknown preconditioning"):
        build_model({**cfg, "precond": "x"}, (2,))
    with pytest.raises(ValueError, match="Gaussian baseline"):
        build_model({**cfg, "precond": "edm", "baseline": "gaussian"}, (2,))
    from qcdhpc.diffusion.train import TrainConfig

    assert TrainConfig().precond == "eps"
    with pytest.raises(ValueError, match="precond must be"):
        TrainConfig(precond="ve").check()
    with pytest.raises(ValueError, match="takes no baseline"):
        TrainConfig(net="mlp", precond="edm", baseline="gaussian").check()


def test_circular_noise_leaves_holomorphic_moments_unchanged():
    """VE noise n = n_x + i n_y (independent N(0, s²)) is circular: ⟨nᵏ⟩ = 0 for k ≥ 1, so
    ⟨(z + n)ᵏ⟩ = ⟨zᵏ⟩ exactly, for any z independent of n.  Checked on a skewed, correlated
    non-Gaussian z with the noise averaged analytically over n's phase (n → n e^{2πij/K}, K > 8
    points: exact for every power up to 8) and by Monte Carlo; noise in x alone changes them."""
    rng = np.random.default_rng(0)
    N = 200_000
    x = rng.gamma(2.0, 0.4, N) - 0.8
    y = 0.3 * x ** 2 - 0.2 + 0.2 * rng.standard_normal(N)
    z = x + 1j * y
    for s in (0.05, 0.3, 1.0):
        n = s * (rng.standard_normal(N) + 1j * rng.standard_normal(N))
        K = 9
        rot = np.exp(2j * np.pi * np.arange(K) / K)
        for k in range(1, 9):
            ref = np.mean(z ** k)
            phase_avg = np.mean(np.mean((z[:, None] + n[:, None] * rot[None, :]) ** k, axis=1))
            assert abs(phase_avg - ref) < 1e-9 * max(1.0, abs(ref)) * (1 + s) ** k
            mc = (z + n) ** k - z ** k  # Monte Carlo: zero within its standard error
            err = np.std(mc.real) / math.sqrt(N) + 1j * np.std(mc.imag) / math.sqrt(N)
            d = np.mean(mc)
            assert abs(d.real) < 5 * err.real and abs(d.imag) < 5 * err.imag, (s, k, d, err)
        # real (non-circular) noise: ⟨(z + n_x)²⟩ = ⟨z²⟩ + s², detectably
        nx = s * rng.standard_normal(N)
        assert abs(np.mean((z + nx) ** 2) - np.mean(z ** 2) - s ** 2) < 0.05 * s ** 2 + 0.01
        assert abs(np.mean((z + nx) ** 2) - np.mean(z ** 2)) > 0.5 * s ** 2
