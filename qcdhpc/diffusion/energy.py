"""Energy-based diffusion model (EBM): the score is the gradient of a learned scalar energy.

Backbone (`EnergyMLP`): a smooth MLP (SiLU, twice differentiable) v_θ(u, t) ∈ R^D of the scaled
input u and the time embedding, and φ_θ(u, t) = ½‖v_θ(u, t)‖² (Arts, Habibi, Wang, Zhou,
arXiv:2510.01328: E_θ = ½‖v_θ‖² ≥ 0).  `EnergyScoreModel` puts it under the same EDM-style scaling as
the score models (networks.ScoreModel), c_in(t) = 1/√(α²σ_data² + s²):

    E_θ(x, t)  = φ_θ(c_in(t) x, t) / (c_in(t) s(t))                       (the model's energy)
    score(x, t) = −∇_x E_θ(x, t) = −(∇_u φ_θ)(c_in x, t) / s(t)            (autograd)

so the score a sampler uses is exactly minus the gradient of `energy(x, t)`, and −∇_u φ_θ plays the
role of the score model's backbone output F_θ ≈ −ε (an O(1) regression of the same σ²-weighted DSM
loss, losses.py).  p_θ(x) ∝ exp(−E_θ(x, t_min)) is the learned density (up to the constant the
energy leaves free); `qcdhpc.cl.learned` normalises it on a grid, `mala` samples it (MCMC-EBM).

The score is conservative by construction (its curl vanishes identically), unlike a score MLP's.
While training (grad mode on) the gradient is taken with create_graph=True, so the DSM loss
back-propagates through it (double backward: ~3× the cost of a score MLP of the same size).
`odd=True` symmetrises the energy, E(x) → ½[E(x) + E(−x)] (an exactly odd score).  With the Gaussian
baseline (networks.PointGaussianScore, `--baseline gaussian`) the energy is
E_θ(x, t) = φ_θ(c_in x, t)/(c_in s) + ½ (x − αμ)ᵀ (α²C + s²I)⁻¹ (x − αμ), C the data's covariance.

`precond="edm"` (networks.ScoreModel's EDM preconditioning, the default of `qcdhpc train` for point
data): the energy whose −∇ is EDM's score −c_in² x + ασ_d c_in F_θ/s with F_θ = −∇_u φ_θ,

    E_θ(x, t) = ½ c_in(t)² ‖x‖² + α σ_d φ_θ(c_in x, c_noise(t)) / s(t)

(−∇ₓ of the second term is −ασ_d c_in (∇_u φ_θ)(c_in x)/s), i.e. the energy of N(0, σ_d² + s²/α²)
plus the network, whose weight ασ_d c_in/s ≈ σ_d/s² · s vanishes relative to the prior at large s.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .networks import check_precond, noise_condition, precond_loss_weight, time_mlp


class EnergyMLP(nn.Module):
    """v_θ(u, t): [u, emb(t)] → hidden×n_layers (SiLU) → R^dim; phi(u, t) = ½‖v‖² per sample."""

    def __init__(self, dim: int = 2, hidden: int = 128, n_layers: int = 3, temb_dim: int = 32,
                 fourier_scale: float = 16.0):
        super().__init__()
        self.dim = int(dim)
        self.embed, self.body, self.out = time_mlp(self.dim, hidden, n_layers, temb_dim, fourier_scale)
        # not zero-initialised (unlike MLPScore): at v ≡ 0 the score −J_vᵀv and its gradient in the
        # output weights both vanish (a saddle); a small output layer starts near the zero score
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()

    def forward(self, u, t):
        """v_θ(u, t), shape (B, dim)."""
        h = torch.cat([u.reshape(u.shape[0], self.dim), self.embed(t)], dim=-1)
        return self.out(self.body(h))

    def phi(self, u, t):
        """φ_θ(u, t) = ½‖v_θ(u, t)‖², shape (B,)."""
        return 0.5 * self.forward(u, t).pow(2).sum(dim=-1)


class EnergyScoreModel(nn.Module):
    """score(x, t) = −∇_x energy(x, t) with energy = φ_θ(c_in x, t) / (c_in s)  (module docstring).
    Same constructor, buffers and call signature as networks.ScoreModel (no Gaussian baseline)."""

    is_energy = True

    def __init__(self, backbone: EnergyMLP, sde, sigma_data: float = 1.0, odd: bool = False, baseline=None,
                 precond: str = "eps"):
        super().__init__()
        self.backbone, self.sde, self.baseline, self.odd = backbone, sde, baseline, bool(odd)
        self.precond = check_precond(precond, baseline)
        self.register_buffer("sigma_data", torch.tensor(float(sigma_data)))

    def loss_weight(self, t):
        return precond_loss_weight(self, t)

    def energy(self, x, t):
        """E_θ(x, t), shape (B,); x (B, *site), t (B,)."""
        alpha, std = self.sde.marginal_coeffs(t)
        c_in = torch.rsqrt(alpha ** 2 * self.sigma_data ** 2 + std ** 2).to(x.dtype)
        shape = (-1,) + (1,) * (x.dim() - 1)
        u = x * c_in.reshape(shape)
        tc = noise_condition(self, t, alpha, std)
        phi = self.backbone.phi(u, tc)
        if self.odd:
            phi = 0.5 * (phi + self.backbone.phi(-u, tc))
        if self.precond == "edm":  # ½c_in²‖x‖² + ασ_d φ/s: −∇E = −c_in² x + ασ_d c_in F/s, F = −∇_u φ
            e = (0.5 * c_in ** 2 * x.reshape(x.shape[0], -1).pow(2).sum(-1)
                 + alpha.to(x.dtype) * self.sigma_data.to(x.dtype) * phi / std.to(x.dtype))
        else:
            e = phi / (c_in * std.to(x.dtype))
        if self.baseline is not None:  # networks.PointGaussianScore: + ½(x − αμ)ᵀ Σ_t⁻¹ (x − αμ)
            e = e + self.baseline.energy(x, alpha, std)
        return e

    def forward(self, x, t):
        graph = torch.is_grad_enabled()  # training / a caller differentiating the score (curl)
        with torch.enable_grad():
            xg = x if (graph and x.requires_grad) else x.detach().requires_grad_(True)
            e = self.energy(xg, t)
            (g,) = torch.autograd.grad(e.sum(), xg, create_graph=graph)
        return -g if graph else -g.detach()


def is_energy_model(model) -> bool:
    return bool(getattr(model, "is_energy", False))


def mala(energy_fn, x, n_steps: int, step: float, generator=None, record_every: int = 0):
    """Metropolis-adjusted Langevin on π(x) ∝ exp(−E(x)) for a batch of independent chains x (B, ...).

    Proposal x' = x − h∇E(x) + √(2h) ξ, accepted with min(1, π(x')q(x|x')/(π(x)q(x'|x))),
    q(x'|x) ∝ exp(−‖x' − x + h∇E(x)‖²/(4h)).  Energies and the acceptance test in float64.
    Returns (x, accepted, proposed, records): records is a list of the states after every
    `record_every`-th step (empty if 0)."""
    if n_steps < 0 or not step > 0:
        raise ValueError(f"mala needs n_steps >= 0 and step > 0 (got {n_steps}, {step})")

    def e_and_grad(y):
        with torch.enable_grad():
            yg = y.detach().requires_grad_(True)
            e = energy_fn(yg)
            (g,) = torch.autograd.grad(e.sum(), yg)
        return e.detach().double(), g.detach()

    B = x.shape[0]
    flat = lambda a: a.reshape(B, -1).double()  # noqa: E731
    e, g = e_and_grad(x)
    accepted, records = 0, []
    for i in range(n_steps):
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        y = x - step * g + math.sqrt(2 * step) * noise
        ey, gy = e_and_grad(y)
        fwd = (flat(y) - flat(x) + step * flat(g)).pow(2).sum(1) / (4 * step)
        bwd = (flat(x) - flat(y) + step * flat(gy)).pow(2).sum(1) / (4 * step)
        log_a = -(ey - e) - bwd + fwd
        u = torch.rand(B, generator=generator, device=x.device, dtype=torch.float64)
        acc = (torch.log(u) < log_a) & torch.isfinite(ey)
        m = acc.reshape(-1, *([1] * (x.dim() - 1)))
        x, g = torch.where(m, y, x), torch.where(m, gy, g)
        e = torch.where(acc, ey, e)
        accepted += int(acc.sum())
        if record_every and (i + 1) % record_every == 0:
            records.append(x.clone())
    return x, accepted, n_steps * B, records


def mala_batches(model, sde, n: int, shape, batch_size: int, *, step: float, burn_in: int, thin: int,
                 chains: int | None = None, seed: int = 0, t_min: float | None = None, device="cpu",
                 dtype=torch.float32, first_batch: int = 0, init_std: float | None = None):
    """Yield (samples (B, *shape), accepted, proposed) per batch of MCMC-EBM draws from
    p_θ(x) ∝ exp(−E_θ(x, t_min)) (t_min = sde.eps_sample).  Batch b: `chains` chains (default: the
    batch size, one record per chain: independent draws) started from N(0, σ_data²), `burn_in`
    steps, then a record every `thin` steps until the batch is full (record-major order).
    Batch b's draws depend only on (seed, b), as the diffusion samplers' (sampling.iter_samples)."""
    t_min = sde.eps_sample if t_min is None else float(t_min)
    shape = tuple(shape)
    init_std = float(model.sigma_data) if init_std is None else float(init_std)
    for start in range(first_batch * batch_size, n, batch_size):
        b = start // batch_size
        B = min(batch_size, n - start)
        C = min(B, chains or B)
        per_chain = -(-B // C)
        gen = torch.Generator(device=device)
        gen.manual_seed(int(np.random.SeedSequence([seed, b, 0x6d616c61]).generate_state(1)[0]))
        x = init_std * torch.randn((C, *shape), generator=gen, device=device, dtype=dtype)
        tt = torch.full((C,), t_min, device=device, dtype=dtype)
        efn = lambda y: model.energy(y, tt)  # noqa: E731
        x, acc, prop, _ = mala(efn, x, burn_in, step, gen)
        _, acc2, prop2, recs = mala(efn, x, per_chain * thin, step, gen, record_every=thin)
        out = torch.cat(recs)[:B]
        yield out.cpu(), acc + acc2, prop + prop2
