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

Every string must be printable text (no control or format characters, no
unpaired surrogates: see modelmon.labels) of at most 200 characters; numbers
must be finite, and integers at most 2**53 (what a float holds exactly). The
checks run before anything is applied, so whatever a client sends the answer
is a 2xx or a 4xx JSON body naming the field, never a partial apply.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelmon.labels import MAX_EVENT_STRING, event_text_problem, safe_text

OUTCOMES = ("success", "error", "rejected")
MAX_STRING = MAX_EVENT_STRING
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# The largest integer a float holds exactly: counters and histograms are floats.
MAX_INTEGER = 2**53
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


# -- the body ------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON; send a finite number")


def parse_body(data: bytes) -> tuple[Any, str | None]:
    """The JSON document of ``data``, or None and an error naming what is wrong."""
    try:
        return json.loads(data, parse_constant=_refuse_constant), None
    except RecursionError:
        return None, "body: JSON nested too deeply; events are flat objects"
    except UnicodeDecodeError:
        return None, "body: not UTF-8 encoded JSON"
    except ValueError as exc:
        # The decoder's message (position, what it expected) never echoes the body.
        return None, f"body: not valid JSON ({str(exc)[:120]})"


def read_limited(read: Callable[[int], bytes], max_bytes: int) -> bytes | None:
    """Read to the end, or None as soon as more than ``max_bytes`` arrive.

    Counts the bytes actually read, so a chunked body (no Content-Length) is
    held to the same limit as a declared one.
    """
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = read(min(65536, max_bytes + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:
            return None
        chunks.append(chunk)


# -- fields --------------------------------------------------------------------


def check_text(value: str, field: str) -> str:
    """``value`` when it is a non-empty printable string of at most MAX_STRING characters."""
    problem = event_text_problem(value)
    if problem is not None:
        raise InvalidEvent(f"{field}: {problem}")
    return value


def check_number(value: Any, field: str, *, minimum: float | None = None) -> float:
    """``value`` as a float when it is a finite JSON number (not a boolean) in range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(f"{field}: expected a finite number, got {safe_text(value)}")
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        raise InvalidEvent(f"{field}: expected a number of magnitude at most 2**53, got "
                           f"{safe_text(value)}")
    if not math.isfinite(value):
        raise InvalidEvent(f"{field}: expected a finite number, got {safe_text(value)}")
    if minimum is not None and value < minimum:
        raise InvalidEvent(f"{field}: expected a finite number >= {minimum:g}, got {safe_text(value)}")
    return float(value)


def unknown_field_error(event: Mapping[str, Any], known: set[str] | frozenset[str],
                        kind: str) -> InvalidEvent | None:
    unknown = sorted(set(event) - known)
    if not unknown:
        return None
    name = unknown[0]
    # A plain name is shown as sent; anything else quoted and escaped, so the
    # message still starts with one token naming the field.
    shown = name if _PLAIN_NAME.fullmatch(name) else safe_text(name)
    return InvalidEvent(
        f"{shown}: unknown field for {kind} event; known fields are {', '.join(sorted(known))}"
    )


def _string(event: Mapping[str, Any], key: str, *, required: bool, default: str = "") -> str:
    value = event.get(key)
    if value is None:
        if required:
            raise InvalidEvent(f"{key}: required, a non-empty string")
        return default
    if not isinstance(value, str):
        raise InvalidEvent(
            f"{key}: expected a non-empty string of at most {MAX_STRING} characters, "
            f"got {safe_text(value)}"
        )
    return check_text(value, key)


def _number(event: Mapping[str, Any], key: str, *, required: bool) -> float | None:
    value = event.get(key)
    if value is None:
        if required:
            raise InvalidEvent(f"{key}: required, a number of seconds >= 0")
        return None
    return check_number(value, key, minimum=0)


def _count(event: Mapping[str, Any], key: str, minimum: int) -> int | None:
    value = event.get(key)
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int) or value < minimum
            or value > MAX_INTEGER):
        raise InvalidEvent(
            f"{key}: expected an integer >= {minimum} and at most 2**53, got {safe_text(value)}"
        )
    return value


def parse_inference(event: Mapping[str, Any]) -> InferenceEvent:
    unknown = unknown_field_error(event, _INFERENCE_FIELDS, "an inference")
    if unknown is not None:
        raise unknown
    outcome = event.get("outcome", "success")
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        raise InvalidEvent(f"outcome: expected one of {', '.join(OUTCOMES)}, got {safe_text(outcome)}")
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


def event_kind(event: object, parsers: Mapping[str, EventParser]) -> str:
    """The event's type as a label value: a known type, or "unknown"."""
    kind = event.get("type", "inference") if isinstance(event, dict) else None
    return kind if isinstance(kind, str) and kind in parsers else "unknown"


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
            errors.append(f"{where.rstrip('.') or 'body'}: expected a JSON object, got "
                          f"{safe_text(event)}")
            continue
        kind = event.get("type", "inference")
        parser = parsers.get(kind) if isinstance(kind, str) else None
        if parser is None:
            errors.append(f"{where}type: unknown event type {safe_text(kind)}; known: "
                          f"{', '.join(sorted(parsers))}")
            continue
        try:
            parsed.append((kind, parser(event)))
        except ValueError as exc:  # InvalidEvent, and the ValueError subclasses of other exporters
            errors.append(f"{where}{exc}")
    return parsed, errors
