"""mixtool-style lint: dashboards, rules, catalog and runbooks agree.

- every metric a dashboard or rule references exists in the catalog (or is a
  recording rule the rules define, or a series Prometheus itself produces);
- every catalog KPI appears on a dashboard;
- every alert follows the conventions and has a runbook section.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from modelmon.alerting import ThresholdsConfig, alert_names, rule_groups
from modelmon.alerting.promql import BUILTIN_SERIES, kpi_of, metric_names
from modelmon.catalog import CATALOG
from modelmon.dashboards import render_all as render_dashboards
from modelmon.dashboards.references import kpi_references, prometheus_targets

RUNBOOKS = Path(__file__).resolve().parents[3] / "docs" / "runbooks.md"
CONFIG = ThresholdsConfig()


def _recorded() -> set[str]:
    return {r["record"] for g in rule_groups(CONFIG) for r in g["rules"] if "record" in r}


def _unknown(expr: str, recorded: set[str]) -> set[str]:
    return {
        m for m in metric_names(expr)
        if kpi_of(m, CONFIG.prefix) is None and m not in recorded and m not in BUILTIN_SERIES
    }


def test_every_metric_a_dashboard_references_is_in_the_catalog() -> None:
    recorded = _recorded()
    for name, text in render_dashboards().items():
        for title, expr in prometheus_targets(json.loads(text)):
            assert not _unknown(expr, recorded), f"{name} / {title}: {_unknown(expr, recorded)}"


def test_every_metric_a_rule_references_is_in_the_catalog_or_recorded() -> None:
    recorded = _recorded()
    for group in rule_groups(CONFIG):
        for rule in group["rules"]:
            name = rule.get("alert") or rule["record"]
            assert not _unknown(rule["expr"], recorded), f"{name}: {_unknown(rule['expr'], recorded)}"


def test_every_recording_rule_is_used_by_an_alert_or_a_dashboard() -> None:
    used: set[str] = set()
    for group in rule_groups(CONFIG):
        for rule in group["rules"]:
            used |= metric_names(rule["expr"])
    for text in render_dashboards().values():
        for _, expr in prometheus_targets(json.loads(text)):
            used |= metric_names(expr)
    unused = {r for r in _recorded() if r not in used and not r.startswith("model:")}
    assert not unused


def test_every_catalog_kpi_appears_on_a_dashboard() -> None:
    refs = kpi_references(CONFIG)
    missing = [k.name for k in CATALOG if not refs[k.name].panels]
    assert not missing, f"KPIs on no dashboard panel: {missing}"


def test_alerts_follow_the_conventions() -> None:
    for group in rule_groups(CONFIG):
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            name = rule["alert"]
            assert re.fullmatch(r"(?:[A-Z][a-z0-9]+|SLO)+", name), f"{name}: not CamelCase"
            assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
            annotations = rule["annotations"]
            assert "{{" not in annotations["summary"], f"{name}: summary must be static"
            assert "{{" in annotations["description"], f"{name}: description must be templated"
            assert annotations["runbook_url"].endswith(f"docs/runbooks.md#{name.lower()}"), name


def test_every_alert_has_a_runbook_section_and_every_section_an_alert() -> None:
    text = RUNBOOKS.read_text()
    sections = re.findall(r"^## (\w+)$", text, flags=re.M)
    names = alert_names(rule_groups(CONFIG))
    assert sorted(sections) == sorted(names)
    for body in re.split(r"^## \w+$", text, flags=re.M)[1:]:
        for part in ("**Means.**", "**Check.**", "**Do.**"):
            assert part in body


def test_references_name_the_alerts_that_watch_a_kpi() -> None:
    refs = kpi_references(CONFIG)
    assert "ModelErrorBudgetBurningFast" in refs["inference_requests_total"].alerts
    assert "ModelNoTraffic" in refs["inference_requests_total"].alerts
    assert any(
        (p.dashboard, p.row, p.title) == ("model-service", "Traffic and errors", "Error ratio")
        for p in refs["inference_requests_total"].panels
    )
    assert refs["inference_in_flight"].alerts == []
