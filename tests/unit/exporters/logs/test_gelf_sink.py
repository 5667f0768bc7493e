"""The Graylog GELF sink against a loopback GELF input that implements the wire
contract (support.gelf_server): every event arrives once per transport, ECS
fields become additional fields, large UDP messages are chunked and
reassembled, and the input refuses what the specification forbids. With
GRAYLOG_GELF_URL and GRAYLOG_API_URL set, the end-to-end case of that URL's
transport runs against that Graylog, read back through its search API
(support.gelf_destination)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelmon.config import ConfigError
from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.config import check_sink
from modelmon.exporters.logs.gelf import CHUNK_MAGIC, GelfSink, to_gelf, udp_chunks
from modelmon.exporters.logs.sinks import ItemBatch
from support.gelf_destination import Graylog, LocalGelf, graylog_from_environment
from support.gelf_server import GelfInput, problem, serve_http, serve_tcp, serve_udp

N = 120


def _event(i: int, big: str = "") -> dict[str, Any]:
    return {"message": f"prediction {i}{big}", "log": {"level": "warning"},
            "event": {"action": "prediction", "dataset": "modelmon.inference"},
            "model": {"name": "fraud", "version": "3", "score": i / 1000, "flags": ["a", "b"],
                      "shadow": False}}


def _ship(tmp_path: Path, events: list[dict[str, Any]], **options: Any) -> LogShipper:
    shipper = LogShipper(sink="gelf", spool_dir=tmp_path / "spool", registry=CollectorRegistry(),
                         service_name="fraud-api", backoff_initial=0.01, backoff_max=0.05,
                         **options)
    for event in events:
        shipper.emit(event)
    return shipper


def _check_once(sink: GelfInput, shipper: LogShipper, n: int) -> None:
    assert sink.wait_for(n)
    ids = sink.ids()
    assert len(ids) == n and len(set(ids)) == n, "each event exactly once"
    assert sink.rejected == []
    assert ids == [f"{shipper.spool.id}-{seq}" for seq in range(1, n + 1)]


def test_ecs_fields_become_gelf_fields() -> None:
    doc = {"@timestamp": "2026-12-01T10:00:00.250Z", "message": "model loaded",
           "host": {"hostname": "edge-7", "ip": ["10.0.0.1"]}, "log": {"level": "error"},
           "service": {"name": "fraud-api"}, "model": {"name": "fraud", "score": 0.5},
           "id": "x", "bad key": 1}
    message = to_gelf(doc, "spool-1-7")
    assert problem(message) is None
    assert message == {"version": "1.1", "host": "edge-7", "short_message": "model loaded",
                       "timestamp": dt.datetime(2026, 12, 1, 10, 0, 0, 250_000,
                                                tzinfo=dt.UTC).timestamp(), "level": 3, "_host.ip": '["10.0.0.1"]',
                       "_service.name": "fraud-api", "_model.name": "fraud",
                       "_model.score": 0.5, "__id": "x", "_event.id": "spool-1-7"}


@pytest.fixture(params=["tcp", "udp", "http"])
def destination(request: pytest.FixtureRequest) -> Iterator[LocalGelf | Graylog]:
    """The loopback input of the transport, or the real Graylog when GRAYLOG_GELF_URL
    names this transport (docs/on-premises.md, "Testing against the real service")."""
    try:
        graylog = graylog_from_environment()
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)  # half a configuration is a mistake, not a skip
    chosen = graylog if graylog is not None and graylog.transport == request.param else (
        LocalGelf(request.param))
    chosen.start()
    yield chosen
    chosen.stop()


def test_end_to_end_every_event_arrives_once(tmp_path, destination) -> None:
    marker = f"modelmon-test-{uuid.uuid4().hex[:12]}"  # a real Graylog keeps earlier runs
    events = [_event(i) for i in range(N)]
    for event in events:
        event["message"] += f" {marker}"
    shipper = _ship(tmp_path, events, **destination.options)
    try:
        assert shipper.flush(30)
        arrived = destination.arrivals(marker, shipper.spool.id, N)
    finally:
        shipper.close(1)
    expected = {f"{shipper.spool.id}-{seq}": 1 for seq in range(1, N + 1)}
    assert dict(arrived) == expected, (
        f"at the {destination.kind}: missing {sorted(expected.keys() - arrived.keys())[:5]}, "
        f"duplicated {sorted(k for k, n in arrived.items() if n > 1)[:5]}")
    if isinstance(destination, LocalGelf):  # the message as the wire carried it
        assert destination.sink is not None
        first = destination.sink.messages[0]
        assert first["short_message"] == f"prediction 0 {marker}" and first["level"] == 4
        assert first["_service.name"] == "fraud-api" and first["_model.flags"] == '["a","b"]'
        if destination.transport == "tcp":  # null-byte framing keeps the spool's order
            assert destination.sink.ids() == list(expected)


def test_over_tcp_a_listener_down_is_retried_until_it_is_up(tmp_path) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there yet
    shipper = _ship(tmp_path, [_event(i) for i in range(10)], transport="tcp", port=port)
    stop = None
    try:
        assert not shipper.flush(0.3)
        assert shipper.retried > 0
        sink, _, stop = serve_tcp(port)
        assert shipper.flush(10)
        _check_once(sink, shipper, 10)
    finally:
        shipper.close(1)
        if stop is not None:
            stop.set()


def test_over_udp_large_messages_are_chunked_and_reassembled(tmp_path) -> None:
    sink, port, stop = serve_udp()
    # Random text does not compress: a few kB per message, several chunks each.
    import random

    rng = random.Random(7)
    big = " " + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(5000))
    events = [_event(i, big if i % 3 == 0 else "") for i in range(60)]
    shipper = _ship(tmp_path, events, transport="udp", port=port, chunk_size=1420)
    try:
        assert shipper.flush(10)
        _check_once(sink, shipper, 60)
        assert sink.chunks_seen >= 20 * 3
        assert sink.messages[0]["short_message"] == "prediction 0" + big
    finally:
        shipper.close(1)
        stop.set()


def test_over_udp_a_message_beyond_128_chunks_is_dead_lettered_not_cut() -> None:
    import os

    huge = os.urandom(200_000).hex()  # gzip leaves ~200 kB: over 128 chunks of 1420 bytes
    items = ItemBatch("s-", [(1, json.dumps(_event(1, huge)).encode()),
                             (2, json.dumps(_event(2)).encode())])
    sink, port, stop = serve_udp()
    gelf = GelfSink(transport="udp", port=port, chunk_size=1420)
    try:
        result = gelf.send(items)
        assert result.delivered == [2]
        assert [(reason.split(":")[0], seqs) for reason, seqs in result.dead.items()] == [
            ("too large for GELF UDP", [1])]
        assert sink.wait_for(1) and sink.ids() == ["s-2"]
    finally:
        gelf.close()
        stop.set()


def test_chunks_carry_the_header_graylog_reassembles() -> None:
    chunks = udp_chunks(b"x" * 3000, 1420, b"12345678")
    assert [c[:12] for c in chunks] == [CHUNK_MAGIC + b"12345678" + bytes((n, 3))
                                        for n in range(3)]
    assert b"".join(c[12:] for c in chunks) == b"x" * 3000
    with pytest.raises(ValueError, match="GELF allows 128"):
        udp_chunks(b"x" * 200_000, 1420, b"12345678")


@pytest.fixture
def http_input() -> Iterator[tuple[GelfInput, str]]:
    sink, server = serve_http()
    yield sink, f"http://127.0.0.1:{server.server_port}/gelf"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("bulk", [False, True])
def test_over_http_answers_are_honoured(tmp_path, http_input, bulk) -> None:
    sink, url = http_input
    sink.http_status.extend([503, 429])  # refused twice, then accepted
    shipper = _ship(tmp_path, [_event(i) for i in range(N)], transport="http", url=url,
                    bulk=bulk)
    try:
        assert shipper.flush(10)
        _check_once(sink, shipper, N)
        assert shipper.retried >= 2
    finally:
        shipper.close(1)


def test_over_http_a_refused_message_is_dead_lettered_alone(http_input) -> None:
    sink, url = http_input
    items = ItemBatch("s-", [(seq, json.dumps(_event(seq)).encode()) for seq in range(1, 9)])
    sink.http_status.append(400)  # the bulk request: refused as a whole, then halves pass
    gelf = GelfSink(transport="http", url=url, bulk=True)
    try:
        result = gelf.send(items)
    finally:
        gelf.close()
    assert sorted(result.delivered) == list(range(1, 9)) and not result.dead
    assert sorted(sink.ids()) == sorted(f"s-{seq}" for seq in range(1, 9))


@pytest.mark.parametrize("raw,reason", [
    ({"version": "1.0", "host": "h", "short_message": "m"}, "version must be 1.1"),
    ({"version": "1.1", "host": "", "short_message": "m"}, "host must be a non-empty string"),
    ({"version": "1.1", "host": "h"}, "short_message must be a non-empty string"),
    ({"version": "1.1", "host": "h", "short_message": "m", "_id": "x"}, "invalid field name"),
    ({"version": "1.1", "host": "h", "short_message": "m", "_a": {"b": 1}}, "must be a string"),
    ({"version": "1.1", "host": "h", "short_message": "m", "level": 9}, "level must be"),
    ({"version": "1.1", "host": "h", "short_message": "m", "extra": 1}, "invalid field name"),
])
def test_the_test_input_refuses_malformed_messages(raw, reason) -> None:
    sink, port, stop = serve_udp()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(gzip.compress(json.dumps(raw).encode()), ("127.0.0.1", port))
    try:
        assert sink.wait_for(1)
        assert sink.messages == [] and reason in sink.rejected[0]
    finally:
        stop.set()


def test_bad_options_name_the_field(tmp_path) -> None:
    with pytest.raises(ConfigError, match="logs.gelf.url: required for transport http"):
        check_sink({"sink": "gelf", "spool_dir": str(tmp_path), "gelf": {"transport": "http"}})
    with pytest.raises(ConfigError, match="logs.gelf.tls: GELF over UDP has no TLS"):
        check_sink({"sink": "gelf", "spool_dir": str(tmp_path),
                    "gelf": {"transport": "udp", "tls": True}})
    with pytest.raises(ConfigError, match="logs.gelf.transport: expected tcp, udp or http"):
        check_sink({"sink": "gelf", "spool_dir": str(tmp_path), "gelf": {"transport": "amqp"}})


def test_over_tls_a_client_certificate_is_presented_and_its_absence_is_never_delivered(
        tmp_path) -> None:
    from support.tls_certs import make_pki, server_context

    pki = make_pki(tmp_path / "pki")
    sink, port, stop = serve_tcp(tls=server_context(pki))
    items = ItemBatch("s-", [(seq, json.dumps(_event(seq)).encode()) for seq in (1, 2, 3)])
    without = GelfSink(transport="tcp", port=port, tls=True, ca_file=str(pki.ca),
                       host="localhost")
    with_cert = GelfSink(transport="tcp", port=port, tls=True, ca_file=str(pki.ca),
                         host="localhost", cert_file=str(pki.client_cert),
                         key_file=str(pki.client_key))
    try:
        refused = without.send(items)
        assert refused.delivered == [] and refused.retry == [1, 2, 3]
        assert with_cert.send(items).delivered == [1, 2, 3]
        assert sink.wait_for(4)  # one refused handshake, three messages
        assert sink.ids() == ["s-1", "s-2", "s-3"]
        assert [r for r in sink.rejected if r.startswith("handshake refused")]
    finally:
        without.close()
        with_cert.close()
        stop.set()
