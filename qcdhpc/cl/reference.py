"""Plain vectorised reference implementation of the complex Langevin kernels (numpy; torch for the
Bose gas).

The same schemes the compiled kernels run (``qcdhpc.kernels.cl``: Euler–Maruyama and stochastic
Heun, fixed or adaptive step, real or complex noise, records before each recorded update with the
step as weight, runaway freezing), written the way a user would write them without the kernels:
vectorised over the walkers / configurations, with ``np.roll`` through ``qcdhpc.cl.models`` (whose
``drift`` is the reference formula).  Two uses:

* the tests check that the kernels equal this code to rounding for the same noise
  (``tests/test_cl_kernels.py``): ``noise="philox"`` (default) takes every step's normals from
  ``qcdhpc.kernels.cl.quartic_noise`` / ``langevin_noise``, so both see identical numbers;
* the benchmarks use it as the numpy and torch baselines (``benchmarks/bench_cl.py``), there with
  ``noise="native"`` (numpy's / torch's own generator, faster than emulating Philox).

``noise`` may also be a callable ``noise(step, B, n) -> (B, n) float64`` array.  Noise layout per
walker / configuration and step: ``qcdhpc.kernels.cl`` (quartic n = 1 or 2: η_x, η_y; Bose
n = 2V or 4V: η_x of (a, x) at a·V + x, η_y at 2V + a·V + x).

Inputs are not modified: the functions return new arrays.
"""
from __future__ import annotations

import math

import numpy as np

from .models import BoseGas, Quartic

__all__ = ["quartic_langevin", "bose_langevin", "bose_langevin_torch", "bose_drift_torch", "philox_noise",
           "native_noise"]

SCHEMES = ("euler", "heun")


def philox_noise(seed: int, offset: int = 0, model: str = "bose"):
    """noise(step, B, n): the kernels' normals (qcdhpc.kernels.cl.langevin_noise for the Bose gas,
    qcdhpc.kernels.cl.quartic_noise for ``model="quartic"``)."""
    from ..kernels import cl as K

    fill = K.quartic_noise if model == "quartic" else K.langevin_noise

    def noise(step, B, n):
        return fill(np.empty((B, n)), seed, offset, step)

    return noise


def native_noise(seed: int = 0):
    """noise(step, B, n) from numpy's default generator (not the kernels' stream)."""
    rng = np.random.default_rng(seed)
    return lambda step, B, n: rng.standard_normal((B, n))


def _noise_fn(noise, seed, offset, model="bose"):
    if noise == "philox":
        return philox_noise(seed, offset, model)
    if noise == "native":
        return native_noise(seed)
    if callable(noise):
        return noise
    raise ValueError(f"noise must be 'philox', 'native' or a callable, got {noise!r}")


def _check(scheme, dt, nsteps, every, n_y):
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if not (math.isfinite(dt) and dt > 0) or nsteps < 1 or every < 1 or not n_y >= 0:
        raise ValueError("need dt > 0, nsteps >= 1, every >= 1, n_y >= 0")


def _step(eps_fixed, kbar, kmax):
    """ε = min(dt, dt K̄ / K_max) as  K_max > K̄ ? dt K̄ / K_max : dt  (kbar None: dt)."""
    if kbar is None:
        return np.full(kmax.shape, eps_fixed)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(kmax > kbar, eps_fixed * kbar / kmax, eps_fixed)


def _abs2(z):
    return z.real * z.real + z.imag * z.imag


def quartic_langevin(z, *, sigma, lam, dt, nsteps, every=1, scheme="heun", seed=0, walker_offset=0,
                     step_offset=0, n_y=0.0, kbar=None, t=None, runaway=None, bound=1e8, noise="philox"):
    """Reference of ``qcdhpc.kernels.cl.quartic_langevin``.  Returns
    ``(records, weights, z, t, runaway)`` (new arrays)."""
    q = Quartic(sigma, lam)
    _check(scheme, dt, nsteps, every, n_y)
    noise = _noise_fn(noise, seed, walker_offset, "quartic")
    z = np.array(z, dtype=np.complex128)
    W = z.shape[0]
    t = np.zeros(W) if t is None else np.array(t, dtype=np.float64)
    frozen = np.zeros(W, bool) if runaway is None else np.array(runaway, dtype=bool)
    kbar = None if kbar is None else np.broadcast_to(np.asarray(kbar, dtype=np.float64), (W,))
    nrec = -(-nsteps // every)
    records = np.empty((W, nrec), np.complex128)
    weights = np.empty((W, nrec))
    cn = n_y > 0
    two_nx, two_ny = 2.0 * (1.0 + n_y), 2.0 * n_y
    bound2 = bound * bound
    with np.errstate(all="ignore"):
        for k in range(nsteps):
            frozen |= ~(_abs2(z) <= bound2)
            live = ~frozen
            K = q.drift(z)
            eps = _step(dt, kbar, np.sqrt(_abs2(K)))
            if k % every == 0:
                records[:, k // every] = np.where(live, z, complex(np.nan, np.nan))
                weights[:, k // every] = np.where(live, eps, 0.0)
            g = noise(step_offset + k, W, 2 if cn else 1)
            eta = np.sqrt(eps * two_nx) * g[:, 0]
            if cn:
                eta = eta + 1j * (np.sqrt(eps * two_ny) * g[:, 1])
            zn = z + eps * K + eta
            if scheme == "heun":
                zn = z + 0.5 * eps * (K + q.drift(zn)) + eta
            z = np.where(live, zn, z)
            t = np.where(live, t + eps, t)
        frozen |= ~(_abs2(z) <= bound2)
    return records, weights, z, t, frozen.astype(np.uint8)


def bose_langevin(phi, *, N, d, m, lam, mu, dt, nsteps, every=1, scheme="heun", seed=0, field_offset=0,
                  step_offset=0, n_y=0.0, kbar=None, t=None, runaway=None, bound=1e8, noise="philox"):
    """Reference of ``qcdhpc.kernels.cl.bose_langevin`` (phi (B, 2, N^d) or (B, 2, N, ..., N)).
    Returns ``(density, phi2, kmax, weights, phi, t, runaway)`` (phi in the input's shape)."""
    g = BoseGas(N, d, m, lam, mu)
    _check(scheme, dt, nsteps, every, n_y)
    noise = _noise_fn(noise, seed, field_offset)
    shape_in = np.shape(phi)
    B, V = shape_in[0], g.volume
    lat = (B,) + g.shape
    phi = np.array(phi, dtype=np.complex128).reshape(lat)
    t = np.zeros(B) if t is None else np.array(t, dtype=np.float64)
    frozen = np.zeros(B, bool) if runaway is None else np.array(runaway, dtype=bool)
    kbar = None if kbar is None else np.broadcast_to(np.asarray(kbar, dtype=np.float64), (B,))
    nrec = -(-nsteps // every)
    dens = np.empty((B, nrec), np.complex128)
    phi2 = np.empty((B, nrec), np.complex128)
    kmaxr = np.empty((B, nrec))
    weights = np.empty((B, nrec))
    cn = n_y > 0
    two_nx, two_ny = 2.0 * (1.0 + n_y), 2.0 * n_y
    bound2 = bound * bound
    nan = complex(np.nan, np.nan)

    def site_max(phi, K):
        ok = np.all(_abs2(phi) <= bound2, axis=1)  # both fields
        v = np.where(ok, np.max(_abs2(K), axis=1), np.nan)
        return np.max(v.reshape(B, -1), axis=1)  # NaN propagates: NaN iff some site ran away

    def field(x):  # (B,) -> (B, 1, ..., 1)
        return x.reshape((B,) + (1,) * (d + 1))

    with np.errstate(all="ignore"):
        for k in range(nsteps):
            K = g.drift(phi)
            mx = site_max(phi, K)
            frozen |= np.isnan(mx)
            live = ~frozen
            km = np.where(live, np.sqrt(mx), np.nan)
            eps = np.where(live, _step(dt, kbar, km), 0.0)
            t = np.where(live, t + eps, t)
            if k % every == 0:
                r = k // every
                kmaxr[:, r], weights[:, r] = km, eps
                dens[:, r] = np.where(live, g.density(phi), nan)
                phi2[:, r] = np.where(live, g.phi2(phi), nan)
            noi = noise(step_offset + k, B, (4 if cn else 2) * V)
            eta = field(np.sqrt(eps * two_nx)) * noi[:, : 2 * V].reshape(lat)
            if cn:
                eta = eta + 1j * (field(np.sqrt(eps * two_ny)) * noi[:, 2 * V :].reshape(lat))
            e = field(eps)
            pn = phi + e * K + eta
            if scheme == "heun":
                pn = phi + 0.5 * e * (K + g.drift(pn)) + eta
            phi = np.where(field(live), pn, phi)
        frozen |= np.isnan(site_max(phi, g.drift(phi)))
    return dens, phi2, kmaxr, weights, phi.reshape(shape_in), t, frozen.astype(np.uint8)


# --------------------------------------------------------------------------------------- torch --

def bose_drift_torch(phi, g: BoseGas):
    """models.py's BoseGas.drift (B3) in torch: phi (B, 2, N, ..., N) complex128 tensor."""
    import torch

    d = g.d
    p1, p2 = phi[:, 0], phi[:, 1]
    rho2 = p1 * p1 + p2 * p2
    c = (2 * d + g.m**2) + g.lam * rho2
    k1, k2 = -c * p1, -c * p2
    for nu in range(1, d):
        ax = nu + 1  # p1 has shape (B, N, ..., N): lattice axis nu is tensor axis nu + 1
        k1 = k1 + torch.roll(p1, -1, ax) + torch.roll(p1, 1, ax)
        k2 = k2 + torch.roll(p2, -1, ax) + torch.roll(p2, 1, ax)
    ch, sh = math.cosh(g.mu), math.sinh(g.mu)
    f1, b1 = torch.roll(p1, -1, 1), torch.roll(p1, 1, 1)
    f2, b2 = torch.roll(p2, -1, 1), torch.roll(p2, 1, 1)
    k1 = k1 + ch * (f1 + b1) - 1j * sh * (f2 - b2)
    k2 = k2 + ch * (f2 + b2) + 1j * sh * (f1 - b1)
    return torch.stack([k1, k2], dim=1)


def bose_langevin_torch(phi, *, N, d, m, lam, mu, dt, nsteps, every=1, scheme="heun", seed=0,
                        field_offset=0, step_offset=0, n_y=0.0, kbar=None, bound=1e8, noise="native"):
    """The Bose-gas reference in torch (any device of phi): fixed or adaptive step, real or complex
    noise, records of density, ⟨φ*φ⟩, K_max and weights; runaways frozen.  ``noise="native"`` draws
    with ``torch.randn`` (seeded by ``seed``), ``"philox"`` takes the kernels' numbers (on the CPU).
    Returns ``(density, phi2, kmax, weights, phi, t, runaway)``."""
    import torch

    g = BoseGas(N, d, m, lam, mu)
    _check(scheme, dt, nsteps, every, n_y)
    B, V = phi.shape[0], g.volume
    dev = phi.device
    lat = (B,) + g.shape
    phi = phi.reshape(lat).to(torch.complex128).clone()
    if noise == "native":
        gen = torch.Generator(device=dev).manual_seed(int(seed))

        def draw(step, B_, n):
            return torch.randn((B_, n), generator=gen, dtype=torch.float64, device=dev)
    elif noise == "philox":
        nf = philox_noise(seed, field_offset)

        def draw(step, B_, n):
            return torch.from_numpy(nf(step, B_, n)).to(dev)
    else:
        draw = noise
    t = torch.zeros(B, dtype=torch.float64, device=dev)
    frozen = torch.zeros(B, dtype=torch.bool, device=dev)
    kb = None if kbar is None else torch.as_tensor(kbar, dtype=torch.float64, device=dev).expand(B)
    nrec = -(-nsteps // every)
    dens = torch.empty((B, nrec), dtype=torch.complex128, device=dev)
    phi2 = torch.empty_like(dens)
    kmaxr = torch.empty((B, nrec), dtype=torch.float64, device=dev)
    weights = torch.empty_like(kmaxr)
    cn = n_y > 0
    two_nx, two_ny = 2.0 * (1.0 + n_y), 2.0 * n_y
    bound2 = bound * bound
    ch, sh = math.cosh(mu), math.sinh(mu)
    nan = torch.tensor(complex(math.nan, math.nan), dtype=torch.complex128, device=dev)
    view = (B,) + (1,) * (d + 1)

    def abs2(x):
        return x.real * x.real + x.imag * x.imag

    def site_max(phi, K):
        ok = torch.all(abs2(phi) <= bound2, dim=1)
        v = torch.where(ok, torch.amax(abs2(K), dim=1), torch.nan)
        return torch.amax(v.reshape(B, -1), dim=1)  # propagates NaN

    for k in range(nsteps):
        K = bose_drift_torch(phi, g)
        mx = site_max(phi, K)
        frozen |= torch.isnan(mx)
        live = ~frozen
        km = torch.where(live, torch.sqrt(mx), torch.nan)
        if kb is None:
            eps = torch.full((B,), dt, dtype=torch.float64, device=dev)
        else:
            eps = torch.where(km > kb, dt * kb / km, torch.full_like(km, dt))
        eps = torch.where(live, eps, 0.0)
        t = torch.where(live, t + eps, t)
        if k % every == 0:
            r = k // every
            kmaxr[:, r], weights[:, r] = km, eps
            p1, p2 = phi[:, 0], phi[:, 1]
            q1, q2 = torch.roll(p1, -1, 1), torch.roll(p2, -1, 1)
            n = sh * (p1 * q1 + p2 * q2) - 1j * ch * (p1 * q2 - p2 * q1)
            dens[:, r] = torch.where(live, n.reshape(B, -1).sum(1) / V, nan)
            phi2[:, r] = torch.where(live, (0.5 * (p1 * p1 + p2 * p2)).reshape(B, -1).sum(1) / V, nan)
        noi = draw(step_offset + k, B, (4 if cn else 2) * V)
        eta = torch.sqrt(eps * two_nx).reshape(view) * noi[:, : 2 * V].reshape(lat)
        if cn:
            eta = eta + 1j * (torch.sqrt(eps * two_ny).reshape(view) * noi[:, 2 * V :].reshape(lat))
        e = eps.reshape(view)
        pn = phi + e * K + eta
        if scheme == "heun":
            pn = phi + 0.5 * e * (K + bose_drift_torch(pn, g)) + eta
        phi = torch.where(live.reshape(view), pn, phi)
    frozen |= torch.isnan(site_max(phi, bose_drift_torch(phi, g)))
    return dens, phi2, kmaxr, weights, phi, t, frozen.to(torch.uint8)
