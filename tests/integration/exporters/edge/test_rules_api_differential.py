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
expressions, and hypothesis writes 800 more from a grammar of what the
printer must normalise (Prometheus reloads each batch): each rule's ``query``
must read as Prometheus prints it.

The running agent: a Prometheus scrapes its /metrics (OpenMetrics, its
default) and its metadata API must equal the agent's; both run one small rule
file, and the agent's listener must answer its rules and alerts as Prometheus.
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
from hypothesis import strategies as st
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
        labels: {tier: edge, ratio: 1.50}
      - alert: Hot
        expr: job:temp:max > 50
        for: 2s
        # YAML scalars are label text as written: "true", "1.50", "on" (files.py)
        labels: {severity: warning, source: "{{ $labels.job }}", page: true, on: on}
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
  - name: limited
    interval: 1s
    limit: 1
    rules:
      - record: temp:limited
        expr: temp
      - record: temp:max_limited
        expr: max(temp)
      - alert: TooMany
        expr: temp > 0
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
    # the group's limit: more series or alerts than it fail the rule, as Prometheus
    assert rules["temp:limited"]["lastError"].startswith("exceeded limit of 1 with ")
    assert rules["TooMany"]["lastError"].startswith("exceeded limit of 1 with ")
    assert rules["TooMany"]["alerts"] == [] and rules["temp:max_limited"]["health"] == "ok"
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


AGENT_RULES = """
groups:
  - name: device
    rules:
      - record: mm:one
        expr: vector(1)
      - alert: Always
        expr: vector(2.5)
        labels: {severity: info}
        annotations: {summary: "value {{ $value }}"}
"""


def test_the_running_agent_answers_metadata_and_rules_as_prometheus(
        tmp_path: Path, prometheus_binary: str) -> None:
    """Metadata: a Prometheus scraping the agent. Rules: the agent's own listener
    (its rule runner wired to the query API) and a Prometheus with the same file;
    the alert's activeAt is when each started, left out."""
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
    rules_path = tmp_path / "device.rules.yml"
    rules_path.write_text(AGENT_RULES)
    config = receiver_config("1d")
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules_path)]
    config["scrape_configs"] = [{"job_name": "edge",
                                 "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]
    prom = start_prometheus(config, workdir=tmp_path / "prom", extra_args=RECEIVER_ARGS)
    agent = EdgeAgent(edge_config_from_mapping({"edge": {
        "device_id": "meta", "interval": 0.5, "listen": f"127.0.0.1:{port}", "collectors": [],
        "rules": [str(rules_path)], "evaluation_interval": "1s",
        "spool": {"path": str(tmp_path / "state")},
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

        def firing(base: str) -> dict[str, Any] | None:
            data = get(base, "/api/v1/rules")[1]["data"]
            rules = [r for g in data["groups"] for r in g["rules"]]
            return data if [r.get("state") for r in rules] == [None, "firing"] else None

        def without_active_at(data: dict[str, Any]) -> dict[str, Any]:
            for rule in data["groups"][0]["rules"]:
                for alert in rule.get("alerts", []):
                    alert.pop("activeAt")
            return normalised_rules(data)

        theirs_rules = without_active_at(wait("Prometheus's alert", lambda: firing(prom.url)))
        assert without_active_at(wait("the agent's alert", lambda: firing(url))) == theirs_rules
        mine_alerts = get(url, "/api/v1/alerts")[1]["data"]["alerts"]
        assert [a.pop("activeAt") for a in mine_alerts] and mine_alerts == \
            [{k: v for k, v in a.items() if k != "activeAt"}
             for a in get(prom.url, "/api/v1/alerts")[1]["data"]["alerts"]]
    finally:
        agent.stop()
        prom.stop()


# --- queries printed as Prometheus prints them, over a random grammar ----------
# Printing depends on syntax alone: the grammar varies what the printer must
# normalise (spacing, quoting styles and escapes, number and duration forms,
# modifiers before or after an aggregation's arguments, parentheses).
_SPACE = st.sampled_from(["", " ", "  "])
_NAME = st.sampled_from(["temp", "reqs_total", "ns:temp:rate5m"])
_LABEL = st.sampled_from(["job", "zone", "le", "instance"])
_VALUE = st.sampled_from(["cam", "", 'a"b', "a\\b", "tab\there", "ü", "x|y", ".*", "c.*",
                          "a\\.b", "new\nline"])
_DURATION = st.sampled_from(["500ms", "30s", "90s", "1m", "5m", "1h", "120m", "1h30m",
                             "3600s", "1m30s"])
_NUMBER = st.sampled_from(["1", "1.0", "1e3", "1E-3", "0x1f", ".5", "5.", "Inf", "NaN", "-2.5",
                           "0.000001", "123456789", "2.5e6", "+3", "100000", "1e21"])


def _quote(value: str, style: int) -> str:
    if style == 1 and "'" not in value:
        return "'" + value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t") + "'"
    # Raw strings without backslashes: promql-parser reads escapes in them (`a\.b` is
    # refused, `a\\b` read as a\b), Prometheus does not.
    if style == 2 and not any(c in value for c in "`\n\t\\"):
        return f"`{value}`"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") \
        .replace("\t", "\\t") + '"'


@st.composite
def _selector(draw: st.DrawFn) -> str:
    matchers = []
    for label in draw(st.lists(_LABEL, max_size=3, unique=True)):
        op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
        value = draw(_VALUE)
        if op in ("=~", "!~") and value in ("a\\b", "new\nline"):
            value = ".+"  # keep regular expressions valid in RE2 and Python
        s = draw(_SPACE)
        matchers.append(f"{label}{s}{op}{s}{_quote(value, draw(st.integers(0, 2)))}")
    text = draw(_NAME)
    if matchers:
        text += "{" + ("," + draw(_SPACE)).join(matchers) + draw(st.sampled_from(["", ","])) + "}"
    return text


@st.composite
def _leaf(draw: st.DrawFn) -> str:
    offset = draw(st.sampled_from(["", f" offset {draw(_DURATION)}"]))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(_selector()) + offset
    matrix = f"{draw(_selector())}[{draw(_DURATION)}]{offset}"
    if kind == 1:
        fn = draw(st.sampled_from(["rate", "irate", "increase", "delta", "deriv", "changes",
                                   "resets", "avg_over_time", "last_over_time"]))
        return f"{fn}({draw(_SPACE)}{matrix})"
    if kind == 2:
        return f"quantile_over_time({draw(_NUMBER)}, {matrix})"
    return f"predict_linear({matrix},{draw(_SPACE)}{draw(_NUMBER)})"


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    @st.composite
    def node(draw: st.DrawFn) -> str:
        a, s = draw(children), draw(_SPACE)
        kind = draw(st.integers(0, 6))
        if kind == 0:
            op = draw(st.sampled_from(["sum", "avg", "min", "max", "count", "group", "stddev"]))
            labels = ", ".join(draw(st.lists(_LABEL, max_size=2, unique=True)))
            how = draw(st.sampled_from(["", f"by{s}({labels})", f"without({labels})"]))
            if not how:
                return f"{op}{s}({a})"
            return f"{op} {how}{s}({a})" if draw(st.booleans()) else f"{op}({a}){s}{how}"
        if kind == 1:
            op = draw(st.sampled_from(["topk", "bottomk", "quantile"]))
            return f"{op}({draw(_NUMBER)},{s}{a})"
        if kind == 2:
            op = draw(st.sampled_from(["+", "-", "*", "/", "%", "^", "atan2", "==", ">",
                                       "<=", "!="]))
            flag = " bool" if op in ("==", ">", "<=", "!=") and draw(st.booleans()) else ""
            number = draw(st.sampled_from([draw(_NUMBER), "time()", "scalar(temp)"]))
            return f"{a}{s}{op}{flag}{s}{number}" if draw(st.booleans()) else \
                f"{number} {op}{flag} {a}"
        if kind == 3:
            b = draw(children)
            op = draw(st.sampled_from(["+", "/", ">", "==", "and", "or", "unless"]))
            labels = ",".join(draw(st.lists(_LABEL, max_size=2, unique=True)))
            matching = draw(st.sampled_from(["", f" on({labels})", f" ignoring({labels})"]))
            group = ""
            if matching and op not in ("and", "or", "unless") and draw(st.booleans()):
                group = draw(st.sampled_from([" group_left", " group_right",
                                              f" group_left({labels})"]))
            flag = " bool" if op in (">", "==") and draw(st.booleans()) else ""
            return f"{a} {op}{flag}{matching}{group} {b}"
        if kind == 4:
            return draw(st.sampled_from([f"({a})", f"-{a}", f"-({a})", f"( {a} )"]))
        if kind == 5:
            fn = draw(st.sampled_from(["abs", "ceil", "exp", "sqrt", "round", "clamp_min",
                                       "timestamp", "label_replace", "histogram_quantile"]))
            if fn == "round":
                return f"round({a}, {draw(_NUMBER)})"
            if fn == "clamp_min":
                return f"clamp_min({a},{s}{draw(_NUMBER)})"
            if fn == "label_replace":
                regex = _quote(draw(st.sampled_from(["(.*)", "x|y", "a\\.b", ""])),
                               draw(st.integers(0, 2)))
                return f'label_replace({a}, "dst", "$1", {_quote("job", 1)}, {regex})'
            if fn == "histogram_quantile":
                return f"histogram_quantile({draw(_NUMBER)}, {a})"
            return f"{fn}({a})"
        return f"absent({draw(_selector())})" if draw(st.booleans()) else \
            f"vector({draw(_NUMBER)})"

    return node()


_EXPRESSIONS = st.recursive(_leaf(), _extend, max_leaves=4)
PRINTING_EXAMPLES = 100
RULES_PER_EXAMPLE = 8


@pytest.fixture
def reloadable_prometheus(tmp_path: Path, prometheus_binary: str) -> Iterator[tuple[str, Path]]:
    path = tmp_path / "printed.rules.yml"
    path.write_text("groups: []\n")
    config = receiver_config("1d")
    config["global"]["evaluation_interval"] = "1h"  # only the printed queries matter
    config["rule_files"] = [str(path)]
    prom = start_prometheus(config, workdir=tmp_path / "prom")
    yield prom.url, path
    prom.stop()


def test_random_queries_are_printed_as_prometheus_prints_them(
        reloadable_prometheus: tuple[str, Path]) -> None:
    import yaml
    from hypothesis import HealthCheck, given, settings

    from modelmon.exporters.edge.rules import parse_rule_groups, rules_api

    prom_url, path = reloadable_prometheus

    @settings(max_examples=PRINTING_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(exprs=st.lists(_EXPRESSIONS, min_size=RULES_PER_EXAMPLE, max_size=RULES_PER_EXAMPLE))
    def check(exprs: list[str]) -> None:
        text = yaml.safe_dump({"groups": [{"name": "printed", "rules": [
            {"record": f"printed:{i}", "expr": e} for i, e in enumerate(exprs)]}]},
            allow_unicode=True)
        path.write_text(text)
        reload = requests.post(f"{prom_url}/-/reload", timeout=30)
        assert reload.status_code == 200, (reload.text, exprs)
        (group,) = get(prom_url, "/api/v1/rules")[1]["data"]["groups"]
        theirs = [r["query"] for r in group["rules"]]
        runner = EdgeRuleRunner(parse_rule_groups(text, str(path)), 1.0, {})
        (mine,) = rules_api.rules(runner, {})["groups"]
        assert [r["query"] for r in mine["rules"]] == theirs, exprs

    check()
