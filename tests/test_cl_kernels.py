"""The complex Langevin kernels (qcdhpc.kernels.cl) against the numpy reference (qcdhpc.cl.reference),
the models' formulas (qcdhpc.cl.models) and exact results (qcdhpc.cl.exact); CPU build -- the CUDA
build compiles the same stages, compared bit for bit by the gpu-marked tests at the end."""
import math

import numpy as np
import pytest

from qcdhpc import kernels
from qcdhpc.cl import exact, reference as R
from qcdhpc.cl.models import BoseGas, Quartic
from qcdhpc.kernels import cl as K

RTOL = ATOL = 1e-12


def close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def walkers(W, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    return scale * (rng.normal(size=W) + 0.3j * rng.normal(size=W))


def fields(B, N, d, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    V = N**d
    return scale * (rng.normal(size=(B, 2, V)) + 0.2j * rng.normal(size=(B, 2, V)))


# ------------------------------------------------------------------------------ quartic vs reference

@pytest.mark.parametrize("scheme", ["euler", "heun"])
@pytest.mark.parametrize("kbar", [None, 1.5])
@pytest.mark.parametrize("n_y", [0.0, 0.4])
def test_quartic_equals_reference(scheme, kbar, n_y):
    z0 = walkers(37, seed=1, scale=1.0)
    z = z0.copy()
    kw = dict(sigma=1 + 1j, lam=1.0, dt=0.02, nsteps=41, every=4, scheme=scheme, seed=9, walker_offset=5,
              step_offset=13, n_y=n_y, kbar=kbar)
    res = K.quartic_langevin(z, **kw)
    rec, w, rz, rt, rf = R.quartic_langevin(z0, **kw)
    assert res[0].shape == (37, 11) and res[1].shape == (37, 11)
    close(res[0], rec)
    close(res[1], w)
    close(z, rz)
    close(res.t, rt)
    assert np.array_equal(res.runaway, rf) and res.n_runaway == 0
    if kbar is not None:  # the adaptive step really acted on some walkers
        assert res[1].min() < 0.02 and res[1].max() == 0.02
    else:
        assert np.all(res[1] == 0.02)


@pytest.mark.parametrize("d,N", [(1, 5), (2, 4), (3, 3), (4, 3), (4, 2)])
@pytest.mark.parametrize("scheme", ["euler", "heun"])
def test_bose_equals_reference(d, N, scheme):
    for kbar, n_y in [(None, 0.0), (4.0, 0.3)]:
        p0 = fields(3, N, d, seed=d)
        p = p0.copy()
        kw = dict(N=N, d=d, m=1.0, lam=0.5, mu=0.4, dt=0.01, nsteps=17, every=3, scheme=scheme, seed=4,
                  field_offset=7, step_offset=3, n_y=n_y, kbar=kbar)
        res = K.bose_langevin(p, **kw)
        ref = R.bose_langevin(p0, **kw)
        for got, want in zip(list(res) + [p, res.t, res.runaway], ref):
            close(got, want)
        assert res.phi is p and res.n_runaway == 0


def test_bose_torch_reference_equals_kernel():
    torch = pytest.importorskip("torch")
    p0 = fields(2, 3, 3, seed=5)
    kw = dict(N=3, d=3, m=0.8, lam=0.3, mu=0.6, dt=0.01, nsteps=9, every=2, scheme="heun", seed=2, n_y=0.2,
              kbar=3.0)
    p = p0.copy()
    res = K.bose_langevin(p, **kw)
    ref = R.bose_langevin_torch(torch.from_numpy(p0.copy()), noise="philox", **kw)
    for got, want in zip(list(res) + [p, res.t], ref):
        close(got, want.reshape(got.shape).numpy())


# ------------------------------------------------------------------------------ formulas vs models.py

@pytest.mark.parametrize("d,N", [(1, 6), (2, 4), (3, 3), (4, 3)])
def test_bose_drift_equals_model(d, N):
    g = BoseGas(N, d, 0.7, 0.9, 0.55)
    phi = fields(3, N, d, seed=11, scale=1.0) + 0.3j
    want = g.drift(phi.reshape((3,) + g.shape)).reshape(phi.shape)
    close(K.bose_drift(phi, N=N, d=d, m=0.7, lam=0.9, mu=0.55), want, rtol=1e-13, atol=1e-13)
    lat = phi.reshape((3,) + g.shape)  # the lattice-shaped form is accepted too
    close(K.bose_drift(lat, N=N, d=d, m=0.7, lam=0.9, mu=0.55), g.drift(lat), rtol=1e-13, atol=1e-13)
    kmax = K.bose_kmax(phi, N=N, d=d, m=0.7, lam=0.9, mu=0.55)
    close(kmax, np.abs(want).reshape(3, -1).max(axis=1), rtol=1e-14, atol=0)
    dens, phi2 = K.bose_observables(phi, N=N, d=d, mu=0.55)
    close(dens, g.density(lat), rtol=1e-13, atol=1e-13)
    close(phi2, g.phi2(lat), rtol=1e-13, atol=1e-13)


def _cmul(ar, ai, br, bi):  # cl/site.h's complex product in real numpy arithmetic: no fused operations
    return ar * br - ai * bi, ar * bi + ai * br


@pytest.mark.parametrize("d,N", [(2, 4), (3, 3), (4, 2)])
def test_bose_drift_bits_are_the_header_formula(d, N):
    """The CPU drift, bit for bit, is (B3) in cl/site.h's order of IEEE operations with no contraction
    (what the GPU computes with --fmad=false): GCC 12 once fused the complex products of some stages
    into vfmaddsub despite -ffp-contract=off (CMakeLists.txt, -fno-tree-slp-vectorize)."""
    B, m, lam, mu = 5, 1.0, 0.5, 0.4
    p = fields(B, N, d, seed=d)
    got = np.asarray(K.bose_drift(p, N=N, d=d, m=m, lam=lam, mu=mu)).reshape(B, 2, -1)
    lat = (B, 2) + (N,) * d
    f = p.reshape(lat)
    re, im = f.real.copy(), f.imag.copy()
    roll = lambda a, s, ax: np.roll(a, s, axis=ax + 2)  # noqa: E731  lattice axis ax of (B, 2, N, ...)
    r2r, r2i = _cmul(re[:, 0], im[:, 0], re[:, 0], im[:, 0])
    s2r, s2i = _cmul(re[:, 1], im[:, 1], re[:, 1], im[:, 1])
    rho_r, rho_i = r2r + s2r, r2i + s2i
    wr, wi = (2 * d + m * m) + lam * rho_r, lam * rho_i
    out = []
    ch, sh = math.cosh(mu), math.sinh(mu)
    for a in (0, 1):
        xr, xi = _cmul(wr, wi, re[:, a], im[:, a])
        ar, ai = -xr, -xi
        for nu in range(1, d):
            ar = (ar + roll(re, -1, nu)[:, a]) + roll(re, 1, nu)[:, a]
            ai = (ai + roll(im, -1, nu)[:, a]) + roll(im, 1, nu)[:, a]
        ur, ui = roll(re, -1, 0)[:, a], roll(im, -1, 0)[:, a]
        dr, di = roll(re, 1, 0)[:, a], roll(im, 1, 0)[:, a]
        b = 1 - a
        vr, vi = roll(re, -1, 0)[:, b] - roll(re, 1, 0)[:, b], roll(im, -1, 0)[:, b] - roll(im, 1, 0)[:, b]
        tr, ti = -(sh * vi), sh * vr  # times_i(sh, v)
        sgn = -1 if a == 0 else 1
        kr = (ar + ch * (ur + dr)) + sgn * tr if sgn > 0 else (ar + ch * (ur + dr)) - tr
        ki = (ai + ch * (ui + di)) + ti if sgn > 0 else (ai + ch * (ui + di)) - ti
        out.append((kr + 1j * ki).reshape(B, -1))
    want = np.stack(out, axis=1)
    assert np.array_equal(got, want)


def test_quartic_kmax_equals_model():
    z = walkers(50, seed=3, scale=2.0)
    q = Quartic(0.5 - 1j, 0.7)
    close(K.quartic_kmax(z, 0.5 - 1j, 0.7), np.abs(q.drift(z)), rtol=1e-14, atol=0)


# ------------------------------------------------------------------------------ noise reproducibility

def test_noise_is_a_function_of_seed_index_and_step():
    a = K.langevin_noise(np.empty((6, 9)), 5, 10, 3)
    b = K.langevin_noise(np.empty((3, 9)), 5, 13, 3)
    assert np.array_equal(a[3:], b)
    assert not np.array_equal(a, K.langevin_noise(np.empty((6, 9)), 5, 10, 4))
    assert not np.array_equal(a, K.langevin_noise(np.empty((6, 9)), 6, 10, 3))
    c = K.langevin_noise(np.empty((6, 4)), 5, 10, 3)  # a shorter vector is a prefix
    assert np.array_equal(a[:, :4], c)
    assert abs(a.mean()) < 0.5 and 0.5 < a.std() < 1.5
    assert kernels._cpu.cl.RNG_LANGEVIN == K.RNG_LANGEVIN == 2
    assert K.NUMERICS_VERSION == kernels.NUMERICS_VERSIONS["cl"] == 3


def test_quartic_noise_is_one_stream_per_walker():
    """Quartic walkers (cl numerics 2): step s uses entries n s .. n s + n - 1 of the walker's stream."""
    real = np.concatenate([K.quartic_noise(np.empty((7, 1)), 5, 10, s) for s in range(12)], axis=1)
    cplx = np.concatenate([K.quartic_noise(np.empty((7, 2)), 5, 10, s) for s in range(6)], axis=1)
    assert np.array_equal(real, cplx)  # the same stream, consumed one or two entries per step
    assert np.array_equal(K.quartic_noise(np.empty((4, 1)), 5, 13, 3), real[3:, 3:4])  # walker offset
    assert not np.array_equal(real, np.concatenate([K.quartic_noise(np.empty((7, 1)), 6, 10, s)
                                                     for s in range(12)], axis=1))
    # entry j is normal j mod 4 of the block with counter (0, j div 4, RNG_LANGEVIN_WALKER, 0): the
    # generator's words through the same Box-Muller as the phi4 momenta (fill_normal), re-derived here
    words = np.array(kernels.philox4x64_10([0, 2, K.RNG_LANGEVIN_WALKER, 0], [5, 12]), np.uint64)
    u = ((words >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    r01, r23 = np.sqrt(-2 * np.log(u[0])), np.sqrt(-2 * np.log(u[2]))
    expect = [r01 * np.cos(2 * np.pi * u[1]), r01 * np.sin(2 * np.pi * u[1]),
              r23 * np.cos(2 * np.pi * u[3]), r23 * np.sin(2 * np.pi * u[3])]
    close(real[2, 8:12], expect, rtol=1e-14, atol=1e-15)
    assert kernels._cpu.cl.RNG_LANGEVIN_WALKER == K.RNG_LANGEVIN_WALKER == 3


@pytest.mark.parametrize("n", [1, 5, 124, 128, 131, 257, 283])
def test_langevin_noise_words_any_length(n):
    """The CPU's lane-block Philox (csrc/include/qcdhpc/core/philox.h, philox4x64_10_lanes: 32 lanes
    interleaved, then 8 at a time, masked tail) gives the generator's words for every block of every
    row: entries re-derived from kernels.philox4x64_10 block by block (counter (blk, step, 2, 0))."""
    B, seed, off, step = 2, 9, 4, 6
    a = K.langevin_noise(np.empty((B, n)), seed, off, step)
    for b in range(B):
        for blk in range((n + 3) // 4):
            words = np.array(kernels.philox4x64_10([blk, step, K.RNG_LANGEVIN, 0], [seed, off + b]), np.uint64)
            u = ((words >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
            r01, r23 = np.sqrt(-2 * np.log(u[0])), np.sqrt(-2 * np.log(u[2]))
            expect = [r01 * np.cos(2 * np.pi * u[1]), r01 * np.sin(2 * np.pi * u[1]),
                      r23 * np.cos(2 * np.pi * u[3]), r23 * np.sin(2 * np.pi * u[3])]
            m = min(4, n - 4 * blk)
            close(a[b, 4 * blk:4 * blk + m], expect[:m], rtol=1e-13, atol=1e-14)


def test_quartic_noise_statistics():
    """The stream's normals: N(0, 1) (Kolmogorov-Smirnov, moments, tails) and uncorrelated in steps."""
    stats = pytest.importorskip("scipy.stats")
    W, S = 2000, 64
    g = np.concatenate([K.quartic_noise(np.empty((W, 1)), 11, 0, s) for s in range(S)], axis=1)
    x = g.ravel()
    n = x.size
    assert stats.kstest(x, "norm").pvalue > 1e-3
    assert abs(x.mean()) < 5 / np.sqrt(n) and abs(x.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(x**4) - 3) < 5 * np.sqrt(96 / n)
    p3 = 2 * stats.norm.sf(3.0)
    assert abs(np.mean(np.abs(x) > 3.0) - p3) < 5 * np.sqrt(p3 / n)
    assert np.abs(x).max() > 4.0  # the tail is there (P(|g| > 4) n ~ 8)
    for lag in (1, 2, 3, 4, 5, 8):  # within and across Philox blocks
        assert abs(np.mean(g[:, :-lag] * g[:, lag:])) < 5 / np.sqrt(W * (S - lag))


@pytest.mark.parametrize("W", [16, 127, 128, 129, 257])
@pytest.mark.parametrize("n_y", [0.0, 0.4])
def test_quartic_lane_blocks_equal_flat_any_count_and_offset(W, n_y):
    """Lane blocks (W >= 16, partial last block) equal the flat schedule (W < 16) walker by walker, for
    a start step that is not a multiple of the noise block (4 steps, or 2 with complex noise)."""
    z0 = walkers(W, seed=W, scale=1.0)
    kw = dict(sigma=1 + 1j, lam=1.0, dt=0.01, nsteps=23, every=3, scheme="heun", seed=7, n_y=n_y)
    zb = z0.copy()
    rb = K.quartic_langevin(zb, step_offset=5, walker_offset=3, **kw)
    for w0 in range(0, W, 15):  # pieces of up to 15 walkers run flat
        zf = z0[w0:w0 + 15].copy()
        rf = K.quartic_langevin(zf, step_offset=5, walker_offset=3 + w0, **kw)
        assert np.array_equal(zf, zb[w0:w0 + 15])
        assert np.array_equal(rf[0], rb[0][w0:w0 + 15]) and np.array_equal(rf.t, rb.t[w0:w0 + 15])


@pytest.mark.parametrize("scheme,kbar,n_y", [("heun", None, 0.0), ("euler", 2.0, 0.5), ("heun", 2.0, 0.5)])
def test_quartic_split_runs_equal_one_run_bit_for_bit(scheme, kbar, n_y):
    z0 = walkers(300, seed=2, scale=1.0)
    kw = dict(sigma=1 + 1j, lam=1.0, dt=0.01, every=5, scheme=scheme, seed=3, n_y=n_y, kbar=kbar)
    one = z0.copy()
    r1 = K.quartic_langevin(one, nsteps=100, **kw)
    two = z0.copy()
    t, run = np.zeros(300), np.zeros(300, np.uint8)
    ra = K.quartic_langevin(two, nsteps=50, t=t, runaway=run, **kw)
    rb = K.quartic_langevin(two, nsteps=50, step_offset=50, t=t, runaway=run, **kw)
    assert np.array_equal(one, two) and np.array_equal(r1.t, t)
    assert np.array_equal(r1[0], np.concatenate([ra[0], rb[0]], axis=1))
    assert np.array_equal(r1[1], np.concatenate([ra[1], rb[1]], axis=1))
    # batching: walkers 0..129 and 130..299 in two calls (walker_offset), lane blocks split differently
    parts = [z0[:130].copy(), z0[130:].copy()]
    rp = [K.quartic_langevin(parts[0], nsteps=100, **kw),
          K.quartic_langevin(parts[1], nsteps=100, walker_offset=130, **kw)]
    assert np.array_equal(np.concatenate(parts), one)
    assert np.array_equal(np.concatenate([rp[0][0], rp[1][0]]), r1[0])
    # fewer than 16 walkers run with the GPU's schedule (one walker, all steps): same bits
    small = z0[40:52].copy()
    rs = K.quartic_langevin(small, nsteps=100, walker_offset=40, **kw)
    assert np.array_equal(small, one[40:52]) and np.array_equal(rs[0], r1[0][40:52])
    assert np.array_equal(rs[1], r1[1][40:52]) and np.array_equal(rs.t, r1.t[40:52])


@pytest.mark.parametrize("kbar,n_y", [(None, 0.0), (3.0, 0.3)])
def test_bose_split_runs_equal_one_run_bit_for_bit(kbar, n_y):
    p0 = fields(5, 4, 2, seed=4)
    kw = dict(N=4, d=2, m=1.0, lam=0.5, mu=0.5, dt=0.01, every=10, seed=8, n_y=n_y, kbar=kbar)
    one = p0.copy()
    r1 = K.bose_langevin(one, nsteps=100, **kw)
    two = p0.copy()
    t, run = np.zeros(5), np.zeros(5, np.uint8)
    ra = K.bose_langevin(two, nsteps=50, t=t, runaway=run, **kw)
    rb = K.bose_langevin(two, nsteps=50, step_offset=50, t=t, runaway=run, **kw)
    assert np.array_equal(one, two) and np.array_equal(r1.t, t)
    for x, a, b in zip(r1, ra, rb):
        assert np.array_equal(x, np.concatenate([a, b], axis=1))
    part = p0[2:].copy()
    rp = K.bose_langevin(part, nsteps=100, field_offset=2, **kw)
    assert np.array_equal(part, one[2:])
    assert np.array_equal(rp[0], r1[0][2:])


@pytest.mark.parametrize("N,d,scheme,kbar,n_y", [(4, 2, "heun", None, 0.0), (3, 2, "euler", 3.0, 0.3),
                                                 (3, 3, "heun", 3.0, 0.3), (2, 4, "heun", None, 0.2)])
def test_bose_lane_blocks_equal_single_configurations_bit_for_bit(N, d, scheme, kbar, n_y):
    """B >= 2 configurations run in lane blocks of eight on the CPU (cl_cpu.cpp, bose_lane_block:
    here one full block and a partial one), B = 1 through the stages one configuration at a time
    (the GPU's code): the same bits, including a configuration that runs away during the call, an
    odd volume (a partial last noise block) and records of every kind."""
    B = 11
    p0 = fields(B, N, d, seed=N + d)
    p0[4, 1, 2] = 9e3  # runs away within a few steps at a fixed step (bound 1e4 below)
    p0[9, 0, 1] = 2e4  # has run away before the call
    kw = dict(N=N, d=d, m=1.0, lam=0.5, mu=0.4, dt=0.01, every=3, seed=5, n_y=n_y, kbar=kbar,
              scheme=scheme, bound=1e4)
    lanes = p0.copy()
    rl = K.bose_langevin(lanes, nsteps=17, step_offset=3, field_offset=2, **kw)
    assert rl.runaway[9] == 1 and rl.runaway[4] == (kbar is None) and rl.n_runaway == 1 + (kbar is None)
    for b in range(B):
        one = p0[b:b + 1].copy()
        r1 = K.bose_langevin(one, nsteps=17, step_offset=3, field_offset=2 + b, **kw)
        assert np.array_equal(one, lanes[b:b + 1], equal_nan=True)
        for x, y in zip(r1, rl):
            assert np.array_equal(x, y[b:b + 1], equal_nan=True)


def test_threads_do_not_change_bits():
    n0 = kernels.get_num_threads()
    out = []
    try:
        for n in (1, 2):
            kernels.set_num_threads(n)
            z = walkers(700, seed=6)
            rq = K.quartic_langevin(z, sigma=1 + 1j, lam=1.0, dt=0.01, nsteps=20, seed=1, kbar=2.0)
            p = fields(1, 8, 3, seed=6)  # B = 1 < threads: stages parallel over sites
            rb = K.bose_langevin(p, N=8, d=3, m=1.0, lam=1.0, mu=0.3, dt=0.01, nsteps=5, seed=1)
            p3 = fields(3, 4, 2, seed=7)  # B >= threads: configurations to threads
            rc = K.bose_langevin(p3, N=4, d=2, m=1.0, lam=1.0, mu=0.3, dt=0.01, nsteps=5, seed=1)
            out.append([z, rq[0], p, rb[0], rb[2], p3, rc[1]])
    finally:
        kernels.set_num_threads(n0)
    for a, b in zip(*out):
        assert np.array_equal(a, b)


def test_torch_tensors_equal_numpy_bit_for_bit():
    torch = pytest.importorskip("torch")
    z0 = walkers(20, seed=8)
    kw = dict(sigma=1 + 1j, lam=1.0, dt=0.01, nsteps=30, every=3, seed=4, kbar=1.0, n_y=0.1)
    zn, zt = z0.copy(), torch.from_numpy(z0.copy())
    rn = K.quartic_langevin(zn, **kw)
    rt = K.quartic_langevin(zt, **kw)
    assert isinstance(rt[0], torch.Tensor) and rt[0].dtype == torch.complex128 and isinstance(rt.t, torch.Tensor)
    assert np.array_equal(zt.numpy(), zn) and np.array_equal(rt[0].numpy(), rn[0])
    p0 = fields(2, 3, 2, seed=9)
    pn, pt = p0.copy(), torch.from_numpy(p0.copy()).reshape(2, 2, 3, 3)
    bn = K.bose_langevin(pn, N=3, d=2, m=1.0, lam=1.0, mu=0.2, dt=0.01, nsteps=7, seed=1)
    bt = K.bose_langevin(pt, N=3, d=2, m=1.0, lam=1.0, mu=0.2, dt=0.01, nsteps=7, seed=1)
    assert bt.phi is pt and np.array_equal(pt.reshape(2, 2, 9).numpy(), pn)
    assert np.array_equal(bt[0].numpy(), bn[0])


# ------------------------------------------------------------------------------ bookkeeping

def test_records_weights_and_time():
    z0 = walkers(16, seed=10)
    z = z0.copy()
    t = np.full(16, 2.5)
    res = K.quartic_langevin(z, sigma=1.0, lam=0.5, dt=0.05, nsteps=10, every=4, seed=1, t=t)
    assert res[0].shape == (16, 3)  # records at local steps 0, 4, 8
    assert np.array_equal(res[0][:, 0], z0)  # the state before the first update
    assert np.all(res[1] == 0.05) and res.t is t
    close(t, 2.5 + 10 * 0.05)
    full = K.quartic_langevin(z0.copy(), sigma=1.0, lam=0.5, dt=0.05, nsteps=10, every=1, seed=1)
    assert np.array_equal(full[0][:, ::4], res[0])
    # adaptive: t is the sum of the steps taken (every = 1 records all of them)
    z = walkers(16, seed=11, scale=3.0)
    ra = K.quartic_langevin(z, sigma=1.0, lam=0.5, dt=0.05, nsteps=25, every=1, seed=1, kbar=1.0)
    assert ra[1].min() < 0.05
    close(ra.t, ra[1].sum(axis=1), rtol=1e-14)
    kmax = K.quartic_kmax(ra[0][:, 3].copy(), 1.0, 0.5)
    close(ra[1][:, 3], np.minimum(0.05, 0.05 * 1.0 / kmax), rtol=1e-15)
    # Bose gas: records of the observables of the state before the update, kmax, weights
    p0 = fields(2, 4, 2, seed=12)
    p = p0.copy()
    rb = K.bose_langevin(p, N=4, d=2, m=1.0, lam=1.0, mu=0.3, dt=0.02, nsteps=6, every=6, seed=1, kbar=2.0)
    dens, phi2 = K.bose_observables(p0, N=4, d=2, mu=0.3)
    assert np.array_equal(rb[0][:, 0], dens) and np.array_equal(rb[1][:, 0], phi2)
    km = K.bose_kmax(p0, N=4, d=2, m=1.0, lam=1.0, mu=0.3)
    assert np.array_equal(rb[2][:, 0], km)
    close(rb[3][:, 0], np.minimum(0.02, 0.02 * 2.0 / km), rtol=1e-15)


def test_quartic_runaways_are_frozen_and_flagged():
    z0 = np.concatenate([np.full(20, 3.0 + 0.1j), walkers(20, seed=13, scale=0.1)])
    z = z0.copy()
    kw = dict(sigma=1.0, lam=1.0, dt=0.5, every=1, scheme="euler", seed=2)
    res = K.quartic_langevin(z, nsteps=30, **kw)
    ref = R.quartic_langevin(z0, nsteps=30, **kw)
    # Walkers blowing up at dt = 0.5 amplify the last-ulp differences between the kernel's drift
    # -(sigma + lam z^2) z and the model's -sigma z - lam z^3 by ~|dK/dz| eps per step (seen: 1.3e-12
    # relative at |z| ~ 1e3 with the version-2 noise stream), hence a looser tolerance here only.
    close(res[0], ref[0], rtol=1e-9)
    close(res[1], ref[1])
    assert np.array_equal(res.runaway, ref[4])
    flagged = res.runaway.astype(bool)
    assert flagged[:20].all() and res.n_runaway == int(flagged.sum()) and res.n_runaway < 40
    for w in range(40):
        bad = np.isnan(res[0][w])
        if flagged[w]:  # records NaN (weight 0) from the first runaway state on; the state is kept
            first = int(np.argmax(bad)) if bad.any() else 30  # 30: it ran away in the last update
            assert bad[first:].all() and np.all(res[1][w, first:] == 0)
            assert np.all(np.isfinite(res[0][w, :first])) and np.all(res[1][w, :first] == 0.5)
            assert not (np.abs(z[w]) <= 1e8)
        else:
            assert not bad.any() and np.all(res[1][w] == 0.5)
    t_before, z_before = res.t.copy(), z.copy()
    again = K.quartic_langevin(z, nsteps=5, step_offset=30, t=res.t, runaway=res.runaway, **kw)
    assert np.array_equal(z[flagged], z_before[flagged], equal_nan=True)
    assert np.array_equal(again.t[flagged], t_before[flagged])
    assert np.isnan(again[0][flagged]).all() and np.all(again[1][flagged] == 0)


def test_bose_runaways_are_frozen_and_flagged():
    p0 = fields(3, 4, 2, seed=14)
    p0[1, 0, 5] = 2e8  # configuration 1 has run away before the call
    p = p0.copy()
    kw = dict(N=4, d=2, m=1.0, lam=1.0, mu=0.3, dt=0.01, every=2, seed=3)
    res = K.bose_langevin(p, nsteps=10, **kw)
    assert list(res.runaway) == [0, 1, 0] and res.n_runaway == 1
    assert np.array_equal(p[1], p0[1]) and res.t[1] == 0
    assert np.isnan(res[0][1]).all() and np.isnan(res[1][1]).all() and np.isnan(res[2][1]).all()
    assert np.all(res[3][1] == 0) and np.all(res[3][[0, 2]] == 0.01)
    ref = R.bose_langevin(p0, nsteps=10, **kw)
    for got, want in zip(list(res) + [p, res.t, res.runaway], ref):
        close(got, want)
    # a step too large for the mass term: every configuration runs away, the call returns
    q = fields(2, 4, 2, seed=15)
    rq = K.bose_langevin(q, nsteps=40, **{**kw, "dt": 1.0, "every": 1})
    assert rq.n_runaway == 2 and np.isnan(rq[0][:, -1]).all()
    assert np.all(rq[3][:, 0] == 1.0)


# ------------------------------------------------------------------------------ refusals

def test_refusals():
    z = walkers(4)
    ok = dict(sigma=1.0, lam=1.0, dt=0.01, nsteps=2, seed=0)
    bad = [
        (dict(dt=0.0), ValueError, "dt"), (dict(dt=-1.0), ValueError, "dt"), (dict(dt=math.nan), ValueError, "dt"),
        (dict(nsteps=0), ValueError, "nsteps"), (dict(every=0), ValueError, "every"),
        (dict(nsteps=2.5), TypeError, "nsteps"), (dict(lam=-0.1), ValueError, "lam"),
        (dict(lam=0.0, sigma=-1 + 1j), ValueError, "sigma"), (dict(sigma=complex(math.inf, 0)), ValueError, "sigma"),
        (dict(lam=math.nan), ValueError, "lam"), (dict(scheme="rk4"), ValueError, "scheme"),
        (dict(n_y=-1.0), ValueError, "n_y"), (dict(kbar=0.0), ValueError, "kbar"),
        (dict(kbar=np.array([1.0, 1.0, -1.0, 1.0])), ValueError, "kbar"),
        (dict(kbar=np.ones(3)), ValueError, "kbar"), (dict(t=np.zeros(3)), ValueError, "t"),
        (dict(t=np.zeros(4, np.float32)), TypeError, "t"), (dict(runaway=np.zeros(4, np.int64)), TypeError, "runaway"),
        (dict(bound=0.0), ValueError, "bound"), (dict(seed=-1), ValueError, "seed"),
    ]
    for kw, exc, word in bad:
        with pytest.raises(exc, match=word):
            K.quartic_langevin(z.copy(), **{**ok, **kw})
    with pytest.raises(TypeError, match="complex128"):
        K.quartic_langevin(z.astype(np.complex64), **ok)
    with pytest.raises(TypeError, match="complex128"):
        K.quartic_langevin(z.real.copy(), **ok)
    with pytest.raises(ValueError, match="shape"):
        K.quartic_langevin(z.reshape(2, 2), **ok)
    with pytest.raises(ValueError, match="contiguous"):
        K.quartic_langevin(walkers(8)[::2], **ok)
    ro = z.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        K.quartic_langevin(ro, **ok)
    # the C++ layer refuses on its own too
    be = kernels._cpu.cl
    args = [z.copy(), 1.0, 1.0, 0.01, 2, 1, "heun", 0, 0, 0, 0.0, None, np.zeros(4), np.zeros(4, np.uint8),
            np.empty((4, 2), complex), np.empty((4, 2)), 1e8]
    be.quartic_langevin(*args)
    for i, v, word in [(3, -1.0, "dt"), (4, 0, "nsteps"), (5, 0, "every"), (2, -1.0, "lam"), (6, "x", "scheme"),
                       (14, np.empty((4, 3), complex), "records"), (12, np.zeros(5), "t")]:
        a = list(args)
        a[i] = v
        with pytest.raises(ValueError, match=word):
            be.quartic_langevin(*a)
    # Bose gas
    p = fields(2, 4, 2)
    okb = dict(N=4, d=2, m=1.0, lam=1.0, mu=0.3, dt=0.01, nsteps=2, seed=0)
    for kw, exc, word in [(dict(N=3), ValueError, "phi"), (dict(d=5), ValueError, "d"), (dict(d=0), ValueError, "d"),
                          (dict(lam=-1.0), ValueError, "lam"), (dict(m=-1.0), ValueError, "m"),
                          (dict(lam=0.0, mu=2.0), ValueError, "mu"), (dict(mu=math.inf), ValueError, "mu"),
                          (dict(dt=0.0), ValueError, "dt"), (dict(every=0), ValueError, "every"),
                          (dict(N=1), ValueError, "N")]:
        with pytest.raises(exc, match=word):
            K.bose_langevin(p.copy(), **{**okb, **kw})
    with pytest.raises(TypeError, match="complex128"):
        K.bose_langevin(p.astype(np.complex64), **okb)
    with pytest.raises(ValueError, match="shape"):
        K.bose_langevin(p.reshape(2, 32), **okb)
    with pytest.raises(ValueError, match="shape"):
        K.bose_langevin(np.zeros((2, 3, 16), complex), **okb)
    with pytest.raises(ValueError, match="phi"):
        kernels._cpu.cl.bose_kmax(np.zeros((2, 2, 15), complex), 4, 2, 1.0, 1.0, 0.3, np.empty(2))
    with pytest.raises(ValueError, match="n"):
        K.langevin_noise(np.empty((0, 3)), 1)


# ------------------------------------------------------------------------------ physics

def _walker_mean_and_error(records):
    """Mean over walkers of the per-walker record means, and its standard error (walkers independent)."""
    per = records.mean(axis=1)
    return per.mean(), per.std(ddof=1) / math.sqrt(per.size)


def test_gaussian_action_gives_unit_variance():
    W = 4000
    z = np.zeros(W, complex)
    K.quartic_langevin(z, sigma=1.0, lam=0.0, dt=0.01, nsteps=500, every=500, seed=21)  # thermalise, t = 5
    res = K.quartic_langevin(z, sigma=1.0, lam=0.0, dt=0.01, nsteps=1000, every=50, seed=21, step_offset=500)
    assert np.all(res[0].imag == 0)  # real action, real noise: z stays real
    x2, err = _walker_mean_and_error(res[0].real ** 2)
    assert abs(x2 - 1.0) < 4 * err, (x2, err)
    assert err < 0.01


def test_quartic_complex_sigma_matches_exact_moment():
    sigma, lam = 1 + 1j, 1.0
    W = 4000
    z = np.zeros(W, complex)
    K.quartic_langevin(z, sigma=sigma, lam=lam, dt=0.01, nsteps=500, every=500, seed=22)
    res = K.quartic_langevin(z, sigma=sigma, lam=lam, dt=0.01, nsteps=1500, every=25, seed=22, step_offset=500)
    assert res.n_runaway == 0
    z2 = res[0] ** 2
    mu2 = exact.moments(sigma, lam, orders=[2])[2]
    re, ere = _walker_mean_and_error(z2.real)
    im, eim = _walker_mean_and_error(z2.imag)
    assert abs(re - mu2.real) < 3 * ere and abs(im - mu2.imag) < 3 * eim, (re, im, mu2, ere, eim)


# ------------------------------------------------------------------------------ GPU

@pytest.mark.gpu
@pytest.mark.parametrize("scheme", ["euler", "heun"])
@pytest.mark.parametrize("kbar,n_y", [(None, 0.0), (1.5, 0.4)])
def test_cuda_quartic_equals_cpu_bit_for_bit(scheme, kbar, n_y):
    torch = pytest.importorskip("torch")
    z0 = torch.from_numpy(np.concatenate([walkers(1000, seed=30, scale=1.0), np.full(3, 40.0 + 0j)]))
    kw = dict(sigma=1 + 1j, lam=1.0, dt=0.05, nsteps=200, every=7, scheme=scheme, seed=5, walker_offset=3,
              step_offset=17, n_y=n_y, kbar=kbar)
    zc, zg = z0.clone(), z0.clone().cuda()
    rc, rg = K.quartic_langevin(zc, **kw), K.quartic_langevin(zg, **kw)
    assert rg[0].device == zg.device
    assert np.array_equal(zg.cpu().numpy(), zc.numpy(), equal_nan=True)
    for a, b in [(rg[0], rc[0]), (rg[1], rc[1]), (rg.t, rc.t), (rg.runaway, rc.runaway)]:
        assert np.array_equal(a.cpu().numpy(), b.numpy(), equal_nan=True)
    assert np.array_equal(K.quartic_kmax(zg, 1 + 1j, 1.0).cpu().numpy(), K.quartic_kmax(zc, 1 + 1j, 1.0).numpy(),
                          equal_nan=True)
    noise = torch.empty(50, 7, dtype=torch.float64)
    assert np.array_equal(K.langevin_noise(noise.cuda(), 3, 2, 9).cpu().numpy(), K.langevin_noise(noise, 3, 2, 9).numpy())


@pytest.mark.gpu
@pytest.mark.parametrize("d,N", [(1, 16), (2, 8), (3, 5), (4, 4)])
@pytest.mark.parametrize("scheme,kbar,n_y", [("euler", None, 0.0), ("heun", 3.0, 0.3)])
def test_cuda_bose_equals_cpu_bit_for_bit(d, N, scheme, kbar, n_y):
    torch = pytest.importorskip("torch")
    p0 = torch.from_numpy(fields(5, N, d, seed=31))
    p0[4, 0, 1] = 1e9  # one runaway
    kw = dict(N=N, d=d, m=1.0, lam=0.5, mu=0.4, dt=0.01, nsteps=30, every=4, scheme=scheme, seed=6, field_offset=2,
              step_offset=9, n_y=n_y, kbar=kbar)
    pc, pg = p0.clone(), p0.clone().cuda()
    rc, rg = K.bose_langevin(pc, **kw), K.bose_langevin(pg, **kw)
    assert np.array_equal(pg.cpu().numpy(), pc.numpy())
    for a, b in zip(list(rg) + [rg.t, rg.runaway], list(rc) + [rc.t, rc.runaway]):
        assert np.array_equal(a.cpu().numpy(), b.numpy(), equal_nan=True)
    assert rc.n_runaway == rg.n_runaway == 1
    m = dict(N=N, d=d, m=1.0, lam=0.5, mu=0.4)
    assert np.array_equal(K.bose_drift(pg, **m).cpu().numpy(), K.bose_drift(pc, **m).numpy())
    assert np.array_equal(K.bose_kmax(pg, **m).cpu().numpy(), K.bose_kmax(pc, **m).numpy(), equal_nan=True)
