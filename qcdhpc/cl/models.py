"""Models with a complex action for complex Langevin (CL): validated parameters, action, drift.

Pure Python at import (numpy is imported inside the array methods), so that the CLI can check
parameters cheaply.  Every value is checked when the object is built; a bad one is refused with its
reason (ValueError).  Arithmetic is complex128 throughout.

Quartic model (the seed "generative AI meets physics", complex Langevin part; Aarts, Habibi, Wang,
Zhou, arXiv:2510.01328), one complexified degree of freedom z = x + iy:

    S(z)     = σ₀ z²/2 + λ z⁴/4                                                          (Q1)
    K(z)     = −dS/dz = −σ₀ z − λ z³                                                     (Q2)
    Z        = ∫_R dx e^{−S(x)}   converges iff λ > 0, or λ = 0 and Re σ₀ > 0            (Q3)

Relativistic Bose gas at chemical potential μ (Aarts, PRL 102 (2009) 131601) on a periodic N^d
lattice, d = 1..4, direction ν = 0 Euclidean time (the one that carries μ), lattice units:

    S = Σ_x [ (2d + m²) φ*_x φ_x + λ (φ*_x φ_x)²
              − Σ_{ν=0}^{d−1} ( φ*_x e^{−μ δ_{ν0}} φ_{x+ν̂} + φ*_{x+ν̂} e^{+μ δ_{ν0}} φ_x ) ]      (B1)

with φ = (φ₁ + iφ₂)/√2, φ* = (φ₁ − iφ₂)/√2 in two real fields φ_a that CL complexifies (φ* is then
not the complex conjugate of φ: everything below is the holomorphic continuation).  In the φ_a:

    S = Σ_x [ (d + m²/2) φ_a φ_a + (λ/4)(φ_a φ_a)² − Σ_{ν≥1} φ_{a,x} φ_{a,x+ν̂}
              − cosh μ φ_{a,x} φ_{a,x+0̂} + i sinh μ ε_ab φ_{a,x} φ_{b,x+0̂} ]                  (B2)

(ε₁₂ = −ε₂₁ = 1, sums over a, b), and

    K_a(x) = −∂S/∂φ_{a,x} = −(2d + m²) φ_{a,x} − λ (φ_b φ_b)_x φ_{a,x}
             + Σ_{ν≥1} (φ_{a,x+ν̂} + φ_{a,x−ν̂}) + cosh μ (φ_{a,x+0̂} + φ_{a,x−0̂})
             − i sinh μ ε_ab (φ_{b,x+0̂} − φ_{b,x−0̂})                                             (B3)
    n[φ]   = −(1/V) ∂S/∂μ
           = (1/V) Σ_x [ sinh μ φ_{a,x} φ_{a,x+0̂} − i cosh μ ε_ab φ_{a,x} φ_{b,x+0̂} ]              (B4)
             (⟨n⟩ = (1/V) ∂ ln Z/∂μ, the density)
    φ*φ[φ] = (1/V) Σ_x φ*_x φ_x = (1/V) Σ_x φ_a φ_a / 2   (holomorphic: not a modulus)          (B5)

Arrays: a configuration has shape (..., 2, N, ..., N): optional leading batch axes, then the field
index a (0 ↔ φ₁, 1 ↔ φ₂), then the d lattice axes, the first of them Euclidean time.  x + ν̂ is
``np.roll(f, -1, axis=ν)``.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from ..checks import complex_number as _complex
from ..checks import integer as _int
from ..checks import real as _float

__all__ = ["Quartic", "BoseGas"]


def _c128(z):
    """Python numbers stay Python complex; anything array-like becomes a complex128 ndarray."""
    if isinstance(z, numbers.Number):
        return complex(z)
    import numpy as np

    return np.asarray(z, dtype=np.complex128)


@dataclass(frozen=True)
class Quartic:
    """S(z) = σ₀ z²/2 + λ z⁴/4 (Q1); sigma = σ₀ complex, lam = λ ≥ 0 (λ = 0 needs Re σ₀ > 0)."""

    sigma: complex
    lam: float

    def __post_init__(self):
        sigma = _complex("sigma", self.sigma)
        lam = _float("lam", self.lam)
        if lam < 0:
            raise ValueError(f"lam must be >= 0 (λ < 0: e^(-S) grows like e^(|λ|x⁴/4)), got {lam}")
        if lam == 0 and sigma.real <= 0:
            raise ValueError(
                f"lam = 0 needs Re sigma > 0 (the Gaussian integral diverges), got sigma = {sigma}"
            )
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "lam", lam)

    def action(self, z):
        """S(z), eq. (Q1); z a number or an array (complex128)."""
        z = _c128(z)
        z2 = z * z
        return 0.5 * self.sigma * z2 + 0.25 * self.lam * z2 * z2

    def drift(self, z):
        """K(z) = −dS/dz = −σ₀ z − λ z³, eq. (Q2)."""
        z = _c128(z)
        return -self.sigma * z - self.lam * z * z * z


@dataclass(frozen=True)
class BoseGas:
    """Relativistic Bose gas at chemical potential mu, eq. (B1), on a periodic N^d lattice.

    N ≥ 2 sites per direction, d in 1..4 (direction 0 is time and carries μ), mass m ≥ 0 (only m²
    enters), quartic coupling lam ≥ 0, mu real.  With lam = 0 the integral converges only below the
    free onset, |μ| < μ_c = arccosh(1 + m²/2) (so m = 0 is refused there): refused otherwise.
    """

    N: int
    d: int
    m: float
    lam: float
    mu: float

    def __post_init__(self):
        N = _int("N", self.N, 2)
        d = _int("d", self.d, 1, 4)
        m = _float("m", self.m)
        lam = _float("lam", self.lam)
        mu = _float("mu", self.mu)
        if m < 0:
            raise ValueError(f"m must be >= 0 (only m² enters; give |m|), got {m}")
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        if lam == 0:
            if m == 0:
                raise ValueError("m² <= 0 with lam = 0: the free integral has a zero mode and diverges")
            mu_c = math.acosh(1.0 + 0.5 * m * m)
            if abs(mu) >= mu_c:
                raise ValueError(
                    f"lam = 0 needs |mu| < mu_c = arccosh(1 + m²/2) = {mu_c!r} (free onset: the "
                    f"Gaussian integral diverges at and beyond it), got mu = {mu}"
                )
        for k, v in (("N", N), ("d", d), ("m", m), ("lam", lam), ("mu", mu)):
            object.__setattr__(self, k, v)

    # ------------------------------------------------------------------ geometry
    @property
    def volume(self) -> int:
        """V = N^d, the number of sites."""
        return self.N**self.d

    @property
    def shape(self) -> tuple:
        """Shape of one configuration: (2, N, ..., N)."""
        return (2,) + (self.N,) * self.d

    @property
    def mu_c(self) -> float:
        """Free (λ = 0) onset arccosh(1 + m²/2): where the lowest mode's Re M(p = 0) vanishes."""
        return math.acosh(1.0 + 0.5 * self.m * self.m)

    def _split(self, phi):
        import numpy as np

        phi = np.asarray(phi, dtype=np.complex128)
        if phi.ndim < self.d + 1 or phi.shape[phi.ndim - self.d - 1 :] != self.shape:
            raise ValueError(
                f"phi must have shape (..., {', '.join(map(str, self.shape))}), got {phi.shape}"
            )
        lat = (slice(None),) * self.d
        return np, phi, phi[(Ellipsis, 0) + lat], phi[(Ellipsis, 1) + lat]

    def _sum_sites(self, f):
        return f.sum(axis=tuple(range(-self.d, 0)))

    # ------------------------------------------------------------------ action, drift, observables
    def action(self, phi):
        """S[φ], eq. (B2) (= (B1)); returns complex128 of the batch shape (a scalar for one config)."""
        np, phi, p1, p2 = self._split(phi)
        d = self.d
        rho2 = p1 * p1 + p2 * p2  # φ_a φ_a = 2 φ*φ
        s = (d + 0.5 * self.m**2) * rho2 + 0.25 * self.lam * rho2 * rho2
        for nu in range(1, d):
            ax = nu - d
            s = s - (p1 * np.roll(p1, -1, axis=ax) + p2 * np.roll(p2, -1, axis=ax))
        q1, q2 = np.roll(p1, -1, axis=-d), np.roll(p2, -1, axis=-d)  # φ_a(x + 0̂)
        s = s - math.cosh(self.mu) * (p1 * q1 + p2 * q2) + 1j * math.sinh(self.mu) * (p1 * q2 - p2 * q1)
        return self._sum_sites(s)

    def drift(self, phi):
        """K_a(x) = −∂S/∂φ_{a,x}, eq. (B3); same shape as phi, complex128."""
        np, phi, p1, p2 = self._split(phi)
        d = self.d
        rho2 = p1 * p1 + p2 * p2
        c = 2 * d + self.m**2 + self.lam * rho2
        k1, k2 = -c * p1, -c * p2
        for nu in range(1, d):
            ax = nu - d
            k1 = k1 + np.roll(p1, -1, axis=ax) + np.roll(p1, 1, axis=ax)
            k2 = k2 + np.roll(p2, -1, axis=ax) + np.roll(p2, 1, axis=ax)
        ch, sh = math.cosh(self.mu), math.sinh(self.mu)
        f1, b1 = np.roll(p1, -1, axis=-d), np.roll(p1, 1, axis=-d)  # φ₁(x ± 0̂)
        f2, b2 = np.roll(p2, -1, axis=-d), np.roll(p2, 1, axis=-d)
        # ε_1b φ_b = φ₂, ε_2b φ_b = −φ₁
        k1 = k1 + ch * (f1 + b1) - 1j * sh * (f2 - b2)
        k2 = k2 + ch * (f2 + b2) + 1j * sh * (f1 - b1)
        return np.stack([k1, k2], axis=phi.ndim - d - 1)

    def density(self, phi):
        """n[φ] = −(1/V) ∂S/∂μ, eq. (B4): its average is ⟨n⟩ = (1/V) ∂ ln Z/∂μ."""
        np, phi, p1, p2 = self._split(phi)
        q1, q2 = np.roll(p1, -1, axis=-self.d), np.roll(p2, -1, axis=-self.d)
        n = math.sinh(self.mu) * (p1 * q1 + p2 * q2) - 1j * math.cosh(self.mu) * (p1 * q2 - p2 * q1)
        return self._sum_sites(n) / self.volume

    def phi2(self, phi):
        """φ*φ[φ] = (1/V) Σ_x φ_a φ_a / 2, eq. (B5) (holomorphic continuation, not |φ|²)."""
        np, phi, p1, p2 = self._split(phi)
        return self._sum_sites(0.5 * (p1 * p1 + p2 * p2)) / self.volume
