"""The CloudWatch Logs sink against moto's server on loopback, behind a proxy
that checks the PutLogEvents limits moto leaves out and injects the protocol's
faults (tests/support/cloudwatch_server.py): throttling, 5xx before and after
the put was applied, dropped connections, a SIGKILL while the answer is held,
sequence tokens as CloudWatch enforced them before 2023. Every event reaches
the stream exactly once, or is dead-lettered when CloudWatch refuses it for
good. With CLOUDWATCH_TEST_LOG_GROUP set (credentials and region from the AWS
environment) the fault-free test runs against that log group instead."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from prometheus_client import CollectorRegistry

from modelmon.config import ConfigError
from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.config import check_sink
from support.cloudwatch_server import CREDENTIALS, logs_proxy, moto_logs

REAL_GROUP = os.environ.get("CLOUDWATCH_TEST_LOG_GROUP")


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_logs() as url:
        yield url


def _client(endpoint: str | None) -> Any:
    if endpoint is None:
        return boto3.client("logs")
    return boto3.client("logs", endpoint_url=endpoint, region_name=CREDENTIALS["region"],
                        aws_access_key_id=CREDENTIALS["access_key_id"],
                        aws_secret_access_key=CREDENTIALS["secret_access_key"])


def _stored(client: Any, group: str) -> list[dict[str, Any]]:
    """Every event of every stream of ``group``, as (stream, timestamp, document)."""
    out = []
    for page in client.get_paginator("describe_log_streams").paginate(logGroupName=group):
        for stream in page["logStreams"]:
            token = None
            while True:
                kwargs = {"logGroupName": group, "logStreamName": stream["logStreamName"],
                          "startFromHead": True, **({"nextToken": token} if token else {})}
                got = client.get_log_events(**kwargs)
                out += [{"stream": stream["logStreamName"], "timestamp": e["timestamp"],
                         "doc": json.loads(e["message"])} for e in got["events"]]
                if not got["events"] or got["nextForwardToken"] == token:
                    break
                token = got["nextForwardToken"]
    return out


def _check_exactly_once(stored: list[dict[str, Any]], spool_id: str, expected: int) -> None:
    ids = [e["doc"]["event"]["id"] for e in stored]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert sorted(ids) == sorted(f"{spool_id}-{seq}" for seq in range(1, expected + 1)), \
        "an event is missing"


def _shipper(tmp_path: Path, endpoint: str | None, group: str, **options: Any) -> LogShipper:
    creds = CREDENTIALS if endpoint is not None else {}
    return LogShipper(sink="cloudwatch", spool_dir=tmp_path / "spool", registry=CollectorRegistry(),
                      service_name="fraud-api", log_group=group, endpoint_url=endpoint,
                      backoff_initial=0.01, backoff_max=0.05, timeout=5,
                      **{"readback_delay": 0, **creds, **options})


def _stamp(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_batches_within_the_limits_in_order_once(tmp_path, moto) -> None:
    """12,000 events in one delivery, some of 200 KB, spread over 3 days and out
    of order: the proxy refuses any request outside CloudWatch's limits."""
    group = REAL_GROUP or f"/modelmon/test-{uuid.uuid4().hex[:8]}"
    if not REAL_GROUP:  # the group exists, the stream not: ResourceAlreadyExists is fine
        _client(moto).create_log_group(logGroupName=group)
    with logs_proxy(moto) as proxy:
        endpoint = None if REAL_GROUP else proxy.url
        shipper = _shipper(tmp_path, endpoint, group, batch_size=12_000, batch_bytes=64 << 20,
                           log_stream=f"{{hostname}}-{{spool_id}}-{uuid.uuid4().hex[:6]}")
        try:
            for i in range(12_000):
                hours = -(i * 7919 % 72)  # 3 days back, shuffled
                event = {"@timestamp": _stamp(timedelta(hours=hours, seconds=-i % 60)),
                         "message": f"prediction {i}"}
                if i % 1000 == 7:
                    event["message"] = "x" * 200_000  # 5 of them: over 1 MiB together
                shipper.emit(event)
            assert shipper.flush(120)
            spool_id = shipper.spool.id
            stats = shipper.spool.stats()
            stream = shipper._sink.stream_name(spool_id)  # type: ignore[union-attr]
            puts = shipper._sink.puts  # type: ignore[union-attr]
        finally:
            shipper.close(2)
        assert stats.delivered == 12_000 and stats.dead_lettered == 0
        if not REAL_GROUP:
            assert proxy.refused == {}, proxy.refused
            assert proxy.actions["CreateLogGroup"] == 1 and proxy.actions["CreateLogStream"] == 1
            assert puts >= 4  # 3 days (24 h spans), 10,000 events, 1 MiB
    client = _client(None if REAL_GROUP else moto)
    stored = [e for e in _stored(client, group) if e["stream"] == stream]
    if REAL_GROUP:  # readable within seconds, not at once
        deadline = time.monotonic() + 60
        while len(stored) < 12_000 and time.monotonic() < deadline:
            time.sleep(2)
            stored = [e for e in _stored(client, group) if e["stream"] == stream]
    _check_exactly_once(stored, spool_id, 12_000)
    by_id = {e["doc"]["event"]["id"]: e for e in stored}
    sample = by_id[f"{spool_id}-8"]  # i == 7
    assert sample["doc"]["message"] == "x" * 200_000
    stamp = datetime.fromisoformat(sample["doc"]["@timestamp"])
    assert sample["timestamp"] == int(stamp.timestamp() * 1000)


def test_faults_lose_and_duplicate_nothing(tmp_path, moto) -> None:
    group = f"/modelmon/test-{uuid.uuid4().hex[:8]}"
    with logs_proxy(moto) as proxy:
        proxy.faults.extend(["throttle", "500", "ok", "drop", "unavailable", "ok", "drop", "500",
                             "throttle", "ok", "drop"])
        shipper = _shipper(tmp_path, proxy.url, group, batch_size=40)
        try:
            for i in range(400):
                shipper.emit({"message": f"prediction {i}", "model": {"name": "fraud"}})
                if i % 50 == 0:
                    shipper.flush(0.05)  # puts and faults interleave with the producer
            assert shipper.flush(30)
            spool_id = shipper.spool.id
            sink: Any = shipper._sink
        finally:
            shipper.close(2)
        assert proxy.faults == []
        assert shipper.retried > 0 and sink.readbacks > 0
        assert set(proxy.refused) == {"ThrottlingException", "ServiceUnavailableException",
                                      "InternalFailure"}
    _check_exactly_once(_stored(_client(moto), group), spool_id, 400)


def test_sequence_tokens_of_older_services(tmp_path, moto) -> None:
    """A restarted shipper does not know the stream's token (InvalidSequenceToken:
    the expected one is taken); a put stored whose answer was lost, not yet
    readable, sent again -> DataAlreadyAccepted: delivered, not stored twice."""
    group = f"/modelmon/test-{uuid.uuid4().hex[:8]}"
    with logs_proxy(moto, legacy_tokens=True, hide_recent=3.0) as proxy:
        proxy.faults.extend(["ok", "drop", "ok"])
        shipper = _shipper(tmp_path, proxy.url, group, batch_size=50, readback_delay="200ms")
        try:
            for i in range(200):
                shipper.emit({"message": f"prediction {i}"})
            assert shipper.flush(30)
        finally:
            shipper.close(2)
        again = _shipper(tmp_path, proxy.url, group, batch_size=50)
        try:
            for i in range(200, 300):
                again.emit({"message": f"prediction {i}"})
            assert again.flush(30)
            spool_id = again.spool.id
        finally:
            again.close(2)
        assert proxy.refused.get("DataAlreadyAcceptedException") == 1
        assert proxy.refused.get("InvalidSequenceTokenException", 0) >= 1
    _check_exactly_once(_stored(_client(moto), group), spool_id, 300)


def test_events_cloudwatch_refuses_are_dead_lettered_not_retried(tmp_path, moto) -> None:
    group = f"/modelmon/test-{uuid.uuid4().hex[:8]}"
    with logs_proxy(moto, retention_days=7) as proxy:
        shipper = _shipper(tmp_path, proxy.url, group, max_event_bytes=10_000)
        try:
            shipper.emit({"@timestamp": _stamp(timedelta(days=-15)), "message": "too old"})
            shipper.emit({"@timestamp": _stamp(timedelta(hours=3)), "message": "too new"})
            shipper.emit({"@timestamp": _stamp(timedelta(days=-10)), "message": "expired"})
            shipper.emit({"message": "y" * 20_000})
            for i in range(10):
                shipper.emit({"message": f"prediction {i}"})
            assert shipper.flush(10)
            stats = shipper.spool.stats()
            reasons = sorted(letter.reason for letter in shipper.spool.dead_letters())
        finally:
            shipper.close(2)
    assert stats.delivered == 10 and stats.dead_lettered == 4 and stats.balanced
    assert shipper.retried == 0
    assert reasons == [
        "larger than logs.cloudwatch.max_event_bytes (10000); lower logs.max_payload_chars",
        "more than 2 hours in the future: CloudWatch Logs refuses it",
        "older than 14 days: CloudWatch Logs refuses it",
        "older than the log group's retention: CloudWatch Logs refused it"]
    assert len(_stored(_client(moto), group)) == 10


def test_a_missing_group_not_to_be_created_keeps_the_events_and_says_the_fix(
        tmp_path, moto, caplog) -> None:
    group = f"/modelmon/test-{uuid.uuid4().hex[:8]}"
    shipper = _shipper(tmp_path, moto, group, create_log_group=False)
    try:
        for i in range(5):
            shipper.emit({"message": f"prediction {i}"})
        assert not shipper.flush(1.0)
        assert shipper.spool.stats().pending == 5
    finally:
        shipper.close(0.5)
    assert "create the log group or set logs.cloudwatch.create_log_group: true" in caplog.text
    _client(moto).create_log_group(logGroupName=group)  # created by its owner: shipped
    again = _shipper(tmp_path, moto, group, create_log_group=False)
    try:
        assert again.flush(10)
        spool_id = again.spool.id
    finally:
        again.close(1)
    _check_exactly_once(_stored(_client(moto), group), spool_id, 5)


_CHILD = textwrap.dedent("""
    import sys
    from prometheus_client import CollectorRegistry
    from modelmon.exporters.logs import LogShipper
    url, group, spool = sys.argv[1:4]
    shipper = LogShipper(sink="cloudwatch", spool_dir=spool, registry=CollectorRegistry(),
                         log_group=group, endpoint_url=url, access_key_id="AKIAMODELMONTEST",
                         secret_access_key="moto-secret", region="us-east-1", batch_size=30,
                         fsync="always")
    for i in range(300):
        shipper.emit({"message": f"prediction {i}"})
    print("emitted", flush=True)
    shipper.flush(60)
""")


def test_a_crash_after_the_put_before_the_acknowledgement_loses_and_duplicates_nothing(
        tmp_path, moto) -> None:
    group = f"/modelmon/test-{uuid.uuid4().hex[:8]}"
    spool = tmp_path / "spool"
    with logs_proxy(moto) as proxy:
        proxy.faults.extend(["ok", "ok", "hold"])  # the third put: stored, answer held
        child = subprocess.Popen([sys.executable, "-c", _CHILD, proxy.url, group, str(spool)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert proxy.held.wait(60), "the third put never came"
            assert child.stdout is not None
            assert child.stdout.readline() == "emitted\n"
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
            if child.stdout is not None:
                child.stdout.close()
        proxy.release.set()
        assert proxy.applied_puts == 3
        shipper = LogShipper(sink="cloudwatch", spool_dir=spool, registry=CollectorRegistry(),
                             log_group=group, endpoint_url=proxy.url, batch_size=30,
                             **CREDENTIALS)
        try:
            assert shipper.flush(30)
            spool_id = shipper.spool.id
        finally:
            shipper.close(2)
    _check_exactly_once(_stored(_client(moto), group), spool_id, 300)


@pytest.mark.parametrize("options,message", [
    ({"log_group": "bad group!"}, "logs.cloudwatch.log_group: expected a log group name"),
    ({"log_group": "g", "log_stream": "a:b"}, "logs.cloudwatch.log_stream: expected a stream"),
    ({"log_group": "g", "log_stream": "{pod}"}, "logs.cloudwatch.log_stream: only {hostname}"),
    ({"log_group": "g", "retention_days": 10}, "logs.cloudwatch.retention_days: expected one of"),
    ({"log_group": "g", "access_key_id": "A"}, "logs.cloudwatch.secret_access_key: set"),
    ({"log_group": "g", "max_event_bytes": 2 << 20}, "logs.cloudwatch.max_event_bytes"),
    ({"log_group": "g", "readback_delay": "soon"}, "logs.cloudwatch.readback_delay: expected a "
                                                   "duration"),
])
def test_bad_options_name_the_field(tmp_path, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        check_sink({"sink": "cloudwatch", "spool_dir": str(tmp_path), "cloudwatch": options})
