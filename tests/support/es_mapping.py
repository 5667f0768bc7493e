"""Explicit mappings, checked the way Elasticsearch parses a document against them.

``mapping_errors(mappings, doc)`` returns what Elasticsearch would refuse a
document for (``document_parsing_exception`` reasons), given the ``mappings``
of an index template: an object where a field is mapped as a value, a value
where an object (or ``flattened``) is mapped, a value a numeric, boolean, date
or ip field cannot parse. By default it coerces as Elasticsearch does
(``"1.5"`` into a double, ``7`` into a keyword, epoch millis into a date);
``strict=True`` coerces nothing and refuses arrays of arrays: the check that
what we send is the type we mapped, not merely what Elasticsearch tolerates.
Fields the mappings do not name are dynamic (``require_mapped`` lists
prefixes under which that is an error too).
"""

from __future__ import annotations

import datetime
import fnmatch
import ipaddress
import math
from collections.abc import Iterator
from typing import Any

_TEXT = frozenset({"keyword", "wildcard", "text", "match_only_text", "constant_keyword"})
_INTEGERS = frozenset({"long", "integer", "short", "byte", "unsigned_long"})
_FLOATS = frozenset({"double", "float", "half_float", "scaled_float"})


def mapped_types(mappings: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted field, type) of every field an explicit mapping names."""
    for name, spec in mappings.get("properties", {}).items():
        path = prefix + name
        if "properties" in spec:
            yield path, spec.get("type", "object")
            yield from mapped_types(spec, path + ".")
        else:
            yield path, spec.get("type", "object")


def template_mappings(templates: dict[str, Any], index: str) -> dict[str, Any] | None:
    """The mappings of the highest-priority index template matching ``index``."""
    best: tuple[int, dict[str, Any]] | None = None
    for template in templates.values():
        patterns = template.get("index_patterns", [])
        if isinstance(patterns, str):
            patterns = [patterns]
        if any(_glob(p, index) for p in patterns):
            priority = int(template.get("priority", 0))
            mappings = (template.get("template") or {}).get("mappings")
            if mappings and (best is None or priority > best[0]):
                best = (priority, mappings)
    return best[1] if best else None


def mapping_errors(mappings: dict[str, Any], doc: dict[str, Any], *, strict: bool = False,
                   require_mapped: tuple[str, ...] = ()) -> list[str]:
    errors: list[str] = []
    _object(mappings, doc, "", strict, require_mapped, errors)
    return errors


def _object(spec: dict[str, Any], value: dict[str, Any], prefix: str, strict: bool,
            require: tuple[str, ...], errors: list[str]) -> None:
    properties: dict[str, Any] = spec.get("properties", {})
    for key, item in value.items():
        parts = str(key).split(".")  # "a.b": Elasticsearch expands dotted names into objects
        if not all(part and not part.isspace() for part in parts):
            errors.append(f"field name [{prefix}{key}] is empty, blank or has an empty part "
                          "between dots")
            continue
        head, rest = parts[0], parts[1:]
        path = prefix + head
        sub = properties.get(head)
        if rest:
            item = _expand(rest, item)
        if sub is None:
            if any((path + ".").startswith(p) or path == p.rstrip(".") for p in require):
                errors.append(f"field [{path}] is not mapped: its type would be dynamic")
            continue
        _field(sub, item, path, strict, require, errors)


def _expand(parts: list[str], value: Any) -> Any:
    for part in reversed(parts):
        value = {part: value}
    return value


def _field(spec: dict[str, Any], value: Any, path: str, strict: bool,
           require: tuple[str, ...], errors: list[str]) -> None:
    if value is None:
        return
    kind = spec.get("type", "object")
    if kind in ("object", "nested") or "properties" in spec:
        for item in _elements(value, nested_ok=True):
            if isinstance(item, dict):
                _object(spec, item, path + ".", strict, require, errors)
            elif item is not None:
                errors.append(f"object mapping for [{path}] tried to parse field [{path}] as "
                              f"object, but found a concrete value: {_preview(item)}")
        return
    if kind == "flattened":
        for item in _elements(value, nested_ok=not strict):
            if item is not None and not isinstance(item, dict):
                errors.append(f"failed to parse field [{path}] of type [flattened]: expected an "
                              f"object, got {_preview(item)}")
            elif item is not None:
                _flattened_leaves(item, path, "", 1, errors)
        return
    if isinstance(value, list) and strict and any(isinstance(v, list) for v in value):
        errors.append(f"field [{path}] of type [{kind}]: an array of arrays")
    for item in _elements(value, nested_ok=True):
        if item is None:
            continue
        if isinstance(item, dict):
            errors.append(f"failed to parse field [{path}] of type [{kind}]: "
                          f"Can't get text on a START_OBJECT")
        elif not _leaf_ok(kind, item, strict):
            errors.append(f"failed to parse field [{path}] of type [{kind}]. Preview of "
                          f"field's value: {_preview(item)}")


def _flattened_leaves(value: dict[str, Any], root: str, prefix: str, depth: int,
                      errors: list[str]) -> None:
    """FlattenedFieldParser's refusals: a \\0 in a key, deeper than depth_limit (20),
    a keyed value (key, \\0, value) beyond Lucene's 32766-byte term."""
    if depth > 20:
        errors.append(f"The provided [flattened] field [{root}] exceeds the maximum depth "
                      "limit of [20].")
        return
    for key, item in value.items():
        name = prefix + str(key)
        if "\0" in name:
            errors.append(f"Keys in [flattened] fields cannot contain the reserved character "
                          f"\\0. Offending key: [{name!r}].")
        for leaf in _elements(item, nested_ok=True):
            if isinstance(leaf, dict):
                _flattened_leaves(leaf, root, name + ".", depth + 1, errors)
            elif leaf is not None and len(f"{name}\0{leaf}".encode()) > 32766:
                errors.append(f"Flattened field [{root}] contains one immense field")


def _elements(value: Any, nested_ok: bool) -> Iterator[Any]:
    if not isinstance(value, list):
        yield value
        return
    for item in value:
        if isinstance(item, list) and nested_ok:
            yield from _elements(item, nested_ok)
        else:
            yield item


def _leaf_ok(kind: str, value: Any, strict: bool) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in _TEXT:
        return isinstance(value, str) or (not strict and (number or isinstance(value, bool)))
    if kind in _INTEGERS:
        if isinstance(value, int) and not isinstance(value, bool):
            return True
        if strict:
            return False
        return _parses(float, value) and not isinstance(value, bool | list)
    if kind in _FLOATS:
        if number:
            return math.isfinite(value)
        return not strict and isinstance(value, str) and _parses(float, value) and \
            math.isfinite(float(value))
    if kind == "boolean":
        return isinstance(value, bool) or (not strict and value in ("true", "false", ""))
    if kind == "date":
        if isinstance(value, str):
            return _parses(_iso_date, value)
        return not strict and number
    if kind == "ip":
        return isinstance(value, str) and _parses(ipaddress.ip_address, value)
    return True  # a type this check does not model


def _iso_date(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _parses(parse: Any, value: Any) -> bool:
    try:
        parse(value)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _glob(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)
