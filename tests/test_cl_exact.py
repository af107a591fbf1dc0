"""Exact references of the complex Langevin family (qcdhpc/cl/exact.py, qcdhpc/cl/models.py).

Equation labels (Q*, B*, E*, F*) are those of the two modules' docstrings.
"""
import math

import mpmath as mp
import numpy as np
import pytest

from qcdhpc.cl import exact as E
from qcdhpc.cl.models import BoseGas, Quartic

RNG = np.random.default_rng(20260601)


def _crandn(*shape):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


# =================================================================================================
# quartic model
# =================================================================================================
RE_POS = [(1 + 1j, 1.0), (2.0, 1.0), (0.5 - 2j, 1.0), (0.1 + 5j, 1.0), (1 + 1j, 0.3), (3 - 1j, 2.0)]
RE_NONPOS = [(-1 + 0.5j, 1.0), (-1.0, 1.0), (-2 - 1j, 1.0), (-3 + 2j, 2.0), (3j, 1.0), (-2j, 0.5)]


@pytest.mark.parametrize("sigma, lam", RE_POS + RE_NONPOS)
def test_quartic_Z_closed_vs_quadrature(sigma, lam):
    zq = E.partition_function(sigma, lam, "quad")
    zc = E.partition_function(sigma, lam, "closed")  # entire form (E2), any arg σ₀
    assert abs(zq - zc) <= 1e-10 * abs(zc)


@pytest.mark.parametrize("sigma, lam", RE_POS)
def test_quartic_Z_seed_besselk_form(sigma, lam):
    # the seed's Z = √(4ξ/σ₀) e^ξ K_{−1/4}(ξ) with principal branches (E1): valid for Re σ₀ > 0
    zk = E.partition_function(sigma, lam, "besselk")
    assert abs(zk - E.partition_function(sigma, lam, "quad")) <= 1e-10 * abs(zk)
    assert abs(zk - E.partition_function(sigma, lam, "closed")) <= 1e-12 * abs(zk)


@pytest.mark.parametrize("sigma", [-1.0, -1 + 0.5j, -2 - 1j])
def test_quartic_seed_form_is_another_branch_for_negative_re_sigma(sigma):
    # why method="besselk" refuses Re σ₀ <= 0: the principal-branch expression is simply wrong there
    # (at σ₀ = −1 it is purely imaginary, Z is real and positive)
    s = mp.mpc(sigma)
    xi = s * s / 8
    naive = complex(mp.sqrt(4 * xi / s) * mp.exp(xi) * mp.besselk(-0.25, xi))
    zq = E.partition_function(sigma, 1.0)
    assert abs(naive - zq) > 0.5 * abs(zq)
    with pytest.raises(ValueError, match="Re sigma > 0"):
        E.partition_function(sigma, 1.0, "besselk")


def test_quartic_Z_at_sigma_zero_and_gaussian_limit():
    # σ₀ = 0: Z = Γ(1/4) λ^{−1/4} / √2 ; λ = 0: Z = √(2π/σ₀) (E5)
    for lam in (0.5, 1.0, 3.0):
        ref = math.gamma(0.25) * lam**-0.25 / math.sqrt(2)
        for method in ("quad", "closed"):
            assert abs(E.partition_function(0.0, lam, method) - ref) <= 1e-12 * ref
    for sigma in (1 + 1j, 0.3 - 2j):
        ref = np.sqrt(2 * np.pi / sigma)
        assert abs(E.partition_function(sigma, 0.0) - ref) <= 1e-11 * abs(ref)
        mq, mc = E.moments(sigma, 0.0), E.moments(sigma, 0.0, method="closed")
        for n in mq:
            assert abs(mq[n] - mc[n]) <= 1e-10 * abs(mc[n])


@pytest.mark.parametrize("sigma, lam", RE_POS[:3] + RE_NONPOS[:4])
def test_quartic_moments_closed_vs_quadrature(sigma, lam):
    orders = range(1, 9)
    mq = E.moments(sigma, lam, orders)
    mc = E.moments(sigma, lam, orders, method="closed")  # (E3) + Dyson–Schwinger (E4)
    for n in orders:
        if n % 2:
            assert mq[n] == 0 and mc[n] == 0  # z → −z
        else:
            assert abs(mq[n] - mc[n]) <= 1e-10 * abs(mc[n]), n


def test_quartic_closed_moments_vs_derivatives_of_seed_form():
    # ⟨z²⟩ = −2 ∂_σ ln Z, ⟨z⁴⟩ = 4 ∂²_σ Z / Z on the seed's (E1), differentiated numerically by mpmath
    with mp.workdps(30):
        for sigma, lam in [(1 + 1j, 1.0), (0.5 - 2j, 0.7)]:
            def f(s, lam=lam):
                xi = s * s / (8 * lam)
                return mp.sqrt(s / (2 * lam)) * mp.exp(xi) * mp.besselk(0.25, xi)

            s = mp.mpc(sigma)
            mu2 = complex(-2 * mp.diff(f, s) / f(s))
            mu4 = complex(4 * mp.diff(f, s, 2) / f(s))
            mc = E.moments(sigma, lam, (2, 4), method="closed")
            assert abs(mc[2] - mu2) <= 1e-13 * abs(mu2)
            assert abs(mc[4] - mu4) <= 1e-13 * abs(mu4)


# The seed (generative-ai-meets-physics.txt, complex-valued quartic model, σ₀ = 1 + i, λ = 1), row
# "Exact" of the moment and cumulant tables, as read there (the moment table's μ₆ columns are
# scrambled in the text extraction; the values are Re μ₆ = 0.580445, Im μ₆ = −0.587746):
SEED_MOMENTS = {
    2: ("0.428142", "-0.148010"),
    4: ("0.423848", "-0.280132"),
    6: ("0.580445", "-0.587746"),
    8: ("0.95105", "-1.39336"),
}
SEED_CUMULANTS = {
    2: ("0.428142", "-0.148010"),
    4: ("-0.060347", "0.100083"),
    6: ("-0.00934", "-0.19222"),
    8: ("0.41578", "0.5923"),
}


def _agrees_to_printed_digits(ours: float, printed: str) -> bool:
    # the seed rounds: ours must round to the printed value (half a unit of its last digit)
    decimals = len(printed.split(".")[1])
    return abs(ours - float(printed)) <= 0.5 * 10**-decimals * (1 + 1e-6)


@pytest.mark.parametrize("method", ["quad", "closed"])
def test_quartic_moments_and_cumulants_vs_seed_exact_row(method):
    mu = E.moments(1 + 1j, 1.0, method=method)
    ka = E.cumulants(1 + 1j, 1.0, method=method)
    for table, ours in ((SEED_MOMENTS, mu), (SEED_CUMULANTS, ka)):
        for n, (re, im) in table.items():
            assert _agrees_to_printed_digits(ours[n].real, re), (n, ours[n], re)
            assert _agrees_to_printed_digits(ours[n].imag, im), (n, ours[n], im)


def test_cumulant_recursion():
    # Gaussian (mean 0, variance v): κ₂ = v, others 0;  the seed's example, the two-Gaussian mixture
    # ½[N(μ₀, s²) + N(−μ₀, s²)]: κ₂ = μ₀² + s², κ₄ = −2μ₀⁴, κ₆ = 16μ₀⁶, κ₈ = −272μ₀⁸
    v = 0.7 - 0.2j
    gauss = {2 * k: math.prod(range(1, 2 * k, 2)) * v**k for k in range(1, 5)}
    k = E.cumulants_from_moments(gauss, symmetric=True)
    assert abs(k[2] - v) < 1e-15 and all(abs(k[n]) < 1e-13 for n in (4, 6, 8))
    m0, s = 0.9, 0.4
    def gauss_moment(n, c):  # E[xⁿ] for x ~ N(c, s²)
        return sum(math.comb(n, 2 * j) * c ** (n - 2 * j) * s ** (2 * j) * math.prod(range(1, 2 * j, 2))
                   for j in range(n // 2 + 1))

    mix = {n: 0.5 * (gauss_moment(n, m0) + gauss_moment(n, -m0)) for n in range(1, 9)}
    k = E.cumulants_from_moments(mix)
    for n, ref in {2: m0**2 + s**2, 4: -2 * m0**4, 6: 16 * m0**6, 8: -272 * m0**8}.items():
        assert abs(k[n] - ref) < 1e-10 * abs(ref)
    assert abs(k[1]) < 1e-15 and abs(k[3]) < 1e-13
    with pytest.raises(ValueError, match="order 3"):
        E.cumulants_from_moments({1: 0, 2: 1, 4: 3})


def test_quartic_drift_is_minus_dS_dz():
    q = Quartic(1 + 1j, 1.0)
    z = _crandn(50)
    for h in (1e-5, 1e-5j):  # holomorphic: the same derivative along any direction
        fd = (q.action(z + h) - q.action(z - h)) / (2 * h)
        np.testing.assert_allclose(q.drift(z), -fd, rtol=1e-8, atol=1e-9)
    assert q.drift(0.5 + 0.2j) == -(1 + 1j) * (0.5 + 0.2j) - (0.5 + 0.2j) ** 3
    assert q.drift(np.ones(3, np.float32)).dtype == np.complex128


# =================================================================================================
# Bose gas: action, drift, density estimator
# =================================================================================================
@pytest.mark.parametrize("d, N", [(1, 3), (2, 3), (3, 2), (4, 2)])
def test_bose_drift_is_minus_dS_dphi(d, N):
    g = BoseGas(N, d, 0.8, 0.6, 0.45)
    phi = 0.7 * _crandn(3, *g.shape)  # batch of 3 complexified configurations
    K = g.drift(phi)
    assert K.shape == phi.shape and K.dtype == np.complex128
    h = 1e-5
    if d <= 2:  # every component
        flat = phi.reshape(3, -1)
        for j in range(flat.shape[1]):
            e = np.zeros_like(flat)
            e[:, j] = h
            up, dn = (flat + e).reshape(phi.shape), (flat - e).reshape(phi.shape)
            fd = (g.action(up) - g.action(dn)) / (2 * h)
            np.testing.assert_allclose(K.reshape(3, -1)[:, j], -fd, rtol=1e-7, atol=1e-7)
    for _ in range(3):  # directional derivatives along random complex directions
        v = _crandn(*phi.shape)
        fd = (g.action(phi + h * v) - g.action(phi - h * v)) / (2 * h)
        dir_ = -(K * v).reshape(3, -1).sum(axis=1)
        np.testing.assert_allclose(dir_, fd, rtol=1e-7)


@pytest.mark.parametrize("mu", [0.0, 0.3, -0.7, 1.5])
def test_bose_density_is_minus_dS_dmu_over_V(mu):
    g = BoseGas(3, 2, 1.0, 0.5, mu)
    h = 1e-5
    gp, gm = BoseGas(3, 2, 1.0, 0.5, mu + h), BoseGas(3, 2, 1.0, 0.5, mu - h)
    phi = _crandn(4, *g.shape)
    fd = -(gp.action(phi) - gm.action(phi)) / (2 * h) / g.volume
    np.testing.assert_allclose(g.density(phi), fd, rtol=1e-8, atol=1e-10)


def test_bose_action_real_fields_and_conventions():
    # a real configuration at μ = 0 has a real action; φ*φ is the holomorphic Σ_a φ_a²/2, not |φ|²
    g = BoseGas(3, 2, 1.0, 0.5, 0.0)
    phi = RNG.standard_normal(g.shape)
    assert abs(g.action(phi).imag) == 0 and g.action(phi).shape == ()
    assert g.volume == 9 and g.shape == (2, 3, 3)
    z = _crandn(*g.shape)
    assert np.isclose(g.phi2(z), (z**2).sum() / 2 / 9)
    # the temporal links carry μ, the spatial ones do not: S changes with μ only through axis 0
    phi_t = np.zeros(g.shape)
    phi_t[0, :, 0] = 1.0  # a line along time
    phi_s = np.zeros(g.shape)
    phi_s[0, 0, :] = 1.0  # a line along space
    g2 = BoseGas(3, 2, 1.0, 0.5, 0.8)
    assert g2.action(phi_s) == g.action(phi_s)
    assert g2.action(phi_t) != g.action(phi_t)


def test_bose_mode_matrix_sign_of_i_mu():
    # a single plane wave φ_x = e^{ip·x}/√V, φ*_x = e^{−ip·x}/√V (φ₁ = (φ+φ*)/√2, φ₂ = (φ−φ*)/(i√2))
    # has S = M(p) with M(p) = 2d + m² − 2Σ_{ν≥1} cos p_ν − 2 cos(p₀ + iμ)   (F1)
    N, d, m, mu = 4, 2, 0.9, 0.5
    g = BoseGas(N, d, m, 0.0, mu)
    M, _ = E.free_bose_modes(N, d, m, mu)
    x = np.meshgrid(*([np.arange(N)] * d), indexing="ij")
    for k in np.ndindex(*(N,) * d):
        px = sum(2 * np.pi * k[nu] / N * x[nu] for nu in range(d))
        f, fs = np.exp(1j * px) / np.sqrt(g.volume), np.exp(-1j * px) / np.sqrt(g.volume)
        phi = np.stack([(f + fs) / np.sqrt(2), (f - fs) / (1j * np.sqrt(2))])
        assert abs(g.action(phi) - M[k]) < 1e-12, k
    p0 = 2 * np.pi / N  # and not cos(p₀ − iμ) for this mode (convention-dependent, sums are not)
    assert abs(M[1, 0] - (4 + m * m - 2 - 2 * np.cos(p0 - 1j * mu))) > 0.1


# =================================================================================================
# free Bose gas: Fourier sums vs brute-force Gaussian integrals
# =================================================================================================
def _quadratic_form(f, shape):
    """A with f(φ) = ½ φᵀAφ for a quadratic f, by polarisation: A_ij = f(e_i+e_j) − f(e_i) − f(e_j)."""
    n = int(np.prod(shape))
    eye = np.eye(n)
    pair = (eye[:, None, :] + eye[None, :, :]).reshape((n * n,) + tuple(shape))
    single = f(eye.reshape((n,) + tuple(shape)))
    return f(pair).reshape(n, n) - single[:, None] - single[None, :]


def _brute(N, d, m, mu):
    """ln Z, ⟨φ*φ⟩, ⟨n⟩ of the λ = 0 action as a 2V-dimensional Gaussian integral."""
    g = BoseGas(N, d, m, 0.0, mu)
    A = _quadratic_form(g.action, g.shape)
    assert np.allclose(A, A.T)
    assert np.linalg.eigvalsh(A.real).min() > 0  # Re A > 0: the integral converges (μ < μ_c)
    Ainv = np.linalg.inv(A)  # ⟨φ_i φ_j⟩ = (A⁻¹)_ij
    B = _quadratic_form(g.density, g.shape)
    C = _quadratic_form(g.phi2, g.shape)
    _, logdet = np.linalg.slogdet(A)
    lnZ = g.volume * math.log(2 * math.pi) - 0.5 * logdet.real
    return lnZ, 0.5 * np.trace(C @ Ainv), 0.5 * np.trace(B @ Ainv)


@pytest.mark.parametrize("N, d, m", [(3, 1, 1.0), (3, 2, 0.7), (2, 3, 1.2), (4, 1, 0.5)])
def test_free_bose_fourier_vs_brute_force(N, d, m):
    mu_c = math.acosh(1 + m * m / 2)
    for mu in (0.0, 0.3 * mu_c, -0.6 * mu_c, 0.95 * mu_c):
        lnZ, phi2, n = _brute(N, d, m, mu)
        assert abs(E.free_bose_lnZ(N, d, m, mu) - lnZ) < 1e-11 * abs(lnZ)
        assert abs(E.free_bose_phi2(N, d, m, mu) - phi2) < 1e-11 * abs(phi2)
        assert abs(E.free_bose_density(N, d, m, mu) - n) < 1e-11 * max(abs(n), 1.0)
        assert abs(phi2.imag) < 1e-12 and abs(n.imag) < 1e-12  # real for real μ
        if mu == 0:
            assert E.free_bose_density(N, d, m, mu) == 0.0 and abs(n) < 1e-14
        else:
            assert np.sign(n.real) == np.sign(mu)  # μ > 0 favours particles
    # ⟨n⟩ = (1/V) ∂ ln Z/∂μ (F3 vs F2), by a central difference of the brute-force ln Z
    mu, h = 0.5 * mu_c, 1e-4
    dlnZ = (_brute(N, d, m, mu + h)[0] - _brute(N, d, m, mu - h)[0]) / (2 * h) / N**d
    assert abs(dlnZ - E.free_bose_density(N, d, m, mu)) < 1e-7


def test_free_bose_silver_blaze_on_4to4():
    # 4⁴, m = 1: μ_c = arccosh(3/2) = 0.9624.  At T = 1/N₀ = 1/4 the density below onset is thermal,
    # n ≈ Σ_k [e^{−(ω_k−μ)N₀} − e^{−(ω_k+μ)N₀}]/V_s: measured n(0.05) = 2.9e-4, n(0.1) = 5.8e-4,
    # n(0.2) = 1.26e-3, n(0.5) = 5.5e-3 (and n(0.5) = 1.3e-4 on 8⁴, 8.7e-7 on 16⁴: it is a
    # finite-N₀ effect), then it rises steeply to n(0.95) = 0.32.
    for mu in (0.0, 0.02, 0.05, 0.1):
        n = E.free_bose_density(4, 4, 1.0, mu)
        assert 0 <= n < 1e-3
        assert abs(E.free_bose_density(4, 4, 1.0, -mu) + n) < 1e-16  # charge conjugation
    ns = [E.free_bose_density(4, 4, 1.0, mu) for mu in np.linspace(0, 0.96, 25)]
    assert all(b > a for a, b in zip(ns, ns[1:])) and ns[-1] > 0.3
    assert E.free_bose_density(8, 4, 1.0, 0.5) < 0.05 * E.free_bose_density(4, 4, 1.0, 0.5)
    assert E.free_bose_density(4, 4, 1.0, 0.0) == 0.0


# =================================================================================================
# refusals
# =================================================================================================
@pytest.mark.parametrize(
    "sigma, lam, match",
    [
        (complex("nan+1j"), 1.0, "finite"),
        (complex("inf"), 1.0, "finite"),
        (1 + 1j, float("nan"), "finite"),
        (1 + 1j, float("inf"), "finite"),
        (1 + 1j, -0.1, ">= 0"),
        (0.0, 0.0, "Re sigma > 0"),
        (-1 + 1j, 0.0, "Re sigma > 0"),
        (2j, 0.0, "Re sigma > 0"),
        ("1+1j", 1.0, "number"),
        (True, 1.0, "number"),
        (1 + 1j, 1j, "real"),
    ],
)
def test_quartic_refusals(sigma, lam, match):
    with pytest.raises(ValueError, match=match):
        Quartic(sigma, lam)
    with pytest.raises(ValueError, match=match):
        E.moments(sigma, lam)


@pytest.mark.parametrize(
    "args, match, free_too",
    [
        ((1, 2, 1.0, 0.1, 0.0), "N must be >= 2", True),
        ((2.5, 2, 1.0, 0.1, 0.0), "N must be an integer", True),
        ((True, 2, 1.0, 0.1, 0.0), "N must be an integer", True),
        ((4, 0, 1.0, 0.1, 0.0), "d must be in 1..4", True),
        ((4, 5, 1.0, 0.1, 0.0), "d must be in 1..4", True),
        ((4, 2, float("nan"), 0.1, 0.0), "finite", True),
        ((4, 2, 1.0, float("inf"), 0.0), "finite", False),
        ((4, 2, 1.0, 0.1, float("nan")), "finite", True),
        ((4, 2, -1.0, 0.1, 0.0), "m must be >= 0", True),
        ((4, 2, 1.0, -0.1, 0.0), "lam must be >= 0", False),
        ((4, 2, 0.0, 0.0, 0.0), "m² <= 0 with lam = 0", True),
        ((4, 2, 1.0, 0.0, math.acosh(1.5)), "mu_c", True),
        ((4, 2, 1.0, 0.0, -2.0), "mu_c", True),
        ((4, 2, 1.0, 0.1, 1j), "real", True),
    ],
)
def test_bose_refusals(args, match, free_too):
    with pytest.raises(ValueError, match=match):
        BoseGas(*args)
    N, d, m, _, mu = args
    if free_too:  # the free Fourier sums (λ = 0 implied) refuse the same
        for f in (E.free_bose_lnZ, E.free_bose_density, E.free_bose_phi2):
            with pytest.raises(ValueError, match=match):
                f(N, d, m, mu)


def test_other_refusals():
    g = BoseGas(3, 2, 1.0, 0.1, 0.2)
    for bad in (np.zeros((2, 3)), np.zeros((2, 3, 4)), np.zeros((3, 3, 3))):
        with pytest.raises(ValueError, match="shape"):
            g.action(bad)
    BoseGas(4, 2, 0.0, 0.1, 3.0)  # λ > 0: any μ, m = 0 allowed
    with pytest.raises(ValueError, match="mu_c"):  # free sums refuse μ at / beyond onset
        E.free_bose_density(4, 4, 1.0, math.acosh(1.5))
    with pytest.raises(ValueError, match="method"):
        E.moments(1 + 1j, 1.0, method="mc")
    with pytest.raises(ValueError, match="Z only"):
        E.moments(1 + 1j, 1.0, method="besselk")
    with pytest.raises(ValueError, match="lam > 0"):
        E.partition_function(1 + 1j, 0.0, "besselk")
    for orders in ([], [17], [-1], [2.0], 5):
        with pytest.raises(ValueError, match="orders"):
            E.moments(1 + 1j, 1.0, orders)
