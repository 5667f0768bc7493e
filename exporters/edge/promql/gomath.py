"""Go's float64 arithmetic where Python's differs: Python raises on division by
zero, overflow and domain errors; Go (and so Prometheus) returns Inf or NaN."""

from __future__ import annotations

import math

INF = math.inf
NAN = math.nan
# Go's 1/Ln2 and 1/Ln10: exact constants rounded once to float64.
_INV_LN2 = float("1.442695040888963407359924681001892137")
_INV_LN10 = float("0.434294481903251827651128918916605082")


def div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return INF if (a > 0) == (math.copysign(1.0, b) > 0) else -INF


def mod(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)
    except ValueError:
        return NAN


def _is_odd_int(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and abs(y) < 2**63 and int(y) % 2 == 1


def pow_(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except OverflowError:
        return -INF if x < 0 and _is_odd_int(y) else INF
    except ValueError:
        if x == 0:  # y < 0
            if _is_odd_int(y):
                return math.copysign(INF, x)
            return INF
        return NAN


def exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def log(x: float) -> float:
    if x == 0:
        return -INF
    if x < 0:
        return NAN
    return math.log(x)


def log2(x: float) -> float:
    """Go's ``math.Log2``: exact for powers of two, else ``Log(frac)/Ln2 + exp``."""
    if x == 0:
        return -INF
    if x < 0 or x != x:
        return NAN
    if math.isinf(x):
        return INF
    frac, exponent = math.frexp(x)
    if frac == 0.5:
        return float(exponent - 1)
    return math.log(frac) * _INV_LN2 + float(exponent)


def log10(x: float) -> float:
    """Go's ``math.Log10``: ``Log(x) * (1/Ln10)``."""
    return log(x) * _INV_LN10


def sqrt(x: float) -> float:
    return NAN if x < 0 else math.sqrt(x)


def floor(x: float) -> float:
    return x if not math.isfinite(x) else float(math.floor(x))


def ceil(x: float) -> float:
    return x if not math.isfinite(x) else float(math.ceil(x))


def go_max(a: float, b: float) -> float:
    """``math.Max``: NaN wins, +Inf wins, and +0 beats -0."""
    if math.isinf(a) and a > 0 or math.isinf(b) and b > 0:
        return INF
    if a != a or b != b:
        return NAN
    if a == 0 and a == b:
        return b if math.copysign(1.0, a) < 0 else a
    return a if a > b else b


def go_min(a: float, b: float) -> float:
    """``math.Min``: NaN wins, -Inf wins, and -0 beats +0."""
    if math.isinf(a) and a < 0 or math.isinf(b) and b < 0:
        return -INF
    if a != a or b != b:
        return NAN
    if a == 0 and a == b:
        return a if math.copysign(1.0, a) < 0 else b
    return a if a < b else b
