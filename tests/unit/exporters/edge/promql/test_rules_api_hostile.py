"""The device's rules, alerts and metric metadata endpoints under hostile or odd
requests: Prometheus's JSON answer or its bad_data error, never a 500; what
2.42 ignores is ignored; the 2.44 rule filters; and the text helpers the
answers are printed with (Go's float, time and quoting layouts)."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmon.exporters.edge.metric_metadata import (
    FORGET_AFTER_COLLECTIONS,
    MetricMetadata,
)
from modelmon.exporters.edge.rules import parse_rule_groups
from modelmon.exporters.edge.rules.float_text import exponent
from modelmon.exporters.edge.rules.query_api import QueryAPI
from modelmon.exporters.edge.rules.query_text import go_quote, model_duration
from modelmon.exporters.edge.rules.rules_api import ZERO_TIME, rfc3339
from modelmon.exporters.edge.rules.runner import EdgeRuleRunner

RULES = """
groups:
  - name: device
    rules:
      - record: job:temp:max
        expr: max by (job) (temp)
      - alert: Hot
        expr: job:temp:max > 50
        for: 2s
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.job }} at {{ $value }}"}
  - name: another
    interval: 5s
    rules:
      - alert: Cold
        expr: temp < 0
"""


def make_api(evaluated: bool = True) -> QueryAPI:
    runner = EdgeRuleRunner(parse_rule_groups(RULES, "/etc/modelmon/device.rules.yml"), 1.0, {})
    for t in range(0, 5_000, 500):
        runner.storage.append((("__name__", "temp"), ("job", "cam")), t, 60.0)
    if evaluated:
        for t in range(0, 5_000, 1000):
            runner.evaluate_due(t)
    metadata = MetricMetadata()
    metadata.update([("reqs", ("counter", "Requests.", "")),
                     ("temp_celsius", ("gauge", "Temperature.", "celsius"))])
    return QueryAPI(runner.storage, runner.lock, lambda env, start: [b"metrics"], rules=runner,
                    metric_metadata=metadata)


def call(api: QueryAPI, path: str, query: str | list[tuple[str, str]] = "",
         method: str = "GET", headers: list[tuple[str, str]] | None = None
         ) -> tuple[int, dict[str, Any]]:
    status: list[str] = []
    qs = query if isinstance(query, str) else urlencode(query)
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "QUERY_STRING": qs,
               "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO(b"")}

    def start_response(s: str, sent: list[tuple[str, str]]) -> None:
        status.append(s)
        if headers is not None:
            headers.extend(sent)

    out = b"".join(api(environ, start_response))
    return int(status[0].split()[0]), json.loads(out)


def bad_data(message: str) -> dict[str, str]:
    return {"status": "error", "errorType": "bad_data", "error": message}


@pytest.mark.parametrize("kind", ["alerts", "recording", "x" * 10_000, "alert\x00", "ALERTS"])
def test_a_type_other_than_alert_or_record_is_bad_data(kind: str) -> None:
    code, body = call(make_api(), "/api/v1/rules", [("type", kind)])
    assert code == 400
    assert body == bad_data(f'invalid parameter "type": not supported value '
                            f'"{kind.lower()[:80]}"')


def test_type_filters_rules_case_insensitively_and_keeps_every_group() -> None:
    api = make_api()
    code, body = call(api, "/api/v1/rules", [("type", "Record")])
    assert code == 200
    # 2.42 keeps a group the type filter emptied.
    assert [(g["name"], [r["name"] for r in g["rules"]]) for g in body["data"]["groups"]] == \
        [("another", []), ("device", ["job:temp:max"])]
    _, body = call(api, "/api/v1/rules", [("type", "alert")])
    assert [r["name"] for g in body["data"]["groups"] for r in g["rules"]] == ["Cold", "Hot"]


def test_unknown_parameters_and_an_empty_type_are_ignored() -> None:
    api = make_api()
    plain = call(api, "/api/v1/rules")
    assert plain[0] == 200
    for query in ([("type", "")], [("match[]", "up"), ("limit", "x"), ("foo", "bar")],
                  "%%%&&&==", "type"):
        assert call(api, "/api/v1/rules", query) == plain, query
    assert call(api, "/api/v1/alerts", [("type", "bogus"), ("x", "y")]) == \
        call(api, "/api/v1/alerts")


@pytest.mark.parametrize("path", ["/api/v1/rules", "/api/v1/alerts", "/api/v1/metadata"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "X" * 500])
def test_only_get_is_routed(path: str, method: str) -> None:
    headers: list[tuple[str, str]] = []
    code, body = call(make_api(), path, method=method, headers=headers)
    assert code == 405 and ("Allow", "GET, OPTIONS") in headers
    assert body["errorType"] == "bad_data" and len(body["error"]) < 100


@pytest.mark.parametrize("path", ["/api/v1/rules", "/api/v1/alerts", "/api/v1/metadata"])
def test_options_is_an_empty_204_as_prometheus_answers_it(path: str) -> None:
    status: list[str] = []
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "OPTIONS", "QUERY_STRING": "type=x"}
    assert b"".join(make_api()(environ, lambda s, headers: status.append(s))) == b""
    assert status == ["204 No Content"]


def test_parameters_that_are_not_utf8_read_as_prometheus_reads_them() -> None:
    api = make_api()
    # Prometheus: invalid bytes become U+FFFD in its error; an unknown metric; not a number.
    assert call(api, "/api/v1/rules", "type=%ff%fe") == \
        (400, bad_data('invalid parameter "type": not supported value "\ufffd\ufffd"'))
    assert call(api, "/api/v1/metadata", "metric=%ff")[1]["data"] == {}
    assert call(api, "/api/v1/metadata", "limit=%ff") == (400, bad_data("limit must be a number"))
    assert call(api, "/api/v1/alerts", "x=%ff")[0] == 200


def test_rule_filters_as_prometheus_2_44() -> None:
    api = make_api()

    def shown(query: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
        code, body = call(api, "/api/v1/rules", query)
        assert code == 200
        return [(g["name"], [r["name"] for r in g["rules"]]) for g in body["data"]["groups"]]

    assert shown([("rule_name[]", "Hot"), ("rule_name[]", "Cold")]) == \
        [("another", ["Cold"]), ("device", ["Hot"])]
    assert shown([("rule_group[]", "device"), ("type", "record")]) == \
        [("device", ["job:temp:max"])]
    assert shown([("file[]", "/etc/modelmon/device.rules.yml"), ("rule_name[]", "Hot")]) == \
        [("device", ["Hot"])]
    # A group the filters empty is dropped; nothing matching is an empty list.
    assert shown([("rule_name[]", "Hot"), ("type", "record")]) == []
    assert shown([("file[]", "/elsewhere.yml")]) == []
    assert shown([("rule_name[]", "")]) == []


def test_before_the_first_evaluation_health_is_unknown_and_times_are_zero() -> None:
    code, body = call(make_api(evaluated=False), "/api/v1/rules")
    assert code == 200
    for group in body["data"]["groups"]:
        assert group["lastEvaluation"] == ZERO_TIME and group["evaluationTime"] == 0
        for rule in group["rules"]:
            assert (rule["health"], rule["lastEvaluation"]) == ("unknown", ZERO_TIME)
            assert "lastError" not in rule
    assert call(make_api(evaluated=False), "/api/v1/alerts") == \
        (200, {"status": "success", "data": {"alerts": []}})


def test_an_alert_as_prometheus_shows_it() -> None:
    code, body = call(make_api(), "/api/v1/alerts")
    assert code == 200
    assert body["data"]["alerts"] == [{
        "labels": {"alertname": "Hot", "job": "cam", "severity": "warning"},
        "annotations": {"summary": "cam at 60"}, "state": "firing",
        "activeAt": "1970-01-01T00:00:00Z", "value": "6e+01"}]
    _, body = call(make_api(), "/api/v1/rules")
    device = body["data"]["groups"][1]
    assert device["interval"] == 1 and device["limit"] == 0
    hot = device["rules"][1]
    assert {k: hot[k] for k in ("state", "name", "query", "duration", "keepFiringFor",
                                "labels", "annotations", "health", "type")} == {
        "state": "firing", "name": "Hot", "query": "job:temp:max > 50", "duration": 2,
        "keepFiringFor": 0, "labels": {"severity": "warning"},
        "annotations": {"summary": "{{ $labels.job }} at {{ $value }}"}, "health": "ok",
        "type": "alerting"}
    assert "labels" not in device["rules"][0]  # a recording rule without labels: omitted


def test_without_rules_or_metadata_the_answers_are_empty() -> None:
    import threading

    from modelmon.exporters.edge.promql import MemoryStorage

    api = QueryAPI(MemoryStorage(), threading.Lock(), lambda env, start: [b""])
    assert call(api, "/api/v1/rules") == (200, {"status": "success", "data": {"groups": []}})
    assert call(api, "/api/v1/alerts") == (200, {"status": "success", "data": {"alerts": []}})
    assert call(api, "/api/v1/metadata") == (200, {"status": "success", "data": {}})


@pytest.mark.parametrize("limit", ["x", "1.5", " 1", "1 ", "0x10", "1e3", "9" * 30, "--1", "1_0"])
def test_a_limit_that_is_not_a_go_integer_is_bad_data(limit: str) -> None:
    assert call(make_api(), "/api/v1/metadata", [("limit", limit)]) == \
        (400, bad_data("limit must be a number"))


def test_metadata_limit_and_metric() -> None:
    api = make_api()
    everything = {"reqs": [{"type": "counter", "help": "Requests.", "unit": ""}],
                  "temp_celsius": [{"type": "gauge", "help": "Temperature.", "unit": "celsius"}]}
    for limit, expected in (("-1", 2), ("+1", 1), ("0", 0), ("-9223372036854775808", 2),
                            ("", 2), ("9223372036854775807", 2)):
        code, body = call(api, "/api/v1/metadata", [("limit", limit)])
        assert code == 200 and len(body["data"]) == expected, limit
    assert call(api, "/api/v1/metadata")[1]["data"] == everything
    assert call(api, "/api/v1/metadata", [("metric", "reqs")])[1]["data"] == \
        {"reqs": everything["reqs"]}
    assert call(api, "/api/v1/metadata", [("metric", "reqs_total")])[1]["data"] == {}
    # The first value of a repeated parameter, as Go's FormValue.
    assert call(api, "/api/v1/metadata", [("limit", "1"), ("limit", "x")])[0] == 200


def test_metadata_is_bounded_and_forgets_families_no_longer_collected() -> None:
    store = MetricMetadata(max_families=3)
    store.update([(f"m{i}", ("gauge", "", "")) for i in range(5)])
    assert list(store.snapshot()) == ["m0", "m1", "m2"]
    store.update([("m0", ("counter", "now a counter", ""))])
    assert store.snapshot()["m0"] == ("counter", "now a counter", "")
    for _ in range(FORGET_AFTER_COLLECTIONS):
        store.update([("m0", ("counter", "now a counter", ""))])
    assert list(store.snapshot()) == ["m0"]
    store.update([("m9", ("gauge", "", ""))])  # room again
    assert list(store.snapshot()) == ["m0", "m9"]


def test_text_layouts_are_go_s() -> None:
    assert [model_duration(ms) for ms in (0, 1, 1500, 90_000, 3_600_000, 86_400_000 * 14,
                                          86_400_000 * 15, 365 * 86_400_000, 86_400_000 * 366)] \
        == ["0s", "1ms", "1s500ms", "1m30s", "1h", "2w", "15d", "1y", "366d"]
    assert go_quote('a"b\\c\n\t\x01\x7fü\u200b') == '"a\\"b\\\\c\\n\\t\\x01\\x7fü\\u200b"'
    assert [rfc3339(ns) for ns in (0, 1_500_000_000, 1_000_000_001, 1_796_163_866_453_000_000)] \
        == ["1970-01-01T00:00:00Z", "1970-01-01T00:00:01.5Z", "1970-01-01T00:00:01.000000001Z",
            "2026-12-01T22:24:26.453Z"]
    assert [exponent(v) for v in (61.5, 1.0, 0.0, -0.0, 1e-7, 123456789.0, float("nan"),
                                  float("-inf"), 5e-324)] == \
        ["6.15e+01", "1e+00", "0e+00", "-0e+00", "1e-07", "1.23456789e+08", "NaN", "-Inf",
         "5e-324"]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_exponent_text_reads_back_to_the_same_float(v: float) -> None:
    text = exponent(v)
    assert float(text) == v
    mantissa, _, power = text.partition("e")
    assert power[0] in "+-" and len(power) >= 3
    assert mantissa.lstrip("-")[0] != "0" or v == 0
