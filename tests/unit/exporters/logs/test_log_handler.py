"""``shipper.handler()``: stdlib log records shipped as ECS documents, redacted
on the calling thread, whatever the record holds."""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.redaction import Redactor


def _log_through(shipper: LogShipper, *lines: str, name: str = "") -> None:
    logger = logging.getLogger(name or f"modelmon.test.handler.{id(shipper)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = shipper.handler()
    logger.addHandler(handler)
    try:
        for line in lines:
            logger.info(line)
    finally:
        logger.removeHandler(handler)


def _shipped(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _file_shipper(tmp_path: Path, **kw: Any) -> LogShipper:
    """A shipper writing to ``tmp_path/events.jsonl`` (no processors unless given)."""
    options: dict[str, Any] = {"plugin_processors": False, **kw}
    return LogShipper(sink="file", path=tmp_path / "events.jsonl", spool_dir=tmp_path / "spool",
                      registry=CollectorRegistry(), **options)


def test_the_handler_ships_plain_and_other_records_alike(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    s = LogShipper(sink="file", path=out, spool_dir=tmp_path / "spool",
                   registry=CollectorRegistry(), service_name="svc")  # default: redaction
    logger = logging.getLogger("modelmon.test.handler")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = s.handler()
    logger.addHandler(handler)
    try:
        logger.info("plain %s", "jane@example.com")
        logger.info("with extra", extra={"model": {"name": "fraud"}})
        assert s.flush(10)
    finally:
        logger.removeHandler(handler)
        s.close()
    events = _shipped(out)
    assert [e["message"] for e in events] == ["plain [REDACTED:email]", "with extra"]
    assert events[1]["model"] == {"name": "fraud"}
    for e in events:
        assert e["service"]["name"] == "svc" and e["log"]["logger"] == "modelmon.test.handler"
        assert e["log"]["origin"]["function"] == "test_the_handler_ships_plain_and_other_records_alike"


def test_every_kind_of_record_is_shipped_and_redacted(tmp_path: Path) -> None:
    # Extra fields, exceptions, non-str messages, records without a pid: one
    # path for all of them, with the redactor run on each.
    out = tmp_path / "events.jsonl"
    s = _file_shipper(tmp_path, processors=[Redactor()])
    handler = s.handler()
    try:
        raise ValueError("boom for jane@example.com")
    except ValueError:
        failed = logging.LogRecord("n", 40, "/a.py", 1, "failed", (), sys.exc_info())
    extra = logging.makeLogRecord({"msg": "x", "user": "jane@example.com"})
    not_str = logging.LogRecord("n", 20, "/a.py", 1, {"card": "4111 1111 1111 1111"}, (), None)
    no_pid = logging.LogRecord("n", 20, "/a.py", 1, "m", (), None)
    no_pid.process = None
    try:
        for record in (extra, failed, not_str, no_pid):
            handler.handle(record)
        assert s.flush(10)
    finally:
        s.close()
    docs = _shipped(out)
    text = out.read_text()
    assert "jane@example.com" not in text and "4111 1111 1111 1111" not in text
    # ECS's user is an object: a string given as extra "user" ships as labels.user.
    assert docs[0]["labels"]["user"] == "[REDACTED:email]" and "user" not in docs[0]
    assert docs[1]["error"]["type"] == "ValueError"
    assert "boom for [REDACTED:email]" in docs[1]["error"]["message"]
    assert docs[2]["message"] == "{'card': '[REDACTED:card]'}"
    assert docs[3]["process"]["pid"] is None


def test_records_leave_as_the_process_that_logged_them_configured_them(tmp_path: Path) -> None:
    # Process A (fraud-api, redactor on) logs while nothing listens, then stops;
    # process B (another service, no processors) ships A's slot. A's records
    # must be the documents A made: A's service fields, A's redaction.
    spool_dir = tmp_path / "spool"
    a = LogShipper(sink="logstash_http", url="http://127.0.0.1:9", spool_dir=spool_dir,
                   registry=CollectorRegistry(), service_name="fraud-api", environment="prod",
                   processors=[Redactor()], plugin_processors=False, backoff_initial=30.0)
    _log_through(a, "card 4111 1111 1111 1111 for jane@example.com")
    a.emit({"message": "emit() path: card 4111 1111 1111 1111"})
    a.close(timeout=0)

    out = tmp_path / "events.jsonl"
    b = LogShipper(sink="file", path=out, spool_dir=spool_dir, registry=CollectorRegistry(),
                   service_name="recsys", environment="staging", plugin_processors=False)
    try:
        assert b.flush(10)
    finally:
        b.close()
    assert [(d["service"], d["message"]) for d in _shipped(out)] == [
        ({"name": "fraud-api", "environment": "prod"}, "card [REDACTED:card] for [REDACTED:email]"),
        ({"name": "fraud-api", "environment": "prod"}, "emit() path: card [REDACTED:card]"),
    ]


def test_a_record_that_cannot_be_written_is_counted_not_lost(tmp_path: Path) -> None:
    s = _file_shipper(tmp_path)
    try:
        # A file name decoded with surrogateescape: no JSON encoder takes it.
        _log_through(s, "opened " + b"caf\xe9.csv".decode("utf-8", "surrogateescape"), "fine")
        assert s.flush(10)
        stats = s.spool.stats()
    finally:
        s.close()
    assert [doc["message"] for doc in _shipped(tmp_path / "events.jsonl")] == ["fine"]
    assert stats.accepted == 2 and stats.dropped == {"error": 1} and stats.balanced


def test_the_handler_honours_filters_and_ships_every_record_from_many_threads(
    tmp_path: Path,
) -> None:
    out = tmp_path / "events.jsonl"
    s = _file_shipper(tmp_path)
    logger = logging.getLogger("modelmon.test.threads")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = s.handler()
    handler.addFilter(lambda record: "skip" not in record.getMessage())
    logger.addHandler(handler)

    def work(n: int) -> None:
        for i in range(500):
            logger.info("thread %d event %d", n, i)
            logger.info("skip %d %d", n, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert s.flush(30)
    finally:
        logger.removeHandler(handler)
        s.close()
    messages = [doc["message"] for doc in _shipped(out)]
    assert sorted(messages) == sorted(f"thread {n} event {i}" for n in range(8) for i in range(500))
