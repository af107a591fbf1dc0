"""Denoising score matching (Vincent 2011; Song et al. 2021 eq. 7) with λ(t) = s(t)² weighting,
the seeds' L_θ = Σ_i σ_i² E ||s_θ(φ_i, ξ) − ∇ log p_i(φ_i|φ_0)||²:

    x_t = α(t) x_0 + s(t) ε,   ∇log p_t(x_t|x_0) = −ε / s(t)
    ⇒ s(t)² ||score − ∇log p|| ² = || s(t)·score(x_t, t) + ε ||²,   t ~ U(eps_t, T).

Averaged over sites and batch (score_sde's reduce_mean=True), so the loss is O(1) whatever the lattice.

Zero-mode weight.  By Parseval the site average is the average over the V Fourier modes of the
residual r = s·score + ε, so the k = 0 mode — the magnetisation M, whose distribution χ₂ and U_L
measure — is 1/V of the loss.  `zero_mode_weight` w multiplies that one term:

    L_w = ⟨ (1/V) Σ_x r(x)²  +  (w − 1) · ( (1/V) Σ_x r(x) )² ⟩      (w = V: M weighs as much as all
                                                                      other modes together)

Preconditioning "edm" (networks.ScoreModel.loss_weight) multiplies each sample's term by EDM's
λ(t) = (α²σ_d² + s²)/(α²σ_d²) = 1/c_out²: any positive λ(t) has the same minimiser.

Any positive per-mode weighting of the DSM regression has the same minimiser, the true score (each
Fourier mode of the residual is regressed separately; Song et al. 2021 allow any λ(t) > 0 per
dimension); w only moves the network's capacity and the optimiser's attention to the order parameter.
"""
from __future__ import annotations

import torch


def z2_flip(x0: torch.Tensor, generator=None) -> torch.Tensor:
    """φ → −φ for a random half of the samples: S[φ] = S[−φ] for φ⁴ (and any Z₂-symmetric data)."""
    sign = torch.randint(0, 2, (x0.shape[0],), generator=generator, device=x0.device) * 2 - 1
    return x0 * sign.reshape(-1, *([1] * (x0.dim() - 1))).to(x0.dtype)


def random_roll(x0: torch.Tensor, generator=None) -> torch.Tensor:
    """An independent random periodic translation of each (B, L0, L1) sample (lattice symmetry)."""
    B, L0, L1 = x0.shape
    s0 = torch.randint(0, L0, (B, 1), generator=generator, device=x0.device)
    s1 = torch.randint(0, L1, (B, 1), generator=generator, device=x0.device)
    i = (torch.arange(L0, device=x0.device)[None, :] - s0) % L0  # (B, L0): out[b, x] = in[b, x − s]
    j = (torch.arange(L1, device=x0.device)[None, :] - s1) % L1
    return x0[torch.arange(B, device=x0.device)[:, None, None], i[:, :, None], j[:, None, :]]


T_SAMPLINGS = ("uniform", "log-uniform", "lognormal")
LOGNORMAL = (-1.2, 1.2)  # EDM's P_mean, P_std of ln(s/α)


def sample_times(sde, B: int, eps_t: float, kind: str = "uniform", generator=None, device="cpu",
                 dtype=torch.float32) -> torch.Tensor:
    """(B,) training times in [eps_t, T]: "uniform" t ~ U(eps_t, T) (score_sde, the seeds'); by noise
    level ŝ = s/α (sde.t_of_rel_std): "log-uniform" ln ŝ ~ U(ln ŝ(eps_t), ln ŝ(T)) (VE σ = 25: half
    the draws have s < 0.2, against 3.5% for uniform t), "lognormal" ln ŝ ~ N(−1.2, 1.2²) (EDM),
    clamped to [eps_t, T].  Changing the distribution of t reweights the DSM loss per noise level,
    which leaves its minimiser (the true score) unchanged; it moves the network's effort."""
    u = torch.rand(B, generator=generator, device=device, dtype=torch.float64)
    if kind == "uniform":
        return (eps_t + (sde.T - eps_t) * u).to(dtype)
    if kind not in T_SAMPLINGS:
        raise ValueError(f"unknown time sampling {kind!r}; choose one of {', '.join(T_SAMPLINGS)}")
    ends = torch.tensor([eps_t, sde.T], dtype=torch.float64, device=device)
    alpha, std = sde.marginal_coeffs(ends)
    lo, hi = torch.log(std / alpha)
    if kind == "log-uniform":
        log_s = lo + (hi - lo) * u
    else:  # Box–Muller from the same uniform stream (one generator draw per sample pair)
        u2 = torch.rand(B, generator=generator, device=device, dtype=torch.float64)
        g = torch.sqrt(-2.0 * torch.log1p(-u)) * torch.cos(2.0 * torch.pi * u2)
        log_s = LOGNORMAL[0] + LOGNORMAL[1] * g
    t = sde.t_of_rel_std(torch.exp(log_s)).clamp(eps_t, sde.T)
    return t.to(dtype)


def dsm_loss(model, sde, x0: torch.Tensor, eps_t: float | None = None, z2: bool = False,
             translate: bool = False, generator=None, zero_mode_weight: float = 1.0,
             t_sampling: str = "uniform") -> torch.Tensor:
    """Scalar σ²-weighted DSM loss of `model` (a ScoreModel: score(x, t)) on the batch x0; the
    k = 0 Fourier mode of the residual weighted by `zero_mode_weight` (module docstring); training
    times drawn by `sample_times(kind=t_sampling)`."""
    if z2:
        x0 = z2_flip(x0, generator)
    if translate:
        x0 = random_roll(x0, generator)
    eps_t = sde.eps_train if eps_t is None else eps_t
    B = x0.shape[0]
    if t_sampling == "uniform":  # the original draw, bit for bit
        t = eps_t + (sde.T - eps_t) * torch.rand(B, generator=generator, device=x0.device, dtype=x0.dtype)
    else:
        t = sample_times(sde, B, eps_t, t_sampling, generator, x0.device, x0.dtype)
    z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    mean, std = sde.marginal_prob(x0, t)
    score = model(mean + std * z, t)
    r = score.float() * std + z
    inner = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    w = inner.loss_weight(t) if hasattr(inner, "loss_weight") else None
    if w is None:  # unweighted (ε-parametrisation): the original reduction, bit for bit
        loss = torch.mean(r ** 2)
        if zero_mode_weight != 1.0:
            loss = loss + (zero_mode_weight - 1.0) * torch.mean(r.reshape(B, -1).mean(dim=1) ** 2)
        return loss
    per = r.reshape(B, -1).pow(2).mean(dim=1)
    if zero_mode_weight != 1.0:
        per = per + (zero_mode_weight - 1.0) * r.reshape(B, -1).mean(dim=1) ** 2
    return (w.to(per.dtype) * per).mean()
