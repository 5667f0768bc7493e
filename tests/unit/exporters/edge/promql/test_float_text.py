"""Go's float text from repr's digits equals the decimal module's reading of them."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from modelmon.exporters.edge.rules.float_text import fixed, go_float


def _go_float_by_decimal(v: float) -> str:
    """The reference: fmt's %v laid out from ``Decimal(repr(v))``."""
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digits, exponent = Decimal(repr(v)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    exp = len(text) + exponent - 1
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        out = f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    else:
        out = format(Decimal(repr(abs(v))), "f").removesuffix(".0")
    return ("-" if sign else "") + out


@given(st.floats(allow_nan=False, allow_infinity=False))
@example(0.0)
@example(-0.0)
@example(5e-324)
@example(1e21)
@example(999999.0)
@example(1e-4)
@example(123456.0)
@example(1e22)
@example(0.1)
@example(-2.5e-7)
def test_the_digits_are_laid_out_as_decimal_does(v: float) -> None:
    assert fixed(v) == format(Decimal(repr(v)), "f").removesuffix(".0")
    assert go_float(v) == _go_float_by_decimal(v)


def test_go_layouts() -> None:
    assert [go_float(v) for v in (1e6, 1234567.0, 0.0001, 0.00001234, 100.0, math.inf)] == \
        ["1e+06", "1.234567e+06", "0.0001", "1.234e-05", "100", "+Inf"]
    assert [fixed(v) for v in (1e21, 1e-7, -0.0, 120.0, 0.05, -math.inf)] == \
        ["1000000000000000000000", "0.0000001", "-0", "120", "0.05", "-Inf"]
    assert fixed(math.nan) == go_float(math.nan) == "NaN"
