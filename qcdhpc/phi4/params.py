"""Validated parameters of a φ⁴ HMC ensemble run.

Everything is checked when the object is built, so that a bad value is refused with its reason before
any kernel runs or any file is touched.  Pure Python: importing this module is cheap (the CLI uses it
for `--help` and argument checks without loading numpy, torch or h5py).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

INTEGRATORS = ("leapfrog", "omelyan")
DTYPES = ("float32", "float64")
DEVICES = ("cpu", "cuda")
STARTS = ("hot", "cold")


from ..checks import integer as _int
from ..checks import real as _float


@dataclass(frozen=True)
class HMCParams:
    """Physics and run parameters of one ensemble (the same on every MPI rank).

    L        lattice extent: an int (L×L) or a pair (L0, L1), each >= 2
    kappa    hopping parameter, lam quartic coupling (>= 0); action S = Σ_x[-2κΣ_μ φφ_μ + (1-2λ)φ² + λφ⁴]
    nchains  total number of independent chains (over all ranks)
    ntraj    post-thermalisation trajectories per chain; therm thermalisation trajectories (not saved)
    every    save one configuration per `every` trajectories per chain
    nmd, tau molecular-dynamics steps and trajectory length; integrator leapfrog | omelyan
    seed     Philox key word 0 (chain index is word 1), 0 <= seed < 2**64
    start    "hot": φ = 0.1·N(0,1); "cold": φ = ±v, the constant field minimising S (0 in the
             symmetric phase), + on even and − on odd chains.  Deep in the broken phase a hot start
             quenches into domains whose walls wrap the torus and never heal under local updates;
             a cold start begins (and stays) in one of the two vacua.
    """

    L: tuple
    kappa: float
    lam: float
    nchains: int = 1
    ntraj: int = 100
    therm: int = 100
    every: int = 1
    nmd: int = 10
    tau: float = 1.0
    integrator: str = "omelyan"
    seed: int = 0
    dtype: str = "float64"
    device: str = "cpu"
    start: str = "hot"

    def __post_init__(self):
        L = self.L
        if isinstance(L, numbers.Integral) and not isinstance(L, bool):
            L = (L, L)
        try:
            L = tuple(L)
        except TypeError:
            raise ValueError(f"L must be an integer or a pair of integers, got {self.L!r}") from None
        if len(L) != 2:
            raise ValueError(f"L must have 2 extents (L0, L1) for a 2D lattice, got {self.L!r}")
        L = tuple(_int(f"L{mu}", l, 2) for mu, l in enumerate(L))
        set_ = lambda k, v: object.__setattr__(self, k, v)  # frozen dataclass: normalise in place
        set_("L", L)
        set_("kappa", _float("kappa", self.kappa))
        set_("lam", _float("lam", self.lam))
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0 (the action is unbounded below otherwise), got {self.lam}")
        # λ = 0 leaves the Gaussian action Σ_x [(1 ∓ 4κ) φ̃²] at k = 0 (π, π): bounded below only for
        # |κ| < 1/4 in 2D; HMC of an unbounded action runs away (|φ| grows without limit).
        if self.lam == 0 and abs(self.kappa) >= 0.25:
            raise ValueError(f"lam = 0 with |kappa| >= 1/4 (got kappa = {self.kappa}) is an unbounded "
                             "action in 2D (the free field needs |kappa| < 1/4); use lam > 0")
        set_("tau", _float("tau", self.tau))
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")
        for name, minimum in (("nchains", 1), ("ntraj", 1), ("therm", 0), ("every", 1), ("nmd", 1)):
            set_(name, _int(name, getattr(self, name), minimum))
        seed = _int("seed", self.seed, 0)
        if seed >= 2**64:
            raise ValueError(f"seed must be < 2**64 (one Philox key word), got {seed}")
        set_("seed", seed)
        for name, allowed in (("integrator", INTEGRATORS), ("dtype", DTYPES), ("device", DEVICES),
                              ("start", STARTS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        if self.ntraj < self.every:
            raise ValueError(f"ntraj ({self.ntraj}) < every ({self.every}): no configuration would be saved")

    # -- derived quantities used by the driver and the file format -------------------------------------
    @property
    def volume(self) -> int:
        return self.L[0] * self.L[1]

    @property
    def vacuum(self) -> float:
        """v >= 0 minimising the action density of a constant field, (1 − 2λ − 4κ)v² + λv⁴:
        v² = (4κ + 2λ − 1)/(2λ) when positive, else 0 (symmetric phase at tree level)."""
        if self.lam == 0.0:
            return 0.0
        return math.sqrt(max(0.0, (4 * self.kappa + 2 * self.lam - 1) / (2 * self.lam)))

    @property
    def ntraj_total(self) -> int:
        """Trajectories per chain including thermalisation."""
        return self.therm + self.ntraj

    @property
    def nsave(self) -> int:
        """Configurations saved per chain."""
        return self.ntraj // self.every

    def is_saved(self, traj: int) -> bool:
        """Whether the configuration produced by trajectory `traj` (0-based) is kept."""
        done = traj + 1 - self.therm
        return done > 0 and done % self.every == 0

    def save_index(self, traj: int) -> int:
        """Position (0..nsave-1) of a saved trajectory among a chain's saved configurations."""
        return (traj + 1 - self.therm) // self.every - 1

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["L"] = list(self.L)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HMCParams":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})  # files before `start`: hot
