"""Rule files on the device: loading (refusals name file, group, rule), templates,
recording results and the alert state machine (pending, firing, keep_firing_for,
resolved) as Prometheus's rule manager runs them."""

from __future__ import annotations

import pytest

from modelmon.exporters.edge.promql import MemoryStorage, is_stale
from modelmon.exporters.edge.rules import (
    RuleFileError,
    RuleGroupEvaluator,
    load_rule_files,
    parse_rule_groups,
)
from modelmon.exporters.edge.rules.templates import TemplateData, go_float, parse_template

RULES = """
groups:
  - name: edge
    interval: 15s
    rules:
      - record: job:temp:max
        expr: max by (job) (temp)
        labels: {source: edge}
      - alert: Hot
        expr: job:temp:max > 50
        for: 30s
        keep_firing_for: 20s
        labels:
          severity: "{{ if true }}x{{ end }}"
"""


def test_refusals_name_file_group_rule_and_construct() -> None:
    with pytest.raises(RuleFileError) as err:
        parse_rule_groups(RULES, "edge.yml")
    assert "edge.yml: group 'edge': alert 'Hot'" in str(err.value)
    assert "no if/range/with" in str(err.value)
    bad = "groups: [{name: g, rules: [{alert: A, expr: 'sort(up)'}]}]"
    with pytest.raises(RuleFileError, match=r"f.yml: group 'g': rule 'A': function sort\(\)"):
        parse_rule_groups(bad, "f.yml")
    with pytest.raises(RuleFileError, match="exactly one of 'record' or 'alert'"):
        parse_rule_groups("groups: [{name: g, rules: [{expr: up}]}]", "f.yml")


def test_rules_glob_and_missing_file(tmp_path) -> None:
    (tmp_path / "a.rules.yml").write_text("groups: [{name: a, rules: [{record: r, expr: up}]}]")
    (tmp_path / "b.rules.yml").write_text("groups: [{name: b, rules: []}]")
    groups = load_rule_files(["*.rules.yml"], tmp_path)
    assert [g.name for g in groups] == ["a", "b"]
    with pytest.raises(RuleFileError, match="matches no file"):
        load_rule_files(["nope.yml"], tmp_path)


def test_templates_expand_like_prometheus() -> None:
    data = TemplateData({"instance": "dev-1", "__name__": "x"}, {"site": "berlin"}, 1234567.0)
    cases = {
        "{{ $labels.instance }} at {{ $externalLabels.site }}": "dev-1 at berlin",
        "{{ $value }}": "1.234567e+06",
        "{{ $value | humanize }}": "1.235M",
        "{{ humanize $value }}": "1.235M",
        '{{ printf "%.1f" $value }}': "1234567.0",
        "{{ .Labels.instance }} {{ .Value | humanizeDuration }}": "dev-1 14d 6h 56m 7s",
        "{{ 0.25 | humanizePercentage }}": "25%",
        "a {{- $labels.missing -}} b": "a<no value>b",
    }
    for text, want in cases.items():
        assert parse_template(text).expand(data) == want, text
    assert [go_float(v) for v in (100.0, 0.5, 1e-05, 123456.0, -2.5)] == \
        ["100", "0.5", "1e-05", "123456", "-2.5"]


def evaluate_sequence(values: list[float | None], keep_firing: str = "0s") -> list[str | None]:
    text = f"""
groups:
  - name: edge
    rules:
      - record: job:temp:max
        expr: max by (job) (temp)
      - alert: Hot
        expr: job:temp:max > 50
        for: 30s
        keep_firing_for: {keep_firing}
        labels: {{severity: warning}}
        annotations: {{summary: "{{{{ $labels.job }}}} is at {{{{ $value }}}}"}}
"""
    group = parse_rule_groups(text, "t.yml")[0]
    storage = MemoryStorage()
    evaluator = RuleGroupEvaluator(group, storage)
    states: list[str | None] = []
    for step, value in enumerate(values):
        t = step * 15_000
        if value is not None:
            storage.append([("__name__", "temp"), ("job", "cam")], t, value)
        result = evaluator.evaluate(t)
        alerts = [(dict(labels)["alertstate"], v) for labels, v in result.samples
                  if dict(labels).get("__name__") == "ALERTS" and not is_stale(v)]
        states.append(alerts[0][0] if alerts else None)
        if alerts:
            alert = result.alerts[0]
            assert alert.annotations["summary"].startswith("cam is at ")
            assert dict(alert.labels) == {"alertname": "Hot", "job": "cam",
                                          "severity": "warning"}
    return states


def test_alert_goes_pending_then_firing_after_for_then_resolves() -> None:
    # Samples every 15s: above 50 from step 1 to 4, then below.
    states = evaluate_sequence([10, 60, 60, 60, 60, 10, 10])
    assert states == [None, "pending", "pending", "firing", "firing", None, None]


def test_pending_alert_that_clears_never_fires() -> None:
    assert evaluate_sequence([60, 60, 10, 60]) == ["pending", "pending", None, "pending"]


def test_keep_firing_for_holds_a_firing_alert() -> None:
    states = evaluate_sequence([60, 60, 60, 10, 10, 10], keep_firing="20s")
    assert states == ["pending", "pending", "firing", "firing", "firing", None]


def test_recording_results_are_stored_and_end_with_a_staleness_marker() -> None:
    group = parse_rule_groups(
        "groups: [{name: g, rules: [{record: 'job:up:sum', expr: 'sum by (job) (up)', "
        "labels: {tier: edge}}]}]")[0]
    storage = MemoryStorage()
    evaluator = RuleGroupEvaluator(group, storage)
    storage.append([("__name__", "up"), ("job", "a")], 0, 1.0)
    first = evaluator.evaluate(0)
    assert first.samples == [((("__name__", "job:up:sum"), ("job", "a"), ("tier", "edge")), 1.0)]
    later = evaluator.evaluate(400_000)  # `up` is past the 5 m lookback: the result ends
    assert len(later.samples) == 1 and is_stale(later.samples[0][1])
