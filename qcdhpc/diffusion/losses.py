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


def dsm_loss(model, sde, x0: torch.Tensor, eps_t: float | None = None, z2: bool = False,
             translate: bool = False, generator=None, zero_mode_weight: float = 1.0) -> torch.Tensor:
    """Scalar σ²-weighted DSM loss of `model` (a ScoreModel: score(x, t)) on the batch x0; the
    k = 0 Fourier mode of the residual weighted by `zero_mode_weight` (module docstring)."""
    if z2:
        x0 = z2_flip(x0, generator)
    if translate:
        x0 = random_roll(x0, generator)
    eps_t = sde.eps_train if eps_t is None else eps_t
    B = x0.shape[0]
    t = eps_t + (sde.T - eps_t) * torch.rand(B, generator=generator, device=x0.device, dtype=x0.dtype)
    z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    mean, std = sde.marginal_prob(x0, t)
    score = model(mean + std * z, t)
    r = score.float() * std + z
    loss = torch.mean(r ** 2)
    if zero_mode_weight != 1.0:
        loss = loss + (zero_mode_weight - 1.0) * torch.mean(r.reshape(B, -1).mean(dim=1) ** 2)
    return loss
