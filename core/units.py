"""Human-friendly sizes and durations in config files: ``512MiB``, ``7d``."""

from __future__ import annotations

import re

_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")


def parse_size(value: object, field: str) -> int:
    """Bytes from an int or a string like ``512MiB``; errors name ``field``."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a size such as 1048576 or '512MiB', got {value!r}")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = _NUMBER_UNIT.match(str(value))
        if not match or match.group(2).lower() not in _SIZE_UNITS:
            raise ValueError(
                f"{field}: expected a size such as 1048576 or '512MiB' "
                f"(units {', '.join(u for u in _SIZE_UNITS if u)}), got {value!r}"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError(f"{field}: must be positive, got {value!r}")
    return size


def parse_duration(value: object, field: str) -> float:
    """Seconds from a number or a string like ``10s``, ``7d``; errors name ``field``."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a duration such as 10 or '10s', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _NUMBER_UNIT.match(str(value))
        unit = match.group(2).lower() if match else None
        if not match or (unit not in _DURATION_UNITS and unit != ""):
            raise ValueError(
                f"{field}: expected a duration such as 10 or '10s' "
                f"(units {', '.join(_DURATION_UNITS)}), got {value!r}"
            )
        seconds = float(match.group(1)) * (_DURATION_UNITS[unit] if unit else 1)
    if not seconds > 0:  # NaN (YAML .nan) too: it compares false with everything
        raise ValueError(f"{field}: must be positive, got {value!r}")
    return seconds


def number_text(value: float) -> str:
    """A threshold as written into PromQL, Zabbix and Nagios: ``%g`` (``0.9``,
    ``14.4``, ``1e-05``) when that reads back as the same number, else the
    shortest text that does. ``%g`` alone keeps 6 significant digits, so a
    ratio of 0.9999995 became ``1`` and the alert could never fire."""
    text = f"{value:g}"
    return text if float(text) == value else repr(float(value))
