"""Bulk pipelining and ``filter_path``: up to ``sink.max_in_flight`` batches on the
wire at once, settled in order, every event exactly once; the Elasticsearch sink
asks for (and the test server, like Elasticsearch, answers with) only what
classification reads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from elasticsearch import Elasticsearch
from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.elasticsearch_sink import BULK_FILTER_PATH
from modelmon.exporters.logs.sinks import Item, SendResult
from modelmon.spool import Spool
from support import es_servers as servers
from support.es_servers import filter_path

MiB = 1024 * 1024


@pytest.fixture
def shippers() -> Iterator[list[LogShipper]]:
    made: list[LogShipper] = []
    yield made
    for shipper in made:
        shipper.close(timeout=1.0)


def start_shipper(made: list[LogShipper], spool_dir: Path, sink: Any = "elasticsearch",
                  **kw: Any) -> LogShipper:
    options: dict[str, Any] = {
        "spool_dir": spool_dir, "registry": CollectorRegistry(), "plugin_processors": False,
        "batch_size": 50, "backoff_initial": 0.01, "backoff_max": 0.05,
    }
    options.update(kw)
    shipper = LogShipper(sink=sink, **options)
    made.append(shipper)
    return shipper


def prefill(spool_dir: Path, count: int) -> list[int]:
    """A backlog waiting in the slot a shipper opens first: full batches are ready
    the moment its worker starts, so what is in flight is deterministic."""
    with Spool(spool_dir / "slot-0", max_bytes=512 * MiB, max_age=7 * 86400.0) as spool:
        seqs = spool.append_many([orjson.dumps({"message": "x", "n": n}) for n in range(count)])
    assert None not in seqs
    return [s for s in seqs if s is not None]


def markers(docs: dict[str, Any]) -> list[int]:
    return sorted(doc["n"] for doc in docs.values() if "n" in doc)


# -- filter_path: the test server's semantics ------------------------------------

BULK_ANSWER: dict[str, Any] = {
    "took": 3,
    "errors": True,
    "items": [
        {"create": {"_index": "i", "_id": "a", "_version": 1, "result": "created",
                    "_shards": {"total": 1, "successful": 1, "failed": 0}, "status": 201}},
        {"create": {"_index": "i", "_id": "a", "status": 409,
                    "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}},
        {"create": {"_index": "i", "_id": "b", "status": 400,
                    "error": {"type": "document_parsing_exception", "reason": "bad"}}},
    ],
}


def test_filter_path_keeps_the_bulk_fields_classification_reads() -> None:
    assert filter_path(BULK_ANSWER, BULK_FILTER_PATH) == {
        "errors": True,
        "items": [
            {"create": {"status": 201}},
            {"create": {"status": 409, "error": BULK_ANSWER["items"][1]["create"]["error"]}},
            {"create": {"status": 400, "error": BULK_ANSWER["items"][2]["create"]["error"]}},
        ],
    }
    # The generic walk (patterns the items fast path does not take) agrees.
    assert filter_path(BULK_ANSWER, "items.*.status") == {
        "items": [{"create": {"status": 201}}, {"create": {"status": 409}},
                  {"create": {"status": 400}}],
    }
    assert filter_path(BULK_ANSWER, "items.create.status,items.create.error.type") == {
        "items": [
            {"create": {"status": 201}},
            {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}},
            {"create": {"status": 400, "error": {"type": "document_parsing_exception"}}},
        ],
    }


def test_filter_path_semantics() -> None:
    doc = {"a": {"b": {"c": 1, "d": 2}, "e": 3}, "f": [{"g": 1, "h": 2}, {"h": 3}, 7], "i": 0}
    assert filter_path(doc, None) is doc
    assert filter_path(doc, "") is doc
    assert filter_path(doc, "i") == {"i": 0}
    assert filter_path(doc, "a.b.c") == {"a": {"b": {"c": 1}}}
    assert filter_path(doc, "a.b") == {"a": {"b": {"c": 1, "d": 2}}}  # a whole subtree
    assert filter_path(doc, "a.b.c,i") == {"a": {"b": {"c": 1}}, "i": 0}  # comma-separated
    assert filter_path(doc, "a.*") == {"a": {"b": {"c": 1, "d": 2}, "e": 3}}
    assert filter_path(doc, "*.e") == {"a": {"e": 3}}  # * is exactly one key
    assert filter_path(doc, "*.c") == {}
    assert filter_path(doc, "**.c") == {"a": {"b": {"c": 1}}}  # ** any depth
    assert filter_path(doc, "**.h") == {"f": [{"h": 2}, {"h": 3}]}
    assert filter_path(doc, "a.**.d") == {"a": {"b": {"d": 2}}}
    assert filter_path(doc, "f.h") == {"f": [{"h": 2}, {"h": 3}]}  # arrays element-wise
    assert filter_path(doc, "f.g") == {"f": [{"g": 1}]}  # elements left empty are gone
    assert filter_path(doc, "f") == {"f": doc["f"]}
    assert filter_path(doc, "a.x*") == {}
    assert filter_path({"took": 1, "tagline": "t", "x": 2}, "t*") == {"took": 1, "tagline": "t"}
    assert filter_path(doc, "nothing,a.nothing,i.deeper") == {}  # nothing matched
    assert filter_path([1, 2], "a") == {}
    assert doc == {"a": {"b": {"c": 1, "d": 2}, "e": 3},  # the input is not modified
                   "f": [{"g": 1, "h": 2}, {"h": 3}, 7], "i": 0}


# -- filter_path on the wire, with the official client ----------------------------


@pytest.fixture
def es_client(es: Any) -> Iterator[Elasticsearch]:
    if hasattr(es, "client"):  # a real Elasticsearch (ES_URL)
        yield es.client
        return
    client = Elasticsearch(es.url)
    yield client
    client.close()


def test_bulk_answer_is_filtered_for_the_official_client(
    es_client: Elasticsearch, index_name: str
) -> None:
    client = es_client
    ts = "2026-01-01T00:00:00Z"
    operations = [
        {"create": {"_id": "good"}}, {"@timestamp": ts, "message": "ok", "model": {"name": "m"}},
        {"create": {"_id": "good"}}, {"@timestamp": ts, "message": "same id again"},
        {"create": {"_id": "conflict"}}, {"@timestamp": ts, "message": "x", "model": "a string"},
    ]
    resp = client.bulk(operations=operations, index=index_name,
                       filter_path="errors,items.*.error,items.*.status")
    body = resp.body
    assert set(body) == {"errors", "items"}  # no took, no ingest_took
    assert body["errors"] is True
    assert [list(item) for item in body["items"]] == [["create"]] * 3
    answers = [item["create"] for item in body["items"]]
    assert [a["status"] for a in answers] == [201, 409, 400]
    assert set(answers[0]) == {"status"}  # no _index, _id, _version, result, _shards, _seq_no
    assert set(answers[1]) == set(answers[2]) == {"status", "error"}
    assert answers[1]["error"]["type"] == "version_conflict_engine_exception"
    assert answers[2]["error"]["type"] in ("document_parsing_exception",
                                           "mapper_parsing_exception")  # the latter: older versions
    # Without filter_path the same server answers in full: the filter did the work.
    full = client.bulk(operations=[{"create": {"_id": "other"}}, {"@timestamp": ts, "n": 1}],
                       index=index_name).body
    assert "took" in full and {"_index", "_id", "status"} <= set(full["items"][0]["create"])


def test_the_sink_asks_for_the_filtered_bulk_answer(
    scriptable_es: Any, index_name: str, tmp_path: Path, shippers: list[LogShipper],
) -> None:
    # The server answers a _bulk asking for exactly Logstash's filter_path with
    # the lean answer (see test_the_lean_bulk_answer_is_the_filtered_full_one).
    leans: list[bool] = []
    real = scriptable_es.bulk

    def recording(index: str | None, body: bytes, lean: bool = False) -> Any:
        leans.append(lean)
        return real(index, body, lean)

    scriptable_es.bulk = recording
    shipper = start_shipper(shippers, tmp_path, url=scriptable_es.url, index=index_name)
    for n in range(120):
        shipper.emit({"message": "x", "n": n})
    assert shipper.flush(10)
    assert leans and all(leans)
    assert len(leans) == scriptable_es.bulk_requests
    assert shipper.spool.stats().delivered == 120


def test_the_lean_bulk_answer_is_the_filtered_full_one() -> None:
    ts = "2024-05-01T00:00:00.000Z"
    lines = [{"create": {"_id": "a"}}, {"@timestamp": ts, "model": {"name": "m"}},
             {"create": {"_id": "a"}}, {"@timestamp": ts, "model": {"name": "m"}},
             {"create": {"_id": "b"}}, {"@timestamp": ts, "model": "flat"},
             {"create": {"_id": "c"}}, {"@timestamp": ts, "n": 1}]
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    spec = ",".join(sorted(servers._LEAN_BULK_FILTER))
    full_status, full = servers.EsTestServer().bulk("logs-a-b", body)
    lean_status, lean = servers.EsTestServer().bulk("logs-a-b", body, lean=True)
    assert full_status == lean_status == 200
    assert lean == filter_path(full, spec)
    assert [next(iter(i.values()))["status"] for i in lean["items"]] == [201, 409, 400, 201]


# -- two bulk requests in flight against the test server ---------------------------


def test_a_thousand_events_arrive_exactly_once(
    scriptable_es: Any, index_name: str, tmp_path: Path, shippers: list[LogShipper]
) -> None:
    shipper = start_shipper(shippers, tmp_path, url=scriptable_es.url, index=index_name)
    for n in range(1000):
        assert shipper.emit({"message": "x", "n": n}) is not None
    assert shipper.flush(20)
    ids = scriptable_es.created_ids
    assert len(ids) == len(set(ids)) == 1000
    assert markers(scriptable_es.docs(index_name)) == list(range(1000))
    assert scriptable_es.bulk_requests >= 20  # batch_size 50
    stats = shipper.spool.stats()
    assert stats.delivered == 1000 and stats.pending == 0 and stats.dead_lettered == 0
    assert stats.balanced


def instrument_bulk(server: Any, delay: float) -> dict[str, int]:
    """Make each _bulk take ``delay`` s at the server and count how many overlap."""
    real = server.bulk
    lock = threading.Lock()
    seen = {"active": 0, "max": 0, "calls": 0}

    def bulk(index: str | None, body: bytes, *args: Any) -> Any:
        with lock:
            seen["active"] += 1
            seen["calls"] += 1
            seen["max"] = max(seen["max"], seen["active"])
        try:
            time.sleep(delay)
            return real(index, body, *args)
        finally:
            with lock:
                seen["active"] -= 1

    server.bulk = bulk  # the handler looks it up on the instance
    return seen


def test_two_bulk_requests_overlap_at_the_server_and_never_more(
    scriptable_es: Any, index_name: str, tmp_path: Path, shippers: list[LogShipper]
) -> None:
    seen = instrument_bulk(scriptable_es, 0.05)
    shipper = start_shipper(shippers, tmp_path, url=scriptable_es.url, index=index_name)
    for n in range(500):
        shipper.emit({"message": "x", "n": n})
    assert shipper.flush(20)
    assert seen["calls"] >= 10
    assert seen["max"] == 2, f"at most {seen['max']} bulk requests were in flight at once"
    ids = scriptable_es.created_ids
    assert len(ids) == len(set(ids)) == 500


def test_item_rejections_in_a_later_batch_are_retried_exactly_once(
    scriptable_es: Any, index_name: str, tmp_path: Path, shippers: list[LogShipper]
) -> None:
    rejected: set[int] = set()

    def fault(index: str, doc_id: str, source: Any) -> tuple[int, str, str] | None:
        n = source.get("n")  # called under the server's lock
        if n is not None and n >= 400 and n % 7 == 3 and n not in rejected:
            rejected.add(n)
            return 429, "es_rejected_execution_exception", "rejected execution of bulk"
        return None

    scriptable_es.item_fault = fault
    shipper = start_shipper(shippers, tmp_path, url=scriptable_es.url, index=index_name)
    for n in range(1000):
        shipper.emit({"message": "x", "n": n})
    assert shipper.flush(20)
    assert len(rejected) == len([n for n in range(400, 1000) if n % 7 == 3])
    ids = scriptable_es.created_ids
    assert len(ids) == len(set(ids)) == 1000
    assert markers(scriptable_es.docs(index_name)) == list(range(1000))
    assert 0 < shipper.retried <= len(rejected)
    stats = shipper.spool.stats()
    assert stats.delivered == 1000 and stats.dead_lettered == 0 and stats.balanced


# -- the pipeline with sinks of our own ----------------------------------------------

Answer = Callable[[int, list[int]], "SendResult | None"]


class RecordingSink:
    """Records every send (its seqs, when, how many overlapped); delivers all
    unless ``answer(call_no, seqs)`` says otherwise."""

    name = "recording"

    def __init__(self, max_in_flight: int | None = None, delay: float = 0.0,
                 answer: Answer | None = None) -> None:
        if max_in_flight is not None:
            self.max_in_flight = max_in_flight
        self.delay = delay
        self.answer = answer
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.calls: list[list[int]] = []
        self.times: list[tuple[float, float]] = []  # (start, end) per call
        self.delivered: list[int] = []
        self.closed = False

    def send(self, items: Sequence[Item]) -> SendResult:
        seqs = [item.seq for item in items]
        start = time.monotonic()
        with self.lock:
            call_no = len(self.calls)
            self.calls.append(seqs)
            self.times.append((start, 0.0))
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            result = self.answer(call_no, seqs) if self.answer else None
            if result is None:
                result = SendResult(delivered=seqs)
            with self.lock:
                self.delivered += result.delivered
            return result
        finally:
            with self.lock:
                self.active -= 1
                self.times[call_no] = (start, time.monotonic())

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(("max_in_flight", "expected"), [(None, 1), (1, 1), (2, 2), (3, 3)],
                         ids=["default", "one", "two", "three"])
def test_sends_overlap_up_to_max_in_flight_and_never_more(
    tmp_path: Path, shippers: list[LogShipper], max_in_flight: int | None, expected: int
) -> None:
    seqs = prefill(tmp_path, 300)
    sink = RecordingSink(max_in_flight, delay=0.02)
    shipper = start_shipper(shippers, tmp_path, sink=sink, batch_size=20)
    assert shipper.flush(10)
    assert sink.max_active == expected
    assert sorted(sink.delivered) == seqs  # each exactly once
    if expected == 1:  # serial: each send starts after the previous one ended
        assert all(b[0] >= a[1] for a, b in zip(sink.times, sink.times[1:], strict=False))
    stats = shipper.spool.stats()
    assert stats.delivered == 300 and stats.balanced


def test_batches_are_settled_in_the_order_they_were_sent(
    tmp_path: Path, shippers: list[LogShipper]
) -> None:
    prefill(tmp_path, 200)
    go = threading.Event()

    def answer(call_no: int, seqs: list[int]) -> None:
        assert go.wait(5)
        if call_no % 2 == 0:
            time.sleep(0.06)  # the older batch of each pair answers last

    sink = RecordingSink(2, answer=answer)
    shipper = start_shipper(shippers, tmp_path, sink=sink, batch_size=25)
    acks: list[list[int]] = []
    real_ack = shipper.spool.ack

    def recording_ack(seqs: Any) -> None:
        seqs = list(seqs)
        acks.append(seqs)
        real_ack(seqs)

    shipper.spool.ack = recording_ack  # type: ignore[method-assign]
    go.set()
    assert shipper.flush(10)
    assert sink.max_active == 2
    # Later batches answered first, yet the spool saw the acks oldest first.
    first_done = [end for _, end in sink.times]
    assert any(first_done[i + 1] < first_done[i] for i in range(0, len(first_done) - 1, 2))
    acked = [s for batch in acks for s in batch]
    assert acked == sorted(acked) and len(acked) == 200
    assert [batch for batch in acks if batch] == sink.calls


def test_after_a_retry_everything_in_flight_is_settled_and_the_oldest_pending_is_read_again(
    tmp_path: Path, shippers: list[LogShipper]
) -> None:
    seqs = prefill(tmp_path, 100)
    second_started = threading.Event()
    first_saw_second = []

    def answer(call_no: int, batch: list[int]) -> SendResult | None:
        if call_no == 1:
            second_started.set()
        if call_no == 0:
            first_saw_second.append(second_started.wait(5))
            return SendResult(delivered=[s for s in batch if s != batch[2]], retry=[batch[2]])
        return None

    sink = RecordingSink(2, answer=answer)
    shipper = start_shipper(shippers, tmp_path, sink=sink, batch_size=10)
    assert shipper.flush(10)
    assert first_saw_second == [True]  # the second batch was in flight with the first
    first, second, third = sink.calls[:3]
    assert first == seqs[:10] and second == seqs[10:20]
    # The second batch (delivered) is not sent again; the retried record leads the next read.
    assert third == [first[2], *seqs[20:29]]
    assert sorted(sink.delivered) == seqs  # each delivered exactly once
    assert shipper.retried == 1
    stats = shipper.spool.stats()
    assert stats.delivered == 100 and stats.balanced


# Every batch drained after a retrying one counts: its retries and its Retry-After.


def test_retries_of_every_batch_in_flight_are_counted(
    tmp_path: Path, shippers: list[LogShipper]
) -> None:
    prefill(tmp_path, 100)
    second_answered = threading.Event()

    def answer(call_no: int, batch: list[int]) -> SendResult | None:
        if call_no == 0:
            assert second_answered.wait(5)
        if call_no in (0, 1):
            if call_no == 1:
                second_answered.set()
            return SendResult(delivered=[s for s in batch if s != batch[2]], retry=[batch[2]])
        return None

    sink = RecordingSink(2, answer=answer)
    shipper = start_shipper(shippers, tmp_path, sink=sink, batch_size=10)
    assert shipper.flush(10)
    assert len(sink.delivered) == len(set(sink.delivered)) == 100
    assert shipper.retried == 2  # one item retried in each of the first two batches


def test_retry_after_of_a_batch_in_flight_is_honoured(
    tmp_path: Path, shippers: list[LogShipper]
) -> None:
    prefill(tmp_path, 40)
    second_answered = threading.Event()

    def answer(call_no: int, batch: list[int]) -> SendResult | None:
        if call_no == 0:
            assert second_answered.wait(5)
            return SendResult(delivered=batch[1:], retry=batch[:1], result="partial")
        if call_no == 1:
            second_answered.set()
            return SendResult(retry=batch, retry_after=0.6, result="throttled")
        return None

    sink = RecordingSink(2, answer=answer)
    shipper = start_shipper(shippers, tmp_path, sink=sink, batch_size=10)
    assert shipper.flush(10)
    throttled_at = sink.times[1][1]
    assert sink.times[2][0] - throttled_at >= 0.5  # backoff_max is 0.05
