"""Plain log records are written straight to JSON (``ecs_record``); the bytes
must be exactly those of the general path (ECS dict -> processors -> orjson)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import LogShipper, correlation, ecs
from modelmon.exporters.logs.redaction import Redactor

PII = ["jane.doe@example.com", "+1 415-555-0100", "4111 1111 1111 1111", "10.1.2.3", "::1"]


def shipper_with(tmp: Path, processors: list[Any] | None) -> LogShipper:
    return LogShipper(sink="file", spool_dir=tmp, registry=CollectorRegistry(),
                      service_name="svc", environment="prod",
                      processors=processors or [], plugin_processors=False)


@pytest.fixture(scope="module", params=["none", "redact", "redact_ips"])
def shipper(request: pytest.FixtureRequest) -> Iterator[LogShipper]:
    processors = {"none": None, "redact": [Redactor()],
                  "redact_ips": [Redactor(ip_addresses=True)]}[request.param]
    with tempfile.TemporaryDirectory() as tmp:
        s = shipper_with(Path(tmp), processors)
        yield s
        s.close()


def general_path(shipper: LogShipper, record: logging.LogRecord) -> bytes | None:
    return shipper._serialize(ecs.from_log_record(record, shipper.base_fields))


def record_of(message: str, args: tuple[Any, ...], name: str, level: tuple[int, str],
              func: str | None, thread: str | None, created: float) -> logging.LogRecord:
    record = logging.LogRecord(name, level[0], "/srv/app/model.py", 42, message, args, None,
                               func=func)
    record.levelname = level[1]
    record.threadName = thread
    record.created = created
    return record


texts = st.one_of(st.text(max_size=80), st.sampled_from(PII).map(lambda p: f"user {p} paid"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    message=texts,
    with_arg=st.booleans(),
    name=st.text(min_size=1, max_size=20),
    level=st.sampled_from([(10, "DEBUG"), (20, "INFO"), (30, "WARNING"), (40, "ERROR"),
                           (50, "CRITICAL"), (25, "NOTICE"), (5, "Level 5")]),
    func=st.one_of(st.none(), st.text(max_size=10)),
    thread=st.one_of(st.none(), st.text(max_size=10)),
    created=st.floats(min_value=0, max_value=4e9),
    trace=st.one_of(st.none(), st.text(min_size=1, max_size=40)),
)
def test_plain_records_serialize_to_the_general_paths_bytes(
    shipper: LogShipper, message: str, with_arg: bool, name: str, level: tuple[int, str],
    func: str | None, thread: str | None, created: float, trace: str | None,
) -> None:
    serializer = shipper.record_serializer()
    assert serializer is not None
    args: tuple[Any, ...] = (7,) if with_arg else ()
    record = record_of(message.replace("%", "%%") + (" %d" if with_arg else ""), args, name,
                       level, func, thread, created)
    assert serializer.is_plain(record)
    token = correlation.set_current(trace)
    try:
        fast = serializer.serialize(record, correlation.current())
        assert fast == general_path(shipper, record)
    finally:
        correlation.end_request(token)


def test_records_the_template_does_not_cover_take_the_general_path(tmp_path: Path) -> None:
    s = shipper_with(tmp_path / "a", [Redactor()])
    try:
        serializer = s.record_serializer()
        assert serializer is not None
        extra = logging.makeLogRecord({"msg": "x", "user": "jane@example.com"})
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            failed = logging.LogRecord("n", 40, "/a.py", 1, "failed", (), sys.exc_info())
        not_str = logging.LogRecord("n", 20, "/a.py", 1, {"k": 1}, (), None)
        no_pid = logging.LogRecord("n", 20, "/a.py", 1, "m", (), None)
        no_pid.process = None
        for record in (extra, failed, not_str, no_pid):
            assert not serializer.is_plain(record)
    finally:
        s.close()


def test_processors_that_may_touch_any_field_switch_the_template_off(tmp_path: Path) -> None:
    for n, processors in enumerate([[Redactor(drop_fields=["log.logger"])],
                                    [Redactor(hash_fields=["process.pid"])],
                                    [lambda ev: ev],
                                    [Redactor(), Redactor()]]):
        s = shipper_with(tmp_path / str(n), processors)
        try:
            assert s.record_serializer() is None
        finally:
            s.close()


def test_the_handler_ships_plain_and_other_records_alike(tmp_path: Path) -> None:
    import json

    out = tmp_path / "events.jsonl"
    s = LogShipper(sink="file", path=out, spool_dir=tmp_path / "spool",
                   registry=CollectorRegistry(), service_name="svc")  # default: redaction
    logger = logging.getLogger("modelmon.test.ecs_record")
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
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["message"] for e in events] == ["plain [REDACTED:email]", "with extra"]
    assert events[1]["model"] == {"name": "fraud"}
    for e in events:
        assert e["service"]["name"] == "svc" and e["log"]["logger"] == "modelmon.test.ecs_record"
        assert e["log"]["origin"]["function"] == "test_the_handler_ships_plain_and_other_records_alike"


def _log_through(shipper: LogShipper, *lines: str) -> None:
    logger = logging.getLogger(f"modelmon.test.compact.{id(shipper)}")
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
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]


def _file_shipper(tmp_path: Path) -> LogShipper:
    """A shipper without processors writing to ``tmp_path/events.jsonl``."""
    return LogShipper(sink="file", path=tmp_path / "events.jsonl", spool_dir=tmp_path / "spool",
                      registry=CollectorRegistry(), plugin_processors=False)


def test_plain_records_are_spooled_compact_and_shipped_as_their_documents(
    tmp_path: Path,
) -> None:
    # The caller spools the record's fields; the worker renders them (and redacts).
    dead_end = LogShipper(sink="logstash_http", url="http://127.0.0.1:9", spool_dir=tmp_path,
                          registry=CollectorRegistry(), service_name="svc",
                          backoff_initial=30.0)
    _log_through(dead_end, "card 4111 1111 1111 1111 declined")
    dead_end.spool.flush_buffer()
    [(_, spooled)] = dead_end.spool.peek_payloads(10)
    dead_end.close(timeout=0)
    assert spooled.startswith(b"[") and b"4111 1111 1111 1111" in spooled

    out = tmp_path / "events.jsonl"
    shipper = LogShipper(sink="file", path=out, spool_dir=tmp_path, registry=CollectorRegistry(),
                         service_name="svc")
    try:
        assert shipper.flush(10)
    finally:
        shipper.close()
    [doc] = _shipped(out)
    assert doc["message"] == "card [REDACTED:card] declined"
    assert doc["service"]["name"] == "svc" and doc["log"]["level"] == "info"


def test_records_spooled_compact_are_rendered_as_the_logging_process_configured_them(
    tmp_path: Path,
) -> None:
    # Process A (fraud-api, built-in redactor) logs while nothing listens, then dies;
    # process B (another service, no processors) ships A's slot. A's record must be
    # the document A would have sent: A's service fields, A's redaction.
    spool_dir = tmp_path / "spool"
    a = LogShipper(sink="logstash_http", url="http://127.0.0.1:9", spool_dir=spool_dir,
                   registry=CollectorRegistry(), service_name="fraud-api", environment="prod",
                   processors=[Redactor()], plugin_processors=False, backoff_initial=30.0)
    _log_through(a, "card 4111 1111 1111 1111 for jane@example.com")
    a.emit({"message": "emit() path: card 4111 1111 1111 1111"})
    a.spool.flush_buffer()
    assert [p[:1] for _, p in a.spool.peek_payloads(10)] == [b"[", b"{"]
    a.close(timeout=0)

    out = tmp_path / "events.jsonl"
    b = LogShipper(sink="file", path=out, spool_dir=spool_dir, registry=CollectorRegistry(),
                   service_name="recsys", environment="staging", plugin_processors=False)
    try:
        assert b.flush(10)
    finally:
        b.close()
    docs = _shipped(out)
    assert [(d["service"], d["message"]) for d in docs] == [
        ({"name": "fraud-api", "environment": "prod"}, "card [REDACTED:card] for [REDACTED:email]"),
        ({"name": "fraud-api", "environment": "prod"}, "emit() path: card [REDACTED:card]"),
    ]


def test_a_compact_record_whose_render_profile_is_gone_is_dead_lettered(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    a = LogShipper(sink="logstash_http", url="http://127.0.0.1:9", spool_dir=spool_dir,
                   registry=CollectorRegistry(), plugin_processors=False, backoff_initial=30.0)
    _log_through(a, "first", "second")
    a.close(timeout=0)
    [profile] = (spool_dir / "slot-0").glob("render-*.json")
    profile.unlink()

    b = LogShipper(sink="file", path=tmp_path / "events.jsonl", spool_dir=spool_dir,
                   registry=CollectorRegistry(), service_name="other", plugin_processors=False)
    try:
        assert b.flush(10)
        dead = b.spool.dead_letters()
        stats = b.spool.stats()
    finally:
        b.close()
    assert len(dead) == 2 and all("render-" in d.reason for d in dead)
    assert stats.dead_lettered == 2 and stats.balanced


def test_a_profile_that_cannot_be_read_for_now_holds_its_records_back(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    a = LogShipper(sink="logstash_http", url="http://127.0.0.1:9", spool_dir=spool_dir,
                   registry=CollectorRegistry(), service_name="a", plugin_processors=False,
                   backoff_initial=30.0)
    _log_through(a, "first", "second")
    a.close(timeout=0)
    [profile] = (spool_dir / "slot-0").glob("render-*.json")
    saved = profile.read_bytes()
    profile.unlink()
    profile.mkdir()  # reading it fails with an error other than "not found"

    b = LogShipper(sink="file", path=tmp_path / "events.jsonl", spool_dir=spool_dir,
                   registry=CollectorRegistry(), service_name="b", plugin_processors=False)
    try:
        assert not b.flush(1.5)  # held back, not dead-lettered
        assert b.spool.stats().dead_lettered == 0
        profile.rmdir()
        profile.write_bytes(saved)
        assert b.flush(10)
        stats = b.spool.stats()
    finally:
        b.close()
    docs = _shipped(tmp_path / "events.jsonl")
    assert [(d["service"]["name"], d["message"]) for d in docs] == [("a", "first"), ("a", "second")]
    assert stats.delivered == 2 and stats.dead_lettered == 0 and stats.balanced


def test_a_compact_record_that_cannot_be_rendered_is_dead_lettered_without_blocking(
    tmp_path: Path,
) -> None:
    out = tmp_path / "events.jsonl"
    s = _file_shipper(tmp_path)
    try:
        for payload in (b"[1, 2]", b"", b'{"message": "after"}', b"[not json"):
            assert s.emit_serialized(payload) is not None
        assert s.flush(10)
        dead = s.spool.dead_letters()
        stats = s.spool.stats()
    finally:
        s.close()
    assert [d.payload for d in dead] == [b"[1, 2]", b"", b"[not json"]
    assert ["cannot render the compact log record" in d.reason for d in dead] == [
        True, False, True]
    assert [doc["message"] for doc in _shipped(out)] == ["after"]
    assert stats.dead_lettered == 3 and stats.delivered == 1 and stats.balanced


def test_a_plain_record_that_cannot_be_written_is_counted_not_lost(tmp_path: Path) -> None:
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
    import threading

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
