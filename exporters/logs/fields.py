"""Values typed for the fields they go in: what ECS and our index template accept.

Elasticsearch refuses a whole document when one value does not parse as its
field's mapped type (a string in a ``double``, a value where an object is
mapped), and a refused document is a dead letter. So every value a caller
hands us passes through here on its way into a document: numbers that JSON
cannot carry (NaN, infinities, integers beyond 64 bits) are left out, payloads
of unknown shape become keyword strings, and an extra field under an ECS name
whose value ECS would not type is kept as a keyword label instead.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import numbers
from collections.abc import Mapping
from typing import Any

import orjson

from modelmon.exporters.logs.ecs_schema import FIELD_TYPES, TOP_LEVEL_TYPES

# Our custom namespace (not an ECS field set; ECS 8.11 has no ``model``): the
# index template maps each of these with this type (es_setup builds it from here).
MODEL_FIELD_TYPES: dict[str, str] = {
    "model": "object",
    "model.name": "keyword", "model.version": "keyword", "model.framework": "keyword",
    "model.outcome": "keyword", "model.latency_seconds": "double", "model.batch_size": "long",
    "model.score": "double", "model.score_shape": "long", "model.score_text": "keyword",
    "model.prediction": "keyword", "model.ground_truth": "keyword", "model.correct": "boolean",
    "model.input": "text", "model.violations": "flattened", "model.violation_count": "long",
    "model.source": "keyword", "model.previous_version": "keyword",
    "model.rolled_back_from": "keyword", "model.rollback_reason": "keyword",
    "model.drift": "object", "model.drift.feature": "keyword", "model.drift.statistic": "keyword",
    "model.drift.value": "double", "model.drift.threshold": "double",
    "model.edge": "object", "model.edge.device": "keyword", "model.edge.reason": "keyword",
    "model.edge.outage_seconds": "double", "model.edge.backlog": "long",
    "model.edge.alert": "object", "model.edge.alert.name": "keyword",
    "model.edge.alert.status": "keyword", "model.edge.alert.starts_at": "date",
    "model.edge.alert.ends_at": "date", "model.edge.alert.generator_url": "keyword",
    "model.edge.alert.labels": "flattened",
    "model.edge.bundle": "object", "model.edge.bundle.version": "keyword",
    "model.edge.bundle.sha256": "keyword", "model.edge.bundle.source": "keyword",
    "model.edge.bundle.signed": "boolean", "model.edge.bundle.previous_version": "keyword",
    "model.edge.bundle.running_version": "keyword", "model.edge.bundle.running_sha256": "keyword",
}
_TYPES: dict[str, str] = {**TOP_LEVEL_TYPES, **FIELD_TYPES, **MODEL_FIELD_TYPES}
_TEXT = frozenset({"keyword", "wildcard", "text", "match_only_text", "constant_keyword"})
_INTEGERS = frozenset({"long", "integer", "short", "byte"})
_FLOATS = frozenset({"double", "float", "half_float", "scaled_float"})
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_MAX_DEPTH = 16  # deeper extras are kept as text (Elasticsearch's default depth limit is 20)
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_SCALARS = frozenset({str, int, float, bool, type(None)})


def number(value: Any) -> float | int | None:
    """A finite number for a ``double`` field, or None (JSON has no NaN or infinity)."""
    cls = type(value)
    if cls is float:  # the common case, without the ABC checks below
        return value if math.isfinite(value) else None
    if cls is int:
        return value if _LONG_MIN <= value <= _LONG_MAX else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return int(value) if _LONG_MIN <= int(value) <= _LONG_MAX else None
    as_float = float(value)
    return as_float if math.isfinite(as_float) else None


def count(value: Any) -> int | None:
    """An integer for a ``long`` field (a whole float is one), or None."""
    n = number(value)
    if isinstance(n, float):
        return int(n) if n.is_integer() and _LONG_MIN <= n <= _LONG_MAX else None
    return n


def nanoseconds(seconds: Any) -> int | None:
    """ECS ``event.duration`` (a ``long`` of nanoseconds) from seconds, rounded, or None."""
    n = number(seconds)
    if n is None or not math.isfinite(n * 1e9):
        return None
    return count(round(n * 1e9))


def flag(value: Any) -> bool | None:
    """A boolean for a ``boolean`` field (numpy's and 0/1 too), or None."""
    if isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_" or (isinstance(value, numbers.Integral)
                                           and value in (0, 1)):
        return bool(value)
    return None


def keyword(value: Any) -> str:
    """A string for a keyword field: a string as is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float | int) and not isinstance(value, bool):
        return str(value)  # "nan", "inf" and big integers too, which JSON cannot carry
    try:
        return orjson.dumps(value, default=str, option=_JSON_OPTIONS).decode()
    except (TypeError, ValueError):  # too deep, an integer beyond 64 bits...
        try:
            return str(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"


def score_fields(score: Any, max_items: int) -> dict[str, Any]:
    """``model.score`` as a double, or a flat array of doubles (``model.score_shape``
    for two or more dimensions); anything else (labels, ragged lists, NaN, more than
    ``max_items`` values) as text in ``model.score_text``."""
    scalar = number(score)
    if scalar is not None:
        return {"score": scalar}
    if not isinstance(score, str | bytes | Mapping) and not isinstance(score, numbers.Number):
        flat = _flat_numbers(score, max_items)
        if flat is not None:
            values, shape = flat
            return {"score": values, "score_shape": shape} if len(shape) > 1 else {
                "score": values}
    return {"score_text": keyword(score)}


def _flat_numbers(value: Any, max_items: int) -> tuple[list[float], list[int]] | None:
    import numpy as np

    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged
        return None
    if array.dtype.kind not in "iuf" or array.ndim == 0 or array.size == 0 \
            or array.size > max_items:
        return None
    flat = array.astype(float).ravel()
    if not np.isfinite(flat).all():
        return None
    return [float(v) for v in flat], list(array.shape)


def fits(path: str, value: Any, depth: int = 0) -> bool:
    """Whether ``value`` parses as the type ECS (or our template) gives ``path``;
    fields neither names are the caller's own and fit unless JSON cannot carry them."""
    kind = _TYPES.get(path)
    if kind is None and "." in path and _below_a_value(path):
        return False  # "message.x": Elasticsearch would nest an object in a text field
    cls = type(value)
    if cls is str:  # the common case first: exact type checks cost a fraction of isinstance
        return kind is None or kind in _TEXT or _leaf_fits(kind, value)  # dates, ips
    if depth > _MAX_DEPTH:
        return False
    if cls is dict or (cls not in _SCALARS and isinstance(value, Mapping)):
        if kind not in (None, "object", "flattened", "nested"):
            return False
        return all(type(k) is str and valid_name(k) and fits(f"{path}.{k}", v, depth + 1)
                   for k, v in value.items())
    if cls is list or cls is tuple:
        return all(type(v) is not list and type(v) is not tuple and fits(path, v, depth + 1)
                   for v in value)
    if cls is int and not _LONG_MIN <= value <= _LONG_MAX:
        return False  # JSON encoders (ours) and Elasticsearch's longs stop at 64 bits
    if value is None or kind is None:
        return True
    return _leaf_fits(kind, value)


def valid_name(name: str) -> bool:
    """Elasticsearch refuses an empty or blank field name, or an empty part
    between dots ("a..b", ".a", "a.")."""
    if "." not in name:
        return bool(name) and not name.isspace()
    return all(part and not part.isspace() for part in name.split("."))


def hashable_field_error(path: str) -> str | None:
    """Why a redactor may not replace ``path`` by its hash (a string), or None."""
    kind = _TYPES.get(path)
    if kind is None or kind in _TEXT:
        return None
    return (f"{path} is a {kind} field in ECS or the modelmon template and its hash is a "
            f"string, which Elasticsearch would refuse there: hash a keyword field, or drop "
            f"this one with drop_fields")


def _below_a_value(path: str) -> bool:
    parts = path.split(".")
    for end in range(1, len(parts)):
        kind = _TYPES.get(".".join(parts[:end]))
        if kind == "flattened":
            return False
        if kind not in (None, "object", "nested"):
            return True
    return False


def _leaf_fits(kind: str, value: Any) -> bool:
    if kind in _TEXT:
        return isinstance(value, str)
    if kind in _INTEGERS:
        return type(value) is int and _LONG_MIN <= value <= _LONG_MAX
    if kind in _FLOATS:
        return type(value) in (int, float) and math.isfinite(value) and (
            type(value) is float or _LONG_MIN <= value <= _LONG_MAX)
    if kind == "boolean":
        return type(value) is bool
    if kind == "date":
        return isinstance(value, str) and _parses(
            lambda v: datetime.datetime.fromisoformat(v.replace("Z", "+00:00")), value)
    if kind == "ip":
        return isinstance(value, str) and _parses(ipaddress.ip_address, value)
    if kind in ("object", "flattened", "nested"):
        return False  # a value where an object is mapped
    return True  # geo_point and the like: not typed further here


def _parses(parse: Any, value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


def add_extra(event: dict[str, Any], key: str, value: Any) -> None:
    """Put a caller's extra field into ``event``. ``labels`` are ECS's flat keyword
    pairs: merged, their values made keywords. A field under an ECS (or our
    ``model``) name whose value would not parse as that field's type goes to
    ``labels.<key>`` as a keyword: the event ships, the value stays readable."""
    if key.startswith("labels."):
        _label(event, key[len("labels."):], value)
    elif key == "labels":
        if type(value) is dict or isinstance(value, Mapping):
            for name, item in value.items():
                _label(event, str(name), item)
        else:
            _label(event, key, value)
    elif valid_name(key) and fits(key, value):
        event[key] = value
    else:
        _label(event, key, value)


def _label(event: dict[str, Any], name: str, value: Any) -> None:
    labels = event.get("labels")
    if not isinstance(labels, dict):
        labels = event["labels"] = {}
    # A dot would make Elasticsearch nest an object inside labels.
    name = name.replace(".", "_")
    labels[name if valid_name(name) else f"_{name}"] = keyword(value)
