"""CloudWatch Logs' PutLogEvents limits, and a batch of events cut into
requests within them (the sink's ``send`` uses it; kept apart so the limits
are read and tested in one place).

A request holds at most 10,000 events and 1,048,576 bytes, each event
counting its message's UTF-8 size plus 26 bytes; its events span less than
24 hours and are in chronological order. The service refuses events older
than 14 days or more than 2 hours in the future, and events above 256 KiB
(26 bytes included) where larger events are not enabled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26  # bytes CloudWatch adds to each event's UTF-8 size
MAX_SPAN_MS = 24 * 3600 * 1000
MAX_AGE_MS = 14 * 24 * 3600 * 1000
MAX_AHEAD_MS = 2 * 3600 * 1000
# 256 KiB per event including the 26 bytes: the limit every region enforces.
DEFAULT_MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One event as PutLogEvents takes it."""

    seq: int
    timestamp: int  # milliseconds since the epoch
    message: str

    @property
    def size(self) -> int:
        """What the event counts against the batch size."""
        return len(self.message.encode()) + EVENT_OVERHEAD


def plan_requests(events: Sequence[LogEvent], *, max_events: int = MAX_BATCH_EVENTS,
                  max_bytes: int = MAX_BATCH_BYTES, max_span_ms: int = MAX_SPAN_MS
                  ) -> list[list[LogEvent]]:
    """``events`` in chronological order (the spool's order among equal
    timestamps), cut into PutLogEvents requests within the limits."""
    requests: list[list[LogEvent]] = []
    current: list[LogEvent] = []
    size = 0
    for event in sorted(events, key=lambda e: (e.timestamp, e.seq)):
        event_size = event.size
        if current and (len(current) >= max_events or size + event_size > max_bytes
                        or event.timestamp - current[0].timestamp >= max_span_ms):
            requests.append(current)
            current, size = [], 0
        current.append(event)
        size += event_size
    if current:
        requests.append(current)
    return requests


def timestamp_ms(value: Any) -> int | None:
    """Milliseconds since the epoch of an ECS ``@timestamp``; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        return None
