"""Validated parameters of complex-Langevin runs: the quartic one-site model and the Bose gas (pure
Python, light).

Everything is checked when the object is built, so that a bad value is refused with its reason before
any kernel runs or any file is touched (the CLI: exit 2).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from ..checks import integer as _int
from .models import BoseGas, Quartic

SCHEMES = ("euler", "heun")


def parse_complex(text: str) -> complex:
    """'1+1j', '1+i', '1', '-0.5-2j' -> complex; ValueError otherwise."""
    s = str(text).strip().replace(" ", "").replace("i", "j")
    if s.endswith("j") and s[:-1] in ("", "+", "-"):
        s = s[:-1] + "1j"
    s = s.replace("+j", "+1j").replace("-j", "-1j")
    try:
        return complex(s)
    except ValueError:
        raise ValueError(f"not a complex number: {text!r} (write e.g. 1+1j)") from None



@dataclass(frozen=True, kw_only=True)
class LangevinParams:
    """What every complex-Langevin run shares.  walkers: independent walkers (quartic) or lattice
    configurations (Bose gas), over all ranks; therm: Langevin steps before recording (not kept; with
    `adaptive` they measure ⟨K_max⟩ per walker); steps: recorded steps per walker; every: one record per
    `every` steps; dt: the step ε (the bare step ε̄ when adaptive); scheme: euler | heun; n_y: complex-
    noise weight N_y (0: real noise, N_x − N_y = 1); seed: Philox key word 0."""

    walkers: int = 1000
    therm: int = 1000
    steps: int = 10000
    every: int = 10
    dt: float = 0.01
    scheme: str = "heun"
    n_y: float = 0.0
    adaptive: bool = False
    seed: int = 0

    def _check_langevin(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        for name, minimum in (("walkers", 1), ("therm", 0), ("steps", 1), ("every", 1)):
            set_(name, _int(name, getattr(self, name), minimum))
        if self.steps % self.every:
            raise ValueError(f"steps ({self.steps}) must be a multiple of every ({self.every})")
        for name in ("dt", "n_y"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite real number, got {v!r}")
            set_(name, float(v))
        if self.dt <= 0:
            raise ValueError(f"dt must be > 0, got {self.dt}")
        if self.n_y < 0:
            raise ValueError(f"n_y must be >= 0, got {self.n_y}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {self.scheme!r}; choose one of {', '.join(SCHEMES)}")
        if self.adaptive and self.therm < self.every:
            raise ValueError("the adaptive step needs thermalisation records to measure <K_max>: "
                             f"therm ({self.therm}) must be >= every ({self.every})")
        seed = _int("seed", self.seed, 0)
        if seed >= 2**64:
            raise ValueError(f"seed must be < 2**64 (one Philox key word), got {seed}")
        set_("adaptive", bool(self.adaptive))

    @property
    def nrec(self) -> int:
        """Records per walker (production only)."""
        return self.steps // self.every

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class QuarticCLParams(LangevinParams):
    """The quartic one-site model S = σ₀z²/2 + λz⁴/4 (qcdhpc.cl.models.Quartic) and the Langevin
    settings of LangevinParams."""

    sigma: complex
    lam: float

    def __post_init__(self):
        model = Quartic(self.sigma, self.lam)  # refuses λ < 0, λ = 0 with Re σ₀ <= 0, non-finite
        object.__setattr__(self, "sigma", complex(model.sigma))
        object.__setattr__(self, "lam", float(model.lam))
        self._check_langevin()

    @property
    def model(self) -> Quartic:
        return Quartic(self.sigma, self.lam)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["sigma"] = [self.sigma.real, self.sigma.imag]
        return d


@dataclass(frozen=True, kw_only=True)
class BoseCLParams(LangevinParams):
    """The relativistic Bose gas at chemical potential μ on an N^d lattice (qcdhpc.cl.models.BoseGas,
    Aarts PRL 102 (2009) 131601) and the Langevin settings of LangevinParams; `walkers` counts the
    independent lattice configurations (each starts at φ = 0)."""

    N: int = 4
    d: int = 4
    m: float = 1.0
    lam: float = 1.0
    mu: float = 0.0

    def __post_init__(self):
        model = BoseGas(self.N, self.d, self.m, self.lam, self.mu)  # refuses what has no integral
        for k in ("N", "d", "m", "lam", "mu"):
            object.__setattr__(self, k, getattr(model, k))
        self._check_langevin()

    @property
    def model(self) -> BoseGas:
        return BoseGas(self.N, self.d, self.m, self.lam, self.mu)
