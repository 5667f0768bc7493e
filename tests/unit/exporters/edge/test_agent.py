"""The agent end to end against a loopback receiver whose answers each test scripts.

Collections are driven with ``collect_once(now=...)`` and the sender with
``step()``, so the tests are deterministic and fast; the threads and the real
Prometheus are covered in tests/integration/exporters/edge.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.service.monitor import ModelMonitor
from support.edge_unit import T0, drain, make_agent


@pytest.fixture
def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    mon = ModelMonitor("fraud", version="3", registry=reg)
    mon.observe_inference(0.02)
    return reg


def test_model_kpis_reach_the_receiver_with_device_labels_and_collection_times(
    tmp_path, receiver, registry
) -> None:
    agent = make_agent(tmp_path, receiver.url, registry)
    try:
        for i in range(3):
            agent.collect_once(now=T0 + i)
        drain(agent)
    finally:
        agent.stop()
    requests = [dict(labels) for labels, _, _ in receiver.accepted
                if dict(labels)["__name__"] == "modelmon_inference_requests_total"
                and dict(labels)["outcome"] == "success"]
    assert requests and all(r["device"] == "press-7" and r["site"] == "plant-3" for r in requests)
    times = [t for labels, _, t in receiver.accepted
             if dict(labels)["__name__"] == "modelmon_inference_requests_total"
             and dict(labels)["outcome"] == "success"]
    assert times == [int((T0 + i) * 1000) for i in range(3)]
    assert not [1 for labels, _, _ in receiver.accepted if dict(labels)["__name__"].endswith("_created")]


def test_outage_backlog_is_delivered_in_order_when_the_receiver_returns(
    tmp_path, receiver, registry
) -> None:
    agent = make_agent(tmp_path, receiver.url, registry, max_samples_per_send=40)
    receiver.answers.extend([(503, "down", {})] * 5)
    try:
        for i in range(20):
            agent.collect_once(now=T0 + i)
        states = drain(agent)
        assert states.count("retry") == 5
        stats = agent.spool.stats()
        assert stats.pending == 0 and stats.delivered_items == stats.accepted_items
        assert registry.get_sample_value(
            "modelmon_edge_samples_sent_total", {"device": "press-7"}) == stats.delivered_items
        assert registry.get_sample_value("modelmon_edge_link_up", {"device": "press-7"}) == 1
        assert registry.get_sample_value(
            "modelmon_edge_send_requests_total", {"device": "press-7", "outcome": "retry"}) == 5
    finally:
        agent.stop()
    times = [t for _, t in receiver.samples("modelmon_model_info")]
    assert times == sorted(times) == [int((T0 + i) * 1000) for i in range(20)]


def test_a_refused_old_record_is_dropped_once_and_counted_and_the_rest_flows(
    tmp_path, receiver, registry
) -> None:
    bad_ms = int((T0 + 3) * 1000)

    def judge(series):
        # Like Prometheus: one sample out of bounds fails the whole request with a 400.
        if any(t == bad_ms for _, samples in series for _, t in samples):
            return (400, "out of bounds", {})
        return None

    receiver.judge = judge
    agent = make_agent(tmp_path, receiver.url, registry)
    try:
        per_collection = []
        for i in range(8):
            per_collection.append(agent.collect_once(now=T0 + i))
            drain(agent)
        dropped = registry.get_sample_value(
            "modelmon_edge_samples_dropped_total", {"device": "press-7", "reason": "too_old"})
        assert dropped == per_collection[3]
        assert agent.spool.stats().dropped_items == {"too_old": per_collection[3]}
    finally:
        agent.stop()
    times = sorted({t for _, t in receiver.samples("modelmon_model_info")})
    assert times == [int((T0 + i) * 1000) for i in range(8) if i != 3]
    # remote-write 1.0: a 4xx is never retried, so every request was sent once.
    assert len(receiver.requests) == 8


def test_other_4xx_is_dropped_by_status_not_retried(tmp_path, receiver, registry) -> None:
    receiver.answers.append((404, "not found", {}))
    agent = make_agent(tmp_path, receiver.url, registry)
    try:
        spooled = agent.collect_once(now=T0)
        assert drain(agent) == ["progress", "idle"]
        assert registry.get_sample_value(
            "modelmon_edge_samples_dropped_total", {"device": "press-7", "reason": "http_404"}
        ) == spooled
    finally:
        agent.stop()


def test_gives_up_after_max_retry_duration_when_configured(tmp_path, receiver, registry) -> None:
    receiver.judge = lambda series: (503, "down", {})
    agent = make_agent(tmp_path, receiver.url, registry, max_retry_duration="0.05s")
    try:
        spooled = agent.collect_once(now=T0)
        agent.spool.flush_buffer()
        for _ in range(100):
            step = agent.sender.step()
            if step.state == "progress":
                break
            agent._stop.wait(step.delay)
        assert agent.spool.stats().dropped_items == {"retry_exhausted": spooled}
    finally:
        agent.stop()


def test_retry_after_is_honoured_up_to_max_backoff(tmp_path, receiver, registry) -> None:
    # max_backoff is 0.02 s: a Retry-After within it is waited, a longer one is cut to it.
    receiver.answers.extend([(429, "slow down", {"Retry-After": "0.015"}),
                             (503, "maintenance", {"Retry-After": "3600"})])
    agent = make_agent(tmp_path, receiver.url, registry)
    try:
        agent.collect_once(now=T0)
        agent.spool.flush_buffer()
        throttled = agent.sender.step()
        assert throttled.state == "retry" and 0.015 <= throttled.delay <= 0.02
        maintenance = agent.sender.step()
        assert maintenance.state == "retry" and maintenance.delay == 0.02
        assert agent.sender.step().state == "progress"
    finally:
        agent.stop()


def test_live_first_sends_the_newest_collection_first(tmp_path, receiver, registry) -> None:
    agent = make_agent(tmp_path, receiver.url, registry, order="live_first", max_samples_per_send=1)
    try:
        for i in range(5):
            agent.collect_once(now=T0 + i)
        drain(agent, max_steps=2000)
    finally:
        agent.stop()
    first_request_times = {t for _, samples in receiver.requests[0]["series"] for _, t in samples}
    assert first_request_times == {int((T0 + 4) * 1000)}
    assert {t for _, t in receiver.samples("modelmon_model_info")} == {
        int((T0 + i) * 1000) for i in range(5)}


def test_backlog_survives_a_restart_of_the_agent(tmp_path, receiver, registry) -> None:
    receiver.judge = lambda series: (503, "down", {})
    agent = make_agent(tmp_path, receiver.url, registry)
    for i in range(5):
        agent.collect_once(now=T0 + i)
    agent.spool.flush_buffer()
    assert agent.sender.step().state == "retry"
    agent.stop()
    receiver.judge = None
    restarted = make_agent(tmp_path, receiver.url, CollectorRegistry())
    try:
        drain(restarted)
    finally:
        restarted.stop()
    assert {t for _, t in receiver.samples("modelmon_model_info")} == {
        int((T0 + i) * 1000) for i in range(5)}


def test_second_agent_on_the_same_spool_is_refused_with_the_field(tmp_path, receiver, registry) -> None:
    from modelmon.config import ConfigError

    agent = make_agent(tmp_path, receiver.url, registry)
    try:
        # flock is per open file description, so a second open in-process is refused too.
        with pytest.raises(ConfigError, match="edge.spool.path"):
            make_agent(tmp_path, receiver.url, CollectorRegistry())
    finally:
        agent.stop()


def test_with_a_logs_section_link_changes_are_shipped_as_events(tmp_path, receiver, registry) -> None:
    import json

    config = edge_config_from_mapping({
        "logs": {"sink": "file", "spool_dir": str(tmp_path / "log-spool"),
                 "file": {"path": str(tmp_path / "events.jsonl")}},
        "edge": {
            "device_id": "press-7", "interval": "1s", "listen": None, "collectors": [],
            "spool": {"path": str(tmp_path / "state")},
            "remote_write": {"url": receiver.url, "min_backoff": "0.01s",
                             "max_backoff": "0.02s", "backfill_rate_limit": None},
        },
    })
    agent = EdgeAgent(config, registry)
    try:
        agent.collect_once(now=T0)
        drain(agent)  # link up
        receiver.answers.extend([(503, "down", {})] * 3)
        agent.collect_once(now=T0 + 1)
        drain(agent)  # down for three sends, then back
        assert agent.logs.flush(10)
    finally:
        agent.stop()
    events = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    actions = [e["event"]["action"] for e in events]
    assert actions == ["edge-link-lost", "edge-link-restored"]
    lost, restored = events
    assert lost["model"]["edge"]["device"] == "press-7"
    assert "503" in lost["model"]["edge"]["reason"] or "down" in lost["model"]["edge"]["reason"]
    assert restored["model"]["edge"]["outage_seconds"] >= 0
    assert restored["model"]["name"] == "modelmon-edge-agent"


def test_a_bad_logs_section_in_the_edge_config_names_the_field(tmp_path) -> None:
    from modelmon.config import ConfigError

    with pytest.raises(ConfigError, match=r"logs\.spool\.max_bytes"):
        edge_config_from_mapping({
            "logs": {"spool": {"max_bytes": "lots"}},
            "edge": {"device_id": "d", "spool": {"path": str(tmp_path)},
                     "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"}},
        })
