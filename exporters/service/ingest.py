"""Events that model servers which cannot import modelmon send to ``POST /ingest``.

The body is one JSON event or a JSON array of events. A request is applied
all-or-nothing: when any event is invalid the answer is 400 with one error per
bad field (``events[3].latency_seconds: ...``) and nothing is recorded, so a
client can fix and resend the whole request without double counting.

Event types (``"type"``, default ``"inference"``):

``inference``
    ``model`` (string, required), ``version`` (string, default "unknown"),
    ``latency_seconds`` (number >= 0, required), ``outcome`` ("success" |
    "error" | "rejected", default "success"), ``batch_size`` (integer >= 1),
    ``exception`` (string, the exception type when outcome is "error"),
    ``request_bytes`` / ``response_bytes`` (integer >= 0), ``framework``
    (string), ``timestamp`` (unix seconds; accepted for log correlation,
    Prometheus counters cannot be back-dated).

Other types (``prediction``, ``feedback``) are handled by the quality
exporter when it is installed; see docs/quality.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

OUTCOMES = ("success", "error", "rejected")
_INFERENCE_FIELDS = {
    "type", "model", "version", "latency_seconds", "outcome", "batch_size", "exception",
    "request_bytes", "response_bytes", "framework", "timestamp",
}


class InvalidEvent(ValueError):
    """An event field is wrong; ``str()`` names the field and what is expected."""


@dataclass(frozen=True, slots=True)
class InferenceEvent:
    model: str
    version: str
    latency_seconds: float
    outcome: str
    batch_size: int | None
    exception: str | None
    request_bytes: int | None
    response_bytes: int | None
    framework: str


def _string(event: Mapping[str, Any], key: str, *, required: bool, default: str = "") -> str:
    value = event.get(key)
    if value is None:
        if required:
            raise InvalidEvent(f"{key}: required, a non-empty string")
        return default
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidEvent(f"{key}: expected a non-empty string of at most 200 characters, got {value!r}")
    return value


def _number(event: Mapping[str, Any], key: str, *, required: bool) -> float | None:
    value = event.get(key)
    if value is None:
        if required:
            raise InvalidEvent(f"{key}: required, a number of seconds >= 0")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidEvent(f"{key}: expected a finite number >= 0, got {value!r}")
    return float(value)


def _count(event: Mapping[str, Any], key: str, minimum: int) -> int | None:
    value = event.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidEvent(f"{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def parse_inference(event: Mapping[str, Any]) -> InferenceEvent:
    unknown = set(event) - _INFERENCE_FIELDS
    if unknown:
        raise InvalidEvent(
            f"{sorted(unknown)[0]}: unknown field for an inference event; known fields are "
            f"{', '.join(sorted(_INFERENCE_FIELDS))}"
        )
    outcome = event.get("outcome", "success")
    if outcome not in OUTCOMES:
        raise InvalidEvent(f"outcome: expected one of {', '.join(OUTCOMES)}, got {outcome!r}")
    latency = _number(event, "latency_seconds", required=True)
    assert latency is not None
    _number(event, "timestamp", required=False)
    return InferenceEvent(
        model=_string(event, "model", required=True),
        version=_string(event, "version", required=False, default="unknown"),
        latency_seconds=latency,
        outcome=outcome,
        batch_size=_count(event, "batch_size", 1),
        exception=_string(event, "exception", required=False) or None,
        request_bytes=_count(event, "request_bytes", 0),
        response_bytes=_count(event, "response_bytes", 0),
        framework=_string(event, "framework", required=False, default="unknown"),
    )


# An event type's parser returns a callable that applies the event; parsing
# all events before applying any makes a request all-or-nothing.
Applier = Callable[[], None]
EventParser = Callable[[Mapping[str, Any]], Applier]


def validate_batch(
    body: Any, parsers: Mapping[str, EventParser], max_events: int
) -> tuple[list[tuple[str, Applier]], list[str]]:
    """Parse every event of ``body``; return (type, applier) pairs and the errors."""
    single = isinstance(body, dict)
    events = [body] if single else body
    if not isinstance(events, list):
        return [], ["body: expected a JSON object (one event) or a JSON array of events"]
    if not events:
        return [], ["body: the array is empty; send at least one event"]
    if len(events) > max_events:
        return [], [f"body: {len(events)} events exceed the limit of {max_events} per request"]
    parsed: list[tuple[str, Applier]] = []
    errors: list[str] = []
    for i, event in enumerate(events):
        where = "" if single else f"events[{i}]."
        if not isinstance(event, dict):
            errors.append(f"{where.rstrip('.') or 'body'}: expected a JSON object, got {type(event).__name__}")
            continue
        kind = event.get("type", "inference")
        parser = parsers.get(kind) if isinstance(kind, str) else None
        if parser is None:
            errors.append(f"{where}type: unknown event type {kind!r}; known: {', '.join(sorted(parsers))}")
            continue
        try:
            parsed.append((kind, parser(event)))
        except InvalidEvent as exc:
            errors.append(f"{where}{exc}")
        except ValueError as exc:  # parsers of other exporters raise ValueError subclasses
            errors.append(f"{where}{exc}")
    return parsed, errors
