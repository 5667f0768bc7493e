"""The MUSTs of the Prometheus remote-write 1.0 specification for senders,
each checked on the wire against the loopback receiver.

https://prometheus.io/docs/specs/remote_write_spec/ (and the sender cases of
github.com/prometheus/compliance): labels sorted, unique, non-empty, with
``__name__`` and valid names; samples of a series in timestamp order; stale
markers for series that disappear, and that bit pattern used for nothing
else; snappy block format; the protocol headers, not overridable; retry 5xx
with backoff, never 4xx other than 429.
"""

from __future__ import annotations

import re
import struct
from typing import Any

import cramjam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily

from modelmon.config import ConfigError
from modelmon.exporters.edge import edge_config_from_mapping
from modelmon.exporters.edge.prompb import encode_write_request
from modelmon.exporters.edge.remote_write import RemoteWriteClient
from modelmon.exporters.service.monitor import ModelMonitor
from support.edge_unit import T0
from support.edge_unit import drain as _drain
from support.edge_unit import make_agent as _agent

STALE_NAN = 0x7FF0000000000002
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")




def _bits(value: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


def _series_of(receiver: Any) -> list[tuple[tuple[str, str], ...]]:
    return [labels for request in receiver.requests for labels, _ in request["series"]]


# -- labels ---------------------------------------------------------------------

def test_empty_label_values_are_never_sent(tmp_path, receiver) -> None:
    registry = CollectorRegistry()
    Gauge("app_queue_depth", "queue depth", ["a", "b"], registry=registry).labels("", "x").set(1)
    # framework_version and task default to "" in modelmon_model_info.
    ModelMonitor("fraud", version="3", registry=registry)
    agent = _agent(tmp_path, receiver.url, registry, labels={"site": "plant-3", "rack": ""})
    try:
        agent.collect_once(now=T0)
        _drain(agent)
    finally:
        agent.stop()
    sent = _series_of(receiver)
    assert sent
    empty = sorted({(dict(labels)["__name__"], name) for labels in sent
                    for name, value in labels if value == ""})
    assert empty == []
    queue = [dict(labels) for labels in sent if dict(labels)["__name__"] == "app_queue_depth"]
    assert queue == [{"__name__": "app_queue_depth", "b": "x", "device": "press-7", "site": "plant-3"}]
    info = [dict(labels) for labels in sent if dict(labels)["__name__"] == "modelmon_model_info"]
    assert info and all("framework_version" not in labels for labels in info)


class _OddCollector:
    """A plugin-style collector yielding names and values the exposition would escape."""

    def collect(self) -> Any:
        ok = GaugeMetricFamily("plugin_ok", "fine", labels=["kind"])
        ok.add_metric(["good"], 1.0)
        ok.add_metric(["caf\u00e9 \U0001f680"], 2.0)
        ok.add_metric(["lone \ud800 surrogate"], 3.0)
        yield ok
        bad_label = GaugeMetricFamily("plugin_bad_label", "label name with a dash", labels=["bad-name"])
        bad_label.add_metric(["x"], 1.0)
        yield bad_label
        yield GaugeMetricFamily("plugin-bad-name", "metric name with a dash", value=1.0)


def test_every_series_has_a_valid_name_sorted_unique_label_names_and_utf8_values(tmp_path, receiver) -> None:
    registry = CollectorRegistry()
    ModelMonitor("fraud", version="3", registry=registry).observe_inference(0.02)
    registry.register(_OddCollector())  # type: ignore[arg-type]
    agent = _agent(tmp_path, receiver.url, registry)
    try:
        agent.collect_once(now=T0)
        _drain(agent)
    finally:
        agent.stop()
    sent = _series_of(receiver)
    assert len(sent) > 10
    for labels in sent:
        names = [name for name, _ in labels]
        assert names == sorted(names) and len(set(names)) == len(names), labels
        assert _METRIC_NAME.match(dict(labels).get("__name__", "")), labels
        assert all(_LABEL_NAME.match(name) for name in names), labels
        assert all(value for _, value in labels), labels
    kinds = sorted(dict(labels)["kind"] for labels in sent if dict(labels)["__name__"] == "plugin_ok")
    # Valid UTF-8 on the wire: a lone surrogate becomes U+FFFD, the rest passes unchanged.
    assert kinds == ["caf\u00e9 \U0001f680", "good", "lone \ufffd surrogate"]
    assert not [labels for labels in sent if dict(labels)["__name__"].startswith("plugin_bad")
                or dict(labels)["__name__"].startswith("plugin-")]


class _Twin:
    def collect(self) -> Any:
        twin = GaugeMetricFamily("app_twin", "the same series from two places", labels=["k", "e"])
        twin.add_metric(["v", ""], 1.0)
        twin.add_metric(["v", "x"], 2.0)
        yield twin


def test_a_series_is_sent_once_per_collection_even_from_two_sources(tmp_path, receiver) -> None:
    registry = CollectorRegistry()
    registry.register(_Twin())  # type: ignore[arg-type]
    Gauge("app_twin", "the same series again", ["k"], registry=registry).labels("v").set(3.0)
    agent = _agent(tmp_path, receiver.url, registry, labels={})
    try:
        agent.collect_once(now=T0)
        _drain(agent)
    finally:
        agent.stop()
    twins = [(dict(labels), v) for labels, v, _ in receiver.accepted
             if dict(labels)["__name__"] == "app_twin"]
    # {k="v", e=""} is {k="v"} on the wire: the first one collected is kept.
    assert twins == [({"__name__": "app_twin", "device": "press-7", "k": "v"}, 1.0),
                     ({"__name__": "app_twin", "device": "press-7", "e": "x", "k": "v"}, 2.0)]


# -- samples --------------------------------------------------------------------

def test_a_series_that_disappears_gets_a_staleness_marker_at_the_next_collection(
    tmp_path, receiver
) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("app_workers", "workers", ["pool"], registry=registry)
    gauge.labels("a").set(1)
    gauge.labels("b").set(2)
    agent = _agent(tmp_path, receiver.url, registry)
    try:
        agent.collect_once(now=T0)
        gauge.remove("b")
        agent.collect_once(now=T0 + 1)
        agent.collect_once(now=T0 + 2)
        _drain(agent)
    finally:
        agent.stop()

    def samples(pool: str) -> list[tuple[int, int]]:
        return [(_bits(v), t) for labels, v, t in receiver.accepted
                if dict(labels)["__name__"] == "app_workers" and dict(labels)["pool"] == pool]

    ms = [int((T0 + i) * 1000) for i in range(3)]
    assert samples("a") == [(_bits(1.0), ms[0]), (_bits(1.0), ms[1]), (_bits(1.0), ms[2])]
    # Marked stale once, at the first collection where it is gone, then never again.
    assert samples("b") == [(_bits(2.0), ms[0]), (STALE_NAN, ms[1])]


def test_a_nan_value_is_sent_as_prometheus_normal_nan_never_as_the_stale_marker(tmp_path, receiver) -> None:
    registry = CollectorRegistry()
    stale_bits = struct.unpack("<d", struct.pack("<Q", STALE_NAN))[0]
    Gauge("app_nan", "a NaN", ["how"], registry=registry).labels("plain").set(float("nan"))
    Gauge("app_stale_bits", "the stale bit pattern", registry=registry).set(stale_bits)
    agent = _agent(tmp_path, receiver.url, registry)
    try:
        agent.collect_once(now=T0)
        _drain(agent)
    finally:
        agent.stop()
    values = {dict(labels)["__name__"]: _bits(v) for labels, v, _ in receiver.accepted}
    assert values["app_nan"] == values["app_stale_bits"] == 0x7FF8000000000001


def test_samples_of_each_series_are_in_timestamp_order_within_every_request(tmp_path, receiver) -> None:
    registry = CollectorRegistry()
    ModelMonitor("fraud", version="3", registry=registry).observe_inference(0.02)
    agent = _agent(tmp_path, receiver.url, registry, max_samples_per_send=10_000)
    receiver.answers.extend([(503, "down", {})] * 2)
    try:
        for i in range(6):
            agent.collect_once(now=T0 + i)
        agent.collect_once(now=T0 + 3.5)  # the wall clock stepped back
        _drain(agent)
    finally:
        agent.stop()
    assert len(receiver.requests) == 3
    for request in receiver.requests:
        times: dict[tuple[tuple[str, str], ...], list[int]] = {}
        for labels, samples in request["series"]:
            times.setdefault(labels, []).extend(t for _, t in samples)
        assert all(ts == sorted(ts) and len(set(ts)) == len(ts) for ts in times.values())


# -- the request ----------------------------------------------------------------

def test_body_is_snappy_block_format_with_the_protocol_headers(receiver) -> None:
    body = encode_write_request([((("__name__", "up"), ("job", "x")), [(1.0, 1_700_000_000_000)])])
    captured: list[bytes] = []

    class Spy(RemoteWriteClient):
        def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, str | None]:
            captured.append(body)
            return super()._post(body, headers)

    assert Spy(receiver.url).send(body).outcome == "success"
    assert not captured[0].startswith(b"\xff\x06\x00\x00sNaPpY")  # not the framed format
    assert bytes(cramjam.snappy.decompress_raw(captured[0])) == body
    headers = receiver.requests[0]["headers"]
    assert headers["Content-Encoding"] == "snappy"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert headers["User-Agent"].startswith("modelmon-edge/")


@pytest.mark.parametrize("header,why", [
    ("Content-Encoding", "set by modelmon"), ("content-type", "set by modelmon"),
    ("X-Prometheus-Remote-Write-Version", "set by modelmon"), ("User-Agent", "set by modelmon"),
    ("Host", "HTTP client"), ("Content-Length", "HTTP client"), ("Connection", "HTTP client"),
    ("Authorization", "basic_auth or authorization"),
])
def test_the_protocol_headers_cannot_be_overridden(tmp_path, header, why) -> None:
    with pytest.raises(ConfigError, match=rf"remote_write\.headers\.{header}: .*{why}"):
        edge_config_from_mapping({"edge": {
            "device_id": "d", "spool": {"path": str(tmp_path)},
            "remote_write": {"url": "http://127.0.0.1:9/api/v1/write", "headers": {header: "x"}},
        }})
    with pytest.raises(ValueError, match=header):
        RemoteWriteClient("http://127.0.0.1:9/api/v1/write", headers={header: "x"})


def test_other_headers_are_sent(receiver) -> None:
    body = encode_write_request([((("__name__", "up"),), [(1.0, 1_700_000_000_000)])])
    RemoteWriteClient(receiver.url, headers={"X-Scope-OrgID": "tenant-1"}).send(body)
    assert receiver.requests[0]["headers"]["X-Scope-OrgID"] == "tenant-1"


# -- answers --------------------------------------------------------------------

@pytest.mark.parametrize("status,message", [
    (400, "out of order sample"),
    (400, "invalid label"),
    (413, "too large"),
    (422, "unprocessable"),
    (404, "not found"),  # 401 and 403 are held instead (test_remote_write_auth.py)
])
def test_a_4xx_batch_is_dropped_once_never_retried_nor_split(tmp_path, receiver, status, message) -> None:
    registry = CollectorRegistry()
    ModelMonitor("fraud", version="3", registry=registry).observe_inference(0.02)
    receiver.judge = lambda series: (status, message, {})
    agent = _agent(tmp_path, receiver.url, registry, max_samples_per_send=10_000)
    try:
        spooled = sum(agent.collect_once(now=T0 + i) for i in range(8))
        _drain(agent)
        stats = agent.spool.stats()
        assert stats.pending == 0 and sum(stats.dropped_items.values()) == spooled
        dropped = sum(registry.get_sample_value(
            "modelmon_edge_samples_dropped_total", {"device": "press-7", "reason": reason}) or 0
            for reason in stats.dropped_items)
        assert dropped == spooled
    finally:
        agent.stop()
    sent = [t for request in receiver.requests for _, samples in request["series"] for _, t in samples]
    assert len(receiver.requests) == 1 and len(sent) == spooled  # each sample sent exactly once


@pytest.mark.parametrize("message", ["out of order sample", "too old sample", "duplicate sample for timestamp",
                                     "internal error"])
def test_a_5xx_is_retried_whatever_its_body_says(tmp_path, receiver, message) -> None:
    registry = CollectorRegistry()
    ModelMonitor("fraud", version="3", registry=registry).observe_inference(0.02)
    receiver.answers.extend([(500, message, {})] * 3)
    agent = _agent(tmp_path, receiver.url, registry)
    try:
        spooled = agent.collect_once(now=T0)
        states = _drain(agent)
        stats = agent.spool.stats()
        assert states.count("retry") == 3
        assert stats.dropped_items == {} and stats.delivered_items == spooled
    finally:
        agent.stop()


def test_a_too_old_answer_as_500_is_bounded_by_max_retry_duration(tmp_path, receiver) -> None:
    """Prometheus 2.42 answers a sample older than its out-of-order window with
    a 500: retried (the spec's MUST), the age bound ends it, later data flows."""
    registry = CollectorRegistry()
    ModelMonitor("fraud", version="3", registry=registry).observe_inference(0.02)
    old_ms = int(T0 * 1000)

    def prometheus_2_42(series):
        if any(t <= old_ms for _, samples in series for _, t in samples):
            return (500, "too old sample", {})
        return None

    receiver.judge = prometheus_2_42
    agent = _agent(tmp_path, receiver.url, registry, max_retry_duration="0.05s")
    try:
        old = agent.collect_once(now=T0)
        agent.spool.flush_buffer()
        states = []
        for _ in range(500):
            step = agent.sender.step()
            states.append(step.state)
            if step.state != "retry":
                break
            agent._stop.wait(step.delay)
        assert states[0] == "retry" and states[-1] != "retry"
        assert agent.spool.stats().dropped_items == {"retry_exhausted": old}
        new = agent.collect_once(now=T0 + 1)
        _drain(agent)
        stats = agent.spool.stats()
        assert stats.delivered_items == new and stats.pending == 0
    finally:
        agent.stop()


# -- any input ------------------------------------------------------------------

_any_name = st.text(min_size=0, max_size=12)
_any_value = st.one_of(st.text(max_size=12), st.sampled_from(["", "\ud800", "a\udfffb", "\x00"]))


class _AnyCollector:
    def __init__(self, families: list[tuple[str, list[tuple[dict[str, str], float]]]]) -> None:
        self.families = families

    def collect(self) -> Any:
        from prometheus_client.metrics_core import Metric

        for name, samples in self.families:
            family = Metric("placeholder", "any", "gauge")
            family.name = name  # as a collector built without the client's checks would
            for labels, value in samples:
                family.add_sample(name, labels, value)
            yield family


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(
    st.one_of(_any_name, st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)),
    st.lists(st.tuples(st.dictionaries(st.one_of(_any_name, st.sampled_from(["__name__", "device"])),
                                       _any_value, max_size=4),
                       st.floats(allow_nan=True, allow_infinity=True)), max_size=3)),
    max_size=5), st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), _any_value,
                                 max_size=3))
def test_whatever_collectors_yield_every_series_sent_meets_the_spec(families, extra) -> None:
    from modelmon.exporters.edge.prompb import decode_write_request
    from modelmon.exporters.edge.remote_write import decompress
    from modelmon.exporters.edge.stream import DeviceView, SampleStream

    stream = SampleStream(DeviceView([_AnyCollector(families)], {"device": "d", **extra}), 7)
    for ts in (1_000.0, 2_000.0):
        for payload, count in stream.collect(ts):
            series = decode_write_request(decompress(payload))
            assert len(series) == count
            for labels, samples in series:
                names = [name for name, _ in labels]
                assert names == sorted(names) and len(set(names)) == len(names)
                assert _METRIC_NAME.match(dict(labels)["__name__"])
                assert all(_LABEL_NAME.match(name) for name in names)
                assert all(value != "" for _, value in labels)
                assert [t for _, t in samples] == [int(ts * 1000)]
