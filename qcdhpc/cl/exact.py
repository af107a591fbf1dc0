"""Exact references for the complex Langevin (CL) family: quartic model and free Bose gas.

Models, actions and normalisations: ``qcdhpc/cl/models.py`` (equations (Q1)–(Q3), (B1)–(B5) there).
float64 / complex128 throughout (mpmath at raised precision inside the closed forms, rounded once).

Quartic model, S = σ₀x²/2 + λx⁴/4, Z = ∫_R dx e^{−S}, ⟨zⁿ⟩ = Z⁻¹ ∫_R dx xⁿ e^{−S}:

  (E0) quadrature: ∫_R xⁿ e^{−S} = (1 + (−1)ⁿ) ∫_0^X xⁿ e^{−S} (odd moments vanish by z → −z),
       scipy.integrate.quad on real and imaginary parts, relative tolerance 1e-13, X where the
       integrand has dropped below e^{−750} of its largest modulus on the real line.
  (E1) seed's closed form (principal branches):  Z = √(4ξ/σ₀) e^ξ K_{−1/4}(ξ),  ξ = σ₀²/(8λ).
       K_ν has its cut on ξ ≤ 0, i.e. on Re σ₀ = 0; the principal-branch expression equals Z only for
       Re σ₀ > 0 (|arg σ₀| < π/2, then |arg ξ| < π); for Re σ₀ < 0 it is a different branch (wrong,
       e.g. imaginary at σ₀ = −1).  ``partition_function(method="besselk")`` refuses Re σ₀ ≤ 0.
  (E2) entire form, valid for every σ₀ (λ > 0): with K_ν = π/(2 sin νπ) (I_{−ν} − I_ν),
       I_ν(ξ) = (ξ/2)^ν ₀F₁(; ν+1; ξ²/4)/Γ(ν+1), and the quarter powers taken consistently as
       ξ^{1/4} = σ₀^{1/2}/(8λ)^{1/4} (the σ₀^{1/2} cancels, so no branch is left):
           Z = π/(2√λ) e^ξ [ q ₀F₁(;3/4;u)/Γ(3/4) − σ₀ ₀F₁(;5/4;u)/(q Γ(5/4)) ],
           u = ξ²/4,  q = (16λ)^{1/4}.
       It equals (E1) wherever (E1) holds and is the analytic continuation elsewhere.
  (E3) ⟨z²⟩ = −2 ∂ ln Z/∂σ₀, differentiating (E2) analytically (d₀F₁(;c;u)/du = ₀F₁(;c+1;u)/c).
  (E4) Dyson–Schwinger: ∫ d/dx (x^{n+1} e^{−S}) = 0 gives ⟨z^{n+4}⟩ = ((n+1)⟨zⁿ⟩ − σ₀⟨z^{n+2}⟩)/λ.
  (E5) λ = 0 (needs Re σ₀ > 0): Z = √(2π/σ₀) (principal root), ⟨z^{2k}⟩ = (2k−1)!! σ₀^{−k}.
  (E6) cumulants from moments: κ_n = μ_n − Σ_{m=1}^{n−1} C(n−1, m−1) κ_m μ_{n−m}
       (with μ₁ = 0 this is the seed's κ_n = μ_n − Σ_{m=2}^{n−2} C(n−1, m−1) κ_m μ_{n−m}).

Free relativistic Bose gas (λ = 0) on the same periodic N^d lattice as ``BoseGas``.  With
φ_x = V^{−1/2} Σ_p e^{ip·x} φ_p, φ*_x = V^{−1/2} Σ_p e^{−ip·x} φ*_p (p_ν = 2πk_ν/N), eq. (B1) is
S = Σ_p φ*_p M(p) φ_p with

  (F1) M(p) = 2d + m² − 2 Σ_{ν=1}^{d−1} cos p_ν − 2 cos(p₀ + iμ)
       (the opposite Fourier sign convention gives cos(p₀ − iμ) per mode; every sum over p below
       is the same, p₀ → −p₀).  Re M(p) ≥ 2 + m² − 2 cosh μ, so all modes are damped iff
       |μ| < μ_c = arccosh(1 + m²/2) (onset: the p = 0 mode); refused at or beyond it.
  (F2) ln Z = V ln 2π − Σ_p ln M(p)      (Z = ∫ Π_{x,a} dφ_{a,x} e^{−S}; principal ln, continuous
       from μ = 0 because Re M > 0)
  (F3) ⟨n⟩ = (1/V) ∂ ln Z/∂μ = −(1/V) Σ_p M'(p)/M(p),  M'(p) = ∂M/∂μ = 2i sin(p₀ + iμ)
  (F4) ⟨φ*φ⟩ = (1/V) Σ_p 1/M(p)
  For real μ, M(−p₀) = M(p₀)* so (F2)–(F4) are real: the real parts are returned (at μ = 0, M is
  real and M' imaginary, so ⟨n⟩ is exactly 0.0).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .models import BoseGas, Quartic

__all__ = [
    "partition_function",
    "moments",
    "cumulants",
    "cumulants_from_moments",
    "free_bose_modes",
    "free_bose_lnZ",
    "free_bose_density",
    "free_bose_phi2",
]

QUARTIC_METHODS = ("quad", "closed", "besselk")
_MAX_ORDER = 16
_QUAD_TAIL = 750.0  # integrate until |integrand| < e^{-750} × its largest modulus on R


# =================================================================================================
# quartic model
# =================================================================================================
def _orders(orders) -> list:
    try:
        raw = list(orders)
    except TypeError:
        raw = None
    ok = bool(raw) and all(
        not isinstance(n, bool) and isinstance(n, numbers.Integral) and 0 <= n <= _MAX_ORDER for n in raw
    )
    if not ok:
        raise ValueError(f"orders must be a non-empty list of integers in 0..{_MAX_ORDER}, got {orders!r}")
    return [int(n) for n in raw]


def _method(method: str) -> str:
    if method not in QUARTIC_METHODS:
        raise ValueError(f"method must be one of {QUARTIC_METHODS}, got {method!r}")
    return method


# ------------------------------------------------------------------------------ (E0) quadrature
def _quad_integral(q: Quartic, n: int) -> complex:
    """∫_R xⁿ e^{−(S(x) − c)} dx by (E0), with c = min_R Re S so the integrand is O(1)."""
    from scipy.integrate import quad

    if n % 2:
        return 0j
    a, lam = q.sigma.real, q.lam
    x0 = math.sqrt(-a / lam) if a < 0 else 0.0  # maximum of |e^{-S}| on R
    c = -a * a / (4 * lam) if a < 0 else 0.0  # Re S(x0)

    def log_abs(x):  # ln |xⁿ e^{−(S−c)}|
        return (n * math.log(x) if n else 0.0) - (0.5 * a * x * x + 0.25 * lam * x**4 - c)

    X = max(1.0, 2 * x0)
    while log_abs(X) > -_QUAD_TAIL:
        X *= 1.5
    pts = [x0] if 0 < x0 < X else None

    def f(x):
        return x**n * np.exp(-(q.sigma * (0.5 * x * x) + 0.25 * lam * x**4) + c)

    kw = dict(epsabs=0.0, epsrel=1e-13, limit=2000, points=pts)
    scale, _ = quad(lambda x: abs(f(x)), 0.0, X, **kw)
    kw["epsabs"] = 1e-14 * scale
    re, ere = quad(lambda x: f(x).real, 0.0, X, **kw)
    im, eim = quad(lambda x: f(x).imag, 0.0, X, **kw)
    if ere + eim > 1e-11 * scale:
        raise RuntimeError(
            f"quadrature of x^{n} e^(-S) did not converge (sigma={q.sigma}, lam={q.lam}): "
            f"error estimate {ere + eim:.3g} vs scale {scale:.3g}"
        )
    return 2.0 * complex(re, im)


def _quad_shift(q: Quartic) -> float:
    a = q.sigma.real
    return -a * a / (4 * q.lam) if a < 0 else 0.0


# ------------------------------------------------------------------------------ (E1), (E2), (E3)
def _dps(q: Quartic) -> int:
    # (E2) subtracts two terms of size ~e^{|ξ|} to leave ~e^{−ξ}: carry 2|ξ| extra digits' worth
    xi = abs(q.sigma) ** 2 / (8 * q.lam)
    return 30 + int(2 * xi / math.log(10)) + 1


def _closed_terms(q: Quartic):
    """(E2) pieces in mpmath: returns (Z, dZ/dσ₀) at the current mpmath precision."""
    import mpmath as mp

    s, lam = mp.mpc(q.sigma), mp.mpf(q.lam)
    xi = s * s / (8 * lam)
    u = xi * xi / 4
    qq = (16 * lam) ** mp.mpf(0.25)
    a = qq / mp.gamma(mp.mpf(3) / 4)
    b = 1 / (qq * mp.gamma(mp.mpf(5) / 4))
    F3, F5 = mp.hyp0f1(mp.mpf(3) / 4, u), mp.hyp0f1(mp.mpf(5) / 4, u)
    dF3 = mp.hyp0f1(mp.mpf(7) / 4, u) / (mp.mpf(3) / 4)  # d₀F₁(;c;u)/du = ₀F₁(;c+1;u)/c
    dF5 = mp.hyp0f1(mp.mpf(9) / 4, u) / (mp.mpf(5) / 4)
    C = mp.pi / (2 * mp.sqrt(lam)) * mp.exp(xi)
    B = a * F3 - s * b * F5
    dxi, du = s / (4 * lam), s**3 / (64 * lam * lam)
    Z = C * B
    dZ = C * (dxi * B + a * dF3 * du - b * F5 - s * b * dF5 * du)
    return Z, dZ


def _closed_Z(q: Quartic) -> complex:
    if q.lam == 0:  # (E5)
        import cmath

        return cmath.sqrt(2 * math.pi / q.sigma)
    import mpmath as mp

    with mp.workdps(_dps(q)):
        return complex(_closed_terms(q)[0])


def _besselk_Z(q: Quartic) -> complex:
    """(E1), principal branches; only valid for Re σ₀ > 0."""
    if q.lam == 0:
        raise ValueError("method 'besselk' (seed's closed form) needs lam > 0")
    if q.sigma.real <= 0:
        raise ValueError(
            f"method 'besselk' (principal-branch K_(-1/4)) is valid only for Re sigma > 0, got "
            f"sigma = {q.sigma}; use method 'closed' (entire form) or 'quad'"
        )
    import mpmath as mp

    with mp.workdps(_dps(q)):
        s, lam = mp.mpc(q.sigma), mp.mpf(q.lam)
        xi = s * s / (8 * lam)
        return complex(mp.sqrt(4 * xi / s) * mp.exp(xi) * mp.besselk(-mp.mpf(1) / 4, xi))


def _closed_moments(q: Quartic, nmax: int) -> dict:
    """⟨zⁿ⟩ for n = 0..nmax from (E3) + (E4), or (E5) at λ = 0; odd moments 0."""
    out = {n: 0j for n in range(1, nmax + 1, 2)}
    out[0] = 1 + 0j
    if q.lam == 0:  # (E5)
        for k in range(1, nmax // 2 + 1):
            out[2 * k] = complex(math.prod(range(1, 2 * k, 2)) / q.sigma**k)
        return out
    import mpmath as mp

    with mp.workdps(_dps(q) + 2 * nmax):
        Z, dZ = _closed_terms(q)
        s, lam = mp.mpc(q.sigma), mp.mpf(q.lam)
        mu = {0: mp.mpc(1), 2: -2 * dZ / Z}  # (E3)
        for n in range(0, nmax - 3, 2):  # (E4)
            mu[n + 4] = ((n + 1) * mu[n] - s * mu[n + 2]) / lam
        for n in range(2, nmax + 1, 2):
            out[n] = complex(mu[n])
    return out


# ------------------------------------------------------------------------------ public API
def partition_function(sigma, lam, method: str = "quad") -> complex:
    """Z = ∫_R dx e^{−σ₀x²/2 − λx⁴/4}: method 'quad' (E0), 'closed' (E2; E5 at λ = 0) or
    'besselk' (the seed's E1, refused unless Re σ₀ > 0 and λ > 0)."""
    q = Quartic(sigma, lam)
    method = _method(method)
    if method == "closed":
        return _closed_Z(q)
    if method == "besselk":
        return _besselk_Z(q)
    return _quad_integral(q, 0) * math.exp(-_quad_shift(q))


def moments(sigma, lam, orders=range(2, 9, 2), method: str = "quad") -> dict:
    """{n: ⟨zⁿ⟩} (complex) for n in orders (0..16): 'quad' (E0) or 'closed' ((E3)+(E4), (E5) at
    λ = 0).  Odd orders are exactly 0 (z → −z)."""
    q = Quartic(sigma, lam)
    orders = _orders(orders)
    method = _method(method)
    if method == "besselk":
        raise ValueError("method 'besselk' gives Z only; moments: 'quad' or 'closed'")
    if method == "closed":
        mu = _closed_moments(q, max(max(orders), 2))
        return {n: mu[n] for n in orders}
    Z = _quad_integral(q, 0)
    return {n: (1 + 0j if n == 0 else _quad_integral(q, n) / Z) for n in orders}


def cumulants_from_moments(mu: dict, orders=None, symmetric: bool = False) -> dict:
    """κ_n from raw moments by the recursion (E6).  mu maps n → μ_n and must hold every order
    1..max(orders) (symmetric=True: missing odd orders are taken as 0).  orders defaults to the keys
    of mu (without 0)."""
    if orders is None:
        orders = sorted(n for n in mu if n != 0)
    orders = _orders(orders)
    nmax = max(orders)
    m = {}
    for n in range(1, nmax + 1):
        if n in mu:
            m[n] = complex(mu[n])
        elif symmetric and n % 2:
            m[n] = 0j
        else:
            raise ValueError(f"cumulants up to order {nmax} need the moment of order {n}")
    k = {}
    for n in range(1, nmax + 1):
        k[n] = m[n] - sum(math.comb(n - 1, j - 1) * k[j] * m[n - j] for j in range(1, n))
    return {n: (0j if n == 0 else k[n]) for n in orders}


def cumulants(sigma, lam, orders=range(2, 9, 2), method: str = "quad") -> dict:
    """{n: κ_n} from the moments (quadrature or closed form) by (E6)."""
    orders = _orders(orders)
    mu = moments(sigma, lam, range(1, max(orders) + 1), method=method)
    return cumulants_from_moments(mu, orders)


# =================================================================================================
# free Bose gas (λ = 0), lattice Fourier sums
# =================================================================================================
def _free(N, d, m, mu) -> BoseGas:
    # BoseGas refuses N < 2, d outside 1..4, m <= 0 at λ = 0, non-finite values and |μ| >= μ_c
    return BoseGas(N, d, m, 0.0, mu)


def free_bose_modes(N: int, d: int, m: float, mu: float):
    """(M(p), ∂M/∂μ) on the N^d momentum grid, eq. (F1); complex128 arrays of shape (N,)*d."""
    g = _free(N, d, m, mu)
    p = 2 * np.pi * np.arange(g.N) / g.N
    grids = np.meshgrid(*([p] * g.d), indexing="ij")
    p0 = grids[0].astype(np.complex128) + 1j * g.mu
    M = (2 * g.d + g.m**2) - 2 * np.cos(p0)
    for nu in range(1, g.d):
        M = M - 2 * np.cos(grids[nu])
    dM = 2j * np.sin(p0)
    return M, dM


def free_bose_lnZ(N: int, d: int, m: float, mu: float) -> float:
    """ln Z = V ln 2π − Σ_p ln M(p), eq. (F2) (Z = ∫ Π dφ_{a,x} e^{−S})."""
    M, _ = free_bose_modes(N, d, m, mu)
    return float(M.size * math.log(2 * math.pi) - np.log(M).real.sum())


def free_bose_density(N: int, d: int, m: float, mu: float) -> float:
    """⟨n⟩ = −(1/V) Σ_p M'(p)/M(p), eq. (F3); exactly 0.0 at μ = 0."""
    M, dM = free_bose_modes(N, d, m, mu)
    return float(-(dM / M).real.sum() / M.size) + 0.0  # + 0.0: no signed zero at μ = 0


def free_bose_phi2(N: int, d: int, m: float, mu: float) -> float:
    """⟨φ*φ⟩ = (1/V) Σ_p 1/M(p), eq. (F4)."""
    M, _ = free_bose_modes(N, d, m, mu)
    return float((1.0 / M).real.sum() / M.size)
