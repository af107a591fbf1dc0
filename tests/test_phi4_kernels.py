"""Physics of the phi^4 kernels against exact results (CPU build; the CUDA build
compiles the very same stage functions)."""
import numpy as np
import pytest

from qcdhpc import _kernels as K


def action_numpy(phi, kappa, lam):
    """S of docs/conventions.md written directly with np.roll (independent code path)."""
    hop = phi * (np.roll(phi, -1, axis=1) + np.roll(phi, -1, axis=2))
    site = -2 * kappa * hop + (1 - 2 * lam) * phi**2 + lam * phi**4
    return site.sum(axis=(1, 2))


def thermalised(B, L, kappa, lam, ntraj=50, seed=0, dtype=np.float64):
    phi = np.zeros((B, L, L), dtype=dtype)
    K.hmc_trajectories(phi, kappa=kappa, lam=lam, nmd=10, tau=1.0, seed=seed, ntraj=ntraj)
    return phi


def test_action_matches_numpy():
    phi = np.random.default_rng(1).normal(size=(3, 6, 5))
    np.testing.assert_allclose(K.action(phi, kappa=0.3, lam=0.1), action_numpy(phi, 0.3, 0.1), rtol=1e-13)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-7), (np.float32, 2e-2)])
def test_force_is_minus_gradient(dtype, tol):
    rng = np.random.default_rng(2)
    phi = rng.normal(size=(2, 5, 7))
    kappa, lam = 0.27, 0.4
    F = K.force(phi.astype(dtype), kappa=kappa, lam=lam)
    h = 1e-5
    for b, x0, x1 in [(0, 0, 0), (1, 4, 6), (0, 2, 3), (1, 0, 6)]:
        up, dn = phi.copy(), phi.copy()
        up[b, x0, x1] += h
        dn[b, x0, x1] -= h
        grad = (action_numpy(up, kappa, lam)[b] - action_numpy(dn, kappa, lam)[b]) / (2 * h)
        assert F[b, x0, x1] == pytest.approx(-grad, rel=tol, abs=tol)


@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
def test_md_reversibility(integrator):
    phi0 = thermalised(4, 16, 0.21, 0.022)
    phi = phi0.copy()
    p = K.fill_normal(np.empty_like(phi), seed=5, traj=0)
    K.md_integrate(phi, p, kappa=0.21, lam=0.022, eps=0.05, nmd=40, integrator=integrator)
    assert np.max(np.abs(phi - phi0)) > 0.1  # it really moved
    p *= -1
    K.md_integrate(phi, p, kappa=0.21, lam=0.022, eps=0.05, nmd=40, integrator=integrator)
    assert np.max(np.abs(phi - phi0)) < 1e-12


@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
def test_energy_violation_scales_as_eps4(integrator):
    """Second-order integrators: Delta H = O(eps^2) per trajectory, so <dH^2> ~ eps^4."""
    kappa, lam, tau = 0.21, 0.022, 1.0
    phi0 = thermalised(16, 16, kappa, lam)
    p0 = K.fill_normal(np.empty_like(phi0), seed=9, traj=0)
    h0 = K.action(phi0, kappa=kappa, lam=lam) + 0.5 * (p0**2).sum(axis=(1, 2))
    nmds = np.array([8, 12, 16, 24, 32])
    msq = []
    for nmd in nmds:
        phi, p = phi0.copy(), p0.copy()
        K.md_integrate(phi, p, kappa=kappa, lam=lam, eps=tau / nmd, nmd=nmd, integrator=integrator)
        h1 = K.action(phi, kappa=kappa, lam=lam) + 0.5 * (p**2).sum(axis=(1, 2))
        msq.append(np.mean((h1 - h0) ** 2))
    slope = np.polyfit(np.log(tau / nmds), np.log(msq), 1)[0]
    assert 3.8 < slope < 4.2, slope


def test_metropolis_identity_exp_minus_dH():
    """<exp(-dH)> = 1 at equilibrium (Creutz); errors from independent chains."""
    kappa, lam = 0.21, 0.022
    phi = thermalised(32, 16, kappa, lam)
    dH, acc = K.hmc_trajectories(phi, kappa=kappa, lam=lam, nmd=6, tau=1.0, seed=1, traj_offset=1000, ntraj=200)
    per_chain = np.exp(-dH).mean(axis=1)
    mean, err = per_chain.mean(), per_chain.std(ddof=1) / np.sqrt(len(per_chain))
    assert 0.3 < acc.mean() < 0.95  # step large enough to test something
    assert abs(mean - 1) < 3 * err + 1e-3, (mean, err)


@pytest.mark.parametrize("L,nchains,ntraj", [(8, 64, 1500), (32, 16, 600)])
def test_free_field_susceptibility(L, nchains, ntraj):
    """At lambda = 0 the action is Gaussian with zero-mode eigenvalue 2 - 8 kappa, so
    chi = V <M^2> = 1 / (2 - 8 kappa) exactly (docs/conventions.md)."""
    kappa = 0.2
    exact = 1.0 / (2 - 8 * kappa)
    phi = thermalised(nchains, L, kappa, 0.0, ntraj=100, seed=3)
    V = L * L
    chi = np.empty((nchains, ntraj))
    for t in range(ntraj):
        K.hmc_trajectories(phi, kappa=kappa, lam=0.0, nmd=8, tau=1.0, seed=3, traj_offset=100 + t, ntraj=1)
        chi[:, t] = V * phi.mean(axis=(1, 2)) ** 2
    per_chain = chi.mean(axis=1)  # chains are independent replicas
    mean, err = per_chain.mean(), per_chain.std(ddof=1) / np.sqrt(nchains)
    assert abs(mean - exact) < 3 * err, (mean, err, exact)
    assert err < 0.05 * exact  # the test has power


def test_chain_history_independent_of_batching():
    """A chain's trajectory depends on (seed, chain index, trajectory index) only."""
    kw = dict(kappa=0.21, lam=0.022, nmd=5, tau=0.5, seed=42)
    a = np.zeros((4, 8, 8))
    dHa, acca = K.hmc_trajectories(a, traj_offset=0, ntraj=6, **kw)
    b = np.zeros((2, 8, 8))
    K.hmc_trajectories(b, chain_offset=2, traj_offset=0, ntraj=2, **kw)  # split in time too
    dHb, accb = K.hmc_trajectories(b, chain_offset=2, traj_offset=2, ntraj=4, **kw)
    np.testing.assert_array_equal(a[2:], b)
    np.testing.assert_array_equal(dHa[2:, 2:], dHb)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
@pytest.mark.parametrize("threads", [1, 2])
# B = 35: float64 4 blocks of 8 + 3 single chains, float32 2 blocks of 16 + 3 single;
# B = 45: float64 5 blocks + a block of 5 chains and 3 padding lanes, float32 2 + a block of 13
@pytest.mark.parametrize("B", [35, 45])
def test_lane_blocks_equal_single_chains_bit_for_bit(dtype, integrator, threads, B):
    """The CPU driver runs blocks of 64 bytes / itemsize chains lane-interleaved (csrc/cpu/phi4_lanes.h),
    a remainder of at least half a block as a padded block, and a smaller one chain by chain; a
    chain's field, dH and acceptance must not depend on which (nor on the thread count), or an MPI
    split of the chains would change the ensemble."""
    L0, L1 = 6, 10
    kw = dict(kappa=0.25, lam=0.02, nmd=4, tau=1.2, integrator=integrator, seed=5, traj_offset=7, ntraj=9)
    phi0 = (np.random.default_rng(1).standard_normal((B, L0, L1)) * 0.7).astype(dtype)
    phi = phi0.copy()
    old = K.get_num_threads()
    K.set_num_threads(threads)
    try:
        dH, acc = K.hmc_trajectories(phi, chain_offset=3, **kw)
    finally:
        K.set_num_threads(old)
    assert 0 < np.asarray(acc).mean() < 1  # both branches of the accept/restore are exercised
    for b in range(B):
        one = phi0[b:b + 1].copy()
        d1, a1 = K.hmc_trajectories(one, chain_offset=3 + b, **kw)
        np.testing.assert_array_equal(one[0], phi[b])
        np.testing.assert_array_equal(np.asarray(d1)[0], np.asarray(dH)[b])
        np.testing.assert_array_equal(np.asarray(a1)[0], np.asarray(acc)[b])


def test_float32_runs_and_tracks_float64():
    kw = dict(kappa=0.21, lam=0.022, nmd=10, tau=1.0, seed=4, ntraj=3)
    a = np.zeros((2, 8, 8))
    b = np.zeros((2, 8, 8), dtype=np.float32)
    dHa, acca = K.hmc_trajectories(a, **kw)
    dHb, accb = K.hmc_trajectories(b, **kw)
    np.testing.assert_array_equal(acca, accb)
    np.testing.assert_allclose(b, a, atol=1e-4)


def test_torch_tensors_in_place():
    torch = pytest.importorskip("torch")
    phi = torch.zeros(2, 8, 8, dtype=torch.float64)
    ref = np.zeros((2, 8, 8))
    kw = dict(kappa=0.2, lam=0.1, nmd=4, tau=0.5, seed=8, ntraj=3)
    dH, acc = K.hmc_trajectories(phi, **kw)
    dHr, accr = K.hmc_trajectories(ref, **kw)
    assert isinstance(dH, torch.Tensor) and dH.dtype == torch.float64
    np.testing.assert_array_equal(phi.numpy(), ref)
    np.testing.assert_array_equal(acc.numpy(), accr)
