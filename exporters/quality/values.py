"""What one input value is: missing, a number, a category, or a type error.

These rules are shared by profile building and live checks, so a value is
binned the same way in training and in production. They never raise.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Final, Literal

import numpy as np


class _TypeError(enum.Enum):
    # An enum member, so that ``x is TYPE_ERROR`` narrows x for the type checker.
    TYPE_ERROR = "TYPE_ERROR"

    def __repr__(self) -> str:
        return "TYPE_ERROR"


TYPE_ERROR: Final = _TypeError.TYPE_ERROR

_MISSING_TYPE_NAMES = frozenset({"NAType", "NaTType"})  # pandas.NA, pandas.NaT


def is_missing(value: Any) -> bool:
    """None, NaN (float or numpy), pandas.NA and pandas.NaT."""
    if value is None:
        return True
    cls = type(value)
    if cls is float or isinstance(value, float | np.floating):
        nan: bool = value != value  # numpy's comparison is typed Any
        return nan
    return cls.__name__ in _MISSING_TYPE_NAMES


def numeric_value(value: Any) -> float | None | Literal[_TypeError.TYPE_ERROR]:
    """A float, None when missing, TYPE_ERROR when the value is not a number.

    Strings are type errors even when they look numeric: the model receives
    them as strings. Booleans count as 0/1, as numpy converts them.
    """
    cls = type(value)
    if cls is float:
        return None if value != value else value
    if cls is int:
        return float(value)
    if value is None:
        return None
    if isinstance(value, np.floating | float):
        return None if value != value else float(value)
    if isinstance(value, int | np.integer | np.bool_):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if type(value).__name__ in _MISSING_TYPE_NAMES:
        return None
    return TYPE_ERROR


def to_float_or_none(value: Any) -> float | None:
    """Like numeric_value, with type errors treated as missing."""
    out = numeric_value(value)
    return None if out is TYPE_ERROR else out


def category_key(value: Any) -> str | None:
    """The string a categorical value is counted under; None when it cannot be one.

    Integral floats are keyed as integers because pandas turns an integer
    column with a missing value into floats.
    """
    cls = type(value)
    if cls is str:
        text: str = value  # the type test above, kept cheap: this runs per value
        return text
    if cls is bool or isinstance(value, np.bool_):
        return "True" if value else "False"
    if cls is int or isinstance(value, np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isfinite(value) and float(value).is_integer():
            return str(int(value))
        return str(float(value))
    if isinstance(value, np.str_):
        return str(value)
    return None
