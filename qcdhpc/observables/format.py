"""Text of measured numbers, shared by `qcdhpc measure`'s tables and `qcdhpc report`.

    value_error(2.516, 0.0457)  -> "2.516(46)"   value with the error in its last two digits
    n_sigma(a, b)               -> |a − b| / √(σa² + σb²) of two {value, error} results, or None
    sigma_text(1.234)           -> "1.2"          (None -> "—")

The inputs are the {value, error, ...} dicts of the measure JSON (docs/data_formats.md §4), where a
missing or non-finite number is None.
"""
from __future__ import annotations

import math

MISSING = "—"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def value_error(value, error, digits: int = 2) -> str:
    """value(error) with `digits` significant digits of the error: 2.516(46), 0.00120(70), 1234(56).

    Errors of 10 or more round both numbers to the error's last shown digit (12345 ± 567 ->
    "12340(570)"); rounding that carries into a further digit (0.0996 -> 0.10) is shown as such
    ("1.00(10)").  Without a usable error (None, NaN, <= 0) the value alone, to 6 significant digits.
    """
    if value is None or not _finite(float(value)):
        return MISSING
    value = float(value)
    if error is None or not _finite(float(error)) or error <= 0:
        return f"{value:.6g}"
    error = float(error)
    places = digits - 1 - math.floor(math.log10(error))  # decimal places shown (negative: tens, ...)
    if round(error * 10.0 ** places) >= 10 ** digits:  # rounding carried into one more digit
        places -= 1
    if places > 0:
        return f"{value:.{places}f}({round(error * 10.0 ** places)})"
    # errors of 10**digits or more: both rounded to the error's last shown digit (+ 0.0: no "-0")
    return f"{round(value, places) + 0.0:.0f}({round(error, places):.0f})"


def result_text(q: dict | None) -> str:
    """value_error of one {value, error} result of the measure JSON ("—" when absent)."""
    if not q:
        return MISSING
    return value_error(q.get("value"), q.get("error"))


def n_sigma(a: dict | None, b: dict | None):
    """|a − b| / √(σa² + σb²) of two independent {value, error} results.

    None when it is not defined: a result or one of its numbers is missing or non-finite, or both
    errors are zero (exact numbers have no distance in standard deviations).
    """
    if not a or not b:
        return None
    va, vb, ea, eb = a.get("value"), b.get("value"), a.get("error"), b.get("error")
    if not all(x is not None and _finite(float(x)) for x in (va, vb, ea, eb)):
        return None
    s = math.hypot(ea, eb)
    return abs(va - vb) / s if s > 0 else None


def sigma_text(s, decimals: int = 1) -> str:
    """An n_sigma for a table cell: "1.2", or "—" when undefined."""
    return MISSING if s is None else f"{s:.{decimals}f}"
