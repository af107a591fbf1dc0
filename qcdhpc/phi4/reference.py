"""Plain batched reference implementation of the phi^4 HMC trajectory (torch or numpy).

This is the same trajectory the C++ kernel runs -- same action, force, integrators, random numbers
and Metropolis rule -- written the way a user would write it without our kernel: vectorised over a
batch of B independent chains with ``roll``.  It serves two purposes:

* the tests check that the compiled kernel equals this code to rounding with the same random numbers
  (``tests/test_kernel_vs_reference.py``), so it deliberately does not import ``qcdhpc._kernels``;
* the benchmarks use it as the torch and numpy baselines (``benchmarks/bench_hmc.py``).

Every function accepts either numpy arrays or torch CPU tensors of shape (B, L0, L1), float64 or
float32, and returns the same kind.  torch is imported only when a tensor is passed in.

Conventions (docs/conventions.md; issue 2), site x = (x0, x1), periodic:

    S[phi] = sum_x [ -2 kappa sum_{mu=0,1} phi(x) phi(x+mu) + (1 - 2 lam) phi(x)^2 + lam phi(x)^4 ]   (1)
    F(x)   = -dS/dphi(x)
           = 2 kappa sum_mu [phi(x+mu) + phi(x-mu)] - 2 (1 - 2 lam) phi(x) - 4 lam phi(x)^3           (2)
    H      = 1/2 sum_x p(x)^2 + S[phi]                                                                 (3)

Random numbers: numpy's Philox4x64-10 with key (seed, chain_offset + b) for chain b.  The momenta of
trajectory t come from counter blocks (blk, t, 0, 0), blk = 0 .. ceil(V/4) - 1, block blk giving the
four words of sites 4 blk .. 4 blk + 3; the Metropolis uniform is word 0 of block (0, t, 1, 0).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "OMELYAN_LAMBDA",
    "action",
    "force",
    "hamiltonian",
    "md_leapfrog",
    "md_omelyan",
    "INTEGRATORS",
    "philox_block_words",
    "uniform53",
    "momenta",
    "accept_uniform",
    "hmc_trajectories",
]

#: Omelyan, Mryglod & Folk, Comput. Phys. Commun. 151 (2003) 272, eq. (31): the 2MN (second order,
#: minimum norm) velocity-Verlet-like scheme with the smallest leading error coefficient.
OMELYAN_LAMBDA = 0.1931833275037836

_TWO_PI = 2.0 * math.pi
_MASK64 = (1 << 64) - 1
_MASK256 = (1 << 256) - 1


# -------------------------------------------------------------------------------------------------
# array-library dispatch: the physics below is written once for numpy and torch
# -------------------------------------------------------------------------------------------------
def _is_torch(x) -> bool:
    # checking the module name avoids importing torch for numpy-only users
    return type(x).__module__.startswith("torch")


def _roll(x, shift: int, axis: int):
    if _is_torch(x):
        import torch

        return torch.roll(x, shift, axis)
    return np.roll(x, shift, axis)


def _as_float64(x):
    if _is_torch(x):
        import torch

        return x.to(torch.float64)
    return np.asarray(x, dtype=np.float64)


def _to_numpy(x) -> np.ndarray:
    return x.numpy() if _is_torch(x) else np.asarray(x)


def _like(a: np.ndarray, ref):
    """Return numpy array ``a`` as the same kind of array as ``ref`` (sharing memory for torch)."""
    if _is_torch(ref):
        import torch

        return torch.from_numpy(a)
    return a


def _copy(x):
    return x.clone() if _is_torch(x) else x.copy()


def _is_torch_dtype(dtype) -> bool:
    return type(dtype).__module__.startswith("torch")


def _numpy_dtype(dtype) -> np.dtype:
    """numpy dtype for a numpy or torch dtype (momenta are generated in numpy either way)."""
    if _is_torch_dtype(dtype):
        import torch

        return np.dtype({torch.float64: np.float64, torch.float32: np.float32}[dtype])
    return np.dtype(dtype)


# -------------------------------------------------------------------------------------------------
# action, force, Hamiltonian
# -------------------------------------------------------------------------------------------------
def action(phi, kappa: float, lam: float):
    """S[phi] of eq. (1) per chain, shape (B,), float64.

    Like the kernel, the per-site terms are evaluated in float64 from the field converted to double,
    whatever the field's dtype, so that H is comparable between dtypes and ΔH is not dominated by
    float32 cancellation in a sum over V sites.
    """
    f = _as_float64(phi)
    # forward neighbours only: each nearest-neighbour bond is counted once, as in eq. (1)
    hop = f * (_roll(f, -1, 1) + _roll(f, -1, 2))
    f2 = f * f
    s = -2.0 * kappa * hop + (1.0 - 2.0 * lam) * f2 + lam * (f2 * f2)
    return s.sum((1, 2))


def force(phi, kappa: float, lam: float):
    """F = -dS/dphi of eq. (2), same shape and dtype as ``phi``.

    The coefficients are formed in double and then used in the field's precision (Python floats are
    'weak' scalars in both numpy and torch), so a float32 field gets float32 arithmetic throughout,
    as in the kernel.
    """
    nb = _roll(phi, 1, 1) + _roll(phi, -1, 1) + _roll(phi, 1, 2) + _roll(phi, -1, 2)
    c_hop, c_mass, c_quart = 2.0 * kappa, 2.0 * (1.0 - 2.0 * lam), 4.0 * lam
    return c_hop * nb - phi * (c_mass + c_quart * (phi * phi))


def hamiltonian(phi, p, kappa: float, lam: float):
    """H of eq. (3) per chain in float64 (the field and momenta converted to double first)."""
    q = _as_float64(p)
    return 0.5 * (q * q).sum((1, 2)) + action(phi, kappa, lam)


# -------------------------------------------------------------------------------------------------
# molecular dynamics (both update phi and p in place and return them)
# -------------------------------------------------------------------------------------------------
def md_leapfrog(phi, p, kappa: float, lam: float, eps: float, nmd: int):
    """nmd leapfrog steps  p += eps/2 F;  phi += eps p;  p += eps/2 F.

    The closing half-kick of one step and the opening half-kick of the next use the same force, so
    they are merged into one full kick (nmd + 1 force evaluations instead of 2 nmd) -- the same map
    up to rounding.
    """
    p += (0.5 * eps) * force(phi, kappa, lam)
    for i in range(nmd):
        phi += eps * p
        p += (eps if i < nmd - 1 else 0.5 * eps) * force(phi, kappa, lam)
    return phi, p


def md_omelyan(phi, p, kappa: float, lam: float, eps: float, nmd: int):
    """nmd Omelyan 2MN steps (Omelyan, Mryglod & Folk 2003, eq. 31) with lam_O = OMELYAN_LAMBDA:

        p += lam_O eps F;  phi += eps/2 p;  p += (1 - 2 lam_O) eps F;  phi += eps/2 p;  p += lam_O eps F

    with the last kick of a step merged into the first of the next (2 nmd + 1 force evaluations).
    """
    lo = OMELYAN_LAMBDA
    p += (lo * eps) * force(phi, kappa, lam)
    for i in range(nmd):
        phi += (0.5 * eps) * p
        p += ((1.0 - 2.0 * lo) * eps) * force(phi, kappa, lam)
        phi += (0.5 * eps) * p
        p += ((2.0 * lo if i < nmd - 1 else lo) * eps) * force(phi, kappa, lam)
    return phi, p


INTEGRATORS = {"leapfrog": md_leapfrog, "omelyan": md_omelyan}


# -------------------------------------------------------------------------------------------------
# random numbers: numpy's Philox4x64-10, counter conventions of the kernel
# -------------------------------------------------------------------------------------------------
def _check_u64(name: str, v: int) -> int:
    v = int(v)
    if not 0 <= v <= _MASK64:
        raise ValueError(f"{name}={v} is not an unsigned 64-bit integer")
    return v


def philox_block_words(seed: int, chain: int, counter, nblocks: int) -> np.ndarray:
    """Words of ``nblocks`` consecutive Philox4x64-10 blocks, shape (4 nblocks,) uint64.

    Block j is philox(counter + j, key) with key = (seed, chain) and the 256-bit counter
    c0 + c1 2^64 + c2 2^128 + c3 2^192 incremented as a little-endian integer.  numpy's ``Philox``
    increments its counter *before* producing each block, so it is started at counter - 1 (mod 2^256,
    which borrows into c1.. when c0 = 0).
    """
    c = sum(_check_u64("counter word", w) << (64 * i) for i, w in enumerate(counter))
    key = _check_u64("seed", seed) | (_check_u64("chain", chain) << 64)
    bg = np.random.Philox(key=key, counter=(c - 1) & _MASK256)
    return bg.random_raw(4 * nblocks)


def uniform53(w: np.ndarray) -> np.ndarray:
    """u = ((w >> 11) + 1/2) 2^-53: the top 53 bits, centred in their interval, so u is in (0, 1)
    strictly (log u and u < exp(-dH) are always defined).  Same float64 operations as the kernel."""
    return ((w >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def momenta(seed: int, chain_offset: int, B: int, L0: int, L1: int, traj: int, dtype=np.float64):
    """Gaussian momenta of trajectory ``traj`` for chains chain_offset .. chain_offset + B - 1.

    Box-Muller on word pairs: sites 4 blk + {0, 1} get (r cos th, r sin th) from (u0, u1) of block
    (blk, traj, 0, 0), sites 4 blk + {2, 3} the same from (u2, u3); r = sqrt(-2 ln u_a),
    th = 2 pi u_b.  Computed in float64 and then cast to ``dtype`` (a numpy or torch dtype; a torch
    dtype gives a torch tensor).
    """
    V = L0 * L1
    nblk = -(-V // 4)
    words = np.stack(
        [philox_block_words(seed, chain_offset + b, (0, traj, 0, 0), nblk) for b in range(B)]
    ).reshape(B, 2 * nblk, 2)
    u = uniform53(words)
    r = np.sqrt(-2.0 * np.log(u[..., 0]))
    th = _TWO_PI * u[..., 1]
    g = np.stack([r * np.cos(th), r * np.sin(th)], axis=-1).reshape(B, 4 * nblk)[:, :V]
    g = np.ascontiguousarray(g.reshape(B, L0, L1), dtype=_numpy_dtype(dtype))
    if _is_torch_dtype(dtype):
        import torch

        return torch.from_numpy(g)
    return g


def accept_uniform(seed: int, chain_offset: int, B: int, traj: int) -> np.ndarray:
    """Metropolis uniforms of trajectory ``traj``, shape (B,) float64: word 0 of block (0, traj, 1, 0)."""
    w = np.array([philox_block_words(seed, chain_offset + b, (0, traj, 1, 0), 1)[0] for b in range(B)])
    return uniform53(w)


# -------------------------------------------------------------------------------------------------
# whole trajectories
# -------------------------------------------------------------------------------------------------
def hmc_trajectories(
    phi,
    kappa: float,
    lam: float,
    nmd: int,
    tau: float,
    integrator: str,
    seed: int,
    chain_offset: int,
    traj_offset: int,
    ntraj: int,
    rng=None,
):
    """Run ``ntraj`` HMC trajectories (indices traj_offset ..) on every chain; update ``phi`` in place.

    Per trajectory t: momenta(t); H0 = H(phi, p); MD with eps = tau/nmd; dH = H1 - H0 (float64);
    accept iff dH <= 0 or u_t < exp(-dH) (Metropolis; a NaN dH is rejected); rejected chains get their
    field back.  Returns (dH, acc) of shape (B, ntraj), float64 and bool, as numpy arrays for a numpy
    ``phi`` and torch tensors for a torch one.

    ``rng``: None (default) draws the kernel's Philox streams above, so that results can be compared
    with the kernel number for number.  A ``numpy.random.Generator`` (numpy ``phi``) or
    ``torch.Generator`` (torch ``phi``) instead draws momenta and Metropolis uniforms the way a user
    would (``standard_normal`` / ``randn``, ``random`` / ``rand``); seed, chain_offset and traj_offset
    are then unused.  The benchmark's baselines use this, since numpy's Philox plus Box-Muller costs a
    third of a numpy trajectory at L=32 and would flatter the kernel.
    """
    if integrator not in INTEGRATORS:
        raise ValueError(f"integrator={integrator!r}: expected one of {sorted(INTEGRATORS)}")
    md = INTEGRATORS[integrator]
    B, L0, L1 = phi.shape
    eps = tau / nmd
    dH = np.empty((B, ntraj), dtype=np.float64)
    acc = np.empty((B, ntraj), dtype=bool)
    for j in range(ntraj):
        t = traj_offset + j
        if rng is None:
            p = momenta(seed, chain_offset, B, L0, L1, t, phi.dtype)
            u = accept_uniform(seed, chain_offset, B, t)
        elif _is_torch(phi):
            import torch

            p = torch.randn(phi.shape, dtype=phi.dtype, generator=rng)
            u = torch.rand(B, dtype=torch.float64, generator=rng).numpy()
        else:
            p = rng.standard_normal(phi.shape, dtype=phi.dtype)
            u = rng.random(B)
        phi_old = _copy(phi)
        h0 = hamiltonian(phi, p, kappa, lam)
        md(phi, p, kappa, lam, eps, nmd)
        dh = _to_numpy(hamiltonian(phi, p, kappa, lam) - h0)
        with np.errstate(over="ignore", invalid="ignore"):  # exp(-dH) may overflow; then dH <= 0
            a = (dh <= 0.0) | (u < np.exp(-dh))
        rej = np.flatnonzero(~a)
        if rej.size:
            phi[_like(rej, phi)] = phi_old[_like(rej, phi)]
        dH[:, j], acc[:, j] = dh, a
    return _like(dH, phi), _like(acc, phi)
