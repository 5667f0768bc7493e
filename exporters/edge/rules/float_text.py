"""Floats as Go prints them, from Python's shortest round-trip digits.

Python's ``repr(float)`` and Go's ``strconv`` with precision -1 both pick the
shortest digits that read back to the same float; they differ only in layout.
These functions re-lay ``repr``'s digits as text, with no ``decimal`` import
(its C library is a quarter MB of the agent's RSS for two format calls).
"""

from __future__ import annotations

import math


def shortest_digits(v: float) -> tuple[bool, str, int]:
    """(negative, digits, exponent) with ``|v| == int(digits) * 10**exponent``, the
    digits those of ``repr(v)`` without leading or trailing zeros (``"0"`` for zero);
    what ``Decimal(repr(v)).normalize().as_tuple()`` gives, for a finite ``v``."""
    text = repr(v)
    negative = text.startswith("-")
    mantissa, _, exp = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exponent = (int(exp) if exp else 0) - len(fraction)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return negative, stripped or "0", exponent if stripped else 0


def go_float(v: float) -> str:
    """``fmt.Sprint(float64)`` (``%v``, strconv's shortest ``g``): exponent form below
    1e-4 and from 1e6, e.g. ``1.234567e+06``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    negative, text, exponent = shortest_digits(v)
    exp = len(text) + exponent - 1
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        out = f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    elif exp < 0:
        out = "0." + "0" * (-exp - 1) + text
    elif len(text) <= exp + 1:
        out = text + "0" * (exp + 1 - len(text))
    else:
        out = text[: exp + 1] + "." + text[exp + 1:]
    return ("-" if negative else "") + out


def fixed(v: float) -> str:
    """``strconv.FormatFloat(v, 'f', -1, 64)``: the shortest digits, never an exponent."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    negative, text, exponent = shortest_digits(v)
    if exponent >= 0:
        out = text + "0" * exponent
    elif len(text) + exponent > 0:
        point = len(text) + exponent
        out = text[:point] + "." + text[point:]
    else:
        out = "0." + "0" * -(len(text) + exponent) + text
    return ("-" if negative else "") + out


def exponent(v: float) -> str:
    """``strconv.FormatFloat(v, 'e', -1, 64)``: the shortest digits in exponent form,
    e.g. ``6.15e+01``, ``1e+00`` (how Prometheus's alerts API prints an alert's value)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    negative, text, exp = shortest_digits(v)
    if v == 0:
        negative = math.copysign(1.0, v) < 0
    power = len(text) + exp - 1 if text != "0" else 0
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return (f"{'-' if negative else ''}{mantissa}e{'-' if power < 0 else '+'}"
            f"{abs(power):02d}")
