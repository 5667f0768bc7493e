"""The agent's ``/api/v1/rules``, ``/api/v1/alerts`` and ``/api/v1/metadata``
answer as a real Prometheus 2.42 does, field by field.

Rules: the same rule files run in Prometheus and in the agent's rule runner
over the same samples (remote-written ahead of time with future timestamps,
as in ``test_rules_differential``), the runner evaluating at the very
timestamps Prometheus evaluated at (its ``eval_tick`` recording). Once every
alert has settled (one firing, one pending, one kept firing by
``keep_firing_for``, one never active, one rule in error), both answers are
compared after normalising only what must differ: how long an evaluation took
and when it ran (wall clock), and ``activeAt``/``keepFiringSince`` cut to
milliseconds (Prometheus evaluates at a nanosecond instant, its samples and the
device's window keep milliseconds). A second file prints a wide set of
expressions: each rule's ``query`` must read as Prometheus prints it.

Metadata: a Prometheus scrapes the running agent's /metrics (OpenMetrics, its
default), and its metadata API must equal the agent's.
"""

from __future__ import annotations

import copy
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
from prometheus_client.core import GaugeHistogramMetricFamily, UnknownMetricFamily
from prometheus_client.metrics_core import Metric

from modelmon.demo.processes import free_port, start_prometheus
from modelmon.exporters.edge.http_server import serve
from modelmon.exporters.edge.prompb import LabelSet, SeriesEncoder
from modelmon.exporters.edge.remote_write import compress
from modelmon.exporters.edge.rules import load_rule_files
from modelmon.exporters.edge.rules.query_api import QueryAPI
from modelmon.exporters.edge.rules.runner import EdgeRuleRunner
from support.edge_harness import RECEIVER_ARGS, receiver_config
from support.rules_differential import raw_samples, write
from support.waiting import wait

pytestmark = pytest.mark.integration

EDGE_RULES = """
groups:
  - name: edge
    interval: 1s
    rules:
      - record: eval_tick
        expr: vector(1)
      - record: job:temp:max
        expr: max  by(job)(temp)
        labels: {tier: edge}
      - alert: Hot
        expr: job:temp:max > 50
        for: 2s
        labels: {severity: warning, source: "{{ $labels.job }}"}
        annotations:
          summary: "{{ $labels.job }} is at {{ $value | humanize }}"
          runbook: https://example.com/hot
      - alert: SlowBurn
        expr: temp{job="mic"}>=20
        for: 1h
        annotations: {description: "{{ $value }} on {{ $labels.job }}"}
      - alert: Sticky
        expr: flag > 0
        keep_firing_for: 1h
      - alert: Quiet
        expr: temp > 1000
        for: 5m
      - alert: Collide
        expr: temp
        labels: {job: same}
      - record: temp:collide
        expr: temp
        labels: {job: same}
"""
# Group "printed" sorts before "edge" only by its file's name: Prometheus sorts
# groups by file, then name. Every expression runs on the device.
PRINTED_EXPRS = [
    'sum without(instance)(rate(reqs_total[1m]))',
    'histogram_quantile(0.9, sum by(le, job)(rate(lat_bucket[5m])))',
    'temp{job=~"c.*", job!="x"} offset 1m',
    '-temp + 1e-06',
    'temp > bool 3',
    'temp * on(job) group_left(tier) info_metric',
    'temp / ignoring(tier) group_right info_metric',
    'temp and on() vector(1)',
    r'label_replace(temp, "dst", "$1", "job", "(.*)\t")',
    'topk(1, temp)',
    'quantile(0.5, temp)',
    'avg_over_time(temp[1h30m])',
    'absent(nothing{job="x"})',
    'clamp(temp, 0, 100)',
    'round(temp, 0.5)',
    'scalar(sum(temp)) * time() - 1e7',
    '(temp) unless temp{job="mic"}',
    'abs(temp) >= 1.5e6',
    'delta(temp[90s])',
    'sum by(job)(temp) / ignoring() count(temp)',
    'sum without() (temp)',
    'max by () (temp)',
    '{__name__="temp", job="cam"}',
    '0x10 + temp',
    'changes(temp[5m]) > 0 or vector(0)',
    'bottomk(1, temp) == bool on(job) temp',
    'increase(reqs_total[2m]) / rate(reqs_total[1m] offset 30s)',
    'ln(temp) + exp(temp) - sqrt(temp) * 2.5',
    r'temp{job="a\"b"}',
    'temp{job="ü", tier!~"x|y"}',
    'predict_linear(temp[10m], 3600) < -Inf',
    'quantile_over_time(0.95, temp[5m]) != NaN',
    'timestamp(temp) % 60 ^ 2',
    'clamp_min(temp, 1) atan2 clamp_max(temp, 2)',
]
PRINTED_RULES = {"groups": [
    {"name": "printed", "interval": "2s", "limit": 100,
     "rules": [{"record": f"printed:{i}", "expr": e} for i, e in enumerate(PRINTED_EXPRS)]},
    {"name": "empty", "rules": []},
]}
START_DELAY_MS = 3_000
SCENARIO_MS = 20_000


def scenario(start: int) -> dict[LabelSet, list[tuple[int, float]]]:
    """temp{job=cam} hot from 1 s on (Hot fires 2 s later); temp{job=mic} at 25
    (SlowBurn stays pending for its hour); flag 1 for 3 s, then 0 (Sticky fired,
    then keep_firing_for holds it)."""
    series: dict[LabelSet, list[tuple[int, float]]] = defaultdict(list)
    for at in range(0, SCENARIO_MS, 500):
        t = start + at
        series[(("__name__", "temp"), ("job", "cam"))].append((t, 61.5 if at >= 1_000 else 10.0))
        series[(("__name__", "temp"), ("job", "mic"))].append((t, 25.0))
        series[(("__name__", "flag"), ("job", "cam"))].append((t, 1.0 if at < 3_000 else 0.0))
    return series


_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


def _timing(node: dict[str, Any], where: str) -> None:
    """Check then blank what differs by nature: wall-clock times and durations."""
    assert isinstance(node["evaluationTime"], (int, float)) and node["evaluationTime"] >= 0, where
    assert _RFC3339.match(node["lastEvaluation"]), (where, node["lastEvaluation"])
    assert not node["lastEvaluation"].startswith("0001-"), (where, "never evaluated")
    node["evaluationTime"] = node["lastEvaluation"] = "<timing>"


def _ms(text: str) -> str:
    """An RFC 3339 time cut to milliseconds (without trailing zeros), as Go prints it."""
    m = re.match(r"^(.*?:\d\d)(?:\.(\d+))?Z$", text)
    assert m is not None, text
    fraction = (m.group(2) or "")[:3].rstrip("0")
    return m.group(1) + (f".{fraction}" if fraction else "") + "Z"


def _alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for alert in alerts:
        for key in ("activeAt", "keepFiringSince"):
            if key in alert:
                alert[key] = _ms(alert[key])
    return sorted(alerts, key=lambda a: sorted(a["labels"].items()))


def normalised_rules(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for group in data["groups"]:
        _timing(group, group["name"])
        for rule in group["rules"]:
            _timing(rule, rule["name"])
            if rule["type"] == "alerting":
                rule["alerts"] = _alerts(rule["alerts"])
    return data


def get(url: str, path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    r = requests.get(f"{url}{path}", params=params, timeout=10)
    return r.status_code, r.json()


def _status(method: str, url: str) -> int:
    return requests.request(method, url, timeout=10).status_code


@pytest.fixture
def rule_files(tmp_path: Path) -> list[Path]:
    import yaml

    printed = tmp_path / "1-printed.rules.yml"
    printed.write_text(yaml.safe_dump(PRINTED_RULES, allow_unicode=True))
    edge = tmp_path / "2-edge.rules.yml"
    edge.write_text(EDGE_RULES)
    return [edge, printed]


@pytest.fixture
def agent_api(tmp_path: Path) -> Iterator[tuple[EdgeRuleRunner, str]]:
    """The rule runner of the agent behind its query API, on a loopback port."""
    runner = EdgeRuleRunner([], 1.0, {})
    port = free_port()
    server = serve("127.0.0.1", port, QueryAPI(runner.storage, runner.lock,
                                               lambda env, start: [b""], rules=runner))
    yield runner, f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def test_rules_and_alerts_answer_as_prometheus(
        tmp_path: Path, prometheus_binary: str, rule_files: list[Path],
        agent_api: tuple[EdgeRuleRunner, str]) -> None:
    config = receiver_config("1d")
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(p) for p in rule_files]
    prom = start_prometheus(config, workdir=tmp_path / "prom", extra_args=RECEIVER_ARGS)
    try:
        prom.wait_for("eval_tick", timeout=30)
        start = (int(time.time() * 1000) // 1000) * 1000 + START_DELAY_MS
        series = scenario(start)
        write(prom.url, series)
        while time.time() * 1000 < start + 7_000:  # Hot fired at ~3 s, Sticky held at 3 s
            time.sleep(0.2)
        theirs: dict[str, Any] = {}
        for name, path, params in (("rules", "/api/v1/rules", {}),
                                   ("alerts", "/api/v1/alerts", {}),
                                   ("alert rules", "/api/v1/rules", {"type": "alert"}),
                                   ("record rules", "/api/v1/rules", {"type": "RECORD"}),
                                   ("unknown parameter", "/api/v1/rules", {"match[]": "x"}),
                                   ("bad type", "/api/v1/rules", {"type": "alerts"}),
                                   ("not UTF-8", "/api/v1/rules", {"type": b"al\xffert"}),
                                   ("rules again", "/api/v1/rules", {})):
            theirs[name] = (path, params, get(prom.url, path, **params))
        methods = {(method, path): _status(method, f"{prom.url}{path}")
                   for method in ("POST", "PUT", "DELETE", "OPTIONS")
                   for path in ("/api/v1/rules", "/api/v1/alerts", "/api/v1/metadata")}
        asked_ms = int(time.time() * 1000)
        time.sleep(0.5)
        ticks = sorted(t for t in raw_samples(prom.url, "eval_tick", asked_ms + 1_000)
                       if t <= asked_ms)
    finally:
        prom.stop()
    assert len(ticks) >= 10, ticks

    runner, url = agent_api
    runner.replace_groups(load_rule_files([str(p) for p in rule_files]), 1.0)
    encoder = SeriesEncoder()
    runner.observe([compress(b"".join(encoder.encode(labels, v, t) for t, v in samples))
                    for labels, samples in series.items()])
    for t in ticks:  # from Prometheus's first evaluation, so activeAt agrees
        runner.evaluate_due(t)

    assert {(m, path): _status(m, f"{url}{path}") for m, path in methods} == methods
    assert theirs["rules"][2][0] == 200
    settled = normalised_rules(theirs["rules"][2][1]["data"])
    assert normalised_rules(theirs["rules again"][2][1]["data"]) == settled, \
        "Prometheus's answer changed: the scenario had not settled"
    for name, (path, params, (status, body)) in theirs.items():
        mine_status, mine = get(url, path, **params)
        assert mine_status == status, (name, mine)
        if status != 200:
            assert mine == body, name
            continue
        assert mine["status"] == body["status"] == "success"
        if path == "/api/v1/alerts":
            assert _alerts(mine["data"]["alerts"]) == _alerts(body["data"]["alerts"]), name
            continue
        normalised = normalised_rules(mine["data"])
        expected = normalised_rules(body["data"])
        assert [g["name"] for g in normalised["groups"]] == \
            [g["name"] for g in expected["groups"]], name
        for group, their_group in zip(normalised["groups"], expected["groups"], strict=True):
            for rule, their_rule in zip(group["rules"], their_group["rules"], strict=True):
                assert rule == their_rule, (name, group["name"])
            assert group == their_group, (name, group["name"])

    # What the comparison covered (so that it cannot pass on empty answers).
    rules = {r["name"]: r for g in settled["groups"] for r in g["rules"]}
    assert rules["Hot"]["state"] == "firing" and rules["SlowBurn"]["state"] == "pending"
    assert "keepFiringSince" in rules["Sticky"]["alerts"][0]
    assert rules["Quiet"]["state"] == "inactive" and rules["Quiet"]["health"] == "ok"
    assert rules["Collide"]["health"] == rules["temp:collide"]["health"] == "err"
    assert rules["Hot"]["alerts"][0]["annotations"]["summary"] == "cam is at 61.5"
    assert len([r for r in rules if r.startswith("printed:")]) == len(PRINTED_EXPRS)


class _Families:
    """Families of every type prometheus_client knows that the built-in metrics do not make."""

    def collect(self) -> Iterator[Metric]:
        yield UnknownMetricFamily("mm_test_raw", 'Raw "quoted" \\ text, ü.', value=3)
        histogram = GaugeHistogramMetricFamily("mm_test_queue_bytes", "Queue sizes.",
                                               unit="bytes")
        histogram.add_metric([], [("1024", 2), ("+Inf", 5)], 9000)
        yield histogram


def test_metadata_answers_as_prometheus_scraping_the_agent(
        tmp_path: Path, prometheus_binary: str) -> None:
    from modelmon.exporters.edge.agent import EdgeAgent
    from modelmon.exporters.edge.config import edge_config_from_mapping

    registry = CollectorRegistry()
    Counter("mm_test_requests", "Requests served.", ["route"], registry=registry).labels("/a").inc()
    Counter("mm_test_unused", "A labelled counter without children.", ["x"], registry=registry)
    Gauge("mm_test_temperature_celsius", "Board temperature.", unit="celsius",
          registry=registry).set(41)
    Histogram("mm_test_latency_seconds", "Latency.", unit="seconds", registry=registry).observe(1)
    Summary("mm_test_payload_bytes", "Payload sizes.", registry=registry).observe(10)
    Info("mm_test_build", "Build information.", registry=registry).info({"version": "1"})
    Enum("mm_test_mode", "Mode.", states=["a", "b"], registry=registry).state("b")
    registry.register(_Families())

    port = free_port()
    config = receiver_config("1d")
    config["global"]["scrape_interval"] = "1s"
    config["scrape_configs"] = [{"job_name": "edge",
                                 "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]
    prom = start_prometheus(config, workdir=tmp_path / "prom", extra_args=RECEIVER_ARGS)
    agent = EdgeAgent(edge_config_from_mapping({"edge": {
        "device_id": "meta", "interval": 0.5, "listen": f"127.0.0.1:{port}", "collectors": [],
        "query_window": "5m", "spool": {"path": str(tmp_path / "state")},
        "remote_write": {"url": f"{prom.url}/api/v1/write"}}}), registry)
    agent.start()
    url = f"http://127.0.0.1:{port}"
    try:
        def same() -> tuple[dict[str, Any], dict[str, Any]] | None:
            theirs, mine = get(prom.url, "/api/v1/metadata")[1], get(url, "/api/v1/metadata")[1]
            ready = "mm_test_requests" in theirs["data"] and theirs == mine
            return (theirs, mine) if ready else None

        try:
            theirs, _ = wait("the same metadata from Prometheus and the agent", same, 20)
        except AssertionError:
            theirs, mine = get(prom.url, "/api/v1/metadata")[1], get(url, "/api/v1/metadata")[1]
            assert mine == theirs  # shows the difference
            raise
        assert {"counter", "gauge", "histogram", "summary", "info", "stateset", "unknown",
                "gaugehistogram"} <= {m[0]["type"] for m in theirs["data"].values()}
        assert theirs["data"]["mm_test_temperature_celsius"] == [
            {"type": "gauge", "help": "Board temperature.", "unit": "celsius"}]
        for params in ({"metric": "mm_test_requests"}, {"metric": "nothing"},
                       {"metric": "mm_test_raw", "limit": "5"}, {"limit": "0"},
                       {"limit": "-1"}, {"limit": "x"}, {"limit": "1.5"}, {"other": "1"}):
            assert get(url, "/api/v1/metadata", **params) == \
                get(prom.url, "/api/v1/metadata", **params), params
        # Prometheus picks `limit` families in its map's order: only how many is comparable.
        status, limited = get(url, "/api/v1/metadata", limit="3")
        assert status == 200 and len(limited["data"]) == 3
        assert len(get(prom.url, "/api/v1/metadata", limit="3")[1]["data"]) == 3
    finally:
        agent.stop()
        prom.stop()
