"""Validated parameters of a complex-Langevin run of the quartic one-site model (pure Python, light).

Everything is checked when the object is built, so that a bad value is refused with its reason before
any kernel runs or any file is touched (the CLI: exit 2).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from .models import Quartic

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


from ..checks import integer as _int


@dataclass(frozen=True)
class QuarticCLParams:
    """sigma, lam: the model S = σ₀z²/2 + λz⁴/4 (qcdhpc.cl.models.Quartic);
    walkers: independent walkers (over all ranks); therm: Langevin steps before recording (not kept;
    with `adaptive` they measure ⟨K_max⟩ per walker); steps: recorded steps per walker; every: one
    record per `every` steps; dt: the step ε (the bare step ε̄ when adaptive); scheme: euler | heun;
    n_y: complex-noise weight N_y (0: real noise, N_x − N_y = 1); seed: Philox key word 0."""

    sigma: complex
    lam: float
    walkers: int = 1000
    therm: int = 1000
    steps: int = 10000
    every: int = 10
    dt: float = 0.01
    scheme: str = "heun"
    n_y: float = 0.0
    adaptive: bool = False
    seed: int = 0

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        model = Quartic(self.sigma, self.lam)  # refuses λ < 0, λ = 0 with Re σ₀ <= 0, non-finite
        set_("sigma", complex(model.sigma))
        set_("lam", float(model.lam))
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
    def model(self) -> Quartic:
        return Quartic(self.sigma, self.lam)

    @property
    def nrec(self) -> int:
        """Records per walker (production only)."""
        return self.steps // self.every

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["sigma"] = [self.sigma.real, self.sigma.imag]
        return d
