"""The generated edge rule file (alert_rules/modelmon.edge.rules.yml): what it
holds comes from the catalog's ``on_device`` KPIs and the thresholds config,
and the edge agent loads it unchanged."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from modelmon.alerting import alert_names, render_all, rule_groups, thresholds_from_mapping
from modelmon.alerting.device import EVALUATED_ON, reach_seconds
from modelmon.alerting.device import rule_groups as device_groups
from modelmon.alerting.promql import kpi_of, metric_names
from modelmon.alerting.render import EDGE_RULES_FILE
from modelmon.catalog import CATALOG
from modelmon.exporters.edge.rules import AlertingRule, load_rule_files
from modelmon.exporters.edge.rules.runner import EdgeRuleRunner
from modelmon.kpi import KPI
from modelmon.thresholds import ThresholdsConfig

COMMITTED = Path(__file__).resolve().parents[3] / "alert_rules" / EDGE_RULES_FILE


DEFAULTS = ThresholdsConfig()


def _rules(config: ThresholdsConfig = DEFAULTS, catalog: tuple[KPI, ...] = CATALOG
           ) -> list[dict[str, Any]]:
    return [r for g in device_groups(config, catalog) for r in g["rules"]]


def test_the_committed_file_loads_in_the_edge_agent_without_refusal() -> None:
    # The path `edge.rules` takes: every expression compiled by the device's evaluator.
    runner = EdgeRuleRunner.from_files([str(COMMITTED)], None, 60.0, {"device": "d"})
    (evaluator,) = runner.evaluators
    written = yaml.safe_load(COMMITTED.read_text())["groups"][0]
    assert [r.name for r in evaluator.group.rules] == [
        r.get("record") or r.get("alert") for r in written["rules"]]
    assert evaluator.group.interval_ms == 60_000
    # The window the device keeps: the longest range (1h) + the 5 m lookback + a minute.
    assert runner.window_ms == 3_600_000 + 300_000 + 60_000
    # And it evaluates over an empty window without an error.
    assert evaluator.evaluate(1_700_000_000_000).alerts == []


def test_every_alert_is_a_cloud_alert_marked_as_evaluated_on_the_device() -> None:
    cloud = set(alert_names(rule_groups(ThresholdsConfig())))
    alerts = [r for r in _rules() if "alert" in r]
    assert {a["alert"] for a in alerts} <= cloud  # one runbook section each, shared
    assert all(a["labels"].items() >= EVALUATED_ON.items() for a in alerts)
    assert {a["alert"] for a in alerts} >= {
        "ModelErrorBudgetBurningFast", "ModelLatencyBudgetBurningFast",
        "ModelDataQualityViolations", "ModelFeatureDrift", "ModelmonCollectorFailing",
        "EdgeDeviceOffline", "EdgeBacklogGrowing", "EdgeBacklogNearLimit", "EdgeSamplesDropped",
        "EdgeConfigStale"}
    recorded = [r["record"] for r in _rules() if "record" in r]
    assert recorded and all(name.startswith("device:") for name in recorded)


def test_every_aggregation_keeps_the_device_label() -> None:
    for rule in _rules():
        def visit(node: promql_parser.Expr, rule: dict = rule) -> bool:  # type: ignore[type-arg]
            if isinstance(node, promql_parser.AggregateExpr):
                assert node.modifier is not None, rule
                assert node.modifier.type == promql_parser.AggModifierType.By, rule
                assert "device" in node.modifier.labels, rule
            return True
        promql_parser.walk(promql_parser.parse(rule["expr"]), visit)


def test_it_reads_only_on_device_kpis_and_its_own_recordings() -> None:
    rules = _rules()
    recorded = {r["record"] for r in rules if "record" in r}
    for rule in rules:
        for name in metric_names(rule["expr"]):
            kpi = kpi_of(name)
            assert name in recorded or (kpi is not None and kpi.on_device), (name, rule)


def test_the_catalog_attribute_decides() -> None:
    off = tuple(dataclasses.replace(k, on_device=False) if k.name == "inference_requests_total"
                else k for k in CATALOG)
    names = {r.get("alert") or r.get("record") for r in _rules(catalog=off)}
    assert "ModelErrorBudgetBurningFast" not in names
    assert not any("inference_errors" in n for n in names)
    assert "ModelLatencyBudgetBurningFast" in names
    none = tuple(dataclasses.replace(k, on_device=False) for k in CATALOG)
    assert device_groups(ThresholdsConfig(), none) == []


def test_thresholds_come_from_the_config_and_the_window_bounds_what_reaches_the_device(
        tmp_path: Path) -> None:
    default = _rules()
    limit = 3600
    assert max(reach_seconds(r["expr"]) for r in default) == limit
    # The default 6h page check and the 1d/3d ticket checks stay in the cloud.
    burn = next(r for r in default if r.get("alert") == "ModelErrorBudgetBurningFast")
    assert "ratio_rate6h" not in burn["expr"] and "ratio_rate1h" in burn["expr"]
    assert "ModelErrorBudgetBurningSlow" not in {r.get("alert") for r in default}

    config = thresholds_from_mapping({
        "evaluation_interval": "30s",
        "quality": {"violation_window": "2h", "drift_threshold": 0.4},
        "slo": {"ticket_windows": [["30m", "5m", 3]]},
        "edge": {"offline_after": "20m", "device_rules_window": "1h"},
    })
    rules = _rules(config)
    names = {r.get("alert") or r.get("record") for r in rules}
    # A 2h violation window is longer than the device keeps: left to the cloud.
    assert "ModelDataQualityViolations" not in names
    assert not any("input_violations" in n for n in names)
    assert "ModelErrorBudgetBurningSlow" in names
    drift = next(r for r in rules if r.get("alert") == "ModelFeatureDrift")
    assert drift["expr"].endswith(") > 0.4")
    offline = next(r for r in rules if r.get("alert") == "EdgeDeviceOffline")
    assert offline["expr"].endswith("> 1200") and "[" not in offline["expr"]
    assert device_groups(config, CATALOG)[0]["interval"] == "30s"
    path = tmp_path / EDGE_RULES_FILE
    path.write_text(render_all(config)[EDGE_RULES_FILE])
    (group,) = load_rule_files([str(path)])
    assert sum(isinstance(r, AlertingRule) for r in group.rules) == sum(
        "alert" in r for r in rules)

