"""PutLogEvents requests planned within CloudWatch Logs' limits: 10,000 events,
1,048,576 bytes (each event's UTF-8 size + 26), a span under 24 hours,
chronological order (the spool's order among equal timestamps)."""

from __future__ import annotations

from modelmon.exporters.logs.cloudwatch_batches import (
    EVENT_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_SPAN_MS,
    LogEvent,
    plan_requests,
)
from support.cloudwatch_server import limit_error

T0 = 1_764_600_000_000


def _wire(request: list[LogEvent]) -> list[dict[str, object]]:
    return [{"timestamp": e.timestamp, "message": e.message} for e in request]


def test_ten_thousand_events_a_request_at_most() -> None:
    events = [LogEvent(seq, T0, "m") for seq in range(1, 25_001)]
    requests = plan_requests(events)
    assert [len(r) for r in requests] == [10_000, 10_000, 5_000]
    assert [e.seq for r in requests for e in r] == list(range(1, 25_001))
    assert all(limit_error(_wire(r)) is None for r in requests)


def test_bytes_count_utf8_plus_26_and_a_full_request_is_allowed() -> None:
    # 5 events of a fifth of the limit each (1,048,575 bytes): one request.
    fifth = MAX_BATCH_BYTES // 5 - EVENT_OVERHEAD
    ascii_events = [LogEvent(seq, T0, "a" * fifth) for seq in range(5)]
    assert [len(r) for r in plan_requests(ascii_events)] == [5]
    assert limit_error(_wire(ascii_events)) is None
    # One 2-byte character in each: the same length in characters, 5 bytes over.
    wide = [LogEvent(seq, T0, "é" + "a" * (fifth - 1)) for seq in range(5)]
    requests = plan_requests(wide)
    assert [len(r) for r in requests] == [4, 1]
    assert all(limit_error(_wire(r)) is None for r in requests)
    assert limit_error(_wire(wide)) is not None  # what one request would have been


def test_a_request_spans_less_than_24_hours() -> None:
    events = [LogEvent(1, T0, "a"), LogEvent(2, T0 + MAX_SPAN_MS - 1, "b"),
              LogEvent(3, T0 + MAX_SPAN_MS, "c"), LogEvent(4, T0 + 3 * MAX_SPAN_MS, "d")]
    assert [[e.seq for e in r] for r in plan_requests(events)] == [[1, 2], [3], [4]]
    assert limit_error(_wire(events[:3])) is not None


def test_chronological_order_with_the_spool_order_among_equal_timestamps() -> None:
    events = [LogEvent(1, T0 + 5, "late"), LogEvent(2, T0, "early"), LogEvent(3, T0 + 5, "x"),
              LogEvent(4, T0, "y")]
    [request] = plan_requests(events)
    assert [e.seq for e in request] == [2, 4, 1, 3]
    assert limit_error(_wire(events)) is not None and limit_error(_wire(request)) is None


def test_nothing_to_send_plans_no_request() -> None:
    assert plan_requests([]) == []
