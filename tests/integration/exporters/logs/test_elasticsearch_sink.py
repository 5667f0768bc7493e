"""The Elasticsearch sink against the wire contract: every event exactly once,
every bulk item classified, nothing blocked by one bad event."""

from __future__ import annotations

import time
from typing import Any

from modelmon.exporters.logs import LogShipper


def sample(shipper: LogShipper, name: str, **labels: str) -> float | None:
    return shipper._registry.get_sample_value(name, labels)


def events_by_marker(docs: dict[str, Any]) -> dict[int, list[str]]:
    seen: dict[int, list[str]] = {}
    for doc_id, doc in docs.items():
        if "n" in doc:
            seen.setdefault(doc["n"], []).append(doc_id)
    return seen


def test_every_event_arrives_once_as_ecs(es: Any, index_name: str, make_shipper: Any) -> None:
    shipper = make_shipper(sink="elasticsearch", url=es.url, index=index_name)
    for n in range(500):
        assert shipper.emit({"message": f"event {n}", "n": n}) is not None
    assert shipper.flush(20)
    docs = es.docs(index_name)
    assert sorted(events_by_marker(docs)) == list(range(500))
    doc = next(iter(docs.values()))
    assert doc["service"]["name"] == "test-svc"
    assert doc["@timestamp"].endswith("Z") and doc["ecs"]["version"]
    assert sample(shipper, "modelmon_log_events_total", sink="elasticsearch",
                  outcome="delivered") == 500


def test_connection_closed_after_commit_does_not_duplicate(
    scriptable_es: Any, index_name: str, make_shipper: Any
) -> None:
    scriptable_es.close_after_commit = 2  # committed, the answer never arrives, twice
    shipper = make_shipper(sink="elasticsearch", url=scriptable_es.url, index=index_name,
                           batch_size=50)
    for n in range(200):
        shipper.emit({"message": "x", "n": n})
    assert shipper.flush(20)
    by_marker = events_by_marker(scriptable_es.docs(index_name))
    assert sorted(by_marker) == list(range(200))
    assert all(len(ids) == 1 for ids in by_marker.values())
    assert len(scriptable_es.created_ids) == len(set(scriptable_es.created_ids)) == 200
    stats = shipper.spool.stats()
    assert stats.delivered == 200 and stats.balanced  # the 409s counted as delivered


def test_throttling_429_is_retried_after_retry_after(
    scriptable_es: Any, index_name: str, make_shipper: Any
) -> None:
    scriptable_es.responses.append((429, {"Retry-After": "1"}, {"error": "too many"}))
    shipper = make_shipper(sink="elasticsearch", url=scriptable_es.url, index=index_name)
    start = time.monotonic()
    shipper.emit({"message": "x", "n": 1})
    assert shipper.flush(20)
    assert time.monotonic() - start >= 1.0  # Retry-After honoured (backoff_max is 0.5)
    assert len(scriptable_es.docs(index_name)) == 1
    assert sample(shipper, "modelmon_log_bulk_requests_total", sink="elasticsearch",
                  result="throttled") == 1
    assert sample(shipper, "modelmon_log_events_total", sink="elasticsearch",
                  outcome="retried") == 1


def test_server_errors_are_retried_until_delivered(
    scriptable_es: Any, index_name: str, make_shipper: Any
) -> None:
    for status in (503, 500, 502):
        scriptable_es.responses.append((status, {}, {"error": "unavailable", "status": status}))
    shipper = make_shipper(sink="elasticsearch", url=scriptable_es.url, index=index_name)
    for n in range(10):
        shipper.emit({"message": "x", "n": n})
    assert shipper.flush(20)
    assert len(scriptable_es.docs(index_name)) == 10


def test_item_rejections_are_retried_and_mapping_errors_dead_lettered_without_blocking(
    scriptable_es: Any, index_name: str, make_shipper: Any
) -> None:
    rejected: set[int] = set()

    def fault(index: str, doc_id: str, source: Any) -> tuple[int, str, str] | None:
        n = source.get("n")
        if n is not None and n % 10 == 3 and n not in rejected:  # once each
            rejected.add(n)
            return 429, "es_rejected_execution_exception", "rejected execution of bulk"
        return None

    scriptable_es.item_fault = fault
    shipper = make_shipper(sink="elasticsearch", url=scriptable_es.url, index=index_name)
    shipper.emit({"message": "maps model as object", "model": {"name": "a"}, "n": -1})
    shipper.emit({"message": "model as a string: mapping conflict", "model": "oops"})
    for n in range(100):
        shipper.emit({"message": "x", "n": n})
    assert shipper.flush(20)
    docs = scriptable_es.docs(index_name)
    assert sorted(events_by_marker(docs)) == [-1, *range(100)]
    stats = shipper.spool.stats()
    assert stats.dead_lettered == 1 and stats.delivered == 101 and stats.balanced
    [letter] = shipper.spool.dead_letters()
    assert b"mapping conflict" in letter.payload
    assert letter.reason.startswith("400 document_parsing_exception")
    assert sample(shipper, "modelmon_log_events_total", sink="elasticsearch",
                  outcome="dead_lettered") == 1


def test_413_splits_the_batch_and_dead_letters_an_event_too_large_alone(
    scriptable_es: Any, index_name: str, make_shipper: Any
) -> None:
    scriptable_es.max_content_length = 20_000
    shipper = make_shipper(sink="elasticsearch", url=scriptable_es.url, index=index_name,
                           batch_size=500)
    shipper.emit({"message": "huge", "blob": "x" * 30_000})
    for n in range(300):
        shipper.emit({"message": "y" * 100, "n": n})
    assert shipper.flush(20)
    assert sorted(events_by_marker(scriptable_es.docs(index_name))) == list(range(300))
    [letter] = shipper.spool.dead_letters()
    assert letter.reason.startswith("413")
    assert shipper.spool.stats().balanced


def test_events_left_by_an_earlier_process_are_shipped_by_the_next(
    scriptable_es: Any, index_name: str, make_shipper: Any, tmp_path: Any
) -> None:
    scriptable_es.refuse = True  # Elasticsearch is down
    first = make_shipper(sink="elasticsearch", url=scriptable_es.url, index=index_name)
    started = time.perf_counter()
    for n in range(50):
        first.emit({"message": "while down", "n": n})
    assert time.perf_counter() - started < 1.0  # a dead destination never blocks emit
    assert not first.flush(0.3)
    first.close(timeout=0.1)
    scriptable_es.refuse = False
    second = make_shipper(sink="elasticsearch", url=scriptable_es.url, index=index_name)
    assert second.flush(20)
    assert sorted(events_by_marker(scriptable_es.docs(index_name))) == list(range(50))


def test_only_create_is_used_so_data_streams_accept_the_writes(
    es: Any, index_name: str, make_shipper: Any
) -> None:
    shipper = make_shipper(sink="elasticsearch", url=es.url, index=index_name)
    shipper.emit({"message": "to a data stream", "n": 0})
    assert shipper.flush(20)
    assert shipper.spool.stats().dead_lettered == 0
    assert len(es.docs(index_name)) == 1
