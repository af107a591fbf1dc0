"""Parameter checks every family's validated parameters use (pure Python, light): a bad value is a
ValueError naming the parameter, which the CLI turns into its one-line refusal (exit 2)."""
from __future__ import annotations

import cmath
import math
import numbers


def integer(name: str, value, lo: int, hi: int | None = None) -> int:
    # bool is an Integral in Python; `--nmd True` is a bug, not 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name} must be {rng}, got {value}")
    return int(value)


def real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def complex_number(name: str, value) -> complex:
    if isinstance(value, bool) or not isinstance(value, numbers.Complex):
        raise ValueError(f"{name} must be a (complex) number, got {value!r}")
    value = complex(value)
    if not cmath.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value
