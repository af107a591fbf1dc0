"""The complex Langevin (CL) family's kernels (csrc/include/qcdhpc/cl/, bound as
``_qcdhpc_<backend>.cl``): checks, output allocation, backend and GPU by the arrays' device.

Models and conventions: ``qcdhpc/cl/models.py`` (its numpy ``drift`` is the reference the kernels are
tested against).  float64 / complex128 only.

* Quartic walkers: ``z`` (W,) complex128, S = σ₀z²/2 + λz⁴/4, K(z) = −σ₀z − λz³.
* Bose gas: ``phi`` (B, 2, N^d) complex128 (or (B, 2, N, ..., N), used in place through a flat
  view): configuration b, field a (φ₁, φ₂), lattice row-major with the first axis = Euclidean time.

Update (per walker / configuration, step ε, η ~ N(0, 1), N_x = 1 + N_y, N_y = ``n_y``):

    euler   z' = z + ε K(z) + √(2εN_x) η_x + i √(2εN_y) η_y
    heun    z̃ = z + ε K(z) + noise,   z' = z + (ε/2)(K(z) + K(z̃)) + noise   (the same noise)

``n_y = 0`` (default) is real noise (Im z gets none).  Adaptive step (Aarts, James, Seiler,
Stamatescu, PLB 687 (2010) 154) when ``kbar`` is given: ε = min(dt, dt·K̄/K_max) with K_max = |K(z)|
per walker, max over (a, x) of |K_a(x)| per configuration (``quartic_kmax`` / ``bose_kmax`` measure
it, e.g. to set K̄ = ⟨K_max⟩ during thermalisation).

Records: the state (quartic) or the observables density n (B4) and ⟨φ*φ⟩ (B5) plus K_max (Bose)
BEFORE the update of local steps 0, every, 2·every, ... (nrec = ceil(nsteps / every)), each with the
ε of that update as its weight; ``t`` (float64, in/out) accumulates Langevin time.

Runaways: a walker / configuration whose state is not finite or has |z| > ``bound`` (any site, any
field) is flagged in ``runaway`` (uint8, in/out) and frozen: not updated, t not advanced, its records
NaN with weight 0 from the record of that state on.  The state is kept as it became.  The call
returns normally; ``result.n_runaway`` counts the flagged ones.

Random numbers (docs/conventions.md): walker / configuration i of a call is global index
``offset + i``, key (seed, offset + i); local step k is global step ``step_offset + k``.

* Bose gas: counters (blk, step, RNG_LANGEVIN = 2, 0); the noise vector of a step (what
  ``langevin_noise`` returns) has n = 2V (η_x of (a, x) at a·V + x) or 4V (η_y at 2V + a·V + x)
  entries, entry j the normal j mod 4 of block j div 4.
* Quartic walkers (since numerics version 2): each walker's normals are one stream g_0, g_1, ...; step s uses
  g_{n s}, ..., g_{n s + n - 1} with n = 1 (η_x) or 2 (η_x, η_y), and g_j is normal j mod 4 of the block
  with counter (0, j div 4, RNG_LANGEVIN_WALKER = 3, 0): one Philox block per four normals
  (``quartic_noise`` returns them).

So a run split into calls (step_offset) or batches (offset) gives the same numbers bit for bit, on
CPU and GPU.  ``NUMERICS_VERSION`` is this family's numerics version (csrc/include/qcdhpc/cl/version.h).
"""
from __future__ import annotations

import operator

import numpy as np

from . import (NUMERICS_VERSIONS, check_array, check_same_device, dtype_name, empty_like_device,
               finite, is_torch, on_device, uint64)

__all__ = ["NUMERICS_VERSION", "SCHEMES", "RNG_LANGEVIN", "DEFAULT_BOUND", "RNG_LANGEVIN_WALKER", "QuarticRecords", "BoseRecords",
           "quartic_langevin", "quartic_kmax", "bose_langevin", "bose_kmax", "bose_drift", "bose_observables",
           "langevin_noise", "quartic_noise", "quartic_noise_len", "bose_noise_len"]

NUMERICS_VERSION: int = NUMERICS_VERSIONS["cl"]
SCHEMES = ("euler", "heun")
RNG_LANGEVIN = 2  # counter word 2 (csrc/include/qcdhpc/mc/streams.h, kRngLangevin): Bose gas
RNG_LANGEVIN_WALKER = 3  # counter word 2 of the quartic walkers' noise streams (kRngLangevinWalker)
DEFAULT_BOUND = 1e8


class QuarticRecords(tuple):
    """``(records, weights)`` of ``quartic_langevin``; also ``.t``, ``.runaway``, ``.n_runaway``, ``.z``."""

    def __new__(cls, records, weights, *, z, t, runaway):
        self = super().__new__(cls, (records, weights))
        self.records, self.weights, self.z, self.t, self.runaway = records, weights, z, t, runaway
        self.n_runaway = _count(runaway)
        return self


class BoseRecords(tuple):
    """``(density, phi2, kmax, weights)`` of ``bose_langevin``, each (B, nrec); also ``.phi`` (the
    final fields: the caller's array, updated in place), ``.t``, ``.runaway``, ``.n_runaway``."""

    def __new__(cls, density, phi2, kmax, weights, *, phi, t, runaway):
        self = super().__new__(cls, (density, phi2, kmax, weights))
        self.density, self.phi2, self.kmax, self.weights = density, phi2, kmax, weights
        self.phi, self.t, self.runaway = phi, t, runaway
        self.n_runaway = _count(runaway)
        return self


# ------------------------------------------------------------------ helpers --

def _count(runaway) -> int:
    return int(runaway.sum().item()) if is_torch(runaway) else int(np.count_nonzero(runaway))


def _int(value, name: str, lo: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {v}")
    return v


def _scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    return scheme


def _step_args(dt, nsteps, every, n_y, bound):
    dt = finite(dt, "dt")
    if dt <= 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    nsteps, every = _int(nsteps, "nsteps", 1), _int(every, "every", 1)
    n_y = finite(n_y, "n_y")
    if n_y < 0:
        raise ValueError(f"n_y must be >= 0, got {n_y}")
    bound = finite(bound, "bound")
    if bound <= 0:
        raise ValueError(f"bound must be > 0, got {bound}")
    return dt, nsteps, every, n_y, bound


def _filled(ref, shape, dtype: str, value):
    out = empty_like_device(ref, shape, dtype)
    if is_torch(out):
        out.fill_(value)
    else:
        out[...] = value
    return out


def _per_item(x, ref, name: str, n: int, dtypes, ref_name: str, default, dtype: str):
    """A (n,) in/out array of ``ref``'s device: allocated with ``default`` when None, else checked."""
    if x is None:
        return _filled(ref, (n,), dtype, default)
    check_same_device(x, ref, name, ref_name)
    check_array(x, name, dims=("batch",), dtypes=dtypes)
    if tuple(x.shape) != (n,):
        raise ValueError(f"{name}: expected shape {(n,)}, got {tuple(x.shape)}")
    return x


def _kbar(kbar, ref, n: int, ref_name: str):
    """None (fixed step), or a (n,) float64 array of finite values > 0 (a number is broadcast)."""
    if kbar is None:
        return None
    if not hasattr(kbar, "__dlpack_device__"):
        v = finite(kbar, "kbar")
        if v <= 0:
            raise ValueError(f"kbar must be > 0, got {v}")
        return _filled(ref, (n,), "float64", v)
    kbar = _per_item(kbar, ref, "kbar", n, ("float64",), ref_name, None, "float64")
    if is_torch(kbar):
        import torch

        ok = bool(torch.all(torch.isfinite(kbar) & (kbar > 0)).item())
    else:
        ok = bool(np.all(np.isfinite(kbar) & (kbar > 0)))
    if not ok:
        raise ValueError("kbar: every entry must be finite and > 0")
    return kbar


def _records(ref, shape, dtype):
    return empty_like_device(ref, shape, dtype)


def quartic_noise_len(n_y: float = 0.0) -> int:
    """Entries of a quartic walker's noise vector per step: 1 (real noise) or 2 (n_y > 0)."""
    return 2 if float(n_y) > 0 else 1


def bose_noise_len(V: int, n_y: float = 0.0) -> int:
    """Entries of a Bose-gas configuration's noise vector per step: 2V or 4V (n_y > 0)."""
    return (4 if float(n_y) > 0 else 2) * int(V)


# ------------------------------------------------------------------ quartic --

_Z = dict(dims=("walkers",), dtypes=("complex128",), min_extent=(1,))


def _quartic_model(sigma, lam):
    from ..cl.models import Quartic

    return Quartic(sigma, lam)  # ValueError with the reason (λ < 0, λ = 0 with Re σ₀ ≤ 0, non-finite)


def quartic_langevin(z, *, sigma, lam, dt, nsteps, every=1, scheme="heun", seed, walker_offset=0,
                     step_offset=0, n_y=0.0, kbar=None, t=None, runaway=None, bound=DEFAULT_BOUND,
                     records=None, weights=None) -> QuarticRecords:
    """``nsteps`` complex Langevin steps of the quartic walkers ``z`` ((W,) complex128), in place.

    Returns ``(records, weights)``, (W, ceil(nsteps/every)) complex128 / float64 (a tuple with
    ``.t``, ``.runaway``, ``.n_runaway``); ``t`` (float64) and ``runaway`` (uint8 or bool), (W,),
    are updated in place (allocated as zeros when None).  See the module docstring."""
    be = check_array(z, "z", **_Z).cl
    q = _quartic_model(sigma, lam)
    dt, nsteps, every, n_y, bound = _step_args(dt, nsteps, every, n_y, bound)
    scheme = _scheme(scheme)
    W, nrec = int(z.shape[0]), -(-nsteps // every)
    t = _per_item(t, z, "t", W, ("float64",), "z", 0.0, "float64")
    runaway = _per_item(runaway, z, "runaway", W, ("uint8", "bool"), "z", 0, "uint8")
    kbar = _kbar(kbar, z, W, "z")
    if records is None:
        records = _records(z, (W, nrec), "complex128")
    if weights is None:
        weights = _records(z, (W, nrec), "float64")
    for arr, name, dt_ in ((records, "records", "complex128"), (weights, "weights", "float64")):
        check_same_device(arr, z, name, "z")
        check_array(arr, name, dims=("walkers", "nrec"), dtypes=(dt_,))
        if tuple(arr.shape) != (W, nrec):
            raise ValueError(f"{name}: expected shape {(W, nrec)}, got {tuple(arr.shape)}")
    with on_device(z):
        be.quartic_langevin(z, complex(q.sigma), float(q.lam), dt, nsteps, every, scheme, uint64(seed, "seed"),
                            uint64(walker_offset, "walker_offset"), uint64(step_offset, "step_offset"), n_y,
                            kbar, t, runaway, records, weights, bound)
    return QuarticRecords(records, weights, z=z, t=t, runaway=runaway)


def quartic_kmax(z, sigma, lam, *, out=None):
    """|K(z)| = |σ₀z + λz³| per walker, (W,) float64."""
    be = check_array(z, "z", writable=False, **_Z).cl
    q = _quartic_model(sigma, lam)
    W = int(z.shape[0])
    out = _per_item(out, z, "out", W, ("float64",), "z", 0.0, "float64")
    with on_device(z):
        be.quartic_kmax(z, complex(q.sigma), float(q.lam), out)
    return out


# ----------------------------------------------------------------- Bose gas --

def _bose_model(N, d, m, lam, mu):
    from ..cl.models import BoseGas

    return BoseGas(N, d, m, lam, mu)  # validated: N >= 2, d in 1..4, m, lam >= 0, convergence at lam = 0


def _flat_phi(phi, model, name="phi", writable=True):
    """(B, 2, V) view of phi given as (B, 2, V) or (B, 2, N, ..., N); returns (backend, view)."""
    d, N, V = model.d, model.N, model.volume
    shape = tuple(phi.shape) if hasattr(phi, "shape") else None
    lattice = shape is not None and len(shape) == 2 + d and d > 1 and shape[2:] == (N,) * d
    dims = ("batch", "field") + (tuple(f"x{i}" for i in range(d)) if lattice else ("sites",))
    be = check_array(phi, name, dims=dims, dtypes=("complex128",), min_extent=(1,) + (2,) * (len(dims) - 1),
                     writable=writable)
    if tuple(phi.shape[1:]) != (2,) + ((N,) * d if lattice else (V,)):
        raise ValueError(f"{name}: expected shape (batch, 2, N^d) = (batch, 2, {V}) or (batch, 2{', N' * d}) "
                         f"with N = {N}, d = {d}, got {tuple(phi.shape)}")
    flat = phi.view(phi.shape[0], 2, V) if is_torch(phi) else phi.reshape(phi.shape[0], 2, V)
    if not is_torch(phi) and not np.shares_memory(flat, phi):  # pragma: no cover - contiguous: always a view
        raise ValueError(f"{name}: could not be viewed as (batch, 2, N^d)")
    return be.cl, flat


def bose_langevin(phi, *, N, d, m, lam, mu, dt, nsteps, every=1, scheme="heun", seed, field_offset=0,
                  step_offset=0, n_y=0.0, kbar=None, t=None, runaway=None, bound=DEFAULT_BOUND) -> BoseRecords:
    """``nsteps`` complex Langevin steps of the Bose-gas configurations ``phi`` (complex128, (B, 2, N^d)
    or (B, 2, N, ..., N)), in place: the final fields are ``phi`` itself (also ``result.phi``).

    Returns ``(density, phi2, kmax, weights)``, each (B, ceil(nsteps/every)): density n (B4) and ⟨φ*φ⟩
    (B5) complex128, K_max and the step ε (the weight) float64, of the state before each recorded
    update; ``t`` and ``runaway`` (B,) in place.  See the module docstring."""
    model = _bose_model(N, d, m, lam, mu)
    be, flat = _flat_phi(phi, model)
    dt, nsteps, every, n_y, bound = _step_args(dt, nsteps, every, n_y, bound)
    scheme = _scheme(scheme)
    B, nrec = int(flat.shape[0]), -(-nsteps // every)
    t = _per_item(t, phi, "t", B, ("float64",), "phi", 0.0, "float64")
    runaway = _per_item(runaway, phi, "runaway", B, ("uint8", "bool"), "phi", 0, "uint8")
    kbar = _kbar(kbar, phi, B, "phi")
    dens = _records(phi, (B, nrec), "complex128")
    phi2 = _records(phi, (B, nrec), "complex128")
    kmax = _records(phi, (B, nrec), "float64")
    weights = _records(phi, (B, nrec), "float64")
    with on_device(phi):
        be.bose_langevin(flat, model.N, model.d, model.m, model.lam, model.mu, dt, nsteps, every, scheme,
                         uint64(seed, "seed"), uint64(field_offset, "field_offset"),
                         uint64(step_offset, "step_offset"), n_y, kbar, t, runaway, dens, phi2, kmax, weights,
                         bound)
    return BoseRecords(dens, phi2, kmax, weights, phi=phi, t=t, runaway=runaway)


def bose_kmax(phi, *, N, d, m, lam, mu, out=None):
    """K_max = max over (a, x) of |K_a(x)| per configuration, (B,) float64 (NaN if phi is not finite)."""
    model = _bose_model(N, d, m, lam, mu)
    be, flat = _flat_phi(phi, model, writable=False)
    out = _per_item(out, phi, "out", int(flat.shape[0]), ("float64",), "phi", 0.0, "float64")
    with on_device(phi):
        be.bose_kmax(flat, model.N, model.d, model.m, model.lam, model.mu, out)
    return out


def bose_drift(phi, *, N, d, m, lam, mu, out=None):
    """The drift K_a(x) = −∂S/∂φ_a(x) (models.py (B3)), shape of ``phi``, complex128."""
    model = _bose_model(N, d, m, lam, mu)
    be, flat = _flat_phi(phi, model, writable=False)
    if out is None:
        out = empty_like_device(phi, tuple(phi.shape), "complex128")
    check_same_device(out, phi, "out")
    if tuple(out.shape) != tuple(phi.shape) or dtype_name(out) != "complex128":
        raise ValueError(f"out: must match phi's shape {tuple(phi.shape)} and dtype complex128")
    _, oflat = _flat_phi(out, model, name="out")
    with on_device(phi):
        be.bose_drift(flat, model.N, model.d, model.m, model.lam, model.mu, oflat)
    return out


def bose_observables(phi, *, N, d, mu, m=1.0, lam=1.0):
    """(density n (B4), ⟨φ*φ⟩ (B5)) per configuration, (B,) complex128 each (m and lam do not enter; they
    are only validated with the model)."""
    model = _bose_model(N, d, m, lam, mu)
    be, flat = _flat_phi(phi, model, writable=False)
    B = int(flat.shape[0])
    dens, phi2 = empty_like_device(phi, (B,), "complex128"), empty_like_device(phi, (B,), "complex128")
    with on_device(phi):
        be.bose_observables(flat, model.N, model.d, model.mu, dens, phi2)
    return dens, phi2


# -------------------------------------------------------------------- noise --

def langevin_noise(out, seed, offset=0, step=0):
    """Fill ``out`` (B, n) float64 with the Langevin noise of global step ``step`` for Bose-gas
    configurations ``offset .. offset + B - 1`` (key (seed, offset + b), counters (blk, step,
    RNG_LANGEVIN, 0)): exactly the normals ``bose_langevin`` uses (layout in the module docstring;
    the quartic walkers' noise is ``quartic_noise``).  Returns ``out``."""
    be = check_array(out, "out", dims=("batch", "n"), dtypes=("float64",), min_extent=(1, 1)).cl
    with on_device(out):
        be.langevin_noise(out, uint64(seed, "seed"), uint64(offset, "offset"), uint64(step, "step"))
    return out


def quartic_noise(out, seed, offset=0, step=0):
    """Fill ``out`` (W, n) float64 with the noise of global step ``step`` for quartic walkers
    ``offset .. offset + W - 1``: ``out[w, i]`` = entry n·step + i of walker offset + w's stream of
    normals (key (seed, offset + w), counter (0, j div 4, RNG_LANGEVIN_WALKER, 0) for entry j), exactly
    the normals ``quartic_langevin`` uses with n = ``quartic_noise_len(n_y)``.  Returns ``out``."""
    be = check_array(out, "out", dims=("walkers", "n"), dtypes=("float64",), min_extent=(1, 1)).cl
    with on_device(out):
        be.quartic_noise(out, uint64(seed, "seed"), uint64(offset, "offset"), uint64(step, "step"))
    return out
