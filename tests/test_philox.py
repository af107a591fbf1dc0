"""Philox4x64-10: bit-for-bit against numpy's Philox, and the derived draws."""
import numpy as np
import pytest

from qcdhpc import _kernels as K

MASK = (1 << 256) - 1


def numpy_block(counter, key):
    """numpy increments its 256-bit counter before encrypting: pass counter - 1."""
    c = sum(int(w) << (64 * i) for i, w in enumerate(counter))
    c = (c - 1) & MASK
    words = [(c >> (64 * i)) & (2**64 - 1) for i in range(4)]
    # uint64 arrays, not lists: numpy routes large Python ints in a list through float64
    gen = np.random.Philox(key=np.array(key, dtype=np.uint64), counter=np.array(words, dtype=np.uint64))
    return tuple(int(x) for x in gen.random_raw(4))


@pytest.mark.parametrize("counter,key", [
    ((0, 0, 0, 0), (0, 0)),
    ((1, 0, 0, 0), (0, 0)),
    ((2**64 - 1, 2**64 - 1, 2**64 - 1, 2**64 - 1), (2**64 - 1, 2**64 - 1)),
    ((12345, 678, 1, 0), (20260101, 3)),
    ((0, 2**63, 7, 2**40 + 5), (0x243F6A8885A308D3, 0x13198A2E03707344)),
])
def test_philox_matches_numpy(counter, key):
    assert K.philox4x64_10(counter, key) == numpy_block(counter, key)


def test_philox_matches_numpy_random_sweep():
    rng = np.random.default_rng(7)
    for _ in range(200):
        counter = [int(x) for x in rng.integers(0, 2**64, size=4, dtype=np.uint64)]
        key = [int(x) for x in rng.integers(0, 2**64, size=2, dtype=np.uint64)]
        assert K.philox4x64_10(counter, key) == numpy_block(counter, key)


def box_muller_reference(seed, chain, traj, V):
    """The documented momentum convention, computed independently with numpy."""
    out = np.empty(((V + 3) // 4) * 4)
    for blk in range((V + 3) // 4):
        w = np.array(numpy_block((blk, traj, 0, 0), (seed, chain)), dtype=np.uint64)
        u = ((w >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
        for a in (0, 2):
            r = np.sqrt(-2.0 * np.log(u[a]))
            out[4 * blk + a] = r * np.cos(2 * np.pi * u[a + 1])
            out[4 * blk + a + 1] = r * np.sin(2 * np.pi * u[a + 1])
    return out[:V]


@pytest.mark.parametrize("shape", [(2, 4, 4), (3, 3, 5)])
def test_fill_normal_convention(shape):
    B, L0, L1 = shape
    out = np.empty(shape)
    K.fill_normal(out, seed=99, chain_offset=5, traj=17)
    for b in range(B):
        ref = box_muller_reference(99, 5 + b, 17, L0 * L1)
        np.testing.assert_allclose(out[b].ravel(), ref, rtol=1e-14, atol=1e-14)


def test_fill_normal_statistics_and_independence():
    out = np.empty((64, 32, 32))
    K.fill_normal(out, seed=1, traj=0)
    x = out.ravel()
    n = x.size
    # mean 0, variance 1, kurtosis 3 within ~5 standard errors
    assert abs(x.mean()) < 5 / np.sqrt(n)
    assert abs(x.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs((x**4).mean() - 3) < 5 * np.sqrt(96 / n)
    # neighbouring sites and chains uncorrelated
    assert abs(np.mean(x[:-1] * x[1:])) < 5 / np.sqrt(n)
    other = np.empty_like(out)
    K.fill_normal(other, seed=1, traj=1)
    assert abs(np.mean(out * other)) < 5 / np.sqrt(n)


def test_fill_normal_float32_is_rounded_float64():
    a64 = K.fill_normal(np.empty((2, 6, 6)), seed=3, traj=2)
    a32 = K.fill_normal(np.empty((2, 6, 6), dtype=np.float32), seed=3, traj=2)
    np.testing.assert_array_equal(a32, a64.astype(np.float32))


def test_streams_independent_of_batching():
    """Chain c's numbers depend on (seed, c, traj) only, not on how chains are batched."""
    full = K.fill_normal(np.empty((4, 8, 8)), seed=11, chain_offset=0, traj=3)
    part = K.fill_normal(np.empty((2, 8, 8)), seed=11, chain_offset=2, traj=3)
    np.testing.assert_array_equal(full[2:], part)


# ------------------------------------------------------------- Metropolis ---
# The decision is  dH <= 0  or  log_positive(u) < -dH  with qcdhpc's own log (csrc/include/qcdhpc/
# mc/metropolis.h), so that host and device decide with the same bits.  It must be the textbook rule
# u < exp(-dH) except where the two sides agree to rounding.

from qcdhpc import _qcdhpc_cpu as raw  # noqa: E402


def our_log(x):
    out = np.empty_like(x)
    raw.mc.log_positive(x, out)
    return out


def our_decision(dH, u):
    out = np.empty(dH.shape, np.uint8)
    raw.mc.metropolis_accept(np.ascontiguousarray(dH, np.float64), np.ascontiguousarray(u, np.float64), out)
    return out.astype(bool)


def test_log_positive_matches_libm():
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(0, 1, 200_000), np.exp(rng.uniform(-700, 700, 200_000)),
                        ((np.arange(1, 20001) + 0.5) * 2.0**-53)])  # the smallest Metropolis uniforms
    rel = np.abs(our_log(x) - np.log(x)) / np.maximum(np.abs(np.log(x)), 1e-300)
    ulp = np.abs(our_log(x) - np.log(x)) / np.spacing(np.abs(np.log(x)))
    assert ulp.max() <= 4, (ulp.max(), rel.max())


def test_metropolis_rule_agrees_with_exp_rule():
    rng = np.random.default_rng(12)
    n = 1_000_000
    dH = np.concatenate([rng.normal(0, 1, n), rng.exponential(5, n), rng.normal(0, 1e-8, n // 10),
                         rng.uniform(0, 40, n // 10)])
    u = ((rng.integers(0, 2**53, dH.size, dtype=np.uint64).astype(np.float64)) + 0.5) * 2.0**-53
    ours = our_decision(dH, u)
    textbook = (dH <= 0) | (u < np.exp(-dH))
    differ = ours != textbook
    # Differences only where log u and -dH agree to rounding (measure zero: none expected here).
    near = np.abs(np.log(u) + dH) <= 1e-14 * np.maximum(1.0, np.abs(dH))
    assert not np.any(differ & ~near)
    assert differ.sum() <= 2, differ.sum()
    assert 0.3 < ours.mean() < 0.9  # both outcomes well represented


def test_metropolis_rule_on_the_boundary_and_special_values():
    rng = np.random.default_rng(13)
    u = rng.uniform(1e-6, 1.0, 100_000)
    dH = -np.log(u)  # u = exp(-dH) up to rounding: the hardest cases
    for d in (dH, np.nextafter(dH, np.inf), np.nextafter(dH, -np.inf)):
        differ = our_decision(d, u) != ((d <= 0) | (u < np.exp(-d)))
        gap, tol = np.abs(np.log(u) + d), 1e-14 * np.maximum(1.0, np.abs(d))
        assert np.all(gap[differ] <= tol[differ])
    # clear margins decide as the textbook rule
    assert np.all(our_decision(dH * (1 - 1e-9) - 1e-12, u))
    assert not np.any(our_decision(dH * (1 + 1e-9) + 1e-12, u))
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1e300, 1e300])
    got = our_decision(special, np.full(special.size, 0.5))
    np.testing.assert_array_equal(got, [False, False, True, True, True, True, False])  # NaN rejected


def test_kernel_decisions_follow_the_rule():
    """Every acc of hmc_trajectories is the rule applied to its dH and the documented uniform."""
    seed, chain0, traj0 = 17, 4, 30
    phi = np.zeros((6, 8, 8))
    dH, acc = K.hmc_trajectories(phi, kappa=0.25, lam=0.02, nmd=3, tau=1.2, seed=seed, chain_offset=chain0,
                                 traj_offset=traj0, ntraj=40)
    assert 0 < acc.mean() < 1
    u = np.empty(dH.shape)
    for b in range(dH.shape[0]):
        for t in range(dH.shape[1]):
            w = K.philox4x64_10((0, traj0 + t, 1, 0), (seed, chain0 + b))[0]
            u[b, t] = ((w >> 11) + 0.5) * 2.0**-53
            assert raw.mc.accept_uniform(seed, chain0 + b, traj0 + t) == u[b, t]
    np.testing.assert_array_equal(acc.astype(bool), our_decision(dH.ravel(), u.ravel()).reshape(dH.shape))
    np.testing.assert_array_equal(acc.astype(bool), (dH <= 0) | (u < np.exp(-dH)))
