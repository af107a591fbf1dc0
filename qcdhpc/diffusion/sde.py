"""Forward SDEs dx = f(x, t) dt + g(t) dW on t ∈ [0, T=1], after score_sde_pytorch's `sde_lib.py`.

Every SDE here is linear in x, so its perturbation kernel is Gaussian:
    p_t(x_t | x_0) = N(x_t; α(t) x_0, s(t)² I)          (`marginal_coeffs` returns α(t), s(t))
and the reverse-time SDE (Anderson 1982; Song et al. 2021, eq. 6) and probability-flow ODE
(ibid. eq. 13) follow from f, g and the score ∇ log p_t alone (`reverse`).
"""
from __future__ import annotations

import abc
import math

import torch


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-sample (B,) coefficients -> shape (B, 1, ..., 1) broadcastable against x (B, ...)."""
    return v.reshape(v.shape[0], *([1] * (x.dim() - 1)))


class SDE(abc.ABC):
    T = 1.0
    name = "abstract"
    #: smallest time used by training (t ~ U(eps_train, T)) and where samplers stop (score_sde defaults)
    eps_train = 1e-5
    eps_sample = 1e-5

    @abc.abstractmethod
    def sde(self, x: torch.Tensor, t: torch.Tensor):
        """(drift f(x, t), diffusion g(t)); t has shape (B,), g is returned with shape (B,)."""

    @abc.abstractmethod
    def marginal_coeffs(self, t: torch.Tensor):
        """(α(t), s(t)) of the Gaussian perturbation kernel N(α x_0, s² I); shapes (B,)."""

    @abc.abstractmethod
    def prior_std(self) -> float:
        """Standard deviation of the prior p_T ≈ N(0, prior_std² I) the samplers start from."""

    @abc.abstractmethod
    def params(self) -> dict:
        """Constructor arguments as plain Python types (stored in model files)."""

    def marginal_prob(self, x0: torch.Tensor, t: torch.Tensor):
        """(mean, std) of p_t(x_t | x_0); mean has x0's shape, std is broadcastable against it."""
        alpha, std = self.marginal_coeffs(t)
        return _bcast(alpha, x0) * x0, _bcast(std, x0)

    def t_of_rel_std(self, rel_std: torch.Tensor) -> torch.Tensor:
        """The time t at which s(t)/α(t) = rel_std (the inverse of the noise schedule), for sampling
        training times by noise level (losses.sample_times)."""
        raise NotImplementedError(f"{self.name}: no inverse noise schedule")

    def prior_sampling(self, shape, generator=None, device="cpu", dtype=torch.float32) -> torch.Tensor:
        return self.prior_std() * torch.randn(shape, generator=generator, device=device, dtype=dtype)

    def corrector_alpha(self, t: torch.Tensor, n_steps: int) -> torch.Tensor:
        """α_i of the Langevin corrector (Song et al. 2021, Alg. 5): 1 except for VP (1 − β_i)."""
        return torch.ones_like(t)

    def reverse(self, score_fn, probability_flow: bool = False) -> "ReverseSDE":
        return ReverseSDE(self, score_fn, probability_flow)


class ReverseSDE:
    """dx = [f − g² ∇log p_t] dt + g dW̄ (time running from T to 0), or with probability_flow the
    ODE dx/dt = f − ½ g² ∇log p_t, whose solutions have the same marginals p_t (Song et al. 2021)."""

    def __init__(self, sde: SDE, score_fn, probability_flow: bool):
        self.forward_sde, self.score_fn, self.probability_flow = sde, score_fn, probability_flow

    def sde(self, x: torch.Tensor, t: torch.Tensor):
        drift, g = self.forward_sde.sde(x, t)
        gb = _bcast(g, x)
        score = self.score_fn(x, t)
        factor = 0.5 if self.probability_flow else 1.0
        drift = drift - factor * gb ** 2 * score
        return drift, (torch.zeros_like(g) if self.probability_flow else g)


class VESDE(SDE):
    """Variance-exploding SDE, no drift: dx = g(t) dW with g(t) = c·σ^t (σ = 25, c = 1: the seeds').

    Marginal variance s(t)² = ∫_0^t g² = c² (σ^{2t} − 1) / (2 ln σ): with c = 1 exactly the seeds'
    kernel p_ξ(φ_ξ|φ_0) = N(φ_0, (σ^{2ξ} − 1)/(2 log σ)) (and Song's tutorial `marginal_prob_std`).
    The score_sde_pytorch form σ(t) = σ_min (σ_max/σ_min)^t is the case σ = σ_max/σ_min,
    c = σ_min √(2 ln σ), giving s(t)² = σ_min² ((σ_max/σ_min)^{2t} − 1)  (see `from_sigma_range`).
    α(t) = 1: higher cumulants of the data are carried unchanged through the forward process
    (seeds: κ_{n>2}(t) = κ_n(0)), which is why VE reconstructs them slightly better than VP.
    """
    name = "ve"

    def __init__(self, sigma: float = 25.0, scale: float = 1.0):
        if not sigma > 1.0 or not scale > 0.0:
            raise ValueError(f"VESDE needs sigma > 1 and scale > 0 (got sigma={sigma}, scale={scale})")
        self.sigma, self.scale = float(sigma), float(scale)
        self._log_sigma = math.log(self.sigma)

    @classmethod
    def from_sigma_range(cls, sigma_min: float = 0.01, sigma_max: float = 50.0) -> "VESDE":
        r = sigma_max / sigma_min
        return cls(sigma=r, scale=sigma_min * math.sqrt(2.0 * math.log(r)))

    def g(self, t: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.exp(t * self._log_sigma)

    def sde(self, x, t):
        return torch.zeros_like(x), self.g(t)

    def marginal_coeffs(self, t):
        # expm1 keeps s(t) accurate at t ~ eps_train, where σ^{2t} − 1 ≈ 2t ln σ
        var = self.scale ** 2 * torch.expm1(2.0 * t * self._log_sigma) / (2.0 * self._log_sigma)
        return torch.ones_like(t), torch.sqrt(var)

    def t_of_rel_std(self, rel_std):
        # s² = c² (σ^{2t} − 1)/(2 ln σ)  ⇒  t = log1p(2 ln σ s²/c²) / (2 ln σ)
        return torch.log1p(2.0 * self._log_sigma * (rel_std / self.scale) ** 2) / (2.0 * self._log_sigma)

    def prior_std(self) -> float:
        return self.scale * math.sqrt(math.expm1(2.0 * self.T * self._log_sigma) / (2.0 * self._log_sigma))

    def params(self) -> dict:
        return {"sigma": self.sigma, "scale": self.scale}


class VPSDE(SDE):
    """Variance-preserving SDE (continuous DDPM, Song et al. 2021 eq. 11):
    dx = −½ β(t) x dt + √β(t) dW, β(t) = β_min + t (β_max − β_min).
    With B(t) = ∫_0^t β = β_min t + ½ t² (β_max − β_min): α(t) = e^{−B/2}, s(t)² = 1 − e^{−B}
    (the seeds' f(t, 0) = α(t): cumulants κ_{n>2} are damped by f^n in the forward process)."""
    name = "vp"
    eps_sample = 1e-3  # score_sde: VP sampling stops at 1e-3 (s(t) ~ √(β_min t) is tiny below)

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        if not 0.0 < beta_min <= beta_max:
            raise ValueError(f"VPSDE needs 0 < beta_min <= beta_max (got {beta_min}, {beta_max})")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def beta(self, t):
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def _integral(self, t):
        return self.beta_min * t + 0.5 * t ** 2 * (self.beta_max - self.beta_min)

    def sde(self, x, t):
        beta = self.beta(t)
        return -0.5 * _bcast(beta, x) * x, torch.sqrt(beta)

    def marginal_coeffs(self, t):
        B = self._integral(t)
        return torch.exp(-0.5 * B), torch.sqrt(-torch.expm1(-B))

    def t_of_rel_std(self, rel_std):
        # (s/α)² = e^B − 1  ⇒  B(t) = β_min t + ½ t² (β_max − β_min) = log1p((s/α)²)
        B = torch.log1p(rel_std ** 2)
        d = self.beta_max - self.beta_min
        if d == 0:
            return B / self.beta_min
        return (torch.sqrt(self.beta_min ** 2 + 2.0 * d * B) - self.beta_min) / d

    def prior_std(self) -> float:
        return 1.0

    def corrector_alpha(self, t, n_steps):
        # score_sde LangevinCorrector: α_i = 1 − β_i with DDPM's discrete β_i = β(t)/N
        return 1.0 - self.beta(t) / n_steps

    def params(self) -> dict:
        return {"beta_min": self.beta_min, "beta_max": self.beta_max}


SDES = {"ve": VESDE, "vp": VPSDE}


def get_sde(name: str, **params) -> SDE:
    """SDE by registry name ("ve", "vp") with constructor parameters (defaults: the seeds' choices)."""
    try:
        cls = SDES[name]
    except KeyError:
        raise ValueError(f"unknown SDE {name!r}; choose one of {', '.join(SDES)}") from None
    return cls(**params)
