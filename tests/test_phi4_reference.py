"""Checks of the plain torch/numpy reference HMC (qcdhpc.phi4.reference) against exact results.

The kernel is tested against this reference (test_kernel_vs_reference.py), so the reference itself
must be shown right independently: the force is the gradient of the action, the MD is reversible and
of second order, and the free field (lam = 0) gives its exact expectation values.
"""
import numpy as np
import pytest

from qcdhpc.phi4 import reference as R

torch = pytest.importorskip("torch")


def _field(shape, seed=0, scale=0.8):
    return np.random.default_rng(seed).normal(scale=scale, size=shape)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_force_is_minus_gradient_of_action(backend):
    # L0 != L1 so that a swapped axis or a wrong roll direction cannot hide; lam large so the
    # quartic term matters.  Central differences have error O(h^2 S''') ~ 1e-10 here.
    kappa, lam, h = 0.3, 0.7, 1e-5
    phi = _field((2, 4, 6), seed=1)
    f = R.force(torch.from_numpy(phi) if backend == "torch" else phi, kappa, lam)
    f = np.asarray(f)
    grad = np.empty_like(phi)
    for idx in np.ndindex(phi.shape[1:]):
        up, dn = phi.copy(), phi.copy()
        up[(slice(None),) + idx] += h
        dn[(slice(None),) + idx] -= h
        grad[(slice(None),) + idx] = (R.action(up, kappa, lam) - R.action(dn, kappa, lam)) / (2 * h)
    np.testing.assert_allclose(f, -grad, rtol=0, atol=1e-7)


def test_action_of_constant_field():
    # phi = c everywhere: each site has 2 forward bonds, so S = V [(1 - 4 kappa - 2 lam) c^2 + lam c^4].
    kappa, lam, c = 0.21, 0.022, 1.3
    phi = np.full((1, 5, 3), c)
    expect = 15 * ((1 - 4 * kappa - 2 * lam) * c**2 + lam * c**4)
    np.testing.assert_allclose(R.action(phi, kappa, lam), [expect], rtol=1e-14)


def test_philox_counter_and_box_muller_layout():
    seed, chain, traj = 2**63 + 5, 3, 0
    # numpy's Philox pre-increments; starting at counter - 1 (with the borrow at c0 = 0, traj = 0)
    # must make the first block the requested one.
    for c in [(0, 0, 0, 0), (0, traj + 7, 1, 0), (5, 2, 0, 0)]:
        c_int = sum(w << (64 * i) for i, w in enumerate(c))
        bg = np.random.Philox(key=seed | (chain << 64), counter=(c_int - 1) % 2**256)
        bg.random_raw(1)
        assert tuple(int(w) for w in bg.state["state"]["counter"]) == c
    # Box-Muller pairing: sites 0, 1 from (u0, u1); sites 2, 3 from (u2, u3) of block (0, traj, 0, 0)
    w = R.philox_block_words(seed, chain, (0, traj, 0, 0), 1)
    u = R.uniform53(w)
    assert np.all((u > 0) & (u < 1))
    r01, r23 = np.sqrt(-2 * np.log(u[0])), np.sqrt(-2 * np.log(u[2]))
    expect = [r01 * np.cos(2 * np.pi * u[1]), r01 * np.sin(2 * np.pi * u[1]),
              r23 * np.cos(2 * np.pi * u[3]), r23 * np.sin(2 * np.pi * u[3])]
    g = R.momenta(seed, chain, 1, 4, 4, traj, np.float64).ravel()
    np.testing.assert_allclose(g[:4], expect, rtol=1e-15)
    # a volume that is not a multiple of 4 truncates the last block: same numbers, fewer of them
    np.testing.assert_array_equal(R.momenta(seed, chain, 1, 3, 5, traj).ravel(), g[:15])
    # chain b of a batch is chain chain_offset + b; different trajectories draw different numbers
    batch = R.momenta(seed, chain - 1, 3, 4, 4, traj)
    np.testing.assert_array_equal(batch[1].ravel(), g)
    assert not np.allclose(batch[0], batch[1])
    assert not np.allclose(R.momenta(seed, chain, 1, 4, 4, traj + 1).ravel(), g)
    # Metropolis uniform: word 0 of block (0, traj, 1, 0)
    w1 = R.philox_block_words(seed, chain, (0, traj, 1, 0), 1)
    assert R.accept_uniform(seed, chain - 1, 2, traj)[1] == R.uniform53(w1[:1])[0]


@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
def test_md_is_reversible(integrator):
    kappa, lam, eps, nmd = 0.25, 0.05, 0.1, 10
    phi0, p0 = _field((3, 6, 6), seed=2), _field((3, 6, 6), seed=3, scale=1.0)
    phi, p = phi0.copy(), p0.copy()
    R.INTEGRATORS[integrator](phi, p, kappa, lam, eps, nmd)
    assert np.abs(phi - phi0).max() > 0.1  # it moved
    p *= -1
    R.INTEGRATORS[integrator](phi, p, kappa, lam, eps, nmd)
    np.testing.assert_allclose(phi, phi0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(-p, p0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
def test_energy_violation_is_second_order(integrator):
    # both schemes are second order: |dH| at fixed tau falls by 4 when eps halves (to O(eps^2))
    kappa, lam, tau = 0.21, 0.022, 1.0
    phi0, p0 = _field((8, 8, 8), seed=4), _field((8, 8, 8), seed=5, scale=1.0)
    h0 = R.hamiltonian(phi0, p0, kappa, lam)
    viol = []
    for nmd in (20, 40, 80):
        phi, p = phi0.copy(), p0.copy()
        R.INTEGRATORS[integrator](phi, p, kappa, lam, tau / nmd, nmd)
        viol.append(np.abs(R.hamiltonian(phi, p, kappa, lam) - h0).mean())
    ratios = np.array(viol[:-1]) / np.array(viol[1:])
    np.testing.assert_allclose(ratios, 4.0, rtol=0.1)


def test_numpy_and_torch_references_agree():
    kwargs = dict(kappa=0.5, lam=0.022, nmd=8, tau=1.0, integrator="omelyan", seed=11,
                  chain_offset=4, traj_offset=3, ntraj=3)
    phi_np = _field((3, 6, 5), seed=6)
    phi_t = torch.from_numpy(phi_np.copy())
    dh_np, acc_np = R.hmc_trajectories(phi_np, **kwargs)
    dh_t, acc_t = R.hmc_trajectories(phi_t, **kwargs)
    np.testing.assert_allclose(phi_t.numpy(), phi_np, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dh_t.numpy(), dh_np, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(acc_t.numpy(), acc_np)


def test_free_field_exact_expectations():
    # lam = 0: S = phi^T A phi is Gaussian, so equipartition gives <S> = V/2 exactly, and the zero
    # mode phi = M (S = V (1 - 4 kappa) M^2) gives chi = V <M^2> = 1 / (2 - 8 kappa).
    # Errors from the spread of the B independent chain means; fixed seeds make this deterministic.
    kappa, L, B, therm, n = 0.2, 8, 32, 20, 150
    V = L * L
    phi = _field((B, L, L), seed=7, scale=0.5)
    R.hmc_trajectories(phi, kappa, 0.0, 10, 1.0, "leapfrog", 2024, 0, 0, therm)
    s, m2 = np.empty((B, n)), np.empty((B, n))
    for t in range(n):
        _, acc = R.hmc_trajectories(phi, kappa, 0.0, 10, 1.0, "leapfrog", 2024, 0, therm + t, 1)
        s[:, t] = R.action(phi, kappa, 0.0) / V
        m2[:, t] = V * phi.mean(axis=(1, 2)) ** 2
    for obs, exact in [(s, 0.5), (m2, 1.0 / (2.0 - 8.0 * kappa))]:
        means = obs.mean(axis=1)
        err = means.std(ddof=1) / np.sqrt(B)
        assert abs(means.mean() - exact) < 3.5 * err, (means.mean(), err, exact)
